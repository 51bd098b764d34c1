"""Data-plane throughput: userspace tunnel vs plain routed forwarding, same namespaces and run.

    python bench/dataplane.py [--seconds 3] [--repeat 3]

Paths (both cross cn -> r -> ha -> r -> fa -> mn):
  routed   : kernel forwarding everywhere (policy routing at r sends cn's traffic to
             10.4.0.2 via the HA, which routes it back to r and on to the FA and the MN);
  tunnel   : cn -> r -> ha, userspace data plane encapsulates (IP-in-IP) to the CoA,
             r -> fa, userspace data plane decapsulates -> mn's home address 10.99.0.5;
  ha-only  : as tunnel, but the FA runs no data plane: a counting raw socket on the FA
             sinks the tunnelled packets, so this is the HA's encapsulation rate alone
             (the load is a Python UDP sender, as iperf3 needs a return path).
Load: iperf3 UDP at an unlimited rate (-b 0) with 64- and 1400-byte payloads; the rate is
what the receiver got (packets - lost) / time. Needs root; the machine has 2 cores shared
by generator, forwarders and receiver, so the figures are lower bounds for one core each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

from mobileha.lab.dataplane import COA, HA, HOA, Lab, build
from mobileha.lab.netns import Topology, netns_available

MN_NATIVE = "10.4.0.2"
SINK = r"""
import socket, sys, time, select
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
print("ready", flush=True)
n = 0; b = 0; t0 = None; t1 = None
s.settimeout(2.0)
try:
    while True:
        d = s.recv(65536)
        if t0 is None:
            t0 = time.monotonic()
        t1 = time.monotonic(); n += 1; b += len(d) - 40
except socket.timeout:
    pass
print(n, b, (t1 or 0) - (t0 or 0), flush=True)
"""


BLAST = r"""
import socket, sys, time
dst, size, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
msg = bytes(size); a = (dst, 9); send = s.sendto; end = time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(256):
        try:
            send(msg, a)
        except OSError:
            pass
