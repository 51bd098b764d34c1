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

Receivers read a request with :func:`parse_request`: the fixed part and one walk over the
extensions, driven by the table :data:`EXTENSIONS` (for each type: its format, whether it
may be skipped, what the walk records and where it stands relative to the authenticators),
recording offsets and the few values receivers act on, without building objects
(:class:`ParsedRequest`). The home agent, the foreign agent and the HA-SLB use it; the
full decoders below walk with it too (:func:`walk_extensions`). :func:`leading_nai` is the
constant-time NAI check of the HA-SLB readers (``mobileha._slbio`` has the same in C).

Reply codes are defined once, in :class:`ReplyCode` and :data:`REPLY_CODE_INFO`.

JSON field names (``to_dict``) follow Wireshark's ``mip.*`` fields where it has them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Final, NamedTuple, TypeAlias

from mobileha.wire import DecodeError, UnknownCriticalExtension, ip_bytes, ip_str, ip_str_cached
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
EXT_ENCAP_DELIVERY: Final = 130
EXT_NAI: Final = 131
EXT_CHALLENGE: Final = 132
EXT_NVSE_OLD: Final = 133
EXT_NVSE: Final = 134
EXT_REVOCATION_SUPPORT: Final = 137
EXT_DYNAMIC_HA: Final = 139

GEN_AUTH_MN_AAA: Final = 1  # RFC 4721 subtypes (Wireshark): 1 MN-AAA, 2 FA-FA, 3 MN-GFA, 4 MN-PAR
DYNHA_REQUESTED: Final = 1
DYNHA_REDIRECTED: Final = 2

VENDOR_3GPP2: Final = 5535  # [I] P§2.6; Wireshark decodes its CVSE type 0x0401 as the GRE key
CVSE_3GPP2_GRE_KEY: Final = 0x0401
VENDOR_CISCO: Final = 9

LIFETIME_INFINITE: Final = 0xFFFF


class ReplyCode(IntEnum):
    """Registration Reply codes (RFC 5944 §3.4; RFC 2794, 3024, 3115, 3519, 4433, 4721;
    P§1.9). 0-1 accepted; 64-127 and 194 denied by the foreign agent; 128-192 by the home
    agent. :data:`REPLY_CODE_INFO` gives each code's wording and management names."""

    ACCEPTED = 0
    ACCEPTED_NO_SIMULTANEOUS = 1
    FA_UNSPECIFIED = 64
    FA_ADMIN_PROHIBITED = 65
    FA_INSUFFICIENT_RESOURCES = 66
    FA_MN_AUTH_FAILED = 67
    FA_HA_AUTH_FAILED = 68
    FA_LIFETIME_TOO_LONG = 69
    FA_POORLY_FORMED_REQUEST = 70
    FA_POORLY_FORMED_REPLY = 71
    FA_ENCAP_UNAVAILABLE = 72
    FA_VJ_UNAVAILABLE = 73
    FA_REVERSE_TUNNEL_UNAVAILABLE = 74
    FA_REVERSE_TUNNEL_MANDATORY = 75
    FA_MN_TOO_DISTANT = 76
    FA_INVALID_CARE_OF = 77
    FA_TIMEOUT = 78
    FA_DELIVERY_STYLE_UNSUPPORTED = 79
    FA_HOME_NETWORK_UNREACHABLE = 80
    FA_HA_HOST_UNREACHABLE = 81
    FA_HA_PORT_UNREACHABLE = 82
    FA_HA_UNREACHABLE = 88
    FA_VENDOR_SPECIFIC = 89
    FA_NONZERO_HA_REQUIRED = 90
    FA_NONZERO_HOME_REQUIRED = 96
    FA_MISSING_NAI = 97
    FA_MISSING_HA = 98
    FA_MISSING_HOME = 99
    FA_UNKNOWN_CVSE_MN = 100
    FA_UNKNOWN_CVSE_HA = 101
    FA_UNKNOWN_CHALLENGE = 104
    FA_MISSING_CHALLENGE = 105
    FA_STALE_CHALLENGE = 106
    FA_MISSING_KEY_GENERATION = 107
    FA_MN_AAA_AUTH_FAILED = 108
    FA_WRONG_CHALLENGE_IN_REPLY = 109
    FA_EXPERIMENTAL = 127
    HA_UNSPECIFIED = 128
    HA_ADMIN_PROHIBITED = 129
    HA_INSUFFICIENT_RESOURCES = 130
    HA_MN_AUTH_FAILED = 131
    HA_FA_AUTH_FAILED = 132
    HA_ID_MISMATCH = 133
    HA_POORLY_FORMED_REQUEST = 134
    HA_TOO_MANY_BINDINGS = 135
    HA_UNKNOWN_HA = 136
    HA_REVERSE_TUNNEL_UNAVAILABLE = 137
    HA_REVERSE_TUNNEL_MANDATORY = 138
    HA_ENCAP_UNAVAILABLE = 139
    HA_UNKNOWN_CVSE_MN = 140
    HA_UNKNOWN_CVSE_FA = 141
    HA_UDP_ENCAP_UNAVAILABLE = 142
    HA_REDIRECT = 143
    HA_MN_AAA_AUTH_FAILED = 144
    HA_PROXY_NOT_ENABLED = 149
    HA_PROXY_NOT_AUTHORIZED = 150
    HA_EXPERIMENTAL = 192
    FA_INVALID_HA = 194


