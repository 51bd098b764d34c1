"""Replay nonces (RFC 5944 §5.7) survive a takeover: two HomeAgent cores synced by SyncPeers.

[P] REC_NONCE (P§5.4 record): the active sends the nonce it issued last to the MN with the
binding; the standby restores it, so the MN's next request (carrying the nonce of the last
reply) is accepted by the new active with code 0, not 133.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.home_agent import HomeAgent, RestoreBinding, WithdrawBinding
from mobileha.core.sync import ApplyBindings, DeleteBinding, Role, SyncConfig, SyncPeer
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.sync import REC_NONCE, MsgKind, decode
from tests.unit.core.test_home_agent import FA, HA, NOW, make_ha, rrq, send

NONCE_NAI = "nonce@example.net"  # make_ha's SA with replay="nonce"
SYNC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


class Node:
    """A home agent core and its SyncPeer, wired like mobileha.node.redundancy."""

    def __init__(
        self,
        name: str,
        addr: str,
        peer: str,
        *,
        active: bool,
        random_bytes: Callable[[int], bytes] | None = None,
    ) -> None:
        self.name = name
        self.addr = addr
        self.core: HomeAgent = make_ha(random_bytes=random_bytes)
        self.core.active = active
        core = self.core
        self.sync = SyncPeer(
            SyncConfig(
                peer_addr=peer,
                ha_addr=HA,
                spi=400,
                authenticator=Authenticator(SYNC_KEY, ALG_PREFIX_SUFFIX),
            ),
            lambda k: core.table.find(*k),
            lambda: list(core.table),
            unix_offset=1_800_000_000.0,
            dynamic_of=lambda b: core.is_dynamic(b.home_addr),
            nonce_of=core.nonce_of,
            now=NOW,
        )


class Pair:
    """Two nodes and a loss-free wire; ``sent`` records every sync payload."""

    def __init__(self, random_bytes: Callable[[int], bytes] | None = None) -> None:
        self.now = NOW
        self.a = Node("A", "10.0.0.1", "10.0.0.2", active=True, random_bytes=random_bytes)
        self.b = Node("B", "10.0.0.2", "10.0.0.1", active=False, random_bytes=random_bytes)
        self.by_addr = {n.addr: n for n in (self.a, self.b)}
        self.wire: deque[tuple[Node, str, bytes]] = deque()
        self.sent: list[bytes] = []

    def run_core(self, node: Node, actions: list[Any]) -> list[Any]:
        """Feed the core's binding changes to its SyncPeer (as the node adapter does)."""
        for a in actions:
            if isinstance(a, (RestoreBinding, WithdrawBinding)):
                continue
            if isinstance(a, InstallBinding):
                self.run_sync(node, node.sync.binding_changed(a.binding, self.now))
            elif isinstance(a, RemoveBinding):
                self.run_sync(node, node.sync.binding_deleted(a.binding, self.now))
        return actions

    def run_sync(self, node: Node, actions: list[Any]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append(a.payload)
                self.wire.append((node, a.dst[0], a.payload))
            elif isinstance(a, ApplyBindings):
                node.core.apply_synced_all(a.items, self.now)
            elif isinstance(a, DeleteBinding):
                b = a.binding  # as mobileha.node.redundancy: SyncPeer decided it is newer
                if node.core.table.find(b.home_addr, b.care_of) is not None:
                    node.core.delete_synced(b.home_addr, b.care_of, self.now)

    def settle(self, seconds: float = 1.0) -> None:
        """Deliver everything and run the timers (flush delay) for ``seconds``."""
        end = self.now + seconds
        while True:
            while self.wire:
                src, dst, payload = self.wire.popleft()
                node = self.by_addr[dst]
                self.run_sync(
                    node,
                    node.sync.receive_datagram(
                        payload, (src.addr, 434), (node.addr, 434), self.now
                    ),
                )
            deadlines = [d for d in (n.sync.get_timer() for n in (self.a, self.b)) if d is not None]
            due = [d for d in deadlines if d <= end]
            if not due:
                self.now = end
                return
            self.now = max(self.now, min(due))
            for n in (self.a, self.b):
                self.run_sync(n, n.sync.handle_timer(self.now))

    def register(self, node: Node, ident: int) -> Any:
        reply, actions = send(node.core, rrq(nai=NONCE_NAI, ident=ident), now=self.now)
        self.run_core(node, actions)
        return reply

    def takeover(self) -> None:
        """A fails: B becomes active (HSRP), with what it has synced."""
        self.b.core.set_active(True, self.now)
        self.run_sync(self.b, self.b.sync.role_changed(Role.ACTIVE, self.now))


def _nonce_records(payloads: list[bytes], kind: MsgKind) -> list[int | None]:
    out: list[int | None] = []
    for p in payloads:
        m = decode(p).message
        if m.kind is kind:
            out += [r.nonce for r in m.records]
    return out


def _first_registration(pair: Pair, *, feed: bool = True) -> int:
    """The MN learns a nonce (133), registers with it (0): returns the nonce of that reply.
    ``feed=False``: the change is not given to A's SyncPeer (a binding from before sync)."""

    def reg(ident: int) -> Any:
        if feed:
            return pair.register(pair.a, ident)
        return send(pair.a.core, rrq(nai=NONCE_NAI, ident=ident), now=pair.now)[0]

    reply = reg(0x00000000_11111111)
    assert reply is not None and reply.code == 133
    reply = reg(((reply.ident >> 32) << 32) | 0x22222222)
    assert reply is not None and reply.code == 0
    return int(reply.ident >> 32)


def _nonces(order: str) -> Callable[[int], bytes] | None:
    """The HA's random source: nonces that go down or up, or (None) seeded random ones."""
    if order == "random":
        return None
    seq = iter(range(0xF0000000, 0, -0x01000000))
    if order == "increasing":
        seq = iter(range(0x01000000, 0xFFFFFFFF, 0x01000000))
    return lambda n: next(seq).to_bytes(n, "big")


@pytest.mark.parametrize("order", ["random", "decreasing", "increasing"])
def test_takeover_is_invisible_to_a_nonce_mn(order: str) -> None:
    # a nonce MN's Identification does not grow (random high 32 bits): the standby must
    # still take a re-registration whose Identification is smaller ([P] core.sync.merge.chained)
    pair = Pair(_nonces(order))
    nonce = _first_registration(pair)
    pair.settle()
    # the BU carried the nonce of the reply that was sent, and the standby restored it
    assert _nonce_records(pair.sent, MsgKind.BU) == [nonce]
    hoa = pair.b.core.table.home_address_of(NONCE_NAI)
    assert hoa is not None
    synced = pair.b.core.table.find(hoa, FA)
    assert synced is not None and pair.b.core.nonce_of(synced) == nonce
    # re-registration on A: a new nonce, synced again
    reply = pair.register(pair.a, (nonce << 32) | 0x33333333)
    assert reply is not None and reply.code == 0
    nonce = int(reply.ident >> 32)
    pair.settle()
    assert _nonce_records(pair.sent, MsgKind.BU)[-1] == nonce
    pair.takeover()
    reply = pair.register(pair.b, (nonce << 32) | 0x44444444)
    assert reply is not None and reply.code == 0  # no 133 after the takeover
    assert reply.ident & 0xFFFFFFFF == 0x44444444


def test_bulk_download_carries_nonces() -> None:
    pair = Pair()
    # A has the binding (not sent as a BU); B starts as standby and downloads A's table
    nonce = _first_registration(pair, feed=False)
    assert pair.b.core.table.home_address_of(NONCE_NAI) is None
    pair.run_sync(pair.b, pair.b.sync.role_changed(Role.STANDBY, pair.now))
    pair.settle()
    assert _nonce_records(pair.sent, MsgKind.BI_REPLY) == [nonce]
    bi = [decode(p).message for p in pair.sent if decode(p).message.kind is MsgKind.BI_REPLY]
    assert all(r.rec_flags & REC_NONCE for m in bi for r in m.records)
    assert pair.b.core.table.home_address_of(NONCE_NAI) is not None
    pair.takeover()
    reply = pair.register(pair.b, (nonce << 32) | 0x55555555)
    assert reply is not None and reply.code == 0


def test_no_nonce_for_timestamp_mns() -> None:
    pair = Pair()
    reply, actions = send(pair.a.core, rrq(), now=pair.now)  # make_ha's timestamp MN
    assert reply is not None and reply.code == 0
    pair.run_core(pair.a, actions)
    pair.settle()
    assert _nonce_records(pair.sent, MsgKind.BU) == [None]


@pytest.mark.parametrize("order", ["decreasing", "increasing"])
def test_deregistration_and_reregistration_of_a_nonce_mn_reach_the_standby(order: str) -> None:
    """A nonce MN deregisters and registers again (same care-of address) within the
    tombstone time: the standby deletes the binding and then takes the new one, whichever
    way the random high 32 bits of the Identifications happen to go."""
    pair = Pair(_nonces(order))
    nonce = _first_registration(pair)
    pair.settle()
    hoa = pair.b.core.table.home_address_of(NONCE_NAI)
    assert hoa is not None and pair.b.core.table.find(hoa, FA) is not None
    # deregistration (lifetime 0) with the nonce of the last reply
    reply, actions = send(
        pair.a.core,
        rrq(nai=NONCE_NAI, ident=(nonce << 32) | 0x0D, life=0, hoa=hoa),
        now=pair.now,
    )
    assert reply is not None and reply.code == 0
    pair.run_core(pair.a, actions)
    pair.settle()
    assert pair.b.core.table.find(hoa, FA) is None  # the standby deleted it too
    nonce = int(reply.ident >> 32)
    # registration again, at once (within the tombstone time), same care-of address
    reply = pair.register(pair.a, (nonce << 32) | 0x0E)
    assert reply is not None and reply.code == 0
    pair.settle()
    hoa2 = pair.a.core.table.home_address_of(NONCE_NAI)
    assert hoa2 is not None and pair.b.core.table.find(hoa2, FA) is not None
    nonce = int(reply.ident >> 32)
    pair.takeover()
    reply = pair.register(pair.b, (nonce << 32) | 0x0F)
    assert reply is not None and reply.code == 0
