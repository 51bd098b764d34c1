"""Config of the mobility keys: a roaming mobile node needs no fixed foreign agent, the
FA's advertisements default to the visitor interface, revocation switches."""

from __future__ import annotations

from typing import Any

from mobileha.compose import advertiser_config
from mobileha.config import config_from_dict
from tests.unit.config.test_config import problems_of

MN: dict[str, Any] = {
    "node": {"role": "mobile-node"},
    "mobile_node": {
        "nai": "roamer@example.net",
        "home_address": "10.99.0.5",
        "home_agent": "10.0.0.100",
        "spi": 256,
        "key": "text:k",
    },
}


def test_roaming_mobile_node_needs_no_fixed_foreign_agent() -> None:
    doc = {**MN, "mobile_node": {**MN["mobile_node"], "interfaces": "eth0, eth1"}}
    cfg = config_from_dict(doc)
    assert cfg.mobile_node is not None and cfg.mobile_node.interfaces == ("eth0", "eth1")
    assert cfg.mobile_node.foreign_agent is None
    assert "mobile_node: needs foreign_agent, co_located_care_of or interfaces" in problems_of(MN)
    many = {**doc, "mobile_node": {**doc["mobile_node"], "count": 2, "nai": "m{n}@x"}}
    assert "mobile_node.interfaces: roaming drives one mobile node (count = 1)" in problems_of(many)


def test_fa_advertises_on_the_visitor_interface_by_default() -> None:
    doc = {
        "node": {"role": "foreign-agent"},
        "foreign_agent": {"address": "10.3.0.2", "revocation": True},
        "dataplane": {"visitor_iface": "lo"},
    }
    cfg = config_from_dict(doc)
    fa = cfg.foreign_agent
    assert fa is not None and fa.advertise and fa.advertise_interface == "lo"
    assert fa.advertise_interval_ms == 1000 and fa.revocation
    adv = advertiser_config(cfg)
    assert adv is not None and adv.interface == "lo" and adv.care_of == ("10.3.0.2",)
    assert adv.routers == (("127.0.0.1", 0),) and adv.prefix_lengths == (8,)  # lo's address
    off = {**doc, "foreign_agent": {**doc["foreign_agent"], "advertise": False}}
    assert advertiser_config(config_from_dict(off)) is None


def test_home_agent_revocation_and_advertising_keys() -> None:
    doc = {
        "node": {"role": "home-agent"},
        "home_agent": {
            "address": "10.2.0.2",
            "revocation": True,
            "advertise_interface": "eth1",
            "advertise_interval_ms": 500,
        },
    }
    ha = config_from_dict(doc).home_agent
    assert ha is not None and ha.revocation and ha.advertise_interface == "eth1"
    assert ha.advertise_interval_ms == 500
