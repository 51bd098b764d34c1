"""MN-HA SAs from realm entries and from AAA (sans-IO, fake clock): the shared SA of an
inline realm entry, glob patterns, the FetchSa action and the parked request, the cache
(hits, TTL, size bound), the negative cache, timeouts and the in-flight bound, a wrong key
from AAA (131), reloading the SA sources without losing bindings, and the SA of a synced
binding reaching the standby inside the sync record (no fetch after a takeover)."""

from __future__ import annotations

import random
from typing import Any

from mobileha.core.actions import Send
from mobileha.core.cluster import AgentSpec, Cluster
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.hsrp import State
from mobileha.core.security import (
    SOURCE_AAA,
    MobilitySA,
    RealmEntry,
    SecurityAssociations,
)
from mobileha.core.subscribers import (
    REJECT,
    FetchSa,
    SaFailed,
    SaFetched,
    SubscriberSettings,
)
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests.helpers import request
from tests.helpers.cluster_net import CLIENT, MN_KEY, Net, bring_up, hsrp_config, nai, sync_config
from tests.helpers.cluster_net import rrq as pair_rrq

HA = "10.0.1.100"
FA = "10.0.2.2"
KEY = bytes(range(16))
REALM_KEY = b"R" * 16
NOW = 1000.0
WALL = 1_800_000_000.0
AAA_SPI = 1000


def sas_with(*entries: RealmEntry) -> SecurityAssociations:
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(256, KEY, "hmac-md5", nai="known@example.net"))
    for e in entries:
        sas.add_realm(e)
    return sas


def aaa_realm(pattern: str = "@aaa.example") -> RealmEntry:
    return RealmEntry(pattern, source=SOURCE_AAA, algorithm="hmac-md5")


def make_ha(sas: SecurityAssociations, **subs: Any) -> HomeAgent:
    settings = HomeAgentSettings(
        address="10.0.1.10",
        ha_address=HA,
        home_prefix="10.1.0.0/24",
        subscribers=SubscriberSettings(**subs),
    )
    ha = HomeAgent(settings, sas, random_bytes=random.Random(0).randbytes)
    ha.unix_offset = WALL - NOW
    return ha


def rrq(nai: str, *, key: bytes = KEY, spi: int = AAA_SPI, low: int = 1, life: int = 1800) -> bytes:
    return request(
        ha_addr=HA,
        care_of=FA,
        ident=ntp_identification(WALL, low),
        nai=nai,
        key=key,
        spi=spi,
        lifetime=life,
    )


def send(ha: HomeAgent, data: bytes, now: float = NOW) -> tuple[int | None, list[Any]]:
    ha.unix_offset = WALL - now
    actions = ha.receive_datagram(data, (FA, 434), (HA, 434), now)
    return reply_code(actions), actions


def reply_code(actions: list[Any]) -> int | None:
    sends = [a for a in actions if isinstance(a, Send)]
    return RegistrationReply.decode(sends[0].payload).code if sends else None


def fetches(actions: list[Any]) -> list[FetchSa]:
    return [a for a in actions if isinstance(a, FetchSa)]


def fetched(nai: str, key: bytes = KEY, spi: int = AAA_SPI, hoa: str | None = None) -> SaFetched:
    return SaFetched(HA, nai, spi, key, hoa)


# ---------------------------------------------------------------- realm entries


def test_inline_realm_entry_shares_one_sa() -> None:
    shared = MobilitySA(500, REALM_KEY, "hmac-md5")
    ha = make_ha(sas_with(RealmEntry("@inline.example", sa=shared)))
    for i in range(3):
        code, _ = send(ha, rrq(f"mn{i}@INLINE.example", key=REALM_KEY, spi=500))
        assert code == 0  # realms compare without case (RFC 7542 §2.2)
    assert len(ha.table) == 3
    code, _ = send(ha, rrq("mn9@inline.example", key=REALM_KEY, spi=501))
    assert code == 131  # the realm's SA exists, the SPI is not its own
    code, actions = send(ha, rrq("mn9@other.example", key=REALM_KEY, spi=500))
    assert code is None and not actions  # no SA at all: silently discarded


