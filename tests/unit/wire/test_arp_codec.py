"""Golden vectors for the ARP frames of mobileha.wire.ip (proxy and gratuitous ARP, P§3.4)."""

from __future__ import annotations

import pytest

from mobileha.wire import DecodeError
from mobileha.wire.ip import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_P_ARP,
    ArpPacket,
    EthernetFrame,
    arp_reply,
    arp_request,
    decode_arp,
    decode_arp_frame,
    decode_ethernet,
    encode_arp,
    encode_ethernet,
    gratuitous_arp,
)

VMAC = "00:00:0c:07:ac:01"  # HSRP v1 group 1 virtual MAC


def test_gratuitous_request_golden() -> None:
    frame = gratuitous_arp(VMAC, "10.99.0.5")
    assert frame == bytes.fromhex(
        "ffffffffffff" "00000c07ac01" "0806"
        "0001" "0800" "06" "04" "0001"
        "00000c07ac01" "0a630005" "000000000000" "0a630005"
    )  # fmt: skip
    eth, arp = decode_arp_frame(frame)
    assert eth.dst == "ff:ff:ff:ff:ff:ff" and eth.ethertype == ETH_P_ARP
    assert arp == ArpPacket(ARP_REQUEST, VMAC, "10.99.0.5", "00:00:00:00:00:00", "10.99.0.5")
    assert arp.is_gratuitous


def test_gratuitous_reply_form() -> None:
    _, arp = decode_arp_frame(gratuitous_arp(VMAC, "10.99.0.5", reply=True))
    # RFC 5944 §4.6: in the reply form the target hardware address is the new MAC too.
    assert arp == ArpPacket(ARP_REPLY, VMAC, "10.99.0.5", VMAC, "10.99.0.5")


def test_request_and_proxy_reply_golden() -> None:
    req = arp_request("02:00:00:00:00:01", "10.99.0.1", "10.99.0.5")
    assert req[:14] == bytes.fromhex("ffffffffffff0200000000010806")
    assert req[20:22] == b"\x00\x01"
    rep = arp_reply(VMAC, "10.99.0.5", "02:00:00:00:00:01", "10.99.0.1")
    assert rep == bytes.fromhex(
        "020000000001" "00000c07ac01" "0806" "0001080006040002"
        "00000c07ac01" "0a630005" "020000000001" "0a630001"
    )  # fmt: skip


def test_padding_is_ignored_and_roundtrip() -> None:
    frame = arp_request("02:00:00:00:00:01", "10.99.0.1", "10.99.0.5")
    eth, arp = decode_arp_frame(frame + bytes(18))
    assert eth.ethertype == 0x0806  # padded to 60 bytes on the wire
    assert encode_arp(arp) == frame[14:]
    assert decode_arp(encode_arp(arp)) == arp
    f = EthernetFrame("01:02:03:04:05:06", "0a:0b:0c:0d:0e:0f", 0x0800, b"xy")
    assert decode_ethernet(encode_ethernet(f)) == f


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (bytes(13), "short"),
        (bytes(14), "bad-ethertype"),
        (bytes.fromhex("ffffffffffff0200000000010806") + bytes(27), "short"),
        (
            bytes.fromhex("ffffffffffff0200000000010806") + bytes.fromhex("0006") + bytes(26),
            "unsupported",
        ),
    ],
)
def test_arp_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_arp_frame(raw)
    assert e.value.reason == reason


def test_bad_op() -> None:
    body = bytes.fromhex("0001080006040003") + bytes(20)
    with pytest.raises(DecodeError) as e:
        decode_arp(body)
    assert e.value.reason == "bad-op"
