"""Golden vectors for the Mobile IP authenticators (P§1.6 worked example) and ID helpers."""

import hashlib
import hmac

import pytest

from mobileha.wire.auth import (
    ALG_HMAC_MD5,
    ALG_PREFIX_SUFFIX,
    Authenticator,
    chap_radius_fields,
    ident_seconds,
    mismatch_reply_ident,
    mn_aaa_chap_authenticator,
    nonce_reply_ident,
    ntp_identification,
    timestamp_acceptable,
)

KEY = bytes(range(16))
COVERED = bytes.fromhex(
    "01020708000000000a000064c0000201e6b5a4c000000001"
    "831075736572406578616d706c652e636f6d"
    "201400000100"
)


def test_p16_worked_example_hmac_md5() -> None:
    assert len(COVERED) == 48
    auth = Authenticator(KEY, ALG_HMAC_MD5)
    assert auth.compute(COVERED).hex() == "a33968a464c70adcb36653081a69b50b"
    assert auth.verify(COVERED, bytes.fromhex("a33968a464c70adcb36653081a69b50b"))
    assert not auth.verify(COVERED, bytes(16))


def test_p16_worked_example_prefix_suffix() -> None:
    auth = Authenticator(KEY, ALG_PREFIX_SUFFIX)
    assert auth.compute(COVERED).hex() == "0a92c46f1b3679b2cdab691cd0692b2c"
    # and again: the pre-keyed object is reusable
    assert auth.compute(COVERED).hex() == "0a92c46f1b3679b2cdab691cd0692b2c"


def test_chap_style_matches_radius_chap() -> None:
    challenge = bytes(range(1, 9))
    pre = b"\x01\x02" + bytes(30)
    key = b"secret"
    ident, chap_ch = chap_radius_fields(challenge, pre)
    assert ident == 1
    assert chap_ch == hashlib.md5(pre).digest() + challenge  # short challenge used as is
    expected = hashlib.md5(bytes([ident]) + key + chap_ch).digest()
    assert mn_aaa_chap_authenticator(key, challenge, pre) == expected
    long_ch = bytes(300)
    assert chap_radius_fields(long_ch, pre)[1][16:] == long_ch[-237:]


def test_identification_helpers() -> None:
    ident = ntp_identification(1_700_000_000.5, low=0x1234)
    assert ident_seconds(ident) == 1_700_000_000 + 2208988800
    assert ident & 0xFFFFFFFF == 0x1234
    assert timestamp_acceptable(ident, None, 1_700_000_003, 7)
    assert not timestamp_acceptable(ident, None, 1_700_000_010, 7)
    assert not timestamp_acceptable(ident, ident, 1_700_000_000, 7)
    r = mismatch_reply_ident(ident, 1_700_000_100)
    assert r & 0xFFFFFFFF == 0x1234 and ident_seconds(r) == 1_700_000_100 + 2208988800
    assert nonce_reply_ident(ident, 0xABCDEF01) == (0xABCDEF01 << 32) | 0x1234
    assert hmac.compare_digest(b"a", b"a")


def test_hide_key_golden_and_round_trip() -> None:
    """RFC 2868 §3.5 key hiding: a golden vector computed here step by step."""
    from mobileha.wire.auth import hidden_len, hide_key, reveal_key

    secret, vector, key = b"s3cret", bytes(range(18)), b"0123456789abcdefXYZ"  # 19 bytes
    p1 = bytes([19]) + key[:15]
    p2 = key[15:] + bytes(12)
    b1 = hashlib.md5(secret + vector).digest()
    c1 = bytes(x ^ y for x, y in zip(p1, b1, strict=True))
    b2 = hashlib.md5(secret + c1).digest()
    c2 = bytes(x ^ y for x, y in zip(p2, b2, strict=True))
    assert hidden_len(19) == 32
    assert hide_key(secret, vector, key) == c1 + c2
    assert reveal_key(secret, vector, c1 + c2) == key
    assert reveal_key(secret, vector, hide_key(secret, vector, b"")) == b""
    with pytest.raises(ValueError):
        reveal_key(secret, vector, c1[:15])
    with pytest.raises(ValueError):
        hide_key(secret, vector, bytes(256))
