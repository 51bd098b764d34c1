"""Subscribers from AAA through the whole path, as real processes on loopback: mobile nodes
(one fleet process) -> foreign agent -> HA-SLB (relay) -> an HSRP home agent pair with
binding sync, whose only ``[[mobile_node]]`` is one realm entry with ``sa_source = "aaa"``;
FreeRADIUS holds the subscribers in SQLite (rlm_sql). Used by the system test (a few
hundred subscribers) and by ``tests/soak/aaa_subscribers.py`` (100,000)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers.freeradius import SECRET, FreeRadius, subscriber_db
from tests.helpers.net import free_port
from tests.helpers.procs import Proc

REALM = "aaa.example"
MN_KEY = "mn-ha-key-0123456789"  # what FreeRADIUS hands out for the realm's subscribers
SPI = 1000
RELAY_KEY = "5a" * 16  # the SLB-HA SA of the relay tag
SYNC_KEY = "00112233445566778899aabbccddeeff"


def nai(i: int, fleet: int = 0) -> str:
    """Subscriber ``i`` (1..) of MN fleet process ``fleet``."""
    return f"mn{i}@{REALM}" if fleet == 0 else f"f{fleet}-mn{i}@{REALM}"


def nai_template(fleet: int) -> str:
    """The ``[mobile_node] nai`` of fleet ``fleet`` (``{n}`` = 1..count)."""
    return nai(0, fleet).replace("mn0@", "mn{n}@")


class AaaCluster:
    """``n`` subscribers ``mn1..mn<n>@aaa.example`` in FreeRADIUS's SQLite database (and
    ``extra`` more rows: (nai, spi, key, home address)); the processes start with
    :meth:`start_pair` / :meth:`start_path` / :meth:`start_mns`."""

    def __init__(
        self,
        tmp: Path,
        n: int,
        *,
        extra: list[tuple[str, int, str, str | None]] | None = None,
        lifetime: int = 30,
        radius_debug: bool = False,
        hold_ms: int = 1000,
        fleets: int = 1,
    ) -> None:
        self.tmp = tmp
        self.n = n
        self.lifetime = lifetime
        self.procs: list[Proc] = []
        net = f"127.{random.randint(100, 200)}.{random.randint(1, 250)}"
        self.a_ip, self.b_ip = f"{net}.11", f"{net}.12"
        self.vip, self.slb_ip, self.fa_ip, self.mn_ip = (
            f"{net}.100", f"{net}.50", f"{net}.20", f"{net}.30",
        )  # fmt: skip
        self.port = free_port(self.a_ip)
        self.hsrp_port = free_port(self.a_ip)
        dbdir = Path(tempfile.mkdtemp(prefix="mobileha-subs-", dir="/tmp"))
        dbdir.chmod(0o755)
        self.db = dbdir / "subscribers.db"
        self.fleets = fleets
        per = -(-n // fleets)
        self.per_fleet = [min(per, n - f * per) for f in range(fleets)]
        rows = (
            (nai(i, f), SPI, MN_KEY, None)
            for f, count in enumerate(self.per_fleet)
            for i in range(1, count + 1)
        )
        subscriber_db(self.db, [*rows, *(extra or [])])
        self.radius = FreeRadius(db=self.db, debug=radius_debug)
        self.hold_ms = hold_ms
        self.ha: dict[str, Proc] = {}
        self.slb: Proc | None = None
        self.fa: Proc | None = None

    # -- configurations --

    def ha_toml(
        self, me: str, peer: str | None, prio: int = 100, timeout_s: float = 5.0,
        radius_port: int | None = None,
    ) -> str:  # fmt: skip
        """A home agent with the realm entry; ``peer`` None: standalone (no HSRP, no sync)."""
        port = self.radius.port if radius_port is None else radius_port
        aaa = f"""[dataplane]
backend = "memory"
[aaa]
backend = "radius"
radius_server = "127.0.0.1:{port}"
radius_secret = "text:{SECRET}"
radius_timeout_s = 0.5
radius_retries = 1
sa_timeout_s = {timeout_s}
sa_negative_ttl_s = 30
sa_max_in_flight = 256
[[mobile_node]]
nai = "@{REALM}"
sa_source = "aaa"
algorithm = "hmac-md5"
"""
        ha = f"""role = "home-agent"
