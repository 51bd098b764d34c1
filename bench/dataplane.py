"""Data-plane throughput: routed forwarding and every backend, same namespaces, same run.

    python bench/dataplane.py [--seconds 2] [--repeat 3] [--backends ebpf,userspace,kernel]

Every path crosses cn -> r -> ha -> r -> fa -> mn:
  routed          kernel forwarding everywhere (policy routing at r sends cn's traffic for
                  the MN's native address 10.4.0.2 through the HA, which routes it back to r
                  and on to the FA and the MN): the baseline;
  <backend> <enc> the HA's data plane encapsulates (IP-in-IP, or GRE with a key) to the
                  care-of address, the FA's decapsulates to the MN's home address 10.99.0.5.
Load: UDP datagrams of 64 and 1,400 bytes from a C generator (``bench/udpgen.c``, sendmmsg,
built here with ``cc -O2``) pinned to one core, so the generator is not the bottleneck; the
rate is what reaches the MN's interface (its rx_packets) per second. TCP: one iperf3 stream
CN -> MN, Mbit/s received. Routed runs are measured with no data plane running, alternating
with the backends, and every figure is a median of ``--repeat`` runs. Targets: ebpf
>= 0.8x routed packets/s at 64 B and at 1,400 B, and TCP >= 0.7x routed.

Needs root (namespaces) and a C compiler; a backend that cannot run here is reported with
its reason. The machine's cores are shared by generator, forwarders and receiver: take
figures from a quiet machine. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mobileha.lab.dataplane import COA, HA, HOA, Lab, build
from mobileha.lab.netns import Host, Topology, netns_available

MN_NATIVE = "10.4.0.2"
GEN_SRC = Path(__file__).with_name("udpgen.c")
PORT = 9
SIZES = (64, 1400)
ENCAPS = (("ipip", None), ("gre", 0x1234))
SINK = r"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9))  # bound, never read: datagrams are dropped without ICMP
print("ready", flush=True)
time.sleep(1e6)
"""


def build_generator(workdir: Path) -> Path | str:
    """Compile the generator; its path, or why it cannot be built."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return "no C compiler (cc/gcc/clang)"
    out = workdir / "udpgen"
    r = subprocess.run([cc, "-O2", "-o", str(out), str(GEN_SRC)], capture_output=True, text=True)
    return out if r.returncode == 0 else f"cc failed: {r.stderr.strip()[-300:]}"


def rx_packets(h: Host, ifname: str) -> int:
    link = json.loads(h.run(["ip", "-j", "-s", "link", "show", "dev", ifname]).stdout)[0]
    return int(link["stats64"]["rx"]["packets"])


def udp_pps(lab: Lab, gen: Path, dst: str, size: int, seconds: float) -> float:
    """Datagrams per second reaching the MN's interface while the generator runs."""
    before = rx_packets(lab.mn, lab.mn_if)
    r = lab.cn.run(
        ["taskset", "-c", "0", str(gen), dst, str(PORT), str(size), str(seconds)],
        timeout=seconds + 30,
    )
    time.sleep(0.2)  # the last packets in flight
    after = rx_packets(lab.mn, lab.mn_if)
    _sent, secs = r.stdout.split()
    return (after - before) / float(secs)


def tcp_mbit(lab: Lab, dst: str, seconds: float) -> float:
    srv = lab.mn.popen(["iperf3", "-s", "-1", "-B", dst, "-p", "5201"])
    try:
        time.sleep(0.3)
        r = lab.cn.run(
            ["iperf3", "-c", dst, "-p", "5201", "-t", str(seconds), "-J"],
            check=False,
            timeout=seconds + 30,
        )
        srv.wait(timeout=10)
    finally:
        if srv.poll() is None:
            srv.kill()
    res: dict[str, Any] = json.loads(r.stdout)
    return float(res["end"]["sum_received"]["bits_per_second"]) / 1e6


def measure(lab: Lab, gen: Path, dst: str, seconds: float) -> dict[str, float]:
    out = {f"{s}B_pps": udp_pps(lab, gen, dst, s, seconds) for s in SIZES}
    out["tcp_mbit"] = tcp_mbit(lab, dst, seconds)
    return out


