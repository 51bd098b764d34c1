"""What every role's asyncio adapter provides, and the one-timer helper they share.

A node adapter owns sockets and runs the actions of its sans-IO core. The runner
(`mobileha run`) starts it, serves its read-only state on the management API
(``mobileha.mgmt`` renders the views and metric families from the node's attributes and
read methods; a node never imports ``mgmt``), and stops it on SIGTERM.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Protocol


class Node(Protocol):
    """One running role (home-agent, foreign-agent, slb, mobile-node)."""

    role: str
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Leave cleanly (e.g. HSRP Resign, flush pending sync) and close sockets."""
        ...


class StartupError(Exception):
    """A node could not start for a reason the operator can fix: one line naming the config
    key, the address and what to do (``mobileha run`` prints it without a traceback)."""

    def __init__(self, key: str, address: str, reason: str) -> None:
        super().__init__(f"{key}: {address}: {reason}")
        self.key = key
        self.address = address
        self.reason = reason


_BIND_HINTS = {
    errno.EADDRINUSE: "address already in use (another process has it: ss -lunp / ss -ltnp)",
    errno.EACCES: "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE "
    "(the systemd unit grants it: AmbientCapabilities=CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "address not available: it is on no interface of this host",
}


def bind_error(e: OSError, address: tuple[str, int], port_key: str, addr_key: str) -> StartupError:
    """The :class:`StartupError` of a failed ``bind`` of ``address``: an address that is on
    no interface is the address key's fault, anything else the port key's."""
    where = f"{address[0]}:{address[1]}"
    reason = _BIND_HINTS.get(e.errno or 0, e.strerror or str(e))
    key = addr_key if e.errno == errno.EADDRNOTAVAIL else port_key
    return StartupError(key, where, f"cannot bind: {reason}")


def bind(sock: socket.socket, address: tuple[str, int], port_key: str, addr_key: str) -> None:
    """``sock.bind(address)``; on failure the socket is closed and a :class:`StartupError`
    names the key (``port_key`` / ``addr_key``) and the address."""
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise bind_error(e, address, port_key, addr_key) from None


class DeadlineTimer:
    """A single asyncio timer that follows a sans-IO core's ``get_timer()``.

    Call :meth:`update` after every call into the core; ``fire`` is called at the deadline
    (``loop.time()`` clock, which is what the adapters pass to the core as ``now``).

    ``lazy``: a deadline later than the armed one (or none) leaves the armed timer in place;
    it fires early, the core's ``handle_timer`` finds nothing due and the adapter's next
    :meth:`update` arms the real deadline. For a core whose deadline moves on almost every
    datagram (a home agent with sync: batch flushes, reply holds), this saves a cancel and a
    new loop timer per datagram.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fire: Callable[[], None], *, lazy: bool = False
    ) -> None:
        self._loop = loop
        self._fire = fire
        self._lazy = lazy
        self._handle: asyncio.TimerHandle | None = None
        self._when: float | None = None

    def update(self, deadline: float | None) -> None:
        when = self._when
        if deadline == when:
            return
        if self._lazy and when is not None and (deadline is None or deadline > when):
            return
        self._set(deadline)

    def _set(self, deadline: float | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = deadline
        if deadline is not None:
            self._handle = self._loop.call_at(deadline, self._run)

    def _run(self) -> None:
        self._handle = None
        self._when = None
        self._fire()

    def cancel(self) -> None:
        self._set(None)
