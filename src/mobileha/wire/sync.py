"""HA-HA binding synchronisation messages (P§5.4, a project format: Cisco's is not public).

Messages (type codes are parameters, :class:`SyncTypes`, defaults from P§5.4):

====================  ====  =============================================================
Binding Update (BU)    200  records of changed bindings (adds and deletions)
BU Ack                 201  code = status (0 accepted, 133 identification mismatch)
BI Request             202  "send me every binding of HA address X" (bulk download)
BI Reply               203  one chunk of the table; flag L on the last chunk
BI Reply Ack           204  acknowledges one BI Reply chunk
====================  ====  =============================================================

Layout: the 20-byte common header ``!BBHI4sQ`` (type, code/flags, record count, sequence,
HA address, Identification), the binding records (each with its 2-byte length prefix),
optional extensions (short format: type, length, data) and the HA-HA authentication
extension (HHAE, default type 35, ``type, 20, SPI(4), authenticator(16)``), always last.
The authenticator covers byte 0 through the HHAE's SPI, exactly like MN-HA (P§1.6).

Binding record ``!HBB4s4s4sQHHIBB`` + NAI (P§5.4): length, registration flags, record
flags, home address, care-of address, source address of the accepted request (FA/PDSN),
Identification of the accepted request, granted lifetime, remaining lifetime, GRE key,
encapsulation, NAI length, NAI. Bytes after the NAI (and after its nonce, see below) inside
the record length are kept verbatim (``extra``) so the record can be extended without
breaking older decoders.

[P] additions to P§5.4, all backward compatible with its layout:

* record flag ``0x40`` (:data:`REC_DYNAMIC`): the home address was allocated dynamically
  from the pool (RFC 2794), so the new active must mark it as allocated;
* record flag ``0x20`` (:data:`REC_GRE_KEY`): the GRE key field is valid (P§5.4 says
  "0 = none", which cannot carry a legitimate GRE key of 0; a non-zero key without this
  flag is still read as a key, see :func:`record_gre_key`);
* record flag ``0x10`` (:data:`REC_NONCE`): a 4-byte nonce follows the NAI (before any
  ``extra`` bytes, inside the record length): the replay nonce (RFC 5944 §5.7, P§1.7) the
  home agent issued last to this MN (keyed by NAI, or by home address without one), so a
  standby that takes over expects the nonce the MN got in its last reply. A record whose
  length leaves fewer than 4 bytes after the NAI with this flag is a DecodeError. Older
  decoders keep the nonce in ``extra`` and the flag in ``rec_flags``;
* record flag ``0x08`` (:data:`REC_SA`): the MN-HA security association the home agent got
  from AAA for this MN follows the NAI (and the nonce), so that the standby can serve the
  MN after a takeover without asking AAA again. Layout (:data:`SA_BLOCK`, then the hidden
  key): block length (1, including this byte), SPI (4), algorithm (1: 0 keyed MD5
  prefix+suffix, 1 HMAC-MD5), flags (1: 0x80 nonce replay protection, else timestamps;
  0x40 the SA names the binding's home address as the MN's static one), replay tolerance
  (2, s), largest lifetime (2, s, 0 = the HA's), salt (16), then the key hidden as RFC 2868
  §3.5 does (:func:`mobileha.wire.auth.hide_key`: a length byte, the key, zero padding to
  16-byte blocks, XORed with an MD5 chain over a secret and the salt). The secret is
  derived from the HA-HA key (``core.sync.records.sa_secret``); the HHAE authenticates the
  whole message, the hiding keeps the key off the wire. A record with this flag whose
  length leaves no room for the block is a DecodeError; the key itself is not decoded
  here (the receiver reveals it with its secret). Older decoders keep the block in
  ``extra``;
* record flag ``0x02`` (:data:`REC_REVOCATION`): registration revocation (RFC 3543) was
  negotiated with the FA at the source address; a 4-byte value follows the NAI and the
  nonce (before any SA block): the FA's timestamp from its Revocation Support extension in
  the accepted request (a revocation from the FA must not be older, RFC 3543 §4.2.3.2),
  so that a standby that takes over can revoke and check revocations; record flag ``0x04``
  (:data:`REC_REVOCATION_I`): the I bit was negotiated too. Older decoders keep the value
  in ``extra``;
* BU flag ``0x20`` (:data:`FLAG_RESYNC`): the sender had to drop queued updates (queue
  overflow); the receiver should run a bulk download again;
* BI Request flag ``0x01`` (:data:`FLAG_EXCHANGE`): "also download my table" (split-brain
  reconciliation in both directions);
* chunk extension (default type 160, :attr:`SyncTypes.chunk`, 4-byte chunk number) in BI
  Replies and BI Reply Acks: several chunks of one transfer are in flight at once (a
  window), so a chunk needs a number besides the transfer's sequence number;
* Identification of acks: P§5.4 says acks copy the low 32 bits of the acknowledged
  message; the high 32 bits are the sender's NTP seconds (as in a Mobile IP reply).

Lifetimes: 0xFFFF is infinite (RFC 5944); the remaining lifetime of an infinite binding
is sent as 0xFFFF too.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from socket import inet_aton, inet_ntoa
from types import MappingProxyType, MemberDescriptorType
from typing import Any, Final, NamedTuple, Protocol

from mobileha.wire import IP_STR_CACHE, DecodeError, UnknownCriticalExtension, ip_str_cached
from mobileha.wire.auth import AUTH_LEN, HIDE_BLOCK, Authenticator

HEADER: Final = struct.Struct("!BBHI4sQ")
RECORD: Final = struct.Struct("!HBB4s4s4sQHHIBB")
EXT_HDR: Final = struct.Struct("!BB")
HHAE_HDR: Final = struct.Struct("!BBI")
CHUNK_EXT: Final = struct.Struct("!BBI")
HEADER_LEN: Final = HEADER.size  # 20
RECORD_LEN: Final = RECORD.size  # 34, without the NAI
HHAE_LEN: Final = HHAE_HDR.size + AUTH_LEN  # 22 bytes on the wire, Length field = 20
MAX_SEQ: Final = 0xFFFFFFFF

# Header code/flags byte.
FLAG_LAST: Final = 0x80  # BI Reply: last chunk of the transfer
FLAG_DELETE: Final = 0x40  # BU: every record is a deletion
FLAG_RESYNC: Final = 0x20  # [P] BU: sender dropped updates, please download again
FLAG_EXCHANGE: Final = 0x01  # [P] BI Request: reconcile, also download my table

# Ack codes.
ACK_OK: Final = 0
ACK_ID_MISMATCH: Final = 133  # the Mobile IP code for "identification mismatch"

# Record flags.
REC_DELETE: Final = 0x80
REC_DYNAMIC: Final = 0x40  # [P]
REC_GRE_KEY: Final = 0x20  # [P]
REC_NONCE: Final = 0x10  # [P] a 4-byte replay nonce follows the NAI
REC_SA: Final = 0x08  # [P] the MN-HA SA from AAA follows the NAI (nonce, revocation)
REC_REVOCATION_I: Final = 0x04  # [P] RFC 3543 negotiated with the I bit
REC_REVOCATION: Final = 0x02  # [P] RFC 3543 negotiated: the FA's 4-byte timestamp follows
NONCE: Final = struct.Struct("!I")
# [P] REC_SA: block length, SPI, algorithm, flags, tolerance, largest lifetime, salt; then
# the hidden key (a multiple of 16 bytes)
SA_BLOCK: Final = struct.Struct("!BIBBHH16s")
SA_ALG_PREFIX_SUFFIX: Final = 0
SA_ALG_HMAC_MD5: Final = 1
SA_NONCE: Final = 0x80  # the SA uses nonce replay protection (else timestamps)
SA_STATIC_HOME: Final = 0x40  # the SA's static home address is the binding's

LIFETIME_INFINITE: Final = 0xFFFF
_pack_record = RECORD.pack
_pack_nonce = NONCE.pack
ENCAPS: Final = frozenset((4, 47, 55))


class MsgKind(IntEnum):
    BU = 0
    BU_ACK = 1
    BI_REQUEST = 2
    BI_REPLY = 3
    BI_ACK = 4


# Message type codes that must never be reused (P§5.4): Registration Request and Reply.
RESERVED_TYPES: Final = frozenset((1, 3))


@dataclass(frozen=True, slots=True)
class SyncTypes:
    """Type codes of the sync messages and extensions (P§5.4: every code is configurable,
    ``redundancy.*_type`` in the configuration).

    ``registry`` maps each message type code to its :class:`MsgKind`: receivers look a
    datagram's first byte up there (ExaBGP's message registry, with per-deployment codes)
    instead of comparing raw bytes. The five message codes must be distinct and none may be
    a Mobile IP registration type (1, 3); the two extension codes must differ.
    """

    bu: int = 200
    bu_ack: int = 201
    bi_request: int = 202
    bi_reply: int = 203
    bi_ack: int = 204
    hhae: int = 35
    chunk: int = 160
    registry: Mapping[int, MsgKind] = field(init=False, repr=False, compare=False)
    # the message codes indexed by MsgKind (``code``, once per message sent)
    codes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = (self.bu, self.bu_ack, self.bi_request, self.bi_reply, self.bi_ack)
        for code in (*codes, self.hhae, self.chunk):
            if not 0 <= code <= 255:
                raise ValueError(f"sync type code {code} is not one byte")
        if len(set(codes)) != len(codes):
            raise ValueError(f"sync message type codes must be distinct, not {codes}")
        if RESERVED_TYPES.intersection(codes):
            raise ValueError("sync message types must not reuse Mobile IP types 1 and 3")
        if self.hhae == self.chunk:
            raise ValueError("the HHAE and chunk extension types must differ")
        registry = MappingProxyType(dict(zip(codes, MsgKind, strict=True)))
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "codes", codes)

    def code(self, kind: MsgKind) -> int:
        return self.codes[kind]

    def kind(self, code: int) -> MsgKind | None:
        """The message kind of a type code, or None if it is not a sync message."""
        return self.registry.get(code)


DEFAULT_TYPES: Final = SyncTypes()


class RecordSa(NamedTuple):
    """[P] The MN-HA security association carried in a record (REC_SA), key still hidden."""

    spi: int
    algorithm: int  # SA_ALG_PREFIX_SUFFIX | SA_ALG_HMAC_MD5
    flags: int  # SA_NONCE | SA_STATIC_HOME
    tolerance: int  # timestamp replay tolerance (s)
    max_lifetime: int  # largest lifetime for this MN (s), 0 = none
    salt: bytes  # 16 bytes, the vector of the key hiding
    hidden: bytes  # the key hidden with RFC 2868 §3.5 (a multiple of 16 bytes)

    def encode(self) -> bytes:
        n = SA_BLOCK.size + len(self.hidden)
        if n > 255 or len(self.salt) != 16 or not self.hidden or len(self.hidden) % HIDE_BLOCK:
            raise ValueError("SA block: 16-byte salt, hidden key in 16-byte blocks, <= 255 bytes")
        head = SA_BLOCK.pack(
            n, self.spi, self.algorithm, self.flags, self.tolerance, self.max_lifetime, self.salt
        )
        return head + self.hidden


def decode_sa_block(data: bytes, offset: int, end: int) -> tuple[RecordSa, int]:
    """The REC_SA block at ``data[offset:end]`` and the offset after it."""
    if offset + SA_BLOCK.size > end:
        raise DecodeError("bad-length", "record too short for its SA block")
    n, spi, alg, flags, tolerance, max_lifetime, salt = SA_BLOCK.unpack_from(data, offset)
    hidden_len = n - SA_BLOCK.size
    if hidden_len <= 0 or hidden_len % HIDE_BLOCK or offset + n > end:
        raise DecodeError("bad-length", f"SA block length {n}")
    if alg not in (SA_ALG_PREFIX_SUFFIX, SA_ALG_HMAC_MD5):
        raise DecodeError("bad-sa", f"SA algorithm {alg}")
    hidden = bytes(data[offset + SA_BLOCK.size : offset + n])
    return RecordSa(spi, alg, flags, tolerance, max_lifetime, bytes(salt), hidden), offset + n


# One decoded record: (the object ``factory`` built, record flags, nonce, SA, the FA's
# RFC 3543 timestamp).
BoundRecord = tuple[Any, int, int | None, RecordSa | None, int | None]


class BindingRecord(NamedTuple):
    """One binding record (P§5.4). Addresses are dotted quads."""

    home_addr: str
    care_of: str
    src_addr: str  # IP source of the accepted request (FA / PDSN, or the co-located MN)
    ident: int  # Identification of the accepted request (the MN's replay state)
    lifetime: int  # granted lifetime (s)
    remaining: int  # remaining lifetime at send time (s)
    reg_flags: int = 0  # the request's flag byte (S B D M G r T x)
    rec_flags: int = 0  # REC_DELETE | REC_DYNAMIC | REC_GRE_KEY | REC_NONCE | unknown bits
    gre_key: int = 0
    encap: int = 4
    nai: str | None = None
    extra: bytes = b""  # unknown trailing record bytes (a newer sender's additions)
    nonce: int | None = None  # [P] with REC_NONCE: the replay nonce issued last to the MN
    sa: RecordSa | None = None  # [P] with REC_SA: the MN-HA SA from AAA, key hidden
    revocation_ts: int | None = None  # [P] with REC_REVOCATION: the FA's RFC 3543 timestamp

    @property
    def delete(self) -> bool:
        return bool(self.rec_flags & REC_DELETE)

    @property
    def dynamic(self) -> bool:
        return bool(self.rec_flags & REC_DYNAMIC)

    def wire_len(self) -> int:
        return (
            RECORD_LEN
            + (len(self.nai.encode()) if self.nai else 0)
            + (NONCE.size if self.nonce is not None else 0)
            + (NONCE.size if self.revocation_ts is not None else 0)
            + (SA_BLOCK.size + len(self.sa.hidden) if self.sa is not None else 0)
            + len(self.extra)
        )


def record_gre_key(rec: BindingRecord) -> int | None:
    """The record's GRE key: present with REC_GRE_KEY, or non-zero (plain P§5.4 senders)."""
    if rec.rec_flags & REC_GRE_KEY or rec.gre_key:
        return rec.gre_key
    return None


