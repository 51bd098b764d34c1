"""``mobileha run`` under systemd, with stand-ins for systemd's sockets (systemd is not PID 1
here): ``$NOTIFY_SOCKET`` gets READY=1 only once the registration socket answers, WATCHDOG=1
every half ``$WATCHDOG_USEC``, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 on
SIGTERM; with ``$JOURNAL_STREAM`` naming stderr, the log goes to the journal's native socket
with its fields as journal fields. The unit file is Type=notify with a watchdog and a
reload."""

from __future__ import annotations

import configparser
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mobileha.wire.auth import ntp_identification
from tests.helpers import free_port, request
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(16))


def fields(datagram: bytes) -> dict[str, str]:
    """A journal native-protocol datagram (text form only) as a dict."""
    out = {}
    for line in datagram.decode().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def test_notify_watchdog_reload_stop_and_journal_fields(tmp_path: Path) -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    cfg = tmp_path / "ha.toml"
    cfg.write_text(
        f"""
[node]
role = "home-agent"
name = "ha-systemd"
[management]
enabled = false
[home_agent]
address = "{host}"
port = {port}
home_prefix = "10.57.0.0/24"
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "n1@example.net"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(tmp_path / "journal"))
    journal.settimeout(5)
    stderr = open(tmp_path / "stderr", "wb")  # noqa: SIM115
    st = os.fstat(stderr.fileno())
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "200000",
        "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
        "MOBILEHA_JOURNAL_SOCKET": str(tmp_path / "journal"),
    }
    p = subprocess.Popen(
        [*mobileha_command(), "run", str(cfg)], stdout=stderr, stderr=stderr, env=env
    )
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(2)
    try:
        msgs = []
        while "READY=1" not in msgs:
            msgs.append(notify.recv(4096).decode().split("\n")[0])
        # ready means serving: a registration is answered at once
        req = request(
            ha_addr=host, care_of="127.0.0.1", nai="n1@example.net", key=KEY,
            ident=ntp_identification(time.time(), 1),
        )  # fmt: skip
        client.sendto(req, (host, port))
        assert client.recv(2048)[1] == 0
        beats = 0
        t0 = time.monotonic()
        while beats < 3:
            if notify.recv(4096) == b"WATCHDOG=1":
                beats += 1
        assert time.monotonic() - t0 < 3.0
        p.send_signal(signal.SIGHUP)
        seen = []
        while len(seen) < 2 or seen[-1] != "READY=1":
            m = notify.recv(4096).decode()
            if m != "WATCHDOG=1":
                seen.append(m.split("\n")[0])
        assert seen == ["RELOADING=1", "READY=1"], seen
        p.send_signal(signal.SIGTERM)
        while notify.recv(4096).decode().split("\n")[0] != "STOPPING=1":
            pass
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        stderr.close()
    records = []
    journal.setblocking(False)
    while True:
        try:
            records.append(fields(journal.recv(65536)))
        except BlockingIOError:
            break
    started = [r for r in records if r.get("MESSAGE") == "home agent started"]
    assert started and started[0]["PRIORITY"] == "6" and started[0]["NODE"] == "ha-systemd"
    assert started[0]["LISTEN"] == f"{host}:{port}" and started[0]["SYSLOG_IDENTIFIER"]
    assert any(r.get("MESSAGE", "").startswith("config reloaded") for r in records)
    assert (tmp_path / "stderr").read_text() == ""  # nothing on stderr under the journal


def test_unit_file() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "examples" / "mobileha@.service")
    s = unit["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert "mobileha reload" in s["ExecReload"] and s["WatchdogSec"]
    assert s["ExecStart"].startswith("/usr/local/bin/mobileha run ")
