"""``clear binding`` on an HA pair (fake clock): the Active deletes the bindings and the
standby follows through binding sync; a standby's own clear does nothing."""

from __future__ import annotations

from mobileha.core.cluster import ClearBindings
from tests.helpers.cluster_net import Host, Net, bring_up, nai, pair

VIP = "10.0.0.100"


def _registered(n: int) -> tuple[Net, Host, Host]:
    net = Net(seed=3)
    a, b = pair(net, vip=VIP, n_mns=10)
    bring_up(net, a, b)
    for i in range(n):
        net.register(i, VIP)
    net.run_until(lambda: len(b.table()) == n and len(a.table()) == n, 10, "synced")
    return net, a, b


def test_clear_one_home_address_on_active_and_standby() -> None:
    net, a, b = _registered(3)
    homes = sorted(x.home_addr for x in a.table())
    net.event("B", ClearBindings(home_addr=homes[0]))  # the standby: no change
    net.run(1.0)
    assert len(a.table()) == 3 and len(b.table()) == 3
    net.event("A", ClearBindings(home_addr=homes[0]))
    net.run(1.0)
    for h in (a, b):
        assert sorted(x.home_addr for x in h.table()) == homes[1:]
    assert a.cluster.agents[0].ha.cleared == 1


def test_clear_by_nai_and_all() -> None:
    net, a, b = _registered(3)
    net.event("A", ClearBindings(nai=nai(1)))
    net.run(1.0)
    assert len(b.table()) == 2
    assert all(x.nai != nai(1) for x in b.table())
    net.event("A", ClearBindings(all=True))
    net.run(1.0)
    assert len(a.table()) == 0 and len(b.table()) == 0
