"""MN-HA security associations from AAA: the fetch, the cache, the requests that wait.

A registration whose NAI has no SA of its own but matches a realm entry with source
``aaa`` (:class:`~mobileha.core.security.RealmEntry`) makes the home agent ask AAA for the
MN's SA. Sans-IO, like the rest of the core:

* the home agent returns a :class:`FetchSa` action (one per NAI in flight) and parks the
  request here; the node runs the RADIUS exchange (``mobileha.aaa.radius``) and answers
  with the :class:`SaFetched` or :class:`SaFailed` event, which the home agent hands to
  :meth:`Subscribers.fetched` / :meth:`Subscribers.failed` and then runs the parked
  requests through its checks again (the SA is in the cache by then);
* bounded: at most ``max_in_flight`` NAIs are being fetched (a first registration beyond
  that is dropped, counted ``aaa-busy``; the MN retransmits); at most
  ``max_pending_per_nai`` requests wait per NAI (a retransmission of a waiting request,
  the same bytes, is coalesced and not parked twice; beyond the bound the oldest goes);
* a fetch that gets no answer by ``timeout_s`` (the core's clock) fails as a timeout,
  whatever the node does.

What a failure answers (RFC 5944 §3.8.2.1): an Access-Reject or no answer leaves the home
agent without a mobility security association with the MN, and a home agent that has none
silently discards the request (P§1.8 step 1); it cannot send a 131 that the MN could
authenticate, and the MN did not fail authentication. The discard is counted by reason
(``aaa-reject``, ``aaa-timeout``, ``aaa-error``) and the MN's retransmissions, with their
back-off, are what tries again. A reject is cached for ``negative_ttl_s`` (the NAI's
requests are then discarded without asking AAA, counted ``aaa-negative``); a timeout is
not (AAA may be back at the next retransmission). A key from AAA that does not verify is an
SA that fails: 131, authenticated with it (RFC 5944 §3.8.2.1 b).

The cache: an SA from AAA stays ``ttl_s`` after it was fetched, longer while the MN has a
binding (its re-registrations never wait for AAA), and at most ``max_entries`` are kept
(the oldest entries without a binding go first). With ``resync_s`` (Cisco's
``ip mobile home-agent resync-sa``) an MN that fails authentication with an SA fetched more
than ``resync_s`` ago makes the home agent fetch it again before answering: a key changed in
AAA reaches a bound MN without waiting for the cache to expire.

Counters (:meth:`Subscribers.counters`, rendered by ``mgmt``): cache size, hits (requests
authenticated with a cached SA), misses (fetches started), answers, rejects, timeouts,
errors, late answers, negative hits, coalesced retransmissions, busy drops, expiries,
evictions, resyncs, SAs received from the redundancy peer, and the latency of AAA answers
(sum, count, maximum and a histogram).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count as itercount
from typing import Final

from mobileha.core.actions import Addr
from mobileha.core.security import (
    SOURCE_AAA,
    MobilitySA,
    RealmEntry,
    SecurityAssociations,
    SecurityConfigError,
)

# Latency buckets of AAA answers, seconds (Prometheus histogram ``le`` bounds).
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Why a fetch failed (SaFailed.reason); each is also the drop reason of its requests.
REJECT: Final = "reject"
TIMEOUT: Final = "timeout"
ERROR: Final = "error"
FAIL_REASONS: Final = (REJECT, TIMEOUT, ERROR)


# --- actions out, events in ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchSa:
    """Action: ask AAA for the MN-HA SA of ``nai`` (``spi``: the SPI of its request), then
    hand :class:`SaFetched` or :class:`SaFailed` (same ``ha_addr`` and ``nai``) to the
    coordinator's ``handle_event``."""

    ha_addr: str
    nai: str
    spi: int


@dataclass(frozen=True, slots=True)
class SaFetched:
    """Event: AAA answered with the MN's SA (``spi``: AAA's, or the requested one when AAA
    named none); ``home_address``: the home address AAA assigned (Framed-IP-Address)."""

    ha_addr: str
    nai: str
    spi: int
    key: bytes = field(repr=False)
    home_address: str | None = None


@dataclass(frozen=True, slots=True)
class SaFailed:
    """Event: AAA refused the NAI (``reject``), did not answer (``timeout``) or answered
    something unusable (``error``: no key, a key that does not decrypt...)."""

    ha_addr: str
    nai: str
    reason: str = TIMEOUT


@dataclass(frozen=True, slots=True)
class ReloadSubscribers:
    """Event: replace the SA sources (configured SAs, subscriber files, realm entries) of the
    home agent of ``ha_addr`` by ``sas``; SAs fetched from AAA are kept where the new
    sources still send their NAI to AAA, bindings are kept (see
    :meth:`Subscribers.reload`)."""

    ha_addr: str
    sas: SecurityAssociations


