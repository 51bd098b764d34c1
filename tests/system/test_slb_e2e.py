"""End to end on loopback: FA -> SLB virtual address -> three real home agent processes.

The real HAs are ``HomeAgentNode``s (the registration code of mobileha.core.home_agent) in
their own processes, each with its DFP agent; the SLB runs in the test's loop; the test is
the FA/PDSN, sending MN-HA-authenticated requests to the virtual address. Checked: every
reply reaches the FA from the real HA's own address, the deregistration goes straight to
that real HA, bindings spread by weight, and when one HA fills up its DFP weight drops and
new sessions move away from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobileha.mgmt.views import slb_view
from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings
from mobileha.wire import mip
from mobileha.wire.auth import Authenticator
from tests.helpers import free_port, request, until

pytestmark = pytest.mark.timeout(90)

KEY = bytes(range(16))
RELAY_KEY = b"e2e-slb-ha-relay"
RELAY_SPI = 500
DFP_KEY = b"e2e-dfp-password"
SPI = 256
NTP = 2208988800
N_MN = 60  # registrations at least (the small HA may need more to fill: see below)
N_USERS = 400  # MNs configured on every HA

HA_SCRIPT = r"""
import asyncio, sys
from mobileha import compose
from mobileha.config import load_config

async def main():
    node = compose.home_agent_node(load_config(sys.argv[1]))
    await node.start()
    print("READY", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class Ha:
    def __init__(self, tmp: Path, addr: str, vip: str, max_bindings: int) -> None:
        self.addr = addr
        self.port = free_port(addr)
        self.dfp_port = free_port(addr, socket.SOCK_STREAM)
        users = "".join(
            f'\n[[mobile_node]]\nnai = "mn{i}@example.net"\nspi = {SPI}\n'
            f'key = "hex:{KEY.hex()}"\nalgorithm = "hmac-md5"\n'
            for i in range(N_USERS)
        )
        cfg = tmp / f"ha-{addr}.toml"
        cfg.write_text(
            f"""
[node]
role = "home-agent"
name = "ha-{addr}"
[management]
enabled = false
[home_agent]
address = "{addr}"
port = {self.port}
trusted_slb = ["{vip}"]
home_prefix = "10.{random.randint(100, 200)}.0.0/16"
max_bindings = {max_bindings}
[[home_agent.slb_sa]]
address = "{vip}"
spi = {RELAY_SPI}
key = "hex:{RELAY_KEY.hex()}"
[dataplane]
backend = "memory"
[dfp]
listen = "{addr}:{self.dfp_port}"
interval_s = 1
password = "hex:{DFP_KEY.hex()}"
# blocks of at most 8 consecutive sessions per real (IOS WRR), so that the ~30 sessions
# after the small HA fills always reach both other reals, whatever the load-based weights
max_weight = 8
{users}
"""
        )
        self.log = tmp / f"ha-{addr}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HA_SCRIPT, str(cfg)],
            stdout=subprocess.PIPE,
            stderr=open(self.log, "wb"),  # noqa: SIM115
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "READY" not in line:
            raise RuntimeError(self.log.read_text())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def net() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"


@pytest.fixture
def has(tmp_path: Path, net: str) -> Iterator[list[Ha]]:
    try:
        from mobileha.node.home_agent import HomeAgentNode  # noqa: F401
    except ImportError:
        pytest.skip("the home agent node is not available in this build")
    hs: list[Ha] = []
    try:
        for i, cap in enumerate([1000, 1000, 6]):
            hs.append(Ha(tmp_path, f"{net}.{11 + i}", f"{net}.100", cap))
        yield hs
    finally:
        for h in hs:
            h.stop()


AUTH = Authenticator(KEY, "hmac-md5")
_LOW = itertools.count(random.getrandbits(30))


def rrq(nai: str, vip: str, coa: str, lifetime: int = 1800, hoa: str = "0.0.0.0") -> bytes:
    # NTP timestamp with an increasing low word: a deregistration in the same second as
    # the registration must still carry a newer Identification (RFC 5944 §5.7)
    ident = ((int(time.time()) + NTP) << 32) | next(_LOW)
    return request(
        ha_addr=vip,
        care_of=coa,
        home_addr=hoa,
        lifetime=lifetime,
        ident=ident,
        nai=nai,
        key=KEY,
        spi=SPI,
    )


class Fa(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[tuple[str, mip.RegistrationReply]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = mip.decode(data)
        assert isinstance(msg, mip.RegistrationReply)
        self.replies.put_nowait((addr[0], msg))

    async def ask(
        self, data: bytes, dst: tuple[str, int], every: float = 0.5, tries: int = 20
    ) -> tuple[str, mip.RegistrationReply]:
        """Send (and retransmit the same bytes) until the reply with our Identification."""
        ident = struct.unpack_from("!Q", data, 16)[0]
        loop = asyncio.get_running_loop()
        for _ in range(tries):
            self.t.sendto(data, dst)  # type: ignore[attr-defined]
            end = loop.time() + every
            while (left := end - loop.time()) > 0:
                try:
                    src, rep = await asyncio.wait_for(self.replies.get(), left)
                except TimeoutError:
                    break
                if rep.ident == ident:
                    return src, rep
        raise AssertionError("no reply")


def test_fa_slb_three_real_has(has: list[Ha], net: str) -> None:
    vip, fa_addr = f"{net}.100", f"{net}.2"

    async def main() -> None:
        node = SlbNode(
            SlbSettings(
                virtual_address=vip,
                port=0,
                mode="relay",
                relay_key=RELAY_KEY,
                relay_spi=RELAY_SPI,
                dfp_password=DFP_KEY,
                reals=[
                    SlbRealSpec(h.addr, h.port, 8, dfp_agent=f"{h.addr}:{h.dfp_port}") for h in has
                ],
                predictor="ios-wrr",
            )
        )
        await node.start()
        loop = asyncio.get_running_loop()
        t, fa = await loop.create_datagram_endpoint(Fa, local_addr=(fa_addr, 0))
        try:

            def weights() -> list[object]:
                return [r["dfp_weight"] for r in slb_view(node)["reals"]]

            # all three DFP agents reported (empty HAs; the weight also scales with the
            # host's free CPU and memory, so it is <= 24 here)
            await until(
                lambda: all(isinstance(w, int) and w > 0 for w in weights()), 5, "3 DFP weights"
            )
            assert all(isinstance(w, int) and 0 < w <= 8 for w in weights())
            where: dict[str, tuple[str, str]] = {}
            small = has[2].addr

            def small_real() -> dict[str, Any]:
                return next(r for r in slb_view(node)["reals"] if r["address"] == small)

            def on_small() -> int:
                return sum(1 for a, _ in where.values() if a == small)

            # 1. register until the small HA (6 bindings) has filled. Its weight is
            # floor(free share x host factor x max weight) (P§6.4), the host factor from
            # the load average and free memory: on a busy host it reaches 0 before all 6
            # are taken, which throttles it the same way as being full (quiet host).
            i = 0
            while on_small() < 6 and not (on_small() and small_real()["dfp_weight"] == 0):
                assert i < N_USERS - 30, f"the small HA is still not full; weights {weights()}"
                nai = f"mn{i}@example.net"
                src, rep = await fa.ask(rrq(nai, vip, fa_addr), node.address)
                assert rep.code == 0, rep.code
                assert src == rep.ha_addr  # from the real HA's own address, not the VIP
                assert src in {h.addr for h in has}
                where[nai] = (src, rep.home_addr)
                i += 1
                await asyncio.sleep(0.02)
            # The DFP weights also scale with the host's free CPU, so on a loaded machine
            # the small HA's share can be well under a third: N_USERS leaves room for that.
            filled_at, small_count = i, on_small()

            # 2. its DFP weight drops to 0 (sampled every 0.5 s): the SLB throttles it
            await until(lambda: small_real()["dfp_weight"] == 0, 3, "the small HA's weight 0")
            assert small_real()["state"] == "dfpThrottle"
            # 3. new sessions move away from it, and still spread over the other two
            later: Counter[str] = Counter()
            while i < max(N_MN, filled_at + 25):
                nai = f"mn{i}@example.net"
                src, rep = await fa.ask(rrq(nai, vip, fa_addr), node.address)
                assert rep.code == 0 and src != small
                where[nai] = (src, rep.home_addr)
                later[src] += 1
                i += 1
            assert set(later) == {has[0].addr, has[1].addr}
            spread = Counter(a for a, _ in where.values())
            assert spread[small] == small_count and sum(spread.values()) == i
            # 4. deregistration goes straight to the real HA that holds the binding
            before = node.counters["received"]
            for nai, (ha_addr, hoa) in list(where.items())[:10]:
                h = next(h for h in has if h.addr == ha_addr)
                src, rep = await fa.ask(rrq(nai, vip, fa_addr, 0, hoa), (h.addr, h.port))
                assert src == ha_addr and rep.code == 0 and rep.lifetime == 0
            assert node.counters["received"] == before  # the SLB saw none of them
            view = slb_view(node)
            assert view["forwarded"] >= i and view["dropped"] == 0
        finally:
            t.close()
            await node.stop()

    asyncio.run(main())


def test_static_weights_spread_bindings_exactly(has: list[Ha], net: str) -> None:
    vip, fa_addr = f"{net}.100", f"{net}.3"

    async def main() -> None:
        node = SlbNode(
            SlbSettings(
                virtual_address=vip,
                port=0,
                mode="relay",
                relay_key=RELAY_KEY,
                relay_spi=RELAY_SPI,
                dfp_password=DFP_KEY,
                reals=[SlbRealSpec(h.addr, h.port, w) for h, w in zip(has, [3, 2, 1])],
            )
        )
        await node.start()
        loop = asyncio.get_running_loop()
        t, fa = await loop.create_datagram_endpoint(Fa, local_addr=(fa_addr, 0))
        try:
            got: Counter[str] = Counter()
            for i in range(30):
                src, rep = await fa.ask(rrq(f"mn{i}@example.net", vip, fa_addr), node.address)
                assert rep.code == 0
                got[src] += 1
            assert got == {has[0].addr: 15, has[1].addr: 10, has[2].addr: 5}
        finally:
            t.close()
            await node.stop()

    asyncio.run(main())


def test_sigstop_real_ha_reassign_fail_retry_and_dfp_revival(has: list[Ha], net: str) -> None:
    """One real HA stopped with SIGSTOP: sessions that land on it move after `reassign`
    retransmissions with a failure recorded; after `faildetect` failures it is FAILED and
    gets nothing new; after the (shortened) retry interval it is tested and returns to
    service once it answers; a DFP report with weight > 0 revives a FAILED real at once."""
    vip, fa_addr = f"{net}.100", f"{net}.4"
    a, b = has[0], has[1]

    async def main() -> None:
        node = SlbNode(
            SlbSettings(
                virtual_address=vip,
                port=0,
                mode="relay",
                relay_key=RELAY_KEY,
                relay_spi=RELAY_SPI,
                dfp_password=DFP_KEY,
                reals=[SlbRealSpec(a.addr, a.port, 1), SlbRealSpec(b.addr, b.port, 1)],
                reassign=2,
                faildetect_numconns=2,
                faildetect_window_s=0.05,  # each of this one FA's failures counts
                retry_s=2.0,
                session_s=0.8,
            )
        )
        await node.start()
        loop = asyncio.get_running_loop()
        t, fa = await loop.create_datagram_endpoint(Fa, local_addr=(fa_addr, 0))

        def state(h: Ha) -> dict[str, object]:
            return next(r for r in slb_view(node)["reals"] if r["address"] == h.addr)

        try:
            os.kill(b.proc.pid, signal.SIGSTOP)
            for i in range(4):  # round robin A, B, A, B: B's two sessions move to A
                src, rep = await fa.ask(rrq(f"mn{i}@example.net", vip, fa_addr), node.address, 0.1)
                assert src == a.addr and rep.code == 0
            assert state(b)["total_failures"] == 2 and state(b)["state"] == "failed"
            before = state(b)["total_conns"]
            for i in range(4, 10):  # FAILED: nothing new
                src, _ = await fa.ask(rrq(f"mn{i}@example.net", vip, fa_addr), node.address, 0.1)
                assert src == a.addr
            assert state(b)["total_conns"] == before
            os.kill(b.proc.pid, signal.SIGCONT)
            retry_in = state(b)["retry_in_s"]
            assert isinstance(retry_in, float)
            await until(lambda: state(b)["state"] == "readyToTest", retry_in + 2, "readyToTest")
            seen = set()
            for i in range(10, 12):
                src, rep = await fa.ask(rrq(f"mn{i}@example.net", vip, fa_addr), node.address, 0.1)
                assert rep.code == 0
                seen.add(src)
            assert b.addr in seen and state(b)["state"] == "testing"
            # the test session expires with no retransmission: B is in service again
            await until(lambda: state(b)["state"] == "inService", 3, "B inService")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(b.proc.pid, signal.SIGCONT)
            t.close()
            await node.stop()

        # DFP revival: the same failure, but the SLB manages B's DFP agent; the retry
        # interval is long, so only a DFP report can bring B back
        node = SlbNode(
            SlbSettings(
                virtual_address=vip,
                port=0,
                mode="relay",
                relay_key=RELAY_KEY,
                relay_spi=RELAY_SPI,
                dfp_password=DFP_KEY,
                reals=[
                    SlbRealSpec(h.addr, h.port, 1, dfp_agent=f"{h.addr}:{h.dfp_port}")
                    for h in (a, b)
                ],
                predictor="smooth-wrr",
                reassign=2,
                faildetect_numconns=1,
                faildetect_window_s=1.5,  # above the 1 s report interval
                retry_s=600,
                session_s=0.8,
            )
        )
        await node.start()
        t, fa = await loop.create_datagram_endpoint(Fa, local_addr=(fa_addr, 0))
        try:
            await until(
                lambda: all(isinstance(r["dfp_weight"], int) for r in slb_view(node)["reals"]),
                5,
                "both DFP weights",
            )
            os.kill(b.proc.pid, signal.SIGSTOP)
            await asyncio.sleep(1.6)  # a window without B's reports: it shows no life
            for i in range(20, 24):
                await fa.ask(rrq(f"mn{i}@example.net", vip, fa_addr), node.address, 0.1)
                if state(b)["state"] == "failed":
                    break
            assert state(b)["state"] == "failed"
            os.kill(b.proc.pid, signal.SIGCONT)
            # DFP reports every second
            await until(lambda: state(b)["state"] == "inService", 3, "B revived by DFP")
            assert state(b)["retry_in_s"] is None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(b.proc.pid, signal.SIGCONT)
            t.close()
            await node.stop()

    asyncio.run(main())
