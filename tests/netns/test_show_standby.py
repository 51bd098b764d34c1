"""`mobileha show standby` against running HSRP routers: two namespaces joined by a veth, each
running an ``HsrpNode`` behind the real management API; the standby view of both routers
is rendered by the real `mobileha show` command inside each namespace, and their /metrics
are parsed with prometheus_client's parser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mobileha.lab.netns import Host, Topology
from tests.helpers import wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

VIP = "10.78.0.1"
API = "http://127.0.0.1:8434"

ROUTER = r"""
import asyncio, signal, sys
from mobileha.mgmt.api import ManagementServer
from mobileha.node.hsrp import HsrpNode, build_arg_parser, config_from_args

async def main() -> None:
    node = HsrpNode(config_from_args(build_arg_parser().parse_args(sys.argv[1:])))
    await node.start()
    api = ManagementServer(node, "127.0.0.1", 8434)
    await api.start()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(s, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await node.stop()
    await api.stop()

asyncio.run(main())
"""


def mobileha(host: Host, *args: str) -> str:
    r = host.run([sys.executable, "-m", "mobileha.cli", *args], check=False, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def wait_state(host: Host, state: str, timeout: float = 10.0) -> str:
    """``mobileha show standby`` on ``host`` until it says ``state``; that output."""
    last = [""]

    def shown() -> str | None:
        cmd = [sys.executable, "-m", "mobileha.cli", "show", "standby", "--api", API]
        last[0] = host.run(cmd, check=False, timeout=30).stdout
        return last[0] if f"  State is {state}\n" in last[0] else None

    out: str = wait_for(shown, timeout, f"{host.name} {state}", 0.2, detail=lambda: last[0])
    return out


def test_show_standby_on_two_hsrp_routers(topology: Topology, tmp_path: Path) -> None:
    script = tmp_path / "router.py"
    script.write_text(ROUTER)
    r1, r2 = topology.host("r1"), topology.host("r2")
    topology.link(r1, r2, "10.78.0.2/24", "10.78.0.3/24")
    procs = []
    for h, addr, prio in ((r1, "10.78.0.2", 110), (r2, "10.78.0.3", 100)):
        argv = [sys.executable, str(script), "-i", "eth0", "--group", "7", "--version", "2",
                "--vip", VIP, "--address", addr, "--priority", str(prio), "--preempt",
                "--hello-ms", "100", "--hold-ms", "400", "--auth", "md5:show-standby"]  # fmt: skip
        log = open(tmp_path / f"{h.name}.log", "w")  # noqa: SIM115
        procs.append(h.popen(argv, stdout=subprocess.PIPE, stderr=log))
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"

    standby = wait_state(r2, "Standby")
    assert "  Active router is 10.78.0.2, priority 110 (expires in " in standby
    assert "  Standby router is local\n" in standby
    active = wait_state(r1, "Active")
    for line in (
        "eth0 - Group 7 (version 2)",
        f"  Virtual IP address is {VIP}",
        "  Active virtual MAC address is 0000.0c9f.f007",
        "  Hello time 100 msec, hold time 400 msec",
        "  Preemption enabled",
        "  Active router is local",
        "  Priority 110 (configured 110)",
    ):
        assert line + "\n" in active, (line, active)
    assert "  Standby router is 10.78.0.3, priority 100 (expires in " in active

    metrics = mobileha_metrics(r1)
    assert "mobileha_node_info" in metrics

    for p in procs:
        p.terminate()
        p.wait(10)


def mobileha_metrics(host: Host) -> set[str]:
    code = (
        "import urllib.request;"
        f"print(urllib.request.urlopen('{API}/metrics', timeout=5).read().decode())"
    )
    r = host.run([sys.executable, "-c", code], timeout=30)
    return {f.name for f in text_string_to_metric_families(r.stdout)}
