"""Independent decoding of what the MN and FA put on the wire: tshark (Wireshark's ``mip``
dissector) reads a pcap written with scapy, and the authenticators are recomputed here with
hashlib/hmac only.

Note: Wireshark 4.0 does not know RFC 6245's GRE key extension (48) and walks it as a short
extension, so the GRE key is checked through the 3GPP2 CVSE (``gre_key_format = "both"``),
which it decodes (``mip.ext.cvse.3gpp2_grekey``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mobileha.core.actions import Send
from mobileha.core.foreign_agent import ForeignAgent, HaSecurity
from mobileha.core.mobile_node import MnSecurity, MobileNode

HERE = ("192.0.2.254", 434)  # the receiving socket's address (the cores do not use it)

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt tshark)")
scapy_all = pytest.importorskip("scapy.all")

MN_KEY = bytes(range(16))
FAHA_KEY = b"fa-ha-key-16byte"
AAA_KEY = b"mn-aaa-secret"
CHAL = bytes(range(40, 56))


def packets() -> tuple[bytes, bytes, bytes]:
    m = MobileNode(
        nai="mn1@example.net",
        home_addr="0.0.0.0",
        ha_addr="10.0.0.100",
        security=MnSecurity(256, MN_KEY, "hmac-md5"),
        foreign_agent=("10.0.2.2", 434),
        aaa_key=AAA_KEY,
        reverse_tunnel=True,
    )
    f = ForeignAgent(
        address="10.0.2.2",
        home_agent="10.0.0.100",
        gre_key_format="both",
        challenge=True,
        random_bytes=lambda n: CHAL[:n],
        ha_security={"10.0.0.100": HaSecurity(300, FAHA_KEY, "md5-prefix-suffix")},
    )
    first = m.register(0.0)[0].payload
    (deny,) = [
        a
        for a in f.receive_datagram(first, ("192.168.1.5", 40000), HERE, 0.0)
        if isinstance(a, Send)
    ]
    (retry,) = m.receive_datagram(deny.payload, ("10.0.2.2", 434), HERE, 0.1)
    (relay,) = [a for a in f.receive_datagram(retry.payload, ("192.168.1.5", 40000), HERE, 0.1)]
    assert isinstance(relay, Send)
    return deny.payload, retry.payload, relay.payload


def decode(tmp: Path, payloads: list[bytes]) -> list[dict[str, Any]]:
    IP, UDP, Raw, wrpcap = scapy_all.IP, scapy_all.UDP, scapy_all.Raw, scapy_all.wrpcap
    pcap = tmp / "fa.pcap"
    wrpcap(
        str(pcap),
        [
            IP(src="10.0.2.2", dst="10.0.0.100") / UDP(sport=434, dport=434) / Raw(p)
            for p in payloads
        ],
    )
    out = subprocess.run(
        [str(TSHARK), "-r", str(pcap), "-T", "json"], capture_output=True, text=True, check=True
    ).stdout
    return [p["_source"]["layers"]["mip"] for p in json.loads(out)]


def exts(mip: dict[str, Any]) -> list[dict[str, Any]]:
    return list(mip.get("Extensions", {}).values())


def test_tshark_decodes_challenge_denial_request_and_relay(tmp_path: Path) -> None:
    deny, retry, relay = packets()
    d, r, rel = decode(tmp_path, [deny, retry, relay])
    # FA denial 105 with the NAI and a fresh challenge
    assert d["mip.type"] == "3" and d["mip.code"] == "105"
    assert [e["mip.ext.type"] for e in exts(d)] == ["131", "132"]
    assert exts(d)[1]["mip.extension"].replace(":", "") == CHAL.hex()
    # MN request: NAI, MN-HA, challenge, MN-AAA (RFC 4721 §3.1 order)
    assert r["mip.flags_tree"]["mip.t"] == "1"
    e = exts(r)
    assert [x["mip.ext.type"] for x in e] == ["131", "32", "132", "36"]
    assert e[0]["mip.nai"] == "mn1@example.net"
    assert e[1]["mip.auth.spi"] == "0x00000100"
    assert e[3]["mip.ext.auth.subtype"] == "1" and e[3]["mip.auth.spi"] == "0x00000002"
    # FA relay: the MN part untouched, then GRE key (48, which Wireshark 4.0 cannot parse),
    # the 3GPP2 CVSE GRE key, and FA-HA last
    assert relay.startswith(retry)
    e = exts(rel)
    types = [x["mip.ext.type"] for x in e]
    assert types[:4] == ["131", "32", "132", "36"] and types[-2:] == ["38", "34"]
    cvse = e[-2]
    assert cvse["mip.ext.cvse.vendor_id"] == "5535" and cvse["mip.ext.cvse.3gpp2_type"] == "1025"
    key = int(cvse["mip.ext.cvse.3gpp2_grekey"])
    i48 = len(retry)
    assert relay[i48 : i48 + 8] == bytes([48, 0, 0, 4]) + key.to_bytes(4, "big")
    assert e[-1]["mip.auth.spi"] == "0x0000012c"


def test_authenticators_recomputed_with_hashlib() -> None:
    _deny, retry, relay = packets()
    # MN-HA (HMAC-MD5) over everything before it + its type/len/SPI
    nai_len = 2 + len(b"mn1@example.net")
    mnha_at = 24 + nai_len
    covered = retry[: mnha_at + 6]
    assert retry[mnha_at + 6 : mnha_at + 22] == hmac.new(MN_KEY, covered, hashlib.md5).digest()
    # MN-AAA (RFC 4721 CHAP): MD5(chal[0] || key || MD5(preceding+hdr) || chal[-237:])
    aaa_at = mnha_at + 22 + 2 + len(CHAL)
    pre = retry[: aaa_at + 8]
    expect = hashlib.md5(
        bytes([CHAL[0]]) + AAA_KEY + hashlib.md5(pre).digest() + CHAL[-237:]
    ).digest()
    assert retry[aaa_at + 8 : aaa_at + 24] == expect
    # FA-HA (keyed MD5 prefix+suffix) over the whole relayed request before its value
    covered = relay[:-16]
    assert relay[-22] == 34
    assert relay[-16:] == hashlib.md5(FAHA_KEY + covered + FAHA_KEY).digest()
