"""tshark (an independent dissector) reads the home agent's replies: fields, extension
order and no malformed/expert flags."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("scapy.all")
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from mobileha.core.actions import Send
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import (
    gre_key_cvse,
)
from tests.helpers import request

KEY = bytes(range(16))
FA_KEY = b"F" * 16
HA = "10.0.0.100"
FA = "10.0.2.2"
WALL = 1_800_000_000.0


def _walk(node: Any, out: dict[str, list[Any]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            out.setdefault(k, []).append(v)
            if isinstance(v, dict | list):
                _walk(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_ha_replies(tmp_path: Path) -> None:
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(256, KEY, "hmac-md5", nai="mn1@example.net"))
    sas.add_fa(FA, MobilitySA(300, FA_KEY, "hmac-md5"))
    ha = HomeAgent(
        HomeAgentSettings("10.0.0.10", HA, home_prefix="10.1.0.0/24"), sas, unix_offset=WALL
    )

    def rrq(ident: int) -> bytes:
        return request(
            flags=0x0A,
            ha_addr=HA,
            care_of=FA,
            ident=ident,
            nai="mn1@example.net",
            key=KEY,
            after=[gre_key_cvse(0x1234)],
            fa_key=FA_KEY,
        )

    ok_req = rrq(ntp_identification(WALL, 1))
    replies = []
    for data in (ok_req, ok_req):  # accepted, then the same again: 133
        (send,) = [
            a for a in ha.receive_datagram(data, (FA, 434), (HA, 434), 0.0) if isinstance(a, Send)
        ]
        replies.append(send.payload)
    pcap = tmp_path / "ha.pcap"
    wrpcap(
        str(pcap),
        [Ether() / IP(src=HA, dst=FA) / UDP(sport=434, dport=434) / Raw(r) for r in replies],
    )
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "json"], capture_output=True, text=True, check=True
    ).stdout
    frames = []
    for f in json.loads(out):
        d: dict[str, list[Any]] = {}
        _walk(f["_source"]["layers"], d)
        assert "_ws.malformed" not in d and "_ws.expert" not in d, d.get("_ws.expert")
        frames.append(d)
    ok, mismatch = frames
    assert ok["mip.type"] == ["3"] and ok["mip.code"] == ["0"]
    assert ok["mip.life"] == ["1800"] and ok["mip.haaddr"] == [HA]
    assert ok["mip.homeaddr"] == ["10.1.0.1"] and ok["mip.nai"] == ["mn1@example.net"]
    assert ok["mip.auth.spi"] == ["0x00000100", "0x0000012c"]  # MN-HA, then FA-HA
    assert ok["mip.ext.cvse.3gpp2_grekey"] == [str(0x1234)]  # echoed to the PDSN
    assert mismatch["mip.code"] == ["133"] and mismatch["mip.nai"] == ["mn1@example.net"]
