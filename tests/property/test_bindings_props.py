"""BindingTable invariants against a plain model: random add/remove/refresh/expire."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.core.binding import Binding
from mobileha.core.bindings import BindingTable, TableFull

HOAS = [f"10.1.0.{i}" for i in range(1, 6)]
COAS = ["c1", "c2", "c3"]
NAIS = [None, "a@x", "b@x"]

op = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(HOAS),
        st.sampled_from(COAS),
        st.sampled_from(NAIS),
        st.integers(1, 30),
        st.booleans(),
    ),
    st.tuples(st.just("remove"), st.sampled_from(HOAS), st.sampled_from(COAS)),
    st.tuples(st.just("remove_home"), st.sampled_from(HOAS)),
    st.tuples(st.just("refresh"), st.sampled_from(HOAS), st.sampled_from(COAS), st.integers(1, 30)),
    st.tuples(st.just("tick"), st.floats(0, 10)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=60), st.integers(1, 8))
def test_table_matches_model(ops: list[tuple], cap: int) -> None:
    t = BindingTable(max_bindings=cap)
    model: dict[tuple[str, str], Binding] = {}
    now = 0.0
    for o in ops:
        kind = o[0]
        if kind == "add":
            _, hoa, coa, nai, life, simul = o
            b = Binding(hoa, coa, "ha", life, t.deadline(now, life), 1, 0, nai=nai)
            same_hoa = [k for k in model if k[0] == hoa]
            replaces = [k for k in same_hoa if not simul or k[1] == coa]
            full = not replaces and len(model) >= cap
            try:
                t.add(b, replace=not simul)
            except TableFull:
                assert full
                continue
            assert not full
            for k in replaces:
                del model[k]
            model[(hoa, coa)] = b
        elif kind == "remove":
            b = model.pop((o[1], o[2]), None)
            assert (t.remove_key(o[1], o[2]) is not None) == (b is not None)
        elif kind == "remove_home":
            gone = {k for k in model if k[0] == o[1]}
            assert {(x.home_addr, x.care_of) for x in t.remove_home(o[1])} == gone
            for k in gone:
                del model[k]
        elif kind == "refresh":
            b = model.get((o[1], o[2]))
            if b is not None:
                t.refresh(b, t.deadline(now, o[3]))
        else:
            now += o[1]
            expired = t.expire(now)
            want = {k for k, b in model.items() if b.expires <= now}
            assert {(b.home_addr, b.care_of) for b in expired} == want
            for k in want:
                del model[k]
        # invariants
        assert len(t) == len(model) <= cap
        assert {(b.home_addr, b.care_of) for b in t} == set(model)
        for (hoa, coa), b in model.items():
            assert t.find(hoa, coa) is b
            if b.nai is not None:
                assert hoa in t.home_addresses_of(b.nai)
        for nai in NAIS:
            if nai is not None:
                assert set(t.home_addresses_of(nai)) == {
                    k[0] for k, b in model.items() if b.nai == nai
                }
        nd = t.next_deadline()
        if model:
            finite = [b.expires for b in model.values() if b.expires != math.inf]
            if finite:
                assert nd is not None and nd <= min(finite)
