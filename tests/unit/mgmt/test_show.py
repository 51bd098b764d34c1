"""`mobileha show`: every view rendered IOS-style from a fake node served by the real API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileha.mgmt import show as show_mod
from mobileha.mgmt.show import ApiError, show

from .test_mgmt_fake import FakeNode, serve


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[FakeNode, str]]:
    node = FakeNode(n_bindings=1200)
    with serve(node) as server:
        yield node, server.url


def render(view: str, url: str, **kw: object) -> str:
    out = io.StringIO()
    show(view, url, out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def test_show_bindings_ios_shape_and_paging(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    text = render("bindings", url, page_size=250)
    assert text.startswith("Mobility Binding List:\nTotal 1200\n10.1.0.1:\n")
    assert text.count("    Care-of Addr 10.0.2.2, Src Addr 10.0.2.2\n") == 1200
    assert "    Lifetime granted 10:00:00 (36000), remaining 09:43:20\n" in text
    assert "    Flags sbdmgrtx, Identification C7D5A4E0.00000000\n" in text
    assert "    Flags sbdmGrTx, Identification C7D5A4E0.00000001\n" in text
    assert "Tunnel src 10.0.1.100 dest 10.0.2.2, encap GRE key 0x1001, reverse-allowed" in text
    assert "    NAI mn1199@example.net\n" in text
    # a window
    text = render("bindings", url, offset=10, limit=3)
    assert text.count("Care-of Addr") == 3 and "\n10.1.0.11:\n" in text


def test_show_bindings_json_streams_all_pages(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    data = json.loads(render("bindings", url, as_json=True, page_size=500))
    assert data["total"] == 1200 and len(data["items"]) == 1200
    assert len({b["home_address"] for b in data["items"]}) == 1200


def test_show_standby(api: tuple[FakeNode, str]) -> None:
    text = render("standby", api[1])
    for line in (
        "eth0 - Group 1 (version 2)",
        "  State is Active",
        "    3 state changes, last state change 00:01:02",
        "  Virtual IP address is 10.0.1.100",
        "  Active virtual MAC address is 0000.0c9f.f001",
        "  Hello time 3 sec, hold time 10 sec",
        "    Next hello sent in 1.520 secs",
        "  Authentication text, 2 failures",
        "  Preemption enabled",
        "  Active router is local",
        "  Standby router is 10.0.1.11, priority 100 (expires in 8.816 sec)",
        "  Priority 110 (configured 110)",
        '  Group name is "ha-pair-a" (cfgd)',
    ):
        assert line + "\n" in text, line


def test_show_redundancy(api: tuple[FakeNode, str]) -> None:
    text = render("redundancy", api[1])
    assert "  HSRP state Active, role active, sync state in-sync\n" in text
    assert "  Last bulk download 0.250 sec (1200 bindings)\n" in text
    # counters are numbered 1..19 in MIB order by the fake node
    assert "   Binding updates received 5, sent 1, total sent 4, failed 2\n" in text
    assert "   Security violations 19\n" in text


def test_show_redundancy_core_view_shape() -> None:
    """``core.sync.SyncPeer.view()`` renders too (state/pending/mode/ready)."""
    from mobileha.core.sync import Counters

    counters = Counters().as_dict() | {"SentBUs": 7, "QueueOverflows": 1}
    view = {
        "peer": "10.0.1.11",
        "ha_address": "10.0.1.100",
        "mode": "peer",
        "role": "standby",
        "state": "downloading",
        "ready": False,
        "pending": 3,
        "tombstones": 0,
        "counters": counters,
    }
    out = io.StringIO()
    show_mod.render_redundancy(view, out)
    text = out.getvalue()
    assert "  role standby, sync state downloading, NOT ready (holding HSRP down)\n" in text
    assert "  Binding updates waiting for ack 3\n" in text and ", mode peer" in text
    assert "   Binding updates received 0, sent 7, total sent 0, failed 0\n" in text
    assert "QueueOverflows 1" in text


def test_show_slb_reals(api: tuple[FakeNode, str]) -> None:
    text = render("slb", api[1])
    assert text.startswith("slb vserver HAFARM 10.0.0.100:434 udp (ipmobile), OPERATIONAL")
    lines = [ln.split() for ln in text.splitlines()]
    header = next(ln for ln in lines if ln[:1] == ["real"])
    assert header[:6] == ["real", "farm", "name", "weight", "state", "conns"]
    a = next(ln for ln in lines if ln[:1] == ["10.0.1.100"])
    assert a[:6] == ["10.0.1.100", "HAFARM", "24(8)", "dfp", "OPERATIONAL", "120"]
    b = next(ln for ln in lines if ln[:1] == ["10.0.3.100"])
    assert b[:5] == ["10.0.3.100", "HAFARM", "8", "FAILED", "80"] and b[-1] == "42s"


def test_show_sessions_paged(api: tuple[FakeNode, str]) -> None:
    text = render("sessions", api[1], page_size=300)
    assert text.startswith("Total sessions 1234\n")
    assert text.count("@example.net") == 1234
    assert text.count("vserver") == 1  # one header for all pages
    assert "mn1233@example.net" in text


def test_show_dfp_and_stats(api: tuple[FakeNode, str]) -> None:
    text = render("dfp", api[1])
    assert "10.0.1.10:8081" in text and "connected" in text and "10.0.1.100=24" in text
    text = render("stats", api[1])
    assert text.startswith("ha-fake (home-agent), uptime 01:02:03\n")
    assert "  133 idMismatch" in text and "cmiHaRegRequestsReceived  2600" in text
    assert "bad_mn_ha_auth  40" in text


def test_cisco_mac() -> None:
    assert show_mod.cisco_mac("00:00:0c:9f:f0:07") == "0000.0c9f.f007"
    assert show_mod.cisco_mac("0000.0c07.ac01") == "0000.0c07.ac01"
    assert show_mod.cisco_mac(None) == "unknown"


def test_show_json_of_a_plain_view(api: tuple[FakeNode, str]) -> None:
    data = json.loads(render("standby", api[1], as_json=True))
    assert data[0]["state"] == "Active"
    # the older {"groups": [...]} shape with seconds renders the same
    out = io.StringIO()
    show_mod.render_standby({"groups": [dict(data[0], next_hello_ms=None, next_hello_s=1.52)]}, out)
    assert "    Next hello sent in 1.520 secs\n" in out.getvalue()


def test_main_cli(api: tuple[FakeNode, str], capsys: pytest.CaptureFixture[str]) -> None:
    from mobileha import cli

    assert cli.main(["show", "standby", "--api", api[1]]) == 0
    assert "State is Active" in capsys.readouterr().out
    assert show_mod.main(["bindings", "--api", api[1], "--limit", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 2


def test_main_with_config_and_errors(
    api: tuple[FakeNode, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = api[1].rsplit(":", 1)[1]
    cfg = tmp_path / "n.toml"
    cfg.write_text(
        f'[node]\nrole = "slb"\n[management]\nlisten = "127.0.0.1:{port}"\n'
        '[slb]\nvirtual_address = "10.0.0.100"\n[[slb.real]]\naddress = "10.0.1.100"\n'
    )
    assert show_mod.main(["dfp", "--config", str(cfg)]) == 0
    assert "10.0.1.10:8081" in capsys.readouterr().out
    # nothing listening
    assert show_mod.main(["stats", "--api", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the management API" in capsys.readouterr().err
    with pytest.raises(ApiError, match="HTTP 404"):
        show_mod.fetch(api[1], "nosuch")
