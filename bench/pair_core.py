"""CPU per registration of the sans-IO cores: a lone home agent's coordinator against an
Active + Standby pair with binding sync, all in one process, no sockets.

    .venv/bin/python bench/pair_core.py [--mns 10000] [--batch 48] [--rounds 400]
                                        [--profile active|standby|lone] [--top 25]

The same authenticated re-registrations (timestamp Identification, NAI, MN-HA HMAC-MD5) go
to the lone coordinator and to the Active's, ``--batch`` per event-loop turn as the node's
``BatchedUdp`` delivers them: the Active's turn is the Standby's BU Acks of the previous
turn, then the requests, then its timer (the BUs of the turn's changes); the Standby's turn
is the BUs, then its timer. Printed: CPU microseconds per registration of the lone
coordinator, the Active and the Standby (process CPU time, medians over blocks of 20
turns, each block measuring the three in the same seconds), the Active/lone ratio, the
records per BU, and the replies the gate released (every one must be released after its
BU Ack). ``--profile`` runs the
named side under cProfile and prints the top functions by own time.

This isolates the cores' share of ``bench/registration.py --pair`` (which adds the sockets,
the event loop and the two processes competing for the same cores).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import statistics
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from mobileha.core.actions import Send
from mobileha.core.cluster import AgentSpec, Cluster
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.core.sync import SyncConfig
from mobileha.wire.auth import Authenticator

KEY = bytes(range(16))
SYNC_KEY = bytes(range(100, 116))
SPI = 256
NTP = 2208988800
RRQ = struct.Struct("!BBH4s4s4sQ")
ACTIVE, STANDBY, LONE = "127.0.9.2", "127.0.9.3", "127.0.9.1"
MN = ("127.0.0.1", 40000)
PORT = 434
BLOCK = 20  # turns per measurement block (the medians of the blocks are printed)
SPI_BYTES = struct.pack("!I", SPI)


def _home_agent(own: str, ha_address: str | None, mns: int) -> HomeAgent:
    sas = SecurityAssociations()
    for i in range(mns):
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=f"mn{i}@bench.example"))
    settings = HomeAgentSettings(
        own, ha_address=ha_address, port=PORT, home_prefix="10.0.0.0/16",
        max_bindings=mns + 10, max_lifetime=36000,
    )  # fmt: skip
    return HomeAgent(settings, sas)


class Requests:
    """Re-registrations round-robin over the MNs, Identifications increasing, timestamps
    from the clock when the batch is built (within the replay tolerance however slow the
    run)."""

    def __init__(self, ha: str, mns: int) -> None:
        k64 = KEY.ljust(64, b"\0")
        self._inner = hashlib.md5(bytes(x ^ 0x36 for x in k64))
        self._outer = hashlib.md5(bytes(x ^ 0x5C for x in k64))
        self._head = (bytes(int(x) for x in ha.split(".")), bytes([127, 0, 0, 1]))
        self._exts = []
        for i in range(mns):
            nai = f"mn{i}@bench.example".encode()
            self._exts.append(bytes([131, len(nai)]) + nai + bytes([32, 20]) + SPI_BYTES)
        self._seq = 0

    def batch(self, n: int) -> list[bytes]:
        sec_hi = (int(time.time()) + NTP) << 32
        ha_b, coa_b = self._head
        exts = self._exts
        out = []
        for _ in range(n):
            self._seq += 1
            seq = self._seq
            covered = RRQ.pack(1, 0, 1800, b"\0" * 4, ha_b, coa_b, sec_hi | seq)
            covered += exts[seq % len(exts)]
            i = self._inner.copy()
            i.update(covered)
            o = self._outer.copy()
            o.update(i.digest())
            out.append(covered + o.digest())
        return out


class Side:
    """One coordinator and the CPU time spent in it."""

    def __init__(self, cluster: Cluster, addr: str) -> None:
        self.cluster = cluster
        self.dst = (addr, PORT)
        self.cpu = 0.0
        self.profile: cProfile.Profile | None = None

    def turn(self, datagrams: list[tuple[bytes, tuple[str, int]]], now: float) -> list[Any]:
        """One event-loop turn: the datagrams, then the timer if it is due."""
        c = self.cluster
        prof = self.profile
        clock = time.process_time
        t0 = clock()
        if prof is not None:
            prof.enable()
        out: list[Any] = []
        for data, src in datagrams:
            out += c.receive_datagram(data, src, self.dst, now)
        t = c.get_timer()
        if t is not None and t <= now:
            out += c.handle_timer(now)
        if prof is not None:
            prof.disable()
        self.cpu += clock() - t0
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    clock: Callable[[], float] = time.monotonic
    now0 = clock()
    wall = time.time() - now0
    auth = Authenticator(SYNC_KEY, "hmac-md5")

    def sync(peer: str) -> SyncConfig:
        return SyncConfig(peer_addr=peer, ha_addr=ACTIVE, spi=400, authenticator=auth, port=PORT)

    lone = Side(
        Cluster([AgentSpec(_home_agent(LONE, None, args.mns))], wall_offset=wall, now=now0), LONE
    )
    a_ha = _home_agent(ACTIVE, ACTIVE, args.mns)
    s_ha = _home_agent(STANDBY, ACTIVE, args.mns)
    s_ha.active = False
    active = Side(Cluster([AgentSpec(a_ha, sync(STANDBY))], wall_offset=wall, now=now0), ACTIVE)
    standby = Side(Cluster([AgentSpec(s_ha, sync(ACTIVE))], wall_offset=wall, now=now0), STANDBY)
    gate = active.cluster.agents[0].gate
    a_sync = active.cluster.agents[0].sync
    assert gate is not None and a_sync is not None
    sync_counters = a_sync.counters
    warm = -(-args.mns // args.batch)  # every MN registered once before the count starts
    n = args.batch * args.rounds
    reqs_lone = Requests(LONE, args.mns)
    reqs_pair = Requests(ACTIVE, args.mns)
    replies = {"lone": 0, "pair": 0}
    to_standby: list[tuple[bytes, tuple[str, int]]] = []
    to_active: list[tuple[bytes, tuple[str, int]]] = []
    bus0 = 0
    blocks: list[tuple[float, float, float]] = []  # CPU of (lone, Active, Standby) per block
    mark = (0.0, 0.0, 0.0)
    for r in range(warm + args.rounds):
        if r > warm and (r - warm) % BLOCK == 0:
            cpu = (lone.cpu, active.cpu, standby.cpu)
            blocks.append((cpu[0] - mark[0], cpu[1] - mark[1], cpu[2] - mark[2]))
            mark = cpu
        if r == warm:
            for side in (lone, active, standby):
                side.cpu = 0.0
            if args.profile:
                side = {"active": active, "standby": standby, "lone": lone}[args.profile]
                side.profile = cProfile.Profile()
            bus0 = sync_counters.SentBUs
            replies = {"lone": 0, "pair": 0}
        now = clock()
        if args.only != "pair":
            for x in lone.turn([(d, MN) for d in reqs_lone.batch(args.batch)], now):
                if x.__class__ is Send:
                    replies["lone"] += 1
        if args.only == "lone":
            continue
        # the Active: acks first (BatchedUdp first=), then the requests
        dgrams = to_active + [(d, MN) for d in reqs_pair.batch(args.batch)]
        to_active = []
        for x in active.turn(dgrams, now):
            if x.__class__ is Send:
                if x.dst[0] == STANDBY:
                    to_standby.append((x.payload, (ACTIVE, PORT)))
                else:
                    replies["pair"] += 1
        for x in standby.turn(to_standby, clock()):
            if x.__class__ is Send and x.dst[0] == ACTIVE:
                to_active.append((x.payload, (STANDBY, PORT)))
        to_standby = []
    for x in active.turn(to_active, clock()):  # the last acks
        if x.__class__ is Send and x.dst[0] != STANDBY:
            replies["pair"] += 1
    per = BLOCK * args.batch / 1e6
    blocks = blocks or [(lone.cpu, active.cpu, standby.cpu)]
    res = {
        "registrations": n,
        "lone_us": statistics.median(b[0] for b in blocks) / per,
        "active_us": statistics.median(b[1] for b in blocks) / per,
        "standby_us": statistics.median(b[2] for b in blocks) / per,
        "active_over_lone": statistics.median(b[1] / b[0] if b[0] else 0.0 for b in blocks),
        "blocks": len(blocks),
        "replies": replies,
        "records_per_bu": n / max(1, sync_counters.SentBUs - bus0),
        "released_unacked": gate.replies_released_unacked,
        "held": gate.replies_held,
    }
    for side in (active, standby, lone):
        if side.profile is not None:
            st = pstats.Stats(side.profile, stream=sys.stdout)
            st.sort_stats("tottime").print_stats(args.top)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mns", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=48, help="requests per event-loop turn")
    p.add_argument("--rounds", type=int, default=400)
    p.add_argument("--profile", choices=("active", "standby", "lone"))
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--only", choices=("lone", "pair"),
        help="run one side only (for instruction counts: callgrind at two --rounds)",
    )  # fmt: skip
    args = p.parse_args(argv)
    r = run(args)
    print(
        f"sans-IO cores, {r['registrations']} registrations in turns of {args.batch}: "
        f"lone {r['lone_us']:.1f} us, Active {r['active_us']:.1f} us "
        f"({r['active_over_lone']:.2f}x lone), Standby {r['standby_us']:.1f} us "
        f"CPU per registration (medians of {r['blocks']} blocks of {BLOCK} turns); "
        f"{r['records_per_bu']:.1f} records/BU; replies {r['replies']}, "
        f"held {r['held']}, released unacknowledged {r['released_unacked']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
