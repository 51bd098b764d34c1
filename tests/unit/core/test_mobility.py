"""Mobility, sans-IO on a fake clock: agent advertisements (RFC 5944 §2.1-2.3), a mobile
node that discovers foreign agents and moves between them (§2.4), registration revocation
between the home agent and the foreign agents (RFC 3543), ICMP errors for relayed requests
(§3.7.3)."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from mobileha.core.actions import Send
from mobileha.core.discovery import Advertiser, AdvertiserConfig, SendIcmp
from mobileha.core.foreign_agent import (
    ClearVisitors,
    FaStart,
    ForeignAgent,
    HaSecurity,
    VisitorGone,
)
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.mobile_node import MnSecurity, MnState, MobileNode
from mobileha.core.movement import (
    AdvertisementReceived,
    AtHome,
    Attached,
    LinkDown,
    LinkUp,
    Roamer,
)
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.wire import icmp as icmp_wire
from mobileha.wire.icmp import (
    ADV_F,
    ADV_H,
    ADV_R,
    ADV_T,
    AgentAdvertisement,
    AgentSolicitation,
    IcmpError,
    MobilityAgentExt,
    PrefixLengthsExt,
)
from mobileha.wire.ip import IPv4Header, encode_ipv4
from mobileha.wire.mip import REVOCATION

KEY = bytes(range(16))
SPI = 256
FA_SPI = 300
FA_KEY = b"fa-ha-shared-key"
HA = "10.0.1.10"
HOA = "10.1.0.5"
NAI = "roamer@example.net"
FA1 = "10.2.1.1"
FA2 = "10.2.2.1"
MN_ADDR = "10.9.9.9"  # where the FAs' replies to the MN go (its link-layer address here)
WALL = 1_800_000_000.0


def adv_config(addr: str, ifname: str, **kw: Any) -> AdvertiserConfig:
    opts: dict[str, Any] = {
        "interface": ifname,
        "flags": ADV_R | ADV_F | ADV_T,
        "registration_lifetime": 1800,
        "care_of": (addr,),
        "routers": ((addr, 0),),
        "prefix_lengths": (24,),
        "interval_s": 1.0,
    }
    opts.update(kw)
    return AdvertiserConfig(**opts)


def make_fa(addr: str, ifname: str, key: bytes = FA_KEY, **kw: Any) -> ForeignAgent:
    return ForeignAgent(
        address=addr,
        ha_security={HA: HaSecurity(FA_SPI, key, "hmac-md5")},
        advertise=adv_config(addr, ifname),
        revocation=True,
        random_bytes=lambda n: bytes(range(7, 7 + n)),
        rng=lambda: 0.5,
        **kw,
    )


def make_ha(**kw: Any) -> HomeAgent:
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=NAI, home_address=HOA))
    for fa in (FA1, FA2):
        sas.add_fa(fa, MobilitySA(FA_SPI, FA_KEY, "hmac-md5"))
    s = HomeAgentSettings(
        address=HA, home_prefix="10.1.0.0/24", revocation=True, replay_tolerance=7, **kw
    )
    return HomeAgent(s, sas, unix_offset=WALL)


class Net:
    """Two FAs on links ``l1``/``l2``, one HA, one roaming MN; datagrams are delivered
    at once (``lose`` drops the revocations to one address)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.ha = make_ha()
        self.fas = {FA1: make_fa(FA1, "l1"), FA2: make_fa(FA2, "l2")}
        for fa in self.fas.values():
            fa.unix_offset = WALL
        mn = MobileNode(
            nai=NAI,
            home_addr=HOA,
            ha_addr=HA,
            security=MnSecurity(SPI, KEY, "hmac-md5"),
            care_of="0.0.0.0",
            unix_offset=WALL,
        )
        self.roamer = Roamer(mn, ["l1", "l2"], rng=lambda: 0.5)
        self.links = {"l1": FA1, "l2": FA2}
        self.up: set[str] = set()
        self.notices: list[Any] = []
        self.lose_revocations_to: str | None = None
        self.lost = 0

    def start(self) -> None:
        for fa in self.fas.values():
            self.run(fa.handle_event(FaStart(), self.now), fa.address)

    def run(self, actions: list[Any], frm: str = "") -> None:
        """Deliver ``actions`` emitted by the node at ``frm`` (and what they cause)."""
        queue = [(a, frm) for a in actions]
        while queue:
            a, frm = queue.pop(0)
            if isinstance(a, SendIcmp):
                out, frm = self._icmp(a)
            elif isinstance(a, Send):
                out, frm = self._udp(a, frm)
            else:
                if isinstance(a, Attached | AtHome):
                    self.notices.append(a)
                continue
            queue += [(x, frm) for x in out]

    def _icmp(self, a: SendIcmp) -> tuple[list[Any], str]:
        assert a.ifname is not None
        if a.ifname not in self.up:
            return [], ""
        fa_addr = self.links[a.ifname]
        if a.payload[0] == icmp_wire.ROUTER_SOLICITATION:  # from the MN on that link
            return self.fas[fa_addr].receive_icmp(a.payload, MN_ADDR, a.dst, self.now), fa_addr
        ev = AdvertisementReceived(a.payload, fa_addr, a.ifname)  # from the FA of that link
        return self.roamer.handle_event(ev, self.now), MN_ADDR

    def _udp(self, a: Send, frm: str) -> tuple[list[Any], str]:
        dst = a.dst[0]
        src = (a.src[0] if a.src else frm, a.src[1] if a.src else 434)
        if dst in self.fas:
            if src[0] == HA and a.payload[0] == REVOCATION and self.lose_revocations_to == dst:
                self.lost += 1
                return [], ""
            return self.fas[dst].receive_datagram(a.payload, src, (dst, 434), self.now), dst
        if dst == HA:
            return self.ha.receive_datagram(a.payload, src, (HA, 434), self.now), HA
        return self.roamer.receive_datagram(a.payload, src, a.dst, self.now), MN_ADDR

    def advance(self, dt: float, step: float = 0.05) -> None:
        end = self.now + dt
        while self.now < end:
            self.now = min(end, self.now + step)
            for fa in self.fas.values():
                t = fa.get_timer()
                if t is not None and t <= self.now:
                    self.run(fa.handle_timer(self.now), fa.address)
            t = self.ha.get_timer()
            if t is not None and t <= self.now:
                self.run(self.ha.handle_timer(self.now), HA)
            t = self.roamer.get_timer()
            if t is not None and t <= self.now:
                self.run(self.roamer.handle_timer(self.now), MN_ADDR)

    def link(self, name: str, up: bool) -> None:
        if up:
            self.up.add(name)
            self.run(self.roamer.handle_event(LinkUp(name), self.now), MN_ADDR)
        else:
            self.up.discard(name)
            self.run(self.roamer.handle_event(LinkDown(name), self.now), MN_ADDR)

    def binding_coa(self) -> str | None:
        b = self.ha.table.lookup(HOA)
        if b is None:
            return None
        return b[0].care_of if isinstance(b, list) else b.care_of


