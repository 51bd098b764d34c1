"""A sample of bench/dfp_stall.py in the suite: 1,000 stalled DFP connections against a
``mobileha run`` home agent's DFP agent (the full run opens 20,000)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.attack import dfp_agent_node, stall_dfp

pytestmark = pytest.mark.timeout(180)


def test_stalled_dfp_connections_cost_little_and_the_api_answers(tmp_path: Path) -> None:
    node, ha, dport = dfp_agent_node(tmp_path)
    net = ha.rsplit(".", 1)[0]
    try:
        r = stall_dfp(node, ha, dport, 1000, [f"{net}.{100 + i}" for i in range(10)])
        assert r["connections"] == 1000
        assert r["api_answered"] == r["api_tries"] == 1  # one batch of 1,000
        assert r["rss_peak_growth_kb"] < 16 * 1024, r
        (row,) = node.get("/api/dfp")["agents"]
        assert row["dropped"].get("refused-full", 0) >= 1000 - 32
        assert node.alive()
    finally:
        node.stop()
