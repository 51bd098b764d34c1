"""core.hsrp: every cell of the RFC 2281 §5.7 table (states x events a-l), plus the guards.

The expected table here is transcribed separately from RFC 2281 §5.7 (not imported from the
code). Each cell is driven through the public inputs where the event can happen that way
(start/stop, timers, received packets) and checked by its effects: next state, timers started
(A/B, with the Hello's Holdtime when the Hello is from the active/standby router) or stopped
(C/D), parameters learned (E), Hello/Coup/Resign sent (F/G/H), gratuitous ARP (I).
"""

from __future__ import annotations

import random

import pytest

from mobileha.core.actions import ClaimVip, ReleaseVip, Send
from mobileha.core.hsrp import (
    TABLE,
    ActiveTimerExpired,
    Event,
    GratuitousArp,
    HsrpConfig,
    HsrpGroup,
    HsrpInterface,
    HsrpSend,
    State,
    StateChange,
    parse_auth,
    v1_seconds,
)
from mobileha.wire import hsrp as w

HSRP_DST = ("224.0.0.2", 1985)  # the Hellos' destination (receivers do not check it)

S = State
# RFC 2281 §5.7, transcribed: (state, event) -> (actions, next state or None)
RFC: dict[tuple[State, str], tuple[str, State | None]] = {
    (S.LEARN, "b"): ("CD", S.INITIAL),
    (S.LISTEN, "b"): ("CD", S.INITIAL),
    (S.SPEAK, "b"): ("CD", S.INITIAL),
    (S.STANDBY, "b"): ("CD", S.INITIAL),
    (S.ACTIVE, "b"): ("CDH", S.INITIAL),
    (S.LISTEN, "c"): ("AB", S.SPEAK),
    (S.STANDBY, "c"): ("CDFI", S.ACTIVE),
    (S.LISTEN, "d"): ("B", S.SPEAK),
    (S.SPEAK, "d"): ("D", S.STANDBY),
    (S.SPEAK, "e"): ("F", None),
    (S.STANDBY, "e"): ("F", None),
    (S.ACTIVE, "e"): ("F", None),
    (S.SPEAK, "f"): ("B", S.LISTEN),
    (S.STANDBY, "f"): ("B", S.LISTEN),
    (S.LEARN, "g"): ("EAB", S.LISTEN),
    (S.LISTEN, "g"): ("EA", None),
    (S.SPEAK, "g"): ("EA", None),
    (S.STANDBY, "g"): ("EA", None),
    (S.ACTIVE, "g"): ("AB", S.SPEAK),
    (S.LEARN, "h"): ("EAB", S.LISTEN),
    (S.LISTEN, "h"): ("A", None),  # without preemption; with it: BGFI/Active
    (S.SPEAK, "h"): ("A", None),
    (S.STANDBY, "h"): ("A", None),
    (S.ACTIVE, "h"): ("G", None),
    (S.LISTEN, "i"): ("AB", S.SPEAK),
    (S.SPEAK, "i"): ("A", None),
    (S.STANDBY, "i"): ("CFI", S.ACTIVE),
    (S.ACTIVE, "j"): ("ABH", S.SPEAK),
    (S.LISTEN, "k"): ("B", None),
    (S.SPEAK, "k"): ("B", S.LISTEN),
    (S.STANDBY, "k"): ("B", S.LISTEN),
    (S.ACTIVE, "k"): ("B", None),
    (S.LISTEN, "l"): ("B", S.SPEAK),
    (S.SPEAK, "l"): ("D", S.STANDBY),
    (S.ACTIVE, "l"): ("B", None),
}
PREEMPT_H = ("BGFI", S.ACTIVE)

ME = "10.0.0.5"
HIGH = "10.0.0.9"  # priority 200
LOW = "10.0.0.3"  # priority 50
VIP = "10.0.0.1"
OWN_HOLD = 10_000
PEER_HOLD_S = 7  # the Holdtime in peers' Hellos (differs from ours on purpose)


