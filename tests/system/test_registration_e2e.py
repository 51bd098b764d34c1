"""MN -> FA -> HA with three ``mobileha run`` processes on 127.0.x.y (unique addresses and
ports, configs written here): static and dynamic home addresses, FA-HA authentication and
the GRE key on the way, renewal, deregistration on SIGTERM, and 1,000 mobile nodes
registering at once with zero failures. State is read from each node's management API."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_for
from tests.helpers.procs import Proc

KEY = "hex:000102030405060708090a0b0c0d0e0f"
FAHA_KEY = "text:fa-ha-secret"


class Cluster:
    """A home agent and a foreign agent; mobile-node processes are added per test."""

    def __init__(self, tmp: Path, n_sas: int = 4, max_lifetime: int = 3600) -> None:
        net = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
        self.tmp = tmp
        self.ha_addr = f"{net}.10"
        self.fa_addr = f"{net}.20"
        self.ha_port = free_port(self.ha_addr)
        self.fa_port = free_port(self.fa_addr)
        self.procs: list[Proc] = []
        mns = "".join(
            f'[[mobile_node]]\nnai = "mn{i}@example.net"\nspi = 256\nkey = "{KEY}"\n'
            f'algorithm = "hmac-md5"\n'
            for i in range(1, n_sas + 1)
        )
        mns += (
            f'[[mobile_node]]\nnai = "static1@example.net"\nhome_address = "10.77.3.5"\n'
            f'spi = 256\nkey = "{KEY}"\nalgorithm = "hmac-md5"\n'
        )
        self.ha = self.add(
            "ha",
            f"""role = "home-agent"
[home_agent]
address = "{self.ha_addr}"
port = {self.ha_port}
home_prefix = "10.77.0.0/16"
max_lifetime = {max_lifetime}
[dataplane]
backend = "memory"
[[foreign_agent]]
address = "{self.fa_addr}"
spi = 300
key = "{FAHA_KEY}"
{mns}""",
        )
        self.fa = self.add(
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{self.fa_addr}"
port = {self.fa_port}
home_agent = "{self.ha_addr}"
home_agent_port = {self.ha_port}
gre_key_format = "both"
[[foreign_agent.home_agent_sa]]
address = "{self.ha_addr}"
spi = 300
key = "{FAHA_KEY}"
[dataplane]
backend = "memory"
""",
        )

    def add(self, name: str, toml: str) -> Proc:
        p = Proc(self.tmp, name, toml)
        self.procs.append(p)
        return p

    def mn(self, name: str, nai: str, count: int = 1, **kw: object) -> Proc:
        extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in kw.items())
        return self.add(
            name,
            f"""role = "mobile-node"
[mobile_node]
nai = "{nai}"
count = {count}
home_agent = "{self.ha_addr}"
foreign_agent = "{self.fa_addr}:{self.fa_port}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
{extra}
""",
        )

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def mn_counters(p: Proc) -> dict[str, int]:
    c: dict[str, int] = p.api("api/stats")["counters"]
    return c


def bindings(c: Cluster) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = c.ha.api("api/bindings?limit=1000")["items"]
    return items


def test_static_and_dynamic_home_address(cluster: Cluster) -> None:
    dyn = cluster.mn("mn-dyn", "mn1@example.net")
    sta = cluster.mn("mn-static", "static1@example.net", home_address="10.77.3.5")
    for p in (dyn, sta):
        wait_for(lambda p=p: mn_counters(p)["registered"] == 1, 15, f"{p.name} registered")  # type: ignore[misc]
    b = {x["nai"]: x for x in bindings(cluster)}
    assert b["static1@example.net"]["home_address"] == "10.77.3.5"
    hoa = b["mn1@example.net"]["home_address"]
    assert hoa.startswith("10.77.") and hoa != "0.0.0.0"
    for x in b.values():
        assert x["care_of"] == cluster.fa_addr
        assert x["src_addr"] == cluster.fa_addr
        assert x["encap"] == "gre" and x["gre_key"]  # FA's GRE key reached the HA
    mine = dyn.api("api/mobile_nodes")["items"][0]
    assert mine["home_address"] == hoa and mine["state"] == "registered"
    visitors = {v["nai"]: v for v in cluster.fa.api("api/visitors")["items"]}
    assert visitors["mn1@example.net"]["home_address"] == hoa
    assert visitors["static1@example.net"]["home_agent"] == cluster.ha_addr
    fa_stats = cluster.fa.api("api/stats")
    assert fa_stats["reply_codes"].get("0") == 2 and not fa_stats["fa_codes"]


