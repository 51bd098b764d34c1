"""The loopback examples (examples/loopback/) run as they are: five `mobileha run` processes,
20 mobile nodes registered through the SLB and split over both home agents with every
channel authenticated (relay tag, FA-HA, DFP, the API's token), `mobileha show` with
`--config`, and a clean exit 0 of every node on SIGTERM."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mobileha.config import load_config
from tests.helpers import wait_for
from tests.helpers.loopback import EX, Cluster
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(120)


def test_loopback_examples_run(tmp_path: Path) -> None:
    c = Cluster(tmp_path, as_is=True)
    try:
        c.start_all()
        n_mn = load_config(EX / "mn.toml").mobile_node.count  # type: ignore[union-attr]
        wait_for(
            lambda: sum(c.bindings()) == n_mn,
            40,
            f"{n_mn} bindings over both HAs",
            0.2,
            ignore=(Exception,),
        )
        a, b = c.bindings()
        assert a > 0 and b > 0, (a, b)  # the SLB split the sessions
        r = subprocess.run(
            [*mobileha_command(), "show", "slb", "--config", str(EX / "slb.toml")],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0 and "127.0.84.10" in r.stdout and "127.0.84.11" in r.stdout
    finally:
        codes = c.stop_all()
    logs = {n: c.log(n) for n in c.procs}
    assert all(code == 0 for code in codes.values()), (codes, logs)
