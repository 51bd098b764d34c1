"""The ebpf data plane beyond what every backend does (tests/netns/test_dataplane_tunnels.py):
nothing left behind after kill -9 and a restart of the nodes, its counters in the
management API, and bad input (an unreachable care-of address, a full map, a program the
verifier refuses, ``auto`` passing over it).

    cn (10.1.0.2) --- r --- ha (10.2.0.2; 10.99.0.0/24 routed to it)
                      |
                      +--- fa (CoA 10.3.0.2) --- mn (home address 10.99.0.5)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobileha.core.binding import FLAG_T
from mobileha.dataplane.ebpf import OBJECT
from mobileha.dataplane.ebpf import probe as ebpf_probe
from mobileha.lab.dataplane import CN, COA, HOA, Driver, Lab, build
from mobileha.lab.netns import Host, Topology
from mobileha.lab.scenario import wait_until
from tests.helpers.net import ping_ok
from tests.helpers.netns import require_netns

pytestmark = pytest.mark.netns

SINK = "mha0"  # the sink device of the nodes (dataplane.tun_name)
BROKEN = Path(__file__).with_name("bpf") / "broken.bpf.c"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_netns()
    if problem := ebpf_probe():
        pytest.skip(f"ebpf backend unavailable: {problem}")
    with Topology() as topo:
        lab = build(topo)
        lab.workdir = tmp_path
        lab.backend = "ebpf"
        try:
            yield lab
        finally:
            lab.stop_nodes()
            for d in (lab.ha_dp, lab.fa_dp):
                if d is not None:
                    d.quit()


def prog_ids(h: Host) -> set[int]:
    """Ids of the BPF programs attached by tc anywhere in ``h``'s namespace."""
    ids: set[int] = set()
    for line in h.run("ip -o link show").stdout.splitlines():
        dev = line.split(": ")[1].split("@")[0]
        for hook in ("ingress", "egress"):
            out = h.run(f"tc filter show dev {dev} {hook}", check=False).stdout
            ids |= {int(m) for m in re.findall(r" id (\d+) ", out)}
    return ids


def prog_loaded(pid: int) -> bool:
    return (
        subprocess.run(["bpftool", "prog", "show", "id", str(pid)], capture_output=True).returncode
        == 0
    )


def leftovers(lab: Lab) -> list[str]:
    out = []
    for h in (lab.ha, lab.fa):
        out += [f"{h.name}: {ln}" for ln in h.run("ip -o link").stdout.splitlines() if SINK in ln]
        out += [
            f"{h.name}: {ln}" for ln in h.run("tc qdisc show").stdout.splitlines() if "clsact" in ln
        ]
        for cmd in ("ip route show table all", "ip rule"):
            out += [f"{h.name}: {ln}" for ln in h.run(cmd).stdout.splitlines() if HOA in ln]
    return out


def register(lab: Lab, encap: str = "gre") -> dict[str, Any]:
    lab.start_fa(lab.workdir, gre=encap == "gre", backend="ebpf")
    lab.start_mn(lab.workdir, encap, reverse=True)
    return lab.wait_registered()


