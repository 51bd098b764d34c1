"""Golden vectors and behaviour of the Mobile IP codec (P§1-2)."""

import pytest

from mobileha.wire import DecodeError, UnknownCriticalExtension
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.mip import (
    EXT_FA_HA,
    EXT_MN_HA,
    AuthExt,
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
    append_auth,
    decode,
    gre_key_cvse,
    leading_nai,
    parse_request,
    walk_extensions,
)

KEY = bytes(range(16))
P16_FIXED = bytes.fromhex("01020708000000000a000064c0000201e6b5a4c000000001")
P16_NAI = bytes.fromhex("831075736572406578616d706c652e636f6d")


def p16_request() -> RegistrationRequest:
    return RegistrationRequest(
        flags=0x02,
        lifetime=1800,
        home_addr="0.0.0.0",
        ha_addr="10.0.0.100",
        care_of="192.0.2.1",
        ident=0xE6B5A4C000000001,
        extensions=[NaiExt("user@example.com")],
    )


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        (ALG_HMAC_MD5, "a33968a464c70adcb36653081a69b50b"),
        (ALG_PREFIX_SUFFIX, "0a92c46f1b3679b2cdab691cd0692b2c"),
    ],
)
def test_p16_worked_example(alg: str, digest: str) -> None:
    req = p16_request()
    body = req.encode()
    assert body == P16_FIXED + P16_NAI
    wire = append_auth(body, EXT_MN_HA, 256, Authenticator(KEY, alg))
    assert wire == P16_FIXED + P16_NAI + bytes.fromhex("201400000100") + bytes.fromhex(digest)
    dec = RegistrationRequest.decode(wire)
    assert dec.nai == "user@example.com"
    mnha = dec.find(AuthExt, EXT_MN_HA)
    assert mnha.spi == 256 and mnha.authenticator.hex() == digest
    assert len(dec.covered(mnha)) == 48
    assert dec.verify(mnha, Authenticator(KEY, alg))
    assert not dec.verify(mnha, Authenticator(bytes(16), alg))
    assert dec.encode() == wire


def test_full_request_round_trip_golden() -> None:
    req = RegistrationRequest(
        flags=0x0A,
        lifetime=0xFFFF,
        home_addr="10.1.0.5",
        ha_addr="10.0.1.100",
        care_of="10.0.2.2",
        ident=1,
        extensions=[
            NaiExt("a@b"),
            AuthExt(EXT_MN_HA, 256, bytes(16)),
            GreKeyExt(0x01020304),
            gre_key_cvse(7),
            NvseExt(32473, 1, b"\x7f\x00\x00\x01\x01\xb2"),
            RevocationSupportExt(0x8000, 5),
            DynamicHaExt(1, "10.0.0.1"),
            UnknownExt(200, b"xyz"),
            AuthExt(EXT_FA_HA, 300, bytes(16)),
        ],
    )
    wire = req.encode()
    assert wire[:24].hex() == "010affff0a0100050a0001640a0002020000000000000001"
    # GRE key: long format, subtype 0, length 4 (RFC 6245)
    assert "3000000401020304" in wire.hex()
    # 3GPP2 CVSE: type 38, reserved, length 10, vendor 5535, type 0x0401, key
    assert "2600000a0000159f040100000007" in wire.hex()
    # NVSE: type 134, length 14, reserved(2), vendor, type, value
    assert "860e000000007ed900017f00000101b2" in wire.hex()
    assert "8b05010a000001" in wire.hex()
    assert "8906800000000005" in wire.hex()
    back = decode(wire)
    assert back == req
    assert back.encode() == wire
    assert back.find(CvseExt).gre_key == 7


def test_reply_and_revocation_round_trip() -> None:
    rep = RegistrationReply(
        code=133, lifetime=0, home_addr="10.1.0.5", ha_addr="10.0.1.100", ident=2**63 + 5
    )
    wire = rep.encode()
    assert wire.hex() == "038500000a0100050a0001648000000000000005"
    assert decode(wire) == rep and not rep.accepted
    rev = RegistrationRevocation(
        flags=0xC000,
        home_addr="10.1.0.5",
        home_domain_addr="10.0.1.100",
        foreign_domain_addr="10.0.2.2",
        revocation_id=9,
        extensions=[AuthExt(EXT_FA_HA, 300, b"\x01" * 16)],
    )
    assert decode(rev.encode()) == rev
    ack = RevocationAck(flags=0x8000, home_addr="10.1.0.5", revocation_id=9)
    assert ack.encode().hex() == "0f0080000a01000500000009"
    assert decode(ack.encode()) == ack


def test_gen_auth_long_format() -> None:
    e = GenAuthExt(1, 2, bytes(16))
    assert e.encode().hex() == "2401001400000002" + "00" * 16


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (b"\x01" + bytes(10), "short"),
        (b"\x09" + bytes(30), "unknown-type"),
        (P16_FIXED + b"\x83\x20abc", "truncated-extension"),
        (P16_FIXED + b"\x20\x02\x00\x00", "bad-auth-length"),
        (P16_FIXED + b"\x30\x00\x00\x02\x00\x00", "bad-gre-key-length"),
        (P16_FIXED + b"\x83\x02\xff\xfe", "bad-nai"),
        (P16_FIXED + b"\x26", "truncated-extension"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as ei:
        decode(data)
    assert ei.value.reason == reason


def test_unknown_critical_extension_is_distinct() -> None:
    with pytest.raises(UnknownCriticalExtension) as ei:
        decode(P16_FIXED + b"\x2a\x00")
    assert ei.value.ext_type == 42
    # unknown skippable: kept byte-exact
    wire = P16_FIXED + b"\xc8\x03abc"
    msg = decode(wire)
    assert msg.extensions == [UnknownExt(200, b"abc")]
    assert msg.encode() == wire


def test_walk_and_scan() -> None:
    wire = (
        append_auth(p16_request().encode(), EXT_MN_HA, 256, Authenticator(KEY, ALG_HMAC_MD5))
        + GreKeyExt(5).encode()
    )
    spans = walk_extensions(wire, 24)
    assert [s.ext_type for s in spans] == [131, 32, 48]
    assert spans[1].start == 24 + 18
    p = parse_request(wire)
    assert p.nai == "user@example.com" and p.ident == 0xE6B5A4C000000001
    assert p.ha_b == bytes([10, 0, 0, 100]) and p.ha_addr == "10.0.0.100"
    assert p.error is None and p.nai_s == 24 and p.mnha == p.auth == 24 + 18
    assert p.gre_key == 5 and p.gre_at == spans[2].start
    assert leading_nai(wire) == "user@example.com"
    with pytest.raises(DecodeError):
        parse_request(b"\x03" + bytes(30))


def test_to_dict_uses_wireshark_names() -> None:
    d = p16_request().to_dict()
    assert d["mip.haaddr"] == "10.0.0.100" and d["mip.coa"] == "192.0.2.1"
    assert d["mip.t"] is True and d["extensions"][0]["mip.nai"] == "user@example.com"