# --- advertisements ---------------------------------------------------------------------


def test_advertiser_sequence_starts_at_zero_and_wraps_to_256() -> None:
    adv = Advertiser(adv_config(FA1, "l1"), rng=lambda: 0.5)
    first = adv.start(0.0)
    m = AgentAdvertisement.decode(first[0].payload).mobility
    assert m is not None and m.sequence == 0 and m.care_of == (FA1,)
    assert first[0].dst == icmp_wire.ALL_SYSTEMS and first[0].ttl == 1
    assert adv.get_timer() == 1.0  # the interval, jitter centred by rng 0.5
    adv.sequence = 0xFFFF
    last = AgentAdvertisement.decode(adv.handle_timer(1.0)[0].payload).mobility
    nxt = AgentAdvertisement.decode(adv.handle_timer(2.0)[0].payload).mobility
    assert last is not None and nxt is not None
    assert (last.sequence, nxt.sequence) == (0xFFFF, 256)
    assert adv.stats.sequence_wraps == 1
    adv.stop()
    again = AgentAdvertisement.decode(adv.start(3.0)[0].payload).mobility
    assert again is not None and again.sequence == 0


def test_solicitation_answered_at_once_and_rate_limited() -> None:
    fa = make_fa(FA1, "l1")
    fa.handle_event(FaStart(), 0.0)
    sol = AgentSolicitation().encode()
    on_link = "10.2.1.77"  # in FA1's advertised prefix (10.2.1.0/24)
    out = fa.receive_icmp(sol, on_link, icmp_wire.MOBILE_AGENTS, 0.5)
    assert len(out) == 1 and isinstance(out[0], SendIcmp) and out[0].dst == on_link
    m = AgentAdvertisement.decode(out[0].payload).mobility
    assert m is not None and m.sequence == 1
    # the same MN again within the gap: served by the previous answer
    assert fa.receive_icmp(sol, on_link, icmp_wire.MOBILE_AGENTS, 0.52) == []
    assert fa.advertiser is not None and fa.advertiser.stats.answers_rate_limited == 1
    # from 0.0.0.0: multicast answer
    out = fa.receive_icmp(sol, "0.0.0.0", icmp_wire.MOBILE_AGENTS, 0.7)
    assert isinstance(out[0], SendIcmp) and out[0].dst == icmp_wire.ALL_SYSTEMS
    # from an address off the link (no address here yet): multicast too (TTL 1)
    out = fa.receive_icmp(sol, MN_ADDR, icmp_wire.MOBILE_AGENTS, 0.9)
    assert isinstance(out[0], SendIcmp) and out[0].dst == icmp_wire.ALL_SYSTEMS


