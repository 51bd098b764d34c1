"""Hypothesis: ICMP agent discovery codec round trips; random and mutated bytes raise
DecodeError only."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire.icmp import (
    AgentAdvertisement,
    AgentSolicitation,
    ChallengeAdvExt,
    IcmpError,
    MobilityAgentExt,
    PadExt,
    PrefixLengthsExt,
    UnknownAdvExt,
    decode,
    decode_quoted,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
i32 = st.integers(-(2**31), 2**31 - 1)
ipv4 = st.tuples(u8, u8, u8, u8).map(lambda t: ".".join(map(str, t)))

extension = st.one_of(
    st.builds(MobilityAgentExt, u16, u16, u16, st.lists(ipv4, max_size=4).map(tuple)),
    st.builds(PrefixLengthsExt, st.lists(st.integers(0, 32), max_size=4).map(tuple)),
    st.builds(PadExt),
    st.builds(ChallengeAdvExt, st.binary(max_size=40)),
    st.builds(
        UnknownAdvExt,
        st.integers(1, 255).filter(lambda t: t not in (16, 19, 24)),
        st.binary(max_size=20),
    ),
)
advertisement = st.builds(
    AgentAdvertisement,
    lifetime=u16,
    routers=st.lists(st.tuples(ipv4, i32), max_size=4).map(tuple),
    extensions=st.lists(extension, max_size=5).map(tuple),
    code=st.sampled_from([0, 16]),
)


@settings(max_examples=2000)
@given(advertisement)
def test_advertisement_round_trip(adv: AgentAdvertisement) -> None:
    raw = adv.encode()
    back = AgentAdvertisement.decode(raw)
    assert back == adv
    assert back.encode() == raw


@settings(max_examples=300)
@given(u16)
def test_solicitation_round_trip(reserved: int) -> None:
    sol = AgentSolicitation(0, reserved)
    assert AgentSolicitation.decode(sol.encode()) == sol


@settings(max_examples=500)
@given(
    st.sampled_from([3, 4, 5, 11, 12]),
    u8,
    st.binary(max_size=80),
    st.binary(min_size=4, max_size=4),
)
def test_error_round_trip(t: int, code: int, quoted: bytes, rest: bytes) -> None:
    err = IcmpError(t, code, quoted, rest)
    assert decode(err.encode()) == err


@settings(max_examples=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80))
def test_random_bytes_raise_decode_error_only(data: bytes) -> None:
    for verify in (True, False):
        try:
            decode(data, verify)
        except DecodeError:
            pass
    try:
        decode_quoted(data)
    except DecodeError:
        pass


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(advertisement, st.integers(0, 2**32 - 1))
def test_mutated_advertisements_raise_decode_error_only(adv: AgentAdvertisement, seed: int) -> None:
    rng = random.Random(seed)
    raw = bytearray(adv.encode())
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        if op == 0 and raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif op == 1 and raw:
            del raw[rng.randrange(len(raw)) :]
        else:
            raw.insert(rng.randrange(len(raw) + 1), rng.randrange(256))
    try:
        decode(bytes(raw), verify=False)
    except DecodeError:
        pass