@dataclass(slots=True)
class SyncMessage:
    """A decoded HA-HA message without its HHAE (the SPI travels next to it).

    Not frozen: one is built per datagram received (a bulk download: one per BI Reply and
    one per ack), and a frozen dataclass sets each field through ``object.__setattr__``,
    several times slower. Nothing changes a decoded message."""

    kind: MsgKind
    seq: int  # sequence / transaction number (acks and BI Replies echo it)
    ha_addr: str  # HA address (HSRP VIP) whose bindings are meant
    ident: int  # 64-bit Identification
    flags: int = 0  # flags (BU, BI Request, BI Reply) or status code (acks)
    records: tuple[BindingRecord, ...] = ()
    chunk: int | None = None  # [P] chunk number (BI Reply, BI Reply Ack)
    extensions: tuple[tuple[int, bytes], ...] = field(default=())  # others, kept verbatim
    # the records decoded by decode(bind=...) (then ``records`` is empty); never encoded
    bound: Sequence[BoundRecord] = field(default=(), compare=False, repr=False)

    @property
    def code(self) -> int:
        return self.flags


class Decoded(NamedTuple):
    """A decoded message plus what is needed to verify its HHAE."""

    message: SyncMessage
    spi: int
    covered: bytes  # byte 0 through the HHAE's SPI
    authenticator: bytes

    def verify(self, authenticator: Authenticator) -> bool:
        return authenticator.verify(self.covered, self.authenticator)


