"""``mobileha run`` with role slb: the node from its config, its management views,
``mobileha show slb`` / ``show sessions`` and /metrics."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port
from tests.helpers.procs import wait_ready

pytestmark = pytest.mark.timeout(60)


def test_mobileha_run_slb_views_and_show(tmp_path: Path) -> None:
    net = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"
    vip, port = f"{net}.100", free_port(f"{net}.100")
    api = free_port("127.0.0.1", socket.SOCK_STREAM)
    # two "reals" that are plain UDP sockets of the test (they only need to receive)
    reals = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for i, r in enumerate(reals):
        r.bind((f"{net}.{11 + i}", 0))
        r.settimeout(3)
    cfg = tmp_path / "slb.toml"
    cfg.write_text(
        f"""
[node]
role = "slb"
name = "lb-test"
[management]
listen = "127.0.0.1:{api}"
[slb]
virtual_address = "{vip}"
port = {port}
mode = "relay"
predictor = "ios-wrr"
"""
        + "".join(
            f'[[slb.real]]\naddress = "{r.getsockname()[0]}"\nport = {r.getsockname()[1]}\n'
            f"weight = {w}\n"
            for r, w in zip(reals, (2, 1))
        )
    )
    exe = [sys.executable, "-m", "mobileha.cli"]
    proc = subprocess.Popen(
        [*exe, "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "slb.log", "wb"),  # noqa: SIM115
    )

    def get(path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{api}{path}", timeout=5) as r:
            body = r.read()
        return body if path == "/metrics" else json.loads(body)

    try:
        wait_ready(proc, lambda: get("/api/slb"), 15, "the SLB", tmp_path / "slb.log")
        fa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fa.bind((f"{net}.2", 0))
        for i in range(6):
            nai = f"mn{i}@example.net".encode()
            fa.sendto(
                struct.pack("!BBH4s4s4sQ", 1, 0, 600, bytes(4), bytes(4), bytes(4), i)
                + bytes([131, len(nai)])
                + nai,
                (vip, port),
            )
        got = [0, 0]
        for k, r in enumerate(reals):
            with contextlib.suppress(TimeoutError):
                while got[k] < 6:
                    r.settimeout(1)
                    r.recvfrom(2048)
                    got[k] += 1
        assert got == [4, 2]  # weights 2, 1
        view = get("/api/slb")
        assert view["virtual_address"] == vip and view["forwarded"] == 6
        assert [r["conns"] for r in view["reals"]] == [4, 2]
        page = get("/api/sessions?offset=0&limit=4")
        assert page["total"] == 6 and len(page["items"]) == 4 and page["next_offset"] == 4
        assert page["items"][0]["key"] == "mn0@example.net"
        metrics = get("/metrics").decode()
        assert "slbRealState" in metrics and "slbRealOperWeight" in metrics
        out = subprocess.run(
            [*exe, "show", "slb", "--api", f"http://127.0.0.1:{api}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert f"{net}.11" in out.stdout and "OPERATIONAL" in out.stdout
        out = subprocess.run(
            [*exe, "show", "sessions", "--api", f"http://127.0.0.1:{api}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert "mn5@example.net" in out.stdout
    finally:
        proc.terminate()
        try:
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            for r in reals:
                r.close()
