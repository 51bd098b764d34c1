"""Structured log lines and the per-reason rate limiter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mobileha.log import RateLimitedLogger, get_logger, setup_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    s = io.StringIO()
    setup_logging("debug", "kv", stream=s)
    yield s
    setup_logging("warning", "kv")


def test_kv_format(stream: io.StringIO) -> None:
    get_logger("mobileha.t").info("binding added", hoa="10.1.0.5", nai="a b", n=3)
    line = stream.getvalue().strip()
    assert line.startswith("ts=") and line.endswith('nai="a b" n=3')
    assert ' level=info logger=mobileha.t msg="binding added" hoa=10.1.0.5 ' in line


def test_json_format() -> None:
    s = io.StringIO()
    setup_logging("info", "json", stream=s)
    try:
        log = get_logger("mobileha.t")
        log.debug("hidden")
        log.warning("bad", reason="short", size=3, addr=("1.2.3.4", 5))
    finally:
        setup_logging("warning", "kv")
    lines = s.getvalue().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["level"] == "warning" and obj["msg"] == "bad" and obj["size"] == 3
    assert obj["addr"] == "('1.2.3.4', 5)"


def test_level_filter() -> None:
    s = io.StringIO()
    setup_logging("error", "kv", stream=s)
    try:
        get_logger("x").warning("no")
        get_logger("x").error("yes")
    finally:
        setup_logging("warning", "kv")
    assert s.getvalue().count("\n") == 1
    with pytest.raises(ValueError):
        setup_logging("loud")


def test_rate_limiter_once_per_interval_with_suppressed_count(stream: io.StringIO) -> None:
    now = [100.0]
    rl = RateLimitedLogger("mobileha.t", interval_s=10.0, clock=lambda: now[0])
    assert rl.warn("bad_auth", "authenticator mismatch", src="10.0.2.2")
    for _ in range(999):
        assert not rl.warn("bad_auth", "authenticator mismatch", src="10.0.2.2")
    assert rl.warn("short", "datagram too short")  # another reason is independent
    assert rl.suppressed("bad_auth") == 999
    now[0] += 10.0
    assert rl.warn("bad_auth", "authenticator mismatch")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert "reason=bad_auth src=10.0.2.2" in lines[0] and "suppressed" not in lines[0]
    assert "reason=short" in lines[1]
    assert lines[2].endswith("reason=bad_auth suppressed=999")
    assert rl.totals == {"bad_auth": 1001, "short": 1}
    assert rl.suppressed("bad_auth") == 0


def test_rate_limiter_accepts_std_logger(caplog: pytest.LogCaptureFixture) -> None:
    rl = RateLimitedLogger(logging.getLogger("mobileha.std"), interval_s=60)
    with caplog.at_level(logging.WARNING):
        rl.warn("r", "m")
        rl.warn("r", "m")
    assert len(caplog.records) == 1
