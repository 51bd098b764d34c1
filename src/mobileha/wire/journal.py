"""The binding journal file of a home agent (``home_agent.journal``): an append-only log.

File: an 8-byte header (``MHAJ``, version 1, reserved), then entries::

    length   u32   payload bytes
    crc32    u32   CRC-32 of everything after this field (wall .. payload)
    wall     f64   unix time the entry was made
    kind     u8    1 = binding (payload: one P§5.4 binding record, mobileha.wire.sync)
                   2 = delete  (payload: home address, care-of address; 0.0.0.0 = all
                                bindings of the home address)
    agent    4s    the HA address whose table the entry belongs to
    payload

The record of a binding is the one the redundancy sync sends (granted and remaining
lifetime at ``wall``, Identification, flags, GRE key, NAI, dynamic flag and replay nonce),
so a restored binding keeps its remaining lifetime and its replay state.

:func:`decode_entries` stops at the first entry that is cut short or fails its CRC (the
tail a kill can leave behind) and says where the good part ends.
"""

from __future__ import annotations

import struct
import zlib
from socket import inet_aton, inet_ntoa
from typing import Final, NamedTuple

from mobileha.wire import DecodeError
from mobileha.wire.sync import BindingRecord, decode_records

MAGIC: Final = b"MHAJ"
VERSION: Final = 1
FILE_HEADER: Final = struct.Struct("!4sHH")
ENTRY: Final = struct.Struct("!IIdB4s")  # length, crc32, wall, kind, agent
_CRC_FROM: Final = 8  # the CRC covers the entry from ``wall`` on
_DELETE: Final = struct.Struct("!4s4s")
KIND_BINDING: Final = 1
KIND_DELETE: Final = 2
MAX_PAYLOAD: Final = 65535


class Entry(NamedTuple):
    """One decoded entry: a binding record, or a deletion (``care_of`` None: all)."""

    wall: float
    kind: int
    agent: str
    record: BindingRecord | None = None
    home_addr: str = ""
    care_of: str | None = None


def file_header() -> bytes:
    return FILE_HEADER.pack(MAGIC, VERSION, 0)


def check_header(data: bytes) -> None:
    """Raise :class:`DecodeError` unless ``data`` starts with a journal header."""
    if len(data) < FILE_HEADER.size:
        raise DecodeError("short", "journal header truncated")
    magic, version, _ = FILE_HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("bad-magic", "not a mobileha journal")
    if version != VERSION:
        raise DecodeError("bad-version", f"journal version {version}")


def _entry(wall: float, kind: int, agent: bytes, payload: bytes) -> bytes:
    body = ENTRY.pack(len(payload), 0, wall, kind, agent)[_CRC_FROM:] + payload
    return struct.pack("!II", len(payload), zlib.crc32(body)) + body


def encode_binding(wall: float, agent: str, record: bytes) -> bytes:
    """A binding entry; ``record``: the P§5.4 record bytes (``core.sync.records``)."""
    return _entry(wall, KIND_BINDING, inet_aton(agent), record)


def encode_delete(wall: float, agent: str, home_addr: str, care_of: str | None) -> bytes:
    """A deletion of one binding (``care_of``) or of every binding of ``home_addr``."""
    payload = _DELETE.pack(inet_aton(home_addr), inet_aton(care_of or "0.0.0.0"))
    return _entry(wall, KIND_DELETE, inet_aton(agent), payload)


def decode_entries(data: bytes, offset: int = FILE_HEADER.size) -> tuple[list[Entry], int]:
    """The entries of ``data`` from ``offset``, and the end of the last good one."""
    out: list[Entry] = []
    append = out.append
    end_all = len(data)
    view = memoryview(data)
    unpack = ENTRY.unpack_from
    crc32 = zlib.crc32
    agents: dict[bytes, str] = {}
    while offset + ENTRY.size <= end_all:
        length, crc, wall, kind, agent_b = unpack(data, offset)
        end = offset + ENTRY.size + length
        if end > end_all or crc32(view[offset + _CRC_FROM : end]) != crc:
            break
        payload_at = offset + ENTRY.size
        agent = agents.get(agent_b)
        if agent is None:
            agent = agents[agent_b] = inet_ntoa(agent_b)
        if kind == KIND_BINDING:
            try:
                (rec,), rec_end = decode_records(data, payload_at, 1)
            except DecodeError:
                break
            if rec_end != end:
                break
            append(Entry(wall, kind, agent, rec))
        elif kind == KIND_DELETE and length == _DELETE.size:
            home, coa = _DELETE.unpack_from(data, payload_at)
            care_of = inet_ntoa(coa)
            out.append(
                Entry(
                    wall,
                    kind,
                    agent,
                    None,
                    inet_ntoa(home),
                    None if care_of == "0.0.0.0" else care_of,
                )
            )
        else:
            break
        offset = end
    return out, offset


__all__ = [
    "ENTRY",
    "FILE_HEADER",
    "KIND_BINDING",
    "KIND_DELETE",
    "MAGIC",
    "VERSION",
    "Entry",
    "check_header",
    "decode_entries",
    "encode_binding",
    "encode_delete",
    "file_header",
]
