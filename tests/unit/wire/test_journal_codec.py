"""The binding journal file format (wire.journal): golden bytes of the header and of a
deletion, a binding entry carrying a P§5.4 record round trip, and reading that stops at a
torn tail or a damaged entry."""

from __future__ import annotations

import struct
import zlib

import pytest

from mobileha.wire import DecodeError
from mobileha.wire.journal import (
    FILE_HEADER,
    KIND_BINDING,
    KIND_DELETE,
    check_header,
    decode_entries,
    encode_binding,
    encode_delete,
    file_header,
)
from mobileha.wire.sync import BindingRecord, encode_record

REC = BindingRecord(
    "10.64.0.5", "192.0.2.1", "192.0.2.1", 0xE6B5A4C000000001, 600, 598, 0x02, 0, 0, 4, "a@x"
)


def test_golden_header_and_delete() -> None:
    assert file_header() == b"MHAJ\x00\x01\x00\x00"
    e = encode_delete(1.5, "10.0.0.1", "10.64.0.5", None)
    body = struct.pack("!dB4s", 1.5, KIND_DELETE, bytes([10, 0, 0, 1])) + bytes(
        [10, 64, 0, 5, 0, 0, 0, 0]
    )
    assert e == struct.pack("!II", 8, zlib.crc32(body)) + body
    (entry,), end = decode_entries(file_header() + e)
    assert (entry.home_addr, entry.care_of, entry.wall) == ("10.64.0.5", None, 1.5)
    assert end == FILE_HEADER.size + len(e)


def test_binding_entry_round_trip() -> None:
    data = file_header() + encode_binding(2.0, "10.0.0.1", encode_record(REC))
    data += encode_delete(3.0, "10.0.0.1", "10.64.0.5", "192.0.2.1")
    (put, gone), end = decode_entries(data)
    assert end == len(data)
    assert put.kind == KIND_BINDING and put.agent == "10.0.0.1" and put.record == REC
    assert gone.care_of == "192.0.2.1"


def test_torn_tail_and_damaged_entry_stop_the_reading() -> None:
    entries = [encode_binding(float(i), "10.0.0.1", encode_record(REC)) for i in range(3)]
    data = file_header() + b"".join(entries)
    got, end = decode_entries(data[:-5])  # the last write was cut by a kill
    assert len(got) == 2 and end == len(data) - len(entries[2])
    bad = bytearray(data)
    bad[FILE_HEADER.size + 20] ^= 0xFF  # inside the first entry: its CRC fails
    got, end = decode_entries(bytes(bad))
    assert got == [] and end == FILE_HEADER.size
    with pytest.raises(DecodeError):
        check_header(b"NOPE\x00\x01\x00\x00")
    with pytest.raises(DecodeError):
        check_header(b"MHAJ\x00\x02\x00\x00")
