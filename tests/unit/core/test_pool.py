"""AddressPool: allocation, NAI stickiness, exhaustion, export/import."""

from __future__ import annotations

from mobileha.core.pool import AddressPool


def test_allocate_exclude_exhaust_release() -> None:
    p = AddressPool("10.1.0.0/29", exclude=["10.1.0.1"])  # .1-.6 usable, .1 excluded
    got = [p.allocate(f"n{i}") for i in range(5)]
    assert got == ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
    assert p.allocate("n9") is None and p.free == 0 and p.allocated == 5
    assert p.release("10.1.0.4") and not p.release("10.1.0.4")
    assert p.allocate("n9") == "10.1.0.4"


def test_nai_gets_its_address_back() -> None:
    p = AddressPool("10.1.0.0/24")
    a = p.allocate("alice")
    p.allocate("bob")
    assert a is not None and p.release(a)
    p.allocate("carol")  # next-fit does not reuse a at once
    assert p.allocate("alice") == a


def test_export_import() -> None:
    p = AddressPool("10.1.0.0/24")
    addrs = [p.allocate() for _ in range(3)]
    q = AddressPool("10.1.0.0/24")
    assert q.import_(p.export()) == 3
    assert all(q.is_allocated(a) for a in addrs if a)
    assert q.allocate() not in addrs
    assert not q.mark("192.168.0.1") and "10.1.0.9" in q and "10.2.0.1" not in q


def test_rebuilt_keeps_allocations_inside_and_the_nais_addresses() -> None:
    """A reload with another pool: bound addresses inside it stay allocated, one outside it
    is no longer the pool's; a newly excluded address that is bound stays allocated until
    released; the NAIs get their previous addresses back."""
    p = AddressPool("10.1.0.0/24")
    a = p.allocate("a@x")
    b = p.allocate("b@x")
    assert a is not None and b is not None
    q = p.rebuilt("10.1.0.0/25", exclude=[b])
    assert q.is_allocated(a) and q.is_allocated(b)
    assert q.allocated == 2
    q.release(a)
    assert q.allocate("a@x") == a  # its previous address
    r = p.rebuilt("10.1.1.0/24")
    assert not r.is_allocated(a) and r.allocated == 0
