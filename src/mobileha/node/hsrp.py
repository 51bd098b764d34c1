"""asyncio adapter for HSRP: sockets, the one deadline timer, VIP ownership, gratuitous ARP.

Transport (P§4.1): UDP port 1985 from and to, multicast to 224.0.0.2 (v1) or 224.0.0.102
(v2), TTL 1, sent out of one named interface (``IP_MULTICAST_IF`` with the interface index
and our address, so the source is the interface address even when the VIP is configured
too) and received only on it (``SO_BINDTODEVICE``). Multicast loopback is off.

**Unicast peers (extension, not HSRP as specified)**: with ``peers`` every packet is also
sent by unicast to each listed address, for networks without multicast. Real IOS routers
neither send nor expect this; all routers of a group must list each other.

On becoming Active (``ClaimVip``) the VIP is added to the interface with pyroute2 (``/32``
by default) and gratuitous ARPs are sent through an ``AF_PACKET`` socket: a broadcast ARP
reply as RFC 2281 §5.6 action I describes and a gratuitous ARP request (which every Linux
host accepts), repeated ``garp_repeat`` times ``garp_interval`` apart. On leaving Active
(``ReleaseVip``) the VIP is removed. ``stop()`` (SIGTERM) runs event b, so an Active router
sends a Resign, then releases the VIP.

**The HSRP interface itself** (RFC 2281 §5.5 events b and a, P§4.3; in the §5.7 table
event b leads to Initial from every state, an Active router also sending a Resign): the
node subscribes to
netlink link events (``RTMGRP_LINK``) on a raw ``AF_NETLINK`` socket read by the event loop
(``add_reader``; no pyroute2 thread, works on uvloop too); any ``RTM_NEWLINK``/``RTM_DELLINK``
for our ifindex, or a lost-events overflow (``ENOBUFS``), makes it read the operational state
(``/sys/class/net/<if>/operstate``, as for tracked interfaces; the kernel updates it before
it notifies). The same read is also *polled* every ``track_poll`` seconds (default 0.5 s) on
the node's timer, as a safety net and as the only source where the netlink socket cannot be
opened. When the interface goes down every group gets event b (it goes to
Initial; an Active one sends a Resign, which the dead link will usually drop, and releases
the VIP through the ordinary ``ReleaseVip`` handling, as in ``stop()``); when it comes up
again every group gets event a (Listen, ... and with preemption and the highest priority
Active again). Each transition is logged once. While the interface is down received packets
are ignored. The watch runs when the node manages the VIP on a real interface
(``manage_vip``, the default); the unicast-peer set-up on loopback (``manage_vip=False``)
keeps running as before unless ``watch_interface=True`` asks for it. ``link_state`` (a
function of the interface name) can be replaced, e.g. by tests.

Two ways to own the VIP:

* default (``standby use-bia`` style): the VIP goes on the interface itself and the
  gratuitous ARPs carry the interface's own MAC, so hosts repoint their ARP entry at each
  takeover;
* ``macvlan=True``: a macvlan carrying the group's virtual MAC (P§4.4) is created on
  becoming Active, the VIP goes on it, and the gratuitous ARPs carry the virtual MAC as
  RFC 2281 §6 asks. ``net.ipv4.conf.all.arp_ignore=1`` is set (unless disabled) so that the
  real interface does not answer ARP for the VIP with its own MAC (ENVIRONMENT.md), and
  ``arp_announce=2`` so that its ARP requests never carry the VIP as sender address. The
  macvlan is deleted on leaving Active.

At start a VIP or macvlan left over by a killed predecessor is removed.

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
import errno
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

from mobileha.core.actions import ClaimVip, ReleaseVip, Send
from mobileha.core.hsrp import (
    GratuitousArp,
    HsrpAction,
    HsrpConfig,
    HsrpGroup,
    HsrpInterface,
    State,
    StateChange,
    parse_auth,
)
from mobileha.node.base import DeadlineTimer
from mobileha.wire import hsrp as w
from mobileha.wire.ip import build_ipv4, checksum, gratuitous_arp

log = logging.getLogger("mobileha.hsrp")

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
RCVBUF = 1 << 20
NETLINK_ROUTE = 0
RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17


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


def _interface_info(ifname: str) -> tuple[int, str, int, bytes]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise OSError(f"no interface {ifname!r}")
        mac = "00:00:00:00:00:00"
        for link in ipr.get_links(idx[0]):
            mac = link.get("IFLA_ADDRESS") or mac
        addrs = list(ipr.get_addr(index=idx[0], family=socket.AF_INET))
        if not addrs:
            raise OSError(f"interface {ifname!r} has no IPv4 address")
        addrs.sort(key=lambda a: a["prefixlen"])  # the widest prefix: not a /32 VIP
        return (
            int(idx[0]),
            str(addrs[0].get("IFA_ADDRESS")),
            int(addrs[0]["prefixlen"]),
            bytes.fromhex(str(mac).replace(":", "")),
        )


async def interface_info(ifname: str) -> tuple[int, str, int, bytes]:
    """(ifindex, primary IPv4 address, its prefix length, MAC) of ``ifname`` via pyroute2.

    Netlink work runs in a thread with pyroute2's synchronous IPRoute: its asyncio flavour
    cannot run on uvloop (netlink is not a family uvloop's UDP handles accept).
    """
    return await asyncio.to_thread(_interface_info, ifname)


def _nl_claim(
    ifname: str, ifindex: int, vip: str, plen: int, macvlan: str | None, vmac: str
) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ifindex
        if macvlan is not None:
            if not ipr.link_lookup(ifname=macvlan):
                ipr.link(
                    "add",
                    ifname=macvlan,
                    kind="macvlan",
                    link=ifindex,
                    macvlan_mode="bridge",
                    address=vmac,
                )
            HsrpNode._sysctl(f"net.ipv6.conf.{macvlan}.disable_ipv6", "1")
            idx = ipr.link_lookup(ifname=macvlan)[0]
            ipr.link("set", index=idx, state="up")
        try:
            ipr.addr("add", index=idx, address=vip, prefixlen=plen)
        except Exception as exc:  # EEXIST: already there
            log.debug("add %s on %s: %s", vip, ifname, exc)


def _nl_release(dev: str, is_macvlan: bool, vip: str, plen: int) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=dev)
        if not idx:
            return
        if is_macvlan:
            ipr.link("del", index=idx[0])  # the macvlan goes, and the VIP with it
            return
        try:
            ipr.addr("del", index=idx[0], address=vip, prefixlen=plen)
        except Exception as exc:  # EADDRNOTAVAIL: not there
            log.debug("del %s: %s", vip, exc)


def _nl_cleanup(ifindex: int, items: list[tuple[str, str | None]], plen: int) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        for macvlan, vip in items:
            idx = ipr.link_lookup(ifname=macvlan)
            if idx:
                ipr.link("del", index=idx[0])
            if vip is not None:
                with contextlib.suppress(Exception):
                    ipr.addr("del", index=ifindex, address=vip, prefixlen=plen)


def udp_frame(src_mac: bytes, src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An Ethernet/IPv4/UDP frame to an IPv4 multicast group (TTL 1, UDP checksum set)."""
    sb, db = socket.inet_aton(src), socket.inet_aton(dst)
    ulen = 8 + len(payload)
    pseudo = struct.pack("!4s4sBBH", sb, db, 0, socket.IPPROTO_UDP, ulen)
    csum = checksum(pseudo + struct.pack("!HHHH", sport, dport, ulen, 0) + payload) or 0xFFFF
    ip = build_ipv4(
        src, dst, socket.IPPROTO_UDP, struct.pack("!HHHH", sport, dport, ulen, csum) + payload,
        ttl=1,
    )  # fmt: skip
    mcast_mac = bytes((0x01, 0x00, 0x5E, db[1] & 0x7F, db[2], db[3]))
    return mcast_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, node: HsrpNode) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.node._on_datagram(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        self.node.counters[f"socket_error_{type(exc).__name__}"] += 1


class HsrpNode:
    """Runs the HSRP groups of one interface (``mobileha.node.base.Node``)."""

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
        self.on_vip = on_vip  # (vip, claimed) on entering / leaving Active
        self.core = HsrpInterface()
        self.counters: Counter[str] = Counter()
        self.changes: deque[dict[str, Any]] = deque(maxlen=100)
        self._ifindex = 0
        self._mac = bytes(6)
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: DeadlineTimer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._packet: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ops: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self._pending = 0  # operations queued and not yet done
        self._handles: list[asyncio.TimerHandle] = []
        self._started = False
        self._vips: dict[str, str] = {}  # vip -> device it is on
        self._track_state: dict[str, bool] = {}
        self._ready = True
        self.link_state: Callable[[str], bool] = _oper_up  # operstate of an interface
        self._link_up = True  # the HSRP interface, as last seen (see watching_link)
        self._nl: socket.socket | None = None  # netlink link events (RTMGRP_LINK)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        c = self.cfg
        self._ifindex, addr, _plen, self._mac = await interface_info(c.interface)
        for g in c.groups:
            if g.address in ("", "0.0.0.0"):
                g.address = addr
            if g.version == 2 and g.identifier == bytes(6):
                g.identifier = self._mac
            grp = HsrpGroup(g)
            grp.ready = self._ready
            self.core.add(grp)
        if c.manage_vip:
            await self._cleanup_stale()
        if c.macvlan and c.arp_ignore:
            # the real interface must not answer ARP for the VIP (arp_ignore), nor teach
            # hosts "VIP is-at <real MAC>" through its own ARP requests sent with the VIP as
            # sender address when it answers traffic to the VIP (arp_announce)
            self._sysctl("net.ipv4.conf.all.arp_ignore", "1")
            self._sysctl("net.ipv4.conf.all.arp_announce", "2")
        sock = self._open_socket(c.groups[0].address if c.groups else addr)
        if c.manage_vip:
            self._packet = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            self._packet.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        self._transport = transport
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._ops = asyncio.Queue()
        worker = loop.create_task(self._op_worker())
        self._tasks.add(worker)
        self._started = True
        for name in c.track:
            self._track_state[name] = True
        if self.watching_link:
            self._open_link_watch(loop)
            self._link_up = self.link_state(c.interface)
        if c.track or self.watching_link:
            self._handles.append(loop.call_later(c.track_poll, self._poll))
        if self._link_up:
            self._run(self.core.start(loop.time()))  # event a
        else:
            self.counters["link_down"] += 1
            log.warning("%s is down: HSRP groups stay Initial until it is up", c.interface)
        self._write_mgmt()
        self._handles.append(loop.call_later(1.0, self._periodic))

    async def stop(self) -> None:
        """Event b for every group: an Active router sends a Resign and releases the VIP."""
        if not self._started or self._loop is None:
            return
        self._run(self.core.stop(self._loop.time()))
        self._started = False
        for h in self._handles:
            h.cancel()
        if self._timer is not None:
            self._timer.cancel()
        await asyncio.sleep(0)  # let the Resign leave
        for vip in list(self._vips):
            self._queue("release", vip)
        self._queue("quit", None)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5.0)
        if self._transport is not None:
            self._transport.close()
        if self._packet is not None:
            self._packet.close()
        self._close_link_watch()
        self._write_mgmt()

    def crash(self) -> None:
        """Simulate a crash (``kill -9``) in-process, for the loopback demo and tests: the
        socket closes and every timer and task is cancelled at once. Unlike :meth:`stop`
        no Resign is sent and the VIP is not released (``on_vip`` is not called); the peer
        only notices when its Active timer (hold time) runs out."""
        self._started = False
        for h in self._handles:
            h.cancel()
        self._handles.clear()
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._packet is not None:
            self._packet.close()
            self._packet = None
        self._close_link_watch()

    # ------------------------------------------------------------------ inputs
    def set_ready(self, ready: bool) -> None:
        """Redundancy: while not ready no group takes the Active role or preempts."""
        self._ready = ready
        if self._loop is not None and self._started:
            self._run(self.core.set_ready(ready, self._loop.time()))

    @property
    def watching_link(self) -> bool:
        """Whether the HSRP interface's own state drives events b / a (module docstring)."""
        w_ = self.cfg.watch_interface
        return self.cfg.manage_vip if w_ is None else w_

    @property
    def link_up(self) -> bool:
        """The HSRP interface's state as last seen (always True when not watched)."""
        return self._link_up

    def set_link_state(self, up: bool) -> None:
        """The HSRP interface went down (event b for every group) or up (event a).

        Called by the netlink reader and the poll; does nothing when the state did not
        change, before ``start()`` or after ``stop()``.
        """
        if self._loop is None or not self._started or up == self._link_up:
            return
        self._link_up = up
        self.counters["link_up" if up else "link_down"] += 1
        log.warning(
            "%s %s: RFC 2281 event %s for every group", self.cfg.interface,
            "up" if up else "down", "a" if up else "b",
        )  # fmt: skip
        now = self._loop.time()
        self._run(self.core.start(now) if up else self.core.stop(now))

    def _open_link_watch(self, loop: asyncio.AbstractEventLoop) -> None:
        sock: socket.socket | None = None
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            sock.setblocking(False)
            sock.bind((0, RTMGRP_LINK))
            loop.add_reader(sock.fileno(), self._on_netlink)
        except (OSError, NotImplementedError, AttributeError) as exc:
            if sock is not None:
                sock.close()
            log.warning("%s: no netlink link events (%s), polling only", self.cfg.interface, exc)
            return
        self._nl = sock

    def _close_link_watch(self) -> None:
        sock, self._nl = self._nl, None
        if sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock.fileno())
        sock.close()

    def _on_netlink(self) -> None:
        sock = self._nl
        if sock is None:
            return
        ours = False
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    self.counters[f"netlink_error_{exc.errno}"] += 1
                    break
                self.counters["link_events_lost"] += 1  # overflow: read the state anyway
                ours = True
                continue
            if not data:
                break
            if link_event_for(data, self._ifindex):
                ours = True
        if ours:
            self.counters["link_events"] += 1
            self.set_link_state(self.link_state(self.cfg.interface))

    def _on_datagram(self, data: bytes, src: str) -> None:
        if self._loop is None or not self._started:
            return
        if not self._link_up:
            self.counters["rx_link_down"] += 1
            return
        self._run(self.core.receive(data, src, self._loop.time()))

    def _on_timer(self) -> None:
        if self._loop is None or not self._started:
            return
        self._run(self.core.on_timer(self._loop.time()))

    def _poll(self) -> None:
        """Every ``track_poll`` seconds: the tracked interfaces (priority decrements) and,
        when watched, the HSRP interface itself (events b / a; netlink is the fast path)."""
        if self._loop is None or not self._started:
            return
        if self.watching_link:
            self.set_link_state(self.link_state(self.cfg.interface))
        for name, dec in self.cfg.track.items():
            up = _oper_up(name)
            if up != self._track_state.get(name):
                self._track_state[name] = up
                for g in self.core.groups.values():
                    g.track(name, down=not up, decrement=dec)
                log.info("track %s %s", name, "up" if up else "down")
        self._handles.append(self._loop.call_later(self.cfg.track_poll, self._poll))

    def _periodic(self) -> None:
        if self._loop is None or not self._started:
            return
        self._write_mgmt()
        self._handles = [h for h in self._handles if not h.cancelled()][-16:]
        self._handles.append(self._loop.call_later(1.0, self._periodic))

    # ------------------------------------------------------------------ actions
    def _run(self, actions: Iterable[HsrpAction]) -> None:
        changed = False
        for a in actions:
            if isinstance(a, Send):
                if self.cfg.macvlan and self._pending:
                    self._queue("send", a)  # after the macvlan exists: from the virtual MAC
                else:
                    self._send(a)
            elif isinstance(a, ClaimVip):
                if self.cfg.manage_vip:
                    self._queue("claim", a.addr)
                if self.on_vip is not None:
                    self.on_vip(a.addr, True)
            elif isinstance(a, ReleaseVip):
                if self.cfg.manage_vip:
                    self._queue("release", a.addr)
                if self.on_vip is not None:
                    self.on_vip(a.addr, False)
            elif isinstance(a, GratuitousArp):
                if self.cfg.manage_vip:
                    self._queue("garp", a)
            elif isinstance(a, StateChange):
                changed = True
                rec = {
                    "t_mono": time.monotonic(),
                    "group": a.group,
                    "old": a.old.label,
                    "new": a.new.label,
                    "event": a.event.value,
                }
                self.changes.append(rec)
                log.warning(
                    "%s Grp %d state %s -> %s", self.cfg.interface, a.group, a.old.label,
                    a.new.label,
                )  # fmt: skip
                if self.on_state_change is not None:
                    self.on_state_change(a)
        if self._timer is not None and self._started:
            self._timer.update(self.core.next_deadline())
        if changed:
            self._write_mgmt()

    def _send(self, a: Send) -> None:
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

    def _send_from_vmac(self, a: Send) -> bool:
        """RFC 2281 §6.1: an Active router MUST send its Hellos from the virtual MAC.

        With a macvlan (the virtual MAC is ours) the packets of an Active group are written as
        whole Ethernet frames on the macvlan: source MAC = virtual MAC, source IP = our real
        address, TTL 1, UDP 1985 with checksum. Without one (use-bia style) the interface's
        own MAC is used, as IOS does with ``standby use-bia``.
        """
        if not self.cfg.macvlan or self._packet is None:
            return False
        try:
            m = w.decode(a.payload)
        except Exception:
            return False
        if isinstance(m, w.HsrpV1):
            g = self.core.groups.get((1, m.group))
        elif isinstance(m, w.HsrpV2) and m.group_state is not None:
            g = self.core.groups.get((2, m.group_state.group))
        else:
            return False
        if g is None or g.vip is None or g.state is not State.ACTIVE:
            return False
        dev = self._vips.get(g.vip)
        if dev is None or dev == self.cfg.interface:
            return False
        frame = udp_frame(g.vmac, g.cfg.address, a.dst[0], w.HSRP_PORT, a.dst[1], a.payload)
        self._packet.sendto(frame, (dev, ETH_P_IP))
        self.counters["tx_from_vmac"] += 1
        return True

    def _group_for_vip(self, vip: str) -> HsrpGroup | None:
        for g in self.core.groups.values():
            if g.vip == vip:
                return g
        return None

    def _macvlan_name(self, g: HsrpGroup) -> str:
        return f"hsrp{g.cfg.version}g{g.group}"[:15]

    def _queue(self, op: str, arg: object) -> None:
        self._pending += 1
        self._ops.put_nowait((op, arg))

    async def _op_worker(self) -> None:
        """VIP changes and gratuitous ARPs, in the order the core asked for them."""
        while True:
            op, arg = await self._ops.get()
            try:
                if op == "quit":
                    return
                if op == "send" and isinstance(arg, Send):
                    self._send(arg)
                elif op == "claim":
                    await self._claim(str(arg))
                elif op == "release":
                    await self._release(str(arg))
                elif op == "garp" and isinstance(arg, GratuitousArp):
                    self._garp(arg, self.cfg.garp_repeat)
            except Exception as exc:  # never let the worker die
                self.counters[f"op_error_{op}"] += 1
                log.error("%s %s: %s", op, arg, exc)
            finally:
                self._pending = max(0, self._pending - 1)

    async def _claim(self, vip: str) -> None:
        g = self._group_for_vip(vip)
        dev = self.cfg.interface
        macvlan = self._macvlan_name(g) if (self.cfg.macvlan and g is not None) else None
        vmac = w.mac_str(g.vmac) if g is not None else ""
        try:
            await asyncio.to_thread(
                _nl_claim, dev, self._ifindex, vip, self.cfg.vip_prefixlen, macvlan, vmac
            )
            self._vips[vip] = macvlan or dev
            self.counters["vip_claimed"] += 1
        except Exception as exc:
            self.counters["vip_claim_error"] += 1
            log.error("cannot add %s to %s: %s", vip, macvlan or dev, exc)

    async def _release(self, vip: str) -> None:
        dev = self._vips.pop(vip, self.cfg.interface)
        try:
            await asyncio.to_thread(
                _nl_release, dev, dev != self.cfg.interface, vip, self.cfg.vip_prefixlen
            )
            self.counters["vip_released"] += 1
        except Exception as exc:
            self.counters["vip_release_error"] += 1
            log.error("cannot remove %s from %s: %s", vip, dev, exc)

    async def _cleanup_stale(self) -> None:
        """Remove a VIP / macvlan a killed predecessor left behind (we start non-Active)."""
        items = [(self._macvlan_name(g), g.vip) for g in self.core.groups.values()]
        try:
            await asyncio.to_thread(_nl_cleanup, self._ifindex, items, self.cfg.vip_prefixlen)
        except Exception as exc:
            log.debug("stale cleanup: %s", exc)

    def _garp(self, a: GratuitousArp, left: int) -> None:
        if self._packet is None or left <= 0 or not self._started:
            return
        dev = self._vips.get(a.vip)
        if dev is None:
            return  # no longer ours
        mac = a.mac if dev != self.cfg.interface else self._mac
        try:
            for reply in (True, False):
                frame = gratuitous_arp(w.mac_str(mac), a.vip, reply=reply)
                self._packet.sendto(frame.ljust(60, b"\x00"), (dev, ETH_P_ARP))
            self.counters["garp_sent"] += 2
        except OSError as exc:
            self.counters[f"garp_error_{exc.errno}"] += 1
        if left > 1 and self._loop is not None:
            self._handles.append(
                self._loop.call_later(self.cfg.garp_interval, self._garp, a, left - 1)
            )

    @staticmethod
    def _sysctl(key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            log.warning("sysctl %s=%s: %s", key, value, exc)

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
            sock.bind((addr, c.port))
            sock.setblocking(False)
            return sock
        sock.bind(("0.0.0.0", c.port))
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
    # (mobileha.mgmt renders the ``standby`` view and the HSRP families from these)
    def snapshot(self) -> list[dict[str, Any]]:
        """Every group's ``HsrpGroup.snapshot()`` plus the interface (``show standby``)."""
        now = self._loop.time() if self._loop is not None else 0.0
        out = []
        for s in self.core.snapshot(now):
            s["interface"] = self.cfg.interface
            out.append(s)
        return out

    def _write_mgmt(self) -> None:
        path = self.cfg.mgmt_json_file
        if not path:
            return
        doc = {
            "pid": os.getpid(),
            "t_mono": time.monotonic(),
            "interface": self.cfg.interface,
            "running": self._started,
            "link_up": self._link_up,
            "standby": self.snapshot(),
            "changes": list(self.changes),
            "counters": dict(self.counters) | {f"if_{k}": v for k, v in self.core.counters.items()},
        }
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)


