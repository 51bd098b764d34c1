"""ICMP agent discovery and error messages (RFC 5944 §2, RFC 1256, RFC 792): golden vectors
built by hand from the RFC layouts, the validity checks, and the sequence rules."""

from __future__ import annotations

import struct

import pytest

from mobileha.wire import DecodeError
from mobileha.wire.icmp import (
    ADV_F,
    ADV_G,
    ADV_T,
    ADV_X,
    SEQ_MAX,
    SEQ_WRAP,
    AgentAdvertisement,
    AgentSolicitation,
    ChallengeAdvExt,
    IcmpError,
    MobilityAgentExt,
    PadExt,
    PrefixLengthsExt,
    UnknownAdvExt,
    decode,
    decode_quoted,
    next_sequence,
    sequence_reset,
)
from mobileha.wire.ip import build_ipv4, checksum

# Type 9, code 0, checksum, 1 address of 2 words, lifetime 3 s; router 10.50.1.1 preference
# 0; extension 16 (length 10): sequence 5, registration lifetime 1800, flags F G T X
# (0x1540), care-of address 10.30.0.2; extension 19 (length 1): /24; one-byte padding.
ADV_HEX = "0900894f010200030a32010100000000100a0005070815400a1e000213011800"
ADV = AgentAdvertisement(
    lifetime=3,
    routers=(("10.50.1.1", 0),),
    extensions=(
        MobilityAgentExt(5, 1800, ADV_F | ADV_G | ADV_T | ADV_X, ("10.30.0.2",)),
        PrefixLengthsExt((24,)),
        PadExt(),
    ),
)
# Type 10, code 0, checksum ~0x0a00, reserved 0.
SOL_HEX = "0a00f5ff00000000"


def test_advertisement_golden_vector() -> None:
    assert ADV.encode().hex() == ADV_HEX
    adv = AgentAdvertisement.decode(bytes.fromhex(ADV_HEX))
    assert adv == ADV
    m = adv.mobility
    assert m is not None and m.sequence == 5 and m.care_of == ("10.30.0.2",)
    assert m.has(ADV_F) and m.has(ADV_X) and not m.has(0x2000)
    assert adv.prefixes() == [("10.50.1.1", 24)]
    assert checksum(bytes.fromhex(ADV_HEX)) == 0


def test_solicitation_golden_vector() -> None:
    assert AgentSolicitation().encode().hex() == SOL_HEX
    assert decode(bytes.fromhex(SOL_HEX)) == AgentSolicitation()


def test_no_router_addresses_and_several_care_of_addresses() -> None:
    # RFC 5944 §2.1: Num Addrs may be 0 in an agent advertisement.
    adv = AgentAdvertisement(
        lifetime=9000,
        code=16,
        extensions=(MobilityAgentExt(0xFFFF, 0xFFFF, ADV_F, ("10.0.0.1", "10.0.0.2")),),
    )
    raw = adv.encode()
    assert raw[4] == 0 and raw[8] == 16 and raw[9] == 6 + 8
    assert AgentAdvertisement.decode(raw) == adv


def test_plain_router_advertisement_has_no_mobility_extension() -> None:
    adv = AgentAdvertisement.decode(AgentAdvertisement(1800, (("10.0.0.1", 5),)).encode())
    assert adv.mobility is None and adv.to_dict()["message"] == "Router Advertisement"


def test_larger_entry_size_is_read() -> None:
    # RFC 1256: an entry may be longer than 2 words; the extra words are skipped.
    body = struct.pack("!BBHBBH", 9, 0, 0, 1, 3, 30) + bytes([10, 0, 0, 1]) + bytes(8)
    ext = MobilityAgentExt(1, 60, ADV_F, ("10.0.0.1",)).encode()
    raw = bytearray(body + ext)
    raw[2:4] = checksum(raw).to_bytes(2, "big")
    adv = AgentAdvertisement.decode(bytes(raw))
    assert adv.entry_size == 3 and adv.routers == (("10.0.0.1", 0),) and adv.mobility is not None