def cfg(version: int, vip: str | None = VIP, **kw: object) -> HsrpConfig:
    return HsrpConfig(
        address=ME,
        group=1,
        version=version,
        vip=vip,
        priority=100,
        hello_ms=3000,
        hold_ms=OWN_HOLD,
        jitter=0.0,
        identifier=bytes.fromhex("020000000005"),
        **kw,  # type: ignore[arg-type]
    )


def pkt(
    version: int,
    opcode: int,
    state: State,
    prio: int,
    vip: str = VIP,
    hello_s: int = 2,
    hold_s: int = PEER_HOLD_S,
    auth: bytes = w.DEFAULT_AUTH,
) -> bytes:
    if version == 1:
        return w.HsrpV1(opcode, int(state), hello_s, hold_s, prio, 1, vip, auth).encode()
    gs = w.GroupStateTlv(
        opcode, w.V1_TO_V2_STATE[int(state)], 1, bytes(6), prio, hello_s * 1000, hold_s * 1000, vip
    )
    return w.HsrpV2((gs, w.TextAuthTlv(auth))).encode()


class Rig:
    """A group driven to a given state through its public inputs, with a fake clock."""

    def __init__(self, version: int, state: State, vip: bool | None = None) -> None:
        if vip is None:
            vip = state is not S.LEARN
        self.v = version
        self.before: tuple[float | None, float | None] = (None, None)
        self.now = 100.0
        self.g = HsrpGroup(cfg(version, VIP if vip else None), rng=random.Random(1))
        if state is S.INITIAL:
            return
        self.g.start(self.now)
        if state in (S.LEARN, S.LISTEN):
            assert self.g.state is state
            return
        self.timer_to("active")  # Listen -c-> Speak
        if state is S.SPEAK:
            assert self.g.state is S.SPEAK
            return
        # a lower-priority Active keeps our Active timer running; Standby timer runs out
        self.rx(w.OP_HELLO, S.ACTIVE, 50, LOW)
        self.timer_to("standby")  # Speak -d-> Standby
        assert self.g.state is S.STANDBY
        if state is S.STANDBY:
            return
        self.timer_to("active")  # Standby -c-> Active
        assert self.g.state is S.ACTIVE

    def timer_to(self, which: str) -> list[object]:
        t = getattr(self.g, f"t_{which}")
        assert t is not None
        self.now = t
        # keep the other timers from firing first
        for other in ("active", "standby", "hello"):
            ot = getattr(self.g, f"t_{other}")
            if other != which and ot is not None and ot <= t:
                setattr(self.g, f"t_{other}", t + 1000)
        return list(self.g.handle_timer(self.now))

    def rx(self, op: int, state: State, prio: int, src: str, **kw: object) -> list[object]:
        self.now += 0.01
        return list(
            self.g.receive_datagram(
                pkt(self.v, op, state, prio, **kw), (src, 1985), HSRP_DST, self.now
            )
        )  # type: ignore[arg-type]

    def fire(self, ev: str) -> list[object]:
        g = self.g
        if ev in "cde":
            which = {"c": "active", "d": "standby", "e": "hello"}[ev]
            t = getattr(g, f"t_{which}")
            for other in ("active", "standby", "hello"):
                ot = getattr(g, f"t_{other}")
                if t is not None and other != which and ot is not None and ot <= t:
                    setattr(g, f"t_{other}", t + 1000)
        self.before = (g.t_active, g.t_standby)
        g.last_cell = None
        if ev == "a":
            self.now += 0.01
            return list(g.start(self.now))
        if ev == "b":
            self.now += 0.01
            return list(g.stop(self.now))
        if ev in "cde":
            which = {"c": "active", "d": "standby", "e": "hello"}[ev]
            if getattr(g, f"t_{which}") is not None:
                return self.timer_to(which)
            # the timer is not running in this state, so the event cannot arrive through
            # on_timer; inject it to show the cell is empty
            out: list[object] = []
            self.now += 0.01
            g._event(Event(ev), self.now, out)  # type: ignore[arg-type]
            return out
        spec = {
            "f": (w.OP_HELLO, S.SPEAK, 200, HIGH),
            "g": (w.OP_HELLO, S.ACTIVE, 200, HIGH),
            "h": (w.OP_HELLO, S.ACTIVE, 50, LOW),
            "i": (w.OP_RESIGN, S.ACTIVE, 50, LOW),
            "j": (w.OP_COUP, S.ACTIVE, 200, HIGH),
            "k": (w.OP_HELLO, S.STANDBY, 200, HIGH),
            "l": (w.OP_HELLO, S.STANDBY, 50, LOW),
        }[ev]
        return self.rx(*spec)


