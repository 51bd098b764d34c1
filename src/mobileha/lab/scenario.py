"""Helpers to run ``mobileha run`` nodes inside the namespaces of a :class:`Topology`.

* :class:`NodeProc`: one node process (config written to a file, stderr to a log file),
  started with ``mobileha run`` in a host's namespace; ``terminate()`` (SIGTERM, clean
  stop), ``kill9()``.
* :func:`ns_http_get`: a GET on a management API that listens on ``127.0.0.1`` *inside* a
  namespace, without starting a process: a short-lived thread enters the namespace
  (``setns``; the network namespace is per thread), creates the socket there and leaves;
  the socket keeps its namespace.
* :class:`PingMonitor`: a ``ping -D -O`` running in a namespace, parsed into sent/received
  sequence numbers and the longest outage.

Used by ``mobileha lab`` (:mod:`mobileha.lab.cli`) and by ``tests/netns``.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobileha.lab.netns import Host

CLONE_NEWNET = 0x40000000
_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def ns_socket(ns: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """An AF_INET socket created inside network namespace ``ns`` (``ip netns`` name)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)  # this thread only; it ends right after
                box["sock"] = socket.socket(socket.AF_INET, kind)
            finally:
                os.close(fd)
        except BaseException as e:  # handed to the caller
            box["err"] = e

    t = threading.Thread(target=work, name=f"setns-{ns}", daemon=True)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    s: socket.socket = box["sock"]
    return s


def ns_http_get(
    ns: str, port: int, path: str, timeout: float = 3.0, token: str | None = None
) -> Any:
    """GET ``http://127.0.0.1:<port><path>`` inside ``ns`` (with the API's bearer
    ``token`` when it has one); the decoded JSON body."""
    s = ns_socket(ns)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        raise OSError(f"GET {path} in {ns}: {head[:80]!r}")
    return json.loads(body)


def mobileha_argv() -> list[str]:
    exe = Path(sys.executable).parent / "mobileha"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mobileha")
    return [found] if found else [sys.executable, "-m", "mobileha.cli"]


class NodeProc:
    """A ``mobileha run CONFIG`` process in ``host``'s namespace."""

    def __init__(
        self, host: Host, name: str, config: str, workdir: Path, api_port: int = 8434
    ) -> None:
        self.host = host
        self.name = name
        self.api_port = api_port
        self.cfg = workdir / f"{name}.toml"
        self.log = workdir / f"{name}.log"
        self.cfg.write_text(config)
        # the management API's token, sent with every request when the config sets one
        self.token: str | None = tomllib.loads(config).get("management", {}).get("token")
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> NodeProc:
        with open(self.log, "a") as log:
            self.proc = self.host.popen(
                [*mobileha_argv(), "run", str(self.cfg), "--stop-timeout", "5"], stderr=log
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def api(self, view: str, query: str = "") -> Any:
        path = f"/api/{view}" + (f"?{query}" if query else "")
        return ns_http_get(self.host.ns, self.api_port, path, token=self.token)

    def try_api(self, view: str, query: str = "") -> Any:
        with contextlib.suppress(OSError, ValueError):
            return self.api(view, query)
        return None

    def try_api_ok(self, view: str) -> Callable[[], bool]:
        """A predicate for :func:`wait_until`: the view answers."""
        return lambda: self.try_api(view) is not None

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the node stops cleanly: MNs deregister, HSRP resigns) and wait."""
        p = self.proc
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            return p.wait(5)

    def kill9(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if cond():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


_REPLY = re.compile(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+)")


class PingMonitor:
    """``ping -D -O -i INTERVAL`` from ``host`` to ``dst``, parsed when stopped."""

    def __init__(self, host: Host, dst: str, interval: float = 0.1) -> None:
        self.dst = dst
        self.interval = interval
        self.proc = host.popen(
            ["ping", "-n", "-D", "-O", "-W", "1", "-i", str(interval), dst],
            stdout=subprocess.PIPE,
        )
        self.replies: dict[int, float] = {}
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        for line in out:
            m = _REPLY.match(line)
            if m and "bytes from" in line:
                self.replies.setdefault(int(m.group(2)), float(m.group(1)))

    def received_since(self, t_wall: float) -> int:
        return sum(1 for t in list(self.replies.values()) if t >= t_wall)

    def last_seq(self) -> int:
        return max(self.replies) if self.replies else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._t.join(2)

    def outage_ms(self, after_seq: int = 0) -> float:
        """The longest run of lost echo requests after ``after_seq`` (between two answered
        ones, or until the last one answered), in ms (lost count x interval)."""
        got = sorted(s for s in self.replies if s >= after_seq)
        worst = 0
        for a, b in itertools.pairwise(got):
            worst = max(worst, b - a - 1)
        return round(worst * self.interval * 1000.0, 1)


__all__ = [
    "NodeProc",
    "PingMonitor",
    "mobileha_argv",
    "ns_http_get",
    "ns_socket",
    "wait_until",
]
