"""Recovery when a real home agent dies without a standby: the loopback cluster of
examples/loopback/ (on its own addresses and ports, MN lifetime 10 s renewed at half), kill -9
of the real HA "a": the FA re-homes the MNs of "a" to the HA-SLB virtual address after a few
unanswered requests (RFC 4433), the SLB fails "a" (its DFP agent is lost and it leaves a
session unanswered) and gives the sessions to "b"; every MN is registered with "b" within
10 s of the kill, and the SLB and FA logs name the failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mobileha.config import load_config
from tests.helpers import free_port, wait_for
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(150)

EX = Path(__file__).resolve().parents[2] / "examples" / "loopback"
ORDER = ("ha-a", "ha-b", "slb", "fa", "mn")
N_MN = 20
RECOVERY_S = 10.0


def configs(tmp: Path) -> dict[str, tuple[Path, int]]:
    """The example's configs on a 127.x.y.0/24 of this process and free management ports."""
    net = f"127.{80 + os.getpid() % 150}.{os.getpid() % 250 + 1}."
    out = {}
    for name in ORDER:
        text = (EX / f"{name}.toml").read_text().replace("127.0.84.", net)
        port = free_port("127.0.0.1")
        text = "\n".join(
            f'listen = "127.0.0.1:{port}"' if line.startswith('listen = "127.0.0.1:') else line
            for line in text.splitlines()
        )
        if name == "mn":
            text = text.replace("lifetime = 600", "lifetime = 10\nrenew_fraction = 0.5")
        path = tmp / f"{name}.toml"
        path.write_text(text + "\n")
        out[name] = (path, port)
    return out


def test_kill_a_real_ha_every_mn_registers_again_within_10s(tmp_path: Path) -> None:
    cfg = configs(tmp_path)

    def api(name: str, path: str) -> Any:
        port = cfg[name][1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read())

    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ORDER:
            log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
            procs[name] = subprocess.Popen(
                [*mobileha_command(), "run", str(cfg[name][0])], stdout=log, stderr=log
            )
            wait_for(
                lambda n=name: api(n, "/")["node"], 20, f"{name} API", 0.2, ignore=(Exception,)
            )

        def totals() -> tuple[int, int]:
            return api("ha-a", "/api/bindings")["total"], api("ha-b", "/api/bindings")["total"]

        wait_for(lambda: sum(totals()) == N_MN, 40, "20 bindings", 0.2, ignore=(Exception,))
        a, b = totals()
        assert a > 0 and b > 0, (a, b)
        hb = load_config(cfg["ha-b"][0]).home_agent
        assert hb is not None
        b_addr = hb.address
        # the DFP agents report before the kill (the SLB knows "a" through DFP)
        wait_for(
            lambda: all(r["dfp_weight"] for r in api("slb", "/api/slb")["reals"]),
            20,
            "DFP reports for both reals",
            0.2,
            ignore=(Exception,),
        )

        procs["ha-a"].kill()
        procs["ha-a"].wait()
        killed = time.monotonic()

        back: dict[str, float] = {}  # NAI -> seconds after the kill it was with b

        def all_on_b() -> bool:
            t = time.monotonic() - killed
            for m in api("mn", f"/api/mobile_nodes?limit={N_MN}")["items"]:
                if m["state"] == "registered" and m["home_agent"] == b_addr:
                    back.setdefault(m["nai"], t)
            return len(back) == N_MN and api("ha-b", "/api/bindings")["total"] == N_MN

        wait_for(
            all_on_b,
            RECOVERY_S,
            f"all {N_MN} MNs registered with b",
            0.1,
            ignore=(Exception,),
        )
        took = time.monotonic() - killed
        print(
            f"every MN registered again {took:.1f} s after kill -9 of a real HA;",
            "seconds per MN:",
            sorted(round(t, 1) for t in back.values()),
            "MN reply codes:",
            api("mn", "/api/stats")["reply_codes"],
        )
        assert took < RECOVERY_S
    finally:
        for name in reversed(ORDER):
            p = procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in procs}
    assert "DFP agent lost" in logs["slb"], logs["slb"][-3000:]
    assert "new=failed" in logs["slb"] and "DFP agent lost and a session" in logs["slb"]
    assert "home agent not answering" in logs["fa"], logs["fa"][-3000:]
