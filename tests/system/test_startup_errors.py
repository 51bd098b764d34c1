"""Wrong configs and busy ports stop `mobileha run` with one line that names the key and
the address (no traceback), and a node that could not bind never says it started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.helpers.procs import mobileha_command

pytestmark = pytest.mark.timeout(60)


def run(tmp: Path, toml: str, *, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "node.toml"
    cfg.write_text(toml)
    return subprocess.run(
        [*prefix, *mobileha_command(), "run", str(cfg), "--log-format", "kv"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


def ha(port: int, api: int, extra: str = "") -> str:
    return f"""
[node]
role = "home-agent"
name = "ha-err"
[management]
listen = "127.0.0.1:{api}"
[home_agent]
address = "127.0.0.1"
port = {port}
[dataplane]
backend = "memory"
{extra}
"""


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one ``mobileha run:`` line on stderr (the log lines are the others)."""
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mobileha run: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@contextmanager
def busy(kind: int, port: int) -> Iterator[None]:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", port))
    if kind == socket.SOCK_STREAM:
        s.listen()
    try:
        yield
    finally:
        s.close()


def test_busy_registration_port(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    with busy(socket.SOCK_DGRAM, port):
        p = run(tmp_path, ha(port, free_port("127.0.0.1", socket.SOCK_STREAM)))
    line = one_line(p)
    assert line == (
        f"mobileha run: home_agent.port: 127.0.0.1:{port}: cannot bind: address already in "
        "use (another process has it: ss -lunp / ss -ltnp)"
    ), line
    assert "home agent started" not in p.stderr and "node started" not in p.stderr


def test_busy_management_and_dfp(tmp_path: Path) -> None:
    api = free_port("127.0.0.1", socket.SOCK_STREAM)
    with busy(socket.SOCK_STREAM, api):
        p = run(tmp_path, ha(free_port("127.0.0.1"), api))
    assert one_line(p).startswith(f"mobileha run: management.listen: 127.0.0.1:{api}: cannot bind")
    dfp = free_port("127.0.0.1", socket.SOCK_STREAM)
    with busy(socket.SOCK_STREAM, dfp):
        p = run(
            tmp_path,
            ha(
                free_port("127.0.0.1"),
                free_port("127.0.0.1", socket.SOCK_STREAM),
                f'[dfp]\nlisten = "127.0.0.1:{dfp}"\npassword = "text:dfp-secret"',
            ),
        )
    assert one_line(p).startswith(f"mobileha run: dfp.listen: 127.0.0.1:{dfp}: cannot bind")
    assert "home agent started" not in p.stderr


def test_address_not_on_this_host(tmp_path: Path) -> None:
    toml = ha(free_port("127.0.0.1"), free_port("127.0.0.1", socket.SOCK_STREAM))
    p = run(tmp_path, toml.replace('address = "127.0.0.1"', 'address = "192.0.2.77"'))
    assert "mobileha run: home_agent.address: 192.0.2.77:" in one_line(p)
    assert "it is on no interface of this host" in one_line(p)


def test_busy_slb_and_fa_ports(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    api = free_port("127.0.0.1", socket.SOCK_STREAM)
    slb = f"""
[node]
role = "slb"
[management]
listen = "127.0.0.1:{api}"
[slb]
virtual_address = "127.0.0.1"
port = {port}
mode = "relay"
[[slb.real]]
address = "127.0.0.2"
"""
    fa = f"""
[node]
role = "foreign-agent"
[management]
listen = "127.0.0.1:{api}"
[foreign_agent]
address = "127.0.0.1"
port = {port}
[dataplane]
backend = "memory"
"""
    with busy(socket.SOCK_DGRAM, port):
        assert one_line(run(tmp_path, slb)).startswith(
            f"mobileha run: slb.port: 127.0.0.1:{port}: cannot bind: address already in use"
        )
        assert one_line(run(tmp_path, fa)).startswith(
            f"mobileha run: foreign_agent.port: 127.0.0.1:{port}: cannot bind: address already"
        )


def test_missing_hsrp_interface_named_by_check_and_run(tmp_path: Path) -> None:
    toml = ha(
        free_port("127.0.0.1"),
        free_port("127.0.0.1", socket.SOCK_STREAM),
        '[hsrp]\ninterface = "nosuch0"\nvirtual_ip = "127.0.0.9"\npeers = ["127.0.0.2"]\n'
        'authentication = "md5:startup-test"',
    )
    cfg = tmp_path / "ha.toml"
    cfg.write_text(toml)
    chk = subprocess.run([*mobileha_command(), "check", str(cfg)], capture_output=True, text=True)
    assert chk.returncode == 1
    assert f"{cfg}: hsrp.interface: no interface 'nosuch0' on this host" in chk.stderr
    ok = subprocess.run(
        [*mobileha_command(), "check", "--no-host", str(cfg)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    p = run(tmp_path, toml)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "hsrp.interface: no interface 'nosuch0' on this host" in p.stderr


def _no_caps() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv to drop CAP_NET_BIND_SERVICE")
    return (setpriv, "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--")


def test_port_434_without_cap_net_bind_service(tmp_path: Path) -> None:
    prefix = _no_caps()
    p = run(tmp_path, ha(434, free_port("127.0.0.1", socket.SOCK_STREAM)), prefix=prefix)
    line = one_line(p)
    assert line.startswith("mobileha run: home_agent.port: 127.0.0.1:434: cannot bind: "), line
    assert "CAP_NET_BIND_SERVICE" in line and "AmbientCapabilities" in line


def test_a_file_that_is_no_journal_is_named_and_left_alone(tmp_path: Path) -> None:
    port, api = free_port("127.0.0.1"), free_port("127.0.0.1", socket.SOCK_STREAM)
    journal = tmp_path / "bindings.journal"
    journal.write_bytes(b"not a journal at all")
    toml = ha(port, api).replace("[dataplane]", f'journal = "{journal}"\n[dataplane]')
    line = one_line(run(tmp_path, toml))
    assert line.startswith(f"mobileha run: home_agent.journal: {journal}: not a binding journal")
    assert journal.read_bytes() == b"not a journal at all"


def test_a_journal_in_a_missing_directory_is_a_host_problem(tmp_path: Path) -> None:
    port, api = free_port("127.0.0.1"), free_port("127.0.0.1", socket.SOCK_STREAM)
    journal = tmp_path / "nowhere" / "bindings.journal"
    toml = ha(port, api).replace("[dataplane]", f'journal = "{journal}"\n[dataplane]')
    r = run(tmp_path, toml)
    assert r.returncode == 2 and f"home_agent.journal: {journal}: directory" in r.stderr
