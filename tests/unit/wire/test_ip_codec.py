"""Golden vectors for mobileha.wire.ip: IPv4, IP-in-IP, GRE, minimal encapsulation."""

from __future__ import annotations

import pytest

from mobileha.wire import DecodeError
from mobileha.wire.ip import (
    IP_DF,
    GreHeader,
    IPv4Header,
    MinEncHeader,
    build_ipv4,
    checksum,
    decap_gre,
    decap_ipip,
    decap_minimal,
    decode_gre,
    decode_ipv4,
    decode_minenc,
    encap_gre,
    encap_ipip,
    encap_minimal,
    encode_gre,
    encode_ipv4,
    encode_minenc,
)

# The classic example header (Wikipedia "IPv4 header checksum"): checksum 0xb861.
WIKI_HDR = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
WIKI_HDR_OK = bytes.fromhex("45000073000040004011b861c0a80001c0a800c7")

# A 28-byte ICMP echo request 10.1.0.2 -> 10.99.0.5, TOS 0x10, DF, TTL 63, id 0x1234.
ICMP = bytes.fromhex("0800f7ff0000000000000000")  # type 8, checksum of zeros, 4 zero bytes
INNER = (
    bytes.fromhex("45100028123440003f01")
    + bytes.fromhex("0000")
    + bytes.fromhex("0a0100020a630005")
)
INNER = INNER[:10] + checksum(INNER).to_bytes(2, "big") + INNER[12:] + ICMP + bytes(8)


def test_checksum_golden() -> None:
    assert checksum(WIKI_HDR) == 0xB861
    assert checksum(WIKI_HDR_OK) == 0
    assert checksum(b"\x01") == 0xFEFF  # odd length padded with a zero byte


def test_ipv4_golden_decode_encode() -> None:
    payload = bytes(0x73 - 20)
    h, p = decode_ipv4(WIKI_HDR_OK + payload)
    assert h == IPv4Header(
        "192.168.0.1", "192.168.0.199", 17, 0x73, ttl=64, tos=0, ident=0, flags=IP_DF
    )
    assert p == payload
    assert encode_ipv4(h) == WIKI_HDR_OK


def test_ipv4_options_and_padding() -> None:
    h = IPv4Header("1.2.3.4", "5.6.7.8", 6, 28, options=b"\x01\x01\x01\x00")
    raw = encode_ipv4(h) + b"abcd"
    assert raw[0] == 0x46
    assert decode_ipv4(raw + b"\x00\x00") == (h, b"abcd")  # trailing padding ignored


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short"),
        (WIKI_HDR_OK[:19], "short"),
        (b"\x55" + WIKI_HDR_OK[1:] + bytes(0x73), "bad-version"),
        (b"\x44" + WIKI_HDR_OK[1:] + bytes(0x73), "bad-ihl"),
        (WIKI_HDR_OK + bytes(10), "short"),
        (WIKI_HDR + bytes(0x73), "bad-checksum"),
        (bytes.fromhex("4500000a") + WIKI_HDR_OK[4:], "bad-length"),
    ],
)
def test_ipv4_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_ipv4(raw)
    assert e.value.reason == reason


def test_ipip_golden() -> None:
    pkt = encap_ipip(INNER, "10.2.0.2", "10.3.0.2", ttl=64, ident=7)
    # Outer: TOS copied (0x10), DF copied, protocol 4, length 20 + 40.
    exp = bytearray(
        bytes.fromhex("4510003c000740004004") + b"\0\0" + bytes.fromhex("0a0200020a030002")
    )
    exp[10:12] = checksum(bytes(exp)).to_bytes(2, "big")
    assert pkt[:20] == bytes(exp)
    assert pkt[20:] == INNER
    outer, inner = decap_ipip(pkt)
    assert (outer.src, outer.dst, outer.proto, outer.tos, outer.df) == (
        "10.2.0.2",
        "10.3.0.2",
        4,
        0x10,
        True,
    )
    assert inner == INNER


def test_ipip_no_df_when_inner_has_none() -> None:
    inner = build_ipv4("10.1.0.2", "10.99.0.5", 17, b"x" * 8, ttl=5)
    assert decode_ipv4(encap_ipip(inner, "1.1.1.1", "2.2.2.2"))[0].flags == 0


def test_ipip_errors() -> None:
    with pytest.raises(DecodeError) as e:
        decap_ipip(build_ipv4("1.1.1.1", "2.2.2.2", 47, INNER))
    assert e.value.reason == "bad-proto"
    with pytest.raises(DecodeError) as e:
        decap_ipip(build_ipv4("1.1.1.1", "2.2.2.2", 4, b"\x60" + bytes(39)))
    assert e.value.reason == "bad-inner"
    with pytest.raises(DecodeError):
        encap_ipip(b"\x60" * 40, "1.1.1.1", "2.2.2.2")


def test_gre_key_golden() -> None:
    # K set, protocol 0x0800, key 0x00000401 (P§3.2: struct.pack('!HH', 0x2000, 0x0800) + key).
    raw = encode_gre(GreHeader(key=0x401), b"PAYLOAD")
    assert raw == bytes.fromhex("2000080000000401") + b"PAYLOAD"
    assert decode_gre(raw) == (GreHeader(0x0800, 0x401, None, False), b"PAYLOAD")


