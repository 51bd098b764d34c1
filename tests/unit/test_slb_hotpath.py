"""The SLB hot paths added for speed (issue 5 bench): the session FIFO of core/slb and the
batched socket reader of node/slb keep the exact behaviour of the general paths."""

from __future__ import annotations

import pytest

from mobileha.core.slb import ServerFarm


def farm(session_s: float = 10.0) -> ServerFarm:
    f = ServerFarm("ios-wrr", session_s=session_s, reassign=10**9)
    for a in ("A", "B"):
        f.add_real(a, weight=1)
    return f


def test_fifo_session_expires_exactly_at_its_deadline() -> None:
    f = farm()
    f.request("n1", 1, "c", 0.25)
    f.request("n2", 1, "c", 0.5)
    assert f.next_deadline() == pytest.approx(10.25)
    f.advance(10.24)
    assert set(f.sessions) == {"n1", "n2"}
    f.advance(10.25)
    assert set(f.sessions) == {"n2"}
    assert f.next_deadline() == pytest.approx(10.5)
    f.advance(10.5)
    assert not f.sessions and f.next_deadline() is None
    assert f.counters["expired"] == 2 and all(r.conns == 0 for r in f.reals)


def test_touched_session_moves_to_the_heap_and_expires_late() -> None:
    f = farm()
    f.request("n1", 1, "c", 0.0)
    f.request("n2", 1, "c", 1.0)
    f.request("n1", 2, "c", 5.0)  # touched: expires at 15
    f.advance(10.0)  # n1's FIFO entry surfaces, is re-queued on the heap, does not fire
    assert set(f.sessions) == {"n1", "n2"}
    assert f.next_deadline() == pytest.approx(11.0)
    f.advance(11.0)
    assert set(f.sessions) == {"n1"}
    assert f.next_deadline() == pytest.approx(15.0)
    f.advance(15.0)
    assert not f.sessions


def test_clock_going_backwards_keeps_expiry_exact() -> None:
    f = farm()
    f.request("late", 1, "c", 5.0)
    f.request("early", 1, "c", 2.0)  # not FIFO order any more: goes to the heap
    assert f.next_deadline() == pytest.approx(12.0)
    f.advance(12.0)
    assert set(f.sessions) == {"late"}
    f.advance(15.0)
    assert not f.sessions


def test_expiry_budget_spans_fifo_and_heap() -> None:
    f = farm(session_s=1.0)
    for i in range(30):
        f.request(f"n{i}", 1, "c", i * 0.01)
    f.request("n0", 2, "c", 0.5)  # touched
    assert f.advance(5.0, budget=10) is True
    while f.advance(5.0, budget=10):
        pass
    assert not f.sessions and all(r.conns == 0 for r in f.reals)


def test_repeat_decisions_are_cached_but_correct() -> None:
    f = farm()
    d1 = f.request("n1", 1, "c", 0.0)
    d2 = f.request("n1", 1, "c", 1.0)
    d3 = f.request("n1", 1, "c", 2.0)
    assert d1.new_session and not d1.retransmission
    assert d2.retransmission and not d2.new_session and d2.real is d1.real
    assert d3 == d2
    assert f.counters["retransmissions"] == 2
    assert f.sessions["n1"].retrans_total == 2
