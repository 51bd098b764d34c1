"""``mobileha demo``: a whole cluster in one process on loopback, with a failover to watch.

Unprivileged, one asyncio loop (uvloop when installed), loopback addresses only, memory
data plane: an HA-SLB in relay mode, two HSRP pairs of home agents with binding sync, two
foreign agents and 200 mobile nodes. By concern:

* :mod:`~mobileha.demo.plan`: the cluster layout, one config per node, the figures to
  produce;
* :mod:`~mobileha.demo.cluster`: the running nodes, built by :mod:`mobileha.compose`;
* :mod:`~mobileha.demo.scenario`: the steps (registrations, crash of an Active, failover,
  comparison of the bindings, re-registrations);
* :mod:`~mobileha.demo.screen`: the live lines, the final table, the JSON object.

Exit 0 when everything held, 1 otherwise. ``--json``: stdout carries one JSON object (the
:class:`~mobileha.demo.plan.Figures`), the progress and the table go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable
from typing import TextIO

from mobileha.demo.cluster import Cluster
from mobileha.demo.plan import Figures, Plan, pick_net
from mobileha.demo.scenario import Scenario
from mobileha.demo.screen import Screen, figures_json, summary_text
from mobileha.log import LEVELS, setup_logging

TIME_LIMIT_S = 55.0


def _privileges(f: Figures) -> None:
    """Who we run as: effective uid and effective capability mask (Linux)."""
    f.euid = os.geteuid()
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                f.cap_eff = line.split()[1]


async def run(args: argparse.Namespace, f: Figures, out: TextIO) -> None:
    """Plan, build and start the cluster, run the scenario, stop everything."""
    plan = Plan(pick_net(random.Random(args.seed)), args.mns, args.seed)
    f.net, f.mns, f.seed = f"{plan.net}.0/24", plan.n_mns, args.seed
    cluster = Cluster(plan)
    live = not args.no_live and out.isatty()
    screen = Screen(cluster, live=live, out=out)
    screen.start()
    try:
        await Scenario(cluster, screen, f, linger=3.0 if live else 0.5).run()
    finally:
        await screen.stop()
        await cluster.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mobileha demo",
        description="A whole mobileha cluster in one process on loopback: HA-SLB, two HSRP "
        "home agent pairs with binding sync, foreign agents and mobile nodes; then the "
        "Active of one pair crashes and its Standby takes over.",
    )
    p.add_argument(
        "--json", action="store_true", help="stdout: one JSON object; progress on stderr"
    )
    p.add_argument("--mns", type=int, default=200, help="number of mobile nodes (default 200)")
    p.add_argument("--seed", type=int, default=None, help="seed: subnet and keys (default random)")
    p.add_argument("--no-live", action="store_true", help="plain periodic lines, no live view")
    p.add_argument("--log-level", choices=LEVELS, default="error", help="node logs on stderr")
    p.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.mns <= 100_000:
        print("mobileha demo: --mns must be 1..100000", file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    setup_logging(args.log_level)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if not args.no_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
    out = sys.stderr if args.json else sys.stdout
    f = Figures(
        mns=args.mns,
        registrations_failed=args.mns,
        loop="uvloop" if factory is not None else "asyncio",
    )
    _privileges(f)
    t0 = time.monotonic()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(run(args, f, out), TIME_LIMIT_S)
        except TimeoutError:
            f.problems.append(f"the demo did not finish in {TIME_LIMIT_S:.0f} s")

    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bounded())
    except KeyboardInterrupt:
        f.problems.append("interrupted")
    except Exception as e:  # report, never a traceback instead of the summary
        f.problems.append(f"error: {e!r}")
    f.duration_s = round(time.monotonic() - t0, 2)
    f.ok = not f.problems and f.bindings_lost == 0
    if f.bindings_lost is None and not f.problems:
        f.problems.append("no failover measured")
    try:
        print(summary_text(f), file=out, flush=True)
        if args.json:
            print(figures_json(f), flush=True)
    except BrokenPipeError:
        # the reader left early (``| head -1``): no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if f.ok else 1


__all__ = ["Cluster", "Figures", "Plan", "Screen", "main", "run"]
