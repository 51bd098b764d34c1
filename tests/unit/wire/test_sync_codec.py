"""Golden byte vectors for the HA-HA sync messages (P§5.4), assembled by hand from the layout."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mobileha.wire import DecodeError, UnknownCriticalExtension
from mobileha.wire.auth import ALG_HMAC_MD5, ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.sync import (
    FLAG_EXCHANGE,
    FLAG_LAST,
    REC_DELETE,
    REC_DYNAMIC,
    REC_GRE_KEY,
    REC_NONCE,
    REC_SA,
    SA_ALG_HMAC_MD5,
    SA_NONCE,
    BindingRecord,
    MsgKind,
    RecordSa,
    SyncMessage,
    SyncTypes,
    decode,
    encode,
    peek_kind,
    record_gre_key,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
PS = Authenticator(KEY, ALG_PREFIX_SUFFIX)  # Cisco default: keyed MD5 prefix+suffix
HM = Authenticator(KEY, ALG_HMAC_MD5)
SPI = 400  # 0x190
HA = "10.0.0.100"  # 0a000064
IDENT = 0xE6B5A4C000000001

# 10.1.0.5 via 192.0.2.1, T flag, dynamic + GRE key 0x401, GRE, NAI "mn1@example.net" (15 bytes)
REC1 = BindingRecord(
    home_addr="10.1.0.5",
    care_of="192.0.2.1",
    src_addr="192.0.2.1",
    ident=0xE6B5A4BF00000009,
    lifetime=1800,
    remaining=1799,
    reg_flags=0x02,
    rec_flags=REC_DYNAMIC | REC_GRE_KEY,
    gre_key=0x401,
    encap=47,
    nai="mn1@example.net",
)
REC1_HEX = (
    "0031"  # record length 34 + 15 = 49
    "02"  # registration flags: T
    "60"  # record flags: dynamic | GRE key valid
    "0a010005"  # home address
    "c0000201"  # care-of address
    "c0000201"  # source address (FA)
    "e6b5a4bf00000009"  # identification of the accepted RRQ
    "0708"  # granted lifetime 1800
    "0707"  # remaining 1799
    "00000401"  # GRE key
    "2f"  # encap 47
    "0f"  # NAI length
    "6d6e31406578616d706c652e6e6574"  # "mn1@example.net"
)
# a deletion of 10.1.0.6 via 198.51.100.7, no NAI, IP-in-IP
REC2 = BindingRecord(
    "10.1.0.6", "198.51.100.7", "198.51.100.7", 0xE6B5A4C000000002, 600, 0, 0, REC_DELETE
)
REC2_HEX = "002200800a010006c6336407c6336407e6b5a4c00000000202580000"
REC2_HEX += "000000000400"

# [P] 10.1.0.7 via 203.0.113.9, IP-in-IP, NAI "nonce@example.net" (17 bytes), with the replay
# nonce 0x1234abcd issued in the reply to this registration (REC_NONCE)
REC3 = BindingRecord(
    home_addr="10.1.0.7",
    care_of="203.0.113.9",
    src_addr="203.0.113.9",
    ident=0x0BADF00D00000007,
    lifetime=600,
    remaining=599,
    rec_flags=REC_NONCE,
    nai="nonce@example.net",
    nonce=0x1234ABCD,
)
REC3_HEX = (
    "0037"  # record length 34 + 17 + 4 = 55
    "00"  # registration flags
    "10"  # record flags: [P] nonce valid
    "0a010007"  # home address
    "cb007109"  # care-of address
    "cb007109"  # source address (co-located MN)
    "0badf00d00000007"  # identification of the accepted RRQ (the previous nonce, high 32)
    "0258"  # granted lifetime 600
    "0257"  # remaining 599
    "00000000"  # GRE key: none
    "04"  # encap 4 (IP-in-IP)
    "11"  # NAI length 17
    "6e6f6e6365406578616d706c652e6e6574"  # "nonce@example.net"
    "1234abcd"  # [P] nonce
)

HHAE_HDR_HEX = "231400000190"  # type 35, length 20, SPI 400


def _with_auth(covered_hex: str, auth: str) -> bytes:
    covered = bytes.fromhex(covered_hex)
    if auth == "ps":
        return covered + hashlib.md5(KEY + covered + KEY).digest()
    return covered + hmac.new(KEY, covered, hashlib.md5).digest()


def test_bu_golden_prefix_suffix() -> None:
    header = "c8000002000000070a000064e6b5a4c000000001"
    expected = _with_auth(header + REC1_HEX + REC2_HEX + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(MsgKind.BU, 7, HA, IDENT, 0, (REC1, REC2))
    assert encode(msg, SPI, PS) == expected
    d = decode(expected)
    assert d.message == msg
    assert d.spi == SPI
    assert d.verify(PS)
    assert not d.verify(HM)
    assert len(d.covered) == 20 + 49 + 34 + 6
    assert d.message.records[0].dynamic and not d.message.records[0].delete
    assert d.message.records[1].delete
    assert record_gre_key(d.message.records[0]) == 0x401
    assert record_gre_key(d.message.records[1]) is None


def test_bu_ack_golden_hmac() -> None:
    header = "c9850000000000070a000064e6b5a4c500000001"  # code 133
    expected = _with_auth(header + HHAE_HDR_HEX, "hmac")
    msg = SyncMessage(MsgKind.BU_ACK, 7, HA, 0xE6B5A4C500000001, 133)
    assert encode(msg, SPI, HM) == expected
    d = decode(expected)
    assert d.message == msg and d.message.code == 133 and d.verify(HM)
    assert len(expected) == 42


def test_bi_request_golden() -> None:
    header = "ca0100000000002a0a000064e6b5a4c000000001"
    expected = _with_auth(header + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(MsgKind.BI_REQUEST, 42, HA, IDENT, FLAG_EXCHANGE)
    assert encode(msg, SPI, PS) == expected
    assert decode(expected).message == msg


def test_bi_reply_golden_with_chunk_and_skippable_ext() -> None:
    header = "cb8000010000002a0a000064e6b5a4c000000003"
    chunk = "a00400000005"  # [P] chunk extension, type 160: chunk 5
    other = "c802beef"  # an unknown skippable extension, kept verbatim
    expected = _with_auth(header + REC1_HEX + chunk + other + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(
        MsgKind.BI_REPLY, 42, HA, 0xE6B5A4C000000003, FLAG_LAST, (REC1,), 5, ((200, b"\xbe\xef"),)
    )
    assert encode(msg, SPI, PS) == expected
    d = decode(expected)
    assert d.message == msg and d.verify(PS)


def test_bi_reply_ack_golden() -> None:
    header = "cc0000000000002a0a000064e6b5a4c100000003"
    chunk = "a00400000005"
    expected = _with_auth(header + chunk + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(MsgKind.BI_ACK, 42, HA, 0xE6B5A4C100000003, 0, (), 5)
    assert encode(msg, SPI, PS) == expected
    assert decode(expected).message == msg
    assert peek_kind(expected) is MsgKind.BI_ACK
    assert peek_kind(b"\x01") is None


def test_type_codes_are_parameters() -> None:
    types = SyncTypes(bu=220, bu_ack=221, bi_request=222, bi_reply=223, bi_ack=224, hhae=40)
    msg = SyncMessage(MsgKind.BU, 1, HA, IDENT, 0, (REC2,))
    data = encode(msg, SPI, PS, types)
    assert data[0] == 220 and data[-22] == 40
    assert decode(data, types).message == msg
    with pytest.raises(DecodeError):
        decode(data)  # type 220 is not a sync message with the default codes


def test_unknown_trailing_record_bytes_tolerated() -> None:
    rec_hex = "0024" + REC2_HEX[4:] + "abcd"  # length 36: two extra bytes after the NAI
    header = "c8000001000000010a000064e6b5a4c000000001"
    data = _with_auth(header + rec_hex + HHAE_HDR_HEX, "ps")
    d = decode(data)
    assert d.message.records[0].extra == b"\xab\xcd"
    assert d.message.records[0]._replace(extra=b"") == REC2
    assert encode(d.message, SPI, PS) == data


def test_bu_golden_with_nonce() -> None:
    header = "c8000002000000080a000064e6b5a4c000000004"
    expected = _with_auth(header + REC3_HEX + REC2_HEX + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(MsgKind.BU, 8, HA, 0xE6B5A4C000000004, 0, (REC3, REC2))
    assert encode(msg, SPI, PS) == expected
    d = decode(expected)
    assert d.message == msg and d.verify(PS)
    assert d.message.records[0].nonce == 0x1234ABCD and d.message.records[0].extra == b""
    assert d.message.records[1].nonce is None
    assert REC3.wire_len() == 55
    # the encoder sets the flag for a nonce; a flag without a nonce is refused
    assert (
        encode(
            SyncMessage(
                MsgKind.BU, 8, HA, 0xE6B5A4C000000004, 0, (REC3._replace(rec_flags=0), REC2)
            ),
            SPI,
            PS,
        )
        == expected
    )
    with pytest.raises(ValueError):
        encode(SyncMessage(MsgKind.BU, 8, HA, IDENT, 0, (REC3._replace(nonce=None),)), SPI, PS)


def test_nonce_then_unknown_trailing_bytes() -> None:
    rec_hex = "0039" + REC3_HEX[4:] + "abcd"  # a newer sender's two bytes after the nonce
    header = "c8000001000000010a000064e6b5a4c000000001"
    data = _with_auth(header + rec_hex + HHAE_HDR_HEX, "ps")
    rec = decode(data).message.records[0]
    assert rec.nonce == 0x1234ABCD and rec.extra == b"\xab\xcd"
    assert encode(decode(data).message, SPI, PS) == data


def test_nonce_flag_without_room_for_the_nonce() -> None:
    header = "c8000001000000010a000064e6b5a4c000000001"
    for n in (0, 3):  # REC_NONCE, but none or only 3 of the nonce's 4 bytes in the record
        rec_hex = f"{51 + n:04x}" + REC3_HEX[4:-8] + REC3_HEX[-8:][: 2 * n]
        with pytest.raises(DecodeError) as exc:
            decode(_with_auth(header + rec_hex + HHAE_HDR_HEX, "ps"))
        assert exc.value.reason == "bad-length"
    # an older decoder's view: the same bytes without the flag keep the nonce as ``extra``
    plain = "0037" + "00" + "00" + REC3_HEX[8:]
    rec = decode(_with_auth(header + plain + HHAE_HDR_HEX, "ps")).message.records[0]
    assert rec.nonce is None and rec.extra == bytes.fromhex("1234abcd")
    assert rec._replace(extra=b"", rec_flags=REC_NONCE, nonce=0x1234ABCD) == REC3


def test_plain_p54_gre_key_without_flag() -> None:
    rec = REC2._replace(rec_flags=0, gre_key=7)
    assert record_gre_key(rec) == 7  # P§5.4: 0 = none, anything else is a key
    assert record_gre_key(rec._replace(rec_flags=REC_GRE_KEY, gre_key=0)) == 0


@pytest.mark.parametrize(
    ("hexdata", "reason"),
    [
        ("", "short"),
        ("c8" + "00" * 19 + "8000" * 11, "no-hhae"),  # skippable extensions, no HHAE
        ("01" + "00" * 41, "bad-type"),  # a Registration Request type is never a sync type
        ("c9000001" + "00" * 38, "bad-count"),  # an ack with records
        ("c8000001" + "00" * 16 + "0022" + "00" * 32, "bad-encap"),
    ],
)
def test_malformed(hexdata: str, reason: str) -> None:
    with pytest.raises(DecodeError) as exc:
        decode(bytes.fromhex(hexdata))
    assert exc.value.reason == reason


def test_hhae_must_be_last_and_present() -> None:
    msg = SyncMessage(MsgKind.BU_ACK, 7, HA, IDENT)
    data = encode(msg, SPI, PS)
    with pytest.raises(DecodeError) as exc:
        decode(data + b"\x00")
    assert exc.value.reason in ("hhae-not-last", "bad-length")
    with pytest.raises(DecodeError) as exc:
        decode(data[:-22] + b"\x80\x00" * 11)  # skippable extensions, no HHAE
    assert exc.value.reason == "no-hhae"
    with pytest.raises(UnknownCriticalExtension):
        decode(data[:20] + b"\x05\x00" + data[20:])


# [P] REC3 with the MN's SA from AAA (REC_SA) after the nonce: SPI 1000, HMAC-MD5, nonce
# replay, tolerance 7, no lifetime limit, salt 00..0f, a 32-byte hidden key
SA4 = RecordSa(1000, SA_ALG_HMAC_MD5, SA_NONCE, 7, 0, bytes(range(16)), bytes(range(32, 64)))
REC4 = REC3._replace(rec_flags=REC_NONCE | REC_SA, sa=SA4)
REC4_HEX = (
    "0072"  # record length 55 + 27 + 32 = 114
    "00"  # registration flags
    "18"  # record flags: [P] nonce valid, [P] SA follows
    + REC3_HEX[8:]  # addresses, identification, lifetimes, GRE key, encap, NAI, nonce
    + "3b"  # SA block length 59 (27 + 32)
    "000003e8"  # SPI 1000
    "01"  # algorithm: HMAC-MD5
    "80"  # flags: nonce replay protection
    "0007"  # tolerance 7 s
    "0000"  # largest lifetime: the HA's
    "000102030405060708090a0b0c0d0e0f"  # salt
     + bytes(range(32, 64)).hex()  # hidden key
)


def test_bu_golden_with_sa() -> None:
    header = "c8000001000000090a000064e6b5a4c000000005"
    expected = _with_auth(header + REC4_HEX + HHAE_HDR_HEX, "ps")
    msg = SyncMessage(MsgKind.BU, 9, HA, 0xE6B5A4C000000005, 0, (REC4,))
    assert encode(msg, SPI, PS) == expected
    d = decode(expected)
    assert d.message == msg and d.message.records[0].sa == SA4
    assert REC4.wire_len() == 114
    # a block cut short is a DecodeError; an older decoder keeps the block as ``extra``
    short = "0071" + REC4_HEX[4:-2]
    with pytest.raises(DecodeError):
        decode(_with_auth(header + short + HHAE_HDR_HEX, "ps"))
    plain = "0072" + "00" + "10" + REC4_HEX[8:]
    rec = decode(_with_auth(header + plain + HHAE_HDR_HEX, "ps")).message.records[0]
    assert rec.sa is None and len(rec.extra) == 59
