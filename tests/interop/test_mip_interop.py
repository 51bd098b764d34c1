"""Independent checks of the Mobile IP codec: scapy as encoder/decoder, tshark as decoder.

Note: tshark 4.0 does not know the RFC 6245 GRE Key extension (type 48) and shows it as an
"Unknown Extension" parsed in the short layout, so the tshark comparison carries the GRE
key in the 3GPP2 CVSE (what cdma2000 PDSNs send, P§2.6), which tshark decodes.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

scapy_all = pytest.importorskip("scapy.all")
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.layers.mobileip import MobileIP, MobileIPRRP, MobileIPRRQ  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from mobileha.wire.auth import NTP_EPOCH_OFFSET, Authenticator  # noqa: E402
from mobileha.wire.mip import (  # noqa: E402
    EXT_FA_HA,
    EXT_MN_HA,
    AuthExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    append_auth,
    decode,
    gre_key_cvse,
)

KEY = bytes(range(16))
IDENT = 0xE6B5A4C0_00000001


def our_request() -> bytes:
    a = Authenticator(KEY, "hmac-md5")
    req = RegistrationRequest(
        flags=0x0A,
        lifetime=1800,
        home_addr="0.0.0.0",
        ha_addr="10.0.0.100",
        care_of="10.0.2.2",
        ident=IDENT,
        extensions=[NaiExt("mn1@example.net")],
    )
    b = append_auth(req.encode(), EXT_MN_HA, 256, a)
    b += gre_key_cvse(0x1234).encode()
    return append_auth(b, EXT_FA_HA, 300, a)


def our_reply() -> bytes:
    rep = RegistrationReply(
        code=0,
        lifetime=1800,
        home_addr="10.1.0.5",
        ha_addr="10.0.0.100",
        ident=IDENT,
        extensions=[NaiExt("mn1@example.net")],
    )
    return append_auth(rep.encode(), EXT_MN_HA, 256, Authenticator(KEY, "hmac-md5"))


def test_scapy_built_request_decodes_with_ours() -> None:
    pkt = (
        MobileIP(type=1)
        / MobileIPRRQ(
            flags=0x82,
            lifetime=600,
            homeaddr="10.1.0.7",
            haaddr="10.0.1.100",
            coaddr="10.0.2.2",
            id=0x0102030405060708,
        )
        / Raw(NaiExt("x@y").encode())
    )
    msg = decode(bytes(pkt))
    assert isinstance(msg, RegistrationRequest)
    assert (msg.flags, msg.lifetime, msg.home_addr, msg.ha_addr, msg.care_of, msg.ident) == (
        0x82,
        600,
        "10.1.0.7",
        "10.0.1.100",
        "10.0.2.2",
        0x0102030405060708,
    )
    assert msg.nai == "x@y"


def test_scapy_built_reply_decodes_with_ours() -> None:
    pkt = MobileIP(type=3) / MobileIPRRP(
        code=133, lifetime=0, homeaddr="10.1.0.7", haaddr="10.0.1.100", id=2**64 - 1
    )
    msg = decode(bytes(pkt))
    assert isinstance(msg, RegistrationReply)
    assert (msg.code, msg.lifetime, msg.home_addr, msg.ha_addr, msg.ident) == (
        133,
        0,
        "10.1.0.7",
        "10.0.1.100",
        2**64 - 1,
    )


def test_ours_decode_with_scapy() -> None:
    rrq = MobileIP(our_request())
    assert rrq.type == 1
    q = rrq[MobileIPRRQ]
    assert (q.flags, q.lifetime, q.homeaddr, q.haaddr, q.coaddr, q.id) == (
        0x0A,
        1800,
        "0.0.0.0",
        "10.0.0.100",
        "10.0.2.2",
        IDENT,
    )
    # scapy does not parse extensions: they are the payload, byte-exact ours
    assert bytes(q.payload) == our_request()[24:]
    rrp = MobileIP(our_reply())[MobileIPRRP]
    assert (rrp.code, rrp.lifetime, rrp.homeaddr, rrp.haaddr, rrp.id) == (
        0,
        1800,
        "10.1.0.5",
        "10.0.0.100",
        IDENT,
    )


def _walk(node: Any, out: dict[str, list[Any]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, dict | list):
                out.setdefault(k, []).append(v)
                _walk(v, out)
            else:
                out.setdefault(k, []).append(v)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_our_messages(tmp_path: Path) -> None:
    pcap = tmp_path / "mip.pcap"
    wrpcap(
        str(pcap),
        [
            Ether()
            / IP(src="10.0.2.2", dst="10.0.0.100")
            / UDP(sport=434, dport=434)
            / Raw(our_request()),
            Ether()
            / IP(src="10.0.0.100", dst="10.0.2.2")
            / UDP(sport=434, dport=434)
            / Raw(our_reply()),
        ],
    )
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "json"], capture_output=True, text=True, check=True
    ).stdout
    frames = json.loads(out)
    assert len(frames) == 2
    fields: list[dict[str, list[Any]]] = []
    for f in frames:
        d: dict[str, list[Any]] = {}
        _walk(f["_source"]["layers"], d)
        assert "_ws.malformed" not in d and "_ws.expert" not in d, d.get("_ws.expert")
        fields.append(d)
    rq, rp = fields
    ts = dt.datetime.fromtimestamp((IDENT >> 32) - NTP_EPOCH_OFFSET, dt.UTC)
    assert rq["mip.type"] == ["1"] and rq["mip.flags"] == ["0x0a"]
    assert rq["mip.g"] == ["1"] and rq["mip.t"] == ["1"]
    assert rq["mip.life"] == ["1800"] and rq["mip.homeaddr"] == ["0.0.0.0"]
    assert rq["mip.haaddr"] == ["10.0.0.100"] and rq["mip.coa"] == ["10.0.2.2"]
    assert rq["mip.ident"][0].startswith(ts.strftime("%b %d, %Y %H:%M:%S"))
    assert rq["mip.nai"] == ["mn1@example.net"]
    assert rq["mip.auth.spi"] == ["0x00000100", "0x0000012c"]
    req = decode(our_request())
    auths = [e.authenticator.hex() for e in req.extensions if isinstance(e, AuthExt)]
    assert [a.replace(":", "") for a in rq["mip.auth.auth"]] == auths
    assert rq["mip.ext.cvse.vendor_id"] == ["5535"]
    assert rq["mip.ext.cvse.3gpp2_grekey"] == [str(0x1234)]
    assert rp["mip.type"] == ["3"] and rp["mip.code"] == ["0"]
    assert rp["mip.homeaddr"] == ["10.1.0.5"] and rp["mip.nai"] == ["mn1@example.net"]
