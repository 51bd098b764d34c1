"""ICMP errors from inside our tunnels, relayed to the original sender, sans-IO.

A router between the encapsulator and the other end of a tunnel answers a tunnelled packet
it cannot forward with an ICMP error to the *outer* source, the encapsulator: the home
agent for the forward tunnel, the foreign agent for a reverse tunnel (RFC 3024). RFC 5944
§4.1 takes the tunnel rules of RFC 2003 §4 (IP in IP; RFC 2004 §4 for minimal
encapsulation; GRE, RFC 2784, by the same reasoning): the encapsulator relays the error to
the sender of the original, unencapsulated datagram, rewritten to make sense to it:

=========================================  ==========================================
from inside the tunnel                      relayed to the original sender
=========================================  ==========================================
Network Unreachable (3/0)                   Network Unreachable
Host Unreachable (3/1)                      Host Unreachable
Protocol Unreachable (3/2)                  Host Unreachable (it did not send proto 4)
Port Unreachable (3/3)                      not relayed (the outer header has no port)
Fragmentation Needed (3/4), MTU m           Fragmentation Needed, MTU m - tunnel header
Source Route Failed (3/5)                   not relayed (the encapsulator's own)
other Destination Unreachable codes         the same code
Time Exceeded (11)                          Host Unreachable (a loop inside the tunnel)
Source Quench, Redirect, Parameter Problem  not relayed (Parameter Problem: the options
                                            and fields it can point at are ours)
=========================================  ==========================================

The quote must reach the inner header (RFC 1812 §4.3.2.3 routers quote up to 576 bytes,
RFC 792 ones only 8 bytes past the outer header, which is not enough: counted as
``short-quote``); the owner confirms that the tunnel is one of its own (``is_ours``: outer
source ours, outer destination the other end of a binding for the inner address). The
relayed error quotes the inner header and 8 bytes of its payload. No error is relayed
about an ICMP error, a fragment other than the first, or to a multicast, broadcast or
unspecified address (RFC 1122 §3.2.2). Rate limits (the usual ones, as Linux's
``icmp_ratelimit``/``icmp_msgs_per_sec``): per destination a bucket of ``burst`` refilled at
``per_destination`` a second, and ``global_rate`` a second in all.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from mobileha.core.discovery import SendIcmp
from mobileha.wire import DecodeError, ip_str
from mobileha.wire import icmp as icmp_wire
from mobileha.wire.ip import (
    GRE_K,
    GRE_S,
    IPPROTO_GRE,
    IPPROTO_ICMP,
    IPPROTO_IPIP,
    IPPROTO_MINENC,
    MINENC_S,
    IPv4Header,
    encode_ipv4,
)

PER_DESTINATION: Final = 1.0  # errors a second to one destination
BURST: Final = 6
GLOBAL_RATE: Final = 1000.0
DESTINATIONS_MAX: Final = 16384
QUOTE_PAYLOAD: Final = 8  # bytes of the inner payload quoted (RFC 792)

_MINENC: Final = struct.Struct("!BBH4s")


@dataclass(slots=True)
class RelayStats:
    received: int = 0
    relayed: int = 0
    rate_limited: int = 0
    not_relayed: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.not_relayed[reason] = self.not_relayed.get(reason, 0) + 1


def relayed_type(icmp_type: int, code: int) -> tuple[int, int] | None:
    """(type, code) relayed for an error from inside a tunnel, or None (table above)."""
    if icmp_type == icmp_wire.TIME_EXCEEDED:
        return icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_HOST
    if icmp_type != icmp_wire.DEST_UNREACHABLE:
        return None
    if code in (icmp_wire.UNREACH_PORT, icmp_wire.UNREACH_SRCFAIL):
        return None
    if code == icmp_wire.UNREACH_PROTOCOL:
        return icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_HOST
    return icmp_wire.DEST_UNREACHABLE, code


def inner_datagram(outer: IPv4Header, rest: bytes) -> tuple[IPv4Header, bytes, int] | None:
    """The original datagram inside a quoted tunnel packet: its header, the start of its
    payload, and the tunnel header's size; None when the quote stops before it."""
    proto = outer.proto
    try:
        if proto == IPPROTO_IPIP:
            h, payload = icmp_wire.decode_quoted(rest)
            return h, payload, 20
        if proto == IPPROTO_GRE:
            if len(rest) < 4:
                return None
            flags = int.from_bytes(rest[:2], "big")
            glen = 4 + (4 if flags & 0x8000 else 0) + (4 if flags & GRE_K else 0)
            glen += 4 if flags & GRE_S else 0
            if int.from_bytes(rest[2:4], "big") != 0x0800:
                return None
            h, payload = icmp_wire.decode_quoted(rest[glen:])
            return h, payload, 20 + glen
        if proto == IPPROTO_MINENC:
            if len(rest) < 8:
                return None
            iproto, s, _cs, dst = _MINENC.unpack_from(rest)
            mlen = 12 if s & MINENC_S else 8
            if len(rest) < mlen:
                return None
            src = ip_str(rest[8:12]) if s & MINENC_S else outer.src
            payload = rest[mlen:]
            # RFC 2004 §3: the original header is the outer one with the original
            # destination, source and protocol put back
            h = IPv4Header(
                src=src,
                dst=ip_str(dst),
                proto=iproto,
                total_length=max(20, outer.total_length - mlen),
                ttl=outer.ttl,
                tos=outer.tos,
                ident=outer.ident,
                flags=outer.flags,
                frag_offset=outer.frag_offset,
            )
            return h, payload, mlen
    except DecodeError:
        return None
    return None


