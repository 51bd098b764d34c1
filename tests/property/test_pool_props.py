"""The pool's lookups by address in C (``mobileha._slbio.pool_state`` / ``pool_flags``)
against their Python references, on random pools, states and address strings (valid,
outside the pool, and strings ``inet_aton`` refuses or reads in its short forms)."""

from __future__ import annotations

import ipaddress
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.core.pool import AddressPool
from mobileha.wire import addrpool as pool_mod
from mobileha.wire.addrpool import pool_flags_py, pool_state_py
from mobileha.wire.sync import REC_DYNAMIC

N = 100 if os.environ.get("MOBILEHA_FAST") else 1000
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
needs_c = pytest.mark.skipif(not pool_mod.C_POOL, reason="mobileha._slbio is not built")

prefixes = st.builds(
    lambda a, n: str(ipaddress.IPv4Network((a, n), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(16, 32),
)
quads = st.builds(str, st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)))
odd = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "1", "1.2", "1.2.3", "0x7f.1", "010.0.0.1", "1.2.3.4 ", "256.1.1.1"]),
)


def _pool(prefix: str, states: list[int]) -> AddressPool:
    p = AddressPool(prefix)
    bits = p._bits
    for i, s in enumerate(states[: len(bits)]):
        bits[i] = s
    return p


def _near(p: AddressPool, offsets: list[int]) -> list[str]:
    """Addresses at ``offsets`` from the pool's first one (some outside it)."""
    return [str(ipaddress.IPv4Address((p._base + o) % 2**32)) for o in offsets]


@needs_c
@SETTINGS
@given(
    prefixes,
    st.lists(st.sampled_from([0, 1, 2]), max_size=64),
    st.lists(st.integers(-4, 70), max_size=20),
    st.lists(st.one_of(quads, odd), max_size=10),
    st.sampled_from([1, REC_DYNAMIC, 0x80]),
)
def test_c_lookups_match_python(
    prefix: str, states: list[int], offsets: list[int], others: list[str], flag: int
) -> None:
    p = _pool(prefix, states)
    addrs = _near(p, offsets) + others
    for a in addrs:
        try:
            want: int | type[BaseException] = pool_state_py(p._bits, p._base, a)
        except ValueError:  # an embedded null character, as socket.inet_aton says
            want = ValueError
        if want is ValueError:
            with pytest.raises(ValueError):
                pool_mod._c.pool_state(p._bits, p._base, a)
        else:
            assert pool_mod._c.pool_state(p._bits, p._base, a) == want, a
    clean = [a for a in addrs if "\x00" not in a]
    assert pool_mod._c.pool_flags(p._bits, p._base, clean, flag) == pool_flags_py(
        p._bits, p._base, clean, flag
    )
    assert pool_mod._c.pool_flags(p._bits, p._base, tuple(clean), flag) == [
        flag if p.is_allocated(a) else 0 for a in clean
    ]


@SETTINGS
@given(prefixes, st.lists(st.sampled_from([0, 1, 2]), max_size=64), st.lists(st.integers(-4, 70)))
def test_is_allocated_and_flags_follow_the_state(
    prefix: str, states: list[int], offsets: list[int]
) -> None:
    p = _pool(prefix, states)
    for a in _near(p, offsets):
        i = p._index(a)
        assert p.is_allocated(a) == (i is not None and p._bits[i] == 1)
        assert (a in p) == (i is not None)
    addrs = _near(p, offsets)
    assert p.flags_of(addrs, REC_DYNAMIC) == [
        REC_DYNAMIC if p.is_allocated(a) else 0 for a in addrs
    ]


@needs_c
def test_c_lookups_refuse_what_python_refuses() -> None:
    p = AddressPool("10.0.0.0/24")
    with pytest.raises(TypeError):
        pool_mod._c.pool_state(p._bits, p._base, 5)
    with pytest.raises(TypeError):
        pool_mod._c.pool_flags(p._bits, p._base, ["10.0.0.1", None], 1)
    with pytest.raises(TypeError):
        pool_mod._c.pool_flags(p._bits, p._base, 7, 1)
