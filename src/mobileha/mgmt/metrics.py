"""Prometheus metric families named after the Cisco MIBs, rendered from the nodes' state.

:func:`families_for` returns a running node's ``prometheus_client`` families, read from the
node's attributes and counters; the management API collects them at scrape time (no
registry of live objects, nothing to update on the hot path). The renderers use a
:class:`MetricsBuilder`::

    def families(node):
        m = MetricsBuilder()
        m.gauge(HA_BINDINGS, len(node.table))
        m.counter(HA_REQUESTS_RECEIVED, node.stats.received)
        m.reply_codes(HA_REPLIES, node.stats.by_code)           # {code: count}
        m.redundancy(node.sync.counters)                          # cmiHaRedun*
        m.hsrp_group(group=1, vip="10.0.1.100", state="Active", priority=110, ...)
        m.slb_real(farm="HAFARM", real="10.0.1.100", port=434, state="inService", ...)
        return m.families()

Names (counters get ``_total`` in the exposition, per the Prometheus convention):

* CISCO-MOBILE-IP-MIB: ``cmiHaRegTotalMobilityBindings`` (gauge),
  ``cmiHaRegRequestsReceived``, ``cmiHaRegRequestsDenied``, ``cmiHaRegRequestsDiscarded``,
  ``cmiHaEncapUnavailable``, ``cmiHaNAICheckFailures``, ``cmiHaInitRegRequestsReceived``,
  ``cmiHaInitRegRequestsAccepted``, ``cmiHaInitRegRequestsDenied``, and the 19
  ``cmiHaRedun*`` counters (``cmiHaRedunSentBUs`` ... ``cmiHaRedunSecViolations``).
  Registrations by reply code: ``mobileha_ha_replies{code,reason}`` (the MIBs have no
  per-code family; ``reason`` uses the cmiHaRegRecentServDeniedCode names). Foreign agent:
  ``cmiFaRegTotalVisitors`` (gauge), ``cmiFaInitRegRequestsReceived``, and
  ``mobileha_fa_requests_relayed``, ``mobileha_fa_replies{code,reason}``.
* CISCO-HSRP-MIB: ``cHsrpGrpStandbyState`` (gauge, the MIB enum: initial 1, learn 2,
  listen 3, speak 4, standby 5, active 6), ``cHsrpGrpPriority``, ``cHsrpGrpPreempt``
  (1/0), ``cHsrpGrpConfiguredHelloTime``, ``cHsrpGrpConfiguredHoldTime``,
  ``cHsrpGrpLearnedHelloTime``, ``cHsrpGrpLearnedHoldTime`` (ms), labels ``group``,
  ``vip``; plus ``mobileha_hsrp_auth_failures`` and ``mobileha_hsrp_state_changes``.
* CISCO-SLB-MIB: ``slbRealState`` (gauge, SlbRealServerState enum), ``slbRealAdminWeight``,
  ``slbRealOperWeight``, ``slbRealNumberOfConnections``, ``slbRealMaxConnections``,
  ``slbRealConsecutiveFails`` (gauges), ``slbRealTotalConnections``, ``slbRealTotalFails``
  (counters), labels ``farm``, ``real``, ``port``; ``slbVirtualNumberOfConnections``,
  ``slbVirtualTotalConnections`` with label ``vserver``.
* No MIB: ``mobileha_*`` (bad input by reason, DFP, data plane: ``mobileha_dataplane_backend``
  {backend} = 1 names the live backend, ``mobileha_dataplane_packets`` / ``_bytes``
  {direction}, ``mobileha_dataplane_drops`` {reason}, and per binding
  ``mobileha_dataplane_tunnel_packets`` while there are at most ``PER_TUNNEL_MAX``).

Load sharing (several HSRP groups, one HA address each, in one home agent): the families
of every group are merged by :func:`labelled` into one family per name, each sample with
the labels ``group`` (HSRP group number) and ``ha_address`` added, so the same name never
appears both with and without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from mobileha.core.slb import RealState
from mobileha.dataplane.choice import summary
from mobileha.mgmt.views import HSRP_STATES, REDUN_COUNTERS, dataplane_view, reply_code_name

if TYPE_CHECKING:
    from mobileha.core.cluster import Agent
    from mobileha.core.sync import SyncPeer
    from mobileha.node.dfp import DfpAgentServer
    from mobileha.node.foreign_agent import ForeignAgentNode
    from mobileha.node.home_agent import HomeAgentNode
    from mobileha.node.hsrp import HsrpIo, HsrpNode
    from mobileha.node.mobile_node import MobileNodeNode
    from mobileha.node.slb import SlbNode


@dataclass(frozen=True)
class MetricName:
    name: str
    doc: str
    kind: str  # "counter" | "gauge"
    labels: tuple[str, ...] = ()


def _c(name: str, doc: str, *labels: str) -> MetricName:
    return MetricName(name, doc, "counter", labels)


def _g(name: str, doc: str, *labels: str) -> MetricName:
    return MetricName(name, doc, "gauge", labels)


# CISCO-MOBILE-IP-MIB, home agent
HA_BINDINGS = _g("cmiHaRegTotalMobilityBindings", "Mobility bindings held by the home agent")
HA_REQUESTS_RECEIVED = _c("cmiHaRegRequestsReceived", "Registration requests received")
HA_REQUESTS_DENIED = _c("cmiHaRegRequestsDenied", "Registration requests denied")
HA_REQUESTS_DISCARDED = _c("cmiHaRegRequestsDiscarded", "Registration requests discarded")
HA_ENCAP_UNAVAILABLE = _c("cmiHaEncapUnavailable", "Requests denied: encapsulation unavailable")
HA_NAI_CHECK_FAILURES = _c("cmiHaNAICheckFailures", "Requests with a bad or missing NAI")
HA_INIT_RECEIVED = _c("cmiHaInitRegRequestsReceived", "Initial registration requests received")
HA_INIT_ACCEPTED = _c("cmiHaInitRegRequestsAccepted", "Initial registration requests accepted")
HA_INIT_DENIED = _c("cmiHaInitRegRequestsDenied", "Initial registration requests denied")
HA_REPLIES = _c("mobileha_ha_replies", "Registration replies sent, by code", "code", "reason")
# the binding journal (home_agent.journal)
JOURNAL_ENTRIES = _c("mobileha_journal_entries", "Binding changes written to the journal")
JOURNAL_WRITES = _c("mobileha_journal_writes", "Journal writes (group commits)")
JOURNAL_ERRORS = _c("mobileha_journal_errors", "Journal writes or fdatasyncs that failed")
JOURNAL_BUFFERED = _g("mobileha_journal_buffered", "Binding changes not yet written")
# CISCO-MOBILE-IP-MIB, foreign agent
FA_VISITORS = _g("cmiFaRegTotalVisitors", "Visitors in the foreign agent's visitor list")
FA_INIT_RECEIVED = _c("cmiFaInitRegRequestsReceived", "Initial registration requests received")
FA_REQUESTS_RELAYED = _c("mobileha_fa_requests_relayed", "Registration requests relayed to an HA")
FA_REPLIES = _c(
    "mobileha_fa_replies", "Registration replies sent to MNs, by code", "code", "reason"
)
# CISCO-HSRP-MIB
HSRP_STATE = _g("cHsrpGrpStandbyState", "HSRP state: 1 initial .. 6 active", "group", "vip")
HSRP_PRIORITY = _g("cHsrpGrpPriority", "HSRP priority in use", "group", "vip")
HSRP_PREEMPT = _g("cHsrpGrpPreempt", "HSRP preemption enabled (1) or not (0)", "group", "vip")
HSRP_CONF_HELLO = _g("cHsrpGrpConfiguredHelloTime", "Configured hello time (ms)", "group", "vip")
HSRP_CONF_HOLD = _g("cHsrpGrpConfiguredHoldTime", "Configured hold time (ms)", "group", "vip")
HSRP_HELLO = _g("cHsrpGrpLearnedHelloTime", "Hello time in use (ms)", "group", "vip")
HSRP_HOLD = _g("cHsrpGrpLearnedHoldTime", "Hold time in use (ms)", "group", "vip")
HSRP_AUTH_FAILURES = _c(
    "mobileha_hsrp_auth_failures", "HSRP packets with bad authentication", "group", "vip"
)
HSRP_STATE_CHANGES = _c("mobileha_hsrp_state_changes", "HSRP state changes", "group", "vip")
# CISCO-SLB-MIB
_REAL = ("farm", "real", "port")
SLB_REAL_STATE = _g("slbRealState", "Real server state (SlbRealServerState enum)", *_REAL)
SLB_REAL_ADMIN_WEIGHT = _g("slbRealAdminWeight", "Configured weight", *_REAL)
SLB_REAL_OPER_WEIGHT = _g("slbRealOperWeight", "Weight in use (DFP or configured)", *_REAL)
SLB_REAL_CONNS = _g("slbRealNumberOfConnections", "Sessions assigned to the real", *_REAL)
SLB_REAL_MAXCONNS = _g("slbRealMaxConnections", "Session limit of the real", *_REAL)
SLB_REAL_CONSEC_FAILS = _g("slbRealConsecutiveFails", "Consecutive failures", *_REAL)
SLB_REAL_TOTAL_CONNS = _c("slbRealTotalConnections", "Sessions ever assigned", *_REAL)
SLB_REAL_TOTAL_FAILS = _c("slbRealTotalFails", "Failures ever counted", *_REAL)
SLB_VIRTUAL_CONNS = _g("slbVirtualNumberOfConnections", "Sessions of the vserver", "vserver")
SLB_VIRTUAL_TOTAL = _c("slbVirtualTotalConnections", "Sessions ever created", "vserver")
# no MIB
BAD_INPUT = _c("mobileha_bad_input", "Input dropped or refused, by reason", "reason")
DP_BACKEND = _g("mobileha_dataplane_backend", "Data plane backend in use (value 1)", "backend")
DP_TUNNELS = _g("mobileha_dataplane_tunnels", "Tunnels installed in the data plane", "backend")
DP_PACKETS = _c(
    "mobileha_dataplane_packets", "Packets encapsulated (tx) / decapsulated (rx)", "direction"
)
DP_BYTES = _c("mobileha_dataplane_bytes", "Inner bytes encapsulated / decapsulated", "direction")
DP_DROPS = _c("mobileha_dataplane_drops", "Packets dropped by the data plane, by reason", "reason")
DP_TUNNEL_PACKETS = _c(
    "mobileha_dataplane_tunnel_packets",
    "Packets of one tunnel (only while at most PER_TUNNEL_MAX tunnels are installed)",
    "home_address",
    "care_of",
    "direction",
)
PER_TUNNEL_MAX = 100  # beyond, per-binding counters are in `show bindings` only

# CISCO-SLB-MIB SlbRealServerState enum values (outOfService 1 .. probeFailed 9).
SLB_REAL_STATE_VALUES = {s.value: i for i, s in enumerate(RealState, 1)}
# CISCO-HSRP-MIB HsrpState enum values.
HSRP_STATE_VALUES = {name: i + 1 for i, name in enumerate(HSRP_STATES)}


class MetricsBuilder:
    """Collects samples into one family per metric name; :meth:`families` returns them."""

    def __init__(self) -> None:
        self._families: dict[str, Metric] = {}

    def _family(self, m: MetricName) -> Metric:
        fam = self._families.get(m.name)
        if fam is None:
            cls = CounterMetricFamily if m.kind == "counter" else GaugeMetricFamily
            fam = cls(m.name, m.doc, labels=list(m.labels))
            self._families[m.name] = fam
        return fam

    def add(self, m: MetricName, value: float, **labels: Any) -> None:
        fam = self._family(m)
        if set(labels) != set(m.labels):
            raise ValueError(f"{m.name}: labels {sorted(labels)} != {sorted(m.labels)}")
        fam.add_metric([str(labels[k]) for k in m.labels], float(value))  # type: ignore[attr-defined]

    def counter(self, m: MetricName, value: float, **labels: Any) -> None:
        assert m.kind == "counter"
        self.add(m, value, **labels)

    def gauge(self, m: MetricName, value: float, **labels: Any) -> None:
        assert m.kind == "gauge"
        self.add(m, value, **labels)

    def custom(self, name: str, doc: str, value: float, kind: str = "gauge", **labels: Any) -> None:
        """A metric with no predefined name (prefix it ``mobileha_``)."""
        self.add(MetricName(name, doc, kind, tuple(labels)), value, **labels)

    def reply_codes(self, m: MetricName, by_code: Mapping[int, int]) -> None:
        """``{reply code: count}`` -> one sample per code with its MIB reason name."""
        self._family(m)
        for code in sorted(by_code):
            self.add(m, by_code[code], code=code, reason=reply_code_name(code))

    def bad_input(self, by_reason: Mapping[str, int]) -> None:
        self._family(BAD_INPUT)
        for reason in sorted(by_reason):
            self.add(BAD_INPUT, by_reason[reason], reason=reason)

    def redundancy(self, counters: Mapping[str, int]) -> None:
        """The 19 ``cmiHaRedun*`` counters; ``counters`` is keyed by ``REDUN_COUNTERS`` names
        (missing ones are exported as 0, so dashboards always find all of them)."""
        for name in REDUN_COUNTERS:
            self.add(
                MetricName(f"cmiHaRedun{name}", f"CISCO-MOBILE-IP-MIB cmiHaRedun{name}", "counter"),
                counters.get(name, 0),
            )

    def hsrp_group(
        self,
        *,
        group: int,
        vip: str,
        state: str,
        priority: int,
        hello_ms: int,
        hold_ms: int,
        preempt: bool = False,
        configured_hello_ms: int | None = None,
        configured_hold_ms: int | None = None,
        auth_failures: int = 0,
        state_changes: int = 0,
    ) -> None:
        """One HSRP group; ``state`` is a ``views.HSRP_STATES`` name, timers in ms."""
        labels = {"group": group, "vip": vip}
        self.add(HSRP_STATE, HSRP_STATE_VALUES.get(state, 0), **labels)
        self.add(HSRP_PRIORITY, priority, **labels)
        self.add(HSRP_PREEMPT, 1 if preempt else 0, **labels)
        conf_hello = hello_ms if configured_hello_ms is None else configured_hello_ms
        conf_hold = hold_ms if configured_hold_ms is None else configured_hold_ms
        self.add(HSRP_CONF_HELLO, conf_hello, **labels)
        self.add(HSRP_CONF_HOLD, conf_hold, **labels)
        self.add(HSRP_HELLO, hello_ms, **labels)
        self.add(HSRP_HOLD, hold_ms, **labels)
        self.add(HSRP_AUTH_FAILURES, auth_failures, **labels)
        self.add(HSRP_STATE_CHANGES, state_changes, **labels)

    def slb_real(
        self,
        *,
        farm: str,
        real: str,
        port: int,
        state: str,
        admin_weight: int,
        oper_weight: int,
        conns: int,
        maxconns: int,
        consecutive_fails: int,
        total_conns: int,
        total_fails: int,
    ) -> None:
        labels = {"farm": farm, "real": real, "port": port}
        self.add(SLB_REAL_STATE, SLB_REAL_STATE_VALUES.get(state, 0), **labels)
        self.add(SLB_REAL_ADMIN_WEIGHT, admin_weight, **labels)
        self.add(SLB_REAL_OPER_WEIGHT, oper_weight, **labels)
        self.add(SLB_REAL_CONNS, conns, **labels)
        self.add(SLB_REAL_MAXCONNS, maxconns, **labels)
        self.add(SLB_REAL_CONSEC_FAILS, consecutive_fails, **labels)
        self.add(SLB_REAL_TOTAL_CONNS, total_conns, **labels)
        self.add(SLB_REAL_TOTAL_FAILS, total_fails, **labels)

    def dataplane(
        self,
        view: Mapping[str, Any],
        tunnels: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
    ) -> None:
        """A node's ``DataplaneView``; ``tunnels`` (per-binding counters) when small."""
        self.add(DP_BACKEND, 1, backend=view["backend"])
        self.add(DP_TUNNELS, view["tunnels"], backend=view["backend"])
        totals = view["totals"]
        for d in ("tx", "rx"):
            self.add(DP_PACKETS, totals.get(f"{d}_pkts", 0), direction=d)
            self.add(DP_BYTES, totals.get(f"{d}_bytes", 0), direction=d)
        self._family(DP_DROPS)
        for reason, n in sorted(view["drops"].items()):
            self.add(DP_DROPS, n, reason=reason)
        for (hoa, coa), c in sorted((tunnels or {}).items()):
            for d in ("tx", "rx"):
                self.add(DP_TUNNEL_PACKETS, c.get(f"{d}_pkts", 0), home_address=hoa,
                         care_of=coa, direction=d)  # fmt: skip

    def families(self) -> list[Metric]:
        return list(self._families.values())


