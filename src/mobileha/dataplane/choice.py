"""Choosing and opening a data plane backend (``[dataplane] backend``), and what it can carry.

``backend = "auto"`` (the default) tries, in this order, the first backend that starts here:

* ``kernel``: ipip/gre devices, where the kernel has the ``ipip`` and ``ip_gre`` drivers;
* ``ebpf``: the BPF programs, where they are built and the kernel loads them (root);
* ``userspace``: TUN and raw sockets (root).

Each backend that was not taken is logged with its reason; when none starts, the error names
every reason. An explicitly configured backend that cannot start is a start-up error with
its reason: there is no silent fallback (``memory`` only when configured).

Nodes pass one dictionary of options for any backend (:func:`node_options`); each backend
receives the ones its constructor takes (``device`` becomes the userspace TUN name or the
ebpf sink name).

:class:`Capabilities` is what the registration logic must know about the data plane: the
encapsulations it carries (an HA refuses the others with code 139), the copies it sends per
home address (simultaneous bindings; 1 means none, accepted with code 1) and how many
bindings its tables hold (beyond it the HA answers 130).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from mobileha.dataplane.base import (
    BackendUnavailable,
    Capabilities,
    DataPlane,
    DataPlaneError,
    DataPlaneSummary,
)
from mobileha.dataplane.registry import backend_class, create
from mobileha.log import get_logger

_log = get_logger("mobileha.dataplane")

BACKENDS = ("auto", "kernel", "ebpf", "userspace", "memory")
AUTO_ORDER = ("kernel", "ebpf", "userspace")


@dataclass(slots=True)
class Opened:
    """The backend in use, and why each backend tried before it was not taken."""

    backend: str
    dataplane: DataPlane
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        if not self.refused:
            return "configured" if self.backend != "auto" else ""
        return "; ".join(f"{k}: {v}" for k, v in self.refused.items())


def backend_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` the constructor of ``kind`` takes (``device`` mapped)."""
    params = inspect.signature(backend_class(kind)).parameters
    out = {k: v for k, v in options.items() if k in params and v is not None}
    device = options.get("device")
    if device:
        for name in ("tun_name", "sink"):
            if name in params:
                out[name] = device
    return out


def node_options(
    role: str,
    *,
    device: str | None = None,
    mtu: int | None = None,
    home_prefix: str | None = None,
    visitor_iface: str | None = None,
    capacity: int | None = None,
) -> dict[str, Any]:
    """The options a node passes for any backend (None: the backend's default)."""
    opts: dict[str, Any] = {"role": role}
    for k, v in (
        ("device", device),
        ("mtu", mtu),
        ("home_prefix", home_prefix),
        ("visitor_iface", visitor_iface),
        ("capacity", capacity),
    ):
        if v is not None:
            opts[k] = v
    return opts


def _start(kind: str, options: dict[str, Any]) -> DataPlane:
    try:
        return create(kind, **backend_options(kind, options))
    except (DataPlaneError, OSError, ImportError, ValueError) as e:
        raise BackendUnavailable(str(e) or type(e).__name__) from e


def open_dataplane(kind: str, options: dict[str, Any]) -> Opened:
    """Start the backend ``kind`` (or choose one for ``"auto"``); log the choice.

    Raises :class:`BackendUnavailable` saying why (every reason, for ``"auto"``).
    """
    if kind not in BACKENDS:
        raise BackendUnavailable(f"unknown data plane backend {kind!r} ({', '.join(BACKENDS)})")
    role = options.get("role", "ha")
    if kind != "auto":
        try:
            dp = _start(kind, options)
        except BackendUnavailable as e:
            raise BackendUnavailable(f"data plane backend {kind!r} cannot start: {e}") from e
        _log.info("data plane backend", backend=kind, role=role, chosen="configured")
        return Opened(kind, dp)
    refused: dict[str, str] = {}
    for k in AUTO_ORDER:
        try:
            dp = _start(k, options)
        except BackendUnavailable as e:
            refused[k] = str(e)
            _log.info("data plane backend not taken", backend=k, role=role, reason=str(e))
            continue
        _log.info("data plane backend", backend=k, role=role, chosen="auto")
        return Opened(k, dp, refused)
    raise BackendUnavailable(
        "no data plane backend can run here: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
    )


def capabilities(dp: Any) -> Capabilities:
    """What ``dp`` carries (backends without ``capabilities()`` carry everything)."""
    fn = getattr(dp, "capabilities", None)
    if fn is None:
        return Capabilities()
    c: Capabilities = fn()
    return c


def backend_name(dp: Any) -> str:
    return str(getattr(dp, "name", type(dp).__name__))


_TOTALS = ("tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes", "drops")


def summary(dp: Any) -> DataPlaneSummary:
    """``dp.summary()``, or totals over ``dp.stats()`` for backends without one."""
    fn = getattr(dp, "summary", None)
    if fn is not None:
        s: DataPlaneSummary = fn()
        return s
    st = dp.stats()
    totals = {k: sum(t.get(k, 0) for t in st.tunnels.values()) for k in _TOTALS}
    return DataPlaneSummary(backend_name(dp), len(st.tunnels), totals, dict(st.drops))


def tunnel_counters(dp: Any, home_addr: str, care_of: str) -> dict[str, int] | None:
    """One binding's counters where the backend can give them cheaply, else None."""
    fn = getattr(dp, "tunnel_counters", None)
    if fn is None:
        return None
    c: dict[str, int] | None = fn(home_addr, care_of)
    return c


__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Capabilities",
    "Opened",
    "backend_name",
    "backend_options",
    "capabilities",
    "node_options",
    "open_dataplane",
    "summary",
    "tunnel_counters",
]
