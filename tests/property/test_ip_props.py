"""Property tests for mobileha.wire.ip: round trips, and random/mutated bytes -> DecodeError only.

Families: IPv4 header, IP-in-IP, GRE, minimal encapsulation, ARP (10,000 fuzz examples each).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire.ip import (
    ArpPacket,
    GreHeader,
    IPv4Header,
    MinEncHeader,
    build_ipv4,
    checksum,
    decap_gre,
    decap_ipip,
    decap_minimal,
    decode_arp,
    decode_arp_frame,
    decode_gre,
    decode_ipv4,
    decode_minenc,
    encap_gre,
    encap_ipip,
    encap_minimal,
    encode_arp,
    encode_gre,
    encode_ipv4,
    encode_minenc,
    gratuitous_arp,
)

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
RT = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

addrs = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)


@st.composite
def ipv4_packets(draw: st.DrawFn) -> tuple[IPv4Header, bytes]:
    options = draw(st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4]))
    payload = draw(st.binary(max_size=64))
    h = IPv4Header(
        draw(addrs),
        draw(addrs),
        draw(u8),
        20 + len(options) + len(payload),
        draw(u8),
        draw(u8),
        draw(u16),
        draw(st.integers(0, 7)),
        draw(st.integers(0, 0x1FFF)),
        options,
    )
    return h, payload


@st.composite
def inner_packets(draw: st.DrawFn) -> bytes:
    return build_ipv4(
        draw(addrs),
        draw(addrs),
        draw(u8),
        draw(st.binary(max_size=64)),
        ttl=draw(u8),
        tos=draw(u8),
        ident=draw(u16),
        df=draw(st.booleans()),
    )


gre_headers = st.builds(GreHeader, u16, st.none() | u32, st.none() | u32, st.booleans())
minenc_headers = st.builds(MinEncHeader, u8, addrs, st.none() | addrs)
arps = st.builds(ArpPacket, st.sampled_from([1, 2]), macs, addrs, macs, addrs)


def only_decode_errors(fn: Callable[[bytes], Any], data: bytes) -> None:
    try:
        fn(data)
    except DecodeError:
        pass


# ---- round trips -----------------------------------------------------------------------


@RT
@given(ipv4_packets())
def test_ipv4_roundtrip(hp: tuple[IPv4Header, bytes]) -> None:
    h, payload = hp
    raw = encode_ipv4(h) + payload
    assert checksum(raw[: h.header_length]) == 0
    assert decode_ipv4(raw) == (h, payload)


@RT
@given(inner_packets(), addrs, addrs, u8)
def test_ipip_roundtrip(inner: bytes, src: str, dst: str, ttl: int) -> None:
    pkt = encap_ipip(inner, src, dst, ttl=ttl)
    outer, got = decap_ipip(pkt)
    assert got == inner
    assert (outer.src, outer.dst, outer.ttl, outer.tos) == (src, dst, ttl, inner[1])
    assert outer.df == bool(inner[6] & 0x40)


@RT
@given(gre_headers, st.binary(max_size=64))
def test_gre_roundtrip(h: GreHeader, payload: bytes) -> None:
    raw = encode_gre(h, payload)
    assert len(raw) == h.length + len(payload)
    assert decode_gre(raw) == (h, payload)


@RT
@given(inner_packets(), addrs, addrs, st.none() | u32)
def test_encap_gre_roundtrip(inner: bytes, src: str, dst: str, key: int | None) -> None:
    outer, gre, got = decap_gre(encap_gre(inner, src, dst, key=key))
    assert (got, gre.key, outer.src, outer.dst) == (inner, key, src, dst)


@RT
@given(minenc_headers, st.binary(max_size=32))
def test_minenc_roundtrip(h: MinEncHeader, rest: bytes) -> None:
    raw = encode_minenc(h)
    assert checksum(raw) == 0
    assert decode_minenc(raw + rest) == (h, rest)


@RT
@given(inner_packets(), addrs, addrs)
def test_minimal_roundtrip(inner: bytes, src: str, dst: str) -> None:
    # Fragments are refused by design (RFC 2004); clear MF/offset for this property.
    h, payload = decode_ipv4(inner)
    h = IPv4Header(h.src, h.dst, h.proto, h.total_length, h.ttl, h.tos, h.ident, h.flags & 2)
    inner = encode_ipv4(h) + payload
    pkt = encap_minimal(inner, src, dst)
    outer, mh, got = decap_minimal(pkt)
    assert got == inner
    assert (outer.src, outer.dst, outer.proto) == (src, dst, 55)
    assert mh.length == (8 if h.src == src else 12)


@RT
@given(arps)
def test_arp_roundtrip(a: ArpPacket) -> None:
    assert decode_arp(encode_arp(a)) == a


@RT
@given(macs, addrs, st.booleans())
def test_gratuitous_roundtrip(mac: str, addr: str, reply: bool) -> None:
    _, a = decode_arp_frame(gratuitous_arp(mac, addr, reply))
    assert a.is_gratuitous and a.sha == mac and a.spa == addr


# ---- random and mutated bytes: DecodeError only ----------------------------------------
# Hypothesis (shrinking, a few hundred examples each) plus a seeded loop of 10,000 random and
# 10,000 mutated inputs per family, which is ~100x cheaper per example than composite draws.

FAMILIES: dict[str, tuple[Callable[[random.Random], bytes], list[Callable[[bytes], Any]]]] = {}


def _rand_addr(r: random.Random) -> str:
    return ".".join(str(r.randrange(256)) for _ in range(4))


def _rand_inner(r: random.Random) -> bytes:
    return build_ipv4(
        _rand_addr(r),
        _rand_addr(r),
        r.randrange(256),
        r.randbytes(r.randrange(64)),
        ttl=r.randrange(256),
        tos=r.randrange(256),
        df=r.random() < 0.5,
    )


def _rand_ipv4(r: random.Random) -> bytes:
    opts = r.randbytes(4 * r.randrange(11))
    pl = r.randbytes(r.randrange(48))
    h = IPv4Header(
        _rand_addr(r), _rand_addr(r), r.randrange(256), 20 + len(opts) + len(pl), options=opts
    )
    return encode_ipv4(h) + pl


FAMILIES["ipv4"] = (_rand_ipv4, [decode_ipv4])
FAMILIES["ipip"] = (
    lambda r: encap_ipip(_rand_inner(r), _rand_addr(r), _rand_addr(r)),
    [decap_ipip],
)
FAMILIES["gre"] = (
    lambda r: encap_gre(
        _rand_inner(r),
        _rand_addr(r),
        _rand_addr(r),
        key=r.choice([None, r.getrandbits(32)]),
        seq=r.choice([None, r.getrandbits(32)]),
        with_checksum=r.random() < 0.5,
    ),
    [decap_gre, lambda b: decode_gre(b[20:])],
)
FAMILIES["minimal"] = (
    lambda r: encap_minimal(_rand_inner(r), _rand_addr(r), _rand_addr(r)),
    [
        decap_minimal,
        lambda b: decode_minenc(b[20:]),
        lambda b: encap_minimal(b, "1.2.3.4", "5.6.7.8"),
    ],
)
FAMILIES["arp"] = (
    lambda r: gratuitous_arp(
        ":".join(f"{x:02x}" for x in r.randbytes(6)), _rand_addr(r), r.random() < 0.5
    ),
    [decode_arp_frame, lambda b: decode_arp(b[14:])],
)


def _mutate(r: random.Random, b: bytes) -> bytes:
    m = bytearray(b)
    for _ in range(r.randrange(1, 5)):
        op = r.randrange(4)
        if op == 0 and m:
            m[r.randrange(len(m))] = r.randrange(256)
        elif op == 1 and m:
            m[r.randrange(len(m))] ^= 1 << r.randrange(8)
        elif op == 2:
            del m[r.randrange(len(m) + 1) :]
        else:
            m += r.randbytes(r.randrange(1, 9))
    return bytes(m)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_random_and_mutated_bytes_raise_decode_error_only(family: str) -> None:
    make, decoders = FAMILIES[family]
    r = random.Random(f"mobileha-ip-{family}")
    rejected = 0
    for i in range(20_000):
        data = r.randbytes(r.randrange(96)) if i % 2 else _mutate(r, make(r))
        for dec in decoders:
            try:
                dec(data)
            except DecodeError:
                rejected += 1
    assert rejected > 0


@FUZZ
@given(st.binary(max_size=96))
def test_hypothesis_random_bytes(data: bytes) -> None:
    for _make, decoders in FAMILIES.values():
        for dec in decoders:
            only_decode_errors(dec, data)


@FUZZ
@given(st.sampled_from(sorted(FAMILIES)), st.randoms(use_true_random=False), st.data())
def test_hypothesis_mutated(family: str, r: random.Random, data: st.DataObject) -> None:
    make, decoders = FAMILIES[family]
    raw = bytearray(make(r))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(u8)
    cut = data.draw(st.integers(0, len(raw)))
    for dec in decoders:
        only_decode_errors(dec, bytes(raw[:cut]))
        only_decode_errors(dec, bytes(raw))
