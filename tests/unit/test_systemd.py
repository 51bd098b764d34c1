"""mobileha.systemd: sd_notify to a path or an abstract socket (nothing without
$NOTIFY_SOCKET), the watchdog interval from $WATCHDOG_USEC (only for our PID), the journal's
native protocol (text and binary fields), and $JOURNAL_STREAM matching stderr."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from mobileha import systemd
from mobileha.log import get_logger


def test_notify_path_abstract_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "n"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n"))
    assert systemd.notify("READY=1\nSTATUS=x")
    assert s.recv(100) == b"READY=1\nSTATUS=x"
    a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"mobileha-test-{os.getpid()}"
    a.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert systemd.notify("STOPPING=1") and a.recv(100) == b"STOPPING=1"
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.notify("READY=1") is False  # never raises


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.Watchdog().interval == 2.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.Watchdog().interval is None  # for another process
    monkeypatch.delenv("WATCHDOG_USEC")
    assert systemd.Watchdog().interval is None


def test_journal_fields(tmp_path: Path) -> None:
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind(str(tmp_path / "j"))
    h = systemd.JournalHandler("mobileha", str(tmp_path / "j"))
    log = logging.getLogger("mobileha.test.journal")
    log.addHandler(h)
    log.setLevel(logging.INFO)
    try:
        get_logger("mobileha.test.journal").warning(
            "real state", real="10.0.1.1", reason="two\nlines", **{"2x": 1}
        )
    finally:
        log.removeHandler(h)
        h.close()
    data = j.recv(65536)
    assert b"MESSAGE=real state\n" in data and b"PRIORITY=4\n" in data
    assert b"REAL=10.0.1.1\n" in data and b"LOGGER=mobileha.test.journal\n" in data
    assert b"F_2X=1\n" in data
    value = b"two\nlines"
    assert b"REASON\n" + len(value).to_bytes(8, "little") + value + b"\n" in data


def test_under_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "err", "w") as f:
        st = os.fstat(f.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert systemd.under_journal(f)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not systemd.under_journal(f)
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not systemd.under_journal()
