"""The home agent node: UDP 434 sockets, one timer and the execution of the actions of the
sans-IO cluster coordinator (:class:`mobileha.core.cluster.Cluster`), which holds the home
agent core of every HA address served, their binding sync with the redundancy peer, the
HSRP groups and the reply gate.

* One UDP socket per own address (``home_agent.address`` and each HA address; an HA
  address other than the real one is bound with ``IP_FREEBIND`` so an HSRP VIP can be
  bound before it is claimed, while a real address that is on no interface is a start-up
  error naming ``home_agent.address``). Every datagram goes to
  :meth:`Cluster.receive_datagram` with its source and the socket's address as destination
  (the coordinator tells registrations from sync messages); a ``Send`` leaves from the
  socket of its source address (P§1.1, default: the real address). Receive buffers are
  raised to 8 MiB.
* HSRP (``[hsrp]``): :class:`mobileha.node.hsrp.HsrpIo` moves the HSRP datagrams, owns the
  VIP through the data plane's ``claim_vip`` / ``release_vip`` and watches the interface;
  its events reach the coordinator as ``LinkChanged`` / ``TrackChanged``.
* Unicast-peer set-ups (``hsrp.peers``, loopback): the VIP is on no interface and Linux
  delivers a unicast datagram to the *last* socket bound to an addr:port (SO_REUSEADDR),
  so a Standby's VIP socket would take the Active's requests. There the VIP socket exists
  only while the group is Active: ``ClaimVip`` opens it, ``ReleaseVip`` closes it, one
  socket per VIP whatever the flap rate.
* Actions: ``Send`` -> ``sendto``; ``InstallBinding`` / ``RestoreBinding`` /
  ``RemoveBinding`` / ``WithdrawBinding`` -> data plane (``RefreshBinding`` changes nothing
  there); HSRP actions -> :class:`HsrpIo`; notices -> the log (every HSRP, sync and
  activity state change, at warning or info; nothing per packet).
* One :class:`~mobileha.node.base.DeadlineTimer` follows ``cluster.get_timer()``.
* Works with uvloop and the stock loop (only ``create_datagram_endpoint`` and timers).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mobileha.core.actions import Addr, ClaimVip, InstallBinding, ReleaseVip, RemoveBinding, Send
from mobileha.core.cluster import (
    ActiveChanged,
    Agent,
    ClearBindings,
    Cluster,
    DownloadIncomplete,
    LinkChanged,
    LinkStateChanged,
    Reconfigure,
    Shutdown,
    Start,
    TrackChanged,
)
from mobileha.core.home_agent import RefreshBinding, RestoreBinding, WithdrawBinding
from mobileha.core.hsrp import (
    ActiveTimerExpired,
    GratuitousArp,
    HsrpInterface,
    HsrpSend,
    StateChange,
)
from mobileha.core.subscribers import ERROR, FetchSa, SaFailed, SaFetched
from mobileha.core.sync import SyncState, SyncStateChanged
from mobileha.core.tunnel_icmp import TunnelIcmpRelay
from mobileha.dataplane.choice import capabilities, open_dataplane
from mobileha.dataplane.vip import VipOwner
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.advertising import LinkAdvertising
from mobileha.node.base import DeadlineTimer, bind, bind_error
from mobileha.node.hsrp import HsrpIo, HsrpNodeConfig
from mobileha.node.icmp import IcmpIo
from mobileha.node.journal import BindingJournal
from mobileha.node.trace import RegistrationTrace
from mobileha.node.udp_batch import BatchedUdp
from mobileha.wire.icmp import ERROR_TYPES as ICMP_ERROR_TYPES
from mobileha.wire.ip import IPv4Header
from mobileha.wire.mip import RRP

# A fleet re-registering at once (tens of thousands of requests within a second) must fit in
# the receive buffer: a dropped request waits for the MN's retransmission (2 s, doubling),
# so a burst that overflows the buffer takes tens of seconds instead of a few. Without the
# FORCE option the kernel caps the size at net.core.rmem_max (208 KB on a stock kernel:
# about 500 requests). 16 MB (the kernel doubles it) hold about 40,000 small requests, one
# to two seconds of work; a deeper queue would hold requests until their timestamps are
# stale (docs/decisions/registration-burst.md).
RCVBUF = 16 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_RRP = bytes([RRP])
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)

_log = get_logger("mobileha.ha")

# executed (and logged) by the HSRP adapter
_HSRP_ACTIONS = (
    HsrpSend,
    ClaimVip,
    ReleaseVip,
    GratuitousArp,
    StateChange,
    LinkStateChanged,
    ActiveTimerExpired,
)


class _Proto(asyncio.DatagramProtocol):
    __slots__ = ("dst", "node")

    def __init__(self, node: HomeAgentNode, dst: Addr) -> None:
        self.node = node
        self.dst = dst

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.node._on_datagram(data, addr, self.dst)

    def error_received(self, exc: Exception) -> None:
        self.node.send_errors += 1


def _mem_free() -> float:
    try:
        with open("/proc/meminfo") as f:
            info = {ln.split(":")[0]: int(ln.split()[1]) for ln in f if ":" in ln}
        return info.get("MemAvailable", 0) / max(1, info.get("MemTotal", 1))
    except (OSError, ValueError, IndexError):
        return 1.0


def _cpu_free() -> float:
    try:
        return max(0.0, 1.0 - os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


class HomeAgentNode:
    """A running home agent (role ``home-agent``): the asyncio pump of a cluster."""

    role = "home-agent"

    def __init__(
        self,
        cluster: Cluster,
        *,
        name: str = "home-agent",
        addresses: Iterable[str] | None = None,
        port: int | None = None,
        dataplane: Any = None,
        dataplane_kind: str = "memory",
        dataplane_options: Mapping[str, Any] | None = None,
        dfp: Any = None,
        rate_limit_s: float = 10.0,
        hsrp: HsrpNodeConfig | None = None,
        vip_when_active: Iterable[str] = (),
        journal: BindingJournal | None = None,
        sa_fetcher: Any = None,
        batch_io: bool = False,
    ) -> None:
        """``addresses``: where to bind (default: the first agent's real address and every
        agent's HA address). ``hsrp``: the HSRP interface's adapter configuration (the
        groups are the cluster's). ``vip_when_active``: unicast-peer HSRP, the VIPs whose
        socket exists only while Active (module docstring). ``sa_fetcher``: what runs the
        cores' ``FetchSa`` actions (``await sa_fetcher.fetch_sa(nai, spi)`` ->
        :class:`mobileha.aaa.base.SaAnswer`, e.g. :class:`mobileha.aaa.radius.RadiusAaa`),
        one task per fetch on this loop; the cores bound how many run at once. ``batch_io``:
        serve the registration sockets with :class:`~mobileha.node.udp_batch.BatchedUdp`
        (batches of datagrams per read, replies with one sendmmsg) instead of asyncio's
        transport."""
        # agent advertisements on the home link (node/advertising.py), set by compose
        self.advertising: LinkAdvertising | None = None
        # ICMP errors about our tunnelled packets, relayed to their senders (RFC 5944 §4.4)
        self.tunnel_icmp = TunnelIcmpRelay(self._tunnel_is_ours)
        self.icmp: IcmpIo | None = None
        self.cluster = cluster
        self._batch_io = batch_io
        self._batching = False  # inside a BatchedUdp read: the timer waits for its end
        # the first bytes of sync messages: a batch's sync messages are handled before its
        # registrations, so that a BU Ack releases the replies it holds without waiting
        # behind the requests read with it
        self._sync_codes = frozenset(
            code
            for a in cluster.agents
            if a.sync is not None
            for code in a.sync.config.types.registry
        )
        self.name = name
        agents = cluster.agents
        first = agents[0].ha.settings
        if addresses is None:
            addresses = [first.address, *(a.ha_addr for a in agents)]
        self._vip_when_active = frozenset(vip_when_active)
        self.addresses = [a for a in dict.fromkeys(addresses) if a not in self._vip_when_active]
        self.port = first.port if port is None else port
        self.dataplane = dataplane
        self.journal = journal  # restart without loss (no peer): the binding journal
        self._dp_kind = dataplane_kind
        self._dp_options = dict(dataplane_options or {})
        self._dfp_cfg = dfp
        self.dfp_server: Any = None
        self.bad = RateLimitedLogger(_log, rate_limit_s)
        self.trace = RegistrationTrace(_log, name, rate_limit_s)
        self.send_errors = 0
        self.dataplane_errors = 0
        self.dataplane_refused: dict[str, str] = {}  # auto: backends not taken, and why
        self._transports: dict[str, Any] = {}  # asyncio transports or BatchedUdp
        self._default: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._started = time.monotonic()
        self._frozen_at = 0
        self._wall_at = 0.0  # when the wall-clock offset is refreshed next
        self._running = False
        # unicast-peer HSRP: the VIP sockets wanted open (claimed) and the task that makes
        # the sockets follow, one per VIP
        self._vip_wanted: dict[str, bool] = {}
        self._vip_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # called with every state-change notice the coordinator returns (the demo's screen)
        self.on_notice: Callable[[Any], None] | None = None
        self.sa_fetcher = sa_fetcher
        self.sa_fetch_errors = 0  # FetchSa without a fetcher, or a fetcher that raised
        self.hsrp: HsrpIo | None = None
        if hsrp is not None:
            assert cluster.hsrp is not None, "an [hsrp] adapter needs the cluster's groups"
            vip = self._dp_options.get("vip")
            self.hsrp = HsrpIo(
                hsrp,
                cluster.hsrp,
                deliver=self._on_hsrp_datagram,
                on_link=lambda up: self._event(LinkChanged(up)),
                on_track=lambda name, up: self._event(TrackChanged(name, up)),
                on_vip=self._on_vip if self._vip_when_active else None,
                vip=vip if isinstance(vip, VipOwner) else None,
                claim=self._claim_vip if hsrp.manage_vip else None,
                release=self._release_vip if hsrp.manage_vip else None,
            )
        bad = self.bad

        def on_drop(reason: str) -> None:
            bad.warn(reason, "registration datagram dropped")

        for a in agents:
            a.ha.on_drop = on_drop

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the views and metric families from these)

    @property
    def agents(self) -> list[Agent]:
        """The HA addresses served: each one's home agent core, sync peer, reply gate."""
        return self.cluster.agents

    @property
    def core(self) -> Any:
        """The first HA address's home agent core."""
        return self.cluster.agents[0].ha

    @property
    def hsrp_groups(self) -> HsrpInterface | None:
        return self.cluster.hsrp

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    @property
    def serves_dfp(self) -> bool:
        """A DFP agent is configured (its view exists before the agent listens)."""
        return self.dfp_server is not None or self._dfp_cfg is not None

    def counters(self, agent: Agent | None = None) -> dict[str, int]:
        """The counters of ``agent``'s core (default: the first) by CISCO-MOBILE-IP-MIB
        name plus the adapter's own."""
        counters: dict[str, int] = (agent or self.cluster.agents[0]).ha.counters()
        counters["mobilehaHaSendErrors"] = self.send_errors
        counters["mobilehaHaDataplaneErrors"] = self.dataplane_errors
        return counters

    def standby(self) -> list[dict[str, Any]]:
        """``show standby``: every HSRP group's snapshot."""
        return self.hsrp.snapshot() if self.hsrp is not None else []

    def now(self) -> float:
        """The clock of the cores (binding ``expires``)."""
        return self._loop.time() if self._loop is not None else time.monotonic()

    def bound(self) -> dict[str, tuple[str, int]]:
        """address -> (address, port) actually bound (port 0 in the config = any)."""
        out = {}
        for a, t in self._transports.items():
            name = t.get_extra_info("sockname")
            out[a] = (str(name[0]), int(name[1]))
        return out

    # ------------------------------------------------------------------ lifecycle

    def _open_dataplane(self) -> None:
        """The configured backend (or the one ``auto`` chooses); one that cannot start is a
        start-up error saying why. Every home agent core then refuses what the backend
        cannot carry (encapsulations, simultaneous copies, table size)."""
        if self.dataplane is None:
            opened = open_dataplane(self._dp_kind, self._dp_options)
            self.dataplane, self.dataplane_refused = opened.dataplane, opened.refused
        caps = capabilities(self.dataplane)
        for agent in self.agents:
            agent.ha.fit_dataplane(caps.encaps, caps.max_copies, caps.max_bindings)

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(loop, self._on_timer, lazy=True)
        if self.advertising is not None:
            self.advertising.start(loop)
        self._start_tunnel_icmp(loop)
        self._open_dataplane()
        if self.journal is not None:  # the table is back before a request is answered
            now = loop.time()
            by_addr = {a.ha_addr: a.ha for a in self.agents}
            try:
                actions, _, _ = self.journal.open(by_addr, now, self.cluster.wall_offset + now)
            except BaseException:
                if self.dataplane is not None:
                    with contextlib.suppress(Exception):
                        self.dataplane.close()
                raise
            self.run_actions(actions)
            self.journal.start(loop)
        try:
            for addr in self.addresses:
                await self._open(addr)
            if self._dfp_cfg is not None:
                await self._start_dfp()
        except BaseException:
            await self._close_transports()
            raise
        self._running = True
        address, mac = None, None
        if self.hsrp is not None:
            up = await self.hsrp.start()
            address, mac = self.hsrp.address, self.hsrp.mac
            if not up:
                self._event(LinkChanged(False))
        self._event(Start(address, mac))
        self.freeze_gc()
        _log.info(
            "home agent started",
            node=self.name,
            listen=",".join(f"{a}:{self.port}" for a in self._transports),
            ha_address=",".join(a.ha_addr for a in self.agents),
            bindings=sum(len(a.ha.table) for a in self.agents),
        )

    async def _open(self, addr: str) -> Any:
        """Bind a UDP socket to ``addr``:port (large buffers; IP_FREEBIND for a VIP) and
        serve it."""
        loop = asyncio.get_running_loop()
        real = addr == self.agents[0].ha.settings.address
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if not real:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        for force, opt in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:  # root may exceed net.core.rmem_max / wmem_max
                sock.setsockopt(socket.SOL_SOCKET, force, RCVBUF)
            except OSError:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
        bind(
            sock,
            (addr, self.port),
            "home_agent.port",
            "home_agent.address" if real else "home_agent.ha_address",
        )
        sock.setblocking(False)
        dst = (addr, self.port)
        transport: Any
        if self._batch_io:
            transport = BatchedUdp(
                loop,
                sock,
                lambda data, src: self._on_datagram(data, src, dst),
                on_error=self._on_socket_error,
                batch_begin=self._batch_begin,
                batch_end=self._batch_end,
                first=self._is_sync if self._sync_codes else None,
            )
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self, dst), sock=sock)
        self._transports[addr] = transport
        if self._default is None:
            self._default = transport
        return transport

    async def _start_dfp(self) -> None:
        from mobileha.node.dfp import DfpAgentServer

        d = self._dfp_cfg
        agents = self.agents

        def load() -> tuple[int, int, float, float]:
            bindings = sum(len(a.ha.table) for a in agents)
            limit = sum(a.ha.table.max_bindings for a in agents)
            return (bindings, limit, _cpu_free(), _mem_free())

        self.dfp_server = DfpAgentServer(
            d.listen.host,
            d.listen.port,
            self.core.settings.advertised,
            load,
            interval=float(d.interval_s),
            max_weight=d.max_weight,
            key=d.password,
            allow=d.allow,
            max_connections=d.max_connections,
            idle_timeout=float(d.idle_timeout_s),
            max_message=d.max_message_bytes,
        )
        try:
            await self.dfp_server.start()
        except OSError as e:
            self.dfp_server = None
            raise bind_error(
                e, (d.listen.host, d.listen.port), "dfp.listen", "dfp.listen"
            ) from None

    def reconfigure(
        self, event: Reconfigure, *, rate_limit_s: float | None = None, dfp: Any = None
    ) -> None:
        """Reload: new settings and SAs for the running cores (bindings, replay state, sync
        sessions and HSRP states stay), fitted to the data plane again; the rate limit of
        the bad-input log; the DFP agent's interval, maximum weight and password."""
        now = self._loop.time() if self._loop is not None else time.monotonic()
        self.run_actions(self.cluster.handle_event(event, now))
        if self.dataplane is not None:
            caps = capabilities(self.dataplane)
            for agent in self.agents:
                agent.ha.fit_dataplane(caps.encaps, caps.max_copies, caps.max_bindings)
        if rate_limit_s is not None:
            self.bad.interval_s = rate_limit_s
            self.trace.denials.interval_s = rate_limit_s
        if dfp is not None and self._dfp_cfg is not None:
            self._dfp_cfg = dfp
            if self.dfp_server is not None:
                agent_core = self.dfp_server.agent
                agent_core.interval = float(dfp.interval_s)
                agent_core.max_weight = dfp.max_weight
                agent_core.key = dfp.password
        if self._timer is not None:
            self._timer.update(self.cluster.get_timer())

    async def _close_transports(self) -> None:
        for t in self._transports.values():
            t.close()
        self._transports.clear()
        self._default = None

    async def stop(self) -> None:
        """SIGTERM: every HSRP group resigns and releases its VIP, held replies go out,
        then everything closes."""
        if self.advertising is not None:
            self.advertising.stop()
        if self.icmp is not None:
            self.icmp.close()
            self.icmp = None
        if self._running:
            self._event(Shutdown())
            self._running = False
        if self.journal is not None and self._loop is not None:
            now = self._loop.time()
            with contextlib.suppress(OSError):
                self.journal.close(now, self.cluster.wall_offset + now)
        if self.hsrp is not None:
            with contextlib.suppress(Exception):
                await self.hsrp.stop()
        if self._timer is not None:
            self._timer.cancel()
        for t in (*self._vip_tasks.values(), *self._tasks):
            t.cancel()
        if self.dfp_server is not None:
            with contextlib.suppress(Exception):
                await self.dfp_server.stop()
            self.dfp_server = None
        await self._close_transports()
        if self.sa_fetcher is not None:
            with contextlib.suppress(Exception):
                await self.sa_fetcher.close()
        if self.dataplane is not None:
            with contextlib.suppress(Exception):
                self.dataplane.close()

    def crash(self) -> None:
        """Simulate a crash (``kill -9``) in-process, for the loopback demo and tests: every
        socket closes and every timer stops at once. No HSRP Resign, no VIP release, no
        sync flush, no data plane clean-up; DFP connections close as the kernel would
        close them. The node is dead afterwards (do not start it again)."""
        self._running = False
        if self.journal is not None:
            self.journal.abandon()
        if self.hsrp is not None:
            self.hsrp.crash()
        if self._timer is not None:
            self._timer.cancel()
        for t in (*self._vip_tasks.values(), *self._tasks):
            t.cancel()
        for tr in self._transports.values():
            (tr.abort if hasattr(tr, "abort") else tr.close)()
        self._transports.clear()
        self._default = None
        if self.dfp_server is not None and self._loop is not None:
            task = self._loop.create_task(self.dfp_server.stop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.dfp_server = None

    # ------------------------------------------------------------------ the pump

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...], dst: Addr) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        if now >= self._wall_at:
            self._follow_wall_clock(now)
        if self.trace.debug:
            self.trace.trace("received", data, addr)
        actions = self.cluster.receive_datagram(data, addr, dst, now)
        if actions:
            self.run_actions(actions)

    def _on_socket_error(self, exc: OSError) -> None:
        self.send_errors += 1

    def _on_hsrp_datagram(self, data: bytes, src: Addr, dst: Addr) -> None:
        if self._loop is not None and self._running:
            self.run_actions(self.cluster.receive_datagram(data, src, dst, self._loop.time()))

    def _event(self, event: Any) -> None:
        if self._loop is not None and self._running:
            self.run_actions(self.cluster.handle_event(event, self._loop.time()))

    def _start_tunnel_icmp(self, loop: asyncio.AbstractEventLoop) -> None:
        icmp = IcmpIo(self._on_icmp, types=ICMP_ERROR_TYPES)
        try:
            icmp.start(loop)
        except OSError as e:  # no CAP_NET_RAW: tunnel ICMP errors are not relayed
            self._log_once_no_icmp(e)
            return
        self.icmp = icmp

    def _log_once_no_icmp(self, e: OSError) -> None:
        _log.warning("no raw ICMP socket: tunnel ICMP errors not relayed", error=str(e))

    def _on_icmp(self, data: bytes, _src: str, _dst: str, _ifname: str | None) -> None:
        if not data or data[0] not in ICMP_ERROR_TYPES or self._loop is None:
            return
        icmp = self.icmp
        for a in self.tunnel_icmp.receive(data, self._loop.time()):
            if icmp is not None:
                icmp.send(a)

    def _tunnel_is_ours(self, outer: IPv4Header, inner: IPv4Header) -> bool:
        """The quoted tunnel packet is one we sent: from one of our addresses to the
        care-of address of a binding of the inner destination."""
        for a in self.agents:
            if outer.src in (a.ha_addr, a.ha.settings.address) and (
                a.ha.table.find(inner.dst, outer.dst) is not None
            ):
                return True
        return False

    def clear_bindings(
        self, *, home_addr: str | None = None, nai: str | None = None, everything: bool = False
    ) -> int:
        """Operator command (``mobileha clear binding``): the number of bindings removed
        (none on a standby: the Active's deletions reach it through sync)."""
        before = sum(a.ha.cleared for a in self.agents)
        self._event(ClearBindings(home_addr, nai, everything))
        return sum(a.ha.cleared for a in self.agents) - before

    def _on_timer(self) -> None:
        loop = self._loop
        if loop is None or not self._running:
            return
        n = sum(len(a.ha.table) for a in self.agents)
        if n >= 50_000 and n > self._frozen_at * 1.1:
            self.freeze_gc()
        now = loop.time()
        if now >= self._wall_at:
            self._follow_wall_clock(now)
        self.run_actions(self.cluster.handle_timer(now))

    def _follow_wall_clock(self, now: float) -> None:
        """Unix time minus the loop's clock, for the replay timestamps: refreshed at most
        once a second, so that steps of the system clock are followed."""
        self.cluster.wall_offset = time.time() - now
        self._wall_at = now + 1.0

    def run_actions(self, actions: Iterable[Any]) -> None:
        """Execute the coordinator's actions, then re-arm the timer. Consecutive
        ``RestoreBinding`` actions (a takeover) go to the data plane as one batch."""
        transports = self._transports
        dp = self.dataplane
        journal = self.journal
        if journal is not None:
            jnow = self._loop.time() if self._loop is not None else time.monotonic()
            jwall = self.cluster.wall_offset + jnow
        restores: list[Any] = []
        for a in actions:
            cls = a.__class__
            if cls is RestoreBinding:
                if dp is not None:
                    restores.append(a.binding)
                continue
            if restores:
                self._install_many(restores)
                restores = []
            if cls is Send:
                src = a.src
                t = transports.get(src[0]) if src is not None else None
                if t is None:
                    t = self._default
                if t is not None:
                    t.sendto(a.payload, a.dst)
                if a.payload[:1] == _RRP:
                    self.trace.reply_sent(a.payload, a.dst)
            elif cls is InstallBinding:
                if dp is not None:
                    self._dp(dp.install, a.binding)
                if journal is not None:
                    journal.put(a.binding, jnow, jwall)
            elif cls is RemoveBinding or cls is WithdrawBinding:
                if dp is not None:
                    self._dp(dp.remove, a.binding)
                if journal is not None and cls is RemoveBinding:
                    journal.delete(a.binding, jwall)
            elif cls is RefreshBinding:  # same forwarding state
                if journal is not None:
                    journal.put(a.binding, jnow, jwall)
            elif cls is FetchSa:
                self._fetch_sa(a)
            elif cls in _HSRP_ACTIONS:
                if self.hsrp is not None:
                    self.hsrp.execute(a)
                if self.on_notice is not None:
                    self.on_notice(a)
            else:
                self._notice(a)
                if self.on_notice is not None:
                    self.on_notice(a)
        if restores:
            self._install_many(restores)
        if journal is not None:
            journal.end_of_batch()
        timer = self._timer
        if timer is not None and self._running and not self._batching:
            timer.update(self.cluster.get_timer())

    def _fetch_sa(self, a: FetchSa) -> None:
        """Ask AAA for an MN's SA without blocking the loop; the answer goes back to the
        coordinator as an event (the core's own deadline fails the fetch if this is late)."""
        loop = self._loop
        if loop is None:
            return
        task = loop.create_task(self._run_fetch(a))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_fetch(self, a: FetchSa) -> None:
        fetcher = self.sa_fetcher
        try:
            if fetcher is None:
                raise RuntimeError("no AAA client for SA fetches ([aaa] backend radius)")
            ans = await fetcher.fetch_sa(a.nai, a.spi)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # AAA trouble never takes registration down
            self.sa_fetch_errors += 1
            self.bad.warn("aaa-error", "SA fetch failed", error=str(e))
            self._event(SaFailed(a.ha_addr, a.nai, ERROR))
            return
        if ans.accepted:
            self._event(SaFetched(a.ha_addr, a.nai, ans.spi, ans.key, ans.home_address))
        else:
            self._event(SaFailed(a.ha_addr, a.nai, ans.reason or ERROR))

    def _is_sync(self, data: bytes) -> bool:
        return bool(data) and data[0] in self._sync_codes

    def _batch_begin(self) -> None:
        """A batch of datagrams is read: the timer is followed once, after the batch."""
        self._batching = True

    def _batch_end(self) -> None:
        """After a batch: what is due now (the BUs of the batch's changes) runs at once,
        so that it leaves with the batch's replies; then the timer follows the core."""
        self._batching = False
        loop = self._loop
        if loop is None or not self._running:
            return
        t = self.cluster.get_timer()
        if t is not None and t <= loop.time():
            self._on_timer()
        elif self._timer is not None:
            self._timer.update(t)

    def _install_many(self, bindings: list[Any]) -> None:
        """Bindings already known (becoming Active): one batch where the backend installs
        in bulk (one map update per map for ebpf), else one by one."""
        dp = self.dataplane
        assert dp is not None
        many = getattr(dp, "install_many", None)
        if many is not None and len(bindings) > 1:
            try:
                many(bindings)
                return
            except Exception as e:  # then one by one: what fits is installed, the rest counted
                self.bad.warn("dataplane-error", "data plane refused the table", error=str(e))
        for b in bindings:
            self._dp(dp.install, b)

    def _dp(self, fn: Any, b: Any) -> None:
        try:
            fn(b)
        except Exception as e:  # the data plane must never take registration down
            self.dataplane_errors += 1
            self.bad.warn("dataplane-error", "data plane refused a binding", error=str(e))

    def _notice(self, a: Any) -> None:
        """Log the coordinator's notices (state changes an operator must know about)."""
        cls = a.__class__
        if cls is ActiveChanged:
            _log.warning(
                "home agent active" if a.active else "home agent standby",
                node=self.name,
                ha_address=a.ha_addr,
            )
        elif cls is SyncStateChanged:
            level = _log.warning if a.new is SyncState.PEER_LOST else _log.info
            level(
                "sync state",
                node=self.name,
                ha_address=a.ha_addr,
                state=a.new.value,
                previous=a.old.value,
                cause=a.cause.value,
                records=a.records,
            )
        elif cls is DownloadIncomplete:
            _log.warning(
                "peer lost during the bulk download: ready with an incomplete table",
                node=self.name,
                ha_address=a.ha_addr,
                records_received=a.records,
                bindings=a.bindings,
            )

    # ------------------------------------------------------------------ VIP ownership

    def _claim_vip(self, addr: str, mac: bytes | None, name: str | None) -> None:
        """On the worker thread of :class:`HsrpIo`."""
        if self.dataplane is not None:
            self.dataplane.claim_vip(addr, mac, name)

    def _release_vip(self, addr: str) -> None:
        if self.dataplane is not None:
            self.dataplane.release_vip(addr)

    def _on_vip(self, vip: str, claimed: bool) -> None:
        """Unicast-peer HSRP: the VIP socket follows the claim, one socket per VIP."""
        if vip not in self._vip_when_active or self._loop is None:
            return
        self._vip_wanted[vip] = claimed
        if vip not in self._vip_tasks:
            task = self._loop.create_task(self._follow_vip(vip))
            self._vip_tasks[vip] = task
            task.add_done_callback(lambda _t: self._vip_tasks.pop(vip, None))

    async def _follow_vip(self, vip: str) -> None:
        while self._running:
            wanted = self._vip_wanted.get(vip, False)
            have = vip in self._transports
            if wanted == have:
                return
            if not wanted:
                t = self._transports.pop(vip)
                t.close()
                continue
            try:
                await self._open(vip)
            except OSError as e:
                self.bad.warn("vip-bind", "cannot bind the HSRP virtual address", error=str(e))
                return

    def freeze_gc(self) -> None:
        """Move the long-lived objects (bindings) out of the cyclic GC's generations.

        With 10^6 bindings a full collection walks millions of objects (100-200 ms pauses
        measured); bindings hold no reference cycles and are still freed by reference
        counting when removed. Called at start, after bulk loads and whenever the table
        has grown by 10% (from the timer).
        """
        gc.collect(1)
        gc.freeze()
        self._frozen_at = sum(len(a.ha.table) for a in self.agents)


__all__ = ["HomeAgentNode"]