def labelled(parts: Iterable[tuple[Mapping[str, Any], Iterable[Metric]]]) -> list[Metric]:
    """Merge the families of several parts (e.g. one per HSRP group) into one family per
    name, adding each part's ``labels`` to every one of its samples (first part's order of
    names first). The labels go in front of the sample's own labels."""
    out: dict[str, Metric] = {}
    for labels, families in parts:
        extra = {k: str(v) for k, v in labels.items()}
        for fam in families:
            merged = out.get(fam.name)
            if merged is None:
                merged = Metric(fam.name, fam.documentation, fam.type, fam.unit)
                out[fam.name] = merged
            for s in fam.samples:
                merged.samples.append(s._replace(labels={**extra, **s.labels}))
    return list(out.values())


def dataplane_families(dp: Any, not_taken: Mapping[str, str]) -> list[Metric]:
    """The ``mobileha_dataplane_*`` families of a node's data plane ``dp``."""
    view = dataplane_view(summary(dp), not_taken)
    tunnels = dp.stats().tunnels if view["tunnels"] <= PER_TUNNEL_MAX else None
    m = MetricsBuilder()
    m.dataplane(view, tunnels)
    return m.families()


def families_from_stats(stats: Mapping[str, int], prefix: str = "mobileha_") -> Iterable[Metric]:
    """Fallback: every counter of a stats dict as ``<prefix><name>`` (names sanitised)."""
    out = []
    for name, value in sorted(stats.items()):
        clean = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
        fam = CounterMetricFamily(prefix + clean, f"counter {name}")
        fam.add_metric([], float(value))
        out.append(fam)
    return out


