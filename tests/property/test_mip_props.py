"""Hypothesis: Mobile IP codec round trips; random and mutated bytes raise DecodeError only."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire.mip import (
    AuthExt,
    ChallengeExt,
    CvseExt,
    DynamicHaExt,
    GenAuthExt,
    GreKeyExt,
    NaiExt,
    NvseExt,
    RegistrationReply,
    RegistrationRequest,
    RegistrationRevocation,
    RevocationAck,
    RevocationSupportExt,
    UnknownExt,
    decode,
    leading_nai,
    parse_request,
    walk_extensions,
)

N = 10_000
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
ipv4 = st.tuples(u8, u8, u8, u8).map(lambda t: ".".join(map(str, t)))
nai = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1, max_size=60
).filter(lambda s: len(s.encode()) <= 255)

extension = st.one_of(
    st.builds(AuthExt, st.sampled_from([32, 33, 34]), u32, st.binary(max_size=40)),
    st.builds(GenAuthExt, u8, u32, st.binary(max_size=40)),
    st.builds(CvseExt, u32, u16, st.binary(max_size=30), st.sampled_from([37, 38]), u8),
    st.builds(GreKeyExt, u32, u8),
    st.builds(NaiExt, nai),
    st.builds(ChallengeExt, st.binary(max_size=64)),
    st.builds(NvseExt, u32, u16, st.binary(max_size=30), st.sampled_from([133, 134]), u16),
    st.builds(RevocationSupportExt, u16, u32),
    st.builds(DynamicHaExt, u8, ipv4),
    st.builds(
        UnknownExt,
        st.integers(128, 255).filter(lambda t: t not in (131, 132, 133, 134, 137, 139)),
        st.binary(max_size=40),
    ),
)
exts = st.lists(extension, max_size=4)

request = st.builds(
    RegistrationRequest,
    extensions=exts,
    flags=u8,
    lifetime=u16,
    home_addr=ipv4,
    ha_addr=ipv4,
    care_of=ipv4,
    ident=u64,
)
reply = st.builds(
    RegistrationReply,
    extensions=exts,
    code=u8,
    lifetime=u16,
    home_addr=ipv4,
    ha_addr=ipv4,
    ident=u64,
)
revocation = st.builds(
    RegistrationRevocation,
    extensions=exts,
    flags=u16,
    home_addr=ipv4,
    home_domain_addr=ipv4,
    foreign_domain_addr=ipv4,
    revocation_id=u32,
    reserved=u8,
)
rev_ack = st.builds(
    RevocationAck, extensions=exts, flags=u16, home_addr=ipv4, revocation_id=u32, reserved=u8
)
message = st.one_of(request, reply, revocation, rev_ack)
FAST = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(message)
def test_round_trip(msg: RegistrationRequest) -> None:
    wire = msg.encode()
    back = decode(wire)
    assert back == msg
    assert back.encode() == wire


def _only_decode_error(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass
    try:
        parse_request(data)
    except DecodeError:
        pass
    leading_nai(data)
    try:
        walk_extensions(data, 0)
    except DecodeError:
        pass


@FAST
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _only_decode_error(data)
    _only_decode_error(bytes([1]) + data)
    _only_decode_error(bytes([3]) + data)


def _corpus() -> list[bytes]:
    """A fixed set of valid messages covering every extension type (mutation seeds)."""
    from tests.unit.wire.test_mip_codec import p16_request

    full = RegistrationRequest(
        flags=0x0A,
        lifetime=600,
        home_addr="10.1.0.5",
        ha_addr="10.0.1.100",
        care_of="10.0.2.2",
        ident=7,
        extensions=[
            NaiExt("mn1@example.net"),
            ChallengeExt(b"\x01\x02\x03\x04"),
            AuthExt(32, 256, bytes(16)),
            GenAuthExt(1, 2, bytes(16)),
            GreKeyExt(9),
            CvseExt(5535, 0x0401, b"\x00\x00\x00\x09"),
            NvseExt(32473, 1, b"\x7f\x00\x00\x01\x01\xb2"),
            RevocationSupportExt(0x8000, 1),
            DynamicHaExt(1, "10.0.0.1"),
            UnknownExt(200, b"zz"),
            AuthExt(34, 300, bytes(16)),
        ],
    )
    reply = RegistrationReply(
        code=0,
        lifetime=600,
        home_addr="10.1.0.5",
        ha_addr="10.0.1.100",
        ident=7,
        extensions=[NaiExt("mn1@example.net"), AuthExt(32, 256, bytes(16)), GreKeyExt(9)],
    )
    rev = RegistrationRevocation(
        flags=0x8000,
        home_addr="10.1.0.5",
        home_domain_addr="10.0.1.100",
        foreign_domain_addr="10.0.2.2",
        revocation_id=1,
        extensions=[AuthExt(34, 300, bytes(16))],
    )
    ack = RevocationAck(flags=0x8000, home_addr="10.1.0.5", revocation_id=1)
    return [p16_request().encode(), full.encode(), reply.encode(), rev.encode(), ack.encode()]


CORPUS = _corpus()


@FAST
@given(st.sampled_from(CORPUS), st.integers(0, 2**32), st.integers(1, 6))
def test_mutated_messages(seed_msg: bytes, seed: int, n_ops: int) -> None:
    rnd = random.Random(seed)
    wire = bytearray(seed_msg)
    for _ in range(n_ops):
        op = rnd.choice(("flip", "flip", "truncate", "insert", "delete"))
        if op == "flip" and wire:
            wire[rnd.randrange(len(wire))] = rnd.randrange(256)
        elif op == "truncate" and wire:
            del wire[rnd.randrange(len(wire)) :]
        elif op == "delete" and wire:
            i = rnd.randrange(len(wire))
            del wire[i : i + rnd.randint(1, 4)]
        else:
            i = rnd.randint(0, len(wire))
            wire[i:i] = rnd.randbytes(rnd.randint(1, 4))
    _only_decode_error(bytes(wire))
