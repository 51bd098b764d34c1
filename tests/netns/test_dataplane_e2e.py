"""End to end with a REAL registration: ``mobileha run`` home agent, foreign agent and mobile
node processes with the userspace, then the ebpf, data plane, in namespaces::

    cn (10.1.0.2) --- r --- ha (10.2.0.2; 10.99.0.0/24 routed to it)
                      |
                      +--- fa (CoA 10.3.0.2) --eth1-- mn (HoA 10.99.0.5/32, link 10.4.0.5)

The MN registers through the FA (its requests leave from its visitor-link address; the FA's
data plane puts a host route for the home address on its visitor interface once the
binding is installed). The encapsulation is what the registration negotiated: the MN's
``encap`` (G / M flags) and the FA's ``gre`` (RFC 6245 GRE key extension).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileha.core.binding import FLAG_T
from mobileha.dataplane.ebpf import probe as ebpf_probe
from mobileha.lab.dataplane import CN, COA, HA, HOA, TUN, Lab, build
from mobileha.lab.netns import Topology
from mobileha.lab.scenario import wait_until
from mobileha.wire.ip import decap_gre, decap_ipip, decap_minimal, decode_ipv4
from tests.helpers.net import count_ipv4, ping_ok, read_pcap
from tests.helpers.netns import require_netns

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed"),
]


@pytest.fixture(scope="module", params=["userspace", "ebpf"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns()
    if request.param == "ebpf" and (problem := ebpf_probe()):
        pytest.skip(f"ebpf backend unavailable: {problem}")
    work = tmp_path_factory.mktemp("e2e")
    with Topology() as topo:
        lab = build(topo)
        lab.backend = request.param
        lab.prepare_mn_link()
        lab.start_ha(work, max_lifetime=600, backend=lab.backend)
        lab.workdir = work
        yield lab
        lab.stop_nodes()


def leftovers(lab: Lab) -> list[str]:
    """Forwarding state for the home address still on the HA or FA (routes, rules)."""
    out = []
    for h in (lab.ha, lab.fa):
        for cmd in ("ip route show table all", "ip rule"):
            out += [f"{h.name}: {ln}" for ln in h.run(cmd).stdout.splitlines() if HOA in ln]
    return out


TCP_SERVER = """
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
TCP_CLIENT = """
import hashlib, random, socket, sys
data = random.Random(4).randbytes(10 * 1024 * 1024)
c = socket.create_connection((sys.argv[1], 5001), timeout=30)
c.sendall(data); c.close()
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"""


def register(lab: Lab, encap: str, reverse: bool, lifetime: int = 600) -> dict[str, object]:
    work = lab.workdir
    lab.start_fa(work, gre=encap == "gre", backend=lab.backend)
    lab.start_mn(work, encap, reverse, lifetime)
    b = lab.wait_registered()
    assert b["home_address"] == HOA and b["care_of"] == COA and b["ha_address"] == HA
    return b


