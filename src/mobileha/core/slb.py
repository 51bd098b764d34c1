"""HA-SLB server farm and NAI sessions, sans-IO (P§6.1-6.4, P§7.3).

The adapter hands each datagram that reached the virtual server to
:meth:`ServerFarm.receive_datagram` (with the NAI and Identification when its reader already
found them at their fixed offsets, :func:`mobileha.wire.mip.leading_nai`); the farm keys a
session on the NAI, or on ``(home address, FA address)`` when there is none (read with
:func:`mobileha.wire.mip.parse_request`), and answers with the real to forward to (or none,
with the reason) while keeping all session, failure and revival state. It does not validate
the request further: the real HA checks the rest. The SLB never sees replies (P§6.4): a
repeated request for a live session means the FA got no answer. :meth:`handle_timer` runs
the due timers and :meth:`get_timer` says when the next one is due.

Timing: one timer queue for every session expiry and every real's retry timer; no
per-session timers. The queue has two parts: a FIFO of new sessions in creation order (their
first deadline is ``created + session_s``; with a monotonic ``now`` that order is deadline
order, so the common case costs O(1) with no comparisons) and a heap for the rest (retry
timers, sessions whose expiry moved). Entries are checked lazily (a session whose expiry
moved is re-pushed on the heap when its old entry surfaces), so the queue holds about one
entry per live session.

Real-server states use the CISCO-SLB-MIB ``SlbRealServerState`` names (P§6.1). The state
table is :data:`TRANSITIONS`; every change goes through :meth:`ServerFarm._set_state`, which
checks it.
"""

from __future__ import annotations

import heapq
import itertools
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol

from mobileha.wire import DecodeError, ip_str_cached
from mobileha.wire.mip import IDENT_AT, parse_request

SLB_DEFAULT_WEIGHT = 8
SLB_DEFAULT_REASSIGN = 3
SLB_DEFAULT_FAIL_CONNS = 8
SLB_DEFAULT_FAIL_CLIENTS = 8
SLB_DEFAULT_RETRY_S = 60.0
SLB_DEFAULT_FAIL_WINDOW_S = 10.0
MAX_FAILED_CLIENTS = 4096  # per real; older entries are pruned beyond it
HASLB_DEFAULT_SESSION_S = 10.0
MAXCONNS_UNLIMITED = 0xFFFFFFFF
REQUEST_EXPIRY_BUDGET = 8  # heap entries handled inside one receive_datagram() at most

SessionKey = str | tuple[str, str]
Addr = tuple[str, int]
_IDENT: Final = struct.Struct("!Q")
_ZERO: Final = b"\x00\x00\x00\x00"


class RealState(StrEnum):
    """CISCO-SLB-MIB SlbRealServerState."""

    OUT_OF_SERVICE = "outOfService"
    IN_SERVICE = "inService"
    FAILED = "failed"
    READY_TO_TEST = "readyToTest"
    TESTING = "testing"
    MAX_CONNS_THROTTLE = "maxConnsThrottle"
    MAX_CLIENTS_THROTTLE = "maxClientsThrottle"
    DFP_THROTTLE = "dfpThrottle"
    PROBE_FAILED = "probeFailed"


class RealEvent(StrEnum):
    """Events that move a real between states."""

    INSERVICE = "inservice"  # admin: inservice
    OUTOFSERVICE = "outofservice"  # admin: no inservice
    FAIL = "fail"  # failure threshold reached (faildetect numconns / numclients)
    RETRY = "retry"  # retry timer expired
    TEST_PICK = "test-pick"  # a new session was given to a readyToTest real
    TEST_OK = "test-ok"  # the test session ended without being reassigned
    TEST_FAIL = "test-fail"  # the test session was reassigned away
    DFP_ZERO = "dfp-zero"  # DFP reported weight 0
    DFP_UP = "dfp-up"  # DFP reported weight > 0
    DFP_LOST = "dfp-lost"  # the DFP agent was lost: static weight again
    MAXCONNS = "maxconns"  # reached maxconns
    BELOW_MAXCONNS = "below-maxconns"  # dropped below maxconns


S = RealState
E = RealEvent

