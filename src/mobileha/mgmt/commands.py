"""Operator commands of the management API (``POST /api/<command>``), by role.

A command takes the request's query parameters and returns a JSON-able result; a
``ValueError`` is a 400 (bad parameters). Commands change the node only through its public
methods (the node decides in its sans-IO core), like the IOS commands they mirror:

* home-agent ``clear/binding``: ``home=<HoA>``, ``nai=<NAI>`` or ``all=1`` (``clear ip
  mobile binding``): the bindings are deleted on the Active, the standby follows through
  binding sync and the foreign agents through registration revocation (RFC 3543).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mobileha.config.validate import is_ipv4

Command = Callable[[Mapping[str, str]], Any]


def commands_for(node: Any) -> Mapping[str, Command]:
    if getattr(node, "role", "") == "home-agent" and hasattr(node, "clear_bindings"):
        return {"clear/binding": lambda q: clear_binding(node, q)}
    return {}


def clear_binding(node: Any, query: Mapping[str, str]) -> dict[str, Any]:
    home, nai, every = query.get("home"), query.get("nai"), query.get("all") in ("1", "true")
    if sum((home is not None, nai is not None, every)) != 1:
        raise ValueError("give exactly one of home=<address>, nai=<NAI>, all=1")
    if home is not None and not is_ipv4(home):
        raise ValueError(f"home: not an IPv4 address: {home!r}")
    n = node.clear_bindings(home_addr=home, nai=nai, everything=every)
    return {"cleared": n}


__all__ = ["Command", "clear_binding", "commands_for"]
