"""Foreign agent / PDSN, sans-IO (RFC 5944 §3.7; RFC 2794, 4433, 4721, 6245; P§1-2, P§6.4).

What it does with a Registration Request from a mobile node (RFC 5944 §3.7.2):

1. FA checks, each with its FA-side code (P§1.9): 97 missing NAI (home address or HA
   address unspecified without an NAI, RFC 2794), 194 the HA address is one of ours, 69
   lifetime too long (the reply's Lifetime then carries our maximum, §3.7.2.3), 74 reverse
   tunnel unavailable, 72 GRE unavailable, 77 care-of address not ours (D = 0, Lifetime
   != 0), 105 / 104 / 106 missing / unknown / stale challenge (RFC 4721, when challenges
   are enabled; a challenge not followed by MN-AAA / MN-FA authentication is silently
   discarded, RFC 4721 §3.2), 66 visitor list full. Denials copy Home Address, Home Agent,
   Identification and Lifetime from the request, echo the NAI, and go out at most once
   per second per MN (§3.7.2; challenge denials 104-106 are limited separately so the
   MN's immediate retry with the new challenge still gets its answer).
2. AAA (when enabled): the core emits :class:`AaaRequest`; the adapter runs the async
   lookup and calls :meth:`ForeignAgent.aaa_result`. Asked for every initial registration
   and for every request that carries an MN-AAA extension. Refusals come back with their
   code (67 / 108, timeout 78; see ``mobileha.aaa.base``).
3. Relay: the request up to and including the MN's authorization-enabling extension
   (MN-HA 32 and, when present, MN-AAA 36/1) is kept byte for byte; extensions meant for
   the FA (MN-FA auth...) are dropped (RFC 5944 §3.7.2.2). The FA appends the GRE key
   (RFC 6245 extension 48 and/or the 3GPP2 CVSE, P§2.6) and, when it has an FA-HA SA with
   that HA and the request has Lifetime != 0, FA-HA authentication (§3.7.2.2, P§1.6).
4. Destination (in this order): the real HA learned from an earlier reply for this MN,
   when the request's HA field is unspecified / all-ones or names the HA we first sent to
   (the HA-SLB case: re-registrations and the deregistration go straight to the real HA);
   else the request's HA field when it is a unicast address; else the HA address from AAA
   (RFC 4433 dynamic HA assignment; the HA-SLB VIP in production); else the configured
   default; else code 98 (missing home agent).

5. Re-homing (RFC 4433 §1: the node that selects the HA may be the FA): a real HA learned
   from a reply that leaves ``ha_fallback_after`` relayed requests in a row unanswered (the
   MN retransmitted, or the pending request timed out) is taken as gone, and the requests
   that would go to it go to the HA address first relayed to instead (the HA-SLB virtual
   address), else to the AAA / configured one: the MNs are re-homed by the HA-SLB within a
   few retransmission intervals. :class:`HomeAgentUnreachable` and
   :class:`HomeAgentAnswers` tell the operator; a reply from that HA makes it usable again.

Replies are matched on (NAI, Identification low 32 bits) -- or (home address, ...) without
an NAI. A reply is taken from the address the request was sent to, from one of the
``real_home_agents`` (behind an HA-SLB a real HA answers, not the virtual address we sent
to, P§6.4; its address and port are learned for later requests), or from anywhere with a
valid FA-HA extension; any other is dropped (``reply-unexpected-source``) and the request
keeps waiting. With an FA-HA SA, a reply with a nonzero Lifetime must carry exactly one
valid FA-HA extension, otherwise the MN gets 68 (§3.7.3.1); the extensions after a
verified FA-HA extension are ignored (§3.5.1). The FA's own extensions (GRE key, FA-HA)
are removed before the reply is relayed; the MN gets it up to its MN-HA extension, plus a
fresh challenge when challenges are enabled. A request with no reply within
``pending_timeout_s`` (counted from the last copy relayed) gets 78 (§3.7.1). Replies go to
the MN's IP source address and port (a UDP adapter has no link-layer delivery).

Accepted registrations make visitor-list entries (keyed by home address, indexed by NAI)
that expire after min(granted lifetime, our maximum), timed from the relayed reply
(§3.7.3.2); a denied re-registration leaves the entry untouched. Pending requests and
visitors share one heap. Replies and denials to a mobile node leave from the address its
request was sent to (``Send.src``: the adapter's socket on the visitor link).
Installing and removing the FA end of the tunnel is done by the adapter, from the
:class:`~mobileha.core.actions.InstallBinding` / ``RemoveBinding`` actions.

Also (the adapter feeds ICMP through :meth:`ForeignAgent.receive_icmp` and typed events
through :meth:`ForeignAgent.handle_event`):

* **Agent advertisements** (RFC 5944 §2.1-2.3, :mod:`mobileha.core.discovery`): periodic
  on the visitor link from :class:`FaStart` on, at once in answer to a solicitation, B set
  while the visitor list is full; a visitor link that goes down stops them and one that
  comes up starts again at sequence 0.
* **ICMP errors** (§3.7.3): an ICMP error whose quoted datagram is a request we relayed
  (to that HA address and port, with the pending request's Identification) ends the
  request with 80 (network), 81 (host), 82 (port) or 88 (other), :func:`icmp_reply_code`.
* **Registration revocation** (RFC 3543, :mod:`mobileha.core.revocation`): with
  ``revocation`` and an FA-HA SA, relayed requests offer it (extension 137 before FA-HA);
  a reply with the HA's 137 makes it negotiated for the visitor. A revocation from the HA
  removes the visitor (informing the MN with a unicast advertisement of sequence 0 when the
  HA asks or, without the I bit, by our policy ``inform_mn``) and is acknowledged; an
  operator's :class:`ClearVisitors` or a :class:`VisitorGone` revokes at the HA. A mobile
  node's own 137 extension is silently discarded (§4.2.1).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from mobileha.core.actions import Addr, InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_D, FLAG_G, FLAG_M, FLAG_T, Binding, Encap
from mobileha.core.discovery import Advertiser, AdvertiserConfig, SendIcmp
from mobileha.core.revocation import (
    ACK_I,
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
from mobileha.wire import DecodeError, UnknownCriticalExtension, ip_str
from mobileha.wire import icmp as icmp_wire
from mobileha.wire.auth import Authenticator
from mobileha.wire.mip import (
    EXT_FA_HA,
    EXT_MN_HA,
    LIFETIME_INFINITE,
    MIP_PORT,
    REVOCATION,
    REVOCATION_ACK,
    RRP,
    RRQ,
    AuthExt,
    ChallengeExt,
    CvseExt,
    DynamicHaExt,
    Extension,
    GenAuthExt,
    GreKeyExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    ReplyCode,
    RevocationAck,
    RevocationSupportExt,
    append_auth,
    gre_key_cvse,
)

_U32: Final = 0xFFFFFFFF
UNSPECIFIED: Final = "0.0.0.0"
ALL_ONES: Final = "255.255.255.255"
CHALLENGE_WINDOW: Final = 2  # RFC 4721 default
CHALLENGE_LEN: Final = 16  # at least 32 bits (RFC 4721); 128 random bits here
CHALLENGE_HISTORY: Final = 8  # issued challenges kept per MN (to tell stale from unknown)
MAX_REDIRECTS: Final = 1  # 143 redirects followed per request (RFC 4433)

# The reply codes the FA uses (wire.mip.ReplyCode, P§1.9)
FA_RESOURCES: Final = ReplyCode.FA_INSUFFICIENT_RESOURCES
FA_MN_AUTH: Final = ReplyCode.FA_MN_AUTH_FAILED
FA_HA_AUTH: Final = ReplyCode.FA_HA_AUTH_FAILED
FA_LIFETIME: Final = ReplyCode.FA_LIFETIME_TOO_LONG
FA_ENCAP: Final = ReplyCode.FA_ENCAP_UNAVAILABLE
FA_REVERSE_TUNNEL: Final = ReplyCode.FA_REVERSE_TUNNEL_UNAVAILABLE
FA_BAD_COA: Final = ReplyCode.FA_INVALID_CARE_OF
FA_TIMEOUT: Final = ReplyCode.FA_TIMEOUT
FA_MISSING_NAI: Final = ReplyCode.FA_MISSING_NAI
FA_MISSING_HA: Final = ReplyCode.FA_MISSING_HA
FA_UNKNOWN_CHALLENGE: Final = ReplyCode.FA_UNKNOWN_CHALLENGE
FA_MISSING_CHALLENGE: Final = ReplyCode.FA_MISSING_CHALLENGE
FA_STALE_CHALLENGE: Final = ReplyCode.FA_STALE_CHALLENGE
FA_INVALID_HA: Final = ReplyCode.FA_INVALID_HA
HA_REDIRECT: Final = ReplyCode.HA_REDIRECT
SILENT_DISCARD: Final = -1
DENIAL_INTERVAL_S: Final = 1.0  # at most one FA denial per second per MN (RFC 5944 §3.7.2)

GRE_FORMATS: Final = ("rfc6245", "cvse", "both")

# RFC 5944 §3.7.3 / §3.4: the "home agent unreachable" code for an ICMP error received
# instead of a reply. Destination Unreachable codes about a network (RFC 1122 §3.2.2.1,
# RFC 1812 §5.2.7.1: net, net unknown, net prohibited, net for TOS) -> 80, about the host
# (host, host unknown, host prohibited, host for TOS) -> 81, port -> 82; every other
# error -> 88. Source Quench and Redirect are not failures (no reply).
_UNREACH_CODE: Final = {
    icmp_wire.UNREACH_NET: ReplyCode.FA_HOME_NETWORK_UNREACHABLE,
    icmp_wire.UNREACH_NET_UNKNOWN: ReplyCode.FA_HOME_NETWORK_UNREACHABLE,
    icmp_wire.UNREACH_NET_PROHIB: ReplyCode.FA_HOME_NETWORK_UNREACHABLE,
    icmp_wire.UNREACH_NET_TOS: ReplyCode.FA_HOME_NETWORK_UNREACHABLE,
    icmp_wire.UNREACH_HOST: ReplyCode.FA_HA_HOST_UNREACHABLE,
    icmp_wire.UNREACH_HOST_UNKNOWN: ReplyCode.FA_HA_HOST_UNREACHABLE,
    icmp_wire.UNREACH_HOST_PROHIB: ReplyCode.FA_HA_HOST_UNREACHABLE,
    icmp_wire.UNREACH_HOST_TOS: ReplyCode.FA_HA_HOST_UNREACHABLE,
    icmp_wire.UNREACH_PORT: ReplyCode.FA_HA_PORT_UNREACHABLE,
}
_NOT_FAILURES: Final = frozenset({icmp_wire.SOURCE_QUENCH, icmp_wire.REDIRECT})
_UDP_PORTS: Final = struct.Struct("!HH")


def icmp_reply_code(icmp_type: int, code: int) -> int | None:
    """The registration reply code for an ICMP error about a relayed request (80-88), or
    None when the message is no failure (Source Quench, Redirect)."""
    if icmp_type in _NOT_FAILURES:
        return None
    if icmp_type == icmp_wire.DEST_UNREACHABLE:
        return int(_UNREACH_CODE.get(code, ReplyCode.FA_HA_UNREACHABLE))
    return int(ReplyCode.FA_HA_UNREACHABLE)


def _quoted_nai(rrq: bytes) -> str | None:
    """The NAI of a quoted request when it is its first extension (RFC 2794 §2) and the
    quote holds all of it."""
    if len(rrq) < 26 or rrq[24] != 131:
        return None
    n = rrq[25]
    if n == 0 or len(rrq) < 26 + n:
        return None
    try:
        return rrq[26 : 26 + n].decode()
    except UnicodeDecodeError:
        return None


# --- events in (handle_event) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaStart:
    """The adapter is up: start the agent advertisements (RFC 5944 §2.3)."""


@dataclass(frozen=True, slots=True)
class VisitorLinkChanged:
    """The advertising interface went down (stop advertising) or up (start again at
    sequence 0, which tells registered mobile nodes to register again, §2.4.4)."""

    up: bool


@dataclass(frozen=True, slots=True)
class ClearVisitors:
    """Operator command: remove visitors (one home address, one NAI, or all), revoking
    them at their home agents where revocation was negotiated (RFC 3543 §4.2.3)."""

    home_addr: str | None = None
    nai: str | None = None
    all: bool = False


@dataclass(frozen=True, slots=True)
class VisitorGone:
    """The visitor of ``home_addr`` left the link (e.g. its link-layer session ended):
    the FA revokes its registration (RFC 3543 §4.2.3)."""

    home_addr: str


FaEvent = FaStart | VisitorLinkChanged | ClearVisitors | VisitorGone


@dataclass(frozen=True, slots=True)
class AaaRequest:
    """Action: authorise ``nai`` (and verify the MN-AAA extension when present), then call
    :meth:`ForeignAgent.aaa_result` with ``token``."""

    token: int
    nai: str
    home_addr: str
    mn_aaa_spi: int | None = None
    mn_aaa_authenticator: bytes = b""
    challenge: bytes = b""
    covered: bytes = b""  # request up to the MN-AAA extension + its Type/Subtype/Length/SPI


@dataclass(frozen=True, slots=True)
class AaaCancel:
    """Action: the AAA lookup ``token`` is no longer needed (its request was superseded)."""

    token: int


@dataclass(slots=True)
class HaSecurity:
    """FA-HA security association (P§1.6), by HA address."""

    spi: int
    key: bytes
    algorithm: str = "md5-prefix-suffix"
    auth: Authenticator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.key, self.algorithm)


@dataclass(slots=True)
class _Pending:
    key: str  # NAI, or the home address when there is no NAI
    req: RegistrationRequest
    mn: Addr  # where the request came from (the MN)
    gen: int
    deadline: float
    aaa_token: int | None = None  # waiting for AAA
    dst: str | None = None  # HA address relayed to
    dst_port: int = MIP_PORT
    target: str | None = None  # HA address chosen before any learning (VIP / AAA / field)
    relayed: bytes = b""
    relayed_at: float = 0.0
    gre_key: int | None = None
    aaa_ha: str | None = None
    aaa_home: str | None = None
    redirects: int = 0
    redirect_to: str | None = None
    challenge: bytes | None = None
    local: Addr | None = None  # our address the MN sent to (replies leave from it)
    rev_sent: bool = False  # we appended a Revocation Support extension (RFC 3543)

    @property
    def ident(self) -> int:
        return self.req.ident

    @property
    def dereg(self) -> bool:
        return self.req.lifetime == 0


@dataclass(slots=True)
class Visitor:
    """One visitor-list entry (RFC 5944 §3.7.2.2)."""

    home_addr: str
    nai: str | None
    mn: Addr
    ha_addr: str  # the real HA we talk to now
    ha_port: int  # its UDP port (the source port of its reply)
    target: str  # the HA address we first relayed to (VIP / AAA / request field)
    lifetime: int
    expires: float | None  # None = infinite
    ident: int
    flags: int
    gre_key: int | None
    gen: int
    binding: Binding
    aaa_home_addr: str | None = None  # home address AAA assigned (Framed-IP-Address)
    revocation: int = 0  # RFC 3543 state negotiated with the HA (core.revocation)
    local: Addr | None = None  # our address the MN registers with


@dataclass(slots=True)
class FaStats:
    requests: int = 0
    relayed: int = 0
    retransmissions: int = 0
    replies: int = 0
    replies_other_source: int = 0
    accepted: int = 0
    deregistered: int = 0
    timeouts: int = 0
    aaa_requests: int = 0
    aaa_rejects: int = 0
    visitors_expired: int = 0
    redirects: int = 0
    gre_key_mismatch: int = 0  # HA replied with another GRE key than ours
    aaa_home_mismatch: int = 0  # HA granted another home address than AAA assigned
    ha_fallbacks: int = 0  # real HAs taken as gone (requests re-homed, RFC 4433)
    icmp_errors: int = 0  # ICMP errors about a relayed request, answered 80-88
    icmp_unmatched: int = 0  # ICMP errors we could not match to a relayed request
    revocation_negotiated: int = 0  # accepted registrations with revocation (RFC 3543)
    revoked_by_ha: int = 0  # visitors removed by the HA's revocation
    revoked_by_fa: int = 0  # visitors we revoked (operator, visitor gone)
    visitors_cleared: int = 0  # removed by an operator command
    fa_codes: dict[int, int] = field(default_factory=dict)  # codes we generated
    ha_codes: dict[int, int] = field(default_factory=dict)  # codes relayed from HAs
    drops: dict[str, int] = field(default_factory=dict)  # bad input by reason


@dataclass(frozen=True, slots=True)
class HomeAgentUnreachable:
    """Notice: ``address`` (a real HA learned from its replies) left ``unanswered``
    relayed requests in a row unanswered; its MNs' requests now go to ``fallback``."""

    address: str
    fallback: str | None
    unanswered: int


