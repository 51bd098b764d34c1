"""Two HomeAgentNodes in-process on 127.0.x.y with RedundancyNode adapters on their UDP
sockets: registrations on the active reach the standby, which after takeover has every
binding with its replay state (a replayed request gets 133); a restarted standby downloads
the whole table (BI Request / Replies) before it reports ready."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import Any

from mobileha import compose
from mobileha.config import loads_config
from mobileha.core.redundancy import SyncState
from mobileha.mgmt.metrics import redundancy_families
from mobileha.mgmt.views import redundancy_view
from mobileha.node.home_agent import HomeAgentNode
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests.helpers import free_port as _free
from tests.helpers import request, until

KEY = bytes(range(16))
SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
N_MN = 30


def _config(host: str, port: int, vip: str, peer: str, peer_port: int) -> str:
    mns = "".join(
        f"""
[[mobile_node]]
nai = "mn{i}@example.net"
home_address = "dynamic"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
        for i in range(N_MN)
    )
    return f"""
[node]
role = "home-agent"
name = "ha-{host}"
[management]
enabled = false
[home_agent]
address = "{host}"
ha_address = "{vip}"
port = {port}
home_prefix = "10.66.0.0/24"
[hsrp]
interface = "lo"
group = 1
virtual_ip = "{vip}"
[redundancy]
peer = "{peer}"
port = {peer_port}
spi = 400
key = "hex:{SYNC_KEY.hex()}"
mode = "physical"
[dataplane]
backend = "memory"
{mns}
"""


def _node(host: str, port: int, vip: str, peer: str, peer_port: int) -> tuple[Any, Any]:
    cfg = loads_config(_config(host, port, vip, peer, peer_port))
    node = HomeAgentNode(compose.home_agent_core(cfg), name=f"ha-{host}", addresses=[host])
    return node, cfg


def _rrq(i: int, vip: str, ident: int) -> bytes:
    return request(
        ha_addr=vip,
        care_of="127.0.0.1",
        ident=ident,
        lifetime=600,
        nai=f"mn{i}@example.net",
        key=KEY,
    )


def test_active_standby_sync_takeover_and_restart_download() -> None:
    net = f"127.0.{random.randint(20, 250)}"
    a_host, b_host, vip = f"{net}.1", f"{net}.2", f"{net}.100"
    a_port, b_port = _free(a_host), _free(b_host)
    a, a_cfg = _node(a_host, a_port, vip, b_host, b_port)
    b, b_cfg = _node(b_host, b_port, vip, a_host, a_port)

    async def run() -> None:
        nonlocal b
        loop = asyncio.get_running_loop()
        await a.start()
        await b.start()
        b.set_active(False)  # HSRP Standby
        ra = compose.redundancy_node(a, a_cfg)
        rb = compose.redundancy_node(b, b_cfg)
        await ra.start()
        await rb.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        requests = []
        try:
            for i in range(N_MN):
                req = _rrq(i, vip, ntp_identification(time.time(), i))
                requests.append(req)
                await loop.sock_sendto(client, req, (a_host, a_port))
                data, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 3)
                assert RegistrationReply.decode(data).code == 0
            # every binding whose reply was sent is on the standby
            await until(lambda: len(b.core.table) == N_MN and ra.peer.pending == 0)
            for x in a.core.table:
                y = b.core.table.find(x.home_addr, x.care_of)
                assert y is not None and (y.ident, y.lifetime, y.nai) == (
                    x.ident,
                    x.lifetime,
                    x.nai,
                )
                assert abs(y.expires - x.expires) <= 2.0
                assert b.core.is_dynamic(x.home_addr)  # pool allocation synchronised
            assert not b.dataplane.lookup(next(iter(a.core.table)).home_addr)  # standby
            c = ra.peer.counters
            assert c.SentBUs >= 1 and c.ReceivedBUAcks == c.SentBUs and c.FailedBUs == 0
            assert redundancy_view(rb)["counters"]["ReceivedBUs"] == c.SentBUs
            # takeover: B becomes active, forwarding state for every binding
            b.set_active(True)
            for x in b.core.table:
                assert b.dataplane.lookup(x.home_addr)
            # a replay of an old request is refused with 133 (replay state came along)
            await loop.sock_sendto(client, requests[3], (b_host, b_port))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 3)
            assert RegistrationReply.decode(data).code == 133
            # and a fresh re-registration is accepted without 133
            await loop.sock_sendto(
                client, _rrq(3, vip, ntp_identification(time.time() + 1, 99)), (b_host, b_port)
            )
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 3)
            assert RegistrationReply.decode(data).code == 0
            b.set_active(False)
            # restart of the standby: a fresh node downloads the whole table first
            await rb.stop()
            await b.stop()
            b, _ = _node(b_host, b_port, vip, a_host, a_port)
            await b.start()
            b.set_active(False)
            rb = compose.redundancy_node(b, b_cfg)
            await rb.start()
            readiness: list[bool] = []

            class FakeHsrp:
                def set_ready(self, ready: bool) -> None:
                    readiness.append(ready)

            rb.hsrp = FakeHsrp()
            rb.start_download()
            assert readiness == [False] and rb.peer.state is SyncState.DOWNLOADING
            await until(lambda: rb.peer.download_complete)
            assert readiness == [False, True]
            assert len(b.core.table) == len(a.core.table) == N_MN
            assert ra.peer.counters.ReceivedBIReqs == 1 and ra.peer.counters.TransfersCompleted == 1
            names = {m.name for m in redundancy_families(rb)}
            assert "cmiHaRedunReceivedBIReps" in names
        finally:
            client.close()
            await ra.stop()
            await rb.stop()
            await a.stop()
            await b.stop()

    asyncio.run(run())
