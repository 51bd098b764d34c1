"""HSRP between real processes in network namespaces: three routers and a host on a bridge.

Each router is ``python -m mobileha.node.hsrp`` in its own namespace (hello 100 ms, hold
300 ms); the host pings the virtual IP; tcpdump on the host records ARP and HSRP, decoded
afterwards by tshark. Uses the shared ``topology`` fixture (mobileha.lab.netns).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mobileha.lab.netns import Host, Link, Topology
from mobileha.wire import hsrp as w
from tests.helpers import wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed"),
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed"),
]

HELLO, HOLD = 0.1, 0.3
VIP = "10.77.0.1"
SLACK = 0.1  # process scheduling on a loaded 2-core machine


class Router:
    def __init__(self, host: Host, link: Link, addr: str, tmp: Path) -> None:
        self.host, self.link, self.addr = host, link, addr
        self.file = tmp / f"{host.name}.json"
        self.proc: subprocess.Popen[str] | None = None
        info = json.loads(host.ip("-j", "link", "show", "eth0"))
        self.mac = info[0]["address"]

    def start(self, prio: int, *extra: str, version: int = 2) -> None:
        if self.file.exists():
            self.file.unlink()
        argv = [sys.executable, "-m", "mobileha.node.hsrp", "-i", "eth0", "--group", "1",
                "--vip", VIP, "--priority", str(prio), "--preempt", "--version", str(version),
                "--hello-ms", str(int(HELLO * 1000)), "--hold-ms", str(int(HOLD * 1000)),
                "--mgmt-json-file", str(self.file), "--auth", "md5:netns-hsrp",
                *extra]  # fmt: skip
        self.proc = self.host.popen(argv, stderr=open(str(self.file) + ".log", "w"))  # noqa: SIM115

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None

    def doc(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def state(self) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        d = self.doc()
        return d["standby"][0]["state"] if d else None

    def changed_to(self, state: str, after: float) -> float | None:
        d = self.doc()
        for c in d["changes"] if d else []:
            if c["new"] == state and c["t_mono"] >= after:
                return float(c["t_mono"])
        return None


def wait(pred: Any, timeout: float, what: str) -> float:
    """Wait for ``pred``; the monotonic time it became true."""
    t: float = wait_for(lambda: time.monotonic() if pred() else None, timeout, what, 0.01)
    return t


def lan(topo: Topology, tmp: Path) -> tuple[list[Router], Host, Any]:
    br = topo.bridge("lan")
    routers = []
    for i in range(3):
        h = topo.host(f"r{i}")
        ln = topo.link(h, br, f"10.77.0.{i + 2}/24")
        routers.append(Router(h, ln, f"10.77.0.{i + 2}", tmp))
    host = topo.host("h")
    topo.link(host, br, "10.77.0.100/24")
    return routers, host, br


def states(rs: list[Router]) -> list[str | None]:
    return [r.state() for r in rs]


def neigh_mac(host: Host) -> str | None:
    for e in json.loads(host.ip("-j", "neigh", "show", VIP) or "[]"):
        if "lladdr" in e:
            return str(e["lladdr"])
    return None


def decode_capture(path: str) -> list[dict[str, str]]:
    fields = ["frame.time_epoch", "eth.src", "arp.opcode", "arp.src.proto_ipv4",
              "arp.dst.proto_ipv4", "arp.src.hw_mac", "ip.src", "hsrp.opcode", "hsrp2.opcode",
              "hsrp.state", "hsrp2.state"]  # fmt: skip
    argv = ["tshark", "-r", path, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    return [dict(zip(fields, ln.split("|"))) for ln in out.splitlines()]


def epoch(mono: float) -> float:
    """A time.monotonic() stamp on the wall clock tcpdump uses."""
    return time.time() - (time.monotonic() - mono)


def garps_from(
    pkts: list[dict[str, str]], mac: str, after: float = 0.0, before: float = float("inf")
) -> int:
    """Gratuitous ARPs for the VIP from ``mac`` between two wall-clock times."""
    return sum(
        1
        for p in pkts
        if p["arp.src.proto_ipv4"] == VIP
        and p["arp.dst.proto_ipv4"] == VIP
        and p["arp.src.hw_mac"] == mac
        and p["eth.src"] == mac
        and after <= float(p["frame.time_epoch"]) < before
    )


def test_election_kill9_failover_ping_and_preemption_coup(
    topology: Topology, tmp_path: Path
) -> None:
    rs, host, _ = lan(topology, tmp_path)
    cap = host.capture("eth0", str(tmp_path / "h.pcap"), "arp or udp port 1985")
    for r, prio in zip(rs, (100, 110, 120)):
        r.start(prio)
    # election: the highest (priority, IP) is Active, the next Standby, the last Listen
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 8, "election")
    assert host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0
    assert neigh_mac(host) == rs[2].mac
    snap = rs[1].doc()["standby"][0]  # type: ignore[index]
    assert snap["active_router"] == rs[2].addr and snap["standby_router"] == "local"

    # kill -9 the Active: the Standby is Active within hold + one hello
    t0 = time.monotonic()
    rs[2].kill9()
    wait(lambda: rs[1].changed_to("Active", t0) is not None, 3, "standby takeover")
    took = rs[1].changed_to("Active", t0) - t0  # type: ignore[operator]
    print(f"kill -9 -> Standby Active: {took * 1000:.0f} ms (limit {(HOLD + HELLO) * 1000:.0f})")
    assert took <= HOLD + HELLO + SLACK, took
    # the VIP answers pings from the new Active (the host's ARP entry moved to it)
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == rs[1].mac
    wait(lambda: states(rs)[:2] == ["Standby", "Active"], 3, "new standby")

    # the old Active returns with a higher priority and preemption: it takes over by Coup
    t1 = time.monotonic()
    rs[2].start(130)
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 8, "preemption")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    wait(lambda: neigh_mac(host) == rs[2].mac, 2, "ARP entry moved back")
    time.sleep(0.3)
    cap.stop()
    pkts = decode_capture(cap.path)
    t1_epoch = epoch(t1)
    coups = [p for p in pkts if p["hsrp2.opcode"] == "1" and p["ip.src"] == rs[2].addr
             and float(p["frame.time_epoch"]) >= t1_epoch - 0.05]  # fmt: skip
    assert coups, "no Coup from the preempting router"
    resigns = [p for p in pkts if p["hsrp2.opcode"] == "2" and p["ip.src"] == rs[1].addr]
    assert resigns, "the preempted router did not Resign"
    # a gratuitous ARP at every takeover: r2 first, r1 after the kill, r2 again
    t0e, t1e = epoch(t0), epoch(t1)
    assert garps_from(pkts, rs[2].mac, before=t0e) >= 1
    assert garps_from(pkts, rs[1].mac, after=t0e, before=t1e) >= 1
    assert garps_from(pkts, rs[2].mac, after=t1e) >= 1


def test_link_cut_and_restore_one_active_within_two_hellos(
    topology: Topology, tmp_path: Path
) -> None:
    rs, host, br = lan(topology, tmp_path)
    cap = host.capture("eth0", str(tmp_path / "h.pcap"), "arp")
    for r, prio in zip(rs, (100, 110, 120)):
        r.start(prio)
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 8, "election")
    port = rs[2].link.b_if
    t0 = time.monotonic()
    # cut beyond r2's own interface (its carrier stays up; a carrier loss on eth0 is event b,
    # tests/netns/test_hsrp_link_down.py): the port leaves the bridge
    br.ip("link", "set", port, "nomaster")
    wait(lambda: rs[1].changed_to("Active", t0) is not None, 3, "takeover on the other side")
    assert rs[2].state() == "Active"  # the cut-off router still thinks it is Active
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == rs[1].mac
    time.sleep(3 * HOLD)
    # restore: the two Actives hear each other; the lower steps down (event g: AB/Speak)
    t1 = time.monotonic()
    br.ip("link", "set", port, "master", br.dev)
    wait(lambda: rs[1].changed_to("Speak", t1) is not None, 3, "one Active again")
    took = rs[1].changed_to("Speak", t1) - t1  # type: ignore[operator]
    print(f"link restored -> one Active: {took * 1000:.0f} ms (limit {2 * HELLO * 1000:.0f})")
    assert took <= 2 * HELLO, took
    assert states(rs).count("Active") == 1 and rs[2].state() == "Active"
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 5, "settled")
    time.sleep(0.2)
    cap.stop()
    pkts = decode_capture(cap.path)
    assert garps_from(pkts, rs[2].mac, before=epoch(t0)) >= 1  # first election
    assert garps_from(pkts, rs[1].mac, after=epoch(t0), before=epoch(t1)) >= 1  # cut


def test_not_ready_standby_waits_then_takes_over(topology: Topology, tmp_path: Path) -> None:
    rs, host, _ = lan(topology, tmp_path)
    ready = tmp_path / "ready"
    rs[2].start(120)
    rs[1].start(110, "--ready-file", str(ready))
    wait(lambda: states(rs)[1:] == ["Standby", "Active"], 8, "election")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    rs[2].kill9()
    time.sleep(3 * HOLD)
    assert rs[1].state() == "Standby"  # not ready: holds the role back
    assert VIP not in rs[1].host.ip("addr")
    t0 = time.monotonic()
    ready.touch()
    wait(lambda: rs[1].state() == "Active", 2, "ready takeover")
    assert time.monotonic() - t0 < 0.5
    wait(lambda: VIP in rs[1].host.ip("addr"), 2, "VIP on the new Active")
    wait(lambda: neigh_mac(host) == rs[1].mac, 2, "host ARP entry moved by the gratuitous ARP")
    assert host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0


def test_macvlan_virtual_mac_and_resign_on_sigterm(topology: Topology, tmp_path: Path) -> None:
    rs, host, _ = lan(topology, tmp_path)
    vmac = w.mac_str(w.virtual_mac(1, 2))
    cap = host.capture("eth0", str(tmp_path / "h.pcap"), "arp or udp port 1985")
    rs[1].start(110, "--macvlan")
    rs[2].start(120, "--macvlan")
    wait(lambda: states(rs)[1:] == ["Standby", "Active"], 8, "election")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == vmac, neigh_mac(
        host
    )  # hosts resolve the VIP to the group's virtual MAC
    assert rs[2].host.run("sysctl -n net.ipv4.conf.all.arp_ignore").stdout.strip() == "1"
    # SIGTERM: Resign, the Standby takes over at once, the macvlan and VIP are gone
    t0 = time.monotonic()
    assert rs[2].proc is not None
    os.killpg(rs[2].proc.pid, signal.SIGTERM)
    rs[2].proc.wait(5)
    wait(lambda: rs[1].changed_to("Active", t0) is not None, 2, "takeover after Resign")
    assert rs[1].changed_to("Active", t0) - t0 < HOLD  # type: ignore[operator]
    assert "hsrp2g1" not in rs[2].host.ip("link")
    assert VIP not in rs[2].host.ip("addr")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == vmac
    time.sleep(0.2)
    cap.stop()
    pkts = decode_capture(cap.path)
    assert garps_from(pkts, vmac) >= 2
    assert any(p["hsrp2.opcode"] == "2" and p["ip.src"] == rs[2].addr for p in pkts)
    # RFC 2281 §6.1: Hellos of the Active come from the virtual MAC, the others' from their own
    active = [p for p in pkts if p["hsrp2.opcode"] == "0" and p["hsrp2.state"] == "6"]
    others = [p for p in pkts if p["hsrp2.opcode"] == "0" and p["hsrp2.state"] not in ("", "6")]
    assert active and all(p["eth.src"] == vmac for p in active)
    assert {p["ip.src"] for p in active} == {rs[1].addr, rs[2].addr}  # before and after
    assert others and all(p["eth.src"] in (rs[1].mac, rs[2].mac) for p in others)


def test_unicast_peers_extension_without_multicast(topology: Topology, tmp_path: Path) -> None:
    """Extension: with --peer, routers elect over unicast where multicast is dropped."""
    rs, host, _ = lan(topology, tmp_path)
    for r in rs[1:]:
        r.host.nft(
            "table inet nomc {\n chain in {\n  type filter hook input priority 0;\n"
            f"  ip daddr {w.MCAST_V2} udp dport 1985 drop\n }}\n}}\n"
        )
    rs[1].start(110, "--peer", rs[2].addr)
    rs[2].start(120, "--peer", rs[1].addr)
    wait(lambda: states(rs)[1:] == ["Standby", "Active"], 8, "election over unicast")
    d = rs[1].doc()
    assert d is not None and d["standby"][0]["active_router"] == rs[2].addr
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")


def test_interface_tracking_lowers_priority_and_peer_preempts(
    topology: Topology, tmp_path: Path
) -> None:
    rs, _host, _ = lan(topology, tmp_path)
    up = topology.host("up")  # r2's "uplink", tracked
    ln = topology.link(rs[2].host, up, "10.78.0.1/30", "10.78.0.2/30")
    rs[1].start(110)
    rs[2].start(120, "--track", f"{ln.a_if}:30")
    wait(lambda: states(rs)[1:] == ["Standby", "Active"], 8, "election")
    t0 = time.monotonic()
    up.ip("link", "set", ln.b_if, "down")  # r2's uplink loses carrier: 120 - 30 = 90 < 110
    wait(lambda: states(rs)[1:] == ["Active", "Speak"] or states(rs)[1:] == ["Active", "Standby"],
         3, "r1 preempts the tracked-down r2")  # fmt: skip
    d = rs[2].doc()
    assert d is not None and d["standby"][0]["priority"] == 90
    assert d["standby"][0]["tracked"][0]["state"] == "Down"
    assert time.monotonic() - t0 < 0.5 + 2 * HELLO + SLACK  # one poll (0.5 s) + a hello
    up.ip("link", "set", ln.b_if, "up")  # back to 120: r2 preempts again
    wait(lambda: states(rs)[1:] == ["Standby", "Active"], 3, "r2 back")
