"""The foreign agent re-homes the mobile nodes of a real HA that stopped answering
(RFC 4433 §1: the FA may choose the HA): after ``ha_fallback_after`` relayed requests in a
row without a reply from that HA, the requests that would go to it go to the HA-SLB
virtual address they first went to; a reply from the HA makes it usable again. Fake
clock, sans-IO."""

from __future__ import annotations

import pytest

from mobileha.core.actions import Send
from mobileha.core.foreign_agent import (
    ForeignAgent,
    HomeAgentAnswers,
    HomeAgentUnreachable,
)
from mobileha.core.mobile_node import MobileNode

from .test_foreign_agent import (
    FA_ADDR,
    HERE,
    MN_SRC,
    REAL,
    VIP,
    fa,
    ha_reply,
    new_mn,
    only,
    register,
)

OTHER_REAL = "10.0.1.11"


def rehoming_fa(after: int) -> ForeignAgent:
    """An FA relaying to the HA-SLB at VIP, with the reals behind it configured (their
    replies, for requests sent to the VIP, are accepted without an FA-HA SA)."""
    return fa(home_agent=VIP, ha_fallback_after=after, real_home_agents=(REAL, OTHER_REAL))


def attempt(f: ForeignAgent, m: MobileNode, now: float) -> list[object]:
    """The MN's next registration attempt through the FA (a renewal, or the
    retransmission of one with a new Identification): the FA's actions."""
    sends = m.register(now) or m.handle_timer(now)
    (req,) = [s for s in sends if isinstance(s, Send)]
    return f.receive_datagram(req.payload, MN_SRC, HERE, now)


def test_requests_to_a_silent_real_go_back_to_the_slb_after_n() -> None:
    f = rehoming_fa(3)
    m = new_mn()
    register(f, m, 0.0)  # relayed to the VIP, answered by REAL: REAL is learned
    assert f.visitors[next(iter(f.visitors))].ha_addr == REAL
    now = 100.0
    dsts, notices = [], []
    for i in range(5):  # the MN renews, REAL never answers, the MN retransmits
        acts = (
            attempt(f, m, now + i * 2.0)
            if i
            else f.receive_datagram(m.register(now)[0].payload, MN_SRC, HERE, now)
        )
        dsts += [s.dst[0] for s in only(acts, Send)]
        notices += only(acts, HomeAgentUnreachable)
        m._out.sent_at_last = -1e9  # type: ignore[union-attr]  # due at the next call
    # three unanswered relays to REAL, then the HA-SLB
    assert dsts[:3] == [REAL, REAL, REAL] and set(dsts[3:]) == {VIP}, dsts
    assert notices == [HomeAgentUnreachable(REAL, VIP, 3)]
    assert f.unreachable == {REAL} and f.stats.ha_fallbacks == 1


def test_many_mns_of_a_dead_real_rehome_on_their_first_retransmission() -> None:
    """The count is per HA: three MNs retransmitting once are enough for all of them."""
    f = rehoming_fa(3)
    mns = [new_mn() for _ in range(6)]
    for m in mns:
        register(f, m, 0.0)
    first = [attempt(f, m, 100.0) for m in mns]
    assert all(only(a, Send)[0].dst[0] == REAL for a in first)
    for m in mns:
        m._out.sent_at_last = -1e9  # type: ignore[union-attr]
    second = [attempt(f, m, 101.0) for m in mns]
    dsts = [only(a, Send)[0].dst[0] for a in second]
    assert dsts == [REAL, REAL, VIP, VIP, VIP, VIP], dsts


def test_the_slb_picks_another_real_and_the_visitor_follows() -> None:
    f = rehoming_fa(1)
    m = new_mn()
    register(f, m, 0.0)
    attempt(f, m, 100.0)  # to REAL, lost
    m._out.sent_at_last = -1e9  # type: ignore[union-attr]
    acts = attempt(f, m, 101.0)
    (relay,) = only(acts, Send)
    assert relay.dst[0] == VIP
    out = f.receive_datagram(ha_reply(relay.payload, ha=OTHER_REAL), (OTHER_REAL, 434), HERE, 101.1)
    assert only(out, Send)[0].dst == MN_SRC
    v = next(iter(f.visitors.values()))
    assert v.ha_addr == OTHER_REAL and v.target == VIP
    # REAL comes back: its first reply makes it usable again
    m2 = new_mn()
    register(f, m2, 200.0, src=(REAL, 434))  # the HA-SLB sends this one to REAL again
    assert REAL not in f.unreachable


