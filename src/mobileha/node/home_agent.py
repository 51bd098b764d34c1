"""The home agent node: UDP 434 sockets, one timer, the data plane and the DFP agent around
the sans-IO :class:`mobileha.core.home_agent.HomeAgent`.

* One UDP socket per own address (``home_agent.address`` and ``home_agent.ha_address``,
  bound with ``IP_FREEBIND`` so an HSRP VIP can be bound before it is claimed). The socket a
  datagram arrived on tells the core its destination address; the reply leaves from the
  socket of the reply's source address (P§1.1). Receive buffers are raised to 8 MiB.
* HA-HA sync messages (types 200-204, P§5.4) that arrive on these sockets go to
  :attr:`HomeAgentNode.sync_hook` (the redundancy adapter shares the socket; it sends with
  :meth:`HomeAgentNode.send`). Binding actions are also passed to every callable in
  :attr:`HomeAgentNode.binding_listeners` (the redundancy adapter's SyncPeer feed).
  With :attr:`HomeAgentNode.reply_gate` set (redundancy), the replies of a request that
  changed bindings are offered to the gate after the binding actions ran; it may hold them
  until the peer has acknowledged the changes (``send_action`` sends them later).
* Actions: :class:`Send` -> ``sendto``; :class:`InstallBinding` / :class:`RemoveBinding`
  -> data plane (``RefreshBinding`` changes nothing there) and the listeners.
* One :class:`~mobileha.node.base.DeadlineTimer` follows ``core.get_timer()``.
* With ``[hsrp]`` the node runs the group (:class:`mobileha.node.hsrp.HsrpNode`) and starts
  as a silent standby: HSRP Active -> ``set_active(True)`` (answer requests, install every
  binding in the data plane), any other state -> ``set_active(False)``. With
  ``[redundancy]`` it runs :class:`mobileha.node.redundancy.RedundancyNode` on its own
  socket (sync hook, binding listeners) and passes it the HSRP state changes. Their views
  (``standby``, ``redundancy``) and metrics are served with the home agent's. In unicast-peer
  set-ups (``hsrp.peers``, loopback) the VIP is not added to an interface (the HA socket is
  bound to it with IP_FREEBIND anyway).
* Load sharing (``[[hsrp.groups]]``, P§5.1: HA1 Active for group 1 and Standby for group 2,
  HA2 the reverse): every extra group is one more HA address (its VIP), served by a sibling
  :class:`HomeAgentNode` in this process (``siblings``) with its own core, binding table,
  replay state and :class:`~mobileha.node.redundancy.RedundancyNode` keyed by its HA
  address. The HSRP node runs all groups; state changes and VIP claims go to the node of
  the group, sync messages that arrive on our real-address socket to the node named by the
  HA address of the sync header, and each sync peer gates only its own group's readiness.
  Siblings share our data plane, and our real-address socket for sending sync messages;
  each has its own dynamic pool (``hsrp.groups[].pool``, checked disjoint by the config).
  A registration to a VIP is answered only while that group is Active. Sibling views are
  served as ``g<group>-<view>``, and the ``groups`` view lists every group (number, HA
  address, view prefix) for ``mobileha show``. In ``/metrics`` the home agent and
  redundancy families of every group carry the labels ``group`` and ``ha_address``
  (``mobileha.mgmt.metrics``); a single-group HA exports them without labels.
* Works with uvloop and the stock loop (only ``create_datagram_endpoint`` and timers).

Data plane on takeover: **installed at takeover**, not pre-installed on the standby (issue 7
"measure both and choose"; ``bench/takeover.py``, same run, memory / userspace backends):
installing every binding when HSRP says Active took 48 / 49 ms for 10,000 bindings and
633 / 576 ms for 100,000 (about 6 us per binding), against 5 / 5 ms and 49 / 51 ms when
the data plane already held them (the core's activation alone), so pre-installing makes
the takeover about 10-13x faster. But the standby pays for it all the time: 5-9 us per
synced record on its one thread (a 1,000,000-binding bulk download would take ~9 s longer,
past the 10 s target of the whole download) and 0.65 / 1.07 KB per binding of data plane
memory (65 / 107 MB per 100,000), and a pre-installed standby would answer proxy ARP for
the home addresses (userspace ``home_iface``) and tunnel traffic reaching it, so its data
plane would need an extra active/standby gate to avoid a data-plane split brain. At the
issue's scale (500 MNs: ~3 ms) and up to ~30,000 bindings per home agent the install stays
inside the "hold time + 200 ms" outage budget; above that the outage grows by ~0.6 s per
100,000 bindings. The measurement does not clearly favour changing the behaviour, so it
stays; installing in chunks in the background after the takeover is the follow-up for
tables of 10^5-10^6.
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

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.binding import Binding
from mobileha.core.home_agent import (
    HomeAgent,
    RefreshBinding,
    RestoreBinding,
    WithdrawBinding,
)
from mobileha.dataplane.choice import capabilities, open_dataplane
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer

RCVBUF = 8 * 1024 * 1024
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
SYNC_TYPES = range(200, 205)

_log = get_logger("mobileha.ha")


class _Proto(asyncio.DatagramProtocol):
    __slots__ = ("dst", "node")

    def __init__(self, node: HomeAgentNode, dst: str) -> None:
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
    """A running home agent (role ``home-agent``)."""

    role = "home-agent"

    def __init__(
        self,
        core: HomeAgent,
        *,
        name: str = "home-agent",
        addresses: Iterable[str] | None = None,
        dataplane: Any = None,
        dataplane_kind: str = "memory",
        dataplane_options: Mapping[str, Any] | None = None,
        dfp: Any = None,
        rate_limit_s: float = 10.0,
    ) -> None:
        self.core = core
        self.name = name
        s = core.settings
        addrs = list(addresses) if addresses is not None else [s.address, s.advertised]
        self.addresses = list(dict.fromkeys(addrs))
        self.port = s.port
        self.dataplane = dataplane
        self._dp_kind = dataplane_kind
        self._dp_options = dict(dataplane_options or {})
        self._dfp_cfg = dfp
        self.dfp_server: Any = None
        self.sync_hook: Callable[[bytes, tuple[str, int]], None] | None = None
        self.binding_listeners: list[Callable[[Any], None]] = []
        # Redundancy: called with the replies of one request and the keys of the bindings
        # it changed; returns True when it holds the replies (sent later with
        # send_action, once the peer has acknowledged the changes).
        self.reply_gate: Callable[[Send, list[tuple[str, str]]], bool] | None = None
        self.bad = RateLimitedLogger(_log, rate_limit_s)
        self.send_errors = 0
        self.dataplane_errors = 0
        self.dataplane_refused: dict[str, str] = {}  # auto: backend -> why not taken
        self._transports: dict[str, asyncio.DatagramTransport] = {}
        self._default: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._started = time.monotonic()
        self._frozen_at = 0
        self.hsrp: Any = None
        self.redundancy: Any = None
        # load sharing: sibling nodes serving the other HSRP groups' HA addresses, the
        # sync messages routed to them by the HA address of the sync header, and the
        # node whose real-address socket sends our sync messages
        self.siblings: list[HomeAgentNode] = []
        self._sync_routes: dict[bytes, HomeAgentNode] = {}
        self._send_via: HomeAgentNode | None = None
        self.hsrp_group_number: int | None = None
        # unicast-peer HSRP (loopback): the VIP socket exists only while HSRP Active
        self.vip_when_active: str | None = None
        self._vip_tasks: set[asyncio.Task[None]] = set()
        bad = self.bad

        def on_drop(reason: str) -> None:
            bad.warn(reason, "registration datagram dropped")

        core.on_drop = on_drop

    def add_sibling(self, sib: HomeAgentNode) -> None:
        """Load sharing: ``sib`` serves another HSRP group's HA address in this process. It
        sends its sync messages through our real-address socket, and the sync messages
        that arrive there for its HA address (sync header) go to it."""
        sib._send_via = self
        if sib.redundancy is not None:
            self._sync_routes[socket.inet_aton(sib.core.settings.advertised)] = sib
        self.siblings.append(sib)

    def on_hsrp_state(self, change: Any) -> None:
        """HSRP state change of our group: Active answers, every other state is silent."""
        if self.siblings and change.group != self.hsrp_group_number:
            for sib in self.siblings:
                if sib.hsrp_group_number == change.group:
                    sib.on_hsrp_state(change)
            return
        name = str(getattr(change.new, "name", change.new)).upper()
        active = name == "ACTIVE"
        _log.info("hsrp state", node=self.name, state=name, home_agent_active=active)
        if active:
            self.set_active(True)
        if self.redundancy is not None:
            self.redundancy.on_hsrp_state(change)
        if not active:
            self.set_active(False)

    # ------------------------------------------------------------------ lifecycle

    def _open_dataplane(self) -> None:
        """The configured backend (or the one ``auto`` chooses); one that cannot start is a
        start-up error saying why. The core then refuses what the backend cannot carry."""
        if self.dataplane is None:
            opened = open_dataplane(self._dp_kind, self._dp_options)
            self.dataplane, self.dataplane_refused = opened.dataplane, opened.refused
        caps = capabilities(self.dataplane)
        self.core.fit_dataplane(caps.encaps, caps.max_copies, caps.max_bindings)

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._open_dataplane()
        for addr in self.addresses:
            try:
                await self._open(addr)
            except OSError:
                await self._close_transports()
                raise
        if self._dfp_cfg is not None:
            await self._start_dfp()
        if self.redundancy is not None:
            await self.redundancy.start()
            if self.hsrp is not None:
                # Start-up: download the peer's table before HSRP may make us Active. HSRP
                # starts not ready (the download gates it), so a restarted HA with a higher
                # priority and preemption does not Coup from Listen with a partial table
                # (found by tests/netns/test_redundancy_download.py: it took over with 3,425
                # of 50,000 bindings). A dead peer: the request fails, ready again.
                self.redundancy.start_download()
        for sib in self.siblings:
            sib.dataplane = self.dataplane
            await sib.start()
            if sib.redundancy is not None:
                sib.redundancy.start_download()
        if self.hsrp is not None:
            await self.hsrp.start()
            for n in (self, *self.siblings):
                if n.redundancy is not None:
                    n.redundancy.apply_group_ready()
        self._timer.update(self.core.get_timer())
        self.freeze_gc()
        _log.info(
            "home agent started",
            node=self.name,
            listen=",".join(f"{a}:{self.port}" for a in self._transports),
            ha_address=self.core.settings.advertised,
            bindings=len(self.core.table),
        )

    async def _open(self, addr: str) -> None:
        """Bind a UDP socket to ``addr``:port (IP_FREEBIND, large buffers) and serve it."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, RCVBUF)
        try:
            sock.bind((addr, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self, addr),
            sock=sock,
        )
        self._transports[addr] = transport
        if self._default is None:
            self._default = transport

    def on_vip(self, vip: str, claimed: bool) -> None:
        """HSRP ClaimVip / ReleaseVip in unicast-peer mode: open / close the VIP socket."""
        if vip != self.vip_when_active:
            for sib in self.siblings:
                if vip == sib.vip_when_active:
                    sib.on_vip(vip, claimed)
            return
        if self._loop is None:
            return
        if not claimed:
            t = self._transports.pop(vip, None)
            if t is not None:
                t.close()
            return
        if vip in self._transports:
            return

        async def open_vip() -> None:
            try:
                await self._open(vip)
            except OSError as e:
                self.bad.warn("vip-bind", "cannot bind the HSRP virtual address", error=str(e))
                return
            if not self.core.active:  # released meanwhile
                self.on_vip(vip, False)

        task = self._loop.create_task(open_vip())
        self._vip_tasks.add(task)
        task.add_done_callback(self._vip_tasks.discard)

    async def _start_dfp(self) -> None:
        from mobileha.node.dfp import DfpAgentServer

        d = self._dfp_cfg
        core = self.core

        def load() -> tuple[int, int, float, float]:
            return (len(core.table), core.table.max_bindings, _cpu_free(), _mem_free())

        self.dfp_server = DfpAgentServer(
            d.listen.host,
            d.listen.port,
            core.settings.advertised,
            load,
            interval=float(d.interval_s),
            max_weight=d.max_weight,
            key=d.password,
        )
        await self.dfp_server.start()

    async def _close_transports(self) -> None:
        for t in self._transports.values():
            t.close()
        self._transports.clear()
        self._default = None

    async def stop(self) -> None:
        if self.hsrp is not None:  # Resign first, while the sockets are still open
            with contextlib.suppress(Exception):
                await self.hsrp.stop()
        if self.redundancy is not None:
            with contextlib.suppress(Exception):
                await self.redundancy.stop()
        for sib in self.siblings:
            sib.dataplane = None  # ours, closed below
            with contextlib.suppress(Exception):
                await sib.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self.dfp_server is not None:
            with contextlib.suppress(Exception):
                await self.dfp_server.stop()
            self.dfp_server = None
        await self._close_transports()
        if self.dataplane is not None:
            with contextlib.suppress(Exception):
                self.dataplane.close()

    def crash(self) -> None:
        """Simulate a crash (``kill -9``) in-process, for the loopback demo and tests: every
        socket closes and every timer stops at once. No HSRP Resign, no VIP release, no
        sync flush, no data plane clean-up; DFP connections close as the kernel would
        close them. The node is dead afterwards (do not start it again)."""
        if self.hsrp is not None:
            self.hsrp.crash()
        if self.redundancy is not None:
            self.redundancy.crash()
        for sib in self.siblings:
            sib.crash()
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self._vip_tasks):
            t.cancel()
        for tr in self._transports.values():
            tr.abort()
        self._transports.clear()
        self._default = None
        if self.dfp_server is not None and self._loop is not None:
            task = self._loop.create_task(self.dfp_server.stop())
            self._vip_tasks.add(task)
            task.add_done_callback(self._vip_tasks.discard)
            self.dfp_server = None

    def bound(self) -> dict[str, tuple[str, int]]:
        """address -> (address, port) actually bound (port 0 in the config = any)."""
        out = {}
        for a, t in self._transports.items():
            name = t.get_extra_info("sockname")
            out[a] = (str(name[0]), int(name[1]))
        return out

    # ------------------------------------------------------------------ hot path

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...], dst: str) -> None:
        if data and 200 <= data[0] <= 204:
            hook = self.sync_hook
            if self._sync_routes:  # load sharing: by the HA address of the sync header
                sib = self._sync_routes.get(data[8:12])
                if sib is not None:
                    hook = sib.sync_hook
            if hook is not None:
                hook(data, (addr[0], addr[1]))
                return
        loop = self._loop
        assert loop is not None
        core = self.core
        now = loop.time()
        core.unix_offset = time.time() - now  # follows wall-clock steps
        actions = core.receive_datagram(data, addr, (dst, self.port), now)
        if actions:
            self._run(actions)

    def send(self, payload: bytes, dst: tuple[str, int], src: str | None = None) -> None:
        """Send one datagram from our socket bound to ``src`` (default: the first)."""
        if src is None and self._send_via is not None:
            self._send_via.send(payload, dst)
            return
        t = self._transports.get(src) if src is not None else None
        if t is None:
            t = self._default
        if t is not None:
            t.sendto(payload, dst)

    def _run(self, actions: list[Any], restored: bool = False) -> None:
        """Execute core actions, then re-arm the timer (also for callers outside this class,
        e.g. the redundancy adapter running what ``apply_synced`` returned). ``restored``:
        the data plane already has the ``RestoreBinding`` ones (installed in one batch)."""
        listeners = self.binding_listeners
        gate = self.reply_gate
        held: list[Send] | None = None
        keys: list[tuple[str, str]] = []
        for a in actions:
            cls = a.__class__
            if cls is Send:
                if gate is not None:
                    if held is None:
                        held = []
                    held.append(a)
                else:
                    self.send_action(a)
                continue
            if isinstance(a, InstallBinding):
                if cls is not RefreshBinding and not (restored and cls is RestoreBinding):
                    self._dp(a.binding, True)
                if gate is not None and cls is not RestoreBinding:
                    keys.append((a.binding.home_addr, a.binding.care_of))
            elif isinstance(a, RemoveBinding):
                self._dp(a.binding, False)
                if gate is not None and cls is not WithdrawBinding:
                    keys.append((a.binding.home_addr, a.binding.care_of))
            for fn in listeners:
                fn(a)
        if held is not None:
            # the replies of this batch go out once the peer has the changes (see reply_gate)
            assert gate is not None
            for a in held:
                if not (keys and gate(a, keys)):
                    self.send_action(a)
        timer = self._timer
        if timer is not None:
            timer.update(self.core.get_timer())

    def send_action(self, a: Send) -> None:
        """Send a core ``Send`` action from the socket of its source address."""
        src = a.src
        t = self._transports.get(src[0]) if src is not None else None
        if t is None:
            t = self._default
        if t is not None:
            t.sendto(a.payload, a.dst)

    def _dp(self, b: Binding, install: bool) -> None:
        dp = self.dataplane
        if dp is None:
            return
        try:
            if install:
                dp.install(b)
            else:
                dp.remove(b)
        except Exception as e:  # the data plane must never take registration down
            self.dataplane_errors += 1
            self.bad.warn("dataplane-error", "data plane refused a binding", error=str(e))

    def freeze_gc(self) -> None:
        """Move the long-lived objects (bindings) out of the cyclic GC's generations.

        With 10^6 bindings a full collection walks millions of objects (100-200 ms pauses
        measured); bindings hold no reference cycles and are still freed by reference
        counting when removed. Called at start, after bulk loads and whenever the table
        has grown by 10% (from the timer).
        """
        gc.collect(1)
        gc.freeze()
        self._frozen_at = len(self.core.table)

    def _on_timer(self) -> None:
        loop = self._loop
        if loop is None:
            return
        core = self.core
        n = len(core.table)
        if n >= 50_000 and n > self._frozen_at * 1.1:
            self.freeze_gc()
        self._run(core.handle_timer(loop.time()))

    # ------------------------------------------------------------------ redundancy entry

    def set_active(self, active: bool) -> None:
        """HSRP said Active / not Active: tell the core and run what it returns."""
        loop = self._loop
        now = loop.time() if loop is not None else time.monotonic()
        actions = self.core.set_active(active, now)
        self._run(actions, restored=self._install_restored(actions))

    def _install_restored(self, actions: list[Any]) -> bool:
        """Takeover: the whole table into a backend that installs in bulk (one batch per
        map); True when done. Otherwise ``_run`` installs the bindings one by one."""
        many = getattr(self.dataplane, "install_many", None)
        restores = [a.binding for a in actions if a.__class__ is RestoreBinding]
        if many is None or not restores:
            return False
        try:
            many(restores)
        except Exception as e:  # then one by one: what fits is installed, the rest counted
            self.bad.warn("dataplane-error", "data plane refused the table", error=str(e))
            return False
        return True

    def now(self) -> float:
        """The clock of the core (binding ``expires``)."""
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the views and metric families from these)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    @property
    def serves_dfp(self) -> bool:
        """A DFP agent is configured (its view exists before the agent listens)."""
        return self.dfp_server is not None or self._dfp_cfg is not None

    def counters(self) -> dict[str, int]:
        """The core's counters by CISCO-MOBILE-IP-MIB name plus the adapter's own."""
        counters = self.core.counters()
        counters["mobilehaHaSendErrors"] = self.send_errors
        counters["mobilehaHaDataplaneErrors"] = self.dataplane_errors
        return counters


__all__ = ["HomeAgentNode"]
