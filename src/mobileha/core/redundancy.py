"""HA-HA binding synchronisation (P§5.1, P§5.4): a sans-IO :class:`SyncPeer` for one HA pair.

One ``SyncPeer`` runs on each home agent of a redundancy pair, for one HA address (the
HSRP virtual address; load sharing with two groups uses one ``SyncPeer`` per group, the
node demultiplexes on the header's HA address). Inputs take ``now`` (monotonic seconds)
and return actions; :meth:`SyncPeer.next_deadline` says when to call :meth:`on_timer`.

Sending side (the active HA; both HAs in peer mode)
    :meth:`binding_changed` / :meth:`binding_deleted` for every accepted registration,
    re-registration, deregistration, expiry and replacement (a non-S registration that
    replaces a binding to another care-of address must report the replaced binding as
    deleted: the peer applies records per (home address, care-of address) key, exactly).
    Changes are coalesced per key, batched into BUs (< ``max_message`` bytes, flushed
    ``flush_delay`` after the first queued change), sent with at most ``bu_window`` BUs in
    flight and retransmitted with backoff (1 s, doubling, ``max_retries``). A BU that
    exhausts its retries counts as failed (cmiHaRedunFailedBUs) and its changes go back to
    the queue: nothing is dropped while the queue is within ``max_pending`` keys. On
    overflow the queue is dropped, counted, and the next BU carries the R flag (the peer
    then downloads the whole table again).

Receiving side
    Records are applied per key by Identification, newest wins: the table's binding, a
    tombstone of a deletion and our own not yet acknowledged change for that key are all
    compared. Tombstones are kept ``tombstone_ttl`` seconds and, while a bulk download is
    running, until it ends: an older bulk record never resurrects a deleted binding.
    The results are :class:`ApplyBinding` / :class:`DeleteBinding` actions that the home
    agent executes on its table, in order, without feeding them back as changes.
    [P] Replay nonces (``nonce_of``, record flag REC_NONCE): each record carries the nonce
    the home agent issued last to the MN (read when the record is packed, so it is the one
    of the latest reply) and :class:`ApplyBinding` returns it. A nonce MN's Identification
    does not grow (random high 32 bits, RFC 5944 §5.7), so a record whose Identification
    is not greater is still applied when its request was made with the nonce we hold for
    the MN (the next registration in the chain).

Bulk download
    :meth:`role_changed` to STANDBY (or :meth:`start_download` at start-up with an active
    peer) sends a BI Request; the peer streams BI Replies from a lazy iteration of its table
    (``iterate()``), ``bi_window`` chunks in flight, each acknowledged, L on the last one.
    :attr:`ready` is False while such a download runs: the node feeds it to the HSRP group
    (``set_ready``), so the standby neither preempts nor takes over from a live active
    before it has the whole table. A :class:`ReadyChanged` action is returned whenever it
    flips. If the peer is lost during the download (no answer, or :meth:`peer_down` from
    HSRP) the download is abandoned and ``ready`` is True again: a partial table beats no
    home agent at all; it restarts when the peer is heard again.

Split brain
    :meth:`reconcile` exchanges both tables (a BI Request with the exchange flag makes the
    peer request ours as well); each side merges by Identification, newest wins. Changes
    made while the link was cut stay in the sender's queue and flow when it heals.

Security
    Every message carries the HHAE (SPI and authenticator of the peer SA) and an
    Identification. Messages failing the HHAE are dropped and counted (SecViolations).
    [P] The Identification check is a replay window, not a strict "greater than the last":
    an Identification is accepted once, and only within ``replay_tolerance`` seconds of our
    clock (like IPsec's anti-replay window); a strict order would turn every benign
    reordering of two retransmitted BUs into a 133. A replayed or stale Identification is
    answered with an ack carrying 133 (a BI Request with a BI Reply Ack) and counted. Our
    own Identifications are NTP timestamps, strictly increasing per peer; acks copy the low
    32 bits of the acknowledged message. On a 133 ack the sender adopts the peer's clock
    (as a Mobile IP MN does) and retransmits at once.

Counters are named after CISCO-MOBILE-IP-MIB ``cmiHaRedun*`` (P§5.1); extra diagnostic
counters use other names.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from itertools import count as itercount
from socket import inet_aton
from typing import Final

from mobileha.core.actions import Addr, Send
from mobileha.core.binding import Binding, Encap
from mobileha.wire import DecodeError
from mobileha.wire.auth import NTP_EPOCH_OFFSET, Authenticator
from mobileha.wire.sync import (
    ACK_ID_MISMATCH,
    ACK_OK,
    CHUNK_EXT,
    DEFAULT_TYPES,
    FLAG_DELETE,
    FLAG_EXCHANGE,
    FLAG_LAST,
    FLAG_RESYNC,
    HEADER_LEN,
    HHAE_LEN,
    LIFETIME_INFINITE,
    NONCE,
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    RECORD,
    RECORD_LEN,
    BindingRecord,
    MsgKind,
    SyncMessage,
    SyncTypes,
    decode,
    encode_raw,
    record_gre_key,
)

Key = tuple[str, str]
_U32: Final = 0xFFFFFFFF
_ENCAPS: Final = {e.value: e for e in Encap}


# --- actions ------------------------------------------------------------------------


@dataclass(slots=True)
class ApplyBinding:
    """Install or replace exactly this binding (key = home, care-of) as a synced copy.

    No S-flag replacement of other care-of addresses (the peer reports those deletions),
    and no feedback into :meth:`SyncPeer.binding_changed`. ``dynamic``: the home address
    was allocated from the pool, mark it as allocated.
    """

    binding: Binding
    dynamic: bool = False
    nonce: int | None = None  # [P] the MN's replay nonce (REC_NONCE), restore it


@dataclass(slots=True)
class DeleteBinding:
    """Remove the binding with this key (its Identification is not newer than ``ident``)."""

    binding: Binding  # key, and the deleting record's Identification in ``ident``


@dataclass(frozen=True, slots=True)
class ReadyChanged:
    """The value the HSRP group's ``set_ready()`` input must now have."""

    ready: bool


