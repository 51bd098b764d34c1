"""DFP agent (in each real HA) and manager (in the SLB), sans-IO (P§6.4, P§6.5).

Agent: computes the Cisco HA weight (CISCO-SLB-DFP-MIB)::

    weight = (max_bindings - bindings) / max_bindings * (cpu + mem) / 32 * dfp_max_weight

where ``cpu`` and ``mem`` are free-capacity scores of 0..16 each [I]; our API takes the free
fractions 0.0..1.0 and scales them by 16. It reports Preference Information every
``interval`` seconds (also the keepalive) and early when the weight jumps.

Manager: one record per agent: connect, reconnect with backoff, a report timeout, and the
weight updates to apply to the server farm (``None`` = agent lost, revert to the static
weight). The adapter owns the TCP connections and feeds what happens on them in as typed
events (:class:`AgentConnected`, :class:`AgentData`, :class:`AgentClosed`) to
:meth:`DfpManager.handle_event`; :meth:`DfpManager.handle_timer` / ``get_timer`` run its one
timer, as :meth:`DfpAgent.handle_timer` / ``get_timer`` do the agent's reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from mobileha.wire import DecodeError
from mobileha.wire import dfp as wire

HA_DFP_MAX_WEIGHT = 24
DEFAULT_INTERVAL_S = 5.0  # reference agent default
MAX_INTERVAL_S = 60.0  # the reference agent caps the keepalive interval here
MIN_INTERVAL_S = 0.05  # ours: IOS's "hello delay" is >= 3 s; tests shorten it

Load = tuple[int, int, float, float]  # bindings, max_bindings, cpu_free, mem_free


def ha_weight(
    bindings: int,
    max_bindings: int,
    cpu_free: float,
    mem_free: float,
    max_weight: int = HA_DFP_MAX_WEIGHT,
) -> int:
    """The Cisco HA DFP weight (P§6.4), rounded down; 0 when full (or no capacity)."""
    if max_bindings <= 0:
        return 0
    free = min(max(max_bindings - bindings, 0), max_bindings) / max_bindings
    cpu = 16.0 * min(max(cpu_free, 0.0), 1.0)
    mem = 16.0 * min(max(mem_free, 0.0), 1.0)
    w = free * ((cpu + mem) / 32.0) * max_weight
    return max(0, min(max_weight, math.floor(w + 1e-9)))


@dataclass(slots=True)
class DfpAgent:
    """The agent side: what to report and when.

    ``address`` is the host the weight is for (the real's address as the SLB knows it,
    normally the HSRP virtual address of the HA pair). ``jump`` is the weight change that
    triggers an early report.
    """

    address: str
    interval: float = DEFAULT_INTERVAL_S
    max_weight: int = HA_DFP_MAX_WEIGHT
    key: bytes | None = None
    key_id: int = 0
    jump: int = 4
    port: int = 0  # Load TLV port: 0 = any
    protocol: int = 0  # Load TLV protocol: 0 = any
    weight: int | None = None  # last reported
    next_report: float | None = None
    last_at: float | None = None
    reports: int = 0
    early_reports: int = 0

    def compute(self, load: Load) -> int:
        b, mb, cpu, mem = load
        return ha_weight(b, mb, cpu, mem, self.max_weight)

    def message(self, weight: int) -> bytes:
        msg = wire.preference_information([(self.address, weight)], self.port, self.protocol)
        return wire.sign(msg, self.key, self.key_id) if self.key else wire.encode(msg)

    def report(self, load: Load, now: float) -> bytes:
        """A report now (e.g. when a manager connects); restarts the interval."""
        w = self.compute(load)
        self.weight = w
        self.reports += 1
        self.last_at = now
        self.next_report = now + self.interval
        return self.message(w)

    def handle_timer(self, now: float, load: Load) -> bytes | None:
        """Periodic report when the interval is due (``load``: sampled now)."""
        if self.next_report is None or now >= self.next_report:
            return self.report(load, now)
        return None

    def sample(self, load: Load, now: float) -> bytes | None:
        """A load sample between reports: an early report when the weight jumps (P§6.5)."""
        w = self.compute(load)
        last = self.weight
        if last is None or abs(w - last) >= self.jump or (w == 0) != (last == 0):
            self.early_reports += 1
            return self.report(load, now)
        return None

    def get_timer(self) -> float | None:
        """When the next periodic report is due."""
        return self.next_report

    def read_message(self, raw: bytes) -> tuple[str, float | None]:
        """A message from a manager: what it is (``parameters``, ``server-state``,
        ``bindid-request``, ``other``) and, for DFP Parameters, the report interval it asks
        for (capped like the reference agent). Server State is only informational (the
        agent must not change its notion of load). Raises DecodeError on bad input or a bad
        signature."""
        if self.key is not None and not wire.verify(raw, self.key):
            raise DecodeError("bad-auth", "DFP security digest")
        msg = wire.decode(raw)
        if msg.type == wire.DFP_PARAMETERS:
            interval = None
            for t in msg.tlvs:
                if isinstance(t, wire.KeepaliveTlv) and t.interval > 0:
                    interval = min(max(float(t.interval), MIN_INTERVAL_S), MAX_INTERVAL_S)
            return "parameters", interval
        if msg.type == wire.SERVER_STATE:
            return "server-state", None
        if msg.type == wire.BINDID_REQUEST:
            return "bindid-request", None
        return "other", None

    def receive_message(self, raw: bytes) -> str:
        """:meth:`read_message` for an agent with one schedule: DFP Parameters set its
        interval. Returns what the message was."""
        kind, interval = self.read_message(raw)
        if interval is not None:
            self.interval = interval
            if self.last_at is not None:
                self.next_report = self.last_at + self.interval
        return kind

    def bindid_report(self) -> bytes:
        """BindID Report: we use no BindIDs, so the table is empty (P§6.5)."""
        msg = wire.DfpMessage(wire.BINDID_REPORT, (wire.BindIdTableTlv(self.address),))
        return wire.sign(msg, self.key, self.key_id) if self.key else wire.encode(msg)


# ---------------------------------------------------------------- the agent's connections

_NEVER = float("inf")


@dataclass(frozen=True, slots=True)
class ManagerAccepted:
    """Event: a manager connected from ``peer`` (``conn`` names the connection)."""

    conn: int
    peer: str


@dataclass(frozen=True, slots=True)
class ManagerData:
    """Event: bytes arrived on connection ``conn``."""

    conn: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ManagerGone:
    """Event: connection ``conn`` was closed by the manager or failed."""

    conn: int


AgentEvent = ManagerAccepted | ManagerData | ManagerGone


@dataclass(frozen=True, slots=True)
class SendToManager:
    conn: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseManager:
    """Close connection ``conn`` (``reason`` is counted: refused-peer, refused-full,
    too-long, bad-stream, bad-auth, idle, unauthenticated)."""

    conn: int
    reason: str


AgentAction = SendToManager | CloseManager


@dataclass(slots=True)
class _Manager:
    peer: str
    opened: float
    framer: wire.Framer
    interval: float
    next_report: float
    authenticated: bool = False
    partial_since: float | None = None  # when the unfinished message began to arrive


class DfpAgentService:
    """The connections of a DFP agent to its managers, sans-IO: admission, limits, per
    manager report schedules (P§6.5).

    Admission: a peer outside ``allow`` (when given) is refused, and so is any connection
    beyond ``max_connections``. Limits: a message header announcing more than
    ``max_message`` bytes, or a stream that cannot be resynchronised, closes the
    connection; so does a message unfinished for ``idle_timeout`` seconds and, with a
    password, a connection without a verified message within ``idle_timeout`` (our manager
    sends a signed BindID Request when it connects) or with one that does not verify. Each
    refusal and close is counted by reason (``counters``). A connection's memory is its
    unfinished message, at most ``max_message`` bytes.

    Reports: each manager gets one at once, then every interval of its own (its DFP
    Parameters set it; another manager's do not), and early reports when the weight jumps
    (:meth:`sample`).
    """

    def __init__(
        self,
        agent: DfpAgent,
        *,
        allow: tuple[str, ...] | list[str] = (),
        max_connections: int = 32,
        idle_timeout: float = 10.0,
        max_message: int = 4096,
    ) -> None:
        self.agent = agent
        self.allow = frozenset(allow)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_message = max_message
        self.conns: dict[int, _Manager] = {}
        self.counters: dict[str, int] = {"accepted": 0, "messages": 0, "closed": 0}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def handle_event(self, event: AgentEvent, now: float, load: Load) -> list[AgentAction]:
        if isinstance(event, ManagerData):
            return self._data(event.conn, event.data, now)
        if isinstance(event, ManagerAccepted):
            return self._accepted(event.conn, event.peer, now, load)
        self.conns.pop(event.conn, None)
        return []

    def close(self, conn: int, reason: str) -> list[AgentAction]:
        """Close ``conn`` for ``reason`` (counted), e.g. a manager that does not read."""
        return self._close(conn, reason)

    def _close(self, conn: int, reason: str) -> list[AgentAction]:
        self.conns.pop(conn, None)
        self._count(reason)
        self.counters["closed"] += 1
        return [CloseManager(conn, reason)]

    def _accepted(self, conn: int, peer: str, now: float, load: Load) -> list[AgentAction]:
        if self.allow and peer not in self.allow:
            self._count("refused-peer")
            return [CloseManager(conn, "refused-peer")]
        if len(self.conns) >= self.max_connections:
            self._count("refused-full")
            return [CloseManager(conn, "refused-full")]
        self.counters["accepted"] += 1
        a = self.agent
        framer = wire.Framer(self.max_message)
        if a.key is not None:
            # with a password nothing is reported before the manager proves it
            self.conns[conn] = _Manager(peer, now, framer, a.interval, _NEVER)
            return []
        raw = a.report(load, now)
        self.conns[conn] = _Manager(peer, now, framer, a.interval, now + a.interval)
        return [SendToManager(conn, raw)]

    def _data(self, conn: int, data: bytes, now: float) -> list[AgentAction]:
        m = self.conns.get(conn)
        if m is None:
            return []
        try:
            frames = m.framer.feed(data)
        except DecodeError as e:
            return self._close(conn, "too-long" if e.reason == "too-long" else "bad-stream")
        m.partial_since = (m.partial_since or now) if m.framer.pending else None
        out: list[AgentAction] = []
        a = self.agent
        for raw in frames:
            self.counters["messages"] += 1
            try:
                kind, interval = a.read_message(raw)
            except DecodeError as e:
                if e.reason == "bad-auth":
                    return out + self._close(conn, "bad-auth")
                self._count("bad-message")
                continue
            first = not m.authenticated and a.key is not None
            m.authenticated = True
            if interval is not None:
                m.interval = interval
                m.next_report = now + interval
            if first:
                m.next_report = now  # its first report, at once (handle_timer)
            if kind == "bindid-request":
                out.append(SendToManager(conn, a.bindid_report()))
        return out

    def sample(self, load: Load, now: float) -> list[AgentAction]:
        """A load sample between reports: every manager gets an early report when the
        weight jumped."""
        if not self.conns:
            return []
        raw = self.agent.sample(load, now)
        if raw is None:
            return []
        out: list[AgentAction] = []
        keyed = self.agent.key is not None
        for conn, m in self.conns.items():
            if keyed and not m.authenticated:
                continue
            m.next_report = now + m.interval
            out.append(SendToManager(conn, raw))
        return out

    def handle_timer(self, now: float, load: Load) -> list[AgentAction]:
        """Reports that are due; connections past their idle or authentication time."""
        out: list[AgentAction] = []
        idle = self.idle_timeout
        keyed = self.agent.key is not None
        for conn, m in list(self.conns.items()):
            if m.partial_since is not None and now - m.partial_since >= idle:
                out += self._close(conn, "idle")
            elif keyed and not m.authenticated and now - m.opened >= idle:
                out += self._close(conn, "unauthenticated")
        due = [c for c, m in self.conns.items() if now >= m.next_report]
        if due:
            a = self.agent
            w = a.compute(load)
            raw = a.message(w)
            a.weight = w
            a.reports += 1
            a.last_at = now
            for conn in due:
                m = self.conns[conn]
                m.next_report = now + m.interval
                out.append(SendToManager(conn, raw))
        return out

    def get_timer(self) -> float | None:
        """The next report or idle/authentication deadline."""
        best: float | None = None
        keyed = self.agent.key is not None
        for m in self.conns.values():
            t = m.next_report
            if m.partial_since is not None:
                t = min(t, m.partial_since + self.idle_timeout)
            elif keyed and not m.authenticated:
                t = min(t, m.opened + self.idle_timeout)
            if best is None or t < best:
                best = t
        return best

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "peer": m.peer,
                "authenticated": m.authenticated,
                "interval_s": m.interval,
                "pending_bytes": m.framer.pending,
            }
            for m in self.conns.values()
        ]


# ------------------------------------------------------------------------------ manager


class AgentState(StrEnum):
    IDLE = "idle"  # waiting for the (re)connect time
    CONNECTING = "connecting"
    CONNECTED = "connected"  # TCP up, waiting for / receiving reports


@dataclass(frozen=True, slots=True)
class Connect:
    agent: str


@dataclass(frozen=True, slots=True)
class Close:
    agent: str
    reason: str


@dataclass(frozen=True, slots=True)
class SendToAgent:
    agent: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SetWeight:
    """Apply to the farm: ``weight`` for ``real``; ``None`` = revert to the static weight."""

    real: str
    weight: int | None


@dataclass(frozen=True, slots=True)
class AgentLost:
    """Notice: the agent that was reporting is lost (``reason``: closed, report-timeout,
    bad-stream, ...); its reals are back at their static weights."""

    agent: str
    reason: str
    reals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentBack:
    """Notice: the first report from ``agent`` since it connected (again)."""

    agent: str
    weights: tuple[tuple[str, int], ...]


ManagerAction = Connect | Close | SendToAgent | SetWeight | AgentLost | AgentBack


@dataclass(frozen=True, slots=True)
class AgentConnected:
    """Event: the TCP connection to ``agent`` is up."""

    agent: str


@dataclass(frozen=True, slots=True)
class AgentData:
    """Event: bytes arrived from ``agent``."""

    agent: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AgentClosed:
    """Event: the connection to ``agent`` failed or was closed by it."""

    agent: str
    reason: str = "closed"


ManagerEvent = AgentConnected | AgentData | AgentClosed


@dataclass(slots=True)
class AgentRecord:
    agent: str  # "host:port"
    reals: list[str]  # the farm reals this agent reports for
    state: AgentState = AgentState.IDLE
    connect_at: float = 0.0
    last_report: float | None = None
    deadline: float | None = None  # report timeout or connect timeout
    backoff: float = 0.0
    weights: dict[str, int] = field(default_factory=dict)
    reports: int = 0
    connects: int = 0
    losses: int = 0
    bad: int = 0
    framer: wire.Framer = field(default_factory=wire.Framer)


class DfpManager:
    """The SLB's DFP manager: one record per configured agent."""

    def __init__(
        self,
        timeout: float = 3 * DEFAULT_INTERVAL_S,
        connect_timeout: float = 5.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        key: bytes | None = None,
        key_id: int = 0,
        keepalive: int | None = None,
        on_unknown_host: Callable[[str], None] | None = None,
        max_message: int = wire.MAX_MESSAGE,
    ) -> None:
        self.timeout = timeout  # longest gap between reports (0 = none)
        self.connect_timeout = connect_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.key = key
        self.key_id = key_id
        self.keepalive = keepalive  # if set, sent as DFP Parameters on connect
        self.max_message = max_message  # a longer message closes the connection
        self.agents: dict[str, AgentRecord] = {}
        self.counters: dict[str, int] = {"reports": 0, "bad": 0, "losses": 0, "connects": 0}

    def add_agent(self, agent: str, reals: list[str], now: float) -> None:
        if agent in self.agents:
            for r in reals:
                if r not in self.agents[agent].reals:
                    self.agents[agent].reals.append(r)
            return
        self.agents[agent] = AgentRecord(agent, list(reals), connect_at=now)

    def remove_agent(self, agent: str) -> list[ManagerAction]:
        rec = self.agents.pop(agent, None)
        if rec is None:
            return []
        out: list[ManagerAction] = []
        if rec.state is not AgentState.IDLE:
            out.append(Close(agent, "removed"))
        out += [SetWeight(r, None) for r in rec.reals]
        return out

    # ----------------------------------------------------------------- events

    def handle_event(self, event: ManagerEvent, now: float) -> list[ManagerAction]:
        """A connection event from the adapter."""
        if isinstance(event, AgentData):
            return self._data(event.agent, event.data, now)
        if isinstance(event, AgentConnected):
            return self._connected(event.agent, now)
        return self._closed(event.agent, now, event.reason)

    def _connected(self, agent: str, now: float) -> list[ManagerAction]:
        rec = self.agents.get(agent)
        if rec is None:
            return [Close(agent, "unknown")]
        rec.state = AgentState.CONNECTED
        rec.connects += 1
        self.counters["connects"] += 1
        rec.framer = wire.Framer(self.max_message)
        rec.deadline = now + self.timeout if self.timeout > 0 else None
        # DFP Parameters when a keepalive is configured; with a password, at least a
        # signed BindID Request, so that the agent knows at once that we hold the password
        # (an agent with a password closes connections that never prove it).
        msg: wire.DfpMessage | None = None
        if self.keepalive is not None:
            msg = wire.dfp_parameters(self.keepalive)
        elif self.key is not None:
            msg = wire.DfpMessage(wire.BINDID_REQUEST)
        if msg is None:
            return []
        raw = wire.sign(msg, self.key, self.key_id) if self.key else wire.encode(msg)
        return [SendToAgent(agent, raw)]

    def _data(self, agent: str, data: bytes, now: float) -> list[ManagerAction]:
        rec = self.agents.get(agent)
        if rec is None or rec.state is not AgentState.CONNECTED:
            return []
        out: list[ManagerAction] = []
        try:
            frames = rec.framer.feed(data)
        except DecodeError:
            rec.bad += 1
            self.counters["bad"] += 1
            return self._lost(rec, now, "bad-stream")
        for raw in frames:
            if self.key is not None and not wire.verify(raw, self.key):
                rec.bad += 1
                self.counters["bad"] += 1
                continue
            try:
                msg = wire.decode(raw)
            except DecodeError:
                rec.bad += 1
                self.counters["bad"] += 1
                continue
            if msg.type != wire.PREFERENCE_INFORMATION:
                continue
            first = not rec.weights
            rec.reports += 1
            self.counters["reports"] += 1
            rec.last_report = now
            rec.backoff = 0.0
            if self.timeout > 0:
                rec.deadline = now + self.timeout
            for hw in msg.weights():
                if hw.address in rec.reals:
                    real = hw.address
                elif len(rec.reals) == 1:
                    real = rec.reals[0]  # e.g. the agent reports its physical address
                else:
                    continue
                rec.weights[real] = hw.weight
                out.append(SetWeight(real, hw.weight))
            if first and rec.weights:
                out.append(AgentBack(rec.agent, tuple(rec.weights.items())))
        return out

    def _closed(self, agent: str, now: float, reason: str) -> list[ManagerAction]:
        rec = self.agents.get(agent)
        if rec is None or rec.state is AgentState.IDLE:
            return []
        acts = self._lost(rec, now, reason)
        return [a for a in acts if not isinstance(a, Close)]

    def _lost(self, rec: AgentRecord, now: float, reason: str) -> list[ManagerAction]:
        was_connected = rec.state is AgentState.CONNECTED
        rec.state = AgentState.IDLE
        rec.backoff = min(max(rec.backoff * 2, self.backoff_min), self.backoff_max)
        rec.connect_at = now + rec.backoff
        rec.deadline = None
        out: list[ManagerAction] = [Close(rec.agent, reason)]
        if was_connected:
            rec.losses += 1
            self.counters["losses"] += 1
        if rec.weights or was_connected:
            if rec.weights:
                out.append(AgentLost(rec.agent, reason, tuple(rec.reals)))
            rec.weights.clear()
            out += [SetWeight(r, None) for r in rec.reals]  # revert to static weights
        return out

    def handle_timer(self, now: float) -> list[ManagerAction]:
        """(Re)connect agents whose backoff ran out; drop those past their timeouts."""
        out: list[ManagerAction] = []
        for rec in self.agents.values():
            if rec.state is AgentState.IDLE and now >= rec.connect_at:
                rec.state = AgentState.CONNECTING
                rec.deadline = now + self.connect_timeout
                out.append(Connect(rec.agent))
            elif rec.deadline is not None and now >= rec.deadline:
                why = "connect-timeout" if rec.state is AgentState.CONNECTING else "report-timeout"
                out += self._lost(rec, now, why)
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is next due."""
        best: float | None = None
        for rec in self.agents.values():
            d = rec.connect_at if rec.state is AgentState.IDLE else rec.deadline
            if d is not None and (best is None or d < best):
                best = d
        return best

    def rows(self, now: float) -> list[dict[str, object]]:
        """``show ip slb dfp``."""
        return [
            {
                "agent": r.agent,
                "reals": list(r.reals),
                "state": r.state.value,
                "weights": dict(r.weights),
                "last_report_age_s": None
                if r.last_report is None
                else round(now - r.last_report, 3),
                "reports": r.reports,
                "connects": r.connects,
                "losses": r.losses,
                "bad": r.bad,
            }
            for r in self.agents.values()
        ]


__all__ = [
    "HA_DFP_MAX_WEIGHT",
    "AgentAction",
    "AgentBack",
    "AgentClosed",
    "AgentConnected",
    "AgentData",
    "AgentEvent",
    "AgentLost",
    "AgentRecord",
    "AgentState",
    "Close",
    "CloseManager",
    "Connect",
    "DfpAgent",
    "DfpAgentService",
    "DfpManager",
    "ManagerAccepted",
    "ManagerAction",
    "ManagerData",
    "ManagerEvent",
    "ManagerGone",
    "SendToAgent",
    "SendToManager",
    "SetWeight",
    "ha_weight",
]
