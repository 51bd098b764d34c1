"""IPv4 headers, the three Mobile IP tunnel encapsulations, and ARP frames (P§3).

* :class:`IPv4Header` -- RFC 791 header with options; :func:`decode_ipv4` verifies the
  header checksum, :func:`encode_ipv4` computes it.
* IP-in-IP, protocol 4 (RFC 2003): :func:`encap_ipip` / :func:`decap_ipip`. The outer TOS
  is copied from the inner header and DF is set when the inner datagram has DF (P§3.1).
  The inner TTL is *not* touched here: an HA that forwards a packet into a tunnel has
  already decremented it while routing (the kernel does so before the packet reaches the
  TUN device of the userspace data plane).
* GRE, protocol 47 (RFC 2784 + RFC 2890): :class:`GreHeader` with the optional checksum
  (C), key (K) and sequence number (S) fields, in that order.
* Minimal encapsulation, protocol 55 (RFC 2004): :class:`MinEncHeader` (8 bytes, or 12
  with the original source, S bit 0x80), its own header checksum, and
  :func:`encap_minimal` / :func:`decap_minimal` which rewrite the IP header in place.
* UDP over IPv4 (RFC 768) for raw sockets: :func:`build_udp_datagram` and its cached form
  :class:`UdpDatagramEncoder`.
* ARP over Ethernet (RFC 826, gratuitous ARP of RFC 5944 §4.6): :class:`ArpPacket`,
  :class:`EthernetFrame` and builders for request, reply and gratuitous frames.

MAC addresses are ``"aa:bb:cc:dd:ee:ff"`` strings, IPv4 addresses dotted-quad strings.
Every decoder raises :class:`mobileha.wire.DecodeError` and nothing else. Canonical bytes
round-trip exactly: ``encode(decode(b)) == b`` (Ethernet padding after an ARP body is not
canonical and is dropped by the decoder).

The data plane's per-packet path does not use these dataclasses; it uses the precompiled
``struct.Struct`` objects and :func:`checksum` from here directly.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any, Final

from mobileha.wire import DecodeError, ip_bytes

IPPROTO_ICMP: Final = 1
IPPROTO_IPIP: Final = 4
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_GRE: Final = 47
IPPROTO_MINENC: Final = 55

IP_DF: Final = 0x2  # flags field (3 bits): reserved, DF, MF
IP_MF: Final = 0x1

GRE_C: Final = 0x8000
GRE_R: Final = 0x4000  # RFC 1701 routing bit: must be 0 (RFC 2784)
GRE_K: Final = 0x2000
GRE_S: Final = 0x1000
GRE_RESERVED0: Final = 0x4FF8  # R, strict source route, recursion, flags (RFC 2784 Reserved0)
GRE_VERSION_MASK: Final = 0x0007
ETH_P_IP: Final = 0x0800
ETH_P_ARP: Final = 0x0806

MINENC_S: Final = 0x80

ARP_HTYPE_ETHER: Final = 1
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"
ZERO_MAC: Final = "00:00:00:00:00:00"

# Precompiled structures (also used by the data plane's fast path).
IPV4: Final = struct.Struct("!BBHHHBBH4s4s")  # 20-byte IPv4 header without options
GRE_BASE: Final = struct.Struct("!HH")
U16: Final = struct.Struct("!H")
U32: Final = struct.Struct("!I")
MINENC_HDR: Final = struct.Struct("!BBH4s")  # 8-byte minimal header (+4s source if S)
ETH: Final = struct.Struct("!6s6sH")
ARP: Final = struct.Struct("!HHBBH6s4s6s4s")

_MAXU16: Final = 0xFFFF


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The Internet checksum (RFC 1071): one's complement of the one's-complement sum of
    the 16-bit words (an odd length is padded with a zero byte).

    The one's-complement sum of the words equals the big-endian integer of the data modulo
    0xFFFF (2**16 == 1 mod 0xFFFF), a zero remainder standing for 0xFFFF unless every byte
    is zero; one ``int.from_bytes`` is much faster in Python than summing unpacked words.
    """
    v = int.from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    s = v % 0xFFFF or (0xFFFF if v else 0)
    return ~s & 0xFFFF


_ntoa = socket.inet_ntoa