# a state change's reason in words, for the log (FAIL names the rule that fired instead)
EVENT_REASONS: Final = {
    E.INSERVICE: "configured inservice",
    E.OUTOFSERVICE: "configured no inservice",
    E.FAIL: "failure threshold reached",
    E.RETRY: "retry timer expired: the next session tests it",
    E.TEST_PICK: "a new session tests it",
    E.TEST_OK: "the test session ended answered",
    E.TEST_FAIL: "the test session was reassigned",
    E.DFP_ZERO: "DFP reported weight 0",
    E.DFP_UP: "DFP reported a weight above 0",
    E.DFP_LOST: "DFP agent lost: static weight",
    E.MAXCONNS: "maxconns reached",
    E.BELOW_MAXCONNS: "below maxconns",
}

# Explicit state table: (state, event) -> new state. A pair that is not listed leaves the
# state unchanged (the event is irrelevant there, e.g. RETRY while inService).
TRANSITIONS: dict[tuple[RealState, RealEvent], RealState] = {}
for _s in RealState:
    if _s is not S.OUT_OF_SERVICE:
        TRANSITIONS[(_s, E.OUTOFSERVICE)] = S.OUT_OF_SERVICE
TRANSITIONS.update(
    {
        (S.OUT_OF_SERVICE, E.INSERVICE): S.IN_SERVICE,
        # failure detection (P§6.3)
        (S.IN_SERVICE, E.FAIL): S.FAILED,
        (S.MAX_CONNS_THROTTLE, E.FAIL): S.FAILED,
        (S.DFP_THROTTLE, E.FAIL): S.FAILED,
        (S.READY_TO_TEST, E.FAIL): S.FAILED,
        (S.TESTING, E.FAIL): S.FAILED,
        # auto-unfail (P§6.3, P§6.4 item 5)
        (S.FAILED, E.RETRY): S.READY_TO_TEST,
        (S.READY_TO_TEST, E.TEST_PICK): S.TESTING,
        (S.TESTING, E.TEST_OK): S.IN_SERVICE,
        (S.TESTING, E.TEST_FAIL): S.FAILED,
        # DFP (P§6.4 item 5, P§6.5): weight 0 throttles; weight > 0 revives at once
        (S.IN_SERVICE, E.DFP_ZERO): S.DFP_THROTTLE,
        (S.MAX_CONNS_THROTTLE, E.DFP_ZERO): S.DFP_THROTTLE,
        (S.FAILED, E.DFP_ZERO): S.DFP_THROTTLE,  # [P] a report proves the real is alive
        (S.READY_TO_TEST, E.DFP_ZERO): S.DFP_THROTTLE,
        (S.TESTING, E.DFP_ZERO): S.DFP_THROTTLE,
        (S.DFP_THROTTLE, E.DFP_UP): S.IN_SERVICE,
        (S.FAILED, E.DFP_UP): S.IN_SERVICE,
        (S.READY_TO_TEST, E.DFP_UP): S.IN_SERVICE,
        (S.TESTING, E.DFP_UP): S.IN_SERVICE,
        (S.DFP_THROTTLE, E.DFP_LOST): S.IN_SERVICE,  # static weight again
        # maxconns
        (S.IN_SERVICE, E.MAXCONNS): S.MAX_CONNS_THROTTLE,
        (S.MAX_CONNS_THROTTLE, E.BELOW_MAXCONNS): S.IN_SERVICE,
    }
)

PICKABLE = frozenset({S.IN_SERVICE, S.READY_TO_TEST})
# plain globals for the hot paths (on Python 3.11 an Enum member looked up on its class costs
# about 0.1 us, a module global about 0.01 us)
_READY_TO_TEST = S.READY_TO_TEST
_MAX_CONNS_THROTTLE = S.MAX_CONNS_THROTTLE
_FAILED = S.FAILED


