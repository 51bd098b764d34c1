"""The management HTTP API of one node: JSON views, actions and Prometheus ``/metrics``.

A deliberately small HTTP/1.1 server on asyncio streams (no framework): GET, HEAD and POST,
one request per connection (``Connection: close``), bounded request size and read timeout.

Authentication: with a token (``management.token`` / ``token_file``, required when the API
listens on a non-loopback address), every request except ``GET /healthz`` must carry
``Authorization: Bearer <token>`` (compared in constant time), else 401. POST requests
change state, so they need the token whatever the listen address: without one configured
they are refused with 403 (a loopback listener is open to every local user).

Routes:

* ``GET /`` -> ``{"node", "role", "views": [...], "metrics": "/metrics"}``
* ``GET /api/<view>?offset=0&limit=100&...`` -> the view's JSON
  (``mobileha.mgmt.views.views_for``);
  the query parameters go to the view unchanged (paging, filters). 400 on bad paging.
* ``GET /metrics`` -> Prometheus text format, the node's families
  (``mobileha.mgmt.metrics.families_for``) collected at scrape time through a custom
  collector, plus ``mobileha_node_info{node,role}``.
* ``GET /healthz`` -> ``ok``.
* ``POST /api/<action>`` with a JSON object body and/or query parameters -> the action's
  JSON result (``mobileha.mgmt.actions.actions_for``, e.g. ``clear/binding``); 404 for an
  unknown action.

Errors are JSON ``{"error": "..."}`` with 400/404/405/500; a view that raises is logged
(rate limited per view) and answered with 500, never taking the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from mobileha.log import RateLimitedLogger, get_logger
from mobileha.mgmt.actions import actions_for
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import PagingError, View, views_for

MAX_REQUEST_BYTES = 16384
READ_TIMEOUT_S = 10.0

_log = get_logger("mobileha.mgmt")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class Node(Protocol):
    """What the API needs of a node: its name and role (the views and metric families are
    rendered from its state by :func:`~mobileha.mgmt.views.views_for` and
    :func:`~mobileha.mgmt.metrics.families_for`)."""

    role: str
    name: str


class NodeCollector:
    """A prometheus_client collector that asks the node for its families at scrape time."""

    def __init__(self, node: Node, limiter: RateLimitedLogger) -> None:
        self._node = node
        self._limiter = limiter
        self.errors = 0

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "mobileha_node_info", "Node name and role", labels=["node", "role"]
        )
        info.add_metric([self._node.name, self._node.role], 1.0)
        yield info
        try:
            families = families_for(self._node)
        except Exception as e:  # a node bug must not break the scrape of the rest
            self.errors += 1
            self._limiter.warn("metrics_failed", "node metrics failed", error=repr(e))
            families = []
        yield from families
        err = GaugeMetricFamily(
            "mobileha_metrics_collect_errors", "Failures of node.metrics() since start"
        )
        err.add_metric([], float(self.errors))
        yield err


class ManagementServer:
    """Serve one node's views and metrics on ``host:port`` (port 0 = any free port)."""

    def __init__(
        self,
        node: Node,
        host: str = "127.0.0.1",
        port: int = 8434,
        extra_views: Mapping[str, View] | None = None,
        token: str | None = None,
    ) -> None:
        """``extra_views``: views of the process rather than the node (``reload``);
        ``token``: the bearer token every request must carry (None: none asked)."""
        self.node = node
        self._extra = dict(extra_views or {})
        self.host = host
        self.port = port
        self._expect = token.encode() if token else None
        self.unauthorized = 0
        self._server: asyncio.base_events.Server | None = None
        self._limiter = RateLimitedLogger(_log, interval_s=10.0)
        self._registry = CollectorRegistry(auto_describe=False)
        self.collector = NodeCollector(node, self._limiter)
        self._registry.register(self.collector)
        self.requests = 0
        self.started = time.monotonic()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=MAX_REQUEST_BYTES, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        _log.info("management API listening", url=self.url, node=self.node.name)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> ManagementServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def views(self) -> Mapping[str, View]:
        return {**views_for(self.node), **self._extra}

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                await self._send(writer, 413, _json({"error": "request too large"}))
                return
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            self.requests += 1
            body_in = b""
            length = _content_length(head)
            if length:
                if length > MAX_REQUEST_BYTES:
                    await self._send(writer, 413, _json({"error": "request too large"}))
                    return
                try:
                    body_in = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT_S)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
            status, ctype, body, head_only = self._dispatch(head, body_in)
            await self._send(writer, status, body, ctype, head_only)
        except Exception as e:  # never let one connection take the server down
            self._limiter.warn("http_handler", "management request failed", error=repr(e))
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    def _authorized(self, head: bytes) -> bool:
        """The request carries ``Authorization: Bearer <token>`` (constant-time compare)."""
        assert self._expect is not None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"authorization":
                scheme, _, cred = value.strip().partition(b" ")
                ok = hmac.compare_digest(cred.strip(), self._expect)
                return ok and scheme.lower() == b"bearer"
        return False

    def _dispatch(self, head: bytes, body: bytes = b"") -> tuple[int, str, bytes, bool]:
        try:
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _version = request_line.split(" ", 2)
        except ValueError:
            return 400, "application/json", _json({"error": "malformed request line"}), False
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD", "POST"):
            return 405, "application/json", _json({"error": "only GET, HEAD and POST"}), False
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/") or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if path != "/healthz" or method == "POST":
            if self._expect is not None and not self._authorized(head):
                self.unauthorized += 1
                return 401, "application/json", _json({"error": "bearer token required"}), False
            if self._expect is None and method == "POST":
                err = "state-changing requests need a token: set management.token"
                return 403, "application/json", _json({"error": err}), False
        if method == "POST":
            if not path.startswith("/api/"):
                return 404, "application/json", _json({"error": f"no such path {path}"}), False
            status, obj = self._action(path[len("/api/") :], body, query)
            return status, "application/json", _json(obj), False
        if path == "/":
            return 200, "application/json", _json(self._index()), head_only
        if path == "/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n", head_only
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry), head_only
        if path.startswith("/api/"):
            name = path[len("/api/") :]
            status, obj = self._view(name, query)
            return status, "application/json", _json(obj), head_only
        return 404, "application/json", _json({"error": f"no such path {path}"}), head_only

    def _action(self, name: str, body: bytes, query: Mapping[str, str]) -> tuple[int, Any]:
        action = actions_for(self.node).get(name)
        if action is None:
            if name in self.views():
                return 405, {"error": "a view: only GET and HEAD"}
            return 404, {"error": f"no action {name!r}"}
        try:
            args = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "the body must be a JSON object"}
        if not isinstance(args, dict):
            return 400, {"error": "the body must be a JSON object"}
        args = {**query, **args}
        try:
            return 200, action(args)
        except ValueError as e:
            return 400, {"error": str(e)}
        except Exception as e:
            self._limiter.warn(f"action_failed:{name}", "action raised", action=name, error=repr(e))
            return 500, {"error": f"action {name!r} failed: {e!r}"}

    def _index(self) -> dict[str, Any]:
        return {
            "node": self.node.name,
            "role": self.node.role,
            "views": sorted(self.views()),
            "api": "/api/<view>?offset=0&limit=100",
            "metrics": "/metrics",
            "uptime_s": round(time.monotonic() - self.started, 3),
            "pid": os.getpid(),  # `mobileha reload` signals it
        }

    def _view(self, name: str, query: Mapping[str, str]) -> tuple[int, Any]:
        views = self.views()
        view = views.get(name)
        if view is None:
            return 404, {"error": f"no view {name!r}", "views": sorted(views)}
        try:
            return 200, view(query)
        except PagingError as e:
            return 400, {"error": str(e)}
        except ValueError as e:
            return 400, {"error": str(e)}
        except Exception as e:
            self._limiter.warn(f"view_failed:{name}", "view raised", view=name, error=repr(e))
            return 500, {"error": f"view {name!r} failed: {e!r}"}

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        ctype: str = "application/json",
        head_only: bool = False,
    ) -> None:
        challenge = 'WWW-Authenticate: Bearer realm="mobileha"\r\n' if status == 401 else ""
        header = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"{challenge}"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(header if head_only else header + body)
        await writer.drain()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=_default).encode()


def _default(o: Any) -> Any:
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if hasattr(o, "_asdict"):
        return o._asdict()
    return str(o)


__all__ = ["MAX_REQUEST_BYTES", "ManagementServer", "NodeCollector"]
