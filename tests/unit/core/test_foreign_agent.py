"""ForeignAgent (PDSN) sans-IO with a fake clock: relay, GRE key, FA-HA, pending timeout,
reply from another address (HA-SLB), visitor expiry, challenges, AAA."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_G, FLAG_T, Encap
from mobileha.core.foreign_agent import AaaRequest, ForeignAgent, HaSecurity
from mobileha.core.mobile_node import MnSecurity, MobileNode
from mobileha.wire.mip import (
    EXT_FA_HA,
    EXT_MN_HA,
    AuthExt,
    ChallengeExt,
    CvseExt,
    DynamicHaExt,
    GenAuthExt,
    GreKeyExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
)

HERE = ("192.0.2.254", 434)  # the receiving socket's address (the cores do not use it)

MN_KEY = bytes(range(16))
FAHA_KEY = b"fa-ha-shared-key"
SPI = 256
FA_SPI = 300
FA_ADDR = "10.0.2.2"
VIP = "10.0.0.100"
REAL = "10.0.1.10"
MN_SRC = ("192.168.5.7", 40000)
WALL = 1_800_000_000.0
_n = itertools.count(1)


def new_mn(nai: str | None = None, hoa: str = "0.0.0.0", **kw: object) -> MobileNode:
    args: dict[str, object] = {
        "nai": nai if nai is not None else f"mn{next(_n)}@example.net",
        "home_addr": hoa,
        "ha_addr": VIP,
        "security": MnSecurity(SPI, MN_KEY, "hmac-md5"),
        "foreign_agent": (FA_ADDR, 434),
        "unix_offset": WALL,
    }
    args.update(kw)
    return MobileNode(**args)  # type: ignore[arg-type]


def fa(**kw: object) -> ForeignAgent:
    args: dict[str, object] = {
        "address": FA_ADDR,
        "pending_timeout_s": 7.0,
        "random_bytes": lambda n: bytes(range(7, 7 + n)),
    }
    args.update(kw)
    return ForeignAgent(**args)  # type: ignore[arg-type]


def only(actions: list[object], cls: type) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, cls)]


def ha_reply(
    relayed: bytes,
    *,
    code: int = 0,
    hoa: str = "10.1.0.5",
    ha: str = REAL,
    faha_key: bytes | None = None,
    gre: bool = True,
    lifetime: int | None = None,
    extra_mn: bytes = b"",
) -> bytes:
    """An HA's reply, built independently with hmac/hashlib."""
    req = RegistrationRequest.decode(relayed)
    msg = RegistrationReply(
        code=code,
        lifetime=req.lifetime if lifetime is None else lifetime,
        home_addr=req.home_addr if req.home_addr != "0.0.0.0" else hoa,
        ha_addr=ha,
        ident=req.ident,
    ).header()
    if req.nai:
        msg += NaiExt(req.nai).encode()
    msg += extra_mn
    covered = msg + bytes([EXT_MN_HA, 20]) + SPI.to_bytes(4, "big")
    msg = covered + hmac.new(MN_KEY, covered, hashlib.md5).digest()
    key = req.find(GreKeyExt)
    if gre and key is not None:
        msg += GreKeyExt(key.key).encode()
    if faha_key is not None:
        covered = msg + bytes([EXT_FA_HA, 20]) + FA_SPI.to_bytes(4, "big")
        msg = covered + hashlib.md5(faha_key + covered + faha_key).digest()
    return msg


def register(f: ForeignAgent, m: MobileNode, now: float, **rep_kw: object) -> list[object]:
    """MN -> FA -> HA -> FA -> MN; returns the FA's actions on the reply."""
    req = m.register(now)[0]
    acts = f.receive_datagram(req.payload, MN_SRC, HERE, now)
    relay = only(acts, Send)[0]
    src = rep_kw.pop("src", (relay.dst[0], 434))
    out = f.receive_datagram(ha_reply(relay.payload, **rep_kw), src, HERE, now + 0.01)  # type: ignore[arg-type]
    for s in only(out, Send):
        m.receive_datagram(s.payload, (FA_ADDR, 434), HERE, now + 0.02)
    return out


