"""A UDP socket read and written in batches, for the home agent's registration sockets.

asyncio's datagram transport calls the protocol once per datagram and sends each reply with
its own ``sendto(2)``. :class:`BatchedUdp` instead registers the socket with
``loop.add_reader`` and, each time it is readable, reads up to ``batch`` datagrams at once
(``recvmmsg(2)`` through the optional C module ``mobileha._slbio``), hands each one to
``deliver``, and sends every datagram queued meanwhile with one ``sendmmsg(2)``. Datagrams
queued outside a read (timers, events) leave at once. A send that would block stays
queued (in order) until the socket is writable again; past ``max_queue`` datagrams the
oldest are dropped and counted, as a full socket buffer would drop them.

The pure-Python path (``recvfrom`` / ``sendto`` loops, ``c_io=False``) is the reference:
tests/unit/node/test_udp_batch.py checks that both deliver and send the same datagrams.
It exposes the part of ``asyncio.DatagramTransport`` the home agent node uses
(``sendto``, ``close``, ``get_extra_info("sockname")``).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

try:
    from mobileha import _slbio
except ImportError:  # pragma: no cover - the C module is optional
    _slbio = None  # type: ignore[assignment]

Addr = tuple[str, int]

C_IO_AVAILABLE = _slbio is not None and hasattr(_slbio, "sendto_all")


class BatchedUdp:
    """One bound, non-blocking UDP socket served in batches (module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        deliver: Callable[[bytes, Addr], None],
        *,
        batch: int = 64,
        bufsize: int = 65535,  # any UDP datagram, as asyncio reads it
        c_io: bool | None = None,
        max_queue: int = 100_000,
        on_error: Callable[[OSError], None] | None = None,
        batch_begin: Callable[[], None] | None = None,
        batch_end: Callable[[], None] | None = None,
        first: Callable[[bytes], bool] | None = None,
    ) -> None:
        """``on_error``: called with each error the socket reports (an ICMP error of an
        earlier send, surfacing on a read; a send the kernel refuses), as asyncio's
        ``error_received``. ``batch_begin`` / ``batch_end``: called around the delivery of
        each batch; what ``batch_end`` sends leaves with the batch's datagrams. ``first``:
        the datagrams of a batch for which it is true are delivered before the others (in
        their order; the others keep theirs), and what their delivery queued is sent at
        once, before the others are delivered (a home agent of a redundant pair reads its
        peer's BU Acks first: the replies they release leave before the batch's requests
        are processed, not after them)."""
        self._loop = loop
        self._on_error = on_error
        self._batch_begin = batch_begin
        self._batch_end = batch_end
        self._first = first
        self._sock = sock
        self._fd = sock.fileno()
        self._deliver = deliver
        self._batch = batch
        self._bufsize = bufsize
        self.c_io = C_IO_AVAILABLE if c_io is None else (c_io and C_IO_AVAILABLE)
        self._max_queue = max_queue
        self._out: list[tuple[bytes, Addr]] = []  # queued during a read
        self._blocked: deque[tuple[bytes, Addr]] = deque()  # waiting for writability
        self._reading = False
        self._writer = False
        self._closed = False
        self.send_errors = 0
        self.dropped = 0
        self.batches = 0
        self.received = 0
        sock.setblocking(False)
        loop.add_reader(self._fd, self._on_readable)

    # -- the transport surface the node uses --

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._sock.getsockname()
        if name == "socket":
            return self._sock
        return default

    def sendto(self, data: bytes, addr: Addr) -> None:
        if self._closed:
            return
        if self._reading:
            self._out.append((data, addr))
        elif self._blocked:
            self._queue([(data, addr)])
        else:
            self._send([(data, addr)])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        if self._writer:
            self._loop.remove_writer(self._fd)
        self._sock.close()

    def is_closing(self) -> bool:
        return self._closed

    # -- reading --

    def _on_readable(self) -> None:
        self._reading = True
        if self._batch_begin is not None:
            self._batch_begin()
        try:
            if self.c_io:
                self._read_c()
            else:
                self._read_py()
        finally:
            try:
                if self._batch_end is not None:
                    self._batch_end()
            finally:
                self._reading = False
        self._send_queued()

    def _read_c(self) -> None:
        assert _slbio is not None
        deliver = self._deliver
        try:
            items = _slbio.recv_requests(self._fd, self._batch, self._bufsize)
        except OSError as e:
            self._error(e)  # e.g. ECONNREFUSED from an earlier send: the next read goes on
            return
        self.batches += 1
        self.received += len(items)
        first = self._first
        if first is not None and len(items) > 1:
            rest = []
            for item in items:
                if first(item[0]):
                    deliver(item[0], item[1])
                else:
                    rest.append(item)
            if rest and len(rest) < len(items):
                self._send_queued()
            items = rest
        for data, addr, _nai, _ident in items:
            deliver(data, addr)

    def _send_queued(self) -> None:
        """Send what the batch has queued so far (the rest leaves at its end)."""
        out = self._out
        if out and not self._closed:
            self._out = []
            if self._blocked:
                self._queue(out)
            else:
                self._send(out)

    def _read_py(self) -> None:
        recv = self._sock.recvfrom
        deliver = self._deliver
        bufsize = self._bufsize
        first = self._first
        items: list[tuple[bytes, Addr]] = []
        n = 0
        firsts = 0
        for _ in range(self._batch):
            try:
                data, addr = recv(bufsize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._error(e)
                break
            n += 1
            if first is not None and first(data):
                deliver(data, addr)
                firsts += 1
            else:
                items.append((data, addr))
        self.batches += 1
        self.received += n
        if firsts and items:
            self._send_queued()
        for data, addr in items:
            deliver(data, addr)

    def _error(self, exc: OSError) -> None:
        if self._on_error is not None:
            self._on_error(exc)

    # -- writing --

    def _send(self, items: list[tuple[bytes, Addr]]) -> None:
        """Send ``items`` in order; what would block is queued. A datagram the kernel
        refuses (no route, ...) is counted and skipped."""
        sent = 0
        total = len(items)
        while sent < total:
            try:
                if self.c_io:
                    assert _slbio is not None
                    n = _slbio.sendto_all(self._fd, items, sent)
                else:
                    n = self._sendto_py(items, sent)
            except OSError as e:
                self.send_errors += 1
                self._error(e)
                sent += 1
                continue
            if n == 0:
                break  # the socket buffer is full
            sent += n
        if sent < total:
            self._queue(items[sent:])

    def _sendto_py(self, items: list[tuple[bytes, Addr]], start: int) -> int:
        sendto = self._sock.sendto
        n = 0
        for data, addr in items[start:] if start else items:
            try:
                sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return n
            except OSError:
                if n == 0:
                    raise
                return n
            n += 1
        return n

    def _queue(self, items: list[tuple[bytes, Addr]]) -> None:
        blocked = self._blocked
        blocked.extend(items)
        while len(blocked) > self._max_queue:
            blocked.popleft()
            self.dropped += 1
        if not self._writer and not self._closed:
            self._writer = True
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        blocked = self._blocked
        items = list(blocked)
        blocked.clear()
        self._loop.remove_writer(self._fd)
        self._writer = False
        if items:
            self._send(items)


__all__ = ["C_IO_AVAILABLE", "BatchedUdp"]
