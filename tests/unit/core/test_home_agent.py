"""HomeAgent (sans-IO): every reply-code path of P§1.8, the silent discards, bindings."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_G, FLAG_M, FLAG_S, FLAG_T, Binding, Encap
from mobileha.core.home_agent import (
    HomeAgent,
    HomeAgentSettings,
    RefreshBinding,
    RestoreBinding,
    WithdrawBinding,
)
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.wire import slbtag
from mobileha.wire.auth import NTP_EPOCH_OFFSET, Authenticator, ntp_identification
from mobileha.wire.mip import (
    AuthExt,
    CvseExt,
    DynamicHaExt,
    GreKeyExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    UnknownExt,
    append_auth,
    gre_key_cvse,
)
from tests.helpers import request

KEY = bytes(range(16))
SPI = 256
FA_KEY = b"F" * 16
FA_SPI = 300
HA_REAL = "10.0.1.10"
HA = "10.0.1.100"
FA = "10.0.2.2"
NAI = "mn1@example.net"
STATIC_HOA = "10.1.0.200"
NOW = 1000.0
WALL = 1_800_000_000.0


def make_ha(
    *,
    fa_sa: bool = False,
    pool: str | None = None,
    random_bytes: Callable[[int], bytes] | None = None,
    **kw: Any,
) -> HomeAgent:
    opts: dict[str, Any] = {"address": HA_REAL, "ha_address": HA, "home_prefix": "10.1.0.0/24"}
    if pool:
        opts["pool"] = pool
    opts.update(kw)
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=NAI))
    sas.add_mn(MobilitySA(SPI, KEY, "md5-prefix-suffix", home_address=STATIC_HOA))
    sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", replay="nonce", nai="nonce@example.net"))
    for i in range(2, 6):
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=f"mn{i}@example.net"))
    if fa_sa:
        sas.add_fa(FA, MobilitySA(FA_SPI, FA_KEY, "hmac-md5"))
    rng = random_bytes or random.Random(0).randbytes  # deterministic replay nonces
    return HomeAgent(HomeAgentSettings(**opts), sas, random_bytes=rng)


def rrq(
    *,
    flags: int = 0,
    life: int = 1800,
    hoa: str = "0.0.0.0",
    ha: str = HA,
    coa: str = FA,
    ident: int | None = None,
    nai: str | None = NAI,
    spi: int = SPI,
    key: bytes = KEY,
    alg: str = "hmac-md5",
    before: list[Any] | None = None,
    after: list[Any] | None = None,
    fa_key: bytes | None = None,
    auth: bool = True,
) -> bytes:
    """A request of this module's mobile node (its SAs and addresses as defaults)."""
    return request(
        flags=flags,
        lifetime=life,
        home_addr=hoa,
        ha_addr=ha,
        care_of=coa,
        ident=ntp_identification(WALL, 1) if ident is None else ident,
        nai=nai,
        before=before or (),
        key=key if auth else None,
        spi=spi,
        alg=alg,
        after=after or (),
        fa_key=fa_key,
        fa_spi=FA_SPI,
    )


def send(
    ha: HomeAgent,
    data: bytes,
    *,
    src: str = FA,
    sport: int = 434,
    dst: str = HA,
    now: float = NOW,
    wall: float = WALL,
) -> tuple[RegistrationReply | None, list[Any]]:
    ha.unix_offset = wall - now  # as the adapter does: Unix time = now + unix_offset
    actions = ha.receive_datagram(data, (src, sport), (dst, 434), now)
    sends = [a for a in actions if isinstance(a, Send)]
    assert len(sends) <= 1
    reply = RegistrationReply.decode(sends[0].payload) if sends else None
    return reply, actions


def mnha_ok(reply: RegistrationReply, key: bytes = KEY, alg: str = "hmac-md5") -> bool:
    ext = reply.find(AuthExt, 32)
    return ext is not None and reply.verify(ext, Authenticator(key, alg))


def binds(actions: list[Any]) -> list[Binding]:
    return [a.binding for a in actions if isinstance(a, InstallBinding)]


# ---------------------------------------------------------------- acceptance


def test_dynamic_home_address_accepted() -> None:
    ha = make_ha()
    reply, actions = send(ha, rrq())
    assert reply is not None and reply.code == 0
    assert reply.lifetime == 1800
    assert reply.ha_addr == HA
    assert reply.home_addr.startswith("10.1.0.")
    assert reply.nai == NAI
    assert mnha_ok(reply)
    assert reply.ident == ntp_identification(WALL, 1)
    send_a = next(a for a in actions if isinstance(a, Send))
    assert send_a.dst == (FA, 434) and send_a.src == (HA, 434)
    (b,) = binds(actions)
    assert b.home_addr == reply.home_addr and b.care_of == FA and b.encap == Encap.IPIP
    assert ha.is_dynamic(b.home_addr)
    # extension order: NAI before MN-HA (P§1.6)
    assert [type(e) for e in reply.extensions] == [NaiExt, AuthExt]


