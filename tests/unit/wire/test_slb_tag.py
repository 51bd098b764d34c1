"""The relay tag (DESIGN §5): NVSE 134 with the FA's address/port, optional SLB-HA auth."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.wire import DecodeError, mip, slbtag
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, Authenticator

RRQ = struct.pack("!BBH4s4s4sQ", 1, 0, 1800, bytes(4), bytes([10, 0, 0, 100]), bytes(4), 42)
RRQ += bytes([131, 9]) + b"mn@ex.net"


def test_plain_tag_layout_and_round_trip() -> None:
    tagged = slbtag.encode(RRQ, "10.0.2.2", 40000)
    assert tagged[len(RRQ) :] == bytes.fromhex("86 0e 0000 00007ed9 0001 0a000202 9c40")
    assert slbtag.has_tag(tagged)
    assert slbtag.decode(tagged) == ("10.0.2.2", 40000, RRQ)
    # a Mobile IP decoder sees an ordinary NVSE at the end
    msg = mip.decode(tagged)
    nv = msg.extensions[-1]
    assert isinstance(nv, mip.NvseExt)
    assert (nv.vendor_id, nv.vendor_type) == (32473, 1)


@pytest.mark.parametrize("alg", ["md5-prefix-suffix", ALG_HMAC_MD5])
def test_authenticated_tag(alg: str) -> None:
    key = b"slb-ha-key"
    tagged = slbtag.encode(RRQ, "10.0.2.2", 434, key=key, spi=300, algorithm=alg)
    assert len(tagged) == len(RRQ) + slbtag.AUTH_LEN
    if alg == "md5-prefix-suffix":
        covered = tagged[:-16]
        assert tagged[-16:] == hashlib.md5(key + covered + key).digest()
    assert slbtag.decode(tagged, key, spi=300, algorithm=alg) == ("10.0.2.2", 434, RRQ)
    assert slbtag.decode(tagged, Authenticator(key, alg)) == ("10.0.2.2", 434, RRQ)
    with pytest.raises(DecodeError) as e:  # no SA configured: cannot be checked, refused
        slbtag.decode(tagged)
    assert e.value.reason == "slbtag-unverifiable"
    for bad, reason in [
        (tagged[:-1] + bytes([tagged[-1] ^ 1]), "slbtag-bad-auth"),
        (tagged[:5] + b"\xff" + tagged[6:], "slbtag-bad-auth"),  # payload changed
    ]:
        with pytest.raises(DecodeError) as e:
            slbtag.decode(bad, key, algorithm=alg)
        assert e.value.reason == reason
    with pytest.raises(DecodeError) as e:
        slbtag.decode(tagged, b"other", algorithm=alg)
    assert e.value.reason == "slbtag-bad-auth"
    with pytest.raises(DecodeError) as e:
        slbtag.decode(tagged, key, spi=301, algorithm=alg)
    assert e.value.reason == "slbtag-bad-spi"


def test_missing_or_unauthenticated() -> None:
    with pytest.raises(DecodeError) as e:
        slbtag.decode(RRQ)
    assert e.value.reason == "slbtag-missing"
    with pytest.raises(DecodeError) as e:
        slbtag.decode(slbtag.encode(RRQ, "1.2.3.4", 5), b"key")
    assert e.value.reason == "slbtag-unauthenticated"
    with pytest.raises(DecodeError):
        slbtag.decode(slbtag.encode(RRQ, "1.2.3.4", 5, vendor_id=9))
    assert slbtag.decode(slbtag.encode(RRQ, "1.2.3.4", 5, vendor_id=9), vendor_id=9)[0] == "1.2.3.4"
    assert not slbtag.has_tag(b"") and not slbtag.has_tag(RRQ)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_random_bytes_decode_error_only(raw: bytes, keyed: bool) -> None:
    try:
        slbtag.decode(raw, b"k" if keyed else None)
    except DecodeError:
        pass


@settings(max_examples=1000, deadline=None)
@given(
    st.binary(max_size=60),
    st.builds(lambda b: ".".join(map(str, b)), st.binary(min_size=4, max_size=4)),
    st.integers(0, 65535),
    st.none() | st.binary(min_size=1, max_size=20),
)
def test_round_trip(payload: bytes, addr: str, port: int, key: bytes | None) -> None:
    tagged = slbtag.encode(payload, addr, port, key=key, spi=256)
    assert slbtag.decode(tagged, key) == (addr, port, payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 65535), st.none() | st.binary(min_size=1, max_size=8))
def test_fast_encoder_same_bytes(payload: bytes, port: int, key: bytes | None) -> None:
    enc = slbtag.encoder(vendor_id=77, key=key, spi=999)
    assert enc(payload, "10.0.2.2", port) == slbtag.encode(
        payload, "10.0.2.2", port, vendor_id=77, key=key, spi=999
    )


def _reference_decode(data: bytes, key: bytes | None, vendor_id: int) -> object:
    """The tag rules of the module docstring, written plainly: an authenticated tag at
    the end first, then a plain one; (address, port, payload) or the DecodeError reason."""
    n = len(data)
    hdr = struct.Struct("!BBHIH")
    if n >= slbtag.AUTH_LEN and data[n - 36 : n - 26] == hdr.pack(134, 34, 0, vendor_id, 2):
        if key is None:
            return "slbtag-unverifiable"
        if not Authenticator(key, ALG_PREFIX_SUFFIX).verify(data[: n - 16], data[n - 16 :]):
            return "slbtag-bad-auth"
        a, p = struct.unpack_from("!4sH", data, n - 26)
        return ".".join(map(str, a)), p, data[: n - 36]
    if n >= slbtag.PLAIN_LEN and data[n - 16 : n - 6] == hdr.pack(134, 14, 0, vendor_id, 1):
        if key is not None:
            return "slbtag-unauthenticated"
        a, p = struct.unpack_from("!4sH", data, n - 6)
        return ".".join(map(str, a)), p, data[: n - 16]
    return "slbtag-missing"


def _outcome(data: bytes, key: bytes | None, vendor_id: int) -> object:
    try:
        return slbtag.decode(data, key, vendor_id=vendor_id)
    except DecodeError as e:
        return e.reason


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=50),
            st.binary(min_size=4, max_size=4),
            st.integers(0, 65535),
            st.sampled_from([slbtag.DEFAULT_VENDOR_ID, 9]),  # the tag's vendor id
            st.sampled_from([slbtag.DEFAULT_VENDOR_ID, 9]),  # the one decode asks for
            st.none() | st.just(b"slb-key"),  # the tag's key
            st.none() | st.just(b"slb-key"),  # decode's key
            st.integers(0, 40),  # bytes cut from the end (a broken tag)
        ),
        min_size=1,
        max_size=8,
    )
)
def test_decode_matches_the_plain_rules_with_a_warm_or_cold_cache(
    cases: list[tuple[bytes, bytes, int, int, int, bytes | None, bytes | None, int]],
) -> None:
    """Tags seen before are answered from the cache of origins: the answer is the same
    as the plain rules give, for the vendor id and key decode is asked with."""
    slbtag._ORIGINS.clear()
    for _ in range(2):  # cold, then warm
        for payload, a, port, vid, want_vid, key, dkey, cut in cases:
            addr = ".".join(map(str, a))
            data = slbtag.encode(payload, addr, port, vendor_id=vid, key=key)
            data = data[: len(data) - cut]
            assert _outcome(data, dkey, want_vid) == _reference_decode(data, dkey, want_vid)
            assert slbtag.has_tag(data, want_vid) == (
                _reference_decode(data, b"k", want_vid) != "slbtag-missing"
                or _reference_decode(data, None, want_vid) != "slbtag-missing"
            )
