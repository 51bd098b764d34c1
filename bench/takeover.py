"""Data plane on takeover: install every binding when HSRP says Active (what the home agent
does) vs keep them pre-installed on the standby. Issue 7: "on takeover it installs data-plane
state for all bindings (or keeps it pre-installed: measure both and choose)".

For N = 10,000 and 100,000 bindings held by a standby home agent (synced, core inactive):

* ``install at takeover``: what ``HomeAgentNode`` runs on HSRP Active - the core's
  RestoreBinding for every binding, each installed in the data plane - until all N are
  forwarding (the installs are synchronous: when the call returns, every lookup hits);
* ``pre-installed``: the same takeover with the data plane already holding all N (the node
  skips the installs): only the core's activation and the action walk remain;
* the standby's price of pre-installing: install time per synced change (paid on every BU
  and bulk download record, on the standby's one thread) and the memory of the data plane
  state (tracemalloc), held all the time;
* the table alone: the data plane's own share, the N bindings written with the backend's
  bulk path (``install_many``: ebpf) or one by one (the others).

Backends: ``memory`` (userspace-independent, always), ``userspace`` (TUN + raw sockets,
root and /dev/net/tun) and ``ebpf`` (BPF maps: the takeover writes the whole table with one
``BPF_MAP_UPDATE_BATCH`` per map, ``install_many``; root and the built BPF object). The
last two run inside a network namespace created and deleted here, so the home-prefix route
and the programs never touch the host. Prints both modes next to each other with the ratio,
and for ebpf the kernel memory of the maps (memlock); the last line is one JSON object.

    .venv/bin/python bench/takeover.py [--sizes 100000,1000000] [--backends memory,userspace,ebpf]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from typing import Any

from mobileha import compose
from mobileha.config import loads_config
from mobileha.core.binding import FLAG_T, Binding, Encap
from mobileha.core.cluster import AgentSpec, Cluster
from mobileha.dataplane.registry import create
from mobileha.node.home_agent import HomeAgentNode

VIP = "10.255.255.254"
CONFIG = f"""
[node]
role = "home-agent"
name = "bench"
[management]
enabled = false
[home_agent]
address = "127.0.0.1"
ha_address = "{VIP}"
port = 434
home_prefix = "10.0.0.0/8"
max_bindings = 2000000
[dataplane]
backend = "memory"
"""


def binding(i: int, now: float) -> Binding:
    return Binding(
        home_addr=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        care_of=f"192.0.{2 + (i & 3)}.1",
        ha_addr=VIP,
        lifetime=36000,
        expires=now + 36000,
        ident=0xE6B5A4C000000000 + i,
        flags=FLAG_T,
        encap=Encap.GRE if i & 1 else Encap.IPIP,
        gre_key=i if i & 1 else None,
        nai=f"mn{i:07d}@example.net",
        src_addr=f"192.0.{2 + (i & 3)}.1",
    )


def new_dp(kind: str, n: int) -> Any:
    if kind == "memory":
        return create("memory", role="ha")
    name = f"tk{os.getpid() % 100000}"
    if kind == "ebpf":
        return create("ebpf", role="ha", sink=name, home_prefix="10.0.0.0/8", capacity=n)
    return create("userspace", role="ha", tun_name=name, home_prefix="10.0.0.0/8")


def forwarding(dp: Any, kind: str, n: int) -> bool:
    """Every binding has forwarding state (the lookups the packet path does)."""
    if kind == "memory":
        return len(dp.tunnels) == n
    if kind == "ebpf":  # every home address in the kernel's map
        return len(dp._tunnels) == n and sum(1 for _ in dp.maps["mh_enc"].items()) == n
    return len(dp._tunnels) == n and len(dp._enc) == n


def kernel_mb(dp: Any) -> float:
    """Kernel memory charged to the ebpf backend's maps (``memlock`` of their fdinfo)."""
    total = 0
    for m in dp.maps.values():
        with open(f"/proc/self/fdinfo/{m.fd}") as f:
            for line in f:
                if line.startswith("memlock:"):
                    total += int(line.split()[1])
    return total / 1e6


def standby_node(n: int, dp: Any) -> HomeAgentNode:
    cfg = loads_config(CONFIG)
    core = compose.home_agent_core(cfg)
    core.active = False
    now = time.monotonic()
    for i in range(n):
        core.apply_synced(binding(i, now), now)
    return HomeAgentNode(Cluster([AgentSpec(core)]), name="bench", addresses=["127.0.0.1"],
                         dataplane=dp)  # fmt: skip


def takeover(node: HomeAgentNode) -> None:
    """What the node runs when HSRP says Active: the core's RestoreBinding for every
    binding, each installed in the data plane."""
    node.run_actions(node.core.set_active(True, time.monotonic()))


