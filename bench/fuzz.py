"""Fuzz a whole cluster of ``mobileha run`` processes on loopback (tests/helpers/fuzz.py):
an HA pair (HSRP MD5, sync, DFP agents) behind an HA-SLB (relay, DFP manager) and an FA.

``--count`` mutated inputs (default 50,000) go to each target: registration port 434 of the
HA, the FA and the SLB; HA-HA sync from the peer's address; HSRP from the peer's address
with the right and a wrong key; the DFP agent of an HA (TCP) and the SLB's DFP manager
(through a fake agent it connects to). Then: every node alive, RSS growth per node (after
the tables' entries expired) under ``--max-rss-mb`` (10), one UDP socket per bound address,
and a valid registration MN -> FA -> SLB -> HA pair. Exit 1 when a check fails.

    .venv/bin/python bench/fuzz.py [--count 50000] [--seed 1] [--json]

The suite runs a small sample (tests/system/test_fuzz_sample.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from tests.helpers.fuzz import Result, run


def verdict(r: Result, max_rss_mb: float) -> list[str]:
    """The failed checks of a run (empty: all passed)."""
    bad = [f"{n} died" for n, ok in r.alive.items() if not ok]
    for n, (before, after) in r.rss_kb.items():
        if after - before >= max_rss_mb * 1024:
            bad.append(f"{n} RSS grew {(after - before) / 1024:.1f} MB")
    bad += [f"{k}: {v} sockets" for k, v in r.sockets.items() if v > 1]
    if r.final_code not in (0, 1):
        bad.append(f"final registration: {r.final_code}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-rss-mb", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mobileha-fuzz-") as tmp:
        r = run(Path(tmp), a.count, a.seed, log=lambda s: print(s, file=sys.stderr, flush=True))
    bad = verdict(r, a.max_rss_mb)
    if a.json:
        print(json.dumps({**r.__dict__, "failed": bad}, indent=1))
    else:
        print(f"{'target':<16} {'inputs':>8}")
        for t, n in r.sent.items():
            print(f"{t:<16} {n:>8}")
        print(f"\n{'node':<6} {'RSS before':>11} {'after':>9} {'growth':>8}  alive")
        for n, (b, after) in r.rss_kb.items():
            print(
                f"{n:<6} {b / 1024:>9.1f}MB {after / 1024:>7.1f}MB {(after - b) / 1024:>6.1f}MB  "
                f"{r.alive[n]}"
            )
        print("\nUDP sockets per bound address:")
        for k, v in r.sockets.items():
            print(f"  {k}: {v}")
        print(f"\nfinal registration MN -> FA -> SLB -> HA: code {r.final_code}")
        print(
            f"{r.seconds:.0f} s; "
            + ("all checks passed" if not bad else "FAILED: " + "; ".join(bad))
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
