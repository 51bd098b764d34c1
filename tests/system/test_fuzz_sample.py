"""A sample of bench/fuzz.py in the suite: 1,500 mutated inputs per target against the
whole cluster of ``mobileha run`` processes (the full run sends 50,000)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.fuzz import run

pytestmark = pytest.mark.timeout(300)


def test_fuzzed_cluster_survives_and_still_registers(tmp_path: Path) -> None:
    r = run(tmp_path, 1500, seed=7, settle_s=3.0)
    assert all(r.alive.values()), r.alive
    assert all(n == 1500 for t, n in r.sent.items() if t != "dfp manager"), r.sent
    assert r.sent.get("dfp manager", 0) > 0, r.sent
    assert all(v <= 1 for v in r.sockets.values()), r.sockets
    assert sum(v for k, v in r.sockets.items() if " VIP " in k) == 1, r.sockets
    grown = {n: after - before for n, (before, after) in r.rss_kb.items()}
    assert all(g < 20_000 for g in grown.values()), grown  # kB; the full run checks 10 MB
    assert r.final_code in (0, 1)
