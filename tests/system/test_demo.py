"""``mobileha demo --json`` end to end without privileges: one process, loopback only,
HA-SLB + two HSRP pairs + FAs + 200 MNs, a crash of pair A's Active. stdout is the JSON
summary alone; the progress lines and the table are on stderr.

When the test runs as root (CI), the demo runs with every capability dropped
(``setpriv --bounding-set=-all``: no CAP_NET_ADMIN/NET_RAW/NET_BIND_SERVICE/DAC_OVERRIDE),
which is what an ordinary user has. It keeps uid 0 only so that it can still execute this
venv's interpreter, which lives under root's 0700 home on this machine kind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

NO_CAPS = "0000000000000000"


def _command() -> list[str]:
    exe = Path(sys.executable).parent / "mobileha"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "mobileha.cli"]


def _unprivileged_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux) to drop capabilities")
    prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
    check = subprocess.run([*prefix, "cat", "/proc/self/status"], capture_output=True, text=True)
    if f"CapEff:\t{NO_CAPS}" not in check.stdout:
        pytest.skip(f"setpriv could not drop the capabilities: {check.stderr.strip()}")
    return prefix


@pytest.mark.timeout(120)
def test_demo_json_unprivileged() -> None:
    prefix = _unprivileged_prefix()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    proc = subprocess.run(
        [*prefix, *_command(), "demo", "--json", "--seed", "8"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd="/",
        env=env,
    )
    duration = time.monotonic() - t0
    out = proc.stdout.strip().splitlines()
    assert out, f"no output (exit {proc.returncode})\n{proc.stderr[-3000:]}"
    assert len(out) == 1, f"stdout is not one JSON object: {proc.stdout[-2000:]}"
    summary = json.loads(out[0])
    detail = f"{summary}\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    # it really ran without privileges
    assert summary["euid"] != 0 or summary["cap_eff"] == NO_CAPS, detail
    assert proc.returncode == 0, detail
    assert summary["ok"] is True and summary["problems"] == [], detail
    # registrations through FA -> SLB -> real HA, replies direct to the FA
    assert summary["mns"] == 200
    assert summary["registrations_ok"] == 200 and summary["registrations_failed"] == 0, detail
    # the SLB only relayed the requests; every reply came straight from a real HA's VIP
    assert summary["slb_forwarded"] == 200, detail
    assert summary["fa_replies_direct_from_ha"] == 200, detail
    # the SLB split the NAI sessions evenly-ish across the two pairs (WRR, DFP weights)
    split = summary["slb_split"]
    assert set(split) == {"pair-A", "pair-B"} and sum(split.values()) == 200, detail
    assert all(70 <= n <= 130 for n in split.values()), detail
    # a measured failover: HSRP hold 1000 ms, so the takeover is within ~0.5..1.5 s
    assert isinstance(summary["failover_ms"], float | int), detail
    assert 100 <= summary["failover_ms"] <= 3000, detail
    assert summary["hsrp_takeover_ms"] <= summary["failover_ms"], detail
    # every binding of the crashed Active is on the new Active, with forwarding state
    assert summary["bindings_before"] == split["pair-A"], detail
    assert summary["bindings_lost"] == 0, detail
    assert summary["bindings_after"] == summary["bindings_before"], detail
    assert summary["bindings_forwarding"] == summary["bindings_before"], detail
    # MNs re-register after the takeover without a 133 (replay state survived)
    assert summary["reregistrations_ok"] == 200 and summary["reregistrations_133"] == 0, detail
    assert summary["reregistrations_pair_a_ok"] == summary["reregistrations_pair_a"], detail
    assert summary["reregistrations_pair_a"] == split["pair-A"], detail
    assert summary["crashed"] != summary["new_active"]
    assert duration < 60 and summary["duration_s"] < 60, detail
    # the probe deregistered: the new Active holds the MNs' bindings, as counted
    assert summary["bindings_final_new_active"] == summary["bindings_before"], detail
    # plain lines on stderr (not a TTY): the view shows the takeover and the table
    text = proc.stderr
    assert "HSRP Active after" in text and "crashed" in text, text[-3000:]
    assert "mobileha demo summary" in text and "result         : OK" in text
    assert "None" not in "".join(ln for ln in text.splitlines() if ln.startswith("["))


def test_live_view_renders_ios_like_tables() -> None:
    """The rich live view and the plain line render from an (unstarted) cluster."""
    import io

    from rich.console import Console

    from mobileha.demo import Cluster, Plan, Screen

    cluster = Cluster(Plan("127.1.2", 4, 1))
    screen = Screen(cluster, live=False, out=io.StringIO())
    screen.event("hello")
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(screen.renderable())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "show standby" in text and "show ip slb reals" in text
    assert "ha-a1" in text and "ha-b2" in text and "pair-A" in text and "hello" in text
    line = screen.plain_line()
    assert "MNs 0/4 registered" in line and "pair-B=0" in line
    assert "DFP -" in line and "None" not in line and "*" not in line
