"""What differs between two configs of one node, key by key (for a reload).

:func:`differences` walks two :class:`~mobileha.config.model.Config` trees and returns one
:class:`Difference` per changed value, named by its TOML key (``hsrp.priority``,
``redundancy.key``, ``slb.real[1].weight``); arrays of tables of the same length are
compared entry by entry, others as a whole (``mobile_node: 20 -> 21 entries``).
:func:`keep` returns a config with some differences undone (a reload keeps what needs a
restart as it was).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from mobileha.config.model import Config, Endpoint, HsrpAuth

# model field -> TOML key where they differ ("" drops the level: an SA's keys are the
# table's own keys)
_TOML = {
    "mobile_nodes": "mobile_node",
    "foreign_agents": "foreign_agent",
    "slb_sas": "slb_sa",
    "home_agent_sas": "home_agent_sa",
    "reals": "real",
    "users": "user",
    "sa": "",
}
_ATOMIC = (HsrpAuth,)  # compared as one value
_SKIP = {"source"}
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True, slots=True)
class Difference:
    """One changed value: its model path (field names, tuple indexes as ints), its TOML
    key, and both values."""

    path: tuple[str | int, ...]
    key: str
    old: Any
    new: Any

    @property
    def table_key(self) -> str:
        """The key without array indexes (``slb.real.weight``), as the schema names it."""
        return _INDEX.sub("", self.key)

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} -> {_show(self.new)}"


def _show(v: Any) -> str:
    if isinstance(v, bytes | HsrpAuth):
        return "(secret)"
    if isinstance(v, tuple) and v and dataclasses.is_dataclass(v[0]):
        return f"{len(v)} entries"
    if dataclasses.is_dataclass(v):
        return "(table)"
    if v is None:
        return "none"
    if isinstance(v, Endpoint):
        return str(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def _join(key: str, name: str) -> str:
    part = _TOML.get(name, name)
    if not part:
        return key
    return f"{key}.{part}" if key else part


def differences(old: Config, new: Config) -> list[Difference]:
    """Every value that differs between ``old`` and ``new``, in field order."""
    out: list[Difference] = []
    _walk(old, new, (), "", out)
    return out


def _walk(a: Any, b: Any, path: tuple[str | int, ...], key: str, out: list[Difference]) -> None:
    for f in dataclasses.fields(a):
        if f.name in _SKIP:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x == y:
            continue
        p, k = (*path, f.name), _join(key, f.name)
        if _nested(x, y):
            _walk(x, y, p, k, out)
        elif _entries(x, y):
            for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
                if xi != yi:
                    _walk(xi, yi, (*p, i), f"{k}[{i}]", out)
        else:
            out.append(Difference(p, k, x, y))


def _nested(x: Any, y: Any) -> bool:
    return (
        dataclasses.is_dataclass(x)
        and type(x) is type(y)
        and not isinstance(x, _ATOMIC)
        and not isinstance(x, type)
    )


def _entries(x: Any, y: Any) -> bool:
    """Two arrays of tables of the same length (compared entry by entry)."""
    return (
        isinstance(x, tuple)
        and isinstance(y, tuple)
        and len(x) == len(y)
        and bool(x)
        and all(_nested(xi, yi) for xi, yi in zip(x, y, strict=True))
    )


def keep(new: Config, old: Config, kept: list[Difference]) -> Config:
    """``new`` with the values of ``kept`` set back to ``old``'s."""
    out = new
    for d in kept:
        out = _set(out, d.path, _get(old, d.path))
    return out


def _get(obj: Any, path: tuple[str | int, ...]) -> Any:
    for p in path:
        obj = obj[p] if isinstance(p, int) else getattr(obj, p)
    return obj


def _set(obj: Any, path: tuple[str | int, ...], value: Any) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(obj)
        items[head] = value if not rest else _set(items[head], rest, value)
        return tuple(items)
    child = value if not rest else _set(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: child})


__all__ = ["Difference", "differences", "keep"]
