"""HSRP's side of a node: the UDP 1985 socket, VIP ownership and link watching
(:class:`HsrpIo`), and the standalone HSRP router (:class:`HsrpNode`,
``python -m mobileha.node.hsrp``).

The protocol runs in the sans-IO cluster coordinator (:mod:`mobileha.core.cluster`, which
holds the RFC 2281 groups of :mod:`mobileha.core.hsrp`); this module moves its datagrams
and executes its HSRP actions.

Transport (P§4.1): UDP port 1985 from and to, multicast to 224.0.0.2 (v1) or 224.0.0.102
(v2), TTL 1, sent out of one named interface (``IP_MULTICAST_IF`` with the interface index
and our address, so the source is the interface address even when the VIP is configured
too) and received only on it (``SO_BINDTODEVICE``). Multicast loopback is off.

**Unicast peers (extension, not HSRP as specified)**: with ``peers`` every packet is also
sent by unicast to each listed address, for networks without multicast. Real IOS routers
neither send nor expect this; all routers of a group must list each other.

VIP ownership (``manage_vip``, the default) is :mod:`mobileha.dataplane.vip`: on becoming
Active (``ClaimVip``) the VIP goes on the interface (or on a macvlan with the group's
virtual MAC, ``macvlan=True``) and is announced with gratuitous ARPs, ``garp_repeat`` times
``garp_interval`` apart (action I); on leaving Active (``ReleaseVip``) it is removed. These
netlink operations run on a worker thread, one at a time, in the order the core asked. An
Active group on a macvlan sends its Hellos as whole Ethernet frames from the virtual MAC
(RFC 2281 §6.1). At start a VIP or macvlan left over by a killed predecessor is removed.
Without ``manage_vip`` (unicast peers on loopback) ``ClaimVip`` / ``ReleaseVip`` only go to
the ``on_vip`` callback.

The HSRP interface's own state (RFC 2281 §5.5 events a and b) and tracked interfaces are
watched by :class:`mobileha.node.link.LinkWatch` where the node owns the VIP on a real
interface (``watch_interface`` overrides). While the interface is down received packets are
ignored (the coordinator counts them).

Run standalone (network-namespace tests and the failover bench)::

    python -m mobileha.node.hsrp -i eth0 --group 1 --vip 10.0.0.1 --priority 110 \\
        --preempt --hello-ms 100 --hold-ms 300 --version 2 --mgmt-json-file /tmp/r1.json

The JSON file holds the ``standby`` view (the core's ``snapshot()`` per group) and the
recent state changes with ``time.monotonic()`` stamps; it is rewritten on every state change
and every second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mobileha.core.actions import Addr, ClaimVip, ReleaseVip
from mobileha.core.cluster import (
    Cluster,
    LinkChanged,
    LinkStateChanged,
    SetReady,
    Shutdown,
    Start,
    TrackChanged,
)
from mobileha.core.hsrp import (
    ActiveTimerExpired,
    GratuitousArp,
    HsrpConfig,
    HsrpGroup,
    HsrpInterface,
    HsrpSend,
    StateChange,
    parse_auth,
)
from mobileha.dataplane.vip import VipOwner, interface_info
from mobileha.node.base import DeadlineTimer, StartupError, bind
from mobileha.node.link import LinkWatch
from mobileha.wire import hsrp as w
from mobileha.wire.ip import multicast_udp_frame

log = logging.getLogger("mobileha.hsrp")

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
RCVBUF = 1 << 20


def _ip_mreqn(group: str, local: str, ifindex: int) -> bytes:
    return struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton(local), ifindex)


@dataclass(slots=True)
class HsrpNodeConfig:
    """The adapter's configuration; ``groups`` are the core's group configurations."""

    interface: str
    groups: list[HsrpConfig]
    peers: list[str] = field(default_factory=list)  # unicast extension
    macvlan: bool = False
    arp_ignore: bool = True
    vip_prefixlen: int = 32
    garp_repeat: int = 2
    garp_interval: float = 0.5
    track: dict[str, int] = field(default_factory=dict)  # interface -> decrement
    track_poll: float = 0.5
    mgmt_json_file: str | None = None
    name: str = "hsrp"
    port: int = w.HSRP_PORT
    multicast: bool = True  # False: unicast to ``peers`` only (bound to our address)
    multicast_group: str | None = None  # override of 224.0.0.2 / 224.0.0.102
    manage_vip: bool = True  # False: ClaimVip/ReleaseVip go to ``on_vip`` only, no ARP
    # watch ``interface`` (netlink + poll; down: event b, up: event a); None = manage_vip
    watch_interface: bool | None = None

    @property
    def watching_link(self) -> bool:
        """Whether the HSRP interface's own state drives events b / a."""
        return self.manage_vip if self.watch_interface is None else self.watch_interface