@dataclass(frozen=True, slots=True)
class SubscriberSettings:
    """AAA fetch and cache limits (``[aaa]`` of a home agent)."""

    ttl_s: float = 3600.0
    max_entries: int = 1_000_000
    negative_ttl_s: float = 30.0
    resync_s: float = 0.0  # 0: never fetch again on an authentication failure
    max_in_flight: int = 256
    max_pending_per_nai: int = 4
    timeout_s: float = 13.0  # a fetch without an answer by then fails (core clock)


# --- state ----------------------------------------------------------------------------

# (request without a relay tag, its origin, our address, when it arrived)
Parked = tuple[bytes, Addr, str, float]


class _Fetch:
    __slots__ = ("deadline", "nai", "parked", "spi", "started")

    def __init__(self, nai: str, spi: int, started: float, deadline: float) -> None:
        self.nai = nai
        self.spi = spi
        self.started = started
        self.deadline = deadline
        self.parked: list[Parked] = []


@dataclass(slots=True)
class SubscriberCounters:
    hits: int = 0  # requests authenticated with an SA from the cache
    misses: int = 0  # fetches started
    answers: int = 0  # SaFetched applied to a fetch in flight
    late_answers: int = 0  # SaFetched after the fetch had timed out (cached anyway)
    rejects: int = 0
    timeouts: int = 0
    errors: int = 0
    negative_hits: int = 0  # requests discarded because of a cached reject
    coalesced: int = 0  # retransmissions of a waiting request, not parked twice
    parked: int = 0  # requests parked while their fetch was in flight
    pending_dropped: int = 0  # parked requests pushed out by newer ones of the same NAI
    busy: int = 0  # first registrations dropped at the in-flight limit
    expired: int = 0  # cached SAs dropped after ttl_s without a binding
    evicted: int = 0  # cached SAs dropped at the size bound
    resyncs: int = 0  # fetched again after an authentication failure (resync_s)
    synced: int = 0  # SAs received from the redundancy peer (sync record REC_SA)
    reload_dropped: int = 0  # cached SAs dropped by a reload: their NAI is not sent to AAA
    latency_sum: float = 0.0
    latency_count: int = 0
    latency_max: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))


