"""A ``mobileha run`` home agent process on 127.0.0.x, driven by an independent peer.

The peer builds requests with scapy (``scapy.layers.mobileip``: fixed part only) plus raw
extension bytes, and computes and checks authenticators with ``hmac``/``hashlib`` directly,
never with mobileha's codec. Also: 100,000 random and mutated datagrams to the HA port.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port as _free_port
from tests.helpers import wait_for
from tests.helpers.procs import stop_process, wait_ready

scapy_mobileip = pytest.importorskip("scapy.layers.mobileip")
MobileIP = scapy_mobileip.MobileIP
MobileIPRRQ = scapy_mobileip.MobileIPRRQ
MobileIPRRP = scapy_mobileip.MobileIPRRP

KEY = bytes(range(16))
SPI = 256
NAI = b"peer1@example.net"
NTP_OFFSET = 2208988800
BAD_REASONS = ("short", "not-request", "truncated-extension")


class HaProcess:
    def __init__(self, tmp: Path) -> None:
        self.host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
        self.port = _free_port(self.host)
        self.api_port = _free_port("127.0.0.1", socket.SOCK_STREAM)
        self.cfg = tmp / "ha.toml"
        users = "\n".join(
            f"""
[[mobile_node]]
nai = "{n}"
spi = {SPI}
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
            for n in ("peer1@example.net", "peer2@example.net", "peer3@example.net")
        )
        self.cfg.write_text(
            f"""
[node]
role = "home-agent"
name = "ha-sys"
[management]
listen = "127.0.0.1:{self.api_port}"
[log]
rate_limit_s = 5
[home_agent]
address = "{self.host}"
port = {self.port}
home_prefix = "10.77.0.0/16"
max_lifetime = 3600
[dataplane]
backend = "memory"
{users}
"""
        )
        exe = Path(sys.executable).parent / "mobileha"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mobileha.cli"]
        self.proc = subprocess.Popen(
            [*cmd, "run", str(self.cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "ha.log", "wb"),  # noqa: SIM115
        )
        wait_ready(
            self.proc, lambda: self.api("healthz", raw=True), 15, "home agent", tmp / "ha.log"
        )

    def api(self, path: str, raw: bool = False) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/{path}", timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[HaProcess]:
    p = HaProcess(tmp_path)
    try:
        yield p
    finally:
        p.stop()


def ident_now(low: int, skew: float = 0.0) -> int:
    return ((int(time.time() + skew) + NTP_OFFSET) << 32) | low


def build_rrq(ha: HaProcess, ident: int, key: bytes = KEY, nai: bytes = NAI) -> bytes:
    fixed = bytes(
        MobileIP(type=1)
        / MobileIPRRQ(
            flags=0x02,
            lifetime=1800,
            homeaddr="0.0.0.0",
            haaddr=ha.host,
            coaddr="127.0.0.1",
            id=ident,
        )
    )
    assert len(fixed) == 24
    covered = fixed + bytes([131, len(nai)]) + nai + bytes([32, 20]) + struct.pack("!I", SPI)
    return covered + hmac.new(key, covered, hashlib.md5).digest()


def exchange(ha: HaProcess, sock: socket.socket, data: bytes) -> bytes:
    sock.sendto(data, (ha.host, ha.port))
    reply, src = sock.recvfrom(2048)
    assert src == (ha.host, ha.port)  # from the address the request was sent to (P§1.1)
    return reply


def parse_reply(reply: bytes) -> tuple[Any, dict[int, tuple[int, bytes]]]:
    rrp = MobileIP(reply)
    assert rrp.type == 3
    fixed = rrp[MobileIPRRP]
    exts: dict[int, tuple[int, bytes]] = {}
    off = 20
    while off + 2 <= len(reply):
        t, ln = reply[off], reply[off + 1]
        exts[t] = (off, reply[off + 2 : off + 2 + ln])
        off += 2 + ln
    assert off == len(reply)
    return fixed, exts


def mnha_verifies(reply: bytes, exts: dict[int, tuple[int, bytes]], key: bytes = KEY) -> bool:
    off, value = exts[32]
    assert struct.unpack("!I", value[:4])[0] == SPI
    expected = hmac.new(key, reply[: off + 6], hashlib.md5).digest()
    return hmac.compare_digest(expected, value[4:])


@pytest.fixture
def client(ha: HaProcess) -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    yield s
    s.close()


def test_independent_peer_accept_replay_wrong_key(ha: HaProcess, client: socket.socket) -> None:
    first = build_rrq(ha, ident_now(0x1111))
    reply = exchange(ha, client, first)
    fixed, exts = parse_reply(reply)
    assert fixed.code == 0
    assert fixed.lifetime == 1800
    assert fixed.haaddr == ha.host
    assert fixed.homeaddr.startswith("10.77.")
    assert fixed.id == struct.unpack("!Q", first[16:24])[0]
    assert exts[131][1] == NAI
    assert mnha_verifies(reply, exts)

    # the same request again: a replay -> 133, the reply still authenticated
    reply = exchange(ha, client, first)
    fixed, exts = parse_reply(reply)
    assert fixed.code == 133
    assert fixed.id & 0xFFFFFFFF == 0x1111
    assert abs((fixed.id >> 32) - (int(time.time()) + NTP_OFFSET)) <= 2
    assert mnha_verifies(reply, exts)

    # wrong key -> 131, authenticated with the real SA
    reply = exchange(ha, client, build_rrq(ha, ident_now(0x2222, 1), key=b"W" * 16))
    fixed, exts = parse_reply(reply)
    assert fixed.code == 131
    assert mnha_verifies(reply, exts)

    stats = ha.api("api/stats")
    assert stats["reply_codes"] == {"0": 1, "131": 1, "133": 1}
    bindings = ha.api("api/bindings")
    assert bindings["total"] == 1 and bindings["items"][0]["nai"] == NAI.decode()
    assert bindings["items"][0]["flags_text"] == "sbdmgrTx"


def _mutations(valid: bytes, rng: random.Random) -> Iterator[bytes]:
    while True:
        r = rng.random()
        if r < 0.3:
            yield rng.randbytes(rng.randint(0, 120))
        elif r < 0.5:
            b = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            yield bytes(b)
        elif r < 0.65:
            yield valid[: rng.randint(0, len(valid))]
        elif r < 0.8:
            b = bytearray(valid)
            b[rng.randrange(24, len(b))] = rng.choice([0, 1, 37, 38, 48, 99, 127, 255])
            yield bytes(b)
        elif r < 0.9:
            yield bytes([1]) + rng.randbytes(rng.randint(23, 60))
        else:
            yield valid + rng.randbytes(rng.randint(1, 40))


def test_bad_input_100k(ha: HaProcess, client: socket.socket) -> None:
    rng = random.Random(4343)
    valid = build_rrq(ha, ident_now(1), nai=b"peer2@example.net")
    target = (ha.host, ha.port)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.setblocking(False)
    rss0 = ha.rss_kib()
    gen = _mutations(valid, rng)
    sent = 0
    rss_mid = 0
    for i in range(100_000):
        with contextlib.suppress(BlockingIOError):
            sender.sendto(next(gen), target)
            sent += 1
        if i % 200 == 199:
            time.sleep(0.002)  # stay below the receive buffer; drain replies
            with contextlib.suppress(BlockingIOError, OSError):
                while True:
                    sender.recv(4096)
        if i == 50_000:
            rss_mid = ha.rss_kib()
    sender.close()
    assert sent > 95_000
    assert ha.proc.poll() is None, "home agent died"

    def read_all() -> bool:
        bad = ha.api("api/stats")["bad_input"]
        return sum(bad.values()) > 10_000 and all(bad.get(r, 0) > 0 for r in BAD_REASONS)

    wait_for(read_all, 5, "the flood read and counted")
    stats = ha.api("api/stats")
    bad = stats["bad_input"]
    assert sum(bad.values()) > 10_000
    print("drops by reason:", bad, "reply codes:", stats["reply_codes"])
    for reason in BAD_REASONS:
        assert bad.get(reason, 0) > 0, bad
    metrics = ha.api("metrics", raw=True).decode()
    assert 'mobileha_bad_input_total{reason="truncated-extension"}' in metrics
    # a valid registration still works
    reply = exchange(ha, client, build_rrq(ha, ident_now(0x77, 1), nai=b"peer3@example.net"))
    fixed, exts = parse_reply(reply)
    assert fixed.code == 0 and mnha_verifies(reply, exts)
    rss1 = ha.rss_kib()
    # memory does not grow without bound: the second half adds (almost) nothing
    print(f"RSS KiB: start {rss0}, after 50k {rss_mid}, after 100k {rss1}")
    assert rss1 - rss_mid < 8 * 1024, (rss0, rss_mid, rss1)
    assert os.path.exists(f"/proc/{ha.proc.pid}")
