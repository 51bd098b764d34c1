"""Load sharing with two HSRP groups (issue 7, P§5.1): one home-agent process serves two HA
addresses. HA1 is Active for group 1 (VIP1) and Standby for group 2 (VIP2), HA2 the
reverse (crossing priorities). Each group has its own binding table and SyncPeer, keyed by
the HA address in the sync header; registrations to a VIP are answered only by that
group's Active. Bindings of both VIPs reach the peer; after kill -9 of HA1 (in-process
``crash()``: sockets and timers stop at once, nothing is sent), HA2 is Active for both
groups with every binding, answers re-registrations to both VIPs and refuses a replayed
request with 133.

Two in-process HomeAgentNodes built from configs with [hsrp] + [[hsrp.groups]] (unicast
peers on loopback) and [redundancy]."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import Any

from mobileha import compose
from mobileha.config import loads_config
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests.helpers import free_port as _free
from tests.helpers import request, until

KEY = bytes(range(16))
SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
N_PER_VIP = 20
HELLO_MS, HOLD_MS = 100, 500


def _config(
    me: str, peer: str, vips: tuple[str, str], port: int, hsrp_port: int, prios: tuple[int, int]
) -> str:
    mns = "".join(
        f"""
[[mobile_node]]
nai = "mn{i}@example.net"
home_address = "dynamic"
spi = {256 + i}
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
        for i in range(2 * N_PER_VIP)
    )
    return f"""
[node]
role = "home-agent"
name = "ha-{me}"
[management]
enabled = false
[home_agent]
address = "{me}"
port = {port}
home_prefix = "10.66.0.0/24"
pool = "10.66.0.0/25"
[hsrp]
interface = "lo"
address = "{me}"
version = 2
group = 1
virtual_ip = "{vips[0]}"
priority = {prios[0]}
preempt = true
hello_ms = {HELLO_MS}
hold_ms = {HOLD_MS}
port = {hsrp_port}
peers = ["{peer}"]
[[hsrp.groups]]
group = 2
virtual_ip = "{vips[1]}"
priority = {prios[1]}
preempt = true
pool = "10.66.0.128/25"
[redundancy]
peer = "{peer}"
port = {port}
spi = 400
key = "hex:{SYNC_KEY.hex()}"
mode = "physical"
retransmit_ms = 100
retries = 2
[dataplane]
backend = "memory"
{mns}
"""


def _rrq(i: int, vip: str, ident: int) -> bytes:
    return request(
        ha_addr=vip,
        care_of="127.0.0.1",
        ident=ident,
        lifetime=600,
        nai=f"mn{i}@example.net",
        key=KEY,
        spi=256 + i,
    )


def _states(node: Any) -> dict[int, str]:
    return {g.group: g.state.name for g in node.hsrp.core.groups.values()}


def _group_node(node: Any, group: int) -> Any:
    if group == node.hsrp_group_number:
        return node
    return next(s for s in node.siblings if s.hsrp_group_number == group)


def test_two_groups_crossing_priorities_sync_and_takeover_of_both() -> None:
    net = f"127.0.{random.randint(20, 250)}"
    a_ip, b_ip = f"{net}.41", f"{net}.42"
    vips = (f"{net}.141", f"{net}.142")
    port, hsrp_port = _free(a_ip), _free(a_ip)
    a = compose.home_agent_node(
        loads_config(_config(a_ip, b_ip, vips, port, hsrp_port, (110, 100)))
    )
    b = compose.home_agent_node(
        loads_config(_config(b_ip, a_ip, vips, port, hsrp_port, (100, 110)))
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)

        async def register(req: bytes, vip: str) -> int:
            await loop.sock_sendto(client, req, (vip, port))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 3)
            return RegistrationReply.decode(data).code

        try:
            await a.start()
            await b.start()
            await until(
                lambda: (
                    _states(a) == {1: "ACTIVE", 2: "STANDBY"}
                    and _states(b) == {1: "STANDBY", 2: "ACTIVE"}
                ),
                15.0,
                "HA1 Active/Standby, HA2 Standby/Active",
            )
            a1, a2 = _group_node(a, 1), _group_node(a, 2)
            b1, b2 = _group_node(b, 1), _group_node(b, 2)
            assert a1.core.active and not a2.core.active
            assert b2.core.active and not b1.core.active
            # the sync peers are keyed by the HA address (the VIP) of their group
            assert a1.redundancy.peer.config.ha_addr == vips[0]
            assert a2.redundancy.peer.config.ha_addr == vips[1]
            requests: dict[int, bytes] = {}
            for i in range(2 * N_PER_VIP):
                vip = vips[i % 2]
                requests[i] = _rrq(i, vip, ntp_identification(time.time(), i))
                assert await register(requests[i], vip) == 0
            # each Active holds its group's bindings, each Standby the same copy
            await until(
                lambda: len(b1.core.table) == N_PER_VIP and len(a2.core.table) == N_PER_VIP,
                5.0,
                "bindings of both VIPs synced",
            )
            assert len(a1.core.table) == len(b2.core.table) == N_PER_VIP
            for act, stby, vip, half in ((a1, b1, vips[0], 0), (b2, a2, vips[1], 1)):
                for x in act.core.table:
                    assert x.ha_addr == vip
                    # each HA address allocates from its own pool: no duplicates
                    assert int(x.home_addr.split(".")[3]) // 128 == half, x.home_addr
                    y = stby.core.table.find(x.home_addr, x.care_of)
                    assert y is not None and (y.ident, y.lifetime) == (x.ident, x.lifetime)
                    assert stby.core.is_dynamic(x.home_addr)
            # only each group's Active received its VIP's registrations
            assert a2.core.received == 0 and b1.core.received == 0
            # kill -9 HA1: HA2 becomes Active for group 1 too, with every binding
            a.crash()
            t0 = time.monotonic()
            await until(lambda: _states(b) == {1: "ACTIVE", 2: "ACTIVE"}, 5.0, "HA2 Active x2")
            took = time.monotonic() - t0
            assert took <= 2 * HOLD_MS / 1000 + 0.3, took
            assert b1.core.active and b2.core.active
            assert len(b1.core.table) == len(b2.core.table) == N_PER_VIP
            for x in (*b1.core.table, *b2.core.table):
                assert b.dataplane.lookup(x.home_addr)
            # replay state came along: an old request to VIP1 gets 133, a fresh one 0 and
            # keeps its home address
            assert await register(requests[0], vips[0]) == 133
            before = {x.nai: x.home_addr for x in (*b1.core.table, *b2.core.table)}
            for i in (0, 1):
                fresh = _rrq(i, vips[i % 2], ntp_identification(time.time() + 1, 77))
                assert await register(fresh, vips[i % 2]) == 0
            after = {x.nai: x.home_addr for x in (*b1.core.table, *b2.core.table)}
            assert after == before
            print(f"HA2 Active for both groups {took * 1000:.0f} ms after kill -9 of HA1")
        finally:
            client.close()
            a.crash()
            await b.stop()

    asyncio.run(run())
