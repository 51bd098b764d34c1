"""The ``userspace`` data plane: a TUN device plus raw IP sockets for protocols 4, 47 and 55.

Home agent (``role="ha"``)
    Packets for home addresses reach the TUN device (a route for the whole home prefix, or
    one host route per home address with a binding). Each is encapsulated to the care-of
    address of every binding of its destination (one copy per binding with S) from the HA
    address of the binding, with the binding's encapsulation: IP-in-IP (RFC 2003), GRE with
    the registration's key (RFC 2890), or minimal (RFC 2004). Outer TOS is the inner TOS,
    outer DF the inner DF, outer TTL ``ttl`` (P§3.1); a packet whose source is the care-of
    address itself is never tunnelled back (counted as ``loop``). The inner TTL was already
    decremented by the kernel when it routed the packet into the TUN device.
    Reverse tunnel (T): a tunnelled packet from a registered care-of address, to the HA
    address, whose inner source is the home address of a binding with T for that care-of
    address is decapsulated and written to the TUN device, from where the kernel forwards
    it natively. Anything else is dropped and counted (``spoof`` when the outer source is a
    registered care-of address, else ``unknown-peer``; ``bad-key`` for a GRE key mismatch).

Foreign agent (``role="fa"``)
    The mirror image. A binding is a visitor entry: ``care_of`` is our address, ``ha_addr``
    the home agent. Tunnelled packets from the HA whose inner destination is the visitor's
    home address are decapsulated and written to the TUN device; a host route for the home
    address on ``visitor_iface`` delivers them to the mobile node. With T, a policy rule
    ``from <home address> iif <visitor_iface> lookup <rt_table>`` sends the visitor's
    packets into the TUN device, and they are encapsulated to the HA (outer source = the
    care-of address). Without T they are routed normally (triangular routing).

Per packet: one dict lookup, one ``sendmsg`` (raw ``IPPROTO_RAW`` socket with the kernel
filling in the outer checksum, total length and ID) or one ``write`` to the TUN device,
counter increments, no logging. The TUN MTU is ``mtu`` minus the largest encapsulation
overhead we add (28 bytes: IPv4 + GRE with key), so the kernel fragments or answers
"fragmentation needed" (PMTU) before a packet reaches us and outer packets never exceed
``mtu``.

The forwarding loop runs in one daemon thread (``start()``), or in the caller's thread
(``serve_forever()``); ``install``/``remove`` may be called from any thread (lookups see a
new tuple per change, never a list being mutated).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from mobileha.core.binding import FLAG_S, FLAG_T, Binding, Encap
from mobileha.dataplane.base import (
    BackendUnavailable,
    DataPlaneError,
    DataPlaneStats,
    TunnelCounters,
    install_each,
)
from mobileha.dataplane.vip import VipOwner
from mobileha.wire.ip import GRE_C, GRE_K, GRE_S, IPV4, U32, checksum

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_OVERHEAD = 28  # outer IPv4 (20) + GRE with key (8); IP-in-IP adds 20, minimal 12
RT_SCOPE_LINK = 253
READ_SIZE = 65536
SO_SNDBUFFORCE = 32  # Linux <asm-generic/socket.h>; not exported by the socket module
SO_RCVBUFFORCE = 33
SOCK_BUF = 8 << 20  # raw socket buffers
TUN_TXQLEN = 10000  # packets queued toward us on the TUN device (default 500 drops bursts)
_GRE_BAD = 0x4FF8 | 0x0007  # reserved0 bits and version: such packets are discarded
_GRE_KEYED = struct.Struct("!HHI")
_GRE_PLAIN = struct.pack("!HH", 0, 0x0800)
_ENCAPS = frozenset((Encap.IPIP, Encap.GRE, Encap.MINIMAL))
_aton = socket.inet_aton


class _Tunnel:
    """Per-binding forwarding state, precomputed at install time."""

    __slots__ = (
        "binding",
        "c",
        "dst",
        "encap",
        "gre",
        "gre_key",
        "inner_b",
        "local_b",
        "remote_b",
        "reverse",
    )

    def __init__(self, b: Binding, role: str) -> None:
        self.binding = b
        self.c = TunnelCounters()
        if role == "ha":
            local, remote = b.ha_addr, b.care_of
        else:
            local, remote = b.care_of, b.ha_addr
        self.local_b = _aton(local)
        self.remote_b = _aton(remote)
        self.inner_b = _aton(b.home_addr)
        self.dst = (remote, 0)
        self.encap = int(b.encap)
        self.reverse = bool(b.flags & FLAG_T)
        self.gre_key = k = b.gre_key
        self.gre = _GRE_PLAIN if k is None else _GRE_KEYED.pack(GRE_K, 0x0800, k & 0xFFFFFFFF)


def _bufsize(s: socket.socket, force: int, plain: int, size: int = SOCK_BUF) -> None:
    """Big socket buffers: bursts must not overflow them (root may exceed rmem_max/wmem_max)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, force, size)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, plain, size)


