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

Where an MN-HA SA comes from (``MobilitySA.source``): ``inline`` (the configuration),
``file`` (a subscriber file named by the configuration), ``aaa`` (fetched from AAA at the
MN's first registration and cached, :mod:`mobileha.core.subscribers`). Exact NAIs and
home addresses are one dict lookup (:attr:`SecurityAssociations.mn_by_key`), whatever the
source: an SA fetched from AAA is put there too. What the lookup misses can match a realm
entry (:class:`RealmTable`): ``@realm`` (one dict lookup on the NAI's realm, compared
without case, RFC 7542 §2.2) and then glob patterns (``mn-*@example.net``, case-sensitive,
in configuration order). A realm entry with an inline SA gives every matching MN that SA;
one with source ``aaa`` makes the home agent fetch the MN's own SA. The realm table is
consulted only after the exact lookup missed, so it costs a known MN nothing.

An MN's own SA (exact NAI, from the configuration, a file or AAA) also carries the NAI index
of its bindings (``MobilitySA.bound``, written by the home agent's binding table): at 10^6
MNs this is one slot on an object that exists anyway instead of one entry in a separate
NAI dict (docs/decisions/binding-memory.md). When the SA an NAI resolves to changes (an AAA
refresh, a removal) the index moves with it (:meth:`SecurityAssociations._set_any`), so a
bound NAI never loses it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from mobileha.wire.auth import (
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

SOURCE_INLINE: Final = "inline"  # the SA is in the configuration
SOURCE_FILE: Final = "file"  # from a subscriber file the configuration names
SOURCE_AAA: Final = "aaa"  # fetched from AAA (RADIUS) and cached
SA_SOURCES: Final = (SOURCE_INLINE, SOURCE_AAA, SOURCE_FILE)


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
    source: str = SOURCE_INLINE  # SA_SOURCES
    fetched: float = 0.0  # source aaa: when it was fetched (the core's clock)
    # MN-HA with an NAI: the home address(es) of this NAI's bindings (a list: several),
    # kept by the binding table of the one home agent this SA belongs to
    # (:meth:`SecurityAssociations.nai_holder`); the table's NAI index for this MN.
    bound: str | list[str] | None = field(default=None, init=False, repr=False)
    # source aaa: this SA as a sync record block, (secret, bytes), sealed once per secret
    sealed: tuple[bytes, bytes] | None = field(default=None, init=False, repr=False)
    # the key, pre-keyed once (wire.auth.Authenticator: RFC 2104 HMAC-MD5 with its inner and
    # outer MD5 states hashed once, or RFC 5944 §3.5.1 keyed MD5 prefix+suffix); the wire
    # helpers (append_auth, verify) take it, and compute/verify below use it
    auth: Authenticator = field(init=False, repr=False)
    hdr_mnha: bytes = field(init=False, repr=False, default=b"")  # Type 32, Length 20, SPI
    hdr_faha: bytes = field(init=False, repr=False, default=b"")  # Type 34, Length 20, SPI

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise SecurityConfigError(f"unknown algorithm {self.algorithm!r}")
        if self.replay not in REPLAY_METHODS:
            raise SecurityConfigError(f"unknown replay method {self.replay!r}")
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise SecurityConfigError(f"SPI {self.spi} out of range")
        self.hdr_mnha = bytes((32, 20)) + self.spi.to_bytes(4, "big")
        self.hdr_faha = bytes((34, 20)) + self.spi.to_bytes(4, "big")
        self.auth = Authenticator(self.key, self.algorithm)

    def compute(self, covered: bytes) -> bytes:
        """The 16-byte authenticator over ``covered``."""
        return self.auth.compute(covered)

    def verify(self, covered: bytes, authenticator: bytes) -> bool:
        """Constant-time check of ``authenticator`` over ``covered``."""
        return self.auth.verify(covered, authenticator)


def _check_spi(spi: int, what: str) -> None:
    if spi < SPI_MIN_VALID:
        raise SecurityConfigError(f"{what} SPI {spi} is reserved (0-255, RFC 5944 §3.5.1)")


@dataclass(frozen=True, slots=True, eq=False)
class RealmEntry:
    """A ``[[mobile_node]]`` entry that stands for many NAIs: a realm (``@example.net``)
    or a glob pattern (``mn-*@example.net``), and where their SAs come from.

    ``source`` inline: every matching MN shares ``sa`` (one SA object, whatever the number
    of MNs). ``source`` aaa: each MN's own SA is fetched from AAA at its first registration
    (the SPI, key and optionally the home address come from AAA; ``algorithm``,
    ``replay``, ``tolerance`` and ``max_lifetime`` from here, because the 3GPP2 attributes
    carry none of them). ``source`` file: the SAs were loaded from ``file`` as exact
    entries; the entry only names what the file may contain.
    """

    pattern: str  # "@realm" or a glob over the whole NAI
    source: str = SOURCE_INLINE
    sa: MobilitySA | None = None  # inline: the shared SA
    algorithm: str = ALG_PREFIX_SUFFIX
    replay: str = REPLAY_TIMESTAMP
    tolerance: float = DEFAULT_TOLERANCE_S
    max_lifetime: int | None = None
    file: str | None = None  # source file: where the SAs were read from

    @property
    def is_realm(self) -> bool:
        """``@realm`` (a dict lookup) rather than a pattern (a regular expression)."""
        return is_realm_pattern(self.pattern)


def is_realm_pattern(nai: str) -> bool:
    """``@example.net``: every NAI of that realm."""
    return nai.startswith("@") and not any(c in nai for c in "*?[")


def is_nai_pattern(nai: str) -> bool:
    """A realm or a glob pattern rather than one NAI."""
    return nai.startswith("@") or any(c in nai for c in "*?[")


def realm_of_nai(nai: str) -> str | None:
    """The realm of an NAI (after its last ``@``), lower case; None without one."""
    at = nai.rfind("@")
    return nai[at + 1 :].lower() if at >= 0 else None


class RealmTable:
    """Realm entries: ``@realm`` by one dict lookup, then patterns in order."""

    __slots__ = ("_patterns", "_realms", "entries")

    def __init__(self, entries: Iterable[RealmEntry] = ()) -> None:
        self._realms: dict[str, RealmEntry] = {}
        self._patterns: list[tuple[re.Pattern[str], RealmEntry]] = []
        self.entries: list[RealmEntry] = []
        for e in entries:
            self.add(e)

    def add(self, e: RealmEntry) -> None:
        if e.is_realm:
            realm = e.pattern[1:].lower()
            if realm in self._realms:
                raise SecurityConfigError(f"duplicate realm entry {e.pattern}")
            self._realms[realm] = e
        else:
            if any(p.pattern == e.pattern for p in self.entries):
                raise SecurityConfigError(f"duplicate pattern entry {e.pattern}")
            self._patterns.append((re.compile(fnmatch.translate(e.pattern)), e))
        self.entries.append(e)

    def match(self, nai: str) -> RealmEntry | None:
        """The entry for ``nai``: its realm's, else the first pattern that matches."""
        at = nai.rfind("@")
        if at >= 0 and self._realms:
            e = self._realms.get(nai[at + 1 :].lower())
            if e is not None:
                return e
        for rx, e in self._patterns:
            if rx.match(nai):
                return e
        return None

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __iter__(self) -> Iterator[RealmEntry]:
        return iter(self.entries)


class SecurityAssociations:
    """MN-HA SAs by (NAI or home address, SPI); FA-HA SAs by (FA address, SPI); realm
    entries for the NAIs without an SA of their own."""

    __slots__ = (
        "_aaa",
        "_fa",
        "_fa_any",
        "_mn",
        "_mn_any",
        "fa_by_address",
        "links_owner",
        "mn_by_key",
        "realms",
        "released",
    )

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
        self.realms = RealmTable()
        # The binding table whose NAI index lives on these SAs (``bound``), and where the
        # index of an NAI goes when its SA goes without a successor (that table's relink).
        self.links_owner: object | None = None
        self.released: Callable[[str, str | list[str]], None] | None = None

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
            if ident not in self._mn_any:
                self._set_any(ident, sa)

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

    def add_realm(self, entry: RealmEntry) -> None:
        """A realm or pattern entry (inline entries need their shared SA)."""
        if entry.source == SOURCE_INLINE:
            if entry.sa is None:
                raise SecurityConfigError(f"realm entry {entry.pattern} needs an SA")
            _check_spi(entry.sa.spi, "MN-HA")
        self.realms.add(entry)

    def put_cached(self, sa: MobilitySA) -> MobilitySA | None:
        """An SA fetched from AAA for ``sa.nai``: replaces that NAI's previous one from AAA
        (returned), never a configured one (SecurityConfigError)."""
        nai = sa.nai
        assert nai is not None
        old = self._mn_any.get(nai)
        if old is not None:
            if old.source != SOURCE_AAA:
                raise SecurityConfigError(f"{nai} has a configured SA")
            self._mn.pop((nai, old.spi), None)
        self._mn[(nai, sa.spi)] = sa
        self._set_any(nai, sa)
        return old

    def drop_cached(self, nai: str) -> MobilitySA | None:
        """Forget the SA fetched from AAA for ``nai`` (None: there is none)."""
        sa = self._mn_any.get(nai)
        if sa is None or sa.source != SOURCE_AAA:
            return None
        self._mn.pop((nai, sa.spi), None)
        self._set_any(nai, None)
        return sa

    def remove_mn(self, ident: str, spi: int) -> None:
        sa = self._mn.pop((ident, spi), None)
        if sa is not None and self._mn_any.get(ident) is sa:
            nxt = next((o for (i, _s), o in self._mn.items() if i == ident), None)
            self._set_any(ident, nxt)

    def _set_any(self, ident: str, sa: MobilitySA | None) -> None:
        """``ident`` now resolves to ``sa`` (None: to no SA of its own). The NAI index the
        previous SA held for ``ident`` moves to ``sa``, or to :attr:`released` (the
        table's own NAI index) when ``sa`` cannot hold it."""
        old = self._mn_any.get(ident)
        if sa is None:
            self._mn_any.pop(ident, None)
        else:
            self._mn_any[ident] = sa
        if old is None or old is sa or old.bound is None or old.nai != ident:
            return
        bound, old.bound = old.bound, None
        if sa is not None and sa.nai == ident and sa.bound is None:
            sa.bound = bound
        elif self.released is not None:
            self.released(ident, bound)

    # ------------------------------------------------------------------ lookups

    def mn(self, ident: str, spi: int) -> MobilitySA | None:
        return self._mn.get((ident, spi))

    def mn_known(self, ident: str) -> MobilitySA | None:
        """Some SA shared with this MN (any SPI): what a 131 reply is authenticated with when
        the request's SPI selects none (RFC 5944 §3.8.2.1 a). An MN known only through an
        inline realm entry shares that entry's SA."""
        sa = self._mn_any.get(ident)
        if sa is None and self.realms:
            e = self.realms.match(ident)
            if e is not None:
                return e.sa
        return sa

    def nai_holder(self, nai: str) -> MobilitySA | None:
        """The SA that holds ``nai``'s index of bindings: its own SA (exact NAI; the first
        configured one when it has several SPIs), None for an NAI without one (realm
        entries, a cache miss)."""
        sa = self._mn_any.get(nai)
        return sa if sa is not None and sa.nai == nai else None

    def holders(self) -> list[MobilitySA]:
        """The SAs that hold an NAI index right now."""
        return [sa for i, sa in self._mn_any.items() if sa.bound is not None and sa.nai == i]

    def realm_of(self, nai: str) -> RealmEntry | None:
        """The realm or pattern entry of an NAI without an exact entry (None: no match)."""
        return self.realms.match(nai) if self.realms else None

    def cached(self) -> Iterator[MobilitySA]:
        """The SAs fetched from AAA."""
        return (sa for sa in self._mn_any.values() if sa.source == SOURCE_AAA)

    def aaa(self, nai: str, spi: int) -> MobilitySA | None:
        return self._aaa.get((nai, spi))

    def fa(self, address: str, spi: int) -> MobilitySA | None:
        return self._fa.get((address, spi))

    def has_fa(self, address: str) -> bool:
        return address in self._fa_any

    def fa_any(self, address: str) -> MobilitySA | None:
        return self._fa_any.get(address)

    def mn_sas(self) -> list[MobilitySA]:
        """The configured MN-HA SAs (inline and file; not those fetched from AAA) and the
        shared SAs of inline realm entries."""
        seen: dict[int, MobilitySA] = {}
        for sa in self._mn.values():
            if sa.source != SOURCE_AAA:
                seen.setdefault(id(sa), sa)
        for e in self.realms:
            if e.sa is not None:
                seen.setdefault(id(e.sa), e.sa)
        return list(seen.values())

    def __len__(self) -> int:
        return len(self.mn_sas()) + len(self._fa) + len(self._aaa)


__all__ = [
    "DEFAULT_TOLERANCE_S",
    "REPLAY_METHODS",
    "REPLAY_NONCE",
    "REPLAY_TIMESTAMP",
    "SA_SOURCES",
    "SOURCE_AAA",
    "SOURCE_FILE",
    "SOURCE_INLINE",
    "MobilitySA",
    "RealmEntry",
    "RealmTable",
    "SecurityAssociations",
    "SecurityConfigError",
    "is_nai_pattern",
    "is_realm_pattern",
    "realm_of_nai",
]
