"""The namespace harness itself: build, run, loss, teardown."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from mobileha.lab.netns import IFNAMSIZ, NetnsError, Topology, netns_available

pytestmark = pytest.mark.netns


def _ns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_two_hosts_via_router_and_bridge(topology: Topology) -> None:
    a, r, b, c = (topology.host(n) for n in ("a", "r", "b", "c"))
    lan = topology.bridge("lan")
    topology.link(a, r, "10.9.1.2/24", "10.9.1.1/24")
    topology.link(r, lan, "10.9.2.1/24")
    topology.link(b, lan, "10.9.2.2/24")
    topology.link(c, lan, "10.9.2.3/24")
    a.route("default", via="10.9.1.1")
    b.route("default", via="10.9.2.1")
    r.forwarding()
    assert a.run("ping -c1 -W2 10.9.2.2", check=False).returncode == 0
    assert b.run(["ping", "-c1", "-W2", "10.9.2.3"], check=False).returncode == 0
    for h in (a, r, b, c, lan):
        assert h.ns.startswith(topology.run_id)
    with pytest.raises(NetnsError):
        a.run("false")


def test_bridge_inside_host_and_names(topology: Topology) -> None:
    ha, x = topology.host("ha"), topology.host("x")
    hb = topology.bridge("home", host=ha)
    ln = topology.link(x, hb, "10.9.3.2/24", "10.9.3.1/24")
    assert len(ln.b_if) <= IFNAMSIZ
    assert x.run("ping -c1 -W2 10.9.3.1", check=False).returncode == 0
    with pytest.raises(NetnsError):
        topology.link(x, ha, a_name="x" * 16)


def test_loss_rule_drops_about_the_share(topology: Topology) -> None:
    a, b = topology.host("a"), topology.host("b")
    topology.link(a, b, "10.9.4.1/24", "10.9.4.2/24")
    b.loss(100, "icmp type echo-request")
    assert a.run("ping -c1 -W1 10.9.4.2", check=False).returncode != 0
    b.run("nft flush ruleset")
    assert a.run("ping -c1 -W1 10.9.4.2", check=False).returncode == 0
    b.loss(30, "icmp type echo-request")
    out = a.run("ping -q -c 300 -i 0.002 -W 1 10.9.4.2", check=False, timeout=20).stdout
    received = int(out.split(" received")[0].rsplit(",", 1)[1])
    assert 150 <= received <= 260, out


def test_teardown_on_exception_kills_processes() -> None:
    ok, reason = netns_available()
    if not ok:
        pytest.skip(reason)
    with pytest.raises(RuntimeError), Topology() as topo:
        h = topo.host("h")
        p = h.popen(["sleep", "60"])
        names = topo.namespaces()
        raise RuntimeError("boom")
    assert p.poll() is not None
    listing = _ns_list()
    assert not any(n in listing for n in names)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_teardown_on_sigterm_and_ctrl_c(sig: int) -> None:
    ok, reason = netns_available()
    if not ok:
        pytest.skip(reason)
    code = textwrap.dedent(
        """
        import sys, time
        from mobileha.lab.netns import Topology
        t = Topology()
        h = t.host("h")
        h.popen(["sleep", "60"])
        print(t.namespaces()[0], flush=True)
        time.sleep(60)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    ns = p.stdout.readline().strip()
    assert ns in _ns_list()
    p.send_signal(sig)
    p.wait(timeout=10)
    assert ns not in _ns_list()


def test_from_spec_builds_and_cleans_up_on_error() -> None:
    ok, reason = netns_available()
    if not ok:
        pytest.skip(reason)
    spec = {
        "hosts": ["a", "r", "b"],
        "bridges": [{"name": "lan"}],
        "links": [
            {"a": "a", "b": "r", "a_addr": "10.9.5.2/24", "b_addr": "10.9.5.1/24"},
            {"a": "r", "b": "lan", "a_addr": "10.9.6.1/24"},
            {"a": "b", "b": "lan", "a_addr": "10.9.6.2/24"},
        ],
        "routes": [
            {"host": "a", "dst": "default", "via": "10.9.5.1"},
            {"host": "b", "dst": "default", "via": "10.9.6.1"},
        ],
        "sysctls": [{"host": "r", "key": "net.ipv4.ip_forward", "value": 1}],
    }
    with Topology.from_spec(spec) as topo:
        assert topo.hosts["a"].run("ping -c1 -W2 10.9.6.2", check=False).returncode == 0
    assert not any(n in _ns_list() for n in topo.namespaces())
    bad = {"hosts": ["a"], "links": [{"a": "a", "b": "missing"}]}
    with pytest.raises(KeyError):
        Topology.from_spec(bad)
    assert topo.run_id not in _ns_list()
