"""Memory per binding: RSS growth and where it goes, for N bindings loaded into one home
agent's table (``HomeAgent.load``, the bulk-sync entry), as ``bench/registration.py``
pre-loads them.

    .venv/bin/python bench/memory.py [--n 1000000] [--sas own|none] [--trace] [--json]

The home agent is set up as deployed: every MN has its own MN-HA SA (``--sas own``, the
default: one ``MobilitySA`` per NAI with its own 16-byte key, as a ``[[mobile_node]]`` entry,
a subscriber file or the AAA SA cache holds them), loaded before the bindings. The SAs'
memory is printed on its own line (per MN: it is there with or without a binding); the
acceptance figure is the RSS growth while the N bindings are added, divided by N (<= 300
bytes at 10^6). ``--sas none``: no SAs at all (a table filled by sync for MNs this HA has
no SA for), the NAI index and NAI strings then paid by the table.

Printed after it: a breakdown of one binding's objects (``sys.getsizeof`` of the binding
and of each field's value it does not share) and of the table's containers per binding
(indexes, expiry wheel), and with ``--trace`` tracemalloc's total per binding and by
allocation site as a cross-check (allocations through Python's allocator only; RSS also
counts allocator slack and page rounding).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tracemalloc
from typing import Any

from mobileha.core.binding import Binding, Encap
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.security import MobilitySA, SecurityAssociations

HA = "127.0.9.1"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bindings(n: int, now: float, first: int = 0) -> Any:
    """The benchmarks' bindings (also ``bench/registration.py``'s pre-loaded ones): 11.0.0.0/8
    home addresses outside any pool, one care-of address, a 26-character NAI, a 64-bit
    timestamp Identification, deadlines spread over 3,600 seconds."""
    coa = "10.200.0.1"
    base = 0x0B000000
    for i in range(first, first + n):
        a = base + i
        yield Binding(
            f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}",
            coa,
            HA,
            36000,
            now + 30000 + (i % 3600),
            ((3_900_000_000 + i) << 32) | i,
            0,
            Encap.IPIP,
            None,
            f"pre{i}@bulk.example.net",
            coa,
            434,
        )


def security(n: int, own: bool) -> SecurityAssociations:
    """The MNs' SAs as the configuration (or the AAA cache) holds them: one per NAI, its own
    key (SPI 1000, HMAC-MD5), the NAI a string of its own."""
    sas = SecurityAssociations()
    if own:
        for i in range(n):
            key = (i * 0x9E3779B97F4A7C15 & (1 << 128) - 1).to_bytes(16, "big")
            sas.add_mn(MobilitySA(1000, key, "hmac-md5", nai=f"pre{i}@bulk.example.net"))
    return sas


def measure(n: int, trace: bool, own_sas: bool = True) -> dict[str, Any]:
    gc.collect()
    rss_sa0 = _rss()
    sas = security(n, own_sas)
    gc.collect()
    sa_rss = _rss() - rss_sa0
    settings = HomeAgentSettings(HA, home_prefix="10.0.0.0/16", max_bindings=n + 10)
    core = HomeAgent(settings, sas)
    gc.collect()
    if trace:
        tracemalloc.start()
    t0 = tracemalloc.get_traced_memory()[0] if trace else 0
    rss0 = _rss()
    core.load(bindings(n, 1.0), 1.0)
    gc.collect()
    rss = _rss() - rss0
    traced = (tracemalloc.get_traced_memory()[0] - t0) if trace else 0
    sites: list[tuple[str, float]] = []
    if trace:
        snap = tracemalloc.take_snapshot()
        for st in snap.statistics("lineno")[:8]:
            frame = st.traceback[0]
            where = f"{os.path.relpath(frame.filename)}:{frame.lineno}"
            sites.append((where, st.size / n))
        tracemalloc.stop()
    table = core.table
    b = table.lookup(f"11.0.0.{n % 200 + 1}")
    assert b is not None and not isinstance(b, list)
    per: dict[str, int] = {"binding object": sys.getsizeof(b)}  # with its GC header
    per["home_addr str"] = sys.getsizeof(b.home_addr)
    holder = sas.nai_holder(b.nai or "")
    shared = holder is not None and holder.nai is b.nai
    per["nai str" + (" (the SA's)" if shared else "")] = 0 if shared else sys.getsizeof(b.nai)
    per["ident int"] = sys.getsizeof(b.ident)
    containers = {}
    for name in table.__slots__:
        v = getattr(table, name)
        if isinstance(v, (dict, list)):
            size = sys.getsizeof(v)
            if isinstance(v, dict) and name == "_wheel":
                size += sum(sys.getsizeof(x) for x in v.values())
            containers[name] = size / n
    extra = {}
    for name in ("_nonces", "_ids", "_sa_hint"):
        v = getattr(core, name, None)
        if isinstance(v, dict):
            extra[name] = sys.getsizeof(v) / n
    return {
        "n": n,
        "sas": "own" if own_sas else "none",
        "sa_rss_bytes_per_mn": sa_rss / n,
        "rss_bytes_per_binding": rss / n,
        "traced_bytes_per_binding": traced / n,
        "objects": per,
        "containers_per_binding": containers,
        "core_dicts_per_binding": extra,
        "allocation_sites": sites,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument(
        "--sas",
        choices=["own", "none"],
        default="own",
        help="own: every MN has its own SA, loaded first (default); none: no SAs",
    )
    p.add_argument("--trace", action="store_true", help="also run under tracemalloc (slow)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = measure(args.n, args.trace, args.sas == "own")
    print(f"memory per binding at {args.n:,} bindings")
    if args.sas == "own":
        print(
            f"  the MNs' SAs        {r['sa_rss_bytes_per_mn']:6.0f} bytes/MN "
            "(RSS, before the bindings; not in the figure below)"
        )
    print(
        f"  RSS growth          {r['rss_bytes_per_binding']:6.0f} bytes/binding "
        + ("(includes tracemalloc's own records)" if args.trace else "(target <= 300)")
    )
    if args.trace:
        print(f"  tracemalloc         {r['traced_bytes_per_binding']:6.0f} bytes/binding")
    for k, v in r["objects"].items():
        print(f"  {k:20s}{v:6d}")
    for k, v in r["containers_per_binding"].items():
        print(f"  table.{k:14s}{v:6.1f}")
    for k, v in r["core_dicts_per_binding"].items():
        print(f"  core.{k:15s}{v:6.1f}")
    if r["allocation_sites"]:
        print("  tracemalloc, bytes per binding by allocation site:")
        for where, v in r["allocation_sites"]:
            print(f"    {v:6.1f}  {where}")
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
