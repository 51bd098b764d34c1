"""BindingTable: indexes, S flag, replace, NAI index, one expiry wheel, max_bindings."""

from __future__ import annotations

import pytest

from mobileha.core.binding import Binding
from mobileha.core.bindings import INFINITE, BindingTable, TableFull
from mobileha.core.security import MobilitySA, SecurityAssociations


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


# ---------------------------------------------------------------- NAI index held by SAs


def held_table(*nais: str) -> tuple[BindingTable, SecurityAssociations]:
    """A table whose NAI index lives on the SAs of ``nais`` (as a home agent sets it up)."""
    sas = SecurityAssociations()
    for n in nais:
        sas.add_mn(MobilitySA(1000, bytes(16), nai=n))
    t = BindingTable(holder_of=sas.nai_holder)
    sas.released = t.relink
    return t, sas


def test_nai_index_on_the_sa_and_nai_string_shared() -> None:
    t, sas = held_table("a@x")
    sa = sas.nai_holder("a@x")
    assert sa is not None and sa.nai is not None
    b = mk(t, "10.1.0.1", "c1", nai="".join(["a", "@x"]))  # a string of its own
    assert b.nai is not sa.nai
    t.add(b)
    assert b.nai is sa.nai  # the binding keeps the SA's string, not its own copy
    assert sa.bound == "10.1.0.1" and t._nai == {}
    assert t.home_address_of("a@x") == "10.1.0.1" and t.home_addresses_of("a@x") == ["10.1.0.1"]
    t.add(mk(t, "10.1.0.2", "c1", nai="a@x"))  # a second home address of the NAI
    assert sa.bound == ["10.1.0.1", "10.1.0.2"] and t.home_address_of("a@x") == "10.1.0.2"
    t.remove_home("10.1.0.1")
    assert sa.bound == "10.1.0.2"
    t.remove_home("10.1.0.2")
    assert sa.bound is None and t.home_address_of("a@x") is None


def test_nai_without_sa_stays_in_the_table() -> None:
    t, sas = held_table("a@x")
    t.add(mk(t, "10.1.0.1", "c1", nai="b@x"))
    assert t._nai == {"b@x": "10.1.0.1"} and t.home_address_of("b@x") == "10.1.0.1"
    # an SA configured later for b@x: the index entry already in the table is still found
    sas.add_mn(MobilitySA(1000, bytes(16), nai="b@x"))
    t.add(mk(t, "10.1.0.2", "c1", nai="b@x"), replace=False)
    assert t.home_addresses_of("b@x") == ["10.1.0.2", "10.1.0.1"]
    t.remove_home("10.1.0.1")
    t.remove_home("10.1.0.2")
    assert t._nai == {} and t.home_addresses_of("b@x") == []


def test_nai_index_follows_the_sa_that_replaces_it() -> None:
    t, sas = held_table()
    old = MobilitySA(1000, bytes(16), nai="a@x", source="aaa")
    sas.put_cached(old)
    t.add(mk(t, "10.1.0.1", "c1", nai="a@x"))
    assert old.bound == "10.1.0.1"
    new = MobilitySA(1001, bytes(16), nai="a@x", source="aaa")
    sas.put_cached(new)  # fetched again from AAA
    assert new.bound == "10.1.0.1" and old.bound is None
    sas.drop_cached("a@x")  # gone from the cache while bound: back into the table's dict
    assert new.bound is None and t._nai == {"a@x": "10.1.0.1"}
    assert t.home_address_of("a@x") == "10.1.0.1"
    t.remove_home("10.1.0.1")
    assert t._nai == {}


def test_nai_index_moves_to_the_next_sa_of_the_nai() -> None:
    t, sas = held_table()
    first = MobilitySA(1000, bytes(16), nai="a@x")
    second = MobilitySA(1001, bytes(16), nai="a@x")
    sas.add_mn(first)
    sas.add_mn(second)
    t.add(mk(t, "10.1.0.1", "c1", nai="a@x"))
    assert first.bound == "10.1.0.1" and second.bound is None
    sas.remove_mn("a@x", 1000)
    assert second.bound == "10.1.0.1" and first.bound is None
    sas.remove_mn("a@x", 1001)
    assert t._nai == {"a@x": "10.1.0.1"}


def test_clear_forgets_the_index_on_the_sas() -> None:
    t, sas = held_table("a@x")
    t.add(mk(t, "10.1.0.1", "c1", nai="a@x"))
    t.clear()
    holder = sas.nai_holder("a@x")
    assert holder is not None and holder.bound is None and t.home_address_of("a@x") is None