def _opcodes(out: list[object]) -> list[int]:
    ops = []
    for a in out:
        if isinstance(a, Send):
            m = w.decode(a.payload)
            ops.append(m.opcode if isinstance(m, w.HsrpV1) else m.group_state.opcode)  # type: ignore[union-attr]
    return ops


# Every cell but (Initial, a), whose two variants (VIP configured or not) have their own
# test, test_initial_a_learn_or_listen.
CELLS = [(s, e) for s in State for e in "abcdefghijkl" if (s, e) != (State.INITIAL, "a")]


def test_code_table_matches_rfc_transcription() -> None:
    code = {(s, e.value): (c.alts[0].actions, c.alts[0].next) for (s, e), c in TABLE.items()}
    code.pop((S.INITIAL, "a"))
    assert code == RFC
    assert TABLE[(S.INITIAL, Event.A)].cond == "+"
    for s in (S.LISTEN, S.SPEAK, S.STANDBY):
        c = TABLE[(s, Event.H)]
        assert c.cond == "*" and (c.alts[1].actions, c.alts[1].next) == PREEMPT_H


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(("state", "ev"), CELLS, ids=[f"{s.name}-{e}" for s, e in CELLS])
def test_cell(version: int, state: State, ev: str) -> None:
    r = Rig(version, state)
    g = r.g
    out = r.fire(ev)
    before = r.before
    acts, nxt = RFC.get((state, ev), ("", None))
    now = r.now
    assert g.state is (state if nxt is None else nxt), (state, ev, g.state)
    hello_hold = PEER_HOLD_S * 1000
    # A / C: the Active timer
    if "A" in acts:
        hold = hello_hold if ev in "gh" else OWN_HOLD
        assert g.t_active == pytest.approx(now + hold / 1000)
    elif "C" in acts or (ev == "c" and before[0] is not None):
        assert g.t_active is None
    else:
        assert g.t_active == before[0]
    # B / D: the Standby timer
    if "B" in acts:
        hold = hello_hold if ev in "kl" else OWN_HOLD
        assert g.t_standby == pytest.approx(now + hold / 1000)
    elif "D" in acts or (ev == "d" and before[1] is not None):
        assert g.t_standby is None
    else:
        assert g.t_standby == before[1]
    # F / G / H: messages, in table order
    want = [{"F": w.OP_HELLO, "G": w.OP_COUP, "H": w.OP_RESIGN}[c] for c in acts if c in "FGH"]
    assert _opcodes(out) == want
    # I: gratuitous ARP with the virtual MAC
    garps = [a for a in out if isinstance(a, GratuitousArp)]
    if "I" in acts:
        assert garps == [GratuitousArp(VIP, w.virtual_mac(1, version), 1)]
    else:
        assert garps == []
    # entering / leaving Active claims / releases the VIP
    assert (ClaimVip(VIP) in out) == (nxt is S.ACTIVE and state is not S.ACTIVE)
    assert (ReleaseVip(VIP) in out) == (state is S.ACTIVE and nxt not in (None, S.ACTIVE))
    if nxt is not None and nxt is not state:
        assert StateChange(1, state, nxt, Event(ev)) in out
    assert (g.last_cell[1] if g.last_cell else "") == acts


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("state", [S.LISTEN, S.SPEAK, S.STANDBY])
def test_h_with_preemption_is_BGFI_active(version: int, state: State) -> None:
    r = Rig(version, state)
    r.g.set_preempt(True)
    out = r.fire("h")
    assert r.g.state is S.ACTIVE
    assert r.g.t_standby == pytest.approx(r.now + OWN_HOLD / 1000)
    assert _opcodes(out) == [w.OP_COUP, w.OP_HELLO]
    assert GratuitousArp(VIP, w.virtual_mac(1, version), 1) in out
    assert ClaimVip(VIP) in out
    assert r.g.last_cell == (Event.H, "BGFI", S.ACTIVE)