def test_renewal_then_deregistration_on_stop(cluster: Cluster) -> None:
    p = cluster.mn("mn-renew", "mn2@example.net", lifetime=4, renew_fraction=0.5)
    wait_for(lambda: mn_counters(p)["registered"] == 1, 15, "registered")
    wait_for(lambda: mn_counters(p)["renewals"] >= 2, 10, "two renewals")
    c = mn_counters(p)
    assert c["registered"] == 1 and c["expired"] == 0 and c["denied"] == 0
    (b,) = [x for x in bindings(cluster) if x["nai"] == "mn2@example.net"]
    assert b["lifetime_granted"] == 4 and b["lifetime_remaining"] <= 5
    # past the first lifetime: the binding is still there thanks to the renewals
    time.sleep(1.0)
    assert any(x["nai"] == "mn2@example.net" for x in bindings(cluster))
    assert p.stop() == 0  # SIGTERM -> deregistration of every MN
    wait_for(lambda: not bindings(cluster), 5, "HA binding removed")
    assert cluster.fa.api("api/visitors")["total"] == 0
    assert cluster.fa.api("api/stats")["counters"]["deregistered"] == 1


@pytest.mark.timeout(120)
def test_1000_mobile_nodes_at_once(tmp_path: Path) -> None:
    c = Cluster(tmp_path, n_sas=1000)
    try:
        t0 = time.monotonic()
        p = c.mn("mn-fleet", "mn{n}@example.net", count=1000, lifetime=600)
        wait_for(lambda: mn_counters(p)["registered"] == 1000, 60, "1,000 registered")
        elapsed = time.monotonic() - t0
        cnt = mn_counters(p)
        assert cnt["denied"] == 0 and cnt["state_idle"] == 0
        assert c.ha.api("api/bindings?limit=1")["total"] == 1000
        assert c.fa.api("api/visitors?limit=1")["total"] == 1000
        fa_stats = c.fa.api("api/stats")
        assert not fa_stats["fa_codes"], fa_stats  # no 78 / 66 / ... from the FA
        print(
            f"1000 MNs registered via FA in {elapsed:.2f}s "
            f"(incl. process start), retransmissions={cnt['retransmissions']}"
        )
        assert p.stop() == 0
        wait_for(lambda: c.ha.api("api/bindings?limit=1")["total"] == 0, 20, "all deregistered")
    finally:
        c.close()


