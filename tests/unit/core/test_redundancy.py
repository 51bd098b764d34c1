"""SyncPeer (sans-IO) between two home agents over a simulated lossy network, fake clock.

The harness (``Sim``) is imported by the other test_redundancy_* modules.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from mobileha.core.actions import Send
from mobileha.core.binding import FLAG_T, Binding, Encap
from mobileha.core.sync import (
    MIB_COUNTER_NAMES,
    ApplyBindings,
    DeleteBinding,
    Key,
    Mode,
    ReadyChanged,
    Role,
    SyncAction,
    SyncConfig,
    SyncPeer,
    SyncState,
    binding_from_record,
    record_from_binding,
)
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.sync import (
    FLAG_LAST,
    BindingRecord,
    MsgKind,
    SyncMessage,
    decode,
    encode,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
SPI = 400
VIP = "10.0.0.100"
SYNC_DST = ("10.0.0.2", 434)  # our sync socket (the sync peer does not look at it)
UNIX0 = 1_790_000_000.0  # Unix time at fake-clock 0


def table_iter(table: dict[Key, Binding]) -> Iterator[Binding]:
    """Iterate a dict that may change between next() calls (the keys are listed lazily)."""
    for k in list(table):
        b = table.get(k)
        if b is not None:
            yield b


class _Table(dict[Key, Binding]):
    """A binding table keyed (home address, care-of address) that also knows the care-of
    addresses of each home address (so a registration finds the ones it replaces in O(1),
    as the home agent's table does)."""

    def __init__(self) -> None:
        super().__init__()
        self.coas: dict[str, dict[str, None]] = {}  # insertion-ordered, as the table

    def __setitem__(self, key: Key, value: Binding) -> None:
        super().__setitem__(key, value)
        self.coas.setdefault(key[0], {})[key[1]] = None

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        self._forget(key)

    def pop(self, key: Key, *default: Binding | None) -> Binding | None:  # type: ignore[override]
        if key in self:
            self._forget(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self.coas.clear()

    def _forget(self, key: Key) -> None:
        coas = self.coas.get(key[0])
        if coas is not None:
            coas.pop(key[1], None)
            if not coas:
                del self.coas[key[0]]


class Ha:
    """One home agent as far as sync is concerned: a table and a SyncPeer."""

    def __init__(
        self, name: str, addr: str, peer_addr: str, *, unix_offset: float = UNIX0, **cfg: object
    ) -> None:
        self.name = name
        self.addr = addr
        self.table = _Table()
        self.dynamic: set[Key] = set()
        self.ready_log: list[bool] = []
        config = SyncConfig(
            peer_addr=peer_addr,
            ha_addr=VIP,
            spi=SPI,
            authenticator=Authenticator(KEY, ALG_PREFIX_SUFFIX),
            **cfg,  # type: ignore[arg-type]
        )
        self.sync = SyncPeer(
            config, self.table.get, lambda: table_iter(self.table), unix_offset=unix_offset
        )
        self.sent: list[bytes] = []

    def apply(self, actions: list[SyncAction], sim: Sim) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append(a.payload)
                sim.transmit(self, a.dst, a.payload)
            elif isinstance(a, ApplyBindings):
                for b, dynamic, _nonce, _sa in a.items:
                    key = b.key
                    self.table[key] = b
                    if dynamic:
                        self.dynamic.add(key)
                    else:
                        self.dynamic.discard(key)
            elif isinstance(a, DeleteBinding):
                cur = self.table.get(a.binding.key)
                if cur is not None and cur.ident <= a.binding.ident:
                    del self.table[a.binding.key]
                    self.dynamic.discard(a.binding.key)
            elif isinstance(a, ReadyChanged):
                self.ready_log.append(a.ready)

    # what the home agent core does on its own
    def register(self, b: Binding, sim: Sim, *, dynamic: bool = False) -> None:
        old = [(b.home_addr, c) for c in self.table.coas.get(b.home_addr, ()) if c != b.care_of]
        for k in old:  # a non-S registration replaces the other care-of addresses
            gone = self.table.pop(k)
            self.apply(self.sync.binding_deleted(replace(gone, ident=b.ident), sim.now), sim)
        self.table[b.key] = b
        if dynamic:
            self.dynamic.add(b.key)
        self.apply(self.sync.binding_changed(b, sim.now, dynamic), sim)

    def deregister(self, key: Key, ident: int, sim: Sim) -> None:
        gone = self.table.pop(key, None)
        if gone is not None:
            self.apply(self.sync.binding_deleted(replace(gone, ident=ident), sim.now), sim)

    def expire(self, sim: Sim, *, feed: bool) -> None:
        for k, b in list(self.table.items()):
            if b.expires <= sim.now:
                del self.table[k]
                if feed:
                    self.apply(self.sync.binding_deleted(b, sim.now), sim)


class Sim:
    """Two HAs, a network with loss, duplication and reordering (random delay), a fake clock."""

    def __init__(
        self,
        seed: int = 1,
        *,
        loss: float = 0.0,
        dup: float = 0.0,
        delay: tuple[float, float] = (0.0002, 0.002),
        mode: Mode = Mode.ACTIVE_STANDBY,
        b_offset: float = 0.0,
        **cfg: object,
    ) -> None:
        self.rnd = random.Random(seed)
        self.now = 0.0
        self.loss = loss
        self.dup = dup
        self.delay = delay
        self.cut = False
        self.a = Ha("A", "10.0.0.1", "10.0.0.2", mode=mode, **cfg)
        self.b = Ha("B", "10.0.0.2", "10.0.0.1", mode=mode, unix_offset=UNIX0 + b_offset, **cfg)
        self.by_addr = {self.a.addr: self.a, self.b.addr: self.b}
        self.wire: list[tuple[float, int, str, str, bytes]] = []
        self.n = 0
        self.delivered = 0
        self.dropped = 0
        self.expire_feed = {self.a.name: True, self.b.name: False}
        self.max_events = 400_000
        self.timer_steps = 0
        self.hold: Callable[[bytes], bool] | None = None  # hold matching datagrams back
        self.held: list[tuple[str, str, bytes]] = []

    def release(self) -> None:
        for src, dst, payload in self.held:
            self.n += 1
            heapq.heappush(self.wire, (self.now, self.n, src, dst, payload))
        self.held.clear()

    def transmit(self, src: Ha, dst: tuple[str, int], payload: bytes) -> None:
        copies = 1 + (self.rnd.random() < self.dup)
        for _ in range(copies):
            if self.cut or self.rnd.random() < self.loss:
                self.dropped += 1
                continue
            if self.hold is not None and self.hold(payload):
                self.held.append((src.addr, dst[0], payload))
                continue
            self.n += 1
            t = self.now + self.rnd.uniform(*self.delay)
            heapq.heappush(self.wire, (t, self.n, src.addr, dst[0], payload))

    def step(self, until: float) -> bool:
        """Run the next event before ``until``; False when there is none."""
        cands = []
        if self.wire:
            cands.append(self.wire[0][0])
        for ha in (self.a, self.b):
            d = ha.sync.get_timer()
            if d is not None:
                cands.append(d)
        if not cands or min(cands) > until:
            return False
        t = min(cands)
        self.now = max(self.now, t)
        if self.wire and self.wire[0][0] <= t:
            _, _, src, dst, payload = heapq.heappop(self.wire)
            ha = self.by_addr[dst]
            self.delivered += 1
            if self.delivered > self.max_events:
                kinds = [p[4][0] for p in self.wire[:50]]
                raise AssertionError(f"runaway message exchange at {self.now}: {kinds}")
            ha.apply(ha.sync.receive_datagram(payload, (src, 434), SYNC_DST, self.now), self)
        else:
            self.timer_steps += 1
            if self.timer_steps > self.max_events:
                raise AssertionError(f"a deadline that never moves on, at {self.now}")
            for ha in (self.a, self.b):
                d = ha.sync.get_timer()
                if d is not None and d <= self.now:
                    ha.apply(ha.sync.handle_timer(self.now), self)
        return True

    def run(self, seconds: float, *, expire: bool = False) -> None:
        until = self.now + seconds
        while self.step(until):
            if expire:
                for ha in (self.a, self.b):
                    ha.expire(self, feed=self.expire_feed[ha.name])
        self.now = until
        for ha in (self.a, self.b):
            if expire:
                ha.expire(self, feed=self.expire_feed[ha.name])
            ha.apply(ha.sync.handle_timer(self.now), self)

    def settle(self, limit: float = 600.0, *, expire: bool = True) -> None:
        """Run until neither side has anything outstanding (or ``limit`` fake seconds)."""
        end = self.now + limit
        while self.now < end:
            self.run(1.0, expire=expire)
            if (
                not self.wire
                and self.a.sync.pending == 0
                and self.b.sync.pending == 0
                and self.a.sync.download_complete
                and self.b.sync.download_complete
                and not self.a.sync.transferring
                and not self.b.sync.transferring
            ):
                return
        raise AssertionError("did not settle")


_ident = [0xE6B5A4C000000000]


def next_ident() -> int:
    _ident[0] += 1
    return _ident[0]


def mk(i: int, coa: str = "192.0.2.1", *, now: float = 0.0, lifetime: int = 1800) -> Binding:
    return Binding(
        home_addr=f"10.1.{i // 256 % 256}.{i % 256}",
        care_of=coa,
        ha_addr=VIP,
        lifetime=lifetime,
        expires=now + lifetime,
        ident=next_ident(),
        flags=FLAG_T,
        encap=Encap.GRE if i % 3 == 0 else Encap.IPIP,
        gre_key=i if i % 3 == 0 else None,
        nai=f"mn{i}@example.net" if i % 2 else None,
        src_addr=coa,
    )


def same_tables(a: dict[Key, Binding], b: dict[Key, Binding], tol: float = 1.5) -> None:
    assert a.keys() == b.keys(), (len(a), len(b), set(a) ^ set(b))
    for k, x in a.items():
        y = b[k]
        assert (x.ident, x.care_of, x.lifetime, x.flags, x.encap, x.gre_key, x.nai, x.src_addr) == (
            y.ident,
            y.care_of,
            y.lifetime,
            y.flags,
            y.encap,
            y.gre_key,
            y.nai,
            y.src_addr,
        )
        assert abs(x.expires - y.expires) <= tol or x.expires == y.expires == math.inf


def random_workload(sim: Sim, ha: Ha, n_ops: int, n_mns: int, rate: float) -> None:
    """Registrations, moves, deregistrations at ``rate`` ops/s on ``ha`` (fed to its sync)."""
    rnd = sim.rnd
    for _ in range(n_ops):
        i = rnd.randrange(n_mns)
        home = f"10.1.{i // 256 % 256}.{i % 256}"
        cur = [k for k in ha.table if k[0] == home]
        r = rnd.random()
        if cur and r < 0.15:
            ha.deregister(cur[0], next_ident(), sim)
        else:
            coa = f"192.0.2.{rnd.randrange(1, 4)}"
            ha.register(
                mk(i, coa, now=sim.now, lifetime=rnd.choice([30, 600, 1800, 0xFFFF])),
                sim,
                dynamic=i % 5 == 0,
            )
            if ha.table[(home, coa)].lifetime == 0xFFFF:
                ha.table[(home, coa)].expires = math.inf
        sim.run(rnd.expovariate(rate), expire=True)


# --- tests ----------------------------------------------------------------------------


def test_record_binding_conversions() -> None:
    b = mk(3, now=100.0)
    rec = record_from_binding(b, 130.0, dynamic=True)
    assert rec.remaining == 1770 and rec.lifetime == 1800 and rec.dynamic and rec.gre_key == 3
    back = binding_from_record(rec, VIP, 500.0)
    assert back == replace(b, expires=500.0 + 1770)
    inf = replace(mk(4), lifetime=0xFFFF, expires=math.inf)
    rec = record_from_binding(inf, 5.0)
    assert rec.remaining == 0xFFFF and rec.gre_key == 0
    assert binding_from_record(rec, VIP, 9.0).expires == math.inf
    assert binding_from_record(rec, VIP, 9.0).gre_key is None
    zero_key = replace(mk(6), gre_key=0)
    assert binding_from_record(record_from_binding(zero_key, 0.0), VIP, 0.0).gre_key == 0
    # remaining lifetime rounds up: the standby never expires a copy before the active does
    assert record_from_binding(mk(8, now=0.2), 0.0).remaining == 1801


def test_clean_network_every_change_reaches_the_standby_in_batches() -> None:
    sim = Sim(seed=2)
    a, b = sim.a, sim.b
    for i in range(1000):
        a.register(mk(i), sim, dynamic=i % 7 == 0)
    sim.run(0.01)
    same_tables(a.table, b.table)
    assert b.dynamic == a.dynamic and len(b.dynamic) == 143
    c = a.sync.counters
    bus = [p for p in a.sent if p[0] == 200]
    assert len(bus) == c.SentBUs == c.TotalSentBUs == c.ReceivedBUAcks
    record_bytes = sum(34 + len(f"mn{i}@example.net") * (i % 2) for i in range(1000))
    assert len(bus) <= record_bytes / (1400 - 42) + 2  # full BUs
    assert max(len(p) for p in bus) <= 1400
    assert sum(decode(p).message.records.__len__() for p in bus) == 1000
    assert b.sync.counters.ReceivedBUs == b.sync.counters.SentBUAcks == len(bus)
    assert a.sync.pending == 0
    # a single change waits only for the end of the input's turn: its flush is due now
    n = len(a.sent)
    a.register(mk(5000), sim)
    assert len(a.sent) == n
    assert a.sync.get_timer() == sim.now
    sim.run(0.0)
    assert len(a.sent) == n + 1
    sim.run(0.01)
    assert ("10.1.19.136", "192.0.2.1") in b.table


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_30_percent_loss_reorder_duplicates_converge(seed: int) -> None:
    sim = Sim(seed=seed, loss=0.3, dup=0.05, delay=(0.0001, 0.3))
    random_workload(sim, sim.a, 1500, 300, rate=500.0)
    sim.settle()
    same_tables(sim.a.table, sim.b.table)
    assert sim.a.dynamic & sim.a.table.keys() == sim.b.dynamic & sim.b.table.keys()
    c = sim.a.sync.counters
    assert c.TotalSentBUs > c.SentBUs  # retransmissions
    assert c.FailedBUs > 0  # some ran out of retries, their records were sent again
    assert c.ReceivedBUAcks >= c.SentBUs - c.FailedBUs
    assert sim.b.sync.counters.SecViolations == 0 or sim.b.sync.counters.ReceivedBUs > 0
    assert len(sim.a.table) > 50


def test_every_acknowledged_binding_is_on_the_standby_at_any_ack() -> None:
    """When the active's SyncPeer reports a change acknowledged, the standby has it."""
    sim = Sim(seed=9, loss=0.2, delay=(0.0001, 0.05))
    for i in range(300):
        sim.a.register(mk(i % 120, f"192.0.2.{i % 3 + 1}"), sim)
        sim.run(0.002)
        # invariant: any key with no pending change on A is identical on B
        for k, x in sim.a.table.items():
            if k not in sim.a.sync.sender.latest:
                assert sim.b.table[k].ident == x.ident
    sim.settle()
    same_tables(sim.a.table, sim.b.table)


def _forge(kind: MsgKind, seq: int, *, ident: int, code: int = 0, chunk: int | None = None,
           records: tuple[BindingRecord, ...] = (), key: bytes = KEY) -> bytes:  # fmt: skip
    msg = SyncMessage(kind, seq, VIP, ident, code, records, chunk)
    return encode(msg, SPI, Authenticator(key, ALG_PREFIX_SUFFIX))


def _ident_at(now: float, low: int = 1) -> int:
    return ((int(UNIX0 + now) + 2208988800) << 32) | low


def test_unsolicited_replies_and_acks_are_dropped_and_counted() -> None:
    sim = Sim()
    b = sim.b.sync
    peer = ("10.0.0.1", 434)
    acts = b.receive_datagram(
        _forge(MsgKind.BU_ACK, 77, ident=_ident_at(0, 1)), peer, SYNC_DST, 0.0
    )
    assert acts == [] and b.counters.DroppedBUAcks == 1
    rec = record_from_binding(mk(1), 0.0)
    msg = _forge(MsgKind.BI_REPLY, 5, ident=_ident_at(0, 2), chunk=0, records=(rec,))
    assert b.receive_datagram(msg, peer, SYNC_DST, 0.0) == []
    assert b.counters.DroppedBIReps == 1 and b.counters.SentBIAcks == 0
    assert sim.b.table == {}
    acts = b.receive_datagram(
        _forge(MsgKind.BI_ACK, 5, ident=_ident_at(0, 3), chunk=0), peer, SYNC_DST, 0.0
    )
    assert acts == [] and b.counters.DroppedBIAcks == 1
    # from an address that is not the peer
    assert b.receive_datagram(msg, ("10.9.9.9", 434), SYNC_DST, 0.0) == []
    assert b.counters.UnknownPeer == 1
    # garbage
    assert b.receive_datagram(b"\xc8\x00", peer, SYNC_DST, 0.0) == []
    assert b.counters.DecodeErrors == 1


def test_bad_hhae_is_dropped_and_counted() -> None:
    sim = Sim()
    b = sim.b.sync
    rec = record_from_binding(mk(1), 0.0)
    bad = _forge(MsgKind.BU, 1, ident=_ident_at(0), records=(rec,), key=b"x" * 16)
    assert b.receive_datagram(bad, ("10.0.0.1", 434), SYNC_DST, 0.0) == []
    assert b.counters.SecViolations == 1 and b.counters.ReceivedBUs == 0
    good = bytearray(_forge(MsgKind.BU, 1, ident=_ident_at(0), records=(rec,)))
    good[30] ^= 1  # a record byte changed in flight
    assert b.receive_datagram(bytes(good), ("10.0.0.1", 434), SYNC_DST, 0.0) == []
    wrong_spi = _forge(MsgKind.BU, 1, ident=_ident_at(0), records=(rec,))
    wrong_spi = wrong_spi[:-20] + (999).to_bytes(4, "big") + wrong_spi[-16:]
    assert b.receive_datagram(wrong_spi, ("10.0.0.1", 434), SYNC_DST, 0.0) == []
    assert b.counters.SecViolations == 3 and sim.b.table == {}


def test_replayed_identification_gets_133_and_is_counted() -> None:
    sim = Sim()
    sim.a.register(mk(1), sim)
    sim.run(0.01)
    assert len(sim.b.table) == 1
    bu = next(p for p in sim.a.sent if p[0] == 200)
    sim.b.table.clear()  # so that a replay would be visible
    acts = sim.b.sync.receive_datagram(bu, ("10.0.0.1", 434), SYNC_DST, sim.now)
    c = sim.b.sync.counters
    assert c.SecViolations == 1 and c.ReceivedBUs == 1
    assert not any(isinstance(x, ApplyBindings) for x in acts)
    (send,) = acts
    assert isinstance(send, Send)
    ack = decode(send.payload).message
    assert ack.kind is MsgKind.BU_ACK and ack.code == 133
    assert ack.ident & 0xFFFFFFFF == decode(bu).message.ident & 0xFFFFFFFF
    # the replayed ack reaching A is not for anything outstanding: dropped
    sim.a.apply(
        sim.a.sync.receive_datagram(send.payload, ("10.0.0.2", 434), SYNC_DST, sim.now), sim
    )
    assert sim.a.sync.counters.DroppedBUAcks == 1
    # a stale timestamp (outside the 7 s tolerance) is a violation too
    rec = record_from_binding(mk(2), sim.now)
    old = _forge(MsgKind.BU, 9, ident=_ident_at(sim.now - 60), records=(rec,))
    acts = sim.b.sync.receive_datagram(old, ("10.0.0.1", 434), SYNC_DST, sim.now)
    assert c.SecViolations == 2 and decode(acts[0].payload).message.code == 133  # type: ignore[union-attr]


def test_clock_skew_133_then_resync() -> None:
    sim = Sim(b_offset=30.0)  # B's clock is 30 s ahead: A's Identifications look stale
    for i in range(10):
        sim.a.register(mk(i), sim)
    sim.run(0.5)
    same_tables(sim.a.table, sim.b.table)
    assert sim.b.sync.counters.SecViolations >= 1
    assert sim.a.sync.counters.ReceivedIdMismatch >= 1
    assert sim.a.sync.pending == 0


def test_unacked_bu_is_retransmitted_with_backoff_and_counted_failed() -> None:
    sim = Sim()
    sim.cut = True
    sim.a.register(mk(1), sim)
    times = []
    end = 16.0
    while sim.now < end:
        n = len(sim.a.sent)
        if not sim.step(end):
            break
        if len(sim.a.sent) > n:
            times.append(round(sim.now, 3))
    c = sim.a.sync.counters
    assert times[:4] == [0.0, 1.0, 3.0, 7.0]  # sent at once; 1 s, doubling, 3 retries
    assert c.SentBUs >= 1 and c.FailedBUs == 1 and c.TotalSentBUs >= 4
    assert sim.a.sync.pending == 1  # not forgotten
    assert sim.a.sync.state is SyncState.PEER_LOST
    sim.cut = False
    sim.settle()
    assert sim.b.table.keys() == sim.a.table.keys()
    assert sim.a.sync.state is SyncState.IN_SYNC


def test_queue_overflow_asks_for_a_new_download() -> None:
    sim = Sim(max_pending=50)
    for i in range(40):
        sim.b.table[mk(i).key] = mk(i)  # B's table starts in sync for nothing; A has bindings
    sim.cut = True
    for i in range(80):
        sim.a.register(mk(i), sim)
    assert sim.a.sync.counters.QueueOverflows == 1
    sim.cut = False
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    sim.settle()
    same_tables(sim.a.table, sim.b.table)


def test_unauthenticated_messages_never_change_state() -> None:
    sim = Sim()
    rnd = random.Random(5)
    for _ in range(2000):
        data = bytes([rnd.choice([200, 201, 202, 203, 204])]) + rnd.randbytes(rnd.randrange(80))
        assert sim.b.sync.receive_datagram(data, ("10.0.0.1", 434), SYNC_DST, 0.0) == []
    assert sim.b.table == {}


def test_mib_counter_names() -> None:
    assert MIB_COUNTER_NAMES == (
        "SentBUs",
        "FailedBUs",
        "ReceivedBUAcks",
        "TotalSentBUs",
        "ReceivedBUs",
        "SentBUAcks",
        "SentBIReqs",
        "FailedBIReqs",
        "TotalSentBIReqs",
        "ReceivedBIReps",
        "DroppedBIReps",
        "SentBIAcks",
        "ReceivedBIReqs",
        "SentBIReps",
        "FailedBIReps",
        "TotalSentBIReps",
        "ReceivedBIAcks",
        "DroppedBIAcks",
        "SecViolations",
    )
    v = Sim().a.sync.view()
    assert v["state"] == "idle" and v["ready"] is True


def test_bi_reply_last_flag_on_last_chunk_only() -> None:
    sim = Sim()
    for i in range(200):
        b = mk(i)
        sim.a.table[b.key] = b
    sim.b.apply(sim.b.sync.role_changed(Role.STANDBY, sim.now), sim)
    assert sim.b.ready_log == [False]
    sim.settle()
    reps = [decode(p).message for p in sim.a.sent if p[0] == 203]
    assert [m.chunk for m in reps] == list(range(len(reps)))
    assert [bool(m.flags & FLAG_LAST) for m in reps] == [False] * (len(reps) - 1) + [True]
    assert all(len(p) <= 1400 for p in sim.a.sent)
    same_tables(sim.a.table, sim.b.table)
    assert sim.b.ready_log == [False, True] and sim.b.sync.state is SyncState.IN_SYNC
    c = sim.a.sync.counters
    assert c.ReceivedBIReqs == 1 and c.SentBIReps == len(reps) == c.ReceivedBIAcks
    assert c.TransfersCompleted == 1
    assert sim.b.sync.counters.DownloadsCompleted == 1


def test_empty_table_download_completes() -> None:
    sim = Sim()
    sim.b.apply(sim.b.sync.start_download(0.0), sim)
    assert not sim.b.sync.ready
    sim.settle()
    assert sim.b.sync.ready and sim.b.ready_log == [False, True]
