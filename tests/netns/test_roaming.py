"""A mobile node moving between two foreign agents while a correspondent streams to it, in
namespaces with real ``mobileha run`` processes: the topology of
:mod:`mobileha.lab.roaming` (CN -> router -> HA pair with HSRP and binding sync; the router
-> FA1 and FA2 on two links; one MN host on both and on the home link).

Over the moves (``MOBILEHA_ROAM_MOVES``, default 20) with the CN sending 1,000 UDP
packets/s to the home address: every move registers through the new FA, the old FA's
visitor entry goes within 1 s (revoked by the Active, RFC 3543), no reply 133, and the
median outage is at most one advertisement interval plus 200 ms (p50/p95/max printed).
The standby holds the same binding as the Active after each move (binding sync). Then the
MN comes home: it hears the HAs' advertisements, deregisters, the last FA's visitor entry
is revoked and the CN's packets reach it natively on the home link.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileha.lab.roaming import API_TOKEN, RoamingLab, percentile
from mobileha.lab.scenario import mobileha_argv, wait_until
from tests.helpers.netns import require_netns

pytestmark = [pytest.mark.netns]

ADV_MS = 1000
MOVES = int(os.environ.get("MOBILEHA_ROAM_MOVES", "20"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RoamingLab]:
    require_netns()
    lab = RoamingLab(tmp_path, adv_ms=ADV_MS, prefix=f"mobility{os.getpid()}")
    try:
        lab.build()
        lab.start()
        yield lab
    finally:
        lab.close()


def test_roaming_between_two_foreign_agents_under_traffic(lab: RoamingLab) -> None:
    lab.start_traffic()
    time.sleep(1.5)
    try:
        for _ in range(MOVES):
            h = lab.move()
            assert h.old_visitor_gone_s is not None and h.old_visitor_gone_s < 1.0, lab.logs()
            new_fa = "fa1" if h.to == "eth0" else "fa2"
            assert lab.visitors(new_fa) == 1
            coa = lab.binding_coa()
            assert wait_standby(lab, coa), lab.logs()
            time.sleep(1.2)
        home = lab.go_home()
        assert home.old_visitor_gone_s is not None and home.old_visitor_gone_s < 1.0
        time.sleep(1.5)
    finally:
        end = time.monotonic()
        arrivals = lab.stop_traffic()
    lab.outages(arrivals, end)
    moves = lab.handoffs[:-1]
    outages = [h.outage_s for h in moves if h.outage_s is not None]
    assert len(outages) == MOVES, "no traffic around a move"
    after_home = [a for a in arrivals if a >= home.at + (home.outage_s or 0) + 0.1]
    mn_stats = lab.nodes["mn"].api("stats")
    codes = mn_stats.get("reply_codes", {})
    report = {
        "moves": MOVES,
        "outage_ms": {
            "p50": round(percentile(outages, 50) * 1000, 1),
            "p95": round(percentile(outages, 95) * 1000, 1),
            "max": round(max(outages) * 1000, 1),
        },
        "registered_ms_max": round(max(h.registered_s or 0 for h in moves) * 1000),
        "old_visitor_gone_ms_max": round(max(h.old_visitor_gone_s or 0 for h in moves) * 1000),
        "home": {
            "deregistered_ms": round((home.registered_s or 0) * 1000),
            "outage_ms": round((home.outage_s or 0) * 1000),
            "packets_after": len(after_home),
        },
        "mn_reply_codes": codes,
    }
    print(json.dumps(report, indent=1))
    assert "133" not in codes
    assert statistics.median(outages) <= ADV_MS / 1000 + 0.2, report
    assert len(after_home) > 500, "the CN's packets do not reach the MN at home"
    assert not lab.bindings("ha-a") and not lab.bindings("ha-b")


def wait_standby(lab: RoamingLab, coa: str | None) -> bool:
    """The standby's copy of the binding names the same care-of address."""
    standby = "ha-b" if lab.active().name == "ha-a" else "ha-a"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if lab.binding_coa(standby) == coa:
            return True
        time.sleep(0.05)
    return False


def test_lab_roaming_prints_each_handoff_and_cleans_up() -> None:
    require_netns()
    r = subprocess.run(
        [*mobileha_argv(), "lab", "--roaming", "--moves", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and summary["ok"] is True, r.stdout + r.stderr
    assert summary["moves"] == 2 and summary["outage_ms"]["max"] > 0
    assert r.stdout.count("outage ") >= 3  # two moves and the return home
    assert "home: deregistered" in r.stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert summary["run_id"] not in netns


def _post(lab: RoamingLab, node: str, path: str) -> dict[str, object]:
    """POST to a node's management API inside its namespace."""
    from mobileha.lab.scenario import ns_socket

    s = ns_socket(lab.hosts[node].ns)
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", 8434))
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    finally:
        s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    out: dict[str, object] = json.loads(body)
    return out


def test_clear_binding_revokes_at_the_fa_and_the_mn_registers_again(lab: RoamingLab) -> None:
    """``clear binding`` on the Active: the binding goes on both HAs, the HA revokes it at
    the FA (RFC 3543, I bit: the FA tells the MN with a sequence-0 advertisement) and the
    MN registers again through it. Then ``clear visitor`` on the FA revokes it at the HA."""
    active = lab.active().name
    standby = "ha-b" if active == "ha-a" else "ha-a"
    accepted = lab.nodes["mn"].api("stats")["counters"]["accepted"]
    assert _post(lab, active, "/api/clear/binding?home=10.99.0.5") == {"cleared": 1}
    # the MN is told and registers again: the binding is back, on the standby too
    assert wait_standby(lab, "10.3.0.2"), lab.logs()
    assert lab.binding_coa() == "10.3.0.2"
    assert wait_until(lambda: lab.nodes["mn"].api("stats")["counters"]["accepted"] > accepted, 5)
    roaming = lab.nodes["mn"].api("roaming")
    assert roaming["counters"]["restarts_seen"] >= 1, roaming
    assert lab.visitors("fa1") == 1
    assert lab.bindings(standby)

    # ``clear visitor`` on the FA (IOS ``clear ip mobile visitor``): the FA removes the
    # visitor and revokes it at the Active (RFC 3543, FA-initiated); the binding goes on
    # both HAs
    revoked = lab.nodes["fa1"].api("stats")["counters"].get("revoked_by_fa", 0)
    assert _post(lab, "fa1", "/api/clear/visitor?home=10.99.0.5") == {"cleared": 1}
    assert lab.visitors("fa1") == 0
    assert wait_until(lambda: not lab.bindings(active) and not lab.bindings(standby), 5), lab.logs()
    assert lab.nodes["fa1"].api("stats")["counters"]["revoked_by_fa"] == revoked + 1
