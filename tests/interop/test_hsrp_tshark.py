"""tshark as an independent decoder of the HSRP packets our core sends.

A pcap of our v1 and v2 Hellos (and Coup, Resign, MD5-authenticated and Advertise packets),
each framed as the node sends it (Ethernet to the IPv4 multicast MAC, IPv4 TTL 1 to 224.0.0.2 /
224.0.0.102, UDP 1985 -> 1985 with a checksum), is decoded by ``tshark -T json`` with the right
state, priority, group and virtual IP, and without malformed-packet or error expert info.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mobileha.core.hsrp import HsrpConfig, HsrpGroup, State
from mobileha.wire import hsrp as w
from mobileha.wire.ip import build_ipv4, checksum

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

SRC = "10.0.0.5"


def _frame(payload: bytes, dst: str, src_mac: bytes) -> bytes:
    udp_len = 8 + len(payload)
    pseudo = struct.pack("!4s4sBBH", bytes(map(int, SRC.split("."))),
                         bytes(map(int, dst.split("."))), 0, 17, udp_len)  # fmt: skip
    hdr = struct.pack("!HHHH", w.HSRP_PORT, w.HSRP_PORT, udp_len, 0)
    csum = checksum(pseudo + hdr + payload) or 0xFFFF
    udp = struct.pack("!HHHH", w.HSRP_PORT, w.HSRP_PORT, udp_len, csum) + payload
    ip = build_ipv4(SRC, dst, 17, udp, ttl=1)
    last = bytes(map(int, dst.split(".")))
    mcast_mac = bytes([0x01, 0x00, 0x5E, last[1] & 0x7F, last[2], last[3]])
    return mcast_mac + src_mac + b"\x08\x00" + ip


def _pcap(frames: list[bytes], path: Path) -> None:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f
    path.write_bytes(out)


def _group(version: int, **kw: Any) -> HsrpGroup:
    base: dict[str, Any] = dict(address=SRC, group=1, version=version, vip="10.0.0.1",
                                priority=110, identifier=bytes.fromhex("020000000005"))  # fmt: skip
    base.update(kw)
    return HsrpGroup(HsrpConfig(**base))


# (payload, destination, expected fields (tshark name -> value))
def _cases() -> list[tuple[bytes, str, dict[str, str]]]:
    v1 = _group(1, group=7, vip="10.0.7.1", priority=110)
    v1m = _group(1, group=8, vip="10.0.8.1", md5_key=b"k", md5_key_id=3)
    v2 = _group(2, group=1234, vip="10.4.0.1", priority=150, hello_ms=100, hold_ms=300)
    v2m = _group(2, group=5, vip="10.5.0.1", md5_key=b"k")
    return [
        (v1.encode(w.OP_HELLO, State.ACTIVE), w.MCAST_V1,
         {"hsrp.opcode": "0", "hsrp.state": "16", "hsrp.priority": "110", "hsrp.group": "7",
          "hsrp.virt_ip": "10.0.7.1", "hsrp.hellotime": "3", "hsrp.holdtime": "10"}),
        (v1.encode(w.OP_HELLO, State.STANDBY), w.MCAST_V1,
         {"hsrp.state": "8", "hsrp.group": "7", "hsrp.virt_ip": "10.0.7.1"}),
        (v1.encode(w.OP_COUP, State.ACTIVE), w.MCAST_V1, {"hsrp.opcode": "1"}),
        (v1.encode(w.OP_RESIGN, State.ACTIVE), w.MCAST_V1, {"hsrp.opcode": "2"}),
        (v1m.encode(w.OP_HELLO, State.SPEAK), w.MCAST_V1,
         {"hsrp.state": "4", "hsrp.group": "8", "hsrp.virt_ip": "10.0.8.1",
          "hsrp2.md5_algorithm": "1", "hsrp2.md5_key_id": "3"}),
        (w.HsrpAdvertise(state=3, active_groups=2).encode(), w.MCAST_V1,
         {"hsrp.opcode": "3", "hsrp.adv.state": "3", "hsrp.adv.activegrp": "2"}),
        (v2.encode(w.OP_HELLO, State.ACTIVE), w.MCAST_V2,
         {"hsrp2.version": "2", "hsrp2.opcode": "0", "hsrp2.state": "6", "hsrp2.priority": "150",
          "hsrp2.group": "1234", "hsrp2.virt_ip": "10.4.0.1", "hsrp2.hellotime": "100",
          "hsrp2.holdtime": "300", "hsrp2.ipversion": "4",
          "hsrp2.identifier": "02:00:00:00:00:05"}),
        (v2.encode(w.OP_HELLO, State.LISTEN), w.MCAST_V2, {"hsrp2.state": "3"}),
        (v2m.encode(w.OP_HELLO, State.STANDBY), w.MCAST_V2,
         {"hsrp2.state": "5", "hsrp2.group": "5", "hsrp2.md5_algorithm": "1"}),
    ]  # fmt: skip


def _find(tree: Any, key: str) -> list[str]:
    found: list[str] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key:
                found += v if isinstance(v, list) else [v]
            found += _find(v, key)
    elif isinstance(tree, list):
        for v in tree:
            found += _find(v, key)
    return found


def test_tshark_decodes_our_hsrp(tmp_path: Path) -> None:
    cases = _cases()
    mac = w.virtual_mac(1, 1)
    frames = [_frame(p, dst, mac) for p, dst, _ in cases]
    pcap = tmp_path / "hsrp.pcap"
    _pcap(frames, pcap)
    argv = ["tshark", "-r", str(pcap), "-T", "json", "-o", "ip.check_checksum:TRUE",
            "-o", "udp.check_checksum:TRUE"]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    pkts = json.loads(res.stdout)
    assert len(pkts) == len(cases)
    for pkt, (_, _, want) in zip(pkts, cases):
        layers = pkt["_source"]["layers"]
        assert "hsrp" in layers, layers.keys()
        assert "_ws.malformed" not in layers
        assert "_ws.malformed" not in json.dumps(layers)
        assert _find(layers, "udp.checksum.status") == ["1"]  # 1 = good
        assert _find(layers, "ip.checksum.status") == ["1"]
        assert _find(layers, "ip.ttl") == ["1"]
        sev = _find(layers, "_ws.expert.severity")
        assert all(int(s) < 6291456 for s in sev), sev  # nothing at "warning" or "error"
        for field, value in want.items():
            got = _find(layers, field)
            assert got and got[0] == value, (field, got, want)