def mac_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` -> 6 bytes (ValueError if malformed)."""
    b = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return b


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


# --------------------------------------------------------------------------------------
# IPv4
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IPv4Header:
    """An IPv4 header. ``total_length`` covers header + payload; ``flags`` is the 3-bit
    field (``IP_DF``, ``IP_MF``); ``options`` is padded to a multiple of 4 by the sender.
    The checksum is not a field: :func:`encode_ipv4` computes it, :func:`decode_ipv4` checks it.
    """

    src: str
    dst: str
    proto: int
    total_length: int
    ttl: int = 64
    tos: int = 0
    ident: int = 0
    flags: int = 0
    frag_offset: int = 0
    options: bytes = b""

    @property
    def header_length(self) -> int:
        return 20 + len(self.options)

    @property
    def df(self) -> bool:
        return bool(self.flags & IP_DF)


def encode_ipv4(h: IPv4Header) -> bytes:
    """The header bytes (20 + options) with a correct checksum."""
    if len(h.options) % 4 or len(h.options) > 40:
        raise ValueError("IPv4 options must be a multiple of 4 bytes, at most 40")
    ihl = 5 + len(h.options) // 4
    raw = bytearray(
        IPV4.pack(
            0x40 | ihl,
            h.tos,
            h.total_length,
            h.ident,
            (h.flags & 0x7) << 13 | (h.frag_offset & 0x1FFF),
            h.ttl,
            h.proto,
            0,
            ip_bytes(h.src),
            ip_bytes(h.dst),
        )
    )
    raw += h.options
    raw[10:12] = U16.pack(checksum(raw))
    return bytes(raw)


def decode_ipv4(data: bytes, verify: bool = True) -> tuple[IPv4Header, bytes]:
    """Parse an IPv4 datagram: (header, payload). Bytes beyond ``total_length`` are ignored
    (link-layer padding); a datagram shorter than ``total_length`` is an error."""
    if len(data) < 20:
        raise DecodeError("short", f"IPv4 header needs 20 bytes, got {len(data)}")
    fields = IPV4.unpack_from(data)
    vihl, total = fields[0], fields[2]
    if vihl >> 4 != 4:
        raise DecodeError("bad-version", f"IP version {vihl >> 4}")
    hlen = (vihl & 0xF) * 4
    if hlen < 20:
        raise DecodeError("bad-ihl", f"IHL {vihl & 0xF}")
    if len(data) < hlen:
        raise DecodeError("short", f"IHL says {hlen} bytes, got {len(data)}")
    if total < hlen:
        raise DecodeError("bad-length", f"total length {total} < header length {hlen}")
    if total > len(data):
        raise DecodeError("short", f"total length {total}, got {len(data)} bytes")
    if verify and checksum(data[:hlen]) != 0:
        raise DecodeError("bad-checksum", "IPv4 header checksum")
    return ipv4_header(fields, bytes(data[20:hlen])), bytes(data[hlen:total])


def ipv4_header(fields: tuple[Any, ...], options: bytes) -> IPv4Header:
    """The :class:`IPv4Header` of the fields :data:`IPV4` unpacked and the options after
    them (the caller checked version and header length)."""
    _vihl, tos, total, ident, ff, ttl, proto, _csum, src, dst = fields
    return IPv4Header(
        src=_ntoa(src),
        dst=_ntoa(dst),
        proto=proto,
        total_length=total,
        ttl=ttl,
        tos=tos,
        ident=ident,
        flags=ff >> 13,
        frag_offset=ff & 0x1FFF,
        options=options,
    )


def build_ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    ttl: int = 64,
    tos: int = 0,
    ident: int = 0,
    df: bool = False,
) -> bytes:
    """A complete IPv4 datagram (20-byte header, no options) around ``payload``."""
    h = IPv4Header(src, dst, proto, 20 + len(payload), ttl, tos, ident, IP_DF if df else 0, 0, b"")
    return encode_ipv4(h) + payload


_UDP: Final = struct.Struct("!HHHH")


def build_udp_datagram(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    """An IPv4 + UDP datagram, both checksums filled (TTL 64, DF clear, ID 0): what a raw
    IPPROTO_RAW socket sends, e.g. the HA-SLB's ``directed`` mode with the FA as source."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, IPPROTO_UDP, ulen)
    uc = checksum(pseudo + _UDP.pack(sport, dport, ulen, 0) + payload) or 0xFFFF  # RFC 768
    ip = IPV4.pack(0x45, 0, 20 + ulen, 0, 0, 64, IPPROTO_UDP, 0, s, d)
    ip = ip[:10] + U16.pack(checksum(ip)) + ip[12:]
    return ip + _UDP.pack(sport, dport, ulen, uc) + payload


class UdpDatagramEncoder:
    """:func:`build_udp_datagram` for a hot path, same bytes. Per (source, destination,
    payload length) the IP header, the UDP ports and length and the constant part of the
    UDP checksum are computed once; per datagram only the payload is summed (the
    one's-complement sum is linear, see :func:`checksum`) and three pieces joined."""

    def __init__(self, max_flows: int = 4096) -> None:
        # (src, sport, dst, dport, payload length) -> (first 26 bytes, checksum base, shift)
        self._heads: dict[tuple[str, int, str, int, int], tuple[bytes, int, int]] = {}
        self._max = max_flows

    def _head(self, src: str, sport: int, dst: str, dport: int, n: int) -> tuple[bytes, int, int]:
        if len(self._heads) >= self._max:
            self._heads.clear()
        sb, db = socket.inet_aton(src), socket.inet_aton(dst)
        ulen = 8 + n
        ip = IPV4.pack(0x45, 0, 20 + ulen, 0, 0, 64, IPPROTO_UDP, 0, sb, db)
        ip = ip[:10] + U16.pack(checksum(ip)) + ip[12:]
        base = (int.from_bytes(sb + db, "big") + IPPROTO_UDP + sport + dport + 2 * ulen) % 0xFFFF
        e = self._heads[(src, sport, dst, dport, n)] = (
            ip + _UDP.pack(sport, dport, ulen, 0)[:6],
            base,
            8 if n & 1 else 0,  # an odd payload is summed as if padded with a zero byte
        )
        return e

    def __call__(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
        n = len(payload)
        e = self._heads.get((src, sport, dst, dport, n))
        if e is None:
            e = self._head(src, sport, dst, dport, n)
        head, base, shift = e
        s = (base + (int.from_bytes(payload, "big") << shift)) % 0xFFFF or 0xFFFF
        return head + ((0xFFFF - s) or 0xFFFF).to_bytes(2, "big") + payload


def _inner_fields(inner: bytes) -> tuple[int, bool]:
    """(TOS, DF) of an inner datagram, checked enough to be tunnelled."""
    if len(inner) < 20 or inner[0] >> 4 != 4:
        raise DecodeError("bad-inner", "inner packet is not IPv4")
    return inner[1], bool(inner[6] & 0x40)


# --------------------------------------------------------------------------------------
# IP-in-IP (RFC 2003)
# --------------------------------------------------------------------------------------


def encap_ipip(inner: bytes, src: str, dst: str, ttl: int = 64, ident: int = 0) -> bytes:
    """Encapsulate the IPv4 datagram ``inner`` from tunnel entry ``src`` to exit ``dst``.

    Outer TOS copied from the inner header, outer DF set when the inner DF is (P§3.1).
    """
    tos, df = _inner_fields(inner)
    return build_ipv4(src, dst, IPPROTO_IPIP, inner, ttl=ttl, tos=tos, ident=ident, df=df)


def decap_ipip(packet: bytes, verify: bool = True) -> tuple[IPv4Header, bytes]:
    """(outer header, inner datagram) of an IP-in-IP packet; the inner must be IPv4."""
    outer, inner = decode_ipv4(packet, verify)
    if outer.proto != IPPROTO_IPIP:
        raise DecodeError("bad-proto", f"outer protocol {outer.proto}, expected 4")
    if len(inner) < 20 or inner[0] >> 4 != 4:
        raise DecodeError("bad-inner", "IP-in-IP payload is not IPv4")
    return outer, inner


# --------------------------------------------------------------------------------------
# GRE (RFC 2784, RFC 2890)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GreHeader:
    """A GRE header. ``checksum`` says whether the C field is present (the value is computed
    over the GRE header and payload when encoding, verified when decoding)."""

    protocol: int = ETH_P_IP
    key: int | None = None
    seq: int | None = None
    checksum: bool = False

    @property
    def length(self) -> int:
        return 4 + 4 * (self.checksum + (self.key is not None) + (self.seq is not None))


def encode_gre(h: GreHeader, payload: bytes) -> bytes:
    """GRE header + ``payload`` (the bytes that follow the outer IP header)."""
    flags = (GRE_C if h.checksum else 0) | (GRE_K if h.key is not None else 0)
    flags |= GRE_S if h.seq is not None else 0
    out = bytearray(GRE_BASE.pack(flags, h.protocol))
    if h.checksum:
        out += b"\x00\x00\x00\x00"
    if h.key is not None:
        out += U32.pack(h.key)
    if h.seq is not None:
        out += U32.pack(h.seq)
    out += payload
    if h.checksum:
        out[4:6] = U16.pack(checksum(out))
    return bytes(out)


def decode_gre(data: bytes, verify: bool = True) -> tuple[GreHeader, bytes]:
    """(header, payload) of a GRE packet (starting at the GRE header).

    Per RFC 2784 §2.5.1 a packet with a non-zero version or any Reserved0 bit set (including
    the RFC 1701 routing bit) is discarded: here, :class:`DecodeError`.
    """
    if len(data) < 4:
        raise DecodeError("short", f"GRE header needs 4 bytes, got {len(data)}")
    flags, proto = GRE_BASE.unpack_from(data)
    if flags & GRE_VERSION_MASK:
        raise DecodeError("bad-version", f"GRE version {flags & GRE_VERSION_MASK}")
    if flags & GRE_RESERVED0:
        raise DecodeError("bad-flags", f"GRE reserved bits 0x{flags & GRE_RESERVED0:04x}")
    off = 4
    has_c = bool(flags & GRE_C)
    need = 4 + 4 * (has_c + bool(flags & GRE_K) + bool(flags & GRE_S))
    if len(data) < need:
        raise DecodeError("short", f"GRE header needs {need} bytes, got {len(data)}")
    if has_c:
        if verify and checksum(data) != 0:
            raise DecodeError("bad-checksum", "GRE checksum")
        if data[6:8] != b"\x00\x00":
            raise DecodeError("bad-reserved", "GRE Reserved1 must be zero")
        off += 4
    key = seq = None
    if flags & GRE_K:
        key = U32.unpack_from(data, off)[0]
        off += 4
    if flags & GRE_S:
        seq = U32.unpack_from(data, off)[0]
        off += 4
    return GreHeader(proto, key, seq, has_c), bytes(data[off:])


def encap_gre(
    inner: bytes,
    src: str,
    dst: str,
    key: int | None = None,
    seq: int | None = None,
    with_checksum: bool = False,
    ttl: int = 64,
    ident: int = 0,
) -> bytes:
    """IPv4 + GRE (protocol 0x0800) around the IPv4 datagram ``inner`` (TOS/DF as P§3.1)."""
    tos, df = _inner_fields(inner)
    body = encode_gre(GreHeader(ETH_P_IP, key, seq, with_checksum), inner)
    return build_ipv4(src, dst, IPPROTO_GRE, body, ttl=ttl, tos=tos, ident=ident, df=df)


def decap_gre(packet: bytes, verify: bool = True) -> tuple[IPv4Header, GreHeader, bytes]:
    """(outer IP header, GRE header, inner datagram) of an IPv4 GRE packet."""
    outer, body = decode_ipv4(packet, verify)
    if outer.proto != IPPROTO_GRE:
        raise DecodeError("bad-proto", f"outer protocol {outer.proto}, expected 47")
    gre, inner = decode_gre(body, verify)
    return outer, gre, inner


# --------------------------------------------------------------------------------------
# Minimal encapsulation (RFC 2004)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinEncHeader:
    """The minimal forwarding header: original protocol, destination and (S) source."""

    protocol: int
    dst: str
    src: str | None = None

    @property
    def length(self) -> int:
        return 8 if self.src is None else 12


def encode_minenc(h: MinEncHeader) -> bytes:
    """The 8- or 12-byte minimal header with its checksum (over this header only)."""
    raw = bytearray(
        MINENC_HDR.pack(h.protocol, MINENC_S if h.src is not None else 0, 0, ip_bytes(h.dst))
    )
    if h.src is not None:
        raw += ip_bytes(h.src)
    raw[2:4] = U16.pack(checksum(raw))
    return bytes(raw)


def decode_minenc(data: bytes, verify: bool = True) -> tuple[MinEncHeader, bytes]:
    """(header, rest) of the bytes following the outer IP header of a protocol-55 packet."""
    if len(data) < 8:
        raise DecodeError("short", f"minimal header needs 8 bytes, got {len(data)}")
    proto, sbyte, _c, dst = MINENC_HDR.unpack_from(data)
    if sbyte & ~MINENC_S & 0xFF:
        raise DecodeError("bad-flags", f"minimal header reserved bits 0x{sbyte & 0x7F:02x}")
    n = 12 if sbyte & MINENC_S else 8
    if len(data) < n:
        raise DecodeError("short", f"minimal header needs {n} bytes, got {len(data)}")
    if verify and checksum(data[:n]) != 0:
        raise DecodeError("bad-checksum", "minimal forwarding header checksum")
    src = _ntoa(data[8:12]) if n == 12 else None
    return MinEncHeader(proto, _ntoa(dst), src), bytes(data[n:])


def encap_minimal(inner: bytes, src: str, dst: str) -> bytes:
    """Minimal-encapsulate ``inner`` from encapsulator ``src`` to tunnel exit ``dst``.

    RFC 2004 §3: the IP header is modified (protocol 55, destination = tunnel exit, source =
    encapsulator, length + 8/12) and the minimal header inserted after it (options kept).
    The original source is carried (S=1) unless the encapsulator is the original source.
    Fragments cannot be encapsulated this way (``DecodeError("fragment")``).
    """
    h, payload = decode_ipv4(inner)
    if h.flags & IP_MF or h.frag_offset:
        raise DecodeError("fragment", "RFC 2004: fragments must not be minimal-encapsulated")
    mh = MinEncHeader(h.proto, h.dst, None if h.src == src else h.src)
    total = h.total_length + mh.length
    if total > _MAXU16:
        raise DecodeError("too-long", "minimal encapsulation would exceed 65535 bytes")
    outer = IPv4Header(
        src, dst, IPPROTO_MINENC, total, h.ttl, h.tos, h.ident, h.flags, 0, h.options
    )
    return encode_ipv4(outer) + encode_minenc(mh) + payload


def decap_minimal(packet: bytes, verify: bool = True) -> tuple[IPv4Header, MinEncHeader, bytes]:
    """(outer header, minimal header, restored original datagram) of a protocol-55 packet.

    The original is restored as RFC 2004 §3 says: destination and protocol from the minimal
    header, source from it when S is set (else the outer source), length minus 8/12; the
    header checksum is recomputed.
    """
    outer, body = decode_ipv4(packet, verify)
    if outer.proto != IPPROTO_MINENC:
        raise DecodeError("bad-proto", f"outer protocol {outer.proto}, expected 55")
    mh, payload = decode_minenc(body, verify)
    orig = IPv4Header(
        mh.src if mh.src is not None else outer.src,
        mh.dst,
        mh.protocol,
        outer.total_length - mh.length,
        outer.ttl,
        outer.tos,
        outer.ident,
        outer.flags,
        outer.frag_offset,
        outer.options,
    )
    return outer, mh, encode_ipv4(orig) + payload


# --------------------------------------------------------------------------------------
# Ethernet and ARP (RFC 826; gratuitous ARP per RFC 5944 §4.6)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    dst: str
    src: str
    ethertype: int
    payload: bytes


def encode_ethernet(f: EthernetFrame) -> bytes:
    return ETH.pack(mac_bytes(f.dst), mac_bytes(f.src), f.ethertype) + f.payload


def decode_ethernet(data: bytes) -> EthernetFrame:
    if len(data) < 14:
        raise DecodeError("short", f"Ethernet header needs 14 bytes, got {len(data)}")
    dst, src, et = ETH.unpack_from(data)
    return EthernetFrame(mac_str(dst), mac_str(src), et, bytes(data[14:]))


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet (28 bytes)."""

    op: int
    sha: str
    spa: str
    tha: str
    tpa: str

    @property
    def is_gratuitous(self) -> bool:
        return self.spa == self.tpa


def encode_arp(a: ArpPacket) -> bytes:
    return ARP.pack(
        ARP_HTYPE_ETHER,
        ETH_P_IP,
        6,
        4,
        a.op,
        mac_bytes(a.sha),
        ip_bytes(a.spa),
        mac_bytes(a.tha),
        ip_bytes(a.tpa),
    )


def decode_arp(data: bytes) -> ArpPacket:
    """Decode an ARP body; trailing bytes (Ethernet padding) are ignored."""
    if len(data) < 28:
        raise DecodeError("short", f"ARP needs 28 bytes, got {len(data)}")
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP.unpack_from(data)
    if htype != ARP_HTYPE_ETHER or ptype != ETH_P_IP or hlen != 6 or plen != 4:
        raise DecodeError("unsupported", f"ARP htype {htype} ptype 0x{ptype:04x}")
    if op not in (ARP_REQUEST, ARP_REPLY):
        raise DecodeError("bad-op", f"ARP op {op}")
    return ArpPacket(op, mac_str(sha), _ntoa(spa), mac_str(tha), _ntoa(tpa))


def decode_arp_frame(data: bytes) -> tuple[EthernetFrame, ArpPacket]:
    f = decode_ethernet(data)
    if f.ethertype != ETH_P_ARP:
        raise DecodeError("bad-ethertype", f"ethertype 0x{f.ethertype:04x}")
    return f, decode_arp(f.payload)


def _arp_frame(eth_dst: str, a: ArpPacket) -> bytes:
    return encode_ethernet(EthernetFrame(eth_dst, a.sha, ETH_P_ARP, encode_arp(a)))


def arp_request(sha: str, spa: str, tpa: str) -> bytes:
    """A broadcast who-has ``tpa`` frame."""
    return _arp_frame(BROADCAST_MAC, ArpPacket(ARP_REQUEST, sha, spa, ZERO_MAC, tpa))


def arp_reply(sha: str, spa: str, tha: str, tpa: str) -> bytes:
    """A unicast ``spa`` is-at ``sha`` frame, sent to ``tha``. Proxy ARP answers with the
    home agent's (or the HSRP virtual) MAC as ``sha`` and the home address as ``spa``."""
    return _arp_frame(tha, ArpPacket(ARP_REPLY, sha, spa, tha, tpa))


def gratuitous_arp(mac: str, addr: str, reply: bool = False) -> bytes:
    """A broadcast gratuitous ARP making ``addr`` resolve to ``mac`` (RFC 5944 §4.6).

    Sender and target protocol addresses are both ``addr``, sender hardware address is
    ``mac``; in the reply form the target hardware address is ``mac`` too, in the request
    form it is unused (zero).
    """
    if reply:
        return _arp_frame(BROADCAST_MAC, ArpPacket(ARP_REPLY, mac, addr, mac, addr))
    return _arp_frame(BROADCAST_MAC, ArpPacket(ARP_REQUEST, mac, addr, ZERO_MAC, addr))


# --------------------------------------------------------------------------------------
# UDP in an Ethernet frame (HSRP from the virtual MAC, RFC 2281 §6.1)
# --------------------------------------------------------------------------------------

UDP_HDR: Final = struct.Struct("!HHHH")
_PSEUDO: Final = struct.Struct("!4s4sBBH")


def multicast_udp_frame(
    src_mac: bytes, src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 1
) -> bytes:
    """An Ethernet/IPv4/UDP frame from ``src_mac`` to the IPv4 multicast group ``dst``
    (its RFC 1112 MAC), UDP checksum set."""
    sb, db = ip_bytes(src), ip_bytes(dst)
    ulen = 8 + len(payload)
    pseudo = _PSEUDO.pack(sb, db, 0, IPPROTO_UDP, ulen)
    csum = checksum(pseudo + UDP_HDR.pack(sport, dport, ulen, 0) + payload) or 0xFFFF
    ip = build_ipv4(src, dst, IPPROTO_UDP, UDP_HDR.pack(sport, dport, ulen, csum) + payload, ttl)
    mcast_mac = bytes((0x01, 0x00, 0x5E, db[1] & 0x7F, db[2], db[3]))
    return ETH.pack(mcast_mac, src_mac, ETH_P_IP) + ip


__all__ = [
    "ARP_REPLY",
    "ARP_REQUEST",
    "ETH_P_ARP",
    "ETH_P_IP",
    "GRE_C",
    "GRE_K",
    "GRE_S",
    "IPPROTO_GRE",
    "IPPROTO_IPIP",
    "IPPROTO_MINENC",
    "IPPROTO_UDP",
    "IP_DF",
    "IP_MF",
    "MINENC_S",
    "UDP_HDR",
    "ArpPacket",
    "EthernetFrame",
    "GreHeader",
    "IPv4Header",
    "MinEncHeader",
    "UdpDatagramEncoder",
    "arp_reply",
    "arp_request",
    "build_ipv4",
    "build_udp_datagram",
    "checksum",
    "decap_gre",
    "decap_ipip",
    "decap_minimal",
    "decode_arp",
    "decode_arp_frame",
    "decode_ethernet",
    "decode_gre",
    "decode_ipv4",
    "decode_minenc",
    "encap_gre",
    "encap_ipip",
    "encap_minimal",
    "encode_arp",
    "encode_ethernet",
    "encode_gre",
    "encode_ipv4",
    "encode_minenc",
    "gratuitous_arp",
    "ipv4_header",
    "mac_bytes",
    "mac_str",
    "multicast_udp_frame",
]
