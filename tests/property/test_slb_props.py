"""Server farm invariants under random operations (hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.core.slb import PICKABLE, RealState, ServerFarm
from tests.helpers import farm_request

ADDRS = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]

op = st.one_of(
    st.tuples(st.just("req"), st.integers(0, 15), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.floats(0.0, 5.0)),
    st.tuples(st.just("dfp"), st.sampled_from(ADDRS), st.none() | st.integers(0, 24)),
    st.tuples(st.just("weight"), st.sampled_from(ADDRS), st.integers(0, 5)),
    st.tuples(st.just("service"), st.sampled_from(ADDRS), st.booleans()),
    st.tuples(st.just("remove"), st.sampled_from(ADDRS)),
    st.tuples(st.just("add"), st.sampled_from(ADDRS), st.integers(0, 5)),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ios-wrr", "smooth-wrr"]), st.lists(op, max_size=120))
def test_farm_invariants(predictor: str, ops: list[tuple[object, ...]]) -> None:
    f = ServerFarm(predictor=predictor, session_s=3.0, reassign=2)
    for a in ADDRS[:3]:
        r = f.add_real(a, weight=2)
        r.faildetect_numconns = 2
        r.retry_s = 4.0
    now = 0.0
    removed = []
    for o in ops:
        kind = o[0]
        if kind == "req":
            _, k, ident, client = o
            before = {r.address: (r.state, r.eligible()) for r in f.reals}
            existed = f"n{k}" in f.sessions and f.sessions[f"n{k}"].expires > now
            d = farm_request(f, f"n{k}", int(ident), f"10.0.2.{client}", now)  # type: ignore[arg-type]
            if d.real is not None and d.new_session and not existed:
                # a new session only ever goes to a real that was eligible
                st_, ok = before.get(d.real.address, (None, False))
                assert ok and st_ in PICKABLE
            if d.real is not None:
                assert not d.real.removed
        elif kind == "tick":
            now += float(o[1])  # type: ignore[arg-type]
            f.handle_timer(now)
        elif kind == "dfp":
            f.set_dfp_weight(o[1], o[2], now)  # type: ignore[arg-type]
        elif f.real(o[1]) is None:  # type: ignore[arg-type]
            if kind == "add":
                f.add_real(o[1], now, weight=o[2])  # type: ignore[arg-type]
        elif kind == "weight":
            f.set_weight(o[1], o[2])  # type: ignore[arg-type]
        elif kind == "service":
            f.set_inservice(o[1], o[2], now)  # type: ignore[arg-type]
        elif kind == "remove":
            removed.append(f.remove_real(o[1]))  # type: ignore[arg-type]
        # invariants after every step
        per_real = Counter(id(s.real) for s in f.sessions.values())
        for r in [*f.reals, *removed]:
            assert r.conns == per_real.get(id(r), 0)
            assert r.conns >= 0
            assert (r.state is RealState.FAILED) == (r.retry_at is not None) or r.removed
            if r.state is RealState.TESTING:
                assert r.test_session is not None and r.test_session.test
        assert len(f._heap) <= len(f.sessions) + 2 * len(f.reals) + len(removed) + 64
        live = [s for s in f.sessions.values() if s.expires > now]
        assert all(s.key in f.sessions for s in live)
    f.handle_timer(now + 100.0)
    assert not f.sessions
    assert all(r.conns == 0 for r in [*f.reals, *removed])