@pytest.mark.parametrize("version", [1, 2])
def test_initial_a_learn_or_listen(version: int) -> None:
    r = Rig(version, S.INITIAL, vip=True)
    r.fire("a")
    assert r.g.state is S.LISTEN
    assert r.g.t_active == pytest.approx(r.now + OWN_HOLD / 1000)
    assert r.g.t_standby == pytest.approx(r.now + OWN_HOLD / 1000)
    r = Rig(version, S.INITIAL, vip=False)
    r.fire("a")
    assert r.g.state is S.LEARN
    assert r.g.t_active is not None and r.g.t_standby is not None
    assert r.g.last_cell == (Event.A, "AB", S.LEARN)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("ev", ["g", "h"])
def test_learn_state_learns_vip_and_timers_from_active(version: int, ev: str) -> None:
    g = HsrpGroup(
        HsrpConfig(address=ME, group=1, version=version, jitter=0.0), rng=random.Random(0)
    )
    g.start(0.0)
    assert g.state is S.LEARN and g.vip is None
    prio = 200 if ev == "g" else 50
    g.receive_datagram(
        pkt(version, w.OP_HELLO, S.ACTIVE, prio, "10.9.9.9", 1, 4), (HIGH, 1985), HSRP_DST, 0.5
    )
    assert g.state is S.LISTEN
    assert g.vip == "10.9.9.9"
    assert (g.hello_ms, g.hold_ms) == (1000, 4000)
    assert g.t_active == pytest.approx(0.5 + 4.0)


def test_learning_only_from_authenticated_active_hellos() -> None:
    g = HsrpGroup(HsrpConfig(address=ME, group=1, jitter=0.0), rng=random.Random(0))
    g.start(0.0)
    # a Standby's Hello teaches nothing
    g.receive_datagram(
        pkt(1, w.OP_HELLO, S.STANDBY, 200, "10.9.9.9", 1, 4), (HIGH, 1985), HSRP_DST, 0.1
    )
    assert g.vip is None and g.state is S.LEARN
    # an Active Hello with the wrong password teaches nothing and is counted
    g.receive_datagram(
        pkt(1, w.OP_HELLO, S.ACTIVE, 200, "10.9.9.9", 1, 4, auth=b"wrong\0\0\0"),
        (HIGH, 1985),
        HSRP_DST,
        0.2,
    )
    assert g.vip is None and g.state is S.LEARN and g.auth_failures == 1
    g.receive_datagram(
        pkt(1, w.OP_HELLO, S.ACTIVE, 200, "10.9.9.9", 1, 4), (HIGH, 1985), HSRP_DST, 0.3
    )
    assert g.vip == "10.9.9.9" and g.hold_ms == 4000


def test_configured_vip_and_timers_are_not_learned() -> None:
    r = Rig(1, S.LISTEN)
    r.rx(w.OP_HELLO, S.ACTIVE, 200, HIGH, vip="10.7.7.7", hello_s=1, hold_s=4)
    assert r.g.vip == VIP and (r.g.hello_ms, r.g.hold_ms) == (3000, OWN_HOLD)
    assert r.g.counters["action_E"] == 1


def test_speak_to_standby_with_no_active_goes_active_at_once() -> None:
    r = Rig(1, S.SPEAK)
    r.timer_to("active")  # c in Speak: no action, the Active timer is simply over
    assert r.g.state is S.SPEAK and r.g.t_active is None
    out = r.timer_to("standby")  # d: D/Standby, then c applies at once [P]
    assert [a.new for a in out if isinstance(a, StateChange)] == [S.STANDBY, S.ACTIVE]
    assert r.g.counters["standby_without_active"] == 1


