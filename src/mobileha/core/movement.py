"""Agent discovery and movement detection, the mobile node's side (RFC 5944 §2.4), sans-IO.

A :class:`Roamer` drives one :class:`~mobileha.core.mobile_node.MobileNode` over the links
it has. Events in (:meth:`Roamer.handle_event`): :class:`AdvertisementReceived` (an ICMP
message from the raw socket, with the link it came in on), :class:`LinkUp`,
:class:`LinkDown`; timers (:meth:`Roamer.handle_timer` / :meth:`Roamer.get_timer`): the
advertisements' lifetimes, solicitations and the mobile node's own timers; registration
replies go through :meth:`Roamer.receive_datagram`. Actions out: the mobile node's
:class:`~mobileha.core.actions.Send`, :class:`~mobileha.core.discovery.SendIcmp`
(solicitations) and notices the adapter acts on: :class:`Attached` (use this link and
agent: default route via its router address), :class:`AtHome` (configure the home address
on the home link and send gratuitous ARPs, RFC 5944 §4.6, *before* the deregistration that
follows in the same list), :class:`LeftHome` and :class:`Detached`.

Rules, with their sections:

* An advertisement counts when it carries a Mobility Agent Advertisement Extension (§2.4),
  no unknown extension below 128 (§1.9), F or H, and comes in on a link that is up; reserved
  flag bits are ignored (§2.4). It is kept until its ICMP Lifetime runs out.
* **Algorithm 1** (§2.4.2.1): when the advertisement of the agent in use expires, the MN
  lost contact: it registers at once with another agent whose advertisement has not
  expired, else it solicits. A link going down drops its agents at once (the link layer
  tells before the lifetime does).
* **Algorithm 2** (§2.4.2.2): an advertisement from another agent whose network prefixes
  (Prefix-Lengths Extension, required in both advertisements) differ from the current
  agent's means the MN moved: it registers through the new agent at once.
* **Returning home** (§2.4.3): an advertisement with H from the MN's own home agent (its
  source or a router address is the HA address, or a router prefix holds the home
  address): :class:`AtHome`, then the deregistration of every binding.
* **Restarted agent** (§2.4.4): the sequence number of the agent in use drops below 256:
  register again through it.
* **Solicitations** (§2.4, RFC 1256 §6): only on an up link without a live advertisement:
  at once when the link comes up, then three at most one per second, then doubling up
  to ``solicit_max_s`` (at least a minute), each time randomised by +-10%. A link that comes
  up, or a successful registration, starts the fast rate again (§2.4: "positive indication
  ... moved to a new link"; "after successfully registering ... increase the rate").
* **Rate limit** (§2.4.2, §3.6.3): registrations caused by movement are at most one per
  second on average (a bucket of ``register_burst``); one over the limit waits for it.
* A foreign agent's denial (codes 64-127) makes the MN try another agent it knows (§2.4:
  "retry the attempt with each subsequent advertised address"); a busy agent (B) is not
  chosen, but the agent in use may turn busy without losing its registered MNs (§2.1.1).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mobileha.core.actions import Addr, Send
from mobileha.core.discovery import SendIcmp
from mobileha.core.mobile_node import HaFallback, MnState, MobileNode
from mobileha.wire import DecodeError
from mobileha.wire.icmp import (
    ADV_B,
    ADV_F,
    ADV_H,
    MOBILE_AGENTS,
    ROUTER_ADVERTISEMENT,
    AgentAdvertisement,
    AgentSolicitation,
    sequence_reset,
)
from mobileha.wire.mip import MIP_PORT

UNSPECIFIED: Final = "0.0.0.0"
INITIAL_SOLICITATIONS: Final = 3  # RFC 5944 §2.4: three initial ones at most 1 per second
SOLICIT_INTERVAL_S: Final = 1.0
SOLICIT_MAX_S: Final = 60.0  # "SHOULD be at least one minute"
REGISTER_BURST: Final = 3
REFUSED_HOLD_S: Final = 10.0  # an agent that denied us is passed over this long


# --- events in ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdvertisementReceived:
    """An ICMP message (from its Type byte on) from ``src``, received on link ``ifname``."""

    data: bytes
    src: str
    ifname: str


@dataclass(frozen=True, slots=True)
class LinkUp:
    ifname: str


@dataclass(frozen=True, slots=True)
class LinkDown:
    ifname: str


MovementEvent = AdvertisementReceived | LinkUp | LinkDown

# --- notices out ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attached:
    """The MN registers through the foreign agent ``agent`` on ``ifname`` (requests to
    ``agent``:port, care-of address ``care_of``); ``router``: its first router address,
    the default router on that link (§4.2.1)."""

    ifname: str
    agent: str
    care_of: str
    router: str


@dataclass(frozen=True, slots=True)
class AtHome:
    """The MN is on its home link ``ifname``: the adapter configures the home address
    there (``prefix_len`` from the home agent's Prefix-Lengths Extension, None: unknown)
    and sends its gratuitous ARPs, before the deregistration that follows (§4.6)."""

    ifname: str
    home_addr: str
    prefix_len: int | None
    router: str = ""  # the home agent's router address on the home link


@dataclass(frozen=True, slots=True)
class LeftHome:
    """The MN is no longer on its home link ``ifname`` (it stops answering ARP for its
    home address there, §4.6)."""

    ifname: str
    home_addr: str


@dataclass(frozen=True, slots=True)
class Detached:
    """No agent is reachable: the MN solicits on its up links (its binding at the HA stays
    until it expires or a new registration replaces it)."""

    reason: str


Action = Send | SendIcmp | Attached | AtHome | LeftHome | Detached | HaFallback


@dataclass(slots=True)
class Agent:
    """What the MN knows of one agent: its last advertisement and when that expires."""

    ifname: str
    address: str  # the advertisement's IP source: where registration requests go
    adv: AgentAdvertisement
    sequence: int
    expires: float
    heard: float
    home: bool
    refused_until: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.ifname, self.address)

    @property
    def flags(self) -> int:
        m = self.adv.mobility
        return m.flags if m is not None else 0

    @property
    def care_of(self) -> str | None:
        m = self.adv.mobility
        return m.care_of[0] if m is not None and m.care_of else None

    @property
    def router(self) -> str:
        return self.adv.routers[0][0] if self.adv.routers else self.address

    def networks(self) -> set[ipaddress.IPv4Network]:
        return {ipaddress.IPv4Network(f"{a}/{n}", strict=False) for a, n in self.adv.prefixes()}


@dataclass(slots=True)
class _Solicit:
    """Solicitation schedule of one link."""

    next_at: float
    sent: int = 0
    interval: float = SOLICIT_INTERVAL_S


@dataclass(slots=True)
class RoamerStats:
    advertisements: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    solicitations: int = 0
    moves: int = 0  # registrations through another agent
    returns_home: int = 0
    agents_expired: int = 0
    agents_lost_link: int = 0
    restarts_seen: int = 0  # sequence drops below 256 of the agent in use
    prefix_moves: int = 0  # moves found by algorithm 2
    delayed_registrations: int = 0  # held by the once-per-second rule
    fa_denials: int = 0


class Roamer:
    """Agent discovery and movement for one mobile node (module docstring)."""

    def __init__(
        self,
        mn: MobileNode,
        interfaces: Sequence[str],
        *,
        agent_port: int = MIP_PORT,
        solicit_interval_s: float = SOLICIT_INTERVAL_S,
        solicit_max_s: float = SOLICIT_MAX_S,
        solicit_destination: str = MOBILE_AGENTS,
        register_burst: int = REGISTER_BURST,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not interfaces:
            raise ValueError("agent discovery needs at least one interface")
        self.mn = mn
        self.interfaces = list(interfaces)
        self.agent_port = agent_port
        self.solicit_interval_s = solicit_interval_s
        self.solicit_max_s = max(solicit_max_s, solicit_interval_s)
        self.solicit_destination = solicit_destination
        self.register_burst = max(1, register_burst)
        self._rng = rng
        self.links: dict[str, bool] = dict.fromkeys(self.interfaces, False)
        self.agents: dict[tuple[str, str], Agent] = {}
        self.current: Agent | None = None
        self.home_link: str | None = None  # the link we are home on
        self.stats = RoamerStats()
        self._solicit: dict[str, _Solicit] = {}
        self._fast_solicit = True  # next search starts at the initial rate
        self._tokens = float(self.register_burst)
        self._tokens_at = 0.0
        self._pending: Agent | None = None  # a move waiting for the rate limit
        self._pending_at = 0.0

    # ------------------------------------------------------------------ state

    @property
    def where(self) -> str:
        """``home``, ``foreign`` (through an agent), or ``searching``."""
        if self.home_link is not None:
            return "home"
        return "foreign" if self.current is not None else "searching"

    def start(self, now: float, up: Iterable[str] = ()) -> list[Action]:
        """The adapter is up; ``up``: the links that are up now (each solicits at once)."""
        self._tokens_at = now
        out: list[Action] = []
        for name in up:
            out += self._link_up(name, now)
        return out

    # ------------------------------------------------------------------ events

    def handle_event(self, event: MovementEvent, now: float) -> list[Action]:
        if isinstance(event, AdvertisementReceived):
            return self._advertisement(event, now)
        if isinstance(event, LinkUp):
            return self._link_up(event.ifname, now)
        if isinstance(event, LinkDown):
            return self._link_down(event.ifname, now)
        raise TypeError(f"not a movement event: {event!r}")  # pragma: no cover

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Action]:
        """A registration reply for the mobile node."""
        denied = self.mn.stats.denied
        registered = self.mn.stats.accepted
        out: list[Action] = list(self.mn.receive_datagram(data, src, dst, now))
        if self.mn.stats.accepted != registered:
            self._fast_solicit = True
        code = self.mn.last_code
        cur = self.current
        if (
            self.mn.stats.denied != denied
            and code is not None
            and (64 <= code <= 127 or code == 194)
            and cur is not None
            and self.home_link is None
        ):
            # RFC 5944 §2.4: a foreign agent refused us: try another one we know
            self.stats.fa_denials += 1
            cur.refused_until = now + REFUSED_HOLD_S
            other = self._choose(now, exclude=cur)
            if other is not None:
                out += self._switch(other, now)
        return out

    def _ignore(self, reason: str) -> list[Action]:
        d = self.stats.ignored
        d[reason] = d.get(reason, 0) + 1
        return []

    def _advertisement(self, ev: AdvertisementReceived, now: float) -> list[Action]:
        if not ev.data or ev.data[0] != ROUTER_ADVERTISEMENT:
            return self._ignore("not-advertisement")
        if not self.links.get(ev.ifname, False):
            return self._ignore("link-down")
        try:
            adv = AgentAdvertisement.decode(ev.data)
        except DecodeError as e:
            return self._ignore(e.reason)
        m = adv.mobility
        if m is None:
            return self._ignore("no-mobility-extension")
        if adv.unknown_critical() is not None:
            return self._ignore("unknown-critical-extension")
        if not m.flags & (ADV_F | ADV_H):
            return self._ignore("no-agent-flag")
        self.stats.advertisements += 1
        key = (ev.ifname, ev.src)
        old = self.agents.get(key)
        home = self._is_home(ev.src, adv)
        if not home and not m.flags & ADV_F:
            return self._ignore("home-agent-of-another-network")
        if m.flags & ADV_F and not m.care_of:
            return self._ignore("no-care-of-address")
        a = Agent(ev.ifname, ev.src, adv, m.sequence, now + adv.lifetime, now, home)
        if old is not None:
            a.refused_until = old.refused_until
        self.agents[key] = a
        self._solicit.pop(ev.ifname, None)  # an advertisement: stop soliciting there
        cur = self.current
        if cur is not None and cur.key == key:
            self.current = a
            if (
                old is not None
                and sequence_reset(old.sequence, m.sequence)
                and self.home_link is None
            ):
                # RFC 5944 §2.4.4 (and RFC 3543 §4.1): the agent restarted or reset our
                # binding: register again; through another agent when it is now busy
                self.stats.restarts_seen += 1
                other = self._choose(now, exclude=a) if m.flags & ADV_B else None
                return self._switch(other or a, now, force=True)
            return []
        if cur is None:
            if self._usable(a, now):
                return self._switch(a, now)
            return []
        if home:
            return self._switch(a, now)  # §2.4.3: our home agent: we are home
        if self.home_link is None and self._usable(a, now) and self._prefix_moved(cur, a):
            self.stats.prefix_moves += 1
            return self._switch(a, now)  # §2.4.2.2
        return []

    def _is_home(self, src: str, adv: AgentAdvertisement) -> bool:
        """An advertisement from our own home agent (§2.4.3)."""
        m = adv.mobility
        if m is None or not m.flags & ADV_H:
            return False
        has = {self.mn.configured_ha, self.mn.ha_addr} - {UNSPECIFIED, "255.255.255.255"}
        if src in has or any(r[0] in has for r in adv.routers):
            return True
        hoa = self.mn.home_addr
        if hoa == UNSPECIFIED:
            return False
        home = ipaddress.IPv4Address(hoa)
        return any(
            home in ipaddress.IPv4Network(f"{a}/{n}", strict=False) for a, n in adv.prefixes()
        )

    @staticmethod
    def _prefix_moved(cur: Agent, new: Agent) -> bool:
        """Algorithm 2: both advertisements have prefix lengths, and the networks differ."""
        a, b = cur.networks(), new.networks()
        return bool(a and b and a.isdisjoint(b))

    def _usable(self, a: Agent, now: float) -> bool:
        if not self.links.get(a.ifname, False) or a.expires <= now:
            return False
        if a.home:
            return True
        return not a.flags & ADV_B and a.refused_until <= now and a.care_of is not None

    def _choose(self, now: float, exclude: Agent | None = None) -> Agent | None:
        """The agent to use: our home agent when heard, else the FA heard last."""
        best: Agent | None = None
        for a in self.agents.values():
            if a is exclude or not self._usable(a, now):
                continue
            if best is None or (a.home, a.heard) > (best.home, best.heard):
                best = a
        return best

    def _link_up(self, name: str, now: float) -> list[Action]:
        if name not in self.links or self.links[name]:
            return []
        self.links[name] = True
        # a new link is a positive sign of movement: solicit at the initial rate, at once
        self._solicit[name] = _Solicit(now)
        return self._run_solicitations(now)

    def _link_down(self, name: str, now: float) -> list[Action]:
        if not self.links.get(name, False):
            return []
        self.links[name] = False
        self._solicit.pop(name, None)
        for key in [k for k in self.agents if k[0] == name]:
            del self.agents[key]
            self.stats.agents_lost_link += 1
        if self._pending is not None and self._pending.ifname == name:
            self._pending = None
        cur = self.current
        if cur is None or cur.ifname != name:
            return []
        return self._lost(now, "link down")

    def _lost(self, now: float, reason: str) -> list[Action]:
        """The agent in use is gone: another one at once (§2.4.2.1), else search."""
        out: list[Action] = []
        cur = self.current
        self.current = None
        if self.home_link is not None and cur is not None:
            out.append(LeftHome(self.home_link, self.mn.home_addr))
            self.home_link = None
        other = self._choose(now)
        if other is not None:
            return out + self._switch(other, now)
        out.append(Detached(reason))
        for name, up in self.links.items():
            if up and name not in self._solicit and not self._agent_on(name, now):
                self._solicit[name] = _Solicit(now) if self._fast_solicit else self._slow(now)
        return out + self._run_solicitations(now)

    def _agent_on(self, name: str, now: float) -> bool:
        return any(a.ifname == name and a.expires > now for a in self.agents.values())

    def _slow(self, now: float) -> _Solicit:
        s = _Solicit(now, INITIAL_SOLICITATIONS, self.solicit_interval_s * 2)
        return s

    # ------------------------------------------------------------------ moving

    def _switch(self, a: Agent, now: float, force: bool = False) -> list[Action]:
        """Use agent ``a``: go home, or register through it (rate limited)."""
        out: list[Action] = []
        self._pending = None
        if a.home:
            if self.home_link == a.ifname and not force:
                self.current = a
                return []
            self.current = a
            self.home_link = a.ifname
            self.stats.returns_home += 1
            pl = None
            for r, n in a.adv.prefixes():
                if r == a.router:
                    pl = n
            out.append(AtHome(a.ifname, self.mn.home_addr, pl, a.router))
            self._take_token(now)
            out += self.mn.return_home(now)
            return out
        if self.home_link is not None:
            out.append(LeftHome(self.home_link, self.mn.home_addr))
            self.home_link = None
        prev = self.current
        self.current = a
        if prev is not None and prev.key == a.key and not force:
            return out
        coa = a.care_of
        assert coa is not None
        out.append(Attached(a.ifname, a.address, coa, a.router))
        if not self._take_token(now):
            self._pending = a
            self._pending_at = self._token_time()
            self.stats.delayed_registrations += 1
            return out
        self.stats.moves += 1
        out += self.mn.attach((a.address, self.agent_port), coa, now)
        return out

    def _take_token(self, now: float) -> bool:
        """The once-per-second average of RFC 5944 §2.4.2 / §3.6.3 (a bucket)."""
        self._tokens = min(float(self.register_burst), self._tokens + (now - self._tokens_at))
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _token_time(self) -> float:
        return self._tokens_at + (1.0 - self._tokens)

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        cands: list[float] = []
        t = self.mn.get_timer()
        if t is not None:
            cands.append(t)
        for a in self.agents.values():
            cands.append(a.expires)
        for s in self._solicit.values():
            cands.append(s.next_at)
        if self._pending is not None:
            cands.append(self._pending_at)
        return min(cands) if cands else None

    def handle_timer(self, now: float) -> list[Action]:
        out: list[Action] = list(self.mn.handle_timer(now))
        expired = [a for a in self.agents.values() if a.expires <= now]
        for a in expired:
            del self.agents[a.key]
            self.stats.agents_expired += 1
        cur = self.current
        if cur is not None and cur in expired:
            out += self._lost(now, "advertisement lifetime expired")  # §2.4.2.1
        p = self._pending
        if p is not None and now >= self._pending_at:
            self._pending = None
            if self.current is p and p.key in self.agents and self._take_token(now):
                self.stats.moves += 1
                coa = p.care_of
                assert coa is not None
                out += self.mn.attach((p.address, self.agent_port), coa, now)
            elif self.current is p:
                self._pending = p
                self._pending_at = self._token_time()
        for name in list(self.links):
            if (
                self.links[name]
                and self.current is None
                and name not in self._solicit
                and not self._agent_on(name, now)
            ):
                self._solicit[name] = self._slow(now)
        out += self._run_solicitations(now)
        return out

    def _run_solicitations(self, now: float) -> list[Action]:
        out: list[Action] = []
        for name, s in list(self._solicit.items()):
            if not self.links.get(name, False) or self._agent_on(name, now):
                del self._solicit[name]
                continue
            if now < s.next_at:
                continue
            out.append(SendIcmp(self.solicit_destination, AgentSolicitation().encode(), name))
            self.stats.solicitations += 1
            s.sent += 1
            if s.sent >= INITIAL_SOLICITATIONS:
                s.interval = min(self.solicit_max_s, s.interval * 2)
            nominal = s.interval
            s.next_at = now + nominal * (0.9 + 0.2 * self._rng())
        if out:
            self._fast_solicit = False
        return out

    # ------------------------------------------------------------------ views

    def status(self, now: float) -> dict[str, Any]:
        cur = self.current
        return {
            "where": self.where,
            "links": dict(self.links),
            "agent": None if cur is None else cur.address,
            "agent_link": None if cur is None else cur.ifname,
            "care_of": None if cur is None else cur.care_of,
            "agents": [
                {
                    "link": a.ifname,
                    "address": a.address,
                    "care_of": a.care_of,
                    "home": a.home,
                    "sequence": a.sequence,
                    "flags": a.flags,
                    "expires_in": round(a.expires - now, 3),
                }
                for a in self.agents.values()
            ],
            "state": str(self.mn.state),
        }

    @property
    def registered(self) -> bool:
        return self.mn.state in (MnState.REGISTERED, MnState.RENEWING)


__all__ = [
    "INITIAL_SOLICITATIONS",
    "SOLICIT_MAX_S",
    "AdvertisementReceived",
    "Agent",
    "AtHome",
    "Attached",
    "Detached",
    "LeftHome",
    "LinkDown",
    "LinkUp",
    "MovementEvent",
    "Roamer",
    "RoamerStats",
]
