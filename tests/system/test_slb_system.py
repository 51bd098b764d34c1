"""HA-SLB node + DFP over loopback with real processes (fake home agents).

The fake real HAs are honest UDP responders in their own processes: they take the relay tag
(only from the SLB's address), keep a binding per NAI, reply to the FA directly from their
own address, and embed our DFP agent reporting (bindings, max_bindings, 1.0, 1.0).
[The end-to-end run against the real home agent code is in test_slb_e2e.py when that code
is available.]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import sessions_view, slb_dfp_view, slb_stats_view, slb_view
from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings
from tests.helpers import request, until

pytestmark = pytest.mark.timeout(60)

FAKE_HA = r"""
import asyncio, os, socket, struct, sys
from mobileha.node.dfp import DfpAgentServer
from mobileha.wire import DecodeError, mip, slbtag

addr, slb_addr, max_b, dfp_interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
bindings = {}

class P(asyncio.DatagramProtocol):
    def connection_made(self, t):
        self.t = t
    def datagram_received(self, data, src):
        orig = src
        if src[0] == slb_addr and slbtag.has_tag(data):
            try:
                oa, op, data = slbtag.decode(data)
            except DecodeError:
                return
            orig = (oa, op)
        try:
            s = mip.parse_request(data)
            nai = s.nai
        except DecodeError:
            return
        if s.error:
            return
        if s.lifetime == 0:
            bindings.pop(s.nai, None)
            code = 0
        elif len(bindings) >= max_b and s.nai not in bindings:
            code = 130  # insufficient resources
        else:
            bindings[s.nai] = orig
            code = 0
        nai = (s.nai or "").encode()
        rrp = struct.pack("!BBH4s4sQ", 3, code, s.lifetime, s.home_b, socket.inet_aton(addr),
                          s.ident) + bytes([131, len(nai)]) + nai
        if agent is not None:
            agent.poke()  # DFP first: the SLB learns a full HA before the FA's next request
        self.t.sendto(rrp, orig)

agent = None

