"""A real whose DFP agent is lost and which stops answering is failed at once: the first
session it leaves unanswered (one repeated request) fails it and moves, instead of waiting
for ``reassign`` retransmissions and ``faildetect numconns`` failures. A real that still
reports, or whose agent reports again, keeps the normal thresholds. Fake clock."""

from __future__ import annotations

from mobileha.core.slb import EVENT_REASONS, RealEvent, RealState, ServerFarm
from tests.helpers import farm_request

A, B = "10.0.1.10", "10.0.1.11"


def farm() -> ServerFarm:
    f = ServerFarm("smooth-wrr", session_s=10.0, reassign=3)
    for addr in (A, B):
        f.add_real(addr, faildetect_numconns=8, faildetect_numclients=8)
        f.set_dfp_weight(addr, 4, 0.0)
    f.drain_events()
    return f


def session_on(f: ServerFarm, real: str, now: float) -> str:
    """The NAI of a new session that the predictor gave to ``real``."""
    for i in range(10):
        nai = f"mn{i}-{now}@x"
        if farm_request(f, nai, 1, "10.0.2.2", now).real.address == real:
            return nai
    raise AssertionError(f"no session on {real}")


def test_lost_agent_and_one_unanswered_request_fail_the_real() -> None:
    f = farm()
    nai = session_on(f, A, 1.0)
    f.set_dfp_weight(A, None, 2.0)  # the agent's connection closed (kill -9)
    ra = f.real(A)
    assert ra is not None and ra.state is RealState.IN_SERVICE and ra.dfp_lost
    d = farm_request(f, nai, 1, "10.0.2.2", 3.0)  # the FA repeats: no answer from A
    assert d.real is not None and d.real.address == B and d.reassigned_from is ra
    assert ra.state is RealState.FAILED
    (ev,) = [e for e in f.drain_events() if e.new is RealState.FAILED]
    assert ev.event is RealEvent.FAIL and "DFP agent lost" in ev.reason
    # new sessions all go to B now
    assert {farm_request(f, f"n{i}@x", 1, "10.0.2.2", 4.0).real.address for i in range(6)} == {B}


def test_a_reporting_real_keeps_the_thresholds() -> None:
    f = farm()
    nai = session_on(f, A, 1.0)
    d = farm_request(f, nai, 1, "10.0.2.2", 2.0)
    assert d.real is not None and d.real.address == A and d.reassigned_from is None
    ra = f.real(A)
    assert ra is not None and ra.state is RealState.IN_SERVICE


def test_a_report_after_the_loss_restores_the_thresholds() -> None:
    f = farm()
    nai = session_on(f, A, 1.0)
    f.set_dfp_weight(A, None, 2.0)
    f.set_dfp_weight(A, 4, 2.5)  # the agent reconnected and reported
    ra = f.real(A)
    assert ra is not None and not ra.dfp_lost
    d = farm_request(f, nai, 1, "10.0.2.2", 3.0)
    assert d.real is ra and ra.state is RealState.IN_SERVICE


def test_the_failure_reason_names_the_threshold() -> None:
    f = ServerFarm("smooth-wrr", session_s=10.0, reassign=1)
    f.add_real(A, faildetect_numconns=2, faildetect_numclients=8)
    f.add_real(B)
    f.set_inservice(B, False)
    f.drain_events()
    for i in range(2):  # two clients (one client's failures count once per window)
        farm_request(f, f"m{i}@x", 1, f"10.0.2.{2 + i}", 1.0)
        farm_request(f, f"m{i}@x", 1, f"10.0.2.{2 + i}", 2.0)
    (ev,) = [e for e in f.drain_events() if e.new is RealState.FAILED]
    assert ev.reason == "2 failures (faildetect numconns)"


def test_every_event_has_a_reason_in_words() -> None:
    assert set(EVENT_REASONS) == set(RealEvent)
