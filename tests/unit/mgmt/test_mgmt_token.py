"""The management API's bearer token: every request but /healthz carries it; POST needs one
configured; `mobileha show` sends it from --token, --token-file, MOBILEHA_TOKEN or --config."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mobileha.mgmt import actions, show

from .test_mgmt_fake import FakeNode, serve

TOKEN = "t0ken-of-sixteen-chars"


def call(
    url: str, token: str | None = None, method: str = "GET", body: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_token_required_on_every_path_but_healthz() -> None:
    with serve(FakeNode(n_bindings=2), token=TOKEN) as srv:
        for path in ("/", "/api/bindings", "/metrics", "/api/nosuch"):
            status, body, headers = call(srv.url + path)
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert json.loads(body)["error"] == "bearer token required"
            assert call(srv.url + path, "wrong-token-000000")[0] == 401
        assert call(srv.url + "/healthz")[:2] == (200, b"ok\n")
        status, body, _ = call(srv.url + "/api/bindings", TOKEN)
        assert status == 200 and json.loads(body)["total"] == 2
        assert call(srv.url + "/metrics", TOKEN)[0] == 200
        # the scheme is case-insensitive (RFC 6750 follows RFC 7235)
        req = urllib.request.Request(srv.url + "/", headers={"Authorization": f"bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        assert srv.unauthorized == 8


def test_post_actions_need_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def echo(args: Any) -> Any:
        if "bad" in args:
            raise ValueError("bad argument")
        seen.append(dict(args))
        return {"done": True}

    monkeypatch.setattr(
        "mobileha.mgmt.api.actions_for", lambda node: {"echo": echo, **actions.actions_for(node)}
    )
    with serve(FakeNode(), token=TOKEN) as srv:
        url = srv.url + "/api/echo"
        assert call(url, None, "POST", b"{}")[0] == 401
        status, body, _ = call(url, TOKEN, "POST", b'{"x": 1}')
        assert status == 200 and json.loads(body) == {"done": True} and seen == [{"x": 1}]
        assert call(url, TOKEN, "POST", b'{"bad": 1}')[0] == 400
        assert call(url, TOKEN, "POST", b"[1]")[0] == 400
        assert call(srv.url + "/api/nosuch", TOKEN, "POST", b"{}")[0] == 404
        # the client helper sends the token set with use_token
        show.use_token(TOKEN)
        try:
            assert show.post_action(srv.url, "echo", {"y": 2}) == {"done": True}
            with pytest.raises(show.ApiError, match="HTTP 400 bad argument"):
                show.post_action(srv.url, "echo", {"bad": 1})
        finally:
            show.use_token(None)
        with pytest.raises(show.ApiError, match="HTTP 401"):
            show.post_action(srv.url, "echo")
    with serve(FakeNode()) as srv:  # no token configured: reads open, state changes refused
        assert call(srv.url + "/api/bindings")[0] == 200
        status, body, _ = call(srv.url + "/api/echo", None, "POST", b"{}")
        assert status == 403 and "management.token" in json.loads(body)["error"]
        assert seen == [{"x": 1}, {"y": 2}]


def test_show_sends_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MOBILEHA_TOKEN", raising=False)
    with serve(FakeNode(n_bindings=1), token=TOKEN) as srv:
        assert show.main(["stats", "--api", srv.url]) == 2
        err = capsys.readouterr().err
        assert "HTTP 401" in err and "--token" in err
        assert show.main(["stats", "--api", srv.url, "--token", TOKEN]) == 0
        capsys.readouterr()
        f = tmp_path / "token"
        f.write_text(TOKEN + "\n")
        assert show.main(["bindings", "--api", srv.url, "--token-file", str(f), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["total"] == 1
        monkeypatch.setenv("MOBILEHA_TOKEN", TOKEN)
        assert show.main(["stats", "--api", srv.url]) == 0
        monkeypatch.delenv("MOBILEHA_TOKEN")
        cfg = tmp_path / "n.toml"
        port = srv.url.rsplit(":", 1)[1]
        cfg.write_text(
            '[node]\nrole = "mobile-node"\n[management]\n'
            f'listen = "127.0.0.1:{port}"\ntoken_file = "{f}"\n'
            '[mobile_node]\nnai = "m@x"\nhome_agent = "10.0.0.1"\n'
            'foreign_agent = "10.0.0.2:434"\nspi = 256\nkey = "text:k"\n'
        )
        assert show.main(["stats", "--config", str(cfg)]) == 0
    show.use_token(None)
