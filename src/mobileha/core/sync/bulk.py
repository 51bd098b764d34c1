"""Bulk download (P§5.4): the whole table of one HA address, BI Request / BI Replies / BI
Reply Acks.

:class:`Download` is ours (we sent the BI Request): the chunks of the transfer arrive in any
order, each is acknowledged, and the download is complete once every chunk up to the one
with L has arrived. :class:`Transfer` is the peer's (it sent the BI Request): we stream BI
Replies from a lazy iteration of our table, ``bi_window`` chunks in flight, each
retransmitted until acknowledged, L on the last one. A binding that expired before it was
packed is skipped (its deletion follows as a BU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

from mobileha.core.binding import Binding
from mobileha.core.sync.base import Counters, SyncAction, SyncConfig
from mobileha.core.sync.channel import Channel, Out
from mobileha.wire.sync import (
    ACK_OK,
    CHUNK_EXT,
    FLAG_EXCHANGE,
    FLAG_LAST,
    HEADER_LEN,
    HHAE_LEN,
    RECORD_LEN,
    MsgKind,
    SyncMessage,
)


class Download:
    """Our bulk download from the peer (we sent the BI Request ``req``)."""

    __slots__ = (
        "ahead",
        "applied0",
        "exchange",
        "gated",
        "last",
        "next",
        "progress_at",
        "req",
        "started_at",
        "txn",
    )

    def __init__(
        self, channel: Channel, counters: Counters, gated: bool, exchange: bool, now: float
    ) -> None:
        self.txn = channel.next_seq()
        self.started_at = now
        self.applied0 = counters.AppliedRecords  # AppliedRecords when the download started
        self.gated = gated  # HSRP waits for it (``SyncPeer.ready`` is False)
        self.exchange = exchange
        self.next = 0  # every chunk below this one has arrived
        self.ahead: set[int] = set()
        self.last: int | None = None
        self.progress_at = now
        self.req: Out | None = Out(
            MsgKind.BI_REQUEST, self.txn, FLAG_EXCHANGE if exchange else 0, 0, b""
        )

    def current(self, m: SyncMessage) -> bool:
        """Is ``m`` a chunk of this download's transfer?"""
        return m.seq == self.txn and m.chunk is not None

    def accept(
        self, m: SyncMessage, channel: Channel, counters: Counters, now: float,
        actions: list[SyncAction],
    ) -> bool:  # fmt: skip
        """Acknowledge chunk ``m``; True when it is new (its records are to be applied)."""
        if self.req is not None:
            self.req.alive = False  # the request got through
            self.req = None
        counters.SentBIAcks += 1
        channel.send_ack(MsgKind.BI_ACK, m, ACK_OK, m.chunk, now, actions)
        chunk = m.chunk
        assert chunk is not None
        if chunk < self.next or chunk in self.ahead:
            return False  # duplicate
        if chunk == self.next:
            self.next += 1
            ahead = self.ahead
            while self.next in ahead:
                ahead.discard(self.next)
                self.next += 1
        else:
            self.ahead.add(chunk)
        self.progress_at = now
        if m.flags & FLAG_LAST:
            self.last = chunk
        return True

    @property
    def complete(self) -> bool:
        return self.last is not None and self.next > self.last

    def end(self) -> None:
        """Stop retransmitting the request (the download is over, either way)."""
        if self.req is not None:
            self.req.alive = False


class Transfer:
    """A bulk transfer we stream to the peer (it sent the BI Request ``txn``).

    Each BI Reply takes as many bindings as fit (:meth:`Channel.pack_upto`: their records
    packed at send time straight into the chunk's bytes) from a few more taken from the
    table iterator than a chunk can hold; those that do not fit wait for the next chunk."""

    __slots__ = (
        "built_all",
        "exhausted",
        "flags",
        "iterator",
        "next_chunk",
        "out",
        "pending",
        "txn",
    )

    def __init__(self, txn: int, iterator: Iterator[Binding]) -> None:
        self.txn = txn
        self.iterator = iterator
        self.next_chunk = 0
        self.out: dict[int, Out] = {}
        # bindings taken from the iterator, not sent yet, and their record flags
        self.pending: list[Binding] = []
        self.flags: list[int] = []  # (empty without ``dynamic_of``: 0 each)
        self.exhausted = False  # the iterator is done
        self.built_all = False

    def pump(
        self,
        config: SyncConfig,
        counters: Counters,
        channel: Channel,
        dynamic_flags: Callable[[list[Binding]], list[int]] | None,
        now: float,
        actions: list[SyncAction],
    ) -> None:
        """Send BI Replies until ``bi_window`` are unacknowledged or the table is done.
        ``dynamic_flags``: REC_DYNAMIC for each binding whose home address is from the pool,
        else 0 (None: none is)."""
        limit = config.max_message - HEADER_LEN - HHAE_LEN - CHUNK_EXT.size
        most = limit // RECORD_LEN + 1  # more records than one chunk can hold
        window = config.bi_window
        it = self.iterator
        pack_upto = channel.pack_upto
        chunk_type = channel.types.chunk
        bs = self.pending
        fl = self.flags
        while not self.built_all and len(self.out) < window:
            while not self.exhausted and len(bs) < most:
                want = most - len(bs)
                batch = list(islice(it, want))
                if len(batch) < want:
                    self.exhausted = True
                # an expired binding is skipped: its deletion follows as a BU
                live = [b for b in batch if b.expires > now]
                bs += live
                if dynamic_flags is not None:
                    fl += dynamic_flags(live)
            flags = fl if dynamic_flags is not None else None
            records, k = pack_upto(bs, now, flags, limit)
            last = self.exhausted and k == len(bs)
            chunk = self.next_chunk
            self.next_chunk += 1
            body = records + CHUNK_EXT.pack(chunk_type, 4, chunk)
            out = Out(MsgKind.BI_REPLY, self.txn, FLAG_LAST if last else 0, k, body, chunk)
            out.items = (bs[:k], None if flags is None else fl[:k])
            del bs[:k]
            del fl[:k]
            self.out[chunk] = out
            self.built_all = last
            counters.SentBIReps += 1
            counters.TotalSentBIReps += 1
            channel.transmit(out, now, actions)

    def acknowledged(self, chunk: int) -> bool:
        """The peer has ``chunk``; True when that was the last one outstanding."""
        out = self.out.pop(chunk)
        out.alive = False
        return self.built_all and not self.out

    def abort(self) -> None:
        for out in self.out.values():
            out.alive = False


__all__ = ["Download", "Transfer"]
