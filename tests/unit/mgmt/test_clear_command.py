"""``mobileha clear binding`` -> ``POST /api/clear/binding`` -> the node's clear_bindings,
``mobileha clear visitor`` -> ``POST /api/clear/visitor`` -> a foreign agent's
clear_visitors, with the bearer token sent when one is given."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from mobileha.mgmt.clear import main as clear_main
from tests.unit.mgmt.test_mgmt_fake import serve


class ClearingNode:
    """A node of ``role`` that records its clear calls (bindings on a home agent, visitors
    on a foreign agent; the API offers each role only its own action)."""

    def __init__(self, role: str = "home-agent") -> None:
        self.role = role
        self.name = f"{role}-clear"
        self.calls: list[dict[str, Any]] = []

    def views(self) -> dict[str, Any]:
        return {}

    def _clear(self, home_addr: str | None, nai: str | None, everything: bool, many: int) -> int:
        self.calls.append({"home_addr": home_addr, "nai": nai, "everything": everything})
        return many if everything else 1

    def clear_bindings(
        self, *, home_addr: str | None = None, nai: str | None = None, everything: bool = False
    ) -> int:
        return self._clear(home_addr, nai, everything, 3)

    def clear_visitors(
        self, *, home_addr: str | None = None, nai: str | None = None, everything: bool = False
    ) -> int:
        return self._clear(home_addr, nai, everything, 2)


def test_clear_binding_by_home_nai_all(capsys: pytest.CaptureFixture[str]) -> None:
    node = ClearingNode()
    with serve(node, token="t0k") as srv:
        api = ["--api", srv.url, "--token", "t0k"]
        assert clear_main(["binding", "10.1.0.5", *api]) == 0
        assert clear_main(["binding", "--nai", "mn1@example.net", *api]) == 0
        assert clear_main(["binding", "--all", *api]) == 0
        assert clear_main(["binding", "not-an-address", *api]) == 1
        assert clear_main(["binding", "--all", "--api", srv.url]) == 1  # no token: refused
    assert node.calls == [
        {"home_addr": "10.1.0.5", "nai": None, "everything": False},
        {"home_addr": None, "nai": "mn1@example.net", "everything": False},
        {"home_addr": None, "nai": None, "everything": True},
    ]
    out = capsys.readouterr()
    assert "1 binding(s) cleared" in out.out and "3 binding(s) cleared" in out.out
    assert "HTTP 400" in out.err


def test_clear_visitor_on_a_foreign_agent(capsys: pytest.CaptureFixture[str]) -> None:
    fa = ClearingNode("foreign-agent")
    with serve(fa, token="t0k") as srv:
        api = ["--api", srv.url, "--token", "t0k"]
        assert clear_main(["visitor", "10.1.0.5", *api]) == 0
        assert clear_main(["visitor", "--all", *api]) == 0
        assert clear_main(["binding", "--all", *api]) == 1  # an FA has no bindings to clear
    assert fa.calls == [
        {"home_addr": "10.1.0.5", "nai": None, "everything": False},
        {"home_addr": None, "nai": None, "everything": True},
    ]
    out = capsys.readouterr()
    assert "1 visitor(s) cleared" in out.out and "2 visitor(s) cleared" in out.out
    assert "404" in out.err
    ha = ClearingNode()
    with serve(ha, token="t0k") as srv:
        assert clear_main(["visitor", "--all", "--api", srv.url, "--token", "t0k"]) == 1
    assert ha.calls == []


def test_get_is_not_a_command() -> None:
    import urllib.error
    import urllib.request

    node = ClearingNode()
    with serve(node) as srv, pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{srv.url}/api/clear/binding?all=1", timeout=5)
    assert e.value.code == 404 and node.calls == []


@contextmanager
def _recording_server() -> Iterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b'{"cleared": 0}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_a: Any) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_bearer_token_sent_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOBILEHA_TOKEN", raising=False)
    with _recording_server() as (url, seen):
        assert clear_main(["binding", "--all", "--api", url, "--token", "s3cret"]) == 0
        assert clear_main(["binding", "--all", "--api", url]) == 0
        monkeypatch.setenv("MOBILEHA_TOKEN", "from-env")
        assert clear_main(["binding", "--all", "--api", url]) == 0
    assert seen == ["Bearer s3cret", None, "Bearer from-env"]
