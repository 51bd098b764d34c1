"""Soak: 100,000 subscribers whose MN-HA SAs come from FreeRADIUS (rlm_sql + SQLite),
through MN -> FA -> HA-SLB -> HSRP home agent pair, then kill -9 of the Active.

Run by hand (root, FreeRADIUS installed; a few minutes)::

    .venv/bin/python -m tests.soak.aaa_subscribers --n 100000

Prints, then one JSON line: the time to register every MN and the rate, RADIUS requests of
the Active (one per MN), AAA latency, the standby's synced SAs, the re-registrations served
from the cache (hits; misses stay at one per MN), and after kill -9 of the Active: the time
until the standby is Active, its bindings, its RADIUS requests (none) and the
re-registrations it served from the SAs it received in the sync records.
The suite runs the same path with a few hundred subscribers
(``tests/system/test_aaa_subscribers.py``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers.aaa_cluster import AaaCluster
from tests.helpers.procs import log_tails
from tests.helpers.wait import wait_for as _wait_for


def wait_for(pred: Any, timeout: float, what: str, **kw: Any) -> Any:
    """Poll through busy processes: an API that does not answer in time is "not yet"."""
    return _wait_for(pred, timeout, what, ignore=(OSError, KeyError), **kw)


def _stats(ps: list[Any]) -> dict[str, int]:
    """The MN fleets' counters, summed."""
    out: dict[str, int] = {}
    for p in ps:
        for k, v in p.api("api/stats")["counters"].items():
            if isinstance(v, int):
                out[k] = out.get(k, 0) + v
    return out


def run(n: int, lifetime: int, fleets: int, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"subscribers": n, "lifetime_s": lifetime, "mn_processes": fleets}
    t = time.monotonic()
    c = AaaCluster(tmp, n, lifetime=lifetime, hold_ms=3000, fleets=fleets)
    out["radius_db_and_start_s"] = round(time.monotonic() - t, 1)
    try:
        c.start_pair()
        a, b = c.ha["a"], c.ha["b"]
        logs = log_tails(p.log for p in c.procs)
        wait_for(
            lambda: c.state(a) == "active" and c.state(b) == "standby",
            60,
            "A Active, B Standby",
            detail=logs,
        )
        c.start_path()
        t0 = time.monotonic()

        def registered(p: Any, count: int) -> None:
            wait_for(lambda: _stats([p])["registered"] >= count, 60 + count / 20, "fleet", step=1)

        mns = c.start_fleets(registered, retransmit_ms=3000)
        wait_for(lambda: _stats(mns)["registered"] >= n, 60, "registered", step=1)
        t_reg = time.monotonic() - t0
        wait_for(lambda: c.subscribers(a)["cache"]["sa_cache_size"] >= n, 60, "cached", step=1)
        sa = c.subscribers(a)
        out["register_all_s"] = round(t_reg, 1)
        out["first_registrations_per_s"] = round(n / t_reg)
        out["a_radius_requests"] = sa["aaa_client"]["sa_requests"]
        out["a_sa_cache_misses"] = sa["cache"]["sa_cache_misses"]
        out["a_aaa_latency_mean_ms"] = sa["latency"]["mean_ms"]
        out["a_aaa_latency_max_ms"] = sa["latency"]["max_ms"]
        out["a_aaa_busy_drops"] = sa["cache"]["aaa_busy"]
        wait_for(lambda: c.subscribers(b)["cache"]["sa_synced"] >= n, 120, "SAs synced", step=1)
        out["b_sa_synced"] = c.subscribers(b)["cache"]["sa_synced"]
        out["b_radius_requests_before_takeover"] = c.subscribers(b)["aaa_client"].get(
            "sa_requests", 0
        )
        # one round of re-registrations, from the cache
        hits0 = c.subscribers(a)["cache"]["sa_cache_hits"]
        wait_for(
            lambda: c.subscribers(a)["cache"]["sa_cache_hits"] >= hits0 + n,
            lifetime * 2 + n / 50,
            "re-registrations from the cache",
            step=1,
        )
        sa = c.subscribers(a)
        out["a_rereg_cache_hits"] = sa["cache"]["sa_cache_hits"] - hits0
        out["a_radius_requests_after_rereg"] = sa["aaa_client"]["sa_requests"]
        # kill -9 of the Active
        renewed = _stats(mns)["renewals"]
        t1 = time.monotonic()
        a.proc.kill()
        a.proc.wait()
        wait_for(lambda: c.state(b) == "active", 60, "B Active", step=0.05)
        out["takeover_s"] = round(time.monotonic() - t1, 2)
        out["b_bindings_at_takeover"] = b.api("api/bindings?limit=1")["total"]
        wait_for(
            lambda: c.subscribers(b)["cache"]["sa_cache_hits"] >= n,
            lifetime * 2 + n / 50,
            "re-registrations on B",
            step=1,
        )
        sb = c.subscribers(b)
        out["b_rereg_cache_hits"] = sb["cache"]["sa_cache_hits"]
        out["b_radius_requests_after_takeover"] = sb["aaa_client"].get("sa_requests", 0)
        out["b_sa_cache_misses"] = sb["cache"]["sa_cache_misses"]
        out["b_bindings"] = b.api("api/bindings?limit=1")["total"]
        out["mn_renewals_after_kill"] = _stats(mns)["renewals"] - renewed
        out["mn_denied"] = _stats(mns).get("denied", 0)
    finally:
        c.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--lifetime", type=int, default=300, help="MN lifetime (renewal at 80 %)")
    p.add_argument("--fleets", type=int, default=20, help="MN processes, started in turn")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="mobileha-soak-") as d:
        out = run(args.n, args.lifetime, args.fleets, Path(d))
    for k, v in out.items():
        print(f"{k:36} {v}")
    print(json.dumps(out))
    ok = (
        out["a_radius_requests"] == args.n
        and out["b_radius_requests_after_takeover"] == 0
        and out["b_bindings_at_takeover"] == args.n
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
