"""The data plane backends by name: ``[dataplane] backend = "<name>"`` -> a backend class.

One table maps each name to the ``"module:Class"`` of its backend; :func:`create` imports
the module only when that backend is asked for, so a host without pyroute2 (kernel) or a
TUN device (userspace) can still run the others, and ``base`` never imports a backend.
"""

from __future__ import annotations

import importlib
from typing import Any

from mobileha.dataplane.base import DataPlane

BACKENDS: dict[str, str] = {
    "userspace": "mobileha.dataplane.userspace:UserspaceDataPlane",
    "kernel": "mobileha.dataplane.kernel:KernelDataPlane",
    "ebpf": "mobileha.dataplane.ebpf:EbpfDataPlane",
    "memory": "mobileha.dataplane.memory:MemoryDataPlane",
}


def backend_class(kind: str) -> Any:
    """The class of backend ``kind`` (its module imported now); ValueError if unknown."""
    target = BACKENDS.get(kind)
    if target is None:
        names = ", ".join(BACKENDS)
        raise ValueError(f"unknown data plane backend {kind!r} ({names})")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def create(kind: str, **options: object) -> DataPlane:
    """Make a backend by name (``"userspace"``, ``"kernel"``, ``"ebpf"``, ``"memory"``).

    ``options`` go to the backend's constructor. Raises
    :class:`~mobileha.dataplane.base.BackendUnavailable` with an operator-readable reason
    when the backend cannot run here.
    """
    dp: DataPlane = backend_class(kind)(**options)
    return dp


__all__ = ["BACKENDS", "backend_class", "create"]
