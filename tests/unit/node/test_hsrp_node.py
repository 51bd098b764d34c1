"""node.hsrp without the network: flags -> configuration, views and metrics."""

from __future__ import annotations

import pytest

from mobileha.mgmt.metrics import hsrp_families
from mobileha.node.hsrp import HsrpNode, build_arg_parser, config_from_args


def test_flags_to_config() -> None:
    a = build_arg_parser().parse_args(
        ["-i", "eth1", "--group", "300", "--version", "2", "--vip", "10.0.0.1",
         "--priority", "120", "--preempt", "--preempt-delay-ms", "500", "--hello-ms", "100",
         "--hold-ms", "300", "--auth", "md5:secret", "--md5-key-id", "7",
         "--peer", "10.0.0.9", "--macvlan", "--track", "eth2", "--track", "eth3:25"]
    )  # fmt: skip
    c = config_from_args(a)
    assert c.interface == "eth1" and c.peers == ["10.0.0.9"] and c.macvlan
    assert c.track == {"eth2": 10, "eth3": 25}
    [g] = c.groups
    assert (g.group, g.version, g.vip, g.priority, g.preempt, g.preempt_delay_ms) == (
        300, 2, "10.0.0.1", 120, True, 500)  # fmt: skip
    assert (g.hello_ms, g.hold_ms, g.md5_key, g.md5_key_id) == (100, 300, b"secret", 7)


def test_defaults_are_ios_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):  # no implicit password
        build_arg_parser().parse_args(["-i", "eth0"])
    assert "--auth" in capsys.readouterr().err
    c = config_from_args(build_arg_parser().parse_args(["-i", "eth0", "--auth", "text:cisco"]))
    [g] = c.groups
    assert (g.group, g.version, g.priority, g.preempt) == (0, 1, 100, False)
    assert g.auth == b"cisco\0\0\0" and g.md5_key is None
    assert g.vip is None  # learned from the Active (Learn state)
    assert (g.hello_ms, g.hold_ms) == (None, None)  # 3000/10000 ms, learnable


def test_views_and_metrics() -> None:
    cfg = config_from_args(
        build_arg_parser().parse_args(
            ["-i", "eth0", "--group", "4", "--vip", "10.0.0.1", "--auth", "md5:k"]
        )
    )
    node = HsrpNode(cfg)
    [snap] = node.snapshot()
    assert snap["group"] == 4 and snap["state"] == "Initial" and snap["interface"] == "eth0"
    fams = {f.name: f for f in hsrp_families(node)}
    assert set(fams) >= {"mobileha_hsrp_state", "mobileha_hsrp_priority"}
    [s] = fams["mobileha_hsrp_priority"].samples
    assert s.labels == {"interface": "eth0", "group": "4"} and s.value == 100
    # CISCO-HSRP-MIB names as well (cHsrpGrpStandbyState: 1 initial .. 6 active)
    [st] = fams["cHsrpGrpStandbyState"].samples
    assert st.labels["group"] == "4" and st.value == 1
    assert fams["cHsrpGrpPriority"].samples[0].value == 100


def test_the_interface_is_watched_where_the_node_owns_the_vip_on_it() -> None:
    from mobileha import compose
    from mobileha.config import HsrpAuth
    from mobileha.config import HsrpConfig as AppHsrpConfig

    hc = AppHsrpConfig(virtual_ip="127.0.0.100", address="127.0.0.2", interface="lo",
                       peers=("127.0.0.3",), authentication=HsrpAuth("md5", b"k"))  # fmt: skip
    assert compose.hsrp_node_config(hc).watching_link  # manage_vip: a real interface
    assert not compose.hsrp_node_config(hc, manage_vip=False).watching_link  # loopback peers
    assert compose.hsrp_node_config(hc, manage_vip=False, watch_interface=True).watching_link


def test_from_config_maps_every_key() -> None:
    from mobileha import compose
    from mobileha.config import HsrpAuth
    from mobileha.config import HsrpConfig as AppHsrpConfig

    hc = AppHsrpConfig(virtual_ip="10.0.0.1", address="10.0.0.2", interface="eth0", group=7,
                       version=1, name="ha-grp", priority=120, preempt=True, preempt_delay_s=5,
                       hello_ms=1000, hold_ms=3000,
                       authentication=HsrpAuth("text", b"cisco"))  # fmt: skip
    n = compose.hsrp_node(hc)
    [g] = n.cfg.groups
    assert (g.vip, g.address, g.group, g.version, g.name) == (
        "10.0.0.1", "10.0.0.2", 7, 1, "ha-grp")  # fmt: skip
    assert (g.priority, g.preempt, g.preempt_delay_ms, g.hello_ms, g.hold_ms) == (
        120, True, 5000, 1000, 3000)  # fmt: skip
    assert g.auth == b"cisco\0\0\0" and g.md5_key is None
    assert n.cfg.multicast and n.cfg.multicast_group is None and n.cfg.port == 1985
    assert n.core.groups[(1, 7)].priority == 120  # the coordinator's group
