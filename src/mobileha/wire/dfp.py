"""Dynamic Feedback Protocol (DFP) codec, P§6.5.

Layout follows Cisco's BSD reference implementation (``wire.h``) and its Wireshark plugin,
which follow draft-eck-dfp-01: an 8-byte header ``Version(1)=1 Reserved(1) Type(2)
Length(4)`` (length includes the header), then TLVs ``Type(2) Length(2) Value`` (length
includes the 4-byte TLV header).

Security TLV [P]: the sources leave the digest input unspecified (the reference handler is a
stub), so we use keyed MD5 "prefix+suffix" ``MD5(key || message || key)`` computed over the
whole message with the 16 digest bytes zeroed. When present it must be the first TLV.

Codecs only: no state, no I/O. Every decoder raises :class:`DecodeError` and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from mobileha.wire import DecodeError, ip_bytes, ip_str

DFP_VERSION = 1
DFP_PORT_DRAFT = 8080  # draft-eck-dfp-01
DFP_PORT_REFERENCE = 8081  # Cisco reference agent and its dissector

# Message types.
PREFERENCE_INFORMATION = 0x0101  # agent -> manager
SERVER_STATE = 0x0201  # manager -> agent
DFP_PARAMETERS = 0x0301  # manager -> agent
BINDID_REQUEST = 0x0401  # manager -> agent
BINDID_REPORT = 0x0402  # agent -> manager
BINDID_CHANGE_NOTIFY = 0x0403  # agent -> manager
PRIVATE_FIRST, PRIVATE_LAST = 0x0500, 0x05FF

MESSAGE_NAMES = {
    PREFERENCE_INFORMATION: "Preference Information",
    SERVER_STATE: "Server State",
    DFP_PARAMETERS: "DFP Parameters",
    BINDID_REQUEST: "BindID Request",
    BINDID_REPORT: "BindID Report",
    BINDID_CHANGE_NOTIFY: "BindID Change Notify",
}

# TLV types.
TLV_SECURITY = 0x0001
TLV_LOAD = 0x0002
TLV_KEEPALIVE = 0x0101
TLV_BINDID_TABLE = 0x0301

SEC_ALG_MD5 = 1

HEADER = struct.Struct("!BBHI")
TLV_HEADER = struct.Struct("!HH")
_SEC_MD5 = struct.Struct("!II16s")  # algorithm, key id, digest
_SEC_ALG = struct.Struct("!I")
_LOAD_FIXED = struct.Struct("!HBBHH")  # port, protocol, flags, numhosts, reserved
_LOAD_HOST = struct.Struct("!4sHH")  # address, bindid, weight
_KEEPALIVE = struct.Struct("!I")
_BIND_FIXED = struct.Struct("!4sHBBHH")  # address, port, protocol, reserved, numentries, reserved
_BIND_ENTRY = struct.Struct("!HH4s4s")  # bindid, reserved, address, netmask

MAX_MESSAGE = 65535  # framing guard: no legitimate DFP message comes near this
_SEC_DIGEST_OFFSET = HEADER.size + TLV_HEADER.size + 8  # digest of a first MD5 Security TLV


# --------------------------------------------------------------------------- TLVs


@dataclass(frozen=True, slots=True)
class SecurityTlv:
    """Security TLV (0x0001). ``algorithm`` 1 = MD5 with ``key_id`` and a 16-byte digest.

    For any other algorithm the value after the algorithm word is kept in ``data`` so that it
    re-encodes byte-exact.
    """

    algorithm: int = SEC_ALG_MD5
    key_id: int = 0
    digest: bytes = bytes(16)
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HostWeight:
    address: str
    bind_id: int = 0
    weight: int = 0


@dataclass(frozen=True, slots=True)
class LoadTlv:
    """Load TLV (0x0002): port (0 = any), protocol (0 = any), flags and host weights."""

    hosts: tuple[HostWeight, ...] = ()
    port: int = 0
    protocol: int = 0
    flags: int = 0
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class KeepaliveTlv:
    """Keepalive TLV (0x0101): report interval in seconds; 0 = informational."""

    interval: int


@dataclass(frozen=True, slots=True)
class BindIdEntry:
    bind_id: int
    address: str
    netmask: str
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class BindIdTableTlv:
    """BindID Table TLV (0x0301)."""

    address: str
    port: int = 0
    protocol: int = 0
    entries: tuple[BindIdEntry, ...] = ()
    reserved1: int = 0
    reserved2: int = 0


@dataclass(frozen=True, slots=True)
class UnknownTlv:
    """A TLV we do not interpret (reserved/private ranges); kept byte-exact."""

    type: int
    data: bytes


Tlv = SecurityTlv | LoadTlv | KeepaliveTlv | BindIdTableTlv | UnknownTlv


@dataclass(frozen=True, slots=True)
class DfpMessage:
    """One DFP message: a type and its TLVs (a Security TLV, if any, first)."""

    type: int
    tlvs: tuple[Tlv, ...] = ()
    reserved: int = 0
    version: int = DFP_VERSION

    @property
    def name(self) -> str:
        if PRIVATE_FIRST <= self.type <= PRIVATE_LAST:
            return "Private"
        return MESSAGE_NAMES.get(self.type, f"Unknown 0x{self.type:04x}")

    @property
    def security(self) -> SecurityTlv | None:
        if self.tlvs and isinstance(self.tlvs[0], SecurityTlv):
            return self.tlvs[0]
        return None

    def loads(self) -> list[LoadTlv]:
        return [t for t in self.tlvs if isinstance(t, LoadTlv)]

    def weights(self) -> list[HostWeight]:
        return [h for t in self.tlvs if isinstance(t, LoadTlv) for h in t.hosts]


# --------------------------------------------------------------------------- encode


def _encode_tlv(tlv: Tlv) -> bytes:
    if isinstance(tlv, SecurityTlv):
        if tlv.algorithm == SEC_ALG_MD5:
            if len(tlv.digest) != 16 or tlv.data:
                raise ValueError("MD5 security TLV needs a 16-byte digest and no extra data")
            value = _SEC_MD5.pack(tlv.algorithm, tlv.key_id, tlv.digest)
        else:
            if tlv.key_id or tlv.digest != bytes(16):
                raise ValueError("key_id/digest belong to the MD5 algorithm only")
            value = _SEC_ALG.pack(tlv.algorithm) + tlv.data
        ttype = TLV_SECURITY
    elif isinstance(tlv, LoadTlv):
        parts = [_LOAD_FIXED.pack(tlv.port, tlv.protocol, tlv.flags, len(tlv.hosts), tlv.reserved)]
        for h in tlv.hosts:
            parts.append(_LOAD_HOST.pack(ip_bytes(h.address), h.bind_id, h.weight))
        value = b"".join(parts)
        ttype = TLV_LOAD
    elif isinstance(tlv, KeepaliveTlv):
        value = _KEEPALIVE.pack(tlv.interval)
        ttype = TLV_KEEPALIVE
    elif isinstance(tlv, BindIdTableTlv):
        parts = [
            _BIND_FIXED.pack(
                ip_bytes(tlv.address),
                tlv.port,
                tlv.protocol,
                tlv.reserved1,
                len(tlv.entries),
                tlv.reserved2,
            )
        ]
        for e in tlv.entries:
            parts.append(
                _BIND_ENTRY.pack(e.bind_id, e.reserved, ip_bytes(e.address), ip_bytes(e.netmask))
            )
        value = b"".join(parts)
        ttype = TLV_BINDID_TABLE
    else:
        if tlv.type in (TLV_SECURITY, TLV_LOAD, TLV_KEEPALIVE, TLV_BINDID_TABLE):
            raise ValueError("UnknownTlv must not carry a known TLV type")
        value = tlv.data
        ttype = tlv.type
    if len(value) + 4 > 0xFFFF:
        raise ValueError("TLV too long")
    return TLV_HEADER.pack(ttype, len(value) + 4) + value


def encode(msg: DfpMessage) -> bytes:
    """Encode a message. A Security TLV is allowed only as the first TLV."""
    for i, t in enumerate(msg.tlvs):
        if isinstance(t, SecurityTlv) and i != 0:
            raise ValueError("the Security TLV must be the first TLV")
    body = b"".join(_encode_tlv(t) for t in msg.tlvs)
    return HEADER.pack(msg.version, msg.reserved, msg.type, HEADER.size + len(body)) + body


# --------------------------------------------------------------------------- decode


def _decode_tlv(ttype: int, v: bytes) -> Tlv:
    if ttype == TLV_SECURITY:
        if len(v) < 4:
            raise DecodeError("bad-length", "security TLV shorter than its algorithm")
        (alg,) = _SEC_ALG.unpack_from(v)
        if alg == SEC_ALG_MD5:
            if len(v) != _SEC_MD5.size:
                raise DecodeError("bad-length", f"MD5 security TLV value {len(v)} != 24")
            _, key_id, digest = _SEC_MD5.unpack(v)
            return SecurityTlv(alg, key_id, digest)
        return SecurityTlv(alg, 0, bytes(16), v[4:])
    if ttype == TLV_LOAD:
        if len(v) < _LOAD_FIXED.size:
            raise DecodeError("bad-length", "load TLV shorter than 8 bytes")
        port, proto, flags, n, res = _LOAD_FIXED.unpack_from(v)
        if len(v) != _LOAD_FIXED.size + n * _LOAD_HOST.size:
            raise DecodeError("bad-length", f"load TLV length does not match {n} hosts")
        hosts = []
        off = _LOAD_FIXED.size
        for _ in range(n):
            a, bid, w = _LOAD_HOST.unpack_from(v, off)
            hosts.append(HostWeight(ip_str(a), bid, w))
            off += _LOAD_HOST.size
        return LoadTlv(tuple(hosts), port, proto, flags, res)
    if ttype == TLV_KEEPALIVE:
        if len(v) != _KEEPALIVE.size:
            raise DecodeError("bad-length", "keepalive TLV value must be 4 bytes")
        return KeepaliveTlv(_KEEPALIVE.unpack(v)[0])
    if ttype == TLV_BINDID_TABLE:
        if len(v) < _BIND_FIXED.size:
            raise DecodeError("bad-length", "BindID table TLV shorter than 12 bytes")
        a, port, proto, r1, n, r2 = _BIND_FIXED.unpack_from(v)
        if len(v) != _BIND_FIXED.size + n * _BIND_ENTRY.size:
            raise DecodeError("bad-length", f"BindID table length does not match {n} entries")
        entries = []
        off = _BIND_FIXED.size
        for _ in range(n):
            bid, res, ea, em = _BIND_ENTRY.unpack_from(v, off)
            entries.append(BindIdEntry(bid, ip_str(ea), ip_str(em), res))
            off += _BIND_ENTRY.size
        return BindIdTableTlv(ip_str(a), port, proto, tuple(entries), r1, r2)
    return UnknownTlv(ttype, v)


def decode_header(data: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """Check and unpack a message header: returns (version, type, length).

    An unknown version is an error: the stream cannot be resynchronised (P§6.5), so a TCP
    receiver closes the connection.
    """
    if len(data) < HEADER.size:
        raise DecodeError("short", f"{len(data)} bytes < 8-byte DFP header")
    version, _res, mtype, length = HEADER.unpack_from(data)
    if version != DFP_VERSION:
        raise DecodeError("bad-version", f"DFP version {version}")
    if length < HEADER.size:
        raise DecodeError("bad-length", f"message length {length} < 8")
    if length > MAX_MESSAGE:
        raise DecodeError("too-long", f"message length {length}")
    return version, mtype, length


def decode(data: bytes | bytearray | memoryview) -> DfpMessage:
    """Decode exactly one message (the buffer must hold exactly its length)."""
    data = bytes(data)
    version, mtype, length = decode_header(data)
    if length != len(data):
        raise DecodeError("bad-length", f"header says {length}, buffer holds {len(data)}")
    reserved = data[1]
    tlvs: list[Tlv] = []
    off = HEADER.size
    while off < length:
        if length - off < TLV_HEADER.size:
            raise DecodeError("short", "truncated TLV header")
        ttype, tlen = TLV_HEADER.unpack_from(data, off)
        if tlen < TLV_HEADER.size or off + tlen > length:
            raise DecodeError("bad-length", f"TLV 0x{ttype:04x} length {tlen}")
        if ttype == TLV_SECURITY and tlvs:
            raise DecodeError("security-not-first", "the Security TLV must be the first TLV")
        tlvs.append(_decode_tlv(ttype, data[off + TLV_HEADER.size : off + tlen]))
        off += tlen
    return DfpMessage(mtype, tuple(tlvs), reserved, version)


# --------------------------------------------------------------------------- security [P]


def _digest(key: bytes, zeroed: bytes) -> bytes:
    return hashlib.md5(key + zeroed + key).digest()


def sign(msg: DfpMessage, key: bytes, key_id: int = 0) -> bytes:
    """Encode ``msg`` with an MD5 Security TLV first (replacing any it had) [P]."""
    rest = tuple(t for t in msg.tlvs if not isinstance(t, SecurityTlv))
    blank = DfpMessage(msg.type, (SecurityTlv(SEC_ALG_MD5, key_id, bytes(16)), *rest), msg.reserved)
    raw = encode(blank)
    d = _digest(key, raw)
    return raw[:_SEC_DIGEST_OFFSET] + d + raw[_SEC_DIGEST_OFFSET + 16 :]


def verify(data: bytes, key: bytes, key_id: int | None = None) -> bool:
    """True when ``data`` (one whole message) carries a first MD5 Security TLV whose digest is
    right for ``key`` (and whose key id is ``key_id`` when given). Never raises."""
    if len(data) < _SEC_DIGEST_OFFSET + 16:
        return False
    ttype, tlen = TLV_HEADER.unpack_from(data, HEADER.size)
    alg, kid = struct.unpack_from("!II", data, HEADER.size + TLV_HEADER.size)
    if ttype != TLV_SECURITY or tlen != 28 or alg != SEC_ALG_MD5:
        return False
    if key_id is not None and kid != key_id:
        return False
    got = data[_SEC_DIGEST_OFFSET : _SEC_DIGEST_OFFSET + 16]
    zeroed = data[:_SEC_DIGEST_OFFSET] + bytes(16) + data[_SEC_DIGEST_OFFSET + 16 :]
    return hmac.compare_digest(got, _digest(key, zeroed))


# --------------------------------------------------------------------------- helpers


def preference_information(
    hosts: list[tuple[str, int]] | tuple[tuple[str, int], ...], port: int = 0, protocol: int = 0
) -> DfpMessage:
    """A Preference Information message with one Load TLV of (address, weight) pairs."""
    return DfpMessage(
        PREFERENCE_INFORMATION,
        (LoadTlv(tuple(HostWeight(a, 0, w) for a, w in hosts), port, protocol),),
    )


def dfp_parameters(interval: int) -> DfpMessage:
    return DfpMessage(DFP_PARAMETERS, (KeepaliveTlv(interval),))


@dataclass
class Framer:
    """Cuts a TCP byte stream into whole DFP messages.

    ``feed`` returns the complete messages (raw bytes, each exactly one message) now
    available. A bad header (unknown version, impossible length) raises DecodeError: the
    stream cannot be resynchronised and the caller closes the connection.
    """

    max_message: int = MAX_MESSAGE
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        off = 0
        while len(buf) - off >= HEADER.size:
            _, _, length = decode_header(memoryview(buf)[off : off + HEADER.size])
            if length > self.max_message:
                raise DecodeError("too-long", f"message length {length}")
            if len(buf) - off < length:
                break
            out.append(bytes(buf[off : off + length]))
            off += length
        if off:
            del buf[:off]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


def to_json(msg: DfpMessage) -> dict[str, object]:
    """A JSON-friendly view (for ``mobileha decode``)."""
    tl: list[dict[str, object]] = []
    for t in msg.tlvs:
        if isinstance(t, SecurityTlv):
            tl.append(
                {
                    "tlv": "security",
                    "algorithm": t.algorithm,
                    "key_id": t.key_id,
                    "digest": t.digest.hex(),
                    "data": t.data.hex(),
                }
            )
        elif isinstance(t, LoadTlv):
            tl.append(
                {
                    "tlv": "load",
                    "port": t.port,
                    "protocol": t.protocol,
                    "flags": t.flags,
                    "hosts": [
                        {"address": h.address, "bind_id": h.bind_id, "weight": h.weight}
                        for h in t.hosts
                    ],
                }
            )
        elif isinstance(t, KeepaliveTlv):
            tl.append({"tlv": "keepalive", "interval": t.interval})
        elif isinstance(t, BindIdTableTlv):
            tl.append(
                {
                    "tlv": "bindid-table",
                    "address": t.address,
                    "port": t.port,
                    "protocol": t.protocol,
                    "entries": [
                        {"bind_id": e.bind_id, "address": e.address, "netmask": e.netmask}
                        for e in t.entries
                    ],
                }
            )
        else:
            tl.append({"tlv": f"0x{t.type:04x}", "data": t.data.hex()})
    return {"dfp": msg.name, "type": msg.type, "version": msg.version, "tlvs": tl}


__all__ = [
    "BINDID_CHANGE_NOTIFY",
    "BINDID_REPORT",
    "BINDID_REQUEST",
    "DFP_PARAMETERS",
    "DFP_VERSION",
    "PREFERENCE_INFORMATION",
    "SERVER_STATE",
    "BindIdEntry",
    "BindIdTableTlv",
    "DfpMessage",
    "Framer",
    "HostWeight",
    "KeepaliveTlv",
    "LoadTlv",
    "SecurityTlv",
    "Tlv",
    "UnknownTlv",
    "decode",
    "decode_header",
    "dfp_parameters",
    "encode",
    "preference_information",
    "sign",
    "verify",
]
