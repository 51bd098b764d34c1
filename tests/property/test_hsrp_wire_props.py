"""HSRP codec properties: round trips and random/mutated bytes -> DecodeError only.

Each family runs >= 10,000 examples (issue 2 acceptance).
"""

from __future__ import annotations

import ipaddress
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire import hsrp as w

N = 10_000
SETTINGS = settings(
    max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ipv4 = st.integers(0, 0xFFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))
ipv6 = st.integers(0, 2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))

md5 = st.builds(
    w.Md5Auth,
    algorithm=u8,
    padding=u8,
    flags=u16,
    ip=ipv4,
    key_id=u32,
    digest=st.binary(min_size=16, max_size=16),
)
v1 = st.builds(
    w.HsrpV1,
    opcode=st.integers(0, 2),
    state=u8,
    hellotime=u8,
    holdtime=u8,
    priority=u8,
    group=u8,
    vip=ipv4,
    auth=st.binary(min_size=8, max_size=8),
    reserved=u8,
    md5=st.none() | md5,
)
adv = st.builds(
    w.HsrpAdvertise,
    adv_type=u16,
    length=u16,
    state=u8,
    active_groups=u16,
    passive_groups=u16,
    reserved1=u8,
    reserved2=u32,
)
group_state_v4 = st.builds(
    w.GroupStateTlv,
    opcode=u8,
    state=u8,
    group=u16,
    identifier=st.binary(min_size=6, max_size=6),
    priority=u32,
    hello_ms=u32,
    hold_ms=u32,
    vip=ipv4,
    ip_version=st.just(4),
    version=u8,
    vip_padding=st.binary(min_size=12, max_size=12),
)
group_state_v6 = st.builds(
    w.GroupStateTlv,
    opcode=u8,
    state=u8,
    group=u16,
    identifier=st.binary(min_size=6, max_size=6),
    priority=u32,
    hello_ms=u32,
    hold_ms=u32,
    vip=ipv6,
    ip_version=st.just(6),
    version=u8,
)
tlv = st.one_of(
    group_state_v4,
    group_state_v6,
    st.builds(w.InterfaceStateTlv, u16, u16),
    st.builds(w.TextAuthTlv, st.binary(min_size=8, max_size=8)),
    md5,
    st.builds(w.UnknownTlv, st.integers(5, 255) | st.just(0), st.binary(max_size=40)),
)
v2 = st.builds(w.HsrpV2, st.lists(tlv, min_size=1, max_size=5).map(tuple))


@SETTINGS
@given(st.one_of(v1, adv, v2))
def test_roundtrip(m: w.HsrpMessage) -> None:
    raw = m.encode()
    if isinstance(m, w.HsrpV2):
        # a v2 packet whose first TLV type is 0 would read as v1; decode_v2 is the v2 decoder
        assert w.decode_v2(raw) == m
        assert w.decode_v2(raw).encode() == raw
        if raw[0] == 0:
            return
    assert w.decode(raw) == m
    assert w.decode(raw).encode() == raw


def _decode_only_decodeerror(raw: bytes) -> None:
    for fn in (w.decode, w.decode_v1, w.decode_v2):
        try:
            m = fn(raw)
        except DecodeError:
            continue
        # whatever decodes re-encodes to the same bytes (canonical unless padding differs)
        assert m.encode() == raw


def _bases() -> list[bytes]:
    """A fixed, diverse set of valid encodings to mutate (cheaper than drawing messages)."""
    rnd = random.Random(2281)
    out = [bytes.fromhex("00001003 0a640100 63697363 6f000000 0a000001")]
    for i in range(60):
        ip = str(ipaddress.IPv4Address(rnd.getrandbits(32)))
        m5 = w.Md5Auth(ip=ip, key_id=rnd.getrandbits(32), digest=rnd.randbytes(16))
        out.append(w.HsrpV1(rnd.randrange(3), rnd.choice([0, 1, 2, 4, 8, 16]), vip=ip,
                            md5=m5 if i % 2 else None).encode())  # fmt: skip
        gs = w.GroupStateTlv(state=rnd.randrange(7), group=rnd.randrange(4096), vip=ip)
        extra: tuple[w.V2Tlv, ...] = (w.TextAuthTlv(),) if i % 3 else (m5,)
        out.append(w.HsrpV2((gs, *extra, w.InterfaceStateTlv(i, i))).encode())
        out.append(w.HsrpAdvertise(active_groups=i).encode())
    return out


BASES = _bases()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    buf = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 3))
        if kind == 0 and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(u8)
        elif kind == 1 and buf:
            del buf[draw(st.integers(0, len(buf) - 1)) :]
        elif kind == 2:
            buf += draw(st.binary(min_size=1, max_size=8))
        elif buf:
            del buf[draw(st.integers(0, len(buf) - 1))]
    return bytes(buf)


@SETTINGS
@given(st.one_of(st.binary(max_size=80), mutated()))
def test_random_and_mutated_bytes_only_decodeerror(raw: bytes) -> None:
    _decode_only_decodeerror(raw)
    # MD5 helpers never raise on arbitrary input
    w.md5_verify(raw, b"k")
