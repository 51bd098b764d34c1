"""Choosing a data plane backend (auto order, reasons, no silent fallback) and fitting the
home agent core to what the backend can carry (139 for an encapsulation, code 1 without
simultaneous bindings, 130 beyond the backend's tables)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mobileha.core.binding import FLAG_M, FLAG_S, Encap
from mobileha.dataplane import choice
from mobileha.dataplane.base import BackendUnavailable, Capabilities
from mobileha.dataplane.kernel import KernelDataPlane
from mobileha.dataplane.memory import MemoryDataPlane
from mobileha.wire.auth import ntp_identification
from tests.unit.core.test_home_agent import WALL, make_ha, rrq, send


def fake_create(ok: set[str], seen: list[tuple[str, dict[str, Any]]]) -> Any:
    def create(kind: str, **opts: Any) -> Any:
        seen.append((kind, opts))
        if kind not in ok:
            raise BackendUnavailable(f"no {kind} here")
        return MemoryDataPlane(role=opts.get("role", "ha"))

    return create


def test_auto_takes_the_first_backend_that_starts_and_logs_why_not_the_others(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(choice, "create", fake_create({"userspace"}, seen))
    opts = choice.node_options("ha", device="mha0", mtu=1400, home_prefix="10.1.0.0/16")
    with caplog.at_level(logging.INFO, logger="mobileha.dataplane"):
        opened = choice.open_dataplane("auto", opts)
    assert opened.backend == "userspace"
    assert [k for k, _ in seen] == ["kernel", "ebpf", "userspace"]
    assert opened.refused == {"kernel": "no kernel here", "ebpf": "no ebpf here"}
    fields = [getattr(r, "mobileha_fields", {}) for r in caplog.records]
    assert {"backend": "kernel", "role": "ha", "reason": "no kernel here"} in fields
    assert {"backend": "ebpf", "role": "ha", "reason": "no ebpf here"} in fields
    assert {"backend": "userspace", "role": "ha", "chosen": "auto"} in fields
    # each backend got the options its constructor takes, the device under its own name
    by_kind = dict(seen)
    assert by_kind["userspace"]["tun_name"] == "mha0" and by_kind["userspace"]["mtu"] == 1400
    assert by_kind["ebpf"]["sink"] == "mha0" and by_kind["ebpf"]["home_prefix"] == "10.1.0.0/16"
    assert set(by_kind["kernel"]) <= {"role", "visitor_iface", "ttl"}


def test_auto_with_nothing_working_names_every_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice, "create", fake_create(set(), []))
    with pytest.raises(BackendUnavailable) as e:
        choice.open_dataplane("auto", {"role": "ha"})
    msg = str(e.value)
    assert "no kernel here" in msg and "no ebpf here" in msg and "no userspace here" in msg


def test_a_configured_backend_that_cannot_start_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(choice, "create", fake_create({"memory", "userspace"}, seen))
    with pytest.raises(BackendUnavailable, match="'ebpf' cannot start: no ebpf here"):
        choice.open_dataplane("ebpf", {"role": "ha"})
    assert [k for k, _ in seen] == ["ebpf"]  # nothing else was tried
    with pytest.raises(BackendUnavailable, match="unknown data plane backend 'tun'"):
        choice.open_dataplane("tun", {"role": "ha"})
    opened = choice.open_dataplane("memory", {"role": "fa", "device": "x", "mtu": 1})
    assert opened.backend == "memory" and opened.refused == {} and seen[-1][1] == {"role": "fa"}


def test_constructor_errors_become_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    def create(kind: str, **opts: Any) -> Any:
        raise ValueError("a foreign agent data plane needs visitor_iface")

    monkeypatch.setattr(choice, "create", create)
    with pytest.raises(BackendUnavailable, match="needs visitor_iface"):
        choice.open_dataplane("userspace", {"role": "fa"})


def test_capabilities_and_summary_of_backends_without_their_own() -> None:
    dp = MemoryDataPlane()
    assert choice.capabilities(dp) == Capabilities()
    assert choice.backend_name(dp) == "memory"
    s = choice.summary(dp)
    assert (s.backend, s.tunnels, s.totals["tx_pkts"], s.drops) == ("memory", 0, 0, {})


class _FakeIpr:
    def close(self) -> None:
        pass


def test_kernel_backend_capabilities_one_copy_no_minimal() -> None:
    k = KernelDataPlane(ipr=_FakeIpr(), probe=False)
    assert choice.capabilities(k) == Capabilities(frozenset({Encap.IPIP, Encap.GRE}), 1)
    k.supported = {"ipip"}
    assert choice.capabilities(k).encaps == frozenset({Encap.IPIP})


def test_core_refuses_what_the_dataplane_cannot_carry() -> None:
    ha = make_ha()
    reply, _ = send(ha, rrq(flags=FLAG_M))
    assert reply is not None and reply.code == 0  # minimal is fine by default
    ha = make_ha()
    ha.fit_dataplane(frozenset({Encap.IPIP, Encap.GRE}), 1, None)
    reply, _ = send(ha, rrq(flags=FLAG_M))
    assert reply is not None and reply.code == 139
    assert ha.counters()["cmiHaEncapUnavailable"] == 1
    reply, _ = send(ha, rrq(flags=FLAG_S, ident=ntp_identification(WALL, 2)))
    assert reply is not None and reply.code == 1  # accepted, no simultaneous bindings


def test_core_table_capped_at_the_dataplane_capacity() -> None:
    ha = make_ha()
    ha.fit_dataplane(frozenset(Encap), None, 1)
    r1, _ = send(ha, rrq())
    r2, _ = send(ha, rrq(nai="mn2@example.net"))
    assert r1 is not None and r1.code == 0
    assert r2 is not None and r2.code == 130
