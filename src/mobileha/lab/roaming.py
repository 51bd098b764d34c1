"""The roaming lab: a mobile node moving between two foreign agents while a correspondent
streams to it, with real ``mobileha run`` processes in namespaces (``mobileha lab
--roaming`` and ``tests/netns/test_roaming.py``)::

    cn (10.1.0.2) --- r --- br lan (10.2.0.0/24): ha-a 10.2.0.11, ha-b 10.2.0.12,
                      |                           HSRP VIP 10.2.0.100 (home agent address)
                      |     ha-a/ha-b eth1 -- br home (10.99.0.0/24) -- mn eth2
                      +--- fa1 (10.3.0.2) --eth1 10.4.0.1-- mn eth0 (10.4.0.5)
                      +--- fa2 (10.5.0.2) --eth1 10.6.0.1-- mn eth1 (10.6.0.5)

* The HA pair runs HSRP and binding sync; ``r`` routes the home prefix 10.99.0.0/24 to
  the VIP. Both HAs advertise on the home link (H). Revocation (RFC 3543) is on between
  the HAs and the FAs (FA-HA SAs with the VIP).
* The FAs advertise on their visitor links every ``adv_ms`` (RFC 5944 §2); the MN (home
  address 10.99.0.5 on its ``lo``) discovers them and registers through the one whose link
  is up. A move is one link down and the other up (:meth:`RoamingLab.move`); coming home is
  the home link up and the foreign one down (:meth:`RoamingLab.go_home`).
* The CN sends ``rate`` UDP packets a second to the home address; a receiver on the MN
  records each arrival (monotonic clock, the same in every namespace). The outage of a
  handoff is the longest gap between arrivals from just before it until the next one.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from mobileha.lab.netns import Host, Topology
from mobileha.lab.scenario import NodeProc, wait_until

CN, HOA = "10.1.0.2", "10.99.0.5"
HA_A, HA_B, VIP = "10.2.0.11", "10.2.0.12", "10.2.0.100"
FA1, FA2 = "10.3.0.2", "10.5.0.2"
NAI = "roamer@lab.example"
KEY = "hex:00112233445566778899aabbccddeeff"
FAHA = "hex:0f0e0d0c0b0a09080706050403020100"
# the management API of the HAs and FAs (clear binding / clear visitor need it)
API_TOKEN = "mobileha-lab-roaming"
SYNC_KEY = "hex:ffeeddccbbaa99887766554433221100"
PORT = 9999
LINKS = {"eth0": FA1, "eth1": FA2}  # the MN's link -> the FA on it

SENDER = """
import socket, struct, sys, time
dst, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic(); n = 0
while True:
    d = t0 + n / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
    try:
        s.sendto(struct.pack("!Qd", n, time.monotonic()) + bytes(32), (dst, port))
    except OSError:
        pass
    n += 1
"""

RECEIVER = """
import signal, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
arrivals, stop = [], []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    try:
        s.recv(2048)
    except (TimeoutError, OSError):
        continue
    arrivals.append(time.monotonic())
with open(sys.argv[2], "w") as f:
    f.write("\\n".join(f"{t:.6f}" for t in arrivals))
"""


def ha_config(name: str, me: str, peer: str, priority: int, adv_ms: int) -> str:
    fas = "".join(
        f'\n[[foreign_agent]]\naddress = "{a}"\nspi = 300\nkey = "{FAHA}"\nalgorithm = "hmac-md5"\n'
        for a in (FA1, FA2)
    )
    return f"""
[node]
role = "home-agent"
name = "{name}"
[management]
listen = "127.0.0.1:8434"
token = "{API_TOKEN}"
[home_agent]
address = "{me}"
max_lifetime = 600
revocation = true
advertise_interface = "eth1"
advertise_interval_ms = {adv_ms}
[hsrp]
interface = "eth0"
group = 1
version = 2
virtual_ip = "{VIP}"
priority = {priority}
hello_ms = 300
hold_ms = 1200
authentication = "md5:mobileha-lab-roaming"
[redundancy]
peer = "{peer}"
spi = 400
key = "{SYNC_KEY}"
retransmit_ms = 200
[dataplane]
backend = "userspace"
tun_name = "mha0"
[[mobile_node]]
nai = "{NAI}"
home_address = "{HOA}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
{fas}"""


def fa_config(name: str, addr: str, adv_ms: int) -> str:
    return f"""
