"""MN-HA SAs from FreeRADIUS (rlm_sql + SQLite) at the home agent, real processes on
loopback (``tests.helpers.aaa_cluster``):

* a sample of subscribers registers MN -> FA -> HA-SLB -> HSRP pair whose only
  ``[[mobile_node]]`` is one realm entry with ``sa_source = "aaa"``: one RADIUS request per
  MN; re-registrations are served from the cache (no RADIUS request, counted as hits); the
  standby receives every SA in the sync records; after kill -9 of the Active the new Active
  serves every re-registration without a RADIUS request;
* a key from AAA that is not the MN's -> 131; an NAI AAA rejects -> discarded, the reject
  cached briefly and counted; AAA down -> the new MN's request is discarded when the
  configured timeout runs out (counted) while cached MNs are served on.

The 100,000-subscriber run of the same path is ``tests/soak/aaa_subscribers.py``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests.helpers import request, wait_for
from tests.helpers.aaa_cluster import MN_KEY, REALM, SPI, AaaCluster, nai
from tests.helpers.freeradius import FREERADIUS, RADDB
from tests.helpers.net import free_port
from tests.helpers.procs import Proc, log_tails

pytestmark = [
    pytest.mark.skipif(FREERADIUS is None, reason="freeradius is not installed (apt freeradius)"),
    pytest.mark.skipif(not RADDB.is_dir(), reason=f"{RADDB} (FreeRADIUS config) not found"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private FreeRADIUS needs root (cp -a)"),
    pytest.mark.timeout(240),
]

N = 300  # the suite's sample; the soak script runs 100,000
LIFETIME = 15  # the MNs renew at 80 %: every 12 s


def mn_stats(p: Proc) -> dict[str, int]:
    c: dict[str, int] = p.api("api/stats")["counters"]
    return c


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[AaaCluster]:
    c = AaaCluster(
        tmp_path,
        N,
        lifetime=LIFETIME,
        extra=[(f"wrongkey@{REALM}", SPI, "not-the-mn-key", None)],
    )
    try:
        yield c
    finally:
        c.close()


def test_subscribers_from_radius_through_slb_pair_and_takeover(cluster: AaaCluster) -> None:
    c = cluster
    c.start_pair()
    a, b = c.ha["a"], c.ha["b"]
    logs = log_tails(p.log for p in c.procs)
    wait_for(
        lambda: c.state(a) == "active" and c.state(b) == "standby",
        30,
        "A Active, B Standby",
        detail=logs,
    )
    c.start_path()
    mns = c.start_mns("mns", N, f"mn{{n}}@{REALM}")
    wait_for(lambda: mn_stats(mns)["registered"] >= N, 90, f"{N} registered", detail=logs)
    sa = c.subscribers(a)
    assert sa["cache"]["sa_cache_misses"] == N  # one fetch per MN
    assert sa["aaa_client"]["sa_requests"] == N and sa["aaa_client"]["accepts"] == N
    assert sa["cache"]["sa_cache_size"] == N
    assert sa["latency"]["count"] == N
    # the standby got every SA with its binding (REC_SA), without asking AAA
    wait_for(lambda: c.subscribers(b)["cache"]["sa_synced"] >= N, 30, "SAs synced", detail=logs)
    assert c.subscribers(b)["aaa_client"].get("sa_requests", 0) == 0
    # re-registrations: from the cache
    wait_for(lambda: mn_stats(mns)["renewals"] >= N, 60, "every MN renewed", detail=logs)
    hits = lambda: c.subscribers(a)["cache"]["sa_cache_hits"]  # noqa: E731
    wait_for(lambda: hits() >= N, 30, "renewals answered from the cache", detail=logs)
    sa = c.subscribers(a)
    assert sa["cache"]["sa_cache_misses"] == N and sa["aaa_client"]["sa_requests"] == N

    # kill -9 of the Active: B serves every binding and re-registration without RADIUS
    renewed = mn_stats(mns)["renewals"]
    a.proc.kill()
    a.proc.wait()
    wait_for(lambda: c.state(b) == "active", 30, "B Active", detail=logs)
    assert b.api("api/bindings?limit=1")["total"] == N
    wait_for(lambda: mn_stats(mns)["renewals"] >= renewed + N, 90, "renewals on B", detail=logs)
    hits_b = lambda: c.subscribers(b)["cache"]["sa_cache_hits"]  # noqa: E731
    wait_for(lambda: hits_b() >= N, 30, "renewals answered by B from its cache", detail=logs)
    sb = c.subscribers(b)
    assert sb["aaa_client"].get("sa_requests", 0) == 0
    assert sb["cache"]["sa_cache_misses"] == 0
    assert b.api("api/bindings?limit=1")["total"] == N


def _exchange(addr: tuple[str, int], data: bytes, timeout: float) -> RegistrationReply | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind(("127.0.0.1", 0))
        s.sendto(data, addr)
        try:
            return RegistrationReply.decode(s.recv(2048))
        except TimeoutError:
            return None


def _rrq(ha: str, who: str, low: int, key: str = MN_KEY) -> bytes:
    return request(
        ha_addr=ha, care_of="127.0.0.1", ident=ntp_identification(time.time(), low),
        lifetime=600, nai=who, key=key.encode(), spi=SPI,
    )  # fmt: skip


def test_wrong_key_reject_and_aaa_down(cluster: AaaCluster) -> None:
    c = cluster
    ha = c._add("ha", c.ha_toml(c.a_ip, None, timeout_s=2.0))
    addr = (c.a_ip, c.port)
    stats = c.subscribers
    # a key from AAA that is not the MN's: 131 (RFC 5944 §3.8.2.1 b)
    r = _exchange(addr, _rrq(c.a_ip, f"wrongkey@{REALM}", 1), 5)
    assert r is not None and r.code == 131
    # a subscriber: 0, its SA cached
    r = _exchange(addr, _rrq(c.a_ip, nai(1), 1), 5)
    assert r is not None and r.code == 0
    # an NAI FreeRADIUS rejects: discarded (no SA to answer with), cached briefly, counted
    assert _exchange(addr, _rrq(c.a_ip, f"nobody@{REALM}", 1), 1.5) is None
    wait_for(lambda: stats(ha)["cache"]["aaa_rejects"] == 1, 5, "reject counted")
    assert _exchange(addr, _rrq(c.a_ip, f"nobody@{REALM}", 2), 0.5) is None
    s = stats(ha)["cache"]
    assert s["sa_cache_negative_hits"] == 1 and s["sa_cache_negative"] == 1
    assert stats(ha)["aaa_client"]["sa_requests"] == 3  # the retry did not ask again
    bad = ha.api("api/stats")["bad_input"]
    assert bad["aaa-reject"] == 1 and bad["aaa-negative"] == 1

    # AAA down: a new MN's request is discarded once the configured timeout (2 s) runs
    # out; the cached MN is served meanwhile, every request answered
    c.radius.stop()
    t0 = time.monotonic()
    assert _exchange(addr, _rrq(c.a_ip, nai(2), 1), 0.2) is None
    served = 0
    for k in range(2, 202):
        r = _exchange(addr, _rrq(c.a_ip, nai(1), k), 2)
        assert r is not None and r.code == 0
        served += 1
    wait_for(lambda: stats(ha)["cache"]["aaa_timeouts"] >= 1, 10, "timeout counted")
    assert time.monotonic() - t0 < 2.0 + 5  # the configured timeout, plus slack for load
    assert served == 200
    assert ha.api("api/stats")["bad_input"].get("aaa-timeout", 0) >= 1
    assert stats(ha)["cache"]["sa_cache_hits"] >= 200


def test_aaa_unreachable_from_the_start(tmp_path: Path, cluster: AaaCluster) -> None:
    """A RADIUS server that never answers: the first registration is discarded after the
    configured timeout, counted, and nothing hangs (the HA keeps answering its API)."""
    c = cluster
    dead = free_port("127.0.0.1")
    ha = c._add("ha-dead", c.ha_toml(c.a_ip, None, timeout_s=1.0, radius_port=dead))
    assert _exchange((c.a_ip, c.port), _rrq(c.a_ip, nai(3), 1), 3) is None
    wait_for(lambda: c.subscribers(ha)["cache"]["aaa_timeouts"] >= 1, 10, "timeout counted")
    assert ha.api("healthz", raw=True).strip() == b"ok"