def test_busy_bit_while_the_visitor_list_is_full() -> None:
    adv = Advertiser(adv_config(FA1, "l1"))
    adv.set_busy(True)
    m = adv.advertisement().mobility
    assert m is not None and m.flags & icmp_wire.ADV_B


# --- discovery, movement, revocation --------------------------------------------------


def test_mn_discovers_registers_moves_and_the_ha_revokes_the_old_fa() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    assert net.roamer.registered and net.binding_coa() == FA1
    assert HOA in net.fas[FA1].visitors
    assert net.fas[FA1].visitors[HOA].revocation  # negotiated with the HA
    assert net.ha.table.lookup(HOA) is not None
    ident_before = net.roamer.mn.last_ident if hasattr(net.roamer.mn, "last_ident") else None

    # move: link 1 down, link 2 up
    net.link("l1", False)
    net.link("l2", True)
    net.advance(0.1)
    assert net.binding_coa() == FA2 and net.roamer.registered
    assert HOA in net.fas[FA2].visitors
    assert HOA not in net.fas[FA1].visitors  # revoked by the HA at once
    rs = net.ha.revocations.stats
    assert (rs.sent, rs.acknowledged, rs.retransmitted) == (1, 1, 0)
    assert net.fas[FA1].stats.revoked_by_ha == 1
    assert net.roamer.mn.stats.denied == 0  # no 133 through the new FA
    assert net.roamer.stats.moves == 2
    del ident_before

    # and back
    net.link("l2", False)
    net.link("l1", True)
    net.advance(0.1)
    assert net.binding_coa() == FA1
    assert HOA not in net.fas[FA2].visitors
    assert rs.acknowledged == 2
    assert net.roamer.mn.stats.denied == 0


def test_movement_by_advertisement_lifetime_expiry() -> None:
    """Algorithm 1 (§2.4.2.1): the link stays "up", the agent goes silent."""
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    assert net.binding_coa() == FA1
    fa1, fa2 = net.fas[FA1], net.fas[FA2]
    assert fa1.advertiser is not None and fa2.advertiser is not None
    # without prefix lengths in FA2's advertisements only algorithm 1 can find the move
    fa2.advertiser.config = dataclasses.replace(fa2.advertiser.config, prefix_lengths=None)
    fa1.advertiser.stop()  # FA1 goes silent
    net.up.add("l2")
    net.run(net.roamer.handle_event(LinkUp("l2"), net.now), MN_ADDR)
    # FA2's advertisements are heard on l2 but FA1's have not expired yet: no move
    net.advance(1.0)
    assert net.binding_coa() == FA1
    net.advance(3.0)  # FA1's advertisement lifetime (3 intervals) runs out
    assert net.binding_coa() == FA2
    assert net.roamer.stats.agents_expired >= 1


def test_movement_by_prefix_change() -> None:
    """Algorithm 2 (§2.4.2.2): an advertisement with other prefixes means a new link."""
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    net.up.add("l2")
    net.run(net.roamer.handle_event(LinkUp("l2"), net.now), MN_ADDR)  # l1 stays up
    net.advance(1.2)
    assert net.binding_coa() == FA2
    assert net.roamer.stats.prefix_moves >= 1


def test_lost_revocation_is_retransmitted() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    net.lose_revocations_to = FA1
    net.link("l1", False)
    net.link("l2", True)
    net.advance(0.1)
    assert net.lost == 1 and HOA in net.fas[FA1].visitors
    net.lose_revocations_to = None
    net.advance(1.1)
    rs = net.ha.revocations.stats
    assert rs.retransmitted == 1 and rs.acknowledged == 1
    assert HOA not in net.fas[FA1].visitors


def test_fa_revokes_when_the_visitor_goes_away() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    fa1 = net.fas[FA1]
    net.run(fa1.handle_event(VisitorGone(HOA), net.now), FA1)
    assert HOA not in fa1.visitors
    assert net.ha.table.lookup(HOA) is None
    assert net.ha.revoked_by_fa == 1
    assert fa1.revocations.stats.acknowledged == 1


def test_fa_operator_clear_revokes_at_the_ha() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    first = net.ha.table.lookup(HOA)
    net.run(net.fas[FA1].handle_event(ClearVisitors(nai=NAI), net.now), FA1)
    fa1 = net.fas[FA1]
    assert fa1.stats.visitors_cleared == 1 and fa1.stats.revoked_by_fa == 1
    assert net.ha.revoked_by_fa == 1 and fa1.revocations.stats.acknowledged == 1
    # the MN, told with a sequence-0 advertisement, registered again through FA1
    assert net.roamer.stats.restarts_seen == 1
    again = net.ha.table.lookup(HOA)
    assert again is not None and again is not first