_NLMSGHDR = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid (16 bytes)
_IFI_INDEX = struct.Struct("=i")  # ifinfomsg.ifi_index, 4 bytes into the ifinfomsg
_IFINFOMSG_LEN = 16


def link_event_for(data: bytes, ifindex: int) -> bool:
    """Whether a netlink datagram holds an ``RTM_NEWLINK``/``RTM_DELLINK`` for ``ifindex``."""
    off = 0
    hdr = _NLMSGHDR.size
    while off + hdr <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < hdr:
            break
        if mtype in (RTM_NEWLINK, RTM_DELLINK) and off + hdr + _IFINFOMSG_LEN <= len(data):
            (index,) = _IFI_INDEX.unpack_from(data, off + hdr + 4)
            if index == ifindex:
                return True
        off += (length + 3) & ~3
    return False


def _oper_up(ifname: str) -> bool:
    try:
        with open(f"/sys/class/net/{ifname}/operstate") as f:
            return f.read().strip() in ("up", "unknown")
    except OSError:
        return False


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
    p.add_argument("--auth", default="text:cisco", help="text:PASSWORD or md5:KEY")
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
    if a.ready_file:

        async def watch() -> None:
            while not os.path.exists(a.ready_file):
                await asyncio.sleep(0.05)
            node.set_ready(True)

        task = asyncio.create_task(watch())
        node._tasks.add(task)
    await stop.wait()
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
