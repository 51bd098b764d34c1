"""Hypothesis over network schedules: whatever the loss, duplication, reordering and the
moment a bulk download starts, both tables converge to the active's (newest wins)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobileha.core.sync import Mode, Role
from tests.unit.core.test_redundancy import Sim, mk, next_ident, same_tables

N = int(os.environ.get("SYNC_PROP_EXAMPLES", "0")) or (
    20 if os.environ.get("MOBILEHA_FAST") else 200
)


@settings(
    max_examples=N,
    deadline=float(os.environ["SYNC_PROP_DEADLINE_MS"])
    if os.environ.get("SYNC_PROP_DEADLINE_MS")
    else None,
    suppress_health_check=list(HealthCheck),
)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.1, 0.3]),
    dup=st.sampled_from([0.0, 0.1]),
    max_delay=st.sampled_from([0.001, 0.05, 0.5]),
    preload=st.integers(0, 300),
    ops=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 80), st.integers(1, 3)),
        min_size=10,
        max_size=150,
    ),
    download_at=st.one_of(st.none(), st.integers(0, 150)),
    peer_mode=st.booleans(),
    short_lifetimes=st.booleans(),
)
def test_converges_under_any_schedule(
    seed: int,
    loss: float,
    dup: float,
    max_delay: float,
    preload: int,
    ops: list[tuple[int, int, int]],
    download_at: int | None,
    peer_mode: bool,
    short_lifetimes: bool,
) -> None:
    sim = Sim(
        seed=seed,
        loss=loss,
        dup=dup,
        delay=(0.0001, max_delay),
        mode=Mode.PEER if peer_mode else Mode.ACTIVE_STANDBY,
    )
    for i in range(preload):  # bindings the standby can only get by a bulk download
        b = mk(1000 + i)
        sim.a.table[b.key] = b
    if download_at is None and preload:
        download_at = 0
    for n, (op, i, c) in enumerate(ops):
        if n == download_at:
            sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
        ha = sim.b if peer_mode and i % 2 else sim.a  # peer mode: both HAs register MNs
        coa = f"192.0.2.{c}"
        key = (mk(i).home_addr, coa)
        if op == 0 and key in ha.table:
            ha.deregister(key, next_ident(), sim)
        else:
            life = 2 if short_lifetimes and op == 3 else 1800
            ha.register(mk(i, coa, now=sim.now, lifetime=life), sim)
        sim.run(sim.rnd.choice([0.0, 0.001, 0.01, 0.3]), expire=short_lifetimes)
    if download_at is not None and download_at >= len(ops):
        sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    sim.settle(expire=short_lifetimes)  # HAs age their bindings all along
    if short_lifetimes:  # let every short binding expire (the active reports it; the
        sim.run(5.0, expire=True)  # standby also ages its copies by itself)
        sim.settle(expire=True)
    same_tables(sim.a.table, sim.b.table, tol=max_delay + 1.5)
    assert sim.b.sync.ready
