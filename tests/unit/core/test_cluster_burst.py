"""A registration burst through the reply gate, on the in-memory network with a fake clock
(tests/helpers/cluster_net.py) and a constant 1 ms between any two parties, so that the
requests sent together arrive in one turn of the Active's loop.

The Active sends the changes of one turn as full BUs (never one registration per round
trip), keeps up to ``bu_window`` of them in flight (acknowledgements are pipelined) and
releases each held reply when the Standby's BU Ack for its change arrives: a burst is
answered within a few round trips, and a lone registration waits one round trip.
"""

from __future__ import annotations

import math

from mobileha.core.cluster import ReplyGate
from tests.helpers.cluster_net import Host, Net, bring_up, pair

VIP = "10.0.0.100"
HOP = 0.001  # every datagram takes 1 ms


def _up(n_mns: int, **sync: int) -> tuple[Net, Host, Host, ReplyGate]:
    net = Net(seed=7, delay=(HOP, HOP))
    a, b = pair(net, n_mns=n_mns, sync=dict(sync) or None)
    bring_up(net, a, b)
    net.run(0.5)
    gate = a.cluster.agents[0].gate
    assert gate is not None
    gate.hold_times = []
    return net, a, b, gate


def _burst(net: Net, n: int) -> float:
    """Every MN registers at the same instant; the fake time until the last reply."""
    for i in range(n):
        net.register(i, VIP)
    return net.run_until(lambda: len(net.accepted()) == n, 5.0, f"{n} replies")


def test_a_lone_registration_waits_one_round_trip_to_the_standby() -> None:
    net, a, _b, gate = _up(10)
    took = _burst(net, 1)
    # request 1 ms, BU 1 ms, BU Ack 1 ms, reply 1 ms: no batching delay on top
    assert math.isclose(took, 4 * HOP)
    assert gate.hold_times is not None and [round(t, 6) for t in gate.hold_times] == [2 * HOP]
    assert a.sync().counters.SentBUs == 1


def test_a_burst_leaves_in_full_bus_with_pipelined_acks() -> None:
    n = 1000  # about 40 BUs: within the window of 64
    net, a, b, gate = _up(n)
    took = _burst(net, n)
    c = a.sync().counters
    records_per_bu = n / c.SentBUs
    assert records_per_bu >= 20  # full 1,400-byte BUs, not one per registration
    # the BUs of one turn go out together (window 64): one round trip for the whole burst
    assert took <= 4 * HOP + 1e-9
    assert gate.hold_times is not None and max(gate.hold_times) <= 2 * HOP + 1e-9
    assert len(b.table()) == n and gate.replies_released_unacked == 0


def test_a_burst_larger_than_the_window_takes_one_round_trip_per_window() -> None:
    n = 1000
    net, a, b, _gate = _up(n, bu_window=4)
    took = _burst(net, n)
    c = a.sync().counters
    assert n / c.SentBUs >= 20
    rounds = math.ceil(c.SentBUs / 4)
    # 4 BUs per round trip: queued changes go in full BUs as soon as an ack frees the window
    assert took <= 2 * HOP + rounds * 2 * HOP + 1e-9
    assert len(b.table()) == n


def test_a_reply_whose_key_changed_again_waits_for_the_newer_change() -> None:
    # MN 0 registers twice, the second request before the first one's BU is acknowledged:
    # the first reply waits for the BU carrying the newer change (the peer's copy of the
    # key is the newer one); no reply leaves before an acknowledgement
    net, _a, b, gate = _up(10)
    net.register(0, VIP, low=1)
    net.run(HOP / 2)
    net.register(0, VIP, low=2)
    net.run_until(lambda: len(net.replies) == 2, 1.0, "two replies")
    assert gate.hold_times is not None
    assert sorted(round(t, 6) for t in gate.hold_times) == [2 * HOP, 2.5 * HOP]
    assert gate.replies_released_unacked == 0
    assert all(r.code == 0 for _, r in net.replies)
    (binding,) = b.table()
    assert binding.ident & 0xFFFFFFFF == 2