def _open_tun(name: str) -> tuple[int, str]:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise BackendUnavailable(f"cannot open /dev/net/tun: {e.strerror} (need root/TUN)") from e
    try:
        ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError as e:
        os.close(fd)
        raise BackendUnavailable(f"TUNSETIFF {name!r} failed: {e.strerror}") from e
    return fd, ifr[:16].rstrip(b"\0").decode()


class UserspaceDataPlane:
    """TUN + raw-socket tunnels for a home agent or a foreign agent (see module docstring)."""

    name = "userspace"

    def __init__(
        self,
        role: str = "ha",
        tun_name: str = "mhtun0",
        mtu: int = 1500,
        ttl: int = 64,
        home_prefix: str | None = None,
        visitor_iface: str | None = None,
        home_iface: str | None = None,
        vip_iface: str | None = None,
        vip: VipOwner | None = None,
        rt_table: int = 4344,
        rule_priority: int = 4344,
        start: bool = True,
        ipr: Any = None,
    ) -> None:
        if role not in ("ha", "fa"):
            raise ValueError(f"role must be 'ha' or 'fa', not {role!r}")
        if role == "fa" and not visitor_iface:
            raise ValueError("a foreign agent data plane needs visitor_iface")
        self.role = role
        self.ttl = ttl
        self.mtu = mtu
        self.home_prefix = home_prefix
        self.visitor_iface = visitor_iface
        self.vip_iface = vip_iface or home_iface
        if vip is None and self.vip_iface:
            vip = VipOwner(self.vip_iface)
        self.vip = vip
        self.rt_table = rt_table
        self.rule_priority = rule_priority
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = False
        # Lookup tables (values replaced, never mutated in place, so the loop needs no lock).
        # _enc: address in the TUN packet (HA: destination, FA: source) -> tunnels.
        # _dec: outer src + outer dst + inner address (HA: source, FA: destination) -> tunnel.
        # _peers: outer src + outer dst -> (one of its tunnels,) (tells spoofing from unknown
        # peers). All tunnels of a peer are in _peer_set, and those of a home address in
        # _by_hoa (not read by the loop): every change is O(1), also with 10^5 MNs behind
        # one FA (scans and per-peer tuples made installing n bindings O(n^2): a takeover
        # with 50,000 bindings stalled the HA's event loop for minutes).
        self._enc: dict[bytes, tuple[_Tunnel, ...]] = {}
        self._dec: dict[bytes, _Tunnel] = {}
        self._peers: dict[bytes, tuple[_Tunnel, ...]] = {}
        self._peer_set: dict[bytes, dict[_Tunnel, None]] = {}
        self._by_hoa: dict[str, dict[tuple[str, str], None]] = {}
        self._tunnels: dict[tuple[str, str], _Tunnel] = {}
        self.drops: dict[str, int] = {
            "no-binding": 0,
            "loop": 0,
            "spoof": 0,
            "unknown-peer": 0,
            "bad-key": 0,
            "bad-encap": 0,
            "malformed": 0,
            "fragment": 0,
            "send-error": 0,
            "not-ipv4": 0,
        }
        self._vips: set[str] = set()
        self._routes: set[str] = set()
        self._rules: set[str] = set()

        if ipr is None:
            # pyroute2's synchronous IPRoute refuses to run on a thread whose event loop is
            # running (every `mobileha run` node): use the worker-thread wrapper.
            from mobileha.dataplane.kernel import ThreadedIPRoute

            ipr = ThreadedIPRoute()
        self._ipr = ipr
        self._tun_fd, self.tun_name = _open_tun(tun_name)
        self._socks: list[socket.socket] = []
        try:
            self._tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            _bufsize(self._tx, SO_SNDBUFFORCE, socket.SO_SNDBUF)
            self._socks.append(self._tx)
            self._rx: dict[int, socket.socket] = {}
            for proto in (4, 47, 55):
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
                _bufsize(s, SO_RCVBUFFORCE, socket.SO_RCVBUF)
                s.setblocking(False)
                self._rx[proto] = s
                self._socks.append(s)
            self._tun_index = self._ifindex(self.tun_name)
            self._ipr.link(
                "set", index=self._tun_index, mtu=mtu - MAX_OVERHEAD, txqlen=TUN_TXQLEN, state="up"
            )
            if role == "ha" and home_prefix:
                self._ipr.route("replace", dst=home_prefix, oif=self._tun_index)
            if role == "fa":
                self._visitor_index = self._ifindex(visitor_iface or "")
                self._ipr.route("replace", dst="0.0.0.0/0", oif=self._tun_index, table=rt_table)
            self.arp = None
            if home_iface:
                from mobileha.dataplane.arp import ArpResponder

                self.arp = ArpResponder(home_iface)
        except BaseException:
            self._release_fds()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        if start:
            self.start()

    # ---------------------------------------------------------------------------- helpers
    def _ifindex(self, name: str) -> int:
        idx = self._ipr.link_lookup(ifname=name)
        if not idx:
            raise DataPlaneError(f"interface {name!r} not found")
        return int(idx[0])

    def _release_fds(self) -> None:
        for s in self._socks:
            s.close()
        with contextlib.suppress(OSError):
            os.close(self._tun_fd)

    # ---------------------------------------------------------------------------- control
    def install(self, binding: Binding) -> None:
        with self._lock:
            if self._closed:
                raise DataPlaneError("data plane is closed")
            self._install(binding)

    def install_many(self, bindings: Iterable[Binding]) -> int:
        """Install a whole table (takeover): one :meth:`install` each, under one lock.
        Every binding that can be is installed; then the first error is raised."""
        with self._lock:
            if self._closed:
                raise DataPlaneError("data plane is closed")
            return install_each(self._install, bindings)

    def _install(self, binding: Binding) -> None:
        if binding.encap not in _ENCAPS:
            raise DataPlaneError(f"unknown encapsulation {binding.encap!r}")
        hoa = binding.home_addr
        key = (hoa, binding.care_of)
        keys = self._by_hoa.get(hoa)
        if keys and not binding.flags & FLAG_S:
            for k in [k for k in keys if k != key]:
                self._drop_tunnel(k)
        old = self._tunnels.get(key)
        t = _Tunnel(binding, self.role)
        if old is not None:
            t.c = old.c  # an update keeps the counters
            self._unindex(old)
        self._tunnels[key] = t
        keys = self._by_hoa.get(hoa)
        if keys is None:
            keys = self._by_hoa[hoa] = {}
        first = not keys
        keys[key] = None
        self._index(t)
        if first:
            self._add_host_state(binding)
        elif self.role == "fa":
            self._set_fa_rule(binding)

    def remove(self, binding: Binding) -> None:
        with self._lock:
            if binding.key not in self._tunnels:
                return
            self._drop_tunnel(binding.key)
            if not self._by_hoa.get(binding.home_addr):
                self._del_host_state(binding)

    def _drop_tunnel(self, key: tuple[str, str]) -> None:
        t = self._tunnels.pop(key)
        keys = self._by_hoa.get(key[0])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._by_hoa[key[0]]
        self._unindex(t)

    def _index(self, t: _Tunnel) -> None:
        enc_key = t.inner_b
        if self.role == "ha" or t.reverse:
            self._enc[enc_key] = (*self._enc.get(enc_key, ()), t)
        peer = t.remote_b + t.local_b
        ts = self._peer_set.get(peer)
        if ts is None:
            ts = self._peer_set[peer] = {}
            self._peers[peer] = (t,)
        ts[t] = None
        if self.role == "fa" or t.reverse:
            self._dec[peer + t.inner_b] = t

    def _unindex(self, t: _Tunnel) -> None:
        key = t.inner_b
        rest = tuple(x for x in self._enc.get(key, ()) if x is not t)
        if rest:
            self._enc[key] = rest
        else:
            self._enc.pop(key, None)
        peer = t.remote_b + t.local_b
        ts = self._peer_set.get(peer)
        if ts is not None:
            ts.pop(t, None)
            if not ts:
                del self._peer_set[peer]
                self._peers.pop(peer, None)
            elif self._peers[peer][0] is t:
                self._peers[peer] = (next(iter(ts)),)
        dk = t.remote_b + t.local_b + t.inner_b
        if self._dec.get(dk) is t:
            del self._dec[dk]

    def _add_host_state(self, b: Binding) -> None:
        hoa = b.home_addr
        if self.role == "ha":
            if not self.home_prefix:
                self._ipr.route("replace", dst=f"{hoa}/32", oif=self._tun_index)
                self._routes.add(hoa)
            if self.arp is not None:
                self.arp.proxy(hoa)
                self._wake()
        else:
            self._ipr.route(
                "replace", dst=f"{hoa}/32", oif=self._visitor_index, scope=RT_SCOPE_LINK
            )
            self._routes.add(hoa)
            self._set_fa_rule(b)

    def _set_fa_rule(self, b: Binding) -> None:
        hoa = b.home_addr
        want = any(self._tunnels[k].reverse for k in self._by_hoa.get(hoa, ()))
        if want and hoa not in self._rules:
            self._ipr.rule(
                "add",
                src=hoa,
                src_len=32,
                iifname=self.visitor_iface,
                table=self.rt_table,
                priority=self.rule_priority,
            )
            self._rules.add(hoa)
        elif not want and hoa in self._rules:
            self._del_rule(hoa)

    def _del_rule(self, hoa: str) -> None:
        with contextlib.suppress(Exception):
            self._ipr.rule(
                "del",
                src=hoa,
                src_len=32,
                iifname=self.visitor_iface,
                table=self.rt_table,
                priority=self.rule_priority,
            )
        self._rules.discard(hoa)

    def _del_host_state(self, b: Binding) -> None:
        hoa = b.home_addr
        if hoa in self._routes:
            with contextlib.suppress(Exception):
                if self.role == "ha":
                    self._ipr.route("del", dst=f"{hoa}/32", oif=self._tun_index)
                else:
                    self._ipr.route(
                        "del", dst=f"{hoa}/32", oif=self._visitor_index, scope=RT_SCOPE_LINK
                    )
            self._routes.discard(hoa)
        if hoa in self._rules:
            self._del_rule(hoa)
        if self.arp is not None:
            self.arp.unproxy(hoa)
            self._wake()

    def claim_vip(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        if self.vip is None:
            raise DataPlaneError("claim_vip needs vip_iface (or home_iface)")
        self.vip.claim(addr, mac, name)
        self._vips.add(addr)

    def release_vip(self, addr: str) -> None:
        if addr not in self._vips or self.vip is None:
            return
        self.vip.release(addr)
        self._vips.discard(addr)

    def stats(self) -> DataPlaneStats:
        return DataPlaneStats(
            {k: t.c.as_dict() for k, t in list(self._tunnels.items())}, dict(self.drops)
        )

    def installed_routes(self) -> list[str]:
        """Host routes this data plane has added (for tests and ``mobileha show``)."""
        return sorted(self._routes)

    def tunnel_counters(self, home_addr: str, care_of: str) -> dict[str, int] | None:
        t = self._tunnels.get((home_addr, care_of))
        return t.c.as_dict() if t is not None else None

    # ---------------------------------------------------------------------------- loop
    def start(self) -> None:
        """Run the forwarding loop in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name="mobileha-dataplane", daemon=True
            )
            self._thread.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def serve_forever(self) -> None:
        """Forward packets until :meth:`close` (blocking)."""
        handlers: dict[int, Callable[[], None]] = {
            self._tun_fd: self._from_tun,
            self._wake_r: self._drain_wake,
        }
        for proto, s in self._rx.items():
            handlers[s.fileno()] = self._make_rx(proto, s)
        if self.arp is not None:
            handlers[self.arp.fileno()] = self.arp.handle_readable
        poller = select.poll()
        for fd in handlers:
            poller.register(fd, select.POLLIN)
        arp = self.arp
        while not self._stop:
            timeout = None
            if arp is not None:
                dl = arp.next_deadline()
                if dl is not None:
                    timeout = max(0, int((dl - time.monotonic()) * 1000) + 1)
            try:
                events = poller.poll(timeout)
            except InterruptedError:
                continue
            for fd, _ev in events:
                handlers[fd]()
            if arp is not None:
                arp.run_timers()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 512):
                pass

    def _from_tun(self) -> None:
        """Encapsulate every packet waiting on the TUN device (HA forward / FA reverse)."""
        read = os.read
        fd = self._tun_fd
        enc = self._enc
        drops = self.drops
        pack = IPV4.pack
        sendmsg = self._tx.sendmsg
        ttl = self.ttl
        # HA: look up the destination (bytes 16-20); FA reverse: the source (12-16).
        lo = 16 if self.role == "ha" else 12
        hi = lo + 4
        while True:
            try:
                pkt = read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                return
            if pkt[0] >> 4 != 4 or len(pkt) < 20:
                drops["not-ipv4"] += 1
                continue
            tunnels = enc.get(pkt[lo:hi])
            if tunnels is None:
                drops["no-binding"] += 1
                continue
            for t in tunnels:
                c = t.c
                if pkt[12:16] == t.remote_b:  # never tunnel a packet back to its source
                    c.drops += 1
                    drops["loop"] += 1
                    continue
                try:
                    e = t.encap
                    if e == 4:
                        hdr = pack(
                            0x45, pkt[1], 0, 0, (pkt[6] & 0x40) << 8, ttl, 4, 0,
                            t.local_b, t.remote_b,
                        )  # fmt: skip
                        sendmsg((hdr, pkt), (), 0, t.dst)
                    elif e == 47:
                        hdr = pack(
                            0x45, pkt[1], 0, 0, (pkt[6] & 0x40) << 8, ttl, 47, 0,
                            t.local_b, t.remote_b,
                        )  # fmt: skip
                        sendmsg((hdr, t.gre, pkt), (), 0, t.dst)
                    else:
                        if not self._send_minimal(pkt, t):
                            continue
                except OSError:
                    c.drops += 1
                    drops["send-error"] += 1
                    continue
                c.tx_pkts += 1
                c.tx_bytes += len(pkt)

    def _send_minimal(self, pkt: bytes, t: _Tunnel) -> bool:
        """RFC 2004 §3: rewrite the IP header, insert the minimal header, send."""
        if pkt[6] & 0x3F or pkt[7]:  # MF or a fragment offset: must not be minimal-encapsulated
            t.c.drops += 1
            self.drops["fragment"] += 1
            return False
        ihl = (pkt[0] & 0x0F) << 2
        with_src = pkt[12:16] != t.local_b
        n = 12 if with_src else 8
        mh = bytearray(12 if with_src else 8)
        mh[0] = pkt[9]
        mh[4:8] = pkt[16:20]
        if with_src:
            mh[1] = 0x80
            mh[8:12] = pkt[12:16]
        mh[2:4] = checksum(mh).to_bytes(2, "big")
        total = len(pkt) + n
        hdr = IPV4.pack(
            pkt[0], pkt[1], total, (pkt[4] << 8) | pkt[5], (pkt[6] << 8) | pkt[7], pkt[8],
            55, 0, t.local_b, t.remote_b,
        )  # fmt: skip
        self._tx.sendmsg((hdr, pkt[20:ihl], mh, pkt[ihl:]), (), 0, t.dst)
        return True

    def _make_rx(self, proto: int, sock: socket.socket) -> Callable[[], None]:
        """The decapsulation handler of one raw socket."""
        recv = sock.recv
        write = os.write
        fd = self._tun_fd
        dec = self._dec
        peers = self._peers
        drops = self.drops
        # HA: the inner source must be the home address; FA: the inner destination.
        off = 12 if self.role == "ha" else 16

        def deliver(
            key: bytes, peer: bytes, inner: memoryview | bytes, pkt_key: int | None
        ) -> None:
            t = dec.get(key)
            if t is None:
                ts = peers.get(peer)
                if ts is None:
                    drops["unknown-peer"] += 1
                else:
                    ts[0].c.drops += 1
                    drops["spoof"] += 1
                return
            if t.encap != proto:  # not the encapsulation negotiated for this binding
                t.c.drops += 1
                drops["bad-encap"] += 1
                return
            if pkt_key != t.gre_key:  # GRE key absent, extra or different (None for 4/55)
                t.c.drops += 1
                drops["bad-key"] += 1
                return
            write(fd, inner)
            t.c.rx_pkts += 1
            t.c.rx_bytes += len(inner)

        def rx_ipip() -> None:
            while True:
                try:
                    pkt = recv(READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                try:
                    ihl = (pkt[0] & 0x0F) << 2
                    i = ihl + off
                    if len(pkt) < ihl + 20 or pkt[ihl] >> 4 != 4:
                        drops["malformed"] += 1
                        continue
                    deliver(pkt[12:20] + pkt[i : i + 4], pkt[12:20], memoryview(pkt)[ihl:], None)
                except (IndexError, OSError):
                    drops["malformed"] += 1

        def rx_gre() -> None:
            while True:
                try:
                    pkt = recv(READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                try:
                    ihl = (pkt[0] & 0x0F) << 2
                    flags = (pkt[ihl] << 8) | pkt[ihl + 1]
                    if flags & _GRE_BAD or pkt[ihl + 2] != 8 or pkt[ihl + 3] != 0:
                        drops["malformed"] += 1
                        continue
                    o = ihl + 4
                    if flags & GRE_C:
                        if checksum(pkt[ihl:]) != 0:
                            drops["malformed"] += 1
                            continue
                        o += 4
                    key = None
                    if flags & GRE_K:
                        key = U32.unpack_from(pkt, o)[0]
                        o += 4
                    if flags & GRE_S:
                        o += 4
                    if len(pkt) < o + 20 or pkt[o] >> 4 != 4:
                        drops["malformed"] += 1
                        continue
                    i = o + off
                    deliver(pkt[12:20] + pkt[i : i + 4], pkt[12:20], memoryview(pkt)[o:], key)
                except (IndexError, OSError, struct.error):
                    drops["malformed"] += 1

        def rx_minimal() -> None:
            while True:
                try:
                    pkt = recv(READ_SIZE)
                except (BlockingIOError, InterruptedError):
                    return
                try:
                    ihl = (pkt[0] & 0x0F) << 2
                    n = 12 if pkt[ihl + 1] & 0x80 else 8
                    if pkt[ihl + 1] & 0x7F or len(pkt) < ihl + n or checksum(pkt[ihl : ihl + n]):
                        drops["malformed"] += 1
                        continue
                    osrc = pkt[ihl + 8 : ihl + 12] if n == 12 else pkt[12:16]
                    odst = pkt[ihl + 4 : ihl + 8]
                    inner_addr = osrc if off == 12 else odst
                    hdr = bytearray(pkt[:ihl])
                    hdr[2:4] = (len(pkt) - n).to_bytes(2, "big")
                    hdr[9] = pkt[ihl]
                    hdr[10:12] = b"\0\0"
                    hdr[12:16] = osrc
                    hdr[16:20] = odst
                    hdr[10:12] = checksum(hdr).to_bytes(2, "big")
                    deliver(pkt[12:20] + inner_addr, pkt[12:20], bytes(hdr) + pkt[ihl + n :], None)
                except (IndexError, OSError):
                    drops["malformed"] += 1

        return {4: rx_ipip, 47: rx_gre, 55: rx_minimal}[proto]

    # ---------------------------------------------------------------------------- teardown
    def close(self) -> None:
        """Stop the loop, delete routes/rules/VIPs we added, close the TUN device."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for b in [t.binding for t in self._tunnels.values()]:
            with contextlib.suppress(Exception):
                self.remove_locked(b)
        for addr in list(self._vips):
            with contextlib.suppress(Exception):
                self.release_vip(addr)
        if self.role == "ha" and self.home_prefix:
            with contextlib.suppress(Exception):
                self._ipr.route("del", dst=self.home_prefix, oif=self._tun_index)
        if self.role == "fa":
            with contextlib.suppress(Exception):
                self._ipr.route("del", dst="0.0.0.0/0", oif=self._tun_index, table=self.rt_table)
        if self.arp is not None:
            self.arp.close()
        self._release_fds()  # closing the TUN fd deletes the (non-persistent) device
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(Exception):
            self._ipr.close()

    def remove_locked(self, binding: Binding) -> None:
        if binding.key in self._tunnels:
            self._drop_tunnel(binding.key)
            if not self._by_hoa.get(binding.home_addr):
                self._del_host_state(binding)


__all__ = ["MAX_OVERHEAD", "UserspaceDataPlane"]