class CodeInfo(NamedTuple):
    """What is known about one reply code.

    ``text``: the RFC wording (decoder output). ``mib_name``: the CISCO-MOBILE-IP-MIB
    ``cmiHaRegRecentServDeniedCode`` named value, or the RFC wording in that style, where
    one is used (``show``, the ``reason`` label of the metrics). ``counter``: the
    MIB counter (RFC 2006 MIP-MIB ``ha*``, CISCO-MOBILE-IP-MIB ``cmiHa*``) a home agent
    counts the replies with this code in.
    """

    text: str
    mib_name: str | None = None
    counter: str | None = None


_C = ReplyCode
REPLY_CODE_INFO: Final[dict[int, CodeInfo]] = {
    _C.ACCEPTED: CodeInfo(
        "registration accepted", "registrationAccepted", "haRegistrationAccepted"
    ),
    _C.ACCEPTED_NO_SIMULTANEOUS: CodeInfo(
        "accepted, simultaneous mobility bindings unsupported",
        "acceptedNoSimultaneousBindings",
        "haMultiBindUnsupported",
    ),
    _C.FA_UNSPECIFIED: CodeInfo("FA: reason unspecified", "faReasonUnspecified"),
    _C.FA_ADMIN_PROHIBITED: CodeInfo("FA: administratively prohibited", "faAdmProhibited"),
    _C.FA_INSUFFICIENT_RESOURCES: CodeInfo("FA: insufficient resources", "faInsufficientResource"),
    _C.FA_MN_AUTH_FAILED: CodeInfo(
        "FA: mobile node failed authentication", "faMnAuthenticationFailure"
    ),
    _C.FA_HA_AUTH_FAILED: CodeInfo(
        "FA: home agent failed authentication", "faHaAuthenticationFailure"
    ),
    _C.FA_LIFETIME_TOO_LONG: CodeInfo("FA: requested lifetime too long", "faLifetimeTooLong"),
    _C.FA_POORLY_FORMED_REQUEST: CodeInfo("FA: poorly formed request", "faPoorlyFormedRequest"),
    _C.FA_POORLY_FORMED_REPLY: CodeInfo("FA: poorly formed reply", "faPoorlyFormedReply"),
    _C.FA_ENCAP_UNAVAILABLE: CodeInfo(
        "FA: requested encapsulation unavailable", "faEncapsulationUnavailable"
    ),
    _C.FA_VJ_UNAVAILABLE: CodeInfo("FA: reserved (VJ compression unavailable)"),
    _C.FA_REVERSE_TUNNEL_UNAVAILABLE: CodeInfo("FA: reverse tunnel unavailable"),
    _C.FA_REVERSE_TUNNEL_MANDATORY: CodeInfo("FA: reverse tunnel mandatory and T bit not set"),
    _C.FA_MN_TOO_DISTANT: CodeInfo("FA: mobile node too distant"),
    _C.FA_INVALID_CARE_OF: CodeInfo("FA: invalid care-of address", "faInvalidCareOfAddress"),
    _C.FA_TIMEOUT: CodeInfo("FA: registration timeout", "faRegistrationTimeout"),
    _C.FA_DELIVERY_STYLE_UNSUPPORTED: CodeInfo("FA: delivery style not supported"),
    _C.FA_HOME_NETWORK_UNREACHABLE: CodeInfo(
        "FA: home network unreachable", "faHomeNetworkUnreachable"
    ),
    _C.FA_HA_HOST_UNREACHABLE: CodeInfo("FA: home agent host unreachable", "faHaHostUnreachable"),
    _C.FA_HA_PORT_UNREACHABLE: CodeInfo("FA: home agent port unreachable", "faHaPortUnreachable"),
    _C.FA_HA_UNREACHABLE: CodeInfo("FA: home agent unreachable", "faHaUnreachable"),
    _C.FA_VENDOR_SPECIFIC: CodeInfo("FA: vendor-specific reason"),
    _C.FA_NONZERO_HA_REQUIRED: CodeInfo("FA: non-zero HA address required"),
    _C.FA_NONZERO_HOME_REQUIRED: CodeInfo("FA: non-zero home address required"),
    _C.FA_MISSING_NAI: CodeInfo("FA: missing NAI"),
    _C.FA_MISSING_HA: CodeInfo("FA: missing home agent"),
    _C.FA_MISSING_HOME: CodeInfo("FA: missing home address"),
    _C.FA_UNKNOWN_CVSE_MN: CodeInfo("FA: unknown CVSE from MN"),
    _C.FA_UNKNOWN_CVSE_HA: CodeInfo("FA: unknown CVSE from HA"),
    _C.FA_UNKNOWN_CHALLENGE: CodeInfo("FA: unknown challenge"),
    _C.FA_MISSING_CHALLENGE: CodeInfo("FA: missing challenge"),
    _C.FA_STALE_CHALLENGE: CodeInfo("FA: stale challenge"),
    _C.FA_MISSING_KEY_GENERATION: CodeInfo("FA: missing MN-FA key generation extension"),
    _C.FA_MN_AAA_AUTH_FAILED: CodeInfo("FA: mobile node failed AAA authentication"),
    _C.FA_WRONG_CHALLENGE_IN_REPLY: CodeInfo("FA: HA sent wrong challenge in reply"),
    _C.FA_EXPERIMENTAL: CodeInfo("FA: experimental"),
    _C.HA_UNSPECIFIED: CodeInfo(
        "HA: reason unspecified", "reasonUnspecified", "haReasonUnspecified"
    ),
    _C.HA_ADMIN_PROHIBITED: CodeInfo(
        "HA: administratively prohibited", "admProhibited", "haAdmProhibited"
    ),
    _C.HA_INSUFFICIENT_RESOURCES: CodeInfo(
        "HA: insufficient resources", "insufficientResource", "haInsufficientResource"
    ),
    _C.HA_MN_AUTH_FAILED: CodeInfo(
        "HA: mobile node failed authentication",
        "mnAuthenticationFailure",
        "haMobNodeFailedAuth",
    ),
    _C.HA_FA_AUTH_FAILED: CodeInfo(
        "HA: foreign agent failed authentication",
        "faAuthenticationFailure",
        "haFANodeFailedAuth",
    ),
    _C.HA_ID_MISMATCH: CodeInfo(
        "HA: registration identification mismatch", "idMismatch", "haIDMismatch"
    ),
    _C.HA_POORLY_FORMED_REQUEST: CodeInfo(
        "HA: poorly formed request", "poorlyFormedRequest", "haPoorlyFormedRequest"
    ),
    _C.HA_TOO_MANY_BINDINGS: CodeInfo(
        "HA: too many simultaneous mobility bindings", "tooManyBindings", "haTooManyBindings"
    ),
    _C.HA_UNKNOWN_HA: CodeInfo("HA: unknown home agent address", "unknownHA", "haUnknownHA"),
    _C.HA_REVERSE_TUNNEL_UNAVAILABLE: CodeInfo(
        "HA: reverse tunnel unavailable",
        "reverseTunnelUnavailable",
        "cmiHaReverseTunnelUnavailable",
    ),
    _C.HA_REVERSE_TUNNEL_MANDATORY: CodeInfo(
        "HA: reverse tunnel mandatory and T bit not set",
        "reverseTunnelBitNotSet",
        "cmiHaReverseTunnelBitNotSet",
    ),
    _C.HA_ENCAP_UNAVAILABLE: CodeInfo(
        "HA: requested encapsulation unavailable",
        "encapsulationUnavailable",
        "cmiHaEncapUnavailable",
    ),
    _C.HA_UNKNOWN_CVSE_MN: CodeInfo("HA: unknown CVSE from MN", None, "cmiHaUnknownCvseFromMn"),
    _C.HA_UNKNOWN_CVSE_FA: CodeInfo("HA: unknown CVSE from FA", None, "cmiHaUnknownCvseFromFa"),
    _C.HA_UDP_ENCAP_UNAVAILABLE: CodeInfo("HA: UDP encapsulation unavailable"),
    _C.HA_REDIRECT: CodeInfo("HA: register with redirected HA", None, "cmiHaRedirectedHa"),
    _C.HA_MN_AAA_AUTH_FAILED: CodeInfo(
        "HA: mobile node failed AAA authentication", None, "cmiHaMnAaaAuthFailures"
    ),
    _C.HA_PROXY_NOT_ENABLED: CodeInfo("HA: proxy registration not enabled"),
    _C.HA_PROXY_NOT_AUTHORIZED: CodeInfo("HA: not authorized for proxy registration"),
    _C.HA_EXPERIMENTAL: CodeInfo("HA: experimental"),
    _C.FA_INVALID_HA: CodeInfo("FA: invalid home agent address"),
}

