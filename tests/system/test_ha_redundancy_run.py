"""Two ``mobileha run`` home agents with [hsrp] (unicast peers on loopback) and
[redundancy]: the HSRP Active one answers, the Standby is silent but holds the synced
binding; after kill -9 of the Active, the Standby takes over and keeps the replay state."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests import helpers
from tests.helpers import free_port as _free
from tests.helpers.procs import log_tails, stop_process

KEY = bytes(range(16))
NAI = "red1@example.net"


class Ha:
    def __init__(self, tmp: Path, name: str, me: str, peer: str, vip: str, prio: int) -> None:
        self.name, self.host = name, me
        self.port = 0
        self.api_port = _free("127.0.0.1", socket.SOCK_STREAM)
        self.cfg = tmp / f"{name}.toml"
        self.log = tmp / f"{name}.log"
        self._args = (me, peer, vip, prio)
        self.vip = vip
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, port: int, peer_port: int, hsrp_port: int) -> None:
        me, peer, vip, prio = self._args
        self.port = port
        self.cfg.write_text(
            f"""
[node]
role = "home-agent"
name = "{self.name}"
[management]
listen = "127.0.0.1:{self.api_port}"
[home_agent]
address = "{me}"
port = {port}
home_prefix = "10.66.0.0/24"
[hsrp]
interface = "lo"
group = 7
virtual_ip = "{vip}"
priority = {prio}
preempt = true
hello_ms = 1000
hold_ms = 3000
port = {hsrp_port}
peers = ["{peer}"]
authentication = "md5:ha-redundancy-run"
[redundancy]
peer = "{peer}"
port = {peer_port}
spi = 400
key = "hex:{KEY.hex()}"
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "{NAI}"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
        )

    def start(self) -> None:
        exe = Path(sys.executable).parent / "mobileha"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mobileha.cli"]
        self.proc = subprocess.Popen(
            [*cmd, "run", str(self.cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115
        )

    def api(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.api_port}/api/{path}"
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.loads(r.read())

    def state(self) -> str:
        with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
            v = self.api("standby")
            groups = v["groups"] if isinstance(v, dict) else v
            return str(groups[0]["state"]).capitalize()
        return "?"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, *has: Ha) -> None:
    """Wait for ``cond``; on timeout the message ends with the logs of ``has``."""
    helpers.wait_for(cond, timeout, what, detail=log_tails(h.log for h in has))


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Ha, Ha]]:
    net = f"127.0.{random.randint(20, 250)}"
    a_ip, b_ip, vip = f"{net}.11", f"{net}.12", f"{net}.100"
    a = Ha(tmp_path, "ha-a", a_ip, b_ip, vip, 110)
    b = Ha(tmp_path, "ha-b", b_ip, a_ip, vip, 100)
    # each HA on its own registration port: redundancy.port names the peer's, on both
    # sides (sync arrives on home_agent.port)
    port, peer_port = _free(a_ip, socket.SOCK_DGRAM), _free(b_ip, socket.SOCK_DGRAM)
    while peer_port == port:
        peer_port = _free(b_ip, socket.SOCK_DGRAM)
    hsrp_port = _free(a_ip, socket.SOCK_DGRAM)
    a.write(port, peer_port, hsrp_port)
    b.write(peer_port, port, hsrp_port)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def request(ha: Ha, ident: int) -> bytes:
    return helpers.request(
        ha_addr=ha.host, care_of="127.0.0.1", ident=ident, lifetime=600, nai=NAI, key=KEY
    )


def exchange(ha: Ha, data: bytes, timeout: float = 2.0) -> RegistrationReply | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind(("127.0.0.1", 0))
        s.sendto(data, (ha.host, ha.port))
        try:
            return RegistrationReply.decode(s.recv(2048))
        except TimeoutError:
            return None


def show_text(ha: Ha, view: str) -> str:
    """What `mobileha show VIEW --api URL` prints for this HA (the real command)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobileha.cli",
            "show",
            view,
            "--api",
            f"http://127.0.0.1:{ha.api_port}",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return out.stdout


def test_hsrp_pair_sync_and_takeover(pair: tuple[Ha, Ha]) -> None:
    a, b = pair
    # Started together: a lone HA passes through Standby and first waits for its bulk
    # download from the (absent) peer to time out before it may become Active.
    a.start()
    b.start()
    wait_for(lambda: a.state() == "Active", 30, "A active", a, b)
    wait_for(lambda: b.state() == "Standby", 15, "B standby", a, b)

    def in_sync() -> bool:
        v = b.api("redundancy")
        return bool(v.get("ready", v.get("sync_state") == "in-sync"))

    wait_for(in_sync, 15, "B in sync", a, b)

    first = request(a, ntp_identification(time.time(), 1))
    reply = exchange(a, first)
    assert reply is not None and reply.code == 0
    hoa = reply.home_addr
    # the standby got the binding (and its dynamic allocation) but does not answer
    wait_for(lambda: b.api("bindings")["total"] == 1, 10, "binding synced to B", a, b)
    item = b.api("bindings")["items"][0]
    assert item["home_address"] == hoa and item["state"] == "standby"
    assert exchange(b, request(b, ntp_identification(time.time(), 2)), 1.0) is None
    assert b.api("stats")["bad_input"].get("standby") == 1

    # `mobileha show standby` / `show redundancy` against the running pair (issue 8)
    text_a, text_b = show_text(a, "standby"), show_text(b, "standby")
    assert "State is Active" in text_a and "State is Standby" in text_b, (text_a, text_b)
    assert f"Virtual IP address is {a.vip}" in text_a and "local" in text_a.lower()
    red = show_text(b, "redundancy")
    assert "role standby, sync state in-sync" in red, red
    assert "Binding updates received 1," in red and "Security violations 0" in red, red
    assert "last heard never" not in red and "Last bulk download never" not in red, red
    assert "Bindings 1," in red, red

    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    wait_for(lambda: b.state() == "Active", 15, "B takes over", b)
    # the replayed first request is refused by the new active (replay state survived)
    replay = exchange(b, first)
    assert replay is not None and replay.code == 133
    fresh = exchange(b, request(b, ntp_identification(time.time(), 3)))
    assert fresh is not None and fresh.code == 0 and fresh.home_addr == hoa
    assert b.api("bindings")["items"][0]["state"] == "active"
