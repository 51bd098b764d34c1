"""Mobile IPv4 registration messages and extensions (RFC 5944; P§1-2).

Messages: Registration Request (1), Registration Reply (3), Registration Revocation (7)
and Revocation Acknowledgement (15). Extensions in the three layouts of P§1.5:

* short ``Type Length Data`` (most types),
* long ``Type Sub-Type Length(2) Data`` (non-skippable 36 and 48; CVSE 37/38 use a
  reserved byte where the sub-type would be),
* short with sub-type ``Type Length Sub-Type Data`` (139 Dynamic HA).

Unknown skippable extensions (type >= 128) are kept as :class:`UnknownExt` and re-encoded
byte-exact; an unknown non-skippable one (< 128) raises
:class:`~mobileha.wire.UnknownCriticalExtension` so that the home agent can silently
discard the request (RFC 5944 §3.8). Every other decode problem is a
:class:`~mobileha.wire.DecodeError`.

For the hot path, :func:`walk_extensions` returns plain offsets without building objects,
and :func:`scan_request` pulls the few things the HA-SLB needs out of a request.

JSON field names (``to_dict``) follow Wireshark's ``mip.*`` fields where it has them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, NamedTuple, TypeAlias

from mobileha.wire import DecodeError, UnknownCriticalExtension, ip_bytes, ip_str
from mobileha.wire.auth import Authenticator

MIP_PORT: Final = 434

# Message types (P§1.4)
RRQ: Final = 1
RRP: Final = 3
REVOCATION: Final = 7
REVOCATION_ACK: Final = 15

# Extension types (P§2.9)
EXT_MN_HA: Final = 32
EXT_MN_FA: Final = 33
EXT_FA_HA: Final = 34
EXT_GEN_AUTH: Final = 36
EXT_CVSE_OLD: Final = 37
EXT_CVSE: Final = 38
EXT_GRE_KEY: Final = 48
EXT_NAI: Final = 131
EXT_CHALLENGE: Final = 132
EXT_NVSE_OLD: Final = 133
EXT_NVSE: Final = 134
EXT_REVOCATION_SUPPORT: Final = 137
EXT_DYNAMIC_HA: Final = 139

AUTH_EXT_TYPES: Final = frozenset({EXT_MN_HA, EXT_MN_FA, EXT_FA_HA})
LONG_FORMAT: Final = frozenset({EXT_GEN_AUTH, EXT_CVSE_OLD, EXT_CVSE, EXT_GRE_KEY})

GEN_AUTH_MN_AAA: Final = 1  # RFC 4721 subtypes (Wireshark): 1 MN-AAA, 2 FA-FA, 3 MN-GFA, 4 MN-PAR
DYNHA_REQUESTED: Final = 1
DYNHA_REDIRECTED: Final = 2

VENDOR_3GPP2: Final = 5535  # [I] P§2.6; Wireshark decodes its CVSE type 0x0401 as the GRE key
CVSE_3GPP2_GRE_KEY: Final = 0x0401
VENDOR_CISCO: Final = 9

LIFETIME_INFINITE: Final = 0xFFFF

# Reply codes (P§1.9) most used by the code; the full table is REPLY_CODES.
CODE_ACCEPTED: Final = 0
CODE_ACCEPTED_NO_SIMULTANEOUS: Final = 1
REPLY_CODES: Final[dict[int, str]] = {
    0: "registration accepted",
    1: "accepted, simultaneous mobility bindings unsupported",
    64: "FA: reason unspecified",
    65: "FA: administratively prohibited",
    66: "FA: insufficient resources",
    67: "FA: mobile node failed authentication",
    68: "FA: home agent failed authentication",
    69: "FA: requested lifetime too long",
    70: "FA: poorly formed request",
    71: "FA: poorly formed reply",
    72: "FA: requested encapsulation unavailable",
    73: "FA: reserved (VJ compression unavailable)",
    74: "FA: reverse tunnel unavailable",
    75: "FA: reverse tunnel mandatory and T bit not set",
    76: "FA: mobile node too distant",
    77: "FA: invalid care-of address",
    78: "FA: registration timeout",
    79: "FA: delivery style not supported",
    80: "FA: home network unreachable",
    81: "FA: home agent host unreachable",
    82: "FA: home agent port unreachable",
    88: "FA: home agent unreachable",
    89: "FA: vendor-specific reason",
    90: "FA: non-zero HA address required",
    96: "FA: non-zero home address required",
    97: "FA: missing NAI",
    98: "FA: missing home agent",
    99: "FA: missing home address",
    100: "FA: unknown CVSE from MN",
    101: "FA: unknown CVSE from HA",
    104: "FA: unknown challenge",
    105: "FA: missing challenge",
    106: "FA: stale challenge",
    107: "FA: missing MN-FA key generation extension",
    108: "FA: mobile node failed AAA authentication",
    109: "FA: HA sent wrong challenge in reply",
    127: "FA: experimental",
    128: "HA: reason unspecified",
    129: "HA: administratively prohibited",
    130: "HA: insufficient resources",
    131: "HA: mobile node failed authentication",
    132: "HA: foreign agent failed authentication",
    133: "HA: registration identification mismatch",
    134: "HA: poorly formed request",
    135: "HA: too many simultaneous mobility bindings",
    136: "HA: unknown home agent address",
    137: "HA: reverse tunnel unavailable",
    138: "HA: reverse tunnel mandatory and T bit not set",
    139: "HA: requested encapsulation unavailable",
    140: "HA: unknown CVSE from MN",
    141: "HA: unknown CVSE from FA",
    142: "HA: UDP encapsulation unavailable",
    143: "HA: register with redirected HA",
    144: "HA: mobile node failed AAA authentication",
    149: "HA: proxy registration not enabled",
    150: "HA: not authorized for proxy registration",
    192: "HA: experimental",
    194: "FA: invalid home agent address",
}

_RRQ = struct.Struct("!BBH4s4s4sQ")  # 24 bytes
_RRP = struct.Struct("!BBH4s4sQ")  # 20 bytes
_REV = struct.Struct("!BBH4s4s4sI")  # 20 bytes
_REV_ACK = struct.Struct("!BBH4sI")  # 12 bytes
_SHORT_HDR = struct.Struct("!BB")
_LONG_HDR = struct.Struct("!BBH")
_AUTH_HDR = struct.Struct("!BBI")  # type, length, SPI
_GEN_AUTH_HDR = struct.Struct("!BBHI")  # type, subtype, length, SPI
_U32 = struct.Struct("!I")
_VENDOR_LONG = struct.Struct("!BBHIH")  # CVSE: type, reserved, length, vendor id, vendor type
_VENDOR_SHORT = struct.Struct("!BBHIH")  # NVSE: type, length, reserved(2), vendor id, type
_REVSUP = struct.Struct("!BBHI")  # type, length=6, flags, timestamp
_DYNHA = struct.Struct("!BBB4s")  # type, length=5, subtype, address


# --- extensions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthExt:
    """MN-HA (32), MN-FA (33), FA-HA (34) and any other short-format authentication
    extension with the same layout (e.g. the HA-HA extension of P§5.4)."""

    ext_type: int
    spi: int
    authenticator: bytes

    def encode(self) -> bytes:
        return _AUTH_HDR.pack(self.ext_type, 4 + len(self.authenticator), self.spi) + (
            self.authenticator
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.ext.type": self.ext_type,
            "mip.auth.spi": self.spi,
            "mip.auth.auth": self.authenticator.hex(),
        }


@dataclass(frozen=True, slots=True)
class GenAuthExt:
    """Generalized Mobile IP Authentication (36, long format), e.g. MN-AAA (RFC 4721)."""

    subtype: int
    spi: int
    authenticator: bytes
    ext_type: ClassVar[int] = EXT_GEN_AUTH

    def encode(self) -> bytes:
        return _GEN_AUTH_HDR.pack(
            EXT_GEN_AUTH, self.subtype, 4 + len(self.authenticator), self.spi
        ) + (self.authenticator)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.ext.type": EXT_GEN_AUTH,
            "mip.ext.auth.subtype": self.subtype,
            "mip.auth.spi": self.spi,
            "mip.auth.auth": self.authenticator.hex(),
        }


@dataclass(frozen=True, slots=True)
class CvseExt:
    """Critical Vendor/Organization Specific Extension (38; 37 is the old draft number)."""

    vendor_id: int
    vendor_type: int
    value: bytes = b""
    ext_type: int = EXT_CVSE
    reserved: int = 0

    def encode(self) -> bytes:
        return (
            _VENDOR_LONG.pack(
                self.ext_type, self.reserved, 6 + len(self.value), self.vendor_id, self.vendor_type
            )
            + self.value
        )

    @property
    def gre_key(self) -> int | None:
        """The GRE key if this is the 3GPP2 GRE key CVSE (P§2.6)."""
        if (
            self.vendor_id == VENDOR_3GPP2
            and self.vendor_type == CVSE_3GPP2_GRE_KEY
            and len(self.value) == 4
        ):
            key: int = _U32.unpack(self.value)[0]
            return key
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mip.ext.type": self.ext_type,
            "mip.ext.cvse.vendor_id": self.vendor_id,
            "mip.ext.cvse.vendor_type": self.vendor_type,
            "mip.ext.cvse.vendor_value": self.value.hex(),
        }
        if self.gre_key is not None:
            d["mip.ext.cvse.3gpp2_grekey"] = self.gre_key
        return d


def gre_key_cvse(key: int) -> CvseExt:
    """The 3GPP2 GRE key CVSE a PDSN sends (P§2.6)."""
    return CvseExt(VENDOR_3GPP2, CVSE_3GPP2_GRE_KEY, _U32.pack(key))


@dataclass(frozen=True, slots=True)
class GreKeyExt:
    """MIPv4 GRE Key extension (48, long format, RFC 6245)."""

    key: int
    subtype: int = 0
    ext_type: ClassVar[int] = EXT_GRE_KEY

    def encode(self) -> bytes:
        return _LONG_HDR.pack(EXT_GRE_KEY, self.subtype, 4) + _U32.pack(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {"mip.ext.type": EXT_GRE_KEY, "gre_key": self.key}


@dataclass(frozen=True, slots=True)
class NaiExt:
    """Mobile Node NAI (131, RFC 2794)."""

    nai: str
    ext_type: ClassVar[int] = EXT_NAI

    def encode(self) -> bytes:
        raw = self.nai.encode()
        if len(raw) > 255:
            raise ValueError("NAI longer than 255 bytes")
        return _SHORT_HDR.pack(EXT_NAI, len(raw)) + raw

    def to_dict(self) -> dict[str, Any]:
        return {"mip.ext.type": EXT_NAI, "mip.nai": self.nai}


@dataclass(frozen=True, slots=True)
class ChallengeExt:
    """MN-FA Challenge (132, RFC 4721)."""

    challenge: bytes
    ext_type: ClassVar[int] = EXT_CHALLENGE

    def encode(self) -> bytes:
        return _SHORT_HDR.pack(EXT_CHALLENGE, len(self.challenge)) + self.challenge

    def to_dict(self) -> dict[str, Any]:
        return {"mip.ext.type": EXT_CHALLENGE, "challenge": self.challenge.hex()}


@dataclass(frozen=True, slots=True)
class NvseExt:
    """Normal Vendor/Organization Specific Extension (134; 133 is the old draft number)."""

    vendor_id: int
    vendor_type: int
    value: bytes = b""
    ext_type: int = EXT_NVSE
    reserved: int = 0

    def encode(self) -> bytes:
        return (
            _VENDOR_SHORT.pack(
                self.ext_type, 8 + len(self.value), self.reserved, self.vendor_id, self.vendor_type
            )
            + self.value
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.ext.type": self.ext_type,
            "mip.ext.nvse.vendor_id": self.vendor_id,
            "mip.ext.nvse.vendor_type": self.vendor_type,
            "mip.ext.nvse.vendor_value": self.value.hex(),
        }


@dataclass(frozen=True, slots=True)
class RevocationSupportExt:
    """Revocation Support (137, RFC 3543): flags (I = 0x8000) and a timestamp."""

    flags: int
    timestamp: int
    ext_type: ClassVar[int] = EXT_REVOCATION_SUPPORT

    def encode(self) -> bytes:
        return _REVSUP.pack(EXT_REVOCATION_SUPPORT, 6, self.flags, self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.ext.type": EXT_REVOCATION_SUPPORT,
            "mip.ext.rev.flags": self.flags,
            "mip.ext.rev.tstamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class DynamicHaExt:
    """Dynamic HA (139, RFC 4433) in the short-with-subtype layout Wireshark uses (P§2.3)."""

    subtype: int
    address: str
    ext_type: ClassVar[int] = EXT_DYNAMIC_HA

    def encode(self) -> bytes:
        return _DYNHA.pack(EXT_DYNAMIC_HA, 5, self.subtype, ip_bytes(self.address))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.ext.type": EXT_DYNAMIC_HA,
            "mip.ext.dynha.subtype": self.subtype,
            "mip.ext.dynha.ha": self.address,
        }


@dataclass(frozen=True, slots=True)
class UnknownExt:
    """A skippable extension we do not interpret; kept byte-exact (short format)."""

    ext_type: int
    data: bytes

    def encode(self) -> bytes:
        return _SHORT_HDR.pack(self.ext_type, len(self.data)) + self.data

    def to_dict(self) -> dict[str, Any]:
        return {"mip.ext.type": self.ext_type, "data": self.data.hex()}


Extension: TypeAlias = (
    AuthExt
    | GenAuthExt
    | CvseExt
    | GreKeyExt
    | NaiExt
    | ChallengeExt
    | NvseExt
    | RevocationSupportExt
    | DynamicHaExt
    | UnknownExt
)


class ExtSpan(NamedTuple):
    """Where one extension sits in a message: header start, value start and end."""

    ext_type: int
    start: int
    value: int
    end: int


def walk_extensions(data: bytes, off: int, *, known: frozenset[int] | None = None) -> list[ExtSpan]:
    """Offsets of every extension from ``off`` on, without building objects.

    Raises DecodeError on a truncated extension and UnknownCriticalExtension on a
    non-skippable type that is not in ``known`` (default: the types this module decodes).
    """
    if known is None:
        known = _KNOWN_CRITICAL
    spans: list[ExtSpan] = []
    n = len(data)
    while off < n:
        t = data[off]
        if t in LONG_FORMAT:
            if off + 4 > n:
                raise DecodeError("truncated-extension", f"type {t} header at {off}")
            ln = (data[off + 2] << 8) | data[off + 3]
            value = off + 4
        else:
            if t < 128 and t not in known:
                raise UnknownCriticalExtension(t)
            if off + 2 > n:
                raise DecodeError("truncated-extension", f"type {t} header at {off}")
            ln = data[off + 1]
            value = off + 2
        end = value + ln
        if end > n:
            raise DecodeError("truncated-extension", f"type {t} length {ln} at {off}")
        spans.append(ExtSpan(t, off, value, end))
        off = end
    return spans


_KNOWN_CRITICAL: Final = frozenset(
    {EXT_MN_HA, EXT_MN_FA, EXT_FA_HA, EXT_GEN_AUTH, EXT_CVSE_OLD, EXT_CVSE, EXT_GRE_KEY}
)


def _decode_ext(data: bytes, span: ExtSpan) -> Extension:
    t, start, value, end = span
    ln = end - value
    if t in AUTH_EXT_TYPES:
        if ln < 4:
            raise DecodeError("bad-auth-length", f"type {t} length {ln}")
        return AuthExt(t, _U32.unpack_from(data, value)[0], data[value + 4 : end])
    if t == EXT_GEN_AUTH:
        if ln < 4:
            raise DecodeError("bad-auth-length", f"type 36 length {ln}")
        return GenAuthExt(data[start + 1], _U32.unpack_from(data, value)[0], data[value + 4 : end])
    if t in (EXT_CVSE, EXT_CVSE_OLD):
        if ln < 6:
            raise DecodeError("bad-cvse-length", f"length {ln}")
        vid, vtype = struct.unpack_from("!IH", data, value)
        return CvseExt(vid, vtype, data[value + 6 : end], t, data[start + 1])
    if t == EXT_GRE_KEY:
        if ln != 4:
            raise DecodeError("bad-gre-key-length", f"length {ln}")
        return GreKeyExt(_U32.unpack_from(data, value)[0], data[start + 1])
    if t == EXT_NAI:
        try:
            return NaiExt(data[value:end].decode())
        except UnicodeDecodeError as e:
            raise DecodeError("bad-nai", "not UTF-8") from e
    if t == EXT_CHALLENGE:
        return ChallengeExt(data[value:end])
    if t in (EXT_NVSE, EXT_NVSE_OLD):
        if ln < 8:
            raise DecodeError("bad-nvse-length", f"length {ln}")
        reserved, vid, vtype = struct.unpack_from("!HIH", data, value)
        return NvseExt(vid, vtype, data[value + 8 : end], t, reserved)
    if t == EXT_REVOCATION_SUPPORT:
        if ln != 6:
            raise DecodeError("bad-revocation-support-length", f"length {ln}")
        flags, ts = struct.unpack_from("!HI", data, value)
        return RevocationSupportExt(flags, ts)
    if t == EXT_DYNAMIC_HA:
        if ln != 5:
            raise DecodeError("bad-dynamic-ha-length", f"length {ln}")
        return DynamicHaExt(data[value], ip_str(data[value + 1 : end]))
    if t < 128:  # walk_extensions already refused unknown critical types
        raise UnknownCriticalExtension(t)
    return UnknownExt(t, data[value:end])


def decode_extensions(data: bytes, off: int) -> tuple[list[Extension], list[int]]:
    """Decode the extensions from ``off``; returns them and their start offsets."""
    spans = walk_extensions(data, off)
    return [_decode_ext(data, s) for s in spans], [s.start for s in spans]


def encode_extensions(exts: list[Extension]) -> bytes:
    return b"".join(e.encode() for e in exts)


def _auth_header_len(ext: Extension) -> int:
    """Bytes of an authentication extension that its own authenticator covers."""
    return 8 if isinstance(ext, GenAuthExt) else 6


# --- messages -------------------------------------------------------------------------


@dataclass(slots=True)
class _Message:
    extensions: list[Extension] = field(default_factory=list)
    # Where each extension starts in ``raw`` (set by decode; not part of equality).
    ext_offsets: list[int] = field(default_factory=list, compare=False, repr=False)
    raw: bytes = field(default=b"", compare=False, repr=False)

    def find(self, cls: type[Any], ext_type: int | None = None) -> Any:
        """The first extension of class ``cls`` (and of ``ext_type`` when given), or None."""
        for e in self.extensions:
            if isinstance(e, cls) and (ext_type is None or e.ext_type == ext_type):
                return e
        return None

    def index_of(self, ext: Extension) -> int:
        for i, e in enumerate(self.extensions):
            if e is ext:
                return i
        raise ValueError("extension not in message")

    def covered(self, ext: Extension) -> bytes:
        """The bytes an authentication extension's authenticator covers (P§1.6).

        Only valid on a decoded message (it uses the received bytes).
        """
        i = self.index_of(ext)
        if not self.raw or i >= len(self.ext_offsets):
            raise ValueError("covered() needs a decoded message")
        return self.raw[: self.ext_offsets[i] + _auth_header_len(ext)]

    def verify(self, ext: AuthExt | GenAuthExt, authenticator: Authenticator) -> bool:
        return authenticator.verify(self.covered(ext), ext.authenticator)

    @property
    def nai(self) -> str | None:
        e = self.find(NaiExt)
        return e.nai if e is not None else None


@dataclass(slots=True)
class RegistrationRequest(_Message):
    flags: int = 0
    lifetime: int = 0
    home_addr: str = "0.0.0.0"
    ha_addr: str = "0.0.0.0"
    care_of: str = "0.0.0.0"
    ident: int = 0
    msg_type: ClassVar[int] = RRQ

    def header(self) -> bytes:
        return _RRQ.pack(
            RRQ,
            self.flags,
            self.lifetime,
            ip_bytes(self.home_addr),
            ip_bytes(self.ha_addr),
            ip_bytes(self.care_of),
            self.ident,
        )

    def encode(self) -> bytes:
        return self.header() + encode_extensions(self.extensions)

    @classmethod
    def decode(cls, data: bytes) -> RegistrationRequest:
        if len(data) < 24:
            raise DecodeError("short", f"{len(data)} bytes, registration request needs 24")
        t, flags, life, hoa, ha, coa, ident = _RRQ.unpack_from(data)
        if t != RRQ:
            raise DecodeError("bad-type", f"type {t} is not a registration request")
        exts, offs = decode_extensions(data, 24)
        return cls(
            exts, offs, bytes(data), flags, life, ip_str(hoa), ip_str(ha), ip_str(coa), ident
        )

    def to_dict(self) -> dict[str, Any]:
        f = self.flags
        return {
            "mip.type": RRQ,
            "message": "Registration Request",
            "mip.flags": f,
            "mip.s": bool(f & 0x80),
            "mip.b": bool(f & 0x40),
            "mip.d": bool(f & 0x20),
            "mip.m": bool(f & 0x10),
            "mip.g": bool(f & 0x08),
            "mip.v": bool(f & 0x04),
            "mip.t": bool(f & 0x02),
            "mip.x": bool(f & 0x01),
            "mip.life": self.lifetime,
            "mip.homeaddr": self.home_addr,
            "mip.haaddr": self.ha_addr,
            "mip.coa": self.care_of,
            "mip.ident": f"0x{self.ident:016x}",
            **({"mip.nai": self.nai} if self.nai is not None else {}),
            "extensions": [e.to_dict() for e in self.extensions],
        }


@dataclass(slots=True)
class RegistrationReply(_Message):
    code: int = 0
    lifetime: int = 0
    home_addr: str = "0.0.0.0"
    ha_addr: str = "0.0.0.0"
    ident: int = 0
    msg_type: ClassVar[int] = RRP

    def header(self) -> bytes:
        return _RRP.pack(
            RRP,
            self.code,
            self.lifetime,
            ip_bytes(self.home_addr),
            ip_bytes(self.ha_addr),
            self.ident,
        )

    def encode(self) -> bytes:
        return self.header() + encode_extensions(self.extensions)

    @property
    def accepted(self) -> bool:
        return self.code in (CODE_ACCEPTED, CODE_ACCEPTED_NO_SIMULTANEOUS)

    @classmethod
    def decode(cls, data: bytes) -> RegistrationReply:
        if len(data) < 20:
            raise DecodeError("short", f"{len(data)} bytes, registration reply needs 20")
        t, code, life, hoa, ha, ident = _RRP.unpack_from(data)
        if t != RRP:
            raise DecodeError("bad-type", f"type {t} is not a registration reply")
        exts, offs = decode_extensions(data, 20)
        return cls(exts, offs, bytes(data), code, life, ip_str(hoa), ip_str(ha), ident)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.type": RRP,
            "message": "Registration Reply",
            "mip.code": self.code,
            "code_text": REPLY_CODES.get(self.code, "unknown"),
            "mip.life": self.lifetime,
            "mip.homeaddr": self.home_addr,
            "mip.haaddr": self.ha_addr,
            "mip.ident": f"0x{self.ident:016x}",
            **({"mip.nai": self.nai} if self.nai is not None else {}),
            "extensions": [e.to_dict() for e in self.extensions],
        }


@dataclass(slots=True)
class RegistrationRevocation(_Message):
    """RFC 3543 Registration Revocation (type 7); flags A = 0x8000, I = 0x4000."""

    flags: int = 0
    home_addr: str = "0.0.0.0"
    home_domain_addr: str = "0.0.0.0"
    foreign_domain_addr: str = "0.0.0.0"
    revocation_id: int = 0
    reserved: int = 0
    msg_type: ClassVar[int] = REVOCATION

    def encode(self) -> bytes:
        return _REV.pack(
            REVOCATION,
            self.reserved,
            self.flags,
            ip_bytes(self.home_addr),
            ip_bytes(self.home_domain_addr),
            ip_bytes(self.foreign_domain_addr),
            self.revocation_id,
        ) + encode_extensions(self.extensions)

    @classmethod
    def decode(cls, data: bytes) -> RegistrationRevocation:
        if len(data) < 20:
            raise DecodeError("short", f"{len(data)} bytes, revocation needs 20")
        t, res, flags, hoa, hda, fda, rid = _REV.unpack_from(data)
        if t != REVOCATION:
            raise DecodeError("bad-type", f"type {t} is not a revocation")
        exts, offs = decode_extensions(data, 20)
        return cls(exts, offs, bytes(data), flags, ip_str(hoa), ip_str(hda), ip_str(fda), rid, res)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.type": REVOCATION,
            "message": "Registration Revocation",
            "mip.flags2": self.flags,
            "mip.rev.a": bool(self.flags & 0x8000),
            "mip.rev.i": bool(self.flags & 0x4000),
            "mip.homeaddr": self.home_addr,
            "mip.rev.hda": self.home_domain_addr,
            "mip.rev.fda": self.foreign_domain_addr,
            "mip.revid": self.revocation_id,
            "extensions": [e.to_dict() for e in self.extensions],
        }


@dataclass(slots=True)
class RevocationAck(_Message):
    """RFC 3543 Registration Revocation Acknowledgement (type 15); flag I = 0x8000."""

    flags: int = 0
    home_addr: str = "0.0.0.0"
    revocation_id: int = 0
    reserved: int = 0
    msg_type: ClassVar[int] = REVOCATION_ACK

    def encode(self) -> bytes:
        return _REV_ACK.pack(
            REVOCATION_ACK, self.reserved, self.flags, ip_bytes(self.home_addr), self.revocation_id
        ) + encode_extensions(self.extensions)

    @classmethod
    def decode(cls, data: bytes) -> RevocationAck:
        if len(data) < 12:
            raise DecodeError("short", f"{len(data)} bytes, revocation ack needs 12")
        t, res, flags, hoa, rid = _REV_ACK.unpack_from(data)
        if t != REVOCATION_ACK:
            raise DecodeError("bad-type", f"type {t} is not a revocation ack")
        exts, offs = decode_extensions(data, 12)
        return cls(exts, offs, bytes(data), flags, ip_str(hoa), rid, res)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mip.type": REVOCATION_ACK,
            "message": "Registration Revocation Acknowledgement",
            "mip.flags2": self.flags,
            "mip.ack.i": bool(self.flags & 0x8000),
            "mip.homeaddr": self.home_addr,
            "mip.revid": self.revocation_id,
            "extensions": [e.to_dict() for e in self.extensions],
        }


Message: TypeAlias = (
    RegistrationRequest | RegistrationReply | RegistrationRevocation | RevocationAck
)

_DECODERS: Final[dict[int, Any]] = {
    RRQ: RegistrationRequest.decode,
    RRP: RegistrationReply.decode,
    REVOCATION: RegistrationRevocation.decode,
    REVOCATION_ACK: RevocationAck.decode,
}


def decode(data: bytes) -> Message:
    """Decode any Mobile IP registration-family message."""
    if not data:
        raise DecodeError("short", "empty datagram")
    dec = _DECODERS.get(data[0])
    if dec is None:
        raise DecodeError("unknown-type", f"message type {data[0]}")
    msg: Message = dec(data)
    return msg


# --- building authenticated messages ----------------------------------------------------


def append_auth(message: bytes, ext_type: int, spi: int, authenticator: Authenticator) -> bytes:
    """Append a short-format authentication extension (32/33/34/HHAE) computed over
    ``message`` + its own Type, Length and SPI (RFC 5944 §3.5.1)."""
    covered = message + _AUTH_HDR.pack(ext_type, 20, spi)
    return covered + authenticator.compute(covered)


def append_gen_auth(message: bytes, subtype: int, spi: int, compute: Any) -> bytes:
    """Append a Generalized Authentication extension (36). ``compute(covered) -> 16 bytes``
    gets the message plus the extension's Type, Subtype, Length and SPI."""
    covered = message + _GEN_AUTH_HDR.pack(EXT_GEN_AUTH, subtype, 20, spi)
    auth: bytes = compute(covered)
    return covered + auth