[node]
role = "foreign-agent"
name = "{name}"
[management]
listen = "127.0.0.1:8434"
token = "{API_TOKEN}"
[foreign_agent]
address = "{addr}"
home_agent = "{VIP}"
reverse_tunnel = false
gre = false
advertise_interval_ms = {adv_ms}
revocation = true
[[foreign_agent.home_agent_sa]]
address = "{VIP}"
spi = 300
key = "{FAHA}"
algorithm = "hmac-md5"
[dataplane]
backend = "userspace"
tun_name = "mha0"
visitor_iface = "eth1"
"""


MN_CONFIG = f"""
[node]
role = "mobile-node"
name = "mn"
[management]
listen = "127.0.0.1:8434"
[mobile_node]
nai = "{NAI}"
home_address = "{HOA}"
home_agent = "{VIP}"
interfaces = "eth0,eth1,eth2"
local_address = "0.0.0.0"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
lifetime = 600
retransmit_ms = 300
"""


@dataclass
class Handoff:
    """One move (``to``: the MN's link) and what it took."""

    to: str
    at: float  # monotonic time of the link change
    registered_s: float | None = None  # until the Active's binding named the new CoA
    old_visitor_gone_s: float | None = None  # from then until the old FA's entry went
    outage_s: float | None = None  # the longest gap in the CN's packets


@dataclass
class RoamingLab:
    workdir: Path
    adv_ms: int = 1000
    rate: int = 1000
    prefix: str = "mob"
    topo: Topology | None = None
    hosts: dict[str, Host] = field(default_factory=dict)
    nodes: dict[str, NodeProc] = field(default_factory=dict)
    handoffs: list[Handoff] = field(default_factory=list)
    link: str = "eth0"  # the MN's current link
    _procs: list[Popen[str]] = field(default_factory=list)

    # ------------------------------------------------------------------ set-up

    def build(self) -> None:
        topo = self.topo = Topology(prefix=self.prefix)
        h = self.hosts
        for n in ("cn", "r", "ha-a", "ha-b", "fa1", "fa2", "mn"):
            h[n] = topo.host(n)
        cn, r, mn = h["cn"], h["r"], h["mn"]
        topo.link(cn, r, f"{CN}/24", "10.1.0.1/24")
        lan = topo.bridge("lan", host=r)
        r.addr(lan.dev, "10.2.0.1/24")
        home = topo.bridge("home")
        for name, addr, home_addr in (("ha-a", HA_A, "10.99.0.2"), ("ha-b", HA_B, "10.99.0.3")):
            topo.link(h[name], lan, f"{addr}/24")  # eth0
            topo.link(h[name], home, f"{home_addr}/24")  # eth1: the home link
            h[name].route("default", via="10.2.0.1")
            h[name].forwarding()
        topo.link(h["fa1"], r, f"{FA1}/24", "10.3.0.1/24")
        topo.link(h["fa2"], r, f"{FA2}/24", "10.5.0.1/24")
        topo.link(h["fa1"], mn, "10.4.0.1/24", "10.4.0.5/24")  # fa1 eth1 - mn eth0
        topo.link(h["fa2"], mn, "10.6.0.1/24", "10.6.0.5/24")  # fa2 eth1 - mn eth1
        topo.link(mn, home, None)  # mn eth2
        mn.addr("lo", f"{HOA}/32")
        for k in ("all", "default", "eth0", "eth1", "eth2"):
            mn.sysctl(f"net.ipv4.conf.{k}.rp_filter", 0)
        cn.route("default", via="10.1.0.1")
        h["fa1"].route("default", via="10.3.0.1")
        h["fa2"].route("default", via="10.5.0.1")
        r.route("10.99.0.0/24", via=VIP)
        for n in ("r", "fa1", "fa2"):
            h[n].forwarding()
        self._up("eth1", False)  # the MN starts on fa1's link
        self._up("eth2", False)

    def start(self, timeout: float = 30.0) -> None:
        h, w = self.hosts, self.workdir
        cfg_a = ha_config("ha-a", HA_A, HA_B, 110, self.adv_ms)
        self.nodes["ha-a"] = NodeProc(h["ha-a"], "ha-a", cfg_a, w).start()
        if not wait_until(lambda: self.hsrp_state("ha-a") == "Active", timeout):
            raise RuntimeError(f"ha-a did not become Active:\n{self.logs()}")
        cfg_b = ha_config("ha-b", HA_B, HA_A, 100, self.adv_ms)
        self.nodes["ha-b"] = NodeProc(h["ha-b"], "ha-b", cfg_b, w).start()
        for n, addr in (("fa1", FA1), ("fa2", FA2)):
            self.nodes[n] = NodeProc(h[n], n, fa_config(n, addr, self.adv_ms), w).start()
        for n, p in self.nodes.items():
            if not wait_until(p.try_api_ok("stats"), timeout):
                raise RuntimeError(f"{n} did not start:\n{p.tail()}")
        if not wait_until(lambda: self.hsrp_state("ha-b") == "Standby", timeout):
            raise RuntimeError(f"ha-b did not become Standby:\n{self.logs()}")
        self.nodes["mn"] = NodeProc(h["mn"], "mn", MN_CONFIG, w).start()
        if not wait_until(lambda: self.binding_coa() == FA1, timeout):
            raise RuntimeError(f"the mobile node did not register:\n{self.logs()}")

    def start_traffic(self) -> None:
        out = self.workdir / "arrivals.txt"
        rx = [sys.executable, "-c", RECEIVER, str(PORT), str(out)]
        tx = [sys.executable, "-c", SENDER, HOA, str(PORT), str(self.rate)]
        self._procs.append(self.hosts["mn"].popen(rx))
        self._procs.append(self.hosts["cn"].popen(tx))

    def stop_traffic(self) -> list[float]:
        """Stop the CN, then the receiver; the arrival times."""
        for i, p in enumerate(reversed(self._procs)):
            p.terminate()
            p.wait(5)
            if i == 0:
                time.sleep(0.3)
        self._procs.clear()
        text = (self.workdir / "arrivals.txt").read_text()
        return [float(x) for x in text.split()]

    def close(self) -> None:
        for p in self._procs:
            p.kill()
        for n in list(self.nodes):
            self.nodes.pop(n).terminate()
        if self.topo is not None:
            self.topo.close()
            self.topo = None

    # ------------------------------------------------------------------ state

    def logs(self, n: int = 3000) -> str:
        return "\n".join(f"--- {k}\n{p.tail(n)}" for k, p in self.nodes.items())

    def active(self) -> NodeProc:
        return next(
            (self.nodes[n] for n in ("ha-a", "ha-b") if self.hsrp_state(n) == "Active"),
            self.nodes["ha-a"],
        )

    def hsrp_state(self, name: str) -> str:
        p = self.nodes.get(name)
        v = p.try_api("standby") if p is not None and p.alive() else None
        groups = v.get("groups", v) if isinstance(v, dict) else v
        return str(groups[0].get("state", "")).capitalize() if groups else ""

    def bindings(self, name: str) -> list[dict[str, Any]]:
        v = self.nodes[name].try_api("bindings")
        return list((v or {}).get("items", []))

    def binding_coa(self, name: str | None = None) -> str | None:
        items = self.bindings(name or self.active().name)
        return items[0].get("care_of") if items else None

    def visitors(self, fa: str) -> int | None:
        v = self.nodes[fa].try_api("visitors")
        return None if v is None else len(v.get("items", []))

    # ------------------------------------------------------------------ moving

    def _up(self, ifname: str, up: bool) -> None:
        self.hosts["mn"].ip("link", "set", ifname, "up" if up else "down")

    def move(self, timeout: float = 10.0) -> Handoff:
        """The MN's link down, the other FA's up; wait for the registration through the new
        FA and for the old FA's visitor entry to go."""
        old = self.link
        new = "eth1" if old == "eth0" else "eth0"
        h = Handoff(new, time.monotonic())
        self._up(old, False)
        self._up(new, True)
        self.link = new
        if not wait_until(lambda: self.binding_coa() == LINKS[new], timeout, 0.02):
            raise RuntimeError(f"no registration through {LINKS[new]}:\n{self.logs()}")
        t = time.monotonic()
        h.registered_s = t - h.at
        old_fa = "fa1" if old == "eth0" else "fa2"
        if wait_until(lambda: self.visitors(old_fa) == 0, 5, 0.02):
            h.old_visitor_gone_s = time.monotonic() - t
        self.handoffs.append(h)
        return h

    def go_home(self, timeout: float = 10.0) -> Handoff:
        """The home link up, the foreign one down; wait until the Active has no binding."""
        h = Handoff("eth2", time.monotonic())
        self._up(self.link, False)
        self._up("eth2", True)
        old_fa = "fa1" if self.link == "eth0" else "fa2"
        self.link = "eth2"
        if not wait_until(lambda: not self.bindings(self.active().name), timeout, 0.02):
            raise RuntimeError(f"no deregistration from home:\n{self.logs()}")
        t = time.monotonic()
        h.registered_s = t - h.at
        if wait_until(lambda: self.visitors(old_fa) == 0, 5, 0.02):
            h.old_visitor_gone_s = time.monotonic() - t
        self.handoffs.append(h)
        return h

    def outages(self, arrivals: list[float], end: float) -> None:
        """Fill each handoff's outage: the longest gap in ``arrivals`` from 50 ms before it
        until 50 ms before the next one (or ``end``)."""
        ats = [h.at for h in self.handoffs] + [end]
        for h, nxt in zip(self.handoffs, ats[1:], strict=True):
            window = [a for a in arrivals if h.at - 0.05 <= a <= nxt - 0.05]
            if len(window) >= 2:
                h.outage_s = max(b - a for a, b in itertools.pairwise(window))


def run(moves: int, adv_ms: int, dwell_s: float, say: Any, workdir: Path) -> dict[str, Any]:
    """``mobileha lab --roaming``: build, start, move ``moves`` times and come home, saying
    each handoff with its outage; the summary."""
    lab = RoamingLab(workdir, adv_ms=adv_ms, prefix="mhroam")
    try:
        lab.build()
        assert lab.topo is not None
        say(f"topology {lab.topo.run_id}: cn, r, ha-a/ha-b (HSRP VIP {VIP}), fa1, fa2, mn")
        lab.start()
        say(f"ha-a Active, ha-b Standby; the MN registered through fa1 ({FA1})")
        lab.start_traffic()
        say(f"the CN streams {lab.rate} UDP packets/s to {HOA}")
        time.sleep(1.0)
        for _ in range(moves):
            h = lab.move()
            say(
                f"move to {h.to} ({LINKS[h.to]}): registered in "
                f"{(h.registered_s or 0) * 1000:.0f} ms, old visitor revoked in "
                f"{(h.old_visitor_gone_s or 0) * 1000:.0f} ms"
            )
            time.sleep(dwell_s)
        home = lab.go_home()
        say(f"home: deregistered in {(home.registered_s or 0) * 1000:.0f} ms")
        time.sleep(1.0)
        end = time.monotonic()
        arrivals = lab.stop_traffic()
        lab.outages(arrivals, end)
        for i, h in enumerate(lab.handoffs, 1):
            where = "home" if h.to == "eth2" else LINKS[h.to]
            out = "?" if h.outage_s is None else f"{h.outage_s * 1000:.0f} ms"
            say(f"handoff {i:2d} -> {where:9s} outage {out}")
        outs = [h.outage_s for h in lab.handoffs[:-1] if h.outage_s is not None]
        summary: dict[str, Any] = {
            "run_id": lab.topo.run_id if lab.topo is not None else None,
            "moves": moves,
            "packets": len(arrivals),
        }
        if outs:
            summary["outage_ms"] = {
                "p50": round(percentile(outs, 50) * 1000, 1),
                "p95": round(percentile(outs, 95) * 1000, 1),
                "max": round(max(outs) * 1000, 1),
            }
            o = summary["outage_ms"]
            say(f"outage per move: p50 {o['p50']} ms, p95 {o['p95']} ms, max {o['max']} ms")
        summary["ok"] = bool(outs) and len(outs) == moves
        return summary
    finally:
        lab.close()


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


__all__ = ["Handoff", "RoamingLab", "percentile", "run"]
