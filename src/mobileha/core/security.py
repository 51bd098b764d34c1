"""Mobility security associations of a home agent (RFC 5944 §3.5, §5.7; P§1.6, P§1.7).

* MN-HA: selected by the mobile node's identity -- its NAI (RFC 2794) or, without an NAI,
  its home address -- plus the SPI of the MN-HA extension.
* FA-HA: selected by the FA's address (the RRQ's IP source, or the origin carried by the
  HA-SLB relay tag) plus the SPI of the FA-HA extension.
* MN-AAA (RFC 4721, optional): the local AAA table's NAI + SPI, verified by the HA itself
  (code 144 on failure). SPI 2 (CHAP_SPI) selects the CHAP-style computation.

Each SA holds a pre-keyed :class:`~mobileha.wire.auth.Authenticator` built once, so the hot
path only copies it. SPIs 0-255 are reserved (RFC 5944 §3.5.1) and refused when an SA is
configured (:class:`SecurityConfigError`), except CHAP_SPI for MN-AAA SAs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mobileha.wire.auth import (
    ALG_HMAC_MD5,
    ALG_PREFIX_SUFFIX,
    ALGORITHMS,
    CHAP_SPI,
    SPI_MIN_VALID,
    Authenticator,
)

REPLAY_TIMESTAMP = "timestamp"
REPLAY_NONCE = "nonce"
REPLAY_METHODS = (REPLAY_TIMESTAMP, REPLAY_NONCE)
DEFAULT_TOLERANCE_S = 7  # RFC 5944 §5.7 default; Cisco default (P§1.7)


class SecurityConfigError(ValueError):
    """An SA cannot be configured (reserved SPI, unknown algorithm, duplicate...)."""


@dataclass(slots=True, eq=False)
class MobilitySA:
    """One mobility security association and its pre-keyed authenticator."""

    spi: int
    key: bytes = field(repr=False)
    algorithm: str = ALG_PREFIX_SUFFIX
    replay: str = REPLAY_TIMESTAMP
    tolerance: float = DEFAULT_TOLERANCE_S
    # MN-HA only: who the MN is and what it may get.
    nai: str | None = None
    home_address: str | None = None  # static home address; None = dynamic (pool)
    max_lifetime: int | None = None  # per-MN lifetime limit
    home_hint: str | None = field(default=None, init=False, repr=False)  # last bound (cache)
    auth: Authenticator = field(init=False, repr=False)
    hdr_mnha: bytes = field(init=False, repr=False, default=b"")  # Type 32, Length 20, SPI
    hdr_faha: bytes = field(init=False, repr=False, default=b"")  # Type 34, Length 20, SPI
    _inner: Any = field(init=False, repr=False, default=None)
    _outer: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise SecurityConfigError(f"unknown algorithm {self.algorithm!r}")
        if self.replay not in REPLAY_METHODS:
            raise SecurityConfigError(f"unknown replay method {self.replay!r}")
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise SecurityConfigError(f"SPI {self.spi} out of range")
        self.auth = Authenticator(self.key, self.algorithm)
        self.hdr_mnha = bytes((32, 20)) + self.spi.to_bytes(4, "big")
        self.hdr_faha = bytes((34, 20)) + self.spi.to_bytes(4, "big")
        key = self.key
        if self.algorithm == ALG_HMAC_MD5:
            # RFC 2104 with the inner and outer MD5 states keyed once: two C-level copies
            # per message (about half the cost of copying an hmac.HMAC object).
            if len(key) > 64:
                key = hashlib.md5(key).digest()
            key = key.ljust(64, b"\0")
            self._inner = hashlib.md5(bytes(b ^ 0x36 for b in key))
            self._outer = hashlib.md5(bytes(b ^ 0x5C for b in key))
        else:
            self._inner = hashlib.md5(key)

    def compute(self, covered: bytes) -> bytes:
        """The 16-byte authenticator over ``covered`` (same result as ``self.auth``)."""
        i = self._inner.copy()
        i.update(covered)
        o = self._outer
        if o is None:  # keyed MD5 prefix+suffix
            i.update(self.key)
            d: bytes = i.digest()
            return d
        o = o.copy()
        o.update(i.digest())
        d = o.digest()
        return d

    def verify(self, covered: bytes, authenticator: bytes) -> bool:
        return hmac.compare_digest(self.compute(covered), authenticator)


def _check_spi(spi: int, what: str) -> None:
    if spi < SPI_MIN_VALID:
        raise SecurityConfigError(f"{what} SPI {spi} is reserved (0-255, RFC 5944 §3.5.1)")


class SecurityAssociations:
    """MN-HA SAs by (NAI or home address, SPI); FA-HA SAs by (FA address, SPI)."""

    __slots__ = ("_aaa", "_fa", "_fa_any", "_mn", "_mn_any", "fa_by_address", "mn_by_key")

    def __init__(self) -> None:
        self._mn: dict[tuple[str, int], MobilitySA] = {}
        # :meth:`mn` for a hot path: the dict lookup itself, keyed (NAI or address, SPI)
        self.mn_by_key: Callable[[tuple[str, int]], MobilitySA | None] = self._mn.get
        self._mn_any: dict[str, MobilitySA] = {}  # identity -> first SA (for 131 replies)
        self._fa: dict[tuple[str, int], MobilitySA] = {}
        self._fa_any: dict[str, MobilitySA] = {}
        # :meth:`fa_any` for a hot path: the dict lookup itself
        self.fa_by_address: Callable[[str], MobilitySA | None] = self._fa_any.get
        self._aaa: dict[tuple[str, int], MobilitySA] = {}

    # ------------------------------------------------------------------ configuration

    def add_mn(self, sa: MobilitySA) -> None:
        """Add an MN-HA SA, reachable by its NAI and/or its static home address."""
        _check_spi(sa.spi, "MN-HA")
        ids = [i for i in (sa.nai, sa.home_address) if i]
        if not ids:
            raise SecurityConfigError("an MN-HA SA needs an NAI or a static home address")
        for ident in ids:
            if (ident, sa.spi) in self._mn:
                raise SecurityConfigError(f"duplicate MN-HA SA {ident} SPI {sa.spi}")
        for ident in ids:
            self._mn[(ident, sa.spi)] = sa
            self._mn_any.setdefault(ident, sa)

    def add_fa(self, address: str, sa: MobilitySA) -> None:
        _check_spi(sa.spi, "FA-HA")
        if (address, sa.spi) in self._fa:
            raise SecurityConfigError(f"duplicate FA-HA SA {address} SPI {sa.spi}")
        self._fa[(address, sa.spi)] = sa
        self._fa_any.setdefault(address, sa)

    def add_aaa(self, nai: str, sa: MobilitySA) -> None:
        """An MN-AAA key the HA verifies itself (RFC 4721; SPI 2 = CHAP)."""
        if sa.spi != CHAP_SPI:
            _check_spi(sa.spi, "MN-AAA")
        self._aaa[(nai, sa.spi)] = sa

    def remove_mn(self, ident: str, spi: int) -> None:
        sa = self._mn.pop((ident, spi), None)
        if sa is not None and self._mn_any.get(ident) is sa:
            del self._mn_any[ident]
            for (i, _s), other in self._mn.items():
                if i == ident:
                    self._mn_any[ident] = other
                    break

    # ------------------------------------------------------------------ lookups

    def mn(self, ident: str, spi: int) -> MobilitySA | None:
        return self._mn.get((ident, spi))

    def mn_known(self, ident: str) -> MobilitySA | None:
        """Some SA shared with this MN (any SPI): what a 131 reply is authenticated with when
        the request's SPI selects none (RFC 5944 §3.8.2.1 a)."""
        return self._mn_any.get(ident)

    def aaa(self, nai: str, spi: int) -> MobilitySA | None:
        return self._aaa.get((nai, spi))

    def fa(self, address: str, spi: int) -> MobilitySA | None:
        return self._fa.get((address, spi))

    def has_fa(self, address: str) -> bool:
        return address in self._fa_any

    def fa_any(self, address: str) -> MobilitySA | None:
        return self._fa_any.get(address)

    def mn_sas(self) -> list[MobilitySA]:
        seen: dict[int, MobilitySA] = {}
        for sa in self._mn.values():
            seen.setdefault(id(sa), sa)
        return list(seen.values())

    def __len__(self) -> int:
        return len(self.mn_sas()) + len(self._fa) + len(self._aaa)


__all__ = [
    "DEFAULT_TOLERANCE_S",
    "REPLAY_METHODS",
    "REPLAY_NONCE",
    "REPLAY_TIMESTAMP",
    "MobilitySA",
    "SecurityAssociations",
    "SecurityConfigError",
]