def test_nai_keeps_address_across_reregistrations() -> None:
    ha = make_ha()
    r1, _ = send(ha, rrq(ident=ntp_identification(WALL, 1)))
    r2, a2 = send(ha, rrq(ident=ntp_identification(WALL, 2)), now=NOW + 10)
    assert r1 and r2 and r1.home_addr == r2.home_addr and r2.code == 0
    assert isinstance(a2[0], RefreshBinding)
    # re-registration with the assigned address in the HoA field
    r3, _ = send(ha, rrq(hoa=r1.home_addr, ident=ntp_identification(WALL, 3)), now=NOW + 20)
    assert r3 and r3.code == 0 and r3.home_addr == r1.home_addr
    assert len(ha.table) == 1


def test_nai_index_is_kept_on_the_mns_sa() -> None:
    """The MN's own SA holds its NAI index and its NAI string (no per-binding copy)."""
    ha = make_ha()
    r1, a1 = send(ha, rrq(ident=ntp_identification(WALL, 1)))
    (b,) = binds(a1)
    sa = ha.sas.nai_holder(NAI)
    assert r1 is not None and sa is not None
    assert b.nai is sa.nai and sa.bound == r1.home_addr and ha.table._nai == {}
    r2, _ = send(ha, rrq(ident=ntp_identification(WALL, 2)), now=NOW + 10)
    assert r2 is not None and r2.home_addr == r1.home_addr


def make_sas(*nais: str) -> SecurityAssociations:
    sas = SecurityAssociations()
    for n in nais:
        sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=n))
    return sas


def test_reload_moves_the_nai_index_to_the_new_sas() -> None:
    ha = make_ha()
    r1, _ = send(ha, rrq(ident=ntp_identification(WALL, 1)))
    assert r1 is not None
    old = ha.sas.nai_holder(NAI)
    ha.reload_security(make_sas(NAI, "mn2@example.net"))
    new = ha.sas.nai_holder(NAI)
    assert old is not None and new is not None and new is not old
    assert old.bound is None and new.bound == r1.home_addr
    r2, a2 = send(ha, rrq(ident=ntp_identification(WALL, 2)), now=NOW + 10)
    assert r2 is not None and r2.code == 0 and r2.home_addr == r1.home_addr
    assert isinstance(a2[0], RefreshBinding)
    # the MN's SA is no longer configured: its binding stays, indexed by the table itself
    ha.reload_security(make_sas("mn2@example.net"))
    assert new.bound is None and ha.table.home_address_of(NAI) == r1.home_addr
    out = ha.clear(NOW + 20, nai=NAI)
    assert [a.binding.home_addr for a in out if isinstance(a, RemoveBinding)] == [r1.home_addr]


def test_home_agents_sharing_sa_objects_keep_their_own_nai_index() -> None:
    """The NAI index lives on the SAs of one table only: a second home agent built with the
    same SA objects indexes its bindings itself."""
    sas = make_sas(NAI)
    s = HomeAgentSettings(HA_REAL, ha_address=HA, home_prefix="10.1.0.0/24")
    ha1 = HomeAgent(s, sas, random_bytes=random.Random(0).randbytes)
    ha2 = HomeAgent(s, sas, random_bytes=random.Random(1).randbytes)
    r1, _ = send(ha1, rrq(ident=ntp_identification(WALL, 1)))
    r2, _ = send(ha2, rrq(ident=ntp_identification(WALL, 1)))
    sa = sas.nai_holder(NAI)
    assert r1 is not None and r2 is not None and sa is not None
    assert sa.bound == r1.home_addr and ha2.table._nai == {NAI: r2.home_addr}
    ha1.handle_timer(NOW + 5000)  # ha1's binding expires; ha2's index is untouched
    assert sa.bound is None and ha2.table.home_address_of(NAI) == r2.home_addr


def test_static_home_address_prefix_suffix() -> None:
    ha = make_ha()
    reply, actions = send(ha, rrq(hoa=STATIC_HOA, nai=None, alg="md5-prefix-suffix"))
    assert reply is not None and reply.code == 0 and reply.home_addr == STATIC_HOA
    assert mnha_ok(reply, alg="md5-prefix-suffix")
    assert binds(actions)[0].home_addr == STATIC_HOA
    assert not ha.is_dynamic(STATIC_HOA)


def test_lifetime_clamped_to_max() -> None:
    ha = make_ha(max_lifetime=600)
    reply, actions = send(ha, rrq(life=1800))
    assert reply is not None and reply.code == 0 and reply.lifetime == 600
    assert binds(actions)[0].lifetime == 600


def test_expiry_at_granted_lifetime_fake_clock() -> None:
    ha = make_ha()
    _, actions = send(ha, rrq(life=100))
    (b,) = binds(actions)
    assert ha.get_timer() == NOW + 100
    assert ha.handle_timer(NOW + 99.5) == []
    out = ha.handle_timer(NOW + 100)
    assert [type(a) for a in out] == [RemoveBinding] and out[0].binding is b
    assert len(ha.table) == 0 and not ha.is_dynamic(b.home_addr)


