"""Adapters on loopback in one event loop: MobileNodeFleet -> ForeignAgentNode -> a small
independent fake HA (hashlib/hmac, no mobileha HA code) that answers from another address
than the one the FA sent to (the HA-SLB case). Checks the asyncio plumbing, the AAA task
path, visitor views and 1,000 MNs at once through the FA."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import struct

import pytest

from mobileha import compose
from mobileha.aaa.local import LocalAaa, LocalUser
from mobileha.core.foreign_agent import ForeignAgent
from mobileha.core.mobile_node import MnSecurity, MnState, MobileNode
from mobileha.dataplane.memory import MemoryDataPlane
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import views_for
from mobileha.node.foreign_agent import ForeignAgentNode
from mobileha.node.mobile_node import MobileNodeFleet
from tests.helpers import free_port

KEY = bytes(range(16))
SPI = 256
FA_ADDR = "127.0.0.61"
VIP = "127.0.0.62"
REAL = "127.0.0.63"


class FakeHa(asyncio.DatagramProtocol):
    """Receives on the VIP socket, answers from the REAL socket (HA-SLB directed style)."""

    def __init__(self) -> None:
        self.out: asyncio.DatagramTransport | None = None
        self.requests = 0
        self.real_requests = 0
        self.pool = iter(range(10, 60000))
        self.hoa: dict[str, str] = {}
        self.bindings: dict[str, str] = {}

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        _t, _f, life, hoa, _ha, _coa, ident = struct.unpack_from("!BBH4s4s4sQ", data)
        off, nai, mnha_end, gre = 24, None, None, None
        while off < len(data):
            t = data[off]
            if t in (36, 38, 48):
                ln = struct.unpack_from("!H", data, off + 2)[0] + 4
                if t == 48:
                    gre = data[off : off + ln]
            else:
                ln = data[off + 1] + 2
                if t == 131:
                    nai = data[off + 2 : off + ln].decode()
                if t == 32:
                    covered = data[: off + 6]
                    assert hmac.compare_digest(
                        hmac.new(KEY, covered, hashlib.md5).digest(), data[off + 6 : off + ln]
                    )
                    mnha_end = off + ln
            off += ln
        assert nai is not None and mnha_end is not None
        if hoa == bytes(4):
            h = self.hoa.get(nai)
            if h is None:
                n = next(self.pool)
                h = self.hoa[nai] = f"10.1.{n >> 8}.{n & 255}"
            hoa = socket.inet_aton(h)
        if life:
            self.bindings[nai] = socket.inet_ntoa(hoa)
        else:
            self.bindings.pop(nai, None)
        msg = struct.pack("!BBH4s4sQ", 3, 0, life, hoa, socket.inet_aton(REAL), ident)
        raw_nai = nai.encode()
        msg += bytes([131, len(raw_nai)]) + raw_nai
        covered = msg + bytes([32, 20]) + SPI.to_bytes(4, "big")
        msg = covered + hmac.new(KEY, covered, hashlib.md5).digest()
        if gre:
            msg += gre
        assert self.out is not None
        self.out.sendto(msg, addr)


class RealSide(asyncio.DatagramProtocol):
    """The real HA's own address: later requests come straight here."""

    def __init__(self, ha: FakeHa) -> None:
        self.ha = ha

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.ha.real_requests += 1
        self.ha.datagram_received(data, addr)


async def start_ha(port: int) -> tuple[FakeHa, list[asyncio.DatagramTransport]]:
    loop = asyncio.get_running_loop()
    ha = FakeHa()
    real = RealSide(ha)
    t_out, _ = await loop.create_datagram_endpoint(lambda: real, local_addr=(REAL, port))
    ha.out = t_out
    t_in, _ = await loop.create_datagram_endpoint(lambda: ha, local_addr=(VIP, port))
    return ha, [t_in, t_out]


def make_mns(n: int, fa_port: int, ha: str = VIP, aaa_key: bytes | None = None) -> list[MobileNode]:
    return [
        MobileNode(
            nai=f"user{i}@example.net",
            home_addr="0.0.0.0",
            ha_addr=ha,
            security=MnSecurity(SPI, KEY, "hmac-md5"),
            foreign_agent=(FA_ADDR, fa_port),
            lifetime=600,
            aaa_key=aaa_key,
        )
        for i in range(n)
    ]


