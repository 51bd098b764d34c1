"""The BU sender's packing (core/sync/sender.py ``BuSender.flush``) against a reference: the
queued changes leave in queue order, each BU holding the longest run of their records
(``pack_record`` each) that fits the BU's record bytes, at least one; at most ``window`` BUs
in flight; with ``full_only`` only BUs that are full (the next record does not fit, or the
records fill the limit exactly)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.core.sync import SyncConfig, pack_record
from mobileha.core.sync.base import Counters
from mobileha.core.sync.channel import Change, Channel
from mobileha.core.sync.sender import BuSender, _queued_size
from mobileha.wire.auth import Authenticator
from mobileha.wire.sync import FLAG_DELETE, HEADER_LEN, HHAE_LEN, REC_DELETE
from tests.helpers.cluster_net import SYNC_KEY, binding

VIP = "10.0.0.100"
NOW = 1000.0


def _change(i: int, nai_len: int, delete: bool) -> Change:
    b = binding(i, VIP, NOW)
    b.nai = f"{i}@".ljust(nai_len, "x") if nai_len else None  # records of many sizes
    return Change(b, delete, not delete, NOW)


def _reference(changes: list[Change], limit: int) -> list[list[Change]]:
    """Greedy BUs: a record that does not fit starts the next BU."""
    bus: list[list[Change]] = []
    size = 0
    for ch in changes:
        n = len(pack_record(ch.binding, NOW, ch.rflags))
        if bus and size + n <= limit:
            bus[-1].append(ch)
            size += n
        else:
            bus.append([ch])
            size = n
    return bus


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(st.tuples(st.integers(0, 120), st.booleans()), min_size=1, max_size=200),
    max_message=st.integers(300, 1400),
    window=st.integers(1, 6),
    full_only=st.booleans(),
)
def test_flush_packs_the_queue_as_the_greedy_reference(
    specs: list[tuple[int, bool]], max_message: int, window: int, full_only: bool
) -> None:
    cfg = SyncConfig(
        peer_addr="10.0.0.2", ha_addr=VIP, spi=400, bu_window=window,
        max_message=max_message, max_pending=10_000,
        authenticator=Authenticator(SYNC_KEY, "hmac-md5"),
    )  # fmt: skip
    c = Counters()
    s = BuSender(cfg, c, Channel(cfg, c, unix_offset=0.0, nonce_of=None, now=NOW))
    changes = [_change(i, n, d) for i, (n, d) in enumerate(specs)]
    for ch in changes:  # queued without the flush that a full queue triggers
        s._queue[ch.key] = ch
        s.latest[ch.key] = ch
        s._queue_bytes += _queued_size(ch.binding)
    limit = max_message - HEADER_LEN - HHAE_LEN
    every = _reference(changes, limit)
    expect = every[:window]
    if full_only:
        # full BUs only, while the estimate of what is left could fill one more
        left = s._queue_bytes
        for j, bu in enumerate(expect):
            size = sum(len(pack_record(ch.binding, NOW, ch.rflags)) for ch in bu)
            if j + 1 == len(every) and size < limit:
                expect = expect[:j]
                break
            left -= sum(_queued_size(ch.binding) for ch in bu)
            if left < limit:
                expect = expect[: j + 1]
                break
    actions: list[object] = []
    s.flush(NOW, window, actions, full_only=full_only)
    outs = sorted(s._bu_out.values(), key=lambda o: o.seq)
    assert [[ch.key for ch in o.changes or []] for o in outs] == [
        [ch.key for ch in bu] for bu in expect
    ]
    for o, bu in zip(outs, expect, strict=True):
        assert o.body == b"".join(pack_record(ch.binding, NOW, ch.rflags) for ch in bu)
        assert o.count == len(bu)
        assert bool(o.flags & FLAG_DELETE) == all(ch.rflags & REC_DELETE for ch in bu)
    sent = sum(len(bu) for bu in expect)
    # what was not sent stays queued, in order
    assert list(s._queue) == [ch.key for ch in changes[sent:]]