def test_refresh_moves_expiry() -> None:
    ha = make_ha()
    send(ha, rrq(life=100, ident=ntp_identification(WALL, 1)))
    send(ha, rrq(life=100, ident=ntp_identification(WALL, 2)), now=NOW + 50)
    assert ha.handle_timer(NOW + 100) == []
    assert len(ha.table) == 1
    assert len(ha.handle_timer(NOW + 150)) == 1


def test_identical_retransmission_does_not_extend() -> None:
    ha = make_ha()
    data = rrq(life=100)
    r1, _ = send(ha, data)
    r2, a2 = send(ha, data, now=NOW + 40)
    assert r1 and r2 and r1.code == 0
    assert r2.code == 133  # same HoA, CoA and ID: a replay for the timestamp check
    assert [type(a) for a in a2] == [Send]  # no binding change
    assert ha.duplicates == 1
    assert len(ha.handle_timer(NOW + 100)) == 1  # still expires at the first grant


def test_identical_retransmission_answered_when_configured() -> None:
    ha = make_ha(answer_duplicates=True)
    data = rrq(life=100)
    send(ha, data)
    r2, a2 = send(ha, data, now=NOW + 40)
    assert r2 is not None and r2.code == 0
    assert r2.lifetime == 60  # what remains, not a new 100 s
    assert [type(a) for a in a2] == [Send]
    assert len(ha.handle_timer(NOW + 100)) == 1


def test_gre_key_extension_and_3gpp2_cvse_echoed() -> None:
    ha = make_ha(fa_sa=True)
    reply, actions = send(ha, rrq(flags=FLAG_G, after=[GreKeyExt(0x1234)], fa_key=FA_KEY))
    assert reply is not None and reply.code == 0
    (b,) = binds(actions)
    assert b.encap == Encap.GRE and b.gre_key == 0x1234
    assert reply.find(GreKeyExt).key == 0x1234
    # order: NAI, MN-HA, GRE key, FA-HA
    assert [e.ext_type for e in reply.extensions] == [131, 32, 48, 34]
    fa = reply.find(AuthExt, 34)
    assert reply.verify(fa, Authenticator(FA_KEY, "hmac-md5"))
    ha2 = make_ha()
    reply, actions = send(ha2, rrq(after=[gre_key_cvse(77)]))
    assert reply is not None and reply.code == 0
    assert binds(actions)[0].gre_key == 77 and binds(actions)[0].encap == Encap.GRE
    assert reply.find(CvseExt).gre_key == 77


def test_minimal_encapsulation() -> None:
    reply, actions = send(make_ha(), rrq(flags=FLAG_M))
    assert reply and reply.code == 0 and binds(actions)[0].encap == Encap.MINIMAL


# ---------------------------------------------------------------- silent discards


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (rrq(auth=False), "missing-auth"),
        (rrq(nai="stranger@example.net"), "no-security-association"),
        (rrq(hoa="10.9.9.9", nai=None), "no-security-association"),
        (rrq(before=[UnknownExt(99, b"xx")]), "unknown-critical-extension"),
        (rrq(fa_key=FA_KEY), "fa-ha-without-sa"),
        (rrq()[:-3], "truncated-extension"),
        (rrq()[:20], "short"),
        (b"\x03" + rrq()[1:], "not-request"),
        (rrq(nai=None), "no-identity"),
    ],
)
def test_silent_discards(data: bytes, reason: str) -> None:
    ha = make_ha()
    reply, actions = send(ha, data)
    assert reply is None and actions == []
    assert ha.drops == {reason: 1}
    assert len(ha.table) == 0


# ---------------------------------------------------------------- 131, 132, 144


def test_131_with_usable_sa() -> None:
    ha = make_ha()
    reply, actions = send(ha, rrq(key=b"wrong-key-123456"))
    assert reply is not None and reply.code == 131
    assert mnha_ok(reply)  # authenticated with the SA the request selected
    assert reply.find(AuthExt, 32).spi == SPI
    assert binds(actions) == [] and len(ha.table) == 0


def test_131_without_usable_sa() -> None:
    # the SPI selects no SA: the reply is authenticated with an SA the MN does have
    ha = make_ha()
    reply, _ = send(ha, rrq(spi=999))
    assert reply is not None and reply.code == 131
    assert reply.find(AuthExt, 32).spi == SPI and mnha_ok(reply)
    assert ha.counters()["haMobNodeFailedAuth"] == 1


def test_132_foreign_agent_authentication() -> None:
    ha = make_ha(fa_sa=True)
    reply, _ = send(ha, rrq())  # FA SA exists, no FA-HA
    assert reply is not None and reply.code == 132 and mnha_ok(reply)
    reply, _ = send(ha, rrq(fa_key=b"bad-fa-key-12345", ident=ntp_identification(WALL, 2)))
    assert reply is not None and reply.code == 132
    reply, _ = send(ha, rrq(fa_key=FA_KEY, ident=ntp_identification(WALL, 3)))
    assert reply is not None and reply.code == 0


