"""A sample of bench/dfp_stall.py in the suite: 1,000 stalled DFP connections against a
``mobileha run`` home agent's DFP agent (the full run opens 20,000)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.helpers.attack import Node, stall_dfp, subnet

pytestmark = pytest.mark.timeout(180)


def test_stalled_dfp_connections_cost_little_and_the_api_answers(tmp_path: Path) -> None:
    net = subnet()
    ha = f"{net}.10"
    port = free_port(ha, socket.SOCK_DGRAM)
    dport = free_port(ha, socket.SOCK_STREAM)
    node = Node(
        tmp_path,
        "ha",
        f"""role = "home-agent"
[home_agent]
address = "{ha}"
port = {port}
home_prefix = "10.78.0.0/24"
[dataplane]
backend = "memory"
[dfp]
listen = "{ha}:{dport}"
password = "text:stall-test"
""",
    )
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
