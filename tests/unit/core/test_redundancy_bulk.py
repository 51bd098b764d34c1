"""SyncPeer bulk download, newest-wins ordering, tombstones, readiness, split brain, states."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from mobileha.core.binding import Binding
from mobileha.core.sync import (
    Mode,
    ReadyChanged,
    Role,
    SyncInput,
    SyncState,
    SyncStateChanged,
)
from mobileha.wire.sync import MsgKind, SyncMessage, decode, encode
from tests.unit.core.test_redundancy import (
    KEY,
    SPI,
    SYNC_DST,
    VIP,
    Sim,
    mk,
    next_ident,
    same_tables,
)


def _fill(table: dict[tuple[str, str], Binding], n: int, coa: str = "192.0.2.1") -> None:
    for i in range(n):
        b = mk(i, coa)
        table[b.key] = b


def _churn(sim: Sim, step: int, n: int) -> None:
    """One change on the active: re-registration, move, deregistration or a new MN."""
    a = sim.a
    rnd = sim.rnd
    i = rnd.randrange(n + 2000)
    home = f"10.1.{i // 256 % 256}.{i % 256}"
    r = rnd.random()
    keys = [(home, f"192.0.2.{c}") for c in (1, 2, 3)]
    cur = [k for k in keys if k in a.table]
    if cur and r < 0.3:
        a.deregister(cur[0], next_ident(), sim)
    else:
        a.register(mk(i, f"192.0.2.{rnd.randrange(1, 4)}", now=sim.now), sim)


@pytest.mark.parametrize(("n", "loss"), [(50_000, 0.02), (3_000, 0.3)])
def test_bulk_download_with_concurrent_bus_converges_newest_wins(n: int, loss: float) -> None:
    sim = Sim(seed=n, loss=loss, dup=0.02, delay=(0.0001, 0.01 if loss < 0.1 else 0.2))
    _fill(sim.a.table, n)
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    assert not sim.b.sync.ready and sim.b.sync.state is SyncState.DOWNLOADING
    changes = 0
    while sim.b.sync.state is SyncState.DOWNLOADING:
        _churn(sim, changes, n)
        changes += 1
        sim.run(0.0005 if loss < 0.1 else 0.02)
        assert sim.b.ready_log == [False] or sim.b.sync.download_complete
    assert changes > 100  # the changes really ran concurrently with the download
    sim.settle(expire=False)  # 1800 s lifetimes: nothing expires (and no table scans)
    same_tables(sim.a.table, sim.b.table)
    assert sim.b.ready_log == [False, True]
    cb, ca = sim.b.sync.counters, sim.a.sync.counters
    assert cb.DownloadsCompleted == 1 and ca.TransfersCompleted >= 1
    assert cb.StaleRecords > 0  # bulk records older than BUs already applied were refused
    if loss > 0.1:
        assert ca.TotalSentBIReps > ca.SentBIReps and ca.TotalSentBUs > ca.SentBUs


def test_deletions_during_download_are_not_resurrected() -> None:
    sim = Sim(seed=4, tombstone_ttl=0.5)
    _fill(sim.a.table, 300)
    keys = list(sim.a.table)
    gone, moved = keys[10], keys[20]
    old_moved = sim.a.table[moved]
    sim.hold = lambda p: p[0] == 203  # BI Replies are held back (built from the old table)
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    sim.run(0.01)
    assert sim.held  # chunks with `gone` and the old `moved` are in flight
    # while they are in flight: a deregistration and a re-registration go through as BUs
    sim.a.deregister(gone, next_ident(), sim)
    newer = replace(old_moved, ident=next_ident(), lifetime=900, expires=sim.now + 900)
    sim.a.register(newer, sim)
    sim.run(5.0)  # longer than the tombstone TTL: kept because the download is running
    assert gone not in sim.b.table and sim.b.table[moved].ident == newer.ident
    assert sim.b.sync.merge._tombs
    sim.hold = None
    sim.release()
    sim.settle()
    assert gone not in sim.b.table, "deleted binding resurrected by an older bulk record"
    assert sim.b.table[moved].ident == newer.ident, "re-registration rolled back"
    same_tables(sim.a.table, sim.b.table, tol=6.0)  # the held chunks carry 5 s old lifetimes
    # after the download the tombstones age out
    sim.run(1.0)
    assert not sim.b.sync.merge._tombs


def test_ready_only_after_the_last_chunk() -> None:
    sim = Sim(seed=5)
    _fill(sim.a.table, 2000)
    sim.hold = lambda p: p[0] == 203 and decode(p).message.flags & 0x80 != 0  # hold the L chunk
    sim.b.apply(sim.b.sync.start_download(sim.now), sim)
    sim.run(0.5)
    assert len(sim.b.table) > 1900 and not sim.b.sync.ready
    sim.hold = None
    sim.release()
    sim.settle()
    assert sim.b.sync.ready and sim.b.ready_log == [False, True]
    same_tables(sim.a.table, sim.b.table)


def test_download_abandoned_when_the_peer_is_gone_then_restarted() -> None:
    sim = Sim(seed=6)
    _fill(sim.a.table, 100)
    sim.cut = True
    sim.b.apply(sim.b.sync.start_download(sim.now), sim)
    assert not sim.b.sync.ready
    sim.run(16.0)  # 1 + 2 + 4 + 8 s of BI Request retransmissions
    c = sim.b.sync.counters
    assert c.FailedBIReqs == 1 and c.TotalSentBIReqs == 4 and c.SentBIReqs == 1
    assert sim.b.sync.state is SyncState.PEER_LOST and sim.b.sync.ready
    assert sim.b.ready_log == [False, True]
    sim.cut = False
    sim.settle()  # the download is retried and completes
    assert sim.b.sync.state is SyncState.IN_SYNC and sim.b.sync.download_complete
    same_tables(sim.a.table, sim.b.table)
    assert sim.b.ready_log == [False, True, False, True]


def test_peer_down_during_download_releases_ready() -> None:
    sim = Sim()
    _fill(sim.a.table, 100)
    sim.hold = lambda p: True
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, 0.0), sim)
    acts = sim.b.sync.peer_down(0.5)
    lost = SyncStateChanged(VIP, SyncState.DOWNLOADING, SyncState.PEER_LOST, SyncInput.PEER_LOST)
    assert acts == [lost, ReadyChanged(True)] and sim.b.sync.state is SyncState.PEER_LOST


def test_split_brain_heal_reconciles_newest_wins() -> None:
    sim = Sim(seed=8, mode=Mode.PEER, max_pending=1000)
    a, b = sim.a, sim.b
    for i in range(200):
        a.register(mk(i), sim)
    sim.settle()
    same_tables(a.table, b.table)
    sim.cut = True  # the link between the HAs is cut: both are active
    for i in range(200, 260):
        a.register(mk(i, "192.0.2.2"), sim)  # only on A
    for i in range(300, 380):
        b.register(mk(i, "192.0.2.3"), sim)  # only on B
    a.register(mk(5), sim)  # MN 5 re-registers on A, then later on B (newer)
    b.register(mk(5), sim)
    b.register(mk(6), sim)  # MN 6 on B, then later on A (newer)
    a.register(mk(6), sim)
    a.deregister(mk(7).key, next_ident(), sim)  # MN 7 deregisters through A
    sim.run(40.0)
    assert a.sync.state is SyncState.PEER_LOST and b.sync.state is SyncState.PEER_LOST
    assert a.sync.counters.FailedBUs > 0
    expected = dict(a.table)
    for k, x in b.table.items():
        if k == mk(7).key:
            continue
        if k not in expected or expected[k].ident < x.ident:
            expected[k] = x
    sim.cut = False  # heal
    a.apply(a.sync.reconcile(sim.now), sim)
    sim.settle()
    same_tables(a.table, b.table)
    same_tables(a.table, expected)
    assert a.table[mk(5).key].ident == b.table[mk(5).key].ident
    assert a.sync.counters.ReceivedBIReqs == 1 and b.sync.counters.ReceivedBIReqs == 1


def test_reconcile_merges_diverged_tables_both_ways() -> None:
    sim = Sim(seed=10, mode=Mode.PEER)
    a, b = sim.a, sim.b
    _fill(a.table, 500)
    for k, x in list(a.table.items()):
        b.table[k] = x
    for i in range(0, 500, 3):  # newer on A
        x = mk(i)
        a.table[x.key] = x
    for i in range(1, 500, 3):  # newer on B
        x = mk(i)
        b.table[x.key] = x
    for i in range(500, 700):
        x = mk(i, "192.0.2.2")
        (a if i % 2 else b).table[x.key] = x
    expected = dict(a.table)
    for k, x in b.table.items():
        if k not in expected or expected[k].ident < x.ident:
            expected[k] = x
    b.apply(b.sync.reconcile(sim.now), sim)
    assert b.sync.ready  # a reconcile does not hold HSRP back
    sim.settle()
    same_tables(a.table, expected)
    same_tables(b.table, expected)


def test_peer_mode_both_sides_send_bus() -> None:
    sim = Sim(seed=11, mode=Mode.PEER, loss=0.1, delay=(0.0001, 0.05))
    for i in range(400):
        (sim.a if i % 2 else sim.b).register(mk(i, now=sim.now), sim)
        sim.run(0.001)
    sim.settle()
    same_tables(sim.a.table, sim.b.table)
    assert len(sim.a.table) == 400
    assert sim.a.sync.counters.ReceivedBUs > 0 and sim.b.sync.counters.ReceivedBUs > 0


def test_other_ha_address_is_not_ours() -> None:
    sim = Sim()
    from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator

    msg = SyncMessage(MsgKind.BU, 1, "10.0.0.200", (3_999_999_999 << 32) | 1)
    data = encode(msg, SPI, Authenticator(KEY, ALG_PREFIX_SUFFIX))
    assert sim.b.sync.receive_datagram(data, ("10.0.0.1", 434), SYNC_DST, 0.0) == []
    assert sim.b.sync.counters.WrongHaAddress == 1
    assert VIP != "10.0.0.200"


def test_infinite_lifetime_survives_sync() -> None:
    sim = Sim()
    b = replace(mk(1), lifetime=0xFFFF, expires=math.inf)
    sim.a.register(b, sim)
    sim.run(0.1)
    assert sim.b.table[b.key].expires == math.inf


# --- state x event table ----------------------------------------------------------------

STATES = ["idle", "downloading", "in-sync", "peer-lost", "peer-lost-need-download"]
EVENTS = ["standby", "active", "other", "peer_down", "start_download", "reconcile", "bu"]
# (state, ready) after each event, per starting state
EXPECTED = {
    "idle": ["downloading F", "idle T", "idle T", "peer-lost T", "downloading F",
             "downloading T", "in-sync T"],
    "downloading": ["downloading F", "peer-lost T", "downloading F", "peer-lost T",
                    "downloading F", "downloading F", "downloading F"],
    "in-sync": ["downloading F", "in-sync T", "in-sync T", "peer-lost T", "downloading F",
                "downloading T", "in-sync T"],
    "peer-lost": ["downloading F", "peer-lost T", "peer-lost T", "peer-lost T",
                  "downloading F", "downloading T", "in-sync T"],
    "peer-lost-need-download": ["downloading F", "peer-lost T", "peer-lost T", "peer-lost T",
                                "downloading F", "downloading T", "in-sync T"],
}  # fmt: skip


def _in_state(name: str) -> Sim:
    sim = Sim()
    s = sim.b.sync
    if name == "downloading":
        sim.hold = lambda p: True
        sim.b.apply(s.start_download(0.0), sim)
    elif name == "in-sync":
        sim.b.apply(s.start_download(0.0), sim)
        sim.settle()
    elif name == "peer-lost":
        sim.b.apply(s.peer_down(0.0), sim)
    elif name == "peer-lost-need-download":
        sim.hold = lambda p: True
        sim.b.apply(s.start_download(0.0), sim)
        sim.b.apply(s.peer_down(0.0), sim)
    sim.hold = None
    sim.held.clear()
    assert s.state.value == name.replace("-need-download", "")
    return sim


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("event", EVENTS)
def test_state_event_table(state: str, event: str) -> None:
    sim = _in_state(state)
    s = sim.b.sync
    now = 1.0
    if event == "standby":
        s.role_changed(Role.STANDBY, now)
    elif event == "active":
        s.role_changed(Role.ACTIVE, now)
    elif event == "other":
        s.role_changed(Role.OTHER, now)
    elif event == "peer_down":
        s.peer_down(now)
    elif event == "start_download":
        s.start_download(now)
    elif event == "reconcile":
        s.reconcile(now)
    else:  # a valid BU from the peer
        sim.a.register(mk(1), sim)
        sim.run(0.01)
    got = f"{s.state.value} {'T' if s.ready else 'F'}"
    if state == "peer-lost-need-download" and event == "bu":
        assert s.counters.DownloadsStarted == 2  # hearing the peer restarted the download
    assert got == EXPECTED[state][EVENTS.index(event)]


def test_late_duplicate_bi_request_does_not_restart_a_finished_transfer() -> None:
    sim = Sim()
    _fill(sim.a.table, 100)
    sim.b.apply(sim.b.sync.start_download(sim.now), sim)
    req = next(p for p in sim.b.sent if p[0] == 202)
    sim.settle()
    seq = decode(req).message.seq
    from tests.unit.core.test_redundancy import _forge, _ident_at

    late = _forge(MsgKind.BI_REQUEST, seq, ident=_ident_at(sim.now, 12345))
    assert sim.a.sync.receive_datagram(late, ("10.0.0.2", 434), SYNC_DST, sim.now) == []
    assert sim.a.sync.counters.TransfersCompleted == 1 and sim.a.sync.transferring is False


def test_expired_record_counts_as_deletion() -> None:
    sim = Sim()
    b = mk(1)
    sim.b.table[b.key] = b  # the standby has an older registration of MN 1
    newer = replace(mk(1), lifetime=2, expires=sim.now + 2)
    sim.cut = True
    sim.a.register(newer, sim)  # its BU is lost until after it expired
    sim.run(3.0)
    sim.cut = False
    sim.settle()
    assert b.key not in sim.b.table  # the retransmitted record said "remaining 0"
    assert sim.b.sync.merge._tombs[b.key] == newer.ident


def test_active_dies_mid_download_standby_becomes_ready() -> None:
    """The active stops answering after some chunks: the standby must not stay unready."""
    sim = Sim(seed=12)
    _fill(sim.a.table, 3000)
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    sim.run(0.002)
    assert 0 < len(sim.b.table) < 3000 and not sim.b.sync.ready
    sim.cut = True  # kill -9 of the active
    t0 = sim.now
    while not sim.b.sync.ready:
        assert sim.step(t0 + 60.0)
    assert sim.now - t0 <= 10.5  # download_idle_timeout after the last message heard
    assert sim.b.sync.state is SyncState.PEER_LOST and sim.b.ready_log == [False, True]
    assert sim.b.sync.counters.DownloadsAbandoned == 1


def test_idle_deadline_fires_exactly_when_next_deadline_says() -> None:
    """Regression: a float difference (now - t >= x) vs a float sum (t + x) left a deadline
    in the past that on_timer never cleared, and the timer spun."""
    sim = Sim()
    _fill(sim.a.table, 10)
    sim.b.apply(sim.b.sync.start_download(0.0), sim)
    sim.hold = lambda p: True  # nothing more gets through
    sim.run(0.001)
    dl = sim.b.sync._dl
    assert dl is not None and dl.req is not None
    dl.req.alive = False  # as if a first BI Reply had arrived at 0.1
    dl.req = None
    dl.progress_at = 0.1
    d = sim.b.sync.get_timer()
    assert d == 0.1 + 10.0
    sim.b.apply(sim.b.sync.handle_timer(d), sim)
    assert sim.b.sync.get_timer() != d


def test_own_change_superseded_by_a_newer_peer_record_counts_as_acknowledged() -> None:
    sim = Sim(mode=Mode.PEER)
    sim.a.sync.acked = []
    sim.cut = True
    old = mk(1)
    sim.a.register(old, sim)  # A's BU cannot get through
    newer = replace(old, ident=next_ident())
    sim.b.register(newer, sim)  # meanwhile the MN registered (newer) through B
    assert sim.a.sync.is_pending(old.key)
    sim.cut = False
    sim.settle()
    assert not sim.a.sync.is_pending(old.key)
    assert old.key in sim.a.sync.acked  # a reply held for A's change may go
    assert sim.a.table[old.key].ident == sim.b.table[old.key].ident == newer.ident


@pytest.mark.parametrize("path", ["python", "c"])
def test_python_and_c_record_paths_converge_alike(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lossy download with churn, once with the pure-Python one-pass record codec
    (what runs without the C module) and once with the C one: the same table."""
    from mobileha.core.sync import records
    from mobileha.wire import sync as ws

    if path == "python":
        monkeypatch.setattr(records, "pack_binding", ws.pack_binding_py)
        monkeypatch.setattr(records, "pack_bindings", ws.pack_bindings_py)
        monkeypatch.setattr(records, "pack_chunk", ws.pack_chunk_py)
        monkeypatch.setattr(ws, "decode_bindings", ws.decode_bindings_py)
    elif not ws.C_RECORDS:
        pytest.skip("mobileha._slbio is not built")
    sim = Sim(seed=11, loss=0.2, dup=0.02, delay=(0.0001, 0.1))
    _fill(sim.a.table, 2_000)
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    changes = 0
    while sim.b.sync.state is SyncState.DOWNLOADING:
        _churn(sim, changes, 2_000)
        changes += 1
        sim.run(0.02)
    sim.settle(expire=False)
    same_tables(sim.a.table, sim.b.table)
    assert sim.b.sync.counters.DownloadsCompleted == 1
