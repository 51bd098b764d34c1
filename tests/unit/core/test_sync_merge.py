"""``Merger.apply``: the records that win come out as ``ApplyBindings`` runs, one per run
between two deletions, in the order of the records; stale records and deletions of
nothing leave no action."""

from __future__ import annotations

from mobileha.core.binding import Binding
from mobileha.core.sync import ApplyBindings, Counters, DeleteBinding, Key, SyncConfig
from mobileha.core.sync.channel import Channel
from mobileha.core.sync.merge import Merger
from mobileha.core.sync.sender import BuSender
from mobileha.wire.auth import Authenticator
from mobileha.wire.sync import REC_DELETE, REC_DYNAMIC, BoundRecord

NOW = 100.0


def _binding(i: int, ident: int, expires: float = NOW + 600) -> Binding:
    return Binding(f"10.1.0.{i}", "192.0.2.1", "10.0.0.100", 600, expires, ident, 0)


def _merger(table: dict[Key, Binding]) -> tuple[Merger, Counters]:
    cfg = SyncConfig("10.0.0.1", "10.0.0.100", 1, Authenticator(b"k" * 16, "hmac-md5"))
    c = Counters()
    sender = BuSender(cfg, c, Channel(cfg, c, unix_offset=0.0, nonce_of=None, now=0.0))
    return Merger(cfg, c, sender, table.get, None), c


def _entry(b: Binding, rec_flags: int = 0, nonce: int | None = None) -> BoundRecord:
    return (b, rec_flags, nonce, None, None)


def test_an_empty_table_takes_every_record_in_one_run() -> None:
    merge, c = _merger({})
    bs = [_binding(i, 1000 + i) for i in range(5)]
    out: list[object] = []
    merge.apply(
        [_entry(b, REC_DYNAMIC if i % 2 else 0, i) for i, b in enumerate(bs)], NOW, False, out
    )
    assert out == [ApplyBindings([(b, bool(i % 2), i, None) for i, b in enumerate(bs)])]
    assert c.AppliedRecords == 5 and c.StaleRecords == 0


def test_a_deletion_splits_the_runs_and_the_order_is_kept() -> None:
    old = _binding(2, 500)
    merge, c = _merger({old.key: old})
    first, gone, last = _binding(1, 1000), _binding(2, 1001), _binding(3, 1002)
    out: list[object] = []
    merge.apply([_entry(first), _entry(gone, REC_DELETE), _entry(last)], NOW, False, out)
    assert out == [
        ApplyBindings([(first, False, None, None)]),
        DeleteBinding(gone),
        ApplyBindings([(last, False, None, None)]),
    ]
    assert c.AppliedRecords == 2 and c.DeletedRecords == 1


def test_stale_records_and_deletions_of_nothing_leave_no_action() -> None:
    cur = _binding(1, 2000)
    merge, c = _merger({cur.key: cur})
    out: list[object] = []
    merge.apply(
        [
            _entry(_binding(1, 1999)),  # older than the table's
            _entry(_binding(1, 2000)),  # the same registration again
            _entry(_binding(4, 10), REC_DELETE),  # nothing to delete (a tombstone stays)
            _entry(_binding(4, 9)),  # older than that deletion: no resurrection
            _entry(_binding(5, 10, expires=NOW)),  # expired in flight: a deletion
        ],
        NOW,
        False,
        out,
    )
    assert out == []
    assert c.StaleRecords == 3 and c.AppliedRecords == 0
    assert merge.tombstones == 2
