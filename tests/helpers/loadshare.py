"""Configurations of a load-sharing home agent pair on loopback (two HSRP groups with
crossing priorities, unicast peers, one sync peer per HA address), for the tests that run
it as real processes and the management tests."""

from __future__ import annotations

from tests.helpers.mip import request

KEY = bytes(range(16))
SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
N_PER_VIP = 20
HELLO_MS, HOLD_MS = 100, 500


def config(
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
authentication = "md5:loadshare-hsrp"
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


def rrq(i: int, vip: str, ident: int) -> bytes:
    return request(
        ha_addr=vip,
        care_of="127.0.0.1",
        ident=ident,
        lifetime=600,
        nai=f"mn{i}@example.net",
        key=KEY,
        spi=256 + i,
    )