# ----------------------------------------------------------------------------- rendering
# The families of each role, rendered from the node's read-only state at scrape time.


def families_for(node: Any) -> list[Metric]:
    """The metric families of a running node, chosen by ``node.role``.

    An object that renders its own families (a test double, a role not known here)
    provides ``metrics() -> Iterable[Metric]`` and is collected as it is."""
    own = getattr(node, "metrics", None)
    if callable(own):
        return list(own())
    render = _ROLE_FAMILIES.get(getattr(node, "role", ""))
    return render(node) if render is not None else []


def home_agent_families(node: HomeAgentNode) -> list[Metric]:
    """Home agent families, DFP, HSRP and redundancy. With load sharing the home agent
    and redundancy families of every HA address are merged, labelled ``group`` and
    ``ha_address`` (HSRP and DFP run once per process and are not repeated)."""

    def group(a: Agent) -> list[Metric]:
        fams = _ha_families(a)
        if a.sync is not None:
            fams.extend(redundancy_families(a.sync))
        return fams

    agents = node.agents
    if len(agents) > 1:
        out = labelled(({"group": a.group, "ha_address": a.ha_addr}, group(a)) for a in agents)
    else:
        out = group(agents[0])
    if node.dfp_server is not None:
        out.extend(dfp_agent_families(node.dfp_server))
    if node.hsrp is not None:
        out.extend(hsrp_families(node.hsrp))
    if node.dataplane is not None:  # shared by the groups: once
        out.extend(dataplane_families(node.dataplane, node.dataplane_refused))
    if node.journal is not None:
        j = node.journal.view()
        m = MetricsBuilder()
        m.add(JOURNAL_ENTRIES, j["entries"])
        m.add(JOURNAL_WRITES, j["writes"])
        m.add(JOURNAL_ERRORS, j["errors"])
        m.add(JOURNAL_BUFFERED, j["buffered"])
        out.extend(m.families())
    return out