def test_144_mn_aaa() -> None:
    from mobileha.wire.mip import append_gen_auth

    sas = SecurityAssociations()
    sas.add_aaa(NAI, MobilitySA(400, KEY, "hmac-md5", nai=NAI))
    sas.add_fa(FA, MobilitySA(FA_SPI, FA_KEY, "hmac-md5"))
    ha = HomeAgent(HomeAgentSettings(HA_REAL, HA, home_prefix="10.1.0.0/24"), sas)

    def req(key: bytes, ident: int) -> bytes:
        base = RegistrationRequest(lifetime=600, ha_addr=HA, care_of=FA, ident=ident).header()
        msg = append_gen_auth(
            base + NaiExt(NAI).encode(), 1, 400, Authenticator(key, "hmac-md5").compute
        )
        return append_auth(msg, 34, FA_SPI, Authenticator(FA_KEY, "hmac-md5"))

    reply, _ = send(ha, req(b"x" * 16, ntp_identification(WALL, 1)))
    assert reply is not None and reply.code == 144
    reply, _ = send(ha, req(KEY, ntp_identification(WALL, 2)))
    assert reply is not None and reply.code == 0


# ---------------------------------------------------------------- 133


def test_133_timestamp_and_resync() -> None:
    ha = make_ha()
    skewed = ntp_identification(WALL - 100, 0xABCD)
    reply, _ = send(ha, rrq(ident=skewed))
    assert reply is not None and reply.code == 133 and mnha_ok(reply)
    assert reply.ident & 0xFFFFFFFF == 0xABCD
    assert reply.ident >> 32 == int(WALL) + NTP_EPOCH_OFFSET
    # the MN resynchronises from the reply's high 32 bits
    offset = (reply.ident >> 32) - (skewed >> 32)
    fixed = (((skewed >> 32) + offset) << 32) | 0xABCE
    reply, _ = send(ha, rrq(ident=fixed))
    assert reply is not None and reply.code == 0


def test_133_replay_of_older_request() -> None:
    ha = make_ha()
    a = rrq(ident=ntp_identification(WALL, 1))
    b = rrq(ident=ntp_identification(WALL, 2))
    assert send(ha, a)[0].code == 0  # type: ignore[union-attr]
    assert send(ha, b)[0].code == 0  # type: ignore[union-attr]
    reply, actions = send(ha, a)
    assert reply is not None and reply.code == 133 and binds(actions) == []


def test_133_nonce_and_resync() -> None:
    ha = make_ha()
    nai = "nonce@example.net"
    reply, _ = send(ha, rrq(nai=nai, ident=0x00000000_11111111))
    assert reply is not None and reply.code == 133 and mnha_ok(reply)
    assert reply.ident & 0xFFFFFFFF == 0x11111111
    nonce = reply.ident >> 32
    reply, _ = send(ha, rrq(nai=nai, ident=(nonce << 32) | 0x22222222))
    assert reply is not None and reply.code == 0
    assert reply.ident & 0xFFFFFFFF == 0x22222222
    nonce2 = reply.ident >> 32
    # the old nonce is spent
    reply, _ = send(ha, rrq(nai=nai, ident=(nonce << 32) | 0x33333333))
    assert reply is not None and reply.code == 133
    nonce3 = reply.ident >> 32
    assert nonce2 != nonce or nonce3 != nonce
    reply, _ = send(ha, rrq(nai=nai, ident=(nonce3 << 32) | 0x44444444))
    assert reply is not None and reply.code == 0


def test_nonce_replays_do_not_move_the_expected_nonce() -> None:
    """A replay of an accepted nonce request gets 133 carrying the nonce the HA still
    expects (RFC 5944 §5.7); however many replays, the MN's next request, built on the nonce
    of its accepted reply, is accepted."""
    ha = make_ha()
    nai = "nonce@example.net"
    reply, _ = send(ha, rrq(nai=nai, ident=0x00000000_11111111))
    assert reply is not None and reply.code == 133
    accepted = rrq(nai=nai, ident=((reply.ident >> 32) << 32) | 0x22222222)
    reply, _ = send(ha, accepted)
    assert reply is not None and reply.code == 0
    expected = reply.ident >> 32
    for i in range(50):
        replay, actions = send(ha, accepted, now=NOW + i * 0.02)
        assert replay is not None and replay.code == 133 and binds(actions) == []
        assert replay.ident >> 32 == expected and mnha_ok(replay)
    reply, _ = send(ha, rrq(nai=nai, ident=(expected << 32) | 0x33333333), now=NOW + 2)
    assert reply is not None and reply.code == 0


# ---------------------------------------------------------------- policy codes


