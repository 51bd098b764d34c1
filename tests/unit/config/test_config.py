"""Config model: examples pass `mobileha check`, bad keys/types/values are named, defaults."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

import mobileha.config as config
from mobileha.config import ConfigError, config_from_dict, load_config, loads_config

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.toml"))

HA_MIN: dict[str, Any] = {
    "node": {"role": "home-agent", "name": "ha"},
    "home_agent": {"address": "10.0.1.10", "home_prefix": "10.1.0.0/16"},
}


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        config_from_dict(data)
    return ei.value.problems


def test_examples_exist_for_every_role() -> None:
    roles = {load_config(p).role for p in EXAMPLE_FILES}
    assert roles == set(config.ROLES)
    assert (EXAMPLES / "mobileha@.service").exists()


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_passes_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --no-host: the examples name interfaces of their own hosts (eth0)
    assert config.main(["--no-host", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK role=")
    assert out.count("\n") == 1


def test_cli_check_via_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from mobileha import cli

    assert cli.main(["check", "--no-host", *map(str, EXAMPLE_FILES)]) == 0
    assert capsys.readouterr().out.count(": OK ") == len(EXAMPLE_FILES)


def test_home_agent_example_values() -> None:
    cfg = load_config(EXAMPLES / "home-agent-a1.toml")
    assert cfg.home_agent is not None and cfg.hsrp is not None and cfg.redundancy is not None
    assert cfg.home_agent.ha_address == "10.0.1.100" == cfg.hsrp.virtual_ip
    assert cfg.mobile_nodes[0].sa.key == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert cfg.mobile_nodes[0].sa.algorithm == "hmac-md5"
    assert cfg.mobile_nodes[0].dynamic
    mn2 = cfg.mobile_nodes[1]
    assert mn2.sa.key == b"mn2-secret" and mn2.sa.algorithm == "md5-prefix-suffix"
    assert mn2.sa.replay == "timestamp" and mn2.sa.replay_tolerance == 7
    assert cfg.foreign_agents[0].address == "10.0.2.2"
    assert cfg.home_agent.slb_sas[0].sa.spi == 500
    assert cfg.dfp is not None and cfg.dfp.listen == ("10.0.1.10", 8081)
    assert cfg.management.listen == ("127.0.0.1", 8434)
    assert "00112233" not in repr(cfg)  # keys never appear in reprs / logs


def test_cisco_defaults() -> None:
    cfg = config_from_dict(
        {
            **HA_MIN,
            "hsrp": {"virtual_ip": "10.0.1.100", "authentication": "text:cisco"},
            "redundancy": {"peer": "10.0.1.11", "spi": 400, "key": "text:k"},
        }
    )
    h = cfg.hsrp
    assert h is not None
    assert (h.priority, h.preempt, h.hello_ms, h.hold_ms) == (100, False, 3000, 10000)
    assert h.authentication == config.HsrpAuth("text", b"cisco")  # given: no implicit one
    assert h.multicast == "224.0.0.2" and h.port == 1985 and h.address == "10.0.1.10"
    ha = cfg.home_agent
    assert ha is not None
    assert (ha.max_lifetime, ha.replay_tolerance, ha.ha_address) == (36000, 7, "10.0.1.100")
    assert cfg.redundancy is not None
    assert cfg.redundancy.sa.algorithm == "md5-prefix-suffix"
    slb = config_from_dict(
        {
            "node": {"role": "slb"},
            "slb": {"virtual_address": "10.0.0.100", "real": [{"address": "10.0.1.100"}]},
        }
    ).slb
    assert slb is not None
    r = slb.reals[0]
    assert (r.weight, r.port, r.name) == (8, 434, "10.0.1.100")
    assert (slb.reassign, slb.faildetect_numconns, slb.faildetect_numclients) == (3, 8, 8)
    assert (slb.retry_s, slb.session_s, slb.mode, slb.predictor) == (60, 10, "directed", "ios-wrr")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        # unknown keys (typos) at every level
        (lambda d: d["home_agent"].update(max_lifetme=5), "home_agent.max_lifetme: unknown key"),
        (lambda d: d.update(hrsp={}), "hrsp: unknown section"),
        (lambda d: d["node"].update(colour="red"), "node.colour: unknown key"),
        # wrong types
        (lambda d: d["home_agent"].update(port="434"), "home_agent.port: expected integer"),
        (lambda d: d["home_agent"].update(reverse_tunnel=1), "home_agent.reverse_tunnel:"),
        (lambda d: d["home_agent"].update(max_bindings=True), "home_agent.max_bindings:"),
        (lambda d: d.update(hsrp=[]), "hsrp: expected a table"),
        # bad values
        (lambda d: d["home_agent"].update(address="10.0.1.300"), "home_agent.address: expected"),
        (lambda d: d["home_agent"].update(max_lifetime=0), "home_agent.max_lifetime: expected"),
        (lambda d: d["home_agent"].update(home_prefix="10.1.0.1/16"), "home_agent.home_prefix:"),
        (lambda d: d["home_agent"].update(pool="10.2.0.0/24"), "home_agent.pool: must be inside"),
        (lambda d: d["node"].update(role="router"), "node.role: expected one of"),
        (lambda d: d["home_agent"].pop("address"), "home_agent.address: required key is missing"),
    ],
)
def test_bad_home_agent_values_name_the_key(mutate: Any, expected: str) -> None:
    data = copy.deepcopy(HA_MIN)
    mutate(data)
    probs = problems_of(data)
    assert any(p.startswith(expected) for p in probs), probs


def test_hsrp_rules() -> None:
    base = copy.deepcopy(HA_MIN)
    base["hsrp"] = {"virtual_ip": "10.0.1.100"}
    (missing,) = [p for p in problems_of(base) if p.startswith("hsrp.authentication")]
    assert "md5:<key-string>" in missing and "text:cisco" in missing
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "hello_ms": 3000, "hold_ms": 3000}
    base["hsrp"]["authentication"] = "md5:k"  # version 1 with Cisco's MD5 TLV is fine
    assert "hsrp.hold_ms: must be greater than hsrp.hello_ms" in problems_of(base)
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "hello_ms": 300, "hold_ms": 1000}
    assert any(p.startswith("hsrp.hello_ms: must be whole seconds") for p in problems_of(base))
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "group": 300}
    assert any(p.startswith("hsrp.group:") for p in problems_of(base))
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "authentication": "text:123456789"}
    assert any(p.startswith("hsrp.authentication:") for p in problems_of(base))
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "version": 2, "hello_ms": 300, "hold_ms": 1000}
    base["hsrp"]["authentication"] = "md5:secret"
    cfg = config_from_dict(base)
    assert cfg.hsrp is not None and cfg.hsrp.multicast == "224.0.0.102"
    assert cfg.hsrp.authentication.kind == "md5"


def test_sync_type_codes_are_configurable_and_checked() -> None:
    from mobileha import compose
    from mobileha.wire.sync import MsgKind

    base = copy.deepcopy(HA_MIN)
    base["hsrp"] = {"virtual_ip": "10.0.1.100", "authentication": "md5:k"}
    base["redundancy"] = {"peer": "10.0.1.11", "spi": 400, "key": "text:k", "bu_type": 210,
                          "bi_ack_type": 214, "chunk_type": 170, "hhae_type": 36}  # fmt: skip
    types = compose.sync_config(config_from_dict(base)).types
    assert (types.bu, types.bu_ack, types.bi_ack, types.hhae, types.chunk) == (
        210, 201, 214, 36, 170)  # fmt: skip
    assert types.registry[210] is MsgKind.BU and 200 not in types.registry
    base["redundancy"].update(bu_ack_type=210, bi_reply_type=3, chunk_type=170, hhae_type=170)
    probs = problems_of(base)
    assert "redundancy.bu_ack_type: same type code as redundancy.bu_type" in probs
    assert any(p.startswith("redundancy.bi_reply_type: must not be a registration") for p in probs)
    assert "redundancy.chunk_type: must differ from redundancy.hhae_type" in probs


def test_slb_real_errors_use_indexes() -> None:
    data = {
        "node": {"role": "slb"},
        "slb": {
            "virtual_address": "10.0.0.100",
            "real": [{"address": "10.0.1.100"}, {"address": "10.0.1.101", "weight": 70000}],
        },
    }
    assert problems_of(data) == ["slb.real[1].weight: expected integer 0..65535, got 70000"]
    data["slb"]["real"][1] = {"address": "10.0.1.100"}  # type: ignore[index]
    assert problems_of(data) == ["slb.real[1].address: duplicate of slb.real[0]"]


def test_all_problems_collected_not_just_the_first() -> None:
    text = """
