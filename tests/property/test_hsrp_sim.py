"""Several simulated HSRP routers on a lossless LAN through random failures and recoveries.

Failures are crashes (kill -9), clean stops (Resign) and link cuts (a live router cut off the
LAN, so both sides elect an Active); recoveries are restarts and restored links.

After the last failure/recovery, once the election has had time to run, exactly one router is
Active and it is the one with the highest (priority, IP address) among the routers that are
up (all routers preempt, otherwise the highest need not win). The time allowed:

* a single failure of the Active router in a converged group: hold + one hello (the Standby's
  Active timer fires);
* any random sequence: 2 x hold + 2 x hello. RFC 2281's table needs two Holdtimes when no
  Standby is left (Listen -c-> Speak after one Holdtime, Speak -d-> Standby after another,
  then Active at once because no Active was heard, P§4.3 note).
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.core.actions import ClaimVip, ReleaseVip, Send
from mobileha.core.hsrp import GratuitousArp, HsrpConfig, HsrpGroup, State

HSRP_DST = ("224.0.0.2", 1985)  # the Hellos' destination (receivers do not check it)

HELLO, HOLD = 100, 300


class Lan:
    """A lossless LAN: every Send reaches every other router that is up after ``delay`` s."""

    def __init__(
        self, prios: list[int], version: int = 1, seed: int = 0, preempt: bool = True
    ) -> None:
        self.rng = random.Random(seed)
        self.prios = list(prios)
        self.addrs = [f"10.0.0.{i + 2}" for i in range(len(prios))]
        self.version = version
        self.preempt = preempt
        self.delay = 0.001
        self.now = 0.0
        self.routers: list[HsrpGroup | None] = [None] * len(prios)
        self.q: list[tuple[float, int, int, bytes, str]] = []
        self.seq = 0
        self.garps: list[tuple[float, int]] = []
        self.isolated: set[int] = set()  # alive but cut off the LAN (link down)
        self.vip_owner: set[int] = set()

    def up(self, i: int) -> None:
        cfg = HsrpConfig(
            address=self.addrs[i],
            group=1,
            version=self.version,
            vip="10.0.0.1",
            priority=self.prios[i],
            preempt=self.preempt,
            hello_ms=HELLO,
            hold_ms=HOLD,
        )
        g = HsrpGroup(cfg, rng=random.Random(self.rng.random()))
        self.routers[i] = g
        self._out(i, g.start(self.now))

    def crash(self, i: int) -> None:
        self.routers[i] = None
        self.vip_owner.discard(i)

    def stop(self, i: int) -> None:
        g = self.routers[i]
        if g is not None:
            self._out(i, g.stop(self.now))
        self.routers[i] = None

    def _out(self, i: int, acts: list[object]) -> None:
        for a in acts:
            if isinstance(a, Send):
                for j in range(len(self.routers)):
                    if j != i and i not in self.isolated and j not in self.isolated:
                        self.seq += 1
                        item = (self.now + self.delay, self.seq, j, a.payload, self.addrs[i])
                        heapq.heappush(self.q, item)
            elif isinstance(a, ClaimVip):
                self.vip_owner.add(i)
            elif isinstance(a, ReleaseVip):
                self.vip_owner.discard(i)
            elif isinstance(a, GratuitousArp):
                self.garps.append((self.now, i))

    def run_until(self, t: float) -> None:
        while True:
            cands = [self.q[0][0]] if self.q else []
            for g in self.routers:
                if g is not None and (d := g.get_timer()) is not None:
                    cands.append(d)
            nxt = min(cands, default=None)
            if nxt is None or nxt > t:
                self.now = t
                return
            self.now = max(self.now, nxt)
            while self.q and self.q[0][0] <= self.now:
                _, _, j, payload, src = heapq.heappop(self.q)
                g = self.routers[j]
                if g is not None:
                    self._out(j, g.receive_datagram(payload, (src, 1985), HSRP_DST, self.now))
            for i, g in enumerate(self.routers):
                if g is not None and (d := g.get_timer()) is not None and d <= self.now:
                    self._out(i, g.handle_timer(self.now))

    def actives(self) -> list[int]:
        return [i for i, g in enumerate(self.routers) if g and g.state is State.ACTIVE]

    def standbys(self) -> list[int]:
        return [i for i, g in enumerate(self.routers) if g and g.state is State.STANDBY]

    def best_up(self) -> int:
        up = [i for i, g in enumerate(self.routers) if g is not None]
        return max(up, key=lambda i: (self.prios[i], int(self.addrs[i].rsplit(".", 1)[1])))

    def first_time_single_active(self, limit: float) -> float | None:
        """Step 1 ms at a time; the time at which exactly the best router is Active."""
        t0 = self.now
        while self.now - t0 <= limit:
            if self.actives() == [self.best_up()]:
                return self.now - t0
            self.run_until(self.now + 0.001)
        return None


@dataclass(frozen=True)
class Step:
    kind: str  # "crash" | "stop" | "up" | "cut" | "heal"
    who: int
    after_ms: int


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[int], list[Step], int, int]:
    n = draw(st.integers(2, 5))
    prios = draw(st.lists(st.integers(90, 120), min_size=n, max_size=n))
    steps = draw(
        st.lists(
            st.builds(
                Step,
                st.sampled_from(["crash", "stop", "up", "cut", "heal"]),
                st.integers(0, n - 1),
                st.integers(0, 2 * HOLD),
            ),
            min_size=1,
            max_size=8,
        )
    )
    return prios, steps, draw(st.sampled_from([1, 2])), draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None, database=None)
@given(scenario())
def test_random_failures_converge_to_highest(sc: tuple[list[int], list[Step], int, int]) -> None:
    prios, steps, version, seed = sc
    lan = Lan(prios, version=version, seed=seed)
    for i in range(len(prios)):
        lan.up(i)
    lan.run_until(3 * HOLD / 1000)
    for s in steps:
        lan.run_until(lan.now + s.after_ms / 1000)
        alive = lan.routers[s.who] is not None
        if s.kind == "up" and not alive:
            lan.up(s.who)
        elif s.kind == "crash" and alive:
            lan.crash(s.who)
        elif s.kind == "stop" and alive:
            lan.stop(s.who)
        elif s.kind == "cut":
            lan.isolated.add(s.who)
        elif s.kind == "heal":
            lan.isolated.discard(s.who)
    lan.isolated.clear()  # every link restored before the check
    if all(g is None for g in lan.routers):
        lan.up(0)
    limit = (2 * HOLD + 2 * HELLO) / 1000
    took = lan.first_time_single_active(limit)
    assert took is not None, (lan.actives(), [g and g.state.name for g in lan.routers])
    # ...and it stays that way, with one Standby and the VIP owned by the Active only
    lan.run_until(lan.now + 5 * HOLD / 1000)
    assert lan.actives() == [lan.best_up()]
    assert lan.vip_owner == {lan.best_up()}
    if sum(g is not None for g in lan.routers) >= 2:
        assert len(lan.standbys()) == 1


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(st.integers(1, 255), min_size=2, max_size=6, unique=True),
    st.sampled_from([1, 2]),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_active_failure_standby_takes_over_within_hold_plus_hello(
    prios: list[int], version: int, seed: int, graceful: bool
) -> None:
    lan = Lan(prios, version=version, seed=seed)
    for i in range(len(prios)):
        lan.up(i)
    lan.run_until(4 * HOLD / 1000)
    [act] = lan.actives()
    [stb] = lan.standbys()
    assert act == lan.best_up()
    n_garps = len(lan.garps)
    lan.stop(act) if graceful else lan.crash(act)
    took = lan.first_time_single_active((HOLD + HELLO) / 1000)
    assert took is not None
    assert lan.actives() == [stb]  # the Standby (second highest) took over
    assert len(lan.garps) > n_garps  # with a gratuitous ARP
    if graceful:
        assert took < 0.01  # a Resign hands over at once


def test_no_preempt_keeps_first_active_but_exactly_one() -> None:
    lan = Lan([100, 200], preempt=False)
    lan.up(0)
    lan.run_until(1.5)
    assert lan.actives() == [0]
    lan.up(1)
    lan.run_until(3.0)
    assert lan.actives() == [0]
    assert lan.standbys() == [1]


@settings(max_examples=1000, deadline=None, database=None)
@given(
    st.integers(0, 2**64 - 1),
    st.sampled_from([1, 2]),
    st.integers(0, 8),
    st.one_of(st.binary(max_size=60), st.just(b"")),
)
def test_core_never_raises_on_hostile_input(
    seed: int, version: int, warmup: int, junk: bytes
) -> None:
    """Random and mutated datagrams (also validly framed ones with random fields) in any
    state: the group only counts and drops, or acts; it never raises."""
    rnd = random.Random(seed)
    lan = Lan([100, 110], version=version, seed=seed)
    lan.up(0)
    lan.up(1)
    lan.run_until(warmup * HELLO / 1000)
    g = lan.routers[0]
    assert g is not None
    peer = HsrpGroup(
        HsrpConfig(address="10.0.0.9", group=1, version=version, vip="10.0.0.1",
                   priority=rnd.randrange(256)),
        rng=rnd,
    )  # fmt: skip
    for _ in range(5):
        raw = bytearray(peer.encode(rnd.randrange(4), State(rnd.choice(list(State)))))
        for _ in range(rnd.randrange(3)):
            raw[rnd.randrange(len(raw))] = rnd.getrandbits(8)
        g.receive_datagram(
            bytes(raw), (rnd.choice(["10.0.0.9", "10.0.0.1", "bogus", ""]), 1985), HSRP_DST, lan.now
        )
        g.receive_datagram(junk, ("10.0.0.9", 1985), HSRP_DST, lan.now)
        lan.run_until(lan.now + 0.01)