def macvlan_name(g: HsrpGroup) -> str:
    """The macvlan device of a group's virtual MAC."""
    return f"hsrp{g.cfg.version}g{g.group}"[:15]


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, io: HsrpIo) -> None:
        self.io = io

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.io._on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.io.counters[f"socket_error_{type(exc).__name__}"] += 1


class HsrpIo:
    """The HSRP socket, VIP ownership and link watching of one node (module docstring).

    ``deliver(data, src, dst)`` receives every HSRP datagram (for the coordinator);
    ``on_link(up)`` / ``on_track(name, up)`` the link changes. ``claim`` / ``release`` own a
    VIP (default: ``vip``'s; a home agent passes its data plane's ``claim_vip`` /
    ``release_vip``, which use the same :class:`VipOwner`). ``on_vip(vip, claimed)`` is
    told of every claim and release (the unicast-peer home agent opens its VIP socket).
    """

    def __init__(
        self,
        config: HsrpNodeConfig,
        hsrp: HsrpInterface,
        *,
        deliver: Callable[[bytes, Addr, Addr], None],
        on_link: Callable[[bool], None] | None = None,
        on_track: Callable[[str, bool], None] | None = None,
        on_vip: Callable[[str, bool], None] | None = None,
        vip: VipOwner | None = None,
        claim: Callable[[str, bytes | None, str | None], None] | None = None,
        release: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = config
        self.core = hsrp  # the coordinator's groups (read-only here)
        self.counters: Counter[str] = Counter()
        self.changes: deque[dict[str, Any]] = deque(maxlen=100)
        self._deliver = deliver
        self.on_vip = on_vip
        if config.manage_vip and vip is None:
            vip = VipOwner(
                config.interface,
                prefixlen=config.vip_prefixlen,
                macvlan=config.macvlan,
                arp_ignore=config.arp_ignore,
            )
        self.vip = vip if config.manage_vip else None
        self._claim = claim if claim is not None else (vip.claim if vip is not None else None)
        self._release = release if release is not None else (vip.release if vip else None)
        self.link = LinkWatch(
            config.interface if config.watching_link else None,
            track=config.track,
            poll=config.track_poll,
            on_link=on_link,
            on_track=on_track,
        )
        self.address = ""
        self.mac = bytes(6)
        self._ifindex = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ops: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._pending = 0  # VIP operations queued and not yet done
        self._tasks: set[asyncio.Task[None]] = set()
        self._handles: list[asyncio.TimerHandle] = []
        self.running = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> bool:
        """Read the interface, open the socket, start the VIP worker and the link watch;
        returns the interface's state (True when it is not watched)."""
        loop = self._loop = asyncio.get_running_loop()
        c = self.cfg
        try:
            if self.vip is not None:
                info = await asyncio.to_thread(self.vip.prepare)
            else:
                info = await asyncio.to_thread(interface_info, c.interface)
        except PermissionError:
            raise StartupError(
                "hsrp.interface",
                c.interface,
                "owning the virtual IP (address, gratuitous ARP) needs root or "
                "CAP_NET_ADMIN and CAP_NET_RAW",
            ) from None
        except OSError as e:
            raise StartupError("hsrp.interface", c.interface, str(e)) from None
        self._ifindex, addr, _plen, self.mac = info
        configured = c.groups[0].address if c.groups else ""
        self.address = configured if configured not in ("", "0.0.0.0") else addr
        if self.vip is not None:
            leftovers = [(macvlan_name(g), g.vip) for g in self.core.groups.values()]
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.vip.cleanup, leftovers)
        sock = self._open_socket(self.address)
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        self._ops = asyncio.Queue()
        worker = loop.create_task(self._op_worker())
        self._tasks.add(worker)
        self.running = True
        up = self.link.start(loop, self._ifindex)
        if not up:
            self.counters["link_down"] += 1
            log.warning("%s is down: HSRP groups stay Initial until it is up", c.interface)
        if c.mgmt_json_file:
            self._handles.append(loop.call_later(1.0, self._periodic))
        return up

    async def stop(self) -> None:
        """After the coordinator's Shutdown actions: let the Resign leave, release what is
        still claimed, close everything."""
        if not self.running:
            return
        self.running = False
        self.link.stop()
        for h in self._handles:
            h.cancel()
        await asyncio.sleep(0)  # let the Resign leave
        if self.vip is not None:
            for addr in [g.vip for g in self.core.groups.values() if g.vip]:
                if self.vip.device_of(addr) is not None:
                    self._queue("release", addr)
        self._queue("quit", None)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5.0)
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self.vip is not None:
            self.vip.close()
        self.write_mgmt()

    def crash(self) -> None:
        """``kill -9`` in-process (demo, tests): the socket closes, every timer and task is
        cancelled at once; no Resign, the VIP is not released."""
        self.running = False
        self.link.stop()
        for h in self._handles:
            h.cancel()
        self._handles.clear()
        for t in list(self._tasks):
            t.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self.vip is not None:
            self.vip.close()

    # ------------------------------------------------------------------ datagrams
    def _on_datagram(self, data: bytes, src: Addr) -> None:
        if self.running:
            self._deliver(data, src, (self.address, self.cfg.port))

    def execute(self, a: object) -> None:
        """One of the coordinator's HSRP actions (anything else is ignored)."""
        cls = a.__class__
        if cls is HsrpSend:
            assert isinstance(a, HsrpSend)
            if self.cfg.macvlan and self._pending:
                self._queue("send", a)  # after the macvlan exists: from the virtual MAC
            else:
                self._send(a)
        elif cls is ClaimVip:
            assert isinstance(a, ClaimVip)
            if self._claim is not None:
                self._queue("claim", a.addr)
            if self.on_vip is not None:
                self.on_vip(a.addr, True)
        elif cls is ReleaseVip:
            assert isinstance(a, ReleaseVip)
            if self._release is not None:
                self._queue("release", a.addr)
            if self.on_vip is not None:
                self.on_vip(a.addr, False)
        elif cls is GratuitousArp:
            assert isinstance(a, GratuitousArp)
            if self.vip is not None:
                self._queue("garp", (a.vip, self.cfg.garp_repeat))
        elif cls is StateChange:
            assert isinstance(a, StateChange)
            self.changes.append(
                {
                    "t_mono": time.monotonic(),
                    "group": a.group,
                    "old": a.old.label,
                    "new": a.new.label,
                    "event": a.event.value,
                }
            )
            log.warning(
                "%s Grp %d state %s -> %s (event %s: %s)", self.cfg.interface, a.group,
                a.old.label, a.new.label, a.event.value, a.event.reason,
            )  # fmt: skip
            self.write_mgmt()
        elif cls is LinkStateChanged:
            assert isinstance(a, LinkStateChanged)
            log.warning(
                "%s %s: RFC 2281 event %s for every group", self.cfg.interface,
                "up" if a.up else "down", "a" if a.up else "b",
            )  # fmt: skip
        elif cls is ActiveTimerExpired:
            assert isinstance(a, ActiveTimerExpired)
            log.info("%s Grp %d active router %s lost", self.cfg.interface, a.group, a.active)

    def _send(self, a: HsrpSend) -> None:
        if self._transport is None:
            return
        c = self.cfg
        try:
            if c.multicast and not self._send_from_vmac(a):
                dst = c.multicast_group or a.dst[0]
                self._transport.sendto(a.payload, (dst, c.port))
            for peer in c.peers:
                self._transport.sendto(a.payload, (peer, c.port))
            self.counters["tx_packets"] += 1
        except OSError as exc:  # e.g. ENETDOWN while the link is cut
            self.counters[f"tx_error_{exc.errno}"] += 1

    def _send_from_vmac(self, a: HsrpSend) -> bool:
        """RFC 2281 §6.1: an Active router MUST send its Hellos from the virtual MAC.

        With a macvlan (the virtual MAC is ours) the packets of an Active group are written
        as whole Ethernet frames on the macvlan: source MAC = virtual MAC, source IP = our
        real address, TTL 1, UDP 1985 with checksum. Without one (use-bia style) the
        interface's own MAC is used, as IOS does with ``standby use-bia``.
        """
        if not (self.cfg.macvlan and a.from_active and self.vip is not None):
            return False
        g = self.core.groups.get(a.group)
        if g is None or g.vip is None:
            return False
        frame = multicast_udp_frame(
            a.vmac, self.address, a.dst[0], w.HSRP_PORT, a.dst[1], a.payload
        )
        if not self.vip.send_frame(g.vip, frame):
            return False
        self.counters["tx_from_vmac"] += 1
        return True

    # ------------------------------------------------------------------ VIP operations
    def _queue(self, op: str, arg: Any) -> None:
        self._pending += 1
        self._ops.put_nowait((op, arg))

    def _group_for_vip(self, vip: str) -> HsrpGroup | None:
        for g in self.core.groups.values():
            if g.vip == vip:
                return g
        return None

    async def _op_worker(self) -> None:
        """VIP changes and gratuitous ARPs, in the order the core asked for them."""
        while True:
            op, arg = await self._ops.get()
            try:
                if op == "quit":
                    return
                if op == "send":
                    self._send(arg)
                elif op == "claim" and self._claim is not None:
                    g = self._group_for_vip(arg)
                    mac = g.vmac if g is not None else None
                    name = macvlan_name(g) if g is not None else None
                    await asyncio.to_thread(self._claim, arg, mac, name)
                    self.counters["vip_claimed"] += 1
                elif op == "release" and self._release is not None:
                    await asyncio.to_thread(self._release, arg)
                    self.counters["vip_released"] += 1
                elif op == "garp" and self.vip is not None:
                    vip, left = arg
                    self.vip.announce(vip)
                    if left > 1 and self._loop is not None and self.running:
                        self._handles.append(self._loop.call_later(
                            self.cfg.garp_interval, self._queue, "garp", (vip, left - 1)
                        ))  # fmt: skip
            except Exception as exc:  # never let the worker die
                self.counters[f"op_error_{op}"] += 1
                log.error("%s %s: %s", op, arg, exc)
            finally:
                self._pending = max(0, self._pending - 1)

    def _mcast_group(self, version: int) -> str:
        if self.cfg.multicast_group:
            return self.cfg.multicast_group
        return w.MCAST_V1 if version == 1 else w.MCAST_V2

    def _open_socket(self, addr: str) -> socket.socket:
        c = self.cfg
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, c.interface.encode())
        except PermissionError as exc:  # unprivileged (loopback demo): address binding only
            log.warning("SO_BINDTODEVICE %s: %s", c.interface, exc)
        if not c.multicast:
            bind(sock, (addr, c.port), "hsrp.port", "hsrp.address")
            sock.setblocking(False)
            return sock
        bind(sock, ("0.0.0.0", c.port), "hsrp.port", "hsrp.port")
        groups = {self._mcast_group(g.version) for g in c.groups}
        for mc in sorted(groups):
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _ip_mreqn(mc, "0.0.0.0", self._ifindex)
            )
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _ip_mreqn("0.0.0.0", addr, self._ifindex)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setblocking(False)
        return sock

    # ------------------------------------------------------------------ read-only state
    def snapshot(self) -> list[dict[str, Any]]:
        """Every group's ``HsrpGroup.snapshot()`` plus the interface (``show standby``)."""
        now = self._loop.time() if self._loop is not None else 0.0
        out = []
        for s in self.core.snapshot(now):
            s["interface"] = self.cfg.interface
            out.append(s)
        return out

    def _periodic(self) -> None:
        if self._loop is None or not self.running:
            return
        self.write_mgmt()
        self._handles = [h for h in self._handles if not h.cancelled()][-16:]
        self._handles.append(self._loop.call_later(1.0, self._periodic))

    def write_mgmt(self) -> None:
        """The ``mgmt_json_file`` (standalone routers; tests and the failover bench)."""
        path = self.cfg.mgmt_json_file
        if not path:
            return
        doc = {
            "pid": os.getpid(),
            "t_mono": time.monotonic(),
            "interface": self.cfg.interface,
            "running": self.running,
            "link_up": self.link.up,
            "standby": self.snapshot(),
            "changes": list(self.changes),
            "counters": dict(self.counters)
            | {f"if_{k}": v for k, v in self.core.counters.items()}
            | dict(self.link.counters),
        }
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)