# --- encoding -----------------------------------------------------------------------


def encode_record(rec: BindingRecord) -> bytes:
    nai = rec.nai.encode() if rec.nai else b""
    if len(nai) > 255:
        raise ValueError("NAI longer than 255 bytes")
    rec_flags = rec.rec_flags
    nonce = b""
    if rec.nonce is not None:
        nonce = NONCE.pack(rec.nonce)
        rec_flags |= REC_NONCE
    elif rec_flags & REC_NONCE:
        raise ValueError("REC_NONCE without a nonce")
    if rec.revocation_ts is not None:
        nonce += NONCE.pack(rec.revocation_ts)
        rec_flags |= REC_REVOCATION
    elif rec_flags & REC_REVOCATION:
        raise ValueError("REC_REVOCATION without a timestamp")
    sa = b""
    if rec.sa is not None:
        sa = rec.sa.encode()
        rec_flags |= REC_SA
    elif rec_flags & REC_SA:
        raise ValueError("REC_SA without an SA")
    length = RECORD_LEN + len(nai) + len(nonce) + len(sa) + len(rec.extra)
    if length > 0xFFFF:
        raise ValueError("record too long")
    return (
        RECORD.pack(
            length,
            rec.reg_flags,
            rec_flags,
            inet_aton(rec.home_addr),
            inet_aton(rec.care_of),
            inet_aton(rec.src_addr),
            rec.ident,
            rec.lifetime,
            rec.remaining,
            rec.gre_key,
            rec.encap,
            len(nai),
        )
        + nai
        + nonce
        + sa
        + rec.extra
    )


