"""The sync state machine as data (core/sync/states.py): every (state, input) pair.

Each pair in the table is driven through a real ``SyncPeer`` (its public inputs and
datagrams, fake clock) from that state, and must land in the table's next state; every pair
that is not in the table is refused with ``SyncStateError``. The peer keeps the invariant
the table relies on: a download runs exactly while the state is DOWNLOADING.
"""

from __future__ import annotations

import itertools

import pytest

from mobileha.core.sync import (
    Role,
    SyncConfig,
    SyncInput,
    SyncPeer,
    SyncState,
    SyncStateChanged,
    record_from_binding,
)
from mobileha.core.sync.states import TRANSITIONS, Effect, SyncStateError, transition
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.sync import FLAG_LAST, MsgKind, SyncMessage, encode
from tests.unit.core.test_redundancy import KEY, SPI, SYNC_DST, UNIX0, VIP, mk

PEER = ("10.0.0.1", 434)
S, I = SyncState, SyncInput  # noqa: E741


def _peer() -> SyncPeer:
    auth = Authenticator(KEY, ALG_PREFIX_SUFFIX)
    cfg = SyncConfig(
        peer_addr=PEER[0], ha_addr=VIP, spi=SPI, authenticator=auth, initial_timeout=0.1,
        max_retries=1, download_idle_timeout=2.0,
    )  # fmt: skip
    return SyncPeer(cfg, lambda k: None, lambda: iter(()), unix_offset=UNIX0)


_low = itertools.count(1)


def _from_peer(p: SyncPeer, kind: MsgKind, now: float, **kw: object) -> list[object]:
    ident = ((int(UNIX0 + now) + 2208988800) << 32) | next(_low)
    msg = SyncMessage(kind, kw.pop("seq", 1), VIP, ident, **kw)  # type: ignore[arg-type]
    data = encode(msg, SPI, Authenticator(KEY, ALG_PREFIX_SUFFIX))
    return list(p.receive_datagram(data, PEER, SYNC_DST, now))


def _reach(state: SyncState) -> tuple[SyncPeer, float]:
    """A peer in ``state`` (no download owed: RESUME has nothing to start)."""
    p = _peer()
    now = 1.0
    if state is S.DOWNLOADING:
        p.start_download(now)
    elif state is S.IN_SYNC:
        _from_peer(p, MsgKind.BU, now, records=(record_from_binding(mk(1), now),))
    elif state is S.PEER_LOST:
        p.peer_down(now)
    assert p.state is state
    return p, now


def _fire(p: SyncPeer, inp: SyncInput, now: float) -> None:
    """Produce ``inp`` through the peer's real inputs."""
    if inp is I.HEARD:
        _from_peer(p, MsgKind.BU, now, records=(record_from_binding(mk(2), now),))
    elif inp is I.DOWNLOAD_STARTED:
        p.start_download(now)
    elif inp is I.PEER_LOST:
        p.peer_down(now)
    elif inp is I.TAKEN_OVER:
        p.role_changed(Role.ACTIVE, now)
    elif inp is I.DOWNLOAD_DONE:
        dl = p._dl
        assert dl is not None
        _from_peer(p, MsgKind.BI_REPLY, now, seq=dl.txn, chunk=0, flags=FLAG_LAST)
    elif inp is I.REQUEST_FAILED:
        while p.state is S.DOWNLOADING:  # nobody answers the BI Request
            t = p.get_timer()
            assert t is not None
            p.handle_timer(t)
    elif inp is I.DOWNLOAD_STALLED:
        dl = p._dl
        assert dl is not None
        _from_peer(p, MsgKind.BI_REPLY, now, seq=dl.txn, chunk=0)  # then silence
        while p.state is S.DOWNLOADING:
            t = p.get_timer()
            assert t is not None
            p.handle_timer(t)
    else:  # pragma: no cover
        raise AssertionError(inp)


@pytest.mark.parametrize(("state", "inp"), list(itertools.product(SyncState, SyncInput)))
def test_every_state_and_input(state: SyncState, inp: SyncInput) -> None:
    p, now = _reach(state)
    if (state, inp) not in TRANSITIONS:
        with pytest.raises(SyncStateError):
            transition(state, inp)
        with pytest.raises(SyncStateError):
            p._input(inp, now, [])
        assert p.state is state
        return
    effects, new = TRANSITIONS[(state, inp)]
    _fire(p, inp, now + 0.01)
    assert p.state is new, (state, inp, p.state)
    # the invariant the table rests on
    assert (p._dl is not None) == (p.state is S.DOWNLOADING)
    if Effect.ABORT_TRANSFER in effects:
        assert not p.transferring
    if Effect.SCHEDULE_RESTART in effects:
        assert p._dl_restart_at is not None


def test_inputs_that_need_a_download_exist_only_while_downloading() -> None:
    needs = {I.DOWNLOAD_DONE, I.REQUEST_FAILED, I.DOWNLOAD_STALLED, I.TAKEN_OVER}
    for (state, inp), (_, new) in TRANSITIONS.items():
        if inp in needs:
            assert state is S.DOWNLOADING
        if inp is I.DOWNLOAD_STARTED:
            assert new is S.DOWNLOADING
        if inp in (I.PEER_LOST, I.REQUEST_FAILED, I.DOWNLOAD_STALLED, I.TAKEN_OVER):
            assert new is S.PEER_LOST


def test_resume_starts_the_download_owed_when_the_peer_is_back() -> None:
    """(PEER_LOST, HEARD) with a gated download owed: RESUME requests it at once."""
    p = _peer()
    p.start_download(1.0)
    _fire(p, I.REQUEST_FAILED, 1.0)
    assert p.state is S.PEER_LOST and not p.download_complete and p.ready
    out = _from_peer(p, MsgKind.BU, 1.5, records=(record_from_binding(mk(3), 1.5),))
    assert p.state is S.DOWNLOADING and not p.ready
    changes = [(x.old, x.new, x.cause) for x in out if isinstance(x, SyncStateChanged)]
    assert changes == [
        (S.PEER_LOST, S.IN_SYNC, I.HEARD),
        (S.IN_SYNC, S.DOWNLOADING, I.DOWNLOAD_STARTED),
    ]


def test_an_active_ha_owes_no_download() -> None:
    """A start-up download that failed is not requested again once HSRP made us Active."""
    p = _peer()
    p.start_download(1.0)
    _fire(p, I.REQUEST_FAILED, 1.0)
    assert not p.download_complete
    p.role_changed(Role.ACTIVE, 1.2)
    assert p.download_complete
    for _ in range(20):
        t = p.get_timer()
        if t is None:
            break
        p.handle_timer(t)
    assert p.counters.DownloadsStarted == 1 and p.state is S.PEER_LOST
