"""Helpers shared by every test suite: request builder, waiting, free ports, namespaces.

Fixtures built on them are in ``tests/conftest.py``.
"""

from tests.helpers.mip import farm_request, request
from tests.helpers.net import free_port
from tests.helpers.wait import until, wait_for

__all__ = ["farm_request", "free_port", "request", "until", "wait_for"]