def test_pattern_entry_in_order() -> None:
    a = MobilitySA(500, REALM_KEY, "hmac-md5")
    b = MobilitySA(600, KEY, "hmac-md5")
    ha = make_ha(sas_with(RealmEntry("gold-*@p.example", sa=a), RealmEntry("*@p.example", sa=b)))
    assert send(ha, rrq("gold-1@p.example", key=REALM_KEY, spi=500))[0] == 0
    assert send(ha, rrq("bronze@p.example", key=KEY, spi=600))[0] == 0
    assert send(ha, rrq("gold-2@p.example", key=KEY, spi=600))[0] == 131


def test_exact_entry_wins_over_realm() -> None:
    ha = make_ha(sas_with(aaa_realm("@example.net")))
    code, actions = send(ha, rrq("known@example.net", spi=256))
    assert code == 0 and not fetches(actions)


# ---------------------------------------------------------------- SA from AAA


def test_first_registration_waits_for_aaa_then_cache_hits() -> None:
    ha = make_ha(sas_with(aaa_realm()))
    nai = "mn1@aaa.example"
    code, actions = send(ha, rrq(nai))
    assert code is None
    assert fetches(actions) == [FetchSa(HA, nai, AAA_SPI)]
    # a retransmission while the fetch runs: no second fetch, not parked twice
    code, actions = send(ha, rrq(nai), NOW + 0.1)
    assert code is None and not actions
    assert ha.subs.c.coalesced == 1
    out = ha.handle_event(fetched(nai), NOW + 0.2)
    assert reply_code(out) == 0
    assert len(ha.table) == 1
    assert ha.subs.size == 1 and ha.subs.c.misses == 1 and ha.subs.c.answers == 1
    assert ha.subs.c.latency_count == 1 and abs(ha.subs.c.latency_sum - 0.2) < 1e-9
    # the re-registration is served from the cache: no fetch
    code, actions = send(ha, rrq(nai, low=2), NOW + 10)
    assert code == 0 and not fetches(actions)
    assert ha.subs.c.hits == 1 and ha.subs.c.misses == 1


def test_home_address_from_aaa() -> None:
    ha = make_ha(sas_with(aaa_realm()))
    send(ha, rrq("mn1@aaa.example"))
    out = ha.handle_event(fetched("mn1@aaa.example", hoa="10.1.0.77"), NOW + 0.1)
    sends = [a for a in out if isinstance(a, Send)]
    reply = RegistrationReply.decode(sends[0].payload)
    assert reply.code == 0 and reply.home_addr == "10.1.0.77"


def test_wrong_key_from_aaa_is_131() -> None:
    ha = make_ha(sas_with(aaa_realm()))
    send(ha, rrq("mn1@aaa.example"))
    out = ha.handle_event(fetched("mn1@aaa.example", key=b"wrong" * 4), NOW + 0.1)
    assert reply_code(out) == 131
    assert len(ha.table) == 0


def test_spi_other_than_aaa_names_is_131() -> None:
    ha = make_ha(sas_with(aaa_realm()))
    send(ha, rrq("mn1@aaa.example"))
    ha.handle_event(fetched("mn1@aaa.example", spi=AAA_SPI + 1), NOW + 0.1)
    code, actions = send(ha, rrq("mn1@aaa.example", low=2), NOW + 1)
    assert code == 131 and not fetches(actions)


def test_reject_is_discarded_and_cached_briefly() -> None:
    ha = make_ha(sas_with(aaa_realm()), negative_ttl_s=30.0)
    bad = "bad@aaa.example"
    send(ha, rrq(bad))
    out = ha.handle_event(SaFailed(HA, bad, REJECT), NOW + 0.1)
    assert out == []  # §3.8.2.1: no SA with the MN, so no reply it could authenticate
    assert ha.drops["aaa-reject"] == 1 and ha.subs.c.rejects == 1
    # within negative_ttl_s: discarded without asking AAA
    code, actions = send(ha, rrq(bad, low=2), NOW + 5)
    assert code is None and not actions
    assert ha.subs.c.negative_hits == 1 and ha.drops["aaa-negative"] == 1
    ha.handle_timer(NOW + 31)
    assert ha.subs.negative == 0
    _, actions = send(ha, rrq(bad, low=3), NOW + 31)
    assert fetches(actions)


