"""The foreign agent's RADIUS backend against a real FreeRADIUS (Debian ``freeradius``),
started here on 127.0.0.1 with a config written here and stopped afterwards.

* MN -> FA -> HA (three ``mobileha run`` processes), the FA requiring RFC 4721 challenges
  (first request: 105 with a challenge; the retry carries it): the FA authorises the NAI with
  Access-Request (User-Name, CHAP-Password/CHAP-Challenge from the RFC 4721 MN-AAA
  extension, verified by FreeRADIUS's own ``chap`` module against the user's
  Cleartext-Password), learns the HA address from ``3GPP2-Home-Agent-IP-Address`` (the MN
  asks for dynamic HA assignment, HA field 0.0.0.0) and the home address from
  ``Framed-IP-Address``; the registration succeeds.
* A wrong MN-AAA secret -> Access-Reject -> the MN gets 108 (RFC 4721).
* RADIUS down -> after timeout x tries the MN gets 78 and nothing hangs.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for
from tests.helpers.freeradius import FREERADIUS, RADDB, SECRET, FreeRadius
from tests.helpers.procs import Proc
from tests.system.test_registration_e2e import KEY, mn_counters

pytestmark = [
    pytest.mark.skipif(FREERADIUS is None, reason="freeradius is not installed (apt freeradius)"),
    pytest.mark.skipif(not RADDB.is_dir(), reason=f"{RADDB} (FreeRADIUS config) not found"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private FreeRADIUS needs root (cp -a)"),
]

AAA_KEY = "mn-aaa-secret"
GOOD_NAI = "radius1@example.net"
BAD_NAI = "radius2@example.net"
HOME = "10.77.9.9"


HA_ADDR = "127.254.77.10"  # the HA address FreeRADIUS hands out (3GPP2-Home-Agent-IP-Address)


class RadiusCluster:
    """HA on HA_ADDR and an FA whose only source of HA addresses is RADIUS."""

    def __init__(self, tmp: Path, radius_port: int, radius_timeout: float = 1.0) -> None:
        self.ha_addr, self.fa_addr = HA_ADDR, f"127.254.{random.randint(78, 250)}.20"
        self.ha_port, self.fa_port = free_port(self.ha_addr), free_port(self.fa_addr)
        self.tmp = tmp
        self.procs: list[Proc] = []
        sas = (
            f'[[mobile_node]]\nnai = "{GOOD_NAI}"\nhome_address = "{HOME}"\nspi = 256\n'
            f'key = "{KEY}"\nalgorithm = "hmac-md5"\n'
        )
        self.ha = self._add(
            "ha",
            f"""role = "home-agent"
[home_agent]
address = "{self.ha_addr}"
port = {self.ha_port}
home_prefix = "10.77.0.0/16"
[dataplane]
backend = "memory"
{sas}""",
        )
        # No foreign_agent.home_agent default: the HA address must come from RADIUS.
        self.fa = self._add(
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{self.fa_addr}"
port = {self.fa_port}
home_agent_port = {self.ha_port}
challenge = true
[dataplane]
backend = "memory"
[aaa]
backend = "radius"
radius_server = "127.0.0.1:{radius_port}"
radius_secret = "text:{SECRET}"
radius_timeout_s = {radius_timeout}
radius_retries = 1
""",
        )

    def _add(self, name: str, toml: str) -> Proc:
        p = Proc(self.tmp, name, toml)
        self.procs.append(p)
        return p

    def mn(self, name: str, nai: str, aaa_key: str) -> Proc:
        return self._add(
            name,
            f"""role = "mobile-node"
[mobile_node]
nai = "{nai}"
home_agent = "0.0.0.0"
foreign_agent = "{self.fa_addr}:{self.fa_port}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
aaa_key = "text:{aaa_key}"
""",
        )

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="module")
def radius() -> Iterator[FreeRadius]:
    r = FreeRadius(
        f'{GOOD_NAI} Cleartext-Password := "{AAA_KEY}"\n'
        f"\tFramed-IP-Address = {HOME},\n"
        f"\t3GPP2-Home-Agent-IP-Address = {HA_ADDR}\n"
    )
    try:
        yield r
    finally:
        r.stop()


def test_registration_with_ha_and_home_address_from_radius(
    tmp_path: Path, radius: FreeRadius
) -> None:
    c = _cluster_at(tmp_path, radius.port)
    try:
        p = c.mn("mn-good", GOOD_NAI, AAA_KEY)
        wait_for(lambda: mn_counters(p)["registered"] == 1, 20, "registered via RADIUS")
        (v,) = c.fa.api("api/visitors")["items"]
        assert v["home_agent"] == HA_ADDR  # from 3GPP2-Home-Agent-IP-Address
        assert v["aaa_home_address"] == HOME  # from Framed-IP-Address
        assert v["home_address"] == HOME
        counters = c.fa.api("api/stats")["counters"]
        assert counters["aaa_radius_accepts"] == 1 and counters["aaa_home_mismatch"] == 0
        (b,) = c.ha.api("api/bindings")["items"]
        assert b["home_address"] == HOME and b["nai"] == GOOD_NAI
        mine = p.api("api/mobile_nodes")["items"][0]
        assert mine["home_address"] == HOME and mine["home_agent"] == HA_ADDR
        # RFC 4721: the first request had no challenge (105 + challenge), the retry did
        assert mn_counters(p)["challenge_retries"] == 1
        assert c.fa.api("api/stats")["fa_codes"] == {"105": 1}
        log = radius.log.read_text(errors="replace")
        assert "Sent Access-Accept" in log and "CHAP-Password" in log
    finally:
        c.close()


def test_wrong_mn_aaa_secret_denied_108(tmp_path: Path, radius: FreeRadius) -> None:
    c = _cluster_at(tmp_path, radius.port)
    try:
        p = c.mn("mn-bad", GOOD_NAI, "not-the-secret")
        wait_for(lambda: mn_counters(p)["denied"] == 1, 20, "denied")
        mine = p.api("api/mobile_nodes")["items"][0]
        assert mine["state"] == "idle" and mine["last_code"] == 108
        st = c.fa.api("api/stats")
        assert st["fa_codes"] == {"105": 1, "108": 1}
        assert st["counters"]["aaa_radius_rejects"] == 1
        assert c.ha.api("api/bindings")["total"] == 0
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_radius_down_gives_timeout_code_and_nothing_hangs(tmp_path: Path) -> None:
    dead_port = free_port("127.0.0.1")  # nothing listens there
    c = _cluster_at(tmp_path, dead_port, timeout=0.5)
    try:
        t0 = time.monotonic()
        p = c.mn("mn-down", GOOD_NAI, AAA_KEY)
        wait_for(lambda: mn_counters(p)["denied"] == 1, 20, "timeout code")
        elapsed = time.monotonic() - t0
        mine = p.api("api/mobile_nodes")["items"][0]
        assert mine["last_code"] == 78
        counters = c.fa.api("api/stats")["counters"]
        # Each MN retransmission (new Identification) supersedes the lookup in flight.
        assert counters["aaa_radius_timeouts"] >= 1
        assert elapsed < 10, elapsed  # 2 tries x 0.5 s, plus process start
        # the FA is still responsive and stops promptly
        assert c.fa.api("healthz", raw=True).strip() == b"ok"
        t1 = time.monotonic()
        assert c.fa.stop() == 0 and time.monotonic() - t1 < 5
    finally:
        c.close()


def _cluster_at(tmp: Path, radius_port: int, timeout: float = 1.0) -> RadiusCluster:
    return RadiusCluster(tmp, radius_port, timeout)
