"""What `mobileha show` prints says what it means: the SLB's `show stats` names the node,
the HA's `show dfp` says when it last reported, `show redundancy` names the HSRP group,
the SLB JSON carries the word the table prints, `--limit` says how many rows remain, and a
node without a view says which config section gives it."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from mobileha import compose
from mobileha.config import load_config, loads_config
from mobileha.mgmt.show import ApiError, render_redundancy, render_slb, render_stats, show
from mobileha.mgmt.views import REAL_STATES, views_for
from tests.helpers import free_port, until
from tests.helpers.loadshare import config as loadshare_config

from .test_mgmt_fake import FakeNode, serve
from .test_show_visitors import FakeFa

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_slb_stats_header_names_the_node() -> None:
    node = compose.build_node(load_config(EXAMPLES / "slb.toml"))
    v = views_for(node)["stats"]({})
    out = io.StringIO()
    render_stats(v, out)
    first = out.getvalue().splitlines()[0]
    assert first.startswith(f"{node.name} (slb), uptime ") and "?" not in first


def test_slb_json_state_is_the_table_word() -> None:
    node = compose.build_node(load_config(EXAMPLES / "slb.toml"))
    v = views_for(node)["slb"]({})
    real = v["reals"][0]
    assert real["state"] == "inService" and real["state_text"] == "OPERATIONAL"
    assert real["state_text"] == REAL_STATES[real["state"]]
    out = io.StringIO()
    render_slb(v, out)
    assert "OPERATIONAL" in out.getvalue()


def test_redundancy_names_the_hsrp_group() -> None:
    text = loadshare_config(
        "127.0.0.41", "127.0.0.42", ("127.0.0.141", "127.0.0.142"), 4340, 1985, (110, 100)
    )
    text = text.replace("group = 1\n", 'group = 1\nname = "HA-PAIR-A"\n', 1)
    node = compose.home_agent_node(loads_config(text))
    v = views_for(node)["redundancy"]({})
    assert v["group_name"] == "HA-PAIR-A"
    out = io.StringIO()
    render_redundancy(v, out)
    assert "  Redundancy group HA-PAIR-A, HA address 127.0.0.141" in out.getvalue()


def test_home_agent_dfp_says_when_it_last_reported() -> None:
    asyncio.run(_dfp_last_report())


async def _dfp_last_report() -> None:
    text = (EXAMPLES / "loopback" / "ha-a.toml").read_text()
    text = text.replace('listen = "127.0.84.10:18081"', 'listen = "127.0.0.1:0"')
    text = text.replace("port = 10434", f"port = {free_port('127.0.84.10')}").replace(
        'listen = "127.0.0.1:18431"', 'listen = "127.0.0.1:0"'
    )
    cfg = loads_config(text)
    node = compose.home_agent_node(cfg)
    await node.start()
    try:
        port = node.dfp_server.bound_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: node.dfp_server.agent.reports >= 1, 5, "a DFP report")
        await asyncio.sleep(0.05)
        v = views_for(node)["dfp"]({})
        row = v["agents"][0]
        assert row["reports"] >= 1 and row["last_report_s"] is not None
        assert 0 <= row["last_report_s"] < 5
        writer.close()
        await reader.read()
    finally:
        await node.stop()


def test_limit_says_how_many_rows_remain() -> None:
    with serve(FakeFa(130)) as server:  # type: ignore[arg-type]
        out = io.StringIO()
        show("visitors", server.url, out, limit=20, page_size=50)
        assert out.getvalue().endswith("... 110 more (next: --offset 20)\n")
        out = io.StringIO()
        show("visitors", server.url, out, offset=120, limit=20)
        assert "more" not in out.getvalue().splitlines()[-1]
        out = io.StringIO()
        show("visitors", server.url, out, as_json=True, limit=20)
        data = json.loads(out.getvalue())
        assert data["total"] == 130 and len(data["items"]) == 20 and data["next_offset"] == 20
    with serve(FakeNode(300)) as server:  # type: ignore[arg-type]
        out = io.StringIO()
        show("bindings", server.url, out, limit=100)
        assert out.getvalue().endswith("... 200 more (next: --offset 100)\n")


@pytest.mark.parametrize(
    ("view", "words"),
    [("standby", "[hsrp]"), ("slb", '"slb"'), ("redundancy", "[redundancy]")],
)
def test_missing_view_names_the_config_that_gives_it(view: str, words: str) -> None:
    with serve(FakeFa(1)) as server, pytest.raises(ApiError) as e:  # type: ignore[arg-type]
        show(view, server.url, io.StringIO())
    text = str(e.value)
    assert f"node fa-fake (foreign-agent) has no {view!r} view" in text, text
    assert words in text and "views: visitors" in text, text
    assert "HTTP 404" not in text


def test_show_command_prints_one_line_for_a_missing_view(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mobileha.mgmt.show import main

    with serve(FakeFa(1)) as server:  # type: ignore[arg-type]
        assert main(["standby", "--api", server.url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "[hsrp]" in err, err