@pytest.mark.parametrize(("encap", "proto"), [("ipip", 4), ("gre", 47), ("minimal", 55)])
def test_registered_mn_answers_pings_through_each_encapsulation(
    lab: Lab, tmp_path: Path, encap: str, proto: int
) -> None:
    b = register(lab, encap, reverse=False)
    try:
        assert b["encap"] == {"ipip": "ipip", "gre": "gre", "minimal": "minimal"}[encap], b
        visitor = lab.fa_visitors()[0]
        key = b["gre_key"]
        if encap == "gre":
            assert isinstance(key, int) and key == visitor["gre_key"]
        else:
            assert key is None
        pcap = str(tmp_path / f"{encap}.pcap")
        cap = lab.r.capture(lab.r_fa_if, pcap, f"ip proto {proto}")
        assert ping_ok(lab, "cn", HOA)
        cap.stop()
        pkts = read_pcap(pcap)
        assert len(pkts) == 3
        for p in pkts:
            outer, _ = decode_ipv4(p)
            assert (outer.proto, outer.src, outer.dst) == (proto, HA, COA)
            if proto == 4:
                _, inner = decap_ipip(p)
            elif proto == 47:
                _, gre, inner = decap_gre(p)
                assert gre.key == key  # the key from the registration
            else:
                _, mh, inner = decap_minimal(p)
                assert mh.src == CN
            ih, _ = decode_ipv4(inner)
            assert (ih.src, ih.dst, ih.proto) == (CN, HOA, 1)
        if shutil.which("tshark") and proto != 55:  # tshark has no dissector for 55
            fields = ["-e", "ip.proto"] + (["-e", "gre.key"] if proto == 47 else [])
            out = subprocess.run(
                ["tshark", "-r", pcap, "-T", "fields", *fields],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.splitlines()
            assert out and out[0].split("\t")[0].split(",")[0] == str(proto)
            if proto == 47:
                assert int(out[0].split("\t")[1], 16) == key
        # Without T the MN's own traffic goes triangularly: nothing from the CoA at the HA.
        pcap2 = str(tmp_path / "tri.pcap")
        cap = lab.r.capture(lab.r_ha_if, pcap2, "")
        assert ping_ok(lab, "mn", CN)
        cap.stop()
        assert count_ipv4(pcap2, COA, proto) == 0 and count_ipv4(pcap2, HOA, 1) == 0
    finally:
        lab.stop_nodes("mn", "fa")


def test_reverse_tunnel_then_deregistration_removes_forwarding_state(
    lab: Lab, tmp_path: Path
) -> None:
    b = register(lab, "gre", reverse=True)
    try:
        assert int(str(b["flags"])) & FLAG_T
        pcap = str(tmp_path / "rev.pcap")
        cap = lab.r.capture(lab.r_ha_if, pcap, "ip proto 47")
        assert ping_ok(lab, "mn", CN)
        cap.stop()
        assert count_ipv4(pcap, COA, 47) >= 3  # echo requests reverse-tunnelled CoA -> HA
        assert leftovers(lab)  # host routes / the reverse-tunnel rule are installed
        # 10 MB of TCP CN -> MN (GRE to the CoA) with its ACKs reverse-tunnelled back.
        srv = lab.mn.popen([sys.executable, "-c", TCP_SERVER], stdout=subprocess.PIPE)
        assert srv.stdout is not None and srv.stdout.readline().strip() == "listening"
        sent = lab.cn.run([sys.executable, "-c", TCP_CLIENT, HOA], timeout=60).stdout.split()
        assert srv.stdout.readline().split() == sent and sent[0] == str(10 * 1024 * 1024)
        srv.wait(timeout=10)
        # Deregistration: SIGTERM makes the MN deregister (lifetime 0) before it exits.
        assert lab.nodes["mn"].terminate() == 0
        assert wait_until(lambda: not lab.ha_bindings() and not lab.fa_visitors(), 5)
        assert not ping_ok(lab, "cn", HOA, count=1)
        assert leftovers(lab) == []
    finally:
        lab.stop_nodes("mn", "fa")


def test_expiry_removes_forwarding_state(lab: Lab) -> None:
    register(lab, "ipip", reverse=True, lifetime=3)
    try:
        assert ping_ok(lab, "cn", HOA, count=1)
        lab.nodes["mn"].kill9()  # no deregistration, no renewal: the binding must expire
        t0 = time.monotonic()
        assert wait_until(lambda: not lab.ha_bindings() and not lab.fa_visitors(), 6)
        assert time.monotonic() - t0 <= 4.5
        assert not ping_ok(lab, "cn", HOA, count=1)
        assert leftovers(lab) == []
    finally:
        lab.stop_nodes("mn", "fa")


def test_agents_stop_cleanly_and_leave_no_devices(lab: Lab) -> None:
    register(lab, "ipip", reverse=True)
    lab.stop_nodes("mn", "fa")
    assert TUN not in lab.fa.run("ip link").stdout
    assert leftovers(lab) == []
    # The HA is stopped last (the module fixture's other tests use it): restart afterwards.
    assert lab.nodes["ha"].terminate() == 0
    assert TUN not in lab.ha.run("ip link").stdout
    lab.start_ha(lab.workdir, max_lifetime=600, backend=lab.backend)
