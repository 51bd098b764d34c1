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
  state (tracemalloc), held all the time.

Backends: ``memory`` (userspace-independent, always) and ``userspace`` (TUN + raw sockets,
root and /dev/net/tun; run inside a network namespace created and deleted here, so the
home-prefix route never touches the host). Prints both modes next to each other with the
ratio; the last line is one JSON object.

    .venv/bin/python bench/takeover.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
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


def new_dp(kind: str) -> Any:
    if kind == "memory":
        return create("memory", role="ha")
    return create(
        "userspace", role="ha", tun_name=f"tk{os.getpid() % 100000}", home_prefix="10.0.0.0/8"
    )


def forwarding(dp: Any, kind: str, n: int) -> bool:
    """Every binding has forwarding state (the lookups the packet path does)."""
    if kind == "memory":
        return len(dp.tunnels) == n
    return len(dp._tunnels) == n and len(dp._enc) == n


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
    dp = new_dp(kind)
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
    dp = new_dp(kind)
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
    # memory the standby holds for the pre-installed state
    dp = new_dp(kind)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for b in bs:
        dp.install(b)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    out["standby_dataplane_MB"] = used / 1e6
    dp.close()
    return out


def worker(kind: str, sizes: list[int]) -> dict[str, Any]:
    return {str(n): measure(kind, n) for n in sizes}


def userspace_in_netns(sizes: list[int]) -> dict[str, Any] | str:
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return "skipped: needs root and /dev/net/tun"
    ns = f"mhtk-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, capture_output=True)
        r = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--worker", "userspace",
             "--sizes", ",".join(map(str, sizes))],
            capture_output=True, text=True, timeout=600,
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
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--worker", choices=["memory", "userspace"])
    a = p.parse_args(argv)
    sizes = [int(x) for x in a.sizes.split(",")]
    if a.worker:
        print(json.dumps(worker(a.worker, sizes)))
        return 0
    results: dict[str, Any] = {"memory": worker("memory", sizes)}
    results["userspace"] = userspace_in_netns(sizes)
    hdr = (
        f"{'backend':<10} {'N':>7} | {'install at takeover':>20} {'pre-installed':>14} "
        f"{'ratio':>6} | {'standby us/binding':>18} {'standby MB':>10}"
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
                f"{r['standby_install_us_per_binding']:>18.2f} {r['standby_dataplane_MB']:>10.1f}"
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