async def scenario(n: int, *, aaa: LocalAaa | None = None, mn_ha: str = VIP) -> None:
    ha_port = free_port(VIP)
    fa_port = free_port(FA_ADDR)
    ha, transports = await start_ha(ha_port)
    dp = MemoryDataPlane(role="fa")
    core = ForeignAgent(
        address=FA_ADDR,
        port=fa_port,
        ha_port=ha_port,
        home_agent=VIP,
        real_home_agents=[REAL],  # the real HA behind the VIP answers (HA-SLB)
        aaa=aaa is not None,
    )
    fa = ForeignAgentNode(core, aaa=aaa, dataplane=dp)
    await fa.start()
    fleet = MobileNodeFleet(make_mns(n, fa_port, mn_ha, b"k" if aaa else None))
    await fleet.start()
    try:
        await fleet.register_all()
        ok = await fleet.wait_until(lambda: fleet.registered == n, 20.0)
        st = fleet.stats()
        assert ok, st
        assert st["denied"] == 0
        assert len(core.visitors) == n and len(ha.bindings) == n
        assert sum(len(v) for v in dp.tunnels.values()) == n
        v = next(iter(core.visitors.values()))
        assert v.ha_addr == REAL  # learned: reply came from the real HA
        assert core.stats.replies_other_source >= n
        page = views_for(fa)["visitors"]({"limit": "10"})
        assert page["total"] == n and len(page["items"]) == min(10, n)
        assert views_for(fa)["stats"]({})["counters"]["cmiFaRegTotalVisitors"] == n
        # deregistration goes straight to the real HA
        before = ha.real_requests
        await fleet.deregister_all()
        ok = await fleet.wait_until(lambda: fleet.count(MnState.IDLE) == n, 20.0)
        assert ok, fleet.stats()
        assert ha.real_requests - before >= n and not ha.bindings and not core.visitors
        assert sum(len(v) for v in dp.tunnels.values()) == 0
        assert list(families_for(fa))
    finally:
        await fleet.close()
        await fa.stop()
        for t in transports:
            t.close()


def test_fa_fleet_single_mn() -> None:
    asyncio.run(scenario(1))


def test_fa_fleet_1000_mns_at_once() -> None:
    asyncio.run(scenario(1000))


def test_fa_with_local_aaa_assigns_ha() -> None:
    users = [LocalUser(f"user{i}@example.net", home_agent=VIP, key=b"k") for i in range(5)]
    asyncio.run(scenario(5, aaa=LocalAaa(users), mn_ha="0.0.0.0"))


async def _fa_with_unanswered_ha(silent: bool) -> tuple[set[int | None], ForeignAgent]:
    """Three MNs register through an FA whose HA never answers: ``silent``, a socket that
    swallows the requests; else nothing listens on the HA's port (the kernel answers ICMP
    port unreachable, which the FA reads from its raw ICMP socket when it may open one)."""
    fa_port, ha_port = free_port(FA_ADDR), free_port(VIP)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if silent:
        sink.bind((VIP, ha_port))
    core = ForeignAgent(address=FA_ADDR, port=fa_port, ha_port=ha_port, pending_timeout_s=0.3)
    fa = ForeignAgentNode(core, dataplane=MemoryDataPlane(role="fa"))
    await fa.start()
    fleet = MobileNodeFleet(make_mns(3, fa_port))
    for m in fleet.mns:
        m.retransmit_s = 5.0  # no MN retransmission before the FA gives up
    await fleet.start()
    try:
        await fleet.register_all()
        assert await fleet.wait_until(lambda: fleet.count(MnState.IDLE) == 3, 5.0)
        return {m.last_code for m in fleet.mns}, core
    finally:
        await fleet.close()
        await fa.stop()
        sink.close()


@pytest.mark.timeout(30)
def test_fa_pending_timeout_when_ha_silent() -> None:
    codes, core = asyncio.run(_fa_with_unanswered_ha(silent=True))
    assert codes == {78}
    assert core.stats.timeouts == 3


@pytest.mark.timeout(30)
def test_fa_answers_82_on_icmp_port_unreachable_from_the_ha() -> None:
    """RFC 5944 §3.7.2: an ICMP error for a relayed request ends it with 80-88 at once."""
    codes, core = asyncio.run(_fa_with_unanswered_ha(silent=False))
    if core.stats.icmp_errors == 0:  # no raw ICMP socket here (not root): the timeout
        assert codes == {78}
        pytest.skip("no CAP_NET_RAW: the FA cannot read ICMP errors")
    assert codes == {82}
    assert core.stats.icmp_errors == 3 and core.stats.timeouts == 0


def test_fa_composed_userspace_without_visitor_iface_is_a_startup_error() -> None:
    """An explicitly configured backend that cannot start stops the node with its reason:
    no silent fallback to the memory backend (that one only when configured)."""
    from mobileha.config import loads_config
    from mobileha.dataplane.base import BackendUnavailable
    from mobileha.mgmt.views import foreign_agent_stats

    port = free_port(FA_ADDR)
    text = f"""
[node]
role = "foreign-agent"
[foreign_agent]
address = "{FA_ADDR}"
port = {port}
home_agent = "{VIP}"
[dataplane]
backend = "%s"
"""

    async def main() -> None:
        node = compose.foreign_agent_node(loads_config(text % "userspace"))
        with pytest.raises(BackendUnavailable, match=r"'userspace' cannot start: .*visitor_iface"):
            await node.start()
        await node.stop()
        assert node.dataplane is None
        node = compose.foreign_agent_node(loads_config(text % "memory"))
        await node.start()
        try:
            assert isinstance(node.dataplane, MemoryDataPlane)
            assert node.aaa is None  # empty local table: AAA off
            assert foreign_agent_stats(node)["dataplane"]["backend"] == "memory"
        finally:
            await node.stop()

    asyncio.run(main())
