"""DFP codec (P§6.5): golden vector, every message type and TLV, security, framing."""

from __future__ import annotations

import hashlib

import pytest

from mobileha.wire import DecodeError, dfp

# P§6.5 example: Preference Information from HA 10.1.1.1, weight 12, any port/protocol.
GOLDEN = bytes.fromhex(
    "01 00 01 01 00 00 00 1c00 02 00 1400 00 00 00 00 01 00 000a 01 01 01 00 00 00 0c"
)


def test_golden_preference_information() -> None:
    msg = dfp.preference_information([("10.1.1.1", 12)])
    assert dfp.encode(msg) == GOLDEN
    got = dfp.decode(GOLDEN)
    assert got == msg
    assert got.type == dfp.PREFERENCE_INFORMATION
    assert got.name == "Preference Information"
    assert got.weights() == [dfp.HostWeight("10.1.1.1", 0, 12)]


ALL = [
    dfp.DfpMessage(dfp.PREFERENCE_INFORMATION, (dfp.LoadTlv((dfp.HostWeight("1.2.3.4", 7, 24),)),)),
    dfp.DfpMessage(
        dfp.SERVER_STATE,
        (
            dfp.LoadTlv(
                (dfp.HostWeight("10.0.0.1", 0, 8), dfp.HostWeight("10.0.0.2", 1, 0)),
                port=434,
                protocol=17,
                flags=0x80,
            ),
        ),
    ),
    dfp.dfp_parameters(5),
    dfp.DfpMessage(dfp.BINDID_REQUEST),
    dfp.DfpMessage(dfp.BINDID_REPORT, (dfp.BindIdTableTlv("10.1.1.1"),)),  # empty table
    dfp.DfpMessage(
        dfp.BINDID_CHANGE_NOTIFY,
        (
            dfp.BindIdTableTlv(
                "10.1.1.1",
                434,
                17,
                (dfp.BindIdEntry(3, "192.168.0.0", "255.255.0.0"),),
            ),
        ),
    ),
    dfp.DfpMessage(0x0501, (dfp.UnknownTlv(0x0250, b"\x01\x02\x03"),)),
    dfp.DfpMessage(
        dfp.PREFERENCE_INFORMATION,
        (dfp.SecurityTlv(1, 9, bytes(range(16))), dfp.LoadTlv()),
    ),
    dfp.DfpMessage(dfp.PREFERENCE_INFORMATION, (dfp.SecurityTlv(2, data=b"xyz"),)),
]


@pytest.mark.parametrize("msg", ALL, ids=lambda m: m.name)
def test_round_trip_every_type(msg: dfp.DfpMessage) -> None:
    raw = dfp.encode(msg)
    assert dfp.decode(raw) == msg
    assert dfp.encode(dfp.decode(raw)) == raw
    assert dfp.to_json(msg)["type"] == msg.type


def test_tlv_layouts_byte_exact() -> None:
    ka = dfp.encode(dfp.dfp_parameters(60))
    assert ka == bytes.fromhex("0100 0301 00000010 0101 0008 0000003c")
    bt = dfp.encode(
        dfp.DfpMessage(
            dfp.BINDID_REPORT,
            (
                dfp.BindIdTableTlv(
                    "10.1.1.1", 434, 17, (dfp.BindIdEntry(3, "1.2.0.0", "255.255.0.0"),)
                ),
            ),
        )
    )
    assert bt[8:] == bytes.fromhex(
        "0301 001c 0a010101 01b2 11 00 0001 00000003 0000 01020000 ffff0000"
    )
    sec = dfp.encode(dfp.DfpMessage(1, (dfp.SecurityTlv(1, 5, b"\xaa" * 16),)))
    assert sec[8:] == bytes.fromhex("0001 001c 00000001 00000005") + b"\xaa" * 16


def test_security_must_be_first() -> None:
    raw = dfp.encode(dfp.DfpMessage(1, (dfp.LoadTlv(),)))
    sec = dfp.encode(dfp.DfpMessage(1, (dfp.SecurityTlv(),)))[8:]
    bad = raw[:4] + (len(raw) + len(sec)).to_bytes(4, "big") + raw[8:] + sec
    with pytest.raises(DecodeError) as e:
        dfp.decode(bad)
    assert e.value.reason == "security-not-first"
    with pytest.raises(ValueError):
        dfp.encode(dfp.DfpMessage(1, (dfp.LoadTlv(), dfp.SecurityTlv())))


def test_md5_sign_verify_prefix_suffix_over_zeroed_digest() -> None:
    msg = dfp.preference_information([("10.1.1.1", 12)])
    raw = dfp.sign(msg, b"secret", key_id=3)
    got = dfp.decode(raw)
    assert isinstance(got.tlvs[0], dfp.SecurityTlv) and got.tlvs[0].key_id == 3
    assert got.tlvs[1:] == msg.tlvs
    zeroed = raw[:20] + bytes(16) + raw[36:]
    assert raw[20:36] == hashlib.md5(b"secret" + zeroed + b"secret").digest()
    assert dfp.verify(raw, b"secret")
    assert dfp.verify(raw, b"secret", key_id=3)
    assert not dfp.verify(raw, b"secret", key_id=4)
    assert not dfp.verify(raw, b"other")
    assert not dfp.verify(raw[:-1] + b"\x0d", b"secret")  # tampered weight
    assert not dfp.verify(dfp.encode(msg), b"secret")  # unsigned
    assert not dfp.verify(b"\x01", b"secret")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short"),
        (b"\x02\x00\x01\x01\x00\x00\x00\x08", "bad-version"),
        (b"\x01\x00\x01\x01\x00\x00\x00\x04", "bad-length"),
        (b"\x01\x00\x01\x01\x00\x00\x00\x09", "bad-length"),
        (GOLDEN[:-1], "bad-length"),
        (GOLDEN[:8] + b"\x00\x02\x00\x03" + GOLDEN[12:], "bad-length"),
        (bytes.fromhex("0100010100000010 0002000800000002"), "bad-length"),  # 2 hosts, none there
        (bytes.fromhex("010003010000000e 01010006 0000"), "bad-length"),  # short keepalive
        (bytes.fromhex("010001010000000a 0001"), "short"),
        (bytes.fromhex("0100010100000010 00010008 00000001"), "bad-length"),  # md5 w/o digest
    ],
)
def test_decode_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        dfp.decode(raw)
    assert e.value.reason == reason


def test_framer_split_and_coalesced() -> None:
    f = dfp.Framer()
    two = GOLDEN + dfp.encode(dfp.dfp_parameters(5))
    out: list[bytes] = []
    for i in range(len(two)):
        out += f.feed(two[i : i + 1])
    assert out == [GOLDEN, dfp.encode(dfp.dfp_parameters(5))]
    assert f.pending == 0
    assert dfp.Framer().feed(two + GOLDEN[:3]) == [GOLDEN, two[len(GOLDEN) :]]


def test_framer_unknown_version_closes() -> None:
    f = dfp.Framer()
    assert f.feed(GOLDEN) == [GOLDEN]
    with pytest.raises(DecodeError) as e:
        f.feed(b"\x02" + GOLDEN[1:])
    assert e.value.reason == "bad-version"
    with pytest.raises(DecodeError):
        dfp.Framer(max_message=100).feed(b"\x01\x00\x01\x01\x00\x01\x00\x00")