def measure(kind: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    # install at takeover
    dp = new_dp(kind, n)
    node = standby_node(n, dp)
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    takeover(node)
    t1 = time.perf_counter()
    gc.enable()
    assert forwarding(dp, kind, n), "not all bindings forwarding"
    assert node.dataplane_errors == 0
    out["install_at_takeover_ms"] = (t1 - t0) * 1000
    dp.close()
    # pre-installed: the standby installed every synced binding as it arrived
    dp = new_dp(kind, n)
    node = standby_node(n, None)  # the takeover skips the installs
    now = time.monotonic()
    bs = [binding(i, now) for i in range(n)]
    gc.collect()
    t0 = time.perf_counter()
    for b in bs:
        dp.install(b)
    t1 = time.perf_counter()
    out["standby_install_us_per_binding"] = (t1 - t0) / n * 1e6
    gc.collect()
    gc.disable()
    t2 = time.perf_counter()
    takeover(node)
    t3 = time.perf_counter()
    gc.enable()
    assert forwarding(dp, kind, n)
    out["preinstalled_takeover_ms"] = (t3 - t2) * 1000
    dp.close()
    # the table alone into the data plane: one batch per map where the backend has one
    dp = new_dp(kind, n)
    gc.collect()
    t0 = time.perf_counter()
    if hasattr(dp, "install_many"):
        dp.install_many(bs)
    else:
        for b in bs:
            dp.install(b)
    out["table_install_ms"] = (time.perf_counter() - t0) * 1000
    assert forwarding(dp, kind, n)
    dp.close()
    # memory the standby holds for the pre-installed state
    dp = new_dp(kind, n)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for b in bs:
        dp.install(b)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    out["standby_dataplane_MB"] = used / 1e6
    if kind == "ebpf":
        out["kernel_maps_MB"] = kernel_mb(dp)
    dp.close()
    return out


def worker(kind: str, sizes: list[int]) -> dict[str, Any]:
    return {str(n): measure(kind, n) for n in sizes}


def in_netns(kind: str, sizes: list[int]) -> dict[str, Any] | str:
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return "skipped: needs root and /dev/net/tun"
    if kind == "ebpf":
        from mobileha.dataplane.ebpf import probe

        if problem := probe():
            return f"skipped: {problem}"
    ns = f"mhtk-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, capture_output=True)
        r = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--worker", kind,
             "--sizes", ",".join(map(str, sizes))],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if r.returncode != 0:
            return f"failed: {r.stderr.strip()[-500:]}"
        result: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
        return result
    except (OSError, subprocess.SubprocessError) as e:
        return f"skipped: {e}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--backends", default="memory,userspace,ebpf")
    p.add_argument("--worker", choices=["memory", "userspace", "ebpf"])
    a = p.parse_args(argv)
    # SIGTERM (a stopped acceptance run) unwinds like Ctrl-C: the worker is killed and its
    # namespace deleted by in_netns's finally
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(x) for x in a.sizes.split(",")]
    if a.worker:
        print(json.dumps(worker(a.worker, sizes)))
        return 0
    results: dict[str, Any] = {}
    for kind in a.backends.split(","):
        results[kind] = worker(kind, sizes) if kind == "memory" else in_netns(kind, sizes)
    hdr = (
        f"{'backend':<10} {'N':>7} | {'install at takeover':>20} {'pre-installed':>14} "
        f"{'ratio':>6} | {'table alone':>11} | {'standby us/binding':>18} {'standby MB':>10} "
        f"{'kernel MB':>9}"
    )
    print(hdr)
    print("-" * len(hdr))
    for kind, res in results.items():
        if isinstance(res, str):
            print(f"{kind:<10} {res}")
            continue
        for n, r in res.items():
            ratio = r["install_at_takeover_ms"] / max(r["preinstalled_takeover_ms"], 1e-9)
            print(
                f"{kind:<10} {int(n):>7} | {r['install_at_takeover_ms']:>17.1f} ms "
                f"{r['preinstalled_takeover_ms']:>11.1f} ms {ratio:>5.1f}x | "
                f"{r['table_install_ms']:>8.0f} ms | "
                f"{r['standby_install_us_per_binding']:>18.2f} {r['standby_dataplane_MB']:>10.1f}"
                f" {r.get('kernel_maps_MB', 0):>9.1f}"
            )
    # the new Active's install of the whole table: ebpf (batched) next to userspace
    for n in map(str, sizes):
        u, e = results.get("userspace"), results.get("ebpf")
        if isinstance(u, dict) and isinstance(e, dict) and n in u and n in e:
            ut, et = u[n]["install_at_takeover_ms"], e[n]["install_at_takeover_ms"]
            ub, eb = u[n]["table_install_ms"], e[n]["table_install_ms"]
            print(f"takeover of {int(n):,} bindings: ebpf {et:.0f} ms, userspace {ut:.0f} ms"
                  f" ({et / ut:.2f}x); the table alone: ebpf {eb:.0f} ms in one batch per map,"
                  f" userspace {ub:.0f} ms ({eb / ub:.2f}x)")  # fmt: skip
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
