"""A fake node with every management view, served by the real API in a background thread.

Shared by test_mgmt.py and test_show.py (no tests here).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mobileha.core.binding import FLAG_G, FLAG_T, Binding, Encap
from mobileha.mgmt import metrics as mm
from mobileha.mgmt.api import ManagementServer
from mobileha.mgmt.views import (
    REDUN_COUNTERS,
    BindingItem,
    DfpView,
    Page,
    RedundancyView,
    SessionItem,
    SlbView,
    StandbyView,
    StatsView,
    View,
    binding_item,
    page_of,
)

NOW = 1000.0


class FakeNode:
    role = "home-agent"
    name = "ha-fake"

    def __init__(self, n_bindings: int = 2500) -> None:
        self.started = False
        self.stopped = False
        self.bindings: dict[str, Binding] = {}
        for i in range(n_bindings):
            hoa = f"10.1.{i // 250}.{i % 250 + 1}"
            self.bindings[hoa] = Binding(
                home_addr=hoa,
                care_of="10.0.2.2",
                ha_addr="10.0.1.100",
                lifetime=36000,
                expires=NOW + 35000 - i,
                ident=(0xC7D5A4E0 << 32) | i,
                flags=FLAG_T | FLAG_G if i % 2 else 0,
                encap=Encap.GRE if i % 2 else Encap.IPIP,
                gre_key=0x1000 + i if i % 2 else None,
                nai=f"mn{i}@example.net",
                src_addr="10.0.2.2",
            )
        self.n_sessions = 1234
        self.built_items = 0  # how many rows the views rendered (paging check)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    # ------------------------------------------------------------------ views

    def views(self) -> Mapping[str, View]:
        return {
            "bindings": self.v_bindings,
            "standby": self.v_standby,
            "redundancy": self.v_redundancy,
            "slb": self.v_slb,
            "sessions": self.v_sessions,
            "dfp": self.v_dfp,
            "stats": self.v_stats,
            "broken": self.v_broken,
        }

    def _render(self, b: Binding) -> BindingItem:
        self.built_items += 1
        return binding_item(b, NOW)

    def v_bindings(self, q: Mapping[str, str]) -> Page[BindingItem]:
        if "nai" in q:
            rows = [b for b in self.bindings.values() if b.nai == q["nai"]]
            return page_of(rows, q, self._render)
        return page_of(self.bindings.values(), q, self._render)

    def v_standby(self, q: Mapping[str, str]) -> StandbyView:
        return [
            {
                "interface": "eth0",
                "group": 1,
                "version": 2,
                "name": "ha-pair-a",
                "state": "Active",
                "state_changes": 3,
                "last_state_change_ago_ms": 62000,
                "virtual_ip": "10.0.1.100",
                "virtual_mac": "0000.0c9f.f001",
                "local_address": "10.0.1.10",
                "hello_ms": 3000,
                "hold_ms": 10000,
                "next_hello_ms": 1520,
                "authentication": "text",
                "auth_failures": 2,
                "preempt": True,
                "preempt_delay_ms": 0,
                "active_router": "local",
                "active_priority": 110,
                "active_expires_ms": None,
                "standby_router": "10.0.1.11",
                "standby_priority": 100,
                "standby_expires_ms": 8816,
                "priority": 110,
                "configured_priority": 110,
            }
        ]

    def v_redundancy(self, q: Mapping[str, str]) -> RedundancyView:
        return {
            "peer": "10.0.1.11",
            "ha_address": "10.0.1.100",
            "group_name": "ha-pair-a",
            "hsrp_state": "Active",
            "role": "active",
            "sync_state": "in-sync",
            "bindings": len(self.bindings),
            "queue_depth": 0,
            "last_bulk_s": 0.25,
            "last_bulk_bindings": len(self.bindings),
            "peer_last_heard_s": 0.5,
            "counters": {name: i + 1 for i, name in enumerate(REDUN_COUNTERS)},
        }

    def v_slb(self, q: Mapping[str, str]) -> SlbView:
        return {
            "virtual_address": "10.0.0.100",
            "port": 434,
            "mode": "relay",
            "predictor": "ios-wrr",
            "farm": "HAFARM",
            "state": "OPERATIONAL",
            "sessions": 200,
            "total_sessions": 230,
            "forwarded": 250,
            "reassigned": 1,
            "dropped": 0,
            "reals": [
                {
                    "address": "10.0.1.100",
                    "port": 434,
                    "name": "pair-a",
                    "farm": "HAFARM",
                    "weight_admin": 8,
                    "weight_oper": 24,
                    "dfp_weight": 24,
                    "state": "inService",
                    "conns": 120,
                    "total_conns": 140,
                    "failures": 0,
                    "total_failures": 1,
                    "retry_in_s": None,
                    "maxconns": 4294967295,
                },
                {
                    "address": "10.0.3.100",
                    "port": 434,
                    "name": "pair-b",
                    "farm": "HAFARM",
                    "weight_admin": 8,
                    "weight_oper": 8,
                    "dfp_weight": None,
                    "state": "failed",
                    "conns": 80,
                    "total_conns": 90,
                    "failures": 8,
                    "total_failures": 8,
                    "retry_in_s": 42.0,
                    "maxconns": 4294967295,
                },
            ],
        }

    def _session(self, i: int) -> SessionItem:
        self.built_items += 1
        return {
            "key": f"mn{i}@example.net",
            "client": "10.0.2.2:434",
            "real": "10.0.1.100" if i % 3 else "10.0.3.100",
            "vserver": "10.0.0.100:434",
            "retransmissions": i % 4,
            "identification": f"C7D5A4E0.{i:08X}",
            "expires_in_s": 9.5,
            "state": "ESTAB",
        }

    def v_sessions(self, q: Mapping[str, str]) -> Page[SessionItem]:
        return page_of(range(self.n_sessions), q, self._session)

    def v_dfp(self, q: Mapping[str, str]) -> DfpView:
        return {
            "agents": [
                {
                    "agent": "10.0.1.10:8081",
                    "role": "manager",
                    "state": "connected",
                    "last_report_s": 1.2,
                    "reports": 12,
                    "errors": 0,
                    "weights": [{"address": "10.0.1.100", "weight": 24, "bind_id": 0}],
                }
            ]
        }

    def v_stats(self, q: Mapping[str, str]) -> StatsView:
        return {
            "node": self.name,
            "role": self.role,
            "uptime_s": 3723.0,
            "counters": {"cmiHaRegRequestsReceived": 2600, "cmiHaRegRequestsDenied": 100},
            "reply_codes": {"0": 2500, "133": 60, "131": 40},
            "bad_input": {"short_datagram": 3, "bad_mn_ha_auth": 40},
        }

    def v_broken(self, q: Mapping[str, str]) -> Any:
        raise RuntimeError("boom")

    # ------------------------------------------------------------------ metrics

    def metrics(self) -> Iterable[Any]:
        m = mm.MetricsBuilder()
        m.gauge(mm.HA_BINDINGS, len(self.bindings))
        m.counter(mm.HA_REQUESTS_RECEIVED, 2600)
        m.reply_codes(mm.HA_REPLIES, {0: 2500, 133: 60, 131: 40})
        m.redundancy({"SentBUs": 2500, "SecViolations": 1})
        m.hsrp_group(
            group=1, vip="10.0.1.100", state="Active", priority=110, hello_ms=3000, hold_ms=10000
        )
        for real, state in (("10.0.1.100", "inService"), ("10.0.3.100", "failed")):
            m.slb_real(
                farm="HAFARM",
                real=real,
                port=434,
                state=state,
                admin_weight=8,
                oper_weight=24,
                conns=120,
                maxconns=4294967295,
                consecutive_fails=0,
                total_conns=140,
                total_fails=1,
            )
        m.bad_input({"short_datagram": 3})
        return m.families()


@contextmanager
def serve(node: Any, token: str | None = None) -> Iterator[ManagementServer]:
    """Run the real management API for ``node`` on 127.0.0.1:<free port> in a thread."""
    loop = asyncio.new_event_loop()
    server = ManagementServer(node, "127.0.0.1", 0, token=token)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()