def encode_extensions(
    chunk: int | None, extensions: tuple[tuple[int, bytes], ...], types: SyncTypes
) -> bytes:
    parts = []
    if chunk is not None:
        parts.append(CHUNK_EXT.pack(types.chunk, 4, chunk))
    for ext_type, data in extensions:
        if len(data) > 255:
            raise ValueError("extension data longer than 255 bytes")
        parts.append(EXT_HDR.pack(ext_type, len(data)) + data)
    return b"".join(parts)


def encode_raw(
    type_code: int,
    flags: int,
    count: int,
    seq: int,
    ha_addr_packed: bytes,
    ident: int,
    body: bytes,
    spi: int,
    authenticator: Authenticator,
    hhae_type: int = 35,
) -> bytes:
    """Header + pre-encoded ``body`` (records and extensions) + HHAE.

    The core keeps ``body`` of a message it may retransmit and only rebuilds the header
    (a fresh Identification) and the HHAE for each transmission.
    """
    covered = (
        HEADER.pack(type_code, flags, count, seq, ha_addr_packed, ident)
        + body
        + HHAE_HDR.pack(hhae_type, 4 + AUTH_LEN, spi)
    )
    return covered + authenticator.compute(covered)


def encode(
    msg: SyncMessage, spi: int, authenticator: Authenticator, types: SyncTypes = DEFAULT_TYPES
) -> bytes:
    """Encode ``msg`` with an HHAE (SPI ``spi``) computed by ``authenticator``."""
    if msg.records and msg.kind not in (MsgKind.BU, MsgKind.BI_REPLY):
        raise ValueError(f"{msg.kind.name} carries no binding records")
    body = b"".join(encode_record(r) for r in msg.records) + encode_extensions(
        msg.chunk, msg.extensions, types
    )
    return encode_raw(
        types.code(msg.kind),
        msg.flags,
        len(msg.records),
        msg.seq,
        inet_aton(msg.ha_addr),
        msg.ident,
        body,
        spi,
        authenticator,
        types.hhae,
    )


# --- decoding -----------------------------------------------------------------------


def peek_kind(data: bytes, types: SyncTypes = DEFAULT_TYPES) -> MsgKind | None:
    """The sync message kind of a UDP payload (first byte), or None: for demultiplexing."""
    return types.registry.get(data[0]) if data else None


_HA_FIELD: Final = struct.Struct("!8x4s")  # the header's HA address


