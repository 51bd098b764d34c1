"""The loopback examples (examples/loopback/) run as they are: five `mobileha run` processes,
20 mobile nodes registered through the SLB and split over both home agents with every
channel authenticated (relay tag, FA-HA, DFP, the API's token), `mobileha show` with
`--config`, and a clean exit 0 of every node on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mobileha.config import load_config
from tests.helpers import wait_for
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(120)

EX = Path(__file__).resolve().parents[2] / "examples" / "loopback"
ORDER = ("ha-a", "ha-b", "slb", "fa", "mn")


def api(name: str, path: str) -> Any:
    m = load_config(EX / f"{name}.toml").management
    req = urllib.request.Request(
        f"http://{m.listen.host}:{m.listen.port}{path}",
        headers={"Authorization": f"Bearer {m.token}"},
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_loopback_examples_run(tmp_path: Path) -> None:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ORDER:
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
            procs[name] = subprocess.Popen(
                [*mobileha_command(), "run", str(EX / f"{name}.toml")], stdout=log, stderr=log
            )
            wait_for(
                lambda n=name: api(n, "/")["node"], 20, f"{name} API", step=0.2, ignore=(Exception,)
            )
        n_mn = load_config(EX / "mn.toml").mobile_node.count  # type: ignore[union-attr]

        def counts() -> tuple[int, int]:
            return api("ha-a", "/api/bindings")["total"], api("ha-b", "/api/bindings")["total"]

        wait_for(
            lambda: sum(counts()) == n_mn,
            40,
            f"{n_mn} bindings over both HAs",
            0.2,
            ignore=(Exception,),
        )
        a, b = counts()
        assert a > 0 and b > 0, (a, b)  # the SLB split the sessions
        r = subprocess.run(
            [*mobileha_command(), "show", "slb", "--config", str(EX / "slb.toml")],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0 and "127.0.84.10" in r.stdout and "127.0.84.11" in r.stdout
    finally:
        codes = {}
        for name in reversed(ORDER):
            p = procs.get(name)
            if p is None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                codes[name] = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in procs}
    assert all(c == 0 for c in codes.values()), (codes, logs)
