"""Agent discovery against independent implementations: tshark (Wireshark's ``icmp`` and
``icmp.mip`` dissectors) reads our Agent Advertisements and Solicitation from a pcap, and
advertisements built with scapy (router entries and extensions packed here by hand) are
accepted by our mobile node's discovery."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mobileha.core.discovery import Advertiser, AdvertiserConfig
from mobileha.core.mobile_node import MnSecurity, MobileNode
from mobileha.core.movement import AdvertisementReceived, Attached, LinkUp, Roamer
from mobileha.wire.icmp import ADV_F, ADV_G, ADV_R, ADV_T, ADV_X, AgentSolicitation

TSHARK = shutil.which("tshark")
scapy_all = pytest.importorskip("scapy.all")

FA = "10.2.1.1"
COA2 = "10.2.1.2"


def _advertiser() -> Advertiser:
    return Advertiser(
        AdvertiserConfig(
            interface="l1",
            flags=ADV_R | ADV_F | ADV_G | ADV_T | ADV_X,
            registration_lifetime=1800,
            care_of=(FA, COA2),
            routers=((FA, 0),),
            prefix_lengths=(24,),
            interval_s=1.0,
        ),
        rng=lambda: 0.5,
    )


def _tshark(tmp: Path, packets: list[Any]) -> list[dict[str, Any]]:
    pcap = tmp / "disc.pcap"
    scapy_all.wrpcap(str(pcap), packets)
    out = subprocess.run(
        [str(TSHARK), "-r", str(pcap), "-T", "json", "--no-duplicate-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [p["_source"]["layers"]["icmp"] for p in json.loads(out)]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt tshark)")
def test_tshark_decodes_our_advertisements_and_solicitation(tmp_path: Path) -> None:
    adv = _advertiser()
    first = adv.start(0.0)[0].payload
    adv.sequence = 0xFFFF
    wrap_a = adv.handle_timer(1.0)[0].payload
    wrap_b = adv.handle_timer(2.0)[0].payload
    IP, Raw = scapy_all.IP, scapy_all.Raw
    pkts = [IP(src=FA, dst="224.0.0.1", proto=1, ttl=1) / Raw(p) for p in (first, wrap_a, wrap_b)]
    pkts.append(
        IP(src="0.0.0.0", dst="224.0.0.11", proto=1, ttl=1) / Raw(AgentSolicitation().encode())
    )
    a0, a1, a2, sol = _tshark(tmp_path, pkts)
    assert a0["icmp.type"] == "9" and a0["icmp.checksum.status"] == "1"
    assert a0["icmp.router_address"] == FA and a0["icmp.lifetime"] == "3"
    mae = a0["Ext: Mobility Agent Advertisement Extension"]
    assert mae["icmp.mip.type"] == "16"
    assert mae["icmp.mip.seq"] == "0" and mae["icmp.mip.life"] == "1800"
    flags = mae["icmp.mip.flags_tree"]
    assert (flags["icmp.mip.r"], flags["icmp.mip.f"], flags["icmp.mip.g"]) == ("1", "1", "1")
    assert (flags["icmp.mip.rt"], flags["icmp.mip.x"], flags["icmp.mip.h"]) == ("1", "1", "0")
    assert flags["icmp.mip.b"] == "0" and flags["icmp.mip.m"] == "0"
    coas = mae["icmp.mip.coa"]
    assert (coas if isinstance(coas, list) else [coas]) == [FA, COA2]
    ple = a0["Ext: Prefix Lengths Extension"]
    assert ple["icmp.mip.type"] == "19" and ple["icmp.mip.prefixlength"] == "24"
    seqs = [a["Ext: Mobility Agent Advertisement Extension"]["icmp.mip.seq"] for a in (a1, a2)]
    assert seqs == ["65535", "256"]  # RFC 5944 §2.3.2: after 0xffff comes 256
    assert sol["icmp.type"] == "10" and sol["icmp.checksum.status"] == "1"


def _scapy_advertisement(seq: int, prefix_len: int | None = 24) -> bytes:
    """An RFC 5944 §2.1 advertisement packed without our encoder: scapy's ICMP header
    (type 9, its checksum) over a router entry and the extensions."""
    body = socket.inet_aton(FA) + struct.pack("!i", 0)
    flags = ADV_R | ADV_F | ADV_T
    body += struct.pack("!BBHHH", 16, 6 + 4, seq, 600, flags) + socket.inet_aton(FA)
    if prefix_len is not None:
        body += bytes((19, 1, prefix_len))
    # scapy keeps RFC 1256's Num Addrs, Addr Entry Size and Lifetime in ``unused``
    head = (1 << 24) | (2 << 16) | 9
    icmp = scapy_all.ICMP(type=9, code=0, unused=head) / scapy_all.Raw(body)
    return bytes(icmp)


def test_scapy_built_advertisement_accepted_by_our_mobile_node() -> None:
    mn = MobileNode(
        nai="mn1@example.net",
        home_addr="10.1.0.5",
        ha_addr="10.0.1.10",
        security=MnSecurity(256, bytes(16), "hmac-md5"),
        care_of="0.0.0.0",
    )
    r = Roamer(mn, ["eth0"], rng=lambda: 0.5)
    r.handle_event(LinkUp("eth0"), 0.0)
    out = r.handle_event(AdvertisementReceived(_scapy_advertisement(7), FA, "eth0"), 0.1)
    (att,) = [a for a in out if isinstance(a, Attached)]
    assert (att.agent, att.care_of, att.router) == (FA, FA, FA)
    assert r.stats.advertisements == 1 and not r.stats.ignored
    sends = [a for a in out if hasattr(a, "payload") and hasattr(a, "dst") and a.dst == (FA, 434)]
    assert len(sends) == 1  # the registration request through that FA
    # scapy's checksum is verified by our decoder: a corrupted one is ignored
    bad = bytearray(_scapy_advertisement(8))
    bad[2] ^= 0xFF
    r.handle_event(AdvertisementReceived(bytes(bad), FA, "eth0"), 0.2)
    assert sum(r.stats.ignored.values()) == 1
    # a sequence number that drops below 256: the agent restarted, register again
    out = r.handle_event(AdvertisementReceived(_scapy_advertisement(0), FA, "eth0"), 0.3)
    assert r.stats.restarts_seen == 1