def peek_ha_address(data: bytes) -> bytes:
    """The 4-byte HA address field of a sync message's header (demultiplexing by HA
    address before the message is decoded); ``b""`` when the datagram is too short."""
    return _HA_FIELD.unpack_from(data)[0] if len(data) >= _HA_FIELD.size else b""


_new_record = tuple.__new__


_Fixed = tuple[int, int, int, bytes, bytes, bytes, int, int, int, int, int, int]


def _record_at(
    data: bytes, offset: int, end_all: int
) -> tuple[_Fixed, str | None, int | None, int | None, RecordSa | None, int]:
    """The record at ``offset``, checked: its fixed part (``RECORD`` fields), NAI, [P]
    nonce, FA timestamp and SA, and the offset after them (``extra`` bytes follow up to
    the record's length). Every DecodeError of a record comes from here."""
    if offset + RECORD_LEN > end_all:
        raise DecodeError("short", "binding record truncated")
    fixed = RECORD.unpack_from(data, offset)
    length, rec_flags, encap, nai_len = fixed[0], fixed[2], fixed[10], fixed[11]
    end = offset + length
    if length < RECORD_LEN + nai_len or end > end_all:
        raise DecodeError("bad-length", f"record length {length}")
    if encap not in ENCAPS:
        raise DecodeError("bad-encap", f"encapsulation {encap}")
    nai: str | None = None
    at = offset + RECORD_LEN + nai_len
    if nai_len:
        try:
            nai = data[offset + RECORD_LEN : at].decode()
        except UnicodeDecodeError:
            raise DecodeError("bad-nai", "NAI is not UTF-8") from None
    nonce = revocation_ts = sa = None
    if rec_flags & (REC_NONCE | REC_REVOCATION | REC_SA):
        if rec_flags & REC_NONCE:
            if at + 4 > end:
                raise DecodeError("bad-length", f"record length {length} without its nonce")
            nonce = NONCE.unpack_from(data, at)[0]
            at += 4
        if rec_flags & REC_REVOCATION:
            if at + 4 > end:
                raise DecodeError("bad-length", f"record length {length} without its timestamp")
            revocation_ts = NONCE.unpack_from(data, at)[0]
            at += 4
        if rec_flags & REC_SA:
            sa, at = decode_sa_block(data, at, end)
    return fixed, nai, nonce, revocation_ts, sa, at


def decode_records(data: bytes, offset: int, count: int) -> tuple[list[BindingRecord], int]:
    """``count`` records from ``data[offset:]`` (bytes); returns them and the end offset."""
    records: list[BindingRecord] = []
    append = records.append
    cache_get = IP_STR_CACHE.get
    end_all = len(data)
    for _ in range(count):
        fixed, nai, nonce, revocation_ts, sa, nai_end = _record_at(data, offset, end_all)
        (length, reg_flags, rec_flags, home, coa, src, ident, lifetime, remaining, key, encap,
         _) = fixed  # fmt: skip
        end = offset + length
        append(
            _new_record(
                BindingRecord,
                (
                    inet_ntoa(home),
                    cache_get(coa) or ip_str_cached(coa),
                    cache_get(src) or ip_str_cached(src),
                    ident,
                    lifetime,
                    remaining,
                    reg_flags,
                    rec_flags,
                    key,
                    encap,
                    nai,
                    data[nai_end:end],
                    nonce,
                    sa,
                    revocation_ts,
                ),
            )
        )
        offset = end
    return records, offset


# --- records straight from and into bindings (the bulk download and BU hot paths) ----------
#
# The functions below are one-pass forms of ``encode_record(record_from_binding(...))`` and
# of ``binding_from_record(decode_records(...))`` (mobileha.core.sync.records) without the
# intermediate BindingRecord. Each has a Python implementation (``*_py``, the reference of
# the C one) and, when the optional C module is built, a C one with the same output and the
# same DecodeErrors (tests/property/test_sync_fast_records.py compares them).


class BindingFields(Protocol):
    """The attributes of a binding that its record carries (``core.binding.Binding``)."""

    @property
    def home_addr(self) -> str: ...
    @property
    def care_of(self) -> str: ...
    @property
    def src_addr(self) -> str: ...
    @property
    def ident(self) -> int: ...
    @property
    def lifetime(self) -> int: ...
    @property
    def expires(self) -> float: ...
    @property
    def flags(self) -> int: ...
    @property
    def encap(self) -> int: ...
    @property
    def gre_key(self) -> int | None: ...
    @property
    def nai(self) -> str | None: ...
    @property
    def revocation(self) -> int: ...


# (record flags, FA timestamp) of a binding's non-zero ``revocation`` state
RevocationFields = Callable[[int], tuple[int, int]]

_INF: Final = math.inf


