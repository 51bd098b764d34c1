"""Network namespaces for tests (``mobileha.lab.netns``): skip with the reason when they
cannot be made here."""

from __future__ import annotations

import pytest

from mobileha.lab.netns import netns_available


def require_netns() -> None:
    """Skip the calling test with the reason namespaces cannot be made here."""
    ok, reason = netns_available()
    if not ok:
        pytest.skip(f"needs network namespaces: {reason}")