def test_aaa_down_times_out_while_cached_mns_are_served() -> None:
    ha = make_ha(sas_with(aaa_realm()), timeout_s=5.0)
    send(ha, rrq("cached@aaa.example"))
    ha.handle_event(fetched("cached@aaa.example"), NOW + 0.01)
    # AAA goes down: the new MN's fetch never gets an answer
    _, actions = send(ha, rrq("new@aaa.example"), NOW + 1)
    assert fetches(actions)
    assert ha.get_timer() is not None and ha.get_timer() <= NOW + 6  # type: ignore[operator]
    for k in range(2, 50):  # the cached MN at full rate meanwhile
        code, actions = send(ha, rrq("cached@aaa.example", low=k), NOW + 1 + k * 0.01)
        assert code == 0 and not fetches(actions)
    ha.handle_timer(NOW + 6.0)
    assert ha.subs.c.timeouts == 1 and ha.drops["aaa-timeout"] == 1
    assert ha.subs.in_flight == 0
    # a late answer is still cached (counted)
    ha.handle_event(fetched("new@aaa.example"), NOW + 7)
    assert ha.subs.c.late_answers == 1
    assert send(ha, rrq("new@aaa.example", low=2), NOW + 8)[0] == 0


def test_in_flight_bound() -> None:
    ha = make_ha(sas_with(aaa_realm()), max_in_flight=2)
    assert fetches(send(ha, rrq("a@aaa.example"))[1])
    assert fetches(send(ha, rrq("b@aaa.example"))[1])
    code, actions = send(ha, rrq("c@aaa.example"))
    assert code is None and not actions
    assert ha.subs.c.busy == 1 and ha.drops["aaa-busy"] == 1


def test_cache_ttl_and_size_bound() -> None:
    ha = make_ha(sas_with(aaa_realm()), ttl_s=100.0, max_entries=2)
    for i, who in enumerate(("a@aaa.example", "b@aaa.example", "c@aaa.example")):
        send(ha, rrq(who, life=10), NOW + i)
        ha.handle_event(fetched(who), NOW + i)
    # every cached MN is bound: the oldest entry goes all the same (the size bound holds)
    assert ha.subs.size == 2 and ha.subs.c.evicted == 1
    # bindings expire after 10 s; the SAs of unbound MNs go after the TTL
    ha.handle_timer(NOW + 200)
    assert len(ha.table) == 0
    ha.handle_timer(NOW + 400)
    assert ha.subs.size == 0 and ha.subs.c.expired == 2


def test_bound_mn_keeps_its_sa_past_the_ttl() -> None:
    ha = make_ha(sas_with(aaa_realm()), ttl_s=100.0)
    send(ha, rrq("a@aaa.example", life=1000))
    ha.handle_event(fetched("a@aaa.example"), NOW)
    ha.handle_timer(NOW + 150)
    assert ha.subs.size == 1
    code, actions = send(ha, rrq("a@aaa.example", low=2, life=1000), NOW + 160)
    assert code == 0 and not fetches(actions)


def test_reload_keeps_bindings_and_cached_sas() -> None:
    shared = MobilitySA(500, REALM_KEY, "hmac-md5")
    ha = make_ha(sas_with(aaa_realm(), RealmEntry("@inline.example", sa=shared)))
    send(ha, rrq("a@aaa.example"))
    ha.handle_event(fetched("a@aaa.example"), NOW)
    assert send(ha, rrq("x@inline.example", key=REALM_KEY, spi=500))[0] == 0
    assert len(ha.table) == 2
    # new sources: the aaa realm stays, the inline realm goes, a new inline realm arrives
    new = sas_with(aaa_realm(), RealmEntry("@new.example", sa=shared))
    ha.reload_security(new)
    assert len(ha.table) == 2  # bindings stay
    assert ha.subs.size == 1  # the SA from AAA moved over
    code, actions = send(ha, rrq("a@aaa.example", low=2), NOW + 1)
    assert code == 0 and not fetches(actions)
    assert send(ha, rrq("y@new.example", key=REALM_KEY, spi=500), NOW + 1)[0] == 0
    # the MNs of the removed realm are not served
    assert send(ha, rrq("x@inline.example", key=REALM_KEY, spi=500, low=2), NOW + 2)[0] is None


