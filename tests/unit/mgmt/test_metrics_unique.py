"""Every node's /metrics names each family once: the exposition, parsed by
prometheus_client's own parser, has no family twice and no HELP/TYPE line twice (a
Prometheus server refuses a scrape with a duplicate family)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mobileha import compose
from mobileha.config import load_config, loads_config
from mobileha.log import RateLimitedLogger
from mobileha.mgmt.api import NodeCollector
from tests.helpers.loadshare import config as loadshare_config

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _exposition(node: object) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(NodeCollector(node, RateLimitedLogger("test")))  # type: ignore[arg-type]
    return generate_latest(reg).decode()


def assert_unique_families(text: str) -> None:
    names = [f.name for f in text_string_to_metric_families(text)]
    twice = [n for n, k in Counter(names).items() if k > 1]
    assert not twice, f"families exposed more than once: {twice}"
    for kind in ("# HELP ", "# TYPE "):
        lines = [ln.split()[2] for ln in text.splitlines() if ln.startswith(kind)]
        assert len(lines) == len(set(lines)), [n for n, k in Counter(lines).items() if k > 1]


def _loadshare(groups: bool) -> str:
    text = loadshare_config(
        "127.0.0.41", "127.0.0.42", ("127.0.0.141", "127.0.0.142"), 4340, 1985, (110, 100)
    )
    if not groups:
        start = text.index("[[hsrp.groups]]")
        text = text[:start] + text[text.index("[redundancy]") :]
    return text


@pytest.mark.parametrize("groups", [False, True], ids=["one-group", "load-sharing"])
def test_home_agent_with_hsrp_exposes_each_family_once(groups: bool) -> None:
    node = compose.home_agent_node(loads_config(_loadshare(groups)))
    g = next(iter(node.cluster.hsrp.groups.values()))  # type: ignore[union-attr]
    g.auth_failures = 3
    text = _exposition(node)
    assert_unique_families(text)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    # the HSRP counters carry the group's real values, labelled like cHsrpGrp*
    fails = fams["mobileha_hsrp_auth_failures"].samples
    assert {s.labels["group"]: s.value for s in fails}["1"] == 3.0
    assert all(set(s.labels) == {"group", "vip"} for s in fails)
    assert "mobileha_hsrp_state_changes" in fams


@pytest.mark.parametrize(
    "example", ["slb.toml", "foreign-agent.toml", "mobile-node.toml", "home-agent-a1.toml"]
)
def test_example_nodes_expose_each_family_once(example: str) -> None:
    node = compose.build_node(load_config(EXAMPLES / example))
    assert_unique_families(_exposition(node))
