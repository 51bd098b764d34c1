"""Load sharing with two HSRP groups, as real ``mobileha run`` processes on loopback and a
real ``kill -9`` (SIGKILL): HA1 Active for group 1 / Standby for group 2, HA2 the reverse;
the bindings of both VIPs are on both HAs; after SIGKILL of HA1, HA2 is Active for both
groups with every binding (management API: ``standby``, ``bindings``, ``g2-bindings``),
refuses a replayed request with 133 and accepts fresh ones on both VIPs. ``mobileha show
bindings`` / ``show redundancy`` and ``/metrics`` of each HA cover both groups."""

from __future__ import annotations

import contextlib
import io
import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from mobileha.mgmt.show import show
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests import helpers
from tests.helpers import free_port as _free
from tests.helpers.loadshare import N_PER_VIP
from tests.helpers.loadshare import config as _config
from tests.helpers.loadshare import rrq as _rrq
from tests.helpers.procs import log_tails, stop_process


class Proc:
    def __init__(self, tmp: Path, name: str, text: str) -> None:
        self.api_port = _free("127.0.0.1", socket.SOCK_STREAM)
        self.cfg = tmp / f"{name}.toml"
        self.log = tmp / f"{name}.log"
        self.cfg.write_text(
            text.replace(
                "[management]\nenabled = false",
                f'[management]\nlisten = "127.0.0.1:{self.api_port}"',
            )
        )
        exe = Path(sys.executable).parent / "mobileha"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mobileha.cli"]
        self.proc = subprocess.Popen(
            [*cmd, "run", str(self.cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115
        )

    def api(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.api_port}/api/{path}"
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.loads(r.read())

    def states(self) -> dict[int, str]:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            v = self.api("standby")
            groups = v["groups"] if isinstance(v, dict) else v
            return {int(g["group"]): str(g["state"]).capitalize() for g in groups}
        return {}

    def show(self, view: str, **kw: Any) -> str:
        out = io.StringIO()
        show(view, f"http://127.0.0.1:{self.api_port}", out, **kw)
        return out.getvalue()

    def metrics(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.api_port}/metrics"
        with urllib.request.urlopen(url, timeout=3) as r:
            return {f.name: f for f in text_string_to_metric_families(r.read().decode())}

    def total(self, view: str) -> int:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return int(self.api(view)["total"])
        return -1

    def stop(self) -> None:
        stop_process(self.proc)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, *ps: Proc) -> None:
    """Wait for ``cond``; on timeout the message ends with the logs of ``ps``."""
    helpers.wait_for(cond, timeout, what, detail=log_tails(p.log for p in ps))


def test_loadshare_processes_kill9(tmp_path: Path) -> None:
    net = f"127.0.{random.randint(20, 250)}"
    a_ip, b_ip = f"{net}.51", f"{net}.52"
    vips = (f"{net}.151", f"{net}.152")
    port, hsrp_port = _free(a_ip, socket.SOCK_DGRAM), _free(a_ip, socket.SOCK_DGRAM)
    a = Proc(tmp_path, "ha1", _config(a_ip, b_ip, vips, port, hsrp_port, (110, 100)))
    b = Proc(tmp_path, "ha2", _config(b_ip, a_ip, vips, port, hsrp_port, (100, 110)))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(2.0)

    def register(req: bytes, vip: str) -> int:
        for _ in range(3):
            client.sendto(req, (vip, port))
            with contextlib.suppress(TimeoutError):
                return RegistrationReply.decode(client.recv(2048)).code
        return -1

    try:
        wait_for(
            lambda: (
                a.states() == {1: "Active", 2: "Standby"}
                and b.states() == {1: "Standby", 2: "Active"}
            ),
            30,
            "HA1 Active/Standby, HA2 Standby/Active",
            a,
            b,
        )
        requests = {}
        for i in range(2 * N_PER_VIP):
            requests[i] = _rrq(i, vips[i % 2], ntp_identification(time.time(), i))
            assert register(requests[i], vips[i % 2]) == 0, i
        for p in (a, b):
            wait_for(
                lambda p=p: (
                    p.total("bindings") == N_PER_VIP  # type: ignore[misc]
                    and p.total("g2-bindings") == N_PER_VIP
                ),
                10,
                "bindings of both VIPs on both HAs",
                a,
                b,
            )
        for p, states in ((a, ("Active", "Standby")), (b, ("Standby", "Active"))):
            check_groups_shown(p, vips, states)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        wait_for(lambda: b.states() == {1: "Active", 2: "Active"}, 10, "HA2 Active x2", b)
        assert b.total("bindings") == b.total("g2-bindings") == N_PER_VIP
        for view in ("bindings", "g2-bindings"):
            assert {x["state"] for x in b.api(view)["items"]} == {"active"}
        assert register(requests[0], vips[0]) == 133
        for i in (0, 1):
            fresh = _rrq(i, vips[i % 2], ntp_identification(time.time() + 1, 77))
            assert register(fresh, vips[i % 2]) == 0
        check_groups_shown(b, vips, ("Active", "Active"))
        cli = Path(sys.executable).parent / "mobileha"
        if cli.exists():  # the command an operator types
            text = subprocess.run(
                [str(cli), "show", "redundancy", "--api", f"http://127.0.0.1:{b.api_port}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            assert "- HSRP group 1\n" in text and "- HSRP group 2\n" in text
    finally:
        client.close()
        a.stop()
        b.stop()


def check_groups_shown(p: Proc, vips: tuple[str, str], states: tuple[str, str]) -> None:
    """``show redundancy``, ``show bindings`` (text, JSON, a window across the groups) and
    ``/metrics`` of a load-sharing HA cover both HSRP groups."""
    text = p.show("redundancy")
    blocks = text.split("\n\n")
    assert len(blocks) == 2, text
    for n, (block, vip, state) in enumerate(zip(blocks, vips, states, strict=True), 1):
        assert block.startswith(f"IP Mobility Home Agent Redundancy - HSRP group {n}\n"), text
        assert f"HA address {vip}," in block and f"role {state.lower()}," in block, text
        assert f"  Bindings {N_PER_VIP}," in block, text
    data = json.loads(p.show("redundancy", as_json=True))
    assert [(g["hsrp_group"], g["ha_address"]) for g in data["groups"]] == [
        (1, vips[0]),
        (2, vips[1]),
    ]
    text = p.show("bindings", page_size=7)
    assert text.startswith(f"Mobility Binding List:\nTotal {2 * N_PER_VIP}\n"), text[:200]
    for n, vip in enumerate(vips, 1):
        assert f"Home agent address {vip} - HSRP group {n}: Total {N_PER_VIP}\n" in text
        assert text.count(f"    Tunnel src {vip} ") == N_PER_VIP
    items = json.loads(p.show("bindings", as_json=True, offset=N_PER_VIP - 2, limit=4))["items"]
    assert [(x["hsrp_group"], x["ha_address"]) for x in items] == [(1, vips[0])] * 2 + [
        (2, vips[1])
    ] * 2
    fams = p.metrics()
    for name in ("cmiHaRegTotalMobilityBindings", "cmiHaRedunSentBUs", "mobileha_ha_active"):
        got = {s.labels["group"]: (s.labels["ha_address"], s.value) for s in fams[name].samples}
        assert set(got) == {"1", "2"}, (name, got)
        assert [got[g][0] for g in ("1", "2")] == list(vips)
    bindings = fams["cmiHaRegTotalMobilityBindings"].samples
    assert {s.value for s in bindings} == {float(N_PER_VIP)}
    active = {s.labels["group"]: s.value for s in fams["mobileha_ha_active"].samples}
    assert active == {str(n): float(st == "Active") for n, st in enumerate(states, 1)}