def _ha_families(agent: Agent) -> list[Metric]:
    """The home agent's own families (CISCO-MOBILE-IP-MIB and ``mobileha_ha_*``)."""
    core = agent.ha
    c = core.counters()
    m = MetricsBuilder()
    m.gauge(HA_BINDINGS, len(core.table))
    m.counter(HA_REQUESTS_RECEIVED, c["cmiHaRegRequestsReceived"])
    m.counter(HA_REQUESTS_DENIED, c["cmiHaRegRequestsDenied"])
    m.counter(HA_REQUESTS_DISCARDED, c["cmiHaRegRequestsDiscarded"])
    m.counter(HA_ENCAP_UNAVAILABLE, c["cmiHaEncapUnavailable"])
    m.counter(HA_INIT_RECEIVED, c["cmiHaInitRegRequestsReceived"])
    m.counter(HA_INIT_ACCEPTED, c["cmiHaInitRegRequestsAccepted"])
    m.counter(HA_INIT_DENIED, c["cmiHaInitRegRequestsDenied"])
    m.reply_codes(HA_REPLIES, core.by_code)
    m.bad_input(core.drops)
    for name in (
        "cmiHaReRegRequestsReceived",
        "cmiHaReRegRequestsAccepted",
        "cmiHaReRegRequestsDenied",
        "cmiHaDeRegRequestsReceived",
        "cmiHaDeRegRequestsAccepted",
        "cmiHaDeRegRequestsDenied",
    ):
        m.custom(name, f"CISCO-MOBILE-IP-MIB {name}", c[name], kind="counter")
    m.custom("mobileha_ha_expired_bindings", "Bindings expired", core.expired, kind="counter")
    m.custom(
        "mobileha_ha_duplicate_requests",
        "Duplicates of the accepted registration answered without extending it",
        core.duplicates,
        kind="counter",
    )
    if core.pool is not None:
        m.custom("mobileha_ha_pool_free", "Free dynamic home addresses", core.pool.free)
    m.custom("mobileha_ha_active", "1 when this HA answers requests", int(core.active))
    if core.sas.realms:
        return m.families() + subscriber_families(core.subs)
    return m.families()