def metrics_text(h: Host) -> str:
    code = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8434/metrics').read().decode())"
    return h.run([sys.executable, "-c", code]).stdout


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
def test_kill9_and_restart_leave_no_program_device_route_or_rule(lab: Lab) -> None:
    lab.prepare_mn_link()
    lab.start_ha(lab.workdir, max_lifetime=600, backend="ebpf")
    register(lab)
    assert ping_ok(lab, "cn", HOA) and ping_ok(lab, "mn", CN)
    old = prog_ids(lab.ha) | prog_ids(lab.fa)
    assert len(old) == 6  # mh_out, mh_seg, mh_in on each agent
    for n in ("mn", "fa", "ha"):
        lab.nodes[n].kill9()
    assert leftovers(lab)  # the kernel keeps forwarding state of a killed node...
    assert all(prog_loaded(i) for i in old)  # ...and its programs, held by the filters
    # A restart removes what the killed instance left, then works as before.
    ha = lab.start_ha(lab.workdir, max_lifetime=600, backend="ebpf")
    assert "removed what a previous ebpf data plane left" in ha.tail()
    lab.nodes.pop("fa")
    lab.nodes.pop("mn")
    register(lab)
    assert "removed what a previous ebpf data plane left" in lab.nodes["fa"].tail()
    assert not any(prog_loaded(i) for i in old)
    assert ping_ok(lab, "cn", HOA) and ping_ok(lab, "mn", CN)
    new = prog_ids(lab.ha) | prog_ids(lab.fa)
    assert len(new) == 6 and not new & old
    # Counters of the live backend: the stats view, the binding and /metrics.
    ha_stats = lab.nodes["ha"].api("stats")["dataplane"]
    assert ha_stats["backend"] == "ebpf" and ha_stats["tunnels"] == 1
    assert ha_stats["totals"]["tx_pkts"] >= 3 and ha_stats["totals"]["rx_pkts"] >= 3
    traffic = lab.ha_bindings()[0]["traffic"]
    assert traffic["tx_pkts"] >= 3 and traffic["rx_pkts"] >= 3 and traffic["drops"] == 0
    text = metrics_text(lab.ha)
    assert 'mobileha_dataplane_backend{backend="ebpf"} 1.0' in text
    assert re.search(r'mobileha_dataplane_packets_total\{direction="tx"\} [1-9]', text)
    assert f'mobileha_dataplane_tunnel_packets_total{{care_of="{COA}"' in text
    assert lab.nodes["fa"].api("stats")["dataplane"]["backend"] == "ebpf"
    # A clean stop: nothing at all is left, and the programs are gone from the kernel.
    lab.stop_nodes("mn", "fa", "ha")
    assert leftovers(lab) == []
    assert not any(prog_loaded(i) for i in new)


def tool(lab: Lab, h: Host, *args: str) -> Driver:
    return Driver(h, "--backend", "ebpf", "--tun", "mhtun0", *args)


def test_unreachable_care_of_address_logged_counted_others_unaffected(lab: Lab) -> None:
    lab.ha_dp = tool(lab, lab.ha, "--role", "ha")
    lab.fa_dp = tool(lab, lab.fa, "--role", "fa", "--visitor-iface", lab.fa_mn_if)
    lab.register(lab.binding("ipip", flags=FLAG_T))
    lab.ha.ip("route", "add", "unreachable", "192.0.2.0/24")
    lost = lab.binding("ipip", home_addr="10.99.0.6", care_of="192.0.2.1")
    lab.ha_dp.cmd("install", binding=lost)  # accepted: routing may still converge
    assert not ping_ok(lab, "cn", "10.99.0.6", count=2)
    st = lab.ha_dp.stats()
    assert st["errors"]["coa-unreachable"] == 1
    assert st["drops"]["unreachable"] == 2
    by_coa = {t["care_of"]: t for t in st["tunnels"]}
    assert by_coa["192.0.2.1"]["drops"] == 2 and by_coa["192.0.2.1"]["tx_pkts"] == 0
    assert ping_ok(lab, "cn", HOA) and ping_ok(lab, "mn", CN)  # the other MN is fine
    lab.ha_dp.quit()
    assert lab.ha_dp.proc.stderr is not None
    log = lab.ha_dp.proc.stderr.read()
    assert "tunnel peer unreachable" in log
    lab.ha_dp = None