def test_a_reply_from_the_real_clears_it_and_is_told() -> None:
    f = rehoming_fa(2)
    m, other = new_mn(), new_mn()
    register(f, m, 0.0)
    register(f, other, 0.0)
    for t in (100.0, 101.0, 102.0):  # two unanswered relays to REAL, the third to the VIP
        attempt(f, m, t)
        m._out.sent_at_last = -1e9  # type: ignore[union-attr]
    assert REAL in f.unreachable
    req = other.register(150.0)[0]
    (relay,) = only(f.receive_datagram(req.payload, MN_SRC, HERE, 150.0), Send)
    assert relay.dst[0] == VIP  # re-homed too: REAL is taken as gone
    # the HA-SLB sends it to REAL, which answers after all
    out = f.receive_datagram(ha_reply(relay.payload), (REAL, 434), HERE, 150.1)
    assert HomeAgentAnswers(REAL) in out and REAL not in f.unreachable


def test_never_rehomes_with_zero_or_without_a_fallback() -> None:
    for f in (rehoming_fa(0), fa(ha_fallback_after=1)):
        m = new_mn(ha_addr=REAL) if f.home_agent is None else new_mn()
        register(f, m, 0.0)
        dsts = []
        for i in range(4):
            acts = attempt(f, m, 100.0 + i)
            m._out.sent_at_last = -1e9  # type: ignore[union-attr]
            dsts += [s.dst[0] for s in only(acts, Send)]
        assert set(dsts) == {REAL}, (f.ha_fallback_after, dsts)


def test_timeouts_count_too() -> None:
    """A pending request that times out (78 to the MN) was unanswered."""
    f = fa(home_agent=VIP, ha_fallback_after=1, pending_timeout_s=2.0)
    m = new_mn()
    register(f, m, 0.0)
    f.receive_datagram(m.register(100.0)[0].payload, MN_SRC, HERE, 100.0)
    out = f.handle_timer(102.5)
    assert HomeAgentUnreachable(REAL, VIP, 1) in out


def test_reconfigure_keeps_visitors_and_refuses_what_needs_a_restart() -> None:
    f = rehoming_fa(3)
    m = new_mn()
    register(f, m, 0.0)
    visitors = dict(f.visitors)
    f.reconfigure(max_lifetime=60, ha_fallback_after=0, challenge=False)
    assert f.max_lifetime == 60 and f.ha_fallback_after == 0 and f.visitors == visitors
    with pytest.raises(ValueError, match="without a restart"):
        f.reconfigure(port=435)
    with pytest.raises(ValueError, match="gre_key_format"):
        f.reconfigure(gre_key_format="nope")


def test_an_icmp_unreachable_from_the_real_rehomes_at_once() -> None:
    """A port unreachable from the real HA the request went to (its process is gone) is
    the answer ``ha_fallback_after`` silences would give: the same request goes to the
    HA-SLB at once instead of a 82 to the MN."""
    import struct

    from mobileha.wire import icmp as icmp_wire
    from mobileha.wire.icmp import IcmpError
    from mobileha.wire.ip import IPv4Header, encode_ipv4

    f = rehoming_fa(3)
    m = new_mn()
    register(f, m, 0.0)  # REAL learned
    (relay,) = only(attempt(f, m, 100.0), Send)
    assert relay.dst[0] == REAL
    udp = struct.pack("!HHHH", 434, relay.dst[1], 8 + len(relay.payload), 0)
    ip = encode_ipv4(IPv4Header(FA_ADDR, REAL, 17, 20 + len(udp) + len(relay.payload)))
    err = IcmpError(
        icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_PORT, ip + udp + relay.payload
    ).encode()
    out = f.receive_icmp(err, REAL, FA_ADDR, 100.1)
    (again,) = only(out, Send)
    assert again.dst[0] == VIP and again.payload == relay.payload
    assert only(out, HomeAgentUnreachable) == [HomeAgentUnreachable(REAL, VIP, 3)]
    assert REAL in f.unreachable and f.stats.icmp_errors == 1
    # the real HA behind the VIP answers: the MN is registered, nobody got an 8x code
    reply = f.receive_datagram(
        ha_reply(again.payload, ha=OTHER_REAL), (OTHER_REAL, 434), HERE, 100.2
    )
    (to_mn,) = only(reply, Send)
    assert to_mn.dst == MN_SRC and to_mn.payload[1] == 0