def test_gre_all_fields_golden() -> None:
    raw = encode_gre(GreHeader(key=1, seq=2, checksum=True), b"\x00\x01")
    assert raw[:4] == bytes.fromhex("b0000800")
    assert raw[6:8] == b"\0\0"
    assert raw[8:16] == bytes.fromhex("0000000100000002")
    assert checksum(raw) == 0
    assert decode_gre(raw) == (GreHeader(0x0800, 1, 2, True), b"\x00\x01")
    bad = raw[:4] + bytes([raw[4] ^ 1]) + raw[5:]
    with pytest.raises(DecodeError) as e:
        decode_gre(bad)
    assert e.value.reason == "bad-checksum"
    assert decode_gre(bad, verify=False)[0].key == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x20\x00\x08", "short"),
        (bytes.fromhex("20000800000004"), "short"),
        (bytes.fromhex("00010800"), "bad-version"),
        (bytes.fromhex("40000800"), "bad-flags"),  # RFC 1701 routing bit
        (bytes.fromhex("08000800"), "bad-flags"),  # strict source route bit
    ],
)
def test_gre_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_gre(raw)
    assert e.value.reason == reason


def test_encap_gre_outer() -> None:
    pkt = encap_gre(INNER, "10.2.0.2", "10.3.0.2", key=77)
    outer, gre, inner = decap_gre(pkt)
    assert (outer.proto, outer.tos, outer.df, outer.total_length) == (47, 0x10, True, 20 + 8 + 40)
    assert gre == GreHeader(0x0800, 77)
    assert inner == INNER


def test_minenc_header_golden() -> None:
    # proto 6, S, dst 10.99.0.5, src 10.1.0.2: checksum ~(0x0680+0x0a63+0x0005+0x0a01+0x0002).
    h = MinEncHeader(6, "10.99.0.5", "10.1.0.2")
    raw = encode_minenc(h)
    assert raw == bytes.fromhex("0680e5140a6300050a010002")
    assert decode_minenc(raw + b"rest") == (h, b"rest")
    h8 = MinEncHeader(17, "10.99.0.5")
    raw8 = encode_minenc(h8)
    assert raw8[:2] == b"\x11\x00" and len(raw8) == 8
    assert decode_minenc(raw8) == (h8, b"")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes(7), "short"),
        (bytes.fromhex("0680e5140a630005"), "short"),  # S set, no source
        (bytes.fromhex("0640e5140a630005"), "bad-flags"),
        (bytes.fromhex("0680e5150a6300050a010002"), "bad-checksum"),
    ],
)
def test_minenc_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_minenc(raw)
    assert e.value.reason == reason


def test_minimal_encap_rewrites_header_and_restores() -> None:
    pkt = encap_minimal(INNER, "10.2.0.2", "10.3.0.2")
    outer, _ = decode_ipv4(pkt)
    # RFC 2004 §3: protocol 55, dst = tunnel exit, src = encapsulator, length + 12.
    assert (outer.proto, outer.src, outer.dst, outer.total_length) == (
        55,
        "10.2.0.2",
        "10.3.0.2",
        52,
    )
    assert (outer.ttl, outer.tos, outer.ident, outer.flags) == (63, 0x10, 0x1234, IP_DF)
    assert pkt[20:32] == bytes.fromhex("0180") + pkt[22:24] + bytes.fromhex("0a6300050a010002")
    assert checksum(pkt[20:32]) == 0
    assert pkt[32:] == INNER[20:]
    _, mh, restored = decap_minimal(pkt)
    assert mh == MinEncHeader(1, "10.99.0.5", "10.1.0.2")
    assert restored == INNER


def test_minimal_encap_from_original_source_is_8_bytes() -> None:
    pkt = encap_minimal(INNER, "10.1.0.2", "10.3.0.2")
    assert decode_ipv4(pkt)[0].total_length == 48
    assert pkt[21] == 0
    assert decap_minimal(pkt)[2] == INNER


def test_minimal_encap_refuses_fragments() -> None:
    frag = bytearray(INNER)
    frag[6] = 0x20  # MF
    frag[10:12] = b"\0\0"
    frag[10:12] = checksum(bytes(frag[:20])).to_bytes(2, "big")
    with pytest.raises(DecodeError) as e:
        encap_minimal(bytes(frag), "10.2.0.2", "10.3.0.2")
    assert e.value.reason == "fragment"


def test_minimal_decap_errors() -> None:
    with pytest.raises(DecodeError) as e:
        decap_minimal(encap_ipip(INNER, "1.1.1.1", "2.2.2.2"))
    assert e.value.reason == "bad-proto"


def test_multicast_udp_frame_golden() -> None:
    """An HSRP Hello from the virtual MAC (RFC 2281 §6.1): Ethernet to the group's RFC 1112
    MAC, IPv4 TTL 1, UDP 1985 -> 1985 with its checksum."""
    from mobileha.wire.ip import multicast_udp_frame

    frame = multicast_udp_frame(
        bytes.fromhex("00000c9ff001"), "10.0.0.2", "224.0.0.102", 1985, 1985, b"hello-hsrp"
    )
    assert frame.hex() == (
        "01005e000066" "00000c9ff001" "0800"
        "45000026000000000111cf5f0a000002e0000066"
        "07c107c10012e6fc" "68656c6c6f2d68737270"
    )  # fmt: skip
