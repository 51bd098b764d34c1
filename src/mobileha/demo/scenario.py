"""The demo's steps, in order:

1. HSRP elects an Active in each pair; the Standby downloads its table.
2. The HA-SLB, its DFP manager and the foreign agents start.
3. Every MN registers (FA -> SLB -> real HA, the reply straight from the HA to the FA).
4. Steady state: the Standby of pair A holds every binding of its Active.
5. The Active of pair A crashes (:meth:`HomeAgentNode.crash`: sockets and timers gone, no
   Resign, no flush). A probe MN registers co-located with the pair's VIP every 20 ms until
   it is answered: ``failover_ms`` is crash -> first accepted reply from the new Active, so
   it includes whatever delays that reply after the HSRP takeover (``hsrp_takeover_ms``).
   The probe then deregisters, so the binding counts are the MNs' again.
6. The crashed Active's bindings (just before the crash) are compared with the new Active's:
   home and care-of address, NAI, Identification, lifetime, remaining lifetime within
   ``LIFETIME_TOLERANCE_S``, forwarding state installed.
7. Every MN registers again (pair A's through the new Active on the same VIP) and must be
   accepted without a 133.

Each step fills in :class:`~mobileha.demo.plan.Figures` and adds to ``problems`` what did
not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from mobileha.core.actions import Send
from mobileha.core.mobile_node import MnSecurity, MnState, MobileNode
from mobileha.demo.cluster import Cluster, HaEntry
from mobileha.demo.plan import MIP_PORT, MN_SPI, PROBE_NAI, Figures, Plan
from mobileha.demo.screen import Screen
from mobileha.mgmt.views import slb_view
from mobileha.node.home_agent import HomeAgentNode

LIFETIME_TOLERANCE_S = 2.0  # sync records carry whole seconds
PROBE_INTERVAL_S = 0.02
PROBE_LIFETIME = 60


async def until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(step)
    return True


def snapshot(node: HomeAgentNode) -> dict[tuple[str, str], dict[str, Any]]:
    """The MN bindings of a home agent by (home address, care-of address)."""
    now = node.now()
    return {
        (b.home_addr, b.care_of): {
            "nai": b.nai,
            "ident": b.ident,
            "lifetime": b.lifetime,
            "remaining": b.expires - now,
        }
        for b in node.core.table
        if b.nai != PROBE_NAI
    }


class Probe:
    """A co-located mobile node registering straight with a pair's VIP.

    Every ``PROBE_INTERVAL_S`` a new registration (a new core :class:`MobileNode`, so a new
    request and Identification) until one is accepted; a reply is matched to its
    registration by the low 32 bits of the Identification and verified by it. Measures when
    the new Active answers; afterwards :meth:`deregister` removes the probe's binding.
    """

    def __init__(self, plan: Plan, vip: str) -> None:
        self.vip = vip
        self.local = plan.probe_local
        self.security = MnSecurity(MN_SPI, plan.mn_key(PROBE_NAI), "hmac-md5", "timestamp")
        self.sent = 0
        self.registered: MobileNode | None = None  # the registration that was accepted
        self.answered_at: float | None = None  # loop time of its reply
        self._by_ident: dict[int, MobileNode] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._replied = asyncio.Event()

    def _mobile_node(self, loop: asyncio.AbstractEventLoop) -> MobileNode:
        return MobileNode(
            nai=PROBE_NAI,
            home_addr="0.0.0.0",
            ha_addr=self.vip,
            security=self.security,
            care_of=self.local,
            lifetime=PROBE_LIFETIME,
            ha_port=MIP_PORT,
            unix_offset=time.time() - loop.time(),
        )

    def _send(self, mn: MobileNode, sends: list[Send]) -> None:
        ident = mn.outstanding_ident
        if ident is not None:
            self._by_ident[ident & 0xFFFFFFFF] = mn
        if self._transport is not None:
            for s in sends:
                self._transport.sendto(s.payload, s.dst)

    def _datagram(self, data: bytes, src: tuple[str, int]) -> None:
        # a Registration Reply's Identification is at offset 12 (RFC 5944 §3.4): low half 16..20
        mn = self._by_ident.get(int.from_bytes(data[16:20], "big")) if len(data) >= 20 else None
        if mn is None or (self.registered is not None and mn is not self.registered):
            return  # unknown, or a later attempt: one registration is enough
        now = asyncio.get_running_loop().time()
        self._send(mn, mn.receive_datagram(data, src, (self.local, 0), now))
        if self.registered is None and mn.registered:
            self.registered, self.answered_at = mn, now
        self._replied.set()

    async def until_answered(self, timeout: float) -> float | None:
        """Loop time of the first accepted reply, or None."""
        loop = asyncio.get_running_loop()
        probe = self

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                probe._datagram(data, (addr[0], addr[1]))

            def error_received(self, exc: Exception) -> None:
                pass  # ICMP port unreachable while nobody has the VIP socket

        self._transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(self.local, 0))
        deadline = loop.time() + timeout
        while self.registered is None and loop.time() < deadline:
            mn = self._mobile_node(loop)
            self.sent += 1
            self._send(mn, mn.register(loop.time()))
            end = loop.time() + PROBE_INTERVAL_S
            while self.registered is None and loop.time() < end:
                self._replied.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replied.wait(), end - loop.time())
        return self.answered_at

    async def deregister(self, timeout: float = 1.0) -> None:
        """Deregister the accepted registration (lifetime 0) and close the socket."""
        mn = self.registered
        loop = asyncio.get_running_loop()
        if mn is not None and self._transport is not None:
            self._send(mn, mn.deregister(loop.time()))
            end = loop.time() + timeout
            while mn.state is MnState.DEREGISTERING and loop.time() < end:
                self._replied.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replied.wait(), end - loop.time())
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class Scenario:
    """One run of the steps on a started cluster."""

    def __init__(self, cluster: Cluster, screen: Screen, figures: Figures, linger: float) -> None:
        self.c = cluster
        self.plan = cluster.plan
        self.screen = screen
        self.f = figures
        self.linger = linger  # time to watch each stage on a terminal
        # pair A's bindings: the crashed Active's before the crash, the new Active's after
        self.before: dict[tuple[str, str], dict[str, Any]] = {}
        self.after: dict[tuple[str, str], dict[str, Any]] = {}
        self.t_snap = self.t_after = 0.0  # node clock of the two snapshots

    def problem(self, text: str) -> None:
        self.f.problems.append(text)

    async def run(self) -> None:
        if not await self.elect():
            return
        await self.start_edge()
        ok = await self.register()
        active, standby = self.pair_a()
        await self.settle(active, standby)
        t_answer = await self.crash(active, standby)
        if t_answer is None:
            return
        self.compare(active, standby)
        await asyncio.sleep(self.linger)
        await self.reregister(active, standby, ok)
        await asyncio.sleep(self.linger / 2)
        self.screen.set_phase("done")

    def pair_a(self) -> tuple[HaEntry, HaEntry]:
        pair = self.c.pair("A")
        active = next(h for h in pair if h.hsrp_state == "Active")
        return active, next(h for h in pair if h is not active)

    async def elect(self) -> bool:
        """1. HSRP elects, the Standby downloads the Active's table."""
        self.screen.set_phase("HSRP election and bulk sync")
        await self.c.start()

        def settled() -> bool:
            for p in ("A", "B"):
                pair = self.c.pair(p)
                if sorted(h.hsrp_state for h in pair) != ["Active", "Standby"]:
                    return False
                if not all(h.ready for h in pair) or not any(h.answering for h in pair):
                    return False
            return True

        if not await until(settled, 15.0):
            self.problem("HSRP pairs did not settle into Active/Standby")
            return False
        for h in self.c.has:
            self.screen.event(f"{h.name} ({h.address}) HSRP {h.hsrp_state} for VIP {h.vip}")
        return True

    async def start_edge(self) -> None:
        """2. The SLB, its DFP manager (weights from every HA's agent), the FAs."""
        self.screen.set_phase("HA-SLB, DFP, foreign agents")
        await self.c.start_edge()
        dfp = self.c.slb.dfp

        def dfp_up() -> bool:
            return dfp is None or all(
                rec.state.value == "connected" and rec.reports > 0 for rec in dfp.agents.values()
            )

        if not await until(dfp_up, 5.0):
            self.screen.event("DFP: not every agent reported yet (static weights)")
        weights = " ".join(
            f"{r['name']}={'-' if r['dfp_weight'] is None else r['dfp_weight']}"
            for r in slb_view(self.c.slb)["reals"]
        )
        self.screen.event(f"DFP weights {weights}")

    async def register(self) -> int:
        """3. Every MN registers; returns how many are registered."""
        n = self.plan.n_mns
        self.screen.set_phase(f"registering {n} mobile nodes")
        fleet = self.c.fleet
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await fleet.register_all()
        await fleet.wait_until(lambda: fleet.count(MnState.REGISTERING) == 0, 20.0)
        reg_s = loop.time() - t0
        ok = fleet.registered
        f = self.f
        f.registrations_ok, f.registrations_failed = ok, n - ok
        f.registration_s = round(reg_s, 3)
        view = slb_view(self.c.slb)
        # the SLB relays requests only; the real HA answers the FA directly (DESIGN §5)
        f.slb_forwarded = view["forwarded"]
        f.fa_replies_direct_from_ha = sum(fa.core.stats.replies_other_source for fa in self.c.fas)
        f.slb_split = {r["name"]: r["total_conns"] for r in view["reals"]}
        f.slb_split_by_address = {r["address"]: r["total_conns"] for r in view["reals"]}
        self.screen.event(f"{ok}/{n} registered in {reg_s:.2f}s; SLB split {f.slb_split}")
        if ok != n:
            self.problem(f"{n - ok} registrations failed")
        return ok

    async def settle(self, active: HaEntry, standby: HaEntry) -> None:
        """4. Every binding of pair A's Active on its Standby too."""
        self.screen.set_phase("steady state: bindings synchronised to the standbys")

        def synced() -> bool:
            return active.pending == 0 and standby.bindings == active.bindings

        if not await until(synced, 10.0):
            self.problem("standby of pair A not in sync before the crash")
        await asyncio.sleep(self.linger)

    async def crash(self, active: HaEntry, standby: HaEntry) -> float | None:
        """5. Crash pair A's Active; the loop time the new Active first answers, or None."""
        self.screen.set_phase(f"crash of {active.name}, the Active of pair A")
        self.before = snapshot(active.node)
        self.t_snap = active.node.now()
        f = self.f
        f.bindings_before = len(self.before)
        f.crashed = active.name
        loop = asyncio.get_running_loop()
        t_crash = loop.time()
        active.node.crash()
        active.crashed = True
        self.screen.event(
            f"{active.name} crashed (sockets closed, no Resign) with {len(self.before)} bindings"
        )
        probe = Probe(self.plan, active.vip)
        t_answer = await probe.until_answered(10.0)
        t_active = next((t for t, st in standby.changes if st == "Active" and t >= t_crash), None)
        f.new_active = standby.name
        f.probe_requests = probe.sent
        f.hsrp_takeover_ms = None if t_active is None else round((t_active - t_crash) * 1000, 1)
        if t_answer is None:
            await probe.deregister()
            self.problem("the standby never answered on the VIP")
            return None
        f.failover_ms = round((t_answer - t_crash) * 1000, 1)
        self.screen.event(
            f"{standby.name} HSRP Active after {f.hsrp_takeover_ms} ms, answering on "
            f"{standby.vip} after {f.failover_ms} ms"
        )
        self.after = snapshot(standby.node)
        self.t_after = standby.node.now()
        await probe.deregister()
        return t_answer

    def compare(self, active: HaEntry, standby: HaEntry) -> None:
        """6. The crashed Active's bindings on the new Active, with forwarding state."""
        before, after = self.before, self.after
        elapsed = self.t_after - self.t_snap
        lost = mismatched = 0
        for key, b in before.items():
            a = after.get(key)
            if a is None:
                lost += 1
                continue
            if (
                a["nai"] != b["nai"]
                or a["ident"] != b["ident"]
                or a["lifetime"] != b["lifetime"]
                or abs(a["remaining"] - (b["remaining"] - elapsed)) > LIFETIME_TOLERANCE_S
            ):
                mismatched += 1
        dp = standby.node.dataplane
        forwarding = sum(1 for hoa, _coa in before if dp is not None and dp.lookup(hoa))
        f = self.f
        f.bindings_after = len(after)
        f.bindings_lost = lost + mismatched
        f.bindings_missing = lost
        f.bindings_mismatched = mismatched
        f.bindings_forwarding = forwarding
        self.screen.event(
            f"bindings before {len(before)}, after {len(after)}, lost {lost + mismatched}, "
            f"forwarding installed {forwarding}"
        )
        if lost + mismatched:
            self.problem(f"{lost + mismatched} bindings lost or changed in the takeover")
        if forwarding != len(before):
            self.problem(f"{len(before) - forwarding} bindings without forwarding state")

    async def reregister(self, active: HaEntry, standby: HaEntry, ok: int) -> None:
        """7. Every MN registers again, without a 133."""
        self.screen.set_phase("re-registration of every MN after the takeover")
        fleet = self.c.fleet
        on_a = {i for i, m in enumerate(fleet.mns) if m.ha_addr == active.vip}
        acc0 = [m.stats.accepted for m in fleet.mns]
        c133 = [m.stats.codes.get(133, 0) for m in fleet.mns]
        await fleet.register_all()
        await fleet.wait_until(lambda: fleet.count(MnState.RENEWING) == 0, 20.0)
        again = [m.stats.accepted > acc0[i] for i, m in enumerate(fleet.mns)]
        re_ok = sum(again)
        re_133 = sum(m.stats.codes.get(133, 0) - c133[i] for i, m in enumerate(fleet.mns))
        f = self.f
        f.reregistrations_ok = re_ok
        f.reregistrations_failed = ok - re_ok
        f.reregistrations_pair_a_ok = sum(1 for i in on_a if again[i])
        f.reregistrations_pair_a = len(on_a)
        f.reregistrations_133 = re_133
        self.screen.event(
            f"re-registered {re_ok}/{ok} ({f.reregistrations_pair_a_ok}/{len(on_a)} via "
            f"{standby.name}), 133 replies: {re_133}"
        )
        if re_ok != ok:
            self.problem(f"{ok - re_ok} re-registrations failed after the takeover")
        if re_133:
            self.problem(f"{re_133} re-registrations answered 133 (replay state lost)")
        f.bindings_final_new_active = standby.bindings


__all__ = ["LIFETIME_TOLERANCE_S", "Probe", "Scenario", "snapshot", "until"]
