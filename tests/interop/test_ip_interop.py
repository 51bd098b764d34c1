"""Independent checks of mobileha.wire.ip: scapy decodes/encodes, tshark dissects our pcap."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mobileha.wire.ip import (
    build_ipv4,
    decap_gre,
    decap_ipip,
    decap_minimal,
    decode_arp_frame,
    encap_gre,
    encap_ipip,
    encap_minimal,
    gratuitous_arp,
)

scapy_all = pytest.importorskip("scapy.all")
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, GRE, Ether  # noqa: E402

HA, COA, CN, HOA = "10.2.0.2", "10.3.0.2", "10.1.0.2", "10.99.0.5"
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def inner_ping(tos: int = 0x10, df: bool = True) -> bytes:
    icmp = bytes(ICMP(type=8, id=0x4D48, seq=1) / (b"mobileha" * 4))
    return build_ipv4(CN, HOA, 1, icmp, ttl=63, tos=tos, ident=0x1234, df=df)


def test_scapy_decodes_our_ipip_and_gre() -> None:
    pkt = IP(encap_ipip(inner_ping(), HA, COA))
    assert (pkt.src, pkt.dst, pkt.proto, pkt.tos, int(pkt.flags)) == (HA, COA, 4, 0x10, 2)
    inner = pkt.payload
    assert isinstance(inner, IP)
    assert (inner.src, inner.dst, inner.ttl) == (CN, HOA, 63)
    g = IP(encap_gre(inner_ping(), HA, COA, key=0x401, seq=9, with_checksum=True))
    assert g.proto == 47
    gre = g[GRE]
    assert (gre.key_present, gre.key, gre.seqnum_present, gre.sequence_number) == (1, 0x401, 1, 9)
    assert gre.chksum_present == 1
    # scapy recomputes the checksums: rebuilding the same layers gives our bytes back.
    assert bytes(IP(bytes(g))) == encap_gre(
        inner_ping(), HA, COA, key=0x401, seq=9, with_checksum=True
    )


def test_we_decode_scapy_ipip_and_gre() -> None:
    inner = IP(src=CN, dst=HOA, ttl=63, tos=0x10, flags="DF") / UDP(sport=1, dport=2) / (b"x" * 9)
    raw = bytes(IP(src=HA, dst=COA, proto=4, tos=0x10, flags="DF") / inner)
    outer, got = decap_ipip(raw)
    assert (outer.src, outer.dst, outer.tos, outer.df) == (HA, COA, 0x10, True)
    assert got == bytes(inner)
    raw = bytes(IP(src=HA, dst=COA) / GRE(key_present=1, key=77, proto=0x0800) / inner)
    outer, gre, got = decap_gre(raw)
    assert (outer.proto, gre.key, gre.protocol, got) == (47, 77, 0x0800, bytes(inner))


def test_scapy_reads_our_minimal_encapsulation_header() -> None:
    pkt = IP(encap_minimal(inner_ping(), HA, COA))
    assert (pkt.proto, pkt.src, pkt.dst, pkt.len) == (55, HA, COA, len(inner_ping()) + 12)
    body = bytes(pkt.payload)
    assert body[0] == 1 and body[1] == 0x80 and body[4:8] == bytes([10, 99, 0, 5])
    assert decap_minimal(bytes(pkt))[2] == inner_ping()


def test_arp_both_ways_with_scapy() -> None:
    s = Ether(gratuitous_arp(MAC_A, HOA))
    assert s[ARP].op == 1 and s[ARP].psrc == s[ARP].pdst == HOA and s[ARP].hwsrc == MAC_A
    assert s.dst == "ff:ff:ff:ff:ff:ff"
    theirs = bytes(
        Ether(src=MAC_B, dst=MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=HOA, hwdst=MAC_A, pdst=HA)
    )
    eth, arp = decode_arp_frame(theirs)
    assert (arp.op, arp.sha, arp.spa, arp.tha, arp.tpa) == (2, MAC_B, HOA, MAC_A, HA)
    assert eth.src == MAC_B


def _pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(fr), len(fr)))
            f.write(fr)


def _eth_ip(pkt: bytes) -> bytes:
    return bytes.fromhex("0200000000020200000000010800") + pkt


def _dup_keys_as_lists(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """tshark -T json repeats a key for a repeated layer (outer and inner "ip")."""
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            d[k] = [*d[k], v] if isinstance(d[k], list) and k == "ip" else [d[k], v]
        else:
            d[k] = v
    return d


def _layers(p: dict[str, Any]) -> dict[str, Any]:
    layers: dict[str, Any] = p["_source"]["layers"]
    return layers


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_dissects_our_ipip_gre_and_arp(tmp_path: Path) -> None:
    frames = [
        _eth_ip(encap_ipip(inner_ping(), HA, COA)),
        _eth_ip(encap_gre(inner_ping(), HA, COA, key=0x00000401)),
        _eth_ip(encap_gre(inner_ping(), HA, COA, key=7, seq=3, with_checksum=True)),
        gratuitous_arp(MAC_A, HOA),
    ]
    pcap = tmp_path / "tunnels.pcap"
    _pcap(pcap, frames)
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "json", "-o", "ip.check_checksum:TRUE"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    pkts = json.loads(out.stdout, object_pairs_hook=_dup_keys_as_lists)
    assert len(pkts) == 4
    text = out.stdout
    assert "_ws.malformed" not in text and "_ws.expert" not in text

    ipip = _layers(pkts[0])
    assert ipip["frame"]["frame.protocols"] == "eth:ethertype:ip:ip:icmp:data"
    ips = ipip["ip"]
    assert isinstance(ips, list) and len(ips) == 2  # outer and inner IP layers
    assert (ips[0]["ip.proto"], ips[0]["ip.src"], ips[0]["ip.dst"]) == ("4", HA, COA)
    assert ips[0]["ip.dsfield"] == "0x10"
    assert ips[0]["ip.flags_tree"]["ip.flags.df"] == "1"
    assert (ips[1]["ip.src"], ips[1]["ip.dst"]) == (CN, HOA)
    assert ips[0]["ip.checksum.status"] == "1"  # good

    gre = _layers(pkts[1])
    assert gre["frame"]["frame.protocols"] == "eth:ethertype:ip:gre:ip:icmp:data"
    g = gre["gre"]
    assert g["gre.key"] == "0x00000401"
    assert g["gre.flags_and_version_tree"]["gre.flags.key"] == "1"
    assert g["gre.proto"] == "0x0800"
    assert gre["ip"][1]["ip.dst"] == HOA

    gre2 = _layers(pkts[2])["gre"]
    assert gre2["gre.key"] == "0x00000007" and gre2["gre.sequence_number"] == "3"
    assert gre2["gre.flags_and_version_tree"]["gre.flags.checksum"] == "1"
    assert gre2["gre.checksum.status"] == "1"  # tshark verifies the GRE checksum: good

    arp = _layers(pkts[3])["arp"]
    assert arp["arp.opcode"] == "1"
    assert arp["arp.src.proto_ipv4"] == arp["arp.dst.proto_ipv4"] == HOA
    assert arp["arp.src.hw_mac"] == MAC_A
    assert arp.get("arp.isgratuitous", "1") == "1"
