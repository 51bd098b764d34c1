"""HSRP codec: version 1 (RFC 2281), the Advertise message, and Cisco's version 2 TLVs (P§4).

Layouts:

* **v1** (P§4.2, RFC 2281 §5.1): 20 bytes ``Version(0) OpCode State Hellotime(s) Holdtime(s)
  Priority Group Reserved Auth(8) VirtualIP(4)``, optionally followed by the 30-byte MD5
  authentication TLV (type 4, length 28) as Cisco does (P§4.5); Wireshark recognises exactly
  that 50-byte form.
* **Advertise** (opcode 3, P§4.6, Wireshark ``packet-hsrp.c``, scapy ``HSRPAdvertise``):
  16 bytes ``Version(0) OpCode(3) Type(2) Length(2) State(1) Reserved(1) Active(2)
  Passive(2) Reserved(4)``. The Length value is carried as is (scapy's default 10 = the bytes
  after the Length field) [I].
* **v2** (P§4.5, Wireshark): a sequence of ``Type(1) Length(1) Value`` TLVs: 1 Group State
  (40), 2 Interface State (4), 3 Text Authentication (8), 4 MD5 Authentication (28).
  Unknown TLV types are kept and re-encoded byte-exact; a known type with the wrong length is
  an error.

Dispatch (:func:`decode`): the first byte is 0 for v1/Advertise; a v2 packet starts with a
TLV type (1..4), as scapy does. Wireshark dispatches on the destination address instead;
callers that know it may call :func:`decode_v1` / :func:`decode_v2` directly.

MD5 authentication (P§4.5, Cisco's MD5 TLV): RFC 1828 keyed MD5,
``MD5(K' || packet || key)`` where ``K'`` is the key followed by MD5's own padding to one
64-byte block and ``packet`` is the whole HSRP payload with the 16 digest bytes zeroed (and,
in v1, the 8-byte authentication field zeroed). The TLV carries the sender's IP address,
which the digest covers: a digest is bound to its sender (:func:`md5_sender`), so a
receiver drops a packet whose IP source is another address. Checked against the three
public vectors of P§4.5. See :func:`md5_sign` and :func:`md5_verify`.

Codecs only: no state, no I/O. Every decoder raises :class:`DecodeError` and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Final

from mobileha.wire import DecodeError, ip_bytes

# --------------------------------------------------------------------------- constants
HSRP_PORT: Final = 1985
HSRP_V2_PORT6: Final = 2029
MCAST_V1: Final = "224.0.0.2"
MCAST_V2: Final = "224.0.0.102"
MCAST_V2_IPV6: Final = "ff02::66"

OP_HELLO: Final = 0
OP_COUP: Final = 1
OP_RESIGN: Final = 2
OP_ADVERTISE: Final = 3
OPCODE_NAMES: Final = {0: "Hello", 1: "Coup", 2: "Resign", 3: "Advertise"}

# v1 state values (RFC 2281 §5.1); the core uses these as its state identifiers.
INITIAL: Final = 0
LEARN: Final = 1
LISTEN: Final = 2
SPEAK: Final = 4
STANDBY: Final = 8
ACTIVE: Final = 16
STATE_NAMES: Final = {0: "Initial", 1: "Learn", 2: "Listen", 4: "Speak", 8: "Standby", 16: "Active"}

# v2 state values (Wireshark packet-hsrp.c hsrp2_state_vals; 0 = disabled).
V2_DISABLED: Final = 0
V1_TO_V2_STATE: Final = {INITIAL: 1, LEARN: 2, LISTEN: 3, SPEAK: 4, STANDBY: 5, ACTIVE: 6}
V2_TO_V1_STATE: Final = {v: k for k, v in V1_TO_V2_STATE.items()}

DEFAULT_AUTH: Final = b"cisco\x00\x00\x00"
DEFAULT_HELLO_S: Final = 3
DEFAULT_HOLD_S: Final = 10
DEFAULT_HELLO_MS: Final = 3000
DEFAULT_HOLD_MS: Final = 10000
DEFAULT_PRIORITY: Final = 100

TLV_GROUP_STATE: Final = 1
TLV_INTERFACE_STATE: Final = 2
TLV_TEXT_AUTH: Final = 3
TLV_MD5_AUTH: Final = 4
MD5_ALGORITHM: Final = 1

ADV_TYPE_INTERFACE_STATE: Final = 1
ADV_TYPE_IP_REDUNDANCY: Final = 2
ADV_STATE_DORMANT, ADV_STATE_PASSIVE, ADV_STATE_ACTIVE = 1, 2, 3

_V1: Final = struct.Struct("!BBBBBBBB8s4s")
_ADV: Final = struct.Struct("!BBHHBBHHI")
_TLV_HDR: Final = struct.Struct("!BB")
_GROUP_STATE: Final = struct.Struct("!BBBBH6sIII16s")
_IFACE_STATE: Final = struct.Struct("!HH")
_MD5: Final = struct.Struct("!BBH4sI16s")

V1_LEN: Final = _V1.size  # 20
MD5_TLV_LEN: Final = _TLV_HDR.size + _MD5.size  # 30
ADVERTISE_LEN: Final = _ADV.size  # 16
_MD5_DIGEST_IN_TLV: Final = _TLV_HDR.size + 12  # offset of the digest inside the MD5 TLV

_KNOWN_TLV_LEN: Final = {
    TLV_GROUP_STATE: _GROUP_STATE.size,
    TLV_INTERFACE_STATE: _IFACE_STATE.size,
    TLV_TEXT_AUTH: 8,
    TLV_MD5_AUTH: _MD5.size,
}


# --------------------------------------------------------------------------- helpers
def virtual_mac(group: int, version: int = 1) -> bytes:
    """The group's virtual MAC (P§4.4): v1 ``00:00:0c:07:ac:XX``, v2 ``00:00:0c:9f:fX:XX``."""
    if version == 1:
        if not 0 <= group <= 255:
            raise ValueError("v1 group must be 0-255")
        return bytes((0x00, 0x00, 0x0C, 0x07, 0xAC, group))
    if not 0 <= group <= 4095:
        raise ValueError("v2 group must be 0-4095")
    return bytes((0x00, 0x00, 0x0C, 0x9F, 0xF0 | (group >> 8), group & 0xFF))


