"""``mobileha decode``: Mobile IP, HSRP, DFP and HA-HA sync messages to JSON.

    mobileha decode HEX [--kind auto|mip|hsrp|dfp|sync]
    mobileha decode --pcap FILE [--port PORT ...] [--dfp-port PORT ...] [--sync-port PORT ...]

One JSON object per message on its own line. Field names follow Wireshark's where it has
them (``mip.homeaddr``, ``mip.haaddr``, ``mip.coa``, ``mip.ident``, ``mip.nai``,
``mip.code``, ``hsrp.state`` ...). Wireshark has no dissector for DFP nor for our HA-HA
sync messages (P§5.4), which is why operators need this tool.

From a pcap (classic libpcap or pcapng; Ethernet, Linux cooked v1/v2 or raw IP links) it
decodes UDP 434 and every ``--port`` (registration messages and sync messages), UDP 1985
and 2029 (HSRP) and the DFP TCP streams on ports 8080 and 8081 (plus any ``--dfp-port``),
reassembled per direction in sequence-number order. Without ``--kind`` a message's family
is recognised from its bytes (:func:`decode_auto`).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mobileha.wire import DecodeError
from mobileha.wire import dfp as dfp_codec
from mobileha.wire import hsrp as hsrp_codec
from mobileha.wire import mip as mip_codec
from mobileha.wire import sync as sync_codec

DFP_PORTS = (8080, 8081)
MIP_PORT = mip_codec.MIP_PORT
HSRP_PORTS = (1985, 2029)

HSRP_V1_FIELDS = {
    "opcode": "hsrp.opcode",
    "state": "hsrp.state",
    "hellotime": "hsrp.hellotime",
    "holdtime": "hsrp.holdtime",
    "priority": "hsrp.priority",
    "group": "hsrp.group",
    "vip": "hsrp.virt_ip",
    "auth": "hsrp.auth_data",
    "reserved": "hsrp.reserved",
}


def jsonable(obj: Any) -> Any:
    """Dataclasses, named tuples, enums and bytes to plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).hex()
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def decode_mip(data: bytes) -> dict[str, Any]:
    msg = mip_codec.decode(data)
    return {"protocol": "mip", **msg.to_dict()}


def decode_sync(data: bytes) -> dict[str, Any]:
    d = sync_codec.decode(data)
    out: dict[str, Any] = {"protocol": "ha-sync", "message": d.message.kind.name}
    out.update(jsonable(d.message))
    out["hhae"] = {"spi": d.spi, "authenticator": d.authenticator.hex()}
    return out


def decode_hsrp(data: bytes) -> dict[str, Any]:
    msg = hsrp_codec.decode(data)
    out: dict[str, Any] = {"protocol": "hsrp", "message": type(msg).__name__}
    if isinstance(msg, hsrp_codec.HsrpV1):
        out["hsrp.version"] = 0
        for k, v in jsonable(msg).items():
            out[HSRP_V1_FIELDS.get(k, k)] = v
        out["state_name"] = hsrp_codec.STATE_NAMES.get(msg.state, "unknown")
        out["opcode_name"] = hsrp_codec.OPCODE_NAMES.get(msg.opcode, "unknown")
    else:
        out.update(jsonable(msg))
    return out


def decode_dfp(data: bytes) -> dict[str, Any]:
    msg = dfp_codec.decode(data)
    body = jsonable(dfp_codec.to_json(msg))
    return {"protocol": "dfp", "message": body.pop("dfp", None), **body}


def _is_registration(msg: Any) -> bool:
    """A decoded Mobile IP message that only a registration can be: a Registration Reply,
    or a Registration Request carrying an authorization-enabling extension (MN-HA, or
    MN-AAA / generalized authentication), which every real request has (RFC 5944 §3.3)."""
    if isinstance(msg, mip_codec.RegistrationReply):
        return True
    if isinstance(msg, mip_codec.RegistrationRequest):
        return any(
            isinstance(e, mip_codec.GenAuthExt)
            or (isinstance(e, mip_codec.AuthExt) and e.ext_type == mip_codec.EXT_MN_HA)
            for e in msg.extensions
        )
    return False


