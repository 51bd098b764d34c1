"""Two cluster coordinators wired together in memory on a fake clock (tests/helpers/
cluster_net.py): the "no acknowledged binding is lost" rules of core/cluster.py, without
sockets or sleeps.

* kill the Active in the middle of a registration burst: the Standby takes over and holds
  every binding whose registration reply the Active sent;
* a fresh standby downloads a large table before it is ready: it never becomes Active
  while downloading, even with a higher priority and preemption;
* the same with 30% of the datagrams between the home agents lost, both ways;
* the Active dies in the middle of the standby's download: the standby takes over as fast
  as HSRP does, with what it has.
"""

from __future__ import annotations

from typing import Any

import pytest

from mobileha.core.cluster import (
    ActiveChanged,
    AgentSpec,
    Cluster,
    DownloadIncomplete,
    LinkChanged,
    LinkStateChanged,
)
from mobileha.core.hsrp import ActiveTimerExpired, State
from mobileha.core.sync import SyncState
from mobileha.wire.mip import NaiExt, RegistrationReply
from mobileha.wire.sync import SyncTypes
from tests.helpers.cluster_net import (
    CLIENT,
    Host,
    Net,
    binding,
    bring_up,
    home_agent,
    pair,
    sync_config,
)

VIP = "10.0.0.100"


def _sent_replies(h: Host) -> dict[str, int]:
    """NAI -> Identification of every accepting registration reply ``h`` sent."""
    out: dict[str, int] = {}
    for payload in h.replies_sent:
        r = RegistrationReply.decode(payload)
        if r.code == 0:
            ext = r.find(NaiExt)
            assert ext is not None
            out[ext.nai] = r.ident
    return out


def _assert_holds(survivor: Host, acknowledged: dict[str, int]) -> None:
    """Every acknowledged registration is in the survivor's table (the same or a newer
    Identification) and, once it is Active, in its data plane."""
    by_nai = {x.nai: x for x in survivor.table()}
    missing = [n for n, ident in acknowledged.items() if n not in by_nai]
    assert not missing, f"{len(missing)} acknowledged bindings lost: {missing[:5]}"
    for n, ident in acknowledged.items():
        assert by_nai[n].ident >= ident, n
        assert survivor.dataplane.lookup(by_nai[n].home_addr), n


def _burst_and_kill(
    net: Net, a: Host, n: int, kill_at: int, gap: float, sent: dict[int, bytes] | None = None
) -> int:
    """Registrations of MNs 0..n-1 through the VIP, ``gap`` apart (kept in ``sent``); A is
    killed after the ``kill_at``-th. Returns how many replies A held at the gate then."""
    waiting = 0
    for i in range(n):
        data = net.register(i, VIP)
        if sent is not None:
            sent[i] = data
        net.run(gap)
        if i == kill_at:
            gate = a.cluster.agents[0].gate
            assert gate is not None
            waiting = gate.waiting
            net.kill("A")
            break
    return waiting


def test_kill_the_active_standby_takes_over_with_every_acknowledged_binding() -> None:
    net = Net(seed=3)
    a, b = pair(net, n_mns=400)
    bring_up(net, a, b)
    requests: dict[int, bytes] = {}
    held_at_kill = _burst_and_kill(net, a, 400, kill_at=300, gap=0.0005, sent=requests)
    acknowledged = _sent_replies(a)
    assert 250 <= len(acknowledged) <= 301
    assert held_at_kill > 0  # the kill fell inside the gate's window: the point of the test
    took = net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 5, "B Active")
    assert took <= 0.4 + 0.1  # hold time and a little
    assert b.vips == {VIP} and net.vip_owner[VIP] is b
    _assert_holds(b, acknowledged)
    # the gate: no reply left A before the Standby acknowledged its binding
    gate = a.cluster.agents[0].gate
    assert gate is not None and gate.replies_held > 0 and gate.replies_released_unacked == 0
    assert any(x == ActiveChanged(VIP, True) for _, x in b.notices)
    # the replay state came along: an old request gets 133, a fresh one 0
    first = next(iter(acknowledged))
    i = int(first[2 : first.index("@")])
    n_replies = len(net.replies)
    net.send_raw(requests[i], (CLIENT, 434), (VIP, 434))  # a replay
    net.run(0.1)
    again = net.replies[n_replies:]
    assert [r.code for _, r in again] == [133]
    net.run(1.0)
    net.register(i, VIP, low=77)
    net.run(0.1)
    assert [r.code for _, r in net.replies[n_replies + 1 :]] == [0]