def setup(topo: Topology) -> Lab:
    lab = build(topo)
    # native path for the baseline: cn -> r -> ha -> r -> fa -> mn (10.4.0.2)
    lab.mn.addr(lab.mn_if, f"{MN_NATIVE}/24")
    lab.r.ip("route", "add", "10.4.0.0/24", "via", HA, "table", "200")
    lab.r.ip("rule", "add", "iif", lab.r_cn_if, "to", "10.4.0.0/24", "lookup", "200")
    lab.r.route("10.4.0.0/24", via=COA)
    lab.ha.route("10.4.0.0/24", via="10.2.0.1")
    return lab


def run(args: argparse.Namespace, gen: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {}
    skipped: dict[str, str] = {}
    with Topology(prefix="mhb") as topo:
        lab = setup(topo)
        sink = lab.mn.popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE)
        assert sink.stdout is not None
        sink.stdout.readline()
        for _ in range(args.repeat):
            runs.setdefault("routed", []).append(measure(lab, gen, MN_NATIVE, args.seconds))
            for kind in args.backends.split(","):
                if kind in skipped:
                    continue
                try:
                    lab.start_dataplanes(kind)
                except RuntimeError as e:
                    skipped[kind] = str(e).split("cannot start: ", 1)[-1]
                    continue
                try:
                    for enc, key in ENCAPS:
                        b = lab.binding(enc, gre_key=key)
                        lab.register(b)
                        runs.setdefault(f"{kind} {enc}", []).append(
                            measure(lab, gen, HOA, args.seconds)
                        )
                        lab.deregister(b)
                finally:
                    for d in (lab.ha_dp, lab.fa_dp):
                        if d is not None:
                            d.quit()
                    lab.ha_dp = lab.fa_dp = None
        sink.kill()
    medians = {
        path: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for path, rs in runs.items()
    }
    return {"medians": medians, "skipped": skipped, "runs": runs}


def report(res: dict[str, Any], args: argparse.Namespace) -> None:
    med = res["medians"]
    base = med["routed"]
    print(f"medians of {args.repeat} run(s) of {args.seconds:g} s each; ratio = path / routed")
    print(f"{'path':<16} {'64 B pps':>11} {'ratio':>6} {'1400 B pps':>11} {'Mbit/s':>7} "
          f"{'ratio':>6} {'TCP Mbit/s':>11} {'ratio':>6}")  # fmt: skip
    for path, m in med.items():
        p64, p1400, tcp = m["64B_pps"], m["1400B_pps"], m["tcp_mbit"]
        print(
            f"{path:<16} {p64:>11,.0f} {p64 / base['64B_pps']:>6.2f} {p1400:>11,.0f} "
            f"{p1400 * 1400 * 8 / 1e6:>7,.0f} {p1400 / base['1400B_pps']:>6.2f} "
            f"{tcp:>11,.0f} {tcp / base['tcp_mbit']:>6.2f}"
        )
    for kind, why in res["skipped"].items():
        print(f"{kind:<16} skipped: {why}")
    for enc, _key in ENCAPS:
        m = med.get(f"ebpf {enc}")
        if m is None:
            continue
        checks = [
            ("64 B", m["64B_pps"] / base["64B_pps"], 0.8),
            ("1400 B", m["1400B_pps"] / base["1400B_pps"], 0.8),
            ("TCP", m["tcp_mbit"] / base["tcp_mbit"], 0.7),
        ]
        line = ", ".join(f"{what} {r:.2f}x {'>=' if r >= t else '<'} {t}x" for what, r, t in checks)
        print(f"target ebpf {enc}: {line}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="ebpf,userspace,kernel")
    args = ap.parse_args()
    ok, reason = netns_available()
    if not ok:
        print(f"skip: {reason}")
        return 0
    for tool in ("iperf3", "taskset"):
        if shutil.which(tool) is None:
            print(f"skip: {tool} not installed")
            return 0
    with tempfile.TemporaryDirectory() as tmp:
        gen = build_generator(Path(tmp))
        if isinstance(gen, str):
            print(f"skip: {gen}")
            return 0
        res = run(args, gen)
    report(res, args)
    print(json.dumps({"medians": res["medians"], "skipped": res["skipped"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
