"""Structured logging: key=value or JSON lines, and a per-reason rate limiter for bad input.

Use :func:`get_logger` for a logger that takes fields as keyword arguments::

    log = get_logger("mobileha.ha")
    log.info("binding added", hoa="10.1.0.5", coa="10.0.2.2", lifetime=1800)

    ts=2026-11-27T16:30:00.123Z level=info logger=mobileha.ha msg="binding added" \
hoa=10.1.0.5 coa=10.0.2.2 lifetime=1800

Bad input (malformed datagrams, failed authenticators, unknown SPIs...) goes through a
:class:`RateLimitedLogger`: each *reason* is logged at most once per interval, the next line
for that reason carries ``suppressed=N`` (how many were not logged), and every occurrence is
counted in ``totals`` whether logged or not. Never log per packet on the hot path otherwise.

:func:`setup_logging` installs the handler once per process (``mobileha run`` calls it from the
``[log]`` section and ``--log-level``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

LEVELS = ("debug", "info", "warning", "error")
_FIELDS_ATTR = "mobileha_fields"


def _fmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else str(v)
    if s == "" or any(c in s for c in ' "=\\\n\t'):
        return json.dumps(s, ensure_ascii=False)
    return s


def _timestamp(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=... msg="..." k=v ...`` (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={_timestamp(record)}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_fmt_value(record.getMessage())}",
        ]
        fields: Mapping[str, Any] = getattr(record, _FIELDS_ATTR, None) or {}
        parts.extend(f"{k}={_fmt_value(v)}" for k, v in fields.items())
        if record.exc_info:
            parts.append(f"exc={_fmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields: Mapping[str, Any] = getattr(record, _FIELDS_ATTR, None) or {}
        for k, v in fields.items():
            obj[k] = v if isinstance(v, int | float | str | bool | type(None)) else str(v)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class StructLogger:
    """A thin wrapper over :class:`logging.Logger` that takes fields as keyword arguments."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _log(self, level: int, msg: str, fields: dict[str, Any], exc: bool = False) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, msg, extra={_FIELDS_ATTR: fields}, exc_info=exc)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, fields)

    warn = warning

    def error(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields, exc=True)

    def is_enabled(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(name))


class RateLimitedLogger:
    """Log each bad-input *reason* at most once per ``interval_s``; count every occurrence.

    ``warn(reason, msg, **fields)`` returns True when it logged. After a quiet period the
    line carries ``suppressed=N``, the number of occurrences since the last line for that
    reason. ``totals`` maps reason -> all occurrences (logged or not). Reasons should be a
    small fixed vocabulary (e.g. a ``DecodeError.reason``), never per-peer strings.
    """

    __slots__ = ("_clock", "_last", "_level", "_log", "_suppressed", "interval_s", "totals")

    def __init__(
        self,
        logger: StructLogger | logging.Logger | str,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.WARNING,
    ) -> None:
        if isinstance(logger, str):
            logger = get_logger(logger)
        elif isinstance(logger, logging.Logger):
            logger = StructLogger(logger)
        self._log = logger
        self.interval_s = interval_s
        self._clock = clock
        self._level = level
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def warn(self, reason: str, msg: str, **fields: Any) -> bool:
        self.totals[reason] = self.totals.get(reason, 0) + 1
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval_s:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return False
        self._last[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        if suppressed:
            fields["suppressed"] = suppressed
        self._log._log(self._level, msg, {"reason": reason, **fields})
        return True

    warning = warn

    def suppressed(self, reason: str) -> int:
        """Occurrences of ``reason`` not logged since its last line."""
        return self._suppressed.get(reason, 0)


_handler: logging.Handler | None = None


def setup_logging(
    level: str = "info",
    fmt: str = "kv",
    stream: IO[str] | None = None,
    handler: logging.Handler | None = None,
) -> None:
    """Install one handler on the root logger (idempotent: replaces the previous one):
    ``handler`` (e.g. the journal's), else a kv or JSON stream handler on stderr."""
    global _handler
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        if _handler is not handler:
            _handler.close()
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    _handler = handler


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format`` (override the config's ``[log]``)."""
    parser.add_argument("--log-level", choices=LEVELS, default=None, help="log level")
    parser.add_argument("--log-format", choices=("kv", "json"), default=None, help="log format")


__all__ = [
    "LEVELS",
    "JsonFormatter",
    "KeyValueFormatter",
    "RateLimitedLogger",
    "StructLogger",
    "add_log_arguments",
    "get_logger",
    "setup_logging",
]
