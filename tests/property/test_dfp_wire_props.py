"""DFP codec properties: round trips; random and mutated bytes raise DecodeError only."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError, dfp

addr = st.builds(lambda b: ".".join(str(x) for x in b), st.binary(min_size=4, max_size=4))
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

hosts = st.builds(dfp.HostWeight, addr, u16, u16)
load = st.builds(dfp.LoadTlv, st.lists(hosts, max_size=5).map(tuple), u16, u8, u8, u16)
keep = st.builds(dfp.KeepaliveTlv, u32)
entry = st.builds(dfp.BindIdEntry, u16, addr, addr, u16)
table = st.builds(
    dfp.BindIdTableTlv, addr, u16, u8, st.lists(entry, max_size=4).map(tuple), u8, u16
)
unknown = st.builds(
    dfp.UnknownTlv,
    u16.filter(lambda t: t not in (1, 2, 0x0101, 0x0301)),
    st.binary(max_size=40),
)
md5sec = st.builds(dfp.SecurityTlv, st.just(1), u32, st.binary(min_size=16, max_size=16))
othersec = st.builds(
    lambda a, d: dfp.SecurityTlv(a, data=d), u32.filter(lambda a: a != 1), st.binary(max_size=20)
)
body = st.lists(st.one_of(load, keep, table, unknown), max_size=5)
messages = st.builds(
    lambda t, sec, tl, r: dfp.DfpMessage(t, tuple(([sec] if sec else []) + tl), r),
    st.sampled_from([0x0101, 0x0201, 0x0301, 0x0401, 0x0402, 0x0403, 0x0500, 0x05FF]) | u16,
    st.none() | md5sec | othersec,
    body,
    u8,
)


@settings(max_examples=1500, deadline=None)
@given(messages)
def test_round_trip(msg: dfp.DfpMessage) -> None:
    raw = dfp.encode(msg)
    assert dfp.decode(raw) == msg
    assert dfp.encode(dfp.decode(raw)) == raw
    assert dfp.Framer().feed(raw) == [raw]


@settings(max_examples=500, deadline=None)
@given(messages, st.binary(min_size=1, max_size=8))
def test_sign_verify(msg: dfp.DfpMessage, key: bytes) -> None:
    raw = dfp.sign(msg, key, 1)
    assert dfp.verify(raw, key)
    assert not dfp.verify(raw, key + b"x")


@settings(max_examples=6500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_random_bytes_decode_error_only(raw: bytes) -> None:
    try:
        dfp.decode(raw)
    except DecodeError:
        pass
    try:
        dfp.Framer().feed(raw)
    except DecodeError:
        pass
    dfp.verify(raw, b"k")


mutation = st.tuples(st.integers(0, 2), st.integers(0, 400), st.binary(min_size=1, max_size=8))


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.lists(mutation, min_size=1, max_size=4), st.booleans())
def test_mutated_bytes_decode_error_only(
    msg: dfp.DfpMessage, muts: list[tuple[int, int, bytes]], fix_header: bool
) -> None:
    raw = bytearray(dfp.encode(msg))
    for op, pos, blob in muts:
        i = pos % max(1, len(raw))
        if op == 0 and raw:
            raw[i] = blob[0]
        elif op == 1 and raw:
            del raw[i:]
        else:
            raw[i:i] = blob
    # keep the header plausible half of the time so TLV parsing is exercised
    if fix_header and len(raw) >= 8:
        raw[0] = 1
        raw[4:8] = len(raw).to_bytes(4, "big")
    try:
        out = dfp.decode(bytes(raw))
    except DecodeError:
        return
    assert dfp.encode(out) == bytes(raw)
