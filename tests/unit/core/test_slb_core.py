"""HA-SLB core (P§6.1-6.4, P§7.3): predictors, stickiness, failure handling, state table."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from mobileha.core.slb import (
    TRANSITIONS,
    IosWrr,
    Real,
    RealEvent,
    RealState,
    ServerFarm,
    SmoothWrr,
    states_table,
)
from tests.helpers import farm_request

S = RealState
E = RealEvent


def farm(weights: dict[str, int], **kw: object) -> ServerFarm:
    f = ServerFarm(**kw)  # type: ignore[arg-type]
    for addr, w in weights.items():
        f.add_real(addr, weight=w)
    return f


def new_sessions(f: ServerFarm, n: int, now: float = 0.0, start: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        d = farm_request(f, f"mn{i}@example.net", 1, "10.0.2.2", now)
        assert d.new_session
        out.append(d.real.address if d.real else "-")
    return out


# ---------------------------------------------------------------------------- predictors


def test_ios_wrr_sequence_3_1_2() -> None:
    f = farm({"A": 3, "B": 1, "C": 2})
    assert new_sessions(f, 12) == list("AAABCC" * 2)


def test_ios_wrr_exact_split_over_6000_sessions() -> None:
    f = farm({"A": 3, "B": 1, "C": 2})
    assert Counter(new_sessions(f, 6000)) == {"A": 3000, "B": 1000, "C": 2000}


def test_equal_weights_plain_round_robin() -> None:
    f = farm({"A": 1, "B": 1, "C": 1})
    assert new_sessions(f, 6) == list("ABCABC")


def test_smooth_wrr_interleaves() -> None:
    f = farm({"a": 5, "b": 1, "c": 1}, predictor="smooth-wrr")
    assert new_sessions(f, 7) == list("aabacaa")
    g = farm({"A": 2, "B": 1}, predictor="smooth-wrr")
    assert new_sessions(g, 6) == list("ABAABA")
    h = farm({"A": 3, "B": 1, "C": 2}, predictor="smooth-wrr")
    seq = new_sessions(h, 6000)
    assert Counter(seq) == {"A": 3000, "B": 1000, "C": 2000}
    assert "AAA" not in "".join(seq)  # never the IOS block


@pytest.mark.parametrize("predictor", ["ios-wrr", "smooth-wrr"])
@pytest.mark.parametrize(
    "how", ["failed", "outofservice", "dfp-throttle", "weight0", "maxconns", "testing"]
)
def test_ineligible_reals_never_picked(predictor: str, how: str) -> None:
    f = farm({"A": 3, "B": 1, "C": 2}, predictor=predictor)
    b = f.real("B")
    assert b is not None
    if how == "failed":
        f._set_state(b, E.FAIL, 0.0)
        assert b.state is S.FAILED
    elif how == "outofservice":
        f.set_inservice("B", False)
        assert b.state is S.OUT_OF_SERVICE
    elif how == "dfp-throttle":
        f.set_dfp_weight("B", 0, 0.0)
        assert b.state is S.DFP_THROTTLE
    elif how == "weight0":
        f.set_weight("B", 0)
        assert b.state is S.IN_SERVICE
    elif how == "maxconns":
        b.maxconns = 0
    elif how == "testing":
        b.state = S.TESTING
    got = Counter(new_sessions(f, 600))
    assert got["B"] == 0
    assert got == {"A": 360, "C": 240} if predictor == "ios-wrr" else got["A"] + got["C"] == 600


def test_no_eligible_real_drops() -> None:
    f = farm({"A": 1})
    f.set_inservice("A", False)
    d = farm_request(f, "x@y", 1, "1.1.1.1", 0.0)
    assert d.real is None and d.reason == "no-real"
    assert f.counters["no_real"] == 1
    assert IosWrr().pick([]) is None and SmoothWrr().pick([]) is None


def test_maxconns_throttle_and_back() -> None:
    f = farm({"A": 1, "B": 1})
    a = f.real("A")
    assert a is not None
    a.maxconns = 1
    assert new_sessions(f, 3) == ["A", "B", "B"]
    assert a.state is S.MAX_CONNS_THROTTLE
    f.handle_timer(100.0)  # sessions expire
    assert a.state is S.IN_SERVICE and a.conns == 0


# ---------------------------------------------------------------------------- stickiness


def test_stickiness_with_fake_clock_and_timer_restart() -> None:
    # reassign is set high: here every repeat must stick (reassignment is tested below)
    f = farm({"A": 1, "B": 1, "C": 1}, session_s=10, reassign=100)
    nai = "mn@example.net"
    first = farm_request(f, nai, 1, "10.0.2.2", 0.0).real
    assert first is not None and first.address == "A"
    # other sessions advance the round robin meanwhile
    new_sessions(f, 2, now=1.0)
    # one request every 9 s: each restarts the 10 s timer, so the session lives on
    t = 0.0
    for i in range(5):
        t += 9.0
        d = farm_request(f, nai, 100 + i, "10.0.2.2", t)
        assert d.real is first and not d.new_session
        f.handle_timer(t)
    assert f.sessions[nai].expires == t + 10
    # after expiry: a new pick (the round robin has moved on)
    f.handle_timer(t + 10.0)
    assert nai not in f.sessions
    d = farm_request(f, nai, 999, "10.0.2.2", t + 10.5)
    assert d.new_session and d.real is not None and d.real.address == "A"  # fresh cycle
    assert f.counters["expired"] >= 3


def test_expiry_exactly_at_deadline_is_a_new_session_even_without_advance() -> None:
    f = farm({"A": 1, "B": 1}, session_s=10)
    assert farm_request(f, "n", 1, "c", 0.0).real.address == "A"  # type: ignore[union-attr]
    d = farm_request(f, "n", 1, "c", 10.0)
    assert d.new_session and d.real.address == "B"  # type: ignore[union-attr]


def test_fallback_key_home_address_and_fa() -> None:
    f = farm({"A": 1, "B": 1})
    k = ("10.1.0.5", "10.0.2.2")
    a = farm_request(f, k, 1, "10.0.2.2", 0.0).real
    assert farm_request(f, k, 1, "10.0.2.2", 1.0).real is a
    assert farm_request(f, ("10.1.0.5", "10.0.2.3"), 1, "10.0.2.3", 1.0).real is not a
    assert f.session_rows(1.0)["sessions"][0]["key"] == "10.1.0.5/10.0.2.2"  # type: ignore[index]


def test_one_heap_entry_per_session() -> None:
    f = farm({"A": 1, "B": 1}, session_s=10, reassign=10**9)
    for t in range(50):
        for i in range(100):
            farm_request(f, f"n{i}", t, "c", t * 0.1)
    assert len(f.sessions) == 100
    assert len(f._heap) <= 100
    assert f.get_timer() == pytest.approx(10.0)
    f.handle_timer(f.get_timer() or 0)  # early (stale) entries are re-pushed, not fired
    assert len(f.sessions) == 100
    f.handle_timer(100.0)
    assert not f.sessions and not f._heap


# ---------------------------------------------------------------------------- failures


def retransmit(f: ServerFarm, key: str, n: int, t: float, ident: int = 7) -> list[str]:
    out = []
    for _ in range(n):
        d = farm_request(f, key, ident, "10.0.2.2", t)
        out.append(d.real.address if d.real else "-")
    return out


def test_reassign_after_threshold_records_one_failure() -> None:
    f = farm({"A": 1, "B": 1}, reassign=3)
    a = f.real("A")
    assert a is not None
    # original + 2 retransmissions stay on A, the 3rd retransmission moves
    assert retransmit(f, "n", 4, 0.0) == ["A", "A", "A", "B"]
    assert a.failures == 1 and a.total_failures == 1 and a.conns == 0
    assert f.counters["reassignments"] == 1
    s = f.sessions["n"]
    assert s.retrans == 0 and s.reassigned == 1
    # counter reset: three more before it moves again (back to A, the only other real)
    assert retransmit(f, "n", 3, 1.0) == ["B", "B", "A"]


def test_new_identification_also_counts_as_no_reply_seen() -> None:
    f = farm({"A": 1, "B": 1}, reassign=3)
    out = [farm_request(f, "n", i, "c", float(i)).real.address for i in range(4)]  # type: ignore[union-attr]
    assert out == ["A", "A", "A", "B"]
    assert f.counters["new_ids"] == 3


def test_faildetect_marks_failed_then_retry_testing_inservice() -> None:
    f = farm({"A": 1, "B": 1}, reassign=1)
    a = f.real("A")
    assert a is not None
    a.faildetect_numconns = 3
    a.retry_s = 30
    t = 0.0
    for i in range(3):  # each session lands on A and is moved by its first retransmission
        key, client = f"n{i}", f"c{i}"  # three clients: one client counts once per window
        d = farm_request(f, key, 1, client, t)
        if d.real is not a:  # B got this one; take another
            d = farm_request(f, key + "x", 1, client, t)
            key += "x"
        assert d.real is a
        assert farm_request(f, key, 1, client, t).real.address == "B"  # type: ignore[union-attr]
    assert a.state is S.FAILED and a.failures == 3 and a.retry_at == t + 30
    # FAILED gets nothing new
    assert set(new_sessions(f, 20, now=1.0, start=100)) == {"B"}
    # retry timer -> readyToTest
    f.handle_timer(29.9)
    assert a.state is S.FAILED
    assert f.get_timer() is not None
    f.handle_timer(30.0)
    assert a.state is S.READY_TO_TEST
    # next new session is the test
    picks = new_sessions(f, 2, now=31.0, start=200)
    assert "A" in picks
    assert a.state is S.TESTING and a.test_session is not None
    test_key = a.test_session.key
    assert set(new_sessions(f, 5, now=31.5, start=300)) == {"B"}  # one test at a time
    # the test session ends with no retransmission -> inService, failures cleared
    f.handle_timer(31.0 + 10.0)
    assert test_key not in f.sessions
    assert a.state is S.IN_SERVICE and a.failures == 0


def test_failed_test_goes_back_to_failed_and_restarts_retry() -> None:
    f = farm({"A": 1, "B": 1}, reassign=2)
    a = f.real("A")
    assert a is not None
    a.retry_s = 5
    f._set_state(a, E.FAIL, 0.0)
    f.handle_timer(5.0)
    assert a.state is S.READY_TO_TEST
    d = farm_request(f, "t", 1, "c", 6.0)
    assert d.real is a and a.state is S.TESTING
    assert retransmit(f, "t", 2, 7.0) == ["A", "B"]
    assert a.state is S.FAILED and a.retry_at == 12.0
    f.handle_timer(12.0)
    assert a.state is S.READY_TO_TEST


def test_numclients_distinct_failed_clients() -> None:
    f = farm({"A": 1, "B": 1}, reassign=1)
    a = f.real("A")
    assert a is not None
    a.faildetect_numconns = 100
    a.faildetect_numclients = 2
    for i, client in enumerate(["10.0.2.1", "10.0.2.1", "10.0.2.2"]):
        key = f"k{i}"
        while farm_request(f, key, 1, client, 0.0).real is not a:
            key += "_"
        farm_request(f, key, 1, client, 0.0)
    assert a.total_failures == 3 and a.state is S.FAILED


def test_clean_session_resets_failure_count() -> None:
    f = farm({"A": 1, "B": 1}, reassign=1)
    a, b = f.real("A"), f.real("B")
    assert a is not None and b is not None
    farm_request(f, "x", 1, "c", 0.0)
    assert farm_request(f, "x", 1, "c", 0.0).real is b  # moved: one failure against A
    assert a.failures == 1
    f.handle_timer(20.0)  # the session ended cleanly on B: only B is credited
    assert a.failures == 1 and b.failures == 0
    assert farm_request(f, "y", 1, "c", 21.0).real is a
    f.handle_timer(40.0)
    assert a.failures == 0


def fail_on(f: ServerFarm, real: str, client: str, t: float, tag: str) -> None:
    """One failure against ``real`` from ``client`` at ``t``: a new session that lands on it
    and is moved by its first retransmission (reassign=1)."""
    key = tag
    while (d := farm_request(f, key, 1, client, t)).real is None or d.real.address != real:
        key += "_"
    farm_request(f, key, 1, client, t)


def window_farm() -> tuple[ServerFarm, Real]:
    """Reals A and B, sessions moved by their first retransmission, a 10 s window."""
    f = ServerFarm(reassign=1, failure_window_s=10.0)
    for name in ("A", "B"):
        f.add_real(name)
    a = f.real("A")
    assert a is not None
    return f, a


def test_one_client_counts_once_per_window_and_still_fails_a_dead_real() -> None:
    f, a = window_farm()
    for i in range(60):  # one source, a burst: one failure counted
        fail_on(f, "A", "pdsn", 0.0, f"burst{i}")
    assert a.state is S.IN_SERVICE and a.failures == 1 and a.total_failures == 60
    assert f.counters["failures_repeated"] == 59
    # a dead real (no DFP, answers nobody): one PDSN fails it after numconns windows
    for w in range(1, 8):
        fail_on(f, "A", "pdsn", 10.0 * w, f"w{w}")
    assert a.failures == 8 and a.state is S.FAILED


def test_a_real_that_answers_other_sessions_is_not_failed() -> None:
    f, a = window_farm()
    a.faildetect_numclients = 3
    key = "good"
    while farm_request(f, key, 1, "fa", 0.0).real is not a:
        key += "_"
    f.handle_timer(10.0)  # it ended without a retransmission: A answered at 0.0
    assert a.alive_at == 0.0
    for i in range(5):  # five spoofed sources: threshold reached, A showed life
        fail_on(f, "A", f"spoof{i}", 5.0, f"s{i}")
    assert a.state is S.IN_SERVICE and f.counters["fail_vetoed"] >= 1
    fail_on(f, "A", "spoof9", 11.0, "late")  # no life within the window any more
    assert a.state is S.FAILED


def test_dfp_reports_keep_a_real_and_a_lost_agent_counts_every_failure() -> None:
    f, a = window_farm()
    f.set_dfp_weight("A", 8, 0.0)
    for i in range(20):
        fail_on(f, "A", f"src{i}", 1.0, f"r{i}")
    assert a.state is S.IN_SERVICE  # its DFP agent reported within the window: alive
    f.set_dfp_weight("A", None, 2.0)  # agent lost, and A answers nobody: failed
    fail_on(f, "A", "src0", 3.0, "after")
    assert a.state is S.FAILED


def test_a_killed_real_fails_at_once_whatever_it_answered_before() -> None:
    f, a = window_farm()
    f.set_dfp_weight("A", 8, 0.0)
    key = "answered"
    while farm_request(f, key, 1, "fa", 1.0).real is not a:
        key += "_"
    f.set_dfp_weight("A", None, 2.0)  # killed: its agent's connection is lost
    f.handle_timer(11.5)  # the session answered at 1.0 ends cleanly after the loss
    assert a.alive_at is None
    fail_on(f, "A", "pdsn", 12.0, "k0")  # one PDSN, one unanswered session: nothing vetoes
    assert a.state is S.FAILED and f.counters["fail_vetoed"] == 0


def test_a_stalled_dfp_agent_stops_showing_life() -> None:
    f, a = window_farm()
    a.faildetect_numconns = 2
    f.set_dfp_weight("A", 8, 0.0)  # then the real stops (its connection stays open)
    fail_on(f, "A", "pdsn", 5.0, "x")
    assert a.state is S.IN_SERVICE and a.failures == 1
    fail_on(f, "A", "pdsn", 15.0, "y")  # no report for a window: failed, weight or not
    assert a.dfp_weight == 8 and a.state is S.FAILED

    f, a = window_farm()
    f.set_dfp_weight("A", 8, 0.0)
    f.set_dfp_weight("A", None, 1.0)
    fail_on(f, "A", "pdsn", 2.0, "d0")  # agent lost and a session unanswered: failed
    assert a.state is S.FAILED and a.failures == 1


# ---------------------------------------------------------------------------- DFP effects


def test_dfp_weights_throttle_revive_and_revert() -> None:
    f = farm({"A": 3, "B": 1, "C": 2})
    a = f.real("A")
    assert a is not None
    f.set_dfp_weight("A", 0, 1.0)
    assert a.state is S.DFP_THROTTLE and a.oper_weight == 0
    assert "A" not in new_sessions(f, 30)
    f.set_dfp_weight("A", 12, 2.0)
    assert a.state is S.IN_SERVICE and a.oper_weight == 12 and a.weight == 3
    f._set_state(a, E.FAIL, 3.0)
    assert a.state is S.FAILED
    f.set_dfp_weight("A", 5, 4.0)  # a report with weight > 0 revives at once
    assert a.state is S.IN_SERVICE and a.retry_at is None
    f.set_dfp_weight("A", 0, 5.0)
    f.set_dfp_weight("A", None, 6.0)  # agent lost: static weight again
    assert a.state is S.IN_SERVICE and a.oper_weight == 3
    assert not f.set_dfp_weight("Z", 1, 0.0)
    ev = f.drain_events()
    assert [(e.old, e.new) for e in ev][:2] == [
        (S.IN_SERVICE, S.DFP_THROTTLE),
        (S.DFP_THROTTLE, S.IN_SERVICE),
    ]


def test_dfp_weight_steers_new_sessions() -> None:
    f = farm({"A": 8, "B": 8})
    f.set_dfp_weight("A", 1, 0.0)
    f.set_dfp_weight("B", 24, 0.0)
    c = Counter(new_sessions(f, 250))
    assert c == {"A": 10, "B": 240}


# ---------------------------------------------------------------------------- runtime changes


def test_runtime_add_remove_reweight_keeps_sessions() -> None:
    f = farm({"A": 1, "B": 1})
    placed = {f"n{i}": farm_request(f, f"n{i}", 1, "c", 0.0).real for i in range(10)}
    f.add_real("C", weight=2)
    f.set_weight("A", 5)
    for k, r in placed.items():
        d = farm_request(f, k, 1, "c", 1.0)
        assert d.real is r and not d.new_session
    assert "C" in new_sessions(f, 10, now=1.0, start=100)
    with pytest.raises(ValueError):
        f.add_real("C")
    with pytest.raises(ValueError):
        f.set_weight("A", -1)
    # removing a real: its sessions move on their next request, no failure counted
    b = f.remove_real("B")
    moved = [k for k, r in placed.items() if r is b]
    for k in moved:
        d = farm_request(f, k, 1, "c", 2.0)
        assert d.real is not None and d.real is not b and d.reassigned_from is b
    assert b.total_failures == 0
    assert f.real("B") is None
    with pytest.raises(KeyError):
        f.set_weight("B", 1)


def test_views() -> None:
    f = farm({"A": 3, "B": 1})
    new_sessions(f, 250)
    rows = f.real_rows()
    assert rows[0]["real"] == "A" and rows[0]["state"] == "inService" and rows[0]["conns"] > 0
    page = f.session_rows(0.0, offset=200, limit=100)
    assert page["total"] == 250 and len(page["sessions"]) == 50  # type: ignore[arg-type]
    snap = f.snapshot()
    assert snap["predictor"] == "ios-wrr" and snap["sessions"] == 250
    with pytest.raises(ValueError):
        ServerFarm(predictor="nope")


# ---------------------------------------------------------------------------- state table


def drive_to(f: ServerFarm, r: Real, st: RealState) -> None:
    """Reach ``st`` through real events only."""
    path = {
        S.IN_SERVICE: [],
        S.OUT_OF_SERVICE: [E.OUTOFSERVICE],
        S.FAILED: [E.FAIL],
        S.READY_TO_TEST: [E.FAIL, E.RETRY],
        S.TESTING: [E.FAIL, E.RETRY, E.TEST_PICK],
        S.DFP_THROTTLE: [E.DFP_ZERO],
        S.MAX_CONNS_THROTTLE: [E.MAXCONNS],
    }
    if st not in path:  # maxClientsThrottle / probeFailed: MIB states we never enter
        r.state = st
        return
    for ev in path[st]:
        f._set_state(r, ev, 0.0)
    assert r.state is st


@pytest.mark.parametrize(
    ("state", "event", "expected"), list(states_table()), ids=lambda x: getattr(x, "value", x)
)
def test_every_state_x_event(state: RealState, event: RealEvent, expected: RealState) -> None:
    f = farm({"R": 8})
    r = f.real("R")
    assert r is not None
    drive_to(f, r, state)
    f._set_state(r, event, 1.0)
    assert r.state is expected
    if expected is S.FAILED and state is not S.FAILED:
        assert r.retry_at == 1.0 + r.retry_s
    if state is S.FAILED and expected is not S.FAILED:
        assert r.retry_at is None


def test_state_table_covers_mib_states() -> None:
    reached = {new for (_, _), new in TRANSITIONS.items()} | {S.IN_SERVICE}
    assert reached >= {
        S.OUT_OF_SERVICE,
        S.IN_SERVICE,
        S.FAILED,
        S.READY_TO_TEST,
        S.TESTING,
        S.MAX_CONNS_THROTTLE,
        S.DFP_THROTTLE,
    }
    assert len(list(states_table())) == len(RealState) * len(RealEvent)
    assert all(isinstance(k, str) for k in itertools.chain(S.__members__))


def test_session_table_limit() -> None:
    f = ServerFarm(max_sessions=2)
    f.add_real("A")
    assert [farm_request(f, k, 1, "c", 0.0).reason for k in "xyz"] == ["", "", "table-full"]
    assert farm_request(f, "x", 1, "c", 0.0).real is not None  # existing sessions still served
    assert f.counters["table_full"] == 1
    assert f.has_events is False


def test_frequent_dfp_reports_do_not_stall_the_ios_cycle() -> None:
    f = farm({"A": 8, "B": 8, "C": 8})
    for a in "ABC":
        f.set_dfp_weight(a, 24, 0.0)
    got: list[str] = []
    for i in range(72 * 3):
        # every agent re-reports (same or slightly different weight) every 5 sessions
        if i % 5 == 0:
            for a in "ABC":
                f.set_dfp_weight(a, 24 - (i // 5) % 2, 0.0)
        d = farm_request(f, f"k{i}", 1, "c", 0.0)
        assert d.real is not None
        got.append(d.real.address)
    c = Counter(got)
    assert max(c.values()) - min(c.values()) <= 24  # all three keep getting their blocks
    assert set(c) == {"A", "B", "C"}


def test_weight_change_caps_the_current_block() -> None:
    f = farm({"A": 4, "B": 1})
    assert new_sessions(f, 2) == ["A", "A"]
    f.set_weight("A", 1)  # the rest of A's block is capped at 1
    assert new_sessions(f, 4, start=10) == ["A", "B", "A", "B"]


def test_expiry_backlog_is_processed_in_bounded_steps() -> None:
    f = farm({"A": 1, "B": 1}, session_s=1.0)
    for i in range(1000):
        farm_request(f, f"k{i}", 1, "c", 0.0)
    assert f.handle_timer(5.0, budget=300) is True
    assert len(f.sessions) == 700
    # a request does only a little of the backlog, but never serves an expired session
    d = farm_request(f, "k999", 2, "c", 5.0)
    assert d.new_session
    while f.handle_timer(5.0, budget=300):
        pass
    assert len(f.sessions) == 1 and sum(r.conns for r in f.reals) == 1