# --- fast path ------------------------------------------------------------------------


class RequestScan(NamedTuple):
    """What the HA-SLB needs from a registration request, without full decoding."""

    flags: int
    lifetime: int
    home_addr: bytes
    ha_addr: bytes
    care_of: bytes
    ident: int
    nai: str | None


def scan_request(data: bytes) -> RequestScan:
    """Fixed header + NAI of a registration request (skips unknown extensions freely)."""
    if len(data) < 24 or data[0] != RRQ:
        raise DecodeError("not-rrq" if data[:1] != b"\x01" else "short")
    _t, flags, life, hoa, ha, coa, ident = _RRQ.unpack_from(data)
    nai = None
    off, n = 24, len(data)
    while off < n:
        t = data[off]
        if t in LONG_FORMAT:
            if off + 4 > n:
                raise DecodeError("truncated-extension")
            end = off + 4 + ((data[off + 2] << 8) | data[off + 3])
        else:
            if off + 2 > n:
                raise DecodeError("truncated-extension")
            end = off + 2 + data[off + 1]
            if t == EXT_NAI and nai is None and end <= n:
                try:
                    nai = data[off + 2 : end].decode()
                except UnicodeDecodeError as e:
                    raise DecodeError("bad-nai") from e
        if end > n:
            raise DecodeError("truncated-extension")
        off = end
    return RequestScan(flags, life, hoa, ha, coa, ident, nai)


