"""Data-plane backends without privileges: memory semantics, kernel netlink calls (mock IPRoute)."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock, call

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from mobileha.core.binding import FLAG_S, FLAG_T, Binding, Encap
from mobileha.dataplane.base import (
    BackendUnavailable,
    DataPlane,
    UnsupportedEncapsulation,
)
from mobileha.dataplane.kernel import GRE_KEY_FLAG, KernelDataPlane
from mobileha.dataplane.memory import MemoryDataPlane
from mobileha.dataplane.registry import create
from mobileha.dataplane.tool import binding_from_json


def b(coa: str = "10.3.0.2", flags: int = 0, encap: Encap = Encap.IPIP, **kw: Any) -> Binding:
    return Binding(
        home_addr=kw.pop("home_addr", "10.99.0.5"),
        care_of=coa,
        ha_addr="10.2.0.2",
        lifetime=600,
        expires=600.0,
        ident=1,
        flags=flags,
        encap=encap,
        **kw,
    )


# ---- memory --------------------------------------------------------------------------------


def test_memory_is_a_dataplane_and_records() -> None:
    dp = create("memory")
    assert isinstance(dp, DataPlane) and isinstance(dp, MemoryDataPlane)
    dp.install(b())
    assert [x.care_of for x in dp.lookup("10.99.0.5")] == ["10.3.0.2"]
    dp.claim_vip("10.0.0.100")
    assert dp.vips == {"10.0.0.100"}
    dp.release_vip("10.0.0.100")
    dp.remove(b())
    assert dp.lookup("10.99.0.5") == [] and dp.tunnels == {}
    assert [e.op for e in dp.events] == ["install", "claim", "release", "remove"]
    dp.close()
    assert dp.events[-1].op == "close"


def test_memory_install_many_is_install_each_and_copies() -> None:
    """A takeover's batch gives the state of one install per binding, in order; what is
    stored is a copy (the core changes its bindings in place later)."""
    bs = [
        b("10.3.0.2"),
        b("10.3.0.3", flags=FLAG_S),
        b("10.3.0.4", home_addr="10.99.0.6", encap=Encap.GRE, gre_key=7, nai="m@x"),
        b("10.3.0.5", home_addr="10.99.0.6"),  # no S: replaces the GRE one
    ]
    one, many = MemoryDataPlane(), MemoryDataPlane()
    for x in bs:
        one.install(x)
    assert many.install_many(bs) == 4
    assert many.tunnels == one.tunnels and many.events == one.events
    assert many.counters.keys() == one.counters.keys()
    stored = many.tunnels["10.99.0.5"]["10.3.0.2"]
    assert stored == bs[0] and stored is not bs[0]
    bs[0].lifetime = 1
    assert stored.lifetime == 600


def test_memory_simultaneous_and_replace_semantics() -> None:
    dp = MemoryDataPlane()
    dp.install(b("10.3.0.2"))
    dp.install(b("10.3.0.3", flags=FLAG_S))  # S: added alongside
    assert sorted(x.care_of for x in dp.lookup("10.99.0.5")) == ["10.3.0.2", "10.3.0.3"]
    dp.install(b("10.3.0.4"))  # no S: replaces all others
    assert [x.care_of for x in dp.lookup("10.99.0.5")] == ["10.3.0.4"]
    dp.install(b("10.3.0.4", encap=Encap.GRE, gre_key=5))  # same key: update in place
    assert dp.lookup("10.99.0.5")[0].encap == Encap.GRE
    dp.remove(b("10.9.9.9"))  # unknown: no-op
    assert set(dp.stats().tunnels) == {("10.99.0.5", "10.3.0.4")}


def test_create_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError):
        create("dpdk")


def test_tool_binding_from_json() -> None:
    x = binding_from_json(
        {"home_addr": "1.1.1.1", "care_of": "2.2.2.2", "ha_addr": "3.3.3.3", "encap": "gre",
         "gre_key": 9, "flags": FLAG_T, "lifetime": 30},
        100.0,
    )  # fmt: skip
    assert (x.encap, x.gre_key, x.reverse_tunnel, x.expires) == (Encap.GRE, 9, True, 130.0)
    assert binding_from_json(
        {"home_addr": "1.1.1.1", "care_of": "2", "ha_addr": "3"}, 0
    ).expires == float("inf")


# ---- kernel (mock IPRoute) ---------------------------------------------------------------


def fake_ipr(supported: bool = True) -> MagicMock:
    ipr = MagicMock()
    names: dict[str, int] = {"eth1": 7}

    def link(op: str, **kw: Any) -> list[Any]:
        if op == "add":
            if not supported:
                raise NetlinkError(95, "Operation not supported")
            names[kw["ifname"]] = 100 + len(names)
        return []

    ipr.link.side_effect = link
    ipr.link_lookup.side_effect = lambda ifname: [names[ifname]] if ifname in names else []
    return ipr


def test_kernel_probe_reports_missing_option() -> None:
    with pytest.raises(BackendUnavailable) as e:
        KernelDataPlane(ipr=fake_ipr(supported=False))
    msg = str(e.value)
    assert "CONFIG_NET_IPIP" in msg and "CONFIG_NET_IPGRE" in msg and "userspace" in msg


def test_kernel_probe_creates_and_deletes_probe_devices() -> None:
    ipr = fake_ipr()
    KernelDataPlane(ipr=ipr)
    assert call("add", ifname="mhprobeipip", kind="ipip", ipip_local="127.0.0.1",
                ipip_remote="127.0.0.2") in ipr.link.call_args_list  # fmt: skip
    assert call("del", ifname="mhprobeipip") in ipr.link.call_args_list
    assert call("del", ifname="mhprobegre") in ipr.link.call_args_list


def test_kernel_ha_ipip_device_and_host_route() -> None:
    ipr = fake_ipr()
    dp = KernelDataPlane(ipr=ipr, probe=False)
    dp.install(b())
    ipr.link.assert_any_call(
        "add", ifname="mhi1", kind="ipip", ipip_local="10.2.0.2", ipip_remote="10.3.0.2",
        ipip_ttl=64,
    )  # fmt: skip
    idx = ipr.link_lookup(ifname="mhi1")[0]
    ipr.link.assert_any_call("set", index=idx, state="up")
    ipr.route.assert_any_call("replace", dst="10.99.0.5/32", oif=idx)
    assert dp.devices() == ["mhi1"]
    # A second home address on the same CoA shares the device (reference counted).
    dp.install(b(home_addr="10.99.0.6"))
    assert dp.devices() == ["mhi1"]
    dp.remove(b())
    ipr.route.assert_any_call("del", dst="10.99.0.5/32", oif=idx)
    assert dp.devices() == ["mhi1"]
    dp.remove(b(home_addr="10.99.0.6"))
    ipr.link.assert_any_call("del", index=idx)
    assert dp.devices() == []


def test_kernel_gre_key_flags() -> None:
    ipr = fake_ipr()
    dp = KernelDataPlane(ipr=ipr, probe=False)
    dp.install(b(encap=Encap.GRE, gre_key=0x401))
    ipr.link.assert_any_call(
        "add", ifname="mhg1", kind="gre", gre_local="10.2.0.2", gre_remote="10.3.0.2",
        gre_ttl=64, gre_ikey=0x401, gre_okey=0x401, gre_iflags=GRE_KEY_FLAG,
        gre_oflags=GRE_KEY_FLAG,
    )  # fmt: skip
    assert GRE_KEY_FLAG == 0x2000


def test_kernel_rejects_minimal_encapsulation() -> None:
    dp = KernelDataPlane(ipr=fake_ipr(), probe=False)
    with pytest.raises(UnsupportedEncapsulation, match="minimal"):
        dp.install(b(encap=Encap.MINIMAL))


def test_kernel_fa_visitor_route_and_reverse_rule() -> None:
    ipr = fake_ipr()
    dp = KernelDataPlane(role="fa", visitor_iface="eth1", ipr=ipr, probe=False)
    dp.install(b(flags=FLAG_T))
    # FA side: tunnel from the CoA to the HA.
    ipr.link.assert_any_call(
        "add", ifname="mhi1", kind="ipip", ipip_local="10.3.0.2", ipip_remote="10.2.0.2",
        ipip_ttl=64,
    )  # fmt: skip
    idx = ipr.link_lookup(ifname="mhi1")[0]
    ipr.route.assert_any_call("replace", dst="10.99.0.5/32", oif=7, scope=253)
    table = 43440 + idx
    ipr.route.assert_any_call("replace", dst="0.0.0.0/0", oif=idx, table=table)
    ipr.rule.assert_any_call("add", src="10.99.0.5", src_len=32, iifname="eth1", table=table)
    dp.close()
    ipr.rule.assert_any_call("del", src="10.99.0.5", src_len=32, iifname="eth1", table=table)
    ipr.route.assert_any_call("del", dst="10.99.0.5/32", oif=7, scope=253)  # as added
    ipr.link.assert_any_call("del", index=idx)


def test_kernel_without_s_replaces_previous_coa() -> None:
    ipr = fake_ipr()
    dp = KernelDataPlane(ipr=ipr, probe=False)
    dp.install(b("10.3.0.2"))
    dp.install(b("10.3.0.3", flags=FLAG_S))  # a kernel route cannot duplicate: newest wins
    assert dp.devices() == ["mhi2"]
