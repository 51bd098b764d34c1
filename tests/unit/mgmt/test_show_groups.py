"""`mobileha show` of a load-sharing home agent (several HSRP groups, one HA address each):
``bindings`` covers every group with paging over all of them, ``redundancy`` prints one
block per group; a fake node with a ``groups`` view served by the real API."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from mobileha.mgmt.show import render_redundancy, show
from mobileha.mgmt.views import BindingItem, Page, RedundancyView, View, page_of

from .test_mgmt_fake import FakeNode, serve

VIP2 = "10.0.1.200"


class FakeGroupsNode(FakeNode):
    """Group 1 (VIP 10.0.1.100) with the fake's bindings, group 2 (VIP2) with ``n2``."""

    def __init__(self, n1: int, n2: int) -> None:
        super().__init__(n_bindings=n1 + n2)
        rows = list(self.bindings.values())
        self.bindings = {b.home_addr: b for b in rows[:n1]}
        self.bindings2 = {b.home_addr: replace(b, ha_addr=VIP2) for b in rows[n1:]}

    def views(self) -> Mapping[str, View]:
        v = dict(super().views())
        v["g2-bindings"] = self.v_bindings2
        v["g2-redundancy"] = self.v_redundancy2
        v["g2-stats"] = self.v_stats2
        v["groups"] = lambda _q: {
            "groups": [
                {"group": 1, "ha_address": "10.0.1.100", "prefix": "", "active": True},
                {"group": 2, "ha_address": VIP2, "prefix": "g2-", "active": False},
            ]
        }
        return v

    def v_bindings2(self, q: Mapping[str, str]) -> Page[BindingItem]:
        return page_of(list(self.bindings2.values()), q, self._render)

    def v_stats2(self, q: Mapping[str, str]) -> Any:
        return {**self.v_stats(q), "node": "fake-g2", "counters": {"cmiHaRegRequestsReceived": 7}}

    def v_redundancy2(self, q: Mapping[str, str]) -> RedundancyView:
        v = self.v_redundancy(q)
        v.update(
            ha_address=VIP2,
            hsrp_state="Standby",
            role="standby",
            bindings=len(self.bindings2),
            counters={k: 100 + n for k, n in v["counters"].items()},
        )
        return v


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with serve(FakeGroupsNode(30, 20)) as server:
        yield server.url


def render(view: str, url: str, **kw: Any) -> str:
    out = io.StringIO()
    show(view, url, out, **kw)
    return out.getvalue()


def test_show_bindings_covers_every_group(api: str) -> None:
    text = render("bindings", api, page_size=7)
    assert text.startswith(
        "Mobility Binding List:\nTotal 50\n"
        "Home agent address 10.0.1.100 - HSRP group 1: Total 30\n10.1.0.1:\n"
    )
    assert "Home agent address 10.0.1.200 - HSRP group 2: Total 20\n10.1.0.31:\n" in text
    assert text.count("Care-of Addr") == 50
    assert text.count("    Tunnel src 10.0.1.100 ") == 30
    assert text.count("    Tunnel src 10.0.1.200 ") == 20
    # the section of group 2 comes after every binding of group 1
    assert text.index("HSRP group 2") > text.rindex("Tunnel src 10.0.1.100")


def test_show_bindings_paging_spans_the_groups(api: str) -> None:
    text = render("bindings", api, offset=28, limit=4, page_size=3)
    assert text.count("Care-of Addr") == 4
    for hoa in ("10.1.0.29", "10.1.0.30", "10.1.0.31", "10.1.0.32"):
        assert f"\n{hoa}:\n" in text
    assert "HSRP group 1: Total 30" in text and "HSRP group 2: Total 20" in text
    # a window inside group 2 only: no section of group 1
    text = render("bindings", api, offset=45, limit=10)
    assert text.count("Care-of Addr") == 5 and "HSRP group 1" not in text
    assert "\n10.1.0.46:\n" in text and "\n10.1.0.50:\n" in text
    # past the end: the header only
    assert render("bindings", api, offset=60) == "Mobility Binding List:\nTotal 50\n"


def test_show_bindings_json_of_every_group(api: str) -> None:
    data = json.loads(render("bindings", api, as_json=True, page_size=8))
    assert data["total"] == 50 and len(data["items"]) == 50
    groups = [(b["hsrp_group"], b["ha_address"]) for b in data["items"]]
    assert groups == [(1, "10.0.1.100")] * 30 + [(2, VIP2)] * 20
    data = json.loads(render("bindings", api, as_json=True, offset=25, limit=10))
    assert data["offset"] == 25 and len(data["items"]) == 10
    assert [b["hsrp_group"] for b in data["items"]] == [1] * 5 + [2] * 5


def test_show_redundancy_one_block_per_group(api: str) -> None:
    text = render("redundancy", api)
    first, second = text.split("\n\n")
    assert first.startswith("IP Mobility Home Agent Redundancy - HSRP group 1\n")
    assert "HA address 10.0.1.100" in first and "role active, sync state in-sync" in first
    assert "   Security violations 19" in first
    assert second.startswith("IP Mobility Home Agent Redundancy - HSRP group 2\n")
    assert f"HA address {VIP2}" in second and "HSRP state Standby, role standby" in second
    assert "  Bindings 20, binding updates waiting" in second
    assert "   Security violations 119\n" in second


def test_show_redundancy_json_carries_every_group(api: str) -> None:
    data = json.loads(render("redundancy", api, as_json=True))
    assert [(g["hsrp_group"], g["ha_address"]) for g in data["groups"]] == [
        (1, "10.0.1.100"),
        (2, VIP2),
    ]
    assert data["groups"][1]["counters"]["SecViolations"] == 119
    # the JSON renders back to the same text
    out = io.StringIO()
    render_redundancy(data, out)
    assert out.getvalue() == render("redundancy", api)


def test_show_stats_one_block_per_group(api: str) -> None:
    text = render("stats", api)
    first, second = text.split("\n\nHSRP group 2\n")
    assert first.startswith("HSRP group 1\n") and "cmiHaRegRequestsReceived  2600" in first
    assert second.startswith("fake-g2 (") and "cmiHaRegRequestsReceived  7" in second
    data = json.loads(render("stats", api, as_json=True))
    assert [g["hsrp_group"] for g in data["groups"]] == [1, 2]


def test_single_group_output_has_no_group_labels() -> None:
    with serve(FakeNode(n_bindings=5)) as server:
        text = render("bindings", server.url)
        assert text.startswith("Mobility Binding List:\nTotal 5\n10.1.0.1:\n")
        assert "HSRP group" not in text
        text = render("redundancy", server.url)
        assert text.startswith("IP Mobility Home Agent Redundancy\n")
        data = json.loads(render("redundancy", server.url, as_json=True))
        assert "groups" not in data and data["ha_address"] == "10.0.1.100"
        assert not render("stats", server.url).startswith("HSRP group")