def test_not_ready_standby_does_not_take_over_until_ready() -> None:
    r = Rig(1, S.STANDBY)
    r.g.set_ready(False, r.now)
    r.timer_to("active")  # c: would be CDFI/Active
    assert r.g.state is S.STANDBY
    assert r.g.t_active == pytest.approx(r.now + OWN_HOLD / 1000)  # keeps watching
    assert r.g.counters["active_blocked_not_ready"] == 1
    r.now += 0.5
    out = r.g.set_ready(True, r.now)
    assert r.g.state is S.ACTIVE and ClaimVip(VIP) in out


def test_not_ready_blocks_resign_takeover_and_preemption() -> None:
    r = Rig(1, S.STANDBY)
    r.g.set_preempt(True)
    r.g.set_ready(False, r.now)
    r.fire("h")
    assert r.g.state is S.STANDBY
    r.fire("i")
    assert r.g.state is S.STANDBY
    r.g.set_ready(True, r.now)
    assert r.g.state is S.ACTIVE  # the Active resigned and nobody took over: now we do


def test_preempt_delay() -> None:
    r = Rig(1, S.STANDBY)
    r.g.set_preempt(True, delay_ms=1000)
    r.fire("h")
    assert r.g.state is S.STANDBY
    r.now += 0.5
    r.fire("h")
    assert r.g.state is S.STANDBY
    r.now += 0.6
    out = r.fire("h")
    assert r.g.state is S.ACTIVE and w.OP_COUP in _opcodes(out)


def test_tracking_lowers_priority_and_hellos_carry_it() -> None:
    r = Rig(1, S.ACTIVE)
    r.g.track("eth1", down=True, decrement=30)
    r.g.track("eth2", down=True, decrement=80)
    assert r.g.priority == 0  # floors at 0
    r.g.track("eth2", down=False, decrement=80)
    assert r.g.priority == 70
    out = r.fire("e")
    [m] = [w.decode(a.payload) for a in out if isinstance(a, Send)]
    assert isinstance(m, w.HsrpV1) and m.priority == 70
    snap = r.g.snapshot(r.now)
    assert snap["priority"] == 70 and snap["configured_priority"] == 100
    assert snap["tracked"][0] == {"name": "eth1", "state": "Down", "decrement": 30}
    # now a peer of priority 80 with preempt would coup us: its Coup is event j
    out = r.rx(w.OP_COUP, S.ACTIVE, 80, LOW)
    assert r.g.state is S.SPEAK and w.OP_RESIGN in _opcodes(out)


def test_wrong_auth_coup_ignored_and_counted() -> None:
    r = Rig(2, S.ACTIVE)
    r.rx(w.OP_COUP, S.ACTIVE, 200, HIGH, auth=b"bad\0\0\0\0\0")
    assert r.g.state is S.ACTIVE and r.g.auth_failures == 1
    assert r.g.snapshot(r.now)["auth_failures"] == 1


@pytest.mark.parametrize("version", [1, 2])
def test_md5_authentication(version: int) -> None:
    def mk(addr: str, prio: int, key: bytes) -> HsrpGroup:
        c = HsrpConfig(
            address=addr,
            group=1,
            version=version,
            vip=VIP,
            priority=prio,
            md5_key=key,
            md5_key_id=3,
            hello_ms=1000,
            hold_ms=3000,
            jitter=0.0,
        )
        return HsrpGroup(c, rng=random.Random(0))

    a, b, bad = mk(HIGH, 200, b"k1"), mk(ME, 100, b"k1"), mk(LOW, 50, b"k2")
    raw = a.encode(w.OP_HELLO, S.ACTIVE)
    assert w.md5_verify(raw, b"k1")
    b.start(0.0)
    b.receive_datagram(raw, (HIGH, 1985), HSRP_DST, 0.1)
    assert b.auth_failures == 0 and b.active is not None and b.active.addr == HIGH
    b.receive_datagram(bad.encode(w.OP_HELLO, S.ACTIVE), (LOW, 1985), HSRP_DST, 0.2)
    assert b.auth_failures == 1
    # text-authenticated packets are refused by an MD5 group
    b.receive_datagram(pkt(version, w.OP_HELLO, S.ACTIVE, 50), (LOW, 1985), HSRP_DST, 0.3)
    assert b.auth_failures == 2


