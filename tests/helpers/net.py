"""Ports and addresses for tests that open sockets (loopback only)."""

from __future__ import annotations

import socket


def free_port(host: str, kind: int = socket.SOCK_DGRAM) -> int:
    """A port that is free on ``host`` now (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
