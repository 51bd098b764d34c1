"""Foreign agent / PDSN node: asyncio UDP adapter around :class:`ForeignAgent`.

One UDP socket on ``foreign_agent.address:port`` carries both sides (MNs and HAs), one
:class:`DeadlineTimer` follows the core's ``get_timer()``, AAA lookups run as tasks on
the same loop (``aaa.backend``: local table or RADIUS) and feed ``aaa_result`` back, and the
core's ``InstallBinding`` / ``RemoveBinding`` actions go to the data plane
(``dataplane.backend``, role ``fa``). Bad input never raises out of the datagram handler:
the core counts it by reason and it is logged rate-limited here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mobileha.aaa.base import AaaBackend, MnAaaAuth
from mobileha.core.actions import Addr, InstallBinding, RemoveBinding, Send
from mobileha.core.binding import Encap
from mobileha.core.discovery import SendIcmp
from mobileha.core.foreign_agent import (
    AaaCancel,
    AaaRequest,
    ClearVisitors,
    FaStart,
    ForeignAgent,
    HomeAgentAnswers,
    HomeAgentUnreachable,
    VisitorLinkChanged,
)
from mobileha.core.tunnel_icmp import TunnelIcmpRelay
from mobileha.dataplane.choice import capabilities, open_dataplane
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer, bind
from mobileha.node.icmp import IcmpIo, carrier_up
from mobileha.node.link import LinkWatch
from mobileha.node.mobile_node import raise_buffers
from mobileha.node.trace import RegistrationTrace
from mobileha.node.visitor_link import VisitorNeighbours
from mobileha.wire.icmp import ERROR_TYPES as ICMP_ERROR_TYPES
from mobileha.wire.icmp import MOBILE_AGENTS, ROUTER_SOLICITATION
from mobileha.wire.ip import IPv4Header
from mobileha.wire.mip import RRP

_RRP = bytes([RRP])
_log = get_logger("mobileha.fa")


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, node: ForeignAgentNode, here: tuple[str, int] | None = None) -> None:
        self.node = node
        self.here = here  # the visitor-link socket's address (None: the main socket)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.node._datagram(data, (addr[0], addr[1]), self.here)

    def error_received(self, exc: Exception) -> None:
        self.node._bad.warn("socket-error", "socket error", error=str(exc))


class ForeignAgentNode:
    role = "foreign-agent"

    def __init__(
        self,
        core: ForeignAgent,
        *,
        name: str = "foreign-agent",
        aaa: AaaBackend | None = None,
        dataplane: Any = None,
        log_interval_s: float = 10.0,
        dataplane_kind: str = "memory",
        dataplane_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.core = core
        self._here: tuple[str, int] = (core.address, core.port)  # the bound socket
        self.name = name
        self.aaa = aaa
        self.dataplane = dataplane
        self._dp_kind = dataplane_kind
        self._dp_options = dict(dataplane_options or {"role": "fa"})
        self.dataplane_refused: dict[str, str] = {}  # auto: backend -> why not taken
        self.transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._aaa_tasks: dict[int, asyncio.Task[None]] = {}
        self._bad = RateLimitedLogger(_log, log_interval_s)
        self.trace = RegistrationTrace(_log, name, log_interval_s)
        self._started = time.monotonic()
        self.internal_errors = 0
        self.icmp: IcmpIo | None = None  # advertisements, solicitations, ICMP errors
        self._adv_link: LinkWatch | None = None
        # the socket on the visitor link's address that the advertisements name, when it is
        # not ``address`` (mobile nodes send their requests there; replies leave from it)
        self.visitor_transport: asyncio.DatagramTransport | None = None
        self._visitor_here: tuple[str, int] | None = None
        self.neighbours: VisitorNeighbours | None = None  # RFC 5944 §4.6, with advertising
        # ICMP errors about our reverse-tunnelled packets, relayed to the visitors (§4.4)
        self.tunnel_icmp = TunnelIcmpRelay(self._tunnel_is_ours)

    # ------------------------------------------------------------------ lifecycle

    def _open_dataplane(self) -> None:
        """The configured data plane (or the one ``auto`` chooses); one that cannot start
        (no TUN/root, no visitor interface...) is a start-up error saying why. Visitors
        asking for what it cannot carry are then refused (GRE: 72; list full: 66)."""
        if self.dataplane is None:
            opened = open_dataplane(self._dp_kind, self._dp_options)
            self.dataplane, self.dataplane_refused = opened.dataplane, opened.refused
        caps = capabilities(self.dataplane)
        self.core.gre = self.core.gre and Encap.GRE in caps.encaps
        if caps.max_bindings is not None:
            self.core.max_visitors = min(self.core.max_visitors, caps.max_bindings)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._open_dataplane()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raise_buffers(sock)
        bind(
            sock, (self.core.address, self.core.port), "foreign_agent.port", "foreign_agent.address"
        )
        self._here = sock.getsockname()
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        self.transport = transport
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._started = time.monotonic()
        await self._open_visitor_socket(loop)
        self._start_icmp(loop)
        _log.info(
            "foreign agent listening",
            address=self.core.address,
            port=self.core.port,
            aaa=self.aaa.name if self.aaa else "off",
        )

    async def _open_visitor_socket(self, loop: asyncio.AbstractEventLoop) -> None:
        adv = self.core.advertiser
        src = adv.config.source if adv is not None else None
        if src is None or src in (self.core.address, "0.0.0.0"):
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        raise_buffers(sock)
        sock.bind((src, self.core.port))
        sock.setblocking(False)
        here = (src, self.core.port)
        self._visitor_here = here
        self.visitor_transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self, here), sock=sock
        )

    def _start_icmp(self, loop: asyncio.AbstractEventLoop) -> None:
        """Raw ICMP (agent advertisements and solicitations on the visitor link, RFC 5944
        §2; ICMP errors about relayed requests, §3.7.3) and the visitor link's state.
        Without CAP_NET_RAW the FA runs without them (logged once)."""
        adv = self.core.advertiser
        groups = [(MOBILE_AGENTS, adv.config.interface)] if adv is not None else []
        icmp = IcmpIo(self._icmp, groups=groups, types={ROUTER_SOLICITATION, *ICMP_ERROR_TYPES})
        try:
            icmp.start(loop)
        except OSError as e:
            _log.warning("no raw ICMP socket: no agent advertisements", error=str(e))
            return
        self.icmp = icmp
        if adv is None:
            return
        self.neighbours = VisitorNeighbours(adv.config.interface)
        watch = LinkWatch(
            adv.config.interface, poll=0.2, on_link=self._visitor_link, link_state=carrier_up
        )
        up = watch.start(loop, _ifindex(adv.config.interface))
        self._adv_link = watch
        if up:
            self._run(self.core.handle_event(FaStart(), self._now()))

    def _visitor_link(self, up: bool) -> None:
        self._run(self.core.handle_event(VisitorLinkChanged(up), self._now()))

    def _icmp(self, data: bytes, src: str, dst: str, _ifname: str | None) -> None:
        try:
            actions: list[Any] = self.core.receive_icmp(data, src, dst, self._now())
            if not actions and data[:1] and data[0] in ICMP_ERROR_TYPES:
                actions = list(self.tunnel_icmp.receive(data, self._now()))
        except Exception as e:
            self.internal_errors += 1
            self._bad.warn("internal-error", "ICMP handler failed", error=repr(e))
            return
        self._run(actions)

    def clear_visitors(
        self, *, home_addr: str | None = None, nai: str | None = None, everything: bool = False
    ) -> int:
        """Operator command (``mobileha clear visitor``, IOS ``clear ip mobile visitor``):
        the number of visitors removed; each is revoked at its home agent where RFC 3543
        revocation was negotiated."""
        before = self.core.stats.visitors_cleared
        self._run(self.core.handle_event(ClearVisitors(home_addr, nai, everything), self._now()))
        return self.core.stats.visitors_cleared - before

    def _tunnel_is_ours(self, outer: IPv4Header, inner: IPv4Header) -> bool:
        """A reverse-tunnelled packet of ours: from our care-of address to the home agent
        of the visitor that sent the inner packet."""
        core = self.core
        if outer.src not in (core.care_of, core.address):
            return False
        v = core.visitors.get(inner.src)
        return v is not None and outer.dst in (v.ha_addr, v.binding.ha_addr)

    async def stop(self) -> None:
        if self._adv_link is not None:
            self._adv_link.stop()
        if self.icmp is not None:
            self.icmp.close()
        if self.neighbours is not None:
            await self.neighbours.close()
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.visitor_transport is not None:
            self.visitor_transport.close()
            self.visitor_transport = None
        if self.aaa is not None:
            await self.aaa.close()
        if self.dataplane is not None:
            with contextlib.suppress(Exception):
                self.dataplane.close()

    def reconfigure(
        self,
        options: Mapping[str, Any],
        *,
        aaa: AaaBackend | bool | None = False,
        rate_limit_s: float | None = None,
    ) -> None:
        """Reload: the core's reloadable options; ``aaa``: a new AAA backend (None: no
        AAA; False: keep the current one; lookups already running finish on the old
        one, which is closed afterwards)."""
        opts = dict(options)
        if aaa is not False:
            old = self.aaa
            self.aaa = aaa if aaa is not None and aaa is not True else None
            opts["aaa"] = self.aaa is not None
            if old is not None and old is not self.aaa:
                task = asyncio.ensure_future(self._close_later(old))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self.core.reconfigure(**opts)
        if rate_limit_s is not None:
            self._bad.interval_s = rate_limit_s
            self.trace.denials.interval_s = rate_limit_s
        if self._timer is not None:
            self._timer.update(self.core.get_timer())

    async def _close_later(self, aaa: AaaBackend) -> None:
        while any(not t.done() for t in self._aaa_tasks.values()):
            await asyncio.sleep(0.1)
        await aaa.close()

    # ------------------------------------------------------------------ events

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _datagram(self, data: bytes, addr: Addr, here: Addr | None = None) -> None:
        if self.trace.debug:
            self.trace.trace("received", data, addr)
        try:
            actions = self.core.receive_datagram(data, addr, here or self._here, self._now())
        except Exception as e:  # never let bad input stop the node
            self.internal_errors += 1
            self._bad.warn("internal-error", "datagram handler failed", error=repr(e))
            return
        reason = self.core.last_drop
        if reason is not None:
            self.core.last_drop = None
            self._bad.warn(reason, "datagram dropped", src=addr[0], port=addr[1])
        self._run(actions)

    def _on_timer(self) -> None:
        try:
            actions = self.core.handle_timer(self._now())
        except Exception as e:
            self.internal_errors += 1
            self._bad.warn("internal-error", "timer handler failed", error=repr(e))
            actions = []
        self._run(actions)

    def _run(self, actions: Iterable[object]) -> None:
        tr = self.transport
        for a in actions:
            if isinstance(a, Send):
                vt = self.visitor_transport
                if vt is not None and a.src is not None and a.src == self._visitor_here:
                    vt.sendto(a.payload, a.dst)
                elif tr is not None:
                    tr.sendto(a.payload, a.dst)
                if a.payload[:1] == _RRP:  # to the MN: denials by the FA or the HA logged
                    self.trace.reply_sent(a.payload, a.dst, "reply to the mobile node")
                elif self.trace.debug:
                    self.trace.trace("relayed to the home agent", a.payload, a.dst)
            elif isinstance(a, SendIcmp):
                if self.icmp is not None:
                    self.icmp.send(a)
            elif isinstance(a, AaaRequest):
                task = asyncio.ensure_future(self._aaa(a))
                self._tasks.add(task)
                self._aaa_tasks[a.token] = task
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(self._aaa_done(a.token))
            elif isinstance(a, AaaCancel):
                t = self._aaa_tasks.pop(a.token, None)
                if t is not None:
                    t.cancel()
            elif isinstance(a, InstallBinding):
                self._dp("install", a)
                if self.neighbours is not None:
                    self.neighbours.learn(a.binding)
            elif isinstance(a, RemoveBinding):
                self._dp("remove", a)
                if self.neighbours is not None:
                    self.neighbours.forget(a.binding)
            elif isinstance(a, HomeAgentUnreachable):
                _log.warning(
                    "home agent not answering: its mobile nodes register through the "
                    "HA-SLB again (RFC 4433)",
                    node=self.name,
                    home_agent=a.address,
                    fallback=a.fallback or "none",
                    unanswered=a.unanswered,
                )
            elif isinstance(a, HomeAgentAnswers):
                _log.info("home agent answers again", node=self.name, home_agent=a.address)
        if self._timer is not None:
            self._timer.update(self.core.get_timer())

    def _aaa_done(self, token: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_t: asyncio.Task[None]) -> None:
            self._aaa_tasks.pop(token, None)

        return done

    def _dp(self, op: str, a: InstallBinding | RemoveBinding) -> None:
        if self.dataplane is None:
            return
        try:
            getattr(self.dataplane, op)(a.binding)
        except Exception as e:
            self._bad.warn("dataplane-error", f"data plane {op} failed", error=repr(e))

    async def _aaa(self, req: AaaRequest) -> None:
        assert self.aaa is not None
        mn_aaa = None
        if req.mn_aaa_spi is not None:
            mn_aaa = MnAaaAuth(req.mn_aaa_spi, req.mn_aaa_authenticator, req.challenge, req.covered)
        try:
            res = await self.aaa.authorize(req.nai, mn_aaa, home_address=req.home_addr)
            accepted, ha, hoa, code = (
                res.accepted,
                res.ha_address,
                res.home_address,
                res.reply_code,
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._bad.warn("aaa-error", "AAA lookup failed", error=repr(e))
            accepted, ha, hoa, code = False, None, None, 78
        self._run(
            self.core.aaa_result(
                req.token,
                self._now(),
                accepted=accepted,
                ha_address=ha,
                home_address=hoa,
                reply_code=code,
            )
        )

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the ``visitors`` / ``stats`` views and the metric families)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def now(self) -> float:
        """The clock of the visitors' ``expires`` (0.0 before the node started)."""
        return self._loop.time() if self._loop is not None else 0.0


def _ifindex(ifname: str) -> int:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return 0


__all__ = ["ForeignAgentNode"]
