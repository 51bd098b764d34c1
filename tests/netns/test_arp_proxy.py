"""Proxy ARP and gratuitous ARP on a physical home link (P§3.4), userspace data plane."""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import pytest

from mobileha.lab.dataplane import Driver
from mobileha.lab.netns import Topology
from mobileha.wire import DecodeError
from mobileha.wire.ip import ArpPacket, decode_arp_frame

pytestmark = pytest.mark.netns

HOA = "10.99.0.5"


def arps(path: str) -> list[tuple[str, ArpPacket]]:
    data = Path(path).read_bytes()
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        try:
            eth, a = decode_arp_frame(data[off + 16 : off + 16 + incl])
            out.append((eth.dst, a))
        except DecodeError:
            pass
        off += 16 + incl
    return out


def mac_of(host_run: str) -> str:
    m = re.search(r"link/ether ([0-9a-f:]{17})", host_run)
    assert m
    return m.group(1)


def arping_reply_mac(out: str) -> str | None:
    m = re.search(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", out)
    return m.group(1).lower() if m else None


def test_proxy_and_gratuitous_arp(topology: Topology, tmp_path: Path) -> None:
    ha, h, mn = topology.host("ha"), topology.host("h"), topology.host("mn")
    lan = topology.bridge("home")
    l_ha = topology.link(ha, lan, "10.99.0.1/24")
    l_h = topology.link(h, lan, "10.99.0.10/24")
    l_mn = topology.link(mn, lan, f"{HOA}/24")
    ha_mac = mac_of(ha.ip("link", "show", l_ha.a_if))
    mn_mac = mac_of(mn.ip("link", "show", l_mn.a_if))

    dp = Driver(ha, "--role", "ha", "--tun", "mhtun0", "--home-iface", l_ha.a_if)
    try:
        # The MN is at home: the HA sees its ARP and learns its MAC.
        mn.run(f"arping -c 1 -w 2 -I {l_mn.a_if} 10.99.0.1", check=False)
        mn.ip("link", "set", l_mn.a_if, "down")  # ... and leaves the home link

        pcap = str(tmp_path / "arp.pcap")
        cap = h.capture(l_h.a_if, pcap, "arp")
        binding = {"home_addr": HOA, "care_of": "10.3.0.2", "ha_addr": "10.99.0.1"}
        dp.cmd("install", binding=binding)
        out = h.run(f"arping -c 1 -w 2 -I {l_h.a_if} {HOA}", check=False).stdout
        assert arping_reply_mac(out) == ha_mac, out  # proxy ARP answers with the HA's MAC
        time.sleep(1.3)  # the repeated gratuitous ARPs (3, 0.5 s apart)
        dp.cmd("remove", binding=binding)
        time.sleep(1.3)
        cap.stop()
        out = h.run(f"arping -c 1 -w 1 -I {l_h.a_if} {HOA}", check=False).stdout
        assert arping_reply_mac(out) is None, out  # no more proxying

        seen = arps(pcap)
        garps = [(d, a) for d, a in seen if a.is_gratuitous and a.spa == HOA]
        ours = [a for d, a in garps if a.sha == ha_mac]
        restore = [a for d, a in garps if a.sha == mn_mac]
        assert len(ours) == 3 and all(a.op == 1 for a in ours)
        assert all(d == "ff:ff:ff:ff:ff:ff" for d, _ in garps)
        assert len(restore) == 3  # deregistration restores the MN's own MAC
        st = dp.stats()
        assert st["ok"]
    finally:
        dp.quit()


def test_claim_and_release_vip(topology: Topology, tmp_path: Path) -> None:
    ha, h = topology.host("ha"), topology.host("h")
    lan = topology.bridge("home")
    l_ha = topology.link(ha, lan, "10.99.0.1/24")
    l_h = topology.link(h, lan, "10.99.0.10/24")
    ha_mac = mac_of(ha.ip("link", "show", l_ha.a_if))
    vip = "10.99.0.100"
    dp = Driver(ha, "--role", "ha", "--tun", "mhtun0", "--home-iface", l_ha.a_if)
    try:
        pcap = str(tmp_path / "vip.pcap")
        cap = h.capture(l_h.a_if, pcap, "arp")
        dp.cmd("claim_vip", addr=vip)
        assert f"{vip}/32" in ha.ip("-4", "addr", "show", "dev", l_ha.a_if)
        out = h.run(f"arping -c 1 -w 2 -I {l_h.a_if} {vip}", check=False).stdout
        assert arping_reply_mac(out) == ha_mac, out
        cap.stop()
        garps = [a for _d, a in arps(pcap) if a.is_gratuitous and a.spa == vip]
        assert garps and garps[0].sha == ha_mac
        dp.cmd("release_vip", addr=vip)
        assert vip not in ha.ip("-4", "addr", "show", "dev", l_ha.a_if)
    finally:
        dp.quit()