def test_unknown_extensions_are_kept() -> None:
    adv = AgentAdvertisement(
        30,
        extensions=(
            MobilityAgentExt(1, 60, ADV_F, ("10.0.0.1",)),
            ChallengeAdvExt(b"\x01\x02\x03\x04"),
            UnknownAdvExt(200, b"ab"),
            UnknownAdvExt(25, b"fa@x"),
        ),
    )
    back = AgentAdvertisement.decode(adv.encode())
    assert back == adv
    assert back.challenge == b"\x01\x02\x03\x04"
    assert back.unknown_critical() == 25


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "short"),
        (bytes.fromhex("0900"), "short"),
        (bytes.fromhex("0900000001010003"), "bad-entry-size"),
        (bytes.fromhex("0900000002020003") + bytes(8), "short"),
        (bytes.fromhex(ADV_HEX[:-4] + "ff00"), "bad-checksum"),
        (bytes.fromhex("0800000000000000"), "unknown-type"),
    ],
)
def test_bad_advertisements(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode(raw)
    assert e.value.reason == reason


def _with_sum(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[2:4] = b"\x00\x00"
    b[2:4] = checksum(b).to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize(
    ("ext", "reason"),
    [
        (bytes.fromhex("10050000000000"), "bad-mobility-agent-length"),
        (bytes.fromhex("100700000000000000"), "bad-mobility-agent-length"),
        (bytes.fromhex("130121"), "bad-prefix-length"),
        (bytes.fromhex("1006000000"), "truncated-extension"),
        (bytes.fromhex("10"), "truncated-extension"),
    ],
)
def test_bad_extensions(ext: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        AgentAdvertisement.decode(_with_sum(bytes.fromhex("0900000000020003") + ext))
    assert e.value.reason == reason


def test_solicitation_checks() -> None:
    with pytest.raises(DecodeError, match="bad-code"):
        AgentSolicitation.decode(_with_sum(bytes.fromhex("0a01000000000000")))
    with pytest.raises(DecodeError, match="short"):
        AgentSolicitation.decode(bytes.fromhex("0a00f5ff"))
    # the reserved word is ignored on receipt, kept for re-encoding
    raw = _with_sum(bytes.fromhex("0a00000012345678"))
    assert AgentSolicitation.decode(raw).encode() == raw


def test_error_message_and_quoted_datagram() -> None:
    inner = build_ipv4("10.30.0.2", "10.10.1.100", 17, struct.pack("!HHHH", 434, 434, 40, 0))
    quoted = inner + bytes(24)  # the quote stops inside the UDP payload
    err = IcmpError(3, 1, quoted)
    raw = err.encode()
    assert raw[:2] == b"\x03\x01" and checksum(raw) == 0
    back = decode(raw)
    assert back == err
    h, rest = decode_quoted(back.quoted)
    assert (h.src, h.dst, h.proto) == ("10.30.0.2", "10.10.1.100", 17)
    assert rest[:4] == struct.pack("!HH", 434, 434)
    frag = IcmpError(3, 4, quoted, b"\x00\x00\x05\xc8")
    assert decode(frag.encode()).next_hop_mtu == 1480  # type: ignore[union-attr]
    with pytest.raises(DecodeError, match="short"):
        decode_quoted(bytes(10))
    with pytest.raises(DecodeError, match="bad-version"):
        decode_quoted(bytes(20))


def test_sequence_numbers_wrap_to_256() -> None:
    # RFC 5944 §2.3.2: 0, 1, ..., 0xffff, 256, 257, ...
    assert next_sequence(0) == 1
    assert next_sequence(SEQ_MAX - 1) == SEQ_MAX
    assert next_sequence(SEQ_MAX) == SEQ_WRAP
    # RFC 5944 §2.4.4: a drop below 256 is a reboot, a drop to >= 256 a rollover
    assert sequence_reset(10, 0) and sequence_reset(SEQ_MAX, 255)
    assert not sequence_reset(SEQ_MAX, SEQ_WRAP) and not sequence_reset(4, 5)


def test_to_dict_names_follow_wireshark() -> None:
    d = ADV.to_dict()
    assert d["icmp.type"] == 9 and d["icmp.lifetime"] == 3
    ext = d["extensions"][0]
    assert ext["icmp.mip.seq"] == 5 and ext["icmp.mip.f"] and ext["icmp.mip.x"]
    assert ext["icmp.mip.coa"] == ["10.30.0.2"]
    assert d["extensions"][1]["icmp.mip.prefixlength"] == [24]
