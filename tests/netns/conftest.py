"""Fixtures for tests that need root and network namespaces (see mobileha.lab.netns)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mobileha.lab.netns import Topology, netns_available


def require_netns() -> None:
    """Skip the calling test with the reason namespaces cannot be made here."""
    ok, reason = netns_available()
    if not ok:
        pytest.skip(f"needs network namespaces: {reason}")


@pytest.fixture
def topology() -> Iterator[Topology]:
    """A fresh :class:`Topology` (unique names), torn down after the test, also on failure."""
    require_netns()
    with Topology() as topo:
        yield topo
