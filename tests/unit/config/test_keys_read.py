"""Every documented key is read: for each key of the config reference (the schema), some
code outside the config package reads its value while building, starting, reloading and
stopping the nodes of configs that set every key. A key that nothing reads (documented,
accepted by ``check``, and silently ignored) fails here.

How reads are seen: the config model's dataclasses get a ``__getattribute__`` that records
``(schema table, field)`` whenever a field is read from code outside ``mobileha.config``
(and outside ``dataclasses``, whose ``replace`` copies every field). Each instance in the
config tree is mapped to its schema table first, so the SA keys of ``mobile_node[]`` and
of ``redundancy`` are told apart although both are ``SecurityAssociation`` fields.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mobileha import compose
from mobileha.config import SCHEMA, Config, loads_config
from mobileha.config import model as M
from mobileha.reload import apply_logging
from mobileha.runner import NodeRunner
from tests.helpers import free_port

# schema table -> how its keys are named on the model (SA keys live in ``.sa``)
SA_KEYS = {"spi", "key", "algorithm", "replay", "replay_tolerance"}
SA_TABLES = {
    "mobile_node[]",
    "foreign_agent[]",
    "redundancy",
    "home_agent.slb_sa[]",
    "foreign_agent.home_agent_sa[]",
    "mobile_node",
    "slb.relay_sa",
}
# table name on the model (Config field) -> schema table; nested ones by attribute path
TABLE_OF_FIELD = {
    "node": "node",
    "management": "management",
    "log": "log",
    "home_agent": "home_agent",
    "mobile_nodes": "mobile_node[]",
    "foreign_agents": "foreign_agent[]",
    "hsrp": "hsrp",
    "redundancy": "redundancy",
    "dataplane": "dataplane",
    "dfp": "dfp",
    "slb": "slb",
    "foreign_agent": "foreign_agent",
    "mobile_node": "mobile_node",
    "aaa": "aaa",
    "persistence": "persistence",
}
NESTED = {
    ("home_agent", "slb_sas"): "home_agent.slb_sa[]",
    ("hsrp", "groups"): "hsrp.groups[]",
    ("slb", "reals"): "slb.real[]",
    ("slb", "relay_sa"): "slb.relay_sa",
    ("foreign_agent", "home_agent_sas"): "foreign_agent.home_agent_sa[]",
    ("aaa", "users"): "aaa.user[]",
}
MODEL_CLASSES = [c for c in vars(M).values() if isinstance(c, type) and dataclasses.is_dataclass(c)]

KEY = "hex:00112233445566778899aabbccddeeff"

HA_FULL = f"""
[node]
role = "home-agent"
name = "ha-keys"
[management]
listen = "127.0.0.1:0"
enabled = true
[log]
level = "info"
format = "kv"
rate_limit_s = 5
[home_agent]
address = "127.0.0.1"
port = 0
ha_address = "127.0.0.101"
trusted_slb = ["127.0.0.50"]
relay_vendor_id = 9
max_lifetime = 600
replay_tolerance = 9
max_bindings = 1000
home_prefix = "10.77.0.0/24"
pool = "10.77.0.0/25"
reverse_tunnel = true
gre = true
minimal_encap = false
reverse_tunnel_required = false
simultaneous_bindings = 3
redirect_ha = "127.0.0.102"
answer_duplicates = true
[[home_agent.slb_sa]]
address = "127.0.0.50"
spi = 700
key = "{KEY}"
algorithm = "hmac-md5"
[[mobile_node]]
nai = "a@x"
home_address = "dynamic"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
replay = "nonce"
replay_tolerance = 5
lifetime = 300
[[foreign_agent]]
address = "127.0.0.20"
spi = 300
key = "{KEY}"
algorithm = "hmac-md5"
replay = "timestamp"
replay_tolerance = 5
[hsrp]
interface = "lo"
address = "127.0.0.1"
group = 3
version = 2
virtual_ip = "127.0.0.101"
name = "PAIR"
priority = 120
preempt = true
preempt_delay_s = 1
hello_ms = 100
hold_ms = 300
authentication = "md5:secret"
port = 0
multicast = "224.0.0.102"
peers = ["127.0.0.2"]
[[hsrp.groups]]
group = 4
virtual_ip = "127.0.0.103"
priority = 90
preempt = true
preempt_delay_s = 2
name = "PAIR2"
pool = "10.77.0.128/25"
[redundancy]
peer = "127.0.0.2"
port = 4340
spi = 400
key = "{KEY}"
algorithm = "hmac-md5"
replay_tolerance = 8
mode = "physical"
hhae_type = 36
chunk_type = 161
bu_type = 210
bu_ack_type = 211
bi_request_type = 212
bi_reply_type = 213
bi_ack_type = 214
retransmit_ms = 200
retries = 2
queue_max = 500
chunk_bytes = 1000
[dataplane]
backend = "memory"
tun_name = "mhakeys0"
mtu = 1400
[dfp]
listen = "127.0.0.1:0"
max_weight = 10
interval_s = 2
password = "text:dfp"
[aaa]
backend = "local"
[[aaa.user]]
nai = "a@x"
home_agent = "127.0.0.101"
home_address = "dynamic"
spi = 900
key = "{KEY}"
algorithm = "hmac-md5"
"""

FA_FULL = f"""
[node]
role = "foreign-agent"
[management]
listen = "127.0.0.1:0"
[foreign_agent]
address = "127.0.0.1"
port = 0
home_agent = "127.0.0.50"
care_of_address = "127.0.0.1"
max_lifetime = 600
max_visitors = 100
pending_timeout_s = 3
reverse_tunnel = true
gre = true
gre_key_format = "both"
challenge = true
home_agent_port = 4340
[[foreign_agent.home_agent_sa]]
address = "127.0.0.50"
spi = 300
key = "{KEY}"
algorithm = "hmac-md5"
[dataplane]
backend = "userspace"
tun_name = "mhakeys1"
mtu = 1400
visitor_iface = "lo"
[aaa]
backend = "radius"
radius_server = "127.0.0.1:1812"
radius_secret = "text:s"
radius_timeout_s = 1
radius_retries = 1
nas_identifier = "fa-keys"
"""

SLB_FULL = f"""
[node]
role = "slb"
[management]
listen = "127.0.0.1:0"
[slb]
virtual_address = "127.0.0.1"
port = 0
mode = "relay"
session_s = 20
reassign = 2
faildetect_numconns = 4
faildetect_numclients = 4
retry_s = 30
predictor = "smooth-wrr"
relay_vendor_id = 9
max_sessions = 1000
fastpath = false
[slb.relay_sa]
spi = 700
key = "{KEY}"
algorithm = "hmac-md5"
[[slb.real]]
address = "127.0.0.10"
port = 4340
weight = 5
maxconns = 100
dfp_agent = "127.0.0.10:1"
inservice = true
name = "real-a"
[dfp]
password = "text:dfp"
timeout_s = 10
retry_interval_s = 5
"""

MN_FULL = f"""
[node]
role = "mobile-node"
[management]
listen = "127.0.0.1:0"
[mobile_node]
nai = "mn{{n}}@x"
count = 2
home_address = "10.77.0.5"
home_agent = "127.0.0.50"
foreign_agent = "127.0.0.20:4340"
local_address = "127.0.0.1"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
replay = "nonce"
lifetime = 100
reverse_tunnel = true
encap = "gre"
retransmit_ms = 1000
retransmit_max_ms = 2000
renew_fraction = 0.5
aaa_key = "{KEY}"
home_agent_port = 4340
"""

HA_JOURNAL = """
[node]
role = "home-agent"
[management]
enabled = false
[home_agent]
address = "127.0.0.1"
port = 0
home_prefix = "10.78.0.0/24"
journal = "@JOURNAL@"
journal_commit_ms = 5
journal_fsync = true
advertise_interface = "lo"
advertise_interval_ms = 60000
[[mobile_node]]
nai = "@file.example"
sa_source = "file"
file = "@SUBS@"
algorithm = "hmac-md5"
[dataplane]
backend = "memory"
"""

# Keys whose value the config package itself consumes by design, so no node code reads
# the field: the loader reads the token file into management.token, and slb_trust is the
# validation policy that makes a trusted_slb without an SLB-HA SA an error.
CONSUMED_BY_THE_LOADER = {("management", "token_file"), ("home_agent", "slb_trust")}

MN_COLOCATED = f"""
[node]
role = "mobile-node"
[mobile_node]
nai = "mn@x"
home_agent = "127.0.0.50"
co_located_care_of = "127.0.0.33"
spi = 256
key = "{KEY}"
"""


def _tables(cfg: Config) -> dict[int, str]:
    """id of every dataclass instance of the config tree -> its schema table."""
    out: dict[int, str] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        table = TABLE_OF_FIELD.get(f.name)
        if table is None:
            continue
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if not dataclasses.is_dataclass(item):
                continue
            out[id(item)] = table
            sa = getattr(item, "sa", None)
            if sa is not None:
                out[id(sa)] = table
            for (parent, attr), sub in NESTED.items():
                if parent == f.name and hasattr(item, attr):
                    nested = getattr(item, attr)
                    for x in nested if isinstance(nested, tuple) else (nested,):
                        if x is not None:
                            out[id(x)] = sub
                            if getattr(x, "sa", None) is not None:
                                out[id(x.sa)] = sub
    return out


@contextmanager
def recording(tables: dict[int, str]) -> Iterator[set[tuple[str, str]]]:
    """Record (schema table, field) for every field read from outside the config package."""
    seen: set[tuple[str, str]] = set()
    saved = {c: c.__dict__.get("__getattribute__") for c in MODEL_CLASSES}
    getattribute = object.__getattribute__

    def make(cls: type) -> Any:
        fields = {f.name for f in dataclasses.fields(cls)}

        def get(self: Any, name: str) -> Any:
            if name in fields:
                caller = sys._getframe(1).f_code.co_filename
                if not (
                    ("/mobileha/config/" in caller and not caller.endswith("model.py"))
                    or caller.endswith("dataclasses.py")
                    or caller.startswith("<")
                    or caller.endswith("test_keys_read.py")
                ):
                    table = tables.get(id(self), cls.__name__)
                    seen.add((table, name))
            return getattribute(self, name)

        return get

    for c in MODEL_CLASSES:
        c.__getattribute__ = make(c)  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        for c, old in saved.items():
            if old is None:
                del c.__getattribute__  # type: ignore[method-assign]
            else:
                c.__getattribute__ = old  # type: ignore[method-assign]


async def _exercise(cfg: Config) -> None:
    """What a process does with its config: logging, build, data plane options, start with
    the management API, a reload with the same config, stop."""
    apply_logging(cfg)
    if cfg.role in ("home-agent", "foreign-agent"):
        compose.dataplane_options(cfg, "ha" if cfg.role == "home-agent" else "fa")
    if cfg.role in ("foreign-agent", "home-agent"):
        aaa = compose.aaa_backend(cfg.aaa, nas_ip="127.0.0.1")
        authorize_now = getattr(aaa, "authorize_now", None)
        for u in cfg.aaa.users if authorize_now is not None else ():
            authorize_now(u.nai)  # the local table is read at each lookup
    node = compose.build_node(cfg)
    if cfg.role == "foreign-agent" or (cfg.mobile_node is not None and cfg.mobile_node.count == 1):
        return  # built, not run (a RADIUS server and a TUN device are not needed here)
    runner = NodeRunner(cfg, node)
    await runner.start()
    try:
        result = await runner.reload(cfg)  # a reload reads the keys it applies
        assert result.ok and not result.changed, result
    finally:
        await runner.stop()


def schema_keys() -> set[tuple[str, str]]:
    out = set()
    for table, keys in SCHEMA.items():
        for key in keys:
            field = key
            out.add((table, field))
    return out


def _read(text: str) -> set[tuple[str, str]]:
    while "port = 0\n" in text:
        text = text.replace("port = 0\n", f"port = {free_port('127.0.0.1')}\n", 1)
    cfg = loads_config(text)
    with recording(_tables(cfg)) as seen:
        asyncio.run(_exercise(cfg))
    return seen


def test_every_documented_key_is_read(tmp_path: Any) -> None:
    seen: set[tuple[str, str]] = set()
    subs = tmp_path / "subscribers.txt"
    subs.write_text(f"a@file.example 300 {KEY}\n")
    journal = HA_JOURNAL.replace("@JOURNAL@", str(tmp_path / "bindings.journal")).replace(
        "@SUBS@", str(subs)
    )
    for text in (HA_FULL, FA_FULL, SLB_FULL, MN_FULL, MN_COLOCATED, journal):
        seen |= _read(text)
    # a key is read when its field is read on an instance of its table (SA keys on .sa)
    missing = sorted(
        f"{t}.{k}" for t, k in schema_keys() - CONSUMED_BY_THE_LOADER if (t, k) not in seen
    )
    assert not missing, f"documented keys that no code reads: {missing}"
