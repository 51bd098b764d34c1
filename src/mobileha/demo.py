"""``mobileha demo``: a whole cluster in one process on loopback, with a failover to watch.

Unprivileged, one asyncio loop (uvloop when installed), loopback addresses only, memory
data plane. The cluster (addresses in one 127.a.b.0/24 chosen from ``--seed``)::

    200 MNs --- FA fa-1 (.31) --+                       +-- pair A  VIP .10  ha-a1 .11 (110)
    (.40)   \\-- FA fa-2 (.32) --+--> HA-SLB VIP .50 ---+            ==HSRP+sync== ha-a2 .12
                                    (relay mode, DFP)   +-- pair B  VIP .20  ha-b1 .21 (110)
                                                                    ==HSRP+sync== ha-b2 .22

* Each pair is two :class:`~mobileha.node.home_agent.HomeAgentNode` built from a home-agent
  config with ``[hsrp]`` (version 2, unicast peers, hello 300 ms / hold 1000 ms, preempt)
  and ``[redundancy]`` (HA-HA binding sync with bulk download), sharing the group's VIP,
  which is the SLB's real. Every HA runs a DFP agent reporting the pair's VIP; the SLB's
  DFP manager connects to both HAs of each pair.
* The FAs ask their local AAA table for the home agent (RFC 4433: the MNs send HA address
  0.0.0.0) and get the SLB's virtual address; the SLB picks a pair (weighted round robin
  on the NAI session) and relays the request with its relay tag; the pair's Active
  answers the FA directly. Later requests go straight to the pair's VIP (the reply's HA
  address), as with Cisco's HA-SLB.
* MNs: NAI ``mn<n>@demo.example``, dynamic home addresses, MN-HA HMAC-MD5 (a key per MN),
  timestamp replay protection, FA-HA HMAC-MD5 between FAs and HAs.

Scenario: start; register every MN; wait until the standbys hold every binding; crash the
Active of pair A (:meth:`HomeAgentNode.crash`: sockets and timers gone, no Resign, no
flush); a probe MN registers co-located with the pair's VIP every 20 ms until it is
answered (``failover_ms`` = crash -> first accepted reply from the new Active, so it
includes whatever delays that reply after the HSRP takeover, ``hsrp_takeover_ms``); compare
the crashed Active's bindings (just before the crash) with the new Active's (HoA, CoA,
Identification, lifetime, remaining lifetime within ``LIFETIME_TOLERANCE_S``, forwarding
state installed); then every MN re-registers (through its FA, to its pair's VIP) and must
be accepted without a 133. Exit 0 when everything held, 1 otherwise.

``--json``: the last line of stdout is one JSON object (``registrations_ok``,
``registrations_failed``, ``slb_split``, ``failover_ms``, ``bindings_before``,
``bindings_after``, ``bindings_lost`` and more).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mobileha.config import Config, config_from_dict
from mobileha.core.binding import FLAG_D
from mobileha.core.mobile_node import MnSecurity, MnState, MobileNode
from mobileha.log import LEVELS, setup_logging
from mobileha.mgmt.views import slb_view
from mobileha.node.foreign_agent import ForeignAgentNode
from mobileha.node.home_agent import HomeAgentNode
from mobileha.node.mobile_node import MobileNodeFleet
from mobileha.node.slb import SlbNode
from mobileha.wire import DecodeError
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.mip import EXT_MN_HA, NaiExt, RegistrationReply, RegistrationRequest, append_auth

MIP_PORT = 10434  # unprivileged stand-in for UDP 434
HSRP_PORT = 11985  # ... for UDP 1985
DFP_PORT = 18081
HELLO_MS, HOLD_MS = 300, 1000
MN_LIFETIME = 600
LIFETIME_TOLERANCE_S = 2.0  # sync records carry whole seconds
PROBE_INTERVAL_S = 0.02
MN_SPI, FA_SPI, SYNC_SPI = 256, 300, 400
TIME_LIMIT_S = 55.0
PROBE_NAI = "probe@demo.example"


def _key(seed: int, what: str) -> bytes:
    return hashlib.md5(f"mobileha-demo:{seed}:{what}".encode()).digest()


def _hex(b: bytes) -> str:
    return "hex:" + b.hex()


# ---------------------------------------------------------------------------- the plan


@dataclass(slots=True)
class Plan:
    """Addresses and keys of one demo run."""

    net: str  # "127.a.b"
    n_mns: int
    seed: int

    def ip(self, host: int) -> str:
        return f"{self.net}.{host}"

    @property
    def slb(self) -> str:
        return self.ip(50)

    @property
    def fas(self) -> list[str]:
        return [self.ip(31), self.ip(32)]

    @property
    def mn_local(self) -> str:
        return self.ip(40)

    @property
    def probe_local(self) -> str:
        return self.ip(41)

    # pair -> (VIP, [(name, address, priority), ...], pool)
    def pairs(self) -> dict[str, tuple[str, list[tuple[str, str, int]], str]]:
        return {
            "A": (
                self.ip(10),
                [("ha-a1", self.ip(11), 110), ("ha-a2", self.ip(12), 100)],
                "10.200.0.0/17",
            ),
            "B": (
                self.ip(20),
                [("ha-b1", self.ip(21), 110), ("ha-b2", self.ip(22), 100)],
                "10.200.128.0/17",
            ),
        }

    def nai(self, n: int) -> str:
        return f"mn{n}@demo.example"

    def mn_key(self, nai: str) -> bytes:
        return _key(self.seed, nai)

    @property
    def fa_key(self) -> bytes:
        return _key(self.seed, "fa-ha")

    @property
    def sync_key(self) -> bytes:
        return _key(self.seed, "ha-ha")


def ha_config(plan: Plan, pair: str, idx: int) -> Config:
    vip, members, pool = plan.pairs()[pair]
    name, addr, prio = members[idx]
    peer = members[1 - idx][1]
    mns = [
        {
            "nai": nai,
            "home_address": "dynamic",
            "spi": MN_SPI,
            "key": _hex(plan.mn_key(nai)),
            "algorithm": "hmac-md5",
        }
        for nai in [plan.nai(n) for n in range(1, plan.n_mns + 1)] + [PROBE_NAI]
    ]
    doc: dict[str, Any] = {
        "node": {"role": "home-agent", "name": name},
        "management": {"enabled": False},
        "home_agent": {
            "address": addr,
            "port": MIP_PORT,
            "trusted_slb": [plan.slb],
            "home_prefix": "10.200.0.0/16",
            "pool": pool,
        },
        "mobile_node": mns,
        "foreign_agent": [
            {"address": fa, "spi": FA_SPI, "key": _hex(plan.fa_key), "algorithm": "hmac-md5"}
            for fa in plan.fas
        ],
        "hsrp": {
            "interface": "lo",
            "group": 1 if pair == "A" else 2,
            "version": 2,
            "virtual_ip": vip,
            "priority": prio,
            "preempt": True,
            "hello_ms": HELLO_MS,
            "hold_ms": HOLD_MS,
            "port": HSRP_PORT,
            "peers": [peer],
        },
        "redundancy": {
            "peer": peer,
            "port": MIP_PORT,
            "spi": SYNC_SPI,
            "key": _hex(plan.sync_key),
            "algorithm": "hmac-md5",
            "retransmit_ms": 100,
        },
        "dataplane": {"backend": "memory"},
        "dfp": {"listen": f"{addr}:{DFP_PORT}", "interval_s": 1},
    }
    return config_from_dict(doc, source=f"<demo {name}>")


def slb_config(plan: Plan) -> Config:
    reals = []
    for pair, (vip, members, _pool) in plan.pairs().items():
        reals.append(
            {
                "name": f"pair-{pair}",
                "address": vip,
                "port": MIP_PORT,
                "dfp_agent": f"{members[0][1]}:{DFP_PORT}",
            }
        )
    doc = {
        "node": {"role": "slb", "name": "ha-slb"},
        "management": {"enabled": False},
        "slb": {
            "virtual_address": plan.slb,
            "port": MIP_PORT,
            "mode": "relay",
            "real": reals,
        },
        "dfp": {"retry_interval_s": 1},
    }
    return config_from_dict(doc, source="<demo slb>")


def fa_config(plan: Plan, idx: int, nais: list[str]) -> Config:
    addr = plan.fas[idx]
    vips = [v for v, _m, _p in plan.pairs().values()]
    doc = {
        "node": {"role": "foreign-agent", "name": f"fa-{idx + 1}"},
        "management": {"enabled": False},
        "foreign_agent": {
            "address": addr,
            "port": MIP_PORT,
            "home_agent": plan.slb,
            "home_agent_port": MIP_PORT,
            "home_agent_sa": [
                {"address": a, "spi": FA_SPI, "key": _hex(plan.fa_key), "algorithm": "hmac-md5"}
                for a in [plan.slb, *vips]
            ],
        },
        "dataplane": {"backend": "memory"},
        "aaa": {
            "backend": "local",
            "user": [{"nai": nai, "home_agent": plan.slb} for nai in nais],
        },
    }
    return config_from_dict(doc, source=f"<demo fa-{idx + 1}>")


# ---------------------------------------------------------------------------- the cluster


@dataclass(slots=True)
class HaEntry:
    pair: str
    name: str
    address: str
    vip: str
    node: HomeAgentNode
    crashed: bool = False
    changes: list[tuple[float, str]] = field(default_factory=list)  # (loop time, state)

    @property
    def hsrp_state(self) -> str:
        if self.crashed:
            return "CRASHED"
        groups = self.node.hsrp.core.groups.values() if self.node.hsrp is not None else []
        for g in groups:
            return str(g.state.label)
        return "?"

    @property
    def answering(self) -> bool:
        return (
            not self.crashed
            and self.node.core.active
            and self.vip in self.node.bound()  # the VIP socket is open
        )

    @property
    def ready(self) -> bool:
        r = self.node.redundancy
        return bool(r is not None and r.peer.ready)

    @property
    def pending(self) -> int:
        r = self.node.redundancy
        return int(r.peer.pending) if r is not None else 0


class Cluster:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.has: list[HaEntry] = []
        for pair, (vip, members, _pool) in plan.pairs().items():
            for i, (name, addr, _prio) in enumerate(members):
                node = HomeAgentNode.from_config(ha_config(plan, pair, i))
                self.has.append(HaEntry(pair, name, addr, vip, node))
        for h in self.has:
            self._watch(h)
        self.slb = SlbNode.from_config(slb_config(plan))
        if self.slb.dfp is not None:  # the standby HA of each pair is a DFP agent too
            for _pair, (vip, members, _pool) in plan.pairs().items():
                self.slb.dfp.add_agent(f"{members[1][1]}:{DFP_PORT}", [vip], 0.0)
        nais = [plan.nai(n) for n in range(1, plan.n_mns + 1)]
        self.fa_of: dict[str, str] = {}
        halves = [nais[0::2], nais[1::2]]
        self.fas = [
            ForeignAgentNode.from_config(fa_config(plan, i, half)) for i, half in enumerate(halves)
        ]
        mns = []
        for n, nai in enumerate(nais):
            fa = plan.fas[n % 2]
            self.fa_of[nai] = fa
            mns.append(
                MobileNode(
                    nai=nai,
                    home_addr="0.0.0.0",
                    ha_addr="0.0.0.0",  # RFC 4433: the FA's AAA assigns the HA (SLB VIP)
                    security=MnSecurity(MN_SPI, plan.mn_key(nai), "hmac-md5", "timestamp"),
                    foreign_agent=(fa, MIP_PORT),
                    lifetime=MN_LIFETIME,
                )
            )
        self.fleet = MobileNodeFleet(mns, local=(plan.mn_local, 0), burst=50)
        self.started: list[Any] = []

    def _watch(self, h: HaEntry) -> None:
        hs = h.node.hsrp
        if hs is None:
            return
        inner: Callable[[Any], None] | None = hs.on_state_change

        def on_change(change: Any) -> None:
            loop = asyncio.get_running_loop()
            h.changes.append((loop.time(), str(change.new.label)))
            if inner is not None:
                inner(change)

        hs.on_state_change = on_change

    def pair(self, name: str) -> list[HaEntry]:
        return [h for h in self.has if h.pair == name]

    async def start(self) -> None:
        for h in self.has:
            await h.node.start()
            self.started.append(h.node)

    async def start_edge(self) -> None:
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


# ---------------------------------------------------------------------------- the view


class Screen:
    """The live view: a rich Live layout on a terminal, plain lines otherwise."""

    def __init__(self, cluster: Cluster, *, live: bool, out: Any = None) -> None:
        self.c = cluster
        self.live_wanted = live
        self.out = out if out is not None else sys.stdout
        self.t0 = time.monotonic()
        self.phase = "starting"
        self.events: list[str] = []
        self._live: Any = None
        self._task: asyncio.Task[None] | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def event(self, text: str) -> None:
        line = f"[{self.elapsed():5.1f}s] {text}"
        self.events.append(line)
        if self._live is None:
            print(line, file=self.out, flush=True)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.event(f"== {phase}")

    # -- figures shared by both renderings
    def mn_figures(self) -> dict[str, int]:
        f = self.c.fleet
        codes: dict[int, int] = {}
        acc = den = retx = 0
        for m in f.mns:
            acc += m.stats.accepted
            den += m.stats.denied
            retx += m.stats.retransmissions
            for k, v in m.stats.codes.items():
                codes[k] = codes.get(k, 0) + v
        return {
            "registered": f.registered,
            "total": len(f.mns),
            "accepted": acc,
            "denied": den,
            "retransmissions": retx,
            "code_133": codes.get(133, 0),
        }

    def plain_line(self) -> str:
        m = self.mn_figures()
        reals = " ".join(
            f"{r['name']}={r['total_conns']}({r['state']},w={r['dfp_weight']})"
            for r in slb_view(self.c.slb)["reals"]
        )
        has = " ".join(
            f"{h.name}={h.hsrp_state}/{len(h.node.core.table)}" + ("*" if h.answering else "")
            for h in self.c.has
        )
        return (
            f"[{self.elapsed():5.1f}s] {self.phase}: MNs {m['registered']}/{m['total']} "
            f"registered (denied {m['denied']}, retx {m['retransmissions']}) | "
            f"SLB {reals} | HSRP/bindings {has}"
        )

    def renderable(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        m = self.mn_figures()
        head = (
            f"[bold]mobileha demo[/] {self.elapsed():5.1f}s  phase: [cyan]{self.phase}[/]   "
            f"MNs registered [bold]{m['registered']}[/]/{m['total']}  accepted {m['accepted']}"
            f"  denied {m['denied']}  retransmissions {m['retransmissions']}"
            f"  133s {m['code_133']}"
        )
        ha_t = Table(title="show standby / show ip mobile binding summary", expand=True)
        for col in ("pair", "HA", "address", "HSRP", "answers", "bindings", "sync", "BU queue"):
            ha_t.add_column(col)
        colors = {"Active": "green", "Standby": "yellow", "CRASHED": "red"}
        for h in self.c.has:
            st = h.hsrp_state
            ha_t.add_row(
                f"{h.pair} ({h.vip})",
                h.name,
                h.address,
                f"[{colors.get(st, 'white')}]{st}[/]",
                "yes" if h.answering else "-",
                str(len(h.node.core.table)) if not h.crashed else "-",
                ("ready" if h.ready else "download") if not h.crashed else "-",
                str(h.pending) if not h.crashed else "-",
            )
        v = slb_view(self.c.slb)
        slb_t = Table(
            title=f"show ip slb reals  (vserver {v['virtual_address']}:{v['port']} {v['mode']})",
            expand=True,
        )
        for col in ("real", "address", "state", "weight (DFP)", "sessions", "total"):
            slb_t.add_column(col)
        for r in v["reals"]:
            slb_t.add_row(
                r["name"],
                r["address"],
                r["state"],
                f"{r['weight_admin']} ({r['dfp_weight']})",
                str(r["conns"]),
                str(r["total_conns"]),
            )
        ev = Panel("\n".join(self.events[-10:]) or " ", title="events")
        return Group(head, ha_t, slb_t, ev)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._live is None:
                print(self.plain_line(), file=self.out, flush=True)

    def start(self) -> None:
        if self.live_wanted:
            from rich.live import Live

            self._live = Live(get_renderable=self.renderable, refresh_per_second=4, transient=False)
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None


# ---------------------------------------------------------------------------- probe


class Probe:
    """A co-located MN registering straight with a pair's VIP: sends a fresh request every
    ``PROBE_INTERVAL_S`` until one is accepted (measures when the new Active answers)."""

    def __init__(self, plan: Plan, vip: str) -> None:
        self.vip = vip
        self.local = plan.probe_local
        self.auth = Authenticator(plan.mn_key(PROBE_NAI), "hmac-md5")
        self.sent = 0
        self.codes: dict[int, int] = {}

    def _request(self, n: int) -> bytes:
        hdr = RegistrationRequest(
            flags=FLAG_D,
            lifetime=60,
            home_addr="0.0.0.0",
            ha_addr=self.vip,
            care_of=self.local,
            ident=ntp_identification(time.time(), n),
        ).header()
        return append_auth(hdr + NaiExt(PROBE_NAI).encode(), EXT_MN_HA, MN_SPI, self.auth)

    async def until_answered(self, timeout: float) -> float | None:
        """Loop time of the first accepted reply, or None."""
        loop = asyncio.get_running_loop()
        got: asyncio.Future[float] = loop.create_future()
        idents: set[int] = set()
        probe = self

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                try:
                    rep = RegistrationReply.decode(data)
                except DecodeError:
                    return
                if rep.ident & 0xFFFFFFFF not in idents:
                    return
                probe.codes[rep.code] = probe.codes.get(rep.code, 0) + 1
                if rep.code in (0, 1) and not got.done():
                    got.set_result(loop.time())

            def error_received(self, exc: Exception) -> None:
                pass  # ICMP port unreachable while nobody has the VIP socket

        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(self.local, 0))
        deadline = loop.time() + timeout
        try:
            while not got.done() and loop.time() < deadline:
                self.sent += 1
                idents.add(self.sent)
                transport.sendto(self._request(self.sent), (self.vip, MIP_PORT))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(got), PROBE_INTERVAL_S)
            return got.result() if got.done() else None
        finally:
            transport.close()


# ---------------------------------------------------------------------------- scenario


def _snapshot(node: HomeAgentNode) -> dict[tuple[str, str], dict[str, Any]]:
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


async def _until(pred: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(step)
    return True


def pick_net(rng: random.Random) -> str:
    """A 127.a.b subnet whose SLB address/port is free (no other demo run there)."""
    for _ in range(50):
        net = f"127.{rng.randint(100, 254)}.{rng.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((f"{net}.50", MIP_PORT))
            except OSError:
                continue
        return net
    raise RuntimeError("no free loopback subnet for the demo")


async def scenario(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    rng = random.Random(args.seed)
    plan = Plan(pick_net(rng), args.mns, args.seed)
    summary.update(net=f"{plan.net}.0/24", mns=plan.n_mns, seed=args.seed)
    cluster = Cluster(plan)
    live = not args.no_live and sys.stdout.isatty()
    screen = Screen(cluster, live=live)
    loop = asyncio.get_running_loop()
    linger = 3.0 if live else 0.5  # time to watch each stage on a terminal
    screen.start()
    try:
        await _run(cluster, screen, summary, plan, loop, linger)
    finally:
        await screen.stop()
        await cluster.stop()


async def _run(
    cluster: Cluster,
    screen: Screen,
    summary: dict[str, Any],
    plan: Plan,
    loop: asyncio.AbstractEventLoop,
    linger: float,
) -> None:
    problems: list[str] = summary["problems"]
    # 1. the home agent pairs: HSRP elects, the standby downloads the Active's table
    screen.set_phase("HSRP election and bulk sync")
    await cluster.start()

    def pairs_settled() -> bool:
        for p in ("A", "B"):
            states = sorted(h.hsrp_state for h in cluster.pair(p))
            if states != ["Active", "Standby"]:
                return False
            if not all(h.ready for h in cluster.pair(p)):
                return False
            if not any(h.answering for h in cluster.pair(p)):
                return False
        return True

    if not await _until(pairs_settled, 15.0):
        problems.append("HSRP pairs did not settle into Active/Standby")
        return
    for h in cluster.has:
        screen.event(f"{h.name} ({h.address}) HSRP {h.hsrp_state} for VIP {h.vip}")
    # 2. the SLB, its DFP manager, the FAs
    screen.set_phase("HA-SLB, DFP, foreign agents")
    await cluster.start_edge()
    dfp = cluster.slb.dfp

    def dfp_up() -> bool:
        return dfp is None or all(
            rec.state.value == "connected" and rec.reports > 0 for rec in dfp.agents.values()
        )

    if not await _until(dfp_up, 5.0):
        screen.event("DFP: not every agent reported yet (static weights)")
    weights = {r["name"]: r["dfp_weight"] for r in slb_view(cluster.slb)["reals"]}
    screen.event(f"DFP weights {weights}")
    # 3. registrations
    screen.set_phase(f"registering {plan.n_mns} mobile nodes")
    fleet = cluster.fleet
    t_reg = loop.time()
    await fleet.register_all()
    await fleet.wait_until(lambda: fleet.count(MnState.REGISTERING) == 0, 20.0)
    reg_s = loop.time() - t_reg
    ok = fleet.registered
    summary["registrations_ok"] = ok
    summary["registrations_failed"] = plan.n_mns - ok
    summary["registration_s"] = round(reg_s, 3)
    view = slb_view(cluster.slb)
    # the SLB relays requests only; the real HA answers the FA directly (DESIGN §5)
    summary["slb_forwarded"] = view["forwarded"]
    summary["fa_replies_direct_from_ha"] = sum(
        fa.core.stats.replies_other_source for fa in cluster.fas
    )
    summary["slb_split"] = {r["name"]: r["total_conns"] for r in view["reals"]}
    summary["slb_split_by_address"] = {r["address"]: r["total_conns"] for r in view["reals"]}
    screen.event(f"{ok}/{plan.n_mns} registered in {reg_s:.2f}s; SLB split {summary['slb_split']}")
    if ok != plan.n_mns:
        problems.append(f"{plan.n_mns - ok} registrations failed")
    # 4. steady state: every binding on the standby too
    screen.set_phase("steady state: bindings synchronised to the standbys")
    pair_a = cluster.pair("A")
    active = next(h for h in pair_a if h.hsrp_state == "Active")
    standby = next(h for h in pair_a if h is not active)

    def synced() -> bool:
        return active.pending == 0 and len(standby.node.core.table) == len(active.node.core.table)

    if not await _until(synced, 10.0):
        problems.append("standby of pair A not in sync before the crash")
    await asyncio.sleep(linger)
    # 5. crash the Active of pair A
    screen.set_phase(f"crash of {active.name}, the Active of pair A")
    before = _snapshot(active.node)
    summary["bindings_before"] = len(before)
    summary["crashed"] = active.name
    t_snap = active.node.now()
    t_crash = loop.time()
    active.node.crash()
    active.crashed = True
    screen.event(f"{active.name} crashed (sockets closed, no Resign) with {len(before)} bindings")
    probe = Probe(plan, active.vip)
    t_answer = await probe.until_answered(10.0)
    t_active = next((t for t, st in standby.changes if st == "Active" and t >= t_crash), None)
    summary["new_active"] = standby.name
    summary["probe_requests"] = probe.sent
    summary["hsrp_takeover_ms"] = (
        None if t_active is None else round((t_active - t_crash) * 1000, 1)
    )
    if t_answer is None:
        summary["failover_ms"] = None
        problems.append("the standby never answered on the VIP")
        return
    summary["failover_ms"] = round((t_answer - t_crash) * 1000, 1)
    screen.event(
        f"{standby.name} HSRP Active after {summary['hsrp_takeover_ms']} ms, answering on "
        f"{standby.vip} after {summary['failover_ms']} ms"
    )
    # 6. compare the bindings
    after = _snapshot(standby.node)
    elapsed = standby.node.now() - t_snap
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
    summary["bindings_after"] = len(after)
    summary["bindings_lost"] = lost + mismatched
    summary["bindings_missing"] = lost
    summary["bindings_mismatched"] = mismatched
    summary["bindings_forwarding"] = forwarding
    screen.event(
        f"bindings before {len(before)}, after {len(after)}, lost {lost + mismatched}, "
        f"forwarding installed {forwarding}"
    )
    if lost + mismatched:
        problems.append(f"{lost + mismatched} bindings lost or changed in the takeover")
    if forwarding != len(before):
        problems.append(f"{len(before) - forwarding} bindings without forwarding state")
    await asyncio.sleep(linger)
    # 7. every MN re-registers (pair A's MNs now reach the new Active on the same VIP)
    screen.set_phase("re-registration of every MN after the takeover")
    on_a = {i for i, m in enumerate(fleet.mns) if m.ha_addr == active.vip}
    acc0 = [m.stats.accepted for m in fleet.mns]
    c133 = [m.stats.codes.get(133, 0) for m in fleet.mns]
    await fleet.register_all()
    await fleet.wait_until(lambda: fleet.count(MnState.RENEWING) == 0, 20.0)
    re_ok = sum(1 for i, m in enumerate(fleet.mns) if m.stats.accepted > acc0[i])
    re_133 = sum(m.stats.codes.get(133, 0) - c133[i] for i, m in enumerate(fleet.mns))
    summary["reregistrations_ok"] = re_ok
    summary["reregistrations_failed"] = ok - re_ok
    summary["reregistrations_pair_a_ok"] = sum(
        1 for i in on_a if fleet.mns[i].stats.accepted > acc0[i]
    )
    summary["reregistrations_pair_a"] = len(on_a)
    summary["reregistrations_133"] = re_133
    screen.event(
        f"re-registered {re_ok}/{ok} ({summary['reregistrations_pair_a_ok']}/{len(on_a)} via "
        f"{standby.name}), 133 replies: {re_133}"
    )
    if re_ok != ok:
        problems.append(f"{ok - re_ok} re-registrations failed after the takeover")
    if re_133:
        problems.append(f"{re_133} re-registrations answered 133 (replay state lost)")
    summary["bindings_final_new_active"] = len(standby.node.core.table)
    await asyncio.sleep(linger / 2)
    screen.set_phase("done")


def _print_summary(s: dict[str, Any], out: Any) -> None:
    lines = [
        "",
        "mobileha demo summary",
        f"  cluster        : HA-SLB + 2 HA pairs + 2 FAs + {s.get('mns')} MNs on {s.get('net')}"
        f" ({s.get('loop')})",
        f"  registrations  : {s.get('registrations_ok')} ok, "
        f"{s.get('registrations_failed')} failed",
        f"  SLB split      : {s.get('slb_split')}",
        f"  failover       : {s.get('crashed')} crashed -> {s.get('new_active')} HSRP Active "
        f"after {s.get('hsrp_takeover_ms')} ms, answering after {s.get('failover_ms')} ms",
        f"  bindings       : before {s.get('bindings_before')}, after {s.get('bindings_after')}, "
        f"lost {s.get('bindings_lost')}",
        f"  re-registration: {s.get('reregistrations_ok')} ok, "
        f"{s.get('reregistrations_failed')} failed, 133 replies {s.get('reregistrations_133')}",
        f"  duration       : {s.get('duration_s')} s",
        f"  result         : {'OK' if s.get('ok') else 'FAILED: ' + '; '.join(s['problems'])}",
    ]
    print("\n".join(lines), file=out, flush=True)


def _privileges() -> dict[str, Any]:
    """Who we run as: effective uid and effective capability mask (Linux)."""
    caps = None
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                caps = line.split()[1]
    return {"euid": os.geteuid(), "cap_eff": caps}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mobileha demo",
        description="A whole mobileha cluster in one process on loopback: HA-SLB, two HSRP "
        "home agent pairs with binding sync, foreign agents and mobile nodes; then the "
        "Active of one pair crashes and its Standby takes over.",
    )
    p.add_argument("--json", action="store_true", help="last line of stdout: one JSON object")
    p.add_argument("--mns", type=int, default=200, help="number of mobile nodes (default 200)")
    p.add_argument("--seed", type=int, default=None, help="seed: subnet and keys (default random)")
    p.add_argument("--no-live", action="store_true", help="plain periodic lines, no live view")
    p.add_argument("--log-level", choices=LEVELS, default="error", help="node logs on stderr")
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.mns <= 100_000:
        print("mobileha demo: --mns must be 1..100000", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    setup_logging(args.log_level)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if not args.no_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    summary: dict[str, Any] = {
        "registrations_ok": 0,
        "registrations_failed": args.mns,
        "slb_split": {},
        "failover_ms": None,
        "bindings_before": 0,
        "bindings_after": 0,
        "bindings_lost": None,
        "problems": [],
        "loop": "uvloop" if factory is not None else "asyncio",
        **_privileges(),
    }
    t0 = time.monotonic()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(scenario(args, summary), TIME_LIMIT_S)
        except TimeoutError:
            summary["problems"].append(f"the demo did not finish in {TIME_LIMIT_S:.0f} s")

    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bounded())
    except KeyboardInterrupt:
        summary["problems"].append("interrupted")
    except Exception as e:  # report, never a traceback instead of the summary
        summary["problems"].append(f"error: {e!r}")
    summary["duration_s"] = round(time.monotonic() - t0, 2)
    summary["ok"] = not summary["problems"] and summary["bindings_lost"] == 0
    if summary["bindings_lost"] is None and not summary["problems"]:
        summary["problems"].append("no failover measured")
    _print_summary(summary, sys.stdout)
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary["ok"] else 1


__all__ = ["Cluster", "Plan", "main", "scenario"]