@dataclass(frozen=True, slots=True)
class HomeAgentAnswers:
    """Notice: ``address``, taken as unreachable, answered again."""

    address: str


Action = (
    Send
    | InstallBinding
    | RemoveBinding
    | AaaRequest
    | AaaCancel
    | HomeAgentUnreachable
    | HomeAgentAnswers
    | SendIcmp
)


class ForeignAgent:
    def __init__(
        self,
        *,
        address: str,
        care_of: str | None = None,
        port: int = MIP_PORT,
        ha_port: int = MIP_PORT,
        home_agent: str | None = None,
        max_lifetime: int = 36000,
        max_visitors: int = 1_000_000,
        pending_timeout_s: float = 7.0,
        reverse_tunnel: bool = True,
        gre: bool = True,
        gre_key_format: str = "rfc6245",
        challenge: bool = False,
        ha_security: dict[str, HaSecurity] | None = None,
        real_home_agents: Iterable[str] = (),
        max_pending: int = 65_536,
        aaa: bool = False,
        ha_fallback_after: int = 3,
        random_bytes: Callable[[int], bytes] = os.urandom,
        advertise: AdvertiserConfig | None = None,
        revocation: bool = False,
        revocation_i_bit: bool = True,
        inform_mn: bool = True,
        revocation_retransmit_s: float = 1.0,
        revocation_retries: int = 3,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if gre_key_format not in GRE_FORMATS:
            raise ValueError(f"gre_key_format must be one of {GRE_FORMATS}")
        self.address = address
        self.care_of = care_of or address
        self.port = port
        self.ha_port = ha_port
        self.home_agent = home_agent
        self.max_lifetime = max_lifetime
        self.max_visitors = max_visitors
        self.pending_timeout_s = pending_timeout_s
        self.reverse_tunnel = reverse_tunnel
        self.gre = gre
        self.gre_key_format = gre_key_format
        self.challenge_enabled = challenge
        self.ha_security = dict(ha_security or {})
        self.real_home_agents = frozenset(real_home_agents)
        self.max_pending = max_pending
        self.aaa = aaa
        self.ha_fallback_after = ha_fallback_after  # 0: never re-home
        self._random = random_bytes
        self.stats = FaStats()
        # real HA address -> relayed requests in a row without a reply from it
        self._unanswered: dict[str, int] = {}
        self.unreachable: set[str] = set()  # real HAs taken as gone (see _choose_ha)
        self._pending: dict[str, _Pending] = {}
        self._pending_by_hoa: dict[str, str] = {}  # static HoA -> pending key (NAI)
        self._aaa_tokens: dict[int, str] = {}
        self._token = itertools.count(1)
        self.visitors: dict[str, Visitor] = {}  # home address -> visitor
        self._visitor_by_nai: dict[str, str] = {}
        self._gre_next = (int.from_bytes(random_bytes(4), "big") % 0xFFFFFFF0) + 1
        self._gen = itertools.count(1)
        # One heap for pending deadlines and visitor expiry: (deadline, gen, kind, key).
        self._heap: list[tuple[float, int, str, str]] = []
        self._challenges: dict[str, list[bytes]] = {}  # MN key -> issued, newest last
        self._used_challenges: dict[str, set[bytes]] = {}
        self.last_drop: str | None = None
        self._denied_at: dict[str, float] = {}
        # Agent advertisements on the visitor link (RFC 5944 §2.1), started by FaStart.
        self.advertiser = Advertiser(advertise, rng) if advertise is not None else None
        # Registration revocation (RFC 3543): offered to HAs we share an FA-HA SA with.
        self.revocation = revocation
        self.revocation_i_bit = revocation_i_bit
        self.inform_mn = inform_mn  # our policy when the I bit was not negotiated
        self.revocations = Revocations(
            home=False,
            sa_for=self._revocation_sa,
            retransmit_s=revocation_retransmit_s,
            retries=revocation_retries,
            port=ha_port,
        )

    @property
    def unix_offset(self) -> float:
        """Unix time minus ``now`` (timestamps of RFC 3543 messages); set by the adapter."""
        return self.revocations.unix_offset

    @unix_offset.setter
    def unix_offset(self, value: float) -> None:
        self.revocations.unix_offset = value

    def _revocation_sa(self, addr: str) -> RevocationSA | None:
        return self.ha_security.get(addr)

    # ------------------------------------------------------------------ entry points

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Action]:
        """A datagram from ``src`` at our address ``dst``: a request from an MN or a reply
        from an HA."""
        if not data:
            return self._drop("empty")
        t = data[0]
        if t == RRQ:
            return self._request(data, src, dst, now)
        if t == RRP:
            return self._reply(data, src, now)
        if t in (REVOCATION, REVOCATION_ACK):
            return self._revocation(data, src, dst, now)
        return self._drop("unknown-type")

    # Options a reload may change (everything but the addresses and ports served).
    RELOADABLE: Final = frozenset(
        {
            "home_agent",
            "ha_port",
            "max_lifetime",
            "max_visitors",
            "pending_timeout_s",
            "reverse_tunnel",
            "gre",
            "gre_key_format",
            "challenge",
            "ha_security",
            "aaa",
            "ha_fallback_after",
            "real_home_agents",
            "max_pending",
        }
    )

    def reconfigure(self, **options: Any) -> None:
        """Reload: new values of :data:`RELOADABLE` options (the constructor's names);
        visitors, pending requests and GRE keys stay."""
        unknown = set(options) - self.RELOADABLE
        if unknown:
            raise ValueError(f"cannot change without a restart: {', '.join(sorted(unknown))}")
        if options.get("gre_key_format", self.gre_key_format) not in GRE_FORMATS:
            raise ValueError(f"gre_key_format must be one of {GRE_FORMATS}")
        for name, value in options.items():
            if name == "challenge":
                self.challenge_enabled = value
            elif name == "ha_security":
                self.ha_security = dict(value)
            elif name == "real_home_agents":
                self.real_home_agents = frozenset(value)
            else:
                setattr(self, name, value)

    def aaa_result(
        self,
        token: int,
        now: float,
        *,
        accepted: bool,
        ha_address: str | None = None,
        home_address: str | None = None,
        reply_code: int = FA_MN_AUTH,
    ) -> list[Action]:
        key = self._aaa_tokens.pop(token, None)
        if key is None:
            return []  # the pending request timed out or was replaced meanwhile
        p = self._pending.get(key)
        if p is None or p.aaa_token != token:
            return []
        p.aaa_token = None
        if not accepted:
            self.stats.aaa_rejects += 1
            self._forget_pending(p)
            return self._deny(p.req, p.mn, reply_code or FA_MN_AUTH, p.key, now, local=p.local)
        p.aaa_ha = ha_address
        p.aaa_home = home_address
        return self._relay(p, now)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due (a pending request, a visitor, an
        advertisement, a revocation to retransmit)."""
        best: float | None = None
        heap = self._heap
        while heap:
            deadline, gen, kind, key = heap[0]
            if self._live(gen, kind, key):
                best = deadline
                break
            heapq.heappop(heap)
        for t in (
            self.advertiser.get_timer() if self.advertiser is not None else None,
            self.revocations.get_timer(),
        ):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now: float) -> list[Action]:
        """Pending requests without a reply get 78; visitors whose lifetime ran out go;
        the periodic advertisement; revocations retransmitted."""
        out: list[Action] = []
        if self.advertiser is not None:
            out += self.advertiser.handle_timer(now)
        out += self.revocations.handle_timer(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            _deadline, gen, kind, key = heapq.heappop(heap)
            if not self._live(gen, kind, key):
                continue
            if kind == "p":
                p = self._pending[key]
                self._forget_pending(p)
                self.stats.timeouts += 1
                if p.aaa_token is not None:
                    self._aaa_tokens.pop(p.aaa_token, None)
                self._no_answer(p, out)
                out += self._deny(p.req, p.mn, FA_TIMEOUT, p.key, now, local=p.local)
            else:
                v = self.visitors[key]
                self.stats.visitors_expired += 1
                out += self._remove_visitor(v)
        return out

    # ------------------------------------------------------------------ requests

    def _request(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Action]:
        try:
            req = RegistrationRequest.decode(data)
        except UnknownCriticalExtension:
            return self._drop("unknown-critical-extension")
        except DecodeError as e:
            return self._drop(e.reason)
        self.stats.requests += 1
        if not req.flags & FLAG_D and req.find(RevocationSupportExt) is not None:
            # RFC 3543 §4.2.1: a mobile node that is not co-located must not send it
            return self._drop("mn-revocation-support")
        nai = req.nai
        if (req.home_addr == UNSPECIFIED or req.ha_addr in (UNSPECIFIED, ALL_ONES)) and not nai:
            return self._deny(req, src, FA_MISSING_NAI, None, now, local=dst)
        key = nai or req.home_addr
        old = self._pending.get(key)
        if old is not None and old.ident == req.ident:
            # The MN retransmitted (nonce method: unchanged). Relay the same bytes again
            # so that an HA-SLB can count the retransmission (P§6.4 item 3); to the
            # fallback when the HA they went to is taken as gone.
            self.stats.retransmissions += 1
            if old.aaa_token is None and old.dst is not None:
                old.mn = src
                old.local = dst
                notices: list[Action] = []
                self._no_answer(old, notices)
                if old.dst in self.unreachable:
                    return notices + self._relay(old, now)
                self._arm_pending(old, now)
                return [*notices, Send((old.dst, old.dst_port), old.relayed)]
            return []
        code = self._check(req, key)
        if code == SILENT_DISCARD:
            return self._drop("challenge-without-authentication")
        if code:
            return self._deny(req, src, code, key, now, lifetime=self.max_lifetime, local=dst)
        pre: list[Action] = []
        if old is not None:
            if old.aaa_token is not None:
                pre.append(AaaCancel(old.aaa_token))
            self._forget_pending(old)  # a new attempt replaces the old one
            self._no_answer(old, pre)  # the MN saw no reply to it
        is_new = self._visitor_for(key, req.home_addr) is None
        if (
            is_new
            and req.lifetime != 0
            and len(self.visitors) + len(self._pending) >= self.max_visitors
        ):
            return self._deny(req, src, FA_RESOURCES, key, now, local=dst)
        if len(self._pending) >= self.max_pending:
            # RFC 5944 §3.7.2: 66, insufficient resources; the table's bound is its memory
            self.stats.drops["pending-full"] = self.stats.drops.get("pending-full", 0) + 1
            return self._deny(req, src, FA_RESOURCES, key, now, local=dst)
        p = _Pending(key=key, req=req, mn=src, gen=next(self._gen), deadline=0.0, local=dst)
        p.challenge = req.parsed.challenge if req.parsed is not None else None
        self._pending[key] = p
        if nai and req.home_addr != UNSPECIFIED:
            self._pending_by_hoa[req.home_addr] = key
        self._arm_pending(p, now)
        mn_aaa = self._mn_aaa(req)
        if self.aaa and nai and (is_new or mn_aaa is not None):
            token = next(self._token)
            p.aaa_token = token
            self._aaa_tokens[token] = key
            self.stats.aaa_requests += 1
            if mn_aaa is None:
                return [*pre, AaaRequest(token, nai, req.home_addr)]
            return [
                *pre,
                AaaRequest(
                    token,
                    nai,
                    req.home_addr,
                    mn_aaa.spi,
                    mn_aaa.authenticator,
                    p.challenge or b"",
                    req.covered(mn_aaa),
                ),
            ]
        return pre + self._relay(p, now)

    def _check(self, req: RegistrationRequest, key: str) -> int:
        """FA validity checks (RFC 5944 §3.7.2.1, RFC 3024, RFC 4721); 0 = pass."""
        if req.lifetime > self.max_lifetime and req.lifetime != 0:
            return FA_LIFETIME
        if req.ha_addr in (self.address, self.care_of):
            # RFC 5944 §3.7.2: the HA address is one of ours and we are no HA.
            return FA_INVALID_HA
        flags = req.flags
        if flags & FLAG_T and not self.reverse_tunnel:
            return FA_REVERSE_TUNNEL
        if flags & FLAG_G and not self.gre:
            return FA_ENCAP
        if (
            not flags & FLAG_D
            and req.care_of != self.care_of
            and not (req.lifetime == 0 and req.care_of == req.home_addr)
        ):
            return FA_BAD_COA
        if self.challenge_enabled:
            return self._check_challenge(req, key)
        return 0

    def _check_challenge(self, req: RegistrationRequest, key: str) -> int:
        p = req.parsed
        assert p is not None  # a decoded request
        c = p.challenge
        if c is None:
            return FA_MISSING_CHALLENGE
        # RFC 4721 §3.2: a challenge must be followed by an MN-FA or MN-AAA authentication
        # extension, otherwise the request is silently discarded.
        if p.chal_auth < p.chal:
            return SILENT_DISCARD
        issued = self._challenges.get(key, [])
        if c in issued[-CHALLENGE_WINDOW:] and c not in self._used_challenges.get(key, ()):
            return 0
        if c in issued:
            return FA_STALE_CHALLENGE  # ours, but too old or already used
        return FA_UNKNOWN_CHALLENGE

    @staticmethod
    def _mn_aaa(req: RegistrationRequest) -> GenAuthExt | None:
        """The first MN-AAA extension (RFC 4721), where the walk recorded it."""
        p = req.parsed
        if p is None or p.aaa < 0:
            return None
        i = req.ext_offsets.index(p.aaa)
        e = req.extensions[i]
        assert isinstance(e, GenAuthExt)
        return e

    def _choose_ha(self, p: _Pending) -> tuple[str | None, str | None, int]:
        """(destination, target, port) for a request (module docstring, items 4 and 5)."""
        if p.redirect_to is not None:
            return p.redirect_to, p.redirect_to, self.ha_port
        req = p.req
        field_ha = req.ha_addr
        v = self._visitor_for(p.key, req.home_addr)
        if v is not None and field_ha in (UNSPECIFIED, ALL_ONES, v.target, v.ha_addr):
            if v.ha_addr in self.unreachable:
                back = self._fallback(v.ha_addr, v.target, p)
                if back is not None:
                    return back, back, self.ha_port
            return v.ha_addr, v.target, v.ha_port
        if field_ha not in (UNSPECIFIED, ALL_ONES):
            if field_ha in self.unreachable:
                back = self._fallback(field_ha, None, p)
                if back is not None:
                    return back, back, self.ha_port
            return field_ha, field_ha, self.ha_port
        ha = p.aaa_ha or self.home_agent
        return ha, ha, self.ha_port

    def _fallback(self, dead: str, target: str | None, p: _Pending) -> str | None:
        """Where the requests for ``dead`` go instead: the HA address first relayed to
        (the HA-SLB), else the AAA-assigned or configured one (None: nowhere else)."""
        for a in (target, p.aaa_ha, self.home_agent):
            if a is not None and a != dead and a not in self.unreachable:
                return a
        return None

    def _no_answer(self, p: _Pending, out: list[Action]) -> None:
        """``p`` was relayed and got no reply (replaced by the MN's next attempt, or timed
        out). Counted against a real HA learned from replies (not against the address
        first relayed to: the HA-SLB picks a new real for a repeated request by itself)."""
        dst = p.dst
        if dst is None or dst == p.target or self.ha_fallback_after <= 0:
            return
        n = self._unanswered.get(dst, 0) + 1
        self._unanswered[dst] = n
        if n >= self.ha_fallback_after:
            self._gone(dst, p, n, out)

    def _gone(self, dst: str, p: _Pending, n: int, out: list[Action]) -> None:
        """Take the real HA ``dst`` as gone after ``n`` unanswered requests (or an ICMP
        unreachable, which counts as ``ha_fallback_after`` of them): its requests go to
        the fallback from now on, until it answers again."""
        self._unanswered[dst] = max(self._unanswered.get(dst, 0), n)
        if dst not in self.unreachable:
            self.unreachable.add(dst)
            self.stats.ha_fallbacks += 1
            out.append(HomeAgentUnreachable(dst, self._fallback(dst, p.target, p), n))

    def _answered(self, src: str, out: list[Action]) -> None:
        """A reply from ``src``: it answers."""
        if self._unanswered.pop(src, None) is not None and src in self.unreachable:
            self.unreachable.discard(src)
            out.append(HomeAgentAnswers(src))

    def _relay(self, p: _Pending, now: float) -> list[Action]:
        dst, target, port = self._choose_ha(p)
        if dst is None:
            self._forget_pending(p)
            return self._deny(p.req, p.mn, FA_MISSING_HA, p.key, now, local=p.local)
        p.dst, p.target, p.dst_port = dst, target, port
        req = p.req
        msg = req.raw[: self._mn_part_end(req)]
        if self.gre and not req.flags & FLAG_D:
            # RFC 6245 §4.1: in every request (initial, renewal, deregistration) of a
            # GRE session, after MN-HA / challenge / MN-AAA and before FA-HA; not with a
            # co-located care-of address (D). The same key for the whole session.
            v = self._visitor_for(p.key, req.home_addr)
            if v is not None and v.gre_key is not None:
                p.gre_key = v.gre_key
            elif p.gre_key is None:
                p.gre_key = self._new_gre_key()
            if self.gre_key_format in ("rfc6245", "both"):
                msg += GreKeyExt(p.gre_key).encode()
            if self.gre_key_format in ("cvse", "both"):
                msg += gre_key_cvse(p.gre_key).encode()
        sa = self._sa_for(dst, target)
        if sa is not None and not p.dereg:  # Lifetime != 0 only (RFC 5944 §3.7.2.2)
            if self.revocation and not req.flags & FLAG_D:
                # RFC 3543 §3.2, §4.2.1: with an FA-HA SA, offer revocation; protected by
                # the FA-HA authenticator that follows
                msg += support_ext(self.revocation_i_bit, self.revocations.timestamp(now))
                p.rev_sent = True
            msg = append_auth(msg, EXT_FA_HA, sa.spi, sa.auth)
        p.relayed = msg
        p.relayed_at = now
        self._arm_pending(p, now)
        self.stats.relayed += 1
        return [Send((dst, p.dst_port), msg)]

    @staticmethod
    def _mn_part_end(req: RegistrationRequest) -> int:
        """End of the MN's authorization-enabling extensions (MN-HA, MN-AAA), as the walk
        recorded it (the whole request when it has none)."""
        p = req.parsed
        return (p.mn_auth_end if p is not None else 0) or len(req.raw)

    def _new_gre_key(self) -> int:
        k = self._gre_next
        self._gre_next = (k % 0xFFFFFFFE) + 1  # never 0 (0 lets the HA choose, RFC 6245)
        return k

    def _sa_for(self, *addrs: str | None) -> HaSecurity | None:
        for a in addrs:
            if a is not None:
                sa = self.ha_security.get(a)
                if sa is not None:
                    return sa
        return None

    # ------------------------------------------------------------------ replies

    def _reply(self, data: bytes, src: Addr, now: float) -> list[Action]:
        try:
            rep = RegistrationReply.decode(data)
        except UnknownCriticalExtension:
            return self._drop("unknown-critical-extension")
        except DecodeError as e:
            return self._drop("reply-" + e.reason)
        p = self._match(rep)
        if p is None:
            return self._drop("unmatched-reply")
        # A real HA counts as answering (re-homing, RFC 4433) only by a reply the FA accepts
        # from it: an unmatched or foreign-sourced datagram proves nothing.
        heard: list[Action] = []
        # FA-HA on the reply (RFC 5944 §3.7.1, §3.7.3.1): with an SA, a reply with a nonzero
        # Lifetime must carry exactly one valid FA-HA extension (a deregistration, which
        # is relayed without FA-HA, may be answered without one; if present it is checked).
        sa = self._sa_for(src[0], p.dst, p.target)
        faha = -1  # index of the verified FA-HA extension
        if sa is not None:
            fahas = [
                i
                for i, e in enumerate(rep.extensions)
                if isinstance(e, AuthExt) and e.ext_type == EXT_FA_HA
            ]
            if len(fahas) == 1:
                ext = rep.extensions[fahas[0]]
                if isinstance(ext, AuthExt) and ext.spi == sa.spi and rep.verify(ext, sa.auth):
                    faha = fahas[0]
            if faha < 0 and not self._expected_source(src[0], p):
                return self._drop("reply-unexpected-source")
            if faha < 0 and (rep.lifetime != 0 or fahas):
                self.stats.replies += 1
                self._forget_pending(p)
                self.stats.drops["reply-fa-ha-auth"] = (
                    self.stats.drops.get("reply-fa-ha-auth", 0) + 1
                )
                if self._unanswered:
                    self._answered(src[0], heard)
                return heard + self._deny(p.req, p.mn, FA_HA_AUTH, p.key, now, local=p.local)
        elif not self._expected_source(src[0], p):
            # Without an FA-HA SA nothing authenticates the reply: only the HA we sent the
            # request to, or a configured real HA behind the HA-SLB, may answer it.
            return self._drop("reply-unexpected-source")
        if self._unanswered:
            self._answered(src[0], heard)
        self.stats.replies += 1
        if src[0] != p.dst:
            self.stats.replies_other_source += 1
        # RFC 5944 §3.5.1: what follows a verified FA-HA extension is not protected; the FA
        # acts only on the extensions before it (a redirect's HA, the HA's GRE key).
        covered = rep.extensions[:faha] if faha >= 0 else rep.extensions
        code = rep.code
        if code == HA_REDIRECT and p.redirects < MAX_REDIRECTS:
            dyn = next((e for e in covered if isinstance(e, DynamicHaExt)), None)
            if (
                dyn is not None
                and dyn.subtype == 2
                and dyn.address not in (UNSPECIFIED, ALL_ONES)
                and p.req.ha_addr in (UNSPECIFIED, ALL_ONES)
            ):
                # RFC 4433: the HA field is ours to fill (dynamic HA assignment), so the
                # FA re-sends the request to the HA the reply names. With a unicast HA
                # field the MN chose the HA and gets the 143 itself.
                p.redirects += 1
                p.redirect_to = dyn.address
                self.stats.redirects += 1
                return heard + self._relay(p, now)
        self._forget_pending(p)
        self.stats.ha_codes[code] = self.stats.ha_codes.get(code, 0) + 1
        out: list[Action] = heard
        if rep.accepted:
            if p.dereg:
                self.stats.deregistered += 1
                v = self._visitor_for(p.key, p.req.home_addr)
                if v is not None:
                    out += self._remove_visitor(v)
            else:
                self.stats.accepted += 1
                out += self._add_visitor(p, rep, src, now, covered)
                v = self._visitor_for(p.key, p.req.home_addr)
                if v is not None:
                    v.revocation = self._negotiated(p, rep)
                    if v.revocation:
                        self.stats.revocation_negotiated += 1
                if p.challenge is not None:
                    self._used_challenges.setdefault(p.key, set()).add(p.challenge)
        payload = rep.raw[: self._mn_reply_end(rep)]
        payload += self._challenge_ext(p.key)
        out.append(Send(p.mn, payload, p.local))
        return out

    def _negotiated(self, p: _Pending, rep: RegistrationReply) -> int:
        """RFC 3543 §4.2.1: negotiated when we offered it and the HA's reply carries a
        Revocation Support extension protected by its FA-HA authenticator (the reply
        verified above); the I bit when both set it."""
        if not p.rev_sent:
            return 0
        faha = -1
        for i, e in enumerate(rep.extensions):
            if isinstance(e, AuthExt) and e.ext_type == EXT_FA_HA:
                faha = i
        for i, e in enumerate(rep.extensions):
            if isinstance(e, RevocationSupportExt) and i < faha:
                i_bit = bool(e.flags & SUPPORT_I) and self.revocation_i_bit
                return negotiated_state(e.timestamp, i_bit)
        return 0

    def _match(self, rep: RegistrationReply) -> _Pending | None:
        low = rep.ident & _U32
        nai = rep.nai
        p = self._pending.get(nai) if nai else None
        if p is None:
            key = self._pending_by_hoa.get(rep.home_addr, rep.home_addr)
            p = self._pending.get(key)
        if p is None or (p.ident & _U32) != low or p.aaa_token is not None or p.dst is None:
            return None
        return p

    def _expected_source(self, addr: str, p: _Pending) -> bool:
        """A reply from where we sent the request, or from a configured real HA (the
        HA-SLB's reals answer requests sent to its virtual address, P§6.4)."""
        return addr == p.dst or addr in self.real_home_agents

    @staticmethod
    def _reply_gre_key(extensions: list[Extension]) -> int | None:
        for e in extensions:
            if isinstance(e, GreKeyExt):
                return e.key
            if isinstance(e, CvseExt) and e.gre_key is not None:
                return e.gre_key
        return None

    @staticmethod
    def _mn_reply_end(rep: RegistrationReply) -> int:
        """The reply as the MN gets it: up to the MN-HA extension, or without the FA's
        extensions (GRE key, FA-HA, 3GPP2 CVSE) when there is no MN-HA."""
        for i, e in enumerate(rep.extensions):
            if isinstance(e, AuthExt) and e.ext_type == EXT_MN_HA:
                nxt = i + 1
                return rep.ext_offsets[nxt] if nxt < len(rep.ext_offsets) else len(rep.raw)
        for i, e in enumerate(rep.extensions):
            if (
                isinstance(e, GreKeyExt)
                or (isinstance(e, AuthExt) and e.ext_type == EXT_FA_HA)
                or (isinstance(e, CvseExt) and e.gre_key is not None)
            ):
                return rep.ext_offsets[i]
        return len(rep.raw)

    # ------------------------------------------------------------------ visitors

    def _visitor_for(self, key: str, home_addr: str) -> Visitor | None:
        hoa = self._visitor_by_nai.get(key)
        if hoa is None and home_addr != UNSPECIFIED:
            hoa = home_addr
        return self.visitors.get(hoa) if hoa is not None else None

    def _add_visitor(
        self,
        p: _Pending,
        rep: RegistrationReply,
        src: Addr,
        now: float,
        covered: list[Extension],
    ) -> list[Action]:
        out: list[Action] = []
        req = p.req
        hoa = rep.home_addr if rep.home_addr != UNSPECIFIED else req.home_addr
        old = self._visitor_for(p.key, req.home_addr)
        if old is not None and old.home_addr != hoa:
            out += self._remove_visitor(old)
        assert p.dst is not None
        # The real HA: the reply's HA field, unless it only repeats an address we sent to
        # (the HA-SLB VIP); then the source address tells us who answered.
        target = p.target or p.dst
        if rep.ha_addr not in (UNSPECIFIED, ALL_ONES, target, p.dst):
            real = rep.ha_addr
        elif src[0] != target:
            real = src[0]
        else:
            real = p.dst
        # RFC 5944 §3.7.3.2: min(granted, our maximum), timed from when we relay the reply
        # (the HA may not grant more than requested, P§1.3; min() guards anyway).
        lifetime = min(rep.lifetime, req.lifetime, self.max_lifetime)
        expires = None if lifetime == LIFETIME_INFINITE else now + lifetime
        ha_key = self._reply_gre_key(covered)
        if ha_key is not None and p.gre_key is not None and ha_key != p.gre_key:
            # RFC 6245 lets the HA assign its own key; our data plane uses one key per
            # tunnel (the HA here echoes ours), so count it for the operator.
            self.stats.gre_key_mismatch += 1
        if (self.gre and p.gre_key is not None) or req.flags & FLAG_G:
            encap = Encap.GRE
        elif req.flags & FLAG_M:
            encap = Encap.MINIMAL
        else:
            encap = Encap.IPIP
        binding = Binding(
            home_addr=hoa,
            care_of=req.care_of,
            ha_addr=real,
            lifetime=lifetime,
            expires=expires if expires is not None else float("inf"),
            ident=req.ident,
            flags=req.flags,
            encap=encap,
            gre_key=p.gre_key,
            nai=req.nai,
            src_addr=p.mn[0],
            src_port=p.mn[1],
        )
        gen = next(self._gen)
        v = Visitor(
            home_addr=hoa,
            nai=req.nai,
            mn=p.mn,
            ha_addr=real,
            ha_port=src[1],
            target=p.target or p.dst,
            lifetime=lifetime,
            expires=expires,
            ident=req.ident,
            flags=req.flags,
            gre_key=p.gre_key,
            gen=gen,
            binding=binding,
            local=p.local,
        )
        aaa_home = p.aaa_home
        if aaa_home is None and old is not None:
            aaa_home = old.aaa_home_addr
        v.aaa_home_addr = aaa_home
        if aaa_home is not None and aaa_home != hoa:
            # The HA (or its pool) assigned another address than AAA: visible in the view.
            self.stats.aaa_home_mismatch += 1
        self.visitors[hoa] = v
        if req.nai:
            self._visitor_by_nai[req.nai] = hoa
        if expires is not None:
            heapq.heappush(self._heap, (expires, gen, "v", hoa))
        out.append(InstallBinding(binding))
        self._update_busy()
        return out

    def _remove_visitor(self, v: Visitor) -> list[Action]:
        if self.visitors.get(v.home_addr) is v:
            del self.visitors[v.home_addr]
        if v.nai is not None and self._visitor_by_nai.get(v.nai) == v.home_addr:
            del self._visitor_by_nai[v.nai]
            self._challenges.pop(v.nai, None)
            self._used_challenges.pop(v.nai, None)
        self._update_busy()
        return [RemoveBinding(v.binding)]

    def _update_busy(self) -> None:
        """RFC 5944 §2.1.1: B while the visitor list is full."""
        if self.advertiser is not None:
            self.advertiser.set_busy(len(self.visitors) >= self.max_visitors)

    # ------------------------------------------------------------------ events

    def handle_event(self, event: FaEvent, now: float) -> list[Action]:
        """Typed events from the adapter and the operator (see :data:`FaEvent`)."""
        adv = self.advertiser
        if isinstance(event, FaStart):
            return list(adv.start(now)) if adv is not None else []
        if isinstance(event, VisitorLinkChanged):
            if adv is None:
                return []
            if not event.up:
                adv.stop()
                return []
            return list(adv.start(now)) if not adv.running else []
        if isinstance(event, ClearVisitors):
            if event.all:
                gone = list(self.visitors.values())
            elif event.nai is not None:
                hoa = self._visitor_by_nai.get(event.nai)
                v = self.visitors.get(hoa) if hoa is not None else None
                gone = [v] if v is not None else []
            elif event.home_addr is not None:
                v = self.visitors.get(event.home_addr)
                gone = [v] if v is not None else []
            else:
                gone = []
            out: list[Action] = []
            for v in gone:
                self.stats.visitors_cleared += 1
                out += self._revoke_visitor(v, now)
            return out
        if isinstance(event, VisitorGone):
            v = self.visitors.get(event.home_addr)
            return self._revoke_visitor(v, now, reachable=False) if v is not None else []
        raise TypeError(f"not a foreign agent event: {event!r}")  # pragma: no cover

    # ------------------------------------------------------------------ ICMP

    def receive_icmp(self, data: bytes, src: str, dst: str, now: float) -> list[Action]:
        """An ICMP message (from its Type byte on) from ``src`` to our ``dst``: an Agent
        Solicitation on the visitor link (answered with an advertisement, RFC 5944 §2.3),
        or an ICMP error about a request we relayed (answered to the MN with 80-88,
        §3.7.3). Anything else is ignored (counted)."""
        if not data:
            return self._drop("icmp-empty")
        t = data[0]
        if t == icmp_wire.ROUTER_SOLICITATION:
            if self.advertiser is None:
                return []
            try:
                icmp_wire.AgentSolicitation.decode(data)
            except DecodeError as e:
                return self._drop("solicitation-" + e.reason)
            return list(self.advertiser.solicited(src, now))
        if t in icmp_wire.ERROR_TYPES:
            return self._icmp_error(data, now)
        return []

    def _icmp_error(self, data: bytes, now: float) -> list[Action]:
        """Match the quoted datagram to a pending relayed request: its UDP destination is
        the HA (address and port) we relayed to, from our address, and the quoted request's
        NAI or home address and Identification name the pending request."""
        try:
            err = icmp_wire.IcmpError.decode(data)
            ip, rest = icmp_wire.decode_quoted(err.quoted)
        except DecodeError as e:
            return self._drop("icmp-" + e.reason)
        code = icmp_reply_code(err.icmp_type, err.code)
        if code is None:
            return []
        if ip.proto != 17 or ip.src not in (self.address, self.care_of) or len(rest) < 8 + 24:
            self.stats.icmp_unmatched += 1
            return []
        _sport, dport = _UDP_PORTS.unpack_from(rest)
        rrq = rest[8:]
        if rrq[0] != RRQ:
            self.stats.icmp_unmatched += 1
            return []
        ident = int.from_bytes(rrq[16:24], "big")
        p = None
        nai = _quoted_nai(rrq)
        if nai is not None:
            p = self._pending.get(nai)
        if p is None:
            hoa = ip_str(rrq[4:8])
            p = self._pending.get(self._pending_by_hoa.get(hoa, hoa))
        if (
            p is None
            or p.dst != ip.dst
            or p.dst_port != dport
            or (p.ident & _U32) != (ident & _U32)
        ):
            self.stats.icmp_unmatched += 1
            return []
        self.stats.icmp_errors += 1
        dead = p.dst
        if (
            dead != p.target
            and self.ha_fallback_after > 0
            and self._fallback(dead, p.target, p) is not None
        ):
            # RFC 4433 re-homing: an unreachable from a real HA learned from its replies
            # says at once what ``ha_fallback_after`` unanswered requests would (it is
            # gone), so the request goes to the HA-SLB, which picks a live real, rather
            # than failing the MN with 80-88 (RFC 5944 §3.7.2 when there is nowhere else).
            out: list[Action] = []
            self._gone(dead, p, self.ha_fallback_after, out)
            return out + self._relay(p, now)
        self._forget_pending(p)
        return self._deny(p.req, p.mn, code, p.key, now, local=p.local)

    # ------------------------------------------------------------------ revocation

    def _revocation(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Action]:
        """A Registration Revocation from a home agent (RFC 3543 §4.2.2.2) or the
        acknowledgement of ours (§4.2.3.1)."""
        inb = self.revocations.authenticate(data, src)
        if inb is None:
            return self._drop("revocation-rejected")
        msg = inb.message
        if isinstance(msg, RevocationAck):
            p = self.revocations.acknowledged(msg, src)
            out: list[Action] = []
            if p is not None and p.inform and msg.flags & ACK_I:
                # we asked; the HA wants the mobile node told (§4.2.3.1)
                out += self._inform_mn(p.home_addr)
            return out
        assert isinstance(msg, RegistrationRevocation)
        v = self.visitors.get(msg.home_addr)
        if v is not None and (
            msg.home_domain_addr not in (v.ha_addr, v.target)
            or msg.foreign_domain_addr not in (self.care_of, self.address)
        ):
            v = None  # not the binding this agent serves for that HA
        registered = peer_timestamp(v.revocation) if v is not None and v.revocation else None
        if not self.revocations.fresh(msg, src[0], registered):
            return self._drop("revocation-stale")
        out = []
        inform = False
        if v is not None:
            # with the I bit negotiated the HA decides (§4.2.2.2), else our policy
            inform = bool(msg.flags & REV_I) if v.revocation & I_NEGOTIATED else self.inform_mn
            self.stats.revoked_by_ha += 1
            out += self._remove_visitor(v)
            if inform:
                out += self._inform_mn(v.home_addr)
        out.append(self.revocations.acknowledge(msg, src, dst, inform and bool(msg.flags & REV_I)))
        return out

    def _revoke_visitor(self, v: Visitor, now: float, reachable: bool = True) -> list[Action]:
        """Remove a visitor and, where revocation was negotiated, revoke it at its home
        agent (RFC 3543 §4.2.3.1): with the I bit negotiated we ask the HA whether to tell
        the mobile node; without it we follow our own policy now. A visitor that left the
        link (``reachable`` False) cannot be told."""
        out: list[Action] = []
        if v.revocation & NEGOTIATED:
            ask = reachable and bool(v.revocation & I_NEGOTIATED)
            out += self.revocations.revoke(
                (v.ha_addr, v.ha_port),
                v.home_addr,
                v.ha_addr,
                self.care_of,
                inform=ask,
                expires=v.expires if v.expires is not None else float("inf"),
                now=now,
                src=(self.address, self.port),
            )
            self.stats.revoked_by_fa += 1
            if reachable and not ask and self.inform_mn:
                out += self._inform_mn(v.home_addr)
        elif reachable and self.inform_mn:
            out += self._inform_mn(v.home_addr)
        out += self._remove_visitor(v)
        return out

    def _inform_mn(self, home_addr: str) -> list[Action]:
        """RFC 3543 §4.1: a unicast Agent Advertisement with sequence number 0 tells the
        mobile node its binding is gone (it registers again, RFC 5944 §2.4.4)."""
        if self.advertiser is None or not self.advertiser.running:
            return []
        self.revocations.stats.mn_informed += 1
        return [self.advertiser.reset_notice(home_addr)]

    # ------------------------------------------------------------------ helpers

    def _live(self, gen: int, kind: str, key: str) -> bool:
        if kind == "p":
            p = self._pending.get(key)
            return p is not None and p.gen == gen
        v = self.visitors.get(key)
        return v is not None and v.gen == gen

    def _arm_pending(self, p: _Pending, now: float) -> None:
        p.gen = next(self._gen)
        p.deadline = now + self.pending_timeout_s
        heapq.heappush(self._heap, (p.deadline, p.gen, "p", p.key))

    def _forget_pending(self, p: _Pending) -> None:
        if self._pending.get(p.key) is p:
            del self._pending[p.key]
        hoa = p.req.home_addr
        if self._pending_by_hoa.get(hoa) == p.key:
            del self._pending_by_hoa[hoa]
        if p.aaa_token is not None:
            self._aaa_tokens.pop(p.aaa_token, None)

    def _drop(self, reason: str) -> list[Action]:
        d = self.stats.drops
        d[reason] = d.get(reason, 0) + 1
        self.last_drop = reason  # for the adapter's rate-limited log
        return []

    def _challenge_ext(self, key: str | None) -> bytes:
        """A fresh RFC 4721 challenge for the MN's next request (every reply we send)."""
        if not self.challenge_enabled or key is None:
            return b""
        c = self._random(CHALLENGE_LEN)
        issued = self._challenges.get(key)
        if issued is None:
            if len(self._challenges) >= self.max_visitors:
                # Bound the table: forget the oldest MN that never registered.
                oldest = next(iter(self._challenges))
                del self._challenges[oldest]
                self._used_challenges.pop(oldest, None)
            issued = self._challenges[key] = []
        issued.append(c)
        if len(issued) > CHALLENGE_HISTORY:
            dropped = issued.pop(0)
            used = self._used_challenges.get(key)
            if used is not None:
                used.discard(dropped)
        return ChallengeExt(c).encode()

    def _deny(
        self,
        req: RegistrationRequest,
        mn: Addr,
        code: int,
        key: str | None,
        now: float,
        *,
        lifetime: int = 0,
        local: Addr | None = None,
    ) -> list[Action]:
        """An FA-generated reply (RFC 5944 §3.7.2.3): Home Address, Home Agent and
        Identification copied from the request, no MN-HA, the request's NAI echoed.

        Lifetime: copied from the request, except with 69 where it carries the largest
        lifetime we accept. At most one denial per second goes to the same MN (§3.7.2);
        the MN is identified by its NAI / home address, not its source address (a load
        generator runs many MNs behind one socket).
        """
        who = key if key is not None else f"{mn[0]}:{mn[1]}"
        if code in (FA_UNKNOWN_CHALLENGE, FA_MISSING_CHALLENGE, FA_STALE_CHALLENGE):
            # A challenge denial is the first half of the RFC 4721 exchange: it is limited
            # on its own so that the MN's immediate retry can still get its final answer.
            who += "/challenge"
        last = self._denied_at.get(who)
        if last is not None and now - last < DENIAL_INTERVAL_S:
            return self._drop("denial-rate-limited")
        if len(self._denied_at) >= 65536:  # bound the table: forget entries over 1 s old
            self._denied_at = {
                k: t for k, t in self._denied_at.items() if now - t < DENIAL_INTERVAL_S
            }
        self._denied_at[who] = now
        self.stats.fa_codes[code] = self.stats.fa_codes.get(code, 0) + 1
        rep = RegistrationReply(
            code=code,
            lifetime=lifetime if code == FA_LIFETIME else req.lifetime,
            home_addr=req.home_addr,
            ha_addr=req.ha_addr,
            ident=req.ident,
        )
        msg = rep.header()
        if req.nai:
            msg += NaiExt(req.nai).encode()
        msg += self._challenge_ext(key)
        return [Send(mn, msg, local)]

    # ------------------------------------------------------------------ views

    def iter_visitors(self) -> Iterator[Visitor]:
        return iter(self.visitors.values())

    @property
    def pending_count(self) -> int:
        return len(self._pending)


__all__ = [
    "CHALLENGE_WINDOW",
    "AaaCancel",
    "AaaRequest",
    "ClearVisitors",
    "FaEvent",
    "FaStart",
    "FaStats",
    "ForeignAgent",
    "HaSecurity",
    "HomeAgentAnswers",
    "HomeAgentUnreachable",
    "Visitor",
    "VisitorGone",
    "VisitorLinkChanged",
    "icmp_reply_code",
]
