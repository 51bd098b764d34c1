"""BindingTable invariants against a plain model: random add/remove/refresh/expire."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.core.binding import FLAG_S, Binding
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


def _state(t: BindingTable) -> tuple[object, ...]:
    """Everything a table holds: the home-address index in its order (bindings by their
    Identification, unique per binding here), the NAI index, the count, the wheel as sets
    per second, the heap's seconds."""
    index = [(h, [x.ident for x in (v if isinstance(v, list) else [v])]) for h, v in t._hoa.items()]
    nais = {n: t.home_addresses_of(n) for n in [*NAIS, "held@x"] if n is not None}
    wheel = {k: sorted(b.ident for b in lst) for k, lst in t._wheel.items()}
    return index, nais, len(t), wheel, sorted(set(t._heap))


run_item = st.tuples(
    st.sampled_from(HOAS),
    st.sampled_from(COAS),
    st.sampled_from([*NAIS, "held@x"]),
    st.one_of(st.integers(1, 30), st.just(0xFFFF)),
    st.booleans(),
)


def _bindings(t: BindingTable, items: list[tuple], now: float, first: int) -> list[Binding]:
    return [
        Binding(hoa, coa, "ha", life, t.deadline(now, life), first + i,
                FLAG_S if simul else 0, nai=nai)
        for i, (hoa, coa, nai, life, simul) in enumerate(items)
    ]  # fmt: skip


def _add_all(t: BindingTable, bs: list[Binding]) -> list[int]:
    """add() each binding in order; the Identifications of those refused (TableFull)."""
    full = []
    for b in bs:
        try:
            t.add(b, replace=not (b.flags & FLAG_S))
        except TableFull:
            full.append(b.ident)
    return full


@settings(max_examples=300, deadline=None)
@given(st.lists(run_item, max_size=8), st.lists(run_item, max_size=12), st.integers(1, 8))
def test_add_new_then_add_equals_add_in_order(
    before: list[tuple], run: list[tuple], cap: int
) -> None:
    """A run installed with add_new (home addresses without a binding) and add for the
    rest leaves the table as adding the run in order does, TableFull included."""
    from mobileha.core.security import MobilitySA, SecurityAssociations

    tables = []
    for _ in range(2):
        sas = SecurityAssociations()
        sas.add_mn(MobilitySA(1000, bytes(16), nai="held@x"))
        t = BindingTable(max_bindings=cap, holder_of=sas.nai_holder)
        _add_all(t, _bindings(t, before, 0.0, 1000))
        tables.append((t, sas))
    (seq, seq_sas), (fast, fast_sas) = tables
    full_seq = _add_all(seq, _bindings(seq, run, 5.0, 0))
    full_fast = _add_all(fast, fast.add_new(_bindings(fast, run, 5.0, 0)))
    assert full_fast == full_seq
    assert _state(fast) == _state(seq)
    held = fast_sas.nai_holder("held@x"), seq_sas.nai_holder("held@x")
    assert held[0] is not None and held[1] is not None and held[0].bound == held[1].bound
    assert [b.ident for b in fast.live_snapshot()] == [b.ident for b in seq if b in seq]


change = st.one_of(
    st.tuples(st.just("add"), run_item),
    st.tuples(st.just("remove"), st.sampled_from(HOAS), st.sampled_from(COAS)),
    st.tuples(st.just("remove_home"), st.sampled_from(HOAS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(run_item, max_size=12), st.lists(st.lists(change, max_size=3), max_size=14))
def test_live_snapshot_while_the_table_changes(items: list[tuple], steps: list[list]) -> None:
    """A bulk transfer's iteration: the table changes between two bindings yielded. Every
    binding yielded is in the table when yielded, none twice, and every binding of the
    table when the iteration began that was never removed is yielded."""
    t = BindingTable(max_bindings=64)
    _add_all(t, _bindings(t, items, 0.0, 0))
    start = list(t)
    removed: set[int] = set()
    it = t.live_snapshot()
    seen: list[Binding] = []
    ident = 1000
    for ops in steps:
        b = next(it, None)
        if b is None:
            break
        assert b in t and all(x is not b for x in seen)
        seen.append(b)
        for o in ops:
            if o[0] == "add":
                (nb,) = _bindings(t, [o[1]], 1.0, ident)
                ident += 1
                try:
                    gone = t.add(nb, replace=not (nb.flags & FLAG_S))
                except TableFull:
                    continue
            elif o[0] == "remove":
                x = t.remove_key(o[1], o[2])
                gone = [] if x is None else [x]
            else:
                gone = t.remove_home(o[1])
            removed.update(id(x) for x in gone)
    for b in it:  # the rest, the table unchanged
        assert b in t and all(x is not b for x in seen)
        seen.append(b)
    got = {id(x) for x in seen}
    assert all(id(b) in got for b in start if id(b) not in removed)