REPLY_CODES: Final[dict[int, str]] = {c: i.text for c, i in REPLY_CODE_INFO.items()}


def reply_code_name(code: int) -> str:
    """The management name of a reply code (``code<N>`` when it has none)."""
    info = REPLY_CODE_INFO.get(code)
    return info.mib_name if info is not None and info.mib_name else f"code{code}"


_RRQ = struct.Struct("!BBH4s4s4sQ")  # 24 bytes
_RRP = struct.Struct("!BBH4s4sQ")  # 20 bytes
_REV = struct.Struct("!BBH4s4s4sI")  # 20 bytes
_REV_ACK = struct.Struct("!BBH4sI")  # 12 bytes
_SHORT_HDR = struct.Struct("!BB")
_LONG_HDR = struct.Struct("!BBH")
_AUTH_HDR = struct.Struct("!BBI")  # type, length, SPI
_GEN_AUTH_HDR = struct.Struct("!BBHI")  # type, subtype, length, SPI
_U32 = struct.Struct("!I")
_VENDOR_ID_TYPE = struct.Struct("!IH")  # vendor id, vendor type (CVSE and NVSE values)
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


# --- the extension table and the one walk -----------------------------------------------

# What the walk records for a type (the fields of ParsedRequest it fills).
_R_SKIP: Final = 0  # known, nothing to record (or unknown and skippable)
_R_CRITICAL: Final = 1  # unknown and not skippable: the message is invalid
_R_NAI: Final = 2
_R_MN_HA: Final = 3
_R_FA_HA: Final = 4
_R_MN_FA: Final = 5
_R_GEN_AUTH: Final = 6
_R_CHALLENGE: Final = 7
_R_GRE_KEY: Final = 8
_R_CVSE: Final = 9
_R_REVSUP: Final = 10


