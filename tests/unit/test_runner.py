"""`mobileha run`: role lookup, start/stop sequence, exit codes, SIGTERM/SIGINT clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mobileha import compose, runner
from mobileha.config import Config, loads_config
from mobileha.log import get_logger
from mobileha.mgmt.views import View

ROOT = Path(__file__).resolve().parents[2]

SLB_CFG = """
[node]
role = "slb"
name = "fake-slb"
[management]
listen = "127.0.0.1:0"
[log]
level = "info"
[slb]
virtual_address = "127.0.0.1"
port = 10434
mode = "relay"
[[slb.real]]
address = "127.0.0.2"
"""


class FakeRoleNode:
    """Stands in for a role's node (built from the config, the Node protocol)."""

    instances: list[FakeRoleNode] = []
    fail_start = False
    finish_with: int | None = None

    def __init__(self, cfg: Config) -> None:
        self.role = cfg.role
        self.name = cfg.name
        self.events: list[str] = []
        FakeRoleNode.instances.append(self)

    async def start(self) -> None:
        if self.fail_start:
            raise OSError("address in use")
        self.events.append("start")

    async def stop(self) -> None:
        await asyncio.sleep(0.01)
        self.events.append("stop")
        get_logger("fake").info("fake node stopped cleanly", node=self.name)

    def views(self) -> Mapping[str, View]:
        return {"stats": lambda q: {"node": self.name, "events": self.events}}

    def metrics(self) -> Iterable[Any]:
        return []


class FinishingNode(FakeRoleNode):
    async def wait(self) -> int:
        await asyncio.sleep(0.05)
        return 3


@pytest.fixture
def fake_role(monkeypatch: pytest.MonkeyPatch) -> type[FakeRoleNode]:
    FakeRoleNode.instances.clear()
    FakeRoleNode.fail_start = False
    monkeypatch.setitem(compose.ROLE_NODES, "slb", FakeRoleNode)
    return FakeRoleNode


def test_role_table_covers_every_role() -> None:
    from mobileha.config import ROLES

    assert set(compose.ROLE_NODES) == set(ROLES)


def test_role_without_a_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(compose.ROLE_NODES, "slb")
    cfg = loads_config(SLB_CFG)
    with pytest.raises(compose.RoleUnavailable, match="no node for role 'slb'"):
        compose.build_node(cfg)
    assert asyncio.run(runner.run(cfg)) == runner.EXIT_FAILED


def test_start_serves_api_and_stop(fake_role: type[FakeRoleNode]) -> None:
    async def main() -> None:
        r = runner.NodeRunner(loads_config(SLB_CFG))
        await r.start()
        assert r.api is not None and r.api.port != 0
        url = r.api.url
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url + "/api/stats", timeout=5).read()
        )
        assert json.loads(body) == {"node": "fake-slb", "events": ["start"]}
        await r.stop()
        assert r.api is None and fake_role.instances[0].events == ["start", "stop"]

    asyncio.run(main())


def test_start_failure_exits_1(
    fake_role: type[FakeRoleNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_role, "fail_start", True)
    assert asyncio.run(runner.run(loads_config(SLB_CFG))) == runner.EXIT_FAILED


def test_node_that_finishes_sets_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(compose.ROLE_NODES, "slb", FinishingNode)
    monkeypatch.setattr(FakeRoleNode, "fail_start", False)
    FakeRoleNode.instances.clear()
    assert asyncio.run(runner.run(loads_config(SLB_CFG))) == 3
    assert FakeRoleNode.instances[-1].events == ["start", "stop"]


def test_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[node]\nrole = "slb"\n[slb]\nvirtual_address = "10.0.0.1"\nmode = "nat"\n')
    assert runner.main([str(p)]) == runner.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{p}: slb.mode: expected one of directed, relay, got 'nat'" in err


def _spawn(cfg: Path, role_class: str = "FakeRoleNode") -> subprocess.Popen[str]:
    code = (
        "import sys; from mobileha import compose, runner; "
        f"from tests.unit.test_runner import {role_class}; "
        f"compose.ROLE_NODES['slb'] = {role_class}; "
        f"sys.exit(runner.main([{str(cfg)!r}, '--log-level', 'info']))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _api_url(proc: subprocess.Popen[str], seen: list[str]) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if not line:
            break
        m = re.search(r'management API listening" url=(\S+)', line)
        if m:
            return m.group(1)
    proc.kill()
    raise AssertionError("the node never reported its API address")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = tmp_path / "n.toml"
    cfg.write_text(SLB_CFG)
    proc = _spawn(cfg)
    try:
        seen: list[str] = []
        url = _api_url(proc, seen)
        body = urllib.request.urlopen(url + "/api/stats", timeout=5).read()
        assert json.loads(body)["events"] == ["start"]
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
        err = "".join(seen) + err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "signal received, stopping" in err and f"signal={sig.name}" in err
    assert "fake node stopped cleanly" in err and 'msg="node stopped"' in err
    assert "loop=uvloop" in err
