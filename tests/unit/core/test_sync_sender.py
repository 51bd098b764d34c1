"""The BU sender's queue on its own (core/sync/sender.py): order, coalescing, full BUs and
a long queue drained through a small window."""

from __future__ import annotations

from mobileha.core.actions import Send
from mobileha.core.sync import SyncConfig
from mobileha.core.sync.base import Counters
from mobileha.core.sync.channel import Change, Channel, Out
from mobileha.core.sync.sender import BuSender
from mobileha.wire.auth import Authenticator
from tests.helpers.cluster_net import SYNC_KEY, binding

VIP = "10.0.0.100"


def _sender(**kw: int) -> BuSender:
    cfg = SyncConfig(
        peer_addr="10.0.0.2", ha_addr=VIP, spi=400,
        authenticator=Authenticator(SYNC_KEY, "hmac-md5"), **kw,
    )  # fmt: skip
    c = Counters()
    return BuSender(cfg, c, Channel(cfg, c, unix_offset=0.0, nonce_of=None, now=0.0))


def _in_flight(s: BuSender) -> list[Out]:
    return sorted(s._bu_out.values(), key=lambda o: o.seq)


def test_a_long_queue_leaves_in_order_once_each_through_a_window_of_one() -> None:
    s = _sender(bu_window=1)
    s.released = []
    actions: list[object] = []
    changes = [Change(binding(i, VIP, 0.0), False, True, 0.0) for i in range(2000)]
    changes[5].waiters = ["reply of the older"]
    newer = Change(binding(5, VIP, 0.0), False, True, 0.0)
    newer.waiters = ["reply of the newer"]
    for i, ch in enumerate(changes):
        s.enqueue(ch, 0.0, 1, actions)  # (the first full BU leaves at once)
        if i == 9:
            # a newer change to a queued key keeps the key's place, replaces the older
            # one and takes over what waited for it
            s.enqueue(newer, 0.0, 1, actions)
            assert changes[5].waiters is None
            assert newer.waiters == ["reply of the newer", "reply of the older"]
    s.flush(0.0, 1, actions)
    sent: list[Change] = []
    while s._bu_out:
        (out,) = _in_flight(s)  # the window holds one BU
        assert out.changes is not None
        sent += out.changes
        s.acknowledged(out, 0.1)
        s.flush(0.1, 1, actions)
    expect = [*changes[:5], newer, *changes[6:]]
    assert [ch.key for ch in sent] == [ch.key for ch in expect]
    assert all(x is y for x, y in zip(sent, expect, strict=True))
    assert not s.latest and not s.has_queue and s.flush_at is None
    assert sum(isinstance(a, Send) for a in actions) == s.counters.SentBUs > 2000 // 30
    # the waiters of acknowledged changes are handed to the gate once
    assert s.released == [["reply of the newer", "reply of the older"]]


def test_full_only_sends_only_full_bus() -> None:
    s = _sender(bu_window=64)
    actions: list[object] = []
    s.enqueue(Change(binding(0, VIP, 0.0), False, True, 0.0), 0.0, 64, actions)
    s.flush(0.0, 64, actions, full_only=True)
    assert not actions and s.has_queue  # one record: not a full BU
    i = 1
    while not actions:  # enqueue sends the BU once a full one is queued
        s.enqueue(Change(binding(i, VIP, 0.0), False, True, 0.0), 0.0, 64, actions)
        i += 1
    (out,) = _in_flight(s)
    assert out.changes is not None and len(out.changes) == i - 1  # the last one waits
    assert s.has_queue and s.flush_at == 0.0
