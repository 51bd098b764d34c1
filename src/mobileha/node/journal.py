"""The binding journal file of a home agent without a peer (``home_agent.journal``).

Restart without loss: every binding change the coordinator returns is encoded at once
(:mod:`mobileha.core.journal`) into a buffer; the buffer is written to the file with one
``write`` per commit interval (group commit, ``home_agent.journal_commit_ms``; 0 = at the end
of each datagram's actions, before the loop does anything else). A ``write`` that returned
is in the kernel's page cache and survives a kill -9 of the process, so what a kill -9 can
lose is what was acknowledged within the last commit interval (plus the time the loop was
busy elsewhere). With ``home_agent.journal_fsync`` every write is also ``fdatasync``'d (in a
worker thread, one at a time), which extends that to a crash of the host.

Start-up (before the sockets open) reads the file, stops at a torn tail, gives the bindings
back to the cores (:func:`mobileha.core.journal.restore`: remaining lifetimes, replay state,
pool allocations; their data plane entries are installed like a takeover's) and appends to
the file after its last good entry. The file is rewritten as a snapshot of the table
(compaction, written to a temporary file and renamed) when it holds more than
``COMPACT_FACTOR`` times as many entries as there are bindings (and at least
``COMPACT_MIN``), at start-up or while running, and at a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from mobileha.core import journal as core
from mobileha.core.binding import Binding
from mobileha.core.home_agent import HomeAgent
from mobileha.log import get_logger
from mobileha.node.base import StartupError
from mobileha.wire import DecodeError
from mobileha.wire.journal import check_header, decode_entries

COMPACT_FACTOR = 4
COMPACT_MIN = 100_000

_log = get_logger("mobileha.journal")


class BindingJournal:
    """The journal of one home agent process (every HA address it serves)."""

    def __init__(self, path: str | Path, commit_ms: int = 10, fsync: bool = False) -> None:
        self.path = Path(path)
        self.commit_s = commit_ms / 1000.0
        self.fsync = fsync
        self._fd: int | None = None
        self._buf: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_at: asyncio.TimerHandle | None = None
        self._sync_task: asyncio.Future[None] | None = None
        self._agents: dict[str, HomeAgent] = {}
        self.entries = 0  # entries in the file since the last compaction
        self.stats = {"writes": 0, "entries": 0, "bytes": 0, "fsyncs": 0, "compactions": 0}
        self.errors = 0

    # ------------------------------------------------------------------ start / stop

    def open(
        self, agents: dict[str, HomeAgent], now: float, wall: float
    ) -> tuple[list[Any], int, int]:
        """Read the file, restore its bindings into ``agents`` (HA address -> core) and keep
        it open for appending: compacted first when it holds many more entries than
        bindings, else cut after its last good entry. Returns the cores' actions, restored
        and skipped counts."""
        actions: list[Any] = []
        restored = skipped = 0
        entries: list[Any] = []
        end = 0
        t0 = time.perf_counter()
        where = str(self.path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as e:
            raise StartupError("home_agent.journal", where, e.strerror or str(e)) from None
        if data:
            try:
                check_header(data)
            except DecodeError as e:
                raise StartupError(
                    "home_agent.journal", where, f"not a binding journal ({e.reason}); left as is"
                ) from None
            entries, end = decode_entries(data)
            if end < len(data):
                _log.warning(
                    "journal: torn or damaged tail ignored",
                    path=str(self.path),
                    bytes_dropped=len(data) - end,
                    entries=len(entries),
                )
            actions, restored, skipped = core.restore(core.fold(entries), agents, now, wall)
        self._agents = agents
        try:
            if not data or len(entries) > max(COMPACT_MIN, COMPACT_FACTOR * restored):
                self._compact(now, wall)
            else:  # a torn tail is cut off so that what is appended can be read
                if end < len(data):
                    os.truncate(self.path, end)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                self.entries = len(entries)
        except OSError as e:
            raise StartupError("home_agent.journal", where, e.strerror or str(e)) from None
        _log.info(
            "journal opened",
            path=str(self.path),
            bindings_restored=restored,
            expired_or_unknown=skipped,
            read_ms=round((time.perf_counter() - t0) * 1000, 1),
            commit_ms=round(self.commit_s * 1000),
            fsync=self.fsync,
        )
        return actions, restored, skipped

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self, now: float, wall: float) -> None:
        """Clean stop: the buffered entries, then a compacted file (only for a journal that
        was opened: an unreadable file is left as it is)."""
        if self._fd is None:
            return
        self.flush()
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        if self._agents:
            with contextlib.suppress(OSError):
                self._compact(now, wall)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Close without writing what is buffered (tests of a kill)."""
        self._buf.clear()
        if self._flush_at is not None:
            self._flush_at.cancel()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _compact(self, now: float, wall: float) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = core.snapshot(self._agents.items(), now, wall)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.entries = sum(len(ha.table) for ha in self._agents.values())
        self.stats["compactions"] += 1

    # ------------------------------------------------------------------ changes

    def put(self, b: Binding, now: float, wall: float) -> None:
        """A binding was created or renewed."""
        agent = b.ha_addr
        ha = self._agents.get(agent)
        if ha is None:
            return
        self._buf.append(core.binding_entry(agent, ha, b, now, wall))
        self._arm()

    def delete(self, b: Binding, wall: float) -> None:
        """A binding was removed (deregistered, expired, replaced)."""
        if b.ha_addr in self._agents:
            self._buf.append(core.delete_entry(b.ha_addr, b, wall))
            self._arm()

    def _arm(self) -> None:
        if self._flush_at is None and self.commit_s > 0 and self._loop is not None:
            self._flush_at = self._loop.call_later(self.commit_s, self._on_commit)

    def _on_commit(self) -> None:
        self._flush_at = None
        self.flush()

    def end_of_batch(self) -> None:
        """The actions of one datagram or timer are done: with commit interval 0, write."""
        if self.commit_s <= 0 and self._buf:
            self.flush()

    def flush(self) -> None:
        """Write the buffered entries (one ``write``), then ``fdatasync`` if configured."""
        buf = self._buf
        if not buf or self._fd is None:
            return
        data = b"".join(buf)
        n = len(buf)
        self._buf = []
        try:
            os.write(self._fd, data)
        except OSError as e:
            self.errors += 1
            _log.error("journal write failed", path=str(self.path), error=str(e), entries=n)
            return
        self.stats["writes"] += 1
        self.stats["entries"] += n
        self.stats["bytes"] += len(data)
        self.entries += n
        if self.fsync and self._loop is not None and self._sync_task is None:
            self._sync_task = self._loop.run_in_executor(None, self._fdatasync, self._fd)
            self._sync_task.add_done_callback(self._synced)
        live = sum(len(ha.table) for ha in self._agents.values())
        if self.entries > max(COMPACT_MIN, COMPACT_FACTOR * live) and self._loop is not None:
            now = self._loop.time()
            t0 = time.perf_counter()
            self._compact(now, time.time())
            _log.info(
                "journal compacted",
                path=str(self.path),
                bindings=live,
                ms=round((time.perf_counter() - t0) * 1000, 1),
            )

    @staticmethod
    def _fdatasync(fd: int) -> None:
        os.fdatasync(fd)

    def _synced(self, fut: asyncio.Future[None]) -> None:
        self._sync_task = None
        if fut.cancelled():
            return
        e = fut.exception()
        if e is not None:
            self.errors += 1
            _log.error("journal fdatasync failed", path=str(self.path), error=str(e))
        else:
            self.stats["fsyncs"] += 1

    def view(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "commit_ms": round(self.commit_s * 1000),
            "fsync": self.fsync,
            "buffered": len(self._buf),
            "entries_since_compaction": self.entries,
            "errors": self.errors,
            **self.stats,
        }


__all__ = ["BindingJournal"]
