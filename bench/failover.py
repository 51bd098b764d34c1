"""HSRP failover time vs keepalived VRRP, measured in the same namespaces in the same run.

Topology: two routers and a host on one bridge (network namespaces, root needed). The host's
ARP entry for the virtual IP points at the Active router; then the Active is killed with
SIGKILL and a prober in the host sends ICMP echo requests to the VIP every 2 ms and watches
the replies' Ethernet source. The failover time is from the kill to the first echo reply that
comes from the new Active's MAC (the killed router's kernel still holds the VIP and answers
until the host's ARP entry is moved by the new Active's gratuitous ARP, for both daemons).

* ours: ``python -m mobileha.node.hsrp`` version 2, hello 100 ms, hold 300 ms, preempt;
* baseline: keepalived (Debian package) VRRPv3, advert_int 0.1, same priorities, preempt.

20 trials each (``--trials``); prints p50 and p95 of both, the ratios ours / keepalived, and
whether the target (our p95 <= keepalived's p95) is met; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mobileha.lab.netns import Host, Topology, netns_available

VIP = "10.88.0.1"
PY = sys.executable

PROBER = r"""
import os, socket, struct, sys, time
vip, mac, timeout = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), float(sys.argv[3])
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.setblocking(False)
pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
pk.bind(("eth0", 0))
pk.settimeout(0.001)
ident, vipb = os.getpid() & 0xFFFF, socket.inet_aton(vip)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
def echo(seq):
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF) + b"x" * 16
    h = h[:2] + struct.pack("!H", csum(h)) + h[4:]
    try:
        icmp.sendto(h, (vip, 0))
    except OSError:
        pass
print("ready", flush=True)
seq, nxt, end = 0, 0.0, time.monotonic() + timeout
while time.monotonic() < end:
    now = time.monotonic()
    if now >= nxt:
        seq += 1; echo(seq); nxt = now + 0.002
    try:
        f = pk.recv(2048)
    except (socket.timeout, BlockingIOError):
        continue
    t = time.monotonic()
    if f[6:12] == mac and f[23] == 1 and f[26:30] == vipb and f[34] == 0:
        print(f"{t:.6f}", flush=True)
        sys.exit(0)
