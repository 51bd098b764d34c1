"""JSON shapes of the management views, so every node returns the same thing.

A node's ``views()`` maps a view name to ``View = Callable[[Mapping[str, str]], Any]``
(``mobileha.node.base``). The names and shapes here are the contract between the nodes,
the HTTP API (``/api/<name>``) and ``mobileha show``:

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

import itertools
from collections.abc import Callable, Mapping
from typing import Any, Generic, NotRequired, TypedDict, TypeVar

from mobileha.core.binding import Binding, Encap

VIEW_NAMES = (
    "bindings",
    "standby",
    "redundancy",
    "slb",
    "sessions",
    "dfp",
    "stats",
    "visitors",
)

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

HSRP_STATES = ("Initial", "Learn", "Listen", "Speak", "Standby", "Active")


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

SYNC_STATES = ("idle", "downloading", "in-sync", "peer-lost")

# CISCO-MOBILE-IP-MIB cmiHaRedun counters 1..19, in MIB order (P§5.1).
REDUN_COUNTERS = (
    "SentBUs",
    "FailedBUs",
    "ReceivedBUAcks",
    "TotalSentBUs",
    "ReceivedBUs",
    "SentBUAcks",
    "SentBIReqs",
    "FailedBIReqs",
    "TotalSentBIReqs",
    "ReceivedBIReps",
    "DroppedBIReps",
    "SentBIAcks",
    "ReceivedBIReqs",
    "SentBIReps",
    "FailedBIReps",
    "TotalSentBIReps",
    "ReceivedBIAcks",
    "DroppedBIAcks",
    "SecViolations",
)


class RedundancyView(TypedDict):
    """``show ip mobile redundancy``: peer, role, sync state and the cmiHaRedun* counters.

    ``mobileha show`` also renders ``core.redundancy.SyncPeer.view()`` directly (``state``
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
REAL_STATES = {
    "outOfService": "OUTOFSERVICE",
    "inService": "OPERATIONAL",
    "failed": "FAILED",
    "readyToTest": "READY_TO_TEST",
    "testing": "TESTING",
    "maxConnsThrottle": "MAXCONNS",
    "maxClientsThrottle": "MAXCLIENTS",
    "dfpThrottle": "DFP_THROTTLED",
    "probeFailed": "PROBE_FAILED",
}


class RealItem(TypedDict):
    """One row of ``show ip slb reals``."""

    address: str
    port: int
    name: str
    farm: str
    weight_admin: int
    weight_oper: int  # current: DFP weight while DFP reports, else admin
    dfp_weight: int | None
    state: str  # a REAL_STATES key (SlbRealServerState)
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


class DfpView(TypedDict):
    agents: list[DfpAgentItem]


# ----------------------------------------------------------------------------- stats

# Reply code names: CISCO-MOBILE-IP-MIB cmiHaRegRecentServDeniedCode named values for the
# HA codes 128-139, RFC 5944 / P§1.9 wording for the others.
REPLY_CODE_NAMES = {
    0: "registrationAccepted",
    1: "acceptedNoSimultaneousBindings",
    128: "reasonUnspecified",
    129: "admProhibited",
    130: "insufficientResource",
    131: "mnAuthenticationFailure",
    132: "faAuthenticationFailure",
    133: "idMismatch",
    134: "poorlyFormedRequest",
    135: "tooManyBindings",
    136: "unknownHA",
    137: "reverseTunnelUnavailable",
    138: "reverseTunnelBitNotSet",
    139: "encapsulationUnavailable",
    64: "faReasonUnspecified",
    65: "faAdmProhibited",
    66: "faInsufficientResource",
    67: "faMnAuthenticationFailure",
    68: "faHaAuthenticationFailure",
    69: "faLifetimeTooLong",
    70: "faPoorlyFormedRequest",
    71: "faPoorlyFormedReply",
    72: "faEncapsulationUnavailable",
    77: "faInvalidCareOfAddress",
    78: "faRegistrationTimeout",
    80: "faHomeNetworkUnreachable",
    81: "faHaHostUnreachable",
    82: "faHaPortUnreachable",
    88: "faHaUnreachable",
}


def reply_code_name(code: int) -> str:
    return REPLY_CODE_NAMES.get(code, f"code{code}")


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


__all__ = [
    "DEFAULT_LIMIT",
    "HSRP_STATES",
    "MAX_LIMIT",
    "REAL_STATES",
    "REDUN_COUNTERS",
    "REPLY_CODE_NAMES",
    "SYNC_STATES",
    "VIEW_NAMES",
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
    "binding_item",
    "dataplane_view",
    "flags_text",
    "page_of",
    "paging",
    "reply_code_name",
]
