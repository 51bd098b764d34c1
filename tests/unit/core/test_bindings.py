"""BindingTable: indexes, S flag, replace, NAI index, one expiry wheel, max_bindings."""

from __future__ import annotations

import pytest

from mobileha.core.binding import Binding
from mobileha.core.bindings import INFINITE, BindingTable, TableFull


def mk(
    t: BindingTable, hoa: str, coa: str, life: int = 100, now: float = 0.0, **kw: object
) -> Binding:
    return Binding(hoa, coa, "10.0.0.1", life, t.deadline(now, life), 1, 0, **kw)  # type: ignore[arg-type]


def test_add_find_remove() -> None:
    t = BindingTable()
    b = mk(t, "10.1.0.1", "10.0.2.2", nai="a@x")
    assert t.add(b) == []
    assert len(t) == 1 and t.find("10.1.0.1", "10.0.2.2") is b
    assert t.lookup("10.1.0.1") is b and b in t
    assert t.home_address_of("a@x") == "10.1.0.1"
    assert t.remove(b) and len(t) == 0 and t.home_address_of("a@x") is None
    assert not t.remove(b)


def test_replace_and_simultaneous() -> None:
    t = BindingTable()
    a = mk(t, "10.1.0.1", "c1", nai="n")
    b = mk(t, "10.1.0.1", "c2", nai="n")
    t.add(a)
    assert t.add(b, replace=False) == []
    assert {x.care_of for x in t.bindings_of("10.1.0.1")} == {"c1", "c2"} and len(t) == 2
    b2 = mk(t, "10.1.0.1", "c2", nai="n")
    assert t.add(b2, replace=False) == [b]  # same CoA replaced
    assert len(t) == 2
    c = mk(t, "10.1.0.1", "c3", nai="n")
    removed = t.add(c)  # no S: replaces all
    assert {x.care_of for x in removed} == {"c1", "c2"}
    assert t.bindings_of("10.1.0.1") == [c] and len(t) == 1
    assert t.home_address_of("n") == "10.1.0.1"
    assert t.remove_home("10.1.0.1") == [c] and len(t) == 0


def test_several_home_addresses_per_nai() -> None:
    t = BindingTable()
    t.add(mk(t, "10.1.0.1", "c", nai="n"))
    t.add(mk(t, "10.1.0.2", "c", nai="n"))
    assert sorted(t.home_addresses_of("n")) == ["10.1.0.1", "10.1.0.2"]
    t.remove_home("10.1.0.2")
    assert t.home_addresses_of("n") == ["10.1.0.1"]


def test_max_bindings() -> None:
    t = BindingTable(max_bindings=2)
    t.add(mk(t, "h1", "c"))
    t.add(mk(t, "h2", "c"))
    with pytest.raises(TableFull):
        t.add(mk(t, "h3", "c"))
    with pytest.raises(TableFull):
        t.add(mk(t, "h1", "c2"), replace=False)
    t.add(mk(t, "h1", "c9"))  # replacing is always possible
    assert len(t) == 2


def test_expiry_one_wheel_and_refresh() -> None:
    t = BindingTable()
    a = mk(t, "h1", "c", life=10, now=0.5)  # deadline rounded up: 11
    b = mk(t, "h2", "c", life=20)
    t.add(a)
    t.add(b)
    assert a.expires == 11.0 and t.next_deadline() == 11.0
    assert t.expire(10.9) == []
    assert t.expire(11) == [a]
    t.refresh(b, t.deadline(15, 20))  # later: nothing moves now
    assert t.expire(20) == [] and b in t  # stale entry skipped, moved to 35
    assert t.next_deadline() == 35.0
    t.refresh(b, t.deadline(21, 5))  # earlier: a new entry
    assert t.expire(26) == [b] and len(t) == 0


def test_deleted_binding_not_expired_again() -> None:
    t = BindingTable()
    a = mk(t, "h1", "c", life=10)
    t.add(a)
    t.remove(a)
    assert t.expire(100) == [] and t.next_deadline() is None


def test_infinite_lifetime() -> None:
    t = BindingTable()
    a = mk(t, "h1", "c", life=0xFFFF)
    assert a.expires == INFINITE
    t.add(a)
    assert t.next_deadline() is None and t.expire(1e12) == []


def test_iteration_covers_lists() -> None:
    t = BindingTable()
    t.add(mk(t, "h1", "c1"))
    t.add(mk(t, "h1", "c2"), replace=False)
    t.add(mk(t, "h2", "c1"))
    assert sorted((b.home_addr, b.care_of) for b in t) == [("h1", "c1"), ("h1", "c2"), ("h2", "c1")]
    assert t.home_count() == 2


def test_shared_deadline_floats() -> None:
    t = BindingTable()
    assert t.deadline(1.2, 100) is t.deadline(1.7, 100)


def test_unused_deadline_floats_are_pruned() -> None:
    t = BindingTable()
    for i in range(3000):
        t.deadline(float(i), 10)  # handed out, never used (e.g. the table was full)
    t.add(mk(t, "h1", "c", life=10, now=5000.0))
    t.expire(4000.0)
    assert len(t._floats) <= 2