def test_relay_keeps_mn_part_and_appends_gre_key() -> None:
    f, m = fa(), new_mn()
    req_b = m.register(0.0)[0].payload
    acts = f.receive_datagram(req_b, MN_SRC, HERE, 0.0)
    (s,) = only(acts, Send)
    assert s.dst == (VIP, 434)
    assert s.payload.startswith(req_b)
    rel = RegistrationRequest.decode(s.payload)
    assert isinstance(rel.extensions[-1], GreKeyExt) and rel.extensions[-1].key != 0
    assert rel.extensions[-1].encode()[:4] == bytes([48, 0, 0, 4])  # long format, RFC 6245


@pytest.mark.parametrize(("fmt", "n48", "ncvse"), [("cvse", 0, 1), ("both", 1, 1)])
def test_gre_key_formats(fmt: str, n48: int, ncvse: int) -> None:
    f, m = fa(gre_key_format=fmt), new_mn()
    rel = RegistrationRequest.decode(
        only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0), Send)[0].payload
    )
    assert sum(isinstance(e, GreKeyExt) for e in rel.extensions) == n48
    cvses = [e for e in rel.extensions if isinstance(e, CvseExt)]
    assert len(cvses) == ncvse
    if cvses:
        assert cvses[0].vendor_id == 5535 and cvses[0].vendor_type == 0x0401
        assert cvses[0].gre_key is not None


def test_no_gre_when_disabled() -> None:
    f, m = fa(gre=False), new_mn()
    req_b = m.register(0.0)[0].payload
    (s,) = only(f.receive_datagram(req_b, MN_SRC, HERE, 0.0), Send)
    assert s.payload == req_b


def test_fa_ha_appended_and_verifiable_not_on_dereg() -> None:
    sa = {VIP: HaSecurity(FA_SPI, FAHA_KEY, "md5-prefix-suffix")}
    f, m = fa(ha_security=sa), new_mn(hoa="10.1.0.77")
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    rel = RegistrationRequest.decode(s.payload)
    faha = rel.extensions[-1]
    assert isinstance(faha, AuthExt) and faha.ext_type == EXT_FA_HA and faha.spi == FA_SPI
    covered = rel.covered(faha)
    assert faha.authenticator == hashlib.md5(FAHA_KEY + covered + FAHA_KEY).digest()
    # GRE key comes before FA-HA (P§2.6)
    assert isinstance(rel.extensions[-2], GreKeyExt)
    out = f.receive_datagram(ha_reply(s.payload, faha_key=FAHA_KEY, ha=VIP), (VIP, 434), HERE, 0.1)
    for a in only(out, Send):
        m.receive_datagram(a.payload, (FA_ADDR, 434), HERE, 0.1)
    assert m.registered
    # deregistration: no FA-HA
    (d,) = only(f.receive_datagram(m.deregister(5.0)[0].payload, MN_SRC, HERE, 5.0), Send)
    rel = RegistrationRequest.decode(d.payload)
    assert rel.lifetime == 0 and rel.find(AuthExt, EXT_FA_HA) is None


def test_reply_relayed_stripped_visitor_and_binding() -> None:
    f, m = fa(), new_mn(reverse_tunnel=True)
    out = register(f, m, 0.0)
    (inst,) = only(out, InstallBinding)
    (to_mn,) = only(out, Send)
    assert to_mn.dst == MN_SRC
    rep = RegistrationReply.decode(to_mn.payload)
    assert isinstance(rep.extensions[-1], AuthExt) and rep.extensions[-1].ext_type == EXT_MN_HA
    assert rep.find(GreKeyExt) is None
    b = inst.binding
    assert b.home_addr == "10.1.0.5" and b.care_of == FA_ADDR and b.ha_addr == REAL
    assert b.encap is Encap.GRE and b.gre_key is not None and b.flags & FLAG_T
    assert b.src_addr == MN_SRC[0] and b.nai == m.nai
    assert m.registered and "10.1.0.5" in f.visitors
    assert f.stats.accepted == 1