def decode_auto(data: bytes) -> dict[str, Any]:
    """Guess the family from the bytes alone (``--kind`` overrides).

    Every family is decoded strictly and a whole-message decode wins. The first byte is
    ambiguous: 1 starts a Registration Request, a DFP header (version 1) and an HSRPv2
    group-state TLV. A request with its authorization-enabling extension is taken as
    Mobile IP before anything else, so a real registration is never shown as DFP or
    HSRP; DFP (its length field must be the message's) and HSRP come next; a request
    without authentication last.
    """
    if not data:
        raise DecodeError("short", "no bytes")
    first = data[0]
    mip_error: DecodeError | None = None
    mip_msg: dict[str, Any] | None = None
    if first in (mip_codec.RRQ, mip_codec.RRP):
        try:
            msg = mip_codec.decode(data)
        except DecodeError as e:
            mip_error = e
        else:
            if _is_registration(msg):
                return {"protocol": "mip", **msg.to_dict()}
            mip_msg = {"protocol": "mip", **msg.to_dict()}
    if sync_codec.peek_kind(data) is not None:
        return decode_sync(data)
    for decoder in (decode_dfp, decode_hsrp):
        try:
            return decoder(data)
        except DecodeError:
            continue
    if mip_msg is not None:
        return mip_msg
    if mip_error is not None:
        raise mip_error
    return decode_mip(data)


DECODERS = {
    "auto": decode_auto,
    "mip": decode_mip,
    "hsrp": decode_hsrp,
    "dfp": decode_dfp,
    "sync": decode_sync,
}


def decode_one(data: bytes, kind: str = "auto") -> dict[str, Any]:
    """Decode one message; a DecodeError becomes an ``error`` object, never an exception."""
    try:
        return DECODERS[kind](data)
    except DecodeError as e:
        return {"error": e.reason, "detail": e.detail, "bytes": data.hex()}


# --- pcap reading -------------------------------------------------------------------------

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276


class PcapError(Exception):
    pass


def read_pcap(path: Path) -> Iterator[tuple[float, int, bytes]]:
    """(timestamp, linktype, frame) for every packet of a libpcap or pcapng file."""
    data = path.read_bytes()
    if len(data) < 24:
        raise PcapError("file too short for a capture")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        yield from _read_pcapng(data)
        return
    endian = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
        b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
        b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }.get(magic)
    if endian is None:
        raise PcapError("not a pcap or pcapng file")
    e, unit = endian
    linktype = struct.unpack_from(e + "I", data, 20)[0] & 0x0FFFFFFF
    off = 24
    rec = struct.Struct(e + "IIII")
    while off + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        yield sec + frac * unit, linktype, data[off : off + incl]
        off += incl


