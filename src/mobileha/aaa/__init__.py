"""AAA for the foreign agent: one async interface (:mod:`mobileha.aaa.base`), a local table
(:mod:`mobileha.aaa.local`) and a RADIUS client (:mod:`mobileha.aaa.radius`)."""

from __future__ import annotations

from typing import Any

from mobileha.aaa.base import AaaBackend, AaaResult, MnAaaAuth


def from_config(aaa: Any, nas_ip: str | None = None) -> AaaBackend:
    """The backend ``[aaa]`` asks for (``mobileha.config.AaaConfig``)."""
    if aaa.backend == "radius":
        from mobileha.aaa.radius import RadiusAaa

        return RadiusAaa.from_config(aaa, nas_ip=nas_ip)
    from mobileha.aaa.local import LocalAaa

    return LocalAaa.from_config(aaa)


__all__ = ["AaaBackend", "AaaResult", "MnAaaAuth", "from_config"]