def test_fa_ha_required_on_reply_68() -> None:
    sa = {VIP: HaSecurity(FA_SPI, FAHA_KEY, "md5-prefix-suffix")}
    for key in (None, b"wrong-key-123456"):
        f, m = fa(ha_security=sa), new_mn()
        (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
        out = f.receive_datagram(ha_reply(s.payload, faha_key=key), (VIP, 434), HERE, 0.1)
        (to_mn,) = only(out, Send)
        assert RegistrationReply.decode(to_mn.payload).code == 68
        assert not f.visitors and not only(out, InstallBinding)


def test_pending_timeout_78_and_retransmission_refreshes() -> None:
    f, m = fa(), new_mn(security=MnSecurity(SPI, MN_KEY, "hmac-md5", "nonce"))
    req_b = m.register(0.0)[0].payload
    f.receive_datagram(req_b, MN_SRC, HERE, 0.0)
    assert f.get_timer() == 7.0
    # unchanged retransmission at t=5: same bytes relayed again, timer restarts
    (again,) = only(f.receive_datagram(req_b, MN_SRC, HERE, 5.0), Send)
    assert f.stats.retransmissions == 1
    assert f.get_timer() == 12.0
    assert f.handle_timer(11.9) == []
    (to_mn,) = only(f.handle_timer(12.0), Send)
    rep = RegistrationReply.decode(to_mn.payload)
    assert rep.code == 78 and rep.nai == m.nai and to_mn.dst == MN_SRC
    assert f.pending_count == 0 and f.get_timer() is None
    # a late reply is dropped
    f.receive_datagram(ha_reply(again.payload), (VIP, 434), HERE, 13.0)
    assert f.stats.drops["unmatched-reply"] == 1


def test_reply_from_other_address_then_rereg_and_dereg_go_to_real_ha() -> None:
    # The MN keeps the VIP in its HA field (learn disabled by resetting it) to show the
    # FA's own learning; a second MN learns from the reply.
    f, m = fa(real_home_agents=[REAL]), new_mn()
    out = register(f, m, 0.0, src=(REAL, 434), ha=VIP)  # HA field repeats the VIP
    assert m.registered and f.stats.replies_other_source == 1
    assert f.visitors["10.1.0.5"].ha_addr == REAL
    m.ha_addr = VIP  # as if the MN ignored the HA field
    (s,) = only(f.receive_datagram(m.register(10.0)[0].payload, MN_SRC, HERE, 10.0), Send)
    assert s.dst == (REAL, 434)
    out = f.receive_datagram(ha_reply(s.payload, ha=VIP), (REAL, 434), HERE, 10.1)
    for a in only(out, Send):
        m.receive_datagram(a.payload, (FA_ADDR, 434), HERE, 10.1)
    (d,) = only(f.receive_datagram(m.deregister(20.0)[0].payload, MN_SRC, HERE, 20.0), Send)
    assert d.dst == (REAL, 434)
    out = f.receive_datagram(ha_reply(d.payload, ha=VIP), (REAL, 434), HERE, 20.1)
    assert only(out, RemoveBinding) and not f.visitors
    assert f.stats.deregistered == 1


def test_reply_from_unexpected_source_dropped_without_fa_ha() -> None:
    """Without an FA-HA SA a reply is taken only from the address the request went to or
    from a configured real HA: an on-path party that saw the Identification cannot install
    itself as the home agent; the request keeps waiting for the real answer."""
    f, m = fa(real_home_agents=[REAL]), new_mn()
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    forged = ha_reply(s.payload, ha="203.0.113.66")
    assert f.receive_datagram(forged, ("203.0.113.66", 434), HERE, 0.1) == []
    assert f.stats.drops["reply-unexpected-source"] == 1 and not f.visitors
    assert f.pending_count == 1
    out = f.receive_datagram(ha_reply(s.payload, ha=VIP), (REAL, 434), HERE, 0.2)
    assert only(out, InstallBinding) and f.visitors["10.1.0.5"].ha_addr == REAL
    # with an FA-HA SA a reply from anywhere is taken when its FA-HA verifies, and a reply
    # from an unexpected source that does not verify is dropped (no 68 for the MN)
    sa = {VIP: HaSecurity(FA_SPI, FAHA_KEY, "md5-prefix-suffix")}
    f, m = fa(ha_security=sa), new_mn()
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    bad = ha_reply(s.payload, faha_key=b"wrong-key-000000")
    assert f.receive_datagram(bad, ("203.0.113.66", 434), HERE, 0.1) == []
    assert f.stats.drops["reply-unexpected-source"] == 1
    out = f.receive_datagram(ha_reply(s.payload, faha_key=FAHA_KEY), ("10.0.1.99", 434), HERE, 0.2)
    assert only(out, InstallBinding)


def test_extensions_after_verified_fa_ha_ignored_in_reply() -> None:
    """RFC 5944 §3.5.1: a GRE key appended after the reply's FA-HA extension is not the
    HA's: the FA counts no key mismatch and keeps its own key."""
    sa = {VIP: HaSecurity(FA_SPI, FAHA_KEY, "md5-prefix-suffix")}
    f, m = fa(ha_security=sa), new_mn()
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    rep = ha_reply(s.payload, faha_key=FAHA_KEY, gre=False) + GreKeyExt(0xBAD).encode()
    out = f.receive_datagram(rep, (VIP, 434), HERE, 0.1)
    (b,) = only(out, InstallBinding)
    assert f.stats.gre_key_mismatch == 0 and b.binding.gre_key != 0xBAD


def test_real_ha_learned_from_ha_field() -> None:
    f, m = fa(), new_mn()
    register(f, m, 0.0, src=(VIP, 434), ha=REAL)
    assert f.visitors["10.1.0.5"].ha_addr == REAL
    assert m.ha_addr == REAL  # the MN learnt it too, and now names it itself
    (s,) = only(f.receive_datagram(m.register(5.0)[0].payload, MN_SRC, HERE, 5.0), Send)
    assert s.dst == (REAL, 434)


def test_visitor_expires_with_granted_lifetime() -> None:
    f, m = fa(), new_mn(lifetime=300)
    out = register(f, m, 0.0, lifetime=120)
    assert only(out, InstallBinding)[0].binding.lifetime == 120
    # timed from when the reply was relayed (t = 0.01), RFC 5944 §3.7.3.2
    assert f.get_timer() == pytest.approx(120.01)
    assert f.handle_timer(120.0) == []
    (rm,) = only(f.handle_timer(120.01), RemoveBinding)
    assert rm.binding.home_addr == "10.1.0.5" and not f.visitors
    assert f.stats.visitors_expired == 1 and f.get_timer() is None


def test_reregistration_moves_expiry_single_heap_entry_live() -> None:
    f, m = fa(), new_mn(lifetime=100)
    register(f, m, 0.0)
    register(f, m, 50.0)
    assert f.handle_timer(100.5) == []  # old expiry is stale
    assert only(f.handle_timer(150.01), RemoveBinding)


@pytest.mark.parametrize(
    ("kw", "mn_kw", "code"),
    [
        ({"max_lifetime": 600}, {"lifetime": 1800}, 69),
        ({"reverse_tunnel": False}, {"reverse_tunnel": True}, 74),
        ({"gre": False}, {"encap": "gre"}, 72),
        ({}, {"care_of": "10.9.9.9"}, 77),
    ],
)
def test_fa_checks(kw: dict[str, object], mn_kw: dict[str, object], code: int) -> None:
    f, m = fa(**kw), new_mn(**mn_kw)
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    assert s.dst == MN_SRC
    rep = RegistrationReply.decode(s.payload)
    assert rep.code == code
    if code == 69:
        assert rep.lifetime == 600
    m.receive_datagram(s.payload, (FA_ADDR, 434), HERE, 0.1)
    assert m.last_code == code


def test_missing_nai_97() -> None:
    f = fa()
    m = MobileNode(
        nai=None,
        home_addr="10.1.0.8",
        ha_addr="0.0.0.0",
        security=MnSecurity(SPI, MN_KEY),
        foreign_agent=(FA_ADDR, 434),
    )
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    assert RegistrationReply.decode(s.payload).code == 97


def test_visitor_list_full_66() -> None:
    f = fa(max_visitors=1)
    register(f, new_mn(), 0.0)
    (s,) = only(f.receive_datagram(new_mn().register(1.0)[0].payload, MN_SRC, HERE, 1.0), Send)
    assert RegistrationReply.decode(s.payload).code == 66


def test_pending_table_full_66() -> None:
    f = fa(max_pending=1)
    first = f.receive_datagram(new_mn().register(0.0)[0].payload, MN_SRC, HERE, 0.0)
    assert [a for a in first if isinstance(a, Send) and a.dst[0] == VIP]  # relayed
    (s,) = only(f.receive_datagram(new_mn().register(0.5)[0].payload, MN_SRC, HERE, 0.5), Send)
    assert RegistrationReply.decode(s.payload).code == 66
    assert f.stats.drops["pending-full"] == 1 and f.pending_count == 1


def test_no_ha_known_98() -> None:
    f, m = fa(), new_mn(ha_addr="0.0.0.0")
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    assert RegistrationReply.decode(s.payload).code == 98
    f2, m2 = fa(home_agent=VIP), new_mn(ha_addr="0.0.0.0")
    (s,) = only(f2.receive_datagram(m2.register(1.0)[0].payload, MN_SRC, HERE, 1.0), Send)
    assert s.dst == (VIP, 434)


def test_bad_input_counted_never_raises() -> None:
    f = fa()
    for junk in (b"", b"\x01", b"\x03" + b"\x00" * 5, b"\x09abc", b"\x01" + b"\x00" * 23 + b"\x05"):
        assert f.receive_datagram(junk, MN_SRC, HERE, 0.0) == []
    assert sum(f.stats.drops.values()) == 5


def test_challenge_missing_unknown_stale() -> None:
    f, m = fa(challenge=True), new_mn(aaa_key=b"mn-aaa")
    f._random = lambda n: next(_n).to_bytes(n, "big")  # type: ignore[method-assign]
    req_b = m.register(0.0)[0].payload
    (s,) = only(f.receive_datagram(req_b, MN_SRC, HERE, 0.0), Send)
    rep = RegistrationReply.decode(s.payload)
    assert rep.code == 105 and rep.find(ChallengeExt) is not None
    # the MN retries at once with that challenge; the FA relays it
    (retry,) = m.receive_datagram(s.payload, (FA_ADDR, 434), HERE, 0.1)
    (relay,) = only(f.receive_datagram(retry.payload, MN_SRC, HERE, 0.1), Send)
    assert relay.dst == (VIP, 434)
    out = f.receive_datagram(ha_reply(relay.payload), (VIP, 434), HERE, 0.2)
    (to_mn,) = only(out, Send)
    fresh = RegistrationReply.decode(to_mn.payload).extensions[-1]
    assert isinstance(fresh, ChallengeExt)
    used = RegistrationRequest.decode(retry.payload).find(ChallengeExt).challenge
    m.receive_datagram(to_mn.payload, (FA_ADDR, 434), HERE, 0.2)
    assert m.registered and m.challenge == fresh.challenge
    # reusing the consumed challenge -> 106 stale
    m.challenge = used
    (s,) = only(f.receive_datagram(m.register(5.0)[0].payload, MN_SRC, HERE, 5.0), Send)
    assert RegistrationReply.decode(s.payload).code == 106
    # a challenge we never issued -> 104 unknown
    m.challenge = b"\xff" * 16
    m.state = m.state.REGISTERED
    m._out = None
    (s,) = only(f.receive_datagram(m.register(6.0)[0].payload, MN_SRC, HERE, 6.0), Send)
    assert RegistrationReply.decode(s.payload).code == 104


def test_aaa_request_accept_uses_aaa_ha_and_mn_aaa_data() -> None:
    f = fa(aaa=True)
    m = new_mn(ha_addr="0.0.0.0", aaa_key=b"secret")
    req_b = m.register(0.0)[0].payload
    (a,) = f.receive_datagram(req_b, MN_SRC, HERE, 0.0)
    assert isinstance(a, AaaRequest) and a.nai == m.nai and a.mn_aaa_spi == 2
    req = RegistrationRequest.decode(req_b)
    gen = req.find(GenAuthExt)
    assert a.covered == req.covered(gen) and a.mn_aaa_authenticator == gen.authenticator
    (s,) = only(f.aaa_result(a.token, 0.2, accepted=True, ha_address=VIP), Send)
    assert s.dst == (VIP, 434) and s.payload.startswith(req_b)
    # a stale token is ignored
    assert f.aaa_result(a.token, 0.3, accepted=True) == []


@pytest.mark.parametrize("code", [67, 108, 78])
def test_aaa_reject_and_timeout_codes(code: int) -> None:
    f, m = fa(aaa=True), new_mn()
    (a,) = f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0)
    (s,) = only(f.aaa_result(a.token, 0.1, accepted=False, reply_code=code), Send)
    assert RegistrationReply.decode(s.payload).code == code and s.dst == MN_SRC
    assert f.pending_count == 0


