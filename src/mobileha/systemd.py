"""Running under systemd: readiness and watchdog notifications, logging to the journal.

* :func:`notify` sends an ``sd_notify`` message to ``$NOTIFY_SOCKET`` (a path, or ``@`` for
  the abstract namespace); without the variable it does nothing. ``mobileha run`` sends
  ``READY=1`` once the node's sockets, data plane and management API are up, ``RELOADING=1``
  (with ``MONOTONIC_USEC``) and ``READY=1`` around a reload, ``STOPPING=1`` when it starts to
  stop, and ``STATUS=`` lines an operator sees in ``systemctl status``.
* :class:`Watchdog`: with ``$WATCHDOG_USEC`` (``WatchdogSec=`` in the unit) ``WATCHDOG=1``
  every half period from the event loop, so a wedged loop is restarted by systemd.
* :class:`JournalHandler` writes each log record to journald's native socket with its
  fields as journal fields (``MESSAGE``, ``PRIORITY``, ``SYSLOG_IDENTIFIER``, ``LOGGER``,
  and every field of the record upper-cased, e.g. ``NAI``, ``REAL``, ``REASON``), so
  ``journalctl -u mobileha@ha-a1 REASON=denied-131`` selects lines. :func:`under_journal`
  tells whether stderr is connected to the journal (``$JOURNAL_STREAM``, systemd.exec(5)):
  then ``mobileha run`` logs there; otherwise kv/json lines on stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping
from typing import Any

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def _address(path: str) -> str | bytes:
    return "\0" + path[1:] if path.startswith("@") else path


def notify(message: str) -> bool:
    """Send ``message`` (``KEY=value`` lines) to systemd; False when not under systemd or
    the socket is gone (never raises: notifications are advisory)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(message.encode(), _address(path))
        return True
    except OSError:
        return False


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Watchdog:
    """``WATCHDOG=1`` every half of ``$WATCHDOG_USEC`` while the loop runs."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ok = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.interval = int(usec) / 2e6 if ok else None
        self._handle: asyncio.TimerHandle | None = None
        self.sent = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.interval is not None:
            self._beat(loop)

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        if notify("WATCHDOG=1"):
            self.sent += 1
        assert self.interval is not None
        self._handle = loop.call_later(self.interval, self._beat, loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def under_journal(stream: Any = None) -> bool:
    """Is ``stream`` (default stderr) the journal's stream (``$JOURNAL_STREAM``)?"""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def _field(name: str, value: Any) -> bytes:
    key = "".join(c if c.isalnum() else "_" for c in name.upper()).lstrip("_") or "FIELD"
    if key[0].isdigit():
        key = "F_" + key
    data = (value if isinstance(value, str) else str(value)).encode("utf-8", "replace")
    if b"\n" in data:  # the binary form: name, newline, 64-bit little-endian length, data
        return key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
    return key.encode() + b"=" + data + b"\n"


class JournalHandler(logging.Handler):
    """Log records to journald's native protocol socket, fields as journal fields."""

    def __init__(
        self,
        identifier: str = "mobileha",
        path: str = JOURNAL_SOCKET,
        fields_attr: str = "mobileha_fields",
    ) -> None:
        super().__init__()
        self.identifier = identifier
        self.path = path
        self.fields_attr = fields_attr
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            parts = [
                _field("MESSAGE", record.getMessage()),
                _field("PRIORITY", _PRIORITY.get(record.levelno, 6)),
                _field("SYSLOG_IDENTIFIER", self.identifier),
                _field("LOGGER", record.name),
                _field("CODE_FILE", record.pathname),
                _field("CODE_LINE", record.lineno),
                _field("CODE_FUNC", record.funcName),
            ]
            fields: Mapping[str, Any] = getattr(record, self.fields_attr, None) or {}
            parts += [_field(k, v) for k, v in fields.items()]
            if record.exc_info:
                fmt = self.formatter or logging.Formatter()
                parts.append(_field("EXCEPTION", fmt.formatException(record.exc_info)))
            self._sock.sendto(b"".join(parts), self.path)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


__all__ = ["JournalHandler", "Watchdog", "monotonic_usec", "notify", "under_journal"]
