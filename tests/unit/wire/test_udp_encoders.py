"""The Internet checksum and the IPv4/UDP encoders of the SLB's directed mode (wire.ip)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.wire.ip import UdpDatagramEncoder, build_udp_datagram
from mobileha.wire.ip import checksum as _csum


def ref_csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_fast_checksum_equals_rfc1071(data: bytes) -> None:
    assert _csum(data) == ref_csum(data)


def test_checksum_edge_cases() -> None:
    assert _csum(b"\xff\xff") == ref_csum(b"\xff\xff") == 0
    assert _csum(b"\x00\x01") == ref_csum(b"\x00\x01") == 0xFFFE
    assert _csum(b"\x00\x00\x00") == ref_csum(b"\x00\x00\x00") == 0xFFFF
    pkt = build_udp_datagram("10.0.2.2", 434, "10.0.1.100", 434, b"\x01" * 57)
    assert ref_csum(pkt[:20]) == 0
    assert ref_csum(pkt[12:20] + struct.pack("!BBH", 0, 17, 65) + pkt[20:]) == 0


@settings(max_examples=1500, deadline=None)
@given(
    st.builds(lambda b: ".".join(map(str, b)), st.binary(min_size=4, max_size=4)),
    st.integers(0, 65535),
    st.builds(lambda b: ".".join(map(str, b)), st.binary(min_size=4, max_size=4)),
    st.integers(0, 65535),
    st.binary(max_size=200),
)
def test_directed_encoder_same_bytes(src: str, sport: int, dst: str, dport: int, p: bytes) -> None:
    enc = UdpDatagramEncoder(max_flows=2)
    want = build_udp_datagram(src, sport, dst, dport, p)
    assert enc(src, sport, dst, dport, p) == want
    assert enc(src, sport, dst, dport, p) == want  # cached flow
