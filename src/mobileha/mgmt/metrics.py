"""Prometheus metric families named after the Cisco MIBs, built by the nodes' ``metrics()``.

A node's ``metrics()`` returns ``prometheus_client`` families; the management API collects
them at scrape time (no registry of live objects, nothing to update on the hot path). Use a
:class:`MetricsBuilder`::

    def metrics(self):
        m = MetricsBuilder()
        m.gauge(HA_BINDINGS, len(self.table))
        m.counter(HA_REQUESTS_RECEIVED, self.stats.received)
        m.reply_codes(HA_REPLIES, self.stats.by_code)           # {code: count}
        m.redundancy(self.sync.counters)                          # cmiHaRedun*
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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mobileha.mgmt.views import HSRP_STATES, REDUN_COUNTERS, dataplane_view, reply_code_name


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

# CISCO-SLB-MIB SlbRealServerState enum values.
SLB_REAL_STATE_VALUES = {
    "outOfService": 1,
    "inService": 2,
    "failed": 3,
    "readyToTest": 4,
    "testing": 5,
    "maxConnsThrottle": 6,
    "maxClientsThrottle": 7,
    "dfpThrottle": 8,
    "probeFailed": 9,
}
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
    from mobileha.dataplane.choice import summary

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
    "families_from_stats",
    "labelled",
]
