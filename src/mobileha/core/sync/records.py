"""Binding <-> binding record (P§5.4): the one record encoder and the one record reader.

:func:`pack_record` / :func:`pack_records` are what every BU and BI Reply carries; they
produce exactly the bytes of ``wire.sync.encode_record(record_from_binding(...))`` (the
reference, kept for tools and tests; tests/property/test_sync_records.py checks the two
agree for any binding), without building the intermediate :class:`BindingRecord`.
:func:`binding_from_record` turns a decoded record back into a :class:`Binding` on the
receiver's clock (the reference); :func:`decode_bound` decodes a whole message straight
into bindings, for the merge. Both one-pass directions run in C when the optional module
is built (``wire.sync.C_RECORDS``).

Lifetimes: the record carries the granted lifetime as granted (at most 0xFFFF) and the
remaining lifetime at send time, rounded up so that a standby never expires its copy
before the active does; an infinite binding (lifetime 0xFFFF, or no deadline) has a
remaining lifetime of 0xFFFF.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from mobileha.core.binding import Binding, Encap
from mobileha.core.revocation import I_NEGOTIATED, NEGOTIATED, negotiated_state, peer_timestamp
from mobileha.core.security import REPLAY_NONCE, REPLAY_TIMESTAMP, MobilitySA
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, hide_key, reveal_key
from mobileha.wire.sync import (
    LIFETIME_INFINITE,
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    REC_REVOCATION,
    REC_REVOCATION_I,
    REC_SA,
    SA_ALG_HMAC_MD5,
    SA_ALG_PREFIX_SUFFIX,
    SA_NONCE,
    SA_STATIC_HOME,
    Bind,
    BindingRecord,
    Decoded,
    RecordSa,
    SyncTypes,
    deadline_of,
    decode,
    pack_binding,
    pack_bindings,
    pack_chunk,
    remaining_of,
)

ENCAPS: Final = {e.value: e for e in Encap}


def remaining_lifetime(b: Binding, now: float) -> int:
    """The remaining lifetime of ``b`` at ``now`` in whole seconds (rounded up), 0xFFFF
    for an infinite binding."""
    return remaining_of(b.lifetime, b.expires, now)


def revocation_fields(rev: int) -> tuple[int, int]:
    """The record flags and FA timestamp of a binding's RFC 3543 state (non-zero)."""
    return REC_REVOCATION | (REC_REVOCATION_I if rev & I_NEGOTIATED else 0), peer_timestamp(rev)


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
    revocation was negotiated with its FA. (:func:`mobileha.wire.sync.pack_binding`: in
    C when the optional module is built.)
    """
    return pack_binding(b, now, rec_flags, nonce, sa_block, revocation_fields)


def pack_records(
    bindings: list[Binding],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
) -> list[bytes]:
    """:func:`pack_record` of each binding, in one call (``rec_flags``, ``nonces``,
    ``sa_blocks``: one per binding, or None for none)."""
    return pack_bindings(bindings, now, rec_flags, nonces, sa_blocks, revocation_fields)


def pack_records_upto(
    bindings: list[Binding],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    limit: int,
) -> tuple[bytes, int]:
    """The records of ``bindings[:k]`` (:func:`pack_record` each) joined, ``k`` the most
    that fit in ``limit`` bytes, at least one: the records of one BI Reply."""
    return pack_chunk(bindings, now, rec_flags, nonces, sa_blocks, revocation_fields, limit)


def decode_bound(data: bytes, now: float, types: SyncTypes) -> Decoded:
    """``wire.sync.decode`` of a message whose records become :class:`Binding` objects at
    once (``SyncMessage.bound``: (binding, record flags, nonce, SA, FA timestamp) each),
    each the :func:`binding_from_record` of its record but for its RFC 3543 state, which
    :func:`bound_revocation` sets where the FA timestamp is not None."""
    return decode(data, types, Bind(Binding, ENCAPS, now))


def bound_revocation(b: Binding, rec_flags: int, rev_ts: int) -> None:
    """Set the RFC 3543 state of a binding decoded with an FA timestamp."""
    b.revocation = negotiated_state(rev_ts, bool(rec_flags & REC_REVOCATION_I))


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
        deadline_of(lifetime, remaining, now),
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
    "bound_revocation",
    "decode_bound",
    "open_sa",
    "pack_record",
    "pack_records",
    "pack_records_upto",
    "record_from_binding",
    "remaining_lifetime",
    "revocation_fields",
    "sa_secret",
    "seal_sa",
]
