"""Processes started by tests (``mobileha run`` nodes, FreeRADIUS...)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.helpers.net import free_port
from tests.helpers.wait import wait_for


def stop_process(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10
) -> None:
    """SIGTERM (a node leaves cleanly), SIGKILL if it has not exited after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def log_tails(logs: Iterable[Path], chars: int = 3000) -> Callable[[], str]:
    """For ``wait_for(detail=...)``: the end of each existing log file, read at timeout."""
    paths = list(logs)

    def tails() -> str:
        return "\n".join(p.read_text()[-chars:] for p in paths if p.exists())

    return tails


def wait_ready(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str],
    ready: Callable[[], object],
    timeout: float,
    what: str,
    log: Path | None = None,
) -> None:
    """Wait until ``ready()`` is true for a process just started (an ``OSError`` such as
    a refused connection means "not yet"); RuntimeError with its log if it exits first."""

    def text() -> str:
        return log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""

    def up() -> object:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{text()}")
        return ready()

    wait_for(up, timeout, f"{what} to start", 0.1, ignore=(OSError,), detail=text)


def mobileha_command() -> list[str]:
    """The ``mobileha`` command of this environment (the venv's script, else ``-m``)."""
    script = Path(sys.executable).parent / "mobileha"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mobileha.cli"]


class Proc:
    """One ``mobileha run`` process with its management API on a free loopback port."""

    def __init__(self, tmp: Path, name: str, toml: str, ready_s: float = 20) -> None:
        self.name = name
        self.tmp = tmp
        self.api_port = free_port("127.0.0.1", socket.SOCK_STREAM)
        cfg = tmp / f"{name}.toml"
        cfg.write_text(
            f'[node]\nname = "{name}"\n{toml}\n[management]\nlisten = "127.0.0.1:{self.api_port}"\n'
        )
        # Validate with `mobileha check` first: a config problem names its key here.
        chk = subprocess.run(
            [*mobileha_command(), "check", str(cfg)], capture_output=True, text=True
        )
        assert chk.returncode == 0, chk.stderr
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*mobileha_command(), "run", str(cfg)], stdout=subprocess.DEVNULL, stderr=log
            )
        try:
            wait_ready(self.proc, lambda: self.api("healthz", raw=True), ready_s, name, self.log)
        except BaseException:  # not started in time: do not leave it running
            stop_process(self.proc)
            raise

    def api(self, path: str, raw: bool = False) -> Any:
        url = f"http://127.0.0.1:{self.api_port}/{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM and the exit code (-9: killed after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