SyncAction = Send | ApplyBinding | DeleteBinding | ReadyChanged


class SyncState(Enum):
    IDLE = "idle"  # no peer contact yet
    DOWNLOADING = "downloading"
    IN_SYNC = "in-sync"
    PEER_LOST = "peer-lost"


class Role(Enum):
    """The HSRP state of this HA for the group, as far as sync cares."""

    ACTIVE = "active"
    STANDBY = "standby"
    OTHER = "other"  # init, learn, listen, speak


class Mode(Enum):
    ACTIVE_STANDBY = "active-standby"  # physical home network
    PEER = "peer"  # virtual home network: whichever HA processes an RRQ sends the BU


@dataclass(slots=True)
class Counters:
    """Integer counters; ``as_dict()`` for the management API and ``show redundancy``."""

    # CISCO-MOBILE-IP-MIB cmiHaRedun*, 1-19 (P§5.1)
    SentBUs: int = 0
    FailedBUs: int = 0
    ReceivedBUAcks: int = 0
    TotalSentBUs: int = 0
    ReceivedBUs: int = 0
    SentBUAcks: int = 0
    SentBIReqs: int = 0
    FailedBIReqs: int = 0
    TotalSentBIReqs: int = 0
    ReceivedBIReps: int = 0
    DroppedBIReps: int = 0
    SentBIAcks: int = 0
    ReceivedBIReqs: int = 0
    SentBIReps: int = 0
    FailedBIReps: int = 0
    TotalSentBIReps: int = 0
    ReceivedBIAcks: int = 0
    DroppedBIAcks: int = 0
    SecViolations: int = 0
    # diagnostics (not in the MIB)
    DroppedBUAcks: int = 0
    ReceivedIdMismatch: int = 0
    DecodeErrors: int = 0
    UnknownPeer: int = 0
    WrongHaAddress: int = 0
    AppliedRecords: int = 0
    DeletedRecords: int = 0
    StaleRecords: int = 0
    QueueOverflows: int = 0
    DownloadsStarted: int = 0
    DownloadsCompleted: int = 0
    DownloadsAbandoned: int = 0
    TransfersCompleted: int = 0
    TransfersAborted: int = 0
    # HSRP said the peer is gone while our gated download ran: we became ready (and may
    # take over) with an incomplete table (issue 7: takeover as fast as HSRP)
    DownloadsIncompleteOnPeerLoss: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}

    def __getitem__(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


COUNTER_NAMES: Final = tuple(Counters.__dataclass_fields__)
MIB_COUNTER_NAMES: Final = COUNTER_NAMES[:19]


@dataclass(slots=True)
class SyncConfig:
    peer_addr: str  # the peer's real address
    ha_addr: str  # the HA address (HSRP VIP) whose bindings this pair synchronises
    spi: int
    authenticator: Authenticator
    port: int = 434
    src: Addr | None = None  # our source for Send (None: the adapter's default socket)
    mode: Mode = Mode.ACTIVE_STANDBY
    types: SyncTypes = DEFAULT_TYPES
    replay_tolerance: float = 7.0
    initial_timeout: float = 1.0
    max_retries: int = 3
    flush_delay: float = 0.003
    max_message: int = 1400
    bu_window: int = 64
    bi_window: int = 32
    max_pending: int = 1_000_000
    tombstone_ttl: float = 60.0
    peer_timeout: float = 15.0  # silence after which a failing peer is declared lost
    download_idle_timeout: float = 10.0  # no BI Reply progress: request again (or, when
    # nothing at all was heard from the peer meanwhile, abandon it: HSRP may take over)
    track_lag: bool = False  # record change -> ack lag samples (benchmarks)


# --- conversions --------------------------------------------------------------------


def remaining_lifetime(b: Binding, now: float) -> int:
    if b.lifetime >= LIFETIME_INFINITE or b.expires == math.inf:
        return LIFETIME_INFINITE
    return max(0, min(LIFETIME_INFINITE - 1, math.ceil(b.expires - now)))


def record_from_binding(
    b: Binding,
    now: float,
    *,
    delete: bool = False,
    dynamic: bool = False,
    nonce: int | None = None,
) -> BindingRecord:
    """The P§5.4 record of a binding: the expiry deadline becomes a remaining lifetime."""
    rec_flags = (REC_DELETE if delete else 0) | (REC_DYNAMIC if dynamic else 0)
    if b.gre_key is not None:
        rec_flags |= REC_GRE_KEY
    if nonce is not None:
        rec_flags |= REC_NONCE
    return BindingRecord(
        b.home_addr,
        b.care_of,
        b.src_addr or "0.0.0.0",
        b.ident,
        min(b.lifetime, LIFETIME_INFINITE),
        remaining_lifetime(b, now),
        b.flags & 0xFF,
        rec_flags,
        b.gre_key or 0,
        int(b.encap),
        b.nai,
        nonce=nonce,
    )


def binding_from_record(rec: BindingRecord, ha_addr: str, now: float) -> Binding:
    """A binding from a record: the remaining lifetime becomes a deadline on our clock."""
    if rec.remaining >= LIFETIME_INFINITE or rec.lifetime >= LIFETIME_INFINITE:
        expires = math.inf
    else:
        expires = now + rec.remaining
    return Binding(
        rec.home_addr,
        rec.care_of,
        ha_addr,
        rec.lifetime,
        expires,
        rec.ident,
        rec.reg_flags,
        _ENCAPS[rec.encap],
        record_gre_key(rec),
        rec.nai,
        "" if rec.src_addr == "0.0.0.0" else rec.src_addr,
    )


def _pack_binding(b: Binding, now: float, rec_flags: int, nonce: int | None = None) -> bytes:
    """Fast path of ``encode_record(record_from_binding(...))``."""
    nai = b.nai.encode() if b.nai else b""
    if nonce is not None:
        rec_flags |= REC_NONCE
        nai += NONCE.pack(nonce)
        nai_len = len(nai) - 4
    else:
        nai_len = len(nai)
    key = b.gre_key
    if key is not None:
        rec_flags |= REC_GRE_KEY
    lifetime = b.lifetime
    expires = b.expires
    if lifetime >= LIFETIME_INFINITE or expires == math.inf:
        lifetime = remaining = LIFETIME_INFINITE
    else:
        remaining = math.ceil(expires - now)
        if remaining < 0:
            remaining = 0
        elif remaining >= LIFETIME_INFINITE:
            remaining = LIFETIME_INFINITE - 1
    return (
        RECORD.pack(
            RECORD_LEN + len(nai),
            b.flags & 0xFF,
            rec_flags,
            inet_aton(b.home_addr),
            inet_aton(b.care_of),
            inet_aton(b.src_addr or "0.0.0.0"),
            b.ident,
            lifetime,
            remaining,
            key or 0,
            b.encap,
            nai_len,
        )
        + nai
    )


def _chained(ident: int, nonce: int | None) -> bool:
    """[P] Was the request with Identification ``ident`` made with ``nonce``? RFC 5944
    §5.7: a nonce MN puts the nonce of the HA's last reply in the high 32 bits of its next
    request. Its Identifications do not grow (the nonces are random), so this chain, not the
    order of Identifications, tells which of two of its registrations/deletions is newer."""
    return nonce is not None and (ident >> 32) == nonce


def _default_dynamic(b: Binding) -> bool:
    return bool(getattr(b, "dynamic", False))


# --- internal state -----------------------------------------------------------------


class _Change:
    __slots__ = ("binding", "delete", "dynamic", "t")

    def __init__(self, binding: Binding, delete: bool, dynamic: bool, t: float) -> None:
        self.binding = binding
        self.delete = delete
        self.dynamic = dynamic
        self.t = t


class _Out:
    """A message we retransmit until it is acknowledged."""

    __slots__ = (
        "alive",
        "attempts",
        "body",
        "changes",
        "chunk",
        "count",
        "deadline",
        "failures",
        "flags",
        "items",
        "kind",
        "lows",
        "seq",
    )

    def __init__(
        self,
        kind: MsgKind,
        seq: int,
        flags: int,
        count: int,
        body: bytes,
        chunk: int | None = None,
        changes: list[tuple[Key, _Change]] | None = None,
    ) -> None:
        self.kind = kind
        self.seq = seq
        self.flags = flags
        self.count = count
        self.body = body
        self.chunk = chunk
        self.changes = changes
        self.items: list[tuple[Binding, int]] | None = None  # re-packed on retransmission
        self.attempts = 0
        self.failures = 0
        self.deadline = 0.0
        self.lows: list[int] = []
        self.alive = True


class _Download:
    """Our bulk download from the peer (we sent the BI Request)."""

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

    def __init__(self, txn: int, gated: bool, exchange: bool, now: float) -> None:
        self.txn = txn
        self.started_at = now
        self.applied0 = 0  # AppliedRecords when the download started
        self.gated = gated
        self.exchange = exchange
        self.next = 0  # every chunk below this one has arrived
        self.ahead: set[int] = set()
        self.last: int | None = None
        self.progress_at = now
        self.req: _Out | None = None


_END: Final = object()


class _Transfer:
    """A bulk transfer we stream to the peer (it sent the BI Request)."""

    __slots__ = ("built_all", "iterator", "next_chunk", "out", "peek", "txn")

    def __init__(self, txn: int, iterator: Iterator[Binding]) -> None:
        self.txn = txn
        self.iterator = iterator
        self.next_chunk = 0
        self.out: dict[int, _Out] = {}
        self.peek: tuple[Binding, int, bytes, float] | None = None
        self.built_all = False


# --- the state machine --------------------------------------------------------------


class SyncPeer:
    """Binding sync with one peer HA for one HA address (module docstring)."""

    def __init__(
        self,
        config: SyncConfig,
        lookup: Callable[[Key], Binding | None],
        iterate: Callable[[], Iterable[Binding]],
        *,
        unix_offset: float = 0.0,
        dynamic_of: Callable[[Binding], bool] = _default_dynamic,
        nonce_of: Callable[[Binding], int | None] | None = None,
        now: float = 0.0,
    ) -> None:
        """``lookup(key)``: our table's binding for (home, care-of), or None.

        ``iterate()``: a lazy iterable over our table for bulk transfers; it must tolerate
        changes to the table between two ``next()`` calls (bindings changed meanwhile are
        also sent as BUs, so it need not yield those). ``unix_offset``: Unix time minus
        ``now`` (for the NTP timestamp Identifications). ``nonce_of(binding)``: the replay
        nonce the home agent issued last to that binding's MN, or None; sent in the record
        ([P] REC_NONCE) and returned in :class:`ApplyBinding` on the receiving side.
        """
        self.config = config
        self.counters = Counters()
        self._lookup = lookup
        self._iterate = iterate
        self._dynamic_of = dynamic_of
        self._nonce_of = nonce_of
        self._unix_offset = unix_offset
        self._clock_adjust = 0.0
        self._dst: Addr = (config.peer_addr, config.port)
        self._ha_packed = inet_aton(config.ha_addr)
        self._types = config.types
        self.state = SyncState.IDLE
        self.role = Role.OTHER
        # sending side
        self._latest: dict[Key, _Change] = {}  # our changes not yet acknowledged
        self._queue: dict[Key, _Change] = {}  # ... not yet in a BU
        self._queue_order: deque[Key] = deque()
        self._queue_bytes = 0
        self._flush_at: float | None = None
        self._bu_out: dict[int, _Out] = {}
        self._resync = False
        # sequence numbers start from the clock so that a restarted peer does not reuse
        # the transaction numbers of its previous life
        self._seq = int((now + unix_offset) * 1000) & _U32
        # receiving side
        self._tombs: dict[Key, int] = {}
        # [P] the nonce issued with a deletion (nonce MNs): the MN's next registration
        # carries it in its high 32 bits, whatever the order of the Identifications
        self._tomb_nonces: dict[Key, int] = {}
        self._tomb_q: deque[tuple[float, Key, int]] = deque()
        self._seen: set[int] = set()
        self._seen_q: deque[int] = deque()
        self._dl: _Download | None = None
        self._dl_restart_at: float | None = None
        self._need_download = False
        self.incomplete_records = 0  # see peer_down
        self._done_txn: int | None = None
        self._xfer: _Transfer | None = None
        self._served: tuple[int, float] | None = None  # last completed transfer, when
        # timing
        self._timers: list[tuple[float, int, _Out]] = []
        self._tick = itercount()
        self._last_tx_ident = 0
        self._last_heard = now
        self._heard_any = False  # for `show redundancy`: "last heard never"
        # (duration s, records applied) of the last completed bulk download, for the view
        self.last_download: tuple[float, int] | None = None
        # keys whose latest change the peer acknowledged, appended while not None (the
        # node's reply gate drains it after each input; O(1) per acknowledged record)
        self.acked: list[Key] | None = None
        self.lag_samples: list[float] = []

    # -- public views --

    @property
    def ready(self) -> bool:
        """False while a download that gates HSRP (standby / start-up) is running."""
        return not (self._dl is not None and self._dl.gated)

    @property
    def download_complete(self) -> bool:
        return self._dl is None and not self._need_download

    @property
    def pending(self) -> int:
        """Our changes not yet acknowledged by the peer."""
        return len(self._latest)

    def is_pending(self, key: Key) -> bool:
        """Is our change to ``key`` (home, care-of) not yet acknowledged by the peer?"""
        return key in self._latest

    def last_heard_ago(self, now: float) -> float | None:
        """Seconds since the last authenticated message from the peer (None: never)."""
        return now - self._last_heard if self._heard_any else None

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
            "tombstones": len(self._tombs),
            "counters": self.counters.as_dict(),
        }

    # -- inputs --

    def binding_changed(
        self, binding: Binding, now: float, dynamic: bool | None = None
    ) -> list[SyncAction]:
        """An accepted registration or re-registration: send the binding to the peer."""
        if dynamic is None:
            dynamic = self._dynamic_of(binding)
        actions: list[SyncAction] = []
        self._enqueue(_Change(binding, False, dynamic, now), now, actions)
        return actions

    def binding_deleted(
        self, binding: Binding, now: float, dynamic: bool | None = None
    ) -> list[SyncAction]:
        """A deregistration, expiry or replacement. ``binding.ident`` orders the deletion:
        for a deregistration pass the deregistration request's Identification."""
        if dynamic is None:
            dynamic = self._dynamic_of(binding)
        actions: list[SyncAction] = []
        # our own deletions are tombstones too: a bulk record the peer built before it
        # learnt of this deletion must not resurrect the binding here
        self._tombstone((binding.home_addr, binding.care_of), binding.ident, now)
        self._enqueue(_Change(binding, True, dynamic, now), now, actions)
        return actions

    def role_changed(self, role: Role, now: float) -> list[SyncAction]:
        """HSRP state change of this HA for the group."""
        ready = self.ready
        actions: list[SyncAction] = []
        self.role = role
        if role is Role.STANDBY:
            self._start_download(now, True, self.config.mode is Mode.PEER, actions)
        elif role is Role.ACTIVE and self._dl is not None and self._dl.gated:
            # HSRP made us active anyway (the active is gone): keep what we have.
            self._abandon_download(now)
            self._need_download = False
            self.state = SyncState.PEER_LOST
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
        HSRP may take over with what we have, as fast as HSRP itself (without this the
        standby waited ``peer_timeout`` of silence). Counted in
        ``DownloadsIncompleteOnPeerLoss``; :attr:`incomplete_records` keeps how many
        records of that download had arrived (for the adapter's log)."""
        ready = self.ready
        actions: list[SyncAction] = []
        dl = self._dl
        if dl is not None and dl.gated:
            self.counters.DownloadsIncompleteOnPeerLoss += 1
            self.incomplete_records = self.counters.AppliedRecords - dl.applied0
        self._peer_lost(now)
        self._ready_check(ready, actions)
        return actions

    def handle_datagram(self, data: bytes, src: Addr, now: float) -> list[SyncAction]:
        """A UDP datagram with a sync message type from ``src``."""
        actions: list[SyncAction] = []
        c = self.counters
        if src[0] != self.config.peer_addr:
            c.UnknownPeer += 1
            return actions
        try:
            d = decode(data, self._types)
        except DecodeError:
            c.DecodeErrors += 1
            return actions
        if d.spi != self.config.spi or not d.verify(self.config.authenticator):
            c.SecViolations += 1
            return actions
        m = d.message
        if m.ha_addr != self.config.ha_addr:
            c.WrongHaAddress += 1
            return actions
        ready = self.ready
        kind = m.kind
        if kind is MsgKind.BU:
            self._rx_bu(m, now, actions)
        elif kind is MsgKind.BU_ACK:
            self._rx_bu_ack(m, now, actions)
        elif kind is MsgKind.BI_REPLY:
            self._rx_bi_reply(m, now, actions)
        elif kind is MsgKind.BI_ACK:
            self._rx_bi_ack(m, now, actions)
        else:
            self._rx_bi_request(m, now, actions)
        self._ready_check(ready, actions)
        return actions

    def on_timer(self, now: float) -> list[SyncAction]:
        """Run everything due at ``now`` (retransmissions, batch flush, restarts)."""
        ready = self.ready
        actions: list[SyncAction] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, out = heapq.heappop(timers)
            if out.alive and out.deadline == deadline:
                self._timeout(out, now, actions)
        if self._flush_at is not None and self._flush_at <= now:
            self._flush_at = None
            self._flush(now, actions)
        dl = self._dl
        # (compare exactly as next_deadline() computes it: a float sum, or the timer spins)
        if dl is not None and dl.req is None and now >= dl.progress_at + self._idle_timeout():
            if self._last_heard <= dl.progress_at:
                # the peer went silent in the middle of the transfer: it is gone
                self._peer_lost(now)
                self._dl_restart_at = now + self.config.initial_timeout * (
                    1 << self.config.max_retries
                )
            else:
                self._start_download(now, dl.gated, dl.exchange, actions)  # stalled: again
        if self._dl_restart_at is not None and self._dl_restart_at <= now:
            self._dl_restart_at = None
            if self._need_download and self._dl is None:
                self._start_download(now, True, False, actions)
        self._prune_tombstones(now)
        self._ready_check(ready, actions)
        return actions

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and (not timers[0][2].alive or timers[0][2].deadline != timers[0][0]):
            heapq.heappop(timers)
        best = timers[0][0] if timers else None
        for t in (self._flush_at, self._dl_restart_at):
            if t is not None and (best is None or t < best):
                best = t
        dl = self._dl
        if dl is not None and dl.req is None:
            t = dl.progress_at + self._idle_timeout()
            if best is None or t < best:
                best = t
        return best

    # -- helpers: identification, sending --

    def _idle_timeout(self) -> float:
        return self.config.download_idle_timeout

    def _agreed_time(self, now: float) -> float:
        return now + self._unix_offset + self._clock_adjust + NTP_EPOCH_OFFSET

    def _new_ident(self, now: float) -> int:
        t = self._agreed_time(now)
        secs = int(t)
        ident = ((secs & _U32) << 32) | int((t - secs) * 4294967296.0)
        if ident <= self._last_tx_ident:
            ident = self._last_tx_ident + 1
        self._last_tx_ident = ident
        return ident

    def _ident_ok(self, ident: int, now: float) -> bool:
        our = int(self._agreed_time(now)) & _U32
        tol = self.config.replay_tolerance
        if abs((ident >> 32) - our) > tol:
            return False
        seen = self._seen
        if ident in seen:
            return False
        seen.add(ident)
        q = self._seen_q
        q.append(ident)
        floor = (our - int(tol) - 2) << 32
        while q and q[0] < floor:
            seen.discard(q.popleft())
        return True

    def _resync_clock(self, ack_ident: int, now: float) -> None:
        """A 133 ack: adopt the peer's clock for our Identifications (RFC 5944 §5.7 style)."""
        peer_secs = ack_ident >> 32
        our_secs = int(self._agreed_time(now)) & _U32
        if abs(peer_secs - our_secs) > 1:
            self._clock_adjust += peer_secs - our_secs
            self._last_tx_ident = 0

    def _transmit(self, out: _Out, now: float, actions: list[SyncAction]) -> None:
        cfg = self.config
        if out.lows and out.items is not None:
            # a retransmission: the remaining lifetimes are those of now (P§5.4 "at send time")
            body = b"".join([self._pack(b, now, f) for b, f in out.items])
            if out.chunk is not None:
                body += CHUNK_EXT.pack(self._types.chunk, 4, out.chunk)
            out.body = body
        ident = self._new_ident(now)
        lows = out.lows
        lows.append(ident & _U32)
        if len(lows) > 8:
            del lows[0]
        actions.append(
            Send(
                self._dst,
                encode_raw(
                    self._types.code(out.kind),
                    out.flags,
                    out.count,
                    out.seq,
                    self._ha_packed,
                    ident,
                    out.body,
                    cfg.spi,
                    cfg.authenticator,
                    self._types.hhae,
                ),
                cfg.src,
            )
        )
        out.deadline = now + cfg.initial_timeout * (1 << out.attempts)
        out.attempts += 1
        heapq.heappush(self._timers, (out.deadline, next(self._tick), out))

    def _send_ack(
        self,
        kind: MsgKind,
        m: SyncMessage,
        code: int,
        chunk: int | None,
        now: float,
        actions: list[SyncAction],
    ) -> None:
        cfg = self.config
        ident = ((int(self._agreed_time(now)) & _U32) << 32) | (m.ident & _U32)
        body = b"" if chunk is None else CHUNK_EXT.pack(self._types.chunk, 4, chunk)
        actions.append(
            Send(
                self._dst,
                encode_raw(
                    self._types.code(kind),
                    code,
                    0,
                    m.seq,
                    self._ha_packed,
                    ident,
                    body,
                    cfg.spi,
                    cfg.authenticator,
                    self._types.hhae,
                ),
                cfg.src,
            )
        )

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & _U32
        return self._seq

    def _ack_matches(self, out: _Out | None, m: SyncMessage) -> bool:
        return out is not None and out.alive and (m.ident & _U32) in out.lows

    # -- state transitions --

    def _heard(self, now: float, actions: list[SyncAction]) -> None:
        self._last_heard = now
        self._heard_any = True
        if self.state is SyncState.PEER_LOST or self.state is SyncState.IDLE:
            self.state = SyncState.DOWNLOADING if self._dl is not None else SyncState.IN_SYNC
            if self._need_download and self._dl is None and self.role is not Role.ACTIVE:
                self._start_download(now, True, False, actions)
            self._flush(now, actions)

    def _peer_lost(self, now: float) -> None:
        if self._dl is not None:
            self._abandon_download(now)
        if self._xfer is not None:
            self._abort_transfer()
        self.state = SyncState.PEER_LOST

    def _check_peer(self, now: float) -> None:
        if now - self._last_heard >= self.config.peer_timeout:
            self._peer_lost(now)

    def _ready_check(self, before: bool, actions: list[SyncAction]) -> None:
        if self.ready != before:
            actions.append(ReadyChanged(self.ready))

    # -- sending BUs --

    def _pack(self, b: Binding, now: float, rec_flags: int) -> bytes:
        """The record of ``b`` with the MN's current replay nonce (read at packing time,
        so a retransmission carries the nonce of the latest reply)."""
        nonce_of = self._nonce_of
        return _pack_binding(b, now, rec_flags, nonce_of(b) if nonce_of is not None else None)

    def _enqueue(self, ch: _Change, now: float, actions: list[SyncAction]) -> None:
        b = ch.binding
        key = (b.home_addr, b.care_of)
        latest = self._latest
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
            self._queue_bytes += RECORD_LEN + (len(b.nai) if b.nai else 0)
        queue[key] = ch
        if self._queue_bytes >= self.config.max_message - HEADER_LEN - HHAE_LEN:
            self._flush(now, actions, full_only=True)
        elif self._flush_at is None:
            self._flush_at = now + self.config.flush_delay

    def _flush(self, now: float, actions: list[SyncAction], full_only: bool = False) -> None:
        """Send queued changes as BUs; ``full_only``: only BUs that are full."""
        cfg = self.config
        window = 1 if self.state is SyncState.PEER_LOST else cfg.bu_window
        queue = self._queue
        order = self._queue_order
        limit = cfg.max_message - HEADER_LEN - HHAE_LEN
        c = self.counters
        while queue and len(self._bu_out) < window:
            if full_only and self._queue_bytes < limit:
                break
            parts: list[bytes] = []
            changes: list[tuple[Key, _Change]] = []
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
                rec = self._pack(ch.binding, now, rflags)
                if parts and size + len(rec) > limit:
                    break
                order.popleft()
                del queue[key]
                self._queue_bytes -= RECORD_LEN + (len(ch.binding.nai) if ch.binding.nai else 0)
                parts.append(rec)
                changes.append((key, ch))
                items.append((ch.binding, rflags))
                size += len(rec)
                all_delete = all_delete and ch.delete
            if not parts:
                break
            flags = (FLAG_DELETE if all_delete else 0) | (FLAG_RESYNC if self._resync else 0)
            self._resync = False
            out = _Out(MsgKind.BU, self._next_seq(), flags, len(parts), b"".join(parts))
            out.changes = changes
            out.items = items
            self._bu_out[out.seq] = out
            c.SentBUs += 1
            c.TotalSentBUs += 1
            self._transmit(out, now, actions)
        if not queue:
            self._queue_bytes = 0
            self._flush_at = None
        elif len(self._bu_out) < window and self._flush_at is None:
            self._flush_at = now + cfg.flush_delay
        # else: the window is full, the next ack flushes

    def _timeout(self, out: _Out, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        kind = out.kind
        if out.attempts <= self.config.max_retries:
            if kind is MsgKind.BU:
                c.TotalSentBUs += 1
            elif kind is MsgKind.BI_REPLY:
                c.TotalSentBIReps += 1
            else:
                c.TotalSentBIReqs += 1
            self._transmit(out, now, actions)
            return
        # retries exhausted
        out.failures += 1
        if kind is MsgKind.BU:
            c.FailedBUs += 1
            out.alive = False
            del self._bu_out[out.seq]
            assert out.changes is not None
            for key, ch in out.changes:  # back into the queue, unless superseded/acked
                if self._latest.get(key) is ch and key not in self._queue:
                    self._queue[key] = ch
                    self._queue_order.append(key)
                    self._queue_bytes += RECORD_LEN + (len(ch.binding.nai) if ch.binding.nai else 0)
            self._check_peer(now)
            self._flush(now, actions)
        elif kind is MsgKind.BI_REPLY:
            c.FailedBIReps += 1
            self._check_peer(now)
            if self._xfer is not None and out.alive:
                out.attempts = 0  # keep going while the peer answers anything
                c.TotalSentBIReps += 1
                self._transmit(out, now, actions)
        else:  # BI Request
            c.FailedBIReqs += 1
            out.alive = False
            dl = self._dl
            if dl is not None and dl.req is out:
                self._abandon_download(now)
                self.state = SyncState.PEER_LOST
                self._dl_restart_at = now + self.config.initial_timeout * (
                    1 << self.config.max_retries
                )

    # -- downloads (we asked) --

    def _start_download(
        self, now: float, gated: bool, exchange: bool, actions: list[SyncAction]
    ) -> None:
        old = self._dl
        if old is not None and old.req is not None:
            old.req.alive = False
        txn = self._next_seq()
        dl = _Download(txn, gated, exchange, now)
        dl.applied0 = self.counters.AppliedRecords
        self._dl = dl
        self._need_download = False
        self._dl_restart_at = None
        self.state = SyncState.DOWNLOADING
        out = _Out(MsgKind.BI_REQUEST, txn, FLAG_EXCHANGE if exchange else 0, 0, b"")
        dl.req = out
        self.counters.DownloadsStarted += 1
        self.counters.SentBIReqs += 1
        self.counters.TotalSentBIReqs += 1
        self._transmit(out, now, actions)

    def _abandon_download(self, now: float) -> None:
        dl = self._dl
        if dl is None:
            return
        if dl.req is not None:
            dl.req.alive = False
        self._need_download = self._need_download or dl.gated
        self._dl = None
        self.counters.DownloadsAbandoned += 1

    def _finish_download(self, now: float) -> None:
        dl = self._dl
        if dl is not None:
            self.last_download = (now - dl.started_at, self.counters.AppliedRecords - dl.applied0)
        self._dl = None
        self._need_download = False
        self.state = SyncState.IN_SYNC
        self.counters.DownloadsCompleted += 1
        self._prune_tombstones(now)

    def _rx_bi_reply(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        if not self._ident_ok(m.ident, now):
            c.SecViolations += 1
            self._send_ack(MsgKind.BI_ACK, m, ACK_ID_MISMATCH, m.chunk, now, actions)
            return
        c.ReceivedBIReps += 1
        dl = self._dl
        if dl is None or m.seq != dl.txn or m.chunk is None:
            if m.seq == self._done_txn and m.chunk is not None:
                self._heard(now, actions)  # a late retransmission of a finished transfer
                c.SentBIAcks += 1
                self._send_ack(MsgKind.BI_ACK, m, ACK_OK, m.chunk, now, actions)
                return
            c.DroppedBIReps += 1
            return
        self._heard(now, actions)
        if dl.req is not None:
            dl.req.alive = False  # the request got through
            dl.req = None
        c.SentBIAcks += 1
        self._send_ack(MsgKind.BI_ACK, m, ACK_OK, m.chunk, now, actions)
        chunk = m.chunk
        if chunk < dl.next or chunk in dl.ahead:
            return  # duplicate
        if chunk == dl.next:
            dl.next += 1
            ahead = dl.ahead
            while dl.next in ahead:
                ahead.discard(dl.next)
                dl.next += 1
        else:
            dl.ahead.add(chunk)
        dl.progress_at = now
        self._apply_records(m, now, actions, False)
        if m.flags & FLAG_LAST:
            dl.last = chunk
        if dl.last is not None and dl.next > dl.last:
            self._done_txn = dl.txn
            self._finish_download(now)

    # -- transfers (the peer asked) --

    def _rx_bi_request(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        if not self._ident_ok(m.ident, now):
            c.SecViolations += 1
            self._send_ack(MsgKind.BI_ACK, m, ACK_ID_MISMATCH, None, now, actions)
            return
        c.ReceivedBIReqs += 1
        self._heard(now, actions)
        if self._xfer is not None:
            if self._xfer.txn == m.seq:
                return  # a retransmitted request for the transfer under way
            self._abort_transfer()
        served = self._served
        if served is not None and served[0] == m.seq and now - served[1] < self.config.peer_timeout:
            return  # a late duplicate of a request we have completely answered
        self._xfer = _Transfer(m.seq, iter(self._iterate()))
        if m.flags & FLAG_EXCHANGE and self._dl is None:
            self._start_download(now, False, False, actions)
        self._pump(now, actions)

    def _abort_transfer(self) -> None:
        xfer = self._xfer
        if xfer is None:
            return
        for out in xfer.out.values():
            out.alive = False
        self._xfer = None
        self.counters.TransfersAborted += 1

    def _pump(self, now: float, actions: list[SyncAction]) -> None:
        xfer = self._xfer
        if xfer is None:
            return
        limit = self.config.max_message - HEADER_LEN - HHAE_LEN - CHUNK_EXT.size
        window = self.config.bi_window
        c = self.counters
        it = xfer.iterator
        dynamic_of = self._dynamic_of
        types = self._types
        while not xfer.built_all and len(xfer.out) < window:
            parts: list[bytes] = []
            items: list[tuple[Binding, int]] = []
            size = 0
            last = False
            while True:
                peek = xfer.peek
                if peek is not None and peek[3] != now:  # packed earlier: lifetimes moved on
                    peek = (peek[0], peek[1], self._pack(peek[0], now, peek[1]), now)
                if peek is None:
                    b = next(it, _END)
                    if b is _END:
                        last = True
                        break
                    assert isinstance(b, Binding)
                    if b.expires <= now:
                        continue  # expired, its deletion follows as a BU
                    rflags = REC_DYNAMIC if dynamic_of(b) else 0
                    peek = (b, rflags, self._pack(b, now, rflags), now)
                rec = peek[2]
                if parts and size + len(rec) > limit:
                    xfer.peek = peek
                    break
                xfer.peek = None
                parts.append(rec)
                items.append((peek[0], peek[1]))
                size += len(rec)
            chunk = xfer.next_chunk
            xfer.next_chunk += 1
            body = b"".join(parts) + CHUNK_EXT.pack(types.chunk, 4, chunk)
            out = _Out(
                MsgKind.BI_REPLY, xfer.txn, FLAG_LAST if last else 0, len(parts), body, chunk
            )
            out.items = items
            xfer.out[chunk] = out
            xfer.built_all = last
            c.SentBIReps += 1
            c.TotalSentBIReps += 1
            self._transmit(out, now, actions)

    def _rx_bi_ack(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        c.ReceivedBIAcks += 1
        if m.chunk is None:  # 133 answer to our BI Request
            dl = self._dl
            req = dl.req if dl is not None else None
            if req is not None and m.seq == req.seq and self._ack_matches(req, m):
                if m.code == ACK_ID_MISMATCH:
                    c.ReceivedIdMismatch += 1
                    self._resync_clock(m.ident, now)
                    c.TotalSentBIReqs += 1
                    self._transmit(req, now, actions)
                return
            c.DroppedBIAcks += 1
            return
        xfer = self._xfer
        out = xfer.out.get(m.chunk) if xfer is not None and xfer.txn == m.seq else None
        if xfer is None or out is None or not self._ack_matches(out, m):
            c.DroppedBIAcks += 1
            return
        if m.code == ACK_ID_MISMATCH:
            c.ReceivedIdMismatch += 1
            self._resync_clock(m.ident, now)
            c.TotalSentBIReps += 1
            self._transmit(out, now, actions)
            return
        self._heard(now, actions)
        out.alive = False
        del xfer.out[m.chunk]
        if xfer.built_all and not xfer.out:
            self._xfer = None
            self._served = (xfer.txn, now)
            c.TransfersCompleted += 1
            return
        self._pump(now, actions)

    # -- BUs received --

    def _rx_bu(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        if not self._ident_ok(m.ident, now):
            c.SecViolations += 1
            c.SentBUAcks += 1
            self._send_ack(MsgKind.BU_ACK, m, ACK_ID_MISMATCH, None, now, actions)
            return
        c.ReceivedBUs += 1
        self._heard(now, actions)
        self._apply_records(m, now, actions, bool(m.flags & FLAG_DELETE))
        c.SentBUAcks += 1
        self._send_ack(MsgKind.BU_ACK, m, ACK_OK, None, now, actions)
        if m.flags & FLAG_RESYNC and self._dl is None:
            self._start_download(now, self.role is not Role.ACTIVE, False, actions)

    def _rx_bu_ack(self, m: SyncMessage, now: float, actions: list[SyncAction]) -> None:
        c = self.counters
        c.ReceivedBUAcks += 1
        out = self._bu_out.get(m.seq)
        if out is None or not self._ack_matches(out, m):
            c.DroppedBUAcks += 1
            return
        if m.code == ACK_ID_MISMATCH:
            c.ReceivedIdMismatch += 1
            self._resync_clock(m.ident, now)
            c.TotalSentBUs += 1
            self._transmit(out, now, actions)
            return
        self._heard(now, actions)
        out.alive = False
        del self._bu_out[m.seq]
        latest = self._latest
        assert out.changes is not None
        lag = self.lag_samples if self.config.track_lag else None
        for key, ch in out.changes:
            if latest.get(key) is ch:
                del latest[key]
                if self.acked is not None:
                    self.acked.append(key)
            if lag is not None:
                lag.append(now - ch.t)
        if self._queue:
            self._flush(now, actions)

    # -- applying records, newest wins --

    def _apply_records(
        self, m: SyncMessage, now: float, actions: list[SyncAction], all_delete: bool
    ) -> None:
        # the hot path of a bulk download: records unpacked as tuples, Bindings built inline
        c = self.counters
        latest = self._latest
        tombs = self._tombs
        lookup = self._lookup
        ha_addr = m.ha_addr
        append = actions.append
        encaps = _ENCAPS
        inf = math.inf
        applied = stale = 0
        nonce_of = self._nonce_of
        tomb_nonces = self._tomb_nonces
        for rec in m.records:
            home, coa, src, ident, lifetime, remaining, reg_flags, rec_flags, gre_key, encap = rec[
                :10
            ]
            key = (home, coa)
            nonce = rec.nonce
            if latest:
                own = latest.get(key)
                if own is not None:
                    if own.binding.ident >= ident:
                        stale += 1  # our own unacknowledged change is newer
                        continue
                    del latest[key]  # the peer's is newer: do not send ours
                    self._queue.pop(key, None)
                    if self.acked is not None:
                        self.acked.append(key)  # the peer has this binding, newer
            tomb = tombs.get(key) if tombs else None
            if (
                all_delete
                or rec_flags & REC_DELETE
                or (remaining == 0 and lifetime < LIFETIME_INFINITE)  # expired meanwhile
            ):
                if tomb is None or ident > tomb or nonce is not None:
                    self._tombstone(key, ident, now, nonce)
                cur = lookup(key)
                if cur is not None:
                    if ident >= cur.ident or (
                        nonce_of is not None and _chained(ident, nonce_of(cur))
                    ):
                        c.DeletedRecords += 1
                        append(DeleteBinding(binding_from_record(rec, ha_addr, now)))
                    else:
                        stale += 1
                continue
            if tomb is not None and ident <= tomb and not _chained(ident, tomb_nonces.get(key)):
                stale += 1  # deleted meanwhile: no resurrection
                continue
            cur = lookup(key)
            if (
                cur is not None
                and ident <= cur.ident
                and (
                    nonce is None
                    or nonce_of is None
                    or ident == cur.ident
                    or not _chained(ident, nonce_of(cur))
                )
            ):
                stale += 1  # older, or the same registration again (a duplicate)
                continue
            applied += 1
            append(
                ApplyBinding(
                    Binding(
                        home,
                        coa,
                        ha_addr,
                        lifetime,
                        inf
                        if remaining >= LIFETIME_INFINITE or lifetime >= LIFETIME_INFINITE
                        else now + remaining,
                        ident,
                        reg_flags,
                        encaps[encap],
                        gre_key if gre_key or rec_flags & REC_GRE_KEY else None,
                        rec[10],
                        "" if src == "0.0.0.0" else src,
                    ),
                    bool(rec_flags & REC_DYNAMIC),
                    nonce,
                )
            )
        c.AppliedRecords += applied
        c.StaleRecords += stale

    def _tombstone(self, key: Key, ident: int, now: float, nonce: int | None = None) -> None:
        """Remember a deletion. A nonce MN's Identifications do not grow, so its latest
        deletion replaces the tombstone, with the nonce issued in that deletion's reply."""
        tomb = self._tombs.get(key)
        if tomb is None or ident > tomb or nonce is not None:
            self._tombs[key] = ident
            if nonce is not None:
                self._tomb_nonces[key] = nonce
            else:
                self._tomb_nonces.pop(key, None)
            self._tomb_q.append((now + self.config.tombstone_ttl, key, ident))

    def _prune_tombstones(self, now: float) -> None:
        if self._dl is not None:
            return  # keep them all until the download ends
        q = self._tomb_q
        tombs = self._tombs
        while q and q[0][0] <= now:
            _, key, ident = q.popleft()
            if tombs.get(key) == ident:
                del tombs[key]
                self._tomb_nonces.pop(key, None)


__all__ = [
    "COUNTER_NAMES",
    "MIB_COUNTER_NAMES",
    "ApplyBinding",
    "Counters",
    "DeleteBinding",
    "Key",
    "Mode",
    "ReadyChanged",
    "Role",
    "SyncAction",
    "SyncConfig",
    "SyncPeer",
    "SyncState",
    "binding_from_record",
    "record_from_binding",
    "remaining_lifetime",
]
