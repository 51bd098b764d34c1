"""Agent discovery, the agent's side (RFC 5944 §2.1-2.3, RFC 1256), sans-IO.

An :class:`Advertiser` sends the Agent Advertisements of one mobility agent on one link: a
foreign agent on its visitor link (F, its care-of addresses), a home agent on its home link
(H). It is driven like the other cores: :meth:`Advertiser.handle_timer` at
:meth:`Advertiser.get_timer` returns the periodic advertisement, :meth:`Advertiser.solicited`
answers an Agent Solicitation; both return :class:`SendIcmp` actions for the adapter's raw
ICMP socket.

* Sequence numbers (§2.3.2): the first advertisement after start carries 0, each one after
  it (periodic or solicited) one more, 0xffff is followed by 256
  (:func:`~mobileha.wire.icmp.next_sequence`), so that a mobile node tells a restarted
  agent (a drop below 256) from a rollover.
* Interval (§2.1): every ``interval_s``, each one moved by up to ``jitter`` of the interval
  either way (RFC 1256 §4.1: advertisements are randomised so that agents do not
  synchronise); the ICMP Lifetime is 3 intervals by default ("no longer than 1/3 of the
  Lifetime", so that a mobile node can miss two and keep the agent). The first one goes out
  at :meth:`Advertiser.start`.
* Solicitations (§2.3, RFC 1256 §5.5): answered at once; unicast to the soliciting address
  when it is not 0.0.0.0 and within an advertised prefix, else multicast (TTL 1: a unicast
  to an address off the link would not arrive). §2.3 requires a limit on multicast
  advertisements: a multicast answer goes out at most every ``min_gap_s`` (a later
  solicitation in the gap gets none: the previous answer served it), a unicast answer at
  most every ``min_gap_s`` per address and ``max_answers_per_s`` in all (a token bucket),
  so spoofed solicitations cannot turn the agent into a flooder. The source address is not
  required to be on the link (§2.3).
* Flags: :meth:`Advertiser.set_busy` sets B (a foreign agent whose visitor list is full;
  §2.1.1: it keeps advertising so that its visitors know it is alive). R and B need F (§2.1.1).
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from mobileha.wire.icmp import (
    ADV_B,
    ADV_CODE_ROUTER,
    ADV_F,
    ADV_H,
    ADV_R,
    ALL_SYSTEMS,
    AgentAdvertisement,
    MobilityAgentExt,
    PrefixLengthsExt,
    next_sequence,
)

UNSPECIFIED: Final = "0.0.0.0"
DEFAULT_JITTER: Final = 0.1  # +-10% of the interval
MIN_GAP_S: Final = 0.1  # solicited advertisements to one destination
MAX_ANSWERS_PER_S: Final = 50.0


@dataclass(frozen=True, slots=True)
class SendIcmp:
    """Action: send the ICMP message ``payload`` to ``dst`` with IP TTL ``ttl`` out of
    interface ``ifname`` (None: as routed), from ``src`` when given (else the interface's
    address). Agent discovery uses TTL 1 (RFC 5944 §2.1, §2.2)."""

    dst: str
    payload: bytes
    ifname: str | None = None
    ttl: int = 1
    src: str | None = None


@dataclass(frozen=True, slots=True)
class AdvertiserConfig:
    """What one agent advertises on one link.

    ``flags``: the Mobility Agent Advertisement Extension's flags (:data:`ADV_F` etc.; B is
    managed by :meth:`Advertiser.set_busy`). ``care_of``: the FA care-of addresses (at
    least one with F, §2.1.1). ``routers``: the ICMP part's (address, preference) pairs, the
    agent's own address(es) on the link (§2.3.1). ``prefix_lengths``: one per router
    address, or None for no Prefix-Lengths Extension (all agents of a link must agree,
    §2.3). ``source``: the IP source of the advertisements (the address mobile nodes send
    their requests to; None: the interface's address).
    """

    interface: str
    flags: int
    registration_lifetime: int
    care_of: tuple[str, ...] = ()
    routers: tuple[tuple[str, int], ...] = ()
    prefix_lengths: tuple[int, ...] | None = None
    interval_s: float = 1.0
    lifetime_s: int | None = None  # default: 3 intervals, at least 1 s
    code: int = ADV_CODE_ROUTER
    destination: str = ALL_SYSTEMS
    source: str | None = None
    jitter: float = DEFAULT_JITTER
    min_gap_s: float = MIN_GAP_S
    max_answers_per_s: float = MAX_ANSWERS_PER_S

    def __post_init__(self) -> None:
        if not self.flags & (ADV_F | ADV_H):
            raise ValueError("an agent advertisement needs F or H (RFC 5944 §2.1.1)")
        if self.flags & (ADV_R | ADV_B) and not self.flags & ADV_F:
            raise ValueError("R and B need F (RFC 5944 §2.1.1)")
        if self.flags & ADV_F and not self.care_of:
            raise ValueError("F needs at least one care-of address (RFC 5944 §2.1.1)")
        if self.prefix_lengths is not None and len(self.prefix_lengths) != len(self.routers):
            raise ValueError("one prefix length per router address (RFC 5944 §2.1.2)")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")

    @property
    def icmp_lifetime(self) -> int:
        if self.lifetime_s is not None:
            return self.lifetime_s
        return max(1, min(0xFFFF, math.ceil(3 * self.interval_s)))


@dataclass(slots=True)
class AdvertiserStats:
    advertisements: int = 0  # every advertisement sent
    periodic: int = 0
    solicitations: int = 0  # received
    answered_unicast: int = 0
    answered_multicast: int = 0
    answers_rate_limited: int = 0
    sequence_wraps: int = 0


@dataclass(slots=True)
class Advertiser:
    """The advertisements of one agent on one link (module docstring)."""

    config: AdvertiserConfig
    rng: Callable[[], float] = field(default=random.random)
    sequence: int = 0  # of the next advertisement
    busy: bool = False
    stats: AdvertiserStats = field(default_factory=AdvertiserStats)
    _next: float | None = None
    _running: bool = False
    _last_answer: dict[str, float] = field(default_factory=dict)
    _tokens: float = 0.0
    _tokens_at: float = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self, now: float) -> list[SendIcmp]:
        """Begin advertising: the first advertisement (sequence 0) at once."""
        self._running = True
        self.sequence = 0
        self._tokens = self.config.max_answers_per_s
        self._tokens_at = now
        out = [self._advertise(self.config.destination)]
        self.stats.periodic += 1
        self._schedule(now)
        return out

    def stop(self) -> None:
        """Stop advertising (link down, agent no longer serving). A later start begins
        again at sequence 0, as after a reboot."""
        self._running = False
        self._next = None
        self._last_answer.clear()

    @property
    def running(self) -> bool:
        return self._running

    def set_busy(self, busy: bool) -> None:
        """The B bit of the following advertisements (foreign agents only)."""
        self.busy = busy and bool(self.config.flags & ADV_F)

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        return self._next

    def handle_timer(self, now: float) -> list[SendIcmp]:
        if self._next is None or now < self._next:
            return []
        self.stats.periodic += 1
        self._schedule(now)
        if len(self._last_answer) > 4096:
            gap = self.config.min_gap_s
            self._last_answer = {d: t for d, t in self._last_answer.items() if now - t < gap}
        return [self._advertise(self.config.destination)]

    def _schedule(self, now: float) -> None:
        c = self.config
        spread = c.interval_s * c.jitter
        self._next = now + c.interval_s + (2.0 * self.rng() - 1.0) * spread

    # ------------------------------------------------------------------ solicitations

    def solicited(self, src: str, now: float) -> list[SendIcmp]:
        """An Agent Solicitation from ``src`` (0.0.0.0 allowed) arrived on our link."""
        self.stats.solicitations += 1
        if not self._running:
            return []
        c = self.config
        dst = src if src != UNSPECIFIED and self._on_link(src) else c.destination
        last = self._last_answer.get(dst)
        if last is not None and now - last < c.min_gap_s:
            self.stats.answers_rate_limited += 1
            return []
        if dst != c.destination:
            rate = c.max_answers_per_s
            self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens < 1.0:
                self.stats.answers_rate_limited += 1
                return []
            self._tokens -= 1.0
            self.stats.answered_unicast += 1
        else:
            self.stats.answered_multicast += 1
        self._last_answer[dst] = now
        return [self._advertise(dst)]

    def _on_link(self, addr: str) -> bool:
        """Whether ``addr`` is in one of the advertised prefixes (True when we advertise
        none). A unicast answer to an address off the link could not arrive (TTL 1, sent
        as routed): such a solicitor, e.g. a mobile node that has no address on this link
        yet, gets the multicast answer."""
        c = self.config
        if c.prefix_lengths is None:
            return True
        a = int(ipaddress.IPv4Address(addr))
        for (router, _pref), plen in zip(c.routers, c.prefix_lengths, strict=True):
            mask = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            if a & mask == int(ipaddress.IPv4Address(router)) & mask:
                return True
        return False

    # ------------------------------------------------------------------ the message

    def advertisement(self) -> AgentAdvertisement:
        """The advertisement that would go out now (the next sequence number)."""
        c = self.config
        flags = c.flags | ADV_B if self.busy else c.flags & ~ADV_B
        exts: list[MobilityAgentExt | PrefixLengthsExt] = [
            MobilityAgentExt(self.sequence, c.registration_lifetime, flags, c.care_of)
        ]
        if c.prefix_lengths is not None:
            exts.append(PrefixLengthsExt(c.prefix_lengths))
        return AgentAdvertisement(c.icmp_lifetime, c.routers, tuple(exts), c.code)

    def reset_notice(self, dst: str) -> SendIcmp:
        """RFC 3543 §4.1: a unicast advertisement with sequence number 0 to one mobile
        node, which reads it as "the agent lost your binding" (RFC 5944 §2.4.4) and
        registers again. It does not change the sequence of the periodic ones."""
        c = self.config
        adv = self.advertisement()
        m = adv.mobility
        assert m is not None
        zero = MobilityAgentExt(0, m.registration_lifetime, m.flags, m.care_of)
        exts = (zero, *adv.extensions[1:])
        payload = AgentAdvertisement(adv.lifetime, adv.routers, exts, adv.code).encode()
        self.stats.advertisements += 1
        return SendIcmp(dst, payload, c.interface, 1, c.source)

    def _advertise(self, dst: str) -> SendIcmp:
        payload = self.advertisement().encode()
        nxt = next_sequence(self.sequence)
        if nxt < self.sequence:
            self.stats.sequence_wraps += 1
        self.sequence = nxt
        self.stats.advertisements += 1
        c = self.config
        return SendIcmp(dst, payload, c.interface, 1, c.source)


__all__ = [
    "Advertiser",
    "AdvertiserConfig",
    "AdvertiserStats",
    "SendIcmp",
]