@pytest.mark.parametrize("version", [1, 2])
def test_md5_hello_from_another_address_is_dropped_and_counted(version: int) -> None:
    """P§4.5: the digest covers the sender address of the MD5 TLV. A captured Hello of the
    Active, replayed from another address once it is gone, does not keep the Standby from
    taking over."""
    c = {"group": 1, "version": version, "vip": VIP, "md5_key": b"k1", "jitter": 0.0}
    active = HsrpGroup(HsrpConfig(address=HIGH, priority=200, **c), rng=random.Random(0))  # type: ignore[arg-type]
    me = HsrpGroup(HsrpConfig(address=ME, priority=100, **c), rng=random.Random(0))  # type: ignore[arg-type]
    captured = active.encode(w.OP_HELLO, S.ACTIVE)
    me.start(0.0)
    me.receive_datagram(captured, (HIGH, 1985), HSRP_DST, 0.1)
    assert me.active is not None and me.active.addr == HIGH
    now = 0.1
    while me.state is not S.ACTIVE and now < 60.0:
        now += 1.0
        me.receive_datagram(captured, (LOW, 1985), HSRP_DST, now)  # the replay
        me.handle_timer(now)
    assert me.state is S.ACTIVE
    assert me.counters["rx_md5_sender_mismatch"] > 0 and me.auth_failures == 0


def test_own_packets_and_other_groups_ignored() -> None:
    r = Rig(1, S.LISTEN)
    r.rx(w.OP_HELLO, S.ACTIVE, 200, ME)
    assert r.g.counters["rx_own"] == 1
    raw = w.HsrpV1(w.OP_HELLO, 16, 3, 10, 200, 2, VIP).encode()
    r.g.receive_datagram(raw, (HIGH, 1985), HSRP_DST, r.now)
    assert r.g.counters["rx_other_group"] == 1
    r.g.receive_datagram(b"\x00\x01", (HIGH, 1985), HSRP_DST, r.now)
    assert r.g.counters["rx_error_short"] == 1


def test_v1_millisecond_timers() -> None:
    assert v1_seconds(100) == 1 and v1_seconds(3000) == 3 and v1_seconds(3001) == 4
    assert v1_seconds(10**7) == 255
    g = HsrpGroup(
        HsrpConfig(address=ME, vip=VIP, hello_ms=100, hold_ms=300, jitter=0.0),
        rng=random.Random(0),
    )
    m = w.decode(g.encode(w.OP_HELLO, S.SPEAK))
    assert isinstance(m, w.HsrpV1) and (m.hellotime, m.holdtime) == (1, 1)
    g.start(0.0)
    # a peer with the same configured ms timers: we keep our 300 ms precision
    g.receive_datagram(
        w.HsrpV1(w.OP_HELLO, 16, 1, 1, 50, 0, VIP).encode(), (LOW, 1985), HSRP_DST, 0.05
    )
    assert g.t_active == pytest.approx(0.05 + 0.3)


def test_hello_timer_jitter_within_bounds() -> None:
    g = HsrpGroup(
        HsrpConfig(address=ME, vip=VIP, hello_ms=1000, hold_ms=3000, jitter=0.1),
        rng=random.Random(5),
    )
    g.start(0.0)
    seen = set()
    for _ in range(50):
        t = g.t_hello
        assert t is not None
        g.handle_timer(t)
        assert g.t_hello is not None
        d = g.t_hello - t
        assert 0.9 <= d <= 1.0
        seen.add(round(d, 4))
    assert len(seen) > 10