def virtual_mac_v6(group: int) -> bytes:
    """v2 IPv6 virtual MAC ``00:05:73:a0:0X:XX`` (P§4.4, [I] secondary sources)."""
    if not 0 <= group <= 4095:
        raise ValueError("v2 group must be 0-4095")
    return bytes((0x00, 0x05, 0x73, 0xA0, group >> 8, group & 0xFF))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def text_auth(password: str | bytes) -> bytes:
    """An 8-byte authentication field: the password zero-padded (at most 8 bytes)."""
    raw = password.encode() if isinstance(password, str) else password
    if len(raw) > 8:
        raise ValueError("HSRP text authentication is at most 8 bytes")
    return raw.ljust(8, b"\x00")


# --------------------------------------------------------------------------- messages
@dataclass(frozen=True, slots=True)
class Md5Auth:
    """MD5 authentication TLV (type 4, length 28), in v2 and appended to v1 (P§4.5)."""

    algorithm: int = MD5_ALGORITHM
    padding: int = 0
    flags: int = 0
    ip: str = "0.0.0.0"
    key_id: int = 0
    digest: bytes = bytes(16)

    def encode(self) -> bytes:
        return _TLV_HDR.pack(TLV_MD5_AUTH, _MD5.size) + _MD5.pack(
            self.algorithm, self.padding, self.flags, ip_bytes(self.ip), self.key_id, self.digest
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Md5Auth:
        alg, pad, flags, ip, key_id, digest = _MD5.unpack(value)
        return cls(alg, pad, flags, socket.inet_ntoa(ip), key_id, digest)


@dataclass(frozen=True, slots=True)
class HsrpV1:
    """An RFC 2281 Hello, Coup or Resign (opcodes 0-2); ``md5`` is Cisco's appended TLV."""

    opcode: int = OP_HELLO
    state: int = ACTIVE
    hellotime: int = DEFAULT_HELLO_S
    holdtime: int = DEFAULT_HOLD_S
    priority: int = DEFAULT_PRIORITY
    group: int = 0
    vip: str = "0.0.0.0"
    auth: bytes = DEFAULT_AUTH
    reserved: int = 0
    md5: Md5Auth | None = None

    version = 0  # wire value, always 0 for RFC 2281 packets

    def encode(self) -> bytes:
        raw = _V1.pack(
            0,
            self.opcode,
            self.state,
            self.hellotime,
            self.holdtime,
            self.priority,
            self.group,
            self.reserved,
            self.auth,
            ip_bytes(self.vip),
        )
        if self.md5 is not None:
            raw += self.md5.encode()
        return raw


@dataclass(frozen=True, slots=True)
class HsrpAdvertise:
    """Opcode 3, Cisco's interface state advertisement (P§4.6)."""

    adv_type: int = ADV_TYPE_INTERFACE_STATE
    length: int = 10
    state: int = ADV_STATE_ACTIVE
    active_groups: int = 0
    passive_groups: int = 0
    reserved1: int = 0
    reserved2: int = 0

    version = 0
    opcode = OP_ADVERTISE

    def encode(self) -> bytes:
        return _ADV.pack(
            0,
            OP_ADVERTISE,
            self.adv_type,
            self.length,
            self.state,
            self.reserved1,
            self.active_groups,
            self.passive_groups,
            self.reserved2,
        )


@dataclass(frozen=True, slots=True)
class GroupStateTlv:
    """v2 TLV 1 (length 40). ``state`` is the v2 wire value (1 Init .. 6 Active)."""

    opcode: int = OP_HELLO
    state: int = 6
    group: int = 0
    identifier: bytes = bytes(6)
    priority: int = DEFAULT_PRIORITY
    hello_ms: int = DEFAULT_HELLO_MS
    hold_ms: int = DEFAULT_HOLD_MS
    vip: str = "0.0.0.0"
    ip_version: int = 4
    version: int = 2
    vip_padding: bytes = bytes(12)  # the 12 bytes after an IPv4 VIP (zero when canonical)

    def encode(self) -> bytes:
        if self.ip_version == 6:
            vip = socket.inet_pton(socket.AF_INET6, self.vip)
        else:
            vip = ip_bytes(self.vip) + self.vip_padding
        return _TLV_HDR.pack(TLV_GROUP_STATE, _GROUP_STATE.size) + _GROUP_STATE.pack(
            self.version,
            self.opcode,
            self.state,
            self.ip_version,
            self.group,
            self.identifier,
            self.priority,
            self.hello_ms,
            self.hold_ms,
            vip,
        )

    @classmethod
    def decode_value(cls, value: bytes) -> GroupStateTlv:
        ver, op, state, ipver, group, ident, prio, hello, hold, vip = _GROUP_STATE.unpack(value)
        if ipver == 4:
            addr, pad = socket.inet_ntoa(vip[:4]), vip[4:]
        elif ipver == 6:
            addr, pad = str(ipaddress.IPv6Address(vip)), bytes(12)
        else:
            raise DecodeError("bad-ip-version", f"group state TLV IP version {ipver}")
        return cls(op, state, group, ident, prio, hello, hold, addr, ipver, ver, pad)
        raise DecodeError("bad-ip-version", f"group state TLV IP version {ipver}")


@dataclass(frozen=True, slots=True)
class InterfaceStateTlv:
    """v2 TLV 2 (length 4)."""

    active_groups: int = 0
    passive_groups: int = 0

    def encode(self) -> bytes:
        return _TLV_HDR.pack(TLV_INTERFACE_STATE, _IFACE_STATE.size) + _IFACE_STATE.pack(
            self.active_groups, self.passive_groups
        )


@dataclass(frozen=True, slots=True)
class TextAuthTlv:
    """v2 TLV 3 (length 8): the cleartext password, zero padded."""

    auth: bytes = DEFAULT_AUTH

    def encode(self) -> bytes:
        if len(self.auth) != 8:
            raise ValueError("text authentication data is 8 bytes")
        return _TLV_HDR.pack(TLV_TEXT_AUTH, 8) + self.auth


@dataclass(frozen=True, slots=True)
class UnknownTlv:
    """A v2 TLV of a type we do not know, kept byte-exact."""

    type: int
    value: bytes

    def encode(self) -> bytes:
        return _TLV_HDR.pack(self.type, len(self.value)) + self.value


V2Tlv = GroupStateTlv | InterfaceStateTlv | TextAuthTlv | Md5Auth | UnknownTlv


@dataclass(frozen=True, slots=True)
class HsrpV2:
    """A version 2 packet: its TLVs in wire order."""

    tlvs: tuple[V2Tlv, ...]

    def encode(self) -> bytes:
        return b"".join(t.encode() for t in self.tlvs)

    @property
    def group_state(self) -> GroupStateTlv | None:
        for t in self.tlvs:
            if isinstance(t, GroupStateTlv):
                return t
        return None

    @property
    def text_auth(self) -> TextAuthTlv | None:
        for t in self.tlvs:
            if isinstance(t, TextAuthTlv):
                return t
        return None

    @property
    def md5(self) -> Md5Auth | None:
        for t in self.tlvs:
            if isinstance(t, Md5Auth):
                return t
        return None

    @property
    def interface_state(self) -> InterfaceStateTlv | None:
        for t in self.tlvs:
            if isinstance(t, InterfaceStateTlv):
                return t
        return None


HsrpMessage = HsrpV1 | HsrpAdvertise | HsrpV2


# --------------------------------------------------------------------------- decoders
def _md5_tlv_at(data: bytes, off: int) -> Md5Auth:
    t, ln = _TLV_HDR.unpack_from(data, off)
    if t != TLV_MD5_AUTH or ln != _MD5.size:
        raise DecodeError("bad-tlv", f"expected MD5 TLV (4/28) after v1 header, got {t}/{ln}")
    return Md5Auth.decode_value(data[off + 2 : off + 2 + ln])


def decode_v1(data: bytes) -> HsrpV1 | HsrpAdvertise:
    """Decode a v1 packet (20 bytes, or 50 with the MD5 TLV) or an Advertise (16 bytes)."""
    n = len(data)
    if n < 2:
        raise DecodeError("short", f"{n} bytes")
    if data[0] != 0:
        raise DecodeError("bad-version", f"v1 version {data[0]}")
    if data[1] == OP_ADVERTISE:
        if n != ADVERTISE_LEN:
            raise DecodeError("bad-length", f"advertise is {ADVERTISE_LEN} bytes, got {n}")
        _, _, typ, length, state, r1, act, pas, r2 = _ADV.unpack(data)
        return HsrpAdvertise(typ, length, state, act, pas, r1, r2)
    if data[1] > OP_ADVERTISE:
        raise DecodeError("bad-opcode", f"opcode {data[1]}")
    if n == V1_LEN:
        md5 = None
    elif n == V1_LEN + MD5_TLV_LEN:
        md5 = _md5_tlv_at(data, V1_LEN)
    elif n < V1_LEN:
        raise DecodeError("short", f"v1 packet of {n} bytes")
    else:
        raise DecodeError("bad-length", f"v1 packet of {n} bytes (20 or 50 expected)")
    _, op, state, hello, hold, prio, group, res, auth, vip = _V1.unpack_from(data)
    return HsrpV1(op, state, hello, hold, prio, group, socket.inet_ntoa(vip), auth, res, md5)


def decode_v2(data: bytes) -> HsrpV2:
    """Decode a v2 packet (a sequence of TLVs; at least one)."""
    n = len(data)
    if n == 0:
        raise DecodeError("short", "empty v2 packet")
    off = 0
    tlvs: list[V2Tlv] = []
    while off < n:
        if n - off < 2:
            raise DecodeError("short", f"truncated TLV header at {off}")
        t, ln = data[off], data[off + 1]
        end = off + 2 + ln
        if end > n:
            raise DecodeError("short", f"TLV type {t} length {ln} runs past the end")
        value = data[off + 2 : end]
        want = _KNOWN_TLV_LEN.get(t)
        if want is None:
            tlvs.append(UnknownTlv(t, value))
        elif ln != want:
            raise DecodeError("bad-length", f"TLV type {t} length {ln}, expected {want}")
        elif t == TLV_GROUP_STATE:
            tlvs.append(GroupStateTlv.decode_value(value))
        elif t == TLV_INTERFACE_STATE:
            a, p = _IFACE_STATE.unpack(value)
            tlvs.append(InterfaceStateTlv(a, p))
        elif t == TLV_TEXT_AUTH:
            tlvs.append(TextAuthTlv(value))
        else:
            tlvs.append(Md5Auth.decode_value(value))
        off = end
    return HsrpV2(tuple(tlvs))


def decode(data: bytes) -> HsrpMessage:
    """Decode any HSRP payload: first byte 0 is v1/Advertise, otherwise v2 TLVs."""
    if not data:
        raise DecodeError("short", "empty packet")
    if data[0] == 0:
        return decode_v1(data)
    return decode_v2(data)


# --------------------------------------------------------------------------- MD5
def md5_digest_offset(data: bytes) -> int | None:
    """Offset of the 16 digest bytes of the (first) MD5 TLV in an encoded packet, or None."""
    n = len(data)
    if n >= 1 and data[0] == 0:
        if n == V1_LEN + MD5_TLV_LEN and data[V1_LEN] == TLV_MD5_AUTH:
            return V1_LEN + _MD5_DIGEST_IN_TLV
        return None
    off = 0
    while off + 2 <= n:
        t, ln = data[off], data[off + 1]
        if t == TLV_MD5_AUTH and ln == _MD5.size and off + 2 + ln <= n:
            return off + _MD5_DIGEST_IN_TLV
        off += 2 + ln
    return None


def _zeroed(data: bytes, off: int) -> bytes:
    """The packet as the digest covers it: digest zeroed, and a v1 auth field zeroed."""
    z = data[:off] + bytes(16) + data[off + 16 :]
    if z[:1] == b"\x00":
        z = z[:8] + bytes(8) + z[16:]
    return z


_KEY_BLOCKS: dict[bytes, hashlib._Hash] = {}


def _key_block(key: bytes) -> hashlib._Hash:
    """MD5 fed with ``K'``: the key and MD5's padding of it to 64 bytes (RFC 1828), as a
    prepared object (one per key; ``copy()`` per packet)."""
    h = _KEY_BLOCKS.get(key)
    if h is None:
        n = len(key)
        block = key + b"\x80" + bytes((55 - n) % 64) + struct.pack("<Q", 8 * n)
        h = hashlib.md5(block)
        if len(_KEY_BLOCKS) > 64:
            _KEY_BLOCKS.clear()
        _KEY_BLOCKS[key] = h
    return h


def md5_digest(key: bytes, data: bytes, off: int) -> bytes:
    """Cisco's HSRP MD5 digest (RFC 1828 keyed MD5, P§4.5) of the packet whose digest is at
    ``off``."""
    h = _key_block(key).copy()
    h.update(_zeroed(data, off))
    h.update(key)
    return h.digest()


def md5_sender(data: bytes) -> str | None:
    """The sender address the packet's MD5 TLV names (and its digest covers), or None."""
    off = md5_digest_offset(data)
    if off is None:
        return None
    return socket.inet_ntoa(data[off - 8 : off - 4])


def md5_sign(data: bytes, key: bytes) -> bytes:
    """Fill in the digest of the packet's MD5 TLV; ValueError if it has none."""
    off = md5_digest_offset(data)
    if off is None:
        raise ValueError("packet has no MD5 authentication TLV")
    return data[:off] + md5_digest(key, data, off) + data[off + 16 :]


def md5_verify(data: bytes, key: bytes) -> bool:
    """True if the packet carries an MD5 TLV whose digest matches ``key`` (constant time)."""
    off = md5_digest_offset(data)
    if off is None:
        return False
    return hmac.compare_digest(md5_digest(key, data, off), data[off : off + 16])


__all__ = [
    "ACTIVE",
    "DEFAULT_AUTH",
    "HSRP_PORT",
    "INITIAL",
    "LEARN",
    "LISTEN",
    "MCAST_V1",
    "MCAST_V2",
    "OP_ADVERTISE",
    "OP_COUP",
    "OP_HELLO",
    "OP_RESIGN",
    "SPEAK",
    "STANDBY",
    "GroupStateTlv",
    "HsrpAdvertise",
    "HsrpMessage",
    "HsrpV1",
    "HsrpV2",
    "InterfaceStateTlv",
    "Md5Auth",
    "TextAuthTlv",
    "UnknownTlv",
    "decode",
    "decode_v1",
    "decode_v2",
    "md5_digest",
    "md5_sender",
    "md5_sign",
    "md5_verify",
    "virtual_mac",
]
