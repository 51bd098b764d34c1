"""The sync peer: binding sync with one peer HA for one HA address (P§5.1, P§5.4).

One ``SyncPeer`` runs on each home agent of a redundancy pair, for one HA address (the HSRP
virtual address; load sharing with two groups uses one ``SyncPeer`` per group, the cluster
coordinator demultiplexes on the header's HA address). It speaks the core vocabulary:
:meth:`SyncPeer.receive_datagram`, :meth:`SyncPeer.handle_timer`, :meth:`SyncPeer.get_timer`,
plus the inputs of its home agent (:meth:`~SyncPeer.binding_changed`,
:meth:`~SyncPeer.binding_deleted`) and of HSRP (:meth:`~SyncPeer.role_changed`,
:meth:`~SyncPeer.peer_down`). The work is split by concern:

* :mod:`~mobileha.core.sync.sender`: our changes as BUs (queue, batching, window);
* :mod:`~mobileha.core.sync.bulk`: BI Request / Replies / Acks, both directions;
* :mod:`~mobileha.core.sync.merge`: the peer's records, newest wins, tombstones;
* :mod:`~mobileha.core.sync.channel`: Identifications, retransmission, acks;
* :mod:`~mobileha.core.sync.states`: the state transitions, as a table.

Sending side (the active HA; both HAs in peer mode): :meth:`binding_changed` /
:meth:`binding_deleted` for every accepted registration, re-registration, deregistration,
expiry and replacement (a non-S registration that replaces a binding to another care-of
address must report the replaced binding as deleted: the peer applies records per (home
address, care-of address) key, exactly).

Bulk download: :meth:`role_changed` to STANDBY (or :meth:`start_download` at start-up with
an active peer) sends a BI Request. :attr:`ready` is False while such a download runs: it
gates the HSRP group (``set_ready``), so the standby neither preempts nor takes over from a
live active before it has the whole table; a :class:`ReadyChanged` action is returned
whenever it flips. If the peer is lost during the download (no answer, or
:meth:`peer_down` from HSRP) the download is abandoned and ``ready`` is True again: a
partial table beats no home agent at all; it restarts when the peer is heard again.

Split brain: :meth:`reconcile` exchanges both tables (a BI Request with the exchange flag
makes the peer request ours as well); each side merges by Identification, newest wins.
Changes made while the link was cut stay in the sender's queue and flow when it heals.

Security: every message carries the HHAE (SPI and authenticator of the peer SA) and an
Identification (:mod:`~mobileha.core.sync.channel`). Messages failing the HHAE are dropped
and counted (SecViolations); a replayed or stale Identification is answered with an ack
carrying 133 (a BI Request with a BI Reply Ack) and counted.

Counters are named after CISCO-MOBILE-IP-MIB ``cmiHaRedun*`` (P§5.1); extra diagnostic
counters use other names.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Final

from mobileha.core.actions import Addr
from mobileha.core.binding import Binding
from mobileha.core.security import MobilitySA
from mobileha.core.sync.base import (
    Counters,
    Key,
    Mode,
    ReadyChanged,
    Role,
    SyncAction,
    SyncConfig,
    SyncInput,
    SyncState,
    SyncStateChanged,
)
from mobileha.core.sync.bulk import Download, Transfer
from mobileha.core.sync.channel import Change, Channel, Out
from mobileha.core.sync.merge import Merger
from mobileha.core.sync.records import decode_bound, sa_secret
from mobileha.core.sync.sender import BuSender
from mobileha.core.sync.states import QUIET_ON_HEARD, Effect, transition
from mobileha.wire import DecodeError
from mobileha.wire.sync import (
    ACK_ID_MISMATCH,
    ACK_OK,
    FLAG_DELETE,
    FLAG_EXCHANGE,
    FLAG_RESYNC,
    REC_DYNAMIC,
    MsgKind,
    SyncMessage,
)

# an enum member as a module global for the per-registration path (a class attribute lookup
# of an Enum member costs ~130 ns on Python 3.11)
_PEER_LOST: Final = SyncState.PEER_LOST


class SyncPeer:
    """Binding sync with one peer HA for one HA address (module docstring)."""

    def __init__(
        self,
        config: SyncConfig,
        lookup: Callable[[Key], Binding | None],
        iterate: Callable[[], Iterable[Binding]],
        *,
        unix_offset: float = 0.0,
        dynamic_of: Callable[[Binding], bool] | None = None,
        dynamic_flags: Callable[[list[Binding]], list[int]] | None = None,
        nonce_of: Callable[[Binding], int | None] | None = None,
        sa_of: Callable[[Binding], MobilitySA | None] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        now: float = 0.0,
    ) -> None:
        """``lookup(key)``: our table's binding for (home, care-of), or None.

        ``iterate()``: a lazy iterable over our table for bulk transfers; it must tolerate
        changes to the table between two ``next()`` calls (bindings changed meanwhile are
        also sent as BUs, so it need not yield those). ``unix_offset``: Unix time minus
        ``now`` (for the NTP timestamp Identifications). ``dynamic_of(binding)``: was its
        home address allocated from the pool ([P] REC_DYNAMIC; None: no binding's was).
        ``dynamic_flags(bindings)``: REC_DYNAMIC or 0 for each binding of a bulk transfer's
        batch, as ``dynamic_of`` says (default: ``dynamic_of`` of each).
        ``nonce_of(binding)``: the replay
        nonce the home agent issued last to that binding's MN, or None; sent in the record
        ([P] REC_NONCE) and returned in :class:`ApplyBindings` on the receiving side.
        ``sa_of(binding)``: the MN-HA SA the home agent got from AAA for that binding's MN,
        or None; sent in the record with its key hidden ([P] REC_SA,
        :func:`~mobileha.core.sync.records.seal_sa`; ``random_bytes`` seeds the salts) and
        returned, revealed, in :class:`ApplyBindings` on the receiving side.
        """
        self.config = config
        self.counters = c = Counters()
        self._iterate = iterate
        self._dynamic_of = dynamic_of
        if dynamic_flags is None and dynamic_of is not None:
            is_dynamic = dynamic_of

            def dynamic_flags(bs: list[Binding]) -> list[int]:
                return [REC_DYNAMIC if is_dynamic(b) else 0 for b in bs]

        self._dynamic_flags = dynamic_flags
        secret = sa_secret(config.authenticator.key)
        self.channel = Channel(
            config, c, unix_offset=unix_offset, nonce_of=nonce_of, now=now,
            sa_of=sa_of, sa_secret=secret, random_bytes=random_bytes,
        )  # fmt: skip
        self.sender = BuSender(config, c, self.channel)
        self.merge = Merger(config, c, self.sender, lookup, nonce_of, secret)
        self.state = SyncState.IDLE
        self.role = Role.OTHER
        # bulk: our download (we asked), the transfer to the peer (it asked)
        self._dl: Download | None = None
        self._dl_restart_at: float | None = None
        self._need_download = False  # a download that gates HSRP is owed
        self.incomplete_records = 0  # see peer_down
        self._done_txn: int | None = None
        self._xfer: Transfer | None = None
        self._served: tuple[int, float] | None = None  # last completed transfer, when
        self._last_heard = now
        self._heard_any = False  # for `show redundancy`: "last heard never"
        # (duration s, records applied) of the last completed bulk download, for the view
        self.last_download: tuple[float, int] | None = None
        handlers: dict[MsgKind, Callable[[SyncMessage, float, list[SyncAction]], None]] = {
            MsgKind.BU: self._rx_bu,
            MsgKind.BU_ACK: self._rx_bu_ack,
            MsgKind.BI_REQUEST: self._rx_bi_request,
            MsgKind.BI_REPLY: self._rx_bi_reply,
            MsgKind.BI_ACK: self._rx_bi_ack,
        }
        # indexed by the kind's value (0..4): no hash of an Enum per message
        self._handlers = tuple(handlers[MsgKind(i)] for i in range(len(MsgKind)))
        self._effects: dict[Effect, Callable[[float, list[SyncAction]], None]] = {
            Effect.RESUME: self._resume,
            Effect.ABANDON_DOWNLOAD: self._abandon_download,
            Effect.FORGET_DOWNLOAD: self._forget_download,
            Effect.ABORT_TRANSFER: self._abort_transfer,
            Effect.SCHEDULE_RESTART: self._schedule_restart,
        }

    # -- public views --

    @property
    def ready(self) -> bool:
        """False while a download that gates HSRP (standby / start-up) is running."""
        return not (self._dl is not None and self._dl.gated)

    @property
    def download_complete(self) -> bool:
        return self._dl is None and not self._need_download

    @property
    def transferring(self) -> bool:
        """Are we streaming our table to the peer?"""
        return self._xfer is not None

    @property
    def pending(self) -> int:
        """Our changes not yet acknowledged by the peer."""
        return self.sender.pending

    def is_pending(self, key: Key) -> bool:
        """Is our change to ``key`` (home, care-of) not yet acknowledged by the peer?"""
        return key in self.sender.latest

    @property
    def acked(self) -> list[Key] | None:
        """Keys whose latest change the peer acknowledged, appended while not None."""
        return self.sender.acked

    @acked.setter
    def acked(self, value: list[Key] | None) -> None:
        self.sender.acked = value

    @property
    def lag_samples(self) -> list[float]:
        return self.sender.lag_samples

    @property
    def last_heard(self) -> float:
        """When the last authenticated message from the peer arrived (-inf: never)."""
        return self._last_heard if self._heard_any else -math.inf

    def last_heard_ago(self, now: float) -> float | None:
        """Seconds since the last authenticated message from the peer (None: never)."""
        return now - self._last_heard if self._heard_any else None

    def reconfigure(self, config: SyncConfig) -> None:
        """Reload: new key, replay tolerance, retransmission timers, queue and message
        bounds, same peer. The peer, its port, the HA address, the mode and the type codes
        need a restart."""
        c = self.config
        for name in ("peer_addr", "port", "ha_addr", "mode", "types"):
            if getattr(config, name) != getattr(c, name):
                raise ValueError(f"sync {name} cannot change without a restart")
        self.config = config
        self.channel.config = config
        self.sender.config = config
        self.merge.config = config

    def view(self, now: float | None = None) -> dict[str, object]:
        last = self.last_download
        return {
            "peer_last_heard_s": None if now is None else self.last_heard_ago(now),
            "last_bulk_s": None if last is None else round(last[0], 3),
            "last_bulk_bindings": None if last is None else last[1],
            "peer": self.config.peer_addr,
            "ha_address": self.config.ha_addr,
            "mode": self.config.mode.value,
            "role": self.role.value,
            "state": self.state.value,
            "ready": self.ready,
            "pending": self.pending,
            "tombstones": self.merge.tombstones,
            "counters": self.counters.as_dict(),
        }

    # -- inputs --

    def binding_changed(
        self, binding: Binding, now: float, dynamic: bool | None = None
    ) -> list[SyncAction]:
        """An accepted registration or re-registration: send the binding to the peer."""
        actions: list[SyncAction] = []
        self.queue_change(binding, False, now, actions, dynamic)
        return actions

    def binding_deleted(
        self, binding: Binding, now: float, dynamic: bool | None = None
    ) -> list[SyncAction]:
        """A deregistration, expiry or replacement. ``binding.ident`` orders the deletion:
        for a deregistration pass the deregistration request's Identification."""
        actions: list[SyncAction] = []
        self.queue_change(binding, True, now, actions, dynamic)
        return actions

    def queue_change(
        self,
        binding: Binding,
        delete: bool,
        now: float,
        actions: list[SyncAction],
        dynamic: bool | None = None,
    ) -> Change:
        """:meth:`binding_changed` (or, ``delete``, :meth:`binding_deleted`) appending its
        actions (BUs that filled up) to ``actions``; the change queued, pending until the
        peer acknowledges it or a newer one (its ``waiters`` are handed over then)."""
        if dynamic is None:
            dynamic_of = self._dynamic_of
            dynamic = dynamic_of is not None and dynamic_of(binding)
        ch = Change(binding, delete, dynamic, now)
        if delete:
            # our own deletions are tombstones too: a bulk record the peer built before it
            # learnt of this deletion must not resurrect the binding here
            self.merge.tombstone(ch.key, binding.ident, now)
        window = 1 if self.state is _PEER_LOST else self.config.bu_window
        self.sender.enqueue(ch, now, window, actions)
        return ch

    def role_changed(self, role: Role, now: float) -> list[SyncAction]:
        """HSRP state change of this HA for the group."""
        ready = self.ready
        actions: list[SyncAction] = []
        self.role = role
        if role is Role.STANDBY:
            self._start_download(now, True, self.config.mode is Mode.PEER, actions)
        elif role is Role.ACTIVE:
            if self._dl is not None and self._dl.gated:
                # HSRP made us active anyway (the active is gone): keep what we have.
                self._input(SyncInput.TAKEN_OVER, now, actions)
            # an Active HA owes nobody a download: its table is the one the peer wants
            self._need_download = False
        self._ready_check(ready, actions)
        return actions

    def start_download(self, now: float) -> list[SyncAction]:
        """Request the peer's whole table, gating ``ready`` (start-up with an active peer)."""
        ready = self.ready
        actions: list[SyncAction] = []
        self._start_download(now, True, False, actions)
        self._ready_check(ready, actions)
        return actions

    def reconcile(self, now: float) -> list[SyncAction]:
        """After a split brain: exchange both tables, newest Identification wins."""
        actions: list[SyncAction] = []
        self._start_download(now, self._dl is not None and self._dl.gated, True, actions)
        return actions

    def peer_down(self, now: float) -> list[SyncAction]:
        """HSRP says the peer is gone (its Active timer expired): stop waiting for it.

        A gated download that was running is abandoned at once, so ``ready`` flips and
        HSRP may take over with what we have, as fast as HSRP itself, rather than after
        ``peer_timeout`` of silence. Counted in ``DownloadsIncompleteOnPeerLoss``;
        :attr:`incomplete_records` keeps how many records of that download had arrived."""
        ready = self.ready
        actions: list[SyncAction] = []
        dl = self._dl
        if dl is not None and dl.gated:
            self.counters.DownloadsIncompleteOnPeerLoss += 1
            self.incomplete_records = self.counters.AppliedRecords - dl.applied0
        self._input(SyncInput.PEER_LOST, now, actions)
        self._ready_check(ready, actions)
        return actions

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[SyncAction]:
        """A UDP datagram with a sync message type from ``src`` (to our ``dst``)."""
        actions: list[SyncAction] = []
        c = self.counters
        cfg = self.config
        if src[0] != cfg.peer_addr:
            c.UnknownPeer += 1
            return actions
        try:
            d = decode_bound(data, now, cfg.types)
        except DecodeError:
            c.DecodeErrors += 1
            return actions
        if d.spi != cfg.spi or not d.verify(cfg.authenticator):
            c.SecViolations += 1
            return actions
        m = d.message
        if m.ha_addr != cfg.ha_addr:
            c.WrongHaAddress += 1
            return actions
        ready = self.ready
        self._handlers[m.kind](m, now, actions)
        self._ready_check(ready, actions)
        return actions

    def handle_timer(self, now: float) -> list[SyncAction]:
        """Run everything due at ``now`` (retransmissions, batch flush, restarts)."""
        ready = self.ready
        actions: list[SyncAction] = []
        pop_due = self.channel.pop_due
        while (out := pop_due(now)) is not None:
            self._timeout(out, now, actions)
        sender = self.sender
        if sender.flush_at is not None and sender.flush_at <= now:
            sender.flush_at = None
            sender.flush(now, self._window(), actions)
        dl = self._dl
        # (compare exactly as get_timer() computes it: a float sum, or the timer spins)
        if (
            dl is not None
            and dl.req is None
            and now >= dl.progress_at + self.config.download_idle_timeout
        ):
            if self._last_heard <= dl.progress_at:
                # the peer went silent in the middle of the transfer: it is gone
                self._input(SyncInput.DOWNLOAD_STALLED, now, actions)
            else:
                self._start_download(now, dl.gated, dl.exchange, actions)  # stalled: again
        if self._dl_restart_at is not None and self._dl_restart_at <= now:
            self._dl_restart_at = None
            if self._need_download and self._dl is None and self.role is not Role.ACTIVE:
                self._start_download(now, True, False, actions)
        if self._dl is None:  # tombstones are kept while a download runs
            self.merge.prune(now)
        self._ready_check(ready, actions)
        return actions

    def get_timer(self) -> float | None:
        best = self.channel.get_timer()
        for t in (self.sender.flush_at, self._dl_restart_at):
            if t is not None and (best is None or t < best):
                best = t
        dl = self._dl
        if dl is not None and dl.req is None:
            t = dl.progress_at + self.config.download_idle_timeout
            if best is None or t < best:
                best = t
        return best

    # -- state transitions --

    def _input(self, inp: SyncInput, now: float, actions: list[SyncAction]) -> None:
        """Apply the transition table (``states.TRANSITIONS``) to ``inp``."""
        effects, new = transition(self.state, inp)
        old = self.state
        self.state = new
        if new is not old:
            dl = self._dl
            records = self.counters.AppliedRecords - dl.applied0 if dl is not None else 0
            actions.append(SyncStateChanged(self.config.ha_addr, old, new, inp, records))
        for effect in effects:
            self._effects[effect](now, actions)

    def _window(self) -> int:
        return 1 if self.state is _PEER_LOST else self.config.bu_window

    def _heard(self, now: float, actions: list[SyncAction]) -> None:
        self._last_heard = now
        self._heard_any = True
        if self.state not in QUIET_ON_HEARD:  # (IN_SYNC / DOWNLOADING, HEARD): no change
            self._input(SyncInput.HEARD, now, actions)

    def _resume(self, now: float, actions: list[SyncAction]) -> None:
        if self._need_download and self._dl is None and self.role is not Role.ACTIVE:
            self._start_download(now, True, False, actions)
        self.sender.flush(now, self._window(), actions)

    def _check_peer(self, now: float, actions: list[SyncAction]) -> None:
        if now - self._last_heard >= self.config.peer_timeout:
            self._input(SyncInput.PEER_LOST, now, actions)

    def _ready_check(self, before: bool, actions: list[SyncAction]) -> None:
        if self.ready != before:
            actions.append(ReadyChanged(self.ready))

    # -- retransmission outcomes --

    def _resend_after_133(
        self, out: Out, ack: SyncMessage, now: float, actions: list[SyncAction]
    ) -> None:
        """The peer refused ``out``'s Identification: adopt its clock, send again now."""
        self.counters.ReceivedIdMismatch += 1
        self.channel.resync_clock(ack.ident, now)
        self.channel.transmit(out, now, actions)

    def _timeout(self, out: Out, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        kind = out.kind
        if out.attempts <= self.config.max_retries:
            if kind is MsgKind.BU:
                c.TotalSentBUs += 1
            elif kind is MsgKind.BI_REPLY:
                c.TotalSentBIReps += 1
            else:
                c.TotalSentBIReqs += 1
            self.channel.transmit(out, now, actions)
            return
        # retries exhausted
        out.failures += 1
        if kind is MsgKind.BU:
            self.sender.failed(out)
            self._check_peer(now, actions)
            self.sender.flush(now, self._window(), actions)
        elif kind is MsgKind.BI_REPLY:
            c.FailedBIReps += 1
            self._check_peer(now, actions)
            if self._xfer is not None and out.alive:
                out.attempts = 0  # keep going while the peer answers anything
                c.TotalSentBIReps += 1
                self.channel.transmit(out, now, actions)
        else:  # BI Request
            c.FailedBIReqs += 1
            out.alive = False
            dl = self._dl
            if dl is not None and dl.req is out:
                self._input(SyncInput.REQUEST_FAILED, now, actions)

    # -- downloads (we asked) --

    def _start_download(
        self, now: float, gated: bool, exchange: bool, actions: list[SyncAction]
    ) -> None:
        if self._dl is not None:
            self._dl.end()
        dl = self._dl = Download(self.channel, self.counters, gated, exchange, now)
        self._need_download = False
        self._dl_restart_at = None
        self._input(SyncInput.DOWNLOAD_STARTED, now, actions)
        c = self.counters
        c.DownloadsStarted += 1
        c.SentBIReqs += 1
        c.TotalSentBIReqs += 1
        assert dl.req is not None
        self.channel.transmit(dl.req, now, actions)

    def _abandon_download(self, now: float, actions: list[SyncAction]) -> None:
        dl = self._dl
        if dl is None:
            return
        dl.end()
        self._need_download = self._need_download or dl.gated
        self._dl = None
        self.counters.DownloadsAbandoned += 1

    def _forget_download(self, now: float, actions: list[SyncAction]) -> None:
        self._need_download = False

    def _schedule_restart(self, now: float, actions: list[SyncAction]) -> None:
        cfg = self.config
        self._dl_restart_at = now + cfg.initial_timeout * (1 << cfg.max_retries)

    def _rx_bi_reply(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        ch = self.channel
        if not ch.ident_ok(m.ident, now):
            c.SecViolations += 1
            ch.send_ack(MsgKind.BI_ACK, m, ACK_ID_MISMATCH, m.chunk, now, actions)
            return
        c.ReceivedBIReps += 1
        dl = self._dl
        if dl is None or not dl.current(m):
            if m.seq == self._done_txn and m.chunk is not None:
                self._heard(now, actions)  # a late retransmission of a finished transfer
                c.SentBIAcks += 1
                ch.send_ack(MsgKind.BI_ACK, m, ACK_OK, m.chunk, now, actions)
                return
            c.DroppedBIReps += 1
            return
        self._heard(now, actions)
        if not dl.accept(m, ch, c, now, actions):
            return  # a duplicate chunk
        self.merge.apply(m.bound, now, False, actions)
        if dl.complete:
            self._done_txn = dl.txn
            self.last_download = (now - dl.started_at, c.AppliedRecords - dl.applied0)
            self._input(SyncInput.DOWNLOAD_DONE, now, actions)
            self._dl = None
            self._need_download = False
            c.DownloadsCompleted += 1
            self.merge.prune(now)

    # -- transfers (the peer asked) --

    def _rx_bi_request(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        if not self.channel.ident_ok(m.ident, now):
            c.SecViolations += 1
            self.channel.send_ack(MsgKind.BI_ACK, m, ACK_ID_MISMATCH, None, now, actions)
            return
        c.ReceivedBIReqs += 1
        self._heard(now, actions)
        if self._xfer is not None:
            if self._xfer.txn == m.seq:
                return  # a retransmitted request for the transfer under way
            self._abort_transfer(now, actions)
        served = self._served
        if served is not None and served[0] == m.seq and now - served[1] < self.config.peer_timeout:
            return  # a late duplicate of a request we have completely answered
        xfer = self._xfer = Transfer(m.seq, iter(self._iterate()))
        if m.flags & FLAG_EXCHANGE and self._dl is None:
            self._start_download(now, False, False, actions)
        xfer.pump(self.config, c, self.channel, self._dynamic_flags, now, actions)

    def _abort_transfer(self, now: float, actions: list[SyncAction]) -> None:
        xfer = self._xfer
        if xfer is None:
            return
        xfer.abort()
        self._xfer = None
        self.counters.TransfersAborted += 1

    def _rx_bi_ack(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        ch = self.channel
        c.ReceivedBIAcks += 1
        if m.chunk is None:  # 133 answer to our BI Request
            dl = self._dl
            req = dl.req if dl is not None else None
            if req is not None and m.seq == req.seq and ch.ack_matches(req, m):
                if m.code == ACK_ID_MISMATCH:
                    c.TotalSentBIReqs += 1
                    self._resend_after_133(req, m, now, actions)
                return
            c.DroppedBIAcks += 1
            return
        xfer = self._xfer
        out = xfer.out.get(m.chunk) if xfer is not None and xfer.txn == m.seq else None
        if xfer is None or out is None or not ch.ack_matches(out, m):
            c.DroppedBIAcks += 1
            return
        if m.code == ACK_ID_MISMATCH:
            c.TotalSentBIReps += 1
            self._resend_after_133(out, m, now, actions)
            return
        self._heard(now, actions)
        if xfer.acknowledged(m.chunk):
            self._xfer = None
            self._served = (xfer.txn, now)
            c.TransfersCompleted += 1
            return
        xfer.pump(self.config, c, ch, self._dynamic_flags, now, actions)

    # -- BUs --

    def _rx_bu(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        ch = self.channel
        if not ch.ident_ok(m.ident, now):
            c.SecViolations += 1
            c.SentBUAcks += 1
            ch.send_ack(MsgKind.BU_ACK, m, ACK_ID_MISMATCH, None, now, actions)
            return
        c.ReceivedBUs += 1
        self._heard(now, actions)
        self.merge.apply(m.bound, now, bool(m.flags & FLAG_DELETE), actions)
        c.SentBUAcks += 1
        ch.send_ack(MsgKind.BU_ACK, m, ACK_OK, None, now, actions)
        if m.flags & FLAG_RESYNC and self._dl is None:
            self._start_download(now, self.role is not Role.ACTIVE, False, actions)

    def _rx_bu_ack(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        self.counters.ReceivedBUAcks += 1
        sender = self.sender
        out = sender.match_ack(m)
        if out is None:
            return
        if m.code == ACK_ID_MISMATCH:
            self.counters.TotalSentBUs += 1
            self._resend_after_133(out, m, now, actions)
            return
        self._heard(now, actions)
        sender.acknowledged(out, now)
        if sender.has_queue:
            sender.flush(now, self._window(), actions)


__all__ = ["SyncPeer"]
