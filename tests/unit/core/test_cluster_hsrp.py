"""HSRP routers (coordinators without home agents) on the fake clock of
tests/helpers/cluster_net.py: election, Resign on shutdown, the interface's own state
(events a and b), tracked interfaces and readiness, with the VIP following the Active
role. (The same through sockets in real processes: tests/netns/test_hsrp_netns.py.)"""

from __future__ import annotations

import random

from mobileha.core.cluster import Cluster, LinkChanged, SetReady, Shutdown, TrackChanged
from mobileha.core.hsrp import HsrpSend, State, StateChange
from tests.helpers.cluster_net import Host, Net, hsrp_config

VIP = "10.0.0.100"


def _routers(net: Net, prios: tuple[int, int], **kw: object) -> tuple[Host, Host]:
    hosts = []
    for name, me, prio in (("A", "10.0.0.2", prios[0]), ("B", "10.0.0.3", prios[1])):
        cluster = Cluster(
            [],
            hsrp=[hsrp_config(me, VIP, prio, hello_ms=100, hold_ms=300)],
            track={"eth9": 30},
            rng=random.Random(name),
            **kw,  # type: ignore[arg-type]
        )
        hosts.append(net.add(name, me, cluster))
    return hosts[0], hosts[1]


def _states(*hosts: Host) -> tuple[State, ...]:
    return tuple(h.hsrp_state() for h in hosts)


def test_election_and_resign_on_shutdown_hands_over_at_once() -> None:
    net = Net(seed=31)
    a, b = _routers(net, (120, 110))
    net.start("A")
    net.start("B")
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.STANDBY), 5, "election")
    assert a.vips == {VIP} and b.vips == set()
    ga = a.cluster.hsrp.groups[(2, 1)]  # type: ignore[union-attr]
    gb = b.cluster.hsrp.groups[(2, 1)]  # type: ignore[union-attr]
    net.run_until(lambda: ga.snapshot(net.now)["standby_router"] == "10.0.0.3", 1, "A knows B")
    assert gb.snapshot(net.now)["active_router"] == "10.0.0.2"
    net.event("A", Shutdown())  # SIGTERM: event b, a Resign
    assert a.hsrp_state() is State.INITIAL and a.vips == set()
    took = net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 1, "B Active")
    assert took < 0.05  # the Resign, not the hold time
    assert b.vips == {VIP}


def test_interface_down_at_start_keeps_the_groups_initial_until_it_is_up() -> None:
    net = Net(seed=32)
    a, _b = _routers(net, (120, 110))
    net.event("A", LinkChanged(False))  # as the node reports it before Start
    net.start("A")
    net.run(1.0)
    assert a.hsrp_state() is State.INITIAL
    assert not [x for _, x in a.notices if isinstance(x, HsrpSend)]  # nothing sent
    net.event("A", LinkChanged(True))
    net.run_until(lambda: a.hsrp_state() is State.ACTIVE, 3, "alone: Active")


def test_link_down_is_event_b_and_up_is_event_a_with_preemption_back() -> None:
    net = Net(seed=33)
    a, b = _routers(net, (120, 110))
    net.start("A")
    net.start("B")
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.STANDBY), 5, "election")
    net.event("A", LinkChanged(False))
    assert a.hsrp_state() is State.INITIAL and a.vips == set()  # ReleaseVip, as on stop
    changes = [x for _, x in a.notices if isinstance(x, StateChange)]
    assert changes[-1].event.value == "b"
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 1, "B Active")
    net.event("A", LinkChanged(False))  # no change: nothing happens
    assert a.cluster.counters["link_down"] == 1
    net.event("A", LinkChanged(True))
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.STANDBY), 3, "A Active again")
    assert a.vips == {VIP} and b.vips == set() and a.cluster.counters["link_up"] == 1


def test_tracked_interface_down_lowers_the_priority_and_the_peer_preempts() -> None:
    net = Net(seed=34)
    a, b = _routers(net, (120, 110))
    net.start("A")
    net.start("B")
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.STANDBY), 5, "election")
    net.event("A", TrackChanged("eth9", False))  # 120 - 30 = 90 < 110: B preempts
    net.run_until(lambda: _states(a, b) == (State.SPEAK, State.ACTIVE), 2, "B preempts")
    net.run_until(lambda: a.hsrp_state() is State.STANDBY, 2, "A Standby")
    net.event("A", TrackChanged("eth9", True))
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.SPEAK), 2, "A preempts back")
    net.event("A", TrackChanged("eth8", False))  # not tracked: ignored
    assert a.cluster.hsrp is not None
    assert [g.priority for g in a.cluster.hsrp.groups.values()] == [120]


def test_not_ready_router_never_takes_over() -> None:
    net = Net(seed=35)
    a, b = _routers(net, (120, 110))
    net.start("A")
    net.start("B")
    net.event("B", SetReady(False))
    net.run_until(lambda: _states(a, b) == (State.ACTIVE, State.STANDBY), 5, "election")
    net.kill("A")
    net.run(2.0)
    assert b.hsrp_state() is State.STANDBY and b.vips == set()
    net.event("B", SetReady(True))
    assert b.hsrp_state() is State.ACTIVE and b.vips == {VIP}