def test_snapshot_has_show_standby_fields() -> None:
    r = Rig(1, S.ACTIVE)
    r.fire("e")
    r.rx(w.OP_HELLO, S.STANDBY, 50, LOW)
    s = r.g.snapshot(r.now)
    for k in (
        "state",
        "virtual_ip",
        "active_router",
        "standby_router",
        "priority",
        "configured_priority",
        "preempt",
        "hello_ms",
        "hold_ms",
        "next_hello_ms",
        "auth_failures",
        "state_changes",
        "last_state_change_ago_ms",
        "virtual_mac",
    ):
        assert k in s
    assert s["state"] == "Active" and s["active_router"] == "local"
    assert s["standby_router"] == LOW and s["standby_priority"] == 50
    assert s["virtual_mac"] == "00:00:0c:07:ac:01"
    assert s["state_changes"] == 4  # Initial->Listen->Speak->Standby->Active
    assert 0 <= s["next_hello_ms"] <= 3000


def test_interface_many_groups_one_heap() -> None:
    groups = [
        HsrpGroup(
            HsrpConfig(address=ME, group=n, vip=f"10.0.{n}.1", hello_ms=100 + n, hold_ms=1000),
            rng=random.Random(n),
        )
        for n in range(50)
    ]
    iface = HsrpInterface.of(groups)
    iface.start(0.0)
    dl = iface.get_timer()
    assert dl is not None and dl == min(g.get_timer() or 1e9 for g in groups)
    t = 0.0
    while t < 5.0:
        t = iface.get_timer() or 5.0
        iface.handle_timer(t)
    assert all(g.state is S.ACTIVE for g in groups)
    # dispatch by group; unknown groups counted
    iface.receive_datagram(
        w.HsrpV1(w.OP_COUP, 16, 3, 10, 200, 7, "10.0.7.1").encode(), (HIGH, 1985), HSRP_DST, t
    )
    assert groups[7].state is S.SPEAK
    iface.receive_datagram(w.HsrpV1(group=200).encode(), (HIGH, 1985), HSRP_DST, t)
    assert iface.counters["rx_unknown_group"] == 1
    iface.receive_datagram(w.HsrpAdvertise().encode(), (HIGH, 1985), HSRP_DST, t)
    assert iface.counters["rx_advertise"] == 1
    out = iface.stop(t)
    assert sum(isinstance(a, ReleaseVip) for a in out) == 49


def test_parse_auth_and_config_validation() -> None:
    assert parse_auth("text:abc") == (b"abc\0\0\0\0\0", None)
    assert parse_auth("md5:sekrit") == (bytes(8), b"sekrit")
    for bad in ("plain:x", "md5:"):
        with pytest.raises(ValueError):
            parse_auth(bad)
    with pytest.raises(ValueError):
        HsrpConfig(address=ME, hello_ms=300, hold_ms=300)
    with pytest.raises(ValueError):
        HsrpConfig(address=ME, hello_ms=300)
    with pytest.raises(ValueError):
        HsrpConfig(address=ME, group=256)
    HsrpConfig(address=ME, group=4095, version=2)


def test_resign_of_the_losing_active_after_a_partition_is_not_event_i() -> None:
    """Two Actives after a healed partition: the Standby follows the higher one."""
    r = Rig(1, S.STANDBY)  # knows LOW (priority 50) as Active
    r.rx(w.OP_HELLO, S.ACTIVE, 200, HIGH)  # g from the other side's Active
    assert r.g.snapshot(r.now)["active_router"] == HIGH
    r.rx(w.OP_HELLO, S.ACTIVE, 50, LOW)  # the loser still claims Active for a moment
    assert r.g.snapshot(r.now)["active_router"] == HIGH
    r.rx(w.OP_RESIGN, S.ACTIVE, 50, LOW)  # ...then resigns after HIGH's Coup
    assert r.g.state is S.STANDBY  # not CFI/Active
    r.rx(w.OP_RESIGN, S.ACTIVE, 200, HIGH)  # the real active router resigning is event i
    assert r.g.state is S.ACTIVE


