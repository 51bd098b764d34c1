"""/metrics of a load-sharing home agent: the home agent and redundancy families of every
HSRP group, merged by ``metrics.labelled`` with the labels ``group`` and ``ha_address``;
a single-group home agent keeps its unlabelled series."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from mobileha import compose
from mobileha.config import loads_config
from mobileha.mgmt import metrics as M
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import views_for
from mobileha.node.home_agent import HomeAgentNode
from tests.helpers.loadshare import config as _config


class _Collector:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _exposition(families: Iterable[Metric]) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(families))  # type: ignore[arg-type]
    return generate_latest(reg).decode()


def _parse(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_labelled_merges_families_by_name() -> None:
    def part(n: float) -> list[Metric]:
        m = M.MetricsBuilder()
        m.gauge(M.HA_BINDINGS, n)
        m.reply_codes(M.HA_REPLIES, {0: int(n), 133: 1} if n > 1 else {0: int(n)})
        m.bad_input({})
        c = CounterMetricFamily("cmiHaRedunSentBUs", "HA redundancy SentBUs")
        c.add_metric([], n * 10)
        g = GaugeMetricFamily("mobileha_sync_ready", "ready")
        g.add_metric([], 1)
        return [*m.families(), c, g]

    fams = M.labelled(
        [
            ({"group": 1, "ha_address": "10.0.0.1"}, part(1)),
            ({"group": 2, "ha_address": "10.0.0.2"}, part(2)),
        ]
    )
    assert len({f.name for f in fams}) == len(fams)
    text = _exposition(fams)
    assert text.count("# HELP cmiHaRegTotalMobilityBindings ") == 1
    assert 'cmiHaRegTotalMobilityBindings{group="1",ha_address="10.0.0.1"} 1.0' in text
    assert 'cmiHaRegTotalMobilityBindings{group="2",ha_address="10.0.0.2"} 2.0' in text
    assert 'cmiHaRedunSentBUs_total{group="2",ha_address="10.0.0.2"} 20.0' in text
    parsed = _parse(text)
    replies = parsed["mobileha_ha_replies"]
    assert replies.type == "counter"
    assert {(s.labels["group"], s.labels["code"]) for s in replies.samples} == {
        ("1", "0"),
        ("2", "0"),
        ("2", "133"),
    }
    assert "mobileha_bad_input" in parsed and not parsed["mobileha_bad_input"].samples
    # every sample of a family has the same label names (no unlabelled leftovers)
    for f in parsed.values():
        assert len({tuple(sorted(s.labels)) for s in f.samples}) <= 1, f.name


def _node(groups: bool) -> HomeAgentNode:
    text = _config(
        "127.0.0.41", "127.0.0.42", ("127.0.0.141", "127.0.0.142"), 4340, 1985, (110, 100)
    )
    if not groups:
        start = text.index("[[hsrp.groups]]")
        text = text[:start] + text[text.index("[redundancy]") :]
    return compose.home_agent_node(loads_config(text))


def test_load_sharing_ha_exports_every_group_labelled() -> None:
    node = _node(groups=True)
    node.agents[1].ha.received = 7  # group 2 answered 7 requests, group 1 none
    parsed = _parse(_exposition(families_for(node)))
    for name in ("cmiHaRegTotalMobilityBindings", "cmiHaRegRequestsReceived", "cmiHaRedunSentBUs"):
        got = {(s.labels["group"], s.labels["ha_address"]) for s in parsed[name].samples}
        assert got == {("1", "127.0.0.141"), ("2", "127.0.0.142")}, name
    received = {s.labels["group"]: s.value for s in parsed["cmiHaRegRequestsReceived"].samples}
    assert received == {"1": 0.0, "2": 7.0}
    pending = parsed["mobileha_sync_pending"].samples
    assert sorted(s.labels["group"] for s in pending) == ["1", "2"]
    # HSRP (one node for all groups, already labelled per group) is not relabelled
    assert "mobileha_hsrp_state" in parsed
    assert all("ha_address" not in s.labels for s in parsed["mobileha_hsrp_state"].samples)
    for f in parsed.values():
        assert len({tuple(sorted(s.labels)) for s in f.samples}) <= 1, f.name


def test_single_group_ha_metrics_keep_no_group_label() -> None:
    node = _node(groups=False)
    assert len(node.agents) == 1 and "groups" not in views_for(node)
    parsed = _parse(_exposition(families_for(node)))
    for name in ("cmiHaRegTotalMobilityBindings", "cmiHaRedunSentBUs", "mobileha_sync_ready"):
        assert [s.labels for s in parsed[name].samples] == [{}], name
