"""Helpers shared by the test suites."""

from __future__ import annotations

import socket
from typing import Any

from mobileha.wire.mip import NaiExt, RegistrationRequest


def free_port(host: str, kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free on ``host`` now (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


SLB_VSERVER = ("10.0.0.100", 434)


def farm_request(
    farm: Any, key: str | tuple[str, str], ident: int, client: str, now: float, port: int = 0
) -> Any:
    """A Registration Request of session ``key`` from the FA ``client`` into a
    :class:`mobileha.core.slb.ServerFarm`: the NAI ``key``, or, for a ``(home address, FA)``
    key, a request without an NAI from that home address. Returns the farm's Decision."""
    if isinstance(key, str):
        req = RegistrationRequest(lifetime=1800, ident=ident, extensions=[NaiExt(key)])
    else:
        req = RegistrationRequest(lifetime=1800, ident=ident, home_addr=key[0])
    return farm.receive_datagram(req.encode(), (client, port), SLB_VSERVER, now)
