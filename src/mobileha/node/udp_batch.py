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
        poll_every: int | None = None,
    ) -> None:
        """``on_error``: called with each error the socket reports (an ICMP error of an
        earlier send, surfacing on a read; a send the kernel refuses), as asyncio's
        ``error_received``. ``batch_begin`` / ``batch_end``: called around the delivery of
        each batch; what ``batch_end`` sends leaves with the batch's datagrams. ``first``:
        the datagrams of a batch for which it is true are delivered before the others (in
        their order; the others keep theirs), and what their delivery queued is sent at
        once, before the others are delivered (a home agent of a redundant pair reads its
        peer's BU Acks first: the replies they release leave before the batch's requests
        are processed, not after them). ``poll_every``: after every ``poll_every``
        datagrams delivered, the socket is read again and what arrived joins the batch
        (the datagrams chosen first delivered, and what they queued sent, at once; at most
        ``batch`` more per batch): a pair's Active then sees its peer's BU Acks while it
        works through a long batch instead of after it."""
        self._loop = loop
        self._on_error = on_error
        self._batch_begin = batch_begin
        self._batch_end = batch_end
        self._first = first
        self._poll_every = poll_every
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
            items = self._read()
            if items is not None:
                self.batches += 1
                self._deliver_batch(items)
        finally:
            try:
                if self._batch_end is not None:
                    self._batch_end()
            finally:
                self._reading = False
        self._send_queued()

    def _read(self) -> list[Any] | None:
        """Up to ``batch`` datagrams waiting now, as tuples starting (data, addr); None
        when the socket reports an error first."""
        if self.c_io:
            assert _slbio is not None
            try:
                items: list[Any] = _slbio.recv_requests(self._fd, self._batch, self._bufsize)
            except OSError as e:
                self._error(e)  # e.g. ECONNREFUSED from an earlier send: the next read goes on
                return None
        else:
            recv = self._sock.recvfrom
            bufsize = self._bufsize
            items = []
            for _ in range(self._batch):
                try:
                    items.append(recv(bufsize))
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    self._error(e)
                    break
        self.received += len(items)
        return items

    def _deliver_batch(self, items: list[Any]) -> None:
        deliver = self._deliver
        first = self._first
        if first is not None and len(items) > 1:
            items = self._deliver_first(items, False)
        poll = self._poll_every
        if poll is None:
            for item in items:
                deliver(item[0], item[1])
            return
        # every ``poll`` datagrams, what arrived meanwhile joins the batch, the datagrams
        # chosen first (a peer's BU Acks) at once; at most one more batch's worth
        budget = self._batch
        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            deliver(item[0], item[1])
            if not i % poll and i < len(items) and budget > 0:
                more = self._read()
                if more:
                    budget -= len(more)
                    items += more if first is None else self._deliver_first(more, True)

    def _deliver_first(self, items: list[Any], polled: bool) -> list[Any]:
        """Deliver the datagrams of ``items`` that ``first`` chooses and send what they
        queued, unless they are the whole batch (its end sends it); the others."""
        first = self._first
        assert first is not None
        deliver = self._deliver
        rest = []
        for item in items:
            if first(item[0]):
                deliver(item[0], item[1])
            else:
                rest.append(item)
        if len(rest) < len(items) and (rest or polled):
            self._send_queued()
        return rest

    def _send_queued(self) -> None:
        """Send what the batch has queued so far (the rest leaves at its end)."""
        out = self._out
        if out and not self._closed:
            self._out = []
            if self._blocked:
                self._queue(out)
            else:
                self._send(out)

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