def subscriber_families(subs: Any) -> list[Metric]:
    """MN-HA SAs from AAA (:class:`mobileha.core.subscribers.Subscribers`): the cache, its
    hits and misses, AAA's failures by reason and the latency of its answers."""
    c = subs.counters()
    m = MetricsBuilder()
    m.custom("mobileha_ha_sa_cache_size", "MN-HA SAs from AAA in the cache", c["sa_cache_size"])
    for name, doc in (
        ("sa_cache_hits", "Requests authenticated with a cached SA from AAA"),
        ("sa_cache_misses", "SA fetches from AAA started"),
        ("sa_cache_negative_hits", "Requests discarded because AAA rejected the NAI lately"),
        ("sa_cache_expired", "Cached SAs dropped after their TTL"),
        ("sa_cache_evicted", "Cached SAs dropped at the size bound"),
        ("sa_synced", "SAs received from the redundancy peer with a binding"),
        ("aaa_busy", "First registrations dropped at the in-flight bound"),
    ):
        m.custom(f"mobileha_ha_{name}", doc, c[name], kind="counter")
    for reason in ("rejects", "timeouts", "errors"):
        m.custom(
            "mobileha_ha_aaa_failures", "SA fetches that failed, by reason",
            c[f"aaa_{reason}"], kind="counter", reason=reason.rstrip("s"),
        )  # fmt: skip
    m.custom("mobileha_ha_aaa_in_flight", "SA fetches waiting for AAA", c["aaa_in_flight"])
    m.custom("mobileha_ha_sa_cache_negative", "NAIs AAA rejected lately", c["sa_cache_negative"])
    h = HistogramMetricFamily(
        "mobileha_ha_aaa_latency_seconds", "Time from an SA fetch to AAA's answer"
    )
    h.add_metric(
        [],
        [(_le(le), float(n)) for le, n in subs.latency_histogram()],
        sum_value=c["aaa_latency_sum_s"],
    )
    return [*m.families(), h]


