"""Raw ICMP I/O for agent discovery and ICMP errors (root / CAP_NET_RAW).

:class:`IcmpIo` owns one receiving raw ICMP socket (every ICMP message to this host, with
the interface it came in on from ``IP_PKTINFO``), joined to the groups it is asked for on
the given interfaces (a foreign agent: 224.0.0.11 for solicitations; the all-systems group
224.0.0.1 is always joined by the kernel), and one sending raw socket per (interface,
source) pair, created on first use: ``SO_BINDTODEVICE`` to that interface, the multicast
interface set to it, TTL from the action (1 for discovery, RFC 5944 §2.1), multicast
loopback off. The event loop reads the socket (``add_reader``); every message goes to
``on_icmp(payload, src, dst, ifname)`` from its ICMP Type byte on. A message that cannot
be parsed or sent is counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

from mobileha.core.discovery import SendIcmp

IP_PKTINFO: Final = getattr(socket, "IP_PKTINFO", 8)
_PKTINFO: Final = struct.Struct("=i4s4s")  # in_pktinfo: ifindex, spec_dst, addr
_MREQN: Final = struct.Struct("=4s4si")  # ip_mreqn: multiaddr, address, ifindex
SOL_RAW: Final = 255
ICMP_FILTER: Final = 1  # linux/icmp.h: a mask of the types a raw ICMP socket drops
_SIOCGIFADDR: Final = 0x8915
_SIOCGIFNETMASK: Final = 0x891B


def carrier_up(ifname: str) -> bool:
    """The interface is administratively up with carrier. Read from ``carrier``, which the
    kernel sets at once, rather than ``operstate``, which its link watcher may update up
    to a second later: a mobile node that just came onto a link (and the agent it meets
    there) should not lose that second (RFC 5944 §2.4.2: movement found from the link
    layer)."""
    try:
        with open(f"/sys/class/net/{ifname}/carrier") as f:
            return f.read().strip() == "1"
    except OSError:  # EINVAL while administratively down, or no such interface
        return False


def interface_prefix(ifname: str) -> tuple[str, int] | None:
    """The IPv4 address and prefix length of ``ifname`` (None: no such interface or no
    IPv4 address)."""
    import fcntl

    req = struct.pack("256s", ifname.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            addr = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, req)[20:24]
        except OSError:
            return None
    return socket.inet_ntoa(addr), bin(int.from_bytes(mask, "big")).count("1")


class IcmpIo:
    """Raw ICMP sockets of one node (module docstring)."""

    def __init__(
        self,
        on_icmp: Callable[[bytes, str, str, str | None], None],
        *,
        groups: Iterable[tuple[str, str]] = (),
        types: Iterable[int] | None = None,
    ) -> None:
        self.on_icmp = on_icmp
        self.groups = list(groups)  # (group, ifname) to join
        # the ICMP types to read (None: all); the kernel drops the others (ICMP_FILTER),
        # so pings and the like never reach Python
        self.types = None if types is None else frozenset(types)
        self.counters: Counter[str] = Counter()
        self._rx: socket.socket | None = None
        self._tx: dict[tuple[str | None, str | None], socket.socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            if self.types is not None:
                passed = sum(1 << t for t in self.types if t < 32)
                with contextlib.suppress(OSError):
                    sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", ~passed & 0xFFFFFFFF))
            for group, ifname in self.groups:
                self.join(sock, group, ifname)
            loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self._rx = sock

    def join(self, sock: socket.socket, group: str, ifname: str) -> None:
        try:
            mreq = _MREQN.pack(socket.inet_aton(group), bytes(4), socket.if_nametoindex(ifname))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        except OSError:
            self.counters["join_failed"] += 1

    def close(self) -> None:
        if self._rx is not None:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(self._rx.fileno())
            self._rx.close()
            self._rx = None
        for s in self._tx.values():
            s.close()
        self._tx.clear()

    # ------------------------------------------------------------------ receiving

    def _readable(self) -> None:
        sock = self._rx
        if sock is None:
            return
        for _ in range(64):
            try:
                data, anc, _flags, _addr = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["recv_error"] += 1
                return
            if len(data) < 20:
                self.counters["short"] += 1
                continue
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 4:
                self.counters["short"] += 1
                continue
            if self.types is not None and data[ihl] not in self.types:
                continue
            src = socket.inet_ntoa(data[12:16])
            dst = socket.inet_ntoa(data[16:20])
            ifname = None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                    idx = _PKTINFO.unpack_from(value)[0]
                    with contextlib.suppress(OSError):
                        ifname = socket.if_indextoname(idx)
            self.counters["received"] += 1
            try:
                self.on_icmp(bytes(data[ihl:]), src, dst, ifname)
            except Exception:
                self.counters["handler_error"] += 1

    # ------------------------------------------------------------------ sending

    def send(self, a: SendIcmp) -> None:
        try:
            sock = self._sender(a.ifname, a.src)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, a.ttl)
            sock.sendto(a.payload, (a.dst, 0))
            self.counters["sent"] += 1
        except OSError:
            self.counters["send_error"] += 1

    def _sender(self, ifname: str | None, src: str | None) -> socket.socket:
        key = (ifname, src)
        s = self._tx.get(key)
        if s is not None:
            return s
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            if ifname is not None:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
                mreqn = _MREQN.pack(
                    bytes(4),
                    socket.inet_aton(src) if src else bytes(4),
                    socket.if_nametoindex(ifname),
                )
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            if src is not None:
                s.bind((src, 0))
        except BaseException:
            s.close()
            raise
        self._tx[key] = s
        return s


__all__ = ["IcmpIo", "carrier_up", "interface_prefix"]
