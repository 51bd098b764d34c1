"""The sync state machine as data (h2 style): ``(state, input) -> (effects, next state)``.

An input not in the table for the current state is a programming error
(:class:`SyncStateError`), never silently ignored. The effects run in order after the
state is set (so that an effect which starts a download moves the state on to
DOWNLOADING):

================  ==========================================================================
RESUME            the peer answers again: start the download it owes us (if any and we are
                  not Active) and send what is queued
ABANDON_DOWNLOAD  stop our download (a download that gated HSRP is owed again later)
FORGET_DOWNLOAD   we took over: no download is owed any more
ABORT_TRANSFER    stop streaming our table to the peer
SCHEDULE_RESTART  request the table again after ``initial_timeout * 2**max_retries``
================  ==========================================================================

A download runs exactly while the state is DOWNLOADING.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from mobileha.core.sync.base import SyncInput, SyncState


class Effect(Enum):
    RESUME = "resume"
    ABANDON_DOWNLOAD = "abandon-download"
    FORGET_DOWNLOAD = "forget-download"
    ABORT_TRANSFER = "abort-transfer"
    SCHEDULE_RESTART = "schedule-restart"


class SyncStateError(RuntimeError):
    """An input that the transition table does not allow in the current state."""


S, I, E = SyncState, SyncInput, Effect  # noqa: E741

_LOST: Final = (E.ABANDON_DOWNLOAD, E.ABORT_TRANSFER)

TRANSITIONS: Final[dict[tuple[SyncState, SyncInput], tuple[tuple[Effect, ...], SyncState]]] = {
    # an authenticated message from the peer
    (S.IDLE, I.HEARD): ((E.RESUME,), S.IN_SYNC),
    (S.PEER_LOST, I.HEARD): ((E.RESUME,), S.IN_SYNC),
    (S.IN_SYNC, I.HEARD): ((), S.IN_SYNC),
    (S.DOWNLOADING, I.HEARD): ((), S.DOWNLOADING),
    # we sent a BI Request (start-up, Standby, reconciliation, the peer's R flag, restart)
    (S.IDLE, I.DOWNLOAD_STARTED): ((), S.DOWNLOADING),
    (S.PEER_LOST, I.DOWNLOAD_STARTED): ((), S.DOWNLOADING),
    (S.IN_SYNC, I.DOWNLOAD_STARTED): ((), S.DOWNLOADING),
    (S.DOWNLOADING, I.DOWNLOAD_STARTED): ((), S.DOWNLOADING),  # a new request replaces it
    # events of a running download
    (S.DOWNLOADING, I.DOWNLOAD_DONE): ((), S.IN_SYNC),
    (S.DOWNLOADING, I.REQUEST_FAILED): ((E.ABANDON_DOWNLOAD, E.SCHEDULE_RESTART), S.PEER_LOST),
    (S.DOWNLOADING, I.DOWNLOAD_STALLED): ((*_LOST, E.SCHEDULE_RESTART), S.PEER_LOST),
    (S.DOWNLOADING, I.TAKEN_OVER): ((E.ABANDON_DOWNLOAD, E.FORGET_DOWNLOAD), S.PEER_LOST),
    # HSRP lost the peer, or it did not answer for peer_timeout
    (S.IDLE, I.PEER_LOST): (_LOST, S.PEER_LOST),
    (S.IN_SYNC, I.PEER_LOST): (_LOST, S.PEER_LOST),
    (S.DOWNLOADING, I.PEER_LOST): (_LOST, S.PEER_LOST),
    (S.PEER_LOST, I.PEER_LOST): (_LOST, S.PEER_LOST),
}


# the states in which hearing from the peer changes nothing (no effect, same state): the
# receive path skips the table lookup there (a tuple: ``in`` compares identities, where a
# set would call Enum.__hash__, a Python function)
QUIET_ON_HEARD: Final = tuple(s for s in SyncState if TRANSITIONS.get((s, I.HEARD)) == ((), s))


def transition(state: SyncState, inp: SyncInput) -> tuple[tuple[Effect, ...], SyncState]:
    """The effects and next state of ``inp`` in ``state`` (SyncStateError if not allowed)."""
    try:
        return TRANSITIONS[(state, inp)]
    except KeyError:
        raise SyncStateError(f"{inp.value} is not allowed in state {state.value}") from None


__all__ = ["QUIET_ON_HEARD", "TRANSITIONS", "Effect", "SyncStateError", "transition"]
