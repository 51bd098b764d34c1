"""State-changing requests of the management API (``POST /api/<action>``).

:func:`actions_for` maps an action name to a function of the request's JSON object that
returns a JSON-serialisable result (``ValueError`` -> 400 with its text). The API serves
them only to requests carrying its bearer token (``mobileha.mgmt.api``), whatever the
listen address. A role with nothing to change has no actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mobileha.mgmt.commands import commands_for

Action = Callable[[Mapping[str, Any]], Any]


def actions_for(node: object) -> dict[str, Action]:
    """The actions ``node`` offers: the operator commands of its role
    (:mod:`mobileha.mgmt.commands`); their arguments are the query parameters and the
    JSON body's members."""
    return dict(commands_for(node))


__all__ = ["Action", "actions_for"]