def test_fresh_standby_downloads_a_large_table_before_it_may_become_active() -> None:
    n = 20_000
    net = Net(seed=5)
    # B has the higher priority and preempts: only the download holds it back
    a, b = pair(net, prios=(100, 110))
    net.start("A")
    net.run_until(lambda: a.hsrp_state() is State.ACTIVE, 10, "A Active")
    table = a.table()
    for i in range(n):
        table.add(binding(i, VIP, net.now))
    seen: dict[str, Any] = {"not_ready": 0, "downloading_active": 0}

    def watch(net: Net) -> None:
        if not b.started:
            return
        sync = b.sync()
        if not sync.ready:
            seen["not_ready"] += 1
            if b.hsrp_state() is State.ACTIVE:
                seen["downloading_active"] += 1
        if b.hsrp_state() is State.ACTIVE and "active_with" not in seen:
            seen["active_with"] = len(b.table())

    net.watch = watch
    net.start("B")
    assert not b.sync().ready
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 60, "B Active")
    assert seen["downloading_active"] == 0 and seen["not_ready"] > 100
    assert seen["active_with"] == n  # it took over with the whole table
    c = b.sync().counters
    assert c.DownloadsCompleted == 1 and c.DownloadsAbandoned == 0
    assert b.sync().last_download is not None and b.sync().last_download[1] == n
    # B Coup'ed A (preemption once ready): A is Standby with everything B has
    net.run_until(lambda: a.hsrp_state() is State.STANDBY, 10, "A Standby")
    assert len(a.table()) == n and a.vips == set() and b.vips == {VIP}


@pytest.mark.parametrize("seed", [1, 6, 11])
def test_thirty_percent_loss_both_ways_every_acknowledged_binding_on_the_survivor(
    seed: int,
) -> None:
    net = Net(seed=seed, loss=0.3)
    # HSRP must not flap on the lossy link: a hold time of 20 hellos
    a, b = pair(net, n_mns=600, hsrp={"hello_ms": 100, "hold_ms": 2000})
    net.start("A")
    net.run_until(lambda: a.hsrp_state() is State.ACTIVE, 10, "A Active")
    table = a.table()
    for i in range(1000, 6000):
        table.add(binding(i, VIP, net.now))
    net.start("B")
    # registrations flow while B downloads
    for i in range(200):
        net.register(i, VIP)
        net.run(0.005)
    net.run_until(
        lambda: b.sync().state is SyncState.IN_SYNC and b.hsrp_state() is State.STANDBY,
        300,
        "B in sync",
    )
    assert len(b.table()) >= 5000
    held_at_kill = _burst_and_kill(net, a, 600, kill_at=500, gap=0.002)
    assert held_at_kill > 0
    assert net.lost > 100  # the loss really happened
    acknowledged = _sent_replies(a)
    assert len(acknowledged) >= 300
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 10, "B Active")
    _assert_holds(b, acknowledged)
    ca = a.sync().counters
    assert ca.TotalSentBUs > ca.SentBUs and ca.FailedBUs > 0  # retransmissions happened
    # replies go out unacknowledged only after hold_s without a word from the peer, which
    # the loss makes happen a few times while little traffic flows (before the burst)
    gate = a.cluster.agents[0].gate
    assert gate is not None and gate.replies_released_unacked <= 0.01 * gate.replies_held


def test_active_dies_during_the_download_standby_takes_over_as_fast_as_hsrp() -> None:
    n = 30_000
    net = Net(seed=7)
    a, b = pair(net)
    net.start("A")
    net.run_until(lambda: a.hsrp_state() is State.ACTIVE, 10, "A Active")
    table = a.table()
    for i in range(n):
        table.add(binding(i, VIP, net.now))
    net.start("B")
    net.run_until(lambda: b.sync().counters.ReceivedBIReps >= 30, 10, "download under way")
    assert b.sync().state is SyncState.DOWNLOADING and not b.sync().ready
    net.kill("A")
    t0 = net.now
    got = len(b.table())
    assert 0 < got < n
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 5, "B Active")
    # HSRP's hold time plus at most a hello period of Speak, far below the sync layer's
    # own 10 s download-idle and 15 s peer timeouts
    assert net.now - t0 <= 0.4 * 2 + 0.3
    sync = b.sync()
    assert sync.counters.DownloadsIncompleteOnPeerLoss == 1
    assert sync.state is SyncState.PEER_LOST and sync.ready
    assert b.cluster.agents[0].active_timer_expiries >= 1
    notices = [x for _, x in b.notices]
    assert any(isinstance(x, ActiveTimerExpired) and x.active == "10.0.0.1" for x in notices)
    [incomplete] = [x for x in notices if isinstance(x, DownloadIncomplete)]
    assert incomplete.ha_addr == VIP and 0 < incomplete.records < n
    # (BI Replies already on the wire when A died still arrived)
    assert got <= incomplete.bindings == len(b.table()) < n
    for x in list(b.table())[:100]:
        assert b.dataplane.lookup(x.home_addr)