def test_reload_drops_cached_sas_no_longer_from_aaa() -> None:
    ha = make_ha(sas_with(aaa_realm()))
    send(ha, rrq("a@aaa.example"))
    ha.handle_event(fetched("a@aaa.example"), NOW)
    ha.reload_security(sas_with())
    assert ha.subs.size == 0 and ha.subs.c.reload_dropped == 1


# ---------------------------------------------------------------- the SA in the sync record

VIP = "10.0.0.100"


def _cluster(net: Net, me: str, peer: str, prio: int) -> Cluster:
    sas = SecurityAssociations()
    sas.add_realm(aaa_realm("@example.net"))
    settings = HomeAgentSettings(address=me, ha_address=VIP, home_prefix="10.64.0.0/16")
    ha = HomeAgent(settings, sas, random_bytes=random.Random(me).randbytes)
    return Cluster(
        [AgentSpec(ha, sync_config(peer, VIP), 1)],
        hsrp=[hsrp_config(me, VIP, prio)],
        rng=random.Random(me),
        wall_offset=net.wall0,
        now=net.now,
    )


def _answer_fetches(net: Net, name: str, key: bytes) -> int:
    """Answer the FetchSa actions the host emitted (as its node would, from AAA)."""
    h = net.hosts[name]
    asked = [a for _, a in h.notices if isinstance(a, FetchSa)]
    h.notices = [(t, a) for t, a in h.notices if not isinstance(a, FetchSa)]
    for f in asked:
        net.event(name, SaFetched(f.ha_addr, f.nai, f.spi, key))
    return len(asked)


def test_standby_serves_aaa_mns_after_takeover_without_fetching() -> None:
    net = Net(seed=3)
    a = net.add("A", "10.0.0.1", _cluster(net, "10.0.0.1", "10.0.0.2", 110))
    b = net.add("B", "10.0.0.2", _cluster(net, "10.0.0.2", "10.0.0.1", 100))
    bring_up(net, a, b)
    n = 20
    for i in range(n):
        net.register(i, VIP)
    net.run(0.05)
    assert _answer_fetches(net, "A", MN_KEY) == n
    net.run(1.0)
    assert len(net.accepted()) == n
    assert len(b.table()) == n
    b_ha = b.cluster.agents[0].ha
    assert b_ha.subs.size == n and b_ha.subs.c.synced == n
    assert b.sync().counters.SaRecords >= n
    net.kill("A")
    net.run_until(lambda: b.hsrp_state() is State.ACTIVE, 10, "B Active")
    net.replies.clear()
    for i in range(n):
        data = pair_rrq(i, VIP, net.wall0 + net.now, low=7)
        net.send_raw(data, (CLIENT, 434), (VIP, 434))
    net.run(1.0)
    assert not [x for _, x in b.notices if isinstance(x, FetchSa)]
    assert sum(1 for _, r in net.replies if r.code == 0) == n
    assert b_ha.subs.c.misses == 0 and b_ha.subs.c.hits >= n
    assert {nai(i) for i in range(n)} <= set(net.accepted())


def test_replay_window_counts_from_arrival_not_from_the_aaa_answer() -> None:
    """A request that waited for AAA longer than the timestamp tolerance (7 s) is checked as
    of its arrival: the wait is the home agent's, not the MN's."""
    ha = make_ha(sas_with(aaa_realm()), timeout_s=13.0)
    send(ha, rrq("slow@aaa.example"))
    out = ha.handle_event(fetched("slow@aaa.example"), NOW + 10.0)
    assert reply_code(out) == 0
