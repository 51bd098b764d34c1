"""Fixtures shared by every test suite (helpers themselves are in ``tests.helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mobileha.lab.netns import Topology
from tests.helpers.netns import require_netns


def _topology() -> Iterator[Topology]:
    require_netns()
    with Topology() as topo:
        yield topo


@pytest.fixture
def topology() -> Iterator[Topology]:
    """A fresh :class:`~mobileha.lab.netns.Topology` for one test: namespaces named
    ``mh<random hex>-<name>`` (never an existing one), every process and namespace it made
    removed at teardown, also when the test fails or is interrupted."""
    yield from _topology()


@pytest.fixture(scope="module")
def module_topology() -> Iterator[Topology]:
    """The same, shared by the tests of one module (a lab built once)."""
    yield from _topology()