[node]
role = "home-agent"
[home_agent]
address = "x"
port = 0
[[mobile_node]]
spi = 12
key = "plain"
[[foreign_agent]]
address = "10.0.2.2"
spi = 300
key = "hex:zz"
[hsrp]
virtual_ip = "10.0.1.100"
hello_ms = 12000
"""
    with pytest.raises(ConfigError) as ei:
        loads_config(text)
    keys = [p.split(":", 1)[0] for p in ei.value.problems]
    for k in (
        "home_agent.address",
        "home_agent.port",
        "mobile_node[0].spi",
        "mobile_node[0].key",
        "mobile_node[0].nai",
        "foreign_agent[0].key",
        "hsrp.hold_ms",
    ):
        assert k in keys, ei.value.problems


def test_role_decides_table_vs_array() -> None:
    # [[mobile_node]] in a mobile-node config and [mobile_node] in a home-agent config
    probs = problems_of({"node": {"role": "mobile-node"}, "mobile_node": [{"nai": "a"}]})
    assert probs[0].startswith("mobile_node: a mobile-node config has one [mobile_node] table")
    probs = problems_of({**HA_MIN, "mobile_node": {"nai": "a", "spi": 256, "key": "text:k"}})
    assert any(p.startswith("mobile_node: expected an array of tables") for p in probs)
    probs = problems_of({"node": {"role": "foreign-agent"}, "foreign_agent": [{}]})
    assert probs[0].startswith("foreign_agent: a foreign-agent config has one")
    probs = problems_of({"node": {"role": "slb"}, "slb": {"virtual_address": "10.0.0.1"}})
    assert "slb.real: at least one [[slb.real]] is required" in probs
    probs = problems_of({"node": {"role": "slb"}, "home_agent": {"address": "10.0.0.1"}})
    assert "home_agent: not used by role 'slb'" in probs and "slb: required for role 'slb'" in probs


def test_mobile_node_role() -> None:
    base = {
        "node": {"role": "mobile-node"},
        "mobile_node": {
            "nai": "mn{n}@example.net",
            "count": 200,
            "home_agent": "10.0.0.100",
            "foreign_agent": "127.0.0.2:434",
            "spi": 256,
            "key": "text:k",
        },
    }
    cfg = config_from_dict(base)
    assert cfg.mobile_node is not None and cfg.mobile_node.nai_of(7) == "mn7@example.net"
    assert cfg.mobile_node.foreign_agent == ("127.0.0.2", 434)
    bad = copy.deepcopy(base)
    bad["mobile_node"]["nai"] = "mn@example.net"
    bad["mobile_node"]["co_located_care_of"] = "192.0.2.5"
    probs = problems_of(bad)
    assert "mobile_node.nai: must contain '{n}' when mobile_node.count > 1" in probs
    assert "mobile_node.co_located_care_of: exclusive with mobile_node.foreign_agent" in probs


def test_aaa_radius_needs_server() -> None:
    data = {
        "node": {"role": "foreign-agent"},
        "foreign_agent": {"address": "10.0.2.2"},
        "aaa": {"backend": "radius", "user": [{"nai": "a"}, {"nai": "a"}]},
    }
    probs = problems_of(data)
    assert "aaa.radius_server: required with aaa.backend = 'radius'" in probs
    assert "aaa.user[1].nai: duplicate of aaa.user[0].nai" in probs


def test_secrets_and_endpoints() -> None:
    assert config.parse_secret("hex:00ff") == b"\x00\xff"
    assert config.parse_secret("text:cisco") == b"cisco"
    for bad in ("00ff", "hex:0", "hex:", "text:", "base64:AA=="):
        with pytest.raises(ValueError):
            config.parse_secret(bad)
    assert config.parse_endpoint("127.0.0.1:0") == ("127.0.0.1", 0)
    for bad in ("127.0.0.1", "host:80", "127.0.0.1:70000", ":80"):
        with pytest.raises(ValueError):
            config.parse_endpoint(bad)


def test_check_cli_reports_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[node]\nrole = "slb"\n[slb]\nvirtual_address = "10.0.0.1"\nsession_s = "x"\n')
    assert config.main([str(p)]) == 1
    err = capsys.readouterr().err
    assert f"{p}: slb.session_s: expected integer 1..65535, got string" in err
    p.write_text("[node\n")
    assert config.main([str(p)]) == 1
    assert f"{p}: toml: " in capsys.readouterr().err
    assert config.main([str(tmp_path / "missing.toml")]) == 1
    assert "file: cannot read" in capsys.readouterr().err


def test_every_reference_key_is_accepted() -> None:
    """No example uses a key missing from the reference table."""
    seen: set[str] = set()

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
            for item in obj:
                walk(prefix + "[]", item)
        else:
            seen.add(prefix)

    for p in EXAMPLE_FILES:
        walk("", tomllib.loads(p.read_text()))
    unknown = seen - set(config.reference_keys())
    assert not unknown


def test_removed_sync_port_says_where_sync_goes() -> None:
    """`home_agent.sync_port` was documented but never read: an old config gets what to
    use instead of a silent pair that never syncs."""
    text = """
[node]
role = "home-agent"
[home_agent]
address = "10.0.1.10"
sync_port = 4343
"""
    with pytest.raises(ConfigError) as e:
        loads_config(text)
    assert e.value.problems == [
        "home_agent.sync_port: removed: HA-HA sync messages arrive on home_agent.port and go "
        "to the peer's redundancy.port"
    ]
