"""Journal entries of a home agent's bindings and their restoration, sans-IO.

The node's journal (:mod:`mobileha.node.journal`) writes one entry per binding change the
coordinator returns (:func:`binding_entry` for ``InstallBinding`` and ``RefreshBinding``,
:func:`delete_entry` for ``RemoveBinding``) and, at start-up, folds the file into the last
state of every binding (:func:`fold`) and gives it back to the home agent cores
(:func:`restore`): each binding with its remaining lifetime (the record's remaining lifetime
minus the wall-clock time since the entry), its Identification (the MN's replay state), its
replay nonce and its pool allocation, exactly as a standby takes its peer's records. Bindings
that expired while the process was down are not restored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mobileha.core.binding import Binding
from mobileha.core.home_agent import HomeAgent
from mobileha.core.sync.records import binding_from_record, pack_record
from mobileha.wire.journal import (
    Entry,
    encode_binding,
    encode_delete,
    file_header,
)
from mobileha.wire.sync import LIFETIME_INFINITE, REC_DYNAMIC, BindingRecord

BindingKey = tuple[str, str, str]  # agent, home address, care-of address


def binding_entry(agent: str, ha: HomeAgent, b: Binding, now: float, wall: float) -> bytes:
    """The entry of ``b`` (a binding of ``ha``, the core of HA address ``agent``)."""
    flags = REC_DYNAMIC if ha.is_dynamic(b.home_addr) else 0
    return encode_binding(wall, agent, pack_record(b, now, flags, ha.nonce_of(b)))


def delete_entry(agent: str, b: Binding, wall: float) -> bytes:
    return encode_delete(wall, agent, b.home_addr, b.care_of)


def snapshot(agents: Iterable[tuple[str, HomeAgent]], now: float, wall: float) -> bytes:
    """A whole journal holding the bindings of every agent (compaction)."""
    parts = [file_header()]
    for agent, ha in agents:
        parts.extend(binding_entry(agent, ha, b, now, wall) for b in ha.table)
    return b"".join(parts)


def fold(entries: Iterable[Entry]) -> dict[BindingKey, tuple[float, BindingRecord]]:
    """The last state of every binding: (entry wall time, record); deleted ones dropped."""
    state: dict[BindingKey, tuple[float, BindingRecord]] = {}
    for e in entries:
        rec = e.record
        if rec is not None:
            state[(e.agent, rec.home_addr, rec.care_of)] = (e.wall, rec)
        elif e.care_of is not None:
            state.pop((e.agent, e.home_addr, e.care_of), None)
        else:  # every binding of the home address (rare: a scan)
            for k in [k for k in state if k[0] == e.agent and k[1] == e.home_addr]:
                del state[k]
    return state


def restore(
    state: dict[BindingKey, tuple[float, BindingRecord]],
    agents: dict[str, HomeAgent],
    now: float,
    wall: float,
) -> tuple[list[Any], int, int]:
    """Give the folded bindings back to the cores (by HA address); returns the cores'
    actions (``RestoreBinding`` of an active core: the data plane entries), how many were
    restored and how many had expired meanwhile (or belong to no configured HA address)."""
    out: list[Any] = []
    restored = skipped = 0
    for (agent, _home, _coa), (at, rec) in state.items():
        ha = agents.get(agent)
        if ha is None:
            skipped += 1
            continue
        infinite = rec.lifetime >= LIFETIME_INFINITE or rec.remaining >= LIFETIME_INFINITE
        left = float(rec.remaining) - max(0.0, wall - at)
        if not infinite and left <= 0:
            skipped += 1
            continue
        b = binding_from_record(rec, agent, now)
        if not infinite:
            b.expires = now + math.floor(left)
        out += ha.apply_synced(b, now, dynamic=rec.dynamic, nonce=rec.nonce)
        restored += 1
    return out, restored, skipped


__all__ = ["BindingKey", "binding_entry", "delete_entry", "fold", "restore", "snapshot"]
