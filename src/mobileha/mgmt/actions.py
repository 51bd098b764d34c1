"""State-changing requests of the management API (``POST /api/<action>``), by role.

:func:`actions_for` maps an action name to a function of the request's arguments (its
query parameters and the members of its JSON body) that returns a JSON-serialisable result
(``ValueError`` -> 400 with its text). The API serves them only to requests carrying its
bearer token (``mobileha.mgmt.api``), whatever the listen address. Actions change the node
only through its public methods (the node decides in its sans-IO core), like the IOS
commands they mirror:

* home-agent ``clear/binding``: ``home=<HoA>``, ``nai=<NAI>`` or ``all=1`` (``clear ip
  mobile binding``): the bindings are deleted on the Active, the standby follows through
  binding sync and the foreign agents through registration revocation (RFC 3543).

A role with nothing to change has no actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mobileha.config.validate import is_ipv4

Action = Callable[[Mapping[str, Any]], Any]


def actions_for(node: Any) -> dict[str, Action]:
    """The actions ``node`` offers."""
    role = getattr(node, "role", "")
    if role == "home-agent" and hasattr(node, "clear_bindings"):
        return {"clear/binding": lambda args: clear_binding(node, args)}
    if role == "foreign-agent" and hasattr(node, "clear_visitors"):
        return {"clear/visitor": lambda args: clear_visitor(node, args)}
    return {}


def _which(args: Mapping[str, Any]) -> dict[str, Any]:
    """``home=<HoA>``, ``nai=<NAI>`` or ``all=1`` as the keyword arguments of the node's
    clear method (exactly one of them)."""
    home, nai = args.get("home"), args.get("nai")
    every = str(args.get("all")).lower() in ("1", "true")
    if sum((home is not None, nai is not None, every)) != 1:
        raise ValueError("give exactly one of home=<address>, nai=<NAI>, all=1")
    if home is not None and not is_ipv4(str(home)):
        raise ValueError(f"home: not an IPv4 address: {home!r}")
    return {"home_addr": home, "nai": nai, "everything": every}


def clear_binding(node: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"cleared": node.clear_bindings(**_which(args))}


def clear_visitor(node: Any, args: Mapping[str, Any]) -> dict[str, Any]:
    return {"cleared": node.clear_visitors(**_which(args))}


__all__ = ["Action", "actions_for", "clear_binding", "clear_visitor"]
