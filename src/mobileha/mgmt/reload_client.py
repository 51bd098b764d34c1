"""``mobileha reload``: make a running node re-read its config, and print what changed.

The node is found through its management API (``--config``: the file's
``management.listen``, or ``--api``); the file is checked first (the same checks as
``mobileha check``: a file the node would refuse is not sent). The command then sends SIGHUP
to the process the API names (``pid`` of ``GET /``; the node must run on this host, as
under systemd's ``ExecReload``), waits for the ``reload`` view's generation to move and
prints its result: the keys applied, the keys that need a restart, or the problems of a
refused file. Exit 0 applied, 1 refused or no answer, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from mobileha.mgmt.show import ApiError, api_from_args, fetch, fetch_index


def render(result: dict[str, Any]) -> str:
    """The reload view as text."""
    lines = []
    if result.get("ok"):
        changed = result.get("changed") or []
        lines.append(f"reloaded {result.get('config', '')}: {len(changed)} change(s) applied")
        lines += [f"  applied  {c}" for c in changed]
        lines += [
            f"  RESTART  {c}  (needs a restart, not applied)"
            for c in result.get("restart_needed", [])
        ]
    else:
        lines.append(f"reload refused, the node runs on its old config: {result.get('config')}")
        lines += [f"  {e}" for e in result.get("errors", [])]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="mobileha reload",
        description="make a running node re-read its config (SIGHUP) and print what changed",
    )
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the node's config file (the one it was started with)")
    where.add_argument("--api", help="management API URL of the node")
    tok = ap.add_mutually_exclusive_group()
    tok.add_argument("--token", help="bearer token of the API (default: $MOBILEHA_TOKEN)")
    tok.add_argument("--token-file", help="file whose first line is the token")
    ap.add_argument("--json", action="store_true", help="print the reload view's JSON")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node")
    args = ap.parse_args(argv)
    if args.config:
        from mobileha.config import ConfigError, host_problems, load_config

        try:
            problems = host_problems(load_config(args.config))
        except ConfigError as e:
            problems = list(e.problems)
        if problems:
            for p in problems:
                print(f"{args.config}: {p}", file=sys.stderr)
            return 2
    try:
        api = api_from_args(args)
        pid = int(fetch_index(api)["pid"])
        before = int(fetch(api, "reload").get("generation", 0))
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + args.timeout
        while True:
            view = fetch(api, "reload")
            if int(view.get("generation", 0)) > before:
                break
            if time.monotonic() > deadline:
                print(f"mobileha reload: no reload seen in {args.timeout:g} s", file=sys.stderr)
                return 1
            time.sleep(0.05)
    except (ApiError, KeyError, ValueError) as e:
        print(f"mobileha reload: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"mobileha reload: cannot signal the node: {e}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2) if args.json else render(view))
    return 0 if view.get("ok") else 1


__all__ = ["main", "render"]
