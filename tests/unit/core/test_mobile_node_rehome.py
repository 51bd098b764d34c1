"""A mobile node whose learned home agent stops answering names the configured HA (the
HA-SLB virtual address) again after ``ha_fallback_after`` unanswered transmissions
(RFC 4433 §5.1.3), with a notice; never for a deregistration, never with 0. Fake clock."""

from __future__ import annotations

import pytest

from mobileha.core.actions import Send
from mobileha.core.mobile_node import HaFallback, MnState
from mobileha.wire.mip import RegistrationRequest

from .test_mobile_node import HERE, mn, reply_for

VIP, REAL = "10.0.0.100", "10.0.1.100"


def bound(colocated: bool, **kw: object) -> tuple[object, float]:
    extra: dict[str, object] = {"lifetime": 100, **kw}
    if colocated:
        extra.update(foreign_agent=None, care_of="192.0.2.50")
    m = mn(**extra)
    (req,) = m.register(0.0)
    m.receive_datagram(reply_for(req.payload, ha=REAL), (REAL, 434), HERE, 0.01)
    assert m.state is MnState.REGISTERED and m.ha_addr == REAL
    return m, m.renew_at  # type: ignore[return-value]


def run_until_fallback(m: object, start: float) -> tuple[list[object], float]:
    actions: list[object] = []
    now = start
    actions += m.handle_timer(now)  # type: ignore[attr-defined]
    for _ in range(10):
        now = m.get_timer()  # type: ignore[attr-defined]
        acts = m.handle_timer(now)  # type: ignore[attr-defined]
        actions += acts
        if any(isinstance(a, HaFallback) for a in acts):
            break
    return actions, now


@pytest.mark.parametrize("colocated", [False, True], ids=["via-fa", "co-located"])
def test_learned_ha_dropped_after_n_unanswered(colocated: bool) -> None:
    m, renew = bound(colocated, ha_fallback_after=3)
    actions, _ = run_until_fallback(m, renew)
    sends = [a for a in actions if isinstance(a, Send)]
    fields = [RegistrationRequest.decode(s.payload).ha_addr for s in sends]
    # the renewal and two retransmissions name REAL, then the configured VIP
    assert fields == [REAL, REAL, REAL, VIP], fields
    assert [a for a in actions if isinstance(a, HaFallback)] == [
        HaFallback(m.nai, REAL, VIP, 3)  # type: ignore[attr-defined]
    ]
    if colocated:  # straight to the HA: the datagram goes to the VIP too
        assert [s.dst[0] for s in sends] == [REAL, REAL, REAL, VIP]
    assert m.ha_addr == VIP and m.stats.ha_fallbacks == 1  # type: ignore[attr-defined]
    # the HA-SLB's real answers: it is the MN's HA now
    last = sends[-1]
    m.receive_datagram(reply_for(last.payload, ha="10.0.3.100"), ("10.0.3.100", 434), HERE, 99)  # type: ignore[attr-defined]
    assert m.ha_addr == "10.0.3.100"  # type: ignore[attr-defined]


def test_never_with_zero() -> None:
    m, renew = bound(False, ha_fallback_after=0)
    actions, _ = run_until_fallback(m, renew)
    fields = {RegistrationRequest.decode(a.payload).ha_addr for a in actions if isinstance(a, Send)}
    assert fields == {REAL} and not any(isinstance(a, HaFallback) for a in actions)


def test_not_for_a_deregistration() -> None:
    m, _ = bound(False, ha_fallback_after=1)
    m.deregister(10.0)  # type: ignore[attr-defined]
    actions: list[object] = []
    for _ in range(4):
        actions += m.handle_timer(m.get_timer())  # type: ignore[attr-defined]
    assert not any(isinstance(a, HaFallback) for a in actions)


def test_a_new_ha_refusing_the_old_dynamic_address_is_asked_for_one() -> None:
    """Re-homed to another real (the FA sent the renewal to the HA-SLB): that HA refuses
    the address the previous HA assigned (129); the MN asks it for an address."""
    m, renew = bound(False)
    old_hoa = m.home_addr  # type: ignore[attr-defined]
    (renewal,) = m.handle_timer(renew)  # type: ignore[attr-defined]
    assert RegistrationRequest.decode(renewal.payload).home_addr == old_hoa
    other = "10.0.3.100"
    out = m.receive_datagram(
        reply_for(renewal.payload, code=129, ha=other), (other, 434), HERE, renew + 1
    )  # type: ignore[attr-defined]
    (retry,) = out
    assert RegistrationRequest.decode(retry.payload).home_addr == "0.0.0.0"
    m.receive_datagram(
        reply_for(retry.payload, ha=other, hoa="10.1.128.9"), (other, 434), HERE, renew + 1.1
    )  # type: ignore[attr-defined]
    assert m.state is MnState.REGISTERED and m.home_addr == "10.1.128.9"  # type: ignore[attr-defined]
    assert m.ha_addr == other and m.stats.repairs == 1  # type: ignore[attr-defined]


def test_the_assigning_ha_refusing_is_final() -> None:
    """129 from the HA that assigned the address is its answer (no retry loop)."""
    m, renew = bound(False)
    (renewal,) = m.handle_timer(renew)  # type: ignore[attr-defined]
    out = m.receive_datagram(
        reply_for(renewal.payload, code=129, ha=REAL), (REAL, 434), HERE, renew + 1
    )  # type: ignore[attr-defined]
    assert out == [] and m.stats.repairs == 0  # type: ignore[attr-defined]
