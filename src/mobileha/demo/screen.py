"""What the demo shows: live lines while it runs, the final table, the JSON object.

On a terminal the live view is a rich layout (``show standby`` / ``show ip slb reals``-like
tables and the recent events); otherwise one plain line per second and one per event. With
``--json`` all of that goes to stderr and stdout carries the JSON object alone, so
``mobileha demo --json | jq`` works.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from typing import Any, TextIO

from mobileha.demo.cluster import Cluster
from mobileha.demo.plan import Figures
from mobileha.mgmt.views import slb_view


def _dash(v: Any) -> str:
    return "-" if v is None else str(v)


class Screen:
    """The live view of a running cluster: a rich Live layout on a terminal, plain lines
    otherwise (``out``). A closed pipe ends the output, not the demo."""

    def __init__(self, cluster: Cluster, *, live: bool, out: TextIO) -> None:
        self.c = cluster
        self.live_wanted = live
        self.out = out
        self.t0 = time.monotonic()
        self.phase = "starting"
        self.events: list[str] = []
        self._live: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _write(self, line: str) -> None:
        if self._closed:
            return
        try:
            print(line, file=self.out, flush=True)
        except BrokenPipeError:
            self._closed = True

    def event(self, text: str) -> None:
        line = f"[{self.elapsed():5.1f}s] {text}"
        self.events.append(line)
        if self._live is None:
            self._write(line)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.event(f"== {phase}")

    # -- figures shared by both renderings
    def mn_figures(self) -> dict[str, int]:
        f = self.c.fleet
        codes: dict[int, int] = {}
        acc = den = retx = 0
        for m in f.mns:
            acc += m.stats.accepted
            den += m.stats.denied
            retx += m.stats.retransmissions
            for k, v in m.stats.codes.items():
                codes[k] = codes.get(k, 0) + v
        return {
            "registered": f.registered,
            "total": len(f.mns),
            "accepted": acc,
            "denied": den,
            "retransmissions": retx,
            "code_133": codes.get(133, 0),
        }

    def plain_line(self) -> str:
        """One line: MN registrations, the SLB's reals (sessions, state, admin weight, last
        DFP weight or ``-`` before a report), each HA's HSRP state and binding count."""
        m = self.mn_figures()
        reals = " ".join(
            f"{r['name']}={r['total_conns']} ({r['state']}, weight {r['weight_admin']}, "
            f"DFP {_dash(r['dfp_weight'])})"
            for r in slb_view(self.c.slb)["reals"]
        )
        has = " ".join(
            f"{h.name}={h.hsrp_state}/{h.bindings}" + (" (answering)" if h.answering else "")
            for h in self.c.has
        )
        return (
            f"[{self.elapsed():5.1f}s] {self.phase}: MNs {m['registered']}/{m['total']} "
            f"registered (denied {m['denied']}, retx {m['retransmissions']}) | "
            f"SLB sessions {reals} | HSRP state/bindings {has}"
        )

    def renderable(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        m = self.mn_figures()
        head = (
            f"[bold]mobileha demo[/] {self.elapsed():5.1f}s  phase: [cyan]{self.phase}[/]   "
            f"MNs registered [bold]{m['registered']}[/]/{m['total']}  accepted {m['accepted']}"
            f"  denied {m['denied']}  retransmissions {m['retransmissions']}"
            f"  133s {m['code_133']}"
        )
        ha_t = Table(title="show standby / show ip mobile binding summary", expand=True)
        for col in ("pair", "HA", "address", "HSRP", "answers", "bindings", "sync", "BU queue"):
            ha_t.add_column(col)
        colors = {"Active": "green", "Standby": "yellow", "CRASHED": "red"}
        for h in self.c.has:
            st = h.hsrp_state
            ha_t.add_row(
                f"{h.pair} ({h.vip})",
                h.name,
                h.address,
                f"[{colors.get(st, 'white')}]{st}[/]",
                "yes" if h.answering else "-",
                str(h.bindings) if not h.crashed else "-",
                ("ready" if h.ready else "download") if not h.crashed else "-",
                str(h.pending) if not h.crashed else "-",
            )
        v = slb_view(self.c.slb)
        slb_t = Table(
            title=f"show ip slb reals  (vserver {v['virtual_address']}:{v['port']} {v['mode']})",
            expand=True,
        )
        for col in ("real", "address", "state", "weight (DFP)", "sessions", "total"):
            slb_t.add_column(col)
        for r in v["reals"]:
            slb_t.add_row(
                r["name"],
                r["address"],
                r["state"],
                f"{r['weight_admin']} ({_dash(r['dfp_weight'])})",
                str(r["conns"]),
                str(r["total_conns"]),
            )
        ev = Panel("\n".join(self.events[-10:]) or " ", title="events")
        return Group(head, ha_t, slb_t, ev)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._live is None:
                self._write(self.plain_line())

    def start(self) -> None:
        if self.live_wanted:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self.renderable,
                console=Console(file=self.out),
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._ticker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None


def summary_text(f: Figures) -> str:
    """The final table."""
    result = "OK" if f.ok else "FAILED: " + "; ".join(f.problems)
    lines = [
        "",
        "mobileha demo summary",
        f"  cluster        : HA-SLB + 2 HA pairs + 2 FAs + {f.mns} MNs on {f.net} ({f.loop})",
        f"  registrations  : {f.registrations_ok} ok, {f.registrations_failed} failed",
        f"  SLB split      : {f.slb_split}",
        f"  failover       : {f.crashed} crashed -> {f.new_active} HSRP Active "
        f"after {f.hsrp_takeover_ms} ms, answering after {f.failover_ms} ms",
        f"  bindings       : before {f.bindings_before}, after {f.bindings_after}, "
        f"lost {f.bindings_lost}",
        f"  re-registration: {f.reregistrations_ok} ok, "
        f"{f.reregistrations_failed} failed, 133 replies {f.reregistrations_133}",
        f"  duration       : {f.duration_s} s",
        f"  result         : {result}",
    ]
    return "\n".join(lines)


def figures_json(f: Figures) -> str:
    """The figures as one line of JSON (keys sorted)."""
    return json.dumps(dataclasses.asdict(f), sort_keys=True)


__all__ = ["Screen", "figures_json", "summary_text"]