def _read_pcapng(data: bytes) -> Iterator[tuple[float, int, bytes]]:
    off = 0
    e = "<"
    linktypes: list[int] = []
    while off + 12 <= len(data):
        btype = struct.unpack_from(e + "I", data, off)[0]
        if btype == 0x0A0D0D0A:  # section header: learn the byte order
            bom = data[off + 8 : off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            linktypes = []
        blen = struct.unpack_from(e + "I", data, off + 4)[0]
        if blen < 12 or off + blen > len(data):
            raise PcapError(f"bad pcapng block length at {off}")
        body = data[off + 8 : off + blen - 4]
        if btype == 1:  # interface description
            linktypes.append(struct.unpack_from(e + "H", body, 0)[0])
        elif btype == 6:  # enhanced packet
            iface, ts_hi, ts_lo, cap, _orig = struct.unpack_from(e + "IIIII", body, 0)
            lt = linktypes[iface] if iface < len(linktypes) else LINKTYPE_ETHERNET
            yield ((ts_hi << 32) | ts_lo) * 1e-6, lt, body[20 : 20 + cap]
        elif btype == 3:  # simple packet
            lt = linktypes[0] if linktypes else LINKTYPE_ETHERNET
            yield 0.0, lt, body[4:]
        off += blen


def ipv4_of_frame(linktype: int, frame: bytes) -> bytes | None:
    """The IPv4 datagram inside a captured frame, or None."""
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 12, 0
        while off + 2 <= len(frame):
            etype = struct.unpack_from("!H", frame, off)[0]
            if etype in (0x8100, 0x88A8):  # VLAN tags
                off += 4
                continue
            break
        return frame[off + 2 :] if etype == 0x0800 else None
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16 or struct.unpack_from("!H", frame, 14)[0] != 0x0800:
            return None
        return frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20 or struct.unpack_from("!H", frame, 0)[0] != 0x0800:
            return None
        return frame[20:]
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return frame if frame[:1] and frame[0] >> 4 == 4 else None
    return None


def messages_of_pcap(
    path: Path,
    dfp_ports: tuple[int, ...] = DFP_PORTS,
    sync_ports: tuple[int, ...] = (),
    mip_ports: tuple[int, ...] = (MIP_PORT,),
) -> Iterator[dict[str, Any]]:
    """Decode every message of interest in a capture, in capture order (DFP at stream end).
    ``mip_ports``: the UDP ports of registration (and HA-HA sync) messages."""
    reg_ports = frozenset((*mip_ports, *sync_ports))
    streams: dict[tuple[str, int, str, int], dict[int, bytes]] = {}
    first_ts: dict[tuple[str, int, str, int], float] = {}
    for n, (ts, lt, frame) in enumerate(read_pcap(path), start=1):
        ip = ipv4_of_frame(lt, frame)
        if ip is None or len(ip) < 20:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        proto = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        payload_l4 = ip[ihl : min(total, len(ip))]
        if proto == 17 and len(payload_l4) >= 8:
            sport, dport, ulen = struct.unpack_from("!HHH", payload_l4)
            payload = payload_l4[8 : max(8, ulen)]
            meta = {"frame": n, "time": ts, "src": f"{src}:{sport}", "dst": f"{dst}:{dport}"}
            if sport in reg_ports or dport in reg_ports:
                is_sync = sync_codec.peek_kind(payload) is not None
                yield {**meta, **decode_one(payload, "sync" if is_sync else "mip")}
            elif sport in HSRP_PORTS or dport in HSRP_PORTS:
                yield {**meta, **decode_one(payload, "hsrp")}
        elif proto == 6 and len(payload_l4) >= 20:
            sport, dport, seq = struct.unpack_from("!HHI", payload_l4)
            if sport not in dfp_ports and dport not in dfp_ports:
                continue
            doff = (payload_l4[12] >> 4) * 4
            data = payload_l4[doff:]
            if data:
                key = (src, sport, dst, dport)
                streams.setdefault(key, {})[seq] = data
                first_ts.setdefault(key, ts)
    for key, segs in streams.items():
        src, sport, dst, dport = key
        stream = b""
        expected: int | None = None
        for seq in sorted(segs):
            seg = segs[seq]
            if expected is not None and seq < expected:  # retransmission / overlap
                seg = seg[expected - seq :]
            stream += seg
            expected = (
                seq + len(segs[seq]) if expected is None else max(expected, seq + len(segs[seq]))
            )
        framer = dfp_codec.Framer()
        meta = {"time": first_ts[key], "src": f"{src}:{sport}", "dst": f"{dst}:{dport}"}
        try:
            for raw in framer.feed(stream):
                yield {**meta, **decode_one(raw, "dfp")}
        except DecodeError as e:
            yield {**meta, "protocol": "dfp", "error": e.reason, "detail": e.detail}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mobileha decode", description=__doc__.split("\n")[0])
    p.add_argument("hex", nargs="?", help="one message as hex (spaces and colons allowed)")
    p.add_argument("--kind", choices=sorted(DECODERS), default="auto")
    p.add_argument("--pcap", type=Path, help="decode every message in a capture file")
    p.add_argument("--dfp-port", type=int, action="append", default=[], help="extra DFP port")
    p.add_argument(
        "--port",
        type=int,
        action="append",
        default=[],
        help="extra UDP port of registration messages (beside 434; e.g. a loopback set-up)",
    )
    p.add_argument(
        "--sync-port", type=int, action="append", default=[], help="extra HA-HA sync UDP port"
    )
    p.add_argument("--pretty", action="store_true", help="indent the JSON")
    args = p.parse_args(argv)
    indent = 2 if args.pretty else None
    if args.pcap is not None:
        try:
            for obj in messages_of_pcap(
                args.pcap,
                DFP_PORTS + tuple(args.dfp_port),
                tuple(args.sync_port),
                (MIP_PORT, *args.port),
            ):
                print(json.dumps(obj, indent=indent))
        except (OSError, PcapError) as e:
            print(f"mobileha decode: {args.pcap}: {e}", file=sys.stderr)
            return 1
        return 0
    if args.hex is None:
        p.error("give HEX or --pcap FILE")
    text = "".join(ch for ch in args.hex if ch not in " :\n\t")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        print("mobileha decode: not hexadecimal", file=sys.stderr)
        return 2
    obj = decode_one(data, args.kind)
    print(json.dumps(obj, indent=indent))
    return 1 if "error" in obj else 0
