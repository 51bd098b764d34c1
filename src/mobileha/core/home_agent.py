"""The home agent's registration processing, sans-IO (RFC 5944 §3.8; P§1.7-1.9, P§2.2-2.6).

``HomeAgent.handle_datagram(data, src_addr, src_port, dst_addr, now, wall_time)`` takes one
UDP payload received on port 434 and returns actions: the reply (:class:`Send`, from the
address the request was sent to, P§1.1) and one action per binding change
(:class:`InstallBinding` / :class:`RemoveBinding`). ``now`` is the monotonic clock of the
binding lifetimes; ``wall_time`` is Unix time, used only for the timestamp replay check.

Order of checks (RFC 5944 §3.8.2.1, P§1.8):

0. Not a Registration Request, truncated, or an unknown non-skippable extension: silently
   discarded, counted by reason (``bad_input``).
1. No authorization-enabling extension (MN-HA 32, or MN-AAA 36/1): silently discarded. No
   security association at all with the MN: silently discarded.
2. Authenticator invalid: 131 (144 for MN-AAA). The reply carries an MN-HA extension
   computed with the SA the request selected ("usable SA"), or, when the request's SPI
   selects none, with another SA shared with that MN (RFC 5944 §3.8.2.1 a); with neither,
   only when a valid FA-HA extension is present (FA-HA only), else silently discarded.
3. Replay check (timestamp: within the tolerance and newer than the last accepted
   Identification of that MN; nonce: the nonce we issued) or 133 with the Identification
   of P§1.7. A request that duplicates the accepted current registration (same home
   address, care-of address and Identification) therefore gets 133 and never extends the
   binding (RFC 5944 §3.8.2.2 only forbids the extension); with
   ``answer_duplicates=True`` it is instead answered again with the remaining lifetime
   (some deployments prefer that for FA retransmissions).
4. FA-HA: an FA-HA extension without an FA SA -> silently discarded (RFC 5944 §3.8.2.1 d);
   with an FA SA and non-zero lifetime, exactly one valid FA-HA extension or 132.
5. Policy: 136 (sent to a broadcast address), 143 (RFC 4433 dynamic HA, redirect
   configured), 134 (poorly formed), 129 (home address not allowed for this MN), 140/141
   (unknown CVSE from MN / FA), 137/138 (reverse tunnel), 139 (encapsulation or GRE key
   extension), 135 (too many simultaneous bindings), 130 (table full or pool exhausted).

Bindings: deregistration deletes all bindings (CoA = HoA) or the one of that CoA; a
registration without S (or with S when simultaneous bindings are off: code 1) replaces the
MN's bindings; with S it adds/refreshes that CoA. The granted lifetime is at most the
requested one and the configured maximum. The last accepted Identification lives in the
binding record (it is synchronised with it, DESIGN §3).

Actions beyond the shared ones (subclasses, so a consumer that only knows the base classes
still works):

* :class:`RefreshBinding` (an ``InstallBinding``): same forwarding state, new lifetime and
  Identification. The data plane has nothing to do; the redundancy peer needs a BU.
* :class:`RestoreBinding` (an ``InstallBinding``): install forwarding state for a binding
  that is already known (becoming active, or a synced binding while active). Not a
  change to synchronise.
* :class:`WithdrawBinding` (a ``RemoveBinding``): remove forwarding state only (becoming
  standby); the binding stays in the table. Not a change to synchronise.

Notes where PROTOCOLS.md is vague or differs (the RFC is followed):

* An FA-HA extension without an FA SA: RFC 5944 §3.8.2.1 d discards the whole request
  (P§1.8 reads as if only the extension were discarded).
* The reserved flag bits r and x are ignored on receipt (RFC 5944 §3.3), not refused with
  134 (the 134 rule of §3.8.2.3 is for reserved fields in general).
* The HA field of a request may be any address (the HA-SLB virtual address in particular,
  P§6.4); the reply always names our advertised address (``ha_address``).
* P§2.4 says the HA echoes the MN-FA challenge after MN-HA; RFC 4721 §6 only requires MN-HA
  in the reply and forbids MN-AAA. The challenge is not echoed.
* Nonce state (the nonce we last issued per MN, keyed by NAI or, without one, by home
  address) is synchronised in the binding records ([P] REC_NONCE, :meth:`nonce_of` /
  :meth:`apply_synced`): a takeover is invisible to an MN using nonces. Only binding
  changes are synchronised, so a nonce issued in a denial (e.g. a 133) without a binding
  change reaches the standby only with the MN's next accepted registration; a failover in
  between costs that MN one 133. A deleted binding's nonce is kept (the MN's next
  registration carries it); the standby keeps the one of the last record it applied.

Hot path: the fixed header is unpacked once, extensions are walked inline by offset, only
the values needed are sliced, SAs hold pre-keyed authenticators and the reply is built
from raw bytes of the request. No logging per request.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import struct
import sys
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from socket import inet_aton, inet_ntoa
from typing import Any, Final

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_G, FLAG_M, FLAG_S, FLAG_T, Binding, Encap
from mobileha.core.bindings import INFINITE, BindingTable, TableFull
from mobileha.core.pool import AddressPool
from mobileha.core.security import (
    REPLAY_NONCE,
    MobilitySA,
    SecurityAssociations,
)
from mobileha.wire import DecodeError, slbtag
from mobileha.wire.auth import CHAP_SPI, NTP_EPOCH_OFFSET, mn_aaa_chap_authenticator, new_nonce

_RRQ: Final = struct.Struct("!BBH4s4s4sQ")
_RRP: Final = struct.Struct("!BBH4s4sQ")
_AUTH_HDR: Final = struct.Struct("!BBI")
_U32: Final = struct.Struct("!I")
_VENDOR: Final = struct.Struct("!IH")
_GRE_EXT: Final = struct.Struct("!BBHI")
_DYNHA: Final = struct.Struct("!BBB4s")

_ZERO: Final = b"\x00\x00\x00\x00"
_ONES: Final = b"\xff\xff\xff\xff"
_M32: Final = 0xFFFFFFFF
_VENDOR_3GPP2: Final = 5535
_CVSE_GRE_KEY: Final = 0x0401
_LONG: Final = frozenset({36, 37, 38, 48})

# Reply codes (P§1.9)
ACCEPTED = 0
ACCEPTED_NO_SIMULTANEOUS = 1
UNSPECIFIED = 128
ADMIN_PROHIBITED = 129
INSUFFICIENT_RESOURCES = 130
MN_AUTH_FAILED = 131
FA_AUTH_FAILED = 132
ID_MISMATCH = 133
POORLY_FORMED = 134
TOO_MANY_BINDINGS = 135
UNKNOWN_HA = 136
REVERSE_TUNNEL_UNAVAILABLE = 137
REVERSE_TUNNEL_MANDATORY = 138
ENCAP_UNAVAILABLE = 139
UNKNOWN_CVSE_MN = 140
UNKNOWN_CVSE_FA = 141
REDIRECT_HA = 143
MN_AAA_AUTH_FAILED = 144

# Counter names (CISCO-MOBILE-IP-MIB cmiHa*, and RFC 2006 MIP-MIB ha* names per code).
CODE_COUNTERS: Final[dict[int, str]] = {
    0: "haRegistrationAccepted",
    1: "haMultiBindUnsupported",
    128: "haReasonUnspecified",
    129: "haAdmProhibited",
    130: "haInsufficientResource",
    131: "haMobNodeFailedAuth",
    132: "haFANodeFailedAuth",
    133: "haIDMismatch",
    134: "haPoorlyFormedRequest",
    135: "haTooManyBindings",
    136: "haUnknownHA",
    137: "cmiHaReverseTunnelUnavailable",
    138: "cmiHaReverseTunnelBitNotSet",
    139: "cmiHaEncapUnavailable",
    140: "cmiHaUnknownCvseFromMn",
    141: "cmiHaUnknownCvseFromFa",
    143: "cmiHaRedirectedHa",
    144: "cmiHaMnAaaAuthFailures",
}


@dataclass(frozen=True, slots=True)
class RefreshBinding(InstallBinding):
    """A re-registration that changed only lifetime/Identification (sync it; no data plane)."""


@dataclass(frozen=True, slots=True)
class RestoreBinding(InstallBinding):
    """Install forwarding for a binding already known (activation; synced while active)."""


@dataclass(frozen=True, slots=True)
class WithdrawBinding(RemoveBinding):
    """Remove forwarding only (becoming standby); the binding stays in the table."""


def _mn_key(b: Binding) -> str:
    """The key of an MN's replay state (``ident_key`` of :meth:`HomeAgent.handle_datagram`):
    its NAI, or its home address without one."""
    return b.nai or b.home_addr


@dataclass(frozen=True, slots=True)
class HomeAgentSettings:
    """Everything the core needs (``mobileha.compose`` maps ``[home_agent]`` to it)."""

    address: str  # real unicast address
    ha_address: str | None = None  # address advertised in replies (HSRP VIP); default address
    port: int = 434
    max_lifetime: int = 36000
    max_bindings: int = 1_000_000
    home_prefix: str | None = None
    pool: str | None = None
    reverse_tunnel: bool = True
    reverse_tunnel_required: bool = False
    gre: bool = True
    minimal_encap: bool = True
    simultaneous_bindings: int = 5  # per MN; <= 1 means unsupported (code 1)
    trusted_slb: tuple[str, ...] = ()
    relay_vendor_id: int = slbtag.DEFAULT_VENDOR_ID
    redirect_ha: str | None = None  # RFC 4433: answer 143 naming this HA
    replay_tolerance: int = 7
    answer_duplicates: bool = False  # see check 3 in the module docstring
    local_addresses: tuple[str, ...] = field(default=())  # more of our own addresses

    @property
    def advertised(self) -> str:
        return self.ha_address or self.address


class _Deny(Exception):
    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


def _intern(s: str) -> str:
    return sys.intern(s)


# Actions are built on the hot path without the frozen-dataclass __init__ (which sets each
# field through object.__setattr__, several times slower); the objects are identical.
_new = object.__new__
_set_dst = Send.__dict__["dst"].__set__
_set_payload = Send.__dict__["payload"].__set__
_set_src = Send.__dict__["src"].__set__
_set_binding = InstallBinding.__dict__["binding"].__set__
_set_rbinding = RemoveBinding.__dict__["binding"].__set__


def _send(dst: tuple[str, int], payload: bytes, src: tuple[str, int]) -> Send:
    a: Send = _new(Send)
    _set_dst(a, dst)
    _set_payload(a, payload)
    _set_src(a, src)
    return a


def _install(cls: type[InstallBinding], b: Binding) -> Any:
    a = _new(cls)
    _set_binding(a, b)
    return a


def _remove(b: Binding) -> RemoveBinding:
    a: RemoveBinding = _new(RemoveBinding)
    _set_rbinding(a, b)
    return a


def _find_in(existing: Binding | list[Binding] | None, coa: str) -> Binding | None:
    """The binding of ``coa`` in a table index value (no second dict lookup)."""
    if existing is None:
        return None
    if isinstance(existing, list):
        for b in existing:
            if b.care_of == coa:
                return b
        return None
    return existing if existing.care_of == coa else None


class HomeAgent:
    """RFC 5944 home agent registration processing (sans-IO)."""

    def __init__(
        self,
        settings: HomeAgentSettings,
        sas: SecurityAssociations | None = None,
        *,
        slb_sas: dict[str, MobilitySA] | None = None,
        pool: AddressPool | None = None,
        active: bool = True,
    ) -> None:
        self.settings = s = settings
        self.sas = sas if sas is not None else SecurityAssociations()
        self.slb_sas = dict(slb_sas or {})
        self.table = BindingTable(s.max_bindings)
        self.active = active
        self.max_lifetime = s.max_lifetime
        self._ha = _intern(s.advertised)
        self._ha_b = inet_aton(self._ha)
        self._port = s.port
        self._trusted = frozenset(s.trusted_slb)
        self._simul = s.simultaneous_bindings
        self._prefix = ipaddress.IPv4Network(s.home_prefix) if s.home_prefix else None
        bcast = {"255.255.255.255"}
        if self._prefix is not None and self._prefix.prefixlen < 31:
            bcast.add(str(self._prefix.broadcast_address))
        self._broadcast = frozenset(bcast)
        if pool is None and (s.pool or s.home_prefix):
            exclude = [s.address, self._ha, *s.local_addresses]
            exclude += [sa.home_address for sa in self.sas.mn_sas() if sa.home_address]
            pool = AddressPool(s.pool or s.home_prefix or "", exclude)
        self.pool = pool
        self._nonces: dict[str, int] = {}
        self._ints: dict[int, int] = {}  # lifetimes and ports (<= 65536 values)
        # Identification of recently deleted bindings, by NAI and home address
        self._recent: dict[str, tuple[int, float]] = {}
        self._recent_q: deque[tuple[float, str]] = deque()
        tol = [s.replay_tolerance, *(sa.tolerance for sa in self.sas.mn_sas())]
        self._tomb_s = 2.0 * max(tol) + 2.0
        # counters
        self.by_code: dict[int, int] = {}
        self.drops: dict[str, int] = {}
        self.received = 0
        self.init_received = self.init_accepted = self.init_denied = 0
        self.rereg_received = self.rereg_accepted = self.rereg_denied = 0
        self.dereg_received = self.dereg_accepted = self.dereg_denied = 0
        self.duplicates = 0
        self.expired = 0
        self.on_drop: Callable[[str], None] | None = None  # e.g. a rate-limited logger

    # ------------------------------------------------------------------ counters

    def _drop(self, reason: str) -> list[Any]:
        d = self.drops
        d[reason] = d.get(reason, 0) + 1
        if self.on_drop is not None:
            self.on_drop(reason)
        return []

    def counters(self) -> dict[str, int]:
        """Every counter by its MIB-style name."""
        denied = sum(v for c, v in self.by_code.items() if c > 1)
        c = {
            "cmiHaRegTotalMobilityBindings": len(self.table),
            "cmiHaRegRequestsReceived": self.received,
            "cmiHaRegRequestsDenied": denied,
            "cmiHaRegRequestsDiscarded": sum(self.drops.values()),
            "cmiHaInitRegRequestsReceived": self.init_received,
            "cmiHaInitRegRequestsAccepted": self.init_accepted,
            "cmiHaInitRegRequestsDenied": self.init_denied,
            "cmiHaReRegRequestsReceived": self.rereg_received,
            "cmiHaReRegRequestsAccepted": self.rereg_accepted,
            "cmiHaReRegRequestsDenied": self.rereg_denied,
            "cmiHaDeRegRequestsReceived": self.dereg_received,
            "cmiHaDeRegRequestsAccepted": self.dereg_accepted,
            "cmiHaDeRegRequestsDenied": self.dereg_denied,
            "cmiHaEncapUnavailable": self.by_code.get(ENCAP_UNAVAILABLE, 0),
            "mobilehaHaDuplicateRequests": self.duplicates,
            "mobilehaHaExpiredBindings": self.expired,
        }
        for code, name in CODE_COUNTERS.items():
            c[name] = self.by_code.get(code, 0)
        if self.pool is not None:
            c["mobilehaHaPoolFree"] = self.pool.free
            c["mobilehaHaPoolAllocated"] = self.pool.allocated
        return c

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        return self.table.next_deadline()

    def on_timer(self, now: float) -> list[Any]:
        out: list[Any] = []
        for b in self.table.expire(now):
            self.expired += 1
            self._tombstone(b, now)
            self._release_if_unbound(b.home_addr)
            if self.active:
                out.append(RemoveBinding(b))
        self._prune_tombstones(now)
        return out

    def _tombstone(self, b: Binding, now: float) -> None:
        """Remember a deleted binding's Identification for a while, so a replay of a
        request accepted just before the deletion is still refused (the timestamp window
        alone would let it through for up to ``tolerance`` seconds)."""
        until = now + self._tomb_s
        recent = self._recent
        for key in (b.nai, b.home_addr):
            if key:
                prev = recent.get(key)
                ident = b.ident if prev is None or prev[0] < b.ident else prev[0]
                recent[key] = (ident, until)
                self._recent_q.append((until, key))
        self._prune_tombstones(now)

    def _prune_tombstones(self, now: float) -> None:
        q = self._recent_q
        recent = self._recent
        while q and q[0][0] <= now:
            _, key = q.popleft()
            t = recent.get(key)
            if t is not None and t[1] <= now:
                del recent[key]

    def _release_if_unbound(self, home_addr: str) -> None:
        pool = self.pool
        if pool is not None and self.table.lookup(home_addr) is None:
            pool.release(home_addr)

    # ------------------------------------------------------------------ redundancy

    def fit_dataplane(
        self, encaps: Collection[Encap], max_copies: int | None, max_bindings: int | None
    ) -> None:
        """Accept only what the data plane can carry: requests for an encapsulation not in
        ``encaps`` are denied with 139, more than ``max_copies`` simultaneous bindings are
        not granted (1: accepted with code 1, none), and the table holds at most
        ``max_bindings`` (then 130)."""
        s = self.settings
        self.settings = replace(
            s,
            gre=s.gre and Encap.GRE in encaps,
            minimal_encap=s.minimal_encap and Encap.MINIMAL in encaps,
        )
        if max_copies is not None:
            self._simul = min(self._simul, max_copies)
        if max_bindings is not None:
            self.table.max_bindings = min(self.table.max_bindings, max_bindings)

    def set_active(self, active: bool, now: float) -> list[Any]:
        """Become active (answer requests; install forwarding for every binding) or standby
        (silent; keep the bindings, remove their forwarding state)."""
        if active == self.active:
            return []
        self.active = active
        if active:
            expired = self.table.expire(now)
            for b in expired:
                self._release_if_unbound(b.home_addr)
            return [RestoreBinding(b) for b in self.table]
        return [WithdrawBinding(b) for b in self.table]

    def is_dynamic(self, home_addr: str) -> bool:
        """Was ``home_addr`` allocated from the pool (sync record flag, P§5.4)?"""
        return self.pool is not None and self.pool.is_allocated(home_addr)

    def nonce_of(self, b: Binding) -> int | None:
        """The replay nonce we issued last to ``b``'s MN (None: it does not use nonces)."""
        return self._nonces.get(_mn_key(b)) if self._nonces else None

    def apply_synced(
        self, b: Binding, now: float, dynamic: bool = False, nonce: int | None = None
    ) -> list[Any]:
        """Install a binding received from the redundancy peer (``b.expires`` on our clock);
        ``nonce``: the MN's replay nonce issued by the peer (P§5.4 [P] REC_NONCE)."""
        if nonce is not None:
            self._nonces[_mn_key(b)] = nonce
        if b.lifetime == 0xFFFF or b.expires == INFINITE:
            b.expires = INFINITE
        else:
            # The sender rounded the remaining lifetime up to whole seconds (P§5.4 record),
            # so round the deadline down here: rounding up again added up to 2 s per hop
            # (a standby showed 4 s left of a 3 s binding), and every bulk download after
            # a failover added another 2 s to bindings that were not renewed meanwhile.
            k = max(math.floor(b.expires), math.ceil(now))
            b.expires = self.table.deadline(float(k), 0)
        b.care_of = _intern(b.care_of)
        b.ha_addr = _intern(b.ha_addr)
        b.src_addr = _intern(b.src_addr)
        try:
            removed = self.table.add(b, replace=not (b.flags & FLAG_S))
        except TableFull:
            self._drop("sync-table-full")
            return []
        if dynamic and self.pool is not None:
            self.pool.mark(b.home_addr, b.nai)
        if not self.active:
            return []
        out: list[Any] = [WithdrawBinding(r) for r in removed if r.care_of != b.care_of]
        out.append(RestoreBinding(b))
        return out

    def delete_synced(
        self, home_addr: str, care_of: str | None = None, now: float = 0.0
    ) -> list[Any]:
        """Delete bindings the peer deleted (``care_of`` None or = home: all of them)."""
        if care_of is None or care_of == home_addr:
            gone = self.table.remove_home(home_addr)
        else:
            b = self.table.remove_key(home_addr, care_of)
            gone = [b] if b is not None else []
        for b in gone:
            self._tombstone(b, now)
        self._release_if_unbound(home_addr)
        return [WithdrawBinding(b) for b in gone] if self.active else []

    def load(self, bindings: Iterable[Binding], now: float) -> int:
        """Bulk insert (tests, benchmarks, bulk sync): returns how many were added."""
        n = 0
        for b in bindings:
            self.apply_synced(b, now)
            n += 1
        return n

    # ------------------------------------------------------------------ requests

    def handle_datagram(
        self,
        data: bytes,
        src_addr: str,
        src_port: int,
        dst_addr: str,
        now: float,
        wall_time: float,
    ) -> list[Any]:
        """Process one datagram received on the registration port."""
        if not self.active:
            return self._drop("standby")
        n = len(data)
        if n < 24:
            return self._drop("short" if n and data[0] == 1 else "not-request")
        if data[0] != 1:
            return self._drop("not-request")
        reply_to = (src_addr, src_port)
        fa_addr = src_addr
        if src_addr in self._trusted:
            vid = self.settings.relay_vendor_id
            slb_sa = self.slb_sas.get(src_addr)
            if slbtag.has_tag(data, vid) or slb_sa is not None:
                try:
                    if slb_sa is not None:
                        orig, oport, data = slbtag.decode(
                            data, slb_sa.auth, vendor_id=vid, spi=slb_sa.spi
                        )
                    else:
                        orig, oport, data = slbtag.decode(data, vendor_id=vid)
                except DecodeError as e:
                    return self._drop(e.reason)
                reply_to = (orig, oport)
                fa_addr = orig
                n = len(data)
                if n < 24:
                    return self._drop("short")
        self.received += 1
        _t, flags, life, hoa_b, ha_b, coa_b, ident = _RRQ.unpack_from(data)

        # --- walk the extensions (offsets only) -----------------------------------------
        off = 24
        nai_s = nai_e = 0
        mnha = aaa = faha = chal = -1
        chal_e = 0
        n_faha = 0
        gre_key: int | None = None
        gre_cvse = (0, 0)
        cvse_code = 0
        poorly = False
        while off < n:
            t = data[off]
            if t in _LONG:
                if off + 4 > n:
                    return self._drop("truncated-extension")
                ln = (data[off + 2] << 8) | data[off + 3]
                end = off + 4 + ln
                if end > n:
                    return self._drop("truncated-extension")
                if t == 48:
                    if ln == 4:
                        gre_key = _U32.unpack_from(data, off + 4)[0]
                    else:
                        poorly = True
                elif t == 36:
                    if data[off + 1] == 1 and mnha < 0 and aaa < 0:
                        aaa = off
                elif ln >= 6:  # CVSE 38 (37: old draft number)
                    vid, vtype = _VENDOR.unpack_from(data, off + 4)
                    if vid == _VENDOR_3GPP2 and vtype == _CVSE_GRE_KEY and ln == 10:
                        gre_key = _U32.unpack_from(data, off + 10)[0]
                        gre_cvse = (off, end)
                    elif not cvse_code:
                        cvse_code = UNKNOWN_CVSE_FA if (mnha >= 0 or aaa >= 0) else UNKNOWN_CVSE_MN
                else:
                    poorly = True
            else:
                if off + 2 > n:
                    return self._drop("truncated-extension")
                end = off + 2 + data[off + 1]
                if end > n:
                    return self._drop("truncated-extension")
                if t == 32:
                    if mnha < 0 and aaa < 0:
                        mnha = off
                elif t == 34:
                    n_faha += 1
                    faha = off
                elif t == 131:
                    if not nai_s:
                        nai_s, nai_e = off, end
                elif t == 132:
                    chal, chal_e = off, end
                elif t < 128 and t != 33:
                    return self._drop("unknown-critical-extension")
            off = end

        # --- 1. authorization-enabling extension and SA ---------------------------------
        auth_off = mnha if mnha >= 0 else aaa
        if auth_off < 0:
            return self._drop("missing-auth")
        nai: str | None = None
        if nai_s:
            try:
                nai = data[nai_s + 2 : nai_e].decode()
            except UnicodeDecodeError:
                return self._drop("bad-nai")
            if not nai:
                nai = None
        hoa = None if hoa_b == _ZERO else inet_ntoa(hoa_b)
        ident_key = nai if nai is not None else hoa
        if ident_key is None:
            return self._drop("no-identity")
        sas = self.sas
        if mnha >= 0:
            spi = _U32.unpack_from(data, mnha + 2)[0]
            sa = sas.mn(ident_key, spi)
            if sa is None and nai is not None and hoa is not None:
                sa = sas.mn(hoa, spi)
        else:
            spi = _U32.unpack_from(data, aaa + 4)[0] if aaa + 8 <= n else 0
            sa = sas.aaa(nai, spi) if nai is not None else None
        # FA identity and FA-HA rules (RFC 5944 §3.8.2.1 c/d) are needed for 131 too.
        fa_sa = sas.fa_any(fa_addr) if faha >= 0 or sas.has_fa(fa_addr) else None
        if faha >= 0 and fa_sa is None:
            return self._drop("fa-ha-without-sa")

        reply_sa = sa if (sa is not None and mnha >= 0) else None
        if sa is None:
            # The SPI selects no SA. RFC 5944 §3.8.2.1 a: no SA at all with this MN ->
            # silent discard; otherwise 131 authenticated with an SA the MN has (or, for
            # MN-AAA, 144 when a valid FA-HA vouches for the relaying FA).
            fa_ok = self._faha_ok(data, faha, n_faha, fa_addr)
            known = None
            if mnha >= 0:
                known = sas.mn_known(ident_key)
                if known is None and nai is not None and hoa is not None:
                    known = sas.mn_known(hoa)
                if known is None:
                    return self._drop("no-security-association")
            elif not fa_ok:
                return self._drop("no-security-association")
            return self._deny(
                MN_AUTH_FAILED if mnha >= 0 else MN_AAA_AUTH_FAILED,
                data,
                ident,
                hoa_b,
                nai_s,
                nai_e,
                known,
                fa_sa if fa_ok else None,
                reply_to,
                dst_addr,
                life,
                hoa,
                ident_key,
            )
        if mnha >= 0:
            if data[mnha + 1] != 20:
                ok = False
            else:
                ok = sa.verify(data[: mnha + 6], data[mnha + 6 : mnha + 22])
        else:
            ok = self._verify_aaa(sa, data, aaa, n, chal, chal_e)
        if not ok:
            fa_ok = self._faha_ok(data, faha, n_faha, fa_addr)
            if reply_sa is None and not fa_ok:
                return self._drop("auth-failed-no-reply")
            return self._deny(
                MN_AUTH_FAILED if mnha >= 0 else MN_AAA_AUTH_FAILED,
                data,
                ident,
                hoa_b,
                nai_s,
                nai_e,
                reply_sa,
                fa_sa if fa_ok else None,
                reply_to,
                dst_addr,
                life,
                hoa,
                ident_key,
            )

        # --- resolve the MN's home address ----------------------------------------------
        table = self.table
        mn_hoa = hoa
        existing: Binding | list[Binding] | None = None
        if mn_hoa is None:
            mn_hoa = sa.home_address
            if mn_hoa is None and nai is not None:
                # The SA remembers the address it was last bound to: one big-dict lookup
                # instead of two on the hot path (checked against the binding's NAI).
                h = sa.home_hint
                if h is not None:
                    v = table.lookup(h)
                    if v is not None and (v[0] if isinstance(v, list) else v).nai == nai:
                        mn_hoa, existing = h, v
                if mn_hoa is None:
                    mn_hoa = table.home_address_of(nai)
        if existing is None and mn_hoa is not None:
            existing = table.lookup(mn_hoa)

        # --- 3. duplicate of the accepted registration, then replay ---------------------
        nonce_sa = sa.replay == REPLAY_NONCE
        coa = inet_ntoa(coa_b)
        same_coa = _find_in(existing, coa)  # the binding this request would refresh
        if same_coa is not None and life:
            dup = same_coa
            if dup.ident == ident:
                self.duplicates += 1
            if dup.ident == ident and self.settings.answer_duplicates:
                rid = ident
                if nonce_sa:
                    rid = (self._nonces.get(ident_key, 0) << 32) | (ident & _M32)
                remaining = 0xFFFF if dup.expires == INFINITE else max(0, int(dup.expires - now))
                code = ACCEPTED_NO_SIMULTANEOUS if (flags & FLAG_S and self._simul <= 1) else 0
                return [
                    self._reply(
                        code,
                        remaining,
                        inet_aton(dup.home_addr),
                        rid,
                        data,
                        nai_s,
                        nai_e,
                        reply_sa,
                        fa_sa,
                        reply_to,
                        dst_addr,
                        gre_key,
                        gre_cvse,
                    )
                ]
        last: int | None = None
        if existing is not None:
            last = max(b.ident for b in existing) if isinstance(existing, list) else existing.ident
        elif self._recent:
            # the MN's bindings were just deleted: their last Identification still counts
            tomb = self._recent.get(ident_key)
            if tomb is None and mn_hoa is not None:
                tomb = self._recent.get(mn_hoa)
            if tomb is not None and tomb[1] > now:
                last = tomb[0]
        if nonce_sa:
            # RFC 5944 §5.7 (P§1.7), nonces: the high 32 bits must be the nonce we sent last;
            # every reply carries a fresh nonce and the request's low 32 bits.
            expected = self._nonces.get(ident_key)
            nn = new_nonce()
            self._nonces[ident_key] = nn
            rid = (nn << 32) | (ident & _M32)
            mismatch = expected is None or (ident >> 32) != expected or ident == last
        else:
            # RFC 5944 §5.7 (P§1.7), timestamps: within the tolerance of our clock and greater
            # than the last accepted one; a 133 carries our time and the request's low 32 bits.
            wall_ntp = (int(wall_time) + NTP_EPOCH_OFFSET) & _M32
            mismatch = abs((ident >> 32) - wall_ntp) > sa.tolerance or (
                last is not None and ident <= last
            )
            rid = (wall_ntp << 32) | (ident & _M32) if mismatch else ident
        if mismatch:
            return self._deny(
                ID_MISMATCH,
                data,
                rid,
                hoa_b,
                nai_s,
                nai_e,
                reply_sa,
                fa_sa if self._faha_ok(data, faha, n_faha, fa_addr) else None,
                reply_to,
                dst_addr,
                life,
                hoa,
                ident_key,
            )

        # --- 4. FA-HA ------------------------------------------------------------------
        if fa_sa is not None and life and not self._faha_ok(data, faha, n_faha, fa_addr):
            return self._deny(
                FA_AUTH_FAILED,
                data,
                rid,
                hoa_b,
                nai_s,
                nai_e,
                reply_sa,
                None,
                reply_to,
                dst_addr,
                life,
                hoa,
                ident_key,
            )
        if fa_sa is not None and faha >= 0:
            fa_sa = sas.fa(fa_addr, _U32.unpack_from(data, faha + 2)[0]) or fa_sa

        # --- 5. policy -------------------------------------------------------------------
        try:
            s = self.settings
            if dst_addr in self._broadcast:
                raise _Deny(UNKNOWN_HA)
            if ha_b in (_ZERO, _ONES):  # RFC 4433 dynamic HA assignment
                if nai is None:
                    raise _Deny(POORLY_FORMED)
                if s.redirect_ha is not None and life:
                    extra = _DYNHA.pack(139, 5, 2, inet_aton(s.redirect_ha))
                    self._count_denied(REDIRECT_HA, life, existing)
                    return [
                        self._reply(
                            REDIRECT_HA,
                            0,
                            hoa_b,
                            rid,
                            data,
                            nai_s,
                            nai_e,
                            reply_sa,
                            fa_sa,
                            reply_to,
                            dst_addr,
                            None,
                            (0, 0),
                            extra_mn=extra,
                        )
                    ]
            if poorly or (life and coa == "0.0.0.0"):
                raise _Deny(POORLY_FORMED)
            # 129: the home address must be the MN's (static SA address, or its pool address)
            if hoa is not None:
                if sa.home_address is not None and sa.home_address != hoa:
                    raise _Deny(ADMIN_PROHIBITED)
                if sa.home_address is None and existing is None:
                    pool = self.pool
                    if pool is not None and hoa in pool:
                        # a free pool address (e.g. its own, after its binding lapsed); not
                        # one allocated to another MN, nor an excluded (static) address
                        if not pool.is_free(hoa) and not (
                            nai is not None and hoa in self.table.home_addresses_of(nai)
                        ):
                            raise _Deny(ADMIN_PROHIBITED)
                    elif self._prefix is not None and life:
                        raise _Deny(ADMIN_PROHIBITED)
                elif (
                    sa.home_address is None
                    and existing is not None
                    and nai is not None
                    and sa.nai is not None
                ):
                    b0 = existing[0] if isinstance(existing, list) else existing
                    if b0.nai is not None and b0.nai != nai:
                        raise _Deny(ADMIN_PROHIBITED)
            elif nai is None:
                raise _Deny(POORLY_FORMED)
            if not life:
                return self._deregister(
                    data,
                    coa,
                    rid,
                    hoa_b,
                    nai_s,
                    nai_e,
                    reply_sa,
                    fa_sa,
                    reply_to,
                    dst_addr,
                    mn_hoa,
                    ident,
                    now,
                )
            if cvse_code:
                raise _Deny(cvse_code)
            if flags & FLAG_T:
                if not s.reverse_tunnel:
                    raise _Deny(REVERSE_TUNNEL_UNAVAILABLE)
            elif s.reverse_tunnel_required:
                raise _Deny(REVERSE_TUNNEL_MANDATORY)
            m, g = flags & FLAG_M, flags & FLAG_G
            if m and g:
                raise _Deny(ENCAP_UNAVAILABLE)
            if m:
                if not s.minimal_encap or gre_key is not None:
                    raise _Deny(ENCAP_UNAVAILABLE)
                encap = Encap.MINIMAL
            elif g or gre_key is not None:
                if not s.gre:
                    raise _Deny(ENCAP_UNAVAILABLE)
                encap = Encap.GRE
            else:
                encap = Encap.IPIP
            simultaneous = bool(flags & FLAG_S) and self._simul > 1
            table = self.table
            if (
                simultaneous
                and isinstance(existing, list)
                and len(existing) >= self._simul
                and not any(b.care_of == coa for b in existing)
            ):
                raise _Deny(TOO_MANY_BINDINGS)
            # grant
            limit = self.max_lifetime
            if sa.max_lifetime is not None and sa.max_lifetime < limit:
                limit = sa.max_lifetime
            granted = life if life < limit else limit
            ints = self._ints
            granted = ints.setdefault(granted, granted)  # one int object per value (memory)
            expires = table.deadline(now, granted)
            allocated = False
            if mn_hoa is None:
                pool = self.pool
                mn_hoa = pool.allocate(nai) if pool is not None else None
                if mn_hoa is None:
                    raise _Deny(INSUFFICIENT_RESOURCES)
                allocated = True
            elif existing is None:
                pool = self.pool
                if pool is not None and sa.home_address is None and mn_hoa in pool:
                    pool.mark(mn_hoa, nai)
            out: list[Any] = []
            b = same_coa
            src_addr, src_port = reply_to
            src_port = ints.setdefault(src_port, src_port)
            if (
                b is not None
                and b.flags == flags
                and b.encap == encap
                and b.gre_key == gre_key
                and b.src_addr == src_addr
                and b.src_port == src_port
                and b.nai == nai
            ):
                table.refresh(b, expires, ident=ident, lifetime=granted)
                if not simultaneous and isinstance(existing, list):
                    for x in existing:
                        if x is not b:
                            table.remove(x)
                            out.append(RemoveBinding(x))
                out.append(_install(RefreshBinding, b))
                if hoa is None:
                    sa.home_hint = b.home_addr
            else:
                nb = Binding(
                    mn_hoa,
                    _intern(coa),
                    self._ha,
                    granted,
                    expires,
                    ident,
                    flags,
                    encap,
                    gre_key,
                    nai,
                    _intern(src_addr),
                    src_port,
                )
                try:
                    removed = table.add(nb, replace=not simultaneous)
                except TableFull:
                    if allocated and self.pool is not None:
                        self.pool.release(mn_hoa)
                    raise _Deny(INSUFFICIENT_RESOURCES) from None
                for r in removed:
                    if r.care_of != coa:
                        out.append(RemoveBinding(r))
                out.append(_install(InstallBinding, nb))
                if hoa is None:
                    sa.home_hint = nb.home_addr
            code = ACCEPTED_NO_SIMULTANEOUS if (flags & FLAG_S and self._simul <= 1) else ACCEPTED
            if existing is None:
                self.init_received += 1
                self.init_accepted += 1
            else:
                self.rereg_received += 1
                self.rereg_accepted += 1
            out.append(
                self._reply(
                    code,
                    granted,
                    inet_aton(mn_hoa) if hoa is None else hoa_b,
                    rid,
                    data,
                    nai_s,
                    nai_e,
                    reply_sa,
                    fa_sa,
                    reply_to,
                    dst_addr,
                    gre_key,
                    gre_cvse,
                )
            )
            return out
        except _Deny as d:
            return self._deny(
                d.code,
                data,
                rid,
                hoa_b,
                nai_s,
                nai_e,
                reply_sa,
                fa_sa,
                reply_to,
                dst_addr,
                life,
                hoa,
                ident_key,
            )

    def _deregister(
        self,
        data: bytes,
        coa: str,
        rid: int,
        hoa_b: bytes,
        nai_s: int,
        nai_e: int,
        reply_sa: MobilitySA | None,
        fa_sa: MobilitySA | None,
        reply_to: tuple[str, int],
        dst_addr: str,
        mn_hoa: str | None,
        ident: int,
        now: float,
    ) -> list[Any]:
        out: list[Any] = []
        self.dereg_received += 1
        self.dereg_accepted += 1
        reply_hoa = hoa_b
        if mn_hoa is not None:
            table = self.table
            if coa == mn_hoa:
                gone = table.remove_home(mn_hoa)
            else:
                b = table.remove_key(mn_hoa, coa)
                gone = [b] if b is not None else []
            out.extend(RemoveBinding(b) for b in gone)
            for b in gone:
                if ident > b.ident:
                    b.ident = ident  # the deregistration is the MN's latest accepted request
                self._tombstone(b, now)
            self._release_if_unbound(mn_hoa)
            reply_hoa = inet_aton(mn_hoa)
        out.append(
            self._reply(
                ACCEPTED,
                0,
                reply_hoa,
                rid,
                data,
                nai_s,
                nai_e,
                reply_sa,
                fa_sa,
                reply_to,
                dst_addr,
                None,
                (0, 0),
            )
        )
        return out

    # ------------------------------------------------------------------ helpers

    def _faha_ok(self, data: bytes, faha: int, n_faha: int, fa_addr: str) -> bool:
        if faha < 0 or n_faha != 1 or data[faha + 1] != 20:
            return False
        sa = self.sas.fa(fa_addr, _U32.unpack_from(data, faha + 2)[0])
        if sa is None:
            return False
        return sa.verify(data[: faha + 6], data[faha + 6 : faha + 22])

    def _verify_aaa(
        self, sa: MobilitySA, data: bytes, aaa: int, n: int, chal: int, chal_e: int
    ) -> bool:
        ln = (data[aaa + 2] << 8) | data[aaa + 3]
        if ln != 20:
            return False
        covered = data[: aaa + 8]
        got = data[aaa + 8 : aaa + 24]
        if sa.spi == CHAP_SPI:
            challenge = data[chal + 2 : chal_e] if chal >= 0 else b""
            return hmac.compare_digest(mn_aaa_chap_authenticator(sa.key, challenge, covered), got)
        return sa.verify(covered, got)

    def _count_denied(self, code: int, life: int, existing: Binding | list[Binding] | None) -> None:
        if not life:
            self.dereg_received += 1
            self.dereg_denied += 1
        elif existing is None:
            self.init_received += 1
            self.init_denied += 1
        else:
            self.rereg_received += 1
            self.rereg_denied += 1

    def _deny(
        self,
        code: int,
        data: bytes,
        rid: int,
        hoa_b: bytes,
        nai_s: int,
        nai_e: int,
        reply_sa: MobilitySA | None,
        fa_sa: MobilitySA | None,
        reply_to: tuple[str, int],
        dst_addr: str,
        life: int,
        hoa: str | None,
        ident_key: str,
    ) -> list[Any]:
        existing = self.table.lookup(hoa) if hoa is not None else None
        if existing is None and hoa is None and ident_key:
            h = self.table.home_address_of(ident_key)
            existing = self.table.lookup(h) if h is not None else None
        self._count_denied(code, life, existing)
        return [
            self._reply(
                code,
                0,
                hoa_b,
                rid,
                data,
                nai_s,
                nai_e,
                reply_sa,
                fa_sa,
                reply_to,
                dst_addr,
                None,
                (0, 0),
            )
        ]

    def _reply(
        self,
        code: int,
        lifetime: int,
        hoa_b: bytes,
        rid: int,
        data: bytes,
        nai_s: int,
        nai_e: int,
        mn_sa: MobilitySA | None,
        fa_sa: MobilitySA | None,
        reply_to: tuple[str, int],
        dst_addr: str,
        gre_key: int | None,
        gre_cvse: tuple[int, int],
        extra_mn: bytes = b"",
    ) -> Send:
        """Build a reply (P§1.3; P§1.6 order): fixed part, extensions for the MN (NAI copied
        back, RFC 4433 redirect), MN-HA, extensions for the FA (GRE key ext 48 and the
        3GPP2 GRE key CVSE echoed), FA-HA."""
        bc = self.by_code
        bc[code] = bc.get(code, 0) + 1
        msg = _RRP.pack(3, code, lifetime, hoa_b, self._ha_b, rid)
        if nai_s:
            msg += data[nai_s:nai_e]
        if extra_mn:
            msg += extra_mn
        if mn_sa is not None:
            msg += mn_sa.hdr_mnha
            msg += mn_sa.compute(msg)
        if code <= 1:
            if gre_cvse[1]:
                msg += data[gre_cvse[0] : gre_cvse[1]]
            elif gre_key is not None:
                msg += _GRE_EXT.pack(48, 0, 4, gre_key)
        if fa_sa is not None:
            msg += fa_sa.hdr_faha
            msg += fa_sa.compute(msg)
        src = dst_addr if dst_addr not in self._broadcast else self._ha
        return _send(reply_to, msg, (src, self._port))


__all__ = [
    "CODE_COUNTERS",
    "HomeAgent",
    "HomeAgentSettings",
    "RefreshBinding",
    "RestoreBinding",
    "WithdrawBinding",
]
