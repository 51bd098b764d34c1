"""Stalled DFP connections against the DFP agent of a ``mobileha run`` home agent.

``--connections`` (default 20,000) TCP connections from 50 loopback sources, each sending a
DFP header that announces 4,000 bytes (``--announce``) and half of them, then nothing. While
they are opened the agent's RSS is sampled and its management API asked every 1,000
connections; after they close, the RSS is read again. Pass: peak growth under 64 MB and
every API request answered. Exit 1 otherwise.

    .venv/bin/python bench/dfp_stall.py [--connections 20000] [--announce 4000] [--json]

The suite runs a sample (tests/system/test_dfp_stall_sample.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from tests.helpers.attack import dfp_agent_node, stall_dfp


def run(n: int, announce: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mobileha-dfp-stall-") as tmp:
        node, ha, dport = dfp_agent_node(Path(tmp))
        try:
            time.sleep(1.0)
            net = ha.rsplit(".", 1)[0]
            sources = [f"{net}.{100 + i}" for i in range(50)]
            r: dict[str, object] = dict(stall_dfp(node, ha, dport, n, sources, announce))
            time.sleep(2.0)
            r["rss_after_close_growth_kb"] = node.rss_kb() - int(r["rss_base_kb"])  # type: ignore[call-overload]
            (row,) = node.get("/api/dfp")["agents"]
            r["agent_dropped"] = row.get("dropped", {})
            r["alive"] = node.alive()
        finally:
            node.stop()
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=20_000)
    ap.add_argument("--announce", type=int, default=4000)
    ap.add_argument("--max-rss-mb", type=float, default=64.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = run(a.connections, a.announce)
    ok = (
        bool(r["alive"])
        and int(r["rss_peak_growth_kb"]) < a.max_rss_mb * 1024  # type: ignore[call-overload]
        and r["api_answered"] == r["api_tries"]
    )
    if a.json:
        print(json.dumps({**r, "passed": ok}, indent=1))
    else:
        for k, v in r.items():
            print(f"{k:<28} {v}")
        print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
