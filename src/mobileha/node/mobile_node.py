"""Mobile node adapters: :class:`MobileNodeFleet` (many MN cores on one UDP socket, one
timer) and :class:`MobileNodeNode`, the ``role = "mobile-node"`` node built from config.

The fleet routes each reply to its MN by NAI (the HA and our FA copy it back), else by the
low 32 bits of the Identification of the request in flight. MN timers (retransmissions,
renewals, expiry) live on one heap; one :class:`DeadlineTimer` follows its head. 1,000 MNs
registering at once is the load-test / demo case: the socket buffers are raised and
``register_all`` sends in bursts (``burst``) spaced by one loop turn.

``MobileNodeNode``: on start every MN registers (and keeps its registration alive; after a
final denial it tries again after ``retransmit_max_ms``); on stop
every registered MN deregisters (our care-of address) and the node waits up to
``stop_wait_s`` for the replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import socket
import time
from collections.abc import Sequence
from typing import Any

from mobileha.core.actions import Addr, Send
from mobileha.core.mobile_node import HaFallback, MnState, MobileNode
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer, bind
from mobileha.node.trace import RegistrationTrace
from mobileha.wire import DecodeError
from mobileha.wire.mip import RegistrationReply

_log = get_logger("mobileha.mn")
BUF = 4 << 20
_U32 = 0xFFFFFFFF


def raise_buffers(sock: socket.socket) -> None:
    """Raise SO_RCVBUF/SO_SNDBUF (the FORCE variants when root; DESIGN §8)."""
    for opt_force, opt in (
        (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
    ):
        try:
            if opt_force is None:
                raise OSError
            sock.setsockopt(socket.SOL_SOCKET, opt_force, BUF)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, BUF)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, fleet: MobileNodeFleet) -> None:
        self.fleet = fleet

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.fleet._datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        self.fleet.socket_errors += 1


class MobileNodeFleet:
    """Many :class:`MobileNode` cores sharing one socket and one timer."""

    def __init__(
        self,
        mns: list[MobileNode],
        *,
        local: Addr = ("127.0.0.1", 0),
        burst: int = 200,
    ) -> None:
        self.mns = mns
        self.local = local
        self.burst = burst
        self.by_nai: dict[str, int] = {m.nai: i for i, m in enumerate(mns) if m.nai}
        self._by_low: dict[int, int] = {}
        self._low: list[int | None] = [None] * len(mns)
        self._due: list[float | None] = [None] * len(mns)
        self._heap: list[tuple[float, int]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._changed = asyncio.Event()
        self.socket_errors = 0
        self.unrouted = 0
        self.bad_input = 0
        self.codes: dict[int, int] = {}
        self.ha_fallbacks = 0
        self._bad = RateLimitedLogger(_log, 10.0)
        self.trace = RegistrationTrace(_log, "mobile-node")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        wall = time.time() - loop.time()
        for m in self.mns:
            m.unix_offset = wall
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raise_buffers(sock)
        bind(sock, self.local, "mobile_node.local_address", "mobile_node.local_address")
        sock.setblocking(False)
        self.local = sock.getsockname()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        self._timer = DeadlineTimer(loop, self._on_timer)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    # ------------------------------------------------------------------ operations

    async def register_all(self) -> None:
        for i, m in enumerate(self.mns):
            self._apply(i, m.register(self.now()))
            if self.burst and (i + 1) % self.burst == 0:
                await asyncio.sleep(0)
        self._arm()

    async def deregister_all(self, *, all_bindings: bool = False) -> None:
        for i, m in enumerate(self.mns):
            if m.registered or m.state is MnState.REGISTERING:
                self._apply(i, m.deregister(self.now(), all_bindings=all_bindings))
            if self.burst and (i + 1) % self.burst == 0:
                await asyncio.sleep(0)
        self._arm()

    def count(self, state: MnState) -> int:
        return sum(1 for m in self.mns if m.state is state)

    @property
    def registered(self) -> int:
        return sum(1 for m in self.mns if m.registered)

    async def wait_until(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate()`` is true (checked after every reply/timer)."""
        deadline = self.now() + timeout
        while not predicate():
            left = deadline - self.now()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
        return True

    # ------------------------------------------------------------------ events

    def _datagram(self, data: bytes, addr: Addr) -> None:
        if self.trace.debug:
            self.trace.trace("reply received", data, addr)
        try:
            idx = self._route(data)
            if idx is None:
                self.unrouted += 1
                return
            self._apply(idx, self.mns[idx].receive_datagram(data, addr, self.local, self.now()))
        except Exception as e:
            self.bad_input += 1
            self._bad.warn("internal-error", "reply handler failed", error=repr(e))
            return
        self._arm()
        self._changed.set()

    def _route(self, data: bytes) -> int | None:
        try:
            rep = RegistrationReply.decode(data)
        except DecodeError:
            self.bad_input += 1
            return None
        nai = rep.nai
        if nai is not None:
            idx = self.by_nai.get(nai)
            if idx is not None:
                return idx
        return self._by_low.get(rep.ident & _U32)

    def _on_timer(self) -> None:
        now = self.now()
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, i = heapq.heappop(heap)
            if self._due[i] != d:
                continue
            self._due[i] = None
            self._apply(i, self.mns[i].handle_timer(now))
        self._arm()
        self._changed.set()

    def _apply(self, i: int, actions: Sequence[Send | HaFallback]) -> None:
        m = self.mns[i]
        tr = self.transport
        for a in actions:
            if isinstance(a, Send):
                if tr is not None:
                    tr.sendto(a.payload, a.dst)
                if self.trace.debug:
                    self.trace.trace("request sent", a.payload, a.dst)
            elif isinstance(a, HaFallback):
                self.ha_fallbacks += 1
                self._bad.warn(
                    "ha-fallback",
                    "home agent not answering: registering through the configured HA "
                    "again (RFC 4433)",
                    nai=a.nai,
                    home_agent=a.old,
                    fallback=a.new,
                    unanswered=a.unanswered,
                )
        ident = m.outstanding_ident
        low = None if ident is None else ident & _U32
        old = self._low[i]
        if old != low:
            if old is not None and self._by_low.get(old) == i:
                del self._by_low[old]
            if low is not None:
                self._by_low[low] = i
            self._low[i] = low
        d = m.get_timer()
        if d is not None and d != self._due[i]:
            self._due[i] = d
            heapq.heappush(self._heap, (d, i))
        elif d is None:
            self._due[i] = None

    def _arm(self) -> None:
        heap = self._heap
        while heap and self._due[heap[0][1]] != heap[0][0]:
            heapq.heappop(heap)
        if self._timer is not None:
            self._timer.update(heap[0][0] if heap else None)

    # ------------------------------------------------------------------ views

    def stats(self) -> dict[str, int]:
        c: dict[str, int] = {f"state_{s.value}": 0 for s in MnState}
        totals: dict[str, int] = {}
        codes: dict[int, int] = {}
        for m in self.mns:
            c[f"state_{m.state.value}"] += 1
            st = m.stats
            for k in (
                "requests",
                "retransmissions",
                "accepted",
                "denied",
                "renewals",
                "deregistrations",
                "resync_timestamp",
                "resync_nonce",
                "challenge_retries",
                "repairs",
                "retries_after_denial",
                "ha_fallbacks",
                "expired",
                "bad_reply",
                "unmatched_reply",
                "bad_auth_reply",
            ):
                totals[k] = totals.get(k, 0) + getattr(st, k)
            for code, n in st.codes.items():
                codes[code] = codes.get(code, 0) + n
        c.update(totals)
        c["mobile_nodes"] = len(self.mns)
        c["registered"] = c["state_registered"] + c["state_renewing"]
        c["unrouted"] = self.unrouted
        c["socket_errors"] = self.socket_errors
        self.codes = codes
        return c


class MobileNodeNode:
    role = "mobile-node"

    def __init__(self, fleet: MobileNodeFleet, *, name: str = "mobile-node") -> None:
        self.fleet = fleet
        self.name = name
        self.stop_wait_s = 3.0
        self._started = time.monotonic()

    async def start(self) -> None:
        self._started = time.monotonic()
        await self.fleet.start()
        _log.info(
            "mobile nodes starting",
            count=len(self.fleet.mns),
            local=f"{self.fleet.local[0]}:{self.fleet.local[1]}",
        )
        await self.fleet.register_all()

    async def stop(self) -> None:
        if self.fleet.transport is not None:
            await self.fleet.deregister_all()
            await self.fleet.wait_until(
                lambda: self.fleet.count(MnState.DEREGISTERING) == 0, self.stop_wait_s
            )
        await self.fleet.close()

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the ``mobile_nodes`` / ``stats`` views and the metric families)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def now(self) -> float:
        """The clock of the mobile nodes' timers (0.0 before the fleet started)."""
        return self.fleet.now() if self.fleet._loop is not None else 0.0


__all__ = ["MobileNodeFleet", "MobileNodeNode"]
