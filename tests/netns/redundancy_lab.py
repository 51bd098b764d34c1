"""A home-agent redundancy lab in network namespaces, for tests/netns/test_redundancy_*.py.

::

        cn 10.51.0.2 ---+                         +--- ha1 10.50.0.11 ---+
                        r (router) 10.50.0.1 --- [home bridge]           (HSRP VIP 10.50.0.100,
        fa 10.52.0.2 ---+                         +--- ha2 10.50.0.12 ---+  sync on UDP 434)
         |                 (10.60.0.0/16, the home prefix, is routed to the VIP)
        mn 10.53.0.2   (a ``mobileha run`` mobile-node fleet, via the FA)

Every node is a real ``mobileha run CONFIG`` process. The HAs run HSRP v2 over multicast on
the home bridge, HA-HA sync and the userspace data plane (a TUN device for the home
prefix, raw IP-in-IP). The management APIs listen on 127.0.0.1 inside their namespaces;
the test process reaches them with sockets created inside the namespace
(:func:`ns_socket`, ``setns`` on a short-lived thread), so polling costs no process start.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobileha.lab.netns import Bridge, Host, Topology
from tests.helpers.wait import wait_for as _wait_for

VIP = "10.50.0.100"
HA_ADDRS = ("10.50.0.11", "10.50.0.12")
R_HOME = "10.50.0.1"
CN = "10.51.0.2"
FA = "10.52.0.2"
MN_LOCAL = "10.53.0.2"
HOME_PREFIX = "10.60.0.0/16"
MN_KEY = bytes(range(16))
FA_KEY = bytes(range(16, 32))
HA_KEY = bytes(range(32, 48))
API_PORT = 8434
NAI = "mn{n}@lab.example"

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000

# A node's API or counters may not answer yet while it starts: that is "not yet".
LAB_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError)


def wait_for(
    cond: Callable[[], Any],
    timeout: float,
    what: str,
    step: float = 0.02,
    detail: Callable[[], str] | None = None,
) -> Any:
    return _wait_for(cond, timeout, what, step, ignore=LAB_ERRORS, detail=detail)


def ns_socket(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside network namespace ``ns`` (it stays there once made)."""
    out: dict[str, Any] = {}

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            try:
                out["s"] = socket.socket(family, kind, proto)
            finally:
                _libc.setns(own, CLONE_NEWNET)
        except BaseException as e:
            out["e"] = e
        finally:
            os.close(fd)
            os.close(own)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "e" in out:
        raise out["e"]
    s: socket.socket = out["s"]
    return s


def http_get(ns: str, path: str, port: int = API_PORT, timeout: float = 3.0) -> Any:
    """GET http://127.0.0.1:port/path inside ``ns`` and decode the JSON body."""
    s = ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if head else b"?"
    if status != b"200":
        raise OSError(f"GET {path} in {ns}: HTTP {status.decode()} {body[:200]!r}")
    return json.loads(body)


PINGER = r"""
import os, select, socket, struct, sys, time
dst, interval, out = sys.argv[1], float(sys.argv[2]), open(sys.argv[3], "w", buffering=1)
ident = os.getpid() & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def csum(b):
    if len(b) % 2:
        b += b"\0"
    x = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    x = (x >> 16) + (x & 0xFFFF)
    x += x >> 16
    return ~x & 0xFFFF
dst_b, seq, nxt = socket.inet_aton(dst), 0, time.monotonic()
while seq <= 0xFFFF:
    now = time.monotonic()
    if now >= nxt:
        body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"mobileha-redundancy"
        out.write(f"s {seq} {time.monotonic():.6f}\n")
        try:
            s.sendto(body[:2] + struct.pack("!H", csum(body)) + body[4:], (dst, 0))
        except OSError:
            pass
        seq += 1
        nxt += interval
    r, _, _ = select.select([s], [], [], max(0.0, nxt - time.monotonic()))
    if r:
        d = s.recv(2048)
        t = time.monotonic()
        h = (d[0] & 0x0F) * 4
        if len(d) >= h + 8 and d[12:16] == dst_b and d[h] == 0:
            i, q = struct.unpack_from("!HH", d, h + 4)
            if i == ident:
                out.write(f"r {q} {t:.6f}\n")
"""


