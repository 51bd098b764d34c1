"""``show subscribers``, the stats view's SA cache line and the ``mobileha_ha_sa_*`` /
``mobileha_ha_aaa_*`` metric families of a home agent with realm entries (AAA answers fed
to the core directly)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from mobileha import compose
from mobileha.config import loads_config
from mobileha.core.subscribers import REJECT, SaFailed, SaFetched
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.show import render_stats, render_subscribers
from mobileha.mgmt.views import views_for
from mobileha.wire.auth import ntp_identification
from tests.helpers import request

HA = "10.0.1.10"
KEY = b"k" * 16

TOML = f"""
[node]
role = "home-agent"
name = "ha"
[management]
enabled = false
[home_agent]
address = "{HA}"
home_prefix = "10.1.0.0/16"
[dataplane]
backend = "memory"
[aaa]
backend = "radius"
radius_server = "127.0.0.1:1812"
radius_secret = "text:s"
[[mobile_node]]
nai = "@aaa.example"
sa_source = "aaa"
algorithm = "hmac-md5"
[[mobile_node]]
nai = "@inline.example"
spi = 500
key = "text:shared"
"""


class _Collector:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _metrics(node: Any) -> dict[str, Any]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(families_for(node)))  # type: ignore[arg-type]
    text = generate_latest(reg).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_views_and_metrics_of_the_sa_cache() -> None:
    node = compose.home_agent_node(loads_config(TOML))
    ha = node.agents[0].ha
    now = 100.0
    ha.unix_offset = 1_800_000_000.0 - now
    for i, nai in enumerate(("a@aaa.example", "b@aaa.example")):
        data = request(
            ha_addr=HA, care_of="10.0.2.2", ident=ntp_identification(1_800_000_000.0, i + 1),
            nai=nai, key=KEY, spi=1000,
        )  # fmt: skip
        ha.receive_datagram(data, ("10.0.2.2", 434), (HA, 434), now)
    ha.handle_event(SaFetched(HA, "a@aaa.example", 1000, KEY), now + 0.02)
    ha.handle_event(SaFailed(HA, "b@aaa.example", REJECT), now + 0.03)

    views = views_for(node)
    v = views["subscribers"]({})
    assert [r["pattern"] for r in v["realms"]] == ["@aaa.example", "@inline.example"]
    assert v["cache"]["sa_cache_size"] == 1 and v["cache"]["sa_cache_misses"] == 2
    assert v["cache"]["aaa_rejects"] == 1 and v["latency"]["count"] == 2
    out = io.StringIO()
    render_subscribers(v, out)
    assert "@aaa.example" in out.getvalue() and "sa_cache_size" in out.getvalue()
    stats = views["stats"]({})
    assert stats["subscribers"]["sa_cache_hits"] == 0  # the first registration was a miss
    out = io.StringIO()
    render_stats(stats, out)
    assert "SA cache: 1 SAs from AAA, 0 hits, 2 misses, 1 AAA failures" in out.getvalue()

    fams = _metrics(node)
    assert fams["mobileha_ha_sa_cache_size"].samples[0].value == 1
    assert fams["mobileha_ha_sa_cache_misses"].samples[0].value == 2
    fails = {s.labels["reason"]: s.value for s in fams["mobileha_ha_aaa_failures"].samples}
    assert fails == {"reject": 1, "timeout": 0, "error": 0}
    lat = fams["mobileha_ha_aaa_latency_seconds"]
    count = next(s.value for s in lat.samples if s.name.endswith("_count"))
    assert count == 2