class ExtRule(NamedTuple):
    """One row of :data:`EXTENSIONS`: how an extension type is read, what the walk records
    of it and where it stands in a Registration Request.

    ``long``: long format (Type, Sub-Type or Reserved, Length(2)), else short (Type,
    Length). ``skippable``: a receiver that does not know the type skips it (types >= 128,
    RFC 5944 §1.9); an unknown type below 128 makes the whole message invalid.
    ``after`` / ``before``: the authentication extension it follows / precedes in a request
    as its sender builds it (0: no rule). An authenticator covers everything before it and
    nothing after it (RFC 5944 §3.5.1, P§1.6), so ``before`` names the authenticator that
    protects the extension; :meth:`ParsedRequest.protected_by` tells for a received one.
    The walk does not refuse an extension found elsewhere: the receiver decides.
    """

    name: str
    record: int
    long: bool
    skippable: bool
    after: int
    before: int


EXTENSIONS: Final[dict[int, ExtRule]] = {
    # RFC 5944 §3.5.2, §3.6.1.3: after the extensions for the HA, before those for the FA
    EXT_MN_HA: ExtRule("MN-HA authentication", _R_MN_HA, False, False, 0, EXT_FA_HA),
    # RFC 5944 §3.5.3: the MN's last extension, for the FA only (the FA removes it)
    EXT_MN_FA: ExtRule("MN-FA authentication", _R_MN_FA, False, False, EXT_MN_HA, 0),
    # RFC 5944 §3.5.4, §3.7.2.2: appended by the FA, last
    EXT_FA_HA: ExtRule("FA-HA authentication", _R_FA_HA, False, False, EXT_MN_HA, 0),
    # RFC 4721 §3.1: MN-AAA (subtype 1) after MN-HA and the challenge, or in place of MN-HA
    EXT_GEN_AUTH: ExtRule("generalized authentication", _R_GEN_AUTH, True, False, 0, EXT_FA_HA),
    # RFC 3115 §2: from the MN (before MN-HA: code 140) or the FA (after it: code 141)
    EXT_CVSE_OLD: ExtRule("CVSE (draft number)", _R_CVSE, True, False, 0, EXT_FA_HA),
    EXT_CVSE: ExtRule("CVSE", _R_CVSE, True, False, 0, EXT_FA_HA),
    # RFC 6245 §4.1 (P§2.6): added by the FA after MN-HA / challenge / MN-AAA, before FA-HA
    EXT_GRE_KEY: ExtRule("GRE key", _R_GRE_KEY, True, False, EXT_MN_HA, EXT_FA_HA),
    # RFC 3024 §5.2: between MN and FA only
    EXT_ENCAP_DELIVERY: ExtRule("encapsulating delivery style", _R_SKIP, False, True, 0, 0),
    # RFC 2794 §2: before any authentication extension
    EXT_NAI: ExtRule("MN NAI", _R_NAI, False, True, 0, EXT_MN_HA),
    # RFC 4721 §3.1: after MN-HA, before the MN-AAA or MN-FA extension that covers it
    EXT_CHALLENGE: ExtRule("MN-FA challenge", _R_CHALLENGE, False, True, EXT_MN_HA, EXT_GEN_AUTH),
    # RFC 3115 §3
    EXT_NVSE_OLD: ExtRule("NVSE (draft number)", _R_SKIP, False, True, 0, 0),
    EXT_NVSE: ExtRule("NVSE", _R_SKIP, False, True, 0, 0),
    # RFC 3543 §3.2: from the FA after the MN's extensions, protected by FA-HA (a
    # co-located MN's own, before MN-HA)
    EXT_REVOCATION_SUPPORT: ExtRule("revocation support", _R_REVSUP, False, True, 0, 0),
    # RFC 4433 §3.2 (short format with subtype, P§2.3)
    EXT_DYNAMIC_HA: ExtRule("dynamic HA", _R_SKIP, False, True, 0, EXT_MN_HA),
}

