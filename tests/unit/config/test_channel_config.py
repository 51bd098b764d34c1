"""The keys that close the channels an outsider can reach, their rules, and the warnings of
`mobileha check` for every channel a valid config leaves unauthenticated."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import mobileha.config as config
from mobileha.config import ConfigError, config_from_dict
from mobileha.config.security import channel_warnings

HA: dict[str, Any] = {
    "node": {"role": "home-agent", "name": "ha"},
    "home_agent": {"address": "10.0.1.10", "home_prefix": "10.1.0.0/16"},
    "foreign_agent": [{"address": "10.0.2.2", "spi": 300, "key": "text:fa"}],
    "management": {"token": "0123456789abcdef"},
}
SLB: dict[str, Any] = {
    "node": {"role": "slb"},
    "management": {"token": "0123456789abcdef"},
    "slb": {
        "virtual_address": "10.0.0.100",
        "real": [{"address": "10.0.1.100", "dfp_agent": "10.0.1.10:8081"}],
    },
}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        config_from_dict(data)
    return ei.value.problems


def with_(base: dict[str, Any], **tables: Any) -> dict[str, Any]:
    d = copy.deepcopy(base)
    for k, v in tables.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k].update(v)
        else:
            d[k] = v
    return d


def test_management_non_loopback_needs_a_token(tmp_path: Path) -> None:
    open_api = with_(HA, management={"listen": "0.0.0.0:8434"})
    del open_api["management"]["token"]
    (p,) = problems(open_api)
    assert p.startswith("management.listen: 0.0.0.0:8434 is not a loopback address")
    assert "management.token" in p
    assert config_from_dict(with_(HA, management={"listen": "10.0.1.10:8434"})).management.token
    f = tmp_path / "tok"
    f.write_text("from-a-file-0123456789\nignored\n")
    d = with_(HA, management={"listen": "0.0.0.0:8434", "token_file": str(f)})
    del d["management"]["token"]
    assert config_from_dict(d).management.token == "from-a-file-0123456789"
    d["management"]["token"] = "0123456789abcdef"
    assert any(p.startswith("management.token_file: exclusive") for p in problems(d))
    d = with_(HA, management={"token": "short"})
    assert any(p.startswith("management.token: the token must be") for p in problems(d))
    d = with_(HA, management={"token_file": str(tmp_path / "missing")})
    del d["management"]["token"]
    assert any(p.startswith("management.token_file: cannot read") for p in problems(d))
    # a loopback listener without a token is valid (check warns about it)
    d = copy.deepcopy(HA)
    del d["management"]
    cfg = config_from_dict(d)
    assert any(w.startswith("management.token: not set") for w in channel_warnings(cfg))


def test_trusted_slb_needs_an_sa_or_an_explicit_source_address_trust() -> None:
    d = with_(HA, home_agent={"trusted_slb": ["10.0.0.100"]})
    (p,) = problems(d)
    assert p.startswith("home_agent.trusted_slb[0]: 10.0.0.100 has no [[home_agent.slb_sa]]")
    assert 'slb_trust = "source-address"' in p
    d["home_agent"]["slb_sa"] = [{"address": "10.0.0.100", "spi": 500, "key": "text:s"}]
    assert not channel_warnings(config_from_dict(d))
    d = with_(HA, home_agent={"trusted_slb": ["10.0.0.100"], "slb_trust": "source-address"})
    (w,) = channel_warnings(config_from_dict(d))
    assert w.startswith('home_agent.slb_trust: "source-address"')


def test_dfp_needs_a_password_or_listed_peers() -> None:
    d = with_(HA, dfp={"listen": "10.0.1.10:8081"})
    (p,) = problems(d)
    assert p.startswith("dfp.password: required") and "dfp.allow" in p
    d["dfp"]["allow"] = ["10.0.0.5"]
    (w,) = channel_warnings(config_from_dict(d))
    assert w.startswith("dfp.password: not set") and "10.0.0.5" in w
    d["dfp"]["password"] = "text:pw"
    cfg = config_from_dict(d)
    assert not channel_warnings(cfg) and cfg.dfp is not None
    assert (cfg.dfp.max_connections, cfg.dfp.idle_timeout_s, cfg.dfp.max_message_bytes) == (
        32,
        10,
        4096,
    )
    # the SLB's manager: every agent it connects to is covered, even without a [dfp] table
    (p,) = problems(SLB)
    assert p.startswith("slb.real[0].dfp_agent: 10.0.1.10 is not in dfp.allow")
    assert config_from_dict(with_(SLB, dfp={"password": "text:pw"}))
    cfg = config_from_dict(with_(SLB, dfp={"allow": ["10.0.1.10"]}))
    assert [w.split(":")[0] for w in channel_warnings(cfg)] == ["dfp.password"]


def test_hsrp_text_and_missing_fa_ha_sas_warned() -> None:
    d = with_(HA, hsrp={"virtual_ip": "10.0.1.100", "authentication": "text:cisco"})
    assert [w.split(":")[0] for w in channel_warnings(config_from_dict(d))] == [
        "hsrp.authentication"
    ]
    d["hsrp"]["authentication"] = "md5:key-string"
    del d["foreign_agent"]
    (w,) = channel_warnings(config_from_dict(d))
    assert w.startswith("foreign_agent: no FA-HA security association")
    fa = {
        "node": {"role": "foreign-agent"},
        "management": {"token": "0123456789abcdef"},
        "foreign_agent": {"address": "10.0.2.2", "real_home_agents": ["10.0.1.100"]},
    }
    cfg = config_from_dict(fa)
    assert cfg.foreign_agent is not None and cfg.foreign_agent.real_home_agents == ("10.0.1.100",)
    (w,) = channel_warnings(cfg)
    assert w.startswith("foreign_agent.home_agent_sa: none")
    slb = with_(SLB, slb={"mode": "relay"}, dfp={"password": "text:pw"})
    (w,) = channel_warnings(config_from_dict(slb))
    assert w.startswith("slb.relay_sa: not set")


def test_check_prints_the_warnings_after_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "ha.toml"
    p.write_text(
        '[node]\nrole = "home-agent"\n[home_agent]\naddress = "10.0.1.10"\n'
        '[hsrp]\nvirtual_ip = "10.0.1.100"\nauthentication = "text:cisco"\n'
    )
    assert config.main([str(p)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{p}: OK role=home-agent")
    lines = err.splitlines()
    assert [line.split(": warning: ")[1].split(":")[0] for line in lines] == [
        "management.token",
        "hsrp.authentication",
        "foreign_agent",
    ]
