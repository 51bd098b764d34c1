"""Home agent redundancy through the cluster coordinators, on the fake clock of
tests/helpers/cluster_net.py (what the in-process socket tests of the redundancy node and
of load sharing tested with sleeps):

* registrations on the Active reach the Standby with their replay state and pool
  allocation; after a takeover the new Active forwards every binding, refuses a replay
  with 133 and accepts a fresh re-registration;
* a restarted standby downloads the whole table before it reports ready;
* load sharing: two HSRP groups with crossing priorities, one sync peer per HA address
  (keyed by the HA address of the sync header), the surviving HA Active for both groups
  after the other dies, with every binding of both.
"""

from __future__ import annotations

from mobileha.core.cluster import ActiveChanged
from mobileha.core.hsrp import State
from mobileha.core.sync import SyncState
from tests.helpers.cluster_net import CLIENT, Net, bring_up, ha_cluster, loadshare, nai, pair

VIP = "10.0.0.100"
N = 30


def test_standby_has_every_binding_with_its_replay_state_and_takes_over() -> None:
    net = Net(seed=21)
    a, b = pair(net, n_mns=N)
    bring_up(net, a, b)
    requests = {i: net.register(i, VIP) for i in range(N)}
    net.run(0.5)
    assert [r.code for _, r in net.replies] == [0] * N
    assert len(b.table()) == N and a.sync().pending == 0
    for x in a.table():
        y = b.table().find(x.home_addr, x.care_of)
        assert y is not None and (y.ident, y.lifetime, y.nai) == (x.ident, x.lifetime, x.nai)
        assert abs(y.expires - x.expires) <= 2.0
        assert b.cluster.agents[0].ha.is_dynamic(x.home_addr)  # pool allocation synced
    assert not b.dataplane.lookup(next(iter(a.table())).home_addr)  # standby: no forwarding
    c = a.sync().counters
    assert c.SentBUs >= 1 and c.ReceivedBUAcks == c.SentBUs and c.FailedBUs == 0
    assert b.sync().counters.ReceivedBUs == c.SentBUs
    # takeover
    net.kill("A")
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 2, "B Active")
    assert any(x == ActiveChanged(VIP, True) for _, x in b.notices)
    for x in b.table():
        assert b.dataplane.lookup(x.home_addr)
    n = len(net.replies)
    net.send_raw(requests[3], (CLIENT, 434), (VIP, 434))  # a replay: the state came along
    net.run(0.1)
    assert [r.code for _, r in net.replies[n:]] == [133]
    net.run(1.0)
    net.register(3, VIP, low=99)
    net.run(0.1)
    assert [r.code for _, r in net.replies[n + 1 :]] == [0]


def test_restarted_standby_downloads_the_whole_table_before_it_is_ready() -> None:
    net = Net(seed=22)
    a, b = pair(net, n_mns=N)
    bring_up(net, a, b)
    for i in range(N):
        net.register(i, VIP)
    net.run(0.5)
    assert len(b.table()) == N
    # B restarts: a new process with an empty table
    net.kill("B")
    b2 = net.replace("B", ha_cluster(net, "10.0.0.2", "10.0.0.1", 100, n_mns=N))
    readiness: list[bool] = []

    def watch(net: Net) -> None:
        if b2.started and (not readiness or readiness[-1] != b2.sync().ready):
            readiness.append(b2.sync().ready)

    net.watch = watch
    net.start("B")
    assert b2.sync().state is SyncState.DOWNLOADING and not b2.sync().ready
    net.run_until(lambda: b2.sync().download_complete, 5, "download complete")
    assert readiness == [False, True]
    assert len(b2.table()) == len(a.table()) == N
    ca = a.sync().counters
    assert ca.ReceivedBIReqs >= 2 and ca.TransfersCompleted >= 2  # B's first life and this
    net.run_until(lambda: b2.hsrp_state() is State.STANDBY, 5, "B Standby")
    assert a.hsrp_state() is State.ACTIVE


def test_load_sharing_two_groups_crossing_priorities_and_takeover_of_both() -> None:
    vips = ("10.0.0.101", "10.0.0.102")
    net = Net(seed=23)
    a, b = loadshare(net, vips=vips, n_mns=2 * N)
    net.start("A")
    net.start("B")
    net.run_until(
        lambda: (
            (a.hsrp_state(1), a.hsrp_state(2), b.hsrp_state(1), b.hsrp_state(2))
            == (State.ACTIVE, State.STANDBY, State.STANDBY, State.ACTIVE)
        ),
        15,
        "A Active/Standby, B Standby/Active",
    )
    a1, a2 = a.cluster.agent(vips[0]), a.cluster.agent(vips[1])
    b1, b2 = b.cluster.agent(vips[0]), b.cluster.agent(vips[1])
    assert a1.ha.active and not a2.ha.active and b2.ha.active and not b1.ha.active
    assert a1.sync is not None and a1.sync.config.ha_addr == vips[0]
    net.run_until(
        lambda: all(x.sync is not None and x.sync.state is SyncState.IN_SYNC
                    for x in (a1, a2, b1, b2)),
        10,
        "every sync peer in sync",
    )  # fmt: skip
    requests = {i: net.register(i, vips[i % 2]) for i in range(2 * N)}
    net.run(0.5)
    assert [r.code for _, r in net.replies] == [0] * (2 * N)
    assert len(a1.ha.table) == len(b1.ha.table) == N == len(b2.ha.table) == len(a2.ha.table)
    for act, stby, vip, half in ((a1, b1, vips[0], 0), (b2, a2, vips[1], 1)):
        for x in act.ha.table:
            assert x.ha_addr == vip
            assert int(x.home_addr.split(".")[3]) // 128 == half, x.home_addr  # own pool
            y = stby.ha.table.find(x.home_addr, x.care_of)
            assert y is not None and (y.ident, y.lifetime) == (x.ident, x.lifetime)
            assert stby.ha.is_dynamic(x.home_addr)
    assert a2.ha.received == 0 and b1.ha.received == 0  # only each group's Active answered
    # kill -9 of A: B Active for both groups with every binding
    net.kill("A")
    took = net.run_until(
        lambda: (b.hsrp_state(1), b.hsrp_state(2)) == (State.ACTIVE, State.ACTIVE),
        5,
        "B Active for both groups",
    )
    assert took <= 2 * 0.4 + 0.3
    assert b1.ha.active and b2.ha.active and b.vips == set(vips)
    for x in (*b1.ha.table, *b2.ha.table):
        assert b.dataplane.lookup(x.home_addr)
    n = len(net.replies)
    net.send_raw(requests[0], (CLIENT, 434), (vips[0], 434))
    net.run(0.1)
    assert [r.code for _, r in net.replies[n:]] == [133]
    before = {x.nai: x.home_addr for x in (*b1.ha.table, *b2.ha.table)}
    net.run(1.0)
    for i in (0, 1):
        net.register(i, vips[i % 2], low=77)
    # group 2's reply waits up to hold_s at the gate: its sync peer (the dead Standby) is
    # not known to be lost yet
    net.run(0.3)
    assert [r.code for _, r in net.replies[n + 1 :]] == [0, 0]
    after = {x.nai: x.home_addr for x in (*b1.ha.table, *b2.ha.table)}
    assert after == before and nai(0) in after