# The walk's view of the table, indexed by type: one tuple index per extension.
_RECORD: Final = tuple(
    EXTENSIONS[t].record if t in EXTENSIONS else (_R_SKIP if t >= 128 else _R_CRITICAL)
    for t in range(256)
)
_IS_LONG: Final = tuple(t in EXTENSIONS and EXTENSIONS[t].long for t in range(256))
LONG_FORMAT: Final = frozenset(t for t, r in EXTENSIONS.items() if r.long)
AUTH_EXT_TYPES: Final = frozenset({EXT_MN_HA, EXT_MN_FA, EXT_FA_HA})


class ExtSpan(NamedTuple):
    """Where one extension sits in a message: header start, value start and end."""

    ext_type: int
    start: int
    value: int
    end: int


class _Rare:
    """What the walk records of the extensions most requests do not carry (MN-AAA,
    challenge, GRE key, CVSEs, a second authenticator, a bad length, an unknown critical
    type): made only when one is seen, so that a plain request costs fewer stores."""

    __slots__ = (
        "aaa",
        "aaa_e",
        "chal",
        "chal_auth",
        "chal_e",
        "critical",
        "cvse_e",
        "cvse_s",
        "gre_at",
        "gre_key",
        "mn_auth_end",
        "poorly",
        "revsup",
        "unknown_cvse",
    )

    def __init__(self) -> None:
        self.aaa = self.chal = self.chal_auth = self.gre_at = self.cvse_s = -1
        self.unknown_cvse = self.revsup = -1
        self.aaa_e = self.chal_e = self.cvse_e = self.mn_auth_end = self.critical = 0
        self.gre_key: int | None = None
        self.poorly = False


