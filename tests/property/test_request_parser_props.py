"""The one request parser of wire.mip against the full decoder and against the C reader.

* parse_request records what the full decoder (objects) finds: the first NAI, the MN's
  authenticators, the last FA-HA, the first challenge, the GRE key, the CVSEs;
* mobileha._slbio.leading_nai (the HA-SLB's C reader) equals wire.mip.leading_nai on random
  and mutated requests, and when it finds an NAI it is the one parse_request records.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError
from mobileha.wire.mip import (
    EXT_FA_HA,
    EXT_GEN_AUTH,
    EXT_MN_FA,
    EXT_MN_HA,
    GEN_AUTH_MN_AAA,
    AuthExt,
    ChallengeExt,
    CvseExt,
    GenAuthExt,
    GreKeyExt,
    NaiExt,
    NvseExt,
    RegistrationRequest,
    UnknownExt,
    gre_key_cvse,
    leading_nai,
    parse_request,
)

try:
    from mobileha import _slbio
except ImportError:  # pragma: no cover - depends on the build
    _slbio = None  # type: ignore[assignment]

EXTENSION = st.one_of(
    st.builds(NaiExt, st.text(max_size=12)),
    st.builds(
        AuthExt,
        st.sampled_from([EXT_MN_HA, EXT_MN_FA, EXT_FA_HA]),
        st.integers(256, 300),
        st.binary(min_size=16, max_size=16),
    ),
    st.builds(
        GenAuthExt,
        st.sampled_from([GEN_AUTH_MN_AAA, 2]),
        st.integers(0, 300),
        st.binary(min_size=16, max_size=16),
    ),
    st.builds(ChallengeExt, st.binary(min_size=4, max_size=8)),
    st.builds(GreKeyExt, st.integers(0, 2**32 - 1)),
    st.builds(gre_key_cvse, st.integers(0, 2**32 - 1)),
    st.builds(CvseExt, st.integers(0, 9999), st.integers(0, 0xFFFF), st.binary(max_size=6)),
    st.builds(NvseExt, st.integers(0, 9999), st.integers(0, 0xFFFF), st.binary(max_size=6)),
    st.builds(UnknownExt, st.integers(140, 255), st.binary(max_size=6)),
)
REQUEST = st.builds(
    RegistrationRequest,
    st.lists(EXTENSION, max_size=7),
    lifetime=st.integers(0, 0xFFFF),
    ident=st.integers(0, 2**64 - 1),
)


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b[: max(0, len(b) - cut)])


@settings(max_examples=400, deadline=None)
@given(REQUEST)
def test_parse_records_what_the_full_decoder_finds(req: RegistrationRequest) -> None:
    wire = req.encode()
    full = RegistrationRequest.decode(wire)
    p = parse_request(wire)
    assert p.error is None and full.parsed is not None
    offs = full.ext_offsets
    exts = full.extensions

    def first(pred: object) -> int:
        return next((o for o, e in zip(offs, exts) if pred(e)), -1)  # type: ignore[operator]

    def last(pred: object) -> int:
        return max((o for o, e in zip(offs, exts) if pred(e)), default=-1)  # type: ignore[operator]

    def is_nai(e: object) -> bool:
        return isinstance(e, NaiExt)

    def is_mnha(e: object) -> bool:
        return isinstance(e, AuthExt) and e.ext_type == EXT_MN_HA

    def is_aaa(e: object) -> bool:
        return isinstance(e, GenAuthExt) and e.subtype == GEN_AUTH_MN_AAA

    def is_faha(e: object) -> bool:
        return isinstance(e, AuthExt) and e.ext_type == EXT_FA_HA

    nai = first(is_nai)
    assert p.nai_s == max(nai, 0)
    assert p.nai == (full.nai or None)
    assert p.mnha == first(is_mnha)
    assert p.aaa == first(is_aaa)
    auths = [o for o in (p.mnha, p.aaa) if o >= 0]
    assert p.auth == (min(auths) if auths else -1)
    assert p.auth_type == (0 if not auths else EXT_MN_HA if p.auth == p.mnha else EXT_GEN_AUTH)
    assert p.faha == last(is_faha)
    assert p.n_faha == sum(1 for e in exts if is_faha(e))
    ch = next((e for e in exts if isinstance(e, ChallengeExt)), None)
    assert p.challenge == (ch.challenge if ch is not None else None)
    end_of = dict(zip(offs, [*offs[1:], len(wire)][: len(offs)], strict=True))
    last_auth = last(lambda e: is_mnha(e) or is_aaa(e))
    assert p.mn_auth_end == (end_of[last_auth] if last_auth >= 0 else 0)
    keys = [
        (o, e.key if isinstance(e, GreKeyExt) else e.gre_key)
        for o, e in zip(offs, exts)
        if isinstance(e, GreKeyExt) or (isinstance(e, CvseExt) and e.gre_key is not None)
    ]
    assert (p.gre_at, p.gre_key) == (keys[-1] if keys else (-1, None))
    unknown = first(lambda e: isinstance(e, CvseExt) and e.gre_key is None)
    assert p.unknown_cvse == unknown
    for off in offs:  # an authenticator covers exactly what precedes it (RFC 5944 §3.5.1)
        want = p.auth_type if 0 <= off < p.auth else EXT_FA_HA if off < p.faha else 0
        assert p.protected_by(off) == want


@settings(max_examples=1500, deadline=None)
@given(
    REQUEST,
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
    st.integers(0, 12),
    st.booleans(),
)
def test_leading_nai_c_equals_python_and_the_parse(
    req: RegistrationRequest, edits: list[tuple[int, int]], cut: int, nai_first: bool
) -> None:
    if nai_first:
        req.extensions.insert(0, NaiExt("mn@example.net"))
    data = _mutate(req.encode(), edits, cut)
    py = leading_nai(data)
    if _slbio is not None:
        assert _slbio.leading_nai(data) == py
    if py is not None:
        assert parse_request(data).nai == py


@pytest.mark.skipif(_slbio is None, reason="mobileha._slbio is not built")
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_leading_nai_c_equals_python_on_random_bytes(tail: bytes) -> None:
    for data in (tail, b"\x01" + bytes(23) + tail, b"\x01" + bytes(23) + b"\x83" + tail):
        assert _slbio.leading_nai(data) == leading_nai(data)
        try:
            p = parse_request(data)
        except DecodeError:
            assert leading_nai(data) is None
            continue
        if leading_nai(data) is not None:
            assert p.nai == leading_nai(data)