def _le(x: float) -> str:
    return "+Inf" if x == float("inf") else repr(x)


def redundancy_families(peer: SyncPeer) -> list[Metric]:
    """Every sync counter as ``cmiHaRedun<name>`` (the 19 of the MIB and the
    diagnostics), the pending queue and readiness."""
    out: list[Metric] = []
    for name, value in peer.counters.as_dict().items():
        fam = CounterMetricFamily(f"cmiHaRedun{name}", f"HA redundancy {name}")
        fam.add_metric([], value)
        out.append(fam)
    g = GaugeMetricFamily("mobileha_sync_pending", "changes not yet acknowledged by the peer")
    g.add_metric([], peer.pending)
    out.append(g)
    g = GaugeMetricFamily("mobileha_sync_ready", "1 when no bulk download holds HSRP back")
    g.add_metric([], 1 if peer.ready else 0)
    out.append(g)
    return out


def dfp_agent_families(srv: DfpAgentServer) -> list[Metric]:
    g = GaugeMetricFamily("mobileha_dfp_agent_weight", "DFP weight last reported")
    g.add_metric([], float(srv.agent.weight or 0))
    c = CounterMetricFamily("mobileha_dfp_agent_reports", "Preference Information sent")
    c.add_metric([], float(srv.agent.reports))
    return [g, c]


