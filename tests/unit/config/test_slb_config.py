"""compose.slb_node: the [slb] keys of DESIGN §6 reach the node and its farm."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileha import compose
from mobileha.config import loads_config
from mobileha.core.slb import RealState
from mobileha.mgmt.views import slb_view

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "slb.toml"


def test_compose_example() -> None:
    if not EXAMPLE.exists():
        pytest.skip("examples/slb.toml not in this tree")
    node = compose.slb_node(loads_config(EXAMPLE.read_text()))
    s = node.settings
    assert (s.virtual_address, s.port, s.mode) == ("10.0.0.100", 434, "directed")
    assert [r.address for r in node.farm.reals] == ["10.0.1.100", "10.0.3.100"]
    assert node.dfp is not None and set(node.dfp.agents) == {"10.0.1.10:8081", "10.0.3.10:8081"}
    assert node.dfp.timeout == 30


def test_compose_all_keys() -> None:
    cfg = loads_config(
        """
[node]
role = "slb"
name = "lb1"
[slb]
virtual_address = "127.0.0.100"
port = 4434
mode = "relay"
session_s = 7
reassign = 5
faildetect_numconns = 4
faildetect_numclients = 3
retry_s = 30
predictor = "smooth-wrr"
relay_vendor_id = 9
max_sessions = 1000
[slb.relay_sa]
spi = 300
key = "text:slb-secret"
algorithm = "hmac-md5"
[[slb.real]]
address = "127.0.0.11"
port = 5434
weight = 3
maxconns = 100
name = "pair-a"
[[slb.real]]
address = "127.0.0.12"
weight = 0
inservice = false
dfp_agent = "127.0.0.12:8081"
[dfp]
password = "text:dfp"
timeout_s = 15
retry_interval_s = 4
"""
    )
    node = compose.slb_node(cfg)
    f = node.farm
    assert node.name == "lb1" and f.session_s == 7 and f.reassign == 5
    assert f.max_sessions == 1000 and f.predictor.name == "smooth-wrr"
    a, b = f.reals
    assert (a.address, a.port, a.weight, a.maxconns) == ("127.0.0.11", 5434, 3, 100)
    assert (a.faildetect_numconns, a.faildetect_numclients, a.retry_s) == (4, 3, 30)
    assert b.state is RealState.OUT_OF_SERVICE and b.weight == 0
    assert node.settings.relay_key == b"slb-secret" and node.settings.relay_spi == 300
    assert node.settings.relay_vendor_id == 9
    assert node.dfp is not None and node.dfp.key == b"dfp"
    assert node.dfp.timeout == 15 and node.dfp.backoff_max == 4
    assert slb_view(node)["reals"][0]["name"] == "pair-a"
    # the relay tag of this node is the authenticated kind, verifiable by the HA side
    from mobileha.wire import slbtag
    from mobileha.wire.auth import Authenticator

    tagged = node._tag(b"\x01" + bytes(23), "10.0.2.2", 434)
    assert slbtag.decode(
        tagged, Authenticator(b"slb-secret", "hmac-md5"), vendor_id=9, spi=300
    ) == ("10.0.2.2", 434, b"\x01" + bytes(23))
