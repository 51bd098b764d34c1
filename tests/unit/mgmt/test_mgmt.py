"""Management API: views, paging, errors and /metrics parsed by prometheus_client's parser."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mobileha.core.binding import Binding, Encap
from mobileha.mgmt.views import PagingError, binding_item, flags_text, page_of, paging

from .test_mgmt_fake import FakeNode, serve


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[FakeNode, str]]:
    node = FakeNode()
    with serve(node) as server:
        yield node, server.url


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers["Content-Type"]


def get_json(url: str) -> tuple[int, Any]:
    status, body, ctype = get(url)
    assert ctype == "application/json"
    return status, json.loads(body)


def test_index_lists_views(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    status, idx = get_json(url + "/")
    assert status == 200
    assert idx["node"] == "ha-fake" and idx["role"] == "home-agent"
    assert set(idx["views"]) >= {
        "bindings",
        "standby",
        "redundancy",
        "slb",
        "sessions",
        "dfp",
        "stats",
    }
    assert get(url + "/healthz")[:2] == (200, b"ok\n")


def test_bindings_are_paged(api: tuple[FakeNode, str]) -> None:
    node, url = api
    before = node.built_items
    status, page = get_json(url + "/api/bindings?offset=0&limit=100")
    assert status == 200
    assert page["total"] == 2500 and len(page["items"]) == 100 and page["next_offset"] == 100
    assert node.built_items - before == 100  # only the page was rendered
    first = page["items"][0]
    assert first["home_address"] == "10.1.0.1" and first["lifetime_remaining"] == 35000
    assert first["identification"] == "C7D5A4E0.00000000"
    # default limit and the cap
    _, page = get_json(url + "/api/bindings")
    assert page["limit"] == 100 and len(page["items"]) == 100
    _, page = get_json(url + "/api/bindings?limit=100000")
    assert page["limit"] == 1000 and len(page["items"]) == 1000
    # walk every page: all rows exactly once
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        _, page = get_json(f"{url}/api/bindings?offset={offset}&limit=700")
        seen += [b["home_address"] for b in page["items"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 2500
    # past the end
    _, page = get_json(url + "/api/bindings?offset=5000")
    assert page["items"] == [] and page["next_offset"] is None
    # filter
    _, page = get_json(url + "/api/bindings?nai=mn7%40example.net")
    assert page["total"] == 1 and page["items"][0]["gre_key"] == 0x1007


def test_bad_requests(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    status, err = get_json(url + "/api/bindings?limit=0")
    assert status == 400 and "limit" in err["error"]
    status, err = get_json(url + "/api/bindings?offset=x")
    assert status == 400
    status, err = get_json(url + "/api/nosuch")
    assert status == 404 and "bindings" in err["views"]
    assert get_json(url + "/nowhere")[0] == 404
    status, err = get_json(url + "/api/broken")
    assert status == 500 and "boom" in err["error"]
    req = urllib.request.Request(url + "/api/bindings", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 405
    # state changes need a token; this server has none
    req = urllib.request.Request(url + "/api/bindings", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 403
    # garbage and oversize requests do not break the server
    host, port = url[len("http://") :].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 413")
    assert get_json(url + "/api/stats")[0] == 200


def test_every_view_is_json(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    for view in ("standby", "redundancy", "slb", "dfp", "stats", "sessions"):
        status, data = get_json(f"{url}/api/{view}")
        assert status == 200, view
        assert data


def test_metrics_parse_with_prometheus_parser(api: tuple[FakeNode, str]) -> None:
    _node, url = api
    status, body, ctype = get(url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert fams["cmiHaRegTotalMobilityBindings"].samples[0].value == 2500
    assert fams["cmiHaRegRequestsReceived"].type == "counter"
    replies = {
        (s.labels["code"], s.labels["reason"]): s.value
        for s in fams["mobileha_ha_replies"].samples
        if s.name.endswith("_total")
    }
    assert replies[("133", "idMismatch")] == 60 and replies[("0", "registrationAccepted")] == 2500
    assert fams["cmiHaRedunSentBUs"].samples[0].value == 2500
    assert "cmiHaRedunSecViolations" in fams and "cmiHaRedunDroppedBIAcks" in fams
    hsrp = fams["cHsrpGrpStandbyState"].samples[0]
    assert hsrp.value == 6 and hsrp.labels == {"group": "1", "vip": "10.0.1.100"}
    states = {s.labels["real"]: s.value for s in fams["slbRealState"].samples}
    assert states == {"10.0.1.100": 2, "10.0.3.100": 3}  # inService, failed
    assert "slbRealOperWeight" in fams and "slbRealTotalConnections" in fams
    info = fams["mobileha_node_info"].samples[0]
    assert info.labels == {"node": "ha-fake", "role": "home-agent"}


def test_metrics_survive_a_failing_node() -> None:
    class Bad(FakeNode):
        def metrics(self) -> Any:
            raise RuntimeError("no metrics")

    with serve(Bad(n_bindings=1)) as server:
        status, body, _ = get(server.url + "/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert fams["mobileha_metrics_collect_errors"].samples[0].value == 1


def test_server_on_the_running_loop_and_stop() -> None:
    async def main() -> None:
        from mobileha.mgmt.api import ManagementServer

        async with ManagementServer(FakeNode(n_bindings=3), "127.0.0.1", 0) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"HEAD /api/bindings HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await reader.read()
            writer.close()
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n")
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", srv.port)

    asyncio.run(main())


def test_paging_helpers() -> None:
    assert paging({}) == (0, 100)
    assert paging({"offset": "5", "limit": "5000"}) == (5, 1000)
    for bad in ({"offset": "-1"}, {"limit": "0"}, {"limit": "a"}):
        with pytest.raises(PagingError):
            paging(bad)
    page = page_of(iter(range(10)), {"offset": "8", "limit": "5"}, total=10)
    assert page["items"] == [8, 9] and page["next_offset"] is None
    page = page_of(list(range(10)), {"offset": "0", "limit": "5"}, lambda x: x * 2)
    assert page["items"] == [0, 2, 4, 6, 8] and page["next_offset"] == 5


def test_binding_item_and_flags() -> None:
    b = Binding("10.1.0.1", "10.0.2.2", "10.0.1.100", 0xFFFF, 0.0, 1, 0x82, Encap.MINIMAL)
    item = binding_item(b, 123.0, state="standby")
    assert item["lifetime_remaining"] == 0xFFFF and item["encap"] == "minimal"
    assert item["flags_text"] == "SbdmgrTx" and item["state"] == "standby"
    assert flags_text(0xFF) == "SBDMGRTX" and flags_text(0) == "sbdmgrtx"
