"""A reload of a running pair through the coordinator (:class:`Reconfigure`), on the fake
clock of tests/helpers/cluster_net.py: new MN SAs, a new maximum lifetime and a higher
priority on the Standby take effect while every binding, its replay state, the sync session
and the HSRP states stay; a higher priority with preemption takes over at the next hello,
with the bindings. What the process does not serve is refused before anything changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mobileha.core.cluster import AgentSettings, Reconfigure
from mobileha.core.hsrp import State
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.core.sync import SyncState
from tests.helpers.cluster_net import MN_KEY, Net, bring_up, nai, pair

VIP = "10.0.0.100"
N = 10


def agent_settings(host: object, n_mns: int, **settings: object) -> AgentSettings:
    a = host.cluster.agents[0]  # type: ignore[attr-defined]
    sas = SecurityAssociations()
    for i in range(n_mns):
        sas.add_mn(MobilitySA(256 + i, MN_KEY, "hmac-md5", nai=nai(i)))
    assert a.sync is not None
    return AgentSettings(a.ha_addr, replace(a.ha.settings, **settings), sas, {}, a.sync.config)


def test_reload_of_a_running_pair() -> None:
    net = Net(seed=5)
    a, b = pair(net, n_mns=N)
    bring_up(net, a, b)
    for i in range(N):
        net.register(i, VIP)
    net.run(0.5)
    assert len(b.table()) == N
    before = {x.key: x.ident for x in a.table()}
    # both learn MN N (a new SA) and a 300 s maximum lifetime
    for h in (a, b):
        net.event(h.name, Reconfigure((agent_settings(h, N + 1, max_lifetime=300),)))
    assert {x.key: x.ident for x in a.table()} == before
    assert a.hsrp_state() is State.ACTIVE and b.hsrp_state() is State.STANDBY
    assert b.sync().state is SyncState.IN_SYNC
    net.replies.clear()
    net.register(N, VIP)
    net.run(0.5)
    (reply,) = [r for _, r in net.replies]
    assert reply.code == 0 and reply.lifetime == 300
    assert len(b.table()) == N + 1  # synced as before
    # the standby gets a higher priority (preempt is on): it takes over, with the table
    hsrp_b = b.cluster.hsrp
    assert hsrp_b is not None
    (group,) = hsrp_b.groups.values()
    net.event(b.name, Reconfigure(hsrp=(replace(group.cfg, priority=250),)))
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 10, "B Active")
    assert len(b.table()) == N + 1 and all(b.dataplane.lookup(x.home_addr) for x in b.table())


def test_what_is_not_served_is_refused_before_anything_changes() -> None:
    net = Net(seed=6)
    a, b = pair(net, n_mns=N)
    bring_up(net, a, b)
    old = a.cluster.agents[0].ha.settings
    other = replace(agent_settings(a, N, max_lifetime=5), ha_addr="10.9.9.9")
    with pytest.raises(ValueError, match="not served"):
        a.cluster.handle_event(Reconfigure((agent_settings(a, N, max_lifetime=5), other)), net.now)
    assert a.cluster.agents[0].ha.settings is old
    with pytest.raises(ValueError, match="cannot change without a restart"):
        a.cluster.handle_event(Reconfigure((agent_settings(a, N, address="10.0.0.9"),)), net.now)