def test_coup_seen_by_standby_makes_the_old_actives_resign_not_event_i() -> None:
    r = Rig(2, S.STANDBY)  # knows LOW as Active
    r.rx(w.OP_COUP, S.ACTIVE, 200, HIGH)  # HIGH preempts LOW (no cell for j in Standby)
    assert r.g.state is S.STANDBY and r.g.snapshot(r.now)["active_router"] == HIGH
    r.rx(w.OP_RESIGN, S.ACTIVE, 50, LOW)  # LOW resigns because of the Coup
    assert r.g.state is S.STANDBY


def test_set_priority_and_preempt_leave_the_configuration_alone() -> None:
    c = cfg(2)
    g = HsrpGroup(c, rng=random.Random(1))
    g.track("eth9", down=True, decrement=30)
    g.set_priority(150, 0.0)
    g.set_preempt(True, 2000)
    assert (g.priority, g.configured_priority, g.preempt, g.preempt_delay_ms) == (
        120,
        150,
        True,
        2000,
    )
    assert (c.priority, c.preempt, c.preempt_delay_ms) == (100, False, 0)
    snap = g.snapshot(0.0)
    assert (snap["priority"], snap["configured_priority"], snap["preempt"]) == (120, 150, True)
    other = HsrpGroup(c, rng=random.Random(1))  # a second group from the same config
    assert other.priority == 100 and not other.preempt
    with pytest.raises(ValueError):
        g.set_preempt(True, 4_000_000)


def test_active_timer_expiry_of_a_remote_active_is_reported() -> None:
    """Standby kept out of Active by the readiness guard: no state change, but the
    expiry of the remote Active's timer is reported (the redundancy layer's peer loss)."""
    r = Rig(2, S.STANDBY)
    r.rx(w.OP_HELLO, S.ACTIVE, 200, HIGH)
    r.g.set_ready(False, r.now)
    out = r.timer_to("active")
    assert ActiveTimerExpired(1, HIGH) in out
    assert r.g.state is S.STANDBY and not [a for a in out if isinstance(a, StateChange)]
    # our own Active timer is not a remote router's: nothing to report
    r = Rig(2, S.ACTIVE)
    r.g.t_active = r.now + 1
    assert not [a for a in r.timer_to("active") if isinstance(a, ActiveTimerExpired)]


def test_hsrp_send_says_which_group_and_whether_active() -> None:
    r = Rig(2, S.ACTIVE)
    [hello] = [a for a in r.timer_to("hello") if isinstance(a, HsrpSend)]
    assert hello.group == (2, 1) and hello.from_active and hello.vmac == r.g.vmac
    r = Rig(2, S.STANDBY)
    [hello] = [a for a in r.timer_to("hello") if isinstance(a, HsrpSend)]
    assert not hello.from_active


def test_set_identity_fills_what_the_configuration_leaves_unset() -> None:
    c = HsrpConfig(address="0.0.0.0", group=1, version=2, vip=VIP)
    g = HsrpGroup(c)
    g.set_identity("10.0.0.7", bytes.fromhex("020000000007"))
    assert g.cfg.address == "10.0.0.7" and g.cfg.identifier == bytes.fromhex("020000000007")
    assert c.address == "0.0.0.0"
    g.set_identity("10.0.0.8", None)  # configured now: unchanged
    assert g.cfg.address == "10.0.0.7"
    g.start(0.0)
    g2 = HsrpGroup(HsrpConfig(address="0.0.0.0", group=1, version=2, vip=VIP))
    g2.start(0.0)
    with pytest.raises(ValueError):
        g2.set_identity("10.0.0.9", None)


def test_every_event_has_a_reason_in_words() -> None:
    from mobileha.core.hsrp import EVENT_REASONS, Event

    assert set(EVENT_REASONS) == set(Event) and Event.C.reason == "Active timer expired"