class HsrpNode:
    """A standalone HSRP router: the coordinator without home agents, pumped by asyncio."""

    role = "hsrp"

    def __init__(
        self,
        config: HsrpNodeConfig,
        on_state_change: Callable[[StateChange], None] | None = None,
        on_vip: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.cfg = config
        self.name = config.name
        self.on_state_change = on_state_change
        self.cluster = Cluster([], hsrp=config.groups, hsrp_port=config.port, track=config.track)
        assert self.cluster.hsrp is not None
        self.io = HsrpIo(
            config,
            self.cluster.hsrp,
            deliver=self._on_datagram,
            on_link=lambda up: self._event(LinkChanged(up)),
            on_track=lambda name, up: self._event(TrackChanged(name, up)),
            on_vip=on_vip,
        )
        self._ready = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None

    @property
    def core(self) -> HsrpInterface:
        """The groups (read-only use: views, tests)."""
        assert self.cluster.hsrp is not None
        return self.cluster.hsrp

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(loop, self._on_timer)
        up = await self.io.start()
        if not up:
            self._event(LinkChanged(False))
        if not self._ready:
            self._event(SetReady(False))
        self._event(Start(self.io.address, self.io.mac))
        self.io.write_mgmt()

    async def stop(self) -> None:
        if self._loop is None or not self.io.running:
            return
        self._event(Shutdown())
        if self._timer is not None:
            self._timer.cancel()
        await self.io.stop()

    def crash(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.io.crash()

    def set_ready(self, ready: bool) -> None:
        """While not ready no group takes the Active role or preempts."""
        self._ready = ready
        if self._loop is not None and self.io.running:
            self._event(SetReady(ready))

    def snapshot(self) -> list[dict[str, Any]]:
        return self.io.snapshot()

    def _event(self, event: Any) -> None:
        if self._loop is not None:
            self._execute(self.cluster.handle_event(event, self._loop.time()))

    def _on_datagram(self, data: bytes, src: Addr, dst: Addr) -> None:
        if self._loop is not None:
            self._execute(self.cluster.receive_datagram(data, src, dst, self._loop.time()))

    def _on_timer(self) -> None:
        if self._loop is not None and self.io.running:
            self._execute(self.cluster.handle_timer(self._loop.time()))

    def _execute(self, actions: Iterable[Any]) -> None:
        io = self.io
        for a in actions:
            io.execute(a)
            if self.on_state_change is not None and a.__class__ is StateChange:
                self.on_state_change(a)
        if self._timer is not None and io.running:
            self._timer.update(self.cluster.get_timer())


# ---------------------------------------------------------------------- standalone
def build_arg_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mobileha.node.hsrp", description="Run one HSRP group on an interface."
    )
    p.add_argument("-i", "--interface", required=True)
    p.add_argument("--group", type=int, default=0)
    p.add_argument("--version", type=int, choices=(1, 2), default=1)
    p.add_argument("--vip", default=None, help="virtual IP (omit to learn it: Learn state)")
    p.add_argument("--address", default="", help="our address (default: the interface's)")
    p.add_argument("--priority", type=int, default=w.DEFAULT_PRIORITY)
    p.add_argument("--preempt", action="store_true")
    p.add_argument("--preempt-delay-ms", type=int, default=0)
    p.add_argument("--hello-ms", type=int, default=None)
    p.add_argument("--hold-ms", type=int, default=None)
    p.add_argument(
        "--auth",
        required=True,
        help="md5:KEY-STRING (Cisco's MD5 TLV, recommended) or text:PASSWORD "
        "(e.g. text:cisco, the IOS default, for interop; sent in clear)",
    )
    p.add_argument("--md5-key-id", type=int, default=0)
    p.add_argument("--peer", action="append", default=[], help="unicast peer (extension)")
    p.add_argument("--macvlan", action="store_true", help="own the VIP on a virtual-MAC macvlan")
    p.add_argument("--no-arp-ignore", action="store_true")
    p.add_argument("--track", action="append", default=[], help="IFACE[:DECREMENT] (default 10)")
    p.add_argument("--garp-repeat", type=int, default=2)
    p.add_argument("--not-ready", action="store_true", help="start not ready (redundancy)")
    p.add_argument("--ready-file", default=None, help="become ready when this file exists")
    p.add_argument("--mgmt-json-file", default=None)
    p.add_argument("--jitter", type=float, default=0.1)
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def config_from_args(a: argparse.Namespace) -> HsrpNodeConfig:
    auth, key = parse_auth(a.auth)
    g = HsrpConfig(
        address=a.address or "0.0.0.0",
        group=a.group,
        version=a.version,
        vip=a.vip,
        priority=a.priority,
        preempt=a.preempt,
        preempt_delay_ms=a.preempt_delay_ms,
        hello_ms=a.hello_ms,
        hold_ms=a.hold_ms,
        auth=auth,
        md5_key=key,
        md5_key_id=a.md5_key_id,
        jitter=a.jitter,
    )
    track: dict[str, int] = {}
    for t in a.track:
        name, _, dec = t.partition(":")
        track[name] = int(dec) if dec else 10
    return HsrpNodeConfig(
        interface=a.interface,
        groups=[g],
        peers=list(a.peer),
        macvlan=a.macvlan,
        arp_ignore=not a.no_arp_ignore,
        garp_repeat=a.garp_repeat,
        track=track,
        mgmt_json_file=a.mgmt_json_file,
    )


async def _amain(a: argparse.Namespace) -> int:
    node = HsrpNode(config_from_args(a))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if a.not_ready or a.ready_file:
        node.set_ready(False)
    await node.start()
    watcher: asyncio.Task[None] | None = None
    if a.ready_file:

        async def watch() -> None:
            while not os.path.exists(a.ready_file):
                await asyncio.sleep(0.05)
            node.set_ready(True)

        watcher = asyncio.create_task(watch())
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await node.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    a = build_arg_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if a.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if a.uvloop:
        try:
            import uvloop

            return int(uvloop.run(_amain(a)))
        except ImportError:
            pass
    return asyncio.run(_amain(a))


if __name__ == "__main__":
    sys.exit(main())
