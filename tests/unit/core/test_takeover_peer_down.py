"""SyncPeer.peer_down (HSRP Active timer expired) during a gated bulk download: ready at
once, the incomplete download counted with the number of records that had arrived."""

from __future__ import annotations

from mobileha.core.sync import ReadyChanged, Role, SyncInput, SyncState, SyncStateChanged
from tests.unit.core.test_redundancy import VIP, Sim, mk


def test_peer_down_mid_download_counts_incomplete_and_is_ready() -> None:
    sim = Sim()
    for i in range(3000):
        b = mk(i)
        sim.a.table[b.key] = b
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    assert not sim.b.sync.ready
    while sim.b.sync.counters.ReceivedBIReps < 2:
        sim.run(0.0005)
    assert sim.b.sync.state is SyncState.DOWNLOADING
    got = len(sim.b.table)
    assert 0 < got < 3000
    acts = sim.b.sync.peer_down(sim.now)
    lost = SyncStateChanged(
        VIP, SyncState.DOWNLOADING, SyncState.PEER_LOST, SyncInput.PEER_LOST, records=got
    )
    assert acts == [lost, ReadyChanged(True)]
    c = sim.b.sync.counters
    assert c.DownloadsIncompleteOnPeerLoss == 1 and c.DownloadsAbandoned == 1
    assert sim.b.sync.incomplete_records == got
    assert sim.b.sync.state is SyncState.PEER_LOST


def test_peer_down_in_sync_is_not_an_incomplete_download() -> None:
    sim = Sim()
    sim.a.register(mk(1), sim)
    sim.settle()
    assert sim.b.sync.peer_down(sim.now) == [
        SyncStateChanged(VIP, SyncState.IN_SYNC, SyncState.PEER_LOST, SyncInput.PEER_LOST)
    ]
    assert sim.b.sync.counters.DownloadsIncompleteOnPeerLoss == 0
