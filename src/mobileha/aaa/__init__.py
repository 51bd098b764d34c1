"""AAA for the foreign agent: one async interface (:mod:`mobileha.aaa.base`), a local table
(:mod:`mobileha.aaa.local`) and a RADIUS client (:mod:`mobileha.aaa.radius`)."""

from __future__ import annotations

from mobileha.aaa.base import AaaBackend, AaaResult, MnAaaAuth

__all__ = ["AaaBackend", "AaaResult", "MnAaaAuth"]
