"""MobileNode sans-IO: requests, backoff, 133 resync (both methods), renewal, deregistration."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest

from mobileha.core.actions import Send
from mobileha.core.binding import FLAG_D, FLAG_G, FLAG_T
from mobileha.core.mobile_node import (
    DEREG_MAX_TRIES,
    TRANSITIONS,
    MnEvent,
    MnSecurity,
    MnState,
    MobileNode,
    TransitionError,
)
from mobileha.wire.auth import (
    CHAP_SPI,
    NTP_EPOCH_OFFSET,
    Authenticator,
    mn_aaa_chap_authenticator,
)
from mobileha.wire.mip import (
    EXT_MN_HA,
    AuthExt,
    ChallengeExt,
    GenAuthExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    append_auth,
)

HERE = ("192.0.2.254", 434)  # the receiving socket's address (the cores do not use it)

KEY = bytes(range(16))
SPI = 256
WALL = 1_800_000_000.0  # unix time at monotonic 0
FA = ("10.0.2.2", 434)
NAI = "mn1@example.net"


def mn(**kw: object) -> MobileNode:
    args: dict[str, object] = {
        "nai": NAI,
        "home_addr": "0.0.0.0",
        "ha_addr": "10.0.0.100",
        "security": MnSecurity(SPI, KEY, "hmac-md5", "timestamp"),
        "foreign_agent": FA,
        "lifetime": 1800,
        "unix_offset": WALL,
    }
    args.update(kw)
    return MobileNode(**args)  # type: ignore[arg-type]


def reply_for(
    req_bytes: bytes,
    *,
    code: int = 0,
    lifetime: int | None = None,
    hoa: str | None = None,
    ha: str = "10.0.1.100",
    ident: int | None = None,
    key: bytes = KEY,
    auth: bool = True,
    extra: bytes = b"",
) -> bytes:
    """What an HA answers (independent of the MN code: raw hmac for the authenticator)."""
    req = RegistrationRequest.decode(req_bytes)
    rep = RegistrationReply(
        code=code,
        lifetime=req.lifetime if lifetime is None else lifetime,
        home_addr=hoa or (req.home_addr if req.home_addr != "0.0.0.0" else "10.1.0.5"),
        ha_addr=ha,
        ident=req.ident if ident is None else ident,
    )
    msg = rep.header()
    if req.nai:
        msg += NaiExt(req.nai).encode()
    if auth:
        covered = msg + bytes([EXT_MN_HA, 20]) + SPI.to_bytes(4, "big")
        msg = covered + hmac.new(key, covered, hashlib.md5).digest()
    return msg + extra


def sent(actions: list[Send]) -> RegistrationRequest:
    assert len(actions) == 1
    return RegistrationRequest.decode(actions[0].payload)


def test_state_table_every_state_event() -> None:
    """Every (state, event) pair: listed ones move, others raise (nothing silent)."""
    for s in MnState:
        for e in MnEvent:
            m = mn()
            m.state = s
            if (s, e) in TRANSITIONS:
                assert m._to(e) is TRANSITIONS[(s, e)]
            else:
                with pytest.raises(TransitionError):
                    m._to(e)


def test_first_request_fa_mode_fields_and_auth() -> None:
    m = mn(reverse_tunnel=True, encap="gre")
    acts = m.register(0.0)
    assert acts[0].dst == FA
    req = sent(acts)
    assert req.home_addr == "0.0.0.0" and req.ha_addr == "10.0.0.100"
    assert req.care_of == "10.0.2.2"
    assert req.flags & FLAG_T and req.flags & FLAG_G and not req.flags & FLAG_D
    assert req.lifetime == 1800
    assert (req.ident >> 32) == int(WALL) + NTP_EPOCH_OFFSET
    assert isinstance(req.extensions[0], NaiExt)
    ext = req.extensions[1]
    assert isinstance(ext, AuthExt) and ext.ext_type == EXT_MN_HA and ext.spi == SPI
    # independent check of the authenticator with hmac
    covered = acts[0].payload[: req.ext_offsets[1] + 6]
    assert ext.authenticator == hmac.new(KEY, covered, hashlib.md5).digest()
    assert m.state is MnState.REGISTERING


def test_colocated_mode_goes_to_ha_with_d_flag() -> None:
    m = mn(foreign_agent=None, care_of="192.0.2.7", ha_addr="10.0.1.10")
    acts = m.register(0.0)
    assert acts[0].dst == ("10.0.1.10", 434)
    req = sent(acts)
    assert req.flags & FLAG_D and req.care_of == "192.0.2.7"


def test_accept_learns_home_address_and_ha_then_renews_at_80_percent() -> None:
    m = mn()
    req_b = m.register(0.0)[0].payload
    assert (
        m.receive_datagram(reply_for(req_b, lifetime=1000), ("10.0.1.100", 434), HERE, 0.05) == []
    )
    assert m.state is MnState.REGISTERED
    assert m.home_addr == "10.1.0.5" and m.ha_addr == "10.0.1.100"
    assert m.granted_lifetime == 1000
    assert m.get_timer() == pytest.approx(800.0)
    assert m.handle_timer(799.0) == []
    acts = m.handle_timer(800.0)
    req = sent(acts)
    assert m.state is MnState.RENEWING
    assert req.home_addr == "10.1.0.5" and req.ha_addr == "10.0.1.100"
    m.receive_datagram(reply_for(acts[0].payload, lifetime=1000), FA, HERE, 800.1)
    assert m.state is MnState.REGISTERED
    assert m.stats.renewals == 1 and m.stats.accepted == 2
    assert m.expires == pytest.approx(1800.0)


def test_reply_lifetime_larger_than_requested_uses_request() -> None:
    m = mn(lifetime=600)
    req_b = m.register(0.0)[0].payload
    m.receive_datagram(reply_for(req_b, lifetime=5000), FA, HERE, 0.1)
    assert m.granted_lifetime == 600 and m.expires == 600.0


def test_infinite_lifetime_never_renews() -> None:
    m = mn(lifetime=0xFFFF)
    req_b = m.register(0.0)[0].payload
    m.receive_datagram(reply_for(req_b, lifetime=0xFFFF), FA, HERE, 0.1)
    assert m.registered and m.get_timer() is None


def test_retransmission_backoff_doubles_and_caps_timestamp_new_id() -> None:
    m = mn(retransmit_s=1.0, retransmit_max_s=4.0)
    first = sent(m.register(0.0))
    times, idents = [], [first.ident]
    t = 0.0
    for _ in range(5):
        t = m.get_timer()  # type: ignore[assignment]
        times.append(t)
        idents.append(sent(m.handle_timer(t)).ident)
    assert times == [1.0, 3.0, 7.0, 11.0, 15.0]  # 1, 2, 4, 4, 4 (cap)
    assert len(set(idents)) == len(idents)  # RFC 5944 §3.6.3: new ID with timestamps
    assert idents == sorted(idents)
    assert m.stats.retransmissions == 5


def test_retransmission_nonce_method_resends_unchanged() -> None:
    m = mn(security=MnSecurity(SPI, KEY, "hmac-md5", "nonce"))
    a = m.register(0.0)[0].payload
    b = m.handle_timer(1.0)[0].payload
    assert a == b


def test_reply_matched_on_low_32_bits_and_verified() -> None:
    m = mn()
    req_b = m.register(0.0)[0].payload
    req = RegistrationRequest.decode(req_b)
    # wrong low bits: ignored
    bad = reply_for(req_b, ident=req.ident ^ 1)
    assert m.receive_datagram(bad, FA, HERE, 0.1) == [] and m.stats.unmatched_reply == 1
    # wrong key: ignored, still registering
    m.receive_datagram(reply_for(req_b, key=b"x" * 16), FA, HERE, 0.1)
    assert m.stats.bad_auth_reply == 1 and m.state is MnState.REGISTERING
    # HA code without MN-HA: ignored (could be forged)
    m.receive_datagram(reply_for(req_b, code=133, auth=False), FA, HERE, 0.1)
    assert m.stats.bad_auth_reply == 2
    # garbage
    m.receive_datagram(b"\x03\x00", FA, HERE, 0.1)
    assert m.stats.bad_reply == 1
    m.receive_datagram(reply_for(req_b), FA, HERE, 0.2)
    assert m.registered


def test_fa_denial_without_mn_ha_is_final() -> None:
    m = mn()
    req_b = m.register(0.0)[0].payload
    m.receive_datagram(reply_for(req_b, code=78, auth=False), FA, HERE, 0.1)
    assert m.state is MnState.IDLE and m.last_code == 78 and m.stats.denied == 1
    assert m.get_timer() is None


def test_timestamp_133_resync_uses_reply_offset() -> None:
    # Our clock is 100 s behind the HA's.
    m = mn()
    req_b = m.register(0.0)[0].payload
    req = RegistrationRequest.decode(req_b)
    ha_secs = int(WALL) + NTP_EPOCH_OFFSET + 100
    rep = reply_for(req_b, code=133, ident=(ha_secs << 32) | (req.ident & 0xFFFFFFFF))
    acts = m.receive_datagram(rep, FA, HERE, 0.5)
    again = sent(acts)
    assert m.stats.resync_timestamp == 1 and m.clock_offset == 100
    # the retry is past the HA's current second: greater than anything it accepted from us
    # in that second, even from a previous run of this MN that we do not remember
    assert (again.ident >> 32) == ha_secs + 1
    m.receive_datagram(reply_for(acts[0].payload), FA, HERE, 0.6)
    assert m.registered


def test_nonce_133_resync_uses_reply_nonce_and_keeps_it() -> None:
    m = mn(security=MnSecurity(SPI, KEY, "hmac-md5", "nonce"))
    req_b = m.register(0.0)[0].payload
    req = RegistrationRequest.decode(req_b)
    assert req.ident >> 32 == 0  # no nonce yet
    nonce = 0xDEADBEEF
    rep = reply_for(req_b, code=133, ident=(nonce << 32) | (req.ident & 0xFFFFFFFF))
    acts = m.receive_datagram(rep, FA, HERE, 0.1)
    again = sent(acts)
    assert again.ident >> 32 == nonce and m.stats.resync_nonce == 1
    nonce2 = 0x01020304
    m.receive_datagram(
        reply_for(acts[0].payload, ident=(nonce2 << 32) | (again.ident & 0xFFFFFFFF)), FA, HERE, 0.2
    )
    assert m.registered and m.nonce == nonce2
    renew = sent(m.register(1.0))
    assert renew.ident >> 32 == nonce2


def test_repeated_133_gives_up_after_limit() -> None:
    m = mn()
    acts = m.register(0.0)
    for _ in range(10):
        req = RegistrationRequest.decode(acts[0].payload)
        acts = m.receive_datagram(
            reply_for(acts[0].payload, code=133, ident=req.ident), FA, HERE, 0.1
        )
        if not acts:
            break
    assert m.state is MnState.IDLE and m.last_code == 133


def test_deregistration_our_coa_and_all() -> None:
    m = mn(home_addr="10.1.0.9")
    m.receive_datagram(reply_for(m.register(0.0)[0].payload), FA, HERE, 0.1)
    acts = m.deregister(10.0)
    req = sent(acts)
    assert req.lifetime == 0 and req.care_of == "10.0.2.2" and req.home_addr == "10.1.0.9"
    assert m.state is MnState.DEREGISTERING
    m.receive_datagram(reply_for(acts[0].payload), FA, HERE, 10.1)
    assert m.state is MnState.IDLE and m.get_timer() is None
    # all bindings: CoA = HoA
    m.receive_datagram(reply_for(m.register(20.0)[0].payload), FA, HERE, 20.1)
    req = sent(m.deregister(30.0, all_bindings=True))
    assert req.lifetime == 0 and req.care_of == req.home_addr == "10.1.0.9"


def test_deregistration_gives_up_after_retries() -> None:
    m = mn(home_addr="10.1.0.9")
    m.receive_datagram(reply_for(m.register(0.0)[0].payload), FA, HERE, 0.1)
    m.deregister(5.0)
    for _ in range(DEREG_MAX_TRIES + 2):
        d = m.get_timer()
        if d is None:
            break
        m.handle_timer(d)
    assert m.state is MnState.IDLE


def test_dynamic_address_reset_after_deregistration() -> None:
    m = mn()
    m.receive_datagram(reply_for(m.register(0.0)[0].payload), FA, HERE, 0.1)
    assert m.home_addr == "10.1.0.5"
    m.receive_datagram(reply_for(m.deregister(1.0)[0].payload), FA, HERE, 1.1)
    assert m.home_addr == "0.0.0.0" and m.ha_addr == "10.0.0.100"


def test_expiry_without_renewal_reply_registers_again() -> None:
    m = mn(lifetime=100)
    m.receive_datagram(reply_for(m.register(0.0)[0].payload), FA, HERE, 0.1)
    m.handle_timer(80.0)  # renewal sent, no answer
    assert m.state is MnState.RENEWING
    t = 80.0
    while True:
        t = m.get_timer()  # type: ignore[assignment]
        acts = m.handle_timer(t)
        if m.state is MnState.REGISTERING:
            break
    assert t == pytest.approx(100.0) and m.stats.expired == 1
    assert sent(acts).home_addr == "0.0.0.0"


def test_renewal_denied_keeps_binding_until_expiry() -> None:
    m = mn(lifetime=100)
    m.receive_datagram(reply_for(m.register(0.0)[0].payload), FA, HERE, 0.1)
    acts = m.handle_timer(80.0)
    m.receive_datagram(reply_for(acts[0].payload, code=129), FA, HERE, 80.1)
    assert m.state is MnState.REGISTERED and m.get_timer() == pytest.approx(100.0)


def test_challenge_from_reply_used_in_next_request_and_mn_aaa() -> None:
    aaa_key = b"aaa-secret"
    m = mn(aaa_key=aaa_key)
    first = m.register(0.0)[0].payload
    chal = bytes(range(16))
    rep = reply_for(first, code=105, auth=False) + ChallengeExt(chal).encode()
    acts = m.receive_datagram(rep, FA, HERE, 0.1)
    req = sent(acts)
    assert m.stats.challenge_retries == 1
    types = [type(e).__name__ for e in req.extensions]
    assert types == ["NaiExt", "AuthExt", "ChallengeExt", "GenAuthExt"]  # RFC 4721 §3.1
    gen = req.extensions[3]
    assert isinstance(gen, GenAuthExt) and gen.spi == CHAP_SPI and gen.subtype == 1
    covered = req.covered(gen)
    assert gen.authenticator == mn_aaa_chap_authenticator(aaa_key, chal, covered)
    # independent: MD5(chal[0] || key || MD5(covered) || chal[-237:])
    expect = hashlib.md5(
        bytes([chal[0]]) + aaa_key + hashlib.md5(covered).digest() + chal[-237:]
    ).digest()
    assert gen.authenticator == expect


def test_mn_ha_covers_with_prefix_suffix() -> None:
    m = mn(security=MnSecurity(SPI, KEY, "md5-prefix-suffix"))
    p = m.register(0.0)[0].payload
    req = RegistrationRequest.decode(p)
    auth = req.extensions[1]
    assert isinstance(auth, AuthExt)
    assert auth.authenticator == hashlib.md5(KEY + req.covered(auth) + KEY).digest()


def test_many_idents_unique_and_above_last_accepted() -> None:
    m = mn()
    seen = []
    for i in itertools.count():
        if i == 50:
            break
        m.state = MnState.IDLE
        m._out = None
        acts = m.register(0.0)  # same second each time
        ident = sent(acts).ident
        assert ident > m.last_accepted_ident
        m.receive_datagram(reply_for(acts[0].payload), FA, HERE, 0.0)  # accepted
        seen.append(ident)
    assert seen == sorted(seen) and len(set(seen)) == 50


def test_append_auth_helper_agrees() -> None:
    a = Authenticator(KEY, "hmac-md5")
    assert (
        append_auth(b"abc", 32, SPI, a)[-16:]
        == hmac.new(KEY, b"abc" + bytes([32, 20]) + SPI.to_bytes(4, "big"), hashlib.md5).digest()
    )


def test_69_retries_with_fa_maximum_lifetime() -> None:
    m = mn(lifetime=1800)
    req_b = m.register(0.0)[0].payload
    acts = m.receive_datagram(reply_for(req_b, code=69, lifetime=600, auth=False), FA, HERE, 0.1)
    assert sent(acts).lifetime == 600 and m.stats.repairs == 1
    m.receive_datagram(reply_for(acts[0].payload), FA, HERE, 0.2)
    assert m.registered and m.granted_lifetime == 600


def test_136_retries_with_named_ha() -> None:
    m = mn(ha_addr="255.255.255.255")
    req_b = m.register(0.0)[0].payload
    acts = m.receive_datagram(reply_for(req_b, code=136, ha="10.0.1.44"), FA, HERE, 0.1)
    assert sent(acts).ha_addr == "10.0.1.44"


def test_two_mn_ha_extensions_discarded() -> None:
    m = mn()
    req_b = m.register(0.0)[0].payload
    rep = reply_for(req_b)
    rep += rep[-22:]  # a second (copied) MN-HA extension
    assert m.receive_datagram(rep, FA, HERE, 0.1) == [] and m.stats.bad_auth_reply == 1
    assert m.state is MnState.REGISTERING


def test_retransmission_never_below_1s_and_capped_by_lifetime() -> None:
    m = mn(retransmit_s=0.01, retransmit_max_s=600.0, lifetime=3)
    m.register(0.0)
    times = []
    for _ in range(4):
        t = m.get_timer()
        assert t is not None
        times.append(t)
        m.handle_timer(t)
    assert times == [1.0, 3.0, 6.0, 9.0]  # 1, 2, then capped at the 3 s lifetime


def test_second_timestamp_resync_replaces_offset() -> None:
    m = mn()
    for skew in (100, -50):
        m.state = MnState.IDLE
        m._out = None
        req_b = m.register(0.0)[0].payload
        req = RegistrationRequest.decode(req_b)
        ha_secs = int(WALL) + NTP_EPOCH_OFFSET + skew
        rep = reply_for(req_b, code=133, ident=(ha_secs << 32) | (req.ident & 0xFFFFFFFF))
        again = sent(m.receive_datagram(rep, FA, HERE, 0.0))
        assert m.clock_offset == skew and (again.ident >> 32) == ha_secs + 1


def test_restarted_mn_133_in_the_same_second_then_accepted() -> None:
    """A restarted MN (no memory of its last ID) registering again in the same second as
    its previous run: the HA's last accepted ID has higher low bits, so it answers 133 with
    its own (same) second; the retry must then be greater than any ID of that second."""
    m = mn()
    req_b = m.register(0.0)[0].payload
    req = RegistrationRequest.decode(req_b)
    ha_secs = req.ident >> 32  # same clock: the 133 is about the order, not the skew
    last_accepted_by_ha = (ha_secs << 32) | 0xFFFFFFF0
    rep = reply_for(req_b, code=133, ident=(ha_secs << 32) | (req.ident & 0xFFFFFFFF))
    again = sent(m.receive_datagram(rep, FA, HERE, 0.0))
    assert m.clock_offset == 0 and again.ident > last_accepted_by_ha


def test_retry_after_denial_when_configured() -> None:
    m = mn(retry_denied_s=30.0)
    m.receive_datagram(reply_for(m.register(0.0)[0].payload, code=78, auth=False), FA, HERE, 0.1)
    assert m.state is MnState.IDLE and m.get_timer() == pytest.approx(30.1)
    req = sent(m.handle_timer(30.1))
    assert m.state is MnState.REGISTERING and m.stats.retries_after_denial == 1
    assert req.lifetime == 1800
    # without the option the MN stays idle
    m2 = mn()
    m2.receive_datagram(reply_for(m2.register(0.0)[0].payload, code=78, auth=False), FA, HERE, 0.1)
    assert m2.get_timer() is None