class TunnelIcmpRelay:
    """Relay ICMP errors about our tunnelled packets to the original senders (module
    docstring). ``is_ours(outer, inner)``: the quoted outer header is a tunnel packet we
    sent for that inner datagram."""

    def __init__(
        self,
        is_ours: Callable[[IPv4Header, IPv4Header], bool],
        *,
        per_destination: float = PER_DESTINATION,
        burst: int = BURST,
        global_rate: float = GLOBAL_RATE,
    ) -> None:
        self.is_ours = is_ours
        self.per_destination = per_destination
        self.burst = float(burst)
        self.global_rate = global_rate
        self.stats = RelayStats()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._global = (global_rate, 0.0)

    def receive(self, data: bytes, now: float) -> list[SendIcmp]:
        """An ICMP message (from its Type byte on); the error to relay, if any."""
        st = self.stats
        try:
            err = icmp_wire.IcmpError.decode(data)
            outer, rest = icmp_wire.decode_quoted(err.quoted)
        except DecodeError as e:
            st.drop(e.reason)
            return []
        if outer.proto not in (IPPROTO_IPIP, IPPROTO_GRE, IPPROTO_MINENC):
            st.drop("not-tunnel")
            return []
        st.received += 1
        kind = relayed_type(err.icmp_type, err.code)
        if kind is None:
            st.drop(f"type-{err.icmp_type}-{err.code}")
            return []
        inner = inner_datagram(outer, rest)
        if inner is None:
            st.drop("short-quote")
            return []
        ih, payload, overhead = inner
        if not self.is_ours(outer, ih):
            st.drop("not-ours")
            return []
        dst = ipaddress.IPv4Address(ih.src)
        if dst.is_multicast or dst.is_unspecified or int(dst) == 0xFFFFFFFF:
            st.drop("bad-destination")
            return []
        if ih.frag_offset:
            st.drop("fragment")
            return []
        if ih.proto == IPPROTO_ICMP and payload[:1] and payload[0] in icmp_wire.ERROR_TYPES:
            st.drop("about-an-icmp-error")
            return []
        if not self._allow(ih.src, now):
            st.rate_limited += 1
            return []
        rest4 = b"\x00\x00\x00\x00"
        if kind == (icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_NEEDFRAG):
            mtu = err.next_hop_mtu
            if mtu:
                rest4 = b"\x00\x00" + max(68, mtu - overhead).to_bytes(2, "big")
        quoted = _header_bytes(ih) + payload[:QUOTE_PAYLOAD]
        msg = icmp_wire.IcmpError(kind[0], kind[1], quoted, rest4).encode()
        st.relayed += 1
        return [SendIcmp(ih.src, msg, None, 64)]

    def _allow(self, dst: str, now: float) -> bool:
        tokens, at = self._global
        tokens = min(self.global_rate, tokens + (now - at) * self.global_rate)
        if tokens < 1.0:
            self._global = (tokens, now)
            return False
        b = self._buckets.get(dst)
        per = (
            self.burst if b is None else min(self.burst, b[0] + (now - b[1]) * self.per_destination)
        )
        if per < 1.0:
            self._global = (tokens, now)
            return False
        self._global = (tokens - 1.0, now)
        self._buckets[dst] = (per - 1.0, now)
        self._buckets.move_to_end(dst)
        if len(self._buckets) > DESTINATIONS_MAX:
            self._buckets.popitem(last=False)
        return True


def _header_bytes(h: IPv4Header) -> bytes:
    """The inner header as it was sent (its options kept; checksum recomputed)."""
    if len(h.options) % 4 or len(h.options) > 40:
        h = IPv4Header(h.src, h.dst, h.proto, h.total_length, h.ttl, h.tos, h.ident, h.flags,
                       h.frag_offset)  # fmt: skip
    return encode_ipv4(h)


__all__ = [
    "BURST",
    "GLOBAL_RATE",
    "PER_DESTINATION",
    "RelayStats",
    "TunnelIcmpRelay",
    "inner_datagram",
    "relayed_type",
]