def test_aaa_never_answering_times_out_78() -> None:
    f, m = fa(aaa=True), new_mn()
    (a,) = f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0)
    (s,) = only(f.handle_timer(7.0), Send)
    assert RegistrationReply.decode(s.payload).code == 78
    assert f.aaa_result(a.token, 8.0, accepted=True) == []


def test_aaa_only_on_initial_registration_without_mn_aaa() -> None:
    f, m = fa(aaa=True), new_mn()
    (a,) = f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0)
    (s,) = only(f.aaa_result(a.token, 0.0, accepted=True), Send)
    for o in only(f.receive_datagram(ha_reply(s.payload), (VIP, 434), HERE, 0.1), Send):
        m.receive_datagram(o.payload, (FA_ADDR, 434), HERE, 0.1)
    assert m.registered
    acts = f.receive_datagram(m.register(10.0)[0].payload, MN_SRC, HERE, 10.0)
    assert not only(acts, AaaRequest) and only(acts, Send)


def test_redirect_143_followed_for_dynamic_ha() -> None:
    f, m = fa(home_agent=VIP), new_mn(ha_addr="255.255.255.255")
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    rep = ha_reply(s.payload, code=143, extra_mn=DynamicHaExt(2, "10.0.1.99").encode())
    (again,) = only(f.receive_datagram(rep, (VIP, 434), HERE, 0.1), Send)
    assert again.dst == ("10.0.1.99", 434) and f.stats.redirects == 1


