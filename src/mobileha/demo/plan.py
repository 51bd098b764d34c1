"""The demo's plan: the cluster layout (addresses, keys, one config per node) and the
figures a run produces.

Addresses are in one 127.a.b.0/24 (:func:`pick_net`), chosen from the seed so that runs do
not collide::

    MNs (.40) --- FA fa-1 (.31) --+                      +-- pair A  VIP .10  ha-a1 .11 (110)
              \\-- FA fa-2 (.32) --+--> HA-SLB VIP .50 --+            ==HSRP+sync== ha-a2 .12
                                      (relay mode, DFP)  +-- pair B  VIP .20  ha-b1 .21 (110)
                                                                     ==HSRP+sync== ha-b2 .22

Keys are derived from the seed: one MN-HA key per NAI, one FA-HA key, one HA-HA key; all
HMAC-MD5.
"""

from __future__ import annotations

import hashlib
import random
import socket
from dataclasses import dataclass, field
from typing import Any

from mobileha.config import Config, config_from_dict

MIP_PORT = 10434  # unprivileged stand-in for UDP 434
HSRP_PORT = 11985  # ... for UDP 1985
DFP_PORT = 18081
HELLO_MS, HOLD_MS = 300, 1000
MN_LIFETIME = 600
MN_SPI, FA_SPI, SYNC_SPI, SLB_SPI = 256, 300, 400, 500
PROBE_NAI = "probe@demo.example"
HOME_PREFIX = "10.200.0.0/16"


def _key(seed: int, what: str) -> bytes:
    return hashlib.md5(f"mobileha-demo:{seed}:{what}".encode()).digest()


def _hex(b: bytes) -> str:
    return "hex:" + b.hex()


@dataclass(frozen=True, slots=True)
class Member:
    """One home agent of a pair."""

    name: str
    address: str
    priority: int


@dataclass(frozen=True, slots=True)
class Pair:
    """An HSRP pair of home agents: one real of the SLB farm (its VIP)."""

    name: str  # "A", "B"
    group: int
    vip: str
    members: tuple[Member, Member]  # the first has the higher priority
    pool: str  # its dynamic home address pool


@dataclass(slots=True)
class Plan:
    """Addresses and keys of one demo run."""

    net: str  # "127.a.b"
    n_mns: int
    seed: int

    def ip(self, host: int) -> str:
        return f"{self.net}.{host}"

    @property
    def slb(self) -> str:
        return self.ip(50)

    @property
    def fas(self) -> list[str]:
        return [self.ip(31), self.ip(32)]

    @property
    def mn_local(self) -> str:
        return self.ip(40)

    @property
    def probe_local(self) -> str:
        return self.ip(41)

    @property
    def pairs(self) -> tuple[Pair, Pair]:
        return (
            Pair(
                "A",
                1,
                self.ip(10),
                (Member("ha-a1", self.ip(11), 110), Member("ha-a2", self.ip(12), 100)),
                "10.200.0.0/17",
            ),
            Pair(
                "B",
                2,
                self.ip(20),
                (Member("ha-b1", self.ip(21), 110), Member("ha-b2", self.ip(22), 100)),
                "10.200.128.0/17",
            ),
        )

    def pair(self, name: str) -> Pair:
        return next(p for p in self.pairs if p.name == name)

    def nais(self) -> list[str]:
        return [f"mn{n}@demo.example" for n in range(1, self.n_mns + 1)]

    def fa_of(self, n: int) -> str:
        """The FA of the n-th MN (0-based): the MNs alternate between the two."""
        return self.fas[n % 2]

    def mn_key(self, nai: str) -> bytes:
        return _key(self.seed, nai)

    @property
    def fa_key(self) -> bytes:
        return _key(self.seed, "fa-ha")

    @property
    def sync_key(self) -> bytes:
        return _key(self.seed, "ha-ha")

    @property
    def slb_key(self) -> bytes:
        """SLB-HA: authenticates the relay tag."""
        return _key(self.seed, "slb-ha")

    @property
    def dfp_password(self) -> bytes:
        return _key(self.seed, "dfp")

    @property
    def hsrp_key(self) -> str:
        return _key(self.seed, "hsrp").hex()


def pick_net(rng: random.Random) -> str:
    """A 127.a.b subnet whose SLB address/port is free (no other demo run there)."""
    for _ in range(50):
        net = f"127.{rng.randint(100, 254)}.{rng.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((f"{net}.50", MIP_PORT))
            except OSError:
                continue
        return net
    raise RuntimeError("no free loopback subnet for the demo")


# ---------------------------------------------------------------------------- configs


