"""The HSRP interface's own state drives RFC 2281 events b (down) and a (up) in HsrpNode.

The link state is injected (``HsrpNode.link_state``); the routers run on loopback with
unicast peers (``manage_vip=False``, the VIP reported through ``on_vip``), so no privileges
are needed. The netns test with ``ip link set eth0 down`` is tests/netns/test_hsrp_link_down.py.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from mobileha import compose
from mobileha.config import HsrpConfig as AppHsrpConfig
from mobileha.config import loads_config
from mobileha.node.hsrp import RTM_DELLINK, RTM_NEWLINK, HsrpNode, link_event_for
from tests.helpers import free_port as _free
from tests.helpers import until

POLL = 0.05
VIP = "127.0.0.100"


def _cfg(addr: str, peer: str, prio: int, port: int) -> AppHsrpConfig:
    return AppHsrpConfig(virtual_ip=VIP, address=addr, interface="lo", group=3, version=2,
                         priority=prio, preempt=True, hello_ms=100, hold_ms=300, port=port,
                         peers=(peer,))  # fmt: skip


def _st(n: HsrpNode) -> str:
    return str(n.snapshot()[0]["state"])


def test_watch_only_where_the_node_owns_the_vip_on_an_interface() -> None:
    hc = _cfg("127.0.0.2", "127.0.0.3", 100, 1985)
    assert compose.hsrp_node(hc).watching_link  # manage_vip: a real interface
    assert not compose.hsrp_node(hc, manage_vip=False).watching_link  # loopback peers
    assert compose.hsrp_node(hc, manage_vip=False, watch_interface=True).watching_link
    n = compose.hsrp_node(hc)
    n.set_link_state(False)  # not started: nothing happens
    assert n.link_up and not n.counters


def _nlmsg(mtype: int, ifindex: int, attrs: bytes = b"") -> bytes:
    ifinfo = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, ifindex, 0x1, 0xFFFFFFFF)
    body = ifinfo + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_netlink_link_events_are_matched_by_ifindex() -> None:
    operstate = struct.pack("=HHB3x", 5, 16, 2)  # IFLA_OPERSTATE = IF_OPER_DOWN, padded
    assert link_event_for(_nlmsg(RTM_NEWLINK, 7, operstate), 7)
    assert link_event_for(_nlmsg(RTM_DELLINK, 7), 7)
    assert not link_event_for(_nlmsg(RTM_NEWLINK, 8, operstate), 7)
    assert not link_event_for(_nlmsg(20, 7), 7)  # RTM_NEWADDR: not a link event
    # several messages in one datagram: ours is the second
    assert link_event_for(_nlmsg(RTM_NEWLINK, 3, operstate) + _nlmsg(RTM_NEWLINK, 7), 7)
    assert not link_event_for(b"", 7) and not link_event_for(b"\x00" * 15, 7)
    assert not link_event_for(struct.pack("=IHHII", 0, RTM_NEWLINK, 0, 0, 0) + bytes(16), 0)


def test_link_down_is_event_b_and_up_is_event_a_with_preemption_back() -> None:
    port = random.randrange(20000, 60000)
    vips: list[tuple[str, bool]] = []
    link = {"a": True}

    async def main() -> None:
        a = compose.hsrp_node(_cfg("127.0.0.2", "127.0.0.3", 120, port), manage_vip=False,
                                 watch_interface=True, track_poll=POLL,
                                 on_vip=lambda v, up: vips.append((v, up)))  # fmt: skip
        a.link_state = lambda ifname: link["a"]
        b = compose.hsrp_node(_cfg("127.0.0.3", "127.0.0.2", 110, port), manage_vip=False)
        await a.start()
        await b.start()
        try:
            await until(lambda: (_st(a), _st(b)) == ("Active", "Standby"), 5, "election")
            assert vips == [(VIP, True)]
            link["a"] = False
            took = await until(lambda: _st(a) == "Initial", 1, "a Initial")
            assert took <= 2 * POLL + 0.05, took
            assert vips == [(VIP, True), (VIP, False)]  # ReleaseVip, as on stop()
            assert [c["event"] for c in a.changes][-1] == "b"
            await until(lambda: _st(b) == "Active", 1, "b Active")
            await asyncio.sleep(0.5)  # down: a stays Initial, the poll does not repeat event b
            assert _st(a) == "Initial" and a.counters["link_down"] == 1
            assert not a.link_up
            link["a"] = True
            await until(lambda: _st(a) != "Initial", 1, "a out of Initial")
            assert a.changes[-1]["event"] == "a" or any(
                c["old"] == "Initial" and c["event"] == "a" for c in a.changes
            )
            # preempt + higher priority: a takes Active back, b steps down; one Active
            await until(lambda: (_st(a), _st(b)) == ("Active", "Standby"), 3, "a Active again")
            assert vips[-1] == (VIP, True) and a.counters["link_up"] == 1
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_interface_down_at_start_keeps_groups_initial_until_up() -> None:
    port = random.randrange(20000, 60000)
    link = {"up": False}

    async def main() -> None:
        a = compose.hsrp_node(_cfg("127.0.0.2", "127.0.0.3", 120, port), manage_vip=False,
                                 watch_interface=True, track_poll=POLL)  # fmt: skip
        a.link_state = lambda ifname: link["up"]
        await a.start()
        try:
            await asyncio.sleep(0.3)
            assert _st(a) == "Initial" and a.counters["tx_packets"] == 0
            link["up"] = True
            await until(lambda: _st(a) == "Active", 3, "alone: Active")
        finally:
            await a.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def _ha_config(me: str, peer: str, vip: str, port: int, hsrp_port: int, prio: int) -> str:
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
preempt = true
hello_ms = 100
hold_ms = 300
port = {hsrp_port}
peers = ["{peer}"]
[dataplane]
backend = "memory"
"""


def test_home_agent_goes_silent_when_its_hsrp_interface_goes_down() -> None:
    net = f"127.0.{random.randint(20, 250)}"
    a_ip, b_ip, vip = f"{net}.41", f"{net}.42", f"{net}.140"
    port, hsrp_port = _free(a_ip), _free(a_ip)
    a = compose.home_agent_node(loads_config(_ha_config(a_ip, b_ip, vip, port, hsrp_port, 120)))
    b = compose.home_agent_node(loads_config(_ha_config(b_ip, a_ip, vip, port, hsrp_port, 110)))
    assert a.hsrp is not None and b.hsrp is not None
    ha, hb = a.hsrp, b.hsrp
    link = {"up": True}
    ha.cfg.watch_interface, ha.cfg.track_poll = True, POLL
    ha.link_state = lambda ifname: link["up"]

    async def run() -> None:
        try:
            await a.start()
            await b.start()
            await until(lambda: (_st(ha), _st(hb)) == ("Active", "Standby"), 5, "election")
            assert a.core.active and not b.core.active
            link["up"] = False
            await until(lambda: _st(ha) == "Initial", 1, "a Initial")
            assert not a.core.active  # the HA no longer answers on the VIP
            await until(lambda: b.core.active, 2, "b answers")
            link["up"] = True
            await until(lambda: (_st(ha), _st(hb)) == ("Active", "Standby"), 3, "a back")
            assert a.core.active and not b.core.active
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(run(), 30))