def test_interface_down_makes_the_active_silent_and_up_takes_it_back() -> None:
    net = Net(seed=2)
    a, b = pair(net)
    bring_up(net, a, b)
    net.event("A", LinkChanged(False))
    assert a.hsrp_state() is State.INITIAL and not a.cluster.agents[0].ha.active
    assert a.vips == set()
    assert any(isinstance(x, LinkStateChanged) and not x.up for _, x in a.notices)
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 2, "B Active")
    net.event("A", LinkChanged(True))
    net.run_until(
        lambda: a.hsrp_state() is State.ACTIVE and b.hsrp_state() is State.STANDBY,
        5,
        "A Active again (preemption)",
    )
    assert a.cluster.agents[0].ha.active and not b.cluster.agents[0].ha.active


def test_sync_types_are_demultiplexed_by_the_registry() -> None:
    """Sync messages with configured type codes reach the sync peer; the same bytes with
    the default codes are registrations to the home agent (and dropped by it)."""
    types = SyncTypes(bu=220, bu_ack=221, bi_request=222, bi_reply=223, bi_ack=224)
    net = Net(seed=4)
    a, b = pair(net, sync={"types": types})
    bring_up(net, a, b)
    net.register(1, VIP)
    net.run(0.1)
    assert len(b.table()) == 1 and b.sync().counters.ReceivedBUs == 1
    ha = b.cluster.agents[0].ha
    before = dict(ha.drops)
    out = b.cluster.receive_datagram(bytes([200]) + bytes(60), ("10.0.0.1", 434),
                                     ("10.0.0.2", 434), net.now)  # fmt: skip
    assert out == [] and sum(ha.drops.values()) == sum(before.values()) + 1


def test_sync_messages_reach_the_agent_of_their_ha_address() -> None:
    """Load sharing: two HA addresses in one process, sync routed by the header."""
    vips = ("10.0.0.101", "10.0.0.102")
    clusters = []
    for me, peer in (("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.1")):
        specs = [
            AgentSpec(home_agent(me, v, 10, pool=pool), sync_config(peer, v))
            for v, pool in zip(vips, ("10.64.0.0/25", "10.64.0.128/25"), strict=True)
        ]
        clusters.append(Cluster(specs, wall_offset=net_wall()))
    a, b = clusters
    # A's second agent registers MN 3 (no HSRP here: every agent answers)
    from tests.helpers.cluster_net import rrq

    out = a.receive_datagram(rrq(3, vips[1], net_wall()), (CLIENT, 434), (vips[1], 434), 0.0)
    out += a.handle_timer(0.01)  # the BU flush
    sends = [x for x in out if getattr(x, "dst", (None,))[0] == "10.0.0.2"]
    assert sends
    got: list[Any] = []
    for x in sends:
        got += b.receive_datagram(x.payload, ("10.0.0.1", 434), ("10.0.0.2", 434), 0.011)
    assert len(b.agent(vips[1]).ha.table) == 1 and len(b.agent(vips[0]).ha.table) == 0
    sync0, sync1 = b.agent(vips[0]).sync, b.agent(vips[1]).sync
    assert sync0 is not None and sync1 is not None
    assert sync1.counters.ReceivedBUs == 1 and sync0.counters.ReceivedBUs == 0


def net_wall() -> float:
    return 1_800_000_000.0


@pytest.mark.parametrize("group", [None, 7])
def test_unknown_hsrp_group_is_refused(group: int | None) -> None:
    if group is None:
        Cluster([AgentSpec(home_agent("10.0.0.1", VIP, 1))])
        return
    with pytest.raises(ValueError, match="group 7"):
        Cluster([AgentSpec(home_agent("10.0.0.1", VIP, 1), hsrp_group=group)])
