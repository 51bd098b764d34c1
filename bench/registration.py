"""Registration rate of one home agent process on loopback, against a bare UDP echo baseline.

    .venv/bin/python bench/registration.py [--seconds 5] [--inflight 48] [--mns 10000]
                                           [--sizes 0,100000,1000000] [--no-uvloop] [--json]
                                           [--pair [--burst] [--workers 3]] [--asyncio-io]

Everything is measured in the same run on the same event loop type (uvloop unless
``--no-uvloop``):

* **echo**: a bare asyncio ``DatagramProtocol`` that sends every datagram back;
* **ha**: :class:`mobileha.node.home_agent.HomeAgentNode` (the node ``mobileha run`` starts,
  registration sockets served by ``BatchedUdp``; ``--asyncio-io``: asyncio's transport)
  with 10,000 MN-HA SAs (NAI + HMAC-MD5, dynamic home addresses), memory data plane,
  and 0 / 100,000 / 1,000,000 extra bindings pre-loaded in-process through
  ``HomeAgent.load`` (the bulk-sync entry) before the socket opens.

The load generator is a separate process with a blocking socket and ``--inflight``
requests outstanding (closed loop). It builds every request fresh (timestamp
Identification, NAI, MN-HA HMAC-MD5 computed with ``hmac``) and round-robins over the MNs,
so every request is a real authenticated re-registration. It sends the same requests to
the echo server.

* **persistence**: the same HA with the binding journal on (``home_agent.journal``, group
  commit every 10 ms, and a write per datagram), measured in windows alternating with the
  HA without it, before the pre-loaded stages (``--no-persistence`` skips it).

``--aaa`` (root, FreeRADIUS): ``--aaa-mns`` MNs (20,000) register once and then once again
against an HA with their SAs inline and against an HA with one realm entry whose SAs come
from FreeRADIUS (rlm_sql + SQLite): the first-registration rate with SAs from AAA and the
cached rate, next to the inline rates, in the same run.

Printed: requests/s, p50/p99 latency, reply codes, server CPU microseconds per request
(from /proc, so the figure does not depend on the generator's own limit), and the ratios
HA/echo for the closed-loop rate and for server capacity (echo CPU per request / HA CPU per
request). Also the rate at each table size relative to the smallest, and the RSS growth
per pre-loaded binding. The largest table is also measured against the smallest in the
same minutes: a second HA process holds the smallest table and windows alternate between
the two (per-pair rate ratio, median; CPU per request of each), which the two stages'
echo-normalised ratios cannot give on a noisy machine. Targets: ratio >= 0.5; rate at
10^6 bindings >= 0.95x the rate at 10^4; <= 300 bytes per binding.

``--pair``: the lone HA against an Active + Standby pair with binding sync on (the reply
gate holds each reply until the Standby acknowledged the BU of its change), the same
generator workers, windows alternating; prints the pair/lone ratio, the records per BU, the
gate's hold time p50/p99, CPU per request on each side; ``--burst``: every MN registers at
once (open loop, MN-like retransmissions), lone and pair; finally the Active is killed
with SIGKILL in the middle of a window and every registration it acknowledged must be on
the Standby. Targets: pair >= 0.8x lone, gate p99 <= 5 ms, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import multiprocessing as mp
import os
import select
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.9.1"
HA_ADDR = HOST
KEY = bytes(range(16))
SPI = 256
NTP = 2208988800
RRQ = struct.Struct("!BBH4s4s4sQ")
BATCH_IO = [True]  # the HA nodes' registration sockets: BatchedUdp (--asyncio-io: transport)
PAIR_SYNC: dict[str, Any] = {}  # extra SyncConfig fields of the pair (--flush-delay, ...)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _udp_drops(port: int) -> int:
    """Datagrams dropped so far by the UDP sockets bound to ``port`` (/proc/net/udp, the
    last column: receive buffer full)."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                total += int(fields[-1])
    return total


def _loop(uv: bool) -> asyncio.AbstractEventLoop:
    if uv:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# ----------------------------------------------------------------------------- servers


def echo_server(port: int, uv: bool, ready: Connection) -> None:
    loop = _loop(uv)
    asyncio.set_event_loop(loop)

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.t.sendto(data, addr)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((HOST, port))
    loop.run_until_complete(loop.create_datagram_endpoint(Echo, sock=sock))
    ready.send(("ready", 0, 0))
    loop.run_forever()


def _home_agent(own: str, ha_address: str | None, port: int, mns: int, max_bindings: int) -> Any:
    """A home agent core on ``own``:port with the benchmark's ``mns`` MN-HA SAs."""
    from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
    from mobileha.core.security import MobilitySA, SecurityAssociations

    sas = SecurityAssociations()
    for i in range(mns):
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=f"mn{i}@bench.example"))
    settings = HomeAgentSettings(
        own,
        ha_address=ha_address,
        port=port,
        home_prefix="10.0.0.0/16",
        max_bindings=max_bindings,
        max_lifetime=36000,
    )
    return HomeAgent(settings, sas)


def ha_server(
    port: int,
    uv: bool,
    mns: int,
    max_bindings: int,
    ctl: Connection,
    journal: str | None = None,
    commit_ms: int = 10,
    profile: str | None = None,
) -> None:
    """The HA node; ``ctl`` receives ("load", n): pre-load n more bindings (loop paused),
    answer ("loaded", rss growth in bytes, table size). ``journal``: the binding journal
    file (group commit every ``commit_ms``). ``profile``: a directory where the cProfile
    statistics between two ("io", 0) commands are written (``lone.prof``)."""
    from memory import bindings as preload  # bench/memory.py: the same bindings
    from mobileha.node.home_agent import HomeAgentNode

    loop = _loop(uv)
    asyncio.set_event_loop(loop)
    core = _home_agent(HA_ADDR, None, port, mns, max_bindings + mns + 10)
    from mobileha.core.cluster import AgentSpec, Cluster

    cluster = Cluster([AgentSpec(core)], wall_offset=time.time() - loop.time(), now=loop.time())
    from mobileha.node.journal import BindingJournal

    node = HomeAgentNode(
        cluster,
        name="bench-ha",
        addresses=[HA_ADDR],
        journal=BindingJournal(journal, commit_ms) if journal else None,
        batch_io=BATCH_IO[0],
    )
    loaded = 0
    prof = None
    profiling = [False]
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()

    def on_ctl() -> None:
        nonlocal loaded
        cmd, n = ctl.recv()
        if cmd == "load":
            gc.collect()
            rss0 = _rss()
            core.load(preload(n, loop.time(), first=loaded), loop.time())
            loaded += n
            node.freeze_gc()
            gc.collect()
            ctl.send(("loaded", _rss() - rss0, len(core.table)))
        elif cmd == "io":  # (read batches, datagrams read) of the registration sockets
            if prof is not None:
                if profiling[0]:
                    prof.disable()
                    prof.dump_stats(os.path.join(str(profile), "lone.prof"))
                else:
                    prof.enable()
                profiling[0] = not profiling[0]
            ts = node._transports.values()
            ctl.send(
                (
                    sum(getattr(t, "batches", 0) for t in ts),
                    sum(getattr(t, "received", 0) for t in ts),
                )
            )

    loop.run_until_complete(node.start())
    loop.add_reader(ctl.fileno(), on_ctl)
    ctl.send(("ready", 0, 0))
    loop.run_forever()


