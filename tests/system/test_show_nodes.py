"""`mobileha show` and `/metrics` against running nodes: `mobileha run` processes on
127.x.y.z (SLB in relay mode, a real HA with its DFP agent, an FA, a mobile-node fleet)
registering through the SLB; every view the nodes serve is rendered by the real
`mobileha show` command and every node's /metrics is parsed by prometheus_client."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, wait_for
from tests.helpers.procs import mobileha_command, wait_ready

pytestmark = pytest.mark.timeout(120)

KEY = "hex:000102030405060708090a0b0c0d0e0f"
N_MN = 20


class Node:
    def __init__(self, tmp: Path, name: str, body: str) -> None:
        self.name = name
        self.api_port = free_port("127.0.0.1", socket.SOCK_STREAM)
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.cfg = tmp / f"{name}.toml"
        self.cfg.write_text(
            f'[node]\nname = "{name}"\n{body}\n[management]\nlisten = "127.0.0.1:{self.api_port}"\n'
        )
        chk = subprocess.run(
            [*mobileha_command(), "check", str(self.cfg)], capture_output=True, text=True
        )
        assert chk.returncode == 0, chk.stderr
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*mobileha_command(), "run", str(self.cfg)], stdout=subprocess.DEVNULL, stderr=log
            )
        wait_ready(
            self.proc,
            lambda: urllib.request.urlopen(self.url + "/healthz", timeout=2).read(),
            20,
            name,
            self.log,
        )

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def views(self) -> list[str]:
        v: list[str] = self.get("/")["views"]
        return v

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


def show(node: Node, view: str, *extra: str) -> str:
    r = subprocess.run(
        [*mobileha_command(), "show", view, "--api", node.url, *extra],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


KEY_SLB = "text:show-slb-ha"
KEY_DFP = "text:show-dfp"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    tmp = tmp_path_factory.mktemp("show")
    net = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
    ha_addr, fa_addr, vip = f"{net}.10", f"{net}.20", f"{net}.50"
    ha_port, fa_port, vip_port = free_port(ha_addr), free_port(fa_addr), free_port(vip)
    dfp_port = free_port(ha_addr, socket.SOCK_STREAM)
    sas = "".join(
        f'[[mobile_node]]\nnai = "mn{i}@example.net"\nspi = 256\nkey = "{KEY}"\n'
        'algorithm = "hmac-md5"\n'
        for i in range(1, N_MN + 1)
    )
    configs = {
        "ha": f"""role = "home-agent"
[home_agent]
address = "{ha_addr}"
port = {ha_port}
trusted_slb = ["{vip}"]
home_prefix = "10.88.0.0/16"
[[home_agent.slb_sa]]
address = "{vip}"
spi = 500
key = "{KEY_SLB}"
[dataplane]
backend = "memory"
[dfp]
listen = "{ha_addr}:{dfp_port}"
interval_s = 1
password = "{KEY_DFP}"
{sas}""",
        "slb": f"""role = "slb"
[slb]
virtual_address = "{vip}"
port = {vip_port}
mode = "relay"
[slb.relay_sa]
spi = 500
key = "{KEY_SLB}"
[[slb.real]]
name = "pair-a"
address = "{ha_addr}"
port = {ha_port}
dfp_agent = "{ha_addr}:{dfp_port}"
[dfp]
retry_interval_s = 1
password = "{KEY_DFP}"
""",
        "fa": f"""role = "foreign-agent"
[foreign_agent]
address = "{fa_addr}"
port = {fa_port}
home_agent = "{vip}"
home_agent_port = {vip_port}
real_home_agents = ["{ha_addr}"]
[dataplane]
backend = "memory"
""",
        "mn": f"""role = "mobile-node"
[mobile_node]
nai = "mn{{n}}@example.net"
count = {N_MN}
home_agent = "{vip}"
foreign_agent = "{fa_addr}:{fa_port}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
""",
    }
    nodes: dict[str, Node] = {}
    try:
        for name, body in configs.items():
            nodes[name] = Node(tmp, name, body)
        ha = nodes["ha"]
        wait_for(
            lambda: ha.get("/api/bindings")["total"] == N_MN,
            30,
            "all MNs registered",
            step=0.1,
            ignore=(Exception,),
        )
        wait_for(
            lambda: nodes["slb"].get("/api/dfp")["agents"][0]["state"] == "connected",
            15,
            "DFP manager connected",
            step=0.1,
            ignore=(Exception,),
        )
        yield nodes
    finally:
        for n in reversed(list(nodes.values())):
            n.stop()


def test_show_bindings_on_the_home_agent(cluster: dict[str, Node]) -> None:
    out = show(cluster["ha"], "bindings")
    assert out.startswith(f"Mobility Binding List:\nTotal {N_MN}\n")
    assert out.count("    Care-of Addr ") == N_MN
    assert out.count("    Lifetime granted ") == N_MN and "    Flags " in out
    nais = {ln.split()[1] for ln in out.splitlines() if ln.startswith("    NAI ")}
    assert nais == {f"mn{i}@example.net" for i in range(1, N_MN + 1)}
    # paging through the real API: 3 rows per page, every binding exactly once
    data = json.loads(show(cluster["ha"], "bindings", "--json"))
    assert data["total"] == N_MN and len(data["items"]) == N_MN
    page = cluster["ha"].get("/api/bindings?offset=0&limit=3")
    assert len(page["items"]) == 3 and page["next_offset"] == 3


def test_show_slb_and_sessions_on_the_slb(cluster: dict[str, Node]) -> None:
    out = show(cluster["slb"], "slb")
    assert out.startswith("slb vserver ") and "mode relay" in out
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("127."))
    assert "OPERATIONAL" in row
    out = show(cluster["slb"], "sessions")
    assert out.startswith("Total sessions ")
    assert "mn1@example.net" in out or int(out.split()[2]) == 0


def test_show_dfp_on_both_ends(cluster: dict[str, Node]) -> None:
    out = show(cluster["slb"], "dfp")
    assert "manager" in out and "connected" in out
    out = show(cluster["ha"], "dfp")
    assert "agent" in out


def test_show_stats_everywhere(cluster: dict[str, Node]) -> None:
    for name in ("ha", "slb", "fa", "mn"):
        if "stats" in cluster[name].views():
            out = show(cluster[name], "stats")
            assert "uptime" in out
    out = show(cluster["ha"], "stats")
    assert "registrationAccepted" in out


def test_show_standby_and_redundancy_when_served(cluster: dict[str, Node]) -> None:
    views = cluster["ha"].views()
    served = [v for v in ("standby", "redundancy") if v in views]
    if not served:
        pytest.skip("this home agent serves no standby/redundancy view (no [hsrp] here)")
    for v in served:
        assert show(cluster["ha"], v)


def test_metrics_of_every_node_parse(cluster: dict[str, Node]) -> None:
    names: dict[str, set[str]] = {}
    for key, node in cluster.items():
        with urllib.request.urlopen(node.url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        names[key] = {f.name for f in text_string_to_metric_families(text)}
        assert "mobileha_node_info" in names[key]
    assert "cmiHaRegTotalMobilityBindings" in names["ha"]
    assert "mobileha_ha_replies" in names["ha"]
    assert {"slbRealState", "slbRealOperWeight"} <= names["slb"]


def test_show_refuses_a_view_the_node_lacks(cluster: dict[str, Node]) -> None:
    r = subprocess.run(
        [*mobileha_command(), "show", "slb", "--api", cluster["fa"].url],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "has no 'slb' view" in r.stderr, r.stderr
    assert "served by an HA-SLB" in r.stderr  # which config gives the view
