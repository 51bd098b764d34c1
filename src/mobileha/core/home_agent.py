"""The home agent's registration processing, sans-IO (RFC 5944 §3.8; P§1.7-1.9, P§2.2-2.6).

``HomeAgent.receive_datagram(data, src, dst, now)`` takes one UDP payload received on port
434 from ``src`` at our address ``dst`` (``(address, port)`` pairs) and returns actions: the
reply (:class:`Send`, from the address the request was sent to, P§1.1) and one action per
binding change (:class:`InstallBinding` / :class:`RemoveBinding`). ``now`` is the monotonic
clock of the binding lifetimes; the timestamp replay check uses ``now + unix_offset`` (Unix
time), the offset being set by the adapter. :meth:`HomeAgent.handle_timer` expires bindings,
:meth:`HomeAgent.get_timer` says when it is next due. Replay nonces come from the injected
``random_bytes``.

The request is read once (:func:`mobileha.wire.mip.parse_request`) and goes through
:data:`HomeAgent.CHECKS`, one method per rule, in the order of RFC 5944 §3.8.2.1 (P§1.8);
the first that answers ends it:

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
   configured), 134 (poorly formed), 129 (home address not allowed for this MN), then a
   deregistration is done; 140/141 (unknown CVSE from MN / FA), 137/138 (reverse tunnel),
   139 (encapsulation or GRE key extension), 135 (too many simultaneous bindings), 130
   (table full or pool exhausted).

4b. Extensions no verified authenticator covers (RFC 5944 §3.5.1) are ignored: the GRE
   key, CVSEs and the lengths the later steps check are read from the covered part only
   (:meth:`HomeAgent._check_unprotected`).

Registration revocation (RFC 3543, :mod:`mobileha.core.revocation`), with
``revocation = True``: a Revocation Support extension from an FA we share an FA-HA SA with,
covered by its verified FA-HA authenticator, makes revocation negotiated for the binding
(step :meth:`HomeAgent._negotiate_revocation`; the accepted reply carries ours before
FA-HA). The home agent then revokes the binding at its FA when it goes away other than by
expiry or by a deregistration through that FA: replaced by a registration through another
FA or care-of address (I = 0: the MN is elsewhere), deregistered by the MN from home
(I = 0), cleared by the operator (:meth:`HomeAgent.clear`, I = 1 when negotiated). A
revocation from the FA removes the binding and is acknowledged. Revocations are
retransmitted until acknowledged and counted (``mobilehaHaRevocation*``).

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

Hot path: one walk over the extensions records offsets, only the values needed are
sliced, SAs hold pre-keyed authenticators, the reply is built from raw bytes of the
request and the actions without the dataclass ``__init__``. No logging per request.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import struct
import sys
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from hmac import compare_digest
from socket import inet_aton, inet_ntoa
from typing import Any, Final

from mobileha.core.actions import Addr, InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_D, FLAG_G, FLAG_M, FLAG_S, FLAG_T, Binding, Encap
from mobileha.core.bindings import INFINITE, BindingTable, TableFull, no_holder
from mobileha.core.pool import AddressPool
from mobileha.core.revocation import (
    I_NEGOTIATED,
    NEGOTIATED,
    REV_I,
    SUPPORT_I,
    Revocations,
    RevocationSA,
    negotiated_state,
    peer_timestamp,
    support_ext,
)
from mobileha.core.security import (
    REPLAY_NONCE,
    SOURCE_AAA,
    MobilitySA,
    SecurityAssociations,
)
from mobileha.core.subscribers import (
    FetchSa,
    Parked,
    ReloadSubscribers,
    SaFailed,
    SaFetched,
    Subscribers,
    SubscriberSettings,
)
from mobileha.wire import IP_STR_CACHE, DecodeError, ip_str_cached, slbtag
from mobileha.wire.auth import CHAP_SPI, NTP_EPOCH_OFFSET, mn_aaa_chap_authenticator
from mobileha.wire.mip import (
    DYNHA_REDIRECTED,
    EXT_DYNAMIC_HA,
    EXT_FA_HA,
    EXT_GRE_KEY,
    REPLY_CODE_INFO,
    REVOCATION,
    REVOCATION_ACK,
    RRP,
    RRQ,
    ParsedRequest,
    RegistrationRevocation,
    ReplyCode,
    RevocationAck,
    parse_request,
)

_RRP: Final = struct.Struct("!BBH4s4sQ")
_U32: Final = struct.Struct("!I")
_GRE_EXT: Final = struct.Struct("!BBHI")
_DYNHA: Final = struct.Struct("!BBB4s")
_REVSUP: Final = struct.Struct("!HI")  # Revocation Support: flags, timestamp

_ZERO: Final = b"\x00\x00\x00\x00"
_ONES: Final = b"\xff\xff\xff\xff"
_M32: Final = 0xFFFFFFFF
_COA: Final = IP_STR_CACHE  # care-of addresses repeat: one cached str per address
_IPIP: Final = Encap.IPIP  # enum members as module globals for the hot path
_GRE: Final = Encap.GRE
_MINIMAL: Final = Encap.MINIMAL

# The reply codes of the checks (wire.mip.ReplyCode), as module globals for the hot path.
ACCEPTED: Final = ReplyCode.ACCEPTED
ACCEPTED_NO_SIMULTANEOUS: Final = ReplyCode.ACCEPTED_NO_SIMULTANEOUS
ADMIN_PROHIBITED: Final = ReplyCode.HA_ADMIN_PROHIBITED
INSUFFICIENT_RESOURCES: Final = ReplyCode.HA_INSUFFICIENT_RESOURCES
MN_AUTH_FAILED: Final = ReplyCode.HA_MN_AUTH_FAILED
FA_AUTH_FAILED: Final = ReplyCode.HA_FA_AUTH_FAILED
ID_MISMATCH: Final = ReplyCode.HA_ID_MISMATCH
POORLY_FORMED: Final = ReplyCode.HA_POORLY_FORMED_REQUEST
TOO_MANY_BINDINGS: Final = ReplyCode.HA_TOO_MANY_BINDINGS
UNKNOWN_HA: Final = ReplyCode.HA_UNKNOWN_HA
REVERSE_TUNNEL_UNAVAILABLE: Final = ReplyCode.HA_REVERSE_TUNNEL_UNAVAILABLE
REVERSE_TUNNEL_MANDATORY: Final = ReplyCode.HA_REVERSE_TUNNEL_MANDATORY
ENCAP_UNAVAILABLE: Final = ReplyCode.HA_ENCAP_UNAVAILABLE
UNKNOWN_CVSE_MN: Final = ReplyCode.HA_UNKNOWN_CVSE_MN
UNKNOWN_CVSE_FA: Final = ReplyCode.HA_UNKNOWN_CVSE_FA
REDIRECT_HA: Final = ReplyCode.HA_REDIRECT
MN_AAA_AUTH_FAILED: Final = ReplyCode.HA_MN_AAA_AUTH_FAILED

# The MIB counter of every code a home agent counts (wire.mip.REPLY_CODE_INFO).
CODE_COUNTERS: Final[dict[int, str]] = {
    c: i.counter for c, i in REPLY_CODE_INFO.items() if i.counter is not None
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
    """The key of an MN's replay state (``_Request.key``): its NAI, or its home address
    without one."""
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
    subscribers: SubscriberSettings = field(default_factory=SubscriberSettings)  # AAA SAs
    # RFC 3543 registration revocation (module docstring)
    revocation: bool = False
    revocation_i_bit: bool = True  # accept the FA's offer to let us decide on informing
    revocation_retransmit_s: float = 1.0
    revocation_retries: int = 3

    @property
    def advertised(self) -> str:
        return self.ha_address or self.address


class _Request(ParsedRequest):
    """A registration request going through the checks: the parse, and what the checks
    establish on the way, which is also what the reply is built from."""

    __slots__ = (
        "coa",
        "encap",
        "existing",
        "fa_sa",
        "home",
        "key",
        "local",
        "mn_hoa",
        "mn_nai",
        "reply_sa",
        "reply_to",
        "rev_reply",
        "revocation",
        "rid",
        "sa",
        "same_coa",
    )

    reply_to: Addr  # where the reply goes (the FA or co-located MN, or a relay tag's origin)
    local: str  # our address the request was sent to
    rid: int  # the reply's Identification
    mn_nai: str | None
    mn_hoa: str | None  # the request's home address (None: 0.0.0.0)
    key: str  # the MN's identity: its NAI, else its home address
    sa: MobilitySA  # the MN-HA (or MN-AAA) SA the SPI selected
    reply_sa: MobilitySA | None  # authenticates the reply to the MN
    fa_sa: MobilitySA | None  # authenticates the reply to the FA
    home: str | None  # the MN's home address (None: to be allocated)
    existing: Binding | list[Binding] | None  # its bindings
    coa: str
    same_coa: Binding | None  # its binding of this care-of address
    encap: Encap
    revocation: int  # RFC 3543 state negotiated for the binding (0: none)
    rev_reply: bytes  # our Revocation Support extension for the reply (with revocation)


def _intern(s: str) -> str:
    return sys.intern(s)


# Actions are built on the hot path without the frozen-dataclass __init__ (which sets each
# field through object.__setattr__, several times slower); the objects are identical.
_new = object.__new__
_set_dst = Send.__dict__["dst"].__set__
_set_payload = Send.__dict__["payload"].__set__
_set_src = Send.__dict__["src"].__set__
_set_binding = InstallBinding.__dict__["binding"].__set__


def _restores(bindings: Iterable[Binding]) -> list[Any]:
    """A ``RestoreBinding`` per binding (a takeover: the whole table)."""
    out: list[Any] = []
    for b in bindings:
        a = _new(RestoreBinding)
        _set_binding(a, b)
        out.append(a)
    return out


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
        unix_offset: float = 0.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.settings = s = settings
        # Unix time minus ``now`` (the monotonic clock): timestamps are checked against
        # ``now + unix_offset``. The adapter sets it and refreshes it as the clocks drift.
        self._unix_offset = unix_offset
        self._random = random_bytes  # replay nonces (RFC 5944 §5.7)
        self.sas = sas if sas is not None else SecurityAssociations()
        self._mn_sa = self.sas.mn_by_key  # (NAI or home address, SPI) -> MN-HA SA
        self._fa_sa = self.sas.fa_by_address  # FA address -> an FA-HA SA with it
        self.slb_sas = dict(slb_sas or {})
        self.table = BindingTable(s.max_bindings)
        self._own_index = False  # the NAI index of bound MNs is on self.sas's SAs
        self._attach_sas(self.sas)
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
        # SAs from AAA: fetches in flight, requests waiting for them, the cache
        self.subs = Subscribers(self.sas, s.subscribers, bound=self._nai_bound)
        self._subs_timer = False  # set once the AAA side has timers (fetch, cache)
        self._rerunning = False  # running requests that waited for their SA from AAA
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
        self.unprotected_ignored = 0  # requests with extensions no authenticator covered
        self.cleared = 0  # bindings removed by an operator command
        self.revoked_by_fa = 0  # bindings removed by an FA's revocation (RFC 3543)
        self.on_drop: Callable[[str], None] | None = None  # e.g. a rate-limited logger
        self.revocations = Revocations(
            home=True,
            sa_for=self._revocation_sa,
            retransmit_s=s.revocation_retransmit_s,
            retries=s.revocation_retries,
            port=s.port,
        )
        self.revocations.unix_offset = unix_offset

    @property
    def unix_offset(self) -> float:
        """Unix time minus ``now`` (replay timestamps, RFC 3543 identifiers)."""
        return self._unix_offset

    @unix_offset.setter
    def unix_offset(self, value: float) -> None:
        self._unix_offset = value
        self.revocations.unix_offset = value

    def _revocation_sa(self, addr: str) -> RevocationSA | None:
        return self.sas.fa_any(addr)

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
            "mobilehaHaUnprotectedExtensionsIgnored": self.unprotected_ignored,
            "mobilehaHaClearedBindings": self.cleared,
        }
        rs = self.revocations.stats
        c.update(
            mobilehaHaRevocationsSent=rs.sent,
            mobilehaHaRevocationsRetransmitted=rs.retransmitted,
            mobilehaHaRevocationsAcknowledged=rs.acknowledged,
            mobilehaHaRevocationsUnacknowledged=rs.unacknowledged,
            mobilehaHaRevocationsReceived=rs.received,
            mobilehaHaRevocationsBadAuth=rs.bad_auth,
            mobilehaHaRevocationsReplayed=rs.replayed,
            mobilehaHaRevokedByFa=self.revoked_by_fa,
        )
        for code, name in CODE_COUNTERS.items():
            c[name] = self.by_code.get(code, 0)
        if self.pool is not None:
            c["mobilehaHaPoolFree"] = self.pool.free
            c["mobilehaHaPoolAllocated"] = self.pool.allocated
        return c

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due (the earliest binding expiry, AAA fetch
        deadline or cache expiry, or a revocation to retransmit)."""
        t = self.table.next_deadline()
        if self._subs_timer:
            u = self.subs.get_timer()
            if u is not None and (t is None or u < t):
                t = u
        r = self.revocations.get_timer()
        if r is not None and (t is None or r < t):
            return r
        return t

    def handle_timer(self, now: float) -> list[Any]:
        """Expire the bindings whose lifetime ran out (RFC 5944 §3.8.2.2); AAA fetches
        without an answer by their deadline fail (their requests are discarded) and cached
        SAs past their time go (:mod:`mobileha.core.subscribers`); retransmit revocations."""
        out: list[Any] = list(self.revocations.handle_timer(now))
        if self._subs_timer:
            for _nai, parked in self.subs.handle_timer(now):
                for _ in parked:
                    self._drop("aaa-timeout")
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
            return _restores(self.table)
        return [WithdrawBinding(b) for b in self.table]

    def reconfigure(
        self,
        settings: HomeAgentSettings,
        sas: SecurityAssociations | None = None,
        slb_sas: dict[str, MobilitySA] | None = None,
    ) -> None:
        """Reload: new settings and security associations, same bindings, replay state and
        pool allocations. The addresses and port the home agent serves (``address``,
        ``ha_address``, ``port``, ``home_prefix``) need a restart: they must not change
        here. A new pool (or new static home addresses inside it) rebuilds the pool with
        the allocations of the bound addresses."""
        s = self.settings
        fixed = ("address", "advertised", "port", "home_prefix", "local_addresses")
        for name in fixed:
            if getattr(settings, name) != getattr(s, name):
                raise ValueError(f"{name} cannot change without a restart")
        statics = {sa.home_address for sa in self.sas.mn_sas() if sa.home_address}
        self.settings = settings
        self.max_lifetime = settings.max_lifetime
        self._trusted = frozenset(settings.trusted_slb)
        self._simul = settings.simultaneous_bindings
        self.table.max_bindings = settings.max_bindings
        if sas is not None:
            self.subs.reload(sas)  # SAs fetched from AAA stay where AAA still serves the NAI
            old, self.sas = self.sas, sas
            self._attach_sas(sas, old)
            self._mn_sa = sas.mn_by_key
            self._fa_sa = sas.fa_by_address
        if slb_sas is not None:
            self.slb_sas = dict(slb_sas)
        tol = [settings.replay_tolerance, *(sa.tolerance for sa in self.sas.mn_sas())]
        self._tomb_s = 2.0 * max(tol) + 2.0
        prefix = settings.pool or settings.home_prefix
        pool = self.pool
        new_statics = {sa.home_address for sa in self.sas.mn_sas() if sa.home_address}
        if pool is not None and prefix and (settings.pool != s.pool or new_statics != statics):
            exclude = [settings.address, self._ha, *settings.local_addresses, *new_statics]
            self.pool = pool.rebuilt(prefix, exclude)

    def _attach_sas(
        self, sas: SecurityAssociations, old: SecurityAssociations | None = None
    ) -> None:
        """Keep the NAI index of bound MNs on their own SAs (``MobilitySA.bound``), if no
        other home agent's table does so already with these SA objects; with ``old`` (a
        reload), the index entries held by ``old``'s SAs move to where ``sas`` says."""
        table = self.table
        if sas.links_owner is None or sas.links_owner is table:
            sas.links_owner = table
            sas.released = table.relink
            table.holder_of = sas.nai_holder
            self._own_index = True
        else:
            self._own_index = False
            table.holder_of = no_holder
        if old is not None and old is not sas and old.links_owner is table:
            old.links_owner = old.released = None
            for sa in old.holders():
                assert sa.nai is not None and sa.bound is not None
                if table.holder_of(sa.nai) is not sa:
                    bound, sa.bound = sa.bound, None
                    table.relink(sa.nai, bound)

    def is_dynamic(self, home_addr: str) -> bool:
        """Was ``home_addr`` allocated from the pool (sync record flag, P§5.4)?"""
        return self.pool is not None and self.pool.is_allocated(home_addr)

    def nonce_of(self, b: Binding) -> int | None:
        """The replay nonce we issued last to ``b``'s MN (None: it does not use nonces)."""
        return self._nonces.get(_mn_key(b)) if self._nonces else None

    def apply_synced(
        self,
        b: Binding,
        now: float,
        dynamic: bool = False,
        nonce: int | None = None,
        sa: MobilitySA | None = None,
    ) -> list[Any]:
        """Install a binding received from the redundancy peer (``b.expires`` on our clock);
        ``nonce``: the MN's replay nonce issued by the peer (P§5.4 [P] REC_NONCE); ``sa``:
        the MN's SA from AAA (P§5.4 [P] REC_SA), cached as if we had fetched it."""
        return self.apply_synced_all(((b, dynamic, nonce, sa),), now)

    def apply_synced_all(
        self,
        items: Iterable[tuple[Binding, bool, int | None, MobilitySA | None]],
        now: float,
    ) -> list[Any]:
        """:meth:`apply_synced` of each ``(binding, dynamic, nonce, sa)`` in order (the
        items of a sync peer's ``ApplyBindings``: a bulk download's records arrive about 24
        at a time, most with the same deadline)."""
        out: list[Any] = []
        table = self.table
        pool = self.pool
        intern = sys.intern
        ceil_now = math.ceil(now)
        last_in = last_out = INFINITE  # the previous deadline rounded (most repeat)
        bs: list[Binding] = []
        marks: list[Binding] = []  # dynamic home addresses
        for b, dynamic, nonce, sa in items:
            if nonce is not None:
                self._nonces[_mn_key(b)] = nonce
            if sa is not None and b.nai:
                self._subs_timer = True
                self.subs.install_synced(sa, now)
            expires = b.expires
            if b.lifetime == 0xFFFF or expires == INFINITE:
                b.expires = INFINITE
            elif expires == last_in:
                b.expires = last_out
            else:
                # The sender rounded the remaining lifetime up to whole seconds (P§5.4
                # record), so the deadline is rounded down here: rounding up again would
                # lengthen a binding by up to 2 s at each hop (each bulk download, each
                # takeover).
                k = max(math.floor(expires), ceil_now)
                b.expires = last_out = table.deadline(float(k), 0)
                last_in = expires
            b.care_of = intern(b.care_of)
            b.ha_addr = intern(b.ha_addr)
            b.src_addr = intern(b.src_addr)
            bs.append(b)
            if dynamic:
                marks.append(b)
        # the run's bindings of home addresses without one (a download's records) in one
        # pass, the others as single additions (replacements, simultaneous bindings)
        rest = table.add_new(bs)
        added = bs[: len(bs) - len(rest)]  # new home addresses: nothing replaced
        replaced: list[tuple[Binding, list[Binding]]] = []  # the others, what each removed
        refused: set[int] = set()  # ids of the bindings TableFull refused
        add = table.add
        for b in rest:
            try:
                replaced.append((b, add(b, replace=not (b.flags & FLAG_S))))
            except TableFull:
                self._drop("sync-table-full")
                refused.add(id(b))
        if pool is not None:
            for b in marks:
                if id(b) not in refused:
                    pool.mark(b.home_addr, b.nai)
        if self.active:
            out += [RestoreBinding(b) for b in added]
            for b, removed in replaced:
                out += [WithdrawBinding(r) for r in removed if r.care_of != b.care_of]
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

    # ------------------------------------------------------------------ revocation

    def _revoke_moved(self, b: Binding, via: str, now: float) -> list[Any]:
        """RFC 3543 §4.2.2.1: ``b`` went because its MN registered (or deregistered) through
        ``via``, not through the FA that holds ``b``: revoke it there, without asking that
        FA to tell the MN (it is elsewhere)."""
        fa = b.src_addr
        if not fa or fa == via or not b.revocation & NEGOTIATED:
            return []
        return self._revoke(b, False, now)

    def _revoke(self, b: Binding, inform: bool, now: float) -> list[Any]:
        return list(
            self.revocations.revoke(
                (b.src_addr, b.src_port),
                b.home_addr,
                b.ha_addr,
                b.care_of,
                inform=inform and bool(b.revocation & I_NEGOTIATED),
                expires=b.expires,
                now=now,
                src=(b.ha_addr, self._port),
            )
        )

    def clear(
        self,
        now: float,
        *,
        home_addr: str | None = None,
        nai: str | None = None,
        everything: bool = False,
    ) -> list[Any]:
        """Operator command (IOS ``clear ip mobile binding``): delete the bindings of one
        home address, of one NAI, or all of them; each one negotiated for revocation is
        revoked at its FA, asking it to tell the MN when the I bit was negotiated (RFC 3543
        §4.2.2.1). Returns the ``RemoveBinding`` actions (the coordinator synchronises them
        to the standby) and the revocations. Nothing while standby."""
        if not self.active:
            return []
        table = self.table
        if everything:
            homes = list(dict.fromkeys(b.home_addr for b in table))
        elif nai is not None:
            homes = table.home_addresses_of(nai)
        elif home_addr is not None:
            homes = [home_addr] if table.lookup(home_addr) is not None else []
        else:
            homes = []
        out: list[Any] = []
        for home in homes:
            gone = table.remove_home(home)
            for b in gone:
                self.cleared += 1
                self._tombstone(b, now)
                out.append(RemoveBinding(b))
                if b.revocation & NEGOTIATED and b.src_addr:
                    out += self._revoke(b, True, now)
            self._release_if_unbound(home)
        return out

    def _revocation(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Any]:
        """A Registration Revocation from a foreign agent (RFC 3543 §4.2.3.2) or the
        acknowledgement of ours (§4.2.2.1): authenticated with the FA-HA SA, replay
        checked; the binding it names (home address, care-of = foreign domain address,
        held through that FA, for our address) is deleted and the revocation acknowledged."""
        rv = self.revocations
        inb = rv.authenticate(data, src)
        if inb is None:
            return self._drop("revocation-rejected")
        msg = inb.message
        if isinstance(msg, RevocationAck):
            rv.acknowledged(msg, src)
            return []
        assert isinstance(msg, RegistrationRevocation)
        b = self.table.find(msg.home_addr, msg.foreign_domain_addr)
        if b is not None and (b.src_addr != src[0] or msg.home_domain_addr != b.ha_addr):
            b = None
        registered = peer_timestamp(b.revocation) if b is not None and b.revocation else None
        if not rv.fresh(msg, src[0], registered):
            return self._drop("revocation-stale")
        out: list[Any] = []
        inform = False
        if b is not None:
            inform = bool(msg.flags & REV_I and b.revocation & I_NEGOTIATED)
            self.table.remove(b)
            self.revoked_by_fa += 1
            self._tombstone(b, now)
            self._release_if_unbound(b.home_addr)
            out.append(RemoveBinding(b))
        out.append(rv.acknowledge(msg, src, (dst[0], self._port), inform))
        return out

    # ------------------------------------------------------------------ requests

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Any]:
        """One datagram received on the registration port from ``src`` at our address
        ``dst``: the reply and the binding changes.

        The request is parsed once; what is not a Registration Request, has a truncated
        extension or an unknown one that may not be skipped (RFC 5944 §1.9, §3.8.2.1), or
        a bad relay tag, is silently discarded (counted). Then the checks of
        :data:`CHECKS`, in order; the first that answers ends the request; else
        :meth:`_bind` accepts it.
        """
        if not self.active:
            return self._drop("standby")
        n = len(data)
        if n < 24 or data[0] != RRQ:
            if n and data[0] in (REVOCATION, REVOCATION_ACK):
                return self._revocation(data, src, dst, now)
            return self._drop("short" if n and data[0] == RRQ else "not-request")
        if src[0] in self._trusted:
            t = self._untag(data, src)
            if t is None:
                return []
            data, src = t
        self.received += 1
        r: _Request = parse_request(data, _Request)  # type: ignore[assignment]
        if r.error is not None:
            return self._drop(r.error)
        r.reply_to = src
        r.local = dst[0]
        r.rid = r.ident
        r.revocation = 0
        for check in self.CHECKS:
            out = check(self, r, now)
            if out is not None:
                return out
        return self._bind(r, now)

    def _untag(self, data: bytes, src: Addr) -> tuple[bytes, Addr] | None:
        """DESIGN §5: a request relayed by a trusted HA-SLB carries the FA's address and
        port in a relay tag (authenticated when an SLB-HA SA is configured): the request
        without it, and where the reply goes. None: a bad tag (dropped, counted)."""
        vid = self.settings.relay_vendor_id
        slb_sa = self.slb_sas.get(src[0])
        if slb_sa is None and not slbtag.has_tag(data, vid):
            return data, src
        try:
            if slb_sa is not None:
                orig, oport, data = slbtag.decode(data, slb_sa.auth, vendor_id=vid, spi=slb_sa.spi)
            else:
                orig, oport, data = slbtag.decode(data, vendor_id=vid)
        except DecodeError as e:
            self._drop(e.reason)
            return None
        if len(data) < 24:
            self._drop("short")
            return None
        return data, (orig, oport)

    # The checks, in the order of RFC 5944 §3.8.2.1 (module docstring). Each returns the
    # actions that end the request (a denial or a silent discard), or None to go on.

    def _check_mn_authentication(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.8.2.1 a, b, d (RFC 4721 for MN-AAA).

        * No authorization-enabling extension (MN-HA, or MN-AAA): silently discarded. The
          MN is identified by its NAI (RFC 2794), else by its home address.
        * An FA-HA extension without an FA SA: silently discarded (d).
        * The SPI selects no SA: 131 (144 for MN-AAA) authenticated with another SA the MN
          has; no SA at all with the MN: silently discarded (MN-AAA: unless a valid FA-HA
          vouches for the FA) (a).
        * The authenticator does not verify: 131 (144), authenticated with the SA when the
          MN-HA SPI selected one, else only when a valid FA-HA vouches for the FA; with
          neither, silently discarded (b).
        """
        auth = r.auth
        if auth < 0:
            return self._drop("missing-auth")
        data = r.data
        nai: str | None = None
        if r.nai_s:
            try:
                nai = data[r.nai_s + 2 : r.nai_e].decode() or None
            except UnicodeDecodeError:
                return self._drop("bad-nai")
        home_b = r.home_b
        hoa = None if home_b == _ZERO else inet_ntoa(home_b)
        key = nai if nai is not None else hoa
        if key is None:
            return self._drop("no-identity")
        r.mn_nai = nai
        r.mn_hoa = hoa
        r.key = key
        sas = self.sas
        mnha = auth == r.mnha
        if mnha:
            spi = _U32.unpack_from(data, auth + 2)[0]
            sa = self._mn_sa((key, spi))
            if sa is None and nai is not None and hoa is not None:
                sa = self._mn_sa((hoa, spi))
        else:
            spi = _U32.unpack_from(data, auth + 4)[0] if auth + 8 <= len(data) else 0
            sa = sas.aaa(nai, spi) if nai is not None else None
        fa_sa = self._fa_sa(r.reply_to[0])
        if r.faha >= 0 and fa_sa is None:
            return self._drop("fa-ha-without-sa")
        r.fa_sa = fa_sa
        if sa is None:
            if mnha and nai is not None and sas.realms:
                got = self._realm_sa(r, nai, spi, now)
                if isinstance(got, list):
                    return got
                sa = got
            if sa is None:
                return self._deny_unknown_spi(r, mnha)
        r.sa = sa
        if mnha:
            r.reply_sa = sa
            if data[auth + 1] == 20 and compare_digest(
                sa.compute(data[: auth + 6]), data[auth + 6 : auth + 22]
            ):
                if sa.source == SOURCE_AAA and not self._rerunning:
                    self.subs.c.hits += 1  # a request that waited for AAA was a miss
                return None
            if sa.source == SOURCE_AAA and nai is not None and self.subs.resync(sa, now):
                return self._fetch_sa(r, nai, spi, now)
        else:
            r.reply_sa = None
            if self._verify_aaa(r):
                return None
        fa_ok = self._faha_ok(r)
        if r.reply_sa is None and not fa_ok:
            return self._drop("auth-failed-no-reply")
        if not fa_ok:
            r.fa_sa = None
        return self._deny(r, MN_AUTH_FAILED if mnha else MN_AAA_AUTH_FAILED)

    def _deny_unknown_spi(self, r: _Request, mnha: bool) -> list[Any]:
        """The 131 / 144 (or silent discard) of an SPI that selects no SA (§3.8.2.1 a)."""
        sas = self.sas
        fa_ok = self._faha_ok(r)
        known = None
        if mnha:
            known = sas.mn_known(r.key)
            if known is None and r.mn_nai is not None and r.mn_hoa is not None:
                known = sas.mn_known(r.mn_hoa)
            if known is None:
                return self._drop("no-security-association")
        elif not fa_ok:
            return self._drop("no-security-association")
        r.reply_sa = known
        if not fa_ok:
            r.fa_sa = None
        return self._deny(r, MN_AUTH_FAILED if mnha else MN_AAA_AUTH_FAILED)

    def _realm_sa(
        self, r: _Request, nai: str, spi: int, now: float
    ) -> MobilitySA | list[Any] | None:
        """An NAI without an SA of its own (:mod:`mobileha.core.security`): the shared SA of
        its inline realm entry (None when the SPI is not that SA's: 131 with it, or no
        entry at all: discarded); with source ``aaa`` the request waits for the MN's SA
        from AAA (:meth:`_fetch_sa`), unless AAA gave it an SA with another SPI (131)."""
        e = self.sas.realm_of(nai)
        if e is None:
            return None
        if e.source == SOURCE_AAA:
            if self.sas.mn_known(nai) is not None:
                return None
            return self._fetch_sa(r, nai, spi, now)
        sa = e.sa
        return sa if sa is not None and sa.spi == spi else None

    def _fetch_sa(self, r: _Request, nai: str, spi: int, now: float) -> list[Any]:
        """Park the request until AAA answers for ``nai``: a :class:`FetchSa` action for a
        new fetch, nothing when one is in flight (the request waits behind it), or a
        discard (cached reject, too many fetches in flight; counted by reason)."""
        self._subs_timer = True
        new, reason = self.subs.begin(nai, spi, (r.data, r.reply_to, r.local, now), now)
        if reason is not None:
            return self._drop(reason)
        if new:
            return [FetchSa(self._ha, nai, spi)]
        return []

    def handle_event(
        self, event: SaFetched | SaFailed | ReloadSubscribers, now: float
    ) -> list[Any]:
        """AAA's answer for a fetch (:class:`SaFetched`: the waiting requests run again with
        the SA in the cache; :class:`SaFailed`: they are discarded, counted
        ``aaa-<reason>``), or new SA sources (:class:`ReloadSubscribers`)."""
        cls = event.__class__
        if cls is SaFetched:
            assert isinstance(event, SaFetched)
            _sa, parked = self.subs.fetched(event, self.sas.realm_of(event.nai), now)
            return self._rerun(parked, now)
        if cls is SaFailed:
            assert isinstance(event, SaFailed)
            for _ in self.subs.failed(event, now):
                self._drop(f"aaa-{event.reason}")
            return []
        if cls is ReloadSubscribers:
            assert isinstance(event, ReloadSubscribers)
            self.reload_security(event.sas)
            return []
        raise TypeError(f"not a home agent event: {event!r}")

    def _rerun(self, parked: list[Parked], now: float) -> list[Any]:
        """Requests that waited for their SA, through the checks again (not counted as
        received twice)."""
        out: list[Any] = []
        if self.active:
            port = self._port
            self._rerunning = True
            try:
                for data, src, local, arrived in parked:
                    self.received -= 1  # counted when it arrived
                    # checked as of its arrival: the wait for AAA is ours, and must not
                    # push the MN's timestamp out of the replay window (RFC 5944 §5.7)
                    out += self.receive_datagram(data, src, (local, port), arrived)
            finally:
                self._rerunning = False
        else:
            for _ in parked:
                self._drop("standby")
        return out

    def reload_security(self, sas: SecurityAssociations) -> None:
        """New SA sources (configured SAs, subscriber files, realm entries): SAs fetched from
        AAA move over where the new sources still send their NAI to AAA
        (:meth:`Subscribers.reload`); bindings, replay state and the pool allocations stay.
        Static home addresses new to the configuration are kept out of the pool from now on
        (one that is allocated right now stays with its MN until that binding goes)."""
        self.subs.reload(sas)
        old, self.sas = self.sas, sas
        self._attach_sas(sas, old)
        self._mn_sa = sas.mn_by_key
        self._fa_sa = sas.fa_by_address
        pool = self.pool
        if pool is not None:
            for sa in sas.mn_sas():
                if sa.home_address:
                    pool.exclude(sa.home_address)
        tol = [self.settings.replay_tolerance, *(sa.tolerance for sa in sas.mn_sas())]
        self._tomb_s = 2.0 * max(tol) + 2.0

    @property
    def random_bytes(self) -> Callable[[int], bytes]:
        """The injected source of randomness (replay nonces; the sync record salts)."""
        return self._random

    def _nai_bound(self, nai: str) -> bool:
        return self.table.home_address_of(nai) is not None

    def aaa_sa_of(self, b: Binding) -> MobilitySA | None:
        """The SA from AAA of ``b``'s MN (sync record REC_SA), or None."""
        nai = b.nai
        if nai is None or not self._subs_timer:
            return None
        sa = self.sas.mn_known(nai)
        return sa if sa is not None and sa.source == SOURCE_AAA else None

    def _check_identification(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.8.2.1, §5.7 (P§1.7): the replay check, else 133 with the
        Identification the MN must use. Timestamps: within the SA's tolerance of our clock
        and greater than the MN's last accepted one (also of bindings deleted a moment
        ago); the reply carries our time. Nonces: the high 32 bits are the nonce we issued
        last; every reply carries a fresh one. Both keep the request's low 32 bits.

        RFC 5944 §3.8.2.2: a repeat of the accepted registration (same home address,
        care-of address and Identification) must not extend the binding: it gets the 133,
        or with ``answer_duplicates`` the remaining lifetime again.
        """
        existing = self._find_bindings(r)
        ident = r.ident
        sa = r.sa
        nonce = sa.replay == REPLAY_NONCE
        dup = r.same_coa
        if dup is not None and r.lifetime and dup.ident == ident:
            self.duplicates += 1
            if self.settings.answer_duplicates:
                return self._answer_duplicate(r, dup, nonce, now)
        last: int | None = None
        if existing is not None:
            last = max(b.ident for b in existing) if isinstance(existing, list) else existing.ident
        elif self._recent:
            tomb = self._recent.get(r.key)
            if tomb is None and r.home is not None:
                tomb = self._recent.get(r.home)
            if tomb is not None and tomb[1] > now:
                last = tomb[0]
        if nonce:
            # RFC 5944 §5.7: the MN's next request carries the nonce of our last reply to
            # it. A fresh nonce is issued only when the request passes (it is spent) or
            # when we have none for the MN yet; a failing request (a replay of an accepted
            # one in particular) gets 133 with the nonce we still expect, so that replays
            # cannot move what the MN must send next.
            expected = self._nonces.get(r.key)
            ok = expected is not None and (ident >> 32) == expected and ident != last
            if ok or expected is None:
                expected = int.from_bytes(self._random(4), "big")
                self._nonces[r.key] = expected
            r.rid = (expected << 32) | (ident & _M32)
            if ok:
                return None
        else:
            wall_ntp = (int(now + self._unix_offset) + NTP_EPOCH_OFFSET) & _M32
            if abs((ident >> 32) - wall_ntp) <= sa.tolerance and (last is None or ident > last):
                return None
            r.rid = (wall_ntp << 32) | (ident & _M32)
        if not self._faha_ok(r):
            r.fa_sa = None
        return self._deny(r, ID_MISMATCH)

    def _find_bindings(self, r: _Request) -> Binding | list[Binding] | None:
        """The MN's home address (the request's, its SA's, or the one its NAI is bound to)
        and its current bindings, for the checks that follow."""
        table = self.table
        home = r.mn_hoa
        existing: Binding | list[Binding] | None = None
        if home is None:
            sa = r.sa
            home = sa.home_address
            nai = r.mn_nai
            if home is None and nai is not None:
                # The MN's own SA holds its NAI index (the table's holder): no NAI dict
                h = sa.bound if self._own_index else None
                if h is not None and sa.nai == nai:
                    home = h if isinstance(h, str) else h[-1]
                else:
                    home = table.home_address_of(nai)
        if existing is None and home is not None:
            existing = table.lookup(home)
        r.home = home
        r.existing = existing
        coa_b = r.coa_b
        coa = _COA.get(coa_b)
        if coa is None:
            coa = ip_str_cached(coa_b)
        r.coa = coa
        if existing is None:
            r.same_coa = None
        elif isinstance(existing, list):
            r.same_coa = _find_in(existing, coa)
        else:
            r.same_coa = existing if existing.care_of == coa else None
        return existing

    def _answer_duplicate(self, r: _Request, dup: Binding, nonce: bool, now: float) -> list[Any]:
        rid = r.ident
        if nonce:
            rid = (self._nonces.get(r.key, 0) << 32) | (rid & _M32)
        remaining = 0xFFFF if dup.expires == INFINITE else max(0, int(dup.expires - now))
        code = ACCEPTED_NO_SIMULTANEOUS if (r.flags & FLAG_S and self._simul <= 1) else ACCEPTED
        return [self._reply(r, code, remaining, inet_aton(dup.home_addr), rid)]

    def _check_fa_authentication(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.8.2.1 c: with an FA SA and a non-zero lifetime, exactly one valid
        FA-HA extension, else 132. The reply is authenticated with the SA the request's
        FA-HA SPI selected."""
        fa_sa = r.fa_sa
        if fa_sa is None:
            return None
        if r.lifetime and not self._faha_ok(r):
            r.fa_sa = None
            return self._deny(r, FA_AUTH_FAILED)
        if r.faha >= 0:
            spi = _U32.unpack_from(r.data, r.faha + 2)[0]
            r.fa_sa = self.sas.fa(r.reply_to[0], spi) or fa_sa
        return None

    def _check_unprotected(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.5.1, §3.2: an authenticator protects only what precedes it. The
        extensions the later steps act on (GRE key, CVSEs, their lengths) are taken only
        from the part of the request an authenticator we verified covers; what lies after
        it is ignored as if absent (not refused: §3.7.2.2 lets an FA append extensions
        after the MN's authenticator, so their presence alone proves nothing, and a refusal
        would let anyone on the path turn a valid registration into a denial).

        The covered part ends at the FA-HA extension when we share an SA with the FA (it
        verified in the previous step, or on a deregistration now), else at the end of the
        MN's authorization-enabling extension. An FA we share no SA with is unauthenticated
        by configuration (``mobileha check`` warns): what it appended after the MN's
        authenticator, which nothing could protect, is taken at its word, except for a
        co-located care-of address (D), where no FA appends anything.
        """
        m = r.rare
        if m is None:
            return None
        if r.fa_sa is not None:
            # with a lifetime the FA-HA extension verified in the previous step
            verified = r.faha >= 0 and (r.lifetime != 0 or self._faha_ok(r))
            limit = r.faha if verified else r.mn_auth_end
        elif r.flags & FLAG_D:
            limit = r.mn_auth_end
        else:
            return None
        if m.gre_at < limit and m.cvse_s < limit and m.unknown_cvse < limit and not m.poorly:
            return None
        # The rare path: read the covered part again and act on that view only.
        c = parse_request(r.data[:limit])
        view = (c.gre_key, c.gre_at, c.cvse_s, c.cvse_e, c.unknown_cvse, c.poorly)
        if view != (m.gre_key, m.gre_at, m.cvse_s, m.cvse_e, m.unknown_cvse, m.poorly):
            self.unprotected_ignored += 1
            m.gre_key, m.gre_at, m.cvse_s, m.cvse_e, m.unknown_cvse, m.poorly = view
        return None

    def _check_request(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.8.2.3, in this order:

        * 136: the request was sent to a broadcast address (the reply names our unicast
          address);
        * RFC 4433 §3: an unspecified or all-ones HA field asks for a home agent: it needs
          an NAI (134) and, when a redirect is configured, gets 143 naming that HA in a
          Dynamic HA extension;
        * 134: a GRE key extension or CVSE of the wrong length, or a registration with
          care-of address 0.0.0.0;
        * 129: a home address that is not the MN's (:meth:`_home_address_allowed`).
        """
        if r.local in self._broadcast:
            return self._deny(r, UNKNOWN_HA)
        ha_b = r.ha_b
        if ha_b in (_ZERO, _ONES):
            if r.mn_nai is None:
                return self._deny(r, POORLY_FORMED)
            redirect = self.settings.redirect_ha
            if redirect is not None and r.lifetime:
                extra = _DYNHA.pack(EXT_DYNAMIC_HA, 5, DYNHA_REDIRECTED, inet_aton(redirect))
                self._count_denied(r.lifetime, r.existing)
                return [self._reply(r, REDIRECT_HA, 0, r.home_b, r.rid, False, extra)]
        m = r.rare
        if (m is not None and m.poorly) or (r.lifetime and r.coa_b == _ZERO):
            return self._deny(r, POORLY_FORMED)
        if r.mn_hoa is not None and not self._home_address_allowed(r):
            return self._deny(r, ADMIN_PROHIBITED)
        return None

    def _home_address_allowed(self, r: _Request) -> bool:
        """RFC 5944 §3.8.2.3 (129): the MN's SA's static address; else a pool address that
        is free or already the MN's; an address of the home prefix outside the pool only
        for a deregistration; never the binding of another NAI."""
        hoa = r.mn_hoa
        static = r.sa.home_address
        existing = r.existing
        if static is not None:
            if static != hoa:
                return False
            if existing is not None and r.sa.source == SOURCE_AAA:
                # AAA may name an address the pool gave to another MN
                b0 = existing[0] if isinstance(existing, list) else existing
                return b0.nai is None or b0.nai == r.mn_nai
            return True
        if existing is None:
            pool = self.pool
            if pool is not None and hoa in pool:
                # a free pool address (e.g. its own, after its binding lapsed); not one
                # allocated to another MN, nor an excluded (static) address
                nai = r.mn_nai
                return pool.is_free(hoa) or (  # type: ignore[arg-type]
                    nai is not None and hoa in self.table.home_addresses_of(nai)
                )
            return self._prefix is None or not r.lifetime
        if r.mn_nai is not None and r.sa.nai is not None:
            b0 = existing[0] if isinstance(existing, list) else existing
            return b0.nai is None or b0.nai == r.mn_nai
        return True

    def _deregister(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 5944 §3.8.2.2 (P§1.8): lifetime 0 deletes the binding of the care-of address,
        or every binding of the MN when the care-of address is its home address."""
        if r.lifetime:
            return None
        out: list[Any] = []
        self.dereg_received += 1
        self.dereg_accepted += 1
        home = r.home
        reply_hoa = r.home_b
        if home is not None:
            table = self.table
            if r.coa == home:
                gone = table.remove_home(home)
            else:
                b = table.remove_key(home, r.coa)
                gone = [b] if b is not None else []
            out.extend(RemoveBinding(b) for b in gone)
            ident = r.ident
            for b in gone:
                if ident > b.ident:
                    b.ident = ident  # the deregistration is the MN's latest accepted request
                self._tombstone(b, now)
                if b.revocation:
                    # from home (or through another FA): the old FA is not told otherwise
                    out += self._revoke_moved(b, r.reply_to[0], now)
            self._release_if_unbound(home)
            reply_hoa = inet_aton(home)
        out.append(self._reply(r, ACCEPTED, 0, reply_hoa, r.rid, False))
        return out

    def _check_binding(self, r: _Request, now: float) -> list[Any] | None:
        """What the binding asks for, in this order:

        * RFC 3115 §3.1: a CVSE we do not know: 140 when the MN sent it (before its
          authorization-enabling extension), 141 when the FA added it (after);
        * RFC 3024 (P§2.5): T asked and reverse tunnels off: 137; T missing while they are
          required: 138;
        * RFC 5944 §3.8.2.3, RFC 6245 (P§2.6): the encapsulation (M minimal, G or a GRE key
          extension GRE, else IP-in-IP) must be on; M with G or with a GRE key: 139;
        * RFC 5944 §3.8.2.3: with S, a new care-of address beyond the configured number of
          simultaneous bindings: 135.
        """
        m = r.rare
        gre_key = None
        if m is not None:
            u = m.unknown_cvse
            if u >= 0:
                return self._deny(r, UNKNOWN_CVSE_FA if r.auth < u else UNKNOWN_CVSE_MN)
            gre_key = m.gre_key
        flags = r.flags
        s = self.settings
        if flags & FLAG_T:
            if not s.reverse_tunnel:
                return self._deny(r, REVERSE_TUNNEL_UNAVAILABLE)
        elif s.reverse_tunnel_required:
            return self._deny(r, REVERSE_TUNNEL_MANDATORY)
        if flags & FLAG_M:
            if flags & FLAG_G or not s.minimal_encap or gre_key is not None:
                return self._deny(r, ENCAP_UNAVAILABLE)
            r.encap = _MINIMAL
        elif flags & FLAG_G or gre_key is not None:
            if not s.gre:
                return self._deny(r, ENCAP_UNAVAILABLE)
            r.encap = _GRE
        else:
            r.encap = _IPIP
        if flags & FLAG_S and self._simul > 1 and r.same_coa is None:
            existing = r.existing
            if isinstance(existing, list) and len(existing) >= self._simul:
                return self._deny(r, TOO_MANY_BINDINGS)
        return None

    def _negotiate_revocation(self, r: _Request, now: float) -> list[Any] | None:
        """RFC 3543 §4.2.1: the FA's Revocation Support extension, covered by its verified
        FA-HA authenticator (a registration, FA SA known): revocation is negotiated for
        this binding (the I bit when the FA offers it and we accept), and the reply will
        carry ours (§3.2). Never answers."""
        if not self.settings.revocation or r.fa_sa is None or not r.lifetime:
            return None
        m = r.rare
        off = m.revsup if m is not None else -1
        if off < 0 or r.protected_by(off) != EXT_FA_HA or r.data[off + 1] != 6:
            return None
        flags, ts = _REVSUP.unpack_from(r.data, off + 2)
        i_bit = bool(flags & SUPPORT_I) and self.settings.revocation_i_bit
        r.revocation = negotiated_state(ts, i_bit)
        r.rev_reply = support_ext(i_bit, self.revocations.timestamp(now))
        return None

    CHECKS: Final[tuple[Callable[[HomeAgent, _Request, float], list[Any] | None], ...]] = (
        _check_mn_authentication,
        _check_identification,
        _check_fa_authentication,
        _check_unprotected,
        _negotiate_revocation,
        _check_request,
        _deregister,
        _check_binding,
    )

    def _bind(self, r: _Request, now: float) -> list[Any]:
        """RFC 5944 §3.8.2.2 (P§1.8): accept. Without S (or with S when simultaneous
        bindings are off: code 1) the binding replaces the MN's others; with S it is added
        or refreshed. Granted: the requested lifetime, at most the HA's and the MN's
        maximum. A dynamic home address comes from the pool; no address or no room: 130."""
        table = self.table
        sa = r.sa
        flags = r.flags
        life = r.lifetime
        simultaneous = bool(flags & FLAG_S) and self._simul > 1
        limit = self.max_lifetime
        if sa.max_lifetime is not None and sa.max_lifetime < limit:
            limit = sa.max_lifetime
        granted = life if life < limit else limit
        ints = self._ints
        granted = ints.setdefault(granted, granted)  # one int object per value (memory)
        expires = table.deadline(now, granted)
        home = r.home
        existing = r.existing
        allocated = False
        if home is None:
            pool = self.pool
            home = pool.allocate(r.mn_nai) if pool is not None else None
            if home is None:
                return self._deny(r, INSUFFICIENT_RESOURCES)
            allocated = True
        elif existing is None:
            pool = self.pool
            if (
                pool is not None
                and (sa.home_address is None or sa.source == SOURCE_AAA)
                and home in pool
            ):
                pool.mark(home, r.mn_nai)
        out: list[Any] = []
        b = r.same_coa
        src_addr, src_port = r.reply_to
        src_port = ints.setdefault(src_port, src_port)
        encap = r.encap
        gre_key = r.rare.gre_key if r.rare is not None else None
        coa = r.coa
        if (
            b is not None
            and b.flags == flags
            and b.encap == encap
            and b.gre_key == gre_key
            and b.src_addr == src_addr
            and b.src_port == src_port
            and b.nai == r.mn_nai
        ):
            table.refresh(b, expires, ident=r.ident, lifetime=granted)
            b.revocation = r.revocation
            if not simultaneous and isinstance(existing, list):
                for x in existing:
                    if x is not b:
                        table.remove(x)
                        out.append(RemoveBinding(x))
                        if x.revocation:
                            out += self._revoke_moved(x, src_addr, now)
            act: InstallBinding = _new(RefreshBinding)
            _set_binding(act, b)
            out.append(act)
        else:
            b = Binding(
                home,
                _intern(coa),
                self._ha,
                granted,
                expires,
                r.ident,
                flags,
                encap,
                gre_key,
                r.mn_nai,
                _intern(src_addr),
                src_port,
                r.revocation,
            )
            try:
                removed = table.add(b, replace=not simultaneous)
            except TableFull:
                if allocated and self.pool is not None:
                    self.pool.release(home)
                return self._deny(r, INSUFFICIENT_RESOURCES)
            for x in removed:
                if x.care_of != coa:
                    out.append(RemoveBinding(x))
                    if x.revocation:
                        out += self._revoke_moved(x, src_addr, now)
            act = _new(InstallBinding)
            _set_binding(act, b)
            out.append(act)
        code = ACCEPTED_NO_SIMULTANEOUS if (flags & FLAG_S and self._simul <= 1) else ACCEPTED
        if existing is None:
            self.init_received += 1
            self.init_accepted += 1
        else:
            self.rereg_received += 1
            self.rereg_accepted += 1
        home_b = inet_aton(home) if r.mn_hoa is None else r.home_b
        out.append(self._reply(r, code, granted, home_b, r.rid))
        return out

    # ------------------------------------------------------------------ helpers

    def _faha_ok(self, r: _Request) -> bool:
        """Exactly one FA-HA extension, and it verifies with the SA its SPI selects."""
        faha = r.faha
        data = r.data
        if faha < 0 or r.n_faha != 1 or data[faha + 1] != 20:
            return False
        sa = self.sas.fa(r.reply_to[0], _U32.unpack_from(data, faha + 2)[0])
        if sa is None:
            return False
        return sa.verify(data[: faha + 6], data[faha + 6 : faha + 22])

    def _verify_aaa(self, r: _Request) -> bool:
        """RFC 4721 §6: the MN-AAA authenticator, CHAP-style with the challenge for SPI
        CHAP_SPI (§8), else with the SA's algorithm."""
        data = r.data
        aaa = r.auth
        sa = r.sa
        if ((data[aaa + 2] << 8) | data[aaa + 3]) != 20:
            return False
        covered = data[: aaa + 8]
        got = data[aaa + 8 : aaa + 24]
        if sa.spi == CHAP_SPI:
            challenge = data[r.chal + 2 : r.chal_e] if r.chal >= 0 else b""
            return hmac.compare_digest(mn_aaa_chap_authenticator(sa.key, challenge, covered), got)
        return sa.verify(covered, got)

    def _count_denied(self, life: int, existing: Binding | list[Binding] | None) -> None:
        if not life:
            self.dereg_received += 1
            self.dereg_denied += 1
        elif existing is None:
            self.init_received += 1
            self.init_denied += 1
        else:
            self.rereg_received += 1
            self.rereg_denied += 1

    def _deny(self, r: _Request, code: int) -> list[Any]:
        """A denial (RFC 5944 §3.8.3): the request's home address, lifetime 0."""
        table = self.table
        hoa = r.mn_hoa
        existing = table.lookup(hoa) if hoa is not None else None
        if existing is None and hoa is None and r.key:
            h = table.home_address_of(r.key)
            existing = table.lookup(h) if h is not None else None
        self._count_denied(r.lifetime, existing)
        return [self._reply(r, code, 0, r.home_b, r.rid, False)]

    def _reply(
        self,
        r: _Request,
        code: int,
        lifetime: int,
        home_b: bytes,
        rid: int,
        echo_gre: bool = True,
        extra_mn: bytes = b"",
    ) -> Send:
        """The reply (P§1.3; the order of P§1.6): fixed part, extensions for the MN (the
        NAI copied back, an RFC 4433 redirect), MN-HA, extensions for the FA (when accepted:
        the GRE key, as the 3GPP2 CVSE when the request carried one, else extension 48),
        FA-HA. From the address the request was sent to (P§1.1), or our unicast address
        when that was a broadcast address."""
        bc = self.by_code
        bc[code] = bc.get(code, 0) + 1
        data = r.data
        msg = _RRP.pack(RRP, code, lifetime, home_b, self._ha_b, rid)
        if r.nai_s:
            msg += data[r.nai_s : r.nai_e]
        if extra_mn:
            msg += extra_mn
        mn_sa = r.reply_sa
        if mn_sa is not None:
            msg += mn_sa.hdr_mnha
            msg += mn_sa.compute(msg)
        m = r.rare
        if m is not None and echo_gre and code <= ACCEPTED_NO_SIMULTANEOUS:
            if m.cvse_e:
                msg += data[m.cvse_s : m.cvse_e]
            elif m.gre_key is not None:
                msg += _GRE_EXT.pack(EXT_GRE_KEY, 0, 4, m.gre_key)
            if r.revocation:
                msg += r.rev_reply  # RFC 3543 §4.2.1, covered by the FA-HA that follows
        fa_sa = r.fa_sa
        if fa_sa is not None:
            msg += fa_sa.hdr_faha
            msg += fa_sa.compute(msg)
        local = r.local
        a: Send = _new(Send)
        _set_dst(a, r.reply_to)
        _set_payload(a, msg)
        _set_src(a, (local if local not in self._broadcast else self._ha, self._port))
        return a


__all__ = [
    "CODE_COUNTERS",
    "HomeAgent",
    "HomeAgentSettings",
    "RefreshBinding",
    "RestoreBinding",
    "WithdrawBinding",
]
