"""The binding journal, sans-IO: entries of the bindings a home agent grants, folded and
restored into a new core on a new clock: care-of address, remaining lifetime (less the time
the process was down), Identification (a replayed request gets 133), pool allocation;
deleted and expired bindings are not restored (the file format: tests/unit/wire)."""

from __future__ import annotations

from mobileha.core import journal
from mobileha.core.actions import Send
from mobileha.wire.journal import (
    decode_entries,
    file_header,
)
from mobileha.wire.mip import RegistrationReply
from tests.helpers.cluster_net import CLIENT, PORT, rrq
from tests.helpers.cluster_net import home_agent as _home_agent

HA = "10.0.0.1"
WALL0 = 1_800_000_000.0


def home_agent(real: str, vip: str, n: int, offset: float = WALL0) -> object:
    """A core whose wall clock is ``offset`` + its monotonic ``now``."""
    ha = _home_agent(real, vip, n)
    ha.unix_offset = offset
    return ha


def grant(ha: object, i: int, now: float, lifetime: int = 600) -> tuple[bytes, RegistrationReply]:
    req = rrq(i, HA, WALL0 + now, lifetime=lifetime)
    out = ha.receive_datagram(req, (CLIENT, PORT), (HA, PORT), now)  # type: ignore[attr-defined]
    (send,) = [a for a in out if isinstance(a, Send)]
    rep = RegistrationReply.decode(send.payload)
    assert rep.code == 0
    return req, rep


def entries_of(ha: object, now: float) -> bytes:
    return file_header() + b"".join(
        journal.binding_entry(HA, ha, b, now, WALL0 + now)  # type: ignore[arg-type]
        for b in ha.table  # type: ignore[attr-defined]
    )


def test_restore_keeps_coa_remaining_lifetime_replay_state_and_pool() -> None:
    old = home_agent(HA, HA, 4)
    reqs = [grant(old, i, 10.0 + i) for i in range(3)]
    data = entries_of(old, 20.0)
    # one of them deregistered later
    gone = next(iter(old.table.bindings_of(reqs[2][1].home_addr)))
    data += journal.delete_entry(HA, gone, WALL0 + 21.0)
    entries, end = decode_entries(data)
    assert end == len(data) and len(entries) == 4
    down = 100.0  # the process was down 100 s of wall clock; the new clock starts at 5
    new = home_agent(HA, HA, 4, WALL0 + 20.0 + down - 5.0)
    actions, restored, skipped = journal.restore(
        journal.fold(entries), {HA: new}, 5.0, WALL0 + 20.0 + down
    )
    assert (restored, skipped) == (2, 0)
    assert sorted(type(a).__name__ for a in actions) == ["RestoreBinding"] * 2
    for (req, rep), sent_at in zip(reqs[:2], (10.0, 11.0), strict=True):
        (b,) = new.table.bindings_of(rep.home_addr)
        assert b.care_of == CLIENT and b.ident == rep.ident
        left = 600 - (20.0 - sent_at) - down  # as on the old clock at the entry, less down
        assert left - 1.5 <= b.expires - 5.0 <= left + 0.5, (b.expires, left)
        assert new.is_dynamic(rep.home_addr)  # the pool knows it is allocated
        # a replay of the accepted request is refused (replay state restored)
        out = new.receive_datagram(req, (CLIENT, PORT), (HA, PORT), 6.0)
        (send,) = [a for a in out if isinstance(a, Send)]
        assert RegistrationReply.decode(send.payload).code == 133
    assert not new.table.bindings_of(reqs[2][1].home_addr)


def test_expired_while_down_and_unknown_agents_are_skipped() -> None:
    old = home_agent(HA, HA, 2)
    grant(old, 0, 0.0, lifetime=30)
    grant(old, 1, 0.0, lifetime=600)
    entries, _ = decode_entries(entries_of(old, 1.0))
    new = home_agent(HA, HA, 2)
    _, restored, skipped = journal.restore(journal.fold(entries), {HA: new}, 0.0, WALL0 + 61.0)
    assert (restored, skipped) == (1, 1)
    _, restored, skipped = journal.restore(journal.fold(entries), {"10.9.9.9": new}, 0, WALL0)
    assert (restored, skipped) == (0, 2)


def test_snapshot_is_the_table() -> None:
    old = home_agent(HA, HA, 3)
    for i in range(3):
        grant(old, i, 1.0)
    entries, _ = decode_entries(journal.snapshot([(HA, old)], 2.0, WALL0 + 2.0))
    assert len(journal.fold(entries)) == 3