def test_full_map_refuses_the_binding_with_a_reason_and_keeps_the_others(lab: Lab) -> None:
    lab.ha_dp = tool(lab, lab.ha, "--role", "ha", "--capacity", "16")
    lab.fa_dp = tool(lab, lab.fa, "--role", "fa", "--visitor-iface", lab.fa_mn_if)
    lab.register(lab.binding("gre", gre_key=9, flags=FLAG_T))
    for i in range(15):
        lab.ha_dp.cmd("install", binding=lab.binding("ipip", home_addr=f"10.99.0.{100 + i}"))
    with pytest.raises(RuntimeError, match="BPF map full \\(16 entries\\)"):
        lab.ha_dp.cmd("install", binding=lab.binding("ipip", home_addr="10.99.0.200"))
    st = lab.ha_dp.stats()
    assert st["errors"]["map-full"] == 1 and len(st["tunnels"]) == 16
    assert "10.99.0.200" not in lab.ha.run("ip route").stdout
    assert ping_ok(lab, "cn", HOA) and ping_ok(lab, "mn", CN)
    # room again after a removal
    lab.ha_dp.cmd("remove", binding=lab.binding("ipip", home_addr="10.99.0.100"))
    lab.ha_dp.cmd("install", binding=lab.binding("ipip", home_addr="10.99.0.200"))


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
def test_program_refused_by_the_verifier_leaves_nothing_and_auto_passes_over_it(
    lab: Lab, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.bpf.o"
    subprocess.run(
        ["clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{_multiarch()}",
         f"-I{OBJECT.parent}", "-c", str(BROKEN), "-o", str(broken)],
        check=True,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=r"(?s)refused .*verifier log") as e:
        tool(lab, lab.ha, "--role", "ha", "--bpf-object", str(broken))
    assert "mh_in" in str(e.value)
    assert leftovers(lab) == [] and "mhtun0" not in lab.ha.run("ip link").stdout
    # auto: the ebpf backend is passed over with the reason, the next one starts
    d = Driver(lab.ha, "--backend", "auto", "--role", "ha", "--tun", "mhtun0", "--bpf-object",
               str(broken))  # fmt: skip
    try:
        ready = d.ready
        assert ready["backend"] in ("kernel", "userspace")
        assert "refused" in ready["not_taken"]["ebpf"]
    finally:
        d.quit()


def _multiarch() -> str:
    import platform

    return f"{platform.machine()}-linux-gnu"


def test_counters_survive_a_care_of_change_and_stop_at_removal(lab: Lab) -> None:
    lab.ha_dp = tool(lab, lab.ha, "--role", "ha")
    lab.fa_dp = tool(lab, lab.fa, "--role", "fa", "--visitor-iface", lab.fa_mn_if)
    b = lab.binding("ipip", flags=FLAG_T)
    lab.register(b)
    assert ping_ok(lab, "cn", HOA)
    lab.register(lab.binding("gre", gre_key=3, flags=FLAG_T))  # same CoA, new encapsulation
    assert ping_ok(lab, "cn", HOA)
    (t,) = lab.ha_dp.stats()["tunnels"]
    assert t["tx_pkts"] == 6 and t["rx_pkts"] == 6
    lab.deregister(b)
    assert lab.ha_dp.stats()["tunnels"] == []
    assert wait_until(lambda: not ping_ok(lab, "cn", HOA, count=1), 3)


TABLE = r"""
import json, sys
from mobileha.core.binding import FLAG_S, FLAG_T, Binding, Encap
from mobileha.dataplane.ebpf import EbpfDataPlane

def table():
    out = []
    for i in range(300):
        hoa = f"10.99.{i // 200}.{i % 200 + 1}"
        copies = 3 if i % 10 == 0 else 1  # simultaneous bindings, mixed encapsulations
        for c in range(copies):
            enc = (Encap.IPIP, Encap.GRE, Encap.MINIMAL)[(i + c) % 3]
            out.append(Binding(hoa, f"10.3.{c}.{i % 7 + 2}", "10.2.0.2", 600, 1e9, i,
                               (FLAG_S if copies > 1 else 0) | (FLAG_T if i % 2 else 0), enc,
                               i if enc == Encap.GRE else None))
    return out

def dump(dp):
    names = ("mh_enc", "mh_more", "mh_dec", "mh_peer", "mh_local")
    return {n: sorted((k.hex(), v.hex()) for k, v in dp.maps[n].items()) for n in names}

bs = table()
a = EbpfDataPlane("ha", sink="mhtun0", home_prefix="10.99.0.0/16", capacity=1024)
n = a.install_many(bs)
batch = dump(a)
a.close()
b = EbpfDataPlane("ha", sink="mhtun0", home_prefix="10.99.0.0/16", capacity=1024)
for x in bs:
    b.install(x)
single = dump(b)
for x in bs[::2]:
    b.remove(x)
for x in bs[1::2]:
    b.remove(x)
empty = dump(b)
b.close()
print(json.dumps({"n": n, "same": batch == single, "sizes": {k: len(v) for k, v in batch.items()},
                  "left": {k: len(v) for k, v in empty.items()}}))
"""


def test_install_many_writes_the_same_maps_as_one_by_one(lab: Lab) -> None:
    out = json.loads(lab.ha.run([sys.executable, "-c", TABLE], timeout=120).stdout)
    assert out["n"] == 360 and out["same"], out
    # 300 home addresses, 30 of them with two extra copies; reverse tunnels (T) for the odd
    # ones (single copies); 7 + 7 + 7 care-of addresses; one HA address
    sizes = {"mh_enc": 300, "mh_more": 60, "mh_dec": 150, "mh_peer": 21, "mh_local": 1}
    assert out["sizes"] == sizes, out
    assert out["left"] == dict.fromkeys(("mh_enc", "mh_more", "mh_dec", "mh_peer", "mh_local"), 0)
