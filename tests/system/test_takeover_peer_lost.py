"""Issue 7: the Active dies in the middle of the standby's bulk download. The standby's
HSRP Active timer expiry reaches ``RedundancyNode.peer_down`` (not the sync layer's own
``peer_timeout`` / ``download_idle_timeout`` of 10-15 s of silence), so it becomes ready
and takes over as fast as HSRP does, with the bindings it has, and counts and logs that the
download was incomplete.

Two in-process HomeAgentNodes built from configs with [hsrp] (unicast peers on loopback)
and [redundancy]; the active's table is filled directly (a large table makes the download
last long enough to be cut)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from mobileha import compose
from mobileha.config import loads_config
from mobileha.core.binding import FLAG_T, Binding, Encap
from mobileha.core.redundancy import SyncState
from mobileha.mgmt.views import redundancy_view
from tests.helpers import free_port as _free
from tests.helpers import until

SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
N = 60_000
HELLO_MS, HOLD_MS = 100, 400


def _config(me: str, peer: str, vip: str, port: int, hsrp_port: int, prio: int) -> str:
    return f"""
[node]
role = "home-agent"
name = "ha-{me}"
[management]
enabled = false
[home_agent]
address = "{me}"
ha_address = "{vip}"
port = {port}
home_prefix = "10.0.0.0/8"
[hsrp]
interface = "lo"
address = "{me}"
group = 3
version = 2
virtual_ip = "{vip}"
priority = {prio}
hello_ms = {HELLO_MS}
hold_ms = {HOLD_MS}
port = {hsrp_port}
peers = ["{peer}"]
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
"""


def _binding(i: int, vip: str, now: float) -> Binding:
    return Binding(
        home_addr=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        care_of="192.0.2.1",
        ha_addr=vip,
        lifetime=3600,
        expires=now + 3600,
        ident=0xE6B5A4C000000000 + i,
        flags=FLAG_T,
        encap=Encap.IPIP,
        nai=f"mn{i}@example.net",
        src_addr="192.0.2.1",
    )


def _state(node: Any) -> str:
    groups = list(node.hsrp.core.groups.values())
    return groups[0].state.name if groups else "?"


def test_active_killed_during_download_standby_takes_over_within_hold_time() -> None:
    net = f"127.0.{random.randint(20, 250)}"
    a_ip, b_ip, vip = f"{net}.31", f"{net}.32", f"{net}.130"
    port, hsrp_port = _free(a_ip), _free(a_ip)
    a = compose.home_agent_node(loads_config(_config(a_ip, b_ip, vip, port, hsrp_port, 110)))
    b = compose.home_agent_node(loads_config(_config(b_ip, a_ip, vip, port, hsrp_port, 100)))

    async def run() -> None:
        try:
            await a.start()
            await until(lambda: _state(a) == "ACTIVE", 10.0, "A Active")
            now = a.now()
            for i in range(N):
                a.core.table.add(_binding(i, vip, now))
            await b.start()
            rb = b.redundancy
            # B knows A as the HSRP Active and its download has begun to arrive
            await until(
                lambda: (
                    rb.peer.state is SyncState.DOWNLOADING
                    and rb.peer.counters.ReceivedBIReps >= 3
                    and any(
                        g.active is not None and g.active.addr == a_ip
                        for g in b.hsrp.core.groups.values()
                    )
                ),
                10.0,
                "B downloading from A",
            )
            assert not rb.peer.ready
            a.crash()  # kill -9: no Resign, no more BI Replies
            t0 = time.monotonic()
            assert len(b.core.table) < N
            await until(lambda: _state(b) == "ACTIVE", 5.0, "B Active")
            outage = time.monotonic() - t0
            # as fast as HSRP: the hold time plus at most one more hello period of Speak,
            # far below the sync layer's own 10 s download-idle / 15 s peer timeouts
            assert outage <= HOLD_MS / 1000 * 2 + 0.3, outage
            c = rb.peer.counters
            assert c.DownloadsIncompleteOnPeerLoss == 1
            assert rb.active_timer_expiries >= 1
            assert 0 < rb.peer.incomplete_records < N
            assert rb.peer.state is SyncState.PEER_LOST and rb.peer.ready
            assert b.core.active
            got = len(b.core.table)
            assert 0 < got < N
            # what it has it forwards
            for x in list(b.core.table)[:100]:
                assert b.dataplane.lookup(x.home_addr)
            v = redundancy_view(rb)
            assert v["counters"]["DownloadsIncompleteOnPeerLoss"] == 1
            print(f"takeover {outage * 1000:.0f} ms after kill with {got} of {N} bindings")
        finally:
            a.crash()
            await b.stop()

    asyncio.run(run())
