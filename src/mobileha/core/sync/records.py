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

import hashlib
import hmac
import math
from socket import inet_aton
from typing import Final

from mobileha.core.binding import Binding, Encap
from mobileha.core.revocation import I_NEGOTIATED, NEGOTIATED, negotiated_state, peer_timestamp
from mobileha.core.security import REPLAY_NONCE, REPLAY_TIMESTAMP, MobilitySA
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, hide_key, reveal_key
from mobileha.wire.sync import (
    LIFETIME_INFINITE,
    NONCE,
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    REC_REVOCATION,
    REC_REVOCATION_I,
    REC_SA,
    RECORD,
    RECORD_LEN,
    SA_ALG_HMAC_MD5,
    SA_ALG_PREFIX_SUFFIX,
    SA_NONCE,
    SA_STATIC_HOME,
    BindingRecord,
    RecordSa,
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


def pack_record(
    b: Binding,
    now: float,
    rec_flags: int = 0,
    nonce: int | None = None,
    sa_block: bytes | None = None,
) -> bytes:
    """The P§5.4 record of ``b`` at ``now``: the wire bytes of :func:`record_from_binding`.

    ``rec_flags``: REC_DELETE / REC_DYNAMIC; REC_GRE_KEY, REC_NONCE and REC_SA are added here
    when the binding has a GRE key, when ``nonce`` (the MN's replay nonce) is given and
    when ``sa_block`` (the encoded :class:`~mobileha.wire.sync.RecordSa` of the MN's SA
    from AAA, :func:`seal_sa`) is given; REC_REVOCATION (and REC_REVOCATION_I) when
    revocation was negotiated with its FA.
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
    if sa_block is not None:
        rec_flags |= REC_SA
        nai += sa_block
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
    sa: RecordSa | None = None,
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
    if sa is not None:
        rec_flags |= REC_SA
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
        sa=sa,
        revocation_ts=peer_timestamp(rev) if rev & NEGOTIATED else None,
    )


def binding_from_record(rec: BindingRecord, ha_addr: str, now: float) -> Binding:
    """A binding from a record: the remaining lifetime becomes a deadline on our clock."""
    (home, coa, src, ident, lifetime, remaining, reg_flags, rec_flags, gre_key, encap, nai,
     _extra, _nonce, _sa, rev_ts) = rec  # fmt: skip
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


# --- [P] the MN-HA SA of a record (REC_SA) ------------------------------------------------

_SA_ALG_CODE: Final = {ALG_PREFIX_SUFFIX: SA_ALG_PREFIX_SUFFIX, ALG_HMAC_MD5: SA_ALG_HMAC_MD5}
_SA_ALG_NAME: Final = {v: k for k, v in _SA_ALG_CODE.items()}
_SA_LABEL: Final = b"mobileha sync: MN-HA key hiding"


def sa_secret(sync_key: bytes) -> bytes:
    """The secret that hides MN-HA keys in sync records: HMAC-MD5 of a fixed label under
    the HA-HA key, so that the key that authenticates the messages (HHAE) is not also
    the one of the key stream."""
    return hmac.new(sync_key, _SA_LABEL, hashlib.md5).digest()


def seal_sa(sa: MobilitySA, secret: bytes, salt: bytes, static_home: bool) -> RecordSa:
    """The record form of ``sa``: its key hidden with ``secret`` and the 16-byte ``salt``
    (RFC 2868 §3.5, :func:`mobileha.wire.auth.hide_key`). ``static_home``: the SA names
    the binding's home address as the MN's static one."""
    flags = (SA_NONCE if sa.replay == REPLAY_NONCE else 0) | (SA_STATIC_HOME if static_home else 0)
    return RecordSa(
        sa.spi,
        _SA_ALG_CODE[sa.algorithm],
        flags,
        min(int(sa.tolerance), 0xFFFF),
        min(sa.max_lifetime or 0, 0xFFFF),
        salt,
        hide_key(secret, salt, sa.key),
    )


def open_sa(rsa: RecordSa, secret: bytes, nai: str | None, home_addr: str) -> MobilitySA:
    """The MN-HA SA of a record (ValueError: the key does not reveal with ``secret``)."""
    key = reveal_key(secret, rsa.salt, rsa.hidden)
    if not key:
        raise ValueError("empty MN-HA key")
    return MobilitySA(
        rsa.spi,
        key,
        _SA_ALG_NAME[rsa.algorithm],
        REPLAY_NONCE if rsa.flags & SA_NONCE else REPLAY_TIMESTAMP,
        rsa.tolerance,
        nai=nai,
        home_address=home_addr if rsa.flags & SA_STATIC_HOME else None,
        max_lifetime=rsa.max_lifetime or None,
    )


__all__ = [
    "ENCAPS",
    "binding_from_record",
    "open_sa",
    "pack_record",
    "record_from_binding",
    "remaining_lifetime",
    "sa_secret",
    "seal_sa",
]