@dataclass(eq=False, slots=True)
class Real:
    """One real server (a real home agent, usually the HSRP virtual address of a pair)."""

    address: str
    port: int = 434
    weight: int = SLB_DEFAULT_WEIGHT  # admin (static) weight
    maxconns: int = MAXCONNS_UNLIMITED
    faildetect_numconns: int = SLB_DEFAULT_FAIL_CONNS
    faildetect_numclients: int = SLB_DEFAULT_FAIL_CLIENTS
    retry_s: float = SLB_DEFAULT_RETRY_S
    state: RealState = S.IN_SERVICE
    dfp_weight: int | None = None  # set while a DFP agent reports for this real
    # its DFP agent was lost and has not reported since: the first session it leaves
    # unanswered fails it (a real that stops answering and reporting is taken as dead)
    dfp_lost: bool = False
    conns: int = 0  # live sessions
    total_conns: int = 0  # sessions ever assigned
    failures: int = 0  # consecutive failures (reset by a clean session)
    total_failures: int = 0
    failed_clients: dict[str, float] = field(default_factory=dict)  # client -> counted at
    alive_at: float | None = None  # last request of a session it answered (clean end)
    dfp_lost_at: float | None = None  # since then (life seen before it does not count)
    dfp_seen_at: float | None = None  # when its DFP agent last reported
    retry_at: float | None = None
    test_session: Session | None = None
    removed: bool = False
    transitions: int = 0

    @property
    def oper_weight(self) -> int:
        """Operational weight: the DFP weight while DFP is active, else the admin weight."""
        return self.weight if self.dfp_weight is None else self.dfp_weight

    def eligible(self) -> bool:
        return self.state in PICKABLE and self.oper_weight > 0 and self.conns < self.maxconns


@dataclass(eq=False, slots=True)
class Session:
    key: SessionKey
    real: Real
    client: str
    ident: int
    created: float
    expires: float
    requests: int = 1
    client_port: int = 0
    retrans: int = 0  # repeated requests since the last (re)assignment
    retrans_total: int = 0
    new_ids: int = 0  # repeats that carried a new Identification [P]
    reassigned: int = 0
    test: bool = False


class Predictor(Protocol):
    """Chooses the next real for a new session among ``reals`` (in configuration order)."""

    name: str

    def pick(self, reals: list[Real], exclude: Real | None = None) -> Real | None: ...

    def reset(self, membership: bool = True) -> None:
        """Reals were added/removed (``membership``) or only weights changed."""
        ...


class IosWrr:
    """IOS SLB weighted round robin (P§6.2): ``n`` consecutive new sessions per real.

    Weights 3, 1, 2 give A A A B C C. Ineligible reals are skipped. [P] (the guide is
    silent): a membership change restarts the current block; a weight change only caps the
    rest of the current block at the new weight, so that frequent DFP reports cannot keep
    handing the real under the cursor a fresh block.
    """

    name = "ios-wrr"

    def __init__(self) -> None:
        self.i = 0
        self.left: int | None = None
        self._cap = False

    def reset(self, membership: bool = True) -> None:
        if membership:
            self.left = None
        elif self.left is not None:
            self._cap = True

    def pick(self, reals: list[Real], exclude: Real | None = None) -> Real | None:
        n = len(reals)
        if self._cap:
            self._cap = False
            if self.left is not None and self.i < n:
                self.left = min(self.left, reals[self.i].oper_weight) or None
        left = self.left
        if left and exclude is None and self.i < n:
            # fast path: inside a block (its weight was > 0 when the block started)
            r = reals[self.i]
            if r.state in PICKABLE and r.conns < r.maxconns:
                if left > 1:
                    self.left = left - 1
                else:
                    self.i, self.left = (self.i + 1) % n, None
                return r
        if n == 0:
            return None
        if self.i >= n:
            self.i, self.left = 0, None
        for _ in range(2 * n + 1):
            r = reals[self.i]
            if self.left is None:
                self.left = r.oper_weight
            if (
                self.left > 0
                and r is not exclude
                and r.state in PICKABLE
                and (r.weight if r.dfp_weight is None else r.dfp_weight) > 0
                and r.conns < r.maxconns
            ):
                self.left -= 1
                if self.left == 0:
                    self.i, self.left = (self.i + 1) % n, None
                return r
            self.i, self.left = (self.i + 1) % n, None
        return None


class SmoothWrr:
    """nginx smooth weighted round robin (P§7.3): weights 5, 1, 1 give a a b a c a a."""

    name = "smooth-wrr"

    def __init__(self) -> None:
        self.current: dict[int, int] = {}

    def reset(self, membership: bool = True) -> None:
        if membership:  # weight changes need nothing: the algorithm adapts by itself
            self.current.clear()

    def pick(self, reals: list[Real], exclude: Real | None = None) -> Real | None:
        best: Real | None = None
        best_cw = 0
        total = 0
        cur = self.current
        for r in reals:
            if r is exclude or not r.eligible():
                continue
            w = r.oper_weight
            cw = cur.get(id(r), 0) + w
            cur[id(r)] = cw
            total += w
            if best is None or cw > best_cw:
                best, best_cw = r, cw
        if best is not None:
            cur[id(best)] = best_cw - total
        return best


