"""Reload of running processes (the loopback cluster of examples/loopback/): an MN added to
both home agents, a changed SLB weight, a changed log level and an FA setting, by SIGHUP and
by ``mobileha reload``; no binding, SLB session or visitor is lost, the new MN registers,
the changes show in ``show``; an invalid file is refused and the node runs on with its old
config."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.helpers.loopback import loopback_cluster
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(150)

N_MN = 20
MN21 = """
[[mobile_node]]
nai = "mn21@example.net"
spi = 256
key = "hex:00112233445566778899aabbccddeeff"
algorithm = "hmac-md5"
"""


def test_sighup_and_mobileha_reload(tmp_path: Path) -> None:
    with loopback_cluster(tmp_path) as c:
        wait_for(lambda: sum(c.bindings()) == N_MN, 40, "20 bindings", 0.2, ignore=(Exception,))
        sessions = c.api("slb", "/api/sessions")["total"]
        assert sessions == N_MN
        # both HAs learn mn21 and log at debug; SIGHUP
        for ha in ("ha-a", "ha-b"):
            p = c.paths[ha]
            text = p.read_text().replace("[management]", '[log]\nlevel = "debug"\n\n[management]')
            p.write_text(text + MN21)
            c.procs[ha].send_signal(signal.SIGHUP)
        for ha in ("ha-a", "ha-b"):
            wait_for(lambda h=ha: c.api(h, "/api/reload")["generation"] == 1, 10, f"{ha} reload")
            view = c.api(ha, "/api/reload")
            assert view["ok"] and "log.level: info -> debug" in view["changed"], view
            assert any(x == "mobile_node: 20 entries -> 21 entries" for x in view["changed"]), view
        # the SLB's weight of ha-a through `mobileha reload`
        slb = c.paths["slb"]
        slb.write_text(slb.read_text().replace('name = "ha-a"\n', 'name = "ha-a"\nweight = 3\n'))
        r = subprocess.run(
            [*mobileha_command(), "reload", "--config", str(slb)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "applied  slb.real[0].weight: 8 -> 3" in r.stdout, r.stdout
        show = subprocess.run(
            [*mobileha_command(), "show", "slb", "--json", "--config", str(slb)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        reals = {x["name"]: x for x in json.loads(show.stdout)["reals"]}
        assert reals["ha-a"]["weight_admin"] == 3 and reals["ha-b"]["weight_admin"] == 8
        # the FA: a new maximum lifetime, its visitors kept
        fa = c.paths["fa"]
        fa.write_text(
            fa.read_text().replace(
                "home_agent_port = 10434", "home_agent_port = 10434\nmax_lifetime = 900"
            )
        )
        c.procs["fa"].send_signal(signal.SIGHUP)
        wait_for(lambda: c.api("fa", "/api/reload")["generation"] == 1, 10, "fa reload")
        assert c.api("fa", "/api/reload")["changed"] == ["foreign_agent.max_lifetime: 36000 -> 900"]
        # nothing lost
        assert sum(c.bindings()) == N_MN
        assert c.api("slb", "/api/sessions")["total"] == N_MN
        assert c.api("fa", "/api/visitors")["total"] == N_MN
        # the new MN registers (one more MN process, its own address and API)
        mn21 = tmp_path / "mn21.toml"
        mn21.write_text(
            c.paths["mn"].read_text()
            .replace('nai = "mn{n}@example.net"', 'nai = "mn21@example.net"')
            .replace("count = 20", "count = 1")
            .replace(f'local_address = "{c.addr(30)}"', f'local_address = "{c.addr(31)}"')
            .replace(f"127.0.0.1:{c.ports['mn']}", "127.0.0.1:0")
        )  # fmt: skip
        c.start("mn21", mn21)
        wait_for(lambda: sum(c.bindings()) == N_MN + 1, 20, "mn21 bound", 0.2, ignore=(Exception,))
        # an invalid file: refused, the node runs on
        ha_a = c.paths["ha-a"]
        good = ha_a.read_text()
        ha_a.write_text(good.replace("port = 10434", "port = 70000", 1))
        r = subprocess.run(
            [
                *mobileha_command(), "reload", "--api", f"http://127.0.0.1:{c.ports['ha-a']}",
                "--token", str(c.tokens["ha-a"]),
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert r.returncode == 1 and "reload refused" in r.stdout, r.stdout + r.stderr
        assert "home_agent.port" in r.stdout, r.stdout
        assert c.procs["ha-a"].poll() is None
        assert sum(c.bindings()) == N_MN + 1
        assert c.api("ha-a", "/api/reload")["ok"] is False
    log_a = c.log("ha-a")
    assert "config reloaded" in log_a and "reload refused" in log_a
    assert "level=debug" in log_a  # the new log level took effect
