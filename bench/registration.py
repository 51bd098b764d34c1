"""Registration rate of one home agent process on loopback, against a bare UDP echo baseline.

    .venv/bin/python bench/registration.py [--seconds 5] [--inflight 48] [--mns 10000]
                                           [--sizes 0,100000,1000000] [--no-uvloop] [--json]

Everything is measured in the same run on the same event loop type (uvloop unless
``--no-uvloop``):

* **echo**: a bare asyncio ``DatagramProtocol`` that sends every datagram back;
* **ha**: :class:`mobileha.node.home_agent.HomeAgentNode` (the node ``mobileha run`` starts)
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
per pre-loaded binding. Targets (issue 3): ratio >= 0.3; rate at 10^6 bindings within 10%
of the rate at 10^4; <= 400 bytes per binding.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import multiprocessing as mp
import os
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


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def ha_server(
    port: int,
    uv: bool,
    mns: int,
    max_bindings: int,
    ctl: Connection,
    journal: str | None = None,
    commit_ms: int = 10,
) -> None:
    """The HA node; ``ctl`` receives ("load", n): pre-load n more bindings (loop paused),
    answer ("loaded", rss growth in bytes, table size). ``journal``: the binding journal
    file (group commit every ``commit_ms``)."""
    from mobileha.core.binding import Binding, Encap
    from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
    from mobileha.core.security import MobilitySA, SecurityAssociations
    from mobileha.node.home_agent import HomeAgentNode

    loop = _loop(uv)
    asyncio.set_event_loop(loop)
    sas = SecurityAssociations()
    for i in range(mns):
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=f"mn{i}@bench.example"))
    core = HomeAgent(
        HomeAgentSettings(
            HA_ADDR,
            port=port,
            home_prefix="10.0.0.0/16",
            max_bindings=max_bindings + mns + 10,
            max_lifetime=36000,
        ),
        sas,
    )
    from mobileha.core.cluster import AgentSpec, Cluster

    cluster = Cluster([AgentSpec(core)], wall_offset=time.time() - loop.time(), now=loop.time())
    from mobileha.node.journal import BindingJournal

    node = HomeAgentNode(
        cluster,
        name="bench-ha",
        addresses=[HA_ADDR],
        journal=BindingJournal(journal, commit_ms) if journal else None,
    )
    loaded = 0
    coa = "10.200.0.1"
    base = 0x0B000000  # 11.0.0.0/8: outside the pool

    def gen(first: int, n: int, now: float) -> Any:
        for i in range(first, first + n):
            a = base + i
            hoa = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
            yield Binding(
                hoa,
                coa,
                HA_ADDR,
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

    def on_ctl() -> None:
        nonlocal loaded
        cmd, n = ctl.recv()
        if cmd == "load":
            gc.collect()
            rss0 = _rss()
            core.load(gen(loaded, n, loop.time()), loop.time())
            loaded += n
            node.freeze_gc()
            gc.collect()
            ctl.send(("loaded", _rss() - rss0, len(core.table)))

    loop.run_until_complete(node.start())
    loop.add_reader(ctl.fileno(), on_ctl)
    ctl.send(("ready", 0, 0))
    loop.run_forever()


# ----------------------------------------------------------------------------- generator


def generator(port: int, mns: int, inflight: int, ctl: Connection) -> None:
    """Load generator worker: ("warm", s) and ("window", s) commands from ``ctl``; between
    windows it is idle (its outstanding requests are answered into its socket buffer)."""
    nais = [f"mn{i}@bench.example".encode() for i in range(mns)]
    ha_b = socket.inet_aton(HA_ADDR)
    coa_b = socket.inet_aton("127.0.0.1")
    zero = b"\0\0\0\0"
    k64 = KEY.ljust(64, b"\0")
    inner = hashlib.md5(bytes(x ^ 0x36 for x in k64))  # HMAC-MD5 (RFC 2104) by hand
    outer = hashlib.md5(bytes(x ^ 0x5C for x in k64))
    exts = [bytes([131, len(n)]) + n + bytes([32, 20]) + struct.pack("!I", SPI) for n in nais]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", 0))
    s.connect((HOST, port))
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

    primed = False
    while True:
        cmd, seconds = ctl.recv()
        if cmd == "stop":
            return
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
            except TimeoutError:
                timeouts += 1
                for _ in range(inflight):
                    send_one()
                continue
            done += 1
            if data[0] == 3:
                codes[data[1]] = codes.get(data[1], 0) + 1
                low = struct.unpack_from("!Q", data, 12)[0] & 0xFFFFFFFF
            else:
                codes[-1] = codes.get(-1, 0) + 1
                low = struct.unpack_from("!Q", data, 16)[0] & 0xFFFFFFFF
            if not done & 3:
                lat.append(now - sent_at[low & mask])
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
            }
        )


class Target:
    """A server process and its generator worker."""

    def __init__(self, server: Any, port: int, args: argparse.Namespace) -> None:
        ctx = mp.get_context("fork")
        self.server = server
        self.ctl, child = ctx.Pipe(duplex=True)
        self.gen = ctx.Process(
            target=generator, args=(port, args.mns, args.inflight, child), daemon=True
        )
        self.gen.start()

    def window(self, seconds: float, cmd: str = "window") -> dict[str, Any]:
        c0 = _cpu(self.server.pid)
        self.ctl.send((cmd, seconds))
        res: dict[str, Any] = self.ctl.recv()
        res["cpu"] = _cpu(self.server.pid) - c0
        return res

    def close(self) -> None:
        self.ctl.send(("stop", 0))
        self.gen.join(5)
        self.server.kill()
        self.server.join()


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


def core_only(mns: int, sizes: list[int], out: Connection) -> None:
    """CPU microseconds per accepted re-registration in ``HomeAgent.receive_datagram`` alone
    (no sockets, no event loop), at each table size: the core's scaling without the noise
    of two processes sharing the machine. Best of 3 batches of 20,000, process CPU time."""
    from mobileha.core.binding import Binding, Encap
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
            core.load(
                (
                    Binding(
                        socket.inet_ntoa(struct.pack("!I", 0x0B000000 + i)),
                        "10.200.0.1",
                        HA_ADDR,
                        36000,
                        30000.0 + i % 3600,
                        ((3_900_000_000 + i) << 32) | i,
                        0,
                        Encap.IPIP,
                        None,
                        f"pre{i}@bulk.example.net",
                        "10.200.0.1",
                        434,
                    )
                    for i in range(loaded, size)
                ),
                1.0,
            )
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
    args = p.parse_args(argv)
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
        "  targets: ratio >= 0.3 -> "
        + ", ".join(f"{r['ratio_to_echo']:.2f}" for r in runs)
        + "; largest table within 10% of smallest -> rate "
        + f"{big['rate_vs_smallest']:.2f}, CPU {big['cpu_vs_smallest']:.2f}"
        + (
            f"; <= 400 B/binding -> {big.get('rss_bytes_per_binding', 0):.0f}"
            if big["preloaded"]
            else ""
        )
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
