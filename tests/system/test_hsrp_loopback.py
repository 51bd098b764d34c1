"""Two HsrpNode instances in one process on loopback, unicast peers (the extension), built
from the ``[hsrp]`` table by ``mobileha.compose.hsrp_node``, as for ``mobileha run``; the
VIP is reported through the ``on_vip`` callback instead of touching the kernel
(``manage_vip=False``)."""

from __future__ import annotations

import asyncio
import random

from mobileha import compose
from mobileha.config import HsrpConfig as AppHsrpConfig
from mobileha.node.hsrp import HsrpNode
from tests.helpers import until


def _cfg(addr: str, peer: str, prio: int, port: int) -> AppHsrpConfig:
    return AppHsrpConfig(
        virtual_ip="127.0.0.100",
        address=addr,
        interface="lo",
        group=3,
        version=2,
        priority=prio,
        preempt=True,
        hello_ms=100,
        hold_ms=300,
        port=port,
        peers=(peer,),
    )


def test_two_nodes_on_loopback_elect_fail_over_and_resign() -> None:
    port = random.randrange(20000, 60000)
    vips: list[tuple[str, str, bool]] = []

    async def main() -> None:
        a = compose.hsrp_node(
            _cfg("127.0.0.2", "127.0.0.3", 120, port),
            manage_vip=False,
            on_vip=lambda v, up: vips.append(("a", v, up)),
        )
        b = compose.hsrp_node(
            _cfg("127.0.0.3", "127.0.0.2", 110, port),
            manage_vip=False,
            on_vip=lambda v, up: vips.append(("b", v, up)),
        )
        await a.start()
        await b.start()

        def st(n: HsrpNode) -> str:
            return str(n.snapshot()[0]["state"])

        try:
            await until(lambda: (st(a), st(b)) == ("Active", "Standby"), 5)
            assert ("a", "127.0.0.100", True) in vips
            await until(lambda: a.snapshot()[0]["standby_router"] == "127.0.0.3", 1)
            assert b.snapshot()[0]["active_router"] == "127.0.0.2"
            t0 = asyncio.get_running_loop().time()
            await a.stop()  # Resign: b takes over at once, not after the hold time
            await until(lambda: st(b) == "Active", 2)
            assert asyncio.get_running_loop().time() - t0 < 0.2
            assert ("a", "127.0.0.100", False) in vips and ("b", "127.0.0.100", True) in vips
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_compose_maps_every_key() -> None:
    hc = AppHsrpConfig(virtual_ip="10.0.0.1", address="10.0.0.2", interface="eth0", group=7,
                       version=1, name="ha-grp", priority=120, preempt=True, preempt_delay_s=5,
                       hello_ms=1000, hold_ms=3000)  # fmt: skip
    n = compose.hsrp_node(hc)
    [g] = n.cfg.groups
    assert (g.vip, g.address, g.group, g.version, g.name) == (
        "10.0.0.1", "10.0.0.2", 7, 1, "ha-grp")  # fmt: skip
    assert (g.priority, g.preempt, g.preempt_delay_ms, g.hello_ms, g.hold_ms) == (
        120, True, 5000, 1000, 3000)  # fmt: skip
    assert g.auth == b"cisco\0\0\0" and g.md5_key is None
    assert n.cfg.multicast and n.cfg.multicast_group is None and n.cfg.port == 1985
