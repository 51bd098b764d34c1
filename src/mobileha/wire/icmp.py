"""ICMP for Mobile IPv4: agent discovery and the error messages agents act on.

* **Agent Advertisement** (RFC 5944 §2.1): an ICMP Router Advertisement (type 9, RFC 1256)
  followed by extensions: the Mobility Agent Advertisement Extension (type 16, §2.1.1),
  the Prefix-Lengths Extension (type 19, §2.1.2), the One-byte Padding Extension (type 0,
  §2.1.3) and the MN-FA Challenge (type 24, RFC 4721 §2). Other extensions are kept as
  :class:`UnknownAdvExt` and re-encoded byte-exact; whether one below 128 invalidates the
  advertisement is the receiver's decision (RFC 5944 §1.9).
* **Agent Solicitation** (RFC 5944 §2.2): an ICMP Router Solicitation (type 10).
* **ICMP error messages** (RFC 792: Destination Unreachable 3, Source Quench 4, Redirect 5,
  Time Exceeded 11, Parameter Problem 12) with the datagram they quote, read with
  :func:`decode_quoted` (a quote is usually truncated, so the quoted IPv4 header's total
  length is not checked against it).

Flag bits of the Mobility Agent Advertisement Extension are one 16-bit field, as Wireshark
reads them (``icmp.mip.flags``): R B H F M G r T in the first byte, then U (RFC 3519), X
(RFC 3543) and I (Regional Registration, RFC 5944 §2.1.1; Wireshark counts it in
``icmp.mip.reserved``). PROTOCOLS.md P§1.10 calls that I bit "RFC 3543 I-bit": RFC 3543's
I bit is in the Revocation Support extension of registrations, not in advertisements.

Checksums are computed by the encoders and checked by the decoders (``verify=False`` skips
the check). JSON names (``to_dict``) follow Wireshark's ``icmp.*`` and ``icmp.mip.*`` fields.
Every decode problem is a :class:`~mobileha.wire.DecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from mobileha.wire import DecodeError, ip_bytes, ip_str
from mobileha.wire.ip import IPV4, IPv4Header, checksum, ipv4_header

# ICMP types (RFC 792, RFC 1256)
ECHO_REPLY: Final = 0
DEST_UNREACHABLE: Final = 3
SOURCE_QUENCH: Final = 4
REDIRECT: Final = 5
ECHO_REQUEST: Final = 8
ROUTER_ADVERTISEMENT: Final = 9
ROUTER_SOLICITATION: Final = 10
TIME_EXCEEDED: Final = 11
PARAMETER_PROBLEM: Final = 12
ERROR_TYPES: Final = frozenset(
    {DEST_UNREACHABLE, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM}
)

# Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1)
UNREACH_NET: Final = 0
UNREACH_HOST: Final = 1
UNREACH_PROTOCOL: Final = 2
UNREACH_PORT: Final = 3
UNREACH_NEEDFRAG: Final = 4
UNREACH_SRCFAIL: Final = 5
UNREACH_NET_UNKNOWN: Final = 6
UNREACH_HOST_UNKNOWN: Final = 7
UNREACH_ISOLATED: Final = 8
UNREACH_NET_PROHIB: Final = 9
UNREACH_HOST_PROHIB: Final = 10
UNREACH_NET_TOS: Final = 11
UNREACH_HOST_TOS: Final = 12
UNREACH_FILTER_PROHIB: Final = 13

# Router Advertisement codes (RFC 5944 §2.1)
ADV_CODE_ROUTER: Final = 0  # the agent routes common traffic
ADV_CODE_MOBILITY_ONLY: Final = 16  # it does not (but forwards for registered MNs)

# Well-known destinations (RFC 1256, RFC 5944 §2.1, §2.3)
ALL_SYSTEMS: Final = "224.0.0.1"
ALL_ROUTERS: Final = "224.0.0.2"
MOBILE_AGENTS: Final = "224.0.0.11"
LIMITED_BROADCAST: Final = "255.255.255.255"

# Agent Advertisement extension types (RFC 5944 §2.1, RFC 4721 §2)
EXT_PAD: Final = 0
EXT_MOBILITY_AGENT: Final = 16
EXT_PREFIX_LENGTHS: Final = 19
EXT_CHALLENGE: Final = 24

# Mobility Agent Advertisement Extension flags, as one 16-bit field (RFC 5944 §2.1.1)
ADV_R: Final = 0x8000  # registration required
ADV_B: Final = 0x4000  # busy
ADV_H: Final = 0x2000  # home agent
ADV_F: Final = 0x1000  # foreign agent
ADV_M: Final = 0x0800  # minimal encapsulation
ADV_G: Final = 0x0400  # GRE encapsulation
ADV_RSVD_R: Final = 0x0200  # "r": reserved, sent as zero and ignored (RFC 5944 §2.1.1)
ADV_T: Final = 0x0100  # reverse tunnelling (RFC 3024)
ADV_U: Final = 0x0080  # UDP tunnelling (RFC 3519)
ADV_X: Final = 0x0040  # registration revocation (RFC 3543)
ADV_I: Final = 0x0020  # regional registration (RFC 4857)
ADV_RESERVED: Final = 0x001F

SEQ_MAX: Final = 0xFFFF
SEQ_WRAP: Final = 256  # RFC 5944 §2.3.2: 0xffff is followed by 256, never 0
LIFETIME_INFINITE: Final = 0xFFFF

_HDR: Final = struct.Struct("!BBH")  # type, code, checksum
_RA: Final = struct.Struct("!BBHBBH")  # type, code, checksum, num addrs, entry size, lifetime
_ENTRY: Final = struct.Struct("!4si")  # router address, preference level (signed)
_MAAE: Final = struct.Struct("!BBHHH")  # type, length, sequence, registration lifetime, flags
_RS: Final = struct.Struct("!BBHI")  # type, code, checksum, reserved
_ERR: Final = struct.Struct("!BBH4s")  # type, code, checksum, 4 bytes of type-specific data


def next_sequence(seq: int) -> int:
    """The sequence number after ``seq`` (RFC 5944 §2.3.2: 0..0xffff, then 256)."""
    return SEQ_WRAP if seq >= SEQ_MAX else seq + 1


def sequence_reset(prev: int, seq: int) -> bool:
    """Did the agent reboot (or reset its bindings) between two successive advertisements
    with these sequence numbers? RFC 5944 §2.4.4: a drop to 0..255 means a reboot, a drop
    to 256 or more a rollover past 0xffff."""
    return seq < prev and seq < SEQ_WRAP


# --- advertisement extensions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MobilityAgentExt:
    """Mobility Agent Advertisement Extension (type 16, RFC 5944 §2.1.1)."""

    sequence: int
    registration_lifetime: int
    flags: int
    care_of: tuple[str, ...] = ()
    ext_type: int = field(default=EXT_MOBILITY_AGENT, init=False, repr=False)

    def encode(self) -> bytes:
        coas = b"".join(ip_bytes(a) for a in self.care_of)
        return (
            _MAAE.pack(
                EXT_MOBILITY_AGENT,
                6 + len(coas),
                self.sequence,
                self.registration_lifetime,
                self.flags,
            )
            + coas
        )

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def to_dict(self) -> dict[str, Any]:
        f = self.flags
        return {
            "icmp.mip.type": EXT_MOBILITY_AGENT,
            "icmp.mip.length": 6 + 4 * len(self.care_of),
            "icmp.mip.seq": self.sequence,
            "icmp.mip.life": self.registration_lifetime,
            "icmp.mip.flags": f,
            "icmp.mip.r": bool(f & ADV_R),
            "icmp.mip.b": bool(f & ADV_B),
            "icmp.mip.h": bool(f & ADV_H),
            "icmp.mip.f": bool(f & ADV_F),
            "icmp.mip.m": bool(f & ADV_M),
            "icmp.mip.g": bool(f & ADV_G),
            "icmp.mip.v": bool(f & ADV_RSVD_R),
            "icmp.mip.rt": bool(f & ADV_T),
            "icmp.mip.u": bool(f & ADV_U),
            "icmp.mip.x": bool(f & ADV_X),
            "regional_registration": bool(f & ADV_I),
            "icmp.mip.coa": list(self.care_of),
        }


@dataclass(frozen=True, slots=True)
class PrefixLengthsExt:
    """Prefix-Lengths Extension (type 19, RFC 5944 §2.1.2): one prefix length per router
    address of the ICMP part, in the same order."""

    lengths: tuple[int, ...]
    ext_type: int = field(default=EXT_PREFIX_LENGTHS, init=False, repr=False)

    def encode(self) -> bytes:
        return bytes((EXT_PREFIX_LENGTHS, len(self.lengths), *self.lengths))

    def to_dict(self) -> dict[str, Any]:
        return {
            "icmp.mip.type": EXT_PREFIX_LENGTHS,
            "icmp.mip.length": len(self.lengths),
            "icmp.mip.prefixlength": list(self.lengths),
        }


@dataclass(frozen=True, slots=True)
class PadExt:
    """One-byte Padding Extension (type 0, RFC 5944 §2.1.3): a lone Type byte."""

    ext_type: int = field(default=EXT_PAD, init=False, repr=False)

    def encode(self) -> bytes:
        return b"\x00"

    def to_dict(self) -> dict[str, Any]:
        return {"icmp.mip.type": EXT_PAD}


@dataclass(frozen=True, slots=True)
class ChallengeAdvExt:
    """MN-FA Challenge in an advertisement (type 24, RFC 4721 §2)."""

    challenge: bytes
    ext_type: int = field(default=EXT_CHALLENGE, init=False, repr=False)

    def encode(self) -> bytes:
        if len(self.challenge) > 255:
            raise ValueError("challenge longer than 255 bytes")
        return bytes((EXT_CHALLENGE, len(self.challenge))) + self.challenge

    def to_dict(self) -> dict[str, Any]:
        return {"icmp.mip.type": EXT_CHALLENGE, "icmp.mip.challenge": self.challenge.hex()}


@dataclass(frozen=True, slots=True)
class UnknownAdvExt:
    """An advertisement extension we do not interpret, kept byte-exact."""

    ext_type: int
    data: bytes

    def encode(self) -> bytes:
        return bytes((self.ext_type, len(self.data))) + self.data

    def to_dict(self) -> dict[str, Any]:
        return {"icmp.mip.type": self.ext_type, "icmp.mip.content": self.data.hex()}


AdvExtension: TypeAlias = (
    MobilityAgentExt | PrefixLengthsExt | PadExt | ChallengeAdvExt | UnknownAdvExt
)


def _decode_ext(t: int, value: bytes) -> AdvExtension:
    if t == EXT_MOBILITY_AGENT:
        if len(value) < 6 or (len(value) - 6) % 4:
            raise DecodeError("bad-mobility-agent-length", f"length {len(value)}")
        seq, life, flags = struct.unpack_from("!HHH", value)
        coas = tuple(ip_str(value[i : i + 4]) for i in range(6, len(value), 4))
        return MobilityAgentExt(seq, life, flags, coas)
    if t == EXT_PREFIX_LENGTHS:
        if any(n > 32 for n in value):
            raise DecodeError("bad-prefix-length", "prefix length above 32")
        return PrefixLengthsExt(tuple(value))
    if t == EXT_CHALLENGE:
        return ChallengeAdvExt(bytes(value))
    return UnknownAdvExt(t, bytes(value))


# --- messages -------------------------------------------------------------------------


def _with_checksum(msg: bytearray) -> bytes:
    msg[2:4] = checksum(msg).to_bytes(2, "big")
    return bytes(msg)


def _check(data: bytes, verify: bool) -> None:
    if verify and checksum(data) != 0:
        raise DecodeError("bad-checksum", "ICMP checksum")


@dataclass(frozen=True, slots=True)
class AgentAdvertisement:
    """An ICMP Router Advertisement with Mobile IP extensions (RFC 5944 §2.1, RFC 1256 §3).

    ``lifetime``: seconds the advertisement is valid (the ICMP part's Lifetime, not the
    registration lifetime). ``routers``: (router address, preference level) pairs, possibly
    none (RFC 5944 §2.1 Num Addrs may be 0). ``entry_size``: 32-bit words per router
    entry (2 in RFC 1256; a larger size's extra words are not kept, so only 2 encodes
    byte-exact).
    """

    lifetime: int
    routers: tuple[tuple[str, int], ...] = ()
    extensions: tuple[AdvExtension, ...] = ()
    code: int = ADV_CODE_ROUTER
    entry_size: int = 2

    @property
    def mobility(self) -> MobilityAgentExt | None:
        """The first Mobility Agent Advertisement Extension (None: a plain router
        advertisement, RFC 5944 §2.4)."""
        for e in self.extensions:
            if isinstance(e, MobilityAgentExt):
                return e
        return None

    @property
    def prefix_lengths(self) -> PrefixLengthsExt | None:
        for e in self.extensions:
            if isinstance(e, PrefixLengthsExt):
                return e
        return None

    @property
    def challenge(self) -> bytes | None:
        for e in self.extensions:
            if isinstance(e, ChallengeAdvExt):
                return e.challenge
        return None

    def unknown_critical(self) -> int | None:
        """The first extension type below 128 that we do not know (RFC 5944 §1.9: the
        receiver discards such an advertisement), or None."""
        for e in self.extensions:
            if isinstance(e, UnknownAdvExt) and e.ext_type < 128:
                return e.ext_type
        return None

    def prefixes(self) -> list[tuple[str, int]]:
        """(router address, prefix length) pairs from the Prefix-Lengths Extension."""
        pl = self.prefix_lengths
        if pl is None:
            return []
        return [(r[0], n) for r, n in zip(self.routers, pl.lengths)]

    def encode(self) -> bytes:
        if self.entry_size != 2:
            raise ValueError("only the RFC 1256 address entry size 2 is encoded")
        msg = bytearray(
            _RA.pack(ROUTER_ADVERTISEMENT, self.code, 0, len(self.routers), 2, self.lifetime)
        )
        for addr, pref in self.routers:
            msg += _ENTRY.pack(ip_bytes(addr), pref)
        for e in self.extensions:
            msg += e.encode()
        return _with_checksum(msg)

    @classmethod
    def decode(cls, data: bytes, verify: bool = True) -> AgentAdvertisement:
        """RFC 1256 §5.2's validity checks (length, entry size >= 2, room for the entries)
        and RFC 5944 §2.4's reading of what follows the entries as extensions."""
        if len(data) < 8:
            raise DecodeError("short", f"{len(data)} bytes, router advertisement needs 8")
        t, code, _cs, n, size, lifetime = _RA.unpack_from(data)
        if t != ROUTER_ADVERTISEMENT:
            raise DecodeError("bad-type", f"ICMP type {t} is not a router advertisement")
        if size < 2:
            raise DecodeError("bad-entry-size", f"address entry size {size}")
        end = 8 + 4 * size * n
        if len(data) < end:
            raise DecodeError("short", f"{n} router entries need {end} bytes")
        _check(data, verify)
        routers = []
        for i in range(n):
            a, pref = _ENTRY.unpack_from(data, 8 + 4 * size * i)
            routers.append((ip_str(a), pref))
        exts: list[AdvExtension] = []
        off = end
        while off < len(data):
            et = data[off]
            if et == EXT_PAD:
                exts.append(PadExt())
                off += 1
                continue
            if off + 2 > len(data):
                raise DecodeError("truncated-extension", f"at offset {off}")
            ln = data[off + 1]
            if off + 2 + ln > len(data):
                raise DecodeError("truncated-extension", f"type {et} at offset {off}")
            exts.append(_decode_ext(et, data[off + 2 : off + 2 + ln]))
            off += 2 + ln
        return cls(lifetime, tuple(routers), tuple(exts), code, size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "icmp.type": ROUTER_ADVERTISEMENT,
            "message": "Agent Advertisement" if self.mobility else "Router Advertisement",
            "icmp.code": self.code,
            "icmp.num_addrs": len(self.routers),
            "icmp.addr_entry_size": self.entry_size,
            "icmp.lifetime": self.lifetime,
            "routers": [{"icmp.router_address": a, "icmp.pref_level": p} for a, p in self.routers],
            "extensions": [e.to_dict() for e in self.extensions],
        }


