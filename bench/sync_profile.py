"""CPU per record of each side of a bulk download, without sockets: two sans-IO SyncPeers in
one process, every datagram handed from one to the other in memory. Each side's calls are
timed separately (thread CPU time), and with ``--profile`` run under cProfile, one profile
per side, so that the active's packing and the standby's decoding and merging can be read
apart. ``bench/sync.py`` measures the same transfer over UDP with the two sides in two
processes; this script says where the CPU of each goes. ``--table home-agent``: each side is
a home agent core behind the node's coordinator, as in ``bench/sync.py --table home-agent``.

    .venv/bin/python bench/sync_profile.py [--records 200000] [--table dict|home-agent]
                                           [--profile] [--top 15]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from mobileha.core.actions import Send
from mobileha.core.binding import Binding
from mobileha.core.home_agent import HomeAgent
from mobileha.core.sync import ApplyBindings, SyncConfig
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from sync import HOST, IDENT0, KEY, VIP, enter_standby, home_agent, make_binding, sync_core


class Side:
    """One SyncPeer (with a dict, or a home agent's behind its coordinator), the CPU time
    spent in its calls and (optionally) its profile."""

    def __init__(self, table: dict[Any, Binding] | HomeAgent, port: int, profile: bool) -> None:
        cfg = SyncConfig(
            peer_addr=HOST,
            ha_addr=VIP,
            spi=400,
            authenticator=Authenticator(KEY, ALG_PREFIX_SUFFIX),
            port=port,
            bi_window=32,
        )
        self.peer, self.core = sync_core(table, cfg)
        # the plain dict the actions are applied to (a home agent applies its own)
        self.table: dict[Any, Binding] = {} if isinstance(table, HomeAgent) else table
        self.ha = table if isinstance(table, HomeAgent) else None
        self.cpu = 0.0
        self.prof = cProfile.Profile() if profile else None

    def receive(self, data: bytes, src: Any, dst: Any, now: float) -> list[Any]:
        return self.call(self.core.receive_datagram, data, src, dst, now)

    def start_standby(self, now: float) -> list[Any]:
        return self.call(enter_standby, self.peer, self.core, now)

    def records(self) -> int:
        return len(self.table) if self.ha is None else len(self.ha.table)

    def call(self, fn: Callable[..., list[Any]], *args: Any) -> list[Any]:
        prof = self.prof
        c0 = time.thread_time()
        if prof is not None:
            prof.enable()
        actions = fn(*args)
        table = self.table
        out = []
        for a in actions:  # what the node does with the actions: part of this side's CPU
            if type(a) is Send:
                out.append(a.payload)
            elif type(a) is ApplyBindings:
                for item in a.items:
                    b = item[0]
                    table[b.home_addr, b.care_of] = b
        if prof is not None:
            prof.disable()
        self.cpu += time.thread_time() - c0
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--table", choices=["dict", "home-agent"], default="dict")
    args = ap.parse_args(argv)
    now = 1000.0
    a_table: dict[Any, Binding] | HomeAgent
    b_table: dict[Any, Binding] | HomeAgent
    if args.table == "home-agent":
        a_table, b_table = home_agent(args.records), home_agent(args.records)
        a_table.load((make_binding(i, now, IDENT0 + i) for i in range(args.records)), now)
        b_table.active = False
    else:
        a_table, b_table = {}, {}
        for i in range(args.records):
            b = make_binding(i, now, IDENT0 + i)
            a_table[b.key] = b
    gc.freeze()
    gc.disable()
    active = Side(a_table, 1, args.profile)
    standby = Side(b_table, 2, args.profile)
    a_addr, b_addr = (HOST, 1), (HOST, 2)
    to_active = standby.start_standby(now)
    while not standby.peer.download_complete:
        to_standby = []
        for data in to_active:
            to_standby += active.receive(data, b_addr, a_addr, now)
        to_active = []
        for data in to_standby:
            to_active += standby.receive(data, a_addr, b_addr, now)
        if not to_active and not to_standby:
            raise SystemExit("the transfer stalled")
    n = standby.records()
    assert n == args.records, (n, args.records)
    print(
        f"{n:,} records ({args.table}), load average {os.getloadavg()[0]:.1f}: "
        f"active {active.cpu / n * 1e6:.2f} us/record, "
        f"standby {standby.cpu / n * 1e6:.2f} us/record"
        + (" (under cProfile)" if args.profile else "")
    )
    for name, side in (("active", active), ("standby", standby)):
        if side.prof is not None:
            print(f"--- {name}: top {args.top} by own time")
            pstats.Stats(side.prof).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