__all__ = [
    "AUTH_EXT_TYPES",
    "CODE_ACCEPTED",
    "EXT_CHALLENGE",
    "EXT_CVSE",
    "EXT_DYNAMIC_HA",
    "EXT_FA_HA",
    "EXT_GEN_AUTH",
    "EXT_GRE_KEY",
    "EXT_MN_FA",
    "EXT_MN_HA",
    "EXT_NAI",
    "EXT_NVSE",
    "EXT_REVOCATION_SUPPORT",
    "LIFETIME_INFINITE",
    "MIP_PORT",
    "REPLY_CODES",
    "REVOCATION",
    "REVOCATION_ACK",
    "RRP",
    "RRQ",
    "AuthExt",
    "ChallengeExt",
    "CvseExt",
    "DynamicHaExt",
    "ExtSpan",
    "Extension",
    "GenAuthExt",
    "GreKeyExt",
    "Message",
    "NaiExt",
    "NvseExt",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "RequestScan",
    "RevocationAck",
    "RevocationSupportExt",
    "UnknownExt",
    "append_auth",
    "append_gen_auth",
    "decode",
    "decode_extensions",
    "encode_extensions",
    "gre_key_cvse",
    "ip_bytes",
    "ip_str",
    "scan_request",
    "walk_extensions",
]