def test_wrong_authenticator_refused_and_counted_both_ways() -> None:
    net = Net()
    bad = make_fa(FA1, "l1", key=b"not-the-right-key")
    bad.unix_offset = WALL
    net.fas[FA1] = bad
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    # the registration itself fails FA-HA authentication at the HA: FA -> HA direction
    # with a forged revocation instead
    from mobileha.core.revocation import Revocations

    forger = Revocations(home=False, sa_for=lambda _a: HaSecurity(FA_SPI, b"wrong", "hmac-md5"))
    forger.unix_offset = WALL
    msg = forger.revoke((HA, 434), HOA, HA, FA1, inform=False, expires=1e9, now=net.now)
    before = net.ha.revocations.stats.bad_auth
    out = net.ha.receive_datagram(msg[0].payload, (FA1, 434), (HA, 434), net.now)
    assert out == [] and net.ha.revocations.stats.bad_auth == before + 1
    # HA -> FA direction: a forged revocation to a good FA
    good = make_fa(FA2, "l2")
    forger_ha = Revocations(home=True, sa_for=lambda _a: HaSecurity(FA_SPI, b"wrong", "hmac-md5"))
    msg = forger_ha.revoke((FA2, 434), HOA, HA, FA2, inform=False, expires=1e9, now=net.now)
    assert good.receive_datagram(msg[0].payload, (HA, 434), (FA2, 434), net.now) == []
    assert good.revocations.stats.bad_auth == 1


def test_operator_clear_at_the_ha_revokes_and_informs_the_mn() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    sent: list[Any] = []
    out = net.ha.clear(net.now, home_addr=HOA)
    assert net.ha.table.lookup(HOA) is None and net.ha.cleared == 1
    sent = [a for a in out if isinstance(a, Send)]
    assert len(sent) == 1 and sent[0].dst[0] == FA1
    net.run(out, HA)
    assert net.fas[FA1].stats.revoked_by_ha == 1
    assert net.ha.revocations.stats.acknowledged == 1
    # the FA told the MN with a sequence-0 advertisement: it registered again at once
    assert net.roamer.stats.restarts_seen == 1
    assert net.ha.table.lookup(HOA) is not None and HOA in net.fas[FA1].visitors


def test_return_home_deregisters_after_at_home_notice() -> None:
    net = Net()
    net.start()
    net.link("l1", True)
    net.advance(0.1)
    assert net.binding_coa() == FA1
    home_adv = AgentAdvertisement(
        3,
        ((HA, 0),),
        (MobilityAgentExt(0, 1800, ADV_H), PrefixLengthsExt((24,))),
    ).encode()
    net.notices.clear()
    net.link("l1", False)
    net.up.add("l2")
    net.run(net.roamer.handle_event(LinkUp("l2"), net.now), MN_ADDR)
    net.notices.clear()
    net.run(net.roamer.handle_event(AdvertisementReceived(home_adv, HA, "l2"), net.now), MN_ADDR)
    assert any(isinstance(n, AtHome) for n in net.notices)
    net.advance(0.1)
    assert net.ha.table.lookup(HOA) is None
    assert net.roamer.where == "home" and net.roamer.mn.state is MnState.IDLE


def test_icmp_host_unreachable_for_a_relayed_request_answers_81() -> None:
    fa = make_fa(FA1, "l1")
    mn = MobileNode(
        nai=NAI,
        home_addr=HOA,
        ha_addr=HA,
        security=MnSecurity(SPI, KEY, "hmac-md5"),
        foreign_agent=(FA1, 434),
        unix_offset=WALL,
    )
    req = mn.register(10.0)[0].payload
    relayed = [a for a in fa.receive_datagram(req, (MN_ADDR, 434), (FA1, 434), 10.0)]
    assert len(relayed) == 1 and isinstance(relayed[0], Send)
    udp = struct.pack("!HHHH", 434, 434, 8 + len(relayed[0].payload), 0)
    ip = encode_ipv4(IPv4Header(FA1, HA, 17, 20 + len(udp) + len(relayed[0].payload)))
    quoted = ip + udp + relayed[0].payload
    err = IcmpError(icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_HOST, quoted).encode()
    out = fa.receive_icmp(err, "10.0.0.1", FA1, 10.2)
    replies = [a for a in out if isinstance(a, Send)]
    assert len(replies) == 1 and replies[0].dst == (MN_ADDR, 434)
    mn.receive_datagram(replies[0].payload, (FA1, 434), (MN_ADDR, 434), 10.2)
    assert mn.last_code == 81
    assert fa.stats.icmp_errors == 1
