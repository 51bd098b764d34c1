"""Link watching: the HSRP interface's operational state and the tracked interfaces.

The HSRP interface's state drives RFC 2281 events b (down) and a (up) (§5.5; in the §5.7
table event b leads to Initial from every state, an Active router also sending a Resign),
which the cluster coordinator applies on :class:`~mobileha.core.cluster.LinkChanged`.
:class:`LinkWatch` subscribes to netlink link events (``RTMGRP_LINK``) on a raw
``AF_NETLINK`` socket read by the event loop (``add_reader``; no pyroute2 thread, works on
uvloop too): any ``RTM_NEWLINK``/``RTM_DELLINK`` for the interface's index, or a
lost-events overflow (``ENOBUFS``), makes it read the operational state
(``/sys/class/net/<if>/operstate``; the kernel updates it before it notifies). The same
read is also *polled* every ``poll`` seconds, as a safety net and as the only source where
the netlink socket cannot be opened. Tracked interfaces (priority decrements, P§4.7) are
polled on the same timer. Only changes are reported, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

log = logging.getLogger("mobileha.link")

NETLINK_ROUTE: Final = 0
RTMGRP_LINK: Final = 1
RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
_NLMSGHDR: Final = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFI_INDEX: Final = struct.Struct("=i")  # ifinfomsg.ifi_index, 4 bytes into the ifinfomsg
_IFINFOMSG_LEN: Final = 16


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


def oper_up(ifname: str) -> bool:
    """The interface's operational state is up (or unknown, as for loopback-like devices)."""
    try:
        with open(f"/sys/class/net/{ifname}/operstate") as f:
            return f.read().strip() in ("up", "unknown")
    except OSError:
        return False


class LinkWatch:
    """Reports changes of one interface (``on_link(up)``) and of tracked interfaces
    (``on_track(name, up)``). ``link_state`` reads an interface's state (tests replace it)."""

    def __init__(
        self,
        interface: str | None,
        *,
        track: Iterable[str] = (),
        poll: float = 0.5,
        on_link: Callable[[bool], None] | None = None,
        on_track: Callable[[str, bool], None] | None = None,
        link_state: Callable[[str], bool] = oper_up,
    ) -> None:
        self.interface = interface
        self.track = list(track)
        self.poll = poll
        self.on_link = on_link
        self.on_track = on_track
        self.link_state = link_state
        self.counters: Counter[str] = Counter()
        self.up = True  # the watched interface, as last seen
        self._tracked: dict[str, bool] = dict.fromkeys(self.track, True)
        self._ifindex = 0
        self._nl: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop, ifindex: int = 0) -> bool:
        """Start watching; returns the watched interface's state now (True when none)."""
        self._loop = loop
        self._ifindex = ifindex
        if self.interface is not None:
            self._open_netlink(loop)
            self.up = self.link_state(self.interface)
        if self.interface is not None or self.track:
            self._handle = loop.call_later(self.poll, self._poll)
        return self.up

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        sock, self._nl = self._nl, None
        if sock is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self._loop = None

    def _open_netlink(self, loop: asyncio.AbstractEventLoop) -> None:
        sock: socket.socket | None = None
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            sock.setblocking(False)
            sock.bind((0, RTMGRP_LINK))
            loop.add_reader(sock.fileno(), self._on_netlink)
        except (OSError, NotImplementedError, AttributeError) as exc:
            if sock is not None:
                sock.close()
            log.warning("%s: no netlink link events (%s), polling only", self.interface, exc)
            return
        self._nl = sock

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
            self.check()

    def check(self) -> None:
        """Read the watched interface now and report a change."""
        if self.interface is None or self._loop is None:
            return
        up = self.link_state(self.interface)
        if up != self.up:
            self.up = up
            self.counters["link_up" if up else "link_down"] += 1
            if self.on_link is not None:
                self.on_link(up)

    def _poll(self) -> None:
        if self._loop is None:
            return
        self.check()
        for name in self.track:
            up = self.link_state(name)
            if up != self._tracked.get(name):
                self._tracked[name] = up
                log.info("track %s %s", name, "up" if up else "down")
                if self.on_track is not None:
                    self.on_track(name, up)
        if self._loop is not None:
            self._handle = self._loop.call_later(self.poll, self._poll)


__all__ = ["RTM_DELLINK", "RTM_NEWLINK", "LinkWatch", "link_event_for", "oper_up"]
