"""Binding <-> binding record (P§5.4): the one record encoder and the one record reader.

:func:`pack_record` is what every BU and BI Reply carries; it produces exactly the bytes
of ``wire.sync.encode_record(record_from_binding(...))`` (the reference, kept for tools and
tests; tests/property/test_sync_records.py checks the two agree for any binding), without
building the intermediate :class:`BindingRecord`. :func:`binding_from_record` turns a
decoded record back into a :class:`Binding` on the receiver's clock, for the merge.

Lifetimes: the record carries the granted lifetime as granted (at most 0xFFFF) and the
remaining lifetime at send time, rounded up so that a standby never expires its copy
before the active does; an infinite binding (lifetime 0xFFFF, or no deadline) has a
remaining lifetime of 0xFFFF.
"""

from __future__ import annotations

import math
from socket import inet_aton
from typing import Final

from mobileha.core.binding import Binding, Encap
from mobileha.core.revocation import I_NEGOTIATED, NEGOTIATED, negotiated_state, peer_timestamp
from mobileha.wire.sync import (
    LIFETIME_INFINITE,
    NONCE,
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    REC_REVOCATION,
    REC_REVOCATION_I,
    RECORD,
    RECORD_LEN,
    BindingRecord,
)

ENCAPS: Final = {e.value: e for e in Encap}
_pack = RECORD.pack
_pack_nonce = NONCE.pack
_INF: Final = math.inf


def remaining_lifetime(b: Binding, now: float) -> int:
    """The remaining lifetime of ``b`` at ``now`` in whole seconds (rounded up), 0xFFFF
    for an infinite binding."""
    if b.lifetime >= LIFETIME_INFINITE or b.expires == _INF:
        return LIFETIME_INFINITE
    return max(0, min(LIFETIME_INFINITE - 1, math.ceil(b.expires - now)))


def pack_record(b: Binding, now: float, rec_flags: int = 0, nonce: int | None = None) -> bytes:
    """The P§5.4 record of ``b`` at ``now``: the wire bytes of :func:`record_from_binding`.

    ``rec_flags``: REC_DELETE / REC_DYNAMIC; REC_GRE_KEY and REC_NONCE are added here when
    the binding has a GRE key and when ``nonce`` (the MN's replay nonce) is given,
    REC_REVOCATION (and REC_REVOCATION_I) when revocation was negotiated with its FA.
    """
    nai = b.nai.encode() if b.nai else b""
    nai_len = len(nai)
    if nonce is not None:
        rec_flags |= REC_NONCE
        nai += _pack_nonce(nonce)
    rev = b.revocation
    if rev:
        rec_flags |= REC_REVOCATION | (REC_REVOCATION_I if rev & I_NEGOTIATED else 0)
        nai += _pack_nonce(peer_timestamp(rev))
    key = b.gre_key
    if key is not None:
        rec_flags |= REC_GRE_KEY
    lifetime = b.lifetime
    if lifetime >= LIFETIME_INFINITE:
        lifetime = remaining = LIFETIME_INFINITE
    elif b.expires == _INF:
        remaining = LIFETIME_INFINITE
    else:
        remaining = math.ceil(b.expires - now)
        if remaining < 0:
            remaining = 0
        elif remaining >= LIFETIME_INFINITE:
            remaining = LIFETIME_INFINITE - 1
    return (
        _pack(
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


def record_from_binding(
    b: Binding,
    now: float,
    *,
    delete: bool = False,
    dynamic: bool = False,
    nonce: int | None = None,
) -> BindingRecord:
    """The reference conversion: the record of a binding as a :class:`BindingRecord` (the
    expiry deadline becomes a remaining lifetime)."""
    rec_flags = (REC_DELETE if delete else 0) | (REC_DYNAMIC if dynamic else 0)
    if b.gre_key is not None:
        rec_flags |= REC_GRE_KEY
    if nonce is not None:
        rec_flags |= REC_NONCE
    rev = b.revocation
    if rev & NEGOTIATED:
        rec_flags |= REC_REVOCATION | (REC_REVOCATION_I if rev & I_NEGOTIATED else 0)
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
        revocation_ts=peer_timestamp(rev) if rev & NEGOTIATED else None,
    )


def binding_from_record(rec: BindingRecord, ha_addr: str, now: float) -> Binding:
    """A binding from a record: the remaining lifetime becomes a deadline on our clock."""
    (home, coa, src, ident, lifetime, remaining, reg_flags, rec_flags, gre_key, encap, nai,
     _extra, _nonce, rev_ts) = rec  # fmt: skip
    return Binding(
        home,
        coa,
        ha_addr,
        lifetime,
        _INF
        if remaining >= LIFETIME_INFINITE or lifetime >= LIFETIME_INFINITE
        else now + remaining,
        ident,
        reg_flags,
        ENCAPS[encap],
        gre_key if gre_key or rec_flags & REC_GRE_KEY else None,
        nai,
        "" if src == "0.0.0.0" else src,
        revocation=0
        if rev_ts is None
        else negotiated_state(rev_ts, bool(rec_flags & REC_REVOCATION_I)),
    )


__all__ = [
    "ENCAPS",
    "binding_from_record",
    "pack_record",
    "record_from_binding",
    "remaining_lifetime",
]