class ParsedRequest:
    """A Registration Request after its fixed part and one walk over its extensions
    (:func:`parse_request`): offsets and the few values receivers act on, no objects.

    Offsets point at an extension's Type byte in ``data``; -1 means absent (0 for the ends
    and for ``nai_s``). What is recorded, per :data:`EXTENSIONS`:

    * ``nai_s``/``nai_e``: the first NAI (131);
    * ``mnha``: the first MN-HA (32); ``aaa``/``aaa_e``: the first MN-AAA (36, subtype 1);
      ``auth``/``auth_type``: the first of the two, the MN's authorization-enabling
      extension (RFC 5944 §3.8.2.1); ``mn_auth_end``: where the last of them ends (what an
      FA relays of the MN's request, §3.7.2.2);
    * ``faha``: the last FA-HA (34), ``n_faha`` how many;
    * ``chal``/``chal_e``: the first MN-FA challenge (132); ``chal_auth``: the last MN-FA
      (33) or MN-AAA extension (what authenticates a challenge, RFC 4721 §3.2);
    * ``gre_key``, ``gre_at``: the GRE key of the last GRE key extension (48) or 3GPP2 GRE
      key CVSE and where it was; ``cvse_s``/``cvse_e``: the last 3GPP2 GRE key CVSE;
      ``unknown_cvse``: the first other CVSE;
    * ``poorly``: a GRE key extension or a CVSE of the wrong length;
    * ``revsup``: the last Revocation Support extension (137, RFC 3543);
    * ``error``: ``"truncated-extension"`` or ``"unknown-critical-extension"`` (type in
      ``critical``), where the walk stopped; None for a well-formed message.

    Which authenticator covers an extension is :meth:`protected_by` of its offset. The
    fields of the extensions most requests lack live in ``rare`` (None when there were
    none), read through the properties of the same names. Receivers subclass this (adding
    ``__slots__``) to carry their own per-request state.
    """

    __slots__ = (
        "auth",
        "coa_b",
        "data",
        "error",
        "faha",
        "flags",
        "ha_b",
        "home_b",
        "ident",
        "lifetime",
        "mnha",
        "n_faha",
        "nai_e",
        "nai_s",
        "rare",
    )

    data: bytes
    flags: int
    lifetime: int
    home_b: bytes  # the fixed part's addresses, 4 bytes each
    ha_b: bytes
    coa_b: bytes
    ident: int
    nai_s: int
    nai_e: int
    mnha: int
    auth: int
    faha: int
    n_faha: int
    error: str | None
    rare: _Rare | None

    @property
    def auth_type(self) -> int:
        """EXT_MN_HA or EXT_GEN_AUTH (MN-AAA): the kind of ``auth``; 0 without one."""
        if self.auth < 0:
            return 0
        return EXT_MN_HA if self.auth == self.mnha else EXT_GEN_AUTH

    @property
    def mn_auth_end(self) -> int:
        m = self.rare
        if m is not None and m.mn_auth_end:
            return m.mn_auth_end
        mnha = self.mnha
        return mnha + 2 + self.data[mnha + 1] if mnha >= 0 else 0

    @property
    def aaa(self) -> int:
        return self.rare.aaa if self.rare is not None else -1

    @property
    def aaa_e(self) -> int:
        return self.rare.aaa_e if self.rare is not None else 0

    @property
    def chal(self) -> int:
        return self.rare.chal if self.rare is not None else -1

    @property
    def chal_e(self) -> int:
        return self.rare.chal_e if self.rare is not None else 0

    @property
    def chal_auth(self) -> int:
        return self.rare.chal_auth if self.rare is not None else -1

    @property
    def gre_key(self) -> int | None:
        return self.rare.gre_key if self.rare is not None else None

    @property
    def gre_at(self) -> int:
        return self.rare.gre_at if self.rare is not None else -1

    @property
    def cvse_s(self) -> int:
        return self.rare.cvse_s if self.rare is not None else -1

    @property
    def cvse_e(self) -> int:
        return self.rare.cvse_e if self.rare is not None else 0

    @property
    def unknown_cvse(self) -> int:
        return self.rare.unknown_cvse if self.rare is not None else -1

    @property
    def poorly(self) -> bool:
        return self.rare.poorly if self.rare is not None else False

    @property
    def revsup(self) -> int:
        return self.rare.revsup if self.rare is not None else -1

    @property
    def critical(self) -> int:
        return self.rare.critical if self.rare is not None else 0

    @property
    def nai(self) -> str | None:
        """The first NAI (None: none, or empty); DecodeError("bad-nai") if not UTF-8."""
        if not self.nai_s:
            return None
        try:
            return self.data[self.nai_s + 2 : self.nai_e].decode() or None
        except UnicodeDecodeError as e:
            raise DecodeError("bad-nai", "not UTF-8") from e

    @property
    def home_addr(self) -> str:
        return ip_str_cached(self.home_b)

    @property
    def ha_addr(self) -> str:
        return ip_str_cached(self.ha_b)

    @property
    def care_of(self) -> str:
        return ip_str_cached(self.coa_b)

    @property
    def challenge(self) -> bytes | None:
        c = self.chal
        return self.data[c + 2 : self.chal_e] if c >= 0 else None

    def protected_by(self, off: int) -> int:
        """The authentication extension covering the extension at ``off``: the MN's
        authorization-enabling one (32 or 36) when it follows, else FA-HA (34) when the
        last FA-HA follows, else 0 (nothing protects it, RFC 5944 §3.5.1)."""
        if off < self.auth:
            return self.auth_type
        if off < self.faha:
            return EXT_FA_HA
        return 0


