"""HSRP codec: golden vectors (P§4.2), v1 + MD5, Advertise, v2 TLVs, virtual MACs, errors."""

from __future__ import annotations

import pytest

from mobileha.wire import DecodeError
from mobileha.wire import hsrp as w

# P§4.2: Hello from an Active router, group 1, priority 100, VIP 10.0.0.1, default timers/auth.
GOLDEN_V1 = bytes.fromhex("00 00 10 03 0a 64 01 00 63 69 73 63 6f 00 00 00 0a 00 00 01")


def test_golden_v1_hello_decode() -> None:
    m = w.decode(GOLDEN_V1)
    assert m == w.HsrpV1(
        opcode=w.OP_HELLO,
        state=w.ACTIVE,
        hellotime=3,
        holdtime=10,
        priority=100,
        group=1,
        vip="10.0.0.1",
        auth=b"cisco\0\0\0",
    )


def test_golden_v1_hello_encode() -> None:
    assert w.HsrpV1(group=1, vip="10.0.0.1").encode() == GOLDEN_V1


def test_v1_with_md5_tlv_is_50_bytes_and_signs() -> None:
    m = w.HsrpV1(group=7, vip="10.1.2.3", auth=bytes(8), md5=w.Md5Auth(ip="10.1.2.1", key_id=5))
    raw = m.encode()
    assert len(raw) == 50
    assert raw[20:22] == bytes([4, 28])
    signed = w.md5_sign(raw, b"secret")
    assert w.md5_verify(signed, b"secret")
    assert not w.md5_verify(signed, b"other")
    assert not w.md5_verify(raw, b"secret")  # zero digest
    d = w.decode(signed)
    assert isinstance(d, w.HsrpV1) and d.md5 is not None
    assert d.md5.ip == "10.1.2.1" and d.md5.key_id == 5 and d.md5.digest == signed[34:50]
    # tampering with any covered byte breaks the digest
    bad = bytearray(signed)
    bad[5] ^= 1
    assert not w.md5_verify(bytes(bad), b"secret")


# P§4.5: Cisco's HSRP MD5 (RFC 1828 keyed MD5 over the packet with the v1 auth field and
# the digest zeroed), the three public vectors (packet with zero digest, key, digest).
CISCO_MD5_VECTORS = [
    (
        "000004030a64010000000000000000000a000064041c010000000a000014"
        "0000000000000000000000000000000000000000",
        b"password12345",
        "52e1db09d18d695b8fefb3730ff8d9d6",
        "10.0.0.20",
    ),
    (
        "000004030a5a01000000000000000000ac102801041c01000000ac102814"
        "0000000000000000000000000000000000000000",
        b"openwall",
        "f15dfa631a0679e0801f8e6b0c0c17ac",
        "172.16.40.20",
    ),
    (
        "000010030a64010000000000000000000a000064041c010000000a000014"
        "0000000000000000000000000000000000000000",
        b"openwall12345",
        "f02fc41b1b516e2d1261d8800d39ccea",
        "10.0.0.20",
    ),
]


@pytest.mark.parametrize(("packet", "key", "digest", "sender"), CISCO_MD5_VECTORS)
def test_md5_digest_matches_cisco_vectors(
    packet: str, key: bytes, digest: str, sender: str
) -> None:
    raw = bytes.fromhex(packet)
    signed = w.md5_sign(raw, key)
    assert signed[-16:].hex() == digest and w.md5_verify(signed, key)
    assert w.md5_sender(signed) == sender
    # the v1 auth field is not covered (Cisco zeroes it), the sender address is
    assert w.md5_verify(signed[:8] + b"cisco\0\0\0" + signed[16:], key)
    moved = bytearray(signed)
    moved[27] ^= 1  # the TLV's IP address
    assert not w.md5_verify(bytes(moved), key)
    # our encoder makes the same packet from the same fields
    d = w.decode(signed)
    assert isinstance(d, w.HsrpV1) and d.md5 is not None
    assert d.md5.ip == sender


def test_advertise_roundtrip_and_layout() -> None:
    a = w.HsrpAdvertise(state=w.ADV_STATE_PASSIVE, active_groups=2, passive_groups=3)
    raw = a.encode()
    assert raw == bytes.fromhex("0003 0001 000a 02 00 0002 0003 00000000")
    assert w.decode(raw) == a