[home_agent]
address = "{me}"
port = {self.port}
home_prefix = "10.96.0.0/14"
trusted_slb = ["{self.slb_ip}"]
[[home_agent.slb_sa]]
address = "{self.slb_ip}"
spi = 500
key = "hex:{RELAY_KEY}"
algorithm = "hmac-md5"
"""
        if peer is None:
            return ha + aaa
        return (
            ha
            + f"""[hsrp]
interface = "lo"
group = 9
version = 2
virtual_ip = "{self.vip}"
priority = {prio}
preempt = false
hello_ms = {self.hold_ms // 3}
hold_ms = {self.hold_ms}
authentication = "md5:aaa-pair-hsrp"
port = {self.hsrp_port}
peers = ["{peer}"]
[redundancy]
peer = "{peer}"
port = {self.port}
spi = 400
key = "hex:{SYNC_KEY}"
"""
            + aaa
        )

    def start_pair(self) -> None:
        """A (priority 110) first, then B (100): A becomes Active."""
        self.ha["a"] = self._add("ha-a", self.ha_toml(self.a_ip, self.b_ip, 110))
        self.ha["b"] = self._add("ha-b", self.ha_toml(self.b_ip, self.a_ip, 100))

    def start_path(self) -> None:
        """The HA-SLB in relay mode in front of the pair's VIP, and the foreign agent."""
        self.slb = self._add(
            "slb",
            f"""role = "slb"
[slb]
virtual_address = "{self.slb_ip}"
port = {self.port}
mode = "relay"
[slb.relay_sa]
spi = 500
key = "hex:{RELAY_KEY}"
algorithm = "hmac-md5"
[[slb.real]]
name = "pair"
address = "{self.vip}"
port = {self.port}
""",
        )
        self.fa = self._add(
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{self.fa_ip}"
port = {self.port}
home_agent = "{self.slb_ip}"
home_agent_port = {self.port}
real_home_agents = ["{self.vip}", "{self.a_ip}", "{self.b_ip}"]
[dataplane]
backend = "memory"
""",
        )

    def start_fleets(self, started: Any = None, retransmit_ms: int | None = None) -> list[Proc]:
        """Every subscriber's MN, ``fleets`` processes (one local address each), one after
        the other; ``started(proc, count)`` is called after each (e.g. to wait until its
        MNs are registered: a loaded machine is not offered every first registration at
        once)."""
        net = self.mn_ip.rsplit(".", 1)[0]
        out = []
        for f, count in enumerate(self.per_fleet):
            p = self.start_mns(
                f"mns{f}", count, nai_template(f), local=f"{net}.{30 + f % 200}",
                retransmit_ms=retransmit_ms,
            )  # fmt: skip
            out.append(p)
            if started is not None:
                started(p, count)
        return out

    def start_mns(
        self, name: str, count: int, nai_tmpl: str, key: str = MN_KEY, local: str | None = None,
        retransmit_ms: int | None = None,
    ) -> Proc:  # fmt: skip
        extra = f"retransmit_ms = {retransmit_ms}\n" if retransmit_ms else ""
        return self._add(
            name,
            f"""role = "mobile-node"
[mobile_node]
nai = "{nai_tmpl}"
count = {count}
home_agent = "{self.slb_ip}"
foreign_agent = "{self.fa_ip}:{self.port}"
local_address = "{local or self.mn_ip}"
spi = {SPI}
key = "text:{key}"
algorithm = "hmac-md5"
lifetime = {self.lifetime}
{extra}""",
            ready_s=60 + count / 100,
        )

    def _add(self, name: str, toml: str, ready_s: float = 20) -> Proc:
        p = Proc(self.tmp, name, toml, ready_s)
        self.procs.append(p)
        return p

    # -- reading --

    @staticmethod
    def subscribers(p: Proc) -> dict[str, Any]:
        v: dict[str, Any] = p.api("api/subscribers")
        return v

    @staticmethod
    def state(p: Proc) -> str:
        try:
            v = p.api("api/standby")
        except OSError:
            return "?"
        groups = v["groups"] if isinstance(v, dict) else v
        return str(groups[0]["state"]).lower()

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.proc.poll() is None:
                p.stop()
        self.radius.stop()
        import shutil

        shutil.rmtree(self.db.parent, ignore_errors=True)
