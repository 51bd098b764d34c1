"""The data plane in the management views: which backend is live, its counters in ``show
stats``, ``show bindings`` and ``/metrics``."""

from __future__ import annotations

import io

from mobileha.dataplane.base import DataPlaneSummary
from mobileha.mgmt.metrics import MetricsBuilder
from mobileha.mgmt.show import render_binding, render_stats
from mobileha.mgmt.views import dataplane_view

SUMMARY = DataPlaneSummary(
    "ebpf",
    2,
    {"tx_pkts": 10, "tx_bytes": 1000, "rx_pkts": 4, "rx_bytes": 400, "drops": 3},
    {"spoof": 3, "loop": 0},
    {"map-full": 1, "netlink": 0},
)


def test_view_keeps_nonzero_reasons_and_the_reasons_auto_gave() -> None:
    v = dataplane_view(SUMMARY, {"kernel": "no ipip here"})
    assert v["backend"] == "ebpf" and v["tunnels"] == 2
    assert v["drops"] == {"spoof": 3} and v["errors"] == {"map-full": 1}
    assert v["not_taken"] == {"kernel": "no ipip here"}


def test_show_stats_and_binding_render_the_data_plane() -> None:
    out = io.StringIO()
    render_stats(
        {
            "node": "ha",
            "role": "home-agent",
            "uptime_s": 1,
            "dataplane": dataplane_view(SUMMARY, {"kernel": "no ipip here"}),
        },
        out,
    )
    text = out.getvalue()
    assert "Data plane ebpf: 2 tunnels, out 10 pkts (1000 bytes), in 4 pkts (400 bytes)" in text
    assert "not kernel: no ipip here" in text
    assert "dropped spoof: 3" in text and "error map-full: 1" in text
    out = io.StringIO()
    render_binding(
        {
            "home_address": "10.99.0.5",
            "care_of": "10.3.0.2",
            "ha_address": "10.2.0.2",
            "src_addr": "10.3.0.2",
            "lifetime_granted": 600,
            "lifetime_remaining": 500,
            "flags_text": "sbdmgrTx",
            "identification": "0.0",
            "traffic": {"tx_pkts": 5, "tx_bytes": 500, "rx_pkts": 2, "rx_bytes": 200, "drops": 1},
        },
        out,
    )
    assert "Tunnel in 2 pkts (200 bytes), out 5 pkts (500 bytes), 1 dropped" in out.getvalue()


def test_metrics_name_the_backend_and_count_by_reason_and_tunnel() -> None:
    m = MetricsBuilder()
    m.dataplane(
        dataplane_view(SUMMARY, {}),
        {("10.99.0.5", "10.3.0.2"): {"tx_pkts": 7, "rx_pkts": 1}},
    )
    samples = {(f.name, tuple(sorted(s.labels.items()))): s.value for f in m.families()
               for s in f.samples}  # fmt: skip
    assert samples[("mobileha_dataplane_backend", (("backend", "ebpf"),))] == 1
    assert samples[("mobileha_dataplane_packets", (("direction", "tx"),))] == 10
    assert samples[("mobileha_dataplane_drops", (("reason", "spoof"),))] == 3
    key = (("care_of", "10.3.0.2"), ("direction", "tx"), ("home_address", "10.99.0.5"))
    assert samples[("mobileha_dataplane_tunnel_packets", key)] == 7
