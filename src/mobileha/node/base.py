"""What every role's asyncio adapter provides, and the one-timer helper they share.

A node adapter owns sockets and runs the actions of its sans-IO core. The runner
(`mobileha run`) starts it, serves its read-only state on the management API
(``mobileha.mgmt`` renders the views and metric families from the node's attributes and
read methods; a node never imports ``mgmt``), and stops it on SIGTERM.
"""

from __future__ import annotations

import asyncio
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