def test_129_home_address_not_allowed() -> None:
    ha = make_ha()
    reply, _ = send(ha, rrq(hoa="10.1.0.201", nai=None, alg="md5-prefix-suffix"))
    assert reply is None  # no SA keyed by that home address: silent discard
    # a NAI-keyed MN with a dynamic SA asking for an address outside the home prefix
    reply, _ = send(ha, rrq(hoa="192.168.7.7"))
    assert reply is not None and reply.code == 129 and mnha_ok(reply)


def test_129_static_mismatch() -> None:
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(SPI, KEY, "hmac-md5", nai=NAI, home_address="10.1.0.50"))
    ha = HomeAgent(HomeAgentSettings(HA_REAL, HA, home_prefix="10.1.0.0/24"), sas)
    reply, _ = send(ha, rrq(hoa="10.1.0.51"))
    assert reply is not None and reply.code == 129
    reply, _ = send(ha, rrq(ident=ntp_identification(WALL, 9)))  # dynamic: gets its static
    assert reply is not None and reply.code == 0 and reply.home_addr == "10.1.0.50"


def test_130_pool_exhausted() -> None:
    ha = make_ha(pool="10.1.0.0/30")  # .1 and .2 usable
    codes = [
        send(ha, rrq(nai=f"mn{i}@example.net"))[0].code  # type: ignore[union-attr]
        for i in (2, 3, 4)
    ]
    assert codes == [0, 0, 130]
    assert ha.counters()["haInsufficientResource"] == 1


def test_130_table_full() -> None:
    ha = make_ha(max_bindings=1)
    assert send(ha, rrq(nai="mn2@example.net"))[0].code == 0  # type: ignore[union-attr]
    reply, _ = send(ha, rrq(nai="mn3@example.net"))
    assert reply is not None and reply.code == 130
    assert ha.pool is not None and ha.pool.allocated == 1  # the address was given back


def test_134_poorly_formed() -> None:
    reply, _ = send(make_ha(), rrq(coa="0.0.0.0"))
    assert reply is not None and reply.code == 134


def test_135_and_simultaneous_bindings() -> None:
    ha = make_ha(simultaneous_bindings=2)
    r1, _ = send(ha, rrq(flags=FLAG_S, coa="10.0.2.2", ident=ntp_identification(WALL, 1)))
    assert r1 is not None and r1.code == 0
    hoa = r1.home_addr
    r2, a2 = send(ha, rrq(flags=FLAG_S, hoa=hoa, coa="10.0.2.3", ident=ntp_identification(WALL, 2)))
    assert r2 is not None and r2.code == 0
    assert not any(isinstance(a, RemoveBinding) for a in a2)
    assert {b.care_of for b in ha.table.bindings_of(hoa)} == {"10.0.2.2", "10.0.2.3"}
    r3, _ = send(ha, rrq(flags=FLAG_S, hoa=hoa, coa="10.0.2.4", ident=ntp_identification(WALL, 3)))
    assert r3 is not None and r3.code == 135
    # without S: replaces both
    r4, a4 = send(ha, rrq(hoa=hoa, coa="10.0.2.5", ident=ntp_identification(WALL, 4)))
    assert r4 is not None and r4.code == 0
    assert len([a for a in a4 if isinstance(a, RemoveBinding)]) == 2
    assert [b.care_of for b in ha.table.bindings_of(hoa)] == ["10.0.2.5"]


def test_code_1_when_simultaneous_unsupported() -> None:
    ha = make_ha(simultaneous_bindings=1)
    r1, _ = send(ha, rrq(flags=FLAG_S, coa="10.0.2.2", ident=ntp_identification(WALL, 1)))
    assert r1 is not None and r1.code == 1
    r2, _ = send(
        ha,
        rrq(flags=FLAG_S, hoa=r1.home_addr, coa="10.0.2.3", ident=ntp_identification(WALL, 2)),
    )
    assert r2 is not None and r2.code == 1
    assert len(ha.table) == 1


def test_136_broadcast() -> None:
    ha = make_ha()
    reply, actions = send(ha, rrq(), dst="255.255.255.255")
    assert reply is not None and reply.code == 136 and reply.ha_addr == HA
    assert actions[0].src == (HA, 434)  # from our unicast address
    reply, _ = send(ha, rrq(ident=ntp_identification(WALL, 2)), dst="10.1.0.255")
    assert reply is not None and reply.code == 136


def test_137_138_reverse_tunnel() -> None:
    reply, _ = send(make_ha(reverse_tunnel=False), rrq(flags=FLAG_T))
    assert reply is not None and reply.code == 137
    reply, _ = send(make_ha(reverse_tunnel_required=True), rrq())
    assert reply is not None and reply.code == 138
    reply, actions = send(make_ha(reverse_tunnel_required=True), rrq(flags=FLAG_T))
    assert reply is not None and reply.code == 0 and binds(actions)[0].reverse_tunnel


