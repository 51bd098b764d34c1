"""DFP over TCP (P§6.5): the agent server a home agent embeds, and the manager client the
SLB node runs. Both only move bytes and timers; the logic is in :mod:`mobileha.core.dfp`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from mobileha.core import dfp as core
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import DeadlineTimer
from mobileha.wire import DecodeError
from mobileha.wire import dfp as wire

_log = get_logger("mobileha.dfp")


class DfpAgentServer:
    """The DFP agent of one real HA: a TCP server that sends Preference Information.

    ``load()`` returns ``(bindings, max_bindings, cpu_free, mem_free)`` (fractions 0..1 for
    cpu/mem). The weight is reported to every connected manager when one connects, every
    ``interval`` seconds, and early when the weight jumps (checked every ``sample_s``, and
    at once when the home agent calls :meth:`poke`).
    """

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
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bad = RateLimitedLogger(_log)
        self.counters = {"connections": 0, "sent": 0, "received": 0}

    @property
    def bound_port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._on_conn, self.host, self.port)
        self._schedule(self.sample_s)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        # Closed writers end their handlers (read() sees EOF). Cancelling a handler of
        # asyncio.start_server instead makes asyncio log "Exception in callback ...
        # CancelledError", so only the ones still running after a second are cancelled.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _broadcast(self, data: bytes | None) -> None:
        if data is None:
            return
        for w in list(self._writers):
            if w.is_closing():
                self._writers.discard(w)
                continue
            w.write(data)
            self.counters["sent"] += 1

    def _schedule(self, delay: float) -> None:
        assert self._loop is not None
        self._timer = self._loop.call_later(max(delay, 0.0), self._tick)

    def _tick(self) -> None:
        now = self._now()
        if self._writers:
            try:
                load = self.load()
            except Exception:  # the HA's load callable must never kill the agent
                self.bad.warn("load-error", "DFP load callable failed")
            else:
                self._broadcast(self.agent.handle_timer(now, load) or self.agent.sample(load, now))
        nd = self.agent.get_timer()
        delay = self.sample_s if nd is None else min(self.sample_s, nd - now)
        self._schedule(delay)

    def poke(self) -> None:
        """Load changed (e.g. many bindings added): report early if the weight jumped."""
        if self._writers and self._loop is not None:
            try:
                load = self.load()
            except Exception:
                self.bad.warn("load-error", "DFP load callable failed")
                return
            self._broadcast(self.agent.sample(load, self._now()))

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        self.counters["connections"] += 1
        framer = wire.Framer()
        try:
            try:
                load = self.load()
            except Exception:  # the HA's load callable must never kill the agent
                self.bad.warn("load-error", "DFP load callable failed")
                load = (0, 0, 0.0, 0.0)  # weight 0 until the next good sample
            writer.write(self.agent.report(load, self._now()))
            self.counters["sent"] += 1
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for raw in framer.feed(data):
                    self.counters["received"] += 1
                    try:
                        kind = self.agent.receive_message(raw)
                    except DecodeError as e:
                        self.bad.warn(e.reason, "bad DFP message from manager")
                        continue
                    if kind == "bindid-request":
                        writer.write(self.agent.bindid_report())
                    elif kind == "parameters":
                        # the interval changed: reschedule the next report
                        if self._timer is not None:
                            self._timer.cancel()
                        self._tick()
        except DecodeError as e:  # unknown version: the stream cannot be resynchronised
            self.bad.warn(e.reason, "DFP stream error, closing")
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

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
            "managers": len(self._writers),
            "reports": a.reports,
            "last_report_s": last,  # seconds since the last Preference Information sent
            "early_reports": a.early_reports,
            "secured": a.key is not None,
        }


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