PREDICTORS = ("ios-wrr", "roundrobin", "smooth-wrr")


def make_predictor(name: str) -> Predictor:
    if name in ("ios-wrr", "roundrobin"):
        return IosWrr()
    if name == "smooth-wrr":
        return SmoothWrr()
    raise ValueError(f"unknown predictor {name!r} (ios-wrr | smooth-wrr)")


class Decision(NamedTuple):
    """What to do with one request: forward to ``real`` (None: drop, ``reason`` says why)."""

    real: Real | None
    new_session: bool = False
    retransmission: bool = False
    reassigned_from: Real | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StateChange:
    """A real changed state (returned by :meth:`ServerFarm.drain_events` for logging)."""

    address: str
    old: RealState
    new: RealState
    event: RealEvent
    at: float
    reason: str = ""  # why, for the log (the failure rule that fired)


class ServerFarm:
    """Reals, the predictor and the NAI sessions of one virtual server."""

    def __init__(
        self,
        predictor: str | Predictor = "ios-wrr",
        session_s: float = HASLB_DEFAULT_SESSION_S,
        reassign: int = SLB_DEFAULT_REASSIGN,
        max_sessions: int = 100_000_000,
        failure_window_s: float = SLB_DEFAULT_FAIL_WINDOW_S,
    ) -> None:
        self.predictor: Predictor = (
            make_predictor(predictor) if isinstance(predictor, str) else predictor
        )
        self.session_s = float(session_s)
        self.reassign = int(reassign)
        self.max_sessions = int(max_sessions)
        self.failure_window_s = float(failure_window_s)
        self.reals: list[Real] = []
        self._by_addr: dict[tuple[str, int], Real] = {}
        self.sessions: dict[SessionKey, Session] = {}
        # heap entries: (deadline, seq, obj) where obj is a Session or a Real (retry timer)
        self._heap: list[tuple[float, int, Session | Real]] = []
        self._seq = itertools.count()
        # new sessions in creation order; an entry is due at ``created + session_s``
        self._fifo: deque[Session] = deque()
        self._fifo_last = float("-inf")  # ``created`` of the newest FIFO entry
        self._events: list[StateChange] = []
        self.n_requests = 0
        self.n_new = 0
        self.n_expired = 0
        self.n_retrans = 0
        self._dnew: dict[Real, Decision] = {}  # cached "new session on r" decisions
        self._drep: dict[Real, Decision] = {}  # cached "repeat, stays on r" decisions
        self._c: dict[str, int] = {
            "new_ids": 0,
            "reassignments": 0,
            "no_real": 0,
            "failures": 0,
            "failures_repeated": 0,  # a client's failure inside its window: not counted
            "fail_vetoed": 0,  # threshold reached while the real showed life
            "table_full": 0,
            "no_nai": 0,  # requests keyed by (home address, FA) for lack of an NAI
        }

    @property
    def counters(self) -> dict[str, int]:
        return {
            "requests": self.n_requests,
            "new_sessions": self.n_new,
            "expired": self.n_expired,
            "retransmissions": self.n_retrans,
            **self._c,
        }

    # ------------------------------------------------------------------ reals

    def add_real(self, real: Real | str, now: float = 0.0, **kw: Any) -> Real:
        """Add a real at runtime; existing sessions are not touched."""
        r = real if isinstance(real, Real) else Real(real, **kw)
        k = (r.address, r.port)
        if k in self._by_addr:
            raise ValueError(f"real {r.address}:{r.port} already in the farm")
        self.reals.append(r)
        self._by_addr[k] = r
        if r.state is S.FAILED:
            self._arm_retry(r, now)
        self.predictor.reset()
        return r

    def real(self, address: str, port: int | None = None) -> Real | None:
        if port is not None:
            return self._by_addr.get((address, port))
        for r in self.reals:
            if r.address == address:
                return r
        return None

    def _need(self, address: str, port: int | None = None) -> Real:
        r = self.real(address, port)
        if r is None:
            raise KeyError(f"no real {address}")
        return r

    def remove_real(self, address: str, port: int | None = None) -> Real:
        """Remove a real. Its live sessions move on their next request (no failure counted)."""
        r = self._need(address, port)
        self.reals.remove(r)
        del self._by_addr[(r.address, r.port)]
        r.removed = True
        r.retry_at = None
        self._dnew.pop(r, None)
        self._drep.pop(r, None)
        self.predictor.reset()
        return r

    def set_weight(self, address: str, weight: int, port: int | None = None) -> None:
        """Change the admin weight at runtime (existing sessions stay where they are)."""
        if not 0 <= weight <= 0xFFFF:
            raise ValueError("weight must be 0..65535")
        r = self._need(address, port)
        if r.weight != weight:
            r.weight = weight
            self.predictor.reset(membership=False)

    def set_inservice(
        self, address: str, inservice: bool, now: float = 0.0, port: int | None = None
    ) -> None:
        r = self._need(address, port)
        if inservice:
            self._set_state(r, E.INSERVICE, now)
            if r.state is S.IN_SERVICE and r.dfp_weight == 0:
                self._set_state(r, E.DFP_ZERO, now)
        else:
            self._set_state(r, E.OUTOFSERVICE, now)
            r.retry_at = None

    def set_dfp_weight(self, address: str, weight: int | None, now: float) -> bool:
        """Apply a DFP report for ``address`` (``None``: the agent was lost -> static weight).

        Weight 0 -> dfpThrottle; weight > 0 revives a failed/testing real at once
        (P§6.4 item 5). Returns False when no real has that address.
        """
        r = self.real(address)
        if r is None:
            return False
        changed = r.oper_weight != (r.weight if weight is None else weight)
        r.dfp_weight = weight
        r.dfp_lost = weight is None
        if weight is not None:
            r.dfp_seen_at = now
            r.dfp_lost_at = None
        elif r.dfp_lost_at is None:
            # the loss is newer than any life the real showed before it
            r.dfp_lost_at = now
            r.dfp_seen_at = r.alive_at = None
        if weight is None:
            self._set_state(r, E.DFP_LOST, now)
        elif weight == 0:
            self._set_state(r, E.DFP_ZERO, now)
        else:
            self._set_state(r, E.DFP_UP, now)
        if changed:
            self.predictor.reset(membership=False)
        return True

    def _set_state(self, r: Real, event: RealEvent, now: float, reason: str = "") -> None:
        new = TRANSITIONS.get((r.state, event))
        if new is None or new is r.state:
            return
        old = r.state
        r.state = new
        r.transitions += 1
        if new is S.FAILED:
            self._arm_retry(r, now)
        elif old is S.FAILED:
            r.retry_at = None
        if new is S.IN_SERVICE and old in (S.FAILED, S.READY_TO_TEST, S.TESTING):
            r.failures = 0
            r.failed_clients.clear()
        if old is S.TESTING and r.test_session is not None:
            r.test_session.test = False
            r.test_session = None
        if new is S.IN_SERVICE and r.conns >= r.maxconns:
            r.state = S.MAX_CONNS_THROTTLE
            new = r.state
        self._events.append(StateChange(r.address, old, new, event, now, reason))

    def _arm_retry(self, r: Real, now: float) -> None:
        r.retry_at = now + r.retry_s
        heapq.heappush(self._heap, (r.retry_at, next(self._seq), r))

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def drain_events(self) -> list[StateChange]:
        ev, self._events = self._events, []
        return ev

    # ------------------------------------------------------------------ sessions

    def _attach(self, s: Session, r: Real, now: float) -> None:
        s.real = r
        r.conns += 1
        r.total_conns += 1
        if r.state is _READY_TO_TEST:
            self._set_state(r, E.TEST_PICK, now)
            r.test_session = s
            s.test = True
        if r.conns >= r.maxconns:
            self._set_state(r, E.MAXCONNS, now)

    def _detach(self, s: Session, now: float) -> None:
        r = s.real
        r.conns -= 1
        if r.state is _MAX_CONNS_THROTTLE and r.conns < r.maxconns:
            self._set_state(r, E.BELOW_MAXCONNS, now)

    def _record_failure(self, r: Real, client: str, now: float) -> None:
        """One connection failure against ``r`` (P§6.3/6.4 items 3-4), counted so that one
        source cannot fail a real that works (docs/security.md, "SLB failure detection"):

        * IOS counts a client's repeated failures once (the ``numclients`` rule, P§6.3),
          so one PDSN could never fail a dead real; here a client's failures count once
          per ``failure_window_s``, so one PDSN fails a dead real after ``numconns``
          windows, and a source repeating a failing request gains nothing by its rate.
          While the real's DFP agent is lost (an outsider cannot end an authenticated DFP
          connection) the life it showed before the loss no longer counts: the first
          session it leaves unanswered fails it, unless it answered another since.
        * Reaching ``numconns`` or ``numclients`` fails the real only when it shows no
          life (:meth:`_shows_life`): a DFP report for it, or a session it answered whose
          last request is, within the window. The SLB sees no replies; an
          answered session is one that ended without retransmissions.

        A testing real fails its test on any failure (P§6.3 auto-unfail, step 4).
        """
        self._c["failures"] += 1
        r.total_failures += 1
        if r.state is S.TESTING:
            r.failures += 1
            self._set_state(r, E.TEST_FAIL, now, "test session reassigned")
            return
        if r.dfp_lost and not self._shows_life(r, now):
            # A real whose DFP agent is lost (its authenticated connection ended: an
            # outsider cannot cause it) and which leaves a session unanswered is down.
            r.failures += 1
            self._set_state(r, E.FAIL, now, "DFP agent lost and a session unanswered")
            return
        window = self.failure_window_s
        seen = r.failed_clients.get(client)
        if seen is not None and now - seen < window and not r.dfp_lost:
            self._c["failures_repeated"] += 1
            return
        if len(r.failed_clients) >= MAX_FAILED_CLIENTS:
            r.failed_clients = {c: t for c, t in r.failed_clients.items() if now - t < window}
        r.failed_clients[client] = now
        r.failures += 1
        if r.failures >= r.faildetect_numconns:
            why = f"{r.failures} failures (faildetect numconns)"
        elif len(r.failed_clients) >= r.faildetect_numclients:
            why = f"{len(r.failed_clients)} failed clients (faildetect numclients)"
        else:
            return
        if self._shows_life(r, now):
            self._c["fail_vetoed"] += 1
        else:
            self._set_state(r, E.FAIL, now, why)

    def _shows_life(self, r: Real, now: float) -> bool:
        """Within the window, ``r``'s DFP agent reported or ``r`` answered a session (an
        agent whose connection stalls, e.g. a stopped process, stops showing life)."""
        window = self.failure_window_s
        if r.dfp_seen_at is not None and now - r.dfp_seen_at < window:
            return True
        return r.alive_at is not None and now - r.alive_at < window

    def receive_datagram(
        self,
        data: bytes,
        src: Addr,
        dst: Addr,
        now: float,
        nai: str | None = None,
        ident: int | None = None,
    ) -> Decision:
        """One datagram that reached the virtual server ``dst`` from the FA ``src``.

        ``nai`` / ``ident``: the NAI and Identification when the adapter's reader already
        read them (:func:`mobileha.wire.mip.leading_nai`); otherwise the request is parsed
        here. A datagram that is no usable request is dropped with the parser's reason.
        """
        key: SessionKey
        if nai is None:
            k = self._key_of(data, src[0])
            if isinstance(k, str):
                return Decision(None, reason=k)
            key, ident = k
        else:
            key = nai
            if ident is None:
                ident = _IDENT.unpack_from(data, IDENT_AT)[0]
        client, client_port = src
        self.n_requests += 1
        heap = self._heap
        fifo = self._fifo
        session_s = self.session_s
        if (fifo and fifo[0].created + session_s <= now) or (heap and heap[0][0] <= now):
            # a little expiry work per request; the rest is the timer's (lazily correct:
            # the looked-up session is checked against ``now`` below anyway)
            self.handle_timer(now, REQUEST_EXPIRY_BUDGET)
        sessions = self.sessions
        s = sessions.get(key)
        if s is not None and s.expires <= now:
            self._end(s, now)
            s = None
        if s is None:
            if len(sessions) >= self.max_sessions:
                self._c["table_full"] += 1
                return Decision(None, reason="table-full")
            r = self.predictor.pick(self.reals)
            if r is None:
                self._c["no_real"] += 1
                return Decision(None, reason="no-real")
            expires = now + session_s
            s = Session(key, r, client, ident, now, expires, 1, client_port)
            sessions[key] = s
            r.conns += 1
            r.total_conns += 1
            if r.state is _READY_TO_TEST or r.conns >= r.maxconns:
                r.conns -= 1
                r.total_conns -= 1
                self._attach(s, r, now)
            if now >= self._fifo_last:
                fifo.append(s)  # due at created + session_s: still in deadline order
                self._fifo_last = now
            else:  # ``now`` went backwards (not with a monotonic clock): keep order exact
                heapq.heappush(heap, (expires, next(self._seq), s))
            self.n_new += 1
            d = self._dnew.get(r)
            if d is None:
                d = self._dnew[r] = Decision(r, new_session=True)
            return d

        # A repeat inside the session: the FA saw no reply (P§6.4 item 3). Same
        # Identification = retransmission; a new one is a new attempt that equally means
        # "no reply seen" [P]. Either restarts the session timer.
        s.expires = now + self.session_s
        s.requests += 1
        s.client = client
        s.client_port = client_port
        if ident != s.ident:
            s.new_ids += 1
            s.ident = ident
            self._c["new_ids"] += 1
        self.n_retrans += 1
        s.retrans += 1
        s.retrans_total += 1
        old = s.real
        if old.removed:
            # The real left the farm: move the session, no failure recorded.
            return self._move(s, old, now, record=False)
        if s.retrans >= self.reassign or old.dfp_lost:
            return self._move(s, old, now, record=True)
        d = self._drep.get(old)
        if d is None:
            d = self._drep[old] = Decision(old, retransmission=True)
        return d

    def _key_of(self, data: bytes, client: str) -> tuple[SessionKey, int] | str:
        """Session key and Identification of a request, or why it has none (P§6.4 item 1:
        the NAI; without one, the home address and the FA)."""
        try:
            p = parse_request(data)
            if p.error is not None:
                return p.error
            nai = p.nai
        except DecodeError as e:
            return e.reason
        if nai:
            return nai, p.ident
        if p.home_b != _ZERO:
            self._c["no_nai"] += 1
            return (ip_str_cached(p.home_b), client), p.ident
        return "no-nai"

    def _move(self, s: Session, old: Real, now: float, record: bool) -> Decision:
        s.test = False
        if old.test_session is s:
            old.test_session = None
        self._detach(s, now)
        if record:
            # a test session that has to move fails the test (testing -> failed)
            self._record_failure(old, s.client, now)
        s.retrans = 0
        s.reassigned += 1
        self._c["reassignments"] += 1
        r = self.predictor.pick(self.reals, exclude=old)
        if r is None and old.eligible() and not old.removed:
            r = old
        if r is None:
            del self.sessions[s.key]
            self._c["no_real"] += 1
            return Decision(None, retransmission=True, reassigned_from=old, reason="no-real")
        self._attach(s, r, now)
        return Decision(r, retransmission=True, reassigned_from=old)

    def _end(self, s: Session, now: float) -> None:
        """A session expired: judge the outcome for its real (P§6.4 items 4-5)."""
        del self.sessions[s.key]
        self.n_expired += 1
        r = s.real
        r.conns -= 1
        if r.state is _MAX_CONNS_THROTTLE and r.conns < r.maxconns:
            self._set_state(r, E.BELOW_MAXCONNS, now)
        if r.removed:
            return
        if s.test and r.test_session is s:
            r.test_session = None
            s.test = False
            self._set_state(r, E.TEST_OK, now)
        if s.retrans == 0:
            # answered: its last request was at expires - session_s
            last = s.expires - self.session_s
            if (r.alive_at is None or last > r.alive_at) and (
                r.dfp_lost_at is None or last > r.dfp_lost_at
            ):
                r.alive_at = last
            if r.failures:
                r.failures = 0  # [P] a clean session resets the consecutive failure count
            if r.failed_clients:
                r.failed_clients.pop(s.client, None)

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float, budget: int | None = None) -> bool:
        """Run the timers due at ``now``: session expiries and real retry timers.

        With ``budget``, handle at most that many queue entries and return True when more
        are due (so one call never stalls the event loop on a huge backlog, e.g. a million
        sessions expiring together); without it, run them all and return False.
        """
        heap = self._heap
        fifo = self._fifo
        sessions = self.sessions
        session_s = self.session_s
        pop = heapq.heappop
        left = -1 if budget is None else budget
        while True:
            # the earlier of the FIFO's front and the heap's top (FIFO first on a tie)
            if fifo:
                s = fifo[0]
                when = s.created + session_s
                if not heap or when <= heap[0][0]:
                    if when > now:
                        return False
                    if left == 0:
                        return True
                    left -= 1
                    fifo.popleft()
                    if sessions.get(s.key) is not s:
                        continue  # ended or replaced already
                    if s.expires > when:  # touched since: wait on the heap
                        heapq.heappush(heap, (s.expires, next(self._seq), s))
                        continue
                    self._end(s, now)
                    continue
            if not heap or heap[0][0] > now:
                return False
            if left == 0:
                return True
            left -= 1
            when, _, obj = pop(heap)
            if isinstance(obj, Session):
                if sessions.get(obj.key) is not obj:
                    continue  # ended or replaced already
                if obj.expires > when:
                    heapq.heappush(heap, (obj.expires, next(self._seq), obj))
                    continue
                self._end(obj, now)
            else:
                if obj.retry_at != when or obj.state is not _FAILED:
                    continue
                obj.retry_at = None
                self._set_state(obj, E.RETRY, now)

    def get_timer(self) -> float | None:
        """The earliest timer (may be a stale entry, then the call is just early)."""
        h = self._heap[0][0] if self._heap else None
        if not self._fifo:
            return h
        f = self._fifo[0].created + self.session_s
        return f if h is None or f <= h else h

    # ------------------------------------------------------------------ views

    def real_rows(self) -> list[dict[str, object]]:
        """``show ip slb reals``."""
        return [
            {
                "real": r.address,
                "port": r.port,
                "state": r.state.value,
                "weight": r.weight,
                "oper_weight": r.oper_weight,
                "dfp_weight": r.dfp_weight,
                "conns": r.conns,
                "total_conns": r.total_conns,
                "maxconns": r.maxconns,
                "failures": r.failures,
                "total_failures": r.total_failures,
                "retry_at": r.retry_at,
            }
            for r in self.reals
        ]

    def session_rows(self, now: float, offset: int = 0, limit: int = 100) -> dict[str, object]:
        """``show ip slb sessions``, paged."""
        it: Iterator[Session] = itertools.islice(
            iter(self.sessions.values()), max(0, offset), max(0, offset) + max(0, limit)
        )
        rows = [
            {
                "key": s.key if isinstance(s.key, str) else f"{s.key[0]}/{s.key[1]}",
                "real": s.real.address,
                "client": s.client,
                "ident": s.ident,
                "age_s": round(now - s.created, 3),
                "expires_in_s": round(s.expires - now, 3),
                "retransmissions": s.retrans,
                "reassigned": s.reassigned,
                "test": s.test,
            }
            for s in it
        ]
        return {"total": len(self.sessions), "offset": offset, "limit": limit, "sessions": rows}

    def snapshot(self) -> dict[str, object]:
        return {
            "predictor": self.predictor.name,
            "session_s": self.session_s,
            "reassign": self.reassign,
            "sessions": len(self.sessions),
            "reals": self.real_rows(),
            "counters": dict(self.counters),
        }


def states_table() -> Iterable[tuple[RealState, RealEvent, RealState]]:
    """Every (state, event) pair with its outcome (unlisted pairs keep the state)."""
    for st in RealState:
        for ev in RealEvent:
            yield st, ev, TRANSITIONS.get((st, ev), st)


__all__ = [
    "EVENT_REASONS",
    "PICKABLE",
    "TRANSITIONS",
    "Decision",
    "IosWrr",
    "Predictor",
    "Real",
    "RealEvent",
    "RealState",
    "ServerFarm",
    "Session",
    "SessionKey",
    "SmoothWrr",
    "StateChange",
    "make_predictor",
    "states_table",
]