def hsrp_families(hsrp: HsrpNode | HsrpIo) -> list[Metric]:
    """Per group: ``mobileha_hsrp_state`` / ``_priority`` labelled by interface and group,
    and the CISCO-HSRP-MIB ``cHsrpGrp*`` families with ``mobileha_hsrp_auth_failures`` and
    ``mobileha_hsrp_state_changes`` labelled by group and VIP (one family per name)."""
    labels = ["interface", "group"]
    state = GaugeMetricFamily("mobileha_hsrp_state", "HSRP state (v1 wire value)", labels=labels)
    prio = GaugeMetricFamily("mobileha_hsrp_priority", "HSRP priority in use", labels=labels)
    mib = MetricsBuilder()
    interface = hsrp.cfg.interface
    for (_v, gn), g in sorted(hsrp.core.groups.items()):
        lab = [interface, str(gn)]
        state.add_metric(lab, int(g.state))
        prio.add_metric(lab, g.priority)
        mib.hsrp_group(
            group=gn,
            vip=g.vip or "",
            state=g.state.label,
            priority=g.priority,
            hello_ms=g.hello_ms,
            hold_ms=g.hold_ms,
            preempt=g.preempt,
            configured_hello_ms=g.cfg.hello_ms,
            configured_hold_ms=g.cfg.hold_ms,
            auth_failures=g.auth_failures,
            state_changes=g.state_changes,
        )
    return [state, prio, *mib.families()]


def foreign_agent_families(node: ForeignAgentNode) -> list[Metric]:
    s = node.core.stats
    m = MetricsBuilder()
    m.gauge(FA_VISITORS, len(node.core.visitors))
    m.counter(FA_INIT_RECEIVED, s.requests)
    m.counter(FA_REQUESTS_RELAYED, s.relayed)
    codes: dict[int, int] = dict(s.fa_codes)
    for c, n in s.ha_codes.items():
        codes[c] = codes.get(c, 0) + n
    m.reply_codes(FA_REPLIES, codes)
    m.bad_input(s.drops)
    rs = node.core.revocations.stats
    for k, n in (("sent", rs.sent), ("retransmitted", rs.retransmitted),
                 ("acknowledged", rs.acknowledged), ("received", rs.received),
                 ("bad_auth", rs.bad_auth)):  # fmt: skip
        m.custom(f"mobileha_fa_revocations_{k}", f"RFC 3543 revocations {k}", n, kind="counter")
    adv = node.core.advertiser
    if adv is not None:
        m.custom(
            "mobileha_fa_advertisements",
            "Agent advertisements sent",
            adv.stats.advertisements,
            kind="counter",
        )
    out = m.families()
    if node.dataplane is not None:
        out.extend(dataplane_families(node.dataplane, node.dataplane_refused))
    return out


