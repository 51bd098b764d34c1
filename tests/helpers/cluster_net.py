"""Cluster coordinators wired together in memory, on a fake clock (aioquic's
``client_and_server`` style): no sockets, no sleeps, reproducible from a seed.

:class:`Net` delivers the ``Send`` actions of every live :class:`Host` (and of the mobile
node stand-in, :meth:`Net.register`) after a small random delay, losing a configurable
share of the datagrams between home agents with a seeded RNG, and multicasts ``HsrpSend``
to every other host on the HSRP port. A datagram to a virtual address goes to the host that
claimed it last (as ARP would make the router send it). The clock jumps from event to
event: the next delivery or the earliest ``get_timer()`` of a live host. A killed host
(``kill -9``) neither receives, sends nor runs timers any more.

Each host executes its cluster's actions as a node adapter would: the data plane is a
``MemoryDataPlane``, ``ClaimVip`` / ``ReleaseVip`` move the virtual address, everything
else is kept in :attr:`Host.notices` for the tests to look at.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mobileha.core.actions import ClaimVip, InstallBinding, ReleaseVip, RemoveBinding, Send
from mobileha.core.binding import FLAG_T, Binding, Encap
from mobileha.core.cluster import AgentSpec, Cluster, Start
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings, RefreshBinding
from mobileha.core.hsrp import HsrpConfig, HsrpSend, State
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.core.sync import SyncConfig, SyncState
from mobileha.dataplane.memory import MemoryDataPlane
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.mip import NaiExt, RegistrationReply
from tests.helpers.mip import request

MN_KEY = bytes(range(16))
SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
WALL0 = 1_800_000_000.0  # Unix time at fake-clock 0
PORT = 434
HSRP_PORT = 1985
CLIENT = "192.0.2.1"  # the foreign agent / co-located MNs
PREFIX = "10.64.0.0/16"


def nai(i: int) -> str:
    return f"mn{i}@example.net"


def home_agent(real: str, vip: str, n_mns: int, *, pool: str | None = None) -> HomeAgent:
    """A home agent with ``n_mns`` mobile nodes (NAI ``mn<i>@example.net``, dynamic home
    addresses from ``pool`` or the home prefix); its nonces come from a seeded source."""
    sas = SecurityAssociations()
    for i in range(n_mns):
        sas.add_mn(MobilitySA(256 + i, MN_KEY, "hmac-md5", nai=nai(i)))
    settings = HomeAgentSettings(address=real, ha_address=vip, home_prefix=PREFIX, pool=pool)
    return HomeAgent(settings, sas, random_bytes=random.Random(f"{real}-{vip}").randbytes)


def sync_config(peer: str, vip: str, **kw: Any) -> SyncConfig:
    """Sync towards ``peer``; retransmissions as in a lab (100 ms, 2 retries), so that a
    home agent started alone is ready after 0.7 s of unanswered BI Requests."""
    opts: dict[str, Any] = {"initial_timeout": 0.1, "max_retries": 2}
    opts.update(kw)
    return SyncConfig(
        peer_addr=peer, ha_addr=vip, spi=400, authenticator=Authenticator(SYNC_KEY, "hmac-md5"),
        **opts,
    )  # fmt: skip


def hsrp_config(real: str, vip: str, priority: int, **kw: Any) -> HsrpConfig:
    opts: dict[str, Any] = {"group": 1, "version": 2, "hello_ms": 100, "hold_ms": 400}
    opts.update(kw)
    return HsrpConfig(address=real, vip=vip, priority=priority, preempt=True, **opts)


def rrq(i: int, vip: str, wall: float, *, low: int = 1, lifetime: int = 600) -> bytes:
    """A registration request of MN ``i`` (co-located, care-of address CLIENT)."""
    return request(
        ha_addr=vip, care_of=CLIENT, ident=ntp_identification(wall, low), lifetime=lifetime,
        nai=nai(i), key=MN_KEY, spi=256 + i,
    )  # fmt: skip


def binding(i: int, vip: str, now: float) -> Binding:
    """A binding as the home agent would have it (for tables filled directly)."""
    return Binding(
        home_addr=f"10.65.{i >> 8 & 255}.{i & 255}", care_of=CLIENT, ha_addr=vip,
        lifetime=3600, expires=now + 3600, ident=0xE6B5A4C000000000 + i, flags=FLAG_T,
        encap=Encap.IPIP, nai=nai(i), src_addr=CLIENT,
    )  # fmt: skip


@dataclass
class Host:
    """One home agent process: its cluster coordinator and what its adapter would own."""

    name: str
    addr: str
    cluster: Cluster
    mac: bytes = bytes(6)
    alive: bool = True
    started: bool = False
    dataplane: MemoryDataPlane = field(default_factory=MemoryDataPlane)
    vips: set[str] = field(default_factory=set)
    notices: list[tuple[float, Any]] = field(default_factory=list)
    replies_sent: list[bytes] = field(default_factory=list)  # registration replies sent

    def hsrp_state(self, group: int = 1) -> State:
        hsrp = self.cluster.hsrp
        assert hsrp is not None
        return next(g.state for g in hsrp.groups.values() if g.group == group)

    def table(self, vip: str | None = None) -> Any:
        a = self.cluster.agents[0] if vip is None else self.cluster.agent(vip)
        return a.ha.table

    def sync(self, vip: str | None = None) -> Any:
        a = self.cluster.agents[0] if vip is None else self.cluster.agent(vip)
        assert a.sync is not None
        return a.sync


@dataclass(order=True)
class _Packet:
    t: float
    n: int
    src: tuple[str, int] = field(compare=False)
    dst: tuple[str, int] = field(compare=False)
    payload: bytes = field(compare=False)
    to: str | None = field(compare=False, default=None)  # a host name (multicast copy)


class Net:
    """Hosts and the mobile nodes' side on one in-memory network with a fake clock."""

    def __init__(
        self,
        seed: int = 1,
        *,
        loss: float = 0.0,
        delay: tuple[float, float] = (0.0002, 0.002),
        wall0: float = WALL0,
    ) -> None:
        self.rng = random.Random(seed)
        self.loss = loss  # share of datagrams between two hosts that are lost
        self.delay = delay
        self.wall0 = wall0
        self.now = 0.0
        self.hosts: dict[str, Host] = {}
        self._by_addr: dict[str, Host] = {}
        self.vip_owner: dict[str, Host] = {}
        self._wire: list[_Packet] = []
        self._n = 0
        self.lost = 0
        self.replies: list[tuple[float, RegistrationReply]] = []  # what the MNs received
        self.watch: Callable[[Net], None] | None = None  # called after every event

    # -- set-up --

    def add(self, name: str, addr: str, cluster: Cluster) -> Host:
        h = Host(name, addr, cluster, mac=bytes((2, 0, 0, 0, 0, len(self.hosts) + 1)))
        self.hosts[name] = h
        self._by_addr[addr] = h
        return h

    def replace(self, name: str, cluster: Cluster) -> Host:
        """A restart: the host named ``name`` is a new process with ``cluster``."""
        old = self.hosts.pop(name)
        h = self.add(name, old.addr, cluster)
        h.mac = old.mac
        return h

    def start(self, name: str) -> Host:
        h = self.hosts[name]
        h.started = True
        self._execute(h, h.cluster.handle_event(Start(h.addr, h.mac), self.now))
        return h

    def kill(self, name: str) -> None:
        """``kill -9``: the host stops at once; its VIP stays claimed until someone else
        claims it."""
        self.hosts[name].alive = False

    def event(self, name: str, event: Any) -> None:
        h = self.hosts[name]
        self._execute(h, h.cluster.handle_event(event, self.now))

    # -- traffic --

    def register(self, i: int, vip: str, *, low: int = 1, lifetime: int = 600) -> bytes:
        """MN ``i`` sends a registration request to ``vip`` (returns it, for replays)."""
        data = rrq(i, vip, self.wall0 + self.now, low=low, lifetime=lifetime)
        self.send_raw(data, (CLIENT, PORT), (vip, PORT))
        return data

    def send_raw(self, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self._put(src, dst, data, None, lossy=False)

    def accepted(self) -> dict[str, int]:
        """NAI -> Identification of every registration the MNs got code 0 for."""
        out: dict[str, int] = {}
        for _, r in self.replies:
            if r.code in (0, 1):
                ext = r.find(NaiExt)
                assert ext is not None
                out[ext.nai] = r.ident
        return out

    def _put(
        self, src: tuple[str, int], dst: tuple[str, int], payload: bytes, to: str | None,
        *, lossy: bool,
    ) -> None:  # fmt: skip
        if lossy and self.rng.random() < self.loss:
            self.lost += 1
            return
        self._n += 1
        heapq.heappush(
            self._wire,
            _Packet(self.now + self.rng.uniform(*self.delay), self._n, src, dst, payload, to),
        )

    def _execute(self, h: Host, actions: Iterable[Any]) -> None:
        dp = h.dataplane
        for a in actions:
            cls = a.__class__
            if cls is HsrpSend:
                for other in self.hosts.values():
                    if other is not h:
                        self._put((h.addr, HSRP_PORT), (a.dst[0], HSRP_PORT), a.payload,
                                  other.name, lossy=True)  # fmt: skip
            elif isinstance(a, Send):
                src = a.src if a.src is not None else (h.addr, PORT)
                to = self._by_addr.get(a.dst[0])
                if a.dst[0] == CLIENT:
                    h.replies_sent.append(a.payload)
                self._put(src, a.dst, a.payload, None, lossy=to is not None)
            elif isinstance(a, InstallBinding):
                if cls is not RefreshBinding:
                    dp.install(a.binding)
            elif isinstance(a, RemoveBinding):
                dp.remove(a.binding)
            elif cls is ClaimVip:
                h.vips.add(a.addr)
                self.vip_owner[a.addr] = h
            elif cls is ReleaseVip:
                h.vips.discard(a.addr)
                if self.vip_owner.get(a.addr) is h:
                    del self.vip_owner[a.addr]
            else:
                h.notices.append((self.now, a))

    # -- the clock --

    def _next_timer(self) -> tuple[float, Host] | None:
        best: tuple[float, Host] | None = None
        for h in self.hosts.values():
            if h.alive and h.started:
                t = h.cluster.get_timer()
                if t is not None and (best is None or t < best[0]):
                    best = (t, h)
        return best

    def step(self, until: float) -> bool:
        """Run the next event at or before ``until``; False when there is none."""
        timer = self._next_timer()
        t_wire = self._wire[0].t if self._wire else None
        if t_wire is not None and (timer is None or t_wire <= timer[0]):
            if t_wire > until:
                return False
            p = heapq.heappop(self._wire)
            self.now = max(self.now, p.t)
            self._deliver(p)
        elif timer is not None:
            if timer[0] > until:
                return False
            self.now = max(self.now, timer[0])
            h = timer[1]
            self._execute(h, h.cluster.handle_timer(self.now))
        else:
            return False
        if self.watch is not None:
            self.watch(self)
        return True

    def _deliver(self, p: _Packet) -> None:
        if p.to is not None:
            h: Host | None = self.hosts[p.to]
        elif p.dst[0] == CLIENT:
            reply = RegistrationReply.decode(p.payload)
            self.replies.append((self.now, reply))
            return
        else:
            h = self.vip_owner.get(p.dst[0]) or self._by_addr.get(p.dst[0])
        if h is None or not h.alive or not h.started:
            return
        self._execute(h, h.cluster.receive_datagram(p.payload, p.src, p.dst, self.now))

    def run(self, seconds: float) -> None:
        until = self.now + seconds
        while self.step(until):
            pass
        self.now = until

    def run_until(self, pred: Callable[[], bool], limit: float = 60.0, what: str = "") -> float:
        """Run until ``pred()`` holds (checked after every event); the fake time it took."""
        t0 = self.now
        end = self.now + limit
        while not pred():
            if not self.step(end):
                raise AssertionError(f"{what or 'condition'} not reached in {limit} s (fake)")
        return self.now - t0


def ha_cluster(
    net: Net,
    me: str,
    peer: str,
    priority: int,
    *,
    vip: str = "10.0.0.100",
    n_mns: int = 100,
    sync: dict[str, Any] | None = None,
    hsrp: dict[str, Any] | None = None,
) -> Cluster:
    """One side of a pair: a home agent of one HSRP group with binding sync."""
    return Cluster(
        [AgentSpec(home_agent(me, vip, n_mns), sync_config(peer, vip, **(sync or {})), 1)],
        hsrp=[hsrp_config(me, vip, priority, **(hsrp or {}))],
        rng=random.Random(f"{net.rng.random()}-{me}"),
        wall_offset=net.wall0,
        now=net.now,
    )


def pair(
    net: Net,
    *,
    vip: str = "10.0.0.100",
    n_mns: int = 100,
    prios: tuple[int, int] = (110, 100),
    sync: dict[str, Any] | None = None,
    hsrp: dict[str, Any] | None = None,
) -> tuple[Host, Host]:
    """Two home agents A (10.0.0.1) and B (10.0.0.2) of one HSRP group with binding sync."""
    hosts = []
    for name, me, peer, prio in (("A", "10.0.0.1", "10.0.0.2", prios[0]),
                                 ("B", "10.0.0.2", "10.0.0.1", prios[1])):  # fmt: skip
        cluster = ha_cluster(net, me, peer, prio, vip=vip, n_mns=n_mns, sync=sync, hsrp=hsrp)
        hosts.append(net.add(name, me, cluster))
    return hosts[0], hosts[1]


def bring_up(net: Net, a: Host, b: Host, limit: float = 60.0) -> None:
    """Start A, wait until it is Active, start B, wait until it is Standby and in sync."""
    net.start(a.name)
    net.run_until(lambda: a.hsrp_state() is State.ACTIVE, 10, "A Active")
    net.start(b.name)
    net.run_until(
        lambda: b.hsrp_state() is State.STANDBY and b.sync().state is SyncState.IN_SYNC,
        limit,
        "B Standby in sync",
    )


def loadshare(
    net: Net,
    *,
    vips: tuple[str, str] = ("10.0.0.101", "10.0.0.102"),
    n_mns: int = 40,
    sync: dict[str, Any] | None = None,
) -> tuple[Host, Host]:
    """Load sharing (P§5.1): A (10.0.0.1) Active for group 1 (``vips[0]``) and Standby for
    group 2 (``vips[1]``), B the reverse; each HA address has its own home agent, binding
    table, dynamic pool and sync peer, in one cluster per host."""
    pools = ("10.64.0.0/25", "10.64.0.128/25")
    hosts = []
    for name, me, peer, prios in (("A", "10.0.0.1", "10.0.0.2", (110, 100)),
                                  ("B", "10.0.0.2", "10.0.0.1", (100, 110))):  # fmt: skip
        specs = [
            AgentSpec(
                home_agent(me, vip, n_mns, pool=pool), sync_config(peer, vip, **(sync or {})), group
            )
            for group, vip, pool in zip((1, 2), vips, pools, strict=True)
        ]
        cluster = Cluster(
            specs,
            hsrp=[
                hsrp_config(me, vip, prio, group=group)
                for group, vip, prio in zip((1, 2), vips, prios, strict=True)
            ],
            rng=random.Random(f"{net.rng.random()}-{name}"),
            wall_offset=net.wall0,
            now=net.now,
        )
        hosts.append(net.add(name, me, cluster))
    return hosts[0], hosts[1]