def _walk(p: ParsedRequest, data: bytes, off: int, spans: list[ExtSpan] | None) -> None:
    """The one walk over a message's extensions from ``off``: records into ``p`` what
    :data:`EXTENSIONS` says to record, and each extension's span into ``spans`` if given.
    Stops at the first unknown non-skippable type or truncated extension (``p.error``)."""
    n = len(data)
    record = _RECORD
    is_long = _IS_LONG
    nai_s = nai_e = n_faha = 0
    mnha = faha = -1
    m: _Rare | None = None
    error: str | None = None
    while off < n:
        t = data[off]
        r = record[t]
        if r == _R_CRITICAL:
            if m is None:
                m = _Rare()
            error, m.critical = "unknown-critical-extension", t
            break
        if is_long[t]:
            if off + 4 > n:
                error = "truncated-extension"
                break
            value = off + 4
            end = value + ((data[off + 2] << 8) | data[off + 3])
        else:
            if off + 2 > n:
                error = "truncated-extension"
                break
            value = off + 2
            end = value + data[off + 1]
        if end > n:
            error = "truncated-extension"
            break
        if spans is not None:
            spans.append(ExtSpan(t, off, value, end))
        if r == _R_NAI:
            if not nai_s:
                nai_s, nai_e = off, end
        elif r == _R_MN_HA:
            if mnha < 0:
                mnha = off
                if m is not None and m.mn_auth_end:
                    m.mn_auth_end = end
            else:
                if m is None:
                    m = _Rare()
                m.mn_auth_end = end
        elif r == _R_FA_HA:
            n_faha += 1
            faha = off
        elif r != _R_SKIP:
            if m is None:
                m = _Rare()
            _record_rare(m, r, data, off, value, end)
        off = end
    p.nai_s = nai_s
    p.nai_e = nai_e
    p.mnha = mnha
    p.faha = faha
    p.n_faha = n_faha
    p.error = error
    p.rare = m
    if m is not None and m.aaa >= 0 and (mnha < 0 or m.aaa < mnha):
        p.auth = m.aaa
    else:
        p.auth = mnha


def _record_rare(m: _Rare, r: int, data: bytes, off: int, value: int, end: int) -> None:
    """The walk's recording of the extensions in :class:`_Rare`."""
    if r == _R_GEN_AUTH:
        if data[off + 1] == GEN_AUTH_MN_AAA:
            if m.aaa < 0:
                m.aaa, m.aaa_e = off, end
            m.mn_auth_end = end
            m.chal_auth = off
    elif r == _R_CHALLENGE:
        if m.chal < 0:
            m.chal, m.chal_e = off, end
    elif r == _R_MN_FA:
        m.chal_auth = off
    elif r == _R_GRE_KEY:
        if end - value == 4:
            m.gre_key = _U32.unpack_from(data, value)[0]
            m.gre_at = off
        else:
            m.poorly = True
    elif r == _R_REVSUP:
        m.revsup = off
    elif r == _R_CVSE:
        if end - value >= 6:
            vid, vtype = _VENDOR_ID_TYPE.unpack_from(data, value)
            if vid == VENDOR_3GPP2 and vtype == CVSE_3GPP2_GRE_KEY and end - value == 10:
                m.gre_key = _U32.unpack_from(data, value + 6)[0]
                m.gre_at = m.cvse_s = off
                m.cvse_e = end
            elif m.unknown_cvse < 0:
                m.unknown_cvse = off
        else:
            m.poorly = True


_new = object.__new__


