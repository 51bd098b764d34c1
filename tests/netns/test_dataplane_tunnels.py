"""The userspace and ebpf data planes carrying real traffic in namespaces, each test once
per backend (the ebpf ones skip with the reason where BPF cannot run).

    cn --- r --- ha            (home side; 10.99.0.0/24 is routed to the HA)
           |
           +--- fa --- mn      (foreign side; CoA 10.3.0.2, MN home address 10.99.0.5)

Bindings are installed through ``mobileha.dataplane.tool`` on the HA and FA (``Lab.register``),
standing in for a registration; swapping in a real HomeAgent/ForeignAgent only changes that.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileha.core.binding import FLAG_S, FLAG_T
from mobileha.dataplane.ebpf import probe as ebpf_probe
from mobileha.lab.dataplane import CN, COA, HA, HOA, Driver, Lab, build
from mobileha.lab.netns import Topology
from mobileha.wire.ip import decap_gre, decap_ipip, decap_minimal, decode_ipv4
from tests.helpers import wait_for
from tests.helpers.net import count_ipv4, ping_ok, read_pcap
from tests.helpers.netns import require_netns

pytestmark = pytest.mark.netns

GRE_KEY = 0x00C0FFEE
BACKENDS = ["userspace", "ebpf"]
DEV = "mhtun0"  # the TUN device (userspace) or the sink veth (ebpf)


def need(backend: str) -> None:
    """Skip with the reason where namespaces or (for ebpf) BPF cannot be used here."""
    require_netns()
    if backend == "ebpf" and (problem := ebpf_probe()):
        pytest.skip(f"ebpf backend unavailable: {problem}")


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    need(request.param)
    with Topology() as topo:
        lab = build(topo)
        lab.start_dataplanes(request.param)
        yield lab
        assert lab.ha_dp is not None and lab.fa_dp is not None
        lab.ha_dp.quit()
        lab.fa_dp.quit()


@pytest.mark.parametrize(("encap", "proto"), [("ipip", 4), ("gre", 47), ("minimal", 55)])
def test_cn_pings_mn_through_each_encapsulation(
    lab: Lab, tmp_path: Path, encap: str, proto: int
) -> None:
    b = lab.binding(encap, gre_key=GRE_KEY if encap == "gre" else None)
    lab.register(b)
    try:
        pcap = str(tmp_path / f"{encap}.pcap")
        cap = lab.r.capture(lab.r_fa_if, pcap, f"ip proto {proto}")
        assert ping_ok(lab, "cn", HOA, opts="-Q 0x28 -M do")  # TOS 0x28, DF set
        assert ping_ok(lab, "cn", HOA, count=1, opts="-M dont")  # DF clear
        cap.stop()
        pkts = read_pcap(pcap)
        assert len(pkts) == 4
        for n, p in enumerate(pkts):
            outer, _ = decode_ipv4(p)
            assert (outer.proto, outer.src, outer.dst) == (proto, HA, COA)
            # P§3.1: outer TOS copied from the inner header, outer DF = inner DF.
            assert (outer.tos, outer.df) == ((0x28, True) if n < 3 else (0, False))
            if proto != 55:
                assert outer.ttl == 63  # 64 at the HA, minus the router hop
            if proto == 4:
                _, inner = decap_ipip(p)
            elif proto == 47:
                _, gre, inner = decap_gre(p)
                assert gre.key == GRE_KEY
            else:
                _, mh, inner = decap_minimal(p)
                assert mh.src == CN
            ih, _ = decode_ipv4(inner)
            assert (ih.src, ih.dst, ih.proto) == (CN, HOA, 1)
        # Independent decoder: tshark sees the outer protocol (and the GRE key).
        fields = ["-e", "ip.proto", "-e", "ip.src", "-e", "ip.dst"]
        if proto == 47:
            fields += ["-e", "gre.key"]
        out = subprocess.run(
            ["tshark", "-r", pcap, "-T", "fields", *fields],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode == 0:
            first = out.stdout.splitlines()[0].split("\t")
            assert first[0].split(",")[0] == str(proto)
            assert first[1].split(",")[0] == HA and first[2].split(",")[0] == COA
            if proto == 47:
                assert int(first[3], 16) == GRE_KEY
        ha = lab.ha_dp.stats() if lab.ha_dp else {}
        t = ha["tunnels"][0]
        assert t["tx_pkts"] >= 3 and t["home_addr"] == HOA and t["care_of"] == COA
    finally:
        lab.deregister(b)


def test_reverse_tunnel_with_t_and_triangular_without(lab: Lab, tmp_path: Path) -> None:
    assert lab.ha_dp is not None
    # With T: MN -> CN goes FA -> (IP-in-IP) -> HA -> CN.
    b = lab.binding("ipip", flags=FLAG_T)
    lab.register(b)
    try:
        pcap = str(tmp_path / "rev.pcap")
        cap = lab.r.capture(lab.r_ha_if, pcap, "ip proto 4")
        assert ping_ok(lab, "mn", CN)
        cap.stop()
        assert count_ipv4(pcap, COA, 4) >= 3  # reverse-tunnelled echo requests CoA -> HA
        t = lab.ha_dp.stats()["tunnels"][0]
        assert t["rx_pkts"] >= 3
    finally:
        lab.deregister(b)
    # Without T: triangular, nothing from the CoA reaches the HA link.
    b = lab.binding("ipip", flags=0)
    lab.register(b)
    try:
        pcap = str(tmp_path / "tri.pcap")
        cap = lab.r.capture(lab.r_ha_if, pcap, "")
        assert ping_ok(lab, "mn", CN)
        cap.stop()
        assert count_ipv4(pcap, COA, 4) == 0
        assert count_ipv4(pcap, HOA, 1) == 0  # the echo requests did not pass the HA at all
        assert count_ipv4(pcap, HA, 4) >= 3  # the replies to the HoA were tunnelled by the HA
    finally:
        lab.deregister(b)


SPOOF = textwrap.dedent(
    """
    import socket, sys
    from mobileha.wire.ip import build_ipv4, encap_ipip, encap_gre
    outer_src, inner_src, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    inner = build_ipv4(inner_src, "10.1.0.2", 1, bytes.fromhex("0800f7ff00000000"))
    if kind == "gre":
        pkt = encap_gre(inner, outer_src, "10.2.0.2", key=int(sys.argv[4]))
    else:
        pkt = encap_ipip(inner, outer_src, "10.2.0.2")
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(5):
        s.sendto(pkt, ("10.2.0.2", 0))
    """
)


def test_spoofed_inner_source_dropped_and_counted(lab: Lab) -> None:
    assert lab.ha_dp is not None
    b = lab.binding("gre", gre_key=GRE_KEY, flags=FLAG_T)
    lab.register(b)
    try:
        before = lab.ha_dp.stats()
        py = [sys.executable, "-c", SPOOF]
        lab.fa.run([*py, COA, "10.99.0.77", "gre", str(GRE_KEY)])  # inner source not the HoA
        lab.fa.run([*py, COA, HOA, "gre", str(GRE_KEY + 1)])  # right HoA, wrong key
        lab.fa.run([*py, COA, HOA, "ipip"])  # right HoA, but this binding is GRE

        def dropped(reason: str) -> int:
            return int(lab.ha_dp.stats()["drops"][reason] - before["drops"][reason])

        reasons = ("spoof", "bad-key", "bad-encap")
        wait_for(lambda: all(dropped(r) >= 5 for r in reasons), 3, "15 drops counted")
        after = lab.ha_dp.stats()
        assert after["drops"]["spoof"] - before["drops"]["spoof"] == 5
        assert after["drops"]["bad-key"] - before["drops"]["bad-key"] == 5
        assert after["drops"]["bad-encap"] - before["drops"]["bad-encap"] == 5
        t = after["tunnels"][0]
        assert t["drops"] >= 15 and t["rx_pkts"] == 0
        # The genuine reverse-tunnelled traffic still flows.
        assert ping_ok(lab, "mn", CN)
        assert lab.ha_dp.stats()["tunnels"][0]["rx_pkts"] >= 3
    finally:
        lab.deregister(b)


def _leftovers(lab: Lab) -> list[str]:
    out = []
    for h in (lab.ha, lab.fa):
        routes = h.run("ip route show table all").stdout
        out += [f"{h.name}: {ln}" for ln in routes.splitlines() if HOA in ln]
        rules = h.run("ip rule").stdout
        out += [f"{h.name}: {ln}" for ln in rules.splitlines() if HOA in ln]
    return out


def test_deregistration_and_expiry_stop_forwarding_and_clean_up(lab: Lab) -> None:
    b = lab.binding("gre", gre_key=7, flags=FLAG_T)
    lab.register(b)
    assert ping_ok(lab, "cn", HOA)
    assert _leftovers(lab)  # host routes and the reverse-tunnel rule are there
    lab.deregister(b)
    assert not ping_ok(lab, "cn", HOA, count=1)
    assert _leftovers(lab) == []
    # Expiry: the binding's lifetime ends (the core then removes it, as the tool does here).
    b = lab.binding("ipip", flags=FLAG_T, lifetime=2)
    lab.register(b)
    assert ping_ok(lab, "cn", HOA, count=1)
    wait_for(lambda: not ping_ok(lab, "cn", HOA, count=1), 6, "the 2 s binding expired")
    assert _leftovers(lab) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_leaves_no_devices_or_routes(topology: Topology, backend: str) -> None:
    need(backend)
    lab = build(topology)
    lab.start_dataplanes(backend)
    b = lab.binding("ipip", flags=FLAG_T)
    lab.register(b)
    assert ping_ok(lab, "cn", HOA, count=1)
    assert lab.ha_dp is not None and lab.fa_dp is not None
    lab.ha_dp.quit()  # close() without a remove first
    lab.fa_dp.quit()
    for h in (lab.ha, lab.fa):
        assert DEV not in h.run("ip link").stdout
        assert HOA not in h.run("ip route show table all").stdout
        assert HOA not in h.run("ip rule").stdout
        assert "clsact" not in h.run("tc qdisc show").stdout


TCP_SERVER = textwrap.dedent(
    """
    import hashlib, socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5001)); s.listen(1); print("listening", flush=True)
    c, _ = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        h.update(d); n += len(d)
    print(n, h.hexdigest(), flush=True)
    """
)
TCP_CLIENT = textwrap.dedent(
    """
    import hashlib, random, socket, sys
    data = random.Random(4).randbytes(10 * 1024 * 1024)
    c = socket.create_connection((sys.argv[1], 5001), timeout=30)
    c.sendall(data); c.close()
    print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
    """
)
UDP_SERVER = textwrap.dedent(
    """
    import hashlib, socket, struct, sys
    n = int(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    s.bind(("0.0.0.0", 5002)); s.settimeout(5); print("listening", flush=True)
    got = {}
    try:
        while len(got) < n:
            d = s.recv(2048)
            got[struct.unpack_from("!I", d)[0]] = d
    except socket.timeout:
        pass
    h = hashlib.sha256(b"".join(got[i] for i in sorted(got)))
    print(len(got), h.hexdigest(), flush=True)
    """
)
UDP_CLIENT = textwrap.dedent(
    """
    import hashlib, random, socket, struct, sys, time
    n = int(sys.argv[2]); r = random.Random(5)
    msgs = [struct.pack("!I", i) + r.randbytes(1196) for i in range(n)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i, m in enumerate(msgs):
        s.sendto(m, (sys.argv[1], 5002))
        if i % 20 == 19:
            time.sleep(0.002)
    print(n, hashlib.sha256(b"".join(msgs)).hexdigest(), flush=True)
    """
)


@pytest.mark.parametrize("encap", ["ipip", "gre", "minimal"])
def test_tcp_10mb_and_udp_stream_identical_checksums(lab: Lab, encap: str) -> None:
    b = lab.binding(encap, gre_key=GRE_KEY if encap == "gre" else None, flags=FLAG_T)
    lab.register(b)
    try:
        srv = lab.mn.popen([sys.executable, "-c", TCP_SERVER], stdout=subprocess.PIPE)
        assert srv.stdout is not None and srv.stdout.readline().strip() == "listening"
        sent = lab.cn.run([sys.executable, "-c", TCP_CLIENT, HOA], timeout=60).stdout.split()
        received = srv.stdout.readline().split()
        srv.wait(timeout=10)
        assert sent == received and sent[0] == str(10 * 1024 * 1024)

        n = 2000
        srv = lab.mn.popen([sys.executable, "-c", UDP_SERVER, str(n)], stdout=subprocess.PIPE)
        assert srv.stdout is not None and srv.stdout.readline().strip() == "listening"
        sent = lab.cn.run([sys.executable, "-c", UDP_CLIENT, HOA, str(n)], timeout=60)
        received = srv.stdout.readline().split()
        srv.wait(timeout=10)
        assert sent.stdout.split() == received and received[0] == str(n), (
            lab.ha_dp.stats() if lab.ha_dp else None
        )
    finally:
        lab.deregister(b)


def test_simultaneous_bindings_get_one_copy_each(lab: Lab, tmp_path: Path) -> None:
    assert lab.ha_dp is not None
    coa2 = "10.3.0.3"
    fa_if = lab.fa.run("ip -o -4 addr show to 10.3.0.0/24").stdout.split()[1]
    lab.fa.addr(fa_if, f"{coa2}/24")
    b1 = lab.binding("ipip", flags=FLAG_S)
    b2 = lab.binding("gre", gre_key=5, flags=FLAG_S, care_of=coa2)
    lab.register(b1)
    lab.register(b2)
    try:
        pcap = str(tmp_path / "s.pcap")
        cap = lab.r.capture(lab.r_fa_if, pcap, "ip proto 4 or ip proto 47")
        r = lab.cn.run(f"ping -n -c 2 -i 0.3 -W 2 {HOA}", check=False)
        cap.stop()
        assert "DUP!" in r.stdout  # the MN got (and answered) both copies
        to = [decode_ipv4(p)[0].dst for p in read_pcap(pcap)]
        assert to.count(COA) == 2 and to.count(coa2) == 2
        tx = {t["care_of"]: t["tx_pkts"] for t in lab.ha_dp.stats()["tunnels"]}
        assert tx == {COA: 2, coa2: 2}
        # A registration without S replaces both.
        lab.register(lab.binding("ipip"))
        assert [t["care_of"] for t in lab.ha_dp.stats()["tunnels"]] == [COA]
    finally:
        lab.deregister(b1)
        lab.deregister(b2)
        lab.fa.ip("addr", "del", f"{coa2}/24", "dev", fa_if)


def test_never_tunnel_back_to_the_source(lab: Lab) -> None:
    assert lab.ha_dp is not None
    b = lab.binding("ipip", care_of=CN)  # the CN itself is the care-of address
    lab.ha_dp.cmd("install", binding=b)
    try:
        before = lab.ha_dp.stats()["drops"]["loop"]
        assert not ping_ok(lab, "cn", HOA, count=2)
        assert lab.ha_dp.stats()["drops"]["loop"] - before == 2
    finally:
        lab.ha_dp.cmd("remove", binding=b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_virtual_home_network_prefix_on_one_route(topology: Topology, backend: str) -> None:
    need(backend)
    lab = build(topology)
    common = ("--backend", backend, "--tun", "mhtun0")
    lab.ha_dp = Driver(lab.ha, *common, "--role", "ha", "--home-prefix", "10.99.0.0/24")
    lab.fa_dp = Driver(lab.fa, *common, "--role", "fa", "--visitor-iface", lab.fa_mn_if)
    assert "10.99.0.0/24 dev mhtun0" in lab.ha.run("ip route").stdout
    lab.register(lab.binding("ipip"))
    assert ping_ok(lab, "cn", HOA, count=1)
    assert not ping_ok(lab, "cn", "10.99.0.6", count=1)  # no binding: dropped, counted
    assert lab.ha_dp.stats()["drops"]["no-binding"] >= 1
    assert lab.ha_dp.cmd("routes")["routes"] == []  # the prefix covers it: no host routes
    lab.ha_dp.quit()
    assert "10.99.0.0/24" not in lab.ha.run("ip route").stdout
    lab.fa_dp.quit()


def test_care_of_change_takes_effect_on_the_next_packet(lab: Lab, tmp_path: Path) -> None:
    coa2 = "10.3.0.3"
    fa_if = lab.fa.run("ip -o -4 addr show to 10.3.0.0/24").stdout.split()[1]
    lab.fa.addr(fa_if, f"{coa2}/24")
    try:
        pcap = str(tmp_path / "move.pcap")
        cap = lab.r.capture(lab.r_fa_if, pcap, "ip proto 4 or ip proto 47")
        lab.register(lab.binding("ipip"))
        assert ping_ok(lab, "cn", HOA, count=1)
        lab.register(lab.binding("gre", gre_key=11, care_of=coa2))  # no S: replaces
        assert ping_ok(lab, "cn", HOA, count=1)  # the very next packet
        cap.stop()
        to = [(decode_ipv4(p)[0].dst, decode_ipv4(p)[0].proto) for p in read_pcap(pcap)]
        assert to == [(COA, 4), (coa2, 47)]
    finally:
        lab.deregister(lab.binding("gre", gre_key=11, care_of=coa2))
        lab.fa.ip("addr", "del", f"{coa2}/24", "dev", fa_if)


def test_path_mtu_fragmentation_needed_for_df_packets_that_do_not_fit(lab: Lab) -> None:
    """The tunnel takes 1,500 - 28 bytes of inner packet: a DF packet over that is answered
    with ICMP "fragmentation needed" (mtu 1472) by the HA; without DF it is fragmented
    before the encapsulation and arrives whole."""
    lab.register(lab.binding("gre", gre_key=GRE_KEY))
    try:
        big = lab.cn.run(f"ping -n -c 1 -W 2 -M do -s 1472 {HOA}", check=False, timeout=15)
        # the HA's ICMP, or (once the CN has learnt the path MTU from an earlier one) the
        # CN's own refusal to send
        text = big.stdout + big.stderr
        assert "mtu = 1472" in text or "mtu=1472" in text, text
        assert ping_ok(lab, "cn", HOA, count=1, opts="-M do -s 1444")  # 1,472 bytes fit
        assert ping_ok(lab, "cn", HOA, count=1, opts="-M dont -s 1472")  # fragmented
    finally:
        lab.deregister(lab.binding("gre", gre_key=GRE_KEY))