def test_static_home_address_without_nai_keyed_by_hoa() -> None:
    f = fa()
    m = MobileNode(
        nai=None,
        home_addr="10.1.0.8",
        ha_addr=VIP,
        security=MnSecurity(SPI, MN_KEY),
        foreign_agent=(FA_ADDR, 434),
        unix_offset=WALL,
    )
    out = register(f, m, 0.0)
    assert m.registered and only(out, InstallBinding)[0].binding.home_addr == "10.1.0.8"


def test_g_flag_request_gets_gre_binding_without_fa_gre() -> None:
    f, m = fa(gre=True), new_mn(encap="gre")
    req_b = m.register(0.0)[0].payload
    assert RegistrationRequest.decode(req_b).flags & FLAG_G
    (s,) = only(f.receive_datagram(req_b, MN_SRC, HERE, 0.0), Send)
    out = f.receive_datagram(ha_reply(s.payload), (VIP, 434), HERE, 0.1)
    assert only(out, InstallBinding)[0].binding.encap is Encap.GRE


def test_superseded_aaa_lookup_is_cancelled() -> None:
    from mobileha.core.foreign_agent import AaaCancel

    f, m = fa(aaa=True), new_mn()
    (a1,) = f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0)
    # timestamp MN retransmits with a new Identification while AAA is still busy
    acts = f.receive_datagram(m.handle_timer(1.0)[0].payload, MN_SRC, HERE, 1.0)
    assert isinstance(acts[0], AaaCancel) and acts[0].token == a1.token
    assert isinstance(acts[1], AaaRequest) and acts[1].token != a1.token
    assert f.aaa_result(a1.token, 1.1, accepted=True) == []  # late answer ignored
    assert only(f.aaa_result(acts[1].token, 1.2, accepted=True, ha_address=VIP), Send)