async def main():
    global agent
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(P, local_addr=(addr, 0))
    port = t.get_extra_info("sockname")[1]
    agent = DfpAgentServer(addr, 0, addr, lambda: (len(bindings), max_b, 1.0, 1.0),
                           interval=dfp_interval, sample_s=0.05, jump=1)
    await agent.start()
    print(f"READY {port} {agent.bound_port}", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _net() -> str:
    # 127.<random>.<random>.x: our own corner of loopback, unique per run
    return f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"


@dataclass
class FakeHa:
    addr: str
    proc: subprocess.Popen[str]
    port: int
    dfp_port: int

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def cont(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


def start_ha(addr: str, slb_addr: str, max_b: int = 100000, interval: float = 0.2) -> FakeHa:
    """One fake real HA process."""
    p = subprocess.Popen(
        [sys.executable, "-c", FAKE_HA, addr, slb_addr, str(max_b), str(interval)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline().split()
    assert line and line[0] == "READY", line
    return FakeHa(addr, p, int(line[1]), int(line[2]))


@contextlib.contextmanager
def has(
    n: int, slb_addr: str, net: str, max_b: int | list[int] = 100000, interval: float = 0.2
) -> Iterator[list[FakeHa]]:
    procs: list[FakeHa] = []
    caps = max_b if isinstance(max_b, list) else [max_b] * n
    try:
        for i in range(n):
            procs.append(start_ha(f"{net}.{11 + i}", slb_addr, caps[i], interval))
        yield procs
    finally:
        for h in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(h.proc.pid, signal.SIGCONT)
            h.proc.kill()
            h.proc.wait()


@dataclass
class Fa(asyncio.DatagramProtocol):
    """A minimal FA: sends RRQs, collects (reply source, NAI, code)."""

    replies: asyncio.Queue[tuple[str, str, int]] = field(default_factory=asyncio.Queue)
    t: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 22 and data[0] == 3:
            nai = data[22 : 22 + data[21]].decode()
            self.replies.put_nowait((addr[0], nai, data[1]))

    def send(self, dst: tuple[str, int], nai: str, ident: int, lifetime: int = 1800) -> None:
        assert self.t is not None
        self.t.sendto(rrq(nai, ident, lifetime), dst)

    async def register(
        self, dst: tuple[str, int], nai: str, retrans: float = 0.1, tries: int = 30
    ) -> tuple[str, int]:
        """Send until a reply for ``nai`` arrives (same Identification each time)."""
        ident = random.getrandbits(64)
        for _ in range(tries):
            self.send(dst, nai, ident)
            deadline = time.monotonic() + retrans
            while (left := deadline - time.monotonic()) > 0:
                try:
                    src, got, code = await asyncio.wait_for(self.replies.get(), left)
                except TimeoutError:
                    break
                if got == nai:
                    return src, code
        raise AssertionError(f"no reply for {nai}")


def rrq(nai: str, ident: int, lifetime: int = 1800, hoa: str = "0.0.0.0") -> bytes:
    """A request as the SLB sees it (no authenticator: the SLB never checks one)."""
    return request(
        ha_addr="0.0.0.0", ident=ident, lifetime=lifetime, home_addr=hoa, nai=nai or None
    )


@contextlib.asynccontextmanager
async def running(settings: SlbSettings, fa_addr: str) -> AsyncIterator[tuple[SlbNode, Fa]]:
    node = SlbNode(settings)
    await node.start()
    loop = asyncio.get_running_loop()
    t, fa = await loop.create_datagram_endpoint(Fa, local_addr=(fa_addr, 0))
    try:
        yield node, fa
    finally:
        t.close()
        await node.stop()


def settings_for(net: str, hs: list[FakeHa], weights: list[int], **kw: Any) -> SlbSettings:
    return SlbSettings(
        virtual_address=f"{net}.100",
        port=0,
        mode="relay",
        reals=[SlbRealSpec(h.addr, h.port, w) for h, w in zip(hs, weights)],
        **kw,
    )


def real(node: SlbNode, addr: str) -> dict[str, object]:
    return next(r for r in slb_view(node)["reals"] if r["address"] == addr)


# ----------------------------------------------------------------------------- tests

# the SLB's two readers: the C module mobileha._slbio (when built) and the Python one
IO = pytest.mark.parametrize("fastpath", [True, False], ids=["slbio", "python-io"])


@IO
def test_relay_spread_by_weight_replies_from_real_and_dereg_direct(fastpath: bool) -> None:
    net = _net()
    with has(3, f"{net}.100", net) as hs:

        async def main() -> None:
            st = settings_for(net, hs, [3, 1, 2], fastpath=fastpath)
            async with running(st, f"{net}.2") as (node, fa):
                vip = node.address
                got: dict[str, str] = {}
                for i in range(60):
                    src, code = await fa.register(vip, f"mn{i}@example.net")
                    assert code == 0
                    got[f"mn{i}@example.net"] = src
                # every reply came from the real HA's own address, spread exactly 3:1:2
                assert Counter(got.values()) == {hs[0].addr: 30, hs[1].addr: 10, hs[2].addr: 20}
                # deregistration goes straight to the real HA (not through the SLB)
                before = node.counters["received"]
                for nai, src in list(got.items())[:10]:
                    h = next(h for h in hs if h.addr == src)
                    fa.send((h.addr, h.port), nai, 7, lifetime=0)
                    s, n, code = await asyncio.wait_for(fa.replies.get(), 2)
                    assert (s, n, code) == (src, nai, 0)
                assert node.counters["received"] == before
                view = slb_view(node)
                assert view["total_sessions"] == 60 and view["forwarded"] == 60
                page = sessions_view(node, {"offset": "50", "limit": "20"})
                assert page["total"] == 60 and len(page["items"]) == 10
                assert page["next_offset"] is None
                assert page["items"][0]["client"].startswith(f"{net}.2:")

        asyncio.run(main())


@IO
def test_sigstop_reassign_failed_retry_testing_inservice(fastpath: bool) -> None:
    net = _net()
    with has(2, f"{net}.100", net) as hs:
        a, b = hs

        async def main() -> None:
            st = settings_for(
                net,
                hs,
                [1, 1],
                reassign=2,
                faildetect_numconns=2,
                faildetect_window_s=0.05,  # each of this one FA's failures counts
                retry_s=1.5,
                session_s=0.6,
                fastpath=fastpath,
            )
            async with running(st, f"{net}.2") as (node, fa):
                vip = node.address
                b.stop()
                # alternate picks: every second new session lands on B, gets no reply,
                # and moves to A after `reassign` retransmissions
                for i in range(4):
                    src, _ = await fa.register(vip, f"x{i}@example.net")
                    assert src == a.addr
                rb = real(node, b.addr)
                assert rb["total_failures"] == 2
                assert rb["state"] == "failed"
                assert node.farm.counters["reassignments"] == 2
                # FAILED: nothing new goes to B
                n_before = rb["total_conns"]
                for i in range(6):
                    src, _ = await fa.register(vip, f"y{i}@example.net")
                    assert src == a.addr
                assert real(node, b.addr)["total_conns"] == n_before
                # retry interval -> readyToTest; B answers again; the next session is the test
                b.cont()
                retry_in = real(node, b.addr)["retry_in_s"]
                assert isinstance(retry_in, float) and 0 < retry_in <= 1.5
                await until(
                    lambda: real(node, b.addr)["state"] == "readyToTest",
                    retry_in + 2,
                    "readyToTest",
                )
                seen = set()
                for i in range(2):
                    src, _ = await fa.register(vip, f"z{i}@example.net")
                    seen.add(src)
                assert b.addr in seen
                assert real(node, b.addr)["state"] == "testing"
                # the test session expires without retransmission: B is in service again
                await until(lambda: real(node, b.addr)["state"] == "inService", 3, "B inService")
                assert slb_stats_view(node)["counters"]["farm_reassignments"] == 2

        asyncio.run(main())


def test_dfp_revives_failed_real_at_once_and_weight_drops_when_full() -> None:
    net = _net()
    with has(2, f"{net}.100", net, max_b=8, interval=0.2) as hs:
        _a, b = hs

        async def main() -> None:
            st = SlbSettings(
                virtual_address=f"{net}.100",
                port=0,
                mode="relay",
                reals=[
                    SlbRealSpec(h.addr, h.port, 8, dfp_agent=f"{h.addr}:{h.dfp_port}") for h in hs
                ],
                reassign=2,
                faildetect_numconns=1,
                faildetect_window_s=0.3,  # above the 0.2 s report interval
                retry_s=600,
                session_s=0.5,
                dfp_timeout_s=0,
                predictor="smooth-wrr",
            )
            async with running(st, f"{net}.2") as (node, fa):
                vip = node.address
                await until(
                    lambda: [r["dfp_weight"] for r in slb_view(node)["reals"]] == [24, 24],
                    5,
                    "both DFP weights 24",
                )
                dv = slb_dfp_view(node)
                assert {x["state"] for x in dv["agents"]} == {"connected"}
                # fail B (SIGSTOP): once its DFP agent has not reported for a window, one
                # failure is enough here
                b.stop()
                await asyncio.sleep(0.5)
                for i in range(2):
                    await fa.register(vip, f"f{i}@example.net")
                assert real(node, b.addr)["state"] == "failed"
                # B resumes: its next DFP report (weight > 0) revives it at once (retry is 600 s)
                b.cont()
                await until(lambda: real(node, b.addr)["state"] == "inService", 5, "B revived")
                # fill both HAs (8 bindings each; B also bound the requests it found queued
                # on SIGCONT): weights drop to 0, full HAs are throttled, never overfilled
                placed: Counter[str] = Counter()
                for i in range(20):
                    try:
                        src, code = await fa.register(vip, f"fill{i}@example.net", tries=5)
                    except AssertionError:
                        break  # no eligible real left: the SLB drops the request
                    assert code == 0  # never sent to a full HA
                    placed[src] += 1
                    await asyncio.sleep(0.02)
                assert 12 <= sum(placed.values()) <= 14
                await until(
                    lambda: {r["state"] for r in slb_view(node)["reals"]} == {"dfpThrottle"},
                    5,
                    "both reals DFP-throttled",
                )
                rows = slb_view(node)["reals"]
                assert [r["dfp_weight"] for r in rows] == [0, 0]
                assert {r["state"] for r in rows} == {"dfpThrottle"}
                # no real left: new requests are dropped and counted, nothing crashes
                fa.send(vip, "late@example.net", 1)
                await until(lambda: node.bad.totals.get("no-real", 0) >= 1, 3, "no-real drop")

        asyncio.run(main())


def test_one_ha_fills_its_dfp_weight_drops_and_new_sessions_move_away() -> None:
    net = _net()
    with has(3, f"{net}.100", net, max_b=[4, 1000, 1000], interval=0.2) as hs:
        small = hs[0]

        async def main() -> None:
            st = SlbSettings(
                virtual_address=f"{net}.100",
                port=0,
                mode="relay",
                reals=[
                    SlbRealSpec(h.addr, h.port, 8, dfp_agent=f"{h.addr}:{h.dfp_port}") for h in hs
                ],
                predictor="smooth-wrr",
            )
            async with running(st, f"{net}.2") as (node, fa):
                vip = node.address
                await until(
                    lambda: all(r["dfp_weight"] == 24 for r in slb_view(node)["reals"]),
                    5,
                    "every DFP weight 24",
                )
                placed: list[str] = []
                for i in range(40):
                    src, code = await fa.register(vip, f"m{i}@example.net")
                    assert code == 0  # nobody was ever sent to a full HA
                    placed.append(src)
                    await asyncio.sleep(0.01)
                on_small = placed.count(small.addr)
                assert on_small == 4  # filled, then no more
                last = max(i for i, x in enumerate(placed) if x == small.addr)
                assert last < 20  # and all the rest went to the other two
                r = real(node, small.addr)
                assert r["dfp_weight"] == 0 and r["state"] == "dfpThrottle"
                others = [real(node, h.addr)["dfp_weight"] for h in hs[1:]]
                assert all(isinstance(w, int) and 0 < w <= 24 for w in others)

        asyncio.run(main())


@IO
def test_bad_input_counted_no_crash(fastpath: bool) -> None:
    net = _net()
    with has(1, f"{net}.100", net) as hs:

        async def main() -> None:
            st = settings_for(net, hs, [8], max_datagram=2048, fastpath=fastpath)
            async with running(st, f"{net}.2") as (node, fa):
                vip = node.address
                assert fa.t is not None
                rnd = random.Random(5)
                for _ in range(300):
                    fa.t.sendto(rnd.randbytes(rnd.randint(0, 120)), vip)
                fa.t.sendto(rrq("", 1), vip)  # no NAI, home address 0.0.0.0
                fa.t.sendto(rrq("", 1, hoa="10.1.0.5"), vip)  # no NAI: fallback key
                fa.t.sendto(rrq("big@example.net", 2) + bytes(5000), vip)  # oversized
                fa.t.sendto(rrq("t@example.net", 3)[:-3], vip)  # truncated NAI extension
                fa.t.sendto(b"\x03" + bytes(30), vip)  # a reply sent to the SLB
                fa.t.sendto(rrq("u@example.net", 4) + bytes([5, 0]), vip)  # unknown critical
                await until(lambda: node.counters["received"] >= 295, 5, "the bad input read")
                src, code = await fa.register(vip, "ok@example.net")
                assert src == hs[0].addr and code == 0
                totals = node.bad.totals
                assert totals["oversized"] == 1
                assert totals["no-nai"] >= 1
                assert totals.get("truncated-extension", 0) >= 1
                assert sum(totals.values()) >= 290  # a random RRQ-looking one may pass
                c = node.counters
                # (asyncio does not send empty datagrams, so a few random ones never left)
                assert c["received"] >= 295 and c["received"] == c["forwarded"] + c["dropped"]
                assert node.counters["no_nai"] >= 1  # the fallback key was used
                keys = [s["key"] for s in sessions_view(node)["items"]]
                assert f"10.1.0.5/{net}.2" in keys
                names = {m.name for m in families_for(node)}
                assert {"slbRealState", "mobileha_bad_input", "slbRealOperWeight"} <= names

        asyncio.run(main())


@pytest.mark.skipif(os.geteuid() != 0, reason="directed mode needs a raw socket (root)")
@IO
def test_directed_mode_real_sees_fa_source_on_loopback(fastpath: bool) -> None:
    net = _net()
    fa_addr = f"{net}.2"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        seen: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

        class Real(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                seen.put_nowait((data, addr))

        rt, _ = await loop.create_datagram_endpoint(Real, local_addr=(f"{net}.11", 0))
        rport = rt.get_extra_info("sockname")[1]
        st = SlbSettings(
            virtual_address=f"{net}.100",
            port=0,
            mode="directed",
            reals=[SlbRealSpec(f"{net}.11", rport, 8)],
            fastpath=fastpath,
        )
        try:
            async with running(st, fa_addr) as (node, fa):
                assert fa.t is not None
                fa_port = fa.t.get_extra_info("sockname")[1]
                req = rrq("d@example.net", 99)
                fa.send(node.address, "d@example.net", 99)
                data, src = await asyncio.wait_for(seen.get(), 2)
                assert src == (fa_addr, fa_port)  # the FA's own address and port
                assert data == req  # untouched, no relay tag
                assert node.counters["forwarded"] == 1
        finally:
            rt.close()

    asyncio.run(main())


def test_udp_datagram_builder_checksums() -> None:
    from mobileha.wire.ip import build_udp_datagram

    pkt = build_udp_datagram("10.0.2.2", 40000, "10.0.1.100", 434, b"hello")
    assert len(pkt) == 20 + 8 + 5 and pkt[9] == 17

    # an IPv4 header checksums to zero; so does the UDP pseudo-header + datagram
    def fold(b: bytes) -> int:
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack(f"!{len(b) // 2}H", b))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return s

    assert fold(pkt[:20]) == 0xFFFF
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, 13)
    assert fold(pseudo + pkt[20:]) == 0xFFFF
    scapy = pytest.importorskip("scapy.all")
    p = scapy.IP(pkt)
    assert p[scapy.UDP].sport == 40000 and bytes(p[scapy.UDP].payload) == b"hello"
    assert p.chksum == scapy.IP(bytes(p.__class__(pkt))).chksum
