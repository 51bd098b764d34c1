"""``mobileha lab`` (issue 8): the demo scenario in namespaces runs, reports the failover and
leaves no namespace, device or process behind -- after a full run and after SIGTERM/Ctrl-C
in the middle of it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mobileha.lab.netns import netns_available
from mobileha.lab.scenario import mobileha_argv

pytestmark = pytest.mark.netns


@pytest.fixture
def need_netns() -> None:
    ok, reason = netns_available()
    if not ok:
        pytest.skip(f"mobileha lab needs network namespaces: {reason}")


def assert_no_leftovers(run_id: str) -> None:
    assert re.fullmatch(r"mh[0-9a-f]{6}", run_id), run_id
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert run_id not in netns, netns
    # Every process of the run has the run id on its command line (its config path).
    procs = subprocess.run(["pgrep", "-af", run_id], capture_output=True, text=True)
    assert procs.returncode == 1 and procs.stdout == "", procs.stdout
    # Devices live only in the run's namespaces (gone with them); none leaked to ours.
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "br-lan" not in links and "br-vis" not in links and "mha0" not in links
    assert not list(Path("/tmp").glob(f"mobileha-lab-{run_id}*"))


def test_lab_json_runs_the_failover_and_cleans_up(need_netns: None) -> None:
    t0 = time.monotonic()
    r = subprocess.run(
        [*mobileha_argv(), "lab", "--json", "--mns", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert r.stdout.strip(), r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, r.stdout + r.stderr
    assert summary["ok"] is True
    assert summary["registrations_ok"] == 20 and summary["registrations_failed"] == 0
    assert sum(summary["slb_split"].values()) == 20
    assert all(v > 0 for v in summary["slb_split"].values())  # both pairs got MNs
    assert summary["bindings_lost"] == 0
    assert summary["bindings_after"] == summary["bindings_before"] > 0
    assert isinstance(summary["failover_ms"], float) and 0 < summary["failover_ms"] < 10_000
    assert summary["ping_targets"] == 4 and summary["pings_resumed"] is True
    # The killed pair's pings stopped for about the HSRP hold time; the other pair's did not.
    assert summary["ping_outage_ms"] is not None and summary["ping_outage_ms"] < 10_000
    assert summary["ping_outage_other_pair_ms"] is not None
    assert summary["ping_outage_other_pair_ms"] < summary["ping_outage_ms"] or (
        summary["ping_outage_ms"] == 0
    )
    assert "ping outage" in r.stdout and "bindings of pair a" in r.stdout
    assert_no_leftovers(summary["run_id"])
    assert elapsed < 90


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_lab_interrupted_tears_everything_down(need_netns: None, sig: signal.Signals) -> None:
    p = subprocess.Popen(
        [*mobileha_argv(), "lab", "--json", "--mns", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    run_id = None
    lines = []
    deadline = time.monotonic() + 60
    try:
        for line in p.stdout:
            lines.append(line)
            m = re.search(r"topology (mh[0-9a-f]{6})", line)
            if m:
                run_id = m.group(1)
            if line.strip().endswith("Standby'}") or "registered" in line:
                break  # nodes are running in the namespaces
            assert time.monotonic() < deadline, lines
        assert run_id is not None, lines
        # Something is running in our namespaces right now.
        assert subprocess.run(["pgrep", "-f", run_id], capture_output=True).returncode == 0
        p.send_signal(sig)
        rest, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, [*lines, rest, err]
    summary = json.loads(rest.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["run_id"] == run_id
    assert_no_leftovers(run_id)


def test_lab_refuses_to_run_without_namespaces_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mobileha.lab import cli, netns

    monkeypatch.setattr(netns, "_available", (False, "network namespaces need root"))
    monkeypatch.setattr(cli, "netns_available", netns.netns_available)
    assert cli.main(["--json"]) == 2
