"""Reload a running node's config (SIGHUP, ``systemctl reload``, ``mobileha reload``).

:class:`Reloader` re-reads the config file and validates it whole (the same checks as
``mobileha check`` and start-up); an invalid file is refused with its problems and the node
runs on with the config it has. A valid one is compared with the running config key by key
(:func:`mobileha.config.diff.differences`): what :data:`LIVE` lists for the node's role is
applied to the running node, keeping every binding, replay state, visitor, SLB session and
HSRP state; everything else needs a restart, is named in a warning and left as it runs.

Applied live, by role:

* every role: ``[log]`` level, format and rate limit;
* home agent: the ``[home_agent]`` settings but its addresses, port and home prefix; the
  mobile node table and every SA (``[[mobile_node]]``, ``[[foreign_agent]]``,
  ``[[home_agent.slb_sa]]``, the local ``[[aaa.user]]`` keys), the pool (allocations of bound
  addresses are kept), HSRP priority, preemption, timers, authentication and name, the sync
  key and timers, the DFP agent's interval, maximum weight and password. These go through
  :func:`mobileha.compose.home_agent_agents`, so a new source of SAs added there is
  reloaded too (the hook for realm tables and AAA-backed SAs);
* foreign agent: ``[foreign_agent]`` but its address, port and care-of address, its FA-HA SAs,
  and ``[aaa]`` (a new backend; lookups under way finish on the old one);
* SLB: reals added, removed and changed (weights, limits, names, DFP agents), the failure
  detection, session, predictor and relay-tag settings, the DFP manager's password and
  timers.

:data:`Reloader.view` is the ``reload`` view of the management API: the last result with
what changed, what needs a restart and the problems of a refused file.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobileha import compose, systemd
from mobileha.config import Config, ConfigError, host_problems, load_config
from mobileha.config.diff import Difference, differences, keep
from mobileha.core.cluster import Reconfigure
from mobileha.log import get_logger, setup_logging

_log = get_logger("mobileha.reload")

_LOG = ("log.level", "log.format", "log.rate_limit_s")
_SA = ("spi", "key", "algorithm", "replay", "replay_tolerance")

# table keys (config.diff's ``table_key``: TOML keys without array indexes) applied live;
# fnmatch patterns. A whole array of tables whose length changed is named by the array.
LIVE: dict[str, tuple[str, ...]] = {
    "home-agent": (
        *_LOG,
        "home_agent.trusted_slb",
        "home_agent.relay_vendor_id",
        "home_agent.max_lifetime",
        "home_agent.replay_tolerance",
        "home_agent.max_bindings",
        "home_agent.pool",
        "home_agent.reverse_tunnel",
        "home_agent.gre",
        "home_agent.minimal_encap",
        "home_agent.reverse_tunnel_required",
        "home_agent.simultaneous_bindings",
        "home_agent.redirect_ha",
        "home_agent.answer_duplicates",
        "home_agent.slb_sa",
        "home_agent.slb_sa.*",
        "mobile_node",
        "mobile_node.*",
        "foreign_agent",
        "foreign_agent.*",
        "aaa.user",
        "aaa.user.*",
        "hsrp.priority",
        "hsrp.preempt",
        "hsrp.preempt_delay_s",
        "hsrp.hello_ms",
        "hsrp.hold_ms",
        "hsrp.authentication",
        "hsrp.name",
        "hsrp.groups.priority",
        "hsrp.groups.preempt",
        "hsrp.groups.preempt_delay_s",
        "hsrp.groups.name",
        *(f"redundancy.{k}" for k in _SA),
        "redundancy.retransmit_ms",
        "redundancy.retries",
        "redundancy.queue_max",
        "redundancy.chunk_bytes",
        "dfp.interval_s",
        "dfp.max_weight",
        "dfp.password",
    ),
    "foreign-agent": (
        *_LOG,
        "foreign_agent.home_agent",
        "foreign_agent.home_agent_port",
        "foreign_agent.max_lifetime",
        "foreign_agent.max_visitors",
        "foreign_agent.pending_timeout_s",
        "foreign_agent.reverse_tunnel",
        "foreign_agent.gre",
        "foreign_agent.gre_key_format",
        "foreign_agent.challenge",
        "foreign_agent.ha_fallback_after",
        "foreign_agent.home_agent_sa",
        "foreign_agent.home_agent_sa.*",
        "aaa",
        "aaa.*",
    ),
    "slb": (
        *_LOG,
        "slb.session_s",
        "slb.reassign",
        "slb.faildetect_numconns",
        "slb.faildetect_numclients",
        "slb.retry_s",
        "slb.predictor",
        "slb.relay_vendor_id",
        "slb.max_sessions",
        "slb.relay_sa",
        "slb.relay_sa.*",
        "slb.real",
        "slb.real.*",
        "dfp.password",
        "dfp.timeout_s",
        "dfp.retry_interval_s",
    ),
    "mobile-node": _LOG,
}


def is_live(role: str, d: Difference) -> bool:
    """Can ``d`` be applied to a running node of ``role``?"""
    key = d.table_key
    return any(fnmatch.fnmatchcase(key, p) for p in LIVE.get(role, ()))


@dataclass(slots=True)
class ReloadResult:
    """One reload: ``ok`` (applied, possibly with nothing to do) or refused (``errors``)."""

    generation: int
    at: float  # unix time
    ok: bool
    changed: list[str] = field(default_factory=list)  # "key: old -> new", applied
    restart: list[str] = field(default_factory=list)  # changed in the file, need a restart
    errors: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "at": self.at,
            "ok": self.ok,
            "changed": self.changed,
            "restart_needed": self.restart,
            "errors": self.errors,
        }


def apply_logging(cfg: Config, level: str | None = None, fmt: str | None = None) -> None:
    """The config's ``[log]`` level and format (``level``/``fmt``: command-line overrides,
    kept over a reload); start-up and reload both go through here. Under systemd with
    stderr connected to the journal, records go to the journal with their fields
    (:class:`mobileha.systemd.JournalHandler`) whatever the format."""
    global _journal
    handler = None
    if systemd.under_journal():
        if _journal is None:
            path = os.environ.get("MOBILEHA_JOURNAL_SOCKET", systemd.JOURNAL_SOCKET)
            _journal = systemd.JournalHandler("mobileha", path)
        handler = _journal
    setup_logging(level or cfg.log.level, fmt or cfg.log.format, handler=handler)


_journal: systemd.JournalHandler | None = None


async def apply_to_node(node: Any, cfg: Config, changed: list[Difference]) -> None:
    """Apply ``cfg`` (whose differences from the running config are ``changed``, all live)
    to a running ``node``."""
    from mobileha.node.foreign_agent import ForeignAgentNode
    from mobileha.node.home_agent import HomeAgentNode
    from mobileha.node.slb import SlbNode

    rate = cfg.log.rate_limit_s
    if isinstance(node, HomeAgentNode):
        event = Reconfigure(
            tuple(compose.home_agent_agents(cfg)), tuple(compose.home_agent_hsrp_groups(cfg))
        )
        node.reconfigure(event, rate_limit_s=rate, dfp=cfg.dfp)
    elif isinstance(node, ForeignAgentNode):
        aaa_changed = any(d.table_key.split(".")[0] == "aaa" for d in changed)
        aaa: Any = compose.foreign_agent_aaa(cfg) if aaa_changed else False
        node.reconfigure(compose.foreign_agent_options(cfg), aaa=aaa, rate_limit_s=rate)
    elif isinstance(node, SlbNode):
        await node.reconfigure(compose.slb_settings(cfg))
        node.bad.interval_s = rate


class Reloader:
    """Reloads of one running node (serialised: a SIGHUP during a reload waits for it)."""

    def __init__(
        self,
        cfg: Config,
        node: Any,
        path: str | Path | None = None,
        *,
        log_level: str | None = None,
        log_format: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.node = node
        self.path = None if path is None else Path(path).absolute()
        self.log_level = log_level
        self.log_format = log_format
        self.last: ReloadResult | None = None
        self.generation = 0
        self._lock = asyncio.Lock()

    async def reload(self, new: Config | None = None) -> ReloadResult:
        """Re-read the file (or take ``new``), validate, apply what can change live."""
        async with self._lock:
            self.generation += 1
            result = await self._reload(new)
            self.last = result
            return result

    def _refuse(self, errors: list[str]) -> ReloadResult:
        _log.error(
            "reload refused: the node runs on with the config it has",
            node=self.cfg.name,
            config=str(self.path or ""),
            problems=len(errors),
            errors="; ".join(errors),
        )
        return ReloadResult(self.generation, time.time(), False, errors=errors)

    async def _reload(self, new: Config | None) -> ReloadResult:
        where = str(self.path) if self.path is not None else "(given)"
        if new is None:
            if self.path is None:
                return self._refuse(["no config file to re-read (started without one)"])
            try:
                new = load_config(self.path)
            except ConfigError as e:
                return self._refuse(list(e.problems))
            except OSError as e:
                return self._refuse([f"{where}: {e.strerror or e}"])
        problems = host_problems(new)
        if problems:
            return self._refuse(problems)
        if new.role != self.cfg.role:
            return self._refuse([f"node.role: {self.cfg.role} -> {new.role} needs a restart"])
        diffs = differences(self.cfg, new)
        live = [d for d in diffs if is_live(new.role, d)]
        restart = [d for d in diffs if not is_live(new.role, d)]
        applied = keep(new, self.cfg, restart)
        try:
            apply_logging(applied, self.log_level, self.log_format)
            await apply_to_node(self.node, applied, live)
        except (ValueError, KeyError, OSError) as e:
            return self._refuse([f"not applied: {e}"])
        self.cfg = applied
        result = ReloadResult(
            self.generation,
            time.time(),
            True,
            changed=[str(d) for d in live],
            restart=[str(d) for d in restart],
        )
        _log.info(
            "config reloaded" if live else "config reloaded: nothing to change",
            node=new.name,
            config=where,
            changed="; ".join(result.changed) or "none",
        )
        if restart:
            _log.warning(
                "reload: these changes need a restart and are not applied",
                node=new.name,
                keys="; ".join(result.restart),
            )
        return result

    def view(self, _query: Any = None) -> dict[str, Any]:
        """The ``reload`` view: the last reload (generation 0: none yet)."""
        if self.last is None:
            return {"generation": 0, "config": str(self.path or "")}
        return {**self.last.view(), "config": str(self.path or "")}


__all__ = ["LIVE", "ReloadResult", "Reloader", "apply_logging", "apply_to_node", "is_live"]
