"""``mobileha check CONFIG...``: validate node configs and name every bad key.

Exit 0 with one ``OK`` line per file (the role and what it serves, :func:`summary`), 1 when a
file has problems: each is printed on stderr as ``FILE: key.path: what is wrong``. A valid
file's unauthenticated channels follow its OK line on stderr, one
``FILE: warning: key: ...`` line each (:func:`mobileha.config.security.channel_warnings`).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from mobileha.config.load import load_config
from mobileha.config.model import Config, ConfigError
from mobileha.config.security import channel_warnings


def summary(cfg: Config) -> str:
    """One line describing a valid config (``mobileha check`` prints it)."""
    parts = [f"role={cfg.role}", f"name={cfg.name}"]
    if cfg.management.enabled:
        parts.append(f"api={cfg.management.listen}")
    if cfg.home_agent is not None:
        ha = cfg.home_agent
        parts += [f"ha={ha.ha_address}", f"mobile_nodes={len(cfg.mobile_nodes)}"]
        parts.append(f"foreign_agents={len(cfg.foreign_agents)}")
        if cfg.hsrp is not None:
            parts.append(f"hsrp=group {cfg.hsrp.group} vip {cfg.hsrp.virtual_ip}")
        if cfg.redundancy is not None:
            parts.append(f"peer={cfg.redundancy.peer}")
    if cfg.slb is not None:
        parts += [
            f"vserver={cfg.slb.virtual_address}:{cfg.slb.port}",
            f"reals={len(cfg.slb.reals)}",
        ]
        parts.append(f"mode={cfg.slb.mode}")
    if cfg.foreign_agent is not None:
        parts.append(f"fa={cfg.foreign_agent.address}")
    if cfg.mobile_node is not None:
        parts += [f"nai={cfg.mobile_node.nai}", f"count={cfg.mobile_node.count}"]
    if cfg.role in ("home-agent", "foreign-agent"):
        parts.append(f"dataplane={cfg.dataplane.backend}")
    return " ".join(parts)


def host_problems(cfg: Config) -> list[str]:
    """What a valid config asks of this host that it does not have: the interfaces it
    names (``hsrp.interface``, ``dataplane.visitor_iface``) and the directory of the
    binding journal (``home_agent.journal``). ``mobileha run`` refuses to
    start with them; ``mobileha check`` reports them unless ``--no-host``."""
    wanted: list[tuple[str, str]] = []
    if cfg.hsrp is not None:
        wanted.append(("hsrp.interface", cfg.hsrp.interface))
    if cfg.role == "foreign-agent" and cfg.dataplane.visitor_iface:
        wanted.append(("dataplane.visitor_iface", cfg.dataplane.visitor_iface))
    out = []
    for key, name in wanted:
        try:
            socket.if_nametoindex(name)
        except OSError:
            out.append(f"{key}: no interface {name!r} on this host")
    journal = cfg.home_agent.journal if cfg.home_agent is not None else None
    if journal is not None:
        where = os.path.dirname(os.path.abspath(journal))
        if not os.access(where, os.W_OK | os.X_OK):
            out.append(
                f"home_agent.journal: {journal}: directory {where} is missing or not writable"
            )
    return out


def main(argv: list[str]) -> int:
    """``mobileha check CONFIG...``: exit 0 with one OK line per file, 1 on problems."""
    ap = argparse.ArgumentParser(
        prog="mobileha check", description="validate node configs and name every bad key"
    )
    ap.add_argument("config", nargs="+", help="TOML config file(s)")
    ap.add_argument(
        "--no-host",
        action="store_true",
        help="skip the checks against this host (interfaces): for configs of other hosts",
    )
    args = ap.parse_args(argv)
    rc = 0
    for path in args.config:
        try:
            cfg = load_config(path)
        except ConfigError as e:
            rc = 1
            print(f"{path}: {len(e.problems)} problem(s)", file=sys.stderr)
            for p in e.problems:
                print(f"{path}: {p}", file=sys.stderr)
            continue
        host = [] if args.no_host else host_problems(cfg)
        if host:
            rc = 1
            print(f"{path}: {len(host)} problem(s) on this host", file=sys.stderr)
            for p in host:
                print(f"{path}: {p}", file=sys.stderr)
            continue
        print(f"{path}: OK {summary(cfg)}")
        for w in channel_warnings(cfg):
            print(f"{path}: warning: {w}", file=sys.stderr)
    return rc


__all__ = ["host_problems", "main", "summary"]
