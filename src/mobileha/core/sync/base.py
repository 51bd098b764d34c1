"""What the parts of the sync peer share: configuration, counters, states, actions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from mobileha.core.actions import Addr, Send
from mobileha.core.binding import Binding
from mobileha.core.security import MobilitySA
from mobileha.wire.auth import Authenticator
from mobileha.wire.sync import DEFAULT_TYPES, SyncTypes

Key = tuple[str, str]  # (home address, care-of address)
U32: Final = 0xFFFFFFFF


class SyncState(Enum):
    IDLE = "idle"  # no peer contact yet
    DOWNLOADING = "downloading"
    IN_SYNC = "in-sync"
    PEER_LOST = "peer-lost"


class SyncInput(Enum):
    """What moves the sync state (:data:`mobileha.core.sync.states.TRANSITIONS`)."""

    HEARD = "heard"  # an authenticated message from the peer
    DOWNLOAD_STARTED = "download-started"  # we sent a BI Request
    DOWNLOAD_DONE = "download-done"  # every chunk up to the one with L arrived
    REQUEST_FAILED = "request-failed"  # our BI Request ran out of retries
    DOWNLOAD_STALLED = "download-stalled"  # no chunk and nothing else heard for a while
    PEER_LOST = "peer-lost"  # HSRP lost the peer, or it was silent past peer_timeout
    TAKEN_OVER = "taken-over"  # HSRP made us Active during a download that gated it


class Role(Enum):
    """The HSRP state of this HA for the group, as far as sync cares."""

    ACTIVE = "active"
    STANDBY = "standby"
    OTHER = "other"  # init, learn, listen, speak


class Mode(Enum):
    ACTIVE_STANDBY = "active-standby"  # physical home network
    PEER = "peer"  # virtual home network: whichever HA processes an RRQ sends the BU


# --- actions ------------------------------------------------------------------------


# One binding of :class:`ApplyBindings` (its key is the binding's own), ``dynamic`` (the
# home address was allocated from the pool: mark it as allocated), the MN's replay nonce
# ([P] REC_NONCE: restore it) and its SA from AAA ([P] REC_SA: cache it), or None.
Applied = tuple[Binding, bool, int | None, MobilitySA | None]


@dataclass(slots=True)
class ApplyBindings:
    """Install or replace exactly these bindings (key = home, care-of), in order, as synced
    copies: the records of one message that won, between two deletions.

    No S-flag replacement of other care-of addresses (the peer reports those deletions),
    and no feedback into :meth:`SyncPeer.binding_changed`. One action per run of records
    rather than one per record: a bulk download applies about 24 records per BI Reply.
    """

    items: list[Applied]


@dataclass(slots=True)
class DeleteBinding:
    """Remove the binding with this key (its Identification is not newer than ``ident``)."""

    binding: Binding  # key, and the deleting record's Identification in ``ident``


@dataclass(frozen=True, slots=True)
class ReadyChanged:
    """The value the HSRP group's ``set_ready()`` input must now have."""

    ready: bool


@dataclass(frozen=True, slots=True)
class SyncStateChanged:
    """The sync state changed (for the operator's log): ``cause`` is the input that moved
    it; ``records`` the records applied by the download that just ended or was cut."""

    ha_addr: str
    old: SyncState
    new: SyncState
    cause: SyncInput
    records: int = 0


SyncAction = Send | ApplyBindings | DeleteBinding | ReadyChanged | SyncStateChanged


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
    # HSRP said the peer is gone while a download that gated it ran: we became ready (and
    # may take over) with an incomplete table, as fast as HSRP takes over
    DownloadsIncompleteOnPeerLoss: int = 0
    SaRecords: int = 0  # [P] records applied with the MN's SA from AAA (REC_SA)
    SaRecordErrors: int = 0  # [P] REC_SA blocks that did not reveal with our key

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
    # 0: a batch goes out when the adapter runs the timer after the datagrams of this
    # event-loop turn (a BU per turn under load, no added latency when idle)
    flush_delay: float = 0.0
    max_message: int = 1400
    bu_window: int = 64
    bi_window: int = 32
    max_pending: int = 1_000_000
    tombstone_ttl: float = 60.0
    peer_timeout: float = 15.0  # silence after which a failing peer is declared lost
    download_idle_timeout: float = 10.0  # no BI Reply progress: request again (or, when
    # nothing at all was heard from the peer meanwhile, abandon it: HSRP may take over)
    track_lag: bool = False  # record change -> ack lag samples (benchmarks)


__all__ = [
    "COUNTER_NAMES",
    "MIB_COUNTER_NAMES",
    "U32",
    "Applied",
    "ApplyBindings",
    "Counters",
    "DeleteBinding",
    "Key",
    "Mode",
    "ReadyChanged",
    "Role",
    "SyncAction",
    "SyncConfig",
    "SyncInput",
    "SyncState",
    "SyncStateChanged",
]
