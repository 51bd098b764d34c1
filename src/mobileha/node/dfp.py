"""DFP over TCP (P§6.5): the agent server a home agent embeds, and the manager client the
SLB node runs. Both only move bytes and timers; the logic is in :mod:`mobileha.core.dfp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any, cast

from mobileha.core import dfp as core
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer

_log = get_logger("mobileha.dfp")


class DfpAgentServer:
    """The DFP agent of one real HA: a TCP server that sends Preference Information.

    ``load()`` returns ``(bindings, max_bindings, cpu_free, mem_free)`` (fractions 0..1 for
    cpu/mem). The connections are the core's (:class:`mobileha.core.dfp.DfpAgentService`:
    admission by ``allow`` and ``max_connections``, ``idle_timeout``, ``max_message``,
    per-manager report schedules); this adapter accepts, moves bytes, runs one timer and
    samples the load every ``sample_s`` (and at once when the home agent calls
    :meth:`poke`) for early reports. A manager that does not read what we send is closed
    once ``MAX_WRITE_BUFFER`` bytes wait for it.
    """

    MAX_WRITE_BUFFER = 65536

    def __init__(
        self,
        host: str,
        port: int,
        real_address: str,
        load: Callable[[], core.Load],
        *,
        interval: float = core.DEFAULT_INTERVAL_S,
        max_weight: int = core.HA_DFP_MAX_WEIGHT,
        key: bytes | None = None,
        key_id: int = 0,
        jump: int = 4,
        sample_s: float = 0.5,
        allow: tuple[str, ...] | list[str] = (),
        max_connections: int = 32,
        idle_timeout: float = 10.0,
        max_message: int = 4096,
    ) -> None:
        self.host = host
        self.port = port
        self.load = load
        self.sample_s = sample_s
        self.agent = core.DfpAgent(
            real_address,
            interval=interval,
            max_weight=max_weight,
            key=key,
            key_id=key_id,
            jump=jump,
        )
        self.service = core.DfpAgentService(
            self.agent,
            allow=allow,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            max_message=max_message,
        )
        self._server: asyncio.Server | None = None
        self._transports: dict[int, asyncio.Transport] = {}
        self._ids = itertools.count(1)
        self._timer: DeadlineTimer | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bad = RateLimitedLogger(_log)
        self.counters = {"connections": 0, "sent": 0, "received": 0}

    @property
    def bound_port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(loop, self._fire)
        self._server = await loop.create_server(
            lambda: _ManagerConn(self), self.host, self.port, backlog=256
        )
        self._sampler = loop.call_later(self.sample_s, self._sample)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self._server is not None:
            self._server.close()
        for t in list(self._transports.values()):
            t.close()
        self._transports.clear()
        self.service.conns.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _sample_load(self) -> core.Load | None:
        try:
            return self.load()
        except Exception:  # the HA's load callable must never kill the agent
            self.bad.warn("load-error", "DFP load callable failed")
            return None

    def _run(self, actions: list[core.AgentAction]) -> None:
        for a in actions:
            t = self._transports.get(a.conn)
            if isinstance(a, core.SendToManager):
                if t is None or t.is_closing():
                    continue
                if t.get_write_buffer_size() > self.MAX_WRITE_BUFFER:
                    self._run(self.service.close(a.conn, "not-reading"))
                    continue
                t.write(a.data)
                self.counters["sent"] += 1
            else:
                if a.reason not in ("refused-full", "refused-peer"):
                    self.bad.warn(a.reason, "DFP manager connection closed", why=a.reason)
                self._transports.pop(a.conn, None)
                if t is not None:
                    t.abort()  # no lingering: its buffers are freed now
        if self._timer is not None:
            self._timer.update(self.service.get_timer())

    def _fire(self) -> None:
        # a failing load callable reports weight 0 until the next good sample
        load = (self._sample_load() or _NO_LOAD) if self.service.conns else _NO_LOAD
        self._run(self.service.handle_timer(self._now(), load))

    def _sample(self) -> None:
        assert self._loop is not None
        self._sampler = self._loop.call_later(self.sample_s, self._sample)
        self.poke()

    def poke(self) -> None:
        """Load changed (e.g. many bindings added): report early if the weight jumped."""
        if self.service.conns and self._loop is not None:
            load = self._sample_load()
            if load is not None:
                self._run(self.service.sample(load, self._now()))

    # --- the connections (called by _ManagerConn)

    def _accepted(self, transport: asyncio.Transport) -> int:
        conn = next(self._ids)
        self._transports[conn] = transport
        self.counters["connections"] += 1
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        load = self._sample_load() or _NO_LOAD
        self._run(self.service.handle_event(core.ManagerAccepted(conn, host), self._now(), load))
        return conn

    def _data(self, conn: int, data: bytes) -> None:
        self.counters["received"] += 1
        self._run(self.service.handle_event(core.ManagerData(conn, data), self._now(), _NO_LOAD))

    def _gone(self, conn: int) -> None:
        if self._transports.pop(conn, None) is not None:
            self._run(self.service.handle_event(core.ManagerGone(conn), self._now(), _NO_LOAD))

    def view(self, _q: Mapping[str, str] | None = None) -> dict[str, Any]:
        a = self.agent
        last = None
        if a.last_at is not None and self._loop is not None:
            last = round(max(0.0, self._now() - a.last_at), 3)
        return {
            "listen": f"{self.host}:{self.bound_port}",
            "address": a.address,
            "weight": a.weight,
            "interval_s": a.interval,
            "max_weight": a.max_weight,
            "managers": len(self.service.conns),
            "reports": a.reports,
            "last_report_s": last,  # seconds since the last Preference Information sent
            "early_reports": a.early_reports,
            "secured": a.key is not None,
            "allow": sorted(self.service.allow),
            "max_connections": self.service.max_connections,
            "connections": dict(self.service.counters),
        }


_NO_LOAD: core.Load = (0, 0, 0.0, 0.0)  # events that send no report need no load sample


class _ManagerConn(asyncio.Protocol):
    """One manager connection: hands bytes to the agent server, nothing else."""

    def __init__(self, srv: DfpAgentServer) -> None:
        self.srv = srv
        self.conn = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.conn = self.srv._accepted(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        self.srv._data(self.conn, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.srv._gone(self.conn)


class DfpManagerClient:
    """Runs a :class:`mobileha.core.dfp.DfpManager`: TCP connections to every agent.

    ``apply(real, weight)`` is called for every weight update (``None``: revert to the
    static weight).
    """

    def __init__(self, manager: core.DfpManager, apply: Callable[[str, int | None], None]) -> None:
        self.manager = manager
        self.apply = apply
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: DeadlineTimer | None = None
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timer = DeadlineTimer(self._loop, self._fire)
        self._running = True
        self._fire()

    async def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
        for w in self._writers.values():
            w.close()
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        self._writers.clear()
        self._tasks.clear()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _fire(self) -> None:
        if self._running:
            self._run(self.manager.handle_timer(self._now()))

    def _run(self, actions: list[core.ManagerAction]) -> None:
        for a in actions:
            if isinstance(a, core.SetWeight):
                self.apply(a.real, a.weight)
            elif isinstance(a, core.Connect):
                assert self._loop is not None
                old = self._tasks.get(a.agent)
                if old is not None and not old.done():
                    old.cancel()
                self._tasks[a.agent] = self._loop.create_task(self._connect(a.agent))
            elif isinstance(a, core.Close):
                w = self._writers.pop(a.agent, None)
                if w is not None:
                    w.close()
                t = self._tasks.get(a.agent)
                if t is not None and t is not asyncio.current_task():
                    t.cancel()
            elif isinstance(a, core.SendToAgent):
                w = self._writers.get(a.agent)
                if w is not None:
                    w.write(a.data)
            elif isinstance(a, core.AgentLost):
                _log.warning(
                    "DFP agent lost: its reals are back at their static weights",
                    agent=a.agent,
                    reason=a.reason,
                    reals=",".join(a.reals),
                )
            elif isinstance(a, core.AgentBack):
                _log.info(
                    "DFP agent reports",
                    agent=a.agent,
                    weights=",".join(f"{r}={w}" for r, w in a.weights),
                )
        if self._timer is not None and self._running:
            self._timer.update(self.manager.get_timer())

    async def _connect(self, agent: str) -> None:
        host, _, port = agent.rpartition(":")
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except (OSError, ValueError):
            self._run(
                self.manager.handle_event(core.AgentClosed(agent, "connect-failed"), self._now())
            )
            return
        rec = self.manager.agents.get(agent)
        if rec is None or rec.state is not core.AgentState.CONNECTING:
            writer.close()  # timed out meanwhile
            return
        self._writers[agent] = writer
        self._run(self.manager.handle_event(core.AgentConnected(agent), self._now()))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._run(self.manager.handle_event(core.AgentData(agent, data), self._now()))
                if self._writers.get(agent) is not writer:
                    return  # the manager closed it (bad stream)
        except (ConnectionError, OSError):
            pass
        if self._writers.get(agent) is writer:
            del self._writers[agent]
            writer.close()
            self._run(self.manager.handle_event(core.AgentClosed(agent), self._now()))


__all__ = ["DfpAgentServer", "DfpManagerClient"]
