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

    def receive_message(self, raw: bytes) -> str:
        """A message from a manager. DFP Parameters set the interval; Server State is only
        informational (the agent must not change its notion of load). Returns what it was
        (for counters); raises DecodeError on bad input or a bad signature."""
        if self.key is not None and not wire.verify(raw, self.key):
            raise DecodeError("bad-auth", "DFP security digest")
        msg = wire.decode(raw)
        if msg.type == wire.DFP_PARAMETERS:
            for t in msg.tlvs:
                if isinstance(t, wire.KeepaliveTlv) and t.interval > 0:
                    self.interval = min(max(float(t.interval), MIN_INTERVAL_S), MAX_INTERVAL_S)
                    if self.last_at is not None:
                        self.next_report = self.last_at + self.interval
            return "parameters"
        if msg.type == wire.SERVER_STATE:
            return "server-state"
        if msg.type == wire.BINDID_REQUEST:
            return "bindid-request"
        return "other"

    def bindid_report(self) -> bytes:
        """BindID Report: we use no BindIDs, so the table is empty (P§6.5)."""
        msg = wire.DfpMessage(wire.BINDID_REPORT, (wire.BindIdTableTlv(self.address),))
        return wire.sign(msg, self.key, self.key_id) if self.key else wire.encode(msg)


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
    ) -> None:
        self.timeout = timeout  # longest gap between reports (0 = none)
        self.connect_timeout = connect_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.key = key
        self.key_id = key_id
        self.keepalive = keepalive  # if set, sent as DFP Parameters on connect
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
        rec.framer = wire.Framer()
        rec.deadline = now + self.timeout if self.timeout > 0 else None
        out: list[ManagerAction] = []
        if self.keepalive is not None:
            msg = wire.dfp_parameters(self.keepalive)
            raw = wire.sign(msg, self.key, self.key_id) if self.key else wire.encode(msg)
            out.append(SendToAgent(agent, raw))
        return out

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
    "AgentBack",
    "AgentClosed",
    "AgentConnected",
    "AgentData",
    "AgentLost",
    "AgentRecord",
    "AgentState",
    "Close",
    "Connect",
    "DfpAgent",
    "DfpManager",
    "ManagerAction",
    "ManagerEvent",
    "SendToAgent",
    "SetWeight",
    "ha_weight",
]
