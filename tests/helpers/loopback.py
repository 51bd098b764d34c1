"""The loopback cluster of examples/loopback/ as real processes, on a 127.x.y.0/24 of the
test process and free management ports (so tests and the example can run side by side)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobileha.config import load_config
from tests.helpers.net import free_port
from tests.helpers.procs import mobileha_command
from tests.helpers.wait import wait_for

EX = Path(__file__).resolve().parents[2] / "examples" / "loopback"
ORDER = ("ha-a", "ha-b", "slb", "fa", "mn")


class Cluster:
    """The five nodes' config files, processes, logs and management APIs. ``as_is``: the
    example files themselves (their fixed addresses and ports), else rewritten copies."""

    def __init__(
        self, tmp: Path, edit: Callable[[str, str], str] | None = None, as_is: bool = False
    ) -> None:
        self.tmp = tmp
        pid = os.getpid()
        self.net = "127.0.84." if as_is else f"127.{80 + pid % 150}.{pid % 250 + 1}."
        self.paths: dict[str, Path] = {}
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tokens: dict[str, str | None] = {}
        for name in ORDER if as_is else ():
            self.paths[name] = EX / f"{name}.toml"
            self.ports[name] = load_config(self.paths[name]).management.listen.port
        for name in () if as_is else ORDER:
            text = (EX / f"{name}.toml").read_text().replace("127.0.84.", self.net)
            port = free_port("127.0.0.1", socket.SOCK_STREAM)  # the management API is TCP
            text = "\n".join(
                f'listen = "127.0.0.1:{port}"' if ln.startswith('listen = "127.0.0.1:') else ln
                for ln in text.splitlines()
            )
            if edit is not None:
                text = edit(name, text)
            self.paths[name] = tmp / f"{name}.toml"
            self.paths[name].write_text(text + "\n")
            self.ports[name] = port
        for name, path in self.paths.items():
            self.tokens[name] = load_config(path).management.token

    def addr(self, last: int) -> str:
        return f"{self.net}{last}"

    def api(self, name: str, path: str) -> Any:
        token = self.tokens.get(name)
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[name]}{path}",
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def start(self, name: str, path: Path | None = None) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [*mobileha_command(), "run", str(path or self.paths[name])], stdout=log, stderr=log
        )

    def start_all(self) -> None:
        for name in ORDER:
            self.start(name)
            wait_for(
                lambda n=name: self._up(n),
                20,
                f"{name} API",
                0.2,
                ignore=(OSError, ValueError, KeyError),  # not listening yet, or half an answer
                detail=lambda n=name: f"{n} log:\n{self.log(n)[-3000:]}",
            )

    def _up(self, name: str) -> Any:
        """The node's API answers; a process that has exited fails at once with its log."""
        code = self.procs[name].poll()
        if code is not None:
            raise AssertionError(f"{name} exited with {code} at start:\n{self.log(name)[-3000:]}")
        return self.api(name, "/")["node"]

    def bindings(self) -> tuple[int, int]:
        return (
            self.api("ha-a", "/api/bindings")["total"],
            self.api("ha-b", "/api/bindings")["total"],
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is not None:
                codes[name] = p.returncode
                continue
            p.send_signal(signal.SIGTERM)
            try:
                codes[name] = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes


@contextmanager
def loopback_cluster(
    tmp: Path, edit: Callable[[str, str], str] | None = None, as_is: bool = False
) -> Iterator[Cluster]:
    """The cluster, started (every API answering), stopped with SIGTERM at the end."""
    c = Cluster(tmp, edit, as_is)
    try:
        c.start_all()
        yield c
    finally:
        c.stop_all()
