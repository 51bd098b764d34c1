"""Mobile node registration client, sans-IO (RFC 5944 §3.6; P§1.2-1.3, P§1.7, P§2.1-2.4).

One :class:`MobileNode` is one MN: it builds authenticated Registration Requests, matches
and verifies the replies, retransmits with exponential backoff, resynchronises after a 133
(timestamps: clock offset from the reply's Identification; nonces: the reply's nonce),
renews before the granted lifetime runs out and deregisters (one care-of address, or all
bindings with CoA = HoA).

RFC 5944 §3.6 details: a reply is matched on the low 32 bits of the Identification; an HA
reply (codes 0/1, 128+) needs exactly one valid MN-HA extension or it is silently ignored
(FA denials 64-127/194 carry none); retransmissions start at >= 1 s, double, and are capped
by ``retransmit_max_s`` and the requested lifetime -- with timestamps each one is a new
request with a new Identification, with nonces the same bytes are resent (§3.6.3); the
granted lifetime counts from when the request was sent (§3.6.2.2); repairs of §3.6.2.3:
133 resync, 69 retry with the FA's maximum lifetime, 136 retry with the HA address the
reply names, and RFC 4721's 104-106 retry with the FA's fresh challenge; and 129 from
another HA than the one that assigned a dynamic home address (re-homed by the HA-SLB) retries
asking that HA for an address.

Re-homing (RFC 4433 §5.1.3: when its Mobile IP session ends the MN may drop the assigned
HA and ask for a new one): an MN that learned its real HA from a reply and gets no answer
to ``ha_fallback_after`` transmissions in a row of a registration takes the session as
ended: the next request names the configured HA again (the HA-SLB virtual address, or
``0.0.0.0`` / ``255.255.255.255`` to be assigned one), with :class:`HaFallback` as the
notice.

Modes:

* **FA care-of** (``foreign_agent`` set): requests go to the FA, CoA = the FA's care-of
  address, D flag clear.
* **co-located** (``foreign_agent`` None): requests go straight to the HA (UDP 434), CoA = the
  MN's own co-located address, D flag set.
* **at home** (after :meth:`MobileNode.return_home`): the MN deregisters every binding
  straight with its home agent (CoA = HoA, Lifetime 0, RFC 5944 §3.6.1.1) and registers no
  more until it moves away again.

Movement (RFC 5944 §2.4.2): :meth:`MobileNode.attach` makes the MN register through
another foreign agent at once (the agent discovery of :mod:`mobileha.core.movement` calls
it). The MN's replay state (its last Identifications, the clock offset learned from a 133,
the HA's nonce) is the same object across foreign agents, so the first request through a
new FA is as fresh as a renewal.

Every entry point takes ``now`` (monotonic seconds) and returns actions (:class:`Send`):
:meth:`MobileNode.register` / :meth:`MobileNode.deregister` (the user's commands),
:meth:`MobileNode.receive_datagram` (a reply) and :meth:`MobileNode.handle_timer`;
:meth:`MobileNode.get_timer` is the one timer the adapter arms. Timestamp Identifications need
wall time: the adapter passes ``unix_offset`` (``time.time() - now``); the core never reads
a clock. The random low bits of Identifications come from the injected ``random_bytes``.

States and events are the explicit table :data:`TRANSITIONS`; every state change goes
through :meth:`MobileNode._to`, which checks it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from mobileha.core.actions import Addr, Send
from mobileha.core.binding import FLAG_D, FLAG_G, FLAG_M, FLAG_S, FLAG_T
from mobileha.wire import DecodeError
from mobileha.wire.auth import (
    CHAP_SPI,
    NTP_EPOCH_OFFSET,
    Authenticator,
    mn_aaa_chap_authenticator,
)
from mobileha.wire.mip import (
    EXT_MN_HA,
    GEN_AUTH_MN_AAA,
    LIFETIME_INFINITE,
    MIP_PORT,
    AuthExt,
    ChallengeExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    append_auth,
    append_gen_auth,
)

_U32: Final = 0xFFFFFFFF
UNSPECIFIED: Final = "0.0.0.0"
ALL_ONES: Final = "255.255.255.255"

# RFC 5944 §3.6.3: first retransmission after >= 1 s, doubled each time, capped.
DEFAULT_RETRANSMIT_S: Final = 1.0
DEFAULT_RETRANSMIT_MAX_S: Final = 16.0
DEREG_MAX_TRIES: Final = 5  # a deregistration nobody answers is given up after this
MAX_RESYNC: Final = 3  # consecutive 133 / challenge retries before we treat it as a denial

CODE_MISMATCH: Final = 133
CODE_LIFETIME_TOO_LONG: Final = 69
CODE_UNKNOWN_HA: Final = 136
CODE_HA_ADMIN_PROHIBITED: Final = 129
MIN_RETRANSMIT_S: Final = 1.0  # RFC 5944 §3.6.3: MUST NOT be less than 1 second
FA_CHALLENGE_CODES: Final = frozenset({104, 105, 106})  # unknown / missing / stale challenge


class MnState(StrEnum):
    IDLE = "idle"  # not registered, nothing in flight
    REGISTERING = "registering"  # request in flight, no binding
    REGISTERED = "registered"  # binding valid, waiting to renew
    RENEWING = "renewing"  # binding valid, re-registration in flight
    DEREGISTERING = "deregistering"  # deregistration in flight


class MnEvent(StrEnum):
    REGISTER = "register"  # user asks to register
    ACCEPTED = "accepted"  # authenticated reply, code 0/1, lifetime > 0
    DEREG_ACCEPTED = "dereg-accepted"  # reply to a deregistration, accepted
    DENIED = "denied"  # final denial (any non-resync code)
    RESYNC = "resync"  # 133 / 104-106: retry at once with new ID / nonce / challenge
    TIMEOUT = "timeout"  # retransmission timer
    GIVE_UP = "give-up"  # retransmissions of a deregistration exhausted
    RENEW_DUE = "renew-due"  # renewal point of the granted lifetime reached
    EXPIRED = "expired"  # the binding's lifetime ran out
    DEREGISTER = "deregister"  # user asks to deregister
    MOVE = "move"  # registers through another foreign agent (movement detected)
    HOME = "home"  # back on the home link: deregisters every binding with the HA
    HOME_UNBOUND = "home-unbound"  # back home without a home address: nothing to remove


S = MnState
E = MnEvent

# (state, event) -> new state. Pairs not listed are ignored (the event does not apply).
TRANSITIONS: Final[dict[tuple[MnState, MnEvent], MnState]] = {
    (S.IDLE, E.REGISTER): S.REGISTERING,
    (S.IDLE, E.DEREGISTER): S.DEREGISTERING,  # e.g. clean up after a restart
    (S.REGISTERING, E.ACCEPTED): S.REGISTERED,
    (S.REGISTERING, E.DENIED): S.IDLE,
    (S.REGISTERING, E.RESYNC): S.REGISTERING,
    (S.REGISTERING, E.TIMEOUT): S.REGISTERING,
    (S.REGISTERING, E.DEREGISTER): S.DEREGISTERING,
    (S.REGISTERED, E.RENEW_DUE): S.RENEWING,
    (S.REGISTERED, E.REGISTER): S.RENEWING,  # explicit re-registration
    (S.REGISTERED, E.EXPIRED): S.REGISTERING,
    (S.REGISTERED, E.DEREGISTER): S.DEREGISTERING,
    (S.RENEWING, E.ACCEPTED): S.REGISTERED,
    (S.RENEWING, E.DENIED): S.REGISTERED,  # the old binding stays valid until it expires
    (S.RENEWING, E.RESYNC): S.RENEWING,
    (S.RENEWING, E.TIMEOUT): S.RENEWING,
    (S.RENEWING, E.EXPIRED): S.REGISTERING,
    (S.RENEWING, E.DEREGISTER): S.DEREGISTERING,
    (S.DEREGISTERING, E.DEREG_ACCEPTED): S.IDLE,
    (S.DEREGISTERING, E.DENIED): S.IDLE,
    (S.DEREGISTERING, E.RESYNC): S.DEREGISTERING,
    (S.DEREGISTERING, E.TIMEOUT): S.DEREGISTERING,
    (S.DEREGISTERING, E.GIVE_UP): S.IDLE,
    (S.DEREGISTERING, E.REGISTER): S.REGISTERING,
    # RFC 5944 §2.4.2: a move registers at once through the new agent, whatever is in
    # flight; with a binding (at the HA, through the old agent) it is a renewal
    (S.IDLE, E.MOVE): S.REGISTERING,
    (S.REGISTERING, E.MOVE): S.REGISTERING,
    (S.REGISTERED, E.MOVE): S.RENEWING,
    (S.RENEWING, E.MOVE): S.RENEWING,
    (S.DEREGISTERING, E.MOVE): S.REGISTERING,
    # RFC 5944 §2.4.3: back home, every binding is deregistered (one CoA's deregistration
    # in flight is replaced by the one of all bindings)
    (S.IDLE, E.HOME): S.DEREGISTERING,
    (S.REGISTERING, E.HOME): S.DEREGISTERING,
    (S.REGISTERED, E.HOME): S.DEREGISTERING,
    (S.RENEWING, E.HOME): S.DEREGISTERING,
    (S.DEREGISTERING, E.HOME): S.DEREGISTERING,
    (S.IDLE, E.HOME_UNBOUND): S.IDLE,
    (S.REGISTERING, E.HOME_UNBOUND): S.IDLE,
    (S.DEREGISTERING, E.HOME_UNBOUND): S.IDLE,
}

IN_FLIGHT: Final = frozenset({S.REGISTERING, S.RENEWING, S.DEREGISTERING})


class TransitionError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class HaFallback:
    """Notice: ``unanswered`` transmissions to the learned HA ``old`` got no reply; the
    requests name ``new`` (the configured HA) again."""

    nai: str | None
    old: str
    new: str
    unanswered: int


@dataclass(slots=True)
class MnSecurity:
    """The MN-HA security association (P§1.6) and replay method (P§1.7)."""

    spi: int
    key: bytes
    algorithm: str = "hmac-md5"
    replay: str = "timestamp"  # timestamp | nonce
    auth: Authenticator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.key, self.algorithm)


@dataclass(slots=True)
class MnStats:
    requests: int = 0  # first transmissions (new registrations, renewals, deregistrations)
    retransmissions: int = 0
    accepted: int = 0
    denied: int = 0
    renewals: int = 0
    deregistrations: int = 0
    resync_timestamp: int = 0
    resync_nonce: int = 0
    challenge_retries: int = 0
    repairs: int = 0  # 69 / 136 retries (RFC 5944 §3.6.2.3)
    retries_after_denial: int = 0
    ha_fallbacks: int = 0  # learned HAs dropped after unanswered transmissions (RFC 4433)
    expired: int = 0
    bad_reply: int = 0  # undecodable datagrams
    unmatched_reply: int = 0  # Identification / address does not match the request
    bad_auth_reply: int = 0  # HA reply without a valid MN-HA authenticator
    codes: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Outstanding:
    """The request in flight."""

    ident: int
    payload: bytes
    dst: Addr
    lifetime: int
    sent_at: float  # first transmission of this attempt (lifetime counts from here)
    timeout: float  # current retransmission timeout
    tries: int = 1
    dereg: bool = False
    all_bindings: bool = False
    sent_at_last: float = 0.0  # last (re)transmission


class MobileNode:
    """One mobile node's registration state machine."""

    def __init__(
        self,
        *,
        nai: str | None,
        home_addr: str,
        ha_addr: str,
        security: MnSecurity,
        foreign_agent: Addr | None = None,
        care_of: str | None = None,
        lifetime: int = 1800,
        reverse_tunnel: bool = False,
        encap: str = "ipip",
        simultaneous: bool = False,
        retransmit_s: float = DEFAULT_RETRANSMIT_S,
        retransmit_max_s: float = DEFAULT_RETRANSMIT_MAX_S,
        renew_fraction: float = 0.8,
        unix_offset: float = 0.0,
        aaa_key: bytes | None = None,
        ha_port: int = MIP_PORT,
        retry_denied_s: float | None = None,
        ha_fallback_after: int = 3,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if foreign_agent is None and care_of is None:
            raise ValueError("co-located mode needs care_of (the co-located care-of address)")
        if home_addr == UNSPECIFIED and not nai:
            raise ValueError("a dynamic home address (0.0.0.0) needs an NAI (RFC 2794)")
        if foreign_agent is None and ha_addr in (UNSPECIFIED, ALL_ONES):
            raise ValueError("co-located mode needs a unicast home agent address")
        self.nai = nai
        self.configured_home_addr = home_addr
        self.home_addr = home_addr
        self.configured_ha = ha_addr
        self.ha_addr = ha_addr
        self.ha_port = ha_port
        self.security = security
        self.foreign_agent = foreign_agent
        self.colocated = foreign_agent is None
        if care_of is None:
            assert foreign_agent is not None
            care_of = foreign_agent[0]
        self.care_of: str = care_of
        self.lifetime = lifetime
        flags = 0
        if self.colocated:
            flags |= FLAG_D
        if reverse_tunnel:
            flags |= FLAG_T
        if simultaneous:
            flags |= FLAG_S
        if encap == "gre":
            flags |= FLAG_G
        elif encap == "minimal":
            flags |= FLAG_M
        elif encap != "ipip":
            raise ValueError(f"unknown encapsulation {encap!r}")
        self.flags = flags
        self.retransmit_s = max(retransmit_s, MIN_RETRANSMIT_S)
        self.retransmit_max_s = max(retransmit_max_s, self.retransmit_s)
        self.renew_fraction = renew_fraction
        self.unix_offset = unix_offset  # Unix time minus ``now``
        self._random = random_bytes
        self.clock_offset = 0  # seconds learned from a timestamp 133 (HA clock - ours)
        self._resync_floor = 0  # after a timestamp 133: the next ID must be above this
        self.nonce = 0  # nonce method: the HA's last nonce
        self.challenge: bytes | None = None  # RFC 4721: last challenge from the FA
        self.aaa_key = aaa_key
        self.state = MnState.IDLE
        self.stats = MnStats()
        self.last_code: int | None = None
        self.last_ident = 0  # last Identification sent
        self.last_accepted_ident = 0  # of the last accepted registration (replay floor, P§1.7)
        self.granted_lifetime = 0
        self.registered_at: float | None = None
        self.expires: float | None = None  # binding expiry (None: no binding / infinite)
        self.renew_at: float | None = None
        self._out: _Outstanding | None = None
        self._resyncs = 0
        self._want_registered = False
        # After a final denial of a registration, register again after this long (None:
        # stay idle). A load driver uses it to ride out an HA or AAA outage.
        self.retry_denied_s = retry_denied_s
        self.retry_at: float | None = None
        self.ha_fallback_after = ha_fallback_after  # 0: never drop the learned HA
        self._hoa_from: str | None = None  # the HA that assigned the dynamic home address
        self.at_home = False  # deregistered (or deregistering) on the home link

    # ------------------------------------------------------------------ state table

    def _to(self, event: MnEvent) -> MnState:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise TransitionError(f"{event} not allowed in state {self.state}")
        self.state = new
        return new

    def can(self, event: MnEvent) -> bool:
        return (self.state, event) in TRANSITIONS

    # ------------------------------------------------------------------ public API

    @property
    def registered(self) -> bool:
        return self.state in (S.REGISTERED, S.RENEWING)

    @property
    def outstanding_ident(self) -> int | None:
        return self._out.ident if self._out is not None else None

    @property
    def destination(self) -> Addr:
        """Where requests go: the FA, or (co-located, or at home) the home agent."""
        if self.foreign_agent is not None and not self.at_home:
            return self.foreign_agent
        return (self.ha_addr, self.ha_port)

    @property
    def mode(self) -> str:
        if self.at_home:
            return "home"
        return "co-located" if self.colocated else "foreign-agent"

    def attach(self, foreign_agent: Addr, care_of: str, now: float) -> list[Send]:
        """Register through ``foreign_agent`` with its care-of address ``care_of``, at once
        (RFC 5944 §2.4.2: the MN moved, or §2.4.4: its agent restarted). A request in
        flight is abandoned (its reply, if any, no longer matches); a challenge from the
        previous agent is dropped (RFC 4721: challenges are the issuing FA's)."""
        self.foreign_agent = foreign_agent
        self.care_of = care_of
        self.colocated = False
        self.at_home = False
        self.flags &= ~FLAG_D
        self.challenge = None
        self._want_registered = True
        self.retry_at = None
        self._resyncs = 0
        self._out = None
        self._to(E.MOVE)
        return self._start(now, dereg=False)

    def return_home(self, now: float) -> list[Send]:
        """The MN is on its home link (RFC 5944 §2.4.3): deregister every binding straight
        with the home agent (CoA = HoA, Lifetime 0, §3.6.1.1) and stay unregistered. The
        adapter has configured the home address on the home link and sent the MN's
        gratuitous ARPs first (§4.6)."""
        self.at_home = True
        self.challenge = None
        self._want_registered = False
        self.retry_at = None
        if self.state is S.DEREGISTERING and self._out is not None and self._out.all_bindings:
            return []  # already deregistering at home
        self._out = None
        self._resyncs = 0
        if self.home_addr == UNSPECIFIED:
            # never bound: nothing at the HA to remove
            self._to(E.HOME_UNBOUND)
            self._clear_binding()
            return []
        self._to(E.HOME)
        self.stats.deregistrations += 1
        return self._start(now, dereg=True, all_bindings=True)

    def register(self, now: float) -> list[Send]:
        """Start (or, when registered, refresh) the registration."""
        if not self.can(E.REGISTER):
            return []
        self._want_registered = True
        if self.state is S.REGISTERED:
            self.stats.renewals += 1
        self._to(E.REGISTER)
        return self._start(now, dereg=False)

    def deregister(self, now: float, *, all_bindings: bool = False) -> list[Send]:
        """Deregister: lifetime 0 for our CoA, or (``all_bindings``) CoA = HoA (P§1.8)."""
        if not self.can(E.DEREGISTER):
            return []
        if self.home_addr == UNSPECIFIED:
            # Never registered a dynamic address: nothing to remove at the HA.
            return []
        self._want_registered = False
        self.retry_at = None
        self._to(E.DEREGISTER)
        self.stats.deregistrations += 1
        return self._start(now, dereg=True, all_bindings=all_bindings)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due (retransmission, renewal, expiry, retry)."""
        cands: list[float] = []
        if self._out is not None:
            cands.append(self._out.sent_at_last + self._out.timeout)
        if self.state is S.REGISTERED and self.renew_at is not None:
            cands.append(self.renew_at)
        if self.state in (S.REGISTERED, S.RENEWING) and self.expires is not None:
            cands.append(self.expires)
        if self.state is S.IDLE and self.retry_at is not None:
            cands.append(self.retry_at)
        return min(cands) if cands else None

    def handle_timer(self, now: float) -> list[Send | HaFallback]:
        """Run the timers that are due."""
        out: list[Send | HaFallback] = []
        if self.state is S.IDLE and self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.stats.retries_after_denial += 1
            self._to(E.REGISTER)
            return [*self._start(now, dereg=False)]
        if (
            self.state in (S.REGISTERED, S.RENEWING)
            and self.expires is not None
            and now >= self.expires
        ):
            self.stats.expired += 1
            self._to(E.EXPIRED)
            self._clear_binding()
            if self.configured_home_addr == UNSPECIFIED:
                self.home_addr = UNSPECIFIED
            self._out = None
            return [*self._start(now, dereg=False)]
        if self.state is S.REGISTERED and self.renew_at is not None and now >= self.renew_at:
            self.renew_at = None
            self.stats.renewals += 1
            self._to(E.RENEW_DUE)
            return [*self._start(now, dereg=False)]
        o = self._out
        if o is not None and now >= o.sent_at_last + o.timeout:
            if o.dereg and o.tries >= DEREG_MAX_TRIES:
                self._out = None
                self._to(E.GIVE_UP)
                self._after_dereg()
                return out
            self._to(E.TIMEOUT)
            self.stats.retransmissions += 1
            # Doubled each time, capped by the configured ceiling and (§3.6.3) by the
            # requested lifetime, never below 1 s.
            cap = self.retransmit_max_s
            if o.lifetime:
                cap = max(MIN_RETRANSMIT_S, min(cap, float(o.lifetime)))
            o.timeout = min(o.timeout * 2, cap)
            o.tries += 1
            n = self.ha_fallback_after
            if n and not o.dereg and o.tries > n and self.ha_addr != self.configured_ha:
                out.append(HaFallback(self.nai, self.ha_addr, self.configured_ha, o.tries - 1))
                self.stats.ha_fallbacks += 1
                self.ha_addr = self.configured_ha
                self._out = None
                sends = self._start(now, dereg=False)
                assert self._out is not None
                self._out.timeout, self._out.tries, self._out.sent_at = o.timeout, 1, o.sent_at
                return [*out, *sends]
            if self.security.replay == "timestamp":
                # RFC 5944 §3.6.3: with timestamps every retransmission gets a new
                # Identification (a new registration); with nonces it is sent unchanged.
                self._out = None
                sends = self._start(now, dereg=o.dereg, all_bindings=o.all_bindings)
                assert self._out is not None
                self._out.timeout = o.timeout
                self._out.tries = o.tries
                self._out.sent_at = o.sent_at
                return [*sends]
            o.sent_at_last = now
            out.append(Send(o.dst, o.payload))
        return out

    # ------------------------------------------------------------------ replies

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Send]:
        """A datagram for this MN from ``src`` at ``dst`` (a Registration Reply)."""
        try:
            rep = RegistrationReply.decode(data)
        except DecodeError:
            self.stats.bad_reply += 1
            return []
        return self._reply(rep, now)

    def _reply(self, rep: RegistrationReply, now: float) -> list[Send]:
        o = self._out
        if o is None or (rep.ident & _U32) != (o.ident & _U32):
            self.stats.unmatched_reply += 1
            return []
        if self.nai is not None and rep.nai is not None and rep.nai != self.nai:
            self.stats.unmatched_reply += 1
            return []
        if self.home_addr != UNSPECIFIED and rep.home_addr != self.home_addr and rep.code < 64:
            self.stats.unmatched_reply += 1
            return []
        code = rep.code
        from_ha = not (64 <= code <= 127 or code == 194)
        mnhas = [e for e in rep.extensions if isinstance(e, AuthExt) and e.ext_type == EXT_MN_HA]
        mnha = mnhas[0] if mnhas else None
        if mnha is not None:
            # RFC 5944 §3.6.2.1: exactly one MN-HA extension, and it must verify.
            if (
                len(mnhas) != 1
                or mnha.spi != self.security.spi
                or not rep.verify(mnha, self.security.auth)
            ):
                self.stats.bad_auth_reply += 1
                return []
        elif from_ha:
            # RFC 5944 §3.6.2.1: an HA reply must carry a valid MN-HA authenticator; an
            # unauthenticated 133 could otherwise desynchronise us (ignore, keep retrying).
            self.stats.bad_auth_reply += 1
            return []
        # A fresh RFC 4721 challenge from the FA rides on every reply it relays.
        for ext in rep.extensions:
            if isinstance(ext, ChallengeExt):
                self.challenge = ext.challenge
        self.stats.codes[code] = self.stats.codes.get(code, 0) + 1
        self.last_code = code
        if self.security.replay == "nonce" and mnha is not None:
            self.nonce = (rep.ident >> 32) & _U32  # every HA reply carries a fresh nonce
        if code == CODE_MISMATCH and self._resyncs < MAX_RESYNC:
            self._resyncs += 1
            if self.security.replay == "timestamp":
                # Offset = HA's time (reply high 32 bits) - our own clock now (P§1.7),
                # as a signed 32-bit difference of NTP seconds.
                ours = (int(now + self.unix_offset) + NTP_EPOCH_OFFSET) & _U32
                ha_secs = (rep.ident >> 32) & _U32
                diff = ((ha_secs - ours + 2**31) & _U32) - 2**31
                self.clock_offset = diff
                # The 133 may also mean "not greater than the last accepted one" (P§1.7):
                # a restarted MN (no memory of its last ID) registering again within the
                # same second draws random low bits and loses half the time. Move past the
                # HA's current second so the retry is greater than anything it accepted
                # from us in that second (still well inside the replay tolerance).
                # (Replaced, not raised, at each 133: a later 133 that moves our clock back
                # must not leave us ahead of the HA's window.)
                self._resync_floor = (ha_secs << 32) | _U32
                self.stats.resync_timestamp += 1
            else:
                self.stats.resync_nonce += 1
            return self._retry(now)
        if code in FA_CHALLENGE_CODES and self.challenge is not None and self._resyncs < MAX_RESYNC:
            self._resyncs += 1
            self.stats.challenge_retries += 1
            return self._retry(now)
        # RFC 5944 §3.6.2.3 repairs: 69 -> retry with the FA's maximum lifetime; 136 -> retry
        # with the unicast HA address the reply names (dynamic HA address resolution).
        if (
            code == CODE_LIFETIME_TOO_LONG
            and not o.dereg
            and 0 < rep.lifetime < self.lifetime
            and self._resyncs < MAX_RESYNC
        ):
            self._resyncs += 1
            self.lifetime = rep.lifetime
            self.stats.repairs += 1
            return self._retry(now)
        if (
            code == CODE_UNKNOWN_HA
            and rep.ha_addr not in (UNSPECIFIED, ALL_ONES, self.ha_addr)
            and self._resyncs < MAX_RESYNC
        ):
            self._resyncs += 1
            self.ha_addr = rep.ha_addr
            self.stats.repairs += 1
            return self._retry(now)
        if (
            code == CODE_HA_ADMIN_PROHIBITED
            and not o.dereg
            and self.configured_home_addr == UNSPECIFIED
            and self.home_addr != UNSPECIFIED
            and rep.ha_addr != self._hoa_from
            and self._resyncs < MAX_RESYNC
        ):
            # Re-homed (the HA-SLB gave the session to another real, RFC 4433): the new HA
            # refuses the home address the previous one assigned; ask it for one (RFC 5944
            # §3.6.1.1 with an NAI: home address 0.0.0.0).
            self._resyncs += 1
            self.home_addr = UNSPECIFIED
            self.stats.repairs += 1
            return self._retry(now)
        self._resyncs = 0
        self._out = None
        if rep.accepted:
            self.last_accepted_ident = max(self.last_accepted_ident, o.ident)
            if o.dereg:
                self._to(E.DEREG_ACCEPTED)
                self._after_dereg()
                return []
            self.stats.accepted += 1
            self._to(E.ACCEPTED)
            self._bound(rep, o, now)
            return []
        self.stats.denied += 1
        self._to(E.DENIED)
        if o.dereg:
            self._after_dereg()
        elif self.state is S.IDLE and self.retry_denied_s is not None and self._want_registered:
            self.retry_at = now + self.retry_denied_s  # try again later (RFC 5944 §3.6.2.3)
        return []

    # ------------------------------------------------------------------ internals

    def _bound(self, rep: RegistrationReply, o: _Outstanding, now: float) -> None:
        if rep.home_addr != UNSPECIFIED:
            if self.home_addr != rep.home_addr or self._hoa_from is None:
                self._hoa_from = rep.ha_addr
            self.home_addr = rep.home_addr
        if rep.ha_addr not in (UNSPECIFIED, ALL_ONES):
            self.ha_addr = rep.ha_addr  # later requests name the HA that answered
        # P§1.3: a larger reply lifetime than requested -> use the request's value.
        granted = min(rep.lifetime, o.lifetime)
        self.granted_lifetime = granted
        self.registered_at = o.sent_at
        if granted == LIFETIME_INFINITE:
            self.expires = None
            self.renew_at = None
        else:
            # The lifetime counts from when the request was sent (RFC 5944 §3.6.1.2).
            self.expires = o.sent_at + granted
            self.renew_at = o.sent_at + granted * self.renew_fraction

    def _clear_binding(self) -> None:
        self.expires = None
        self.renew_at = None
        self.registered_at = None
        self.granted_lifetime = 0

    def _after_dereg(self) -> None:
        self._clear_binding()
        if self.configured_home_addr == UNSPECIFIED:
            self.home_addr = UNSPECIFIED
        self.ha_addr = self.configured_ha

    def _retry(self, now: float) -> list[Send]:
        o = self._out
        assert o is not None
        self._to(E.RESYNC)
        self._out = None
        sends = self._start(now, dereg=o.dereg, all_bindings=o.all_bindings)
        return sends

    def _new_ident(self, now: float) -> int:
        low = int.from_bytes(self._random(4), "big")
        if self.security.replay == "nonce":
            ident = ((self.nonce & _U32) << 32) | low
            if (ident & _U32) == (self.last_ident & _U32):
                ident ^= 1
        else:
            secs = (int(now + self.unix_offset) + NTP_EPOCH_OFFSET + self.clock_offset) & _U32
            ident = (secs << 32) | low
            # Greater than the last accepted one (P§1.7); after a 133 that moved our clock
            # back, an unanswered higher ID must not hold us ahead of the HA's window.
            if ident <= self.last_accepted_ident:
                ident = self.last_accepted_ident + 1 + (low & 0xFFFF)
            if ident <= self._resync_floor:
                ident = self._resync_floor + 1 + (low & 0xFFFF)
            # ... and greater than our last sent one unless that one is ahead of our clock:
            # with random low bits two requests in the same second may go down, and the HA
            # answers 133 when it accepted the first one but its reply has not reached us
            # (an expiry restart right after a retransmission during a failover).
            last = self.last_ident
            if ident <= last and (last >> 32) & _U32 <= secs:
                ident = last + 1 + (low & 0xFFFF)
            if (ident & _U32) == (self.last_ident & _U32):
                ident ^= 1
        self.last_ident = ident
        return ident

    def _start(self, now: float, *, dereg: bool, all_bindings: bool = False) -> list[Send]:
        ident = self._new_ident(now)
        lifetime = 0 if dereg else self.lifetime
        care_of = self.home_addr if (dereg and all_bindings) else self.care_of
        flags = self.flags
        if dereg and all_bindings:
            flags &= ~FLAG_D
        req = RegistrationRequest(
            flags=flags,
            lifetime=lifetime,
            home_addr=self.home_addr,
            ha_addr=self.ha_addr,
            care_of=care_of,
            ident=ident,
        )
        msg = req.header()
        if self.nai:
            msg += NaiExt(self.nai).encode()
        msg = append_auth(msg, EXT_MN_HA, self.security.spi, self.security.auth)
        # RFC 4721 §3.1: the MN-FA Challenge, followed by the MN-AAA (or MN-FA)
        # authentication, comes after the MN-HA extension; never with a co-located CoA.
        if self.challenge is not None and not self.colocated:
            msg += ChallengeExt(self.challenge).encode()
        if self.aaa_key is not None:
            key, challenge = self.aaa_key, (self.challenge or b"") if not self.colocated else b""
            msg = append_gen_auth(
                msg,
                GEN_AUTH_MN_AAA,
                CHAP_SPI,
                lambda covered: mn_aaa_chap_authenticator(key, challenge, covered),
            )
        dst = self.destination
        o = _Outstanding(
            ident, msg, dst, lifetime, now, self.retransmit_s, 1, dereg, all_bindings, now
        )
        self._out = o
        self.stats.requests += 1
        return [Send(dst, msg)]

    # ------------------------------------------------------------------ views

    def status(self, now: float) -> dict[str, object]:
        return {
            "nai": self.nai,
            "state": str(self.state),
            "home_address": self.home_addr,
            "home_agent": self.ha_addr,
            "care_of": self.care_of,
            "mode": self.mode,
            "lifetime_granted": self.granted_lifetime,
            "remaining": None if self.expires is None else max(0.0, self.expires - now),
            "last_code": self.last_code,
        }


__all__ = [
    "DEREG_MAX_TRIES",
    "MAX_RESYNC",
    "TRANSITIONS",
    "HaFallback",
    "MnEvent",
    "MnSecurity",
    "MnState",
    "MnStats",
    "MobileNode",
    "TransitionError",
]