PAIR_ACTIVE = "127.0.9.2"  # the pair's HA address (the Active's own address)
PAIR_STANDBY = "127.0.9.3"
SYNC_SPI = 400
SYNC_KEY = bytes(range(100, 116))


def pair_server(
    role: str,
    port: int,
    uv: bool,
    mns: int,
    bu_window: int,
    ctl: Connection,
    profile: str | None = None,
) -> None:
    """One HA of the pair: the Active (answers on ``PAIR_ACTIVE``, syncs to the Standby) or
    the Standby (on ``PAIR_STANDBY``, applies the Active's BUs). No HSRP: the roles are
    fixed, the reply gate and the BU path are the production ones. ``ctl`` commands:
    ("stats", 0) -> counters, gate hold times since the last call; ("table", 0) ->
    {MN index: low 32 bits of its binding's Identification}. ``profile``: a directory where
    the process's cProfile statistics (since the end of the warm-up) are written at each
    ("stats", 0) command, as ``<role>.prof``."""
    from mobileha.core.cluster import AgentSpec, Cluster
    from mobileha.core.sync import SyncConfig
    from mobileha.node.home_agent import HomeAgentNode
    from mobileha.wire.auth import Authenticator

    loop = _loop(uv)
    asyncio.set_event_loop(loop)
    own, peer = (PAIR_ACTIVE, PAIR_STANDBY) if role == "active" else (PAIR_STANDBY, PAIR_ACTIVE)
    core = _home_agent(own, PAIR_ACTIVE, port, mns, mns + 10)
    sync = SyncConfig(
        peer_addr=peer,
        ha_addr=PAIR_ACTIVE,
        spi=SYNC_SPI,
        authenticator=Authenticator(SYNC_KEY, "hmac-md5"),
        port=port,
        bu_window=bu_window,
        **PAIR_SYNC,
    )
    # the Standby's core is silent and keeps its bindings out of the data plane, as HSRP
    # Standby makes it (no HSRP here: the roles are fixed)
    core.active = role == "active"
    cluster = Cluster(
        [AgentSpec(core, sync)], wall_offset=time.time() - loop.time(), now=loop.time()
    )
    agent = cluster.agents[0]
    gate = agent.gate
    assert gate is not None and agent.sync is not None
    gate.hold_times = []
    node = HomeAgentNode(cluster, name=f"bench-{role}", addresses=[own], batch_io=BATCH_IO[0])

    prof = None
    profiling = [False]
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()

    def on_ctl() -> None:
        os.set_blocking(ctl.fileno(), True)  # the loop's reader made it non-blocking
        cmd, _ = ctl.recv()
        if cmd == "stats":
            assert gate is not None and agent.sync is not None
            if prof is not None:
                if profiling[0]:
                    prof.disable()
                    prof.dump_stats(os.path.join(str(profile), f"{role}.prof"))
                profiling[0] = True
                prof.enable()
            times, gate.hold_times = gate.hold_times or [], []
            ctl.send(
                {
                    "counters": agent.sync.counters.as_dict(),
                    "hold_times": times[:: max(1, len(times) // 20000)],
                    "held": gate.replies_held,
                    "released_unacked": gate.replies_released_unacked,
                    "table": len(core.table),
                    "io": [
                        (getattr(t, "batches", 0), getattr(t, "received", 0))
                        for t in node._transports.values()
                    ],
                }
            )
        elif cmd == "table":
            out: dict[int, int] = {}
            for b in list(core.table):
                nai = b.nai or ""
                if nai.startswith("mn"):
                    out[int(nai[2:].split("@")[0])] = b.ident & 0xFFFFFFFF
            ctl.send(out)

    loop.run_until_complete(node.start())
    loop.add_reader(ctl.fileno(), on_ctl)
    ctl.send(("ready", 0, 0))
    loop.run_forever()


# ----------------------------------------------------------------------------- generator


def generator(
    port: int,
    mns: int,
    inflight: int,
    ctl: Connection,
    host: str = HOST,
    worker: int = 0,
    workers: int = 1,
) -> None:
    """Load generator worker: ("warm", s) and ("window", s) commands from ``ctl``; between
    windows it is idle (its outstanding requests are answered into its socket buffer).
    ``worker`` of ``workers``: this worker registers the MNs whose index is ``worker``
    modulo ``workers`` (each MN's Identifications come from one process). ("acked", 0)
    answers {MN index: the highest sequence number (low 32 bits of the Identification)
    of its requests the HA accepted}."""
    nais = [f"mn{i}@bench.example".encode() for i in range(worker, mns, workers)]
    index = list(range(worker, mns, workers))
    acked: dict[int, int] = {}
    ha_b = socket.inet_aton(HA_ADDR)
    coa_b = socket.inet_aton("127.0.0.1")
    zero = b"\0\0\0\0"
    k64 = KEY.ljust(64, b"\0")
    inner = hashlib.md5(bytes(x ^ 0x36 for x in k64))  # HMAC-MD5 (RFC 2104) by hand
    outer = hashlib.md5(bytes(x ^ 0x5C for x in k64))
    exts = [bytes([131, len(n)]) + n + bytes([32, 20]) + struct.pack("!I", SPI) for n in nais]
    mns = len(nais)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    s.connect((host, port))
    s.settimeout(0.2)
    seq = 0
    mask = (1 << 16) - 1
    sent_at = [0.0] * (mask + 1)
    perf = time.perf_counter
    sec_hi = (int(time.time()) + NTP) << 32
    pack = RRQ.pack
    send = s.send

    def send_one() -> None:
        nonlocal seq, sec_hi
        seq += 1
        if not seq & 1023:
            sec_hi = (int(time.time()) + NTP) << 32
        covered = pack(1, 0, 1800, zero, ha_b, coa_b, sec_hi | seq) + exts[seq % mns]
        i = inner.copy()
        i.update(covered)
        o = outer.copy()
        o.update(i.digest())
        sent_at[seq & mask] = perf()
        send(covered + o.digest())

    def send_mn(m: int) -> int:
        nonlocal seq
        seq += 1
        covered = pack(1, 0, 1800, zero, ha_b, coa_b, ((int(time.time()) + NTP) << 32) | seq)
        covered += exts[m]
        i = inner.copy()
        i.update(covered)
        o = outer.copy()
        o.update(i.digest())
        with contextlib.suppress(ConnectionRefusedError):
            send(covered + o.digest())
        return seq

    def burst(chunk: int) -> dict[str, Any]:
        """Every MN of this worker registers at once, as a fleet of MNs does: ``chunk``
        requests per send burst, unanswered ones retransmitted after 2 s (doubling, as
        an MN backs off); until every MN has its reply."""
        s.setblocking(False)
        while True:  # answers to the closed loop's last requests
            try:
                s.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                break
        pending: dict[int, tuple[int, float, float]] = {}  # seq -> MN, sent at, backoff
        retx = 0
        codes: dict[int, int] = {}
        t0 = perf()

        def drain() -> None:
            while True:
                try:
                    data = s.recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    return
                if data[0] == 3:
                    codes[data[1]] = codes.get(data[1], 0) + 1
                    if data[1] <= 1:
                        low = struct.unpack_from("!Q", data, 12)[0] & 0xFFFFFFFF
                        p = pending.pop(low, None)
                        if p is not None and low > acked.get(p[0], 0):
                            acked[p[0]] = low

        for m in range(mns):
            pending[send_mn(m)] = (m, perf(), 2.0)
            if m % chunk == chunk - 1:
                drain()
        last_check = perf()
        while pending and perf() - t0 < 120:
            r, _, _ = select.select([s], [], [], 0.05)
            if r:
                drain()
            now = perf()
            if now - last_check >= 0.1:
                last_check = now
                for q, (m, at, back) in list(pending.items()):
                    if now - at >= back:
                        del pending[q]
                        pending[send_mn(m)] = (m, now, back * 2)
                        retx += 1
        elapsed = perf() - t0
        s.setblocking(True)
        s.settimeout(0.2)
        return {
            "elapsed": elapsed,
            "retransmissions": retx,
            "unanswered": len(pending),
            "codes": codes,
        }

    primed = False
    while True:
        cmd, seconds = ctl.recv()
        if cmd == "stop":
            return
        if cmd == "acked":
            ctl.send({index[m]: low for m, low in acked.items()})
            continue
        if cmd == "burst":
            ctl.send(burst(int(seconds)))
            continue
        if not primed:
            for _ in range(inflight):
                send_one()
            primed = True
        done = timeouts = 0
        codes: dict[int, int] = {}
        lat: list[float] = []
        t0 = perf()
        t_end = t0 + seconds
        while True:
            now = perf()
            if now >= t_end:
                break
            try:
                data = s.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                timeouts += 1
                for _ in range(inflight):
                    with contextlib.suppress(ConnectionRefusedError):
                        send_one()
                continue
            done += 1
            if data[0] == 3:
                codes[data[1]] = codes.get(data[1], 0) + 1
                low = struct.unpack_from("!Q", data, 12)[0] & 0xFFFFFFFF
                if data[1] <= 1 and low > acked.get(low % mns, 0):
                    acked[low % mns] = low
            else:
                codes[-1] = codes.get(-1, 0) + 1
                low = struct.unpack_from("!Q", data, 16)[0] & 0xFFFFFFFF
            if not done & 3:
                lat.append(now - sent_at[low & mask])
            with contextlib.suppress(ConnectionRefusedError):
                send_one()
        elapsed = perf() - t0
        lat.sort()
        ctl.send(
            {
                "done": done,
                "rate": done / elapsed,
                "p50": lat[len(lat) // 2] if lat else 0.0,
                "p99": lat[int(len(lat) * 0.99)] if lat else 0.0,
                "codes": codes,
                "timeouts": timeouts,
                "lat": lat[:: max(1, len(lat) // 5000)],
            }
        )


class Target:
    """A server process and its generator workers (``workers`` processes sharing
    ``inflight``, each registering its own share of the MNs)."""

    def __init__(
        self,
        server: Any,
        port: int,
        args: argparse.Namespace,
        host: str = HOST,
        workers: int = 1,
    ) -> None:
        ctx = mp.get_context("fork")
        self.server = server
        self.ctls: list[Connection] = []
        self.gens: list[Any] = []
        share = max(1, args.inflight // workers)
        for w in range(workers):
            ctl, child = ctx.Pipe(duplex=True)
            g = ctx.Process(
                target=generator,
                args=(port, args.mns, share, child, host, w, workers),
                daemon=True,
            )
            g.start()
            self.ctls.append(ctl)
            self.gens.append(g)
        self.ctl = self.ctls[0]

    def window(self, seconds: float, cmd: str = "window") -> dict[str, Any]:
        c0 = _cpu(self.server.pid)
        for ctl in self.ctls:
            ctl.send((cmd, seconds))
        parts: list[dict[str, Any]] = [ctl.recv() for ctl in self.ctls]
        res = _merge_workers(parts)
        res["cpu"] = _cpu(self.server.pid) - c0
        return res

    def acked(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for ctl in self.ctls:
            ctl.send(("acked", 0))
            out.update(ctl.recv())
        return out

    def close(self) -> None:
        for ctl in self.ctls:
            ctl.send(("stop", 0))
        for g in self.gens:
            g.join(5)
        self.server.kill()
        self.server.join()


def _merge_workers(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One window's result from its workers' (rates add up; latencies are merged)."""
    if len(parts) == 1:
        return parts[0]
    lat = sorted(x for p in parts for x in p["lat"])
    codes: dict[int, int] = {}
    for p in parts:
        for c, n in p["codes"].items():
            codes[c] = codes.get(c, 0) + n
    return {
        "done": sum(p["done"] for p in parts),
        "rate": sum(p["rate"] for p in parts),
        "p50": lat[len(lat) // 2] if lat else 0.0,
        "p99": lat[int(len(lat) * 0.99)] if lat else 0.0,
        "codes": codes,
        "timeouts": sum(p["timeouts"] for p in parts),
        "lat": lat,
    }


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _summary(ws: list[dict[str, Any]]) -> dict[str, Any]:
    codes: dict[int, int] = {}
    for w in ws:
        for c, n in w["codes"].items():
            codes[c] = codes.get(c, 0) + n
    done = sum(w["done"] for w in ws)
    return {
        "rate": _median([w["rate"] for w in ws]),
        "rates": [round(w["rate"]) for w in ws],
        "p50_us": _median([w["p50"] for w in ws]) * 1e6,
        "p99_us": _median([w["p99"] for w in ws]) * 1e6,
        "server_cpu_us": sum(w["cpu"] for w in ws) / max(1, done) * 1e6,
        "codes": codes,
        "timeouts": sum(w["timeouts"] for w in ws),
    }


def _paired_tables(
    ctx: Any, big: Target, port: int, sizes: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """The largest table against the smallest in the same minutes: a second HA process
    holding the smallest table, its own generator, windows alternating with the HA that
    now holds the largest; the rate ratio per pair of windows (largest / smallest) and its
    median, and the ratio of server CPU per request (smallest / largest). Both HAs see
    the same machine load, which the echo-normalised ratio of two stages does not."""
    ctl, child = ctx.Pipe(duplex=True)
    p = ctx.Process(
        target=ha_server, args=(port, args.uvloop, args.mns, sizes[0], child), daemon=True
    )
    p.start()
    ctl.recv()
    small = Target(p, port, args)
    if sizes[0]:
        ctl.send(("load", sizes[0]))
        ctl.recv()
    small.window(args.warm, "warm")
    sw: list[dict[str, Any]] = []
    bw: list[dict[str, Any]] = []
    for _ in range(args.windows):
        sw.append(small.window(args.seconds))
        bw.append(big.window(args.seconds))
    small.close()
    ratios = [b["rate"] / s["rate"] for b, s in zip(bw, sw)]
    ss, bs = _summary(sw), _summary(bw)
    return {
        "small": sizes[0],
        "big": sizes[-1],
        "ratio": _median(ratios),
        "ratios": [round(x, 3) for x in ratios],
        "cpu_small_us": ss["server_cpu_us"],
        "cpu_big_us": bs["server_cpu_us"],
        "cpu_ratio": ss["server_cpu_us"] / bs["server_cpu_us"] if bs["server_cpu_us"] else 0.0,
        "rate_small": ss["rate"],
        "rate_big": bs["rate"],
    }


def core_only(mns: int, sizes: list[int], out: Connection) -> None:
    """CPU microseconds per accepted re-registration in ``HomeAgent.receive_datagram`` alone
    (no sockets, no event loop), at each table size: the core's scaling without the noise
    of two processes sharing the machine. Best of 3 batches of 20,000, process CPU time."""
    from memory import bindings as preload
    from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
    from mobileha.core.security import MobilitySA, SecurityAssociations

    sas = SecurityAssociations()
    for i in range(mns):
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=f"mn{i}@bench.example"))
    core = HomeAgent(
        HomeAgentSettings(HA_ADDR, home_prefix="10.0.0.0/16", max_bindings=max(sizes) + mns + 10),
        sas,
    )
    k64 = KEY.ljust(64, b"\0")
    inner = hashlib.md5(bytes(x ^ 0x36 for x in k64))
    outer = hashlib.md5(bytes(x ^ 0x5C for x in k64))
    ha_b, coa_b = socket.inet_aton(HA_ADDR), socket.inet_aton("127.0.0.1")
    exts = [
        bytes([131, len(n)]) + n + bytes([32, 20]) + struct.pack("!I", SPI)
        for n in (f"mn{i}@bench.example".encode() for i in range(mns))
    ]
    sec = (int(time.time()) + NTP) << 32
    seq = 0

    def batch(n: int) -> list[bytes]:
        nonlocal seq
        reqs = []
        for _ in range(n):
            seq += 1
            c = RRQ.pack(1, 0, 1800, b"\0" * 4, ha_b, coa_b, sec | seq) + exts[seq % mns]
            i = inner.copy()
            i.update(c)
            o = outer.copy()
            o.update(i.digest())
            reqs.append(c + o.digest())
        return reqs

    loaded = 0
    result = {}
    for size in sizes:
        n = size - loaded
        if n > 0:
            core.load(preload(size - loaded, 0.0, first=loaded), 1.0)
            loaded = size
            gc.collect()
            gc.freeze()
        core.unix_offset = time.time() - 2.0
        src, dst = ("127.0.0.1", 5000), (HA_ADDR, 434)
        for r in batch(mns):  # every MN bound (and its SA hint set) before timing
            core.receive_datagram(r, src, dst, 2.0)
        best = 1e9
        for _ in range(3):
            reqs = batch(20_000)
            t0 = time.process_time()
            for r in reqs:
                core.receive_datagram(r, src, dst, 2.0)
            best = min(best, (time.process_time() - t0) / len(reqs) * 1e6)
        result[size + mns] = best
    out.send(result)


def _persistence(ctx: Any, off: Target, port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Journal on against off: two more HA processes (group commit 10 ms, and a write per
    datagram) measured in windows alternating with the HA without a journal."""
    import tempfile

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mobileha-bench-") as tmp:
        targets = {}
        for i, (name, commit) in enumerate((("commit10", 10), ("commit0", 0))):
            ctl, child = ctx.Pipe(duplex=True)
            p = ctx.Process(
                target=ha_server,
                args=(port + i, args.uvloop, args.mns, 0, child, f"{tmp}/{name}.journal", commit),
                daemon=True,
            )
            p.start()
            ctl.recv()
            targets[name] = Target(p, port + i, args)
            targets[name].window(args.warm, "warm")
        wins: dict[str, list[dict[str, Any]]] = {"off": [], **{n: [] for n in targets}}
        for _ in range(args.windows):
            wins["off"].append(off.window(args.seconds))
            for n, t in targets.items():
                wins[n].append(t.window(args.seconds))
        for t in targets.values():
            t.close()
        out = {n: _summary(w) for n, w in wins.items()}
    return out


# ----------------------------------------------------------------------------- --aaa

AAA_KEY = b"bench-mn-ha-key-0001"  # a text key: FreeRADIUS keeps it in a string attribute
AAA_SPI = 1000


def aaa_ha_server(port: int, uv: bool, mns: int, radius_port: int, ctl: Connection) -> None:
    """A home agent node whose MN-HA SAs are inline (``radius_port`` 0: one exact entry
    per MN) or fetched from FreeRADIUS (one realm entry with source aaa). ``ctl``:
    ("stats", 0) -> its SA cache counters and its RADIUS client's."""
    from mobileha.aaa.radius import RadiusAaa
    from mobileha.core.cluster import AgentSpec, Cluster
    from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
    from mobileha.core.security import SOURCE_AAA, MobilitySA, RealmEntry, SecurityAssociations
    from mobileha.core.subscribers import SubscriberSettings
    from mobileha.node.home_agent import HomeAgentNode

    loop = _loop(uv)
    asyncio.set_event_loop(loop)
    sas = SecurityAssociations()
    fetcher = None
    if radius_port:
        sas.add_realm(RealmEntry("@bench.example", SOURCE_AAA, algorithm="hmac-md5"))
        fetcher = RadiusAaa(("127.0.0.1", radius_port), b"testing123", timeout_s=1.0, retries=2)
    else:
        for i in range(mns):
            sas.add_mn(MobilitySA(AAA_SPI, AAA_KEY, "hmac-md5", nai=f"mn{i}@bench.example"))
    core = HomeAgent(
        HomeAgentSettings(
            HA_ADDR, port=port, home_prefix="10.0.0.0/14", max_bindings=mns + 10,
            max_lifetime=36000, subscribers=SubscriberSettings(timeout_s=10.0),
        ),
        sas,
    )  # fmt: skip
    cluster = Cluster([AgentSpec(core)], wall_offset=time.time() - loop.time(), now=loop.time())
    node = HomeAgentNode(cluster, name="bench-ha", addresses=[HA_ADDR], sa_fetcher=fetcher)

    def on_ctl() -> None:
        ctl.recv()
        ctl.send({**core.subs.counters(), **(fetcher.stats() if fetcher else {})})

    loop.run_until_complete(node.start())
    loop.add_reader(ctl.fileno(), on_ctl)
    ctl.send("ready")
    loop.run_forever()


def aaa_rrq(mn: int, seq: int, sec_hi: int) -> bytes:
    """MN ``mn``'s registration (NAI ``mn<mn>@bench.example``, HMAC-MD5 with AAA_KEY)."""
    k64 = AAA_KEY.ljust(64, b"\0")
    n = f"mn{mn}@bench.example".encode()
    covered = (
        RRQ.pack(1, 0, 1800, b"\0" * 4, socket.inet_aton(HA_ADDR),
                 socket.inet_aton("127.0.0.1"), sec_hi | seq)
        + bytes([131, len(n)]) + n + bytes([32, 20]) + struct.pack("!I", AAA_SPI)
    )  # fmt: skip
    inner = hashlib.md5(bytes(x ^ 0x36 for x in k64) + covered).digest()
    return covered + hashlib.md5(bytes(x ^ 0x5C for x in k64) + inner).digest()


def one_pass(port: int, mns: int, inflight: int, out: Connection) -> None:
    """Every MN registers once (``inflight`` outstanding; a request unanswered for 1 s is
    sent again with a new Identification): the time until all are accepted, the codes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    s.connect((HOST, port))
    s.settimeout(0.05)
    seq = 0
    pending: dict[int, tuple[int, float]] = {}  # low ident -> (MN, sent at)
    sec_hi = (int(time.time()) + NTP) << 32
    codes: dict[int, int] = {}
    resent = 0

    def send(mn: int) -> None:
        nonlocal seq, sec_hi
        seq += 1
        if not seq & 255:  # timestamps within the HA's replay window however long the pass
            sec_hi = (int(time.time()) + NTP) << 32
        pending[seq] = (mn, time.perf_counter())
        s.send(aaa_rrq(mn, seq, sec_hi))

    t0 = time.perf_counter()
    nxt = 0
    accepted = 0
    while accepted < mns:
        while nxt < mns and len(pending) < inflight:
            send(nxt)
            nxt += 1
        try:
            data = s.recv(2048)
        except TimeoutError:
            now = time.perf_counter()
            for low, (mn, at) in list(pending.items()):
                if now - at > 1.0:
                    del pending[low]
                    resent += 1
                    send(mn)
            continue
        low = struct.unpack_from("!Q", data, 12)[0] & 0xFFFFFFFF
        got = pending.pop(low, None)
        if got is None:
            continue
        codes[data[1]] = codes.get(data[1], 0) + 1
        if data[1] in (0, 1):
            accepted += 1
        else:
            send(got[0])
    out.send({"seconds": time.perf_counter() - t0, "codes": codes, "resent": resent})


def fire(port: int, first: int, count: int) -> None:
    """One registration each of MNs ``first .. first + count - 1``, not waiting for answers
    (with AAA down: fetches that hang until the core's deadline)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        sec_hi = (int(time.time()) + NTP) << 32
        for mn in range(first, first + count):
            s.sendto(aaa_rrq(mn, mn, sec_hi), (HOST, port))


def aaa_main(args: argparse.Namespace) -> int:
    """``--aaa``: first registrations with SAs from FreeRADIUS (rlm_sql + SQLite), then the
    same MNs again (SAs cached), next to an HA with the same SAs inline, in one run."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tempfile
    from pathlib import Path

    from tests.helpers.freeradius import FreeRadius, subscriber_db

    mns = args.aaa_mns
    ctx = mp.get_context("fork")
    d = Path(tempfile.mkdtemp(prefix="mobileha-bench-aaa-", dir="/tmp"))
    d.chmod(0o755)
    db = d / "subs.db"
    subscriber_db(
        db, ((f"mn{i}@bench.example", AAA_SPI, AAA_KEY.decode(), None) for i in range(mns))
    )
    radius = FreeRadius(db=db, debug=False)
    results: dict[str, Any] = {"mns": mns, "inflight": args.inflight}
    try:
        for name, rport in (("inline", 0), ("aaa", radius.port)):
            port = 44000 + os.getpid() % 1000 + (1 if rport else 0)
            ctl, child = ctx.Pipe(duplex=True)
            srv = ctx.Process(target=aaa_ha_server, args=(port, args.uvloop, mns, rport, child))
            srv.start()
            ctl.recv()
            for phase in ("first", "again", "down"):
                if phase == "down":  # AAA down, its in-flight bound full of hanging fetches
                    if rport:
                        radius.stop()
                    fire(port, mns, 256)
                    time.sleep(0.2)
                r, w = ctx.Pipe(duplex=False)
                g = ctx.Process(target=one_pass, args=(port, mns, args.inflight, w))
                g.start()
                res = r.recv()
                g.join()
                res["rate"] = mns / res["seconds"]
                results[f"{name}_{phase}"] = res
            ctl.send(("stats", 0))
            results[f"{name}_stats"] = ctl.recv()
            srv.kill()
            srv.join()
    finally:
        radius.stop()
        import shutil

        shutil.rmtree(d, ignore_errors=True)
    i1, i2, i3 = results["inline_first"], results["inline_again"], results["inline_down"]
    a1, a2, a3 = results["aaa_first"], results["aaa_again"], results["aaa_down"]
    st = results["aaa_stats"]
    lines = [
        f"registration benchmark --aaa ({mns:,} MNs, {args.inflight} in flight; FreeRADIUS "
        "rlm_sql + SQLite; every MN registers once, then once again)",
        f"  inline SAs     first {i1['rate']:8.0f} reg/s   again {i2['rate']:8.0f} reg/s",
        f"  SAs from AAA   first {a1['rate']:8.0f} reg/s   again {a2['rate']:8.0f} reg/s (cached)",
        f"  AAA down, 256 fetches hanging: cached {a3['rate']:8.0f} reg/s (inline HA with"
        f" 256 unknown NAIs: {i3['rate']:.0f} reg/s)",
        f"  ratios to inline: first {a1['rate'] / i1['rate']:.2f}, cached "
        f"{a2['rate'] / i2['rate']:.2f}, cached with AAA down {a3['rate'] / i3['rate']:.2f}",
        f"  RADIUS: {st.get('sa_requests', 0)} requests ({st['sa_cache_misses']} misses, "
        f"{st['sa_cache_hits']} cache hits), mean latency "
        f"{1000 * st['aaa_latency_sum_s'] / max(1, st['aaa_latency_count']):.1f} ms, max "
        f"{1000 * st['aaa_latency_max_s']:.1f} ms, busy drops {st['aaa_busy']}, "
        f"MN retransmissions {a1['resent']}",
    ]
    print("\n".join(lines))
    if args.json:
        print(json.dumps(results, default=str))
    return 0


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else 0.0


def run_pair(args: argparse.Namespace) -> dict[str, Any]:
    """``--pair``: the lone HA and an Active + Standby pair with sync (the reply gate holds
    each reply until the Standby acknowledged its BU), the same generator workers, windows
    alternating; then the Active is killed (SIGKILL) in the middle of a window and every
    registration it acknowledged must be on the Standby."""
    ctx = mp.get_context("fork")
    port = 44000 + os.getpid() % 1000
    ctl, child = ctx.Pipe(duplex=True)
    lone_p = ctx.Process(
        target=ha_server,
        args=(port, args.uvloop, args.mns, 0, child, None, 10, args.profile),
        daemon=True,
    )
    lone_p.start()
    ctl.recv()
    sides: dict[str, tuple[Any, Connection]] = {}
    for role in ("standby", "active"):
        c, ch = ctx.Pipe(duplex=True)
        pr = ctx.Process(
            target=pair_server,
            args=(role, port + 1, args.uvloop, args.mns, args.bu_window, ch, args.profile),
            daemon=True,
        )
        pr.start()
        c.recv()
        sides[role] = (pr, c)
    act_p, act_c = sides["active"]
    sby_p, sby_c = sides["standby"]

    def stats(c: Connection) -> dict[str, Any]:
        c.send(("stats", 0))
        r: dict[str, Any] = c.recv()
        return r

    lone = Target(lone_p, port, args, HOST, args.workers)
    pair = Target(act_p, port + 1, args, PAIR_ACTIVE, args.workers)
    lone.window(args.warm, "warm")
    pair.window(args.warm, "warm")
    stats(act_c)
    s0_all, a0_all = stats(sby_c), stats(act_c)
    s0, a0 = s0_all["counters"], a0_all["counters"]

    def lone_io() -> tuple[int, int]:
        ctl.send(("io", 0))
        r: tuple[int, int] = ctl.recv()
        return r

    lio0 = lone_io()
    lw: list[dict[str, Any]] = []
    pw: list[dict[str, Any]] = []
    sby_cpu = 0.0
    holds: list[float] = []
    for _ in range(args.windows):
        lw.append(lone.window(args.seconds))
        c0 = _cpu(sby_p.pid)
        pw.append(pair.window(args.seconds))
        sby_cpu += _cpu(sby_p.pid) - c0
        holds += stats(act_c)["hold_times"]
    s1_all, a1 = stats(sby_c), stats(act_c)
    s1 = s1_all["counters"]
    res: dict[str, Any] = {"lone": _summary(lw), "pair": _summary(pw)}
    res["ratios"] = [round(p["rate"] / q["rate"], 3) for p, q in zip(pw, lw)]
    res["pair_over_lone"] = _median([p["rate"] / q["rate"] for p, q in zip(pw, lw)])
    done = sum(w["done"] for w in pw)
    bus = s1["ReceivedBUs"] - s0["ReceivedBUs"]
    recs = (s1["AppliedRecords"] + s1["StaleRecords"]) - (s0["AppliedRecords"] + s0["StaleRecords"])
    a1c = a1["counters"]
    res["bu"] = {
        "records_per_bu": recs / bus if bus else 0.0,
        "bus": bus,
        "records": recs,
        "retransmitted": (a1c["TotalSentBUs"] - a1c["SentBUs"])
        - (a0["TotalSentBUs"] - a0["SentBUs"]),
        "failed": a1c["FailedBUs"] - a0["FailedBUs"],
        "released_unacked": a1["released_unacked"],
    }

    def per_batch(x0: dict[str, Any], x1: dict[str, Any]) -> float:
        b = sum(x[0] for x in x1["io"]) - sum(x[0] for x in x0["io"])
        n = sum(x[1] for x in x1["io"]) - sum(x[1] for x in x0["io"])
        return n / b if b else 0.0

    lio1 = lone_io()
    res["read_batch"] = {
        "lone": (lio1[1] - lio0[1]) / max(1, lio1[0] - lio0[0]),
        "active": per_batch(a0_all, a1),
        "standby": per_batch(s0_all, s1_all),
    }
    res["gate_us"] = {"p50": _pct(holds, 0.5) * 1e6, "p99": _pct(holds, 0.99) * 1e6}
    res["standby_cpu_us"] = sby_cpu / max(1, done) * 1e6

    if args.burst:
        # every MN at once, as a fleet registers (the gate holds the whole burst)
        for name, t, p in (("lone", lone, port), ("pair", pair, port + 1)):
            c0 = _cpu(t.server.pid)
            d0 = _udp_drops(p)
            for c in t.ctls:
                c.send(("burst", 200))
            parts = [c.recv() for c in t.ctls]
            codes: dict[int, int] = {}
            for p in parts:
                for k, v in p["codes"].items():
                    codes[k] = codes.get(k, 0) + v
            res["burst_" + name] = {
                "codes": codes,
                "udp_drops": _udp_drops(p) - d0,
                "elapsed": max(p["elapsed"] for p in parts),
                "retransmissions": sum(p["retransmissions"] for p in parts),
                "unanswered": sum(p["unanswered"] for p in parts),
                "cpu": _cpu(t.server.pid) - c0,
            }

    # kill -9 of the Active in the middle of a window
    for c in pair.ctls:
        c.send(("window", args.seconds))
    time.sleep(args.seconds / 2)
    before = stats(act_c)
    os.kill(act_p.pid, 9)
    act_p.join()
    for c in pair.ctls:
        c.recv()
    acked = pair.acked()
    sby_c.send(("table", 0))
    table: dict[int, int] = sby_c.recv()
    lost = [mn for mn, low in acked.items() if table.get(mn, -1) < low]
    res["kill"] = {
        "acked_mns": len(acked),
        "standby_bindings": len(table),
        "lost": len(lost),
        "released_unacked": before["released_unacked"],
    }
    lone.close()
    for c in pair.ctls:
        c.send(("stop", 0))
    sby_p.kill()
    return res


def print_pair(args: argparse.Namespace, r: dict[str, Any]) -> None:
    lo, pa = r["lone"], r["pair"]
    print(
        f"registration pair benchmark ({'uvloop' if args.uvloop else 'asyncio'}, {args.mns} "
        f"MNs, {args.inflight} in flight over {args.workers} generator processes, "
        f"{args.windows} alternating lone/pair windows of {args.seconds:.0f} s)"
    )
    print(
        f"  lone HA      {lo['rate']:9.0f} req/s  p50 {lo['p50_us']:6.0f} us  p99 "
        f"{lo['p99_us']:6.0f} us  server {lo['server_cpu_us']:5.1f} us CPU/req  codes {lo['codes']}"
    )
    print(
        f"  pair (sync)  {pa['rate']:9.0f} req/s  p50 {pa['p50_us']:6.0f} us  p99 "
        f"{pa['p99_us']:6.0f} us  active {pa['server_cpu_us']:5.1f} us + standby "
        f"{r['standby_cpu_us']:5.1f} us CPU/req  codes {pa['codes']}  stalls {pa['timeouts']}"
    )
    bu = r["bu"]
    print(
        f"  pair/lone {r['pair_over_lone']:.2f} (windows {r['ratios']}); BU batching "
        f"{bu['records_per_bu']:.1f} records/BU ({bu['bus']} BUs, {bu['retransmitted']} "
        f"retransmitted, {bu['failed']} failed); reply gate hold p50 "
        f"{r['gate_us']['p50']:.0f} us p99 {r['gate_us']['p99']:.0f} us (loop clock); "
        f"replies released unacknowledged {bu['released_unacked']}; datagrams per read "
        f"batch: " + ", ".join(f"{k} {v:.1f}" for k, v in r["read_batch"].items())
    )
    for name in ("lone", "pair"):
        b = r.get("burst_" + name)
        if b:
            print(
                f"  burst of {args.mns} registrations ({name}): {b['elapsed']:.2f} s = "
                f"{args.mns / b['elapsed']:.0f}/s, {b['retransmissions']} retransmissions, "
                f"{b['unanswered']} unanswered, server CPU {b['cpu']:.2f} s, dropped by the "
                f"full receive buffer {b['udp_drops']}, replies {b['codes']}"
            )
    k = r["kill"]
    print(
        f"  kill -9 of the Active mid-window: {k['acked_mns']} MNs acknowledged, "
        f"{k['standby_bindings']} bindings on the Standby, lost {k['lost']} (replies the "
        f"gate let go unacknowledged, the Standby silent for 0.5 s: {k['released_unacked']})"
    )
    print(
        f"  targets: pair/lone >= 0.8 -> {r['pair_over_lone']:.2f}; gate p99 <= 5 ms -> "
        f"{r['gate_us']['p99'] / 1000:.2f} ms; lost on kill -9 = 0 -> {k['lost']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="length of one window")
    p.add_argument("--windows", type=int, default=5, help="echo/HA window pairs per stage")
    p.add_argument("--warm", type=float, default=2.0)
    p.add_argument("--inflight", type=int, default=48)
    p.add_argument("--mns", type=int, default=10_000)
    p.add_argument("--sizes", default="0,100000,1000000", help="pre-loaded bindings per stage")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-persistence", dest="persistence", action="store_false",
        help="skip the journal on/off stage",
    )  # fmt: skip
    p.add_argument("--aaa", action="store_true", help="SAs from FreeRADIUS vs inline (needs root)")
    p.add_argument("--aaa-mns", type=int, default=20_000, help="subscribers for --aaa")
    p.add_argument("--pair", action="store_true", help="lone HA vs Active + Standby with sync")
    p.add_argument(
        "--asyncio-io",
        action="store_true",
        help="serve the HA sockets with asyncio's datagram transport, not BatchedUdp",
    )
    p.add_argument("--workers", type=int, default=3, help="generator processes (--pair)")
    p.add_argument("--bu-window", type=int, default=64, help="BUs in flight (--pair)")
    p.add_argument("--burst", action="store_true", help="--pair: also every MN at once, open loop")
    p.add_argument("--flush-delay", type=float, help="--pair: sync flush_delay (s)")
    p.add_argument("--max-message", type=int, help="--pair: sync max_message (bytes)")
    p.add_argument(
        "--profile", metavar="DIR", help="--pair: cProfile the Active and Standby into DIR"
    )
    args = p.parse_args(argv)
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)  # (the servers dump their profiles there)
    if args.flush_delay is not None:
        PAIR_SYNC["flush_delay"] = args.flush_delay
    if args.max_message is not None:
        PAIR_SYNC["max_message"] = args.max_message
    BATCH_IO[0] = not args.asyncio_io
    if args.pair:
        r = run_pair(args)
        print_pair(args, r)
        if args.json:
            print(json.dumps(r, default=str))
        return 0
    if args.aaa:
        return aaa_main(args)
    sizes = sorted(int(x) for x in args.sizes.split(",") if x)
    loop_name = "uvloop" if args.uvloop else "asyncio"
    ctx = mp.get_context("fork")
    port = 43000 + os.getpid() % 1000

    r, w = ctx.Pipe(duplex=False)
    echo_p = ctx.Process(target=echo_server, args=(port, args.uvloop, w), daemon=True)
    echo_p.start()
    r.recv()
    ctl, child = ctx.Pipe(duplex=True)
    ha_p = ctx.Process(
        target=ha_server, args=(port + 1, args.uvloop, args.mns, max(sizes), child), daemon=True
    )
    ha_p.start()
    ctl.recv()
    echo = Target(echo_p, port, args)
    ha = Target(ha_p, port + 1, args)
    echo.window(args.warm, "warm")
    ha.window(args.warm, "warm")  # every MN registered once: re-registrations from here on
    persistence = _persistence(ctx, ha, port + 2, args) if args.persistence else None
    runs: list[dict[str, Any]] = []
    echo_all: list[dict[str, Any]] = []
    have = 0
    for n in sizes:
        growth = 0
        if n > have:
            ctl.send(("load", n - have))
            if not ctl.poll(900):
                raise RuntimeError("pre-load did not finish")
            _, growth, _table = ctl.recv()
            ha.window(0.5, "warm")
        ew: list[dict[str, Any]] = []
        hw: list[dict[str, Any]] = []
        for _ in range(args.windows):  # alternate: both see the same machine load
            ew.append(echo.window(args.seconds))
            hw.append(ha.window(args.seconds))
        res = _summary(hw)
        res["echo"] = _summary(ew)
        res["pair_ratios"] = [round(h["rate"] / e["rate"], 3) for h, e in zip(hw, ew)]
        res["ratio_to_echo"] = _median([h["rate"] / e["rate"] for h, e in zip(hw, ew)])
        res["preloaded"] = n
        res["rss_growth_bytes"] = growth
        res["loaded_now"] = n - have
        have = n
        runs.append(res)
        echo_all.extend(ew)
    paired = _paired_tables(ctx, ha, port + 3, sizes, args) if len(sizes) > 1 else None
    echo.close()
    ha.close()
    echo_sum = _summary(echo_all)

    cr, cw = ctx.Pipe(duplex=False)
    cp = ctx.Process(target=core_only, args=(args.mns, sizes, cw), daemon=True)
    cp.start()
    core_us: dict[int, float] = cr.recv()
    cp.join()
    base = runs[0]
    out: dict[str, Any] = {"loop": loop_name, "mns": args.mns, "inflight": args.inflight}
    out["echo"] = echo_sum
    out["ha"] = runs
    out["core_us_per_request"] = core_us
    out["persistence"] = persistence
    out["paired_tables"] = paired
    lines = [
        f"registration benchmark ({loop_name}, {args.mns} MNs, {args.inflight} in flight, "
        f"{args.windows} alternating echo/HA window pairs of {args.seconds:.0f} s per stage)",
        f"  echo baseline       {echo_sum['rate']:9.0f} req/s  p50 {echo_sum['p50_us']:6.0f} us  "
        f"p99 {echo_sum['p99_us']:6.0f} us  server {echo_sum['server_cpu_us']:5.1f} us CPU/req",
    ]
    for r in runs:
        n = r["preloaded"] + args.mns
        cap = echo_sum["server_cpu_us"] / r["server_cpu_us"] if r["server_cpu_us"] else 0
        r["capacity_ratio_to_echo"] = cap
        r["rate_vs_smallest"] = r["ratio_to_echo"] / base["ratio_to_echo"]
        r["cpu_vs_smallest"] = base["server_cpu_us"] / r["server_cpu_us"]
        lines.append(
            f"  ha {n:>9,} bindings {r['rate']:9.0f} req/s  p50 {r['p50_us']:6.0f} us  "
            f"p99 {r['p99_us']:6.0f} us  server {r['server_cpu_us']:5.1f} us CPU/req  "
            f"ratio {r['ratio_to_echo']:.2f} (pairs {r['pair_ratios']}, capacity {cap:.2f})  "
            f"codes {r['codes']}  stalls {r['timeouts']}"
        )
        lines.append(
            f"      vs smallest table: echo-normalised rate {r['rate_vs_smallest']:.2f}, "
            f"server CPU/req {r['cpu_vs_smallest']:.2f}"
        )
        if r["loaded_now"]:
            per = r["rss_growth_bytes"] / r["loaded_now"]
            r["rss_bytes_per_binding"] = per
            lines.append(
                f"      +{r['loaded_now']:,} pre-loaded bindings: RSS +"
                f"{r['rss_growth_bytes'] / 2**20:.0f} MiB = {per:.0f} bytes/binding"
            )
    smallest = min(core_us)
    lines.append(
        "  core only (in-process, CPU us per accepted request): "
        + ", ".join(
            f"{n:,} bindings {v:.2f} ({core_us[smallest] / v:.2f}x)" for n, v in core_us.items()
        )
    )
    big = runs[-1]
    lines.append(
        "  targets: ratio >= 0.5 -> "
        + ", ".join(f"{r['ratio_to_echo']:.2f}" for r in runs)
        + "; largest table >= 0.95x the smallest -> rate "
        + f"{big['rate_vs_smallest']:.2f}, CPU {big['cpu_vs_smallest']:.2f}"
        + (
            f"; <= 300 B/binding -> {big.get('rss_bytes_per_binding', 0):.0f}"
            if big["preloaded"]
            else ""
        )
    )
    if paired is not None:
        lines.append(
            f"  largest vs smallest table, paired windows (a second HA holding "
            f"{paired['small'] + args.mns:,} bindings, windows alternating with the "
            f"{paired['big'] + args.mns:,}-binding HA): rate {paired['ratio']:.2f} (windows "
            f"{paired['ratios']}), server CPU/req {paired['cpu_ratio']:.2f} "
            f"({paired['cpu_small_us']:.1f} vs {paired['cpu_big_us']:.1f} us)"
        )
    if persistence is not None:
        off = persistence["off"]
        for name, label in (
            ("commit10", "journal, commit 10 ms"),
            ("commit0", "journal, write/datagram"),
        ):
            on = persistence[name]
            lines.append(
                f"  persistence: {label:<24} {on['rate']:9.0f} req/s  p99 {on['p99_us']:6.0f} us  "
                f"server {on['server_cpu_us']:5.1f} us CPU/req  vs off {off['rate']:.0f} req/s: "
                f"rate {on['rate'] / off['rate']:.2f}, CPU/req "
                f"{on['server_cpu_us'] / max(off['server_cpu_us'], 1e-9):.2f}x  codes {on['codes']}"
            )
    print("\n".join(lines))
    if args.json:
        print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
