"""The demo's running cluster: the nodes of a :class:`~mobileha.demo.plan.Plan`, built by
:mod:`mobileha.compose` from the plan's configs, in one asyncio loop.

* Each pair is two :class:`~mobileha.node.home_agent.HomeAgentNode` sharing the pair's VIP
  (the SLB's real); every HA runs a DFP agent reporting the VIP, and the SLB's DFP manager
  connects to both HAs of each pair.
* The FAs ask their local AAA table for the home agent (the MNs send HA address 0.0.0.0,
  RFC 4433) and get the SLB's virtual address; the SLB picks a pair and relays the request
  with its relay tag; the pair's Active answers the FA directly. Later requests go
  straight to the pair's VIP (the reply's HA address), as with Cisco's HA-SLB.
* The MNs are core :class:`~mobileha.core.mobile_node.MobileNode` objects on one socket
  (:class:`~mobileha.node.mobile_node.MobileNodeFleet`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from mobileha import compose
from mobileha.core.hsrp import StateChange
from mobileha.core.mobile_node import MnSecurity, MobileNode
from mobileha.demo.plan import (
    DFP_PORT,
    MIP_PORT,
    MN_LIFETIME,
    MN_SPI,
    Plan,
    fa_config,
    ha_config,
    slb_config,
)
from mobileha.node.home_agent import HomeAgentNode
from mobileha.node.mobile_node import MobileNodeFleet


@dataclass(slots=True)
class HaEntry:
    """One home agent of the cluster and what the demo watches of it."""

    pair: str
    name: str
    address: str
    vip: str
    node: HomeAgentNode
    crashed: bool = False
    changes: list[tuple[float, str]] = field(default_factory=list)  # (loop time, HSRP state)

    @property
    def hsrp_state(self) -> str:
        if self.crashed:
            return "CRASHED"
        hsrp = self.node.cluster.hsrp
        for g in hsrp.groups.values() if hsrp is not None else ():
            return str(g.state.label)
        return "?"

    @property
    def answering(self) -> bool:
        """Active in the core and the VIP socket open: requests to the VIP get answers."""
        return not self.crashed and self.node.core.active and self.vip in self.node.bound()

    @property
    def bindings(self) -> int:
        return len(self.node.core.table)

    @property
    def ready(self) -> bool:
        sync = self.node.agents[0].sync
        return bool(sync is not None and sync.ready)

    @property
    def pending(self) -> int:
        sync = self.node.agents[0].sync
        return sync.pending if sync is not None else 0


class Cluster:
    """The nodes of one plan: four home agents, the HA-SLB, two FAs and the MN fleet."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.has: list[HaEntry] = []
        for pair in plan.pairs:
            for i, m in enumerate(pair.members):
                node = compose.home_agent_node(ha_config(plan, pair.name, i))
                self.has.append(HaEntry(pair.name, m.name, m.address, pair.vip, node))
        for h in self.has:
            self._watch(h)
        self.slb = compose.slb_node(slb_config(plan))
        if self.slb.dfp is not None:  # the second HA of each pair is a DFP agent too
            for pair in plan.pairs:
                self.slb.dfp.add_agent(f"{pair.members[1].address}:{DFP_PORT}", [pair.vip], 0.0)
        nais = plan.nais()
        self.fas = [compose.foreign_agent_node(fa_config(plan, i, nais[i::2])) for i in range(2)]
        mns = [
            MobileNode(
                nai=nai,
                home_addr="0.0.0.0",
                ha_addr="0.0.0.0",  # RFC 4433: the FA's AAA assigns the HA (the SLB VIP)
                security=MnSecurity(MN_SPI, plan.mn_key(nai), "hmac-md5", "timestamp"),
                foreign_agent=(plan.fa_of(n), MIP_PORT),
                lifetime=MN_LIFETIME,
            )
            for n, nai in enumerate(nais)
        ]
        self.fleet = MobileNodeFleet(mns, local=(plan.mn_local, 0), burst=50)
        self.started: list[Any] = []

    def _watch(self, h: HaEntry) -> None:
        """Record the HSRP state changes of ``h`` with their loop time."""

        def on_notice(notice: Any) -> None:
            if isinstance(notice, StateChange):
                h.changes.append((asyncio.get_running_loop().time(), str(notice.new.label)))

        h.node.on_notice = on_notice

    def pair(self, name: str) -> list[HaEntry]:
        return [h for h in self.has if h.pair == name]

    async def start(self) -> None:
        """The home agent pairs."""
        for h in self.has:
            await h.node.start()
            self.started.append(h.node)

    async def start_edge(self) -> None:
        """The SLB, the FAs and the MN fleet's socket."""
        await self.slb.start()
        self.started.append(self.slb)
        for fa in self.fas:
            await fa.start()
            self.started.append(fa)
        await self.fleet.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.fleet.close()
        for node in reversed(self.started):
            if any(h.node is node and h.crashed for h in self.has):
                continue
            with contextlib.suppress(Exception):
                await asyncio.wait_for(node.stop(), 5.0)


__all__ = ["Cluster", "HaEntry"]