class Pinger:
    """ICMP echo requests from ``host`` to ``dst`` every ``interval`` seconds, in a process
    of its own inside the namespace (not a thread of the test: the test's own work would
    delay it), logging send and reply times (CLOCK_MONOTONIC, shared by all processes)."""

    def __init__(self, host: Host, dst: str, path: Path, interval: float = 0.01) -> None:
        self.path = path
        self.proc = host.popen([sys.executable, "-c", PINGER, dst, str(interval), str(path)])

    def _read(self) -> tuple[dict[int, float], list[tuple[int, float]]]:
        sent: dict[int, float] = {}
        replies: list[tuple[int, float]] = []
        try:
            text = self.path.read_text()
        except OSError:
            return sent, replies
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            if parts[0] == "s":
                sent[int(parts[1])] = float(parts[2])
            elif parts[0] == "r":
                replies.append((int(parts[1]), float(parts[2])))
        return sent, replies

    @property
    def replies(self) -> list[tuple[int, float]]:
        return self._read()[1]

    @property
    def sent(self) -> int:
        return len(self._read()[0])

    def first_reply_after(self, t: float) -> float | None:
        """When the first echo reply to a request sent after ``t`` came."""
        sent, replies = self._read()
        for seq, ts in replies:
            if ts > t and sent.get(seq, 0.0) > t:
                return ts
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def toml_secret(key: bytes) -> str:
    return f"hex:{key.hex()}"


_pcap_seen: dict[str, tuple[int, list[tuple[float, bytes]]]] = {}