def test_v2_hello_layout() -> None:
    gs = w.GroupStateTlv(
        opcode=w.OP_HELLO,
        state=w.V1_TO_V2_STATE[w.ACTIVE],
        group=0x123,
        identifier=bytes.fromhex("020000000001"),
        priority=110,
        hello_ms=100,
        hold_ms=300,
        vip="10.0.0.1",
    )
    raw = w.HsrpV2((gs, w.TextAuthTlv())).encode()
    assert raw[:2] == bytes([1, 40])
    assert raw[2:6] == bytes([2, 0, 6, 4])
    assert raw[6:8] == b"\x01\x23"
    assert raw[8:14] == bytes.fromhex("020000000001")
    assert raw[14:26] == bytes.fromhex("0000006e 00000064 0000012c")
    assert raw[26:42] == bytes([10, 0, 0, 1]) + bytes(12)
    assert raw[42:] == bytes([3, 8]) + b"cisco\0\0\0"
    d = w.decode(raw)
    assert isinstance(d, w.HsrpV2)
    assert d.group_state == gs and d.text_auth == w.TextAuthTlv()
    assert d.encode() == raw


def test_v2_all_tlvs_and_unknown_kept() -> None:
    m = w.HsrpV2(
        (
            w.GroupStateTlv(vip="fe80::1", ip_version=6),
            w.InterfaceStateTlv(1, 2),
            w.UnknownTlv(99, b"abc"),
            w.Md5Auth(ip="1.2.3.4", key_id=9),
        )
    )
    raw = m.encode()
    assert w.decode(raw) == m
    signed = w.md5_sign(raw, b"key")
    assert w.md5_verify(signed, b"key")
    d = w.decode(signed)
    assert isinstance(d, w.HsrpV2) and d.md5 is not None and d.interface_state is not None


def test_virtual_macs() -> None:
    assert w.mac_str(w.virtual_mac(1, 1)) == "00:00:0c:07:ac:01"
    assert w.mac_str(w.virtual_mac(255, 1)) == "00:00:0c:07:ac:ff"
    assert w.mac_str(w.virtual_mac(0, 2)) == "00:00:0c:9f:f0:00"
    assert w.mac_str(w.virtual_mac(4095, 2)) == "00:00:0c:9f:ff:ff"
    assert w.mac_str(w.virtual_mac(0x123, 2)) == "00:00:0c:9f:f1:23"
    assert w.mac_str(w.virtual_mac_v6(0x123)) == "00:05:73:a0:01:23"
    with pytest.raises(ValueError):
        w.virtual_mac(256, 1)
    with pytest.raises(ValueError):
        w.virtual_mac(4096, 2)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short"),
        (b"\x00", "short"),
        (GOLDEN_V1[:19], "short"),
        (GOLDEN_V1 + b"\x00", "bad-length"),
        (b"\x01" + GOLDEN_V1[1:], "bad-length"),  # read as v2: TLV 1 with length 0
        (GOLDEN_V1[:1] + b"\x04" + GOLDEN_V1[2:], "bad-opcode"),
        (GOLDEN_V1 + bytes([5, 28]) + bytes(28), "bad-tlv"),
        (bytes([0, 3]) + bytes(13), "bad-length"),
        (bytes([1, 40]) + bytes(39), "short"),
        (bytes([1, 40, 2, 0, 6, 5]) + bytes(36), "bad-ip-version"),
        (bytes([3, 7]) + bytes(7), "bad-length"),
        (bytes([9]), "short"),
    ],
)
def test_decode_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as ei:
        w.decode(raw)
    assert ei.value.reason == reason


def test_v1_decoder_rejects_nonzero_version() -> None:
    with pytest.raises(DecodeError) as ei:
        w.decode_v1(b"\x02" + GOLDEN_V1[1:])
    assert ei.value.reason == "bad-version"


def test_text_auth_padding() -> None:
    assert w.text_auth("cisco") == w.DEFAULT_AUTH
    with pytest.raises(ValueError):
        w.text_auth("123456789")