def test_through_ha_slb_reply_from_real_ha_then_direct(tmp_path: Path) -> None:
    """MN -> FA -> HA-SLB (relay mode, VIP) -> one of two real HAs, which answers the FA
    directly; renewals and the deregistration then go straight to that real HA."""
    net = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
    vip, fa_addr = f"{net}.100", f"{net}.20"
    reals = [f"{net}.11", f"{net}.12"]
    ports = {a: free_port(a) for a in [vip, fa_addr, *reals]}
    procs: list[Proc] = []
    n = 20
    try:
        sas = "".join(
            f'[[mobile_node]]\nnai = "mn{i}@example.net"\nspi = 256\nkey = "{KEY}"\n'
            f'algorithm = "hmac-md5"\n'
            for i in range(1, n + 1)
        )
        has = []
        for k, a in enumerate(reals, 1):
            has.append(
                Proc(
                    tmp_path,
                    f"ha{k}",
                    f"""role = "home-agent"
[home_agent]
address = "{a}"
port = {ports[a]}
home_prefix = "10.77.0.0/16"
pool = "10.77.{k}.0/24"
trusted_slb = ["{vip}"]
[[home_agent.slb_sa]]
address = "{vip}"
spi = 500
key = "text:e2e-slb-ha-key"
[dataplane]
backend = "memory"
[[foreign_agent]]
address = "{fa_addr}"
spi = 300
key = "{FAHA_KEY}"
{sas}""",
                )
            )
        procs += has
        reals_toml = "".join(
            f'[[slb.real]]\naddress = "{a}"\nport = {ports[a]}\nweight = 1\n' for a in reals
        )
        slb = Proc(
            tmp_path,
            "slb",
            f"""role = "slb"
[slb]
virtual_address = "{vip}"
port = {ports[vip]}
mode = "relay"
[slb.relay_sa]
spi = 500
key = "text:e2e-slb-ha-key"
{reals_toml}""",
        )
        procs.append(slb)
        fa = Proc(
            tmp_path,
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{fa_addr}"
port = {ports[fa_addr]}
home_agent = "{vip}"
home_agent_port = {ports[vip]}
[[foreign_agent.home_agent_sa]]
address = "{vip}"
spi = 300
key = "{FAHA_KEY}"
[dataplane]
backend = "memory"
""",
        )
        procs.append(fa)
        mn = Proc(
            tmp_path,
            "mn",
            f"""role = "mobile-node"
[mobile_node]
nai = "mn{{n}}@example.net"
count = {n}
home_agent = "{vip}"
foreign_agent = "{fa_addr}:{ports[fa_addr]}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
lifetime = 4
renew_fraction = 0.5
""",
        )
        procs.append(mn)
        wait_for(lambda: mn_counters(mn)["registered"] == n, 20, "registered through the SLB")
        per_ha = [h.api("api/bindings?limit=1")["total"] for h in has]
        assert sum(per_ha) == n and all(per_ha), per_ha  # spread over both reals
        visitors = fa.api("api/visitors?limit=100")["items"]
        assert {v["home_agent"] for v in visitors} == set(reals)
        assert all(v["target"] == vip for v in visitors)
        assert fa.api("api/stats")["counters"]["replies_other_source"] >= n
        slb_before = slb.api("api/slb")["forwarded"]
        wait_for(lambda: mn_counters(mn)["renewals"] >= 2 * n, 10, "renewals")
        assert mn_counters(mn)["registered"] == n
        assert slb.api("api/slb")["forwarded"] == slb_before  # renewals bypass the SLB
        assert mn.stop() == 0  # deregistrations, straight to the real HAs
        wait_for(
            lambda: sum(h.api("api/bindings?limit=1")["total"] for h in has) == 0,
            10,
            "deregistered at the real HAs",
        )
        assert slb.api("api/slb")["forwarded"] == slb_before
    finally:
        for p in reversed(procs):
            p.stop()


def test_colocated_and_nonce_resync(tmp_path: Path) -> None:
    """Co-located care-of address (D flag, straight to the HA) and the nonce replay method:
    the first request carries no valid nonce, the HA answers 133 with one, the MN retries."""
    net = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}"
    ha_addr, coa = f"{net}.10", f"{net}.30"
    ha_port = free_port(ha_addr)
    procs: list[Proc] = []
    try:
        procs.append(
            Proc(
                tmp_path,
                "ha",
                f"""role = "home-agent"
[home_agent]
address = "{ha_addr}"
port = {ha_port}
home_prefix = "10.77.0.0/16"
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "colo@example.net"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
[[mobile_node]]
nai = "nonce@example.net"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
replay = "nonce"
""",
            )
        )
        ha = procs[0]
        common = f"""home_agent = "{ha_addr}"
home_agent_port = {ha_port}
co_located_care_of = "{coa}"
local_address = "{coa}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
"""
        colo = Proc(
            tmp_path,
            "mn-colo",
            f'role = "mobile-node"\n[mobile_node]\nnai = "colo@example.net"\n{common}',
        )
        procs.append(colo)
        nonce = Proc(
            tmp_path,
            "mn-nonce",
            f'role = "mobile-node"\n[mobile_node]\nnai = "nonce@example.net"\n'
            f'replay = "nonce"\nlifetime = 4\nrenew_fraction = 0.5\n{common}',
        )
        procs.append(nonce)
        for p in (colo, nonce):
            wait_for(lambda p=p: mn_counters(p)["registered"] == 1, 15, p.name)  # type: ignore[misc]
        b = {x["nai"]: x for x in ha.api("api/bindings")["items"]}
        assert b["colo@example.net"]["care_of"] == coa
        assert b["colo@example.net"]["flags_text"][2] == "D"
        c = mn_counters(nonce)
        assert c["resync_nonce"] >= 1 and c["denied"] == 0
        wait_for(lambda: mn_counters(nonce)["renewals"] >= 1, 10, "nonce renewal")
        wait_for(lambda: mn_counters(nonce)["accepted"] >= 2, 10, "renewal accepted")
        assert mn_counters(nonce)["resync_nonce"] == c["resync_nonce"]  # nonce carried on
    finally:
        for p in reversed(procs):
            p.stop()
