"""The one sync record encoder (``core.sync.records.pack_record``, what every BU and BI
Reply carries) against the reference (``wire.sync.encode_record`` of
``record_from_binding``), and the production decoding (``wire.sync.decode_records`` then
``binding_from_record``, what the merge applies) against the binding it came from, for any
binding."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mobileha.core.binding import Binding, Encap
from mobileha.core.revocation import negotiated_state
from mobileha.core.sync import binding_from_record, pack_record, record_from_binding
from mobileha.core.sync.merge import Merger
from mobileha.core.sync.records import ENCAPS
from mobileha.wire.sync import (
    LIFETIME_INFINITE,
    REC_DELETE,
    REC_DYNAMIC,
    decode_bindings,
    decode_records,
    encode_record,
)

ADDR = st.builds(lambda b: ".".join(str(x) for x in b), st.binary(min_size=4, max_size=4))
NAI = st.one_of(st.none(), st.text(min_size=1, max_size=60).filter(lambda s: len(s.encode()) < 256))


@st.composite
def bindings(draw: st.DrawFn) -> tuple[Binding, float]:
    now = draw(st.floats(0, 1e7, allow_nan=False))
    lifetime = draw(st.integers(0, 0xFFFF))
    expires = draw(
        st.one_of(
            st.just(math.inf),
            st.floats(-100, 70_000, allow_nan=False).map(lambda d: now + d),
        )
    )
    b = Binding(
        home_addr=draw(ADDR),
        care_of=draw(ADDR),
        ha_addr=draw(ADDR),
        lifetime=lifetime,
        expires=expires,
        ident=draw(st.integers(0, 2**64 - 1)),
        flags=draw(st.integers(0, 255)),
        encap=draw(st.sampled_from(list(Encap))),
        gre_key=draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
        nai=draw(NAI),
        src_addr=draw(st.one_of(st.just(""), ADDR.filter(lambda a: a != "0.0.0.0"))),
        revocation=draw(
            st.one_of(
                st.just(0),
                st.builds(negotiated_state, st.integers(0, 2**32 - 1), st.booleans()),
            )
        ),
    )
    return b, now


@given(
    bn=bindings(),
    delete=st.booleans(),
    dynamic=st.booleans(),
    nonce=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)
def test_production_encoder_equals_the_reference(
    bn: tuple[Binding, float], delete: bool, dynamic: bool, nonce: int | None
) -> None:
    b, now = bn
    flags = (REC_DELETE if delete else 0) | (REC_DYNAMIC if dynamic else 0)
    ref = record_from_binding(b, now, delete=delete, dynamic=dynamic, nonce=nonce)
    packed = pack_record(b, now, flags, nonce)
    assert packed == encode_record(ref)
    [back], end = decode_records(packed, 0, 1)
    assert end == len(packed) and back == ref


@given(bn=bindings(), later=st.floats(0, 1e6, allow_nan=False))
def test_production_decoder_gives_back_the_binding(bn: tuple[Binding, float], later: float) -> None:
    """The receiver's binding: the same but for the deadline, which is its own clock plus
    the remaining lifetime rounded up to whole seconds (infinite stays infinite)."""
    b, now = bn
    [rec], _ = decode_records(pack_record(b, now), 0, 1)
    got = binding_from_record(rec, b.ha_addr, later)
    if b.lifetime >= LIFETIME_INFINITE or b.expires == math.inf:
        expires = math.inf
    else:
        expires = later + max(0, min(LIFETIME_INFINITE - 1, math.ceil(b.expires - now)))
    assert got.expires == expires
    assert (
        got.home_addr, got.care_of, got.ha_addr, got.lifetime, got.ident, got.flags, got.encap,
        got.gre_key, got.nai, got.src_addr, got.revocation,
    ) == (
        b.home_addr, b.care_of, b.ha_addr, b.lifetime, b.ident, b.flags, b.encap,
        b.gre_key, b.nai, b.src_addr, b.revocation,
    )  # fmt: skip


@given(bn=bindings(), dynamic=st.booleans(), nonce=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_the_merge_applies_exactly_the_decoded_binding(
    bn: tuple[Binding, float], dynamic: bool, nonce: int | None
) -> None:
    """What ``Merger.apply`` hands to the home agent is ``binding_from_record`` of the
    record (an empty table, nothing pending: the record is new); revocation included."""
    from mobileha.core.sync import ApplyBindings, Counters, DeleteBinding, SyncConfig
    from mobileha.core.sync.channel import Channel
    from mobileha.core.sync.sender import BuSender
    from mobileha.wire.auth import Authenticator

    b, now = bn
    cfg = SyncConfig("10.0.0.1", "10.0.0.100", 1, Authenticator(b"k" * 16, "hmac-md5"))
    c = Counters()
    sender = BuSender(cfg, c, Channel(cfg, c, unix_offset=0.0, nonce_of=None, now=0.0))
    merge = Merger(cfg, c, sender, lambda k: None, None)
    packed = pack_record(b, now, REC_DYNAMIC if dynamic else 0, nonce)
    [rec], _ = decode_records(packed, 0, 1)
    entries, _ = decode_bindings(packed, 0, 1, Binding, "10.0.0.100", now, ENCAPS)
    out: list[object] = []
    merge.apply(entries, now, False, out)
    if rec.remaining == 0 and rec.lifetime < LIFETIME_INFINITE:
        assert out == []  # expired in flight: a deletion of nothing
        return
    want = binding_from_record(rec, "10.0.0.100", now)
    assert out == [ApplyBindings([(want, dynamic, nonce, None)])]
    assert not any(isinstance(x, DeleteBinding) for x in out)


@given(
    rounds=st.lists(
        st.lists(
            st.tuples(
                bindings(),
                st.one_of(st.none(), st.integers(0, 2**32 - 1)),
                st.one_of(st.none(), st.integers(1, 40)),
            ),
            min_size=1,
            max_size=60,
        ),
        min_size=1,
        max_size=6,
    ),
    limit=st.integers(0, 1400),
    flags=st.booleans(),
)
def test_a_bi_reply_packs_as_if_every_offered_binding_had_its_extras(
    rounds: list[list[tuple[tuple[Binding, float], int | None, int | None]]],
    limit: int,
    flags: bool,
) -> None:
    """``Channel.pack_upto`` looks up nonces and SA blocks for the bindings it packs (the
    last BI Reply's count and one more first): the chunk is the one packed with the extras
    of every binding offered, round after round, whatever the records' sizes; it looks up
    the last chunk's count and one more, and every binding offered only when those fit."""
    from mobileha.core.security import MobilitySA
    from mobileha.core.sync import Counters, SyncConfig
    from mobileha.core.sync.channel import Channel
    from mobileha.core.sync.records import pack_records_upto
    from mobileha.wire.auth import Authenticator

    cfg = SyncConfig("10.0.0.1", "10.0.0.100", 1, Authenticator(b"k" * 16, "hmac-md5"))
    nonces: dict[int, int | None] = {}
    sas: dict[int, MobilitySA | None] = {}
    looked: list[int] = []
    last = 0  # the count of the last chunk

    def nonce_of(b: Binding) -> int | None:
        looked.append(id(b))
        return nonces[id(b)]

    ch = Channel(
        cfg,
        Counters(),
        unix_offset=0.0,
        nonce_of=nonce_of,
        now=0.0,
        sa_of=lambda b: sas[id(b)],
        sa_secret=b"s" * 16,
        random_bytes=lambda n: b"\x01" * n,
    )
    ref = Channel(
        cfg,
        Counters(),
        unix_offset=0.0,
        nonce_of=lambda b: nonces[id(b)],
        now=0.0,
        sa_of=lambda b: sas[id(b)],
        sa_secret=b"s" * 16,
        random_bytes=lambda n: b"\x01" * n,
    )
    for offered in rounds:
        bs = []
        for (b, _), nonce, key_len in offered:
            nonces[id(b)] = nonce
            sas[id(b)] = None if key_len is None else MobilitySA(300, b"k" * key_len, nai=b.nai)
            bs.append(b)
        now = offered[0][0][1]
        fl = [REC_DYNAMIC * (i % 2) for i in range(len(bs))] if flags else None
        looked.clear()
        est = last + 1
        got = ch.pack_upto(bs, now, fl, limit)
        want = pack_records_upto(bs, now, fl, *ref._extras(bs, fl), limit)
        assert got == want
        if est < len(bs) and got[1] < est:
            assert len(looked) == est
        else:
            assert len(looked) == (est if est < len(bs) else 0) + len(bs)
        last = got[1]