class Subscribers:
    """The AAA side of one home agent's SAs: fetches in flight, the cache of fetched SAs
    (inside ``sas``, so lookups stay one dict lookup) and the negative cache."""

    def __init__(
        self,
        sas: SecurityAssociations,
        settings: SubscriberSettings | None = None,
        *,
        bound: Callable[[str], bool] = lambda _nai: False,
    ) -> None:
        """``bound(nai)``: does the MN have a binding (its SA is then kept)."""
        self.sas = sas
        self.settings = s = settings or SubscriberSettings()
        self._bound = bound
        self.c = SubscriberCounters()
        self._fetches: dict[str, _Fetch] = {}
        self._fetch_q: list[tuple[float, int, str]] = []
        # the cache: NAI -> expiry, in insertion order (the size bound evicts the oldest)
        self._expires: dict[str, float] = {}
        self._expire_q: list[tuple[float, int, str]] = []
        self._neg: dict[str, float] = {}
        self._neg_q: deque[tuple[float, str]] = deque()
        self._tick = itercount()
        self._ttl = s.ttl_s

    # ------------------------------------------------------------------ views

    @property
    def size(self) -> int:
        """SAs from AAA in the cache."""
        return len(self._expires)

    @property
    def in_flight(self) -> int:
        return len(self._fetches)

    @property
    def waiting(self) -> int:
        """Requests parked until their SA arrives."""
        return sum(len(f.parked) for f in self._fetches.values())

    @property
    def negative(self) -> int:
        return len(self._neg)

    def counters(self) -> dict[str, float]:
        c = self.c
        return {
            "sa_cache_size": self.size,
            "sa_cache_hits": c.hits,
            "sa_cache_misses": c.misses,
            "sa_cache_negative": self.negative,
            "sa_cache_negative_hits": c.negative_hits,
            "sa_cache_expired": c.expired,
            "sa_cache_evicted": c.evicted,
            "sa_synced": c.synced,
            "sa_resyncs": c.resyncs,
            "sa_reload_dropped": c.reload_dropped,
            "aaa_in_flight": self.in_flight,
            "aaa_waiting": self.waiting,
            "aaa_answers": c.answers,
            "aaa_late_answers": c.late_answers,
            "aaa_rejects": c.rejects,
            "aaa_timeouts": c.timeouts,
            "aaa_errors": c.errors,
            "aaa_failures": c.rejects + c.timeouts + c.errors,
            "aaa_busy": c.busy,
            "aaa_coalesced": c.coalesced,
            "aaa_parked": c.parked,
            "aaa_pending_dropped": c.pending_dropped,
            "aaa_latency_sum_s": c.latency_sum,
            "aaa_latency_count": c.latency_count,
            "aaa_latency_max_s": c.latency_max,
        }

    def latency_histogram(self) -> list[tuple[float, int]]:
        """Cumulative (upper bound, count) pairs, ending with +inf."""
        out: list[tuple[float, int]] = []
        acc = 0
        for le, n in zip(LATENCY_BUCKETS, self.c.latency_buckets, strict=True):
            acc += n
            out.append((le, acc))
        out.append((float("inf"), self.c.latency_count))
        return out

    def entries(self) -> Iterator[tuple[MobilitySA, float]]:
        """The cached SAs with their expiry (for views)."""
        known = self.sas.mn_known
        for nai, exp in self._expires.items():
            sa = known(nai)
            if sa is not None:
                yield sa, exp

    # ------------------------------------------------------------------ fetching

    def is_negative(self, nai: str, now: float) -> bool:
        t = self._neg.get(nai)
        return t is not None and t > now

    def begin(self, nai: str, spi: int, parked: Parked, now: float) -> tuple[bool, str | None]:
        """A request of ``nai`` needs its SA from AAA. Returns (new fetch, drop reason):
        (True, None) -> emit :class:`FetchSa`; (False, None) -> parked behind the fetch in
        flight; (False, reason) -> discard the request."""
        neg = self._neg.get(nai)
        if neg is not None and neg > now:
            self.c.negative_hits += 1
            return False, "aaa-negative"
        f = self._fetches.get(nai)
        if f is not None:
            if any(p[0] == parked[0] for p in f.parked):
                self.c.coalesced += 1
                return False, None
            if len(f.parked) >= self.settings.max_pending_per_nai:
                del f.parked[0]
                self.c.pending_dropped += 1
            f.parked.append(parked)
            self.c.parked += 1
            return False, None
        if len(self._fetches) >= self.settings.max_in_flight:
            self.c.busy += 1
            return False, "aaa-busy"
        f = _Fetch(nai, spi, now, now + self.settings.timeout_s)
        f.parked.append(parked)
        self.c.parked += 1
        self._fetches[nai] = f
        heapq.heappush(self._fetch_q, (f.deadline, next(self._tick), nai))
        self.c.misses += 1
        return True, None

    def fetched(
        self, ev: SaFetched, entry: RealmEntry | None, now: float
    ) -> tuple[MobilitySA | None, list[Parked]]:
        """AAA's answer: the SA (built with ``entry``'s algorithm and replay settings) goes
        into the cache; returns it and the requests to run again. (None, requests) when the
        NAI no longer belongs to an ``aaa`` entry or has a configured SA meanwhile."""
        f = self._fetches.pop(ev.nai, None)
        parked: list[Parked] = []
        if f is None:
            self.c.late_answers += 1
        else:
            self.c.answers += 1
            parked = f.parked
            self._latency(now - f.started)
        if entry is None or entry.source != SOURCE_AAA:
            return None, parked
        sa = MobilitySA(
            ev.spi,
            ev.key,
            entry.algorithm,
            entry.replay,
            entry.tolerance,
            nai=ev.nai,
            home_address=ev.home_address,
            max_lifetime=entry.max_lifetime,
            source=SOURCE_AAA,
            fetched=now,
        )
        if not self.put(sa, now):
            return None, parked
        self._neg.pop(ev.nai, None)
        return sa, parked

    def failed(self, ev: SaFailed, now: float) -> list[Parked]:
        """AAA refused or did not answer: the requests to discard (a reject is cached for
        ``negative_ttl_s``)."""
        f = self._fetches.pop(ev.nai, None)
        if ev.reason == REJECT:
            self._negative(ev.nai, now)
        if f is None:  # the core gave up on it already (counted then)
            self.c.late_answers += 1
            return []
        if ev.reason == REJECT:
            self.c.rejects += 1
        elif ev.reason == TIMEOUT:
            self.c.timeouts += 1
        else:
            self.c.errors += 1
        if ev.reason != TIMEOUT:
            self._latency(now - f.started)
        return f.parked

    def resync(self, sa: MobilitySA, now: float) -> bool:
        """An MN failed authentication with ``sa`` from AAA: fetch it again when it is older
        than ``resync_s`` (True: the caller starts the fetch, the old SA is gone)."""
        r = self.settings.resync_s
        if not r or sa.source != SOURCE_AAA or now - sa.fetched < r or sa.nai is None:
            return False
        if sa.nai in self._fetches:
            return False
        self.drop(sa.nai)
        self.c.resyncs += 1
        return True

    def _latency(self, dt: float) -> None:
        c = self.c
        c.latency_sum += dt
        c.latency_count += 1
        if dt > c.latency_max:
            c.latency_max = dt
        for i, le in enumerate(LATENCY_BUCKETS):
            if dt <= le:
                c.latency_buckets[i] += 1
                break

    def _negative(self, nai: str, now: float) -> None:
        ttl = self.settings.negative_ttl_s
        if ttl <= 0:
            return
        until = now + ttl
        self._neg[nai] = until
        self._neg_q.append((until, nai))

    # ------------------------------------------------------------------ the cache

    def put(self, sa: MobilitySA, now: float) -> bool:
        """Cache an SA from AAA (or from the redundancy peer); False when the NAI has a
        configured SA (the configuration wins)."""
        nai = sa.nai
        assert nai is not None
        sa.source = SOURCE_AAA
        sa.fetched = now
        known = self.sas.mn_known(nai)
        if known is not None and known.source != SOURCE_AAA:
            return False
        exp = self._expires
        if exp.pop(nai, None) is None and len(exp) >= self.settings.max_entries > 0:
            self._evict()
        try:
            self.sas.put_cached(sa)
        except SecurityConfigError:  # pragma: no cover - checked above
            return False
        deadline = now + self._ttl
        exp[nai] = deadline
        heapq.heappush(self._expire_q, (deadline, next(self._tick), nai))
        return True

    def drop(self, nai: str) -> None:
        if self._expires.pop(nai, None) is not None:
            self.sas.drop_cached(nai)

    def _evict(self) -> None:
        """Make room: the oldest entry whose MN has no binding (those with one move to the
        back, at most 64 looked at); the oldest entry when all of those are bound."""
        exp = self._expires
        bound = self._bound
        for _ in range(min(64, len(exp))):
            nai = next(iter(exp))
            if not bound(nai):
                break
            exp[nai] = exp.pop(nai)  # to the back
        else:
            nai = next(iter(exp))
        self.drop(nai)
        self.c.evicted += 1

    def install_synced(self, sa: MobilitySA, now: float) -> None:
        """An SA that came with a binding from the redundancy peer (REC_SA)."""
        if self.put(sa, now):
            self.c.synced += 1

    def reload(self, sas: SecurityAssociations) -> None:
        """New SA sources: the cached SAs of NAIs that the new sources still send to AAA (no
        exact entry, a realm entry with source ``aaa``) move into ``sas``; the others are
        forgotten (counted). Fetches in flight go on (their answer is checked against the
        new sources)."""
        old = self.sas
        self.sas = sas
        for nai in list(self._expires):
            sa = old.mn_known(nai)
            e = sas.realm_of(nai)
            if (
                sa is not None
                and sa.source == SOURCE_AAA
                and e is not None
                and e.source == SOURCE_AAA
                and sas.mn_known(nai) is None
            ):
                sas.put_cached(sa)
            else:
                del self._expires[nai]
                self.c.reload_dropped += 1
        self._neg.clear()
        self._neg_q.clear()

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        best: float | None = None
        for q in (self._fetch_q, self._expire_q):
            if q and (best is None or q[0][0] < best):
                best = q[0][0]
        if self._neg_q and (best is None or self._neg_q[0][0] < best):
            best = self._neg_q[0][0]
        return best

    def handle_timer(self, now: float) -> list[tuple[str, list[Parked]]]:
        """Fetches past their deadline fail (returned: NAI and its parked requests, to
        discard as timeouts); cached SAs past their TTL go unless their MN is bound;
        negative entries lapse."""
        timed_out: list[tuple[str, list[Parked]]] = []
        q = self._fetch_q
        while q and q[0][0] <= now:
            deadline, _, nai = heapq.heappop(q)
            f = self._fetches.get(nai)
            if f is not None and f.deadline == deadline:
                del self._fetches[nai]
                self.c.timeouts += 1
                timed_out.append((nai, f.parked))
        eq = self._expire_q
        exp = self._expires
        while eq and eq[0][0] <= now:
            deadline, _, nai = heapq.heappop(eq)
            if exp.get(nai) != deadline:
                continue
            if self._bound(nai):
                exp[nai] = later = now + self._ttl
                heapq.heappush(eq, (later, next(self._tick), nai))
            else:
                self.drop(nai)
                self.c.expired += 1
        nq = self._neg_q
        neg = self._neg
        while nq and nq[0][0] <= now:
            until, nai = nq.popleft()
            if neg.get(nai) == until:
                del neg[nai]
        return timed_out


__all__ = [
    "ERROR",
    "FAIL_REASONS",
    "LATENCY_BUCKETS",
    "REJECT",
    "TIMEOUT",
    "FetchSa",
    "Parked",
    "ReloadSubscribers",
    "SaFailed",
    "SaFetched",
    "SubscriberCounters",
    "SubscriberSettings",
    "Subscribers",
]
