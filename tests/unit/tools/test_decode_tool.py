"""`mobileha decode` on hex and on a pcap holding one of each message family (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobileha.tools import decode as tool
from mobileha.wire import hsrp, sync
from mobileha.wire.auth import Authenticator
from mobileha.wire.mip import (
    EXT_MN_HA,
    RegistrationReply,
    RevocationAck,
    append_auth,
    gre_key_cvse,
)
from tests.helpers import request

KEY = bytes(range(16))
AUTH = Authenticator(KEY, "hmac-md5")


def rrq() -> bytes:
    return request(
        flags=0x02,
        ha_addr="10.0.0.100",
        care_of="192.0.2.1",
        ident=0xE6B5A4C000000001,
        nai="user@example.com",
        key=KEY,
        after=[gre_key_cvse(77)],
    )


def rrp() -> bytes:
    rep = RegistrationReply(
        code=0, lifetime=1800, home_addr="10.1.0.9", ha_addr="10.0.0.100", ident=5
    )
    return append_auth(rep.encode(), EXT_MN_HA, 256, AUTH)


HSRP_V1 = bytes.fromhex("0000100 30a640100636973636f0000000a000001".replace(" ", ""))
DFP_PI = bytes.fromhex("010001010000001c00020014000000000001000 00a0101010000000c".replace(" ", ""))


def hsrp_v2() -> bytes:
    return hsrp.HsrpV2(
        (hsrp.GroupStateTlv(state=6, group=10, identifier=b"\x02" * 6, vip="10.0.1.100"),)
    ).encode()


def sync_bu() -> bytes:
    rec = sync.BindingRecord("10.1.0.9", "192.0.2.1", "192.0.2.1", 5, 1800, 1700, nai="u@x")
    msg = sync.SyncMessage(sync.MsgKind.BU, 1, "10.0.0.100", 9, records=(rec,))
    return sync.encode(msg, 400, AUTH)


def test_hex_each_family() -> None:
    assert tool.decode_one(rrq())["mip.nai"] == "user@example.com"
    assert tool.decode_one(rrp())["mip.code"] == 0
    h = tool.decode_one(HSRP_V1)
    assert h["protocol"] == "hsrp" and h["hsrp.state"] == 16 and h["hsrp.virt_ip"] == "10.0.0.1"
    assert h["state_name"] == "Active" and h["hsrp.priority"] == 100
    assert tool.decode_one(hsrp_v2())["protocol"] == "hsrp"
    d = tool.decode_one(DFP_PI)
    assert d["protocol"] == "dfp"
    assert "10.1.1.1" in json.dumps(d) and '"weight": 12' in json.dumps(d)
    s = tool.decode_one(sync_bu())
    assert s["protocol"] == "ha-sync" and s["message"] == "BU"
    assert s["records"][0]["home_addr"] == "10.1.0.9" and s["hhae"]["spi"] == 400
    e = tool.decode_one(b"\x01\x00")
    assert e["error"] == "short"


def test_cli_hex(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main([RevocationAck(home_addr="10.1.0.9", revocation_id=3).encode().hex()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mip.revid"] == 3
    assert tool.main(["zz"]) == 2


def test_decode_pcap(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    pkts = [
        Ether() / IP(src="192.0.2.1", dst="10.0.0.100") / UDP(sport=434, dport=434) / Raw(rrq()),
        Ether() / IP(src="10.0.0.100", dst="192.0.2.1") / UDP(sport=434, dport=434) / Raw(rrp()),
        Ether()
        / IP(src="10.0.0.2", dst="224.0.0.2", ttl=1)
        / UDP(sport=1985, dport=1985)
        / Raw(HSRP_V1),
        Ether()
        / IP(src="10.0.0.2", dst="224.0.0.102", ttl=1)
        / UDP(sport=1985, dport=1985)
        / Raw(hsrp_v2()),
        # a DFP message split over two TCP segments
        Ether()
        / IP(src="10.1.1.1", dst="10.0.0.1")
        / TCP(sport=8081, dport=40000, seq=1000, flags="PA")
        / Raw(DFP_PI[:10]),
        Ether()
        / IP(src="10.1.1.1", dst="10.0.0.1")
        / TCP(sport=8081, dport=40000, seq=1010, flags="PA")
        / Raw(DFP_PI[10:]),
        Ether() / IP(src="10.0.1.10", dst="10.0.1.11") / UDP(sport=434, dport=434) / Raw(sync_bu()),
    ]
    pcap = tmp_path / "all.pcap"
    scapy_all.wrpcap(str(pcap), pkts)
    out = subprocess.run(
        [sys.executable, "-m", "mobileha.cli", "decode", "--pcap", str(pcap)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    objs = [json.loads(line) for line in out.splitlines()]
    kinds = [(o.get("protocol"), o.get("message")) for o in objs]
    assert kinds == [
        ("mip", "Registration Request"),
        ("mip", "Registration Reply"),
        ("hsrp", "HsrpV1"),
        ("hsrp", "HsrpV2"),
        ("ha-sync", "BU"),
        ("dfp", "Preference Information"),
    ]
    assert objs[0]["mip.haaddr"] == "10.0.0.100" and objs[0]["src"] == "192.0.2.1:434"
    assert objs[0]["extensions"][2]["mip.ext.cvse.3gpp2_grekey"] == 77
    assert objs[1]["mip.homeaddr"] == "10.1.0.9"
    assert objs[2]["hsrp.group"] == 1
    assert objs[4]["records"][0]["nai"] == "u@x"
    assert '"weight": 12' in json.dumps(objs[5]) and objs[5]["src"] == "10.1.1.1:8081"
    assert all("error" not in o for o in objs)
