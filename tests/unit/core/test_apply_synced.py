"""``HomeAgent.apply_synced_all``: a run of synced bindings installed in one loop gives the
same table, deadlines, allocations and actions as one ``apply_synced`` per binding."""

from __future__ import annotations

import math
from dataclasses import replace

from mobileha.core.binding import FLAG_S, Binding
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings, RestoreBinding
from mobileha.core.security import SecurityAssociations

HA = "10.0.1.100"
NOW = 1000.3


def _ha(active: bool, max_bindings: int = 100) -> HomeAgent:
    ha = HomeAgent(
        HomeAgentSettings(HA, home_prefix="10.1.0.0/24", max_bindings=max_bindings),
        SecurityAssociations(),
    )
    ha.active = active
    return ha


def _bindings() -> list[Binding]:
    """Deadlines repeated, changing, infinite, in the past; an S-flag pair; a replacement."""
    expires = [NOW + 600, NOW + 600, NOW + 600.0, NOW + 599, math.inf, NOW - 5, NOW + 600]
    out = [
        Binding(f"10.1.0.{i + 1}", "192.0.2.1", HA, 600, e, 100 + i, 0, nai=f"mn{i}@x")
        for i, e in enumerate(expires)
    ]
    out.append(Binding("10.1.0.1", "192.0.2.9", HA, 600, NOW + 600, 200, 0))  # replaces
    out.append(Binding("10.1.0.50", "192.0.2.1", HA, 0xFFFF, NOW + 10, 300, FLAG_S))
    out.append(Binding("10.1.0.50", "192.0.2.2", HA, 600, NOW + 601, 301, FLAG_S))
    return out


def _state(ha: HomeAgent) -> list[tuple[object, ...]]:
    return sorted((b.key, b.expires, b.ident, ha.is_dynamic(b.home_addr)) for b in ha.table)


def test_a_run_equals_one_call_per_binding() -> None:
    for active in (False, True):
        one, run = _ha(active), _ha(active)
        items = [
            (b, i % 3 == 0, None, None) for i, b in enumerate(_bindings())
        ]  # fmt: skip
        singly: list[object] = []
        for b, dynamic, nonce, sa in items:
            singly += one.apply_synced(replace(b), NOW, dynamic, nonce, sa)
        batched = run.apply_synced_all(items, NOW)
        assert _state(one) == _state(run)
        assert any(dynamic for *_, dynamic in _state(run))  # from the pool: allocated
        assert [type(a) for a in singly] == [type(a) for a in batched]
        assert (RestoreBinding in map(type, batched)) is active
        # deadlines are shared floats of whole seconds, never before now
        for b in run.table:
            assert b.expires == math.inf or (b.expires == int(b.expires) and b.expires >= NOW)


def test_a_full_table_drops_the_binding_and_goes_on() -> None:
    ha = _ha(False, max_bindings=2)
    all_ = _bindings()
    bs = [*all_[:3], all_[7]]  # the last one replaces the first
    assert ha.apply_synced_all([(b, False, None, None) for b in bs], NOW) == []
    assert ha.drops == {"sync-table-full": 1}
    assert sorted(b.key for b in ha.table) == [("10.1.0.1", "192.0.2.9"), ("10.1.0.2", "192.0.2.1")]