def test_139_encapsulation() -> None:
    assert send(make_ha(gre=False), rrq(flags=FLAG_G))[0].code == 139  # type: ignore[union-attr]
    reply, _ = send(make_ha(gre=False), rrq(after=[GreKeyExt(5)]))
    assert reply is not None and reply.code == 139  # RFC 6245: GRE key ext unsupported
    reply, _ = send(make_ha(minimal_encap=False), rrq(flags=FLAG_M))
    assert reply is not None and reply.code == 139
    reply, _ = send(make_ha(), rrq(flags=FLAG_M | FLAG_G))
    assert reply is not None and reply.code == 139


def test_140_141_unknown_cvse() -> None:
    reply, _ = send(make_ha(), rrq(before=[CvseExt(9, 7, b"ab")]))
    assert reply is not None and reply.code == 140
    reply, _ = send(make_ha(), rrq(after=[CvseExt(9, 7, b"ab")]))
    assert reply is not None and reply.code == 141


def test_extensions_after_the_fa_ha_authenticator_are_ignored() -> None:
    """RFC 5944 §3.5.1: nothing after the FA-HA extension is protected. A GRE key
    extension, a GRE key CVSE, an unknown CVSE or a malformed GRE key appended to a valid
    request (MN-HA and FA-HA verify) change nothing: code 0, IP-in-IP, no key echoed."""
    tails = [
        GreKeyExt(0xBAD).encode(),
        gre_key_cvse(0xBAD).encode(),
        CvseExt(9, 7, b"ab").encode(),
        bytes([48, 0, 0, 2, 0, 1]),  # a GRE key extension of the wrong length (134)
    ]
    for tail in tails:
        ha = make_ha(fa_sa=True)
        reply, actions = send(ha, rrq(fa_key=FA_KEY) + tail)
        assert reply is not None and reply.code == 0, tail.hex()
        (b,) = binds(actions)
        assert b.encap == Encap.IPIP and b.gre_key is None
        assert reply.find(GreKeyExt) is None and reply.find(CvseExt) is None
        assert ha.counters()["mobilehaHaUnprotectedExtensionsIgnored"] == 1
    # the FA's own GRE key before its FA-HA still counts; an appended second one does not
    ha = make_ha(fa_sa=True)
    data = rrq(after=[GreKeyExt(0x1234)], fa_key=FA_KEY) + GreKeyExt(0xBAD).encode()
    reply, actions = send(ha, data)
    assert reply is not None and reply.code == 0
    assert binds(actions)[0].gre_key == 0x1234 and reply.find(GreKeyExt).key == 0x1234


def test_co_located_request_acts_only_on_what_mn_ha_covers() -> None:
    """A co-located care-of address (D): no FA appends anything, so what follows the MN-HA
    extension is ignored; from an FA without an SA it is the FA's (unauthenticated) word."""
    ha = make_ha()
    reply, actions = send(ha, rrq(flags=0x20, after=[GreKeyExt(0xBAD)]))
    assert reply is not None and reply.code == 0 and binds(actions)[0].gre_key is None
    ha = make_ha()
    reply, actions = send(ha, rrq(after=[GreKeyExt(0x77)]))
    assert reply is not None and reply.code == 0 and binds(actions)[0].gre_key == 0x77


def test_143_dynamic_ha_redirect_and_answer() -> None:
    ha = make_ha(redirect_ha="10.0.9.9")
    reply, actions = send(ha, rrq(ha="255.255.255.255"))
    assert reply is not None and reply.code == 143 and mnha_ok(reply)
    ext = reply.find(DynamicHaExt)
    assert ext.subtype == 2 and ext.address == "10.0.9.9"
    assert binds(actions) == []
    # without a redirect target we serve it ourselves and name our address
    reply, actions = send(make_ha(), rrq(ha="0.0.0.0"))
    assert reply is not None and reply.code == 0 and reply.ha_addr == HA and binds(actions)


# ---------------------------------------------------------------- deregistration


def test_deregistration_one_coa_and_all() -> None:
    ha = make_ha()
    r1, _ = send(ha, rrq(flags=FLAG_S, coa="10.0.2.2", ident=ntp_identification(WALL, 1)))
    assert r1 is not None
    hoa = r1.home_addr
    send(ha, rrq(flags=FLAG_S, hoa=hoa, coa="10.0.2.3", ident=ntp_identification(WALL, 2)))
    assert len(ha.table) == 2
    # lifetime 0, CoA != HoA: only that binding
    r, acts = send(ha, rrq(life=0, hoa=hoa, coa="10.0.2.3", ident=ntp_identification(WALL, 3)))
    assert r is not None and r.code == 0 and r.lifetime == 0 and mnha_ok(r)
    assert [a.binding.care_of for a in acts if isinstance(a, RemoveBinding)] == ["10.0.2.3"]
    assert [b.care_of for b in ha.table.bindings_of(hoa)] == ["10.0.2.2"]
    send(ha, rrq(flags=FLAG_S, hoa=hoa, coa="10.0.2.3", ident=ntp_identification(WALL, 4)))
    # lifetime 0, CoA = HoA: all of them, and the dynamic address goes back to the pool
    r, acts = send(ha, rrq(life=0, hoa=hoa, coa=hoa, ident=ntp_identification(WALL, 5)))
    assert r is not None and r.code == 0
    assert len([a for a in acts if isinstance(a, RemoveBinding)]) == 2
    assert len(ha.table) == 0 and not ha.is_dynamic(hoa)
    assert ha.counters()["cmiHaDeRegRequestsAccepted"] == 2


