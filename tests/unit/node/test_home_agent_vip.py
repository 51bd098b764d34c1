"""Unicast-peer HSRP on loopback: the VIP socket of a home agent exists only while its
group is Active, one socket whatever the flap rate (claims and releases faster than the
socket opens)."""

from __future__ import annotations

import asyncio
import random
import socket

from mobileha.core.cluster import AgentSpec, Cluster
from mobileha.node.home_agent import HomeAgentNode
from tests.helpers import free_port, until
from tests.helpers.cluster_net import home_agent


def _udp_sockets_bound_to(addr: str, port: int) -> int:
    """Sockets of this network namespace bound to addr:port (/proc/net/udp)."""
    want = f"{socket.htonl(int.from_bytes(socket.inet_aton(addr), 'big')):08X}:{port:04X}"
    with open("/proc/net/udp") as f:
        return sum(1 for ln in f.readlines()[1:] if ln.split()[1] == want)


def test_vip_socket_follows_claims_one_socket_whatever_the_flap_rate() -> None:
    net = f"127.0.{random.randint(20, 250)}"
    real, vip = f"{net}.1", f"{net}.100"
    port = free_port(real)
    ha = home_agent(real, vip, 1)
    node = HomeAgentNode(
        Cluster([AgentSpec(ha)]), addresses=[real], port=port, vip_when_active=[vip]
    )

    async def run() -> None:
        await node.start()
        try:
            assert _udp_sockets_bound_to(vip, port) == 0
            for i in range(1000):
                node._on_vip(vip, i % 2 == 0)  # claim, release, claim...
            node._on_vip(vip, True)
            await until(lambda: not node._vip_tasks, 5, "the VIP socket settled")
            assert vip in node.bound() and _udp_sockets_bound_to(vip, port) == 1
            for i in range(1001):
                node._on_vip(vip, i % 2 == 1)  # ends released
            await until(lambda: not node._vip_tasks, 5, "the VIP socket settled")
            assert vip not in node.bound() and _udp_sockets_bound_to(vip, port) == 0
        finally:
            await node.stop()
        await asyncio.sleep(0)  # transports close on the next turn of the loop
        assert _udp_sockets_bound_to(real, port) == 0

    asyncio.run(run())
