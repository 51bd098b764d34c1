"""Hypothesis: sync codec round trips; random and mutated bytes raise DecodeError only."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.sync import (
    REC_NONCE,
    REC_REVOCATION,
    REC_SA,
    BindingRecord,
    MsgKind,
    RecordSa,
    SyncMessage,
    SyncTypes,
    decode,
    encode,
)

# `make test` runs >= 10,000 examples per family; MOBILEHA_FAST=1 trims that for quick loops.
N = 1000 if os.environ.get("MOBILEHA_FAST") else 10_000

addr = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
nai = st.one_of(
    st.none(),
    st.text(min_size=1, max_size=40).filter(lambda s: 0 < len(s.encode()) <= 255),
)


def _flags(r: BindingRecord) -> BindingRecord:
    """[P] REC_NONCE, REC_SA and REC_REVOCATION are set exactly with a nonce, an SA and an
    FA timestamp."""
    f = r.rec_flags & ~(REC_NONCE | REC_SA | REC_REVOCATION)
    f |= (REC_NONCE if r.nonce is not None else 0) | (REC_SA if r.sa is not None else 0)
    f |= REC_REVOCATION if r.revocation_ts is not None else 0
    return r._replace(rec_flags=f)


record_sa = st.builds(
    RecordSa,
    u32,
    st.sampled_from([0, 1]),
    u8,
    u16,
    u16,
    st.binary(min_size=16, max_size=16),
    st.integers(1, 14).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
)


records = st.builds(
    BindingRecord,
    addr,
    addr,
    addr,
    u64,
    u16,
    u16,
    u8,
    u8,
    u32,
    st.sampled_from([4, 47, 55]),
    nai,
    st.binary(max_size=8),
    st.one_of(st.none(), u32),  # [P] REC_NONCE
    st.one_of(st.none(), record_sa),  # [P] REC_SA
    st.one_of(st.none(), u32),  # [P] REC_REVOCATION: the FA's timestamp
).map(_flags)
ext_list = st.lists(
    st.tuples(st.integers(128, 255).filter(lambda t: t != 160), st.binary(max_size=16)),
    max_size=3,
).map(tuple)


@st.composite
def messages(draw: st.DrawFn) -> SyncMessage:
    kind = draw(st.sampled_from(list(MsgKind)))
    recs: tuple[BindingRecord, ...] = ()
    if kind in (MsgKind.BU, MsgKind.BI_REPLY):
        recs = tuple(draw(st.lists(records, max_size=5)))
    chunk = draw(st.one_of(st.none(), u32))
    return SyncMessage(
        kind, draw(u32), draw(addr), draw(u64), draw(u8), recs, chunk, draw(ext_list)
    )


AUTHS = [
    Authenticator(b"k" * 16, ALG_PREFIX_SUFFIX),
    Authenticator(bytes(range(16)), ALG_HMAC_MD5),
]


@settings(max_examples=N // 10, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages(), u32, st.sampled_from(AUTHS))
def test_round_trip(msg: SyncMessage, spi: int, auth: Authenticator) -> None:
    data = encode(msg, spi, auth)
    d = decode(data)
    assert d.message == msg
    assert d.spi == spi
    assert d.verify(auth)
    assert encode(d.message, spi, auth) == data


@settings(max_examples=N // 20, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages(), u32)
def test_round_trip_other_type_codes(msg: SyncMessage, spi: int) -> None:
    types = SyncTypes(bu=100, bu_ack=101, bi_request=102, bi_reply=103, bi_ack=104, hhae=36)
    data = encode(msg, spi, AUTHS[0], types)
    assert decode(data, types).message == msg


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_random_bytes_decode_error_only(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass
    # also as if a sync type byte were there
    try:
        decode(bytes([200 + len(data) % 5]) + data)
    except DecodeError:
        pass


def _pool() -> list[SyncMessage]:
    """A fixed, diverse set of valid messages to mutate (generating one per example is slow)."""
    import random

    rnd = random.Random(7)
    out = []
    for i in range(40):
        kind = MsgKind(i % 5)
        recs: tuple[BindingRecord, ...] = ()
        if kind in (MsgKind.BU, MsgKind.BI_REPLY):
            recs = tuple(
                _flags(
                    BindingRecord(
                        f"10.1.{rnd.randrange(256)}.{rnd.randrange(256)}",
                        f"192.0.2.{rnd.randrange(256)}",
                        "192.0.2.1",
                        rnd.getrandbits(64),
                        rnd.randrange(65536),
                        rnd.randrange(65536),
                        rnd.randrange(256),
                        rnd.randrange(256),
                        rnd.getrandbits(32),
                        rnd.choice([4, 47, 55]),
                        rnd.choice([None, f"mn{j}@example.net", "\u00e9t\u00e9@x"]),
                        rnd.randbytes(rnd.choice([0, 0, 3])),
                        rnd.choice([None, rnd.getrandbits(32)]),
                        rnd.choice(
                            [
                                None,
                                RecordSa(
                                    rnd.getrandbits(32),
                                    rnd.randrange(2),
                                    rnd.randrange(256),
                                    7,
                                    0,
                                    rnd.randbytes(16),
                                    rnd.randbytes(32),
                                ),
                            ]
                        ),
                        rnd.choice([None, rnd.getrandbits(32)]),
                    )
                )
                for j in range(rnd.randrange(4))
            )
        chunk = rnd.choice([None, rnd.getrandbits(32)])
        exts = ((200, b"ab"),) if i % 7 == 0 else ()
        out.append(SyncMessage(kind, i, "10.0.0.100", rnd.getrandbits(64), 0, recs, chunk, exts))
    return out


POOL = [(m, encode(m, 400, AUTHS[0])) for m in _pool()]
mutation = st.tuples(st.integers(0, 2), st.integers(0, 400), u8, st.binary(min_size=1, max_size=4))


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(POOL), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_bytes_decode_error_only(
    sample: tuple[SyncMessage, bytes], muts: list[tuple[int, int, int, bytes]]
) -> None:
    _msg, orig = sample
    buf = bytearray(orig)
    for op, pos, byte, ins in muts:
        pos %= max(len(buf), 1)
        if op == 0 and buf:
            buf[pos] = byte
        elif op == 1:
            del buf[pos:]  # truncate
        else:
            buf[pos:pos] = ins
    try:
        d = decode(bytes(buf))
    except DecodeError:
        return
    # whatever decoded, the HHAE verifies only for the original covered bytes and authenticator
    if d.verify(AUTHS[0]):
        assert d.covered + d.authenticator == orig
