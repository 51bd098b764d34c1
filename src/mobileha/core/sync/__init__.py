"""HA-HA binding synchronisation (P§5.1, P§5.4): the sans-IO :class:`SyncPeer` for one HA
pair and one HA address, split by concern (see :mod:`mobileha.core.sync.peer`)."""

from mobileha.core.sync.base import (
    COUNTER_NAMES,
    MIB_COUNTER_NAMES,
    Applied,
    ApplyBindings,
    Counters,
    DeleteBinding,
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
from mobileha.core.sync.peer import SyncPeer
from mobileha.core.sync.records import (
    binding_from_record,
    pack_record,
    record_from_binding,
    remaining_lifetime,
)

__all__ = [
    "COUNTER_NAMES",
    "MIB_COUNTER_NAMES",
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
    "SyncPeer",
    "SyncState",
    "SyncStateChanged",
    "binding_from_record",
    "pack_record",
    "record_from_binding",
    "remaining_lifetime",
]