@dataclass(frozen=True, slots=True)
class AgentSolicitation:
    """An ICMP Router Solicitation (RFC 1256 §3; RFC 5944 §2.2). ``reserved`` is sent as
    zero and ignored on receipt; kept for byte-exact re-encoding."""

    code: int = 0
    reserved: int = 0

    def encode(self) -> bytes:
        return _with_checksum(bytearray(_RS.pack(ROUTER_SOLICITATION, self.code, 0, self.reserved)))

    @classmethod
    def decode(cls, data: bytes, verify: bool = True) -> AgentSolicitation:
        """RFC 1256 §5.4's validity checks: 8 bytes at least, code 0, the checksum."""
        if len(data) < 8:
            raise DecodeError("short", f"{len(data)} bytes, router solicitation needs 8")
        t, code, _cs, reserved = _RS.unpack_from(data)
        if t != ROUTER_SOLICITATION:
            raise DecodeError("bad-type", f"ICMP type {t} is not a router solicitation")
        if code != 0:
            raise DecodeError("bad-code", f"router solicitation code {code}")
        _check(data, verify)
        return cls(code, reserved)

    def to_dict(self) -> dict[str, Any]:
        return {"icmp.type": ROUTER_SOLICITATION, "message": "Agent Solicitation", "icmp.code": 0}


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error message (RFC 792): ``rest`` is the 4 type-specific bytes (unused, the
    Parameter Problem pointer, the Redirect gateway, the next-hop MTU of RFC 1191), then
    the quoted datagram (its IP header and at least 8 bytes of its payload)."""

    icmp_type: int
    code: int
    quoted: bytes
    rest: bytes = b"\x00\x00\x00\x00"

    @property
    def next_hop_mtu(self) -> int:
        """RFC 1191: the MTU in a Fragmentation Needed message (0 if absent)."""
        return int.from_bytes(self.rest[2:4], "big")

    def encode(self) -> bytes:
        if len(self.rest) != 4:
            raise ValueError("rest must be 4 bytes")
        msg = bytearray(_ERR.pack(self.icmp_type, self.code, 0, self.rest)) + self.quoted
        return _with_checksum(msg)

    @classmethod
    def decode(cls, data: bytes, verify: bool = True) -> IcmpError:
        if len(data) < 8:
            raise DecodeError("short", f"{len(data)} bytes, ICMP error needs 8")
        t, code, _cs, rest = _ERR.unpack_from(data)
        if t not in ERROR_TYPES:
            raise DecodeError("bad-type", f"ICMP type {t} is not an error message")
        _check(data, verify)
        return cls(t, code, bytes(data[8:]), rest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "icmp.type": self.icmp_type,
            "icmp.code": self.code,
            "quoted": self.quoted.hex(),
        }


def decode_quoted(data: bytes) -> tuple[IPv4Header, bytes]:
    """The IPv4 header an ICMP error quotes and the part of its payload that follows.

    The quote is normally shorter than the datagram was, so the header's total length is
    not checked against it, nor its checksum (a router may have changed the TTL first).
    """
    if len(data) < 20:
        raise DecodeError("short", f"quoted datagram: {len(data)} bytes")
    fields = IPV4.unpack_from(data)
    vihl = fields[0]
    if vihl >> 4 != 4:
        raise DecodeError("bad-version", f"quoted IP version {vihl >> 4}")
    hlen = (vihl & 0xF) * 4
    if hlen < 20 or len(data) < hlen:
        raise DecodeError("bad-ihl", f"quoted IHL {vihl & 0xF}")
    return ipv4_header(fields, bytes(data[20:hlen])), bytes(data[hlen:])


IcmpMessage: TypeAlias = AgentAdvertisement | AgentSolicitation | IcmpError


def decode(data: bytes, verify: bool = True) -> IcmpMessage:
    """Decode an ICMP message of one of the kinds above (from its Type byte on)."""
    if not data:
        raise DecodeError("short", "empty ICMP message")
    t = data[0]
    if t == ROUTER_ADVERTISEMENT:
        return AgentAdvertisement.decode(data, verify)
    if t == ROUTER_SOLICITATION:
        return AgentSolicitation.decode(data, verify)
    if t in ERROR_TYPES:
        return IcmpError.decode(data, verify)
    raise DecodeError("unknown-type", f"ICMP type {t}")


__all__ = [
    "ADV_B",
    "ADV_CODE_MOBILITY_ONLY",
    "ADV_CODE_ROUTER",
    "ADV_F",
    "ADV_G",
    "ADV_H",
    "ADV_I",
    "ADV_M",
    "ADV_R",
    "ADV_RESERVED",
    "ADV_RSVD_R",
    "ADV_T",
    "ADV_U",
    "ADV_X",
    "ALL_ROUTERS",
    "ALL_SYSTEMS",
    "DEST_UNREACHABLE",
    "ERROR_TYPES",
    "EXT_CHALLENGE",
    "EXT_MOBILITY_AGENT",
    "EXT_PAD",
    "EXT_PREFIX_LENGTHS",
    "LIFETIME_INFINITE",
    "LIMITED_BROADCAST",
    "MOBILE_AGENTS",
    "PARAMETER_PROBLEM",
    "REDIRECT",
    "ROUTER_ADVERTISEMENT",
    "ROUTER_SOLICITATION",
    "SEQ_MAX",
    "SEQ_WRAP",
    "SOURCE_QUENCH",
    "TIME_EXCEEDED",
    "UNREACH_FILTER_PROHIB",
    "UNREACH_HOST",
    "UNREACH_HOST_PROHIB",
    "UNREACH_HOST_TOS",
    "UNREACH_HOST_UNKNOWN",
    "UNREACH_ISOLATED",
    "UNREACH_NEEDFRAG",
    "UNREACH_NET",
    "UNREACH_NET_PROHIB",
    "UNREACH_NET_TOS",
    "UNREACH_NET_UNKNOWN",
    "UNREACH_PORT",
    "UNREACH_PROTOCOL",
    "UNREACH_SRCFAIL",
    "AdvExtension",
    "AgentAdvertisement",
    "AgentSolicitation",
    "ChallengeAdvExt",
    "IcmpError",
    "IcmpMessage",
    "MobilityAgentExt",
    "PadExt",
    "PrefixLengthsExt",
    "UnknownAdvExt",
    "decode",
    "decode_quoted",
    "next_sequence",
    "sequence_reset",
]
