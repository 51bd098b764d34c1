"""Ports and addresses for tests that open sockets (loopback only)."""

from __future__ import annotations

import socket
from typing import Any


def free_port(host: str, kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free on ``host`` now (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def read_pcap(path: str) -> list[bytes]:
    """IPv4 packets of an Ethernet pcap written by tcpdump."""
    import struct
    from pathlib import Path

    data = Path(path).read_bytes()
    end = "<" if struct.unpack_from("<I", data)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack_from(end + "I", data, off + 8)[0]
        frame = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if frame[12:14] == b"\x08\x00":
            out.append(frame[14:])
    return out


def count_ipv4(pcap: str, src: str, proto: int) -> int:
    """Packets of ``pcap`` from ``src`` with IP protocol ``proto``."""
    from mobileha.wire import DecodeError
    from mobileha.wire.ip import decode_ipv4

    n = 0
    for p in read_pcap(pcap):
        try:
            h, _ = decode_ipv4(p)
        except DecodeError:
            continue
        n += h.src == src and h.proto == proto
    return n


def ping_ok(lab: Any, src: str, dst: str, count: int = 3, opts: str = "") -> bool:
    """``count`` echo requests from the lab host named ``src`` to ``dst``, all answered."""
    host = getattr(lab, src)
    r = host.run(f"ping -n -c {count} -i 0.2 -W 2 {opts} {dst}", check=False, timeout=20)
    return r.returncode == 0 and f"{count} received" in r.stdout
