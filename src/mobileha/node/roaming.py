"""A mobile node that moves: asyncio adapter around :class:`~mobileha.core.movement.Roamer`.

``mobileha run`` with role mobile-node and ``mobile_node.interfaces`` (and no fixed
``foreign_agent``) builds this node. It owns:

* one UDP socket (``local_address``, any port) for registration requests and replies;
  requests leave from the address of the link the foreign agent is on (the kernel's
  source choice for an on-link destination), which is where the FA answers;
* a raw ICMP socket (:class:`~mobileha.node.icmp.IcmpIo`): Agent Advertisements in, with
  the interface they came in on; Agent Solicitations out of one interface, TTL 1;
* the links' operational state, polled every ``link_poll_s`` (``/sys/class/net``) and
  reported to the core as ``LinkUp`` / ``LinkDown``;
* the core's notices: :class:`~mobileha.core.movement.Attached` makes the FA's router
  address the default route on that link (RFC 5944 §4.2.1), :class:`AtHome` sends the
  gratuitous ARPs for the home address on the home link (§4.6) before the deregistration
  that follows in the same list, with the home address on the home link and the default
  route to the home agent (:class:`LeftHome` removes that address); away from home the
  home address stays where the operator configured it (e.g. on ``lo``).

``handoffs`` records, for each registration through a new agent, when the move was seen
(link event or advertisement) and when the reply accepted it, for the lab's outage report.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from mobileha.core.actions import Addr, Send
from mobileha.core.discovery import SendIcmp
from mobileha.core.movement import (
    AdvertisementReceived,
    AtHome,
    Attached,
    Detached,
    LeftHome,
    LinkDown,
    LinkUp,
    Roamer,
)
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer
from mobileha.node.icmp import IcmpIo, carrier_up
from mobileha.node.link import LinkWatch
from mobileha.node.mobile_node import MobileNodeFleet, raise_buffers
from mobileha.wire.icmp import ROUTER_ADVERTISEMENT

_log = get_logger("mobileha.mn")
HANDOFFS_KEPT = 1000


@dataclass(slots=True)
class Handoff:
    """One move: seen at ``started`` (loop clock), registered at ``registered``."""

    agent: str
    link: str
    started: float
    registered: float | None = None


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, node: RoamingNode) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.node._datagram(data, (addr[0], addr[1]))


class RoamingNode:
    role = "mobile-node"

    def __init__(
        self,
        roamer: Roamer,
        *,
        name: str = "mobile-node",
        local_address: str = "0.0.0.0",
        link_poll_s: float = 0.05,
        set_default_route: bool = True,
    ) -> None:
        self.roamer = roamer
        self.name = name
        self.local: Addr = (local_address, 0)
        self.link_poll_s = link_poll_s
        self.set_default_route = set_default_route
        # the standard mobile-node views (mobile_nodes, stats) read this one-MN fleet; its
        # socket is not opened: this node owns the I/O
        self.fleet = MobileNodeFleet([roamer.mn])
        self.handoffs: deque[Handoff] = deque(maxlen=HANDOFFS_KEPT)
        self.transport: asyncio.DatagramTransport | None = None
        self.icmp: IcmpIo | None = None
        self._links: LinkWatch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._bad = RateLimitedLogger(_log, 10.0)
        self._started = time.monotonic()
        self._arp: Any = None
        self._home_cidr: str | None = None  # the home address configured on the home link
        self.internal_errors = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.fleet._loop = loop  # the views' clock
        self._started = time.monotonic()
        self.roamer.mn.unix_offset = time.time() - loop.time()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raise_buffers(sock)
        sock.bind(self.local)
        sock.setblocking(False)
        self.local = sock.getsockname()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        self._timer = DeadlineTimer(loop, self._on_timer)
        icmp = IcmpIo(self._icmp, types={ROUTER_ADVERTISEMENT})
        icmp.start(loop)
        self.icmp = icmp
        names = self.roamer.interfaces
        self._links = LinkWatch(
            None, track=names, poll=self.link_poll_s, on_track=self._link, link_state=carrier_up
        )
        self._links.start(loop)
        up = [n for n in names if carrier_up(n)]  # a link down now is reported by the poll
        _log.info("roaming mobile node starting", links=",".join(names), up=",".join(up))
        self._run(self.roamer.start(self._now(), up))

    async def stop(self) -> None:
        if self._links is not None:
            self._links.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self.icmp is not None:
            self.icmp.close()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self._arp is not None:
            with contextlib.suppress(Exception):
                self._arp.close()

    # ------------------------------------------------------------------ events

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            actions = fn(*args)
        except Exception as e:  # never let input stop the node
            self.internal_errors += 1
            self._bad.warn("internal-error", f"{what} failed", error=repr(e))
            return
        self._run(actions)

    def _datagram(self, data: bytes, addr: Addr) -> None:
        before = self.roamer.mn.stats.accepted
        now = self._now()
        self._guard("reply handler", self.roamer.receive_datagram, data, addr, self.local, now)
        if self.roamer.mn.stats.accepted != before and self.handoffs:
            h = self.handoffs[-1]
            if h.registered is None:
                h.registered = self._now()
                _log.info(
                    "handoff registered",
                    agent=h.agent,
                    link=h.link,
                    outage_ms=round((h.registered - h.started) * 1000, 1),
                )

    def _icmp(self, data: bytes, src: str, _dst: str, ifname: str | None) -> None:
        if ifname is None or not data or data[0] != 9:
            return
        ev = AdvertisementReceived(data, src, ifname)
        self._guard("advertisement handler", self.roamer.handle_event, ev, self._now())

    def _link(self, name: str, up: bool) -> None:
        ev = LinkUp(name) if up else LinkDown(name)
        self._guard("link handler", self.roamer.handle_event, ev, self._now())

    def _on_timer(self) -> None:
        self._guard("timer handler", self.roamer.handle_timer, self._now())

    def _run(self, actions: list[Any]) -> None:
        tr = self.transport
        for a in actions:
            if isinstance(a, Send):
                if tr is not None:
                    tr.sendto(a.payload, a.dst)
            elif isinstance(a, SendIcmp):
                if self.icmp is not None:
                    self.icmp.send(a)
            elif isinstance(a, Attached):
                self.handoffs.append(Handoff(a.agent, a.ifname, self._now()))
                if self.set_default_route:
                    _ip("route", "replace", "default", "via", a.router, "dev", a.ifname)
            elif isinstance(a, AtHome):
                self.handoffs.append(Handoff("home", a.ifname, self._now()))
                self._home_link(a)
                self._announce(a)
            elif isinstance(a, LeftHome):
                if self._home_cidr is not None:
                    _ip("addr", "del", self._home_cidr, "dev", a.ifname)
                    self._home_cidr = None
            elif isinstance(a, Detached):
                _log.info("mobile node", event=type(a).__name__)
        if self._timer is not None:
            self._timer.update(self.roamer.get_timer())

    def _home_link(self, a: AtHome) -> None:
        """At home the home address is on the home link (with the home agent's prefix
        length) and the default route goes to the home agent's router address, from the
        home address (the requests and the traffic of a node at home come from it)."""
        if a.prefix_len is not None:
            self._home_cidr = f"{a.home_addr}/{a.prefix_len}"
            _ip("addr", "replace", self._home_cidr, "dev", a.ifname)
        if self.set_default_route and a.router:
            _ip(
                "route", "replace", "default", "via", a.router, "dev", a.ifname,
                "onlink", "src", a.home_addr,
            )  # fmt: skip

    def _announce(self, a: AtHome) -> None:
        """RFC 5944 §4.6: gratuitous ARPs for the home address on the home link, so that
        the neighbours' caches (the HA's proxy entry) point at us again."""
        try:
            from mobileha.dataplane.arp import ArpResponder

            if self._arp is None or self._arp.ifname != a.ifname:
                if self._arp is not None:
                    self._arp.close()
                self._arp = ArpResponder(a.ifname)
            arp = self._arp
        except OSError as e:
            self._bad.warn("garp-failed", "no gratuitous ARP", error=str(e))
            return
        loop = self._loop
        assert loop is not None
        for i in range(3):
            loop.call_later(0.5 * i, _garp, arp, a.home_addr)


def _garp(arp: Any, addr: str) -> None:
    with contextlib.suppress(OSError):
        arp.gratuitous(addr, count=1)


def _ip(*args: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["ip", *args], capture_output=True, timeout=2.0, check=False)


__all__ = ["Handoff", "RoamingNode"]
