"""The one-pass record paths of the sync hot paths (``wire.sync.pack_binding(s)`` and
``decode_bindings``) against the reference codec (``encode_record`` of
``record_from_binding``; ``binding_from_record`` of ``decode_records``), and the C module's
implementations against the Python ones: byte for byte on packing, field for field on
decoding, and the same DecodeError (reason and detail) on every malformed input."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.core.binding import Binding
from mobileha.core.sync.records import (
    ENCAPS,
    binding_from_record,
    bound_revocation,
    record_from_binding,
    revocation_fields,
)
from mobileha.wire import DecodeError
from mobileha.wire import sync as ws
from mobileha.wire.sync import (
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    REC_REVOCATION,
    REC_REVOCATION_I,
    REC_SA,
    BindingRecord,
    RecordSa,
    decode_bindings_py,
    decode_records,
    encode_record,
    pack_binding_py,
    pack_bindings_py,
    pack_chunk_py,
)
from tests.property.test_sync_props import record_sa, records
from tests.property.test_sync_records import bindings

N = 100 if os.environ.get("MOBILEHA_FAST") else 1000
SETTINGS = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
needs_c = pytest.mark.skipif(not ws.C_RECORDS, reason="mobileha._slbio is not built")
HA = "10.0.0.100"

nonces = st.one_of(st.none(), st.integers(0, 2**32 - 1))
rec_flags = st.sampled_from([0, REC_DELETE, REC_DYNAMIC, REC_DELETE | REC_DYNAMIC])


def _c_decode(data: bytes, offset: int, count: int, now: float) -> Any:
    return ws.decode_bindings_c(data, offset, count, Binding, HA, now, ENCAPS)


def _py_decode(data: bytes, offset: int, count: int, now: float) -> Any:
    return decode_bindings_py(data, offset, count, Binding, HA, now, ENCAPS)


def _outcome(fn: Any, *args: Any) -> Any:
    """The result of ``fn(*args)``, or ("error", type, reason, str) of its DecodeError."""
    try:
        return fn(*args)
    except DecodeError as e:
        return ("error", type(e), e.reason, str(e))


def _reference(data: bytes, offset: int, count: int, now: float) -> Any:
    """What the bound decoders must give: binding_from_record of decode_records."""
    recs, end = decode_records(data, offset, count)
    out = []
    for r in recs:
        b = binding_from_record(r, HA, now)
        out.append((b, r.rec_flags, r.nonce, r.sa, r.revocation_ts))
    return out, end


def _settled(result: Any) -> Any:
    """A decode result with the RFC 3543 state set as the merge sets it (bound_revocation),
    or the error unchanged."""
    if result[0] != "error":
        for b, rec_flags, _, _, rev_ts in result[0]:
            if rev_ts is not None:
                bound_revocation(b, rec_flags, rev_ts)
    return result


@SETTINGS
@given(bn=bindings(), flags=rec_flags, nonce=nonces, sa=st.one_of(st.none(), record_sa))
def test_pack_equals_the_reference_in_python_and_c(
    bn: tuple[Binding, float], flags: int, nonce: int | None, sa: RecordSa | None
) -> None:
    b, now = bn
    ref = encode_record(
        record_from_binding(
            b, now, delete=bool(flags & REC_DELETE), dynamic=bool(flags & REC_DYNAMIC),
            nonce=nonce, sa=sa,
        )
    )  # fmt: skip
    block = None if sa is None else sa.encode()
    assert pack_binding_py(b, now, flags, nonce, block, revocation_fields) == ref
    assert pack_bindings_py([b], now, [flags], [nonce], [block], revocation_fields) == [ref]
    if ws.C_RECORDS:
        assert ws.pack_binding(b, now, flags, nonce, block, revocation_fields) == ref
        assert ws.pack_bindings([b], now, [flags], [nonce], [block], revocation_fields) == [ref]


@needs_c
@SETTINGS
@given(
    items=st.lists(st.tuples(bindings(), rec_flags, nonces), max_size=6),
    now=st.floats(0, 1e7, allow_nan=False),
    with_flags=st.booleans(),
    with_nonces=st.booleans(),
)
def test_batch_pack_c_equals_python(
    items: list[tuple[tuple[Binding, float], int, int | None]],
    now: float,
    with_flags: bool,
    with_nonces: bool,
) -> None:
    bs = [bn[0] for bn, _, _ in items]
    flags = [f for _, f, _ in items] if with_flags else None
    ns = [n for _, _, n in items] if with_nonces else None
    blocks = [None] * len(bs)
    py = pack_bindings_py(bs, now, flags, ns, blocks, revocation_fields)
    assert ws.pack_bindings(bs, now, flags, ns, blocks, revocation_fields) == py
    assert ws.pack_bindings(bs, now, None, None, None, revocation_fields) == pack_bindings_py(
        bs, now, None, None, None, revocation_fields
    )


def _chunk_reference(records: list[bytes], limit: int) -> tuple[bytes, int]:
    """The most leading records whose sizes add up to at most ``limit``, at least one."""
    k, used = 0, 0
    for rec in records:
        if k and used + len(rec) > limit:
            break
        k += 1
        used += len(rec)
    return b"".join(records[:k]), k


@SETTINGS
@given(
    items=st.lists(
        st.tuples(bindings(), rec_flags, nonces, st.one_of(st.none(), record_sa)), max_size=8
    ),
    now=st.floats(0, 1e7, allow_nan=False),
    limit=st.integers(0, 700),
    with_flags=st.booleans(),
    with_nonces=st.booleans(),
)
def test_chunk_pack_equals_the_joined_records_that_fit_in_python_and_c(
    items: list[tuple[tuple[Binding, float], int, int | None, RecordSa | None]],
    now: float,
    limit: int,
    with_flags: bool,
    with_nonces: bool,
) -> None:
    """One BI Reply's records: the leading records that fit in ``limit`` (at least one),
    joined; C = Python = the records of pack_bindings_py cut there."""
    bs = [bn[0] for bn, _, _, _ in items]
    flags = [f for _, f, _, _ in items] if with_flags else None
    ns = [n for _, _, n, _ in items] if with_nonces else None
    blocks = [None if sa is None else sa.encode() for _, _, _, sa in items]
    ref = _chunk_reference(pack_bindings_py(bs, now, flags, ns, blocks, revocation_fields), limit)
    assert pack_chunk_py(bs, now, flags, ns, blocks, revocation_fields, limit) == ref
    if ws.C_RECORDS:
        assert ws.pack_chunk(bs, now, flags, ns, blocks, revocation_fields, limit) == ref


def test_chunk_pack_edges_are_the_same_in_python_and_c() -> None:
    small = Binding("10.1.1.1", "192.0.2.1", HA, 60, 60.0, 1, 0)
    big = Binding("10.1.1.2", "192.0.2.1", HA, 60, 60.0, 2, 0, nai="n" * 200)
    bad = Binding("10.1.1.3", "192.0.2.1", HA, 60, 60.0, 3, 0, nai="n" * 256)
    one = pack_binding_py(small, 0.0, 0, None, None, revocation_fields)
    impls = [pack_chunk_py] + ([ws.pack_chunk] if ws.C_RECORDS else [])
    for pack in impls:
        assert pack([], 0.0, None, None, None, revocation_fields, 100) == (b"", 0)
        # a first record larger than the limit goes alone
        assert pack([big, small], 0.0, None, None, None, revocation_fields, 50)[1] == 1
        # a record is not even built once no record can fit
        assert pack([small, bad], 0.0, None, None, None, revocation_fields, len(one) + 33) == (
            one,
            1,
        )
        with pytest.raises(ValueError, match="NAI longer than 255 bytes"):
            pack([small, bad], 0.0, None, None, None, revocation_fields, 1000)
        with pytest.raises(ValueError, match="nonces"):
            pack([small], 0.0, None, [1, 2], None, revocation_fields, 100)
        with pytest.raises(ValueError, match="limit"):
            pack([small], 0.0, None, None, None, revocation_fields, -1)


def test_batch_pack_columns_must_match_the_bindings() -> None:
    b = Binding("10.1.1.1", "192.0.2.1", HA, 60, 60.0, 1, 0)
    impls = [pack_bindings_py] + ([ws.pack_bindings] if ws.C_RECORDS else [])
    for pack in impls:
        with pytest.raises(ValueError, match="nonces"):
            pack([b, b], 0.0, None, [1], None, revocation_fields)


def test_nai_too_long_is_refused_by_both() -> None:
    b = Binding("10.1.1.1", "192.0.2.1", HA, 60, 60.0, 1, 0, nai="n" * 256)
    impls = [pack_binding_py] + ([ws.pack_binding] if ws.C_RECORDS else [])
    for pack in impls:
        with pytest.raises(ValueError, match="NAI longer than 255 bytes"):
            pack(b, 0.0, 0, None, None, revocation_fields)


@SETTINGS
@given(recs=st.lists(records, min_size=1, max_size=4), now=st.floats(0, 1e7, allow_nan=False))
def test_decode_equals_the_reference_in_python_and_c(recs: list[BindingRecord], now: float) -> None:
    """Every record flag (delete, dynamic, GRE key, nonce, revocation with and without I,
    SA), NAI absent or present, unknown trailing bytes."""
    data = b"\xaa" + b"".join(encode_record(r) for r in recs)
    want = _reference(data, 1, len(recs), now)
    assert _settled(_py_decode(data, 1, len(recs), now)) == want
    if ws.C_RECORDS:
        c = _settled(_c_decode(data, 1, len(recs), now))
        assert c == want
        assert [type(e[0].encap) for e in c[0]] == [type(e[0].encap) for e in want[0]]


def _mutate(data: bytes, how: int, at: int, value: int) -> bytes:
    if not data:
        return bytes([value])
    at %= len(data)
    if how == 0:  # flip a byte
        return data[:at] + bytes([value]) + data[at + 1 :]
    if how == 1:  # truncate
        return data[:at]
    return data[:at] + bytes([value]) + data[at:]  # insert


@SETTINGS
@given(
    recs=st.lists(records, min_size=1, max_size=3),
    muts=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255)), max_size=3
    ),
    extra_count=st.integers(0, 2),
)
def test_malformed_records_raise_the_same_decode_error(
    recs: list[BindingRecord], muts: list[tuple[int, int, int]], extra_count: int
) -> None:
    data = b"".join(encode_record(r) for r in recs)
    for how, at, value in muts:
        data = _mutate(data, how, at, value)
    count = len(recs) + extra_count
    ref = _outcome(_reference, data, 0, count, 5.0)
    assert _settled(_outcome(_py_decode, data, 0, count, 5.0)) == ref
    if ws.C_RECORDS:
        assert _settled(_outcome(_c_decode, data, 0, count, 5.0)) == ref


# One hand-made malformed record per DecodeError of the record decoder.
_GOOD = encode_record(BindingRecord("10.1.1.1", "192.0.2.1", "192.0.2.2", 7, 60, 30, nai="mn@x"))
_CASES = {
    "truncated fixed part": (_GOOD[:20], "short"),
    "length below fixed part + NAI": (b"\x00\x21" + _GOOD[2:], "bad-length"),
    "length past the data": (b"\x01\x00" + _GOOD[2:], "bad-length"),
    "encapsulation": (_GOOD[:32] + b"\x05" + _GOOD[33:], "bad-encap"),
    "NAI not UTF-8": (_GOOD[:34] + b"\xff" + _GOOD[35:], "bad-nai"),
    "nonce missing": (_GOOD[:3] + bytes([REC_NONCE]) + _GOOD[4:], "bad-length"),
    "timestamp missing": (_GOOD[:3] + bytes([REC_REVOCATION]) + _GOOD[4:], "bad-length"),
    "SA block missing": (_GOOD[:3] + bytes([REC_SA]) + _GOOD[4:], "bad-length"),
}


def _with_sa(n: int, alg: int) -> bytes:
    block = bytes([n]) + bytes(4) + bytes([alg]) + bytes(21) + bytes(max(0, n - 27))
    body = _GOOD[34:] + block
    return (34 + len(body)).to_bytes(2, "big") + bytes([0, REC_SA]) + _GOOD[4:34] + body


_CASES["SA block length not in 16-byte blocks"] = (_with_sa(27 + 15, 1), "bad-length")
_CASES["SA block without a key"] = (_with_sa(27, 1), "bad-length")
_CASES["SA algorithm"] = (_with_sa(27 + 16, 2), "bad-sa")


@pytest.mark.parametrize("name", sorted(_CASES))
def test_every_decode_error_is_the_same(name: str) -> None:
    data, reason = _CASES[name]
    ref = _outcome(_reference, data, 0, 1, 0.0)
    assert ref[0] == "error" and ref[2] == reason
    assert _outcome(_py_decode, data, 0, 1, 0.0) == ref
    if ws.C_RECORDS:
        assert _outcome(_c_decode, data, 0, 1, 0.0) == ref


def test_every_record_flag_round_trips_through_both() -> None:
    sa = RecordSa(9, 1, 0x80, 7, 3600, bytes(range(16)), bytes(32))
    rec = BindingRecord(
        "10.1.1.1", "192.0.2.1", "0.0.0.0", 2**63 + 5, 0xFFFF, 0xFFFF, 0x82,
        REC_DELETE | REC_DYNAMIC | REC_GRE_KEY | REC_REVOCATION_I, 0, 47, None, b"xy",
        nonce=77, sa=sa, revocation_ts=123,
    )  # fmt: skip
    data = encode_record(rec)
    impls = [_py_decode] + ([_c_decode] if ws.C_RECORDS else [])
    for decode in impls:
        [(b, flags, nonce, got_sa, ts)], end = decode(data, 0, 1, 0.0)
        assert end == len(data)
        assert flags == rec.rec_flags | REC_NONCE | REC_SA | REC_REVOCATION
        assert (nonce, got_sa, ts) == (77, sa, 123)
        assert (b.gre_key, b.nai, b.src_addr, b.expires) == (0, None, "", float("inf"))


# --- the C decoder filling a slots dataclass directly (wire.sync.slot_layout) ------------


def test_binding_has_a_slot_layout_with_its_defaults() -> None:
    layout = ws.slot_layout(Binding)
    assert layout is not None
    args, rest = layout
    assert [d.__name__ for d in args] == [
        "home_addr", "care_of", "ha_addr", "lifetime", "expires", "ident", "flags", "encap",
        "gre_key", "nai", "src_addr",
    ]  # fmt: skip
    assert [(d.__name__, v) for d, v in rest] == [("src_port", 434), ("revocation", 0)]


# the fields decode_bindings hands to its factory, in order
_ARGS = [
    ("home_addr", str), ("care_of", str), ("ha_addr", str), ("lifetime", int),
    ("expires", float), ("ident", int), ("flags", int), ("encap", Any),
    ("gre_key", int | None), ("nai", str | None), ("src_addr", str),
]  # fmt: skip


def _post_init(self: Any) -> None:
    self.seen = True


# a factory whose __init__ does more than store (it must be called), one with a
# default_factory, one without slots
_Checked = dataclasses.make_dataclass(
    "_Checked", [*_ARGS, ("seen", bool, False)], slots=True,
    namespace={"__post_init__": _post_init},
)  # fmt: skip
_Listy = dataclasses.make_dataclass(
    "_Listy", [*_ARGS, ("extra", list, dataclasses.field(default_factory=list))], slots=True
)
_NoSlots = dataclasses.make_dataclass("_NoSlots", [("a", int)])


def test_other_factories_are_called() -> None:
    assert ws.slot_layout(_Checked) is None  # __post_init__
    assert ws.slot_layout(_Listy) is None  # default_factory
    assert ws.slot_layout(_NoSlots) is None
    assert ws.slot_layout(lambda *a: a) is None
    b = Binding("10.1.1.1", "192.0.2.1", HA, 60, 60.0, 1, 0, nai="mn@x")
    data = pack_binding_py(b, 0.0, 0, None, None, revocation_fields)
    impls = [decode_bindings_py] + ([ws.decode_bindings_c] if ws.C_RECORDS else [])
    for decode in impls:
        [(got, *_)], _ = decode(data, 0, 1, _Checked, HA, 0.0, ENCAPS)
        assert got.seen and got.nai == "mn@x"
        [(as_tuple, *_)], _ = decode(data, 0, 1, lambda *a: a, HA, 0.0, ENCAPS)
        assert as_tuple[0] == "10.1.1.1" and len(as_tuple) == ws.FACTORY_ARGS


@needs_c
def test_the_c_decoder_refuses_a_layout_that_is_not_the_factorys() -> None:
    from mobileha import _slbio

    b = Binding("10.1.1.1", "192.0.2.1", HA, 60, 60.0, 1, 0)
    data = pack_binding_py(b, 0.0, 0, None, None, revocation_fields)
    good = ws.slot_layout(Binding)
    assert good is not None
    bad_layouts = [
        (good[0][:10], good[1]),  # too few argument slots
        ((Binding.__dict__["lifetime"],) * 10 + (int,), good[1]),  # not a descriptor
        good,  # for another factory (below)
    ]
    for layout, factory in zip(bad_layouts, [Binding, Binding, _Checked], strict=True):
        with pytest.raises(TypeError, match="slot layout"):
            _slbio.sync_decode(data, 0, 1, factory, HA, 0.0, ENCAPS, RecordSa, DecodeError, layout)
