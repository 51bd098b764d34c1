"""Every acceptance benchmark of the performance work, in one run, as one table.

    .venv/bin/python bench/acceptance.py [--quick] [--only registration,pair,...] [--json]
    make bench-quiet

Runs, one after the other (each prints its own report into ``--logs``, default
``bench-logs/<date>/``), and collects the figures from the JSON line each one prints last:

============  ============================================  =============================
name          command                                       baseline of the same run
============  ============================================  =============================
registration  bench/registration.py --sizes 0,990000        echo server (same generator)
pair          bench/registration.py --pair --burst          the lone HA (same generator)
memory        bench/memory.py --n 1000000                   (absolute: bytes per binding)
sync          bench/sync.py --sizes 1000000                 raw UDP of the same volume
slb           bench/slb.py                                  nginx UDP stream proxy
dataplane     bench/dataplane.py                            routed kernel forwarding
takeover      bench/takeover.py --sizes 100000,1000000      pre-installed data plane
============  ============================================  =============================

The table gives each figure, its baseline, the ratio, the target and whether it is met,
with the date, the machine's load average before and after each benchmark and the number
of CPUs. Figures are only acceptance figures when the load average before the run is well
below one (a quiet machine); the table says so when it is not. ``--quick``: shorter windows
and smaller sizes, to check that everything runs (not for the README).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PY = sys.executable


def _cmd(name: str, quick: bool) -> list[str]:
    q = quick
    return {
        "registration": [
            "registration.py",
            "--json",
            "--sizes",
            "0,20000" if q else "0,990000",
            *(["--windows", "2", "--seconds", "1"] if q else []),
        ],
        "pair": [
            "registration.py",
            "--pair",
            "--burst",
            "--json",
            *(["--windows", "2", "--seconds", "1", "--mns", "5000"] if q else []),
        ],
        "memory": ["memory.py", "--json", "--n", "100000" if q else "1000000"],
        "sync": ["sync.py", "--json", "--sizes", "100000" if q else "1000000"]
        + (["--seconds", "1"] if q else []),
        "slb": ["slb.py", "--json", *(["--rounds", "3", "--seconds", "1"] if q else [])],
        "dataplane": ["dataplane.py", *(["--repeat", "1", "--seconds", "1"] if q else [])],
        "takeover": [
            "takeover.py",
            "--sizes",
            "10000" if q else "100000,1000000",
        ],
    }[name]


NAMES = ("registration", "pair", "memory", "sync", "slb", "dataplane", "takeover")


def run_one(name: str, quick: bool, logs: Path) -> dict[str, Any]:
    argv = [PY, str(BENCH / _cmd(name, quick)[0]), *_cmd(name, quick)[1:]]
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.monotonic() - t0
    (logs / f"{name}.log").write_text(
        " ".join(argv) + "\n\n" + p.stdout + ("\n--- stderr\n" + p.stderr if p.stderr else "")
    )
    data: Any = None
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            break
    return {
        "rc": p.returncode,
        "seconds": took,
        "load_before": load0,
        "load_after": os.getloadavg()[0],
        "data": data,
        "skip": next((x for x in p.stdout.splitlines() if x.startswith("skip:")), None),
    }


# A row: (benchmark, figure, value, baseline, ratio, target text, met or None)
Row = tuple[str, str, str, str, str, str, bool | None]


def _f(x: float, unit: str = "") -> str:
    return f"{x:,.0f}{unit}" if abs(x) >= 100 else f"{x:.2f}{unit}"


def rows_for(name: str, d: Any) -> list[Row]:
    out: list[Row] = []
    if name == "registration":
        echo = d["echo"]["rate"]
        runs = d["ha"]
        small, big = runs[0], runs[-1]
        out.append(
            (name, f"one HA, {small['preloaded'] + d['mns']:,} bindings",
             _f(small["rate"], " req/s"), _f(echo, " req/s echo"),
             f"{small['ratio_to_echo']:.2f}", ">= 0.5x echo", small["ratio_to_echo"] >= 0.5)
        )  # fmt: skip
        if len(runs) > 1:
            r = big["rate_vs_smallest"]
            out.append(
                (name, f"one HA, {big['preloaded'] + d['mns']:,} bindings",
                 _f(big["rate"], " req/s"), _f(small["rate"], " req/s at 10k"),
                 f"{r:.2f}", ">= 0.95x the 10k rate", r >= 0.95)
            )  # fmt: skip
            pt = d.get("paired_tables")
            if pt:
                r = pt["ratio"]
                out.append(
                    (name, f"one HA, {pt['big'] + d['mns']:,} vs {pt['small'] + d['mns']:,} "
                     "bindings, paired windows", _f(pt["rate_big"], " req/s"),
                     _f(pt["rate_small"], " req/s small table"), f"{r:.2f}",
                     ">= 0.95x the 10k rate", r >= 0.95)
                )  # fmt: skip
            per = big.get("rss_bytes_per_binding")
            if per:
                out.append((name, "RSS per pre-loaded binding", _f(per, " B"), "", "",
                            "<= 300 B", per <= 300))  # fmt: skip
        out.append((name, "server CPU per request", _f(small["server_cpu_us"], " us"),
                    _f(echo and d["echo"]["server_cpu_us"], " us echo"), "", "", None))  # fmt: skip
    elif name == "pair":
        r = d["pair_over_lone"]
        out.append((name, "pair with sync", _f(d["pair"]["rate"], " req/s"),
                    _f(d["lone"]["rate"], " req/s lone"), f"{r:.2f}", ">= 0.8x lone",
                    r >= 0.8))  # fmt: skip
        p99 = d["gate_us"]["p99"] / 1000
        out.append((name, "reply gate hold p50 / p99",
                    f"{d['gate_us']['p50'] / 1000:.1f} / {p99:.1f} ms", "", "", "p99 <= 5 ms",
                    p99 <= 5.0))  # fmt: skip
        out.append((name, "BU batching", f"{d['bu']['records_per_bu']:.1f} records/BU", "", "",
                    "", None))  # fmt: skip
        out.append((name, "CPU per request active / standby",
                    f"{d['pair']['server_cpu_us']:.1f} / {d['standby_cpu_us']:.1f} us",
                    _f(d["lone"]["server_cpu_us"], " us lone"), "", "", None))  # fmt: skip
        k = d["kill"]
        out.append((name, "kill -9 of the Active: lost", str(k["lost"]),
                    f"{k['acked_mns']:,} acknowledged", "", "0", k["lost"] == 0))  # fmt: skip
        for side in ("lone", "pair"):
            b = d.get("burst_" + side)
            if b:
                out.append((name, f"burst of every MN ({side})", f"{b['elapsed']:.1f} s",
                            f"{b['udp_drops']:,} buffer drops", "", "", None))  # fmt: skip
    elif name == "memory":
        per = d["rss_bytes_per_binding"]
        sas = f"the MNs' SAs: {d['sa_rss_bytes_per_mn']:,.0f} B/MN" if d.get("sas") == "own" else ""
        out.append((name, f"RSS per binding at {d['n']:,}", _f(per, " B"), sas, "", "<= 300 B",
                    per <= 300))  # fmt: skip
    elif name == "sync":
        for row in d["bulk"]:
            out.append((name, f"bulk download {row['bindings']:,}", f"{row['seconds']:.2f} s",
                        f"{row['raw_udp_seconds']:.2f} s raw UDP", f"x{row['ratio_vs_raw']}",
                        "<= 4 s at 1M", row["seconds"] <= 4.0 * row["bindings"] / 1e6))  # fmt: skip
            out.append((name, "  CPU active / standby",
                        f"{row['active_cpu_s']:.2f} / {row['standby_cpu_s']:.2f} s", "", "", "",
                        None))  # fmt: skip
        lag = d.get("lag")
        if lag:
            out.append((name, f"BU lag p99 at {lag['rate']:,.0f}/s", f"{lag['p99_ms']:.2f} ms",
                        f"{lag['raw_udp_rtt']['p99_ms']:.3f} ms RTT", "", "", None))  # fmt: skip
    elif name == "slb":
        rps = d["requests_per_s"]
        for key, label in (("slb_vs_nginx", "relay"), ("slb_directed_vs_nginx", "directed")):
            v = d.get(key)
            if v is None:
                continue
            tgt = "slb-dir" if label == "directed" else "slb"
            out.append((name, f"SLB {label}", _f(rps.get(tgt, 0), " req/s"),
                        _f(rps.get("nginx", 0), " req/s nginx"), f"{v:.2f}", ">= 1.3x nginx",
                        v >= 1.3))  # fmt: skip
    elif name == "dataplane":
        med = d["medians"]
        base = med.get("routed")
        for path, m in med.items():
            if path == "routed" or base is None:
                continue
            r64 = m["64B_pps"] / base["64B_pps"]
            tcp = m["tcp_mbit"] / base["tcp_mbit"]
            ebpf = path.startswith("ebpf")
            out.append((name, f"{path} 64 B", _f(m["64B_pps"], " pps"),
                        _f(base["64B_pps"], " pps routed"), f"{r64:.2f}",
                        ">= 0.8x" if ebpf else "", r64 >= 0.8 if ebpf else None))  # fmt: skip
            out.append((name, f"{path} TCP", _f(m["tcp_mbit"], " Mbit/s"),
                        _f(base["tcp_mbit"], " Mbit/s routed"), f"{tcp:.2f}",
                        ">= 0.7x" if ebpf else "", tcp >= 0.7 if ebpf else None))  # fmt: skip
        for kind, why in d.get("skipped", {}).items():
            out.append((name, kind, "skipped", why, "", "", None))
    elif name == "takeover":
        for kind, res in d.items():
            if isinstance(res, str):
                out.append((name, kind, "skipped", res, "", "", None))
                continue
            for n, r in res.items():
                ratio = r["install_at_takeover_ms"] / max(r["preinstalled_takeover_ms"], 1e-9)
                out.append((name, f"{kind} takeover {int(n):,}",
                            f"{r['install_at_takeover_ms']:.0f} ms",
                            f"{r['preinstalled_takeover_ms']:.0f} ms pre-installed",
                            f"{ratio:.1f}", "", None))  # fmt: skip
    return out


def table(results: dict[str, dict[str, Any]]) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    for name, r in results.items():
        if r["skip"]:
            notes.append(f"{name}: {r['skip']}")
        if r["data"] is None:
            rows.append((name, "no result", f"exit {r['rc']}", "", "", "", None))
            continue
        try:
            rows += rows_for(name, r["data"])
        except (KeyError, TypeError, ZeroDivisionError) as e:
            rows.append((name, "unreadable result", repr(e), "", "", "", None))
    return rows, notes


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def render(rows: list[Row]) -> str:
    head: Row = ("benchmark", "figure", "value", "baseline (same run)", "ratio", "target", None)
    cells = [[*(c if len(c) <= 60 else c[:57] + "..." for c in r[:6]), _met(r[6])] for r in rows]
    hdr = [*head[:6], ""]
    widths = [max(len(str(c[i])) for c in [hdr, *cells]) for i in range(7)]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(hdr, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        lines.append("| " + " | ".join(str(x).ljust(w) for x, w in zip(c, widths)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="check that everything runs")
    ap.add_argument("--only", default=",".join(NAMES))
    ap.add_argument("--logs", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    logs = args.logs or Path("bench-logs") / now.strftime("%Y%m%dT%H%M%SZ")
    logs.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.only.split(",") if n]
    load0 = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = run_one(name, args.quick, logs)
        r = results[name]
        print(
            f"  {name}: exit {r['rc']}, {r['seconds']:.0f} s, load average "
            f"{r['load_before']:.2f} -> {r['load_after']:.2f}",
            flush=True,
        )
    rows, notes = table(results)
    print()
    print(
        f"mobileha acceptance benchmarks, {now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average at start {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f}"
        + (" (quick run: not acceptance figures)" if args.quick else "")
    )
    print(render(rows))
    for n in notes:
        print(f"  {n}")
    busy = [n for n, r in results.items() if r["load_before"] > 0.5]
    if busy:
        print(
            "  note: the machine was busy (load average > 0.5) before: "
            + ", ".join(busy)
            + "; take acceptance figures on a quiet machine"
        )
    print(f"  logs: {logs}")
    if args.json:
        print(json.dumps({"date": now.isoformat(), "load": load0, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