def mobile_node_families(node: MobileNodeNode) -> list[Metric]:
    m = MetricsBuilder()
    c = node.fleet.stats()
    m.custom("mobileha_mn_registered", "Mobile nodes with a valid binding", c["registered"])
    m.custom("mobileha_mn_count", "Mobile nodes driven by this process", c["mobile_nodes"])
    for k in ("requests", "retransmissions", "accepted", "denied", "renewals"):
        m.custom(f"mobileha_mn_{k}", f"Mobile node registration {k}", c[k], kind="counter")
    return m.families()


def slb_families(node: SlbNode) -> list[Metric]:
    """CISCO-SLB-MIB-named families, bad input by reason, DFP."""
    m = MetricsBuilder()
    farm = node.farm
    name = node.settings.farm_name
    for r in farm.reals:
        m.slb_real(
            farm=name,
            real=r.address,
            port=r.port,
            state=r.state.value,
            admin_weight=r.weight,
            oper_weight=r.oper_weight,
            conns=r.conns,
            maxconns=r.maxconns,
            consecutive_fails=r.failures,
            total_conns=r.total_conns,
            total_fails=r.total_failures,
        )
    m.gauge(SLB_VIRTUAL_CONNS, len(farm.sessions), vserver=name)
    m.counter(SLB_VIRTUAL_TOTAL, farm.n_new, vserver=name)
    for reason, n in sorted(node.bad.totals.items()):
        m.counter(BAD_INPUT, n, reason=reason)
    m.custom("mobileha_slb_forwarded", "Requests forwarded to reals", node.n_forwarded, "counter")
    m.custom(
        "mobileha_slb_reassigned",
        "Sessions moved after reassign retransmissions",
        farm.counters["reassignments"],
        "counter",
    )
    if node.dfp is not None:
        for rec in node.dfp.agents.values():
            m.custom(
                "mobileha_dfp_agent_connected",
                "DFP agent connection up (1) or not (0)",
                1.0 if rec.state.value == "connected" else 0.0,
                agent=rec.agent,
            )
            m.custom(
                "mobileha_dfp_reports",
                "Preference Information messages received",
                rec.reports,
                "counter",
                agent=rec.agent,
            )
    return m.families()


_ROLE_FAMILIES: dict[str, Callable[[Any], list[Metric]]] = {
    "home-agent": home_agent_families,
    "foreign-agent": foreign_agent_families,
    "mobile-node": mobile_node_families,
    "slb": slb_families,
    "hsrp": hsrp_families,
}


__all__ = [
    "BAD_INPUT",
    "FA_INIT_RECEIVED",
    "FA_REPLIES",
    "FA_REQUESTS_RELAYED",
    "FA_VISITORS",
    "HA_BINDINGS",
    "HA_ENCAP_UNAVAILABLE",
    "HA_INIT_ACCEPTED",
    "HA_INIT_DENIED",
    "HA_INIT_RECEIVED",
    "HA_NAI_CHECK_FAILURES",
    "HA_REPLIES",
    "HA_REQUESTS_DENIED",
    "HA_REQUESTS_DISCARDED",
    "HA_REQUESTS_RECEIVED",
    "HSRP_STATE_VALUES",
    "SLB_REAL_STATE_VALUES",
    "SLB_VIRTUAL_CONNS",
    "SLB_VIRTUAL_TOTAL",
    "MetricName",
    "MetricsBuilder",
    "dataplane_families",
    "dfp_agent_families",
    "families_for",
    "families_from_stats",
    "foreign_agent_families",
    "home_agent_families",
    "hsrp_families",
    "labelled",
    "mobile_node_families",
    "redundancy_families",
    "slb_families",
]