print("timeout", flush=True)
"""


def mac_of(h: Host) -> str:
    return str(json.loads(h.ip("-j", "link", "show", "eth0"))[0]["address"])


def neigh(h: Host) -> str | None:
    for e in json.loads(h.ip("-j", "neigh", "show", VIP) or "[]"):
        if "lladdr" in e:
            return str(e["lladdr"])
    return None


def wait(pred: object, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


class Daemon:
    """One router daemon (ours or keepalived) in a namespace."""

    def __init__(self, kind: str, host: Host, prio: int, tmp: Path) -> None:
        self.kind, self.host, self.prio, self.tmp = kind, host, prio, tmp
        self.proc: subprocess.Popen[str] | None = None
        self.state_file = tmp / f"{kind}-{host.name}.json"

    def start(self) -> None:
        # a VIP left by the SIGKILLed predecessor (ours also removes it itself)
        self.host.ip("addr", "del", f"{VIP}/32", "dev", "eth0", check=False)
        if self.kind == "hsrp":
            argv = [PY, "-m", "mobileha.node.hsrp", "-i", "eth0", "--group", "1", "--vip", VIP,
                    "--version", "2", "--priority", str(self.prio), "--preempt",
                    "--hello-ms", "100", "--hold-ms", "300", "--uvloop", "--auth", "md5:bench",
                    "--mgmt-json-file", str(self.state_file)]  # fmt: skip
        else:
            conf = self.tmp / f"keepalived-{self.host.name}.conf"
            conf.write_text(
                f"global_defs {{\n  router_id {self.host.name}\n  vrrp_version 3\n"
                "  vrrp_garp_master_delay 1\n  script_user root\n  enable_script_security\n}\n"
                "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n"
                f"  virtual_router_id 51\n  priority {self.prio}\n  advert_int 0.1\n"
                f"  virtual_ipaddress {{\n    {VIP}/32 dev eth0\n  }}\n}}\n"
            )
            pid, vpid = self.tmp / f"k-{self.host.name}.pid", self.tmp / f"kv-{self.host.name}.pid"
            for p in (pid, vpid):  # stale pid files stop keepalived from starting
                p.unlink(missing_ok=True)
            argv = ["keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", str(conf),
                    "-p", str(pid), "-r", str(vpid)]  # fmt: skip
        log = self.tmp / f"{self.kind}-{self.host.name}.log"
        with log.open("a") as err:  # the child keeps its own copy of the descriptor
            self.proc = self.host.popen(argv, stderr=err)

    def is_master(self) -> bool:
        if self.kind == "hsrp":
            try:
                d = json.loads(self.state_file.read_text())
                return bool(d["standby"][0]["state"] == "Active")
            except (OSError, ValueError, KeyError, IndexError):
                return False
        return self.has_vip()  # keepalived adds the VIP exactly when it is MASTER

    def has_vip(self) -> bool:
        return VIP in self.host.ip("-4", "addr", "show", "eth0")

    def kill9(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


def trials(kind: str, topo: Topology, n: int, tmp: Path) -> list[float]:
    r1, r2, host = topo.hosts["r1"], topo.hosts["r2"], topo.hosts["h"]
    hi, lo = Daemon(kind, r1, 120, tmp), Daemon(kind, r2, 110, tmp)
    mac1, mac2 = mac_of(r1), mac_of(r2)
    lo.start()
    out: list[float] = []
    try:
        for i in range(n):
            hi.start()
            ok = wait(lambda: hi.is_master() and hi.has_vip() and not lo.has_vip(), 15)
            if not ok:
                raise RuntimeError(f"{kind}: r1 did not become master (trial {i})")
            host.run(f"ping -c1 -W1 {VIP}", check=False)
            if not wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0
                        and neigh(host) == mac1, 10):  # fmt: skip
                raise RuntimeError(f"{kind}: host does not reach r1 (trial {i})")
            time.sleep(0.3 + random.random() * 0.2)  # settle; random phase against adverts
            prober = host.popen([PY, "-c", PROBER, VIP, mac2, "5"], stdout=subprocess.PIPE)
            assert prober.stdout is not None
            if prober.stdout.readline().strip() != "ready":
                raise RuntimeError("prober did not start")
            time.sleep(0.05)
            t_kill = time.monotonic()
            hi.kill9()
            line = prober.stdout.readline().strip()
            prober.wait(10)
            if line == "timeout" or not line:
                raise RuntimeError(f"{kind}: the VIP never answered from the new master")
            out.append(float(line) - t_kill)
            print(f"  {kind} trial {i + 1:2d}: {out[-1] * 1000:6.1f} ms", flush=True)
            wait(lambda: lo.is_master(), 5)
    finally:
        hi.stop()
        lo.stop()
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    f = int(k)
    c = min(f + 1, len(s) - 1)
    return s[f] + (s[c] - s[f]) * (k - f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    ok, reason = netns_available()
    if not ok:
        print(f"SKIP: {reason}")
        return 0
    if shutil.which("keepalived") is None:
        print("SKIP: keepalived not installed (apt-get install keepalived)")
        return 0
    with tempfile.TemporaryDirectory(prefix="mh-failover-") as d, Topology("mhfo") as topo:
        tmp = Path(d)
        br = topo.bridge("lan")
        for i, name in enumerate(("r1", "r2", "h")):
            h = topo.host(name)
            topo.link(h, br, f"10.88.0.{i + 2 if name != 'h' else 100}/24")
        print(f"HSRP (ours, v2, hello 100 ms / hold 300 ms), {args.trials} trials:")
        ours = trials("hsrp", topo, args.trials, tmp)
        print(f"keepalived VRRPv3 (advert_int 0.1), {args.trials} trials:")
        base = trials("keepalived", topo, args.trials, tmp)
    o50, o95, b50, b95 = pct(ours, 0.5), pct(ours, 0.95), pct(base, 0.5), pct(base, 0.95)
    print()
    print(f"{'kill -9 -> VIP answers from new active':40s} {'p50 ms':>8s} {'p95 ms':>8s}")
    print(f"{'mobileha HSRP':40s} {o50 * 1000:8.1f} {o95 * 1000:8.1f}")
    print(f"{'keepalived VRRP (baseline)':40s} {b50 * 1000:8.1f} {b95 * 1000:8.1f}")
    print(f"ratio ours/keepalived: p50 {o50 / b50:.2f}  p95 {o95 / b95:.2f}  "
          f"(target p95 <= 1.00: {'met' if o95 <= b95 else 'NOT met'})")  # fmt: skip
    print(json.dumps({
        "bench": "failover", "trials": args.trials,
        "hsrp_p50_ms": round(o50 * 1000, 1), "hsrp_p95_ms": round(o95 * 1000, 1),
        "keepalived_p50_ms": round(b50 * 1000, 1), "keepalived_p95_ms": round(b95 * 1000, 1),
        "ratio_p50": round(o50 / b50, 3), "ratio_p95": round(o95 / b95, 3),
        "hsrp_mean_ms": round(statistics.mean(ours) * 1000, 1),
        "keepalived_mean_ms": round(statistics.mean(base) * 1000, 1),
        "target_met": o95 <= b95,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
