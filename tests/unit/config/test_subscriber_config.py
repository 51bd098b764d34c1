"""``[[mobile_node]]`` realm and pattern entries with their SA source (inline, aaa, file),
the subscriber file, the ``[aaa]`` SA cache keys, and what compose builds from them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mobileha.compose import home_agent_core, home_agent_security, sa_fetcher
from mobileha.config import ConfigError, config_from_dict, load_config
from mobileha.config.subscribers import read_subscriber_file
from mobileha.core.security import SOURCE_AAA, SOURCE_FILE, SOURCE_INLINE

RADIUS = {
    "backend": "radius",
    "radius_server": "127.0.0.1:1812",
    "radius_secret": "text:s",
    "sa_cache_ttl_s": 600,
    "sa_cache_size": 5000,
    "sa_negative_ttl_s": 5,
    "sa_timeout_s": 3,
    "sa_max_in_flight": 64,
}


def ha(mns: list[dict[str, Any]], aaa: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "node": {"role": "home-agent", "name": "ha"},
        "home_agent": {"address": "10.0.1.10", "home_prefix": "10.1.0.0/16"},
        "mobile_node": mns,
    }
    if aaa is not None:
        d["aaa"] = copy.deepcopy(aaa)
    return d


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        config_from_dict(data)
    return ei.value.problems


def test_realm_entries_with_each_source(tmp_path: Path) -> None:
    f = tmp_path / "subs.txt"
    f.write_text(
        "# nai spi key [home]\n"
        "gold-1@file.example 1000 hex:00112233445566778899aabbccddeeff\n"
        "gold-2@file.example 0x3e9 text:two 10.1.0.9  # static\n\n"
    )
    cfg = config_from_dict(
        ha(
            [
                {"nai": "@inline.example", "spi": 500, "key": "text:shared"},
                {"nai": "@aaa.example", "sa_source": "aaa", "algorithm": "hmac-md5"},
                {"nai": "gold-*@file.example", "sa_source": "file", "file": str(f)},
                {"nai": "mn1@example.net", "spi": 256, "key": "text:own"},
            ],
            RADIUS,
        )
    )
    sas = home_agent_security(cfg)
    e = sas.realm_of("x@INLINE.example")
    assert e is not None and e.source == SOURCE_INLINE and e.sa is not None and e.sa.spi == 500
    e = sas.realm_of("x@aaa.example")
    assert e is not None and e.source == SOURCE_AAA and e.algorithm == "hmac-md5"
    one = sas.mn("gold-1@file.example", 1000)
    two = sas.mn("gold-2@file.example", 1001)
    assert (
        one is not None
        and one.source == SOURCE_FILE
        and one.key == bytes.fromhex("00112233445566778899aabbccddeeff")
    )
    assert two is not None and two.home_address == "10.1.0.9" and two.key == b"two"
    assert sas.mn("mn1@example.net", 256) is not None
    core = home_agent_core(cfg)
    s = core.settings.subscribers
    assert (s.ttl_s, s.max_entries, s.negative_ttl_s, s.timeout_s, s.max_in_flight) == (
        600,
        5000,
        5,
        3,
        64,
    )
    assert sa_fetcher(cfg) is not None


def test_source_rules_name_the_key() -> None:
    probs = problems(
        ha(
            [
                {"nai": "@a.example"},  # inline without spi/key
                {"nai": "@b.example", "sa_source": "aaa", "spi": 300},  # aaa with spi; no [aaa]
                {"nai": "mn@c.example", "sa_source": "aaa"},  # aaa needs a realm
                {"nai": "@d.example", "sa_source": "file"},  # file without file
                {"nai": "@e.example", "spi": 300, "key": "text:k", "home_address": "10.1.0.3"},
            ]
        )
    )
    assert "mobile_node[0].spi: required with sa_source = 'inline'" in probs
    assert "mobile_node[0].key: required with sa_source = 'inline'" in probs
    assert "mobile_node[1].spi: not used with sa_source = 'aaa' (it comes from aaa)" in probs
    assert "mobile_node[1].sa_source: 'aaa' needs [aaa] with backend = 'radius'" in probs
    assert "mobile_node[2].nai: sa_source = 'aaa' needs a realm (@realm) or a pattern" in probs
    assert "mobile_node[3].file: required with sa_source = 'file'" in probs
    assert "mobile_node[4].home_address: a realm or pattern entry has dynamic home addresses" in (
        probs
    )


def test_subscriber_file_errors_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(
        "a@x.example 1000 text:k\n"
        "b@other.example 1000 text:k\n"
        "c@x.example 12 text:k\n"
        "a@x.example 1000 text:k\n"
        "d@x.example 1000\n"
        "e@x.example 1000 nope:k\n"
    )
    with pytest.raises(ConfigError) as ei:
        read_subscriber_file(f, "@x.example")
    p = ei.value.problems
    assert p[0] == f"{f}:2: b@other.example does not match @x.example"
    assert p[1].startswith(f"{f}:3: spi must be 256..")
    assert p[2] == f"{f}:4: duplicate a@x.example"
    assert p[3] == f"{f}:5: expected 'nai spi key [home_address]'"
    assert p[4].startswith(f"{f}:6: ")
    with pytest.raises(ConfigError):
        read_subscriber_file(tmp_path / "missing.txt", "@x.example")
    # through the configuration: the loader reads the file (so `mobileha check` sees it),
    # a relative path relative to the configuration file
    cfg = tmp_path / "ha.toml"
    cfg.write_text(
        '[node]\nrole = "home-agent"\n[home_agent]\naddress = "10.0.1.10"\n'
        'home_prefix = "10.1.0.0/16"\n[[mobile_node]]\nnai = "@x.example"\n'
        'sa_source = "file"\nfile = "bad.txt"\n'
    )
    with pytest.raises(ConfigError) as ei:
        load_config(cfg)
    assert ei.value.problems[0] == (
        f"mobile_node[0].file: {f}:2: b@other.example does not match @x.example"
    )


def test_reload_of_sa_sources_keeps_bindings(tmp_path: Path) -> None:
    """What a configuration reload does for the SA sources (compose.subscriber_reload):
    one ReloadSubscribers per HA address through the coordinator; bindings stay, a new
    realm entry and a new subscriber file line are served, a removed entry is not."""
    from mobileha import compose
    from mobileha.wire.auth import ntp_identification
    from mobileha.wire.mip import RegistrationReply
    from tests.helpers import request

    f = tmp_path / "subs.txt"
    f.write_text("a@file.example 1000 text:key-a\n")
    mns = [
        {"nai": "@inline.example", "spi": 500, "key": "text:shared", "algorithm": "hmac-md5"},
        {"nai": "@file.example", "sa_source": "file", "file": str(f), "algorithm": "hmac-md5"},
    ]
    node = compose.home_agent_node(config_from_dict(ha(mns)))
    cluster = node.cluster
    ha_addr = cluster.agents[0].ha_addr
    wall, now = 1_800_000_000.0, 10.0
    cluster.wall_offset = wall - now

    def register(who: str, key: bytes, spi: int, low: int) -> int | None:
        data = request(
            ha_addr=ha_addr, care_of="10.0.2.2", ident=ntp_identification(wall, low),
            nai=who, key=key, spi=spi,
        )  # fmt: skip
        out = cluster.receive_datagram(data, ("10.0.2.2", 434), (ha_addr, 434), now)
        sends = [a for a in out if hasattr(a, "payload")]
        return RegistrationReply.decode(sends[0].payload).code if sends else None

    assert register("x@inline.example", b"shared", 500, 1) == 0
    assert register("a@file.example", b"key-a", 1000, 1) == 0
    assert register("b@file.example", b"key-b", 1000, 1) is None  # not in the file yet
    core = cluster.agents[0].ha
    assert len(core.table) == 2

    f.write_text("a@file.example 1000 text:key-a\nb@file.example 1000 text:key-b\n")
    new = config_from_dict(
        ha([mns[1], {"nai": "@new.example", "spi": 600, "key": "text:n", "algorithm": "hmac-md5"}])
    )
    for ev in compose.subscriber_reload(new, cluster):
        cluster.handle_event(ev, now)
    assert len(core.table) == 2  # bindings kept
    assert register("b@file.example", b"key-b", 1000, 2) == 0
    assert register("y@new.example", b"n", 600, 2) == 0
    assert register("x@inline.example", b"shared", 500, 3) is None  # entry removed
    assert register("a@file.example", b"key-a", 1000, 3) == 0
