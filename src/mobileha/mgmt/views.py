"""JSON shapes of the management views, so every node returns the same thing.

:func:`views_for` maps a view name to a ``View = Callable[[Mapping[str, str]], Any]`` for
a running node, rendering the node's read-only state (its attributes, read methods and
counters; a node never imports ``mgmt``). The names and shapes here are the contract between
the nodes, the HTTP API (``/api/<name>``) and ``mobileha show``:

===========  ==========================  ==============================================
view         IOS command it mirrors      JSON shape
===========  ==========================  ==============================================
bindings     show ip mobile binding      ``Page[BindingItem]`` (paged; filters below)
standby      show standby                ``StandbyView`` (HSRP groups)
redundancy   show ip mobile redundancy   ``RedundancyView`` (peer, sync state, cmiHaRedun*)
slb          show ip slb reals           ``SlbView`` (virtual server + reals)
sessions     show ip slb sessions        ``Page[SessionItem]`` (paged)
dfp          show ip slb dfp             ``DfpView`` (DFP agents and weights)
stats        show ip mobile traffic      ``StatsView`` (counters by name, reply codes)
===========  ==========================  ==============================================

Large tables are **paged**: a view reads ``offset`` and ``limit`` from the query with
:func:`paging` and returns one :class:`Page` built by :func:`page_of`, which renders only the
items of the page. A node never builds its whole table as one response. The bindings view
also honours ``home_address`` / ``nai`` / ``care_of`` filters (exact match) when given.

A load-sharing home agent (several HSRP groups, one HA address each) serves the views of
its other groups as ``g<group>-<view>`` (``g2-bindings``, ``g2-redundancy``, ``g2-stats``)
and lists every group in the ``groups`` view: ``{"groups": [{"group", "ha_address",
"prefix", "active"}, ...]}`` (``prefix`` is ``""`` for the first group, ``"g<group>-"`` for
the others); ``mobileha show bindings`` / ``redundancy`` use it to cover every group.

Helpers render the shared records: :func:`binding_item` (``core.binding.Binding``),
:func:`flags_text`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, NotRequired, TypedDict, TypeVar

from mobileha.core.binding import Binding, Encap
from mobileha.core.hsrp import State as HsrpState
from mobileha.core.slb import RealState
from mobileha.core.sync import MIB_COUNTER_NAMES, SyncState
from mobileha.dataplane.choice import summary, tunnel_counters
from mobileha.wire.mip import REPLY_CODE_INFO, reply_code_name

if TYPE_CHECKING:
    from mobileha.core.cluster import Agent
    from mobileha.core.foreign_agent import Visitor
    from mobileha.core.mobile_node import MobileNode
    from mobileha.core.slb import Real, Session
    from mobileha.node.dfp import DfpAgentServer
    from mobileha.node.foreign_agent import ForeignAgentNode
    from mobileha.node.home_agent import HomeAgentNode
    from mobileha.node.hsrp import HsrpIo, HsrpNode
    from mobileha.node.mobile_node import MobileNodeNode
    from mobileha.node.slb import SlbNode

VIEW_NAMES = (
    "bindings",
    "standby",
    "redundancy",
    "slb",
    "sessions",
    "dfp",
    "stats",
    "visitors",
    "subscribers",
)

# Which config gives a node each view (``mobileha show`` names it when a node lacks one).
VIEW_SOURCES = {
    "bindings": 'a home agent (node.role = "home-agent")',
    "standby": "a home agent with an [hsrp] section",
    "redundancy": "a home agent with a [redundancy] section (and [hsrp])",
    "slb": 'an HA-SLB (node.role = "slb", [slb])',
    "sessions": 'an HA-SLB (node.role = "slb", [slb])',
    "dfp": "a home agent with dfp.listen, or an HA-SLB with slb.real[].dfp_agent",
    "stats": "every node",
    "visitors": 'a foreign agent (node.role = "foreign-agent")',
}

# A view answers a management request: query parameters (e.g. {"offset": "0", "limit": "100"})
# -> a JSON-serialisable object. Large tables must honour offset/limit (paging).
View = Callable[[Mapping[str, str]], Any]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

T = TypeVar("T")


class PagingError(ValueError):
    """Bad ``offset`` / ``limit`` query parameters (the API answers 400)."""


class Page(TypedDict, Generic[T]):
    """One page of a large table. ``next_offset`` is None on the last page."""

    total: int  # rows in the whole table (after filters)
    offset: int
    limit: int
    items: list[T]
    next_offset: int | None


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``offset`` (default 0) and ``limit`` (default 100, at most 1000) from a query."""
    try:
        offset = int(query.get("offset", "0"))
        limit = int(query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        raise PagingError("offset and limit must be integers") from None
    if offset < 0 or limit < 1:
        raise PagingError("offset must be >= 0 and limit >= 1")
    return offset, min(limit, MAX_LIMIT)


def page_of(
    rows: Any,
    query: Mapping[str, str],
    render: Callable[[T], Any] | None = None,
    total: int | None = None,
) -> Page[Any]:
    """Slice ``rows`` by the query's offset/limit and render only that slice.

    ``rows`` may be a sequence (sliced directly) or any iterable (e.g. ``dict.values()``,
    skipped with ``islice``); pass ``total`` when ``len(rows)`` is not available.
    """
    offset, limit = paging(query)
    if total is None:
        total = len(rows)
    if hasattr(rows, "__getitem__") and not isinstance(rows, Mapping):
        chunk = list(rows[offset : offset + limit])
    else:
        chunk = list(itertools.islice(rows, offset, offset + limit))
    items = [render(r) for r in chunk] if render is not None else chunk
    end = offset + len(chunk)
    return Page(
        total=total,
        offset=offset,
        limit=limit,
        items=items,
        next_offset=end if end < total and chunk else None,
    )


# ----------------------------------------------------------------------------- bindings


class BindingItem(TypedDict):
    """One row of ``show ip mobile binding``."""

    home_address: str
    nai: str | None
    care_of: str
    ha_address: str  # HA address of the reply / tunnel source
    src_addr: str  # source of the accepted request (FA/PDSN, or the MN if co-located)
    src_port: int
    lifetime_granted: int  # seconds (65535 = infinite)
    lifetime_remaining: int  # seconds
    flags: int  # request flag byte
    flags_text: str  # "sBdmgrTx": upper case = set
    encap: str  # "ipip" | "gre" | "minimal"
    gre_key: int | None
    identification: str  # "XXXXXXXX.XXXXXXXX" (hex, high.low)
    state: NotRequired[str]  # "active" (tunnel installed) | "standby" (synced copy)
    traffic: NotRequired[dict[str, int]]  # the tunnel's data plane counters (TunnelCounters)


_FLAG_LETTERS = "sbdmgrtx"
_ENCAP_NAMES = {Encap.IPIP: "ipip", Encap.GRE: "gre", Encap.MINIMAL: "minimal"}


def flags_text(flags: int) -> str:
    """IOS-style flag letters S B D M G r T x, upper case when the bit is set."""
    return "".join(c.upper() if flags & (0x80 >> i) else c for i, c in enumerate(_FLAG_LETTERS))


def binding_item(b: Binding, now: float, state: str | None = None) -> BindingItem:
    """Render a binding; ``now`` is the clock of ``b.expires`` (the core's monotonic clock)."""
    remaining = 0xFFFF if b.lifetime == 0xFFFF else max(0, int(b.expires - now + 0.5))
    item = BindingItem(
        home_address=b.home_addr,
        nai=b.nai,
        care_of=b.care_of,
        ha_address=b.ha_addr,
        src_addr=b.src_addr,
        src_port=b.src_port,
        lifetime_granted=b.lifetime,
        lifetime_remaining=remaining,
        flags=b.flags,
        flags_text=flags_text(b.flags),
        encap=_ENCAP_NAMES.get(b.encap, str(int(b.encap))),
        gre_key=b.gre_key,
        identification=f"{b.ident >> 32:08X}.{b.ident & 0xFFFFFFFF:08X}",
    )
    if state is not None:
        item["state"] = state
    return item


# ----------------------------------------------------------------------------- standby

# CISCO-HSRP-MIB HsrpState order (initial 1 .. active 6), named as the core names them.
HSRP_STATES = tuple(s.label for s in HsrpState)


class StandbyGroup(TypedDict):
    """One group of ``show standby``: ``mobileha.core.hsrp.HsrpGroup.snapshot()`` plus the
    interface. Times are milliseconds; ``*_ago_ms`` count back, the others count down."""

    interface: str
    group: int
    version: int
    name: str
    state: str  # one of HSRP_STATES
    state_changes: int
    last_state_change_ago_ms: int | None
    virtual_ip: str | None
    virtual_mac: str  # "0000.0c9f.f001"
    local_address: str
    hello_ms: int  # in use (learned from the Active when not configured)
    hold_ms: int
    next_hello_ms: int | None
    authentication: str  # "text" | "md5"
    auth_failures: int
    preempt: bool
    preempt_delay_ms: int
    active_router: str | None  # "local", an address, or None (unknown)
    active_priority: int | None
    active_expires_ms: int | None
    standby_router: str | None
    standby_priority: int | None
    standby_expires_ms: int | None
    priority: int  # in use (after tracking)
    configured_priority: int
    tracked: NotRequired[list[dict[str, Any]]]
    ready: NotRequired[bool]  # redundancy: False while a bulk download is incomplete
    counters: NotRequired[dict[str, int]]


# The standby view: a list of groups (``{"groups": [...]}`` is accepted by ``show`` too).
StandbyView = list[StandbyGroup]


# ----------------------------------------------------------------------------- redundancy

SYNC_STATES = tuple(s.value for s in SyncState)

# CISCO-MOBILE-IP-MIB cmiHaRedun counters 1..19, in MIB order (P§5.1).
REDUN_COUNTERS = MIB_COUNTER_NAMES


class RedundancyView(TypedDict):
    """``show ip mobile redundancy``: peer, role, sync state and the cmiHaRedun* counters.

    ``mobileha show`` also renders ``core.sync.SyncPeer.view()`` directly (``state``
    for ``sync_state``, ``pending`` for ``queue_depth``, plus ``mode`` and ``ready``);
    counters beyond the 19 MIB ones are printed as "Other"."""

    peer: str
    ha_address: str  # the HSRP VIP whose bindings are synchronised
    group_name: str | None
    hsrp_state: str  # one of HSRP_STATES
    role: str  # "active" | "standby"
    sync_state: str  # one of SYNC_STATES
    bindings: int  # bindings held (active: owned; standby: synced copies)
    queue_depth: int  # BUs waiting for an ack
    last_bulk_s: float | None  # duration of the last bulk download
    last_bulk_bindings: int | None
    peer_last_heard_s: float | None  # seconds since the last valid message from the peer
    counters: dict[str, int]  # REDUN_COUNTERS names -> value


# ----------------------------------------------------------------------------- slb

# CISCO-SLB-MIB SlbRealServerState names and the word `show ip slb reals` prints for them.
_REAL_STATE_WORDS = {
    RealState.OUT_OF_SERVICE: "OUTOFSERVICE",
    RealState.IN_SERVICE: "OPERATIONAL",
    RealState.FAILED: "FAILED",
    RealState.READY_TO_TEST: "READY_TO_TEST",
    RealState.TESTING: "TESTING",
    RealState.MAX_CONNS_THROTTLE: "MAXCONNS",
    RealState.MAX_CLIENTS_THROTTLE: "MAXCLIENTS",
    RealState.DFP_THROTTLE: "DFP_THROTTLED",
    RealState.PROBE_FAILED: "PROBE_FAILED",
}
REAL_STATES = {s.value: _REAL_STATE_WORDS[s] for s in RealState}


class RealItem(TypedDict):
    """One row of ``show ip slb reals``."""

    address: str
    port: int
    name: str
    farm: str
    weight_admin: int
    weight_oper: int  # current: DFP weight while DFP reports, else admin
    dfp_weight: int | None
    state: str  # a REAL_STATES key (SlbRealServerState, as in /metrics slbRealState)
    state_text: str  # the word `show ip slb reals` prints for it (REAL_STATES value)
    conns: int  # sessions assigned now (slbRealNumberOfConnections)
    total_conns: int  # slbRealTotalConnections
    failures: int  # consecutive failures (slbRealConsecutiveFails)
    total_failures: int  # slbRealTotalFails
    retry_in_s: float | None  # failed: seconds until readyToTest
    maxconns: int


class SlbView(TypedDict):
    """``show ip slb vservers`` + ``show ip slb reals``."""

    virtual_address: str
    port: int
    mode: str  # "directed" | "relay"
    predictor: str
    farm: str
    state: str  # "OPERATIONAL" | "OUTOFSERVICE"
    sessions: int
    total_sessions: int
    forwarded: int  # RRQs forwarded
    reassigned: int  # sessions moved after `reassign` retransmissions
    dropped: int  # RRQs dropped (no eligible real, bad input)
    reals: list[RealItem]


class SessionItem(TypedDict):
    """One row of ``show ip slb sessions ipmobile``."""

    key: str  # the NAI, or "HoA/CoA" without an NAI
    client: str  # "addr:port" of the FA/PDSN (or co-located MN)
    real: str  # real address
    vserver: str
    retransmissions: int  # RRQ retransmissions seen in this session
    identification: str  # last Identification, "XXXXXXXX.XXXXXXXX"
    expires_in_s: float
    state: str  # "ESTAB" | "TESTING" (test session of a readyToTest real)


# ----------------------------------------------------------------------------- dfp


class DfpAgentItem(TypedDict):
    """A DFP connection: on the SLB one row per agent; on an HA its own agent."""

    agent: str  # "addr:port"
    role: str  # "manager" (this node connects) | "agent" (this node listens)
    state: str  # "connected" | "connecting" | "listening" | "down"
    last_report_s: float | None  # seconds since the last Preference Information
    reports: int  # Preference Information messages sent (agent) / received (manager)
    errors: int
    weights: list[dict[str, Any]]  # [{"address": str, "weight": int, "bind_id": int}]
    dropped: NotRequired[dict[str, int]]  # agent: connections refused/closed, by reason


class DfpView(TypedDict):
    agents: list[DfpAgentItem]


# ----------------------------------------------------------------------------- stats

# Reply code names (CISCO-MOBILE-IP-MIB cmiHaRegRecentServDeniedCode values): wire.mip.
REPLY_CODE_NAMES = {c: i.mib_name for c, i in REPLY_CODE_INFO.items() if i.mib_name}


class DataplaneView(TypedDict):
    """The data plane of a node: which backend is live, why ``auto`` passed the others, and
    its counters (``mobileha.dataplane.base.DataPlaneSummary``)."""

    backend: str
    not_taken: dict[str, str]  # backend -> reason (auto)
    tunnels: int
    totals: dict[str, int]  # tx_pkts, tx_bytes (encapsulated), rx_pkts, rx_bytes, drops
    drops: dict[str, int]  # reason -> packets
    errors: dict[str, int]  # control plane: map-full, netlink, coa-unreachable


class StatsView(TypedDict):
    """``show ip mobile traffic`` and friends: every counter of the node by name."""

    node: str
    role: str
    uptime_s: float
    counters: dict[str, int]  # e.g. "cmiHaRegRequestsReceived": 12
    reply_codes: dict[str, int]  # reply code (as a string) -> replies sent with it
    bad_input: dict[str, int]  # drop reason -> count
    dataplane: NotRequired[DataplaneView]
    journal: NotRequired[dict[str, Any]]  # the binding journal's state (home_agent.journal)
    subscribers: NotRequired[dict[str, float]]  # home agent: SA cache and AAA counters


def dataplane_view(summary: Any, not_taken: Mapping[str, str]) -> DataplaneView:
    """A ``DataPlaneSummary`` as the stats view carries it."""
    return DataplaneView(
        backend=summary.backend,
        not_taken=dict(not_taken),
        tunnels=summary.tunnels,
        totals=dict(summary.totals),
        drops={k: v for k, v in summary.drops.items() if v},
        errors={k: v for k, v in summary.errors.items() if v},
    )


# ----------------------------------------------------------------------------- rendering
# The views of each role, rendered from the node's read-only state at request time.


def views_for(node: Any) -> Mapping[str, View]:
    """The views of a running node by name (``/api/<name>``), chosen by ``node.role``.

    An object that renders its own views (a test double, a role not known here) provides
    ``views() -> Mapping[str, View]`` and is served as it is."""
    own = getattr(node, "views", None)
    if callable(own):
        views: Mapping[str, View] = own()
        return views
    render = _ROLE_VIEWS.get(getattr(node, "role", ""))
    return render(node) if render is not None else {}


def home_agent_views(node: HomeAgentNode) -> dict[str, View]:
    """``bindings``, ``stats``, ``dfp`` (agent configured), ``standby`` (HSRP),
    ``redundancy`` (binding sync); with load sharing each other HA address's views as
    ``g<group>-<view>`` and the ``groups`` view."""
    v: dict[str, View] = {}
    for agent, prefix in _agents(node):
        v.update(_agent_views(node, agent, prefix))
    if node.serves_dfp:
        v["dfp"] = lambda _q: dfp_agent_view(node.dfp_server)
    if node.hsrp is not None:
        v.update(hsrp_views(node.hsrp))
    if len(node.agents) > 1:
        v["groups"] = lambda _q: groups_view(node)
    return v


def _agent_views(node: HomeAgentNode, agent: Agent, prefix: str) -> dict[str, View]:
    v: dict[str, View] = {
        f"{prefix}bindings": lambda q: bindings_view(node, agent, q),
        f"{prefix}stats": lambda _q: home_agent_stats(node, agent),
    }
    if agent.sync is not None:
        v[f"{prefix}redundancy"] = lambda _q: redundancy_view(node, agent)
    if agent.ha.sas.realms:
        v[f"{prefix}subscribers"] = lambda _q: subscribers_view(node, agent)
    return v


def subscribers_view(node: HomeAgentNode, agent: Agent) -> dict[str, Any]:
    """Realm and pattern entries with their SA source, the cache of SAs from AAA (size,
    hits, misses, failures, latency) and the AAA client's own counters."""
    ha = agent.ha
    subs = ha.subs
    c = subs.counters()
    n = c["aaa_latency_count"]
    fetcher = node.sa_fetcher
    return {
        "realms": [
            {"pattern": e.pattern, "sa_source": e.source, "spi": e.sa.spi if e.sa else None}
            for e in ha.sas.realms
        ],
        "cache": {k: v for k, v in c.items() if not k.startswith("aaa_latency")},
        "latency": {
            "count": n,
            "mean_ms": round(1000 * c["aaa_latency_sum_s"] / n, 3) if n else None,
            "max_ms": round(1000 * c["aaa_latency_max_s"], 3),
        },
        "aaa_client": dict(fetcher.stats()) if fetcher is not None else {},
        "fetch_errors": node.sa_fetch_errors,
    }


def _agents(node: HomeAgentNode) -> list[tuple[Agent, str]]:
    """Every HA address of the node with the prefix of its views (``""`` for the first,
    ``"g<group>-"`` for the others)."""
    return [(a, "" if i == 0 else f"g{a.group}-") for i, a in enumerate(node.agents)]


def groups_view(node: HomeAgentNode) -> dict[str, Any]:
    """Load sharing: every HSRP group served by the node, its HA address and the prefix of
    its views (``""`` for the first group, ``"g<group>-"`` for the others)."""
    return {
        "groups": [
            {"group": a.group, "ha_address": a.ha_addr, "prefix": prefix, "active": a.ha.active}
            for a, prefix in _agents(node)
        ]
    }


def bindings_view(node: HomeAgentNode, agent: Agent, q: Mapping[str, str]) -> Page[BindingItem]:
    """One page of the binding table, optionally filtered by home address, NAI, CoA."""
    now = node.now()
    table = agent.ha.table
    state = "active" if agent.ha.active else "standby"

    dp = node.dataplane

    def render(b: Binding) -> BindingItem:
        item = binding_item(b, now, state)
        traffic = tunnel_counters(dp, b.home_addr, b.care_of) if dp is not None else None
        if traffic is not None:
            item["traffic"] = traffic
        return item

    rows: Any
    total: int | None = None
    if "home_address" in q:
        rows = table.bindings_of(q["home_address"])
    elif "nai" in q:
        rows = [b for h in table.home_addresses_of(q["nai"]) for b in table.bindings_of(h)]
    else:
        rows = iter(table)
        total = len(table)
    if "care_of" in q:
        rows = [b for b in rows if b.care_of == q["care_of"]]
        total = None
    if "nai" in q and "home_address" in q:
        rows = [b for b in rows if b.nai == q["nai"]]
    return page_of(rows, q, render, total)


def home_agent_stats(node: HomeAgentNode, agent: Agent) -> StatsView:
    core = agent.ha
    view = StatsView(
        node=node.name,
        role=node.role,
        uptime_s=round(node.uptime_s, 3),
        counters=node.counters(agent),
        reply_codes={str(c): n for c, n in sorted(core.by_code.items())},
        bad_input=dict(core.drops),
    )
    if node.dataplane is not None:
        view["dataplane"] = dataplane_view(summary(node.dataplane), node.dataplane_refused)
    if node.journal is not None:
        view["journal"] = node.journal.view()
    if core.sas.realms:
        view["subscribers"] = subscribers_view(node, agent)["cache"]
    return view


def dfp_agent_view(srv: DfpAgentServer | None) -> DfpView:
    """The home agent's own DFP agent (no agent listening yet: no rows)."""
    if srv is None:
        return DfpView(agents=[])
    v = srv.view()
    dropped = {k: n for k, n in v["connections"].items() if k not in _DFP_NOT_DROPS}
    return DfpView(
        agents=[
            {
                "agent": v["listen"],
                "role": "agent",
                "state": "connected" if v["managers"] else "listening",
                "last_report_s": v["last_report_s"],
                "reports": v["reports"],
                "errors": sum(dropped.values()),
                "weights": [{"address": v["address"], "weight": v["weight"], "bind_id": 0}],
                "dropped": dropped,
            }
        ]
    )


_DFP_NOT_DROPS = frozenset({"accepted", "messages", "closed"})


def hsrp_views(hsrp: HsrpNode | HsrpIo) -> dict[str, View]:
    """``standby``: every group of the HSRP node (a home agent's, or a standalone one)."""
    return {"standby": lambda _q: hsrp.snapshot()}


def redundancy_view(node: HomeAgentNode, agent: Agent) -> dict[str, object]:
    """``core.sync.SyncPeer.view()`` plus the reply gate of the HA address."""
    assert agent.sync is not None
    v = agent.sync.view(node.now())
    hsrp = node.hsrp_groups
    if not v.get("group_name") and hsrp is not None and agent.hsrp_key is not None:
        g = hsrp.groups.get(agent.hsrp_key)
        v["group_name"] = (g.cfg.name or None) if g is not None else None
    gate = agent.gate
    v["bindings"] = len(agent.ha.table)
    v["replies_held"] = gate.replies_held if gate is not None else 0
    v["replies_released_unacked"] = gate.replies_released_unacked if gate is not None else 0
    v["replies_waiting"] = gate.waiting if gate is not None else 0
    v["active_timer_expiries"] = agent.active_timer_expiries
    return v


def foreign_agent_views(node: ForeignAgentNode) -> dict[str, View]:
    return {
        "visitors": lambda q: visitors_view(node, q),
        "stats": lambda _q: foreign_agent_stats(node),
    }


def visitor_item(v: Visitor, now: float) -> dict[str, Any]:
    """One row of ``show ip mobile visitor``."""
    return {
        "home_address": v.home_addr,
        "nai": v.nai,
        "mn": f"{v.mn[0]}:{v.mn[1]}",
        "home_agent": v.ha_addr,
        "target": v.target,
        "care_of": v.binding.care_of,
        "lifetime_granted": v.lifetime,
        "lifetime_remaining": None if v.expires is None else max(0, int(v.expires - now)),
        "flags": v.flags,
        "encap": v.binding.encap.name.lower(),
        "gre_key": v.gre_key,
        "identification": f"{v.ident >> 32:08X}.{v.ident & 0xFFFFFFFF:08X}",
        "aaa_home_address": v.aaa_home_addr,
    }


def visitors_view(node: ForeignAgentNode, query: Mapping[str, str]) -> Page[Any]:
    """One page of the visitor list, optionally filtered by home address or NAI."""
    now = node.now()
    visitors = node.core.visitors
    rows: Any = visitors.values()
    total = len(visitors)
    for key in ("home_address", "nai"):
        want = query.get(key)
        if want:
            rows = [v for v in rows if (v.home_addr if key == "home_address" else v.nai) == want]
            total = len(rows)

    def render(v: Visitor) -> dict[str, Any]:
        return visitor_item(v, now)

    return page_of(rows, query, render, total=total)


def foreign_agent_stats(node: ForeignAgentNode) -> dict[str, Any]:
    core = node.core
    s = core.stats
    counters = {
        "cmiFaRegTotalVisitors": len(core.visitors),
        "pending": core.pending_count,
        "requests": s.requests,
        "relayed": s.relayed,
        "retransmissions": s.retransmissions,
        "replies": s.replies,
        "replies_other_source": s.replies_other_source,
        "accepted": s.accepted,
        "deregistered": s.deregistered,
        "timeouts": s.timeouts,
        "aaa_requests": s.aaa_requests,
        "aaa_rejects": s.aaa_rejects,
        "visitors_expired": s.visitors_expired,
        "redirects": s.redirects,
        "aaa_home_mismatch": s.aaa_home_mismatch,
        "gre_key_mismatch": s.gre_key_mismatch,
        "internal_errors": node.internal_errors,
        "icmp_errors": s.icmp_errors,
        "icmp_unmatched": s.icmp_unmatched,
        "revocation_negotiated": s.revocation_negotiated,
        "revoked_by_ha": s.revoked_by_ha,
        "revoked_by_fa": s.revoked_by_fa,
        "visitors_cleared": s.visitors_cleared,
    }
    for k, n in core.revocations.stats.as_dict().items():
        counters[f"revocation_{k}"] = n
    adv = core.advertiser
    if adv is not None:
        for k, n in dataclasses.asdict(adv.stats).items():
            counters[f"advertiser_{k}"] = n
    aaa = node.aaa
    if aaa is not None:
        for k, n in aaa.stats().items():
            counters[f"aaa_{aaa.name}_{k}"] = n
    codes: dict[str, int] = {}
    for d in (s.fa_codes, s.ha_codes):
        for c, n in d.items():
            codes[str(c)] = codes.get(str(c), 0) + n
    view: dict[str, Any] = {
        "node": node.name,
        "role": node.role,
        "uptime_s": node.uptime_s,
        "counters": counters,
        "reply_codes": codes,
        "fa_codes": {str(k): n for k, n in s.fa_codes.items()},
        "bad_input": dict(s.drops),
    }
    if node.dataplane is not None:
        view["dataplane"] = dataplane_view(summary(node.dataplane), node.dataplane_refused)
    return view


def mobile_node_views(node: MobileNodeNode) -> dict[str, View]:
    v: dict[str, View] = {
        "mobile_nodes": lambda q: mobile_nodes_view(node, q),
        "stats": lambda _q: mobile_node_stats(node),
    }
    roamer = getattr(node, "roamer", None)
    if roamer is not None:  # a roaming mobile node (node/roaming.py)
        v["roaming"] = lambda _q: roaming_view(node)
    return v


def roaming_view(node: Any) -> dict[str, Any]:
    """Where the roaming mobile node is, the agents it hears, its handoffs (seen ->
    registered, milliseconds) and the discovery counters."""
    now = node.now()
    r = node.roamer
    view: dict[str, Any] = r.status(now)
    view["handoffs"] = [
        {
            "agent": h.agent,
            "link": h.link,
            "outage_ms": None
            if h.registered is None
            else round((h.registered - h.started) * 1000, 1),
        }
        for h in list(node.handoffs)[-100:]
    ]
    view["counters"] = dataclasses.asdict(r.stats)
    return view


def mobile_nodes_view(node: MobileNodeNode, query: Mapping[str, str]) -> Page[Any]:
    """One page of the mobile nodes' status, optionally only those in ``state``."""
    now = node.now()
    rows: Any = node.fleet.mns
    state = query.get("state")
    if state:
        rows = [m for m in rows if m.state.value == state]

    def render(m: MobileNode) -> dict[str, object]:
        return m.status(now)

    return page_of(rows, query, render)


def mobile_node_stats(node: MobileNodeNode) -> dict[str, Any]:
    fleet = node.fleet
    counters = fleet.stats()
    return {
        "node": node.name,
        "role": node.role,
        "uptime_s": node.uptime_s,
        "counters": counters,
        "reply_codes": {str(k): v for k, v in fleet.codes.items()},
        "bad_input": {"undecodable": fleet.bad_input, "unrouted": fleet.unrouted},
    }


def slb_views(node: SlbNode) -> dict[str, View]:
    return {
        "slb": lambda q: slb_view(node, q),
        "sessions": lambda q: sessions_view(node, q),
        "dfp": lambda q: slb_dfp_view(node, q),
        "stats": lambda q: slb_stats_view(node, q),
    }


def real_item(node: SlbNode, r: Real, now: float) -> dict[str, Any]:
    """One row of ``show ip slb reals``."""
    return {
        "address": r.address,
        "port": r.port,
        "name": node.real_name(r),
        "farm": node.settings.farm_name,
        "weight_admin": r.weight,
        "weight_oper": r.oper_weight,
        "dfp_weight": r.dfp_weight,
        "state": r.state.value,
        "state_text": REAL_STATES[r.state.value],
        "conns": r.conns,
        "total_conns": r.total_conns,
        "failures": r.failures,
        "total_failures": r.total_failures,
        "retry_in_s": None if r.retry_at is None else round(max(r.retry_at - now, 0.0), 3),
        "maxconns": r.maxconns,
    }


def slb_view(node: SlbNode, _q: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``show ip slb vservers`` + ``show ip slb reals``."""
    now = node.now()
    farm = node.farm
    c = farm.counters
    va, port = node.address
    return {
        "virtual_address": va,
        "port": port,
        "mode": node.settings.mode,
        "predictor": farm.predictor.name,
        "io": node.io,
        "farm": node.settings.farm_name,
        "state": "OPERATIONAL" if node.in_service else "OUTOFSERVICE",
        "sessions": len(farm.sessions),
        "total_sessions": c["new_sessions"],
        "forwarded": node.n_forwarded,
        "reassigned": c["reassignments"],
        "dropped": node.counters["dropped"],
        "reals": [real_item(node, r, now) for r in farm.reals],
    }


def session_item(s: Session, now: float, vserver: str) -> dict[str, Any]:
    """One row of ``show ip slb sessions ipmobile``."""
    return {
        "key": s.key if isinstance(s.key, str) else f"{s.key[0]}/{s.key[1]}",
        "client": f"{s.client}:{s.client_port}",
        "real": s.real.address,
        "vserver": vserver,
        "retransmissions": s.retrans_total,
        "identification": f"{s.ident >> 32:08X}.{s.ident & 0xFFFFFFFF:08X}",
        "expires_in_s": round(s.expires - now, 3),
        "state": "TESTING" if s.test else "ESTAB",
    }


def sessions_view(node: SlbNode, q: Mapping[str, str] | None = None) -> Page[Any]:
    """One page of the SLB's NAI sessions (PagingError -> HTTP 400 on bad values)."""
    now = node.now()
    vs = node.settings.farm_name
    sessions = node.farm.sessions

    def render(s: Session) -> dict[str, Any]:
        return session_item(s, now, vs)

    return page_of(sessions.values(), q or {}, render, total=len(sessions))


def slb_dfp_view(node: SlbNode, _q: Mapping[str, str] | None = None) -> DfpView:
    """The SLB's DFP manager: one row per agent it connects to."""
    dfp = node.dfp
    if dfp is None:
        return DfpView(agents=[])
    now = node.now()
    agents: list[DfpAgentItem] = []
    for rec in dfp.agents.values():
        st = rec.state.value
        agents.append(
            {
                "agent": rec.agent,
                "role": "manager",
                "state": "down" if st == "idle" else st,
                "last_report_s": None
                if rec.last_report is None
                else round(now - rec.last_report, 3),
                "reports": rec.reports,
                "errors": rec.bad + rec.losses,
                "weights": [
                    {"address": a, "weight": w, "bind_id": 0} for a, w in rec.weights.items()
                ],
            }
        )
    return DfpView(agents=agents)


def slb_stats_view(node: SlbNode, _q: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "node": node.name,
        "role": node.role,
        "uptime_s": round(node.uptime_s, 3),
        "counters": {
            **node.counters,
            **{f"farm_{k}": v for k, v in node.farm.counters.items()},
        },
        "bad_input": dict(node.bad.totals),
    }


_ROLE_VIEWS: dict[str, Callable[[Any], Mapping[str, View]]] = {
    "home-agent": home_agent_views,
    "foreign-agent": foreign_agent_views,
    "mobile-node": mobile_node_views,
    "slb": slb_views,
    "hsrp": hsrp_views,
}


__all__ = [
    "DEFAULT_LIMIT",
    "HSRP_STATES",
    "MAX_LIMIT",
    "REAL_STATES",
    "REDUN_COUNTERS",
    "REPLY_CODE_NAMES",
    "SYNC_STATES",
    "VIEW_NAMES",
    "VIEW_SOURCES",
    "BindingItem",
    "DataplaneView",
    "DfpAgentItem",
    "DfpView",
    "Page",
    "PagingError",
    "RealItem",
    "RedundancyView",
    "SessionItem",
    "SlbView",
    "StandbyGroup",
    "StandbyView",
    "StatsView",
    "View",
    "binding_item",
    "bindings_view",
    "dataplane_view",
    "dfp_agent_view",
    "flags_text",
    "foreign_agent_stats",
    "foreign_agent_views",
    "groups_view",
    "home_agent_stats",
    "home_agent_views",
    "hsrp_views",
    "mobile_node_stats",
    "mobile_node_views",
    "mobile_nodes_view",
    "page_of",
    "paging",
    "real_item",
    "redundancy_view",
    "reply_code_name",
    "session_item",
    "sessions_view",
    "slb_dfp_view",
    "slb_stats_view",
    "slb_view",
    "slb_views",
    "views_for",
    "visitor_item",
    "visitors_view",
]
