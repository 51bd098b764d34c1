"""The sending side of binding sync: our changes as Binding Updates (P§5.4).

Changes are coalesced per key (home address, care-of address), batched into BUs smaller
than ``max_message`` bytes (flushed ``flush_delay`` after the first queued change, or at
once when a BU is full), sent with at most ``bu_window`` BUs in flight (one while the peer
is lost) and retransmitted by the :class:`~mobileha.core.sync.channel.Channel` with backoff.
With the default ``flush_delay`` of 0 the flush is due at once: the adapter runs it after
the datagrams it read in the same event-loop turn, so a burst of registrations leaves as a
few full BUs, a lone registration leaves at once, and acknowledgements are pipelined (the
next batch does not wait for the previous one's ack while the window has room).
A BU that runs out of retries counts as failed (cmiHaRedunFailedBUs) and its changes go
back to the queue: nothing is dropped while the queue is within ``max_pending`` keys. On
overflow the queue is dropped, counted, and the next BU carries the R flag (the peer then
downloads the whole table again).

A change stays *pending* from :meth:`BuSender.enqueue` until the peer acknowledges the BU
carrying its latest version; the keys acknowledged are appended to :attr:`BuSender.acked`
(the reply gate drains it).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from mobileha.core.binding import Binding
from mobileha.core.sync.base import Counters, Key, SyncAction, SyncConfig
from mobileha.core.sync.channel import Change, Channel, Out
from mobileha.wire.sync import (
    FLAG_DELETE,
    FLAG_RESYNC,
    HEADER_LEN,
    HHAE_LEN,
    REC_DELETE,
    RECORD_LEN,
    MsgKind,
    SyncMessage,
)


def _queued_size(b: Binding) -> int:
    """The queue's estimate of the bytes of ``b``'s record (without a nonce or SA block)."""
    return RECORD_LEN + (len(b.nai) if b.nai else 0)


class BuSender:
    """The BU queue, batching, window and acknowledgements of one sync peer."""

    def __init__(self, config: SyncConfig, counters: Counters, channel: Channel) -> None:
        self.config = config  # (the setter keeps the per-change bounds at hand)
        self.counters = counters
        self.channel = channel
        self.latest: dict[Key, Change] = {}  # our changes not yet acknowledged (by key)
        # ... not yet in a BU, in the order of their keys' first change since the last BU
        # (a dict keeps insertion order; a newer change to a queued key keeps its place)
        self._queue: dict[Key, Change] = {}
        self._queue_bytes = 0
        self._taken = 0  # keys taken from the front of the queue since it was compacted
        self.flush_at: float | None = None
        self._bu_out: dict[int, Out] = {}
        self._resync = False
        # keys whose latest change the peer acknowledged, appended while not None (O(1)
        # per acknowledged record)
        self.acked: list[Key] | None = None
        # the ``waiters`` of changes the peer acknowledged (or superseded with a newer
        # version), appended while not None: the reply gate drains it after each input
        self.released: list[list[Any]] | None = None
        self.lag_samples: list[float] = []

    @property
    def config(self) -> SyncConfig:
        return self._config

    @config.setter
    def config(self, config: SyncConfig) -> None:
        self._config = config
        self._limit = config.max_message - HEADER_LEN - HHAE_LEN  # record bytes per BU
        self._most = self._limit // RECORD_LEN + 1  # more records than a BU can hold
        self._max_pending = config.max_pending
        self._flush_delay = config.flush_delay

    # -- views --

    @property
    def pending(self) -> int:
        return len(self.latest)

    def is_pending(self, key: Key) -> bool:
        return key in self.latest

    def own(self, key: Key) -> Change | None:
        """Our change to ``key`` that the peer has not acknowledged yet."""
        return self.latest.get(key)

    @property
    def has_queue(self) -> bool:
        return bool(self._queue)

    # -- inputs --

    def enqueue(self, ch: Change, now: float, window: int, actions: list[SyncAction]) -> None:
        key = ch.key
        latest = self.latest
        old = latest.get(key)
        if old is None:
            if len(latest) >= self._max_pending:
                # bounded queue: drop what the peer has not got and make it download again
                self.counters.QueueOverflows += 1
                latest.clear()
                self._queue.clear()
                self._queue_bytes = 0
                self._taken = 0
                self._resync = True
        elif old.waiters is not None:
            # what waited for the older version waits for this one
            if ch.waiters is None:
                ch.waiters = old.waiters
            else:
                ch.waiters += old.waiters
            old.waiters = None
        latest[key] = ch
        queue = self._queue
        if key not in queue:
            nai = ch.binding.nai
            self._queue_bytes += RECORD_LEN + (len(nai) if nai else 0)
        queue[key] = ch
        if self._queue_bytes >= self._limit:
            self.flush(now, window, actions, full_only=True)
        elif self.flush_at is None:
            self.flush_at = now + self._flush_delay

    def superseded(self, key: Key) -> None:
        """The peer has a newer version of ``key`` than our unacknowledged change: do not
        send ours (the peer has the binding, so a reply waiting for it may go)."""
        ch = self.latest.pop(key)
        if self._queue.pop(key, None) is not None:
            self._queue_bytes -= _queued_size(ch.binding)
        if self.acked is not None:
            self.acked.append(key)
        if ch.waiters is not None and self.released is not None:
            self.released.append(ch.waiters)
            ch.waiters = None

    def flush(
        self, now: float, window: int, actions: list[SyncAction], full_only: bool = False
    ) -> None:
        """Send queued changes as BUs; ``full_only``: only BUs that are full.

        Each BU's records are packed in one call (:meth:`Channel.pack_fitting`) from the next
        ``_most`` changes of the queue, more than a BU can hold: the first record that does
        not fit starts the next BU."""
        queue = self._queue
        bu_out = self._bu_out
        if not queue or len(bu_out) >= window:
            return self._flushed(now, window)
        limit = self._limit
        most = self._most
        pack = self.channel.pack_fitting
        n = len(queue)
        changes_in = iter(queue.values())
        offered = list(islice(changes_in, most))
        taken = 0
        while offered:
            body, k = pack(
                [ch.binding for ch in offered], now, [ch.rflags for ch in offered], limit
            )
            full = k < len(offered) or len(body) >= limit
            if full_only and not full:
                break
            changes = offered[:k]
            # P§5.4: the BU's D flag says that every record is a deletion
            all_delete = all(ch.rflags & REC_DELETE for ch in changes)
            self._send_bu(body, changes, all_delete, now, actions)
            taken += k
            if taken < n:  # (an emptied queue's estimate is reset by _flushed)
                self._queue_bytes -= sum([_queued_size(ch.binding) for ch in changes])
            if len(bu_out) >= window or (full_only and self._queue_bytes < limit):
                break
            offered = offered[k:]
            offered += islice(changes_in, most - len(offered))
        if taken == n:
            queue.clear()
        elif taken:
            it = iter(queue)
            for key in [next(it) for _ in range(taken)]:
                del queue[key]
            # keys deleted from the front of a dict leave holes that the next pass skips:
            # copy the queue once they outnumber the keys left (amortised O(1) per key)
            self._taken += taken
            if self._taken > len(queue):
                self._queue = dict(queue)
                self._taken = 0
        return self._flushed(now, window)

    def _send_bu(
        self,
        body: bytes,
        changes: list[Change],
        all_delete: bool,
        now: float,
        actions: list[SyncAction],
    ) -> None:
        flags = (FLAG_DELETE if all_delete else 0) | (FLAG_RESYNC if self._resync else 0)
        self._resync = False
        out = Out(MsgKind.BU, self.channel.next_seq(), flags, len(changes), body, None, changes)
        self._bu_out[out.seq] = out
        c = self.counters
        c.SentBUs += 1
        c.TotalSentBUs += 1
        self.channel.transmit(out, now, actions)

    def _flushed(self, now: float, window: int) -> None:
        if not self._queue:
            self._queue_bytes = 0
            self._taken = 0
            self.flush_at = None
        elif len(self._bu_out) < window and self.flush_at is None:
            self.flush_at = now + self._flush_delay
        # else: the window is full, the next ack flushes

    def match_ack(self, m: SyncMessage) -> Out | None:
        """The BU a BU Ack acknowledges, or None (counted as dropped)."""
        out = self._bu_out.get(m.seq)
        if out is None or not self.channel.ack_matches(out, m):
            self.counters.DroppedBUAcks += 1
            return None
        return out

    def acknowledged(self, out: Out, now: float) -> None:
        """The peer has every change of ``out`` (unless superseded meanwhile)."""
        out.alive = False
        del self._bu_out[out.seq]
        latest = self.latest
        assert out.changes is not None
        lag = self.lag_samples if self.config.track_lag else None
        acked = self.acked
        released = self.released
        for ch in out.changes:
            key = ch.key
            if latest.get(key) is ch:
                del latest[key]
                if acked is not None:
                    acked.append(key)
                if ch.waiters is not None:
                    if released is not None:
                        released.append(ch.waiters)
                    ch.waiters = None
            if lag is not None:
                lag.append(now - ch.t)

    def failed(self, out: Out) -> None:
        """``out`` ran out of retries: its changes go back to the queue, unless superseded
        or acknowledged meanwhile."""
        self.counters.FailedBUs += 1
        out.alive = False
        del self._bu_out[out.seq]
        assert out.changes is not None
        latest, queue = self.latest, self._queue
        for ch in out.changes:
            key = ch.key
            if latest.get(key) is ch and key not in queue:
                queue[key] = ch
                self._queue_bytes += _queued_size(ch.binding)


__all__ = ["BuSender"]
