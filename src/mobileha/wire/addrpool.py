"""The state of an IPv4 address in a dynamic home address pool (``core.pool.AddressPool``:
one byte per address from ``base``, 0 free, 1 allocated, 2 excluded), read by address: in
C when the optional module is built, the Python functions here being the reference
(tests/property/test_pool_props.py compares them)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from socket import inet_aton
from typing import Any

_U32 = struct.Struct("!I")


def index_of(base: int, size: int, addr: str) -> int | None:
    """The index of ``addr`` in the pool of ``size`` addresses from ``base`` (None: outside,
    or no address ``inet_aton`` accepts)."""
    try:
        i = _U32.unpack(inet_aton(addr))[0] - base
    except OSError:
        return None
    return i if 0 <= i < size else None


def pool_state_py(bits: bytearray, base: int, addr: str) -> int:
    """The state byte of ``addr`` (0 free, 1 allocated, 2 excluded), -1 outside the pool:
    the reference of the C ``pool_state``."""
    i = index_of(base, len(bits), addr)
    return -1 if i is None else bits[i]


def pool_flags_py(bits: bytearray, base: int, addrs: Sequence[str], flag: int) -> list[int]:
    """``flag`` for each allocated address of ``addrs``, 0 for the others: the reference of
    the C ``pool_flags``."""
    return [flag if pool_state_py(bits, base, a) == 1 else 0 for a in addrs]


_c: Any
try:
    import mobileha._slbio as _c
except ImportError:  # pragma: no cover - the C module is optional
    _c = None

# The lookups of a pool by address run in C when the optional module is built (a sync
# record's REC_DYNAMIC flag is one per registration and one per bulk record).
C_POOL = _c is not None and hasattr(_c, "pool_flags")
pool_state: Callable[[bytearray, int, str], int] = _c.pool_state if C_POOL else pool_state_py
pool_flags: Callable[[bytearray, int, Sequence[str], int], list[int]] = (
    _c.pool_flags if C_POOL else pool_flags_py
)


__all__ = ["C_POOL", "index_of", "pool_flags", "pool_flags_py", "pool_state", "pool_state_py"]
