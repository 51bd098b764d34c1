"""Restart without loss of a home agent without a peer (``home_agent.journal``): 10,000 MNs
registered, re-registrations with new care-of addresses running until a kill -9, then a new
process on the same journal. Every binding acknowledged more than 100 ms before the kill is
back with its care-of address and lifetime (remaining lifetime counted on), a replay of its
last accepted request gets 133, and new registrations are accepted. A clean stop (SIGTERM)
keeps the table as well."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mobileha.wire.auth import ntp_identification
from tests.helpers import free_port, request, wait_for
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(240)

N = 10_000
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
WINDOW_S = 0.1  # what a kill -9 may lose (journal_commit_ms = 10 is well inside it)


def config(host: str, port: int, api: int, journal: Path) -> str:
    head = f"""[node]
role = "home-agent"
name = "ha-journal"
[management]
listen = "127.0.0.1:{api}"
[home_agent]
address = "{host}"
port = {port}
home_prefix = "10.90.0.0/16"
max_lifetime = 3600
journal = "{journal}"
journal_commit_ms = 10
[dataplane]
backend = "memory"
"""
    mn = (
        '[[mobile_node]]\nnai = "mn{i}@j.example"\nspi = 256\nalgorithm = "hmac-md5"\n'
        f'key = "hex:{KEY.hex()}"\n'
    )
    return head + "".join(mn.format(i=i) for i in range(N))


class Client:
    """Registers MNs and remembers every accepted reply: (ack time, request, care-of,
    lifetime, home address) per NAI."""

    def __init__(self, host: str, port: int) -> None:
        self.dst = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.acks: dict[int, list[tuple[float, bytes, str, int, str]]] = {}
        self.sent: dict[int, tuple[bytes, str]] = {}  # ident low 32 -> request, care-of
        self.seq = 0
        self.codes: dict[int, int] = {}

    def send(self, i: int, coa: str) -> None:
        self.seq += 1
        req = request(
            ha_addr=self.dst[0], care_of=coa, nai=f"mn{i}@j.example", key=KEY, lifetime=600,
            ident=ntp_identification(time.time(), (i << 12) | (self.seq & 0xFFF)),
        )  # fmt: skip
        self.sent[((i << 12) | (self.seq & 0xFFF)) & 0xFFFFFFFF] = (req, coa)
        self.sock.sendto(req, self.dst)

    def receive(self) -> bool:
        try:
            data = self.sock.recv(2048)
        except (TimeoutError, OSError):
            return False
        now = time.monotonic()
        code, lifetime = data[1], int.from_bytes(data[2:4], "big")
        self.codes[code] = self.codes.get(code, 0) + 1
        low = int.from_bytes(data[16:20], "big")
        got = self.sent.get(low)
        if code == 0 and got is not None:
            home = socket.inet_ntoa(data[4:8])
            self.acks.setdefault(low >> 12, []).append((now, got[0], got[1], lifetime, home))
        return True

    def register_all(self, coa_of: Any, window: int = 200) -> None:
        pending = 0
        for i in range(N):
            self.send(i, coa_of(i))
            pending += 1
            while pending >= window:
                pending -= 1 if self.receive() else pending
        while pending and self.receive():
            pending -= 1


def api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def bindings(port: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = api(port, f"/api/bindings?offset={offset}&limit=5000")
        for b in page["items"]:
            out[b["nai"]] = b
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return out


def test_kill_9_and_restart_keep_every_acknowledged_binding(tmp_path: Path) -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port, apiport = free_port(host), free_port("127.0.0.1", socket.SOCK_STREAM)
    journal = tmp_path / "bindings.journal"
    cfg = tmp_path / "ha.toml"
    cfg.write_text(config(host, port, apiport, journal))
    logs = [open(tmp_path / f"ha{n}.log", "wb") for n in range(3)]  # noqa: SIM115

    def start(n: int) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([*mobileha_command(), "run", str(cfg)], stdout=logs[n], stderr=logs[n])
        wait_for(lambda: api(apiport, "/")["node"], 60, "HA API", 0.2, ignore=(Exception,))
        return p

    ha = start(0)
    try:
        c = Client(host, port)
        c.register_all(lambda i: f"192.0.{2 + (i >> 8) % 4}.{i & 255}")
        assert len(c.acks) == N, (len(c.acks), c.codes)
        # re-registrations with new care-of addresses until (and after) the kill
        stop = threading.Event()

        def churn() -> None:
            rnd = random.Random(7)
            while not stop.is_set():
                for _ in range(20):
                    i = rnd.randrange(N)
                    c.send(i, f"198.51.100.{rnd.randrange(1, 255)}")
                for _ in range(20):
                    if not c.receive():
                        break

        t = threading.Thread(target=churn)
        t.start()
        time.sleep(1.5)
        ha.kill()  # SIGKILL
        killed = time.monotonic()
        ha.wait()
        time.sleep(0.3)
        stop.set()
        t.join()
        ha = start(1)
        restored = bindings(apiport)
        checked = 0
        for i, acks in c.acks.items():
            before = [a for a in acks if a[0] < killed - WINDOW_S]
            assert before, i
            last = before[-1]
            later_coas = {a[2] for a in acks if a[0] >= last[0]}
            b = restored.get(f"mn{i}@j.example")
            assert b is not None, f"mn{i} lost"
            assert b["care_of"] in later_coas, (i, b, last)
            if b["care_of"] == last[2]:
                assert b["home_address"] == last[4]
                assert b["lifetime_granted"] == last[3]
                assert 0 < b["lifetime_remaining"] <= last[3]
                checked += 1
        # the MNs not acknowledged again in the last WINDOW_S before the kill must all be
        # back exactly as last acknowledged (how many that is follows the churn's rate)
        quiet = sum(1 for acks in c.acks.values() if acks[-1][0] < killed - WINDOW_S)
        assert len(restored) == N and checked >= quiet > N // 2, (len(restored), checked, quiet)
        # what the kill did lose: acknowledged registrations not in the restored table
        lost = [
            killed - acks[-1][0]
            for i, acks in c.acks.items()
            if restored[f"mn{i}@j.example"]["care_of"] != acks[-1][2]
        ]
        print(
            f"kill -9: {sum(len(a) for a in c.acks.values()) - N} re-registrations acked, "
            f"{len(lost)} lost, the oldest lost acknowledged "
            f"{max(lost, default=0) * 1000:.0f} ms before the kill"
        )
        # replay state: the last accepted request of 200 MNs replayed gets 133
        c.sock.settimeout(1.0)
        replays = [i for i, acks in c.acks.items() if acks[-1][0] < killed - WINDOW_S][:200]
        codes = []
        for i in replays:
            c.sock.sendto(c.acks[i][-1][1], c.dst)
            codes.append(c.sock.recv(2048)[1])
        assert codes == [133] * len(replays), codes
        # new registrations go on
        c.sock.settimeout(2.0)
        c.send(5, "203.0.113.5")
        assert c.sock.recv(2048)[1] == 0
        # a clean stop keeps the table too
        ha.send_signal(signal.SIGTERM)
        assert ha.wait(30) == 0
        ha = start(2)
        assert api(apiport, "/api/bindings?limit=1")["total"] == N
    finally:
        if ha.poll() is None:
            ha.send_signal(signal.SIGTERM)
            try:
                ha.wait(30)
            except subprocess.TimeoutExpired:
                ha.kill()
        for f in logs:
            f.close()
    log1 = (tmp_path / "ha1.log").read_text()
    assert "journal opened" in log1 and f"bindings_restored={N}" in log1, log1[-2000:]