def ha_config(plan: Plan, pair_name: str, idx: int) -> Config:
    """Home agent ``idx`` (0, 1) of a pair: ``[hsrp]`` version 2 with unicast peers and
    preemption, ``[redundancy]`` with the other member, a DFP agent, the memory data plane;
    every MN (and the probe) may register with a dynamic home address from the pair's
    pool."""
    pair = plan.pair(pair_name)
    me, peer = pair.members[idx], pair.members[1 - idx]
    mns = [
        {
            "nai": nai,
            "home_address": "dynamic",
            "spi": MN_SPI,
            "key": _hex(plan.mn_key(nai)),
            "algorithm": "hmac-md5",
        }
        for nai in [*plan.nais(), PROBE_NAI]
    ]
    doc: dict[str, Any] = {
        "node": {"role": "home-agent", "name": me.name},
        "management": {"enabled": False},
        "home_agent": {
            "address": me.address,
            "port": MIP_PORT,
            "trusted_slb": [plan.slb],
            "home_prefix": HOME_PREFIX,
            "pool": pair.pool,
            "slb_sa": [
                {"address": plan.slb, "spi": SLB_SPI, "key": _hex(plan.slb_key)},
            ],
        },
        "mobile_node": mns,
        "foreign_agent": [
            {"address": fa, "spi": FA_SPI, "key": _hex(plan.fa_key), "algorithm": "hmac-md5"}
            for fa in plan.fas
        ],
        "hsrp": {
            "interface": "lo",
            "group": pair.group,
            "version": 2,
            "virtual_ip": pair.vip,
            "priority": me.priority,
            "preempt": True,
            "hello_ms": HELLO_MS,
            "hold_ms": HOLD_MS,
            "port": HSRP_PORT,
            "peers": [peer.address],
            "authentication": f"md5:{plan.hsrp_key}",
        },
        "redundancy": {
            "peer": peer.address,
            "port": MIP_PORT,
            "spi": SYNC_SPI,
            "key": _hex(plan.sync_key),
            "algorithm": "hmac-md5",
            "retransmit_ms": 100,
        },
        "dataplane": {"backend": "memory"},
        "dfp": {
            "listen": f"{me.address}:{DFP_PORT}",
            "interval_s": 1,
            "password": _hex(plan.dfp_password),
        },
    }
    return config_from_dict(doc, source=f"<demo {me.name}>")


def slb_config(plan: Plan) -> Config:
    """The HA-SLB in relay mode: one real per pair (its VIP), the DFP agent of the pair's
    first member (the cluster adds the second)."""
    reals = [
        {
            "name": f"pair-{p.name}",
            "address": p.vip,
            "port": MIP_PORT,
            "dfp_agent": f"{p.members[0].address}:{DFP_PORT}",
        }
        for p in plan.pairs
    ]
    doc = {
        "node": {"role": "slb", "name": "ha-slb"},
        "management": {"enabled": False},
        "slb": {
            "virtual_address": plan.slb,
            "port": MIP_PORT,
            "mode": "relay",
            "real": reals,
            "relay_sa": {"spi": SLB_SPI, "key": _hex(plan.slb_key)},
        },
        "dfp": {"retry_interval_s": 1, "password": _hex(plan.dfp_password)},
    }
    return config_from_dict(doc, source="<demo slb>")


def fa_config(plan: Plan, idx: int, nais: list[str]) -> Config:
    """Foreign agent ``idx``: its local AAA table assigns the SLB's virtual address as the
    home agent of ``nais`` (RFC 4433); FA-HA SAs with the SLB and both VIPs."""
    addr = plan.fas[idx]
    doc = {
        "node": {"role": "foreign-agent", "name": f"fa-{idx + 1}"},
        "management": {"enabled": False},
        "foreign_agent": {
            "address": addr,
            "port": MIP_PORT,
            "home_agent": plan.slb,
            "home_agent_port": MIP_PORT,
            "home_agent_sa": [
                {"address": a, "spi": FA_SPI, "key": _hex(plan.fa_key), "algorithm": "hmac-md5"}
                for a in [plan.slb, *(p.vip for p in plan.pairs)]
            ],
        },
        "dataplane": {"backend": "memory"},
        "aaa": {"backend": "local", "user": [{"nai": nai, "home_agent": plan.slb} for nai in nais]},
    }
    return config_from_dict(doc, source=f"<demo fa-{idx + 1}>")


# ---------------------------------------------------------------------------- figures


@dataclass(slots=True)
class Figures:
    """What a run measures: the summary table and, with ``--json``, one JSON object with
    these keys (None: the run did not get that far)."""

    # the run
    net: str | None = None
    mns: int = 0
    seed: int = 0
    loop: str = "asyncio"
    euid: int = 0
    cap_eff: str | None = None  # effective capability mask (hex, /proc/self/status)
    duration_s: float | None = None
    ok: bool = False
    problems: list[str] = field(default_factory=list)
    # registrations through FA -> SLB -> real HA
    registrations_ok: int = 0
    registrations_failed: int = 0
    registration_s: float | None = None
    slb_forwarded: int | None = None
    fa_replies_direct_from_ha: int | None = None
    slb_split: dict[str, int] = field(default_factory=dict)  # real name -> sessions
    slb_split_by_address: dict[str, int] = field(default_factory=dict)
    # the failover of pair A
    crashed: str | None = None
    new_active: str | None = None
    probe_requests: int | None = None
    hsrp_takeover_ms: float | None = None
    failover_ms: float | None = None
    # the crashed Active's bindings on the new Active
    bindings_before: int = 0
    bindings_after: int = 0
    bindings_lost: int | None = None
    bindings_missing: int | None = None
    bindings_mismatched: int | None = None
    bindings_forwarding: int | None = None
    bindings_final_new_active: int | None = None
    # every MN registers again after the takeover
    reregistrations_ok: int | None = None
    reregistrations_failed: int | None = None
    reregistrations_pair_a: int | None = None
    reregistrations_pair_a_ok: int | None = None
    reregistrations_133: int | None = None


__all__ = [
    "DFP_PORT",
    "HELLO_MS",
    "HOLD_MS",
    "HSRP_PORT",
    "MIP_PORT",
    "MN_LIFETIME",
    "MN_SPI",
    "PROBE_NAI",
    "Figures",
    "Member",
    "Pair",
    "Plan",
    "fa_config",
    "ha_config",
    "pick_net",
    "slb_config",
]
