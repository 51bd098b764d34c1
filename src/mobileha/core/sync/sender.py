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

from collections import deque

from mobileha.core.binding import Binding
from mobileha.core.sync.base import Counters, Key, SyncAction, SyncConfig
from mobileha.core.sync.channel import Change, Channel, Out
from mobileha.wire.sync import (
    FLAG_DELETE,
    FLAG_RESYNC,
    HEADER_LEN,
    HHAE_LEN,
    REC_DELETE,
    REC_DYNAMIC,
    RECORD_LEN,
    MsgKind,
    SyncMessage,
)


def _queued_size(b: Binding) -> int:
    return RECORD_LEN + (len(b.nai) if b.nai else 0)


class BuSender:
    """The BU queue, batching, window and acknowledgements of one sync peer."""

    def __init__(self, config: SyncConfig, counters: Counters, channel: Channel) -> None:
        self.config = config
        self.counters = counters
        self.channel = channel
        self.latest: dict[Key, Change] = {}  # our changes not yet acknowledged (by key)
        self._queue: dict[Key, Change] = {}  # ... not yet in a BU
        self._queue_order: deque[Key] = deque()
        self._queue_bytes = 0
        self.flush_at: float | None = None
        self._bu_out: dict[int, Out] = {}
        self._resync = False
        # keys whose latest change the peer acknowledged, appended while not None (the
        # reply gate drains it after each input; O(1) per acknowledged record)
        self.acked: list[Key] | None = None
        self.lag_samples: list[float] = []

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
        b = ch.binding
        key = (b.home_addr, b.care_of)
        latest = self.latest
        if key not in latest and len(latest) >= self.config.max_pending:
            # bounded queue: drop what the peer has not got and make it download again
            self.counters.QueueOverflows += 1
            latest.clear()
            self._queue.clear()
            self._queue_order.clear()
            self._queue_bytes = 0
            self._resync = True
        latest[key] = ch
        queue = self._queue
        if key not in queue:
            self._queue_order.append(key)
            self._queue_bytes += _queued_size(b)
        queue[key] = ch
        if self._queue_bytes >= self.config.max_message - HEADER_LEN - HHAE_LEN:
            self.flush(now, window, actions, full_only=True)
        elif self.flush_at is None:
            self.flush_at = now + self.config.flush_delay

    def superseded(self, key: Key) -> None:
        """The peer has a newer version of ``key`` than our unacknowledged change: do not
        send ours (the peer has the binding, so a reply waiting for it may go)."""
        del self.latest[key]
        self._queue.pop(key, None)
        if self.acked is not None:
            self.acked.append(key)

    def flush(
        self, now: float, window: int, actions: list[SyncAction], full_only: bool = False
    ) -> None:
        """Send queued changes as BUs; ``full_only``: only BUs that are full."""
        cfg = self.config
        queue = self._queue
        order = self._queue_order
        limit = cfg.max_message - HEADER_LEN - HHAE_LEN
        c = self.counters
        pack = self.channel.pack
        while queue and len(self._bu_out) < window:
            if full_only and self._queue_bytes < limit:
                break
            parts: list[bytes] = []
            changes: list[tuple[Key, Change]] = []
            items: list[tuple[Binding, int]] = []
            size = 0
            all_delete = True
            while order:
                key = order[0]
                ch = queue.get(key)
                if ch is None:
                    order.popleft()
                    continue
                rflags = (REC_DELETE if ch.delete else 0) | (REC_DYNAMIC if ch.dynamic else 0)
                rec = pack(ch.binding, now, rflags)
                if parts and size + len(rec) > limit:
                    break
                order.popleft()
                del queue[key]
                self._queue_bytes -= _queued_size(ch.binding)
                parts.append(rec)
                changes.append((key, ch))
                items.append((ch.binding, rflags))
                size += len(rec)
                all_delete = all_delete and ch.delete
            if not parts:
                break
            flags = (FLAG_DELETE if all_delete else 0) | (FLAG_RESYNC if self._resync else 0)
            self._resync = False
            out = Out(MsgKind.BU, self.channel.next_seq(), flags, len(parts), b"".join(parts))
            out.changes = changes
            out.items = items
            self._bu_out[out.seq] = out
            c.SentBUs += 1
            c.TotalSentBUs += 1
            self.channel.transmit(out, now, actions)
        if not queue:
            self._queue_bytes = 0
            self.flush_at = None
        elif len(self._bu_out) < window and self.flush_at is None:
            self.flush_at = now + cfg.flush_delay
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
        for key, ch in out.changes:
            if latest.get(key) is ch:
                del latest[key]
                if acked is not None:
                    acked.append(key)
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
        for key, ch in out.changes:
            if latest.get(key) is ch and key not in queue:
                queue[key] = ch
                self._queue_order.append(key)
                self._queue_bytes += _queued_size(ch.binding)


__all__ = ["BuSender"]