def test_deregistration_with_fa_sa_needs_no_fa_ha() -> None:
    ha = make_ha(fa_sa=True)
    r1, _ = send(ha, rrq(fa_key=FA_KEY, ident=ntp_identification(WALL, 1)))
    assert r1 is not None and r1.code == 0
    r, _ = send(ha, rrq(life=0, hoa=r1.home_addr, ident=ntp_identification(WALL, 2)))
    assert r is not None and r.code == 0 and len(ha.table) == 0


# ---------------------------------------------------------------- relay tag, standby, sync


def test_relay_tag_from_trusted_slb() -> None:
    slb = "10.0.0.100"
    ha = make_ha(trusted_slb=(slb,))
    tagged = slbtag.encode(rrq(), "10.0.2.7", 5555)
    reply, actions = send(ha, tagged, src=slb, sport=434, dst=HA)
    assert reply is not None and reply.code == 0
    send_a = next(a for a in actions if isinstance(a, Send))
    assert send_a.dst == ("10.0.2.7", 5555) and send_a.src == (HA, 434)
    assert binds(actions)[0].src_addr == "10.0.2.7"
    # the same tag from an untrusted source is an ordinary skippable NVSE: the SLB is answered
    ha2 = make_ha()
    reply, actions = send(ha2, tagged, src="10.0.0.99")
    assert reply is not None and reply.code == 0
    assert next(a for a in actions if isinstance(a, Send)).dst == ("10.0.0.99", 434)


def test_relay_tag_with_slb_sa() -> None:
    slb = "10.0.0.100"
    sa = MobilitySA(500, b"S" * 16, "md5-prefix-suffix")
    ha = make_ha(trusted_slb=(slb,))
    ha.slb_sas[slb] = sa
    good = slbtag.encode(rrq(), "10.0.2.7", 5555, key=b"S" * 16, spi=500)
    reply, _ = send(ha, good, src=slb)
    assert reply is not None and reply.code == 0
    bad = slbtag.encode(rrq(ident=ntp_identification(WALL, 2)), "10.0.2.7", 5555)
    assert send(ha, bad, src=slb) == (None, [])
    assert ha.drops == {"slbtag-unauthenticated": 1}


def test_standby_is_silent_and_activation_restores() -> None:
    ha = make_ha()
    send(ha, rrq())
    withdraw = ha.set_active(False, NOW)
    assert [type(a) for a in withdraw] == [WithdrawBinding]
    assert send(ha, rrq(ident=ntp_identification(WALL, 2))) == (None, [])
    assert ha.drops == {"standby": 1}
    restore = ha.set_active(True, NOW + 1)
    assert [type(a) for a in restore] == [RestoreBinding]
    assert isinstance(restore[0], InstallBinding)


def test_apply_synced_keeps_replay_state_and_allocation() -> None:
    active = make_ha()
    r, acts = send(active, rrq(ident=ntp_identification(WALL, 5)))
    assert r is not None
    (b,) = binds(acts)
    standby = make_ha()
    standby.active = False
    copy = Binding(**{f: getattr(b, f) for f in b.__dataclass_fields__})
    assert standby.apply_synced(copy, NOW, dynamic=active.is_dynamic(b.home_addr)) == []
    assert standby.is_dynamic(b.home_addr)
    standby.set_active(True, NOW + 1)
    # the replayed (older) request is refused by the new active: no false accept
    reply, _ = send(standby, rrq(ident=ntp_identification(WALL, 4)), now=NOW + 2)
    assert reply is not None and reply.code == 133
    # another MN does not get the same address
    reply, _ = send(standby, rrq(nai="mn2@example.net"), now=NOW + 2)
    assert reply is not None and reply.code == 0 and reply.home_addr != b.home_addr
    assert standby.delete_synced(b.home_addr, None, NOW + 3) != []
    assert not standby.is_dynamic(b.home_addr)


def test_counters_and_codes() -> None:
    ha = make_ha()
    send(ha, rrq())
    send(ha, rrq(key=b"k" * 16, ident=ntp_identification(WALL, 2)))
    send(ha, rrq(auth=False))
    c = ha.counters()
    assert c["cmiHaRegRequestsReceived"] == 3
    assert c["haRegistrationAccepted"] == 1 and c["haMobNodeFailedAuth"] == 1
    assert c["cmiHaRegRequestsDiscarded"] == 1
    assert c["cmiHaRegTotalMobilityBindings"] == 1
    assert ha.by_code == {0: 1, 131: 1}