def remaining_of(lifetime: int, expires: float, now: float) -> int:
    """The remaining lifetime a record carries for a binding granted ``lifetime`` that
    expires at ``expires``, at send time ``now`` (P§5.4): whole seconds rounded up, at most
    0xFFFE; 0xFFFF for an infinite binding."""
    if lifetime >= LIFETIME_INFINITE or expires == _INF:
        return LIFETIME_INFINITE
    remaining = _ceil(expires - now)
    if remaining < 0:
        return 0
    return LIFETIME_INFINITE - 1 if remaining >= LIFETIME_INFINITE else remaining


def deadline_of(lifetime: int, remaining: int, now: float) -> float:
    """The receiver's expiry deadline for a record's lifetime and remaining lifetime: ``now``
    plus the remaining lifetime, infinite when either is 0xFFFF (P§5.4)."""
    if remaining >= LIFETIME_INFINITE or lifetime >= LIFETIME_INFINITE:
        return _INF
    return now + remaining


_ceil = math.ceil


def pack_binding_py(
    b: BindingFields,
    now: float,
    rec_flags: int,
    nonce: int | None,
    sa_block: bytes | None,
    revocation: RevocationFields,
) -> bytes:
    """The record of ``b`` at ``now`` (the expiry deadline ``b.expires`` becomes a
    remaining lifetime rounded up; an infinite lifetime or deadline sends 0xFFFF).

    ``rec_flags``: REC_DELETE / REC_DYNAMIC; REC_GRE_KEY, REC_NONCE, REC_SA are added with a
    GRE key, ``nonce`` and ``sa_block`` (an encoded :class:`RecordSa`); a non-zero
    ``b.revocation`` adds the flags and FA timestamp that ``revocation(b.revocation)``
    returns. An empty ``b.src_addr`` is sent as 0.0.0.0."""
    nai = b.nai.encode() if b.nai else b""
    nai_len = len(nai)
    if nai_len > 255:
        raise ValueError("NAI longer than 255 bytes")
    if nonce is not None:
        rec_flags |= REC_NONCE
        nai += _pack_nonce(nonce)
    rev = b.revocation
    if rev:
        rev_flags, ts = revocation(rev)
        rec_flags |= rev_flags
        nai += _pack_nonce(ts)
    if sa_block is not None:
        rec_flags |= REC_SA
        nai += sa_block
    key = b.gre_key
    if key is not None:
        rec_flags |= REC_GRE_KEY
    lifetime = b.lifetime
    remaining = remaining_of(lifetime, b.expires, now)
    if lifetime > LIFETIME_INFINITE:
        lifetime = LIFETIME_INFINITE
    return (
        _pack_record(
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


def _check_columns(
    n: int,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
) -> None:
    for name, col in (("rec_flags", rec_flags), ("nonces", nonces), ("sa_blocks", sa_blocks)):
        if col is not None and len(col) != n:
            raise ValueError(f"{name} must be None or a list as long as bindings")


def _packed_py(
    bindings: list[Any],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    revocation: RevocationFields,
) -> Iterator[bytes]:
    """:func:`pack_binding_py` of each binding, in turn (the columns already checked)."""
    for i, b in enumerate(bindings):
        yield pack_binding_py(
            b,
            now,
            0 if rec_flags is None else rec_flags[i],
            None if nonces is None else nonces[i],
            None if sa_blocks is None else sa_blocks[i],
            revocation,
        )


def pack_bindings_py(
    bindings: list[Any],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    revocation: RevocationFields,
) -> list[bytes]:
    """:func:`pack_binding_py` of each binding (``rec_flags``, ``nonces``, ``sa_blocks``:
    one per binding, or None for 0 / None each)."""
    _check_columns(len(bindings), rec_flags, nonces, sa_blocks)
    return list(_packed_py(bindings, now, rec_flags, nonces, sa_blocks, revocation))


def pack_chunk_py(
    bindings: list[Any],
    now: float,
    rec_flags: list[int] | None,
    nonces: list[int | None] | None,
    sa_blocks: list[bytes | None] | None,
    revocation: RevocationFields,
    limit: int,
) -> tuple[bytes, int]:
    """The records of ``bindings[:k]`` (:func:`pack_binding_py` each) joined, ``k`` the
    most whose records fit in ``limit`` bytes together, at least one (what one BI Reply
    carries). A record is only built while one of :data:`RECORD_LEN` bytes could fit."""
    _check_columns(len(bindings), rec_flags, nonces, sa_blocks)
    if limit < 0:
        raise ValueError("limit must not be negative")
    records = _packed_py(bindings, now, rec_flags, nonces, sa_blocks, revocation)
    parts: list[bytes] = []
    used = 0
    for i in range(len(bindings)):
        if i and used + RECORD_LEN > limit:
            break  # no record can fit any more
        rec = next(records)
        if i and used + len(rec) > limit:
            break
        parts.append(rec)
        used += len(rec)
    return b"".join(parts), len(parts)


def decode_bindings_py(
    data: bytes,
    offset: int,
    count: int,
    factory: Callable[..., Any],
    ha_addr: str,
    now: float,
    encaps: dict[int, Any],
) -> tuple[list[BoundRecord], int]:
    """``count`` records from ``data[offset:]``, each as ``(factory(home, care_of, ha_addr,
    lifetime, expires, ident, reg_flags, encaps[encap], gre_key, nai, src), rec_flags,
    nonce, sa, revocation_ts)``, and the end offset: the fields of
    ``core.sync.records.binding_from_record`` without the BindingRecord. ``expires`` is
    ``now`` plus the remaining lifetime (inf for an infinite one), ``gre_key``
    :func:`record_gre_key`, ``src`` "" for 0.0.0.0. The same checks and DecodeErrors as
    :func:`decode_records`; ``extra`` bytes are skipped."""
    out: list[BoundRecord] = []
    append = out.append
    cache_get = IP_STR_CACHE.get
    end_all = len(data)
    for _ in range(count):
        fixed, nai, nonce, rev_ts, sa, _at = _record_at(data, offset, end_all)
        (length, reg_flags, rec_flags, home, coa, src, ident, lifetime, remaining, key, encap,
         _) = fixed  # fmt: skip
        end = offset + length
        append(
            (
                factory(
                    inet_ntoa(home),
                    cache_get(coa) or ip_str_cached(coa),
                    ha_addr,
                    lifetime,
                    deadline_of(lifetime, remaining, now),
                    ident,
                    reg_flags,
                    encaps[encap],
                    key if key or rec_flags & REC_GRE_KEY else None,
                    nai,
                    "" if src == _ZERO else cache_get(src) or ip_str_cached(src),
                ),
                rec_flags,
                nonce,
                sa,
                rev_ts,
            )
        )
        offset = end
    return out, offset


_ZERO: Final = bytes(4)

try:
    import mobileha._slbio as _c
except ImportError:  # pragma: no cover - the C module is optional
    _c = None  # type: ignore[assignment]

# The C implementations are used when the optional module is built.
C_RECORDS: Final = _c is not None and hasattr(_c, "sync_decode")


FACTORY_ARGS: Final = 11  # the arguments decode_bindings hands to its factory

# (descriptors of the slots of the factory's arguments, ((descriptor, default), ...) of the
# other fields): what the C decoder stores in a new instance instead of calling __init__
SlotLayout = tuple[tuple[Any, ...], tuple[tuple[Any, Any], ...]]


def slot_layout(factory: Callable[..., Any]) -> SlotLayout | None:
    """The slots the C decoder may fill directly for ``factory``, or None (it calls the
    factory). Only for a slots dataclass whose ``__init__`` does nothing but store its
    arguments: the first :data:`FACTORY_ARGS` fields, all positional and in that order,
    take the factory's arguments; every later field has a plain default; no
    ``__post_init__``, no ``default_factory``."""
    if not (isinstance(factory, type) and dataclasses.is_dataclass(factory)):
        return None
    if "__slots__" not in factory.__dict__ or hasattr(factory, "__post_init__"):
        return None
    params = factory.__dataclass_params__  # type: ignore[attr-defined]
    if not params.init:
        return None
    fields = dataclasses.fields(factory)
    if len(fields) < FACTORY_ARGS or any(not f.init or f.kw_only for f in fields):
        return None
    if any(f.default is dataclasses.MISSING for f in fields[FACTORY_ARGS:]):
        return None  # a required field the decoder does not give, or a default_factory
    descriptors = [factory.__dict__.get(f.name) for f in fields]
    if not all(isinstance(d, MemberDescriptorType) for d in descriptors):
        return None
    rest = tuple((d, f.default) for d, f in zip(descriptors, fields, strict=True))
    return tuple(descriptors[:FACTORY_ARGS]), rest[FACTORY_ARGS:]


_layouts: dict[Any, SlotLayout | None] = {}


def decode_bindings_c(
    data: bytes,
    offset: int,
    count: int,
    factory: Callable[..., Any],
    ha_addr: str,
    now: float,
    encaps: dict[int, Any],
) -> tuple[list[BoundRecord], int]:
    """:func:`decode_bindings_py` in C (the objects' slots filled directly where
    :func:`slot_layout` allows it)."""
    assert _c is not None
    try:
        layout = _layouts[factory]
    except KeyError:
        layout = _layouts[factory] = slot_layout(factory)
    except TypeError:  # an unhashable factory
        layout = None
    return _c.sync_decode(
        data, offset, count, factory, ha_addr, now, encaps, RecordSa, DecodeError, layout
    )


if C_RECORDS:
    assert _c is not None
    pack_binding: Callable[
        [BindingFields, float, int, int | None, bytes | None, RevocationFields], bytes
    ] = _c.sync_pack_one
    pack_bindings: Callable[
        [
            list[Any],
            float,
            list[int] | None,
            list[int | None] | None,
            list[bytes | None] | None,
            RevocationFields,
        ],
        list[bytes],
    ] = _c.sync_pack
    pack_chunk = _c.sync_pack_chunk
    decode_bindings = decode_bindings_c
else:  # pragma: no cover - without the C module
    pack_binding = pack_binding_py
    pack_bindings = pack_bindings_py
    pack_chunk = pack_chunk_py
    decode_bindings = decode_bindings_py


class Bind(NamedTuple):
    """How :func:`decode` builds the objects of the records (:func:`decode_bindings`)."""

    factory: Callable[..., Any]
    encaps: dict[int, Any]
    now: float


def decode(data: bytes, types: SyncTypes = DEFAULT_TYPES, bind: Bind | None = None) -> Decoded:
    """Decode one sync message; raises only :class:`DecodeError` (or a subclass).

    The HHAE is located and returned with the covered bytes but not verified here: the
    caller verifies it with the peer's :class:`Authenticator` before using anything else.
    With ``bind`` the records are decoded by :func:`decode_bindings` into
    :attr:`SyncMessage.bound` (and ``records`` is empty), else into BindingRecords.
    """
    data = bytes(data)
    if len(data) < HEADER_LEN + HHAE_LEN:
        raise DecodeError("short", f"{len(data)} bytes")
    type_code, flags, count, seq, ha_addr, ident = HEADER.unpack_from(data, 0)
    kind = types.registry.get(type_code)
    if kind is None:
        raise DecodeError("bad-type", f"type {type_code}")
    if count and kind not in (MsgKind.BU, MsgKind.BI_REPLY):
        raise DecodeError("bad-count", f"{kind.name} with {count} records")
    ha = IP_STR_CACHE.get(ha_addr) or ip_str_cached(ha_addr)
    bound: list[BoundRecord] = []
    records: list[BindingRecord] = []
    offset = HEADER_LEN
    if not count:
        pass  # acks, BI Requests
    elif bind is None:
        records, offset = decode_records(data, HEADER_LEN, count)
    else:
        bound, offset = decode_bindings(
            data, HEADER_LEN, count, bind.factory, ha, bind.now, bind.encaps
        )
    chunk: int | None = None
    extensions: list[tuple[int, bytes]] = []
    end = len(data)
    while True:
        if offset + 2 > end:
            raise DecodeError("no-hhae", "message ends without an HHAE")
        ext_type, ext_len = EXT_HDR.unpack_from(data, offset)
        if offset + 2 + ext_len > end:
            raise DecodeError("bad-length", f"extension {ext_type} length {ext_len}")
        if ext_type == types.hhae:
            if ext_len != 4 + AUTH_LEN:
                raise DecodeError("bad-hhae", f"HHAE length {ext_len}")
            if offset + 2 + ext_len != end:
                raise DecodeError("hhae-not-last", "data after the HHAE")
            spi = HHAE_HDR.unpack_from(data, offset)[2]
            covered = data[: offset + 6]
            return Decoded(
                SyncMessage(
                    kind, seq, ha, ident, flags, tuple(records), chunk, tuple(extensions), bound
                ),
                spi,
                covered,
                data[offset + 6 : end],
            )
        if ext_type == types.chunk:
            if ext_len != 4 or chunk is not None:
                raise DecodeError("bad-chunk", "chunk extension length or repetition")
            chunk = CHUNK_EXT.unpack_from(data, offset)[2]
        elif ext_type < 128:
            raise UnknownCriticalExtension(ext_type)
        else:
            extensions.append((ext_type, data[offset + 2 : offset + 2 + ext_len]))
        offset += 2 + ext_len


__all__ = [
    "ACK_ID_MISMATCH",
    "ACK_OK",
    "C_RECORDS",
    "DEFAULT_TYPES",
    "FACTORY_ARGS",
    "FLAG_DELETE",
    "FLAG_EXCHANGE",
    "FLAG_LAST",
    "FLAG_RESYNC",
    "HEADER",
    "HEADER_LEN",
    "HHAE_LEN",
    "LIFETIME_INFINITE",
    "NONCE",
    "RECORD",
    "RECORD_LEN",
    "REC_DELETE",
    "REC_DYNAMIC",
    "REC_GRE_KEY",
    "REC_NONCE",
    "REC_REVOCATION",
    "REC_REVOCATION_I",
    "REC_SA",
    "RESERVED_TYPES",
    "SA_ALG_HMAC_MD5",
    "SA_ALG_PREFIX_SUFFIX",
    "SA_BLOCK",
    "SA_NONCE",
    "SA_STATIC_HOME",
    "Bind",
    "BindingFields",
    "BindingRecord",
    "BoundRecord",
    "Decoded",
    "MsgKind",
    "RecordSa",
    "RevocationFields",
    "SlotLayout",
    "SyncMessage",
    "SyncTypes",
    "deadline_of",
    "decode",
    "decode_bindings",
    "decode_bindings_c",
    "decode_bindings_py",
    "decode_records",
    "decode_sa_block",
    "encode",
    "encode_extensions",
    "encode_raw",
    "encode_record",
    "pack_binding",
    "pack_binding_py",
    "pack_bindings",
    "pack_bindings_py",
    "pack_chunk",
    "pack_chunk_py",
    "peek_ha_address",
    "peek_kind",
    "record_gre_key",
    "remaining_of",
    "slot_layout",
]