def parse_request(
    data: bytes, into: type[ParsedRequest] = ParsedRequest, spans: list[ExtSpan] | None = None
) -> ParsedRequest:
    """The fixed part of a Registration Request and one walk over its extensions.

    ``into``: the class to fill (a receiver's subclass); ``spans``: a list to receive every
    extension's span (the full decoder's). Raises DecodeError only for what is not a
    request at all (``"short"``, ``"not-request"``); a problem in the extensions is
    ``p.error`` (the walk records what it saw up to there).
    """
    if len(data) < 24 or data[0] != RRQ:
        raise DecodeError("short" if data[:1] == b"\x01" else "not-request")
    p = _new(into)
    p.data = data
    _t, p.flags, p.lifetime, p.home_b, p.ha_b, p.coa_b, p.ident = _RRQ.unpack_from(data)
    _walk(p, data, 24, spans)
    return p


# RFC 5944 §3.3: a request's first extension follows its 24-byte fixed part; FAs and PDSNs
# put the NAI (RFC 2794 §2) there. mobileha._slbio reads the same offsets.
NAI_AT: Final = 24
IDENT_AT: Final = 16


def leading_nai(data: bytes) -> str | None:
    """The NAI of a Registration Request whose first extension is a non-empty, complete,
    UTF-8 NAI, else None: the constant-time check of the HA-SLB readers
    (``mobileha._slbio.leading_nai`` is the same in C). When it is not None, it is the
    NAI :func:`parse_request` records."""
    n = len(data)
    if n < NAI_AT + 2 or data[0] != RRQ or data[NAI_AT] != EXT_NAI:
        return None
    ln = data[NAI_AT + 1]
    if not 0 < ln <= n - NAI_AT - 2:
        return None
    try:
        return data[NAI_AT + 2 : NAI_AT + 2 + ln].decode()
    except UnicodeDecodeError:
        return None


def walk_extensions(data: bytes, off: int) -> list[ExtSpan]:
    """The span of every extension from ``off`` on (the walk of :func:`parse_request`).

    Raises UnknownCriticalExtension on a non-skippable type not in :data:`EXTENSIONS`
    and DecodeError on a truncated extension.
    """
    spans: list[ExtSpan] = []
    p = _new(ParsedRequest)
    _walk(p, data, off, spans)
    _raise_walk_error(p, spans, off)
    return spans


def _raise_walk_error(p: ParsedRequest, spans: list[ExtSpan], off: int) -> None:
    if p.error is not None:
        if p.rare is not None and p.rare.critical:
            raise UnknownCriticalExtension(p.rare.critical)
        raise DecodeError(p.error, f"at offset {spans[-1].end if spans else off}")


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
    # The walk of a decoded request (offsets of the MN's authenticators, challenge...).
    parsed: ParsedRequest | None = field(default=None, compare=False, repr=False)
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
        if data[0] != RRQ:
            raise DecodeError("bad-type", f"type {data[0]} is not a registration request")
        spans: list[ExtSpan] = []
        p = parse_request(data, spans=spans)
        _raise_walk_error(p, spans, 24)
        return cls(
            [_decode_ext(data, s) for s in spans],
            [s.start for s in spans],
            bytes(data),
            p.flags,
            p.lifetime,
            ip_str(p.home_b),
            ip_str(p.ha_b),
            ip_str(p.coa_b),
            p.ident,
            p,
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
        return self.code in (ReplyCode.ACCEPTED, ReplyCode.ACCEPTED_NO_SIMULTANEOUS)

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


__all__ = [
    "AUTH_EXT_TYPES",
    "EXTENSIONS",
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
    "IDENT_AT",
    "LIFETIME_INFINITE",
    "MIP_PORT",
    "NAI_AT",
    "REPLY_CODES",
    "REPLY_CODE_INFO",
    "REVOCATION",
    "REVOCATION_ACK",
    "RRP",
    "RRQ",
    "AuthExt",
    "ChallengeExt",
    "CodeInfo",
    "CvseExt",
    "DynamicHaExt",
    "ExtRule",
    "ExtSpan",
    "Extension",
    "GenAuthExt",
    "GreKeyExt",
    "Message",
    "NaiExt",
    "NvseExt",
    "ParsedRequest",
    "RegistrationReply",
    "RegistrationRequest",
    "RegistrationRevocation",
    "ReplyCode",
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
    "leading_nai",
    "parse_request",
    "reply_code_name",
    "walk_extensions",
]