def test_replay_after_deregistration_refused() -> None:
    ha = make_ha()
    reg = rrq(ident=ntp_identification(WALL, 1))
    r1, _ = send(ha, reg)
    assert r1 is not None and r1.code == 0
    dereg = rrq(life=0, hoa=r1.home_addr, coa=r1.home_addr, ident=ntp_identification(WALL, 2))
    assert send(ha, dereg, now=NOW + 1)[0].code == 0  # type: ignore[union-attr]
    assert len(ha.table) == 0
    # the registration replayed within the timestamp window: still refused
    reply, actions = send(ha, reg, now=NOW + 2, wall=WALL + 2)
    assert reply is not None and reply.code == 133 and binds(actions) == []
    # a fresh request is fine, and the memory of the deleted binding goes away
    reply, _ = send(ha, rrq(ident=ntp_identification(WALL + 3, 3)), now=NOW + 3, wall=WALL + 3)
    assert reply is not None and reply.code == 0
    ha.handle_timer(NOW + 100)
    assert ha._recent == {}


def test_mn_aaa_chap_spi_and_unknown_user() -> None:
    from mobileha.wire.auth import CHAP_SPI, mn_aaa_chap_authenticator
    from mobileha.wire.mip import ChallengeExt, append_gen_auth

    sas = SecurityAssociations()
    sas.add_aaa(NAI, MobilitySA(CHAP_SPI, KEY, "hmac-md5", nai=NAI))
    sas.add_fa(FA, MobilitySA(FA_SPI, FA_KEY, "hmac-md5"))
    ha = HomeAgent(HomeAgentSettings(HA_REAL, HA, home_prefix="10.1.0.0/24"), sas)
    challenge = bytes(range(1, 17))

    def req(nai: str, key: bytes, ident: int) -> bytes:
        base = RegistrationRequest(lifetime=600, ha_addr=HA, care_of=FA, ident=ident).header()
        base += NaiExt(nai).encode() + ChallengeExt(challenge).encode()
        msg = append_gen_auth(
            base, 1, CHAP_SPI, lambda covered: mn_aaa_chap_authenticator(key, challenge, covered)
        )
        return append_auth(msg, 34, FA_SPI, Authenticator(FA_KEY, "hmac-md5"))

    reply, _ = send(ha, req(NAI, KEY, ntp_identification(WALL, 1)))
    assert reply is not None and reply.code == 0
    assert reply.find(AuthExt, 32) is None and reply.find(AuthExt, 34) is not None
    reply, _ = send(ha, req(NAI, b"z" * 16, ntp_identification(WALL, 2)))
    assert reply is not None and reply.code == 144
    # unknown AAA user, but the FA vouches with a valid FA-HA: 144, FA-HA only
    reply, _ = send(ha, req("who@example.net", KEY, ntp_identification(WALL, 3)))
    assert reply is not None and reply.code == 144
    assert reply.find(AuthExt, 34) is not None and reply.find(AuthExt, 32) is None


def test_relay_tag_bad_slb_authenticator_dropped() -> None:
    slb = "10.0.0.100"
    ha = make_ha(trusted_slb=(slb,))
    ha.slb_sas[slb] = MobilitySA(500, b"S" * 16, "md5-prefix-suffix")
    forged = slbtag.encode(rrq(), "10.0.2.7", 5555, key=b"X" * 16, spi=500)
    assert send(ha, forged, src=slb) == (None, [])
    assert ha.drops == {"slbtag-bad-auth": 1}


def test_reply_ident_and_fields_on_denial() -> None:
    ha = make_ha(reverse_tunnel=False)
    ident = ntp_identification(WALL, 0x55)
    reply, _ = send(ha, rrq(flags=FLAG_T, ident=ident))
    assert reply is not None and reply.code == 137
    assert reply.ident == ident  # timestamp method: the request's ID on every non-133 reply
    assert reply.lifetime == 0 and reply.home_addr == "0.0.0.0" and reply.ha_addr == HA
    assert reply.nai == NAI and mnha_ok(reply)


def test_129_dynamic_mn_cannot_take_a_static_or_allocated_address() -> None:
    ha = make_ha()
    # STATIC_HOA belongs to another MN's SA (excluded from the pool)
    reply, _ = send(ha, rrq(hoa=STATIC_HOA))
    assert reply is not None and reply.code == 129
    # an address the pool gave to mn2 is not for mn1
    r2, _ = send(ha, rrq(nai="mn2@example.net", ident=ntp_identification(WALL, 2)))
    assert r2 is not None and r2.code == 0
    reply, _ = send(ha, rrq(hoa=r2.home_addr, ident=ntp_identification(WALL, 3)))
    assert reply is not None and reply.code == 129
    # a free pool address may be asked for (and is then allocated)
    reply, _ = send(ha, rrq(hoa="10.1.0.77", ident=ntp_identification(WALL, 4)))
    assert reply is not None and reply.code == 0 and ha.is_dynamic("10.1.0.77")
