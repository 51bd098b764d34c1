"""``mobileha check CONFIG...``: validate node configs and name every bad key.

Exit 0 with one ``OK`` line per file (the role and what it serves, :func:`summary`), 1 when a
file has problems: each is printed on stderr as ``FILE: key.path: what is wrong``. A valid
file's unauthenticated channels follow its OK line on stderr, one
``FILE: warning: key: ...`` line each (:func:`mobileha.config.security.channel_warnings`).
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str]) -> int:
    """``mobileha check CONFIG...``: exit 0 with one OK line per file, 1 on problems."""
    ap = argparse.ArgumentParser(
        prog="mobileha check", description="validate node configs and name every bad key"
    )
    ap.add_argument("config", nargs="+", help="TOML config file(s)")
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
        print(f"{path}: OK {summary(cfg)}")
        for w in channel_warnings(cfg):
            print(f"{path}: warning: {w}", file=sys.stderr)
    return rc


__all__ = ["main", "summary"]