def test_real_ha_port_learned_from_reply_source() -> None:
    f, m = fa(ha_port=4434, real_home_agents=[REAL]), new_mn()
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    assert s.dst == (VIP, 4434)
    for a in only(f.receive_datagram(ha_reply(s.payload), (REAL, 5555), HERE, 0.1), Send):
        m.receive_datagram(a.payload, (FA_ADDR, 434), HERE, 0.1)
    (s,) = only(f.receive_datagram(m.register(5.0)[0].payload, MN_SRC, HERE, 5.0), Send)
    assert s.dst == (REAL, 5555)


def test_invalid_ha_address_194_and_denial_rate_limit() -> None:
    f = fa()
    m = new_mn(ha_addr=FA_ADDR)
    req_b = m.register(0.0)[0].payload
    (s,) = only(f.receive_datagram(req_b, MN_SRC, HERE, 0.0), Send)
    rep = RegistrationReply.decode(s.payload)
    assert rep.code == 194 and rep.lifetime == 1800  # lifetime copied from the request
    # a second denial to the same MN within 1 s is not sent (RFC 5944 §3.7.2)
    assert f.receive_datagram(req_b[:16] + b"\x00" * 8 + req_b[24:], MN_SRC, HERE, 0.5) == []
    assert f.stats.drops["denial-rate-limited"] == 1
    assert only(f.receive_datagram(m.handle_timer(1.0)[0].payload, MN_SRC, HERE, 1.0), Send)


