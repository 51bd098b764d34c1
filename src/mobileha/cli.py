"""The ``mobileha`` command: one entry point, one module per subcommand.

Each subcommand lives in its own module exposing ``main(argv: list[str]) -> int`` that
parses its own arguments; this file only dispatches, so the subcommands stay independent.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("mobileha.runner", "run one node (home-agent, foreign-agent, slb, mobile-node)"),
    "check": (
        "mobileha.config.check",
        "validate a config file and print the problems with their keys",
    ),
    "show": ("mobileha.mgmt.show", "IOS-like views: bindings, standby, redundancy, slb, ..."),
    "reload": ("mobileha.mgmt.reload_client", "make a running node re-read its config"),
    "clear": (
        "mobileha.mgmt.clear",
        "operator commands: clear binding|visitor HOA | --nai NAI | --all",
    ),
    "decode": ("mobileha.tools.decode", "decode Mobile IP, HSRP, DFP and HA-HA messages to JSON"),
    "demo": ("mobileha.demo", "a whole cluster on loopback in one process, with a failover"),
    "lab": ("mobileha.lab.cli", "the demo scenario in network namespaces (root)"),
}


def _usage() -> str:
    lines = ["usage: mobileha <command> [options]", "", "commands:"]
    for name, (_mod, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<8} {text}")
    lines.append("")
    lines.append("'mobileha <command> --help' shows the options of a command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from mobileha import __version__

        print(f"mobileha {__version__}")
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        print(f"mobileha: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())