def read_pcap(path: str) -> list[tuple[float, bytes]]:
    """(timestamp, IPv4 packet) of an Ethernet pcap still being written: records parsed
    once (later calls read only what was appended), a partial last record waits."""
    off, out = _pcap_seen.get(path, (24, []))
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            if len(head) < 24:
                return []
            f.seek(off)
            data = f.read()
    except OSError:
        return []
    magic = struct.unpack_from("<I", head)[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(end + "I", head, 20)[0]
    pos = 0
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(end + "IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + incl]
        if len(frame) < incl:
            break
        pos += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:  # Ethernet
            if frame[12:14] == b"\x08\x00":
                out.append((ts, frame[14:]))
        elif linktype == 113:  # Linux cooked
            if frame[14:16] == b"\x08\x00":
                out.append((ts, frame[16:]))
        elif linktype in (101, 228):  # raw IPv4
            out.append((ts, frame))
    _pcap_seen[path] = (off + pos, out)
    return out


def udp_payload(pkt: bytes) -> tuple[str, str, int, int, bytes] | None:
    """(src, dst, sport, dport, payload) of an IPv4/UDP packet, else None."""
    if len(pkt) < 28 or pkt[9] != 17:
        return None
    ihl = (pkt[0] & 0x0F) * 4
    sport, dport = struct.unpack_from("!HH", pkt, ihl)
    return (
        socket.inet_ntoa(pkt[12:16]),
        socket.inet_ntoa(pkt[16:20]),
        sport,
        dport,
        pkt[ihl + 8 :],
    )


def mobileha_argv(cfg: Path) -> list[str]:
    exe = Path(sys.executable).parent / "mobileha"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mobileha.cli"]
    return [*cmd, "run", str(cfg)]


@dataclass
class Proc:
    """One ``mobileha run`` process in a namespace."""

    host: Host
    cfg: Path
    log: Path
    proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = self.host.popen(
            mobileha_argv(self.cfg),
            stderr=open(self.log, "a"),  # noqa: SIM115
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> float:
        """SIGKILL; returns the monotonic time of the kill."""
        assert self.proc is not None
        t = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None
        return t

    def term(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def api(self, view: str, **q: Any) -> Any:
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return http_get(self.host.ns, f"/api/{view}" + (f"?{qs}" if qs else ""))

    def tail(self, n: int = 4000) -> str:
        try:
            return f"--- {self.log.name}\n" + self.log.read_text()[-n:]
        except OSError:
            return ""


@dataclass
class HomeAgentProc(Proc):
    addr: str = ""
    peer: str = ""

    def state(self) -> str:
        if not self.alive():
            return "dead"
        try:
            v = self.api("standby")
        except (OSError, ValueError):
            return "?"
        groups = v["groups"] if isinstance(v, dict) else v
        return str(groups[0]["state"]).capitalize() if groups else "?"

    def redundancy(self) -> dict[str, Any]:
        v: dict[str, Any] = self.api("redundancy")
        return v

    def counters(self) -> dict[str, int]:
        c: dict[str, int] = self.redundancy()["counters"]
        return c

    def bindings(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every binding, keyed by (home address, care-of address)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        offset: int | None = 0
        while offset is not None:
            page = self.api("bindings", offset=offset, limit=1000)
            for b in page["items"]:
                out[(b["home_address"], b["care_of"])] = b
            offset = page.get("next_offset")
        return out

    def total(self) -> int:
        return int(self.api("bindings", limit=1)["total"])


@dataclass
class Lab:
    topo: Topology
    tmp: Path
    home: Bridge
    r: Host
    cn: Host
    fa: Host
    mn: Host
    has: list[HomeAgentProc] = field(default_factory=list)
    fa_proc: Proc | None = None
    fleets: dict[str, Proc] = field(default_factory=dict)
    extra_hosts: dict[str, Host] = field(default_factory=dict)

    # ---------------------------------------------------------------- configs

    def ha_config(
        self,
        i: int,
        *,
        mn_nais: Iterable[tuple[str, str]],
        priority: int = 100,
        preempt: bool = False,
        hello_ms: int = 100,
        hold_ms: int = 600,
        retransmit_ms: int = 200,
        max_lifetime: int = 600,
        dataplane: str = "userspace",
        extra_fa: Iterable[str] = (),
    ) -> Path:
        me, peer = HA_ADDRS[i], HA_ADDRS[1 - i]
        lines = [
            "[node]",
            'role = "home-agent"',
            f'name = "ha{i + 1}"',
            "[management]",
            f'listen = "127.0.0.1:{API_PORT}"',
            "[log]",
            'level = "info"',
            "[home_agent]",
            f'address = "{me}"',
            f'home_prefix = "{HOME_PREFIX}"',
            f"max_lifetime = {max_lifetime}",
            "[hsrp]",
            'interface = "eth0"',
            "group = 1",
            "version = 2",
            f'virtual_ip = "{VIP}"',
            f"priority = {priority}",
            f"preempt = {'true' if preempt else 'false'}",
            f"hello_ms = {hello_ms}",
            f"hold_ms = {hold_ms}",
            'authentication = "md5:redundancy-lab"',
            "[redundancy]",
            f'peer = "{peer}"',
            "spi = 400",
            f'key = "{toml_secret(HA_KEY)}"',
            'algorithm = "hmac-md5"',
            f"retransmit_ms = {retransmit_ms}",
            "[dataplane]",
            f'backend = "{dataplane}"',
        ]
        for fa in (FA, *extra_fa):
            lines += [
                "[[foreign_agent]]",
                f'address = "{fa}"',
                "spi = 300",
                f'key = "{toml_secret(FA_KEY)}"',
                'algorithm = "hmac-md5"',
            ]
        key = toml_secret(MN_KEY)
        for nai, hoa in mn_nais:
            lines += [
                "[[mobile_node]]",
                f'nai = "{nai}"',
                f'home_address = "{hoa}"',
                "spi = 256",
                f'key = "{key}"',
                'algorithm = "hmac-md5"',
            ]
        path = self.tmp / f"ha{i + 1}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def fa_config(self, fa_dataplane: str = "userspace") -> Path:
        text = f"""
[node]
role = "foreign-agent"
name = "fa"
[management]
listen = "127.0.0.1:{API_PORT}"
[foreign_agent]
address = "{FA}"
home_agent = "{VIP}"
reverse_tunnel = false
gre = false
pending_timeout_s = 3
[[foreign_agent.home_agent_sa]]
address = "{VIP}"
spi = 300
key = "{toml_secret(FA_KEY)}"
algorithm = "hmac-md5"
[dataplane]
backend = "{fa_dataplane}"
visitor_iface = "eth1"
[aaa]
backend = "local"
"""
        path = self.tmp / "fa.toml"
        path.write_text(text)
        return path

    def fleet_config(
        self,
        name: str,
        *,
        count: int,
        nai: str = NAI,
        home_address: str = "dynamic",
        lifetime: int = 600,
        renew_fraction: float = 0.8,
        local: str = MN_LOCAL,
        via_fa: bool = True,
        retransmit_ms: int = 500,
    ) -> Path:
        where = f'foreign_agent = "{FA}:434"' if via_fa else f'co_located_care_of = "{local}"'
        text = f"""
[node]
role = "mobile-node"
name = "{name}"
[management]
listen = "127.0.0.1:{API_PORT + 10 + len(self.fleets)}"
[mobile_node]
nai = "{nai}"
count = {count}
home_address = "{home_address}"
home_agent = "{VIP}"
{where}
local_address = "{local}"
spi = 256
key = "{toml_secret(MN_KEY)}"
algorithm = "hmac-md5"
lifetime = {lifetime}
renew_fraction = {renew_fraction}
retransmit_ms = {retransmit_ms}
retransmit_max_ms = 2000
"""
        path = self.tmp / f"{name}.toml"
        path.write_text(text)
        return path

    # ---------------------------------------------------------------- processes

    def add_ha(self, i: int, cfg: Path) -> HomeAgentProc:
        host = self.topo.hosts[f"ha{i + 1}"]
        p = HomeAgentProc(host, cfg, self.tmp / f"ha{i + 1}.log", addr=HA_ADDRS[i])
        p.peer = HA_ADDRS[1 - i]
        self.has.append(p)
        return p

    def start_fa(self, dataplane: str = "userspace") -> Proc:
        self.fa_proc = Proc(self.fa, self.fa_config(dataplane), self.tmp / "fa.log")
        self.fa_proc.start()
        wait_for(lambda: self.fa_proc and self.fa_proc.api("stats"), 15, "FA API")
        return self.fa_proc

    def start_fleet(self, name: str, host: Host | None = None, **kw: Any) -> Proc:
        cfg = self.fleet_config(name, **kw)
        p = Proc(host or self.mn, cfg, self.tmp / f"{name}.log")
        self.fleets[name] = p
        p.start()
        return p

    def fleet_api(self, name: str, view: str, **q: Any) -> Any:
        p = self.fleets[name]
        port = API_PORT + 10 + list(self.fleets).index(name)
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return http_get(p.host.ns, f"/api/{view}" + (f"?{qs}" if qs else ""), port=port)

    def visitors(self) -> dict[str, dict[str, Any]]:
        """The FA's visitor list keyed by home address."""
        assert self.fa_proc is not None
        out: dict[str, dict[str, Any]] = {}
        offset: int | None = 0
        while offset is not None:
            page = self.fa_proc.api("visitors", offset=offset, limit=1000)
            for v in page["items"]:
                out[v["home_address"]] = v
            offset = page.get("next_offset")
        return out

    def active(self) -> HomeAgentProc | None:
        act = [h for h in self.has if h.state() == "Active"]
        return act[0] if len(act) == 1 else None

    def logs(self) -> str:
        procs: list[Proc] = [*self.has, *self.fleets.values()]
        if self.fa_proc is not None:
            procs.append(self.fa_proc)
        return "\n".join(p.tail() for p in procs)


def build(topo: Topology, tmp: Path) -> Lab:
    """The namespaces, links and routes of the module docstring (no processes yet)."""
    home = topo.bridge("home")
    r = topo.host("r")
    cn = topo.host("cn")
    fa = topo.host("fa")
    mn = topo.host("mn")
    for i, addr in enumerate(HA_ADDRS):
        h = topo.host(f"ha{i + 1}")
        topo.link(h, home, f"{addr}/24")
        h.route("default", via=R_HOME)
        h.forwarding()  # the data plane: packets for the home prefix go eth0 -> TUN
    topo.link(r, home, f"{R_HOME}/24")
    topo.link(cn, r, f"{CN}/24", "10.51.0.1/24")
    topo.link(fa, r, f"{FA}/24", "10.52.0.1/24")
    topo.link(mn, fa, f"{MN_LOCAL}/24", "10.53.0.1/24")
    cn.route("default", via="10.51.0.1")
    fa.route("default", via="10.52.0.1")
    mn.route("default", via="10.53.0.1")
    r.forwarding()
    fa.forwarding()
    r.route(HOME_PREFIX, via=VIP)
    r.route("10.53.0.0/24", via=FA)  # co-located MNs behind the FA
    return Lab(topo=topo, tmp=tmp, home=home, r=r, cn=cn, fa=fa, mn=mn)


def ha_port(lab: Lab, i: int) -> str:
    """The home bridge's port name of HA ``i`` (to cut its link)."""
    links = json.loads(lab.home.ip("-j", "link", "show", "master", lab.home.dev))
    want = f"ha{i + 1}"
    for ln in links:
        if want in ln["ifname"]:
            return str(ln["ifname"])
    raise KeyError(want)