def test_reply_lifetime_zero_needs_no_fa_ha_but_checks_one_present() -> None:
    sa = {VIP: HaSecurity(FA_SPI, FAHA_KEY, "md5-prefix-suffix")}
    f, m = fa(ha_security=sa), new_mn(hoa="10.1.0.70")
    register(f, m, 0.0, faha_key=FAHA_KEY)
    (d,) = only(f.receive_datagram(m.deregister(5.0)[0].payload, MN_SRC, HERE, 5.0), Send)
    assert d.dst == (REAL, 434)  # learned from the reply's HA field
    out = f.receive_datagram(ha_reply(d.payload), d.dst, HERE, 5.1)  # no FA-HA: fine, lifetime 0
    assert RegistrationReply.decode(only(out, Send)[0].payload).code == 0
    assert only(out, RemoveBinding)
    # a nonzero-lifetime reply with two FA-HA extensions -> 68
    f, m = fa(ha_security=sa), new_mn()
    (s,) = only(f.receive_datagram(m.register(10.0)[0].payload, MN_SRC, HERE, 10.0), Send)
    rep = ha_reply(s.payload, faha_key=FAHA_KEY)
    covered = rep + bytes([EXT_FA_HA, 20]) + FA_SPI.to_bytes(4, "big")
    rep = covered + hashlib.md5(FAHA_KEY + covered + FAHA_KEY).digest()
    out = f.receive_datagram(rep, (VIP, 434), HERE, 10.1)
    assert RegistrationReply.decode(only(out, Send)[0].payload).code == 68


def test_challenge_without_mn_aaa_silently_discarded() -> None:
    f, m = fa(challenge=True), new_mn()  # no MN-AAA key: challenge not authenticated
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    (retry,) = m.receive_datagram(s.payload, (FA_ADDR, 434), HERE, 0.1)  # 105 + challenge -> retry
    assert f.receive_datagram(retry.payload, MN_SRC, HERE, 0.1) == []
    assert f.stats.drops["challenge-without-authentication"] == 1


def test_no_gre_key_for_colocated_via_fa_and_key_kept_for_session() -> None:
    f = fa()
    m = new_mn(foreign_agent=(FA_ADDR, 434), care_of="192.0.2.9")
    m.flags |= 0x20  # D: co-located care-of address, registering via the FA (R bit case)
    (s,) = only(f.receive_datagram(m.register(0.0)[0].payload, MN_SRC, HERE, 0.0), Send)
    assert RegistrationRequest.decode(s.payload).find(GreKeyExt) is None
    f2, m2 = fa(), new_mn(hoa="10.1.0.71")
    register(f2, m2, 0.0)
    key = f2.visitors["10.1.0.71"].gre_key
    (r,) = only(f2.receive_datagram(m2.register(10.0)[0].payload, MN_SRC, HERE, 10.0), Send)
    assert RegistrationRequest.decode(r.payload).find(GreKeyExt).key == key
    for a in only(f2.receive_datagram(ha_reply(r.payload), (VIP, 434), HERE, 10.1), Send):
        m2.receive_datagram(a.payload, (FA_ADDR, 434), HERE, 10.1)
    (d,) = only(f2.receive_datagram(m2.deregister(20.0)[0].payload, MN_SRC, HERE, 20.0), Send)
    assert RegistrationRequest.decode(d.payload).find(GreKeyExt).key == key  # dereg too