"""


def iperf(lab: Lab, dst: str, size: int, seconds: float) -> tuple[float, float]:
    """(packets/s, Mbit/s of payload) received at the MN."""
    srv = lab.mn.popen(["iperf3", "-s", "-1", "-B", dst, "-p", "5201"])
    time.sleep(0.3)
    r = lab.cn.run(
        ["iperf3", "-u", "-c", dst, "-p", "5201", "-b", "0", "-l", str(size), "-t", str(seconds),
         "-J"],
        check=False,
        timeout=seconds + 30,
    )  # fmt: skip
    srv.wait(timeout=10)
    res: dict[str, Any] = json.loads(r.stdout)
    s = res["end"]["sum"]
    got = s["packets"] - s["lost_packets"]
    secs = s["seconds"]
    return got / secs, got * size * 8 / secs / 1e6


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tunnel_run(lab: Lab, size: int, seconds: float) -> tuple[float, float, float, float]:
    """iperf3 through the tunnel, plus the CPU cost per packet of the HA and FA processes:
    (pps, Mbit/s, HA µs/packet, FA µs/packet)."""
    assert lab.ha_dp is not None and lab.fa_dp is not None
    ha_pid, fa_pid = lab.ha_dp.proc.pid, lab.fa_dp.proc.pid
    c0 = (cpu_seconds(ha_pid), cpu_seconds(fa_pid))
    p0 = lab.ha_dp.stats()["tunnels"][0]["tx_pkts"], lab.fa_dp.stats()["tunnels"][0]["rx_pkts"]
    pps, mbit = iperf(lab, HOA, size, seconds)
    c1 = (cpu_seconds(ha_pid), cpu_seconds(fa_pid))
    p1 = lab.ha_dp.stats()["tunnels"][0]["tx_pkts"], lab.fa_dp.stats()["tunnels"][0]["rx_pkts"]
    ha_us = (c1[0] - c0[0]) / max(1, p1[0] - p0[0]) * 1e6
    fa_us = (c1[1] - c0[1]) / max(1, p1[1] - p0[1]) * 1e6
    return pps, mbit, ha_us, fa_us


def sink_rate(lab: Lab, size: int, seconds: float) -> tuple[float, float]:
    """HA encapsulation alone: packets/s and Mbit/s reaching a raw socket on the FA."""
    import subprocess

    sink = lab.fa.popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE)
    assert sink.stdout is not None
    sink.stdout.readline()
    lab.cn.run([sys.executable, "-c", BLAST, HOA, str(size), str(seconds)], timeout=seconds + 30)
    n, _b, dt = sink.stdout.readline().split()
    sink.wait(timeout=10)
    dtf = float(dt) or 1.0
    return int(n) / dtf, int(n) * size * 8 / dtf / 1e6


def median_pair(v: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ok, reason = netns_available()
    if not ok:
        print(f"skip: {reason}")
        return 0
    with Topology(prefix="mhb") as topo:
        lab = build(topo)
        # Native path for the baseline: cn -> r -> ha -> r -> fa -> mn (10.4.0.2).
        lab.mn.addr(lab.mn_if, f"{MN_NATIVE}/24")
        lab.r.ip("route", "add", "10.4.0.0/24", "via", HA, "table", "200")
        lab.r.ip("rule", "add", "iif", lab.r_cn_if, "to", "10.4.0.0/24", "lookup", "200")
        lab.r.route("10.4.0.0/24", via=COA)
        lab.ha.route("10.4.0.0/24", via="10.2.0.1")
        lab.start_dataplanes()
        assert lab.fa_dp is not None and lab.ha_dp is not None
        lab.register(lab.binding("ipip"))
        # Routed and tunnelled runs alternate, so both see the same background load; medians.
        runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
        costs: dict[int, list[tuple[float, float]]] = {64: [], 1400: []}
        for _ in range(args.repeat):
            for size in (64, 1400):
                runs.setdefault((size, "routed"), []).append(
                    iperf(lab, MN_NATIVE, size, args.seconds)
                )
                pps, mbit, ha_us, fa_us = tunnel_run(lab, size, args.seconds)
                runs.setdefault((size, "tunnel"), []).append((pps, mbit))
                costs[size].append((ha_us, fa_us))
        lab.fa_dp.quit()
        lab.fa_dp = None
        for _ in range(args.repeat):
            for size in (64, 1400):
                runs.setdefault((size, "ha-only"), []).append(sink_rate(lab, size, args.seconds))
        results = {k: median_pair(v) for k, v in runs.items()}
        cost = {k: median_pair(v) for k, v in costs.items()}
        print(f"medians of {args.repeat} run(s) of {args.seconds:g} s each")
        print(f"{'payload':>8} {'path':>8} {'pps':>10} {'Mbit/s':>9} {'ratio':>7}")
        for size in (64, 1400):
            base = results[(size, "routed")]
            for path in ("routed", "tunnel", "ha-only"):
                pps, mbit = results[(size, path)]
                print(f"{size:>8} {path:>8} {pps:>10,.0f} {mbit:>9,.1f} {pps / base[0]:>7.2f}")
        print()
        print("CPU per packet of the userspace forwarders (whole process, all syscalls included)")
        print(f"{'payload':>8} {'HA us/pkt':>10} {'HA pps/core':>12} {'HA Mbit/s/core':>15}"
              f" {'FA us/pkt':>10} {'FA pps/core':>12}")  # fmt: skip
        for size in (64, 1400):
            ha_us, fa_us = cost[size]
            print(
                f"{size:>8} {ha_us:>10.2f} {1e6 / ha_us:>12,.0f} "
                f"{1e6 / ha_us * size * 8 / 1e6:>15,.0f} {fa_us:>10.2f} {1e6 / fa_us:>12,.0f}"
            )
        print("target (one core): >= 100,000 pps and >= 1,000 Mbit/s at 1400 B through the tunnel")
        lab.ha_dp.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
