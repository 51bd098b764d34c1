"""The ``DataPlane`` interface (DESIGN §4) shared by the userspace, kernel and memory backends.

A data plane carries the packets of installed bindings; it never decides anything about
registration. The node adapters call it for the core's actions::

    InstallBinding(b) -> dp.install(b)      RemoveBinding(b) -> dp.remove(b)
    ClaimVip(a, mac)  -> dp.claim_vip(a, mac, name)          ReleaseVip(a) -> dp.release_vip(a)

Role: on a home agent (``role="ha"``) a binding means "tunnel packets for ``home_addr`` from
``ha_addr`` to ``care_of``" (and, with T, accept the reverse tunnel from ``care_of``); on a
foreign agent (``role="fa"``) the same :class:`~mobileha.core.binding.Binding` describes a
visitor: decapsulate from ``ha_addr`` toward ``home_addr`` on the local visitor link and,
with T, reverse-tunnel the visitor's packets from ``care_of`` to ``ha_addr``.

Semantics: ``install`` of a binding without S replaces every other binding of the same home
address (RFC 5944 §3.6.1.2: a registration without S replaces the existing ones); with S it
is added alongside them, and one copy goes to each. ``install`` of an already installed
(home, care-of) pair updates it in place (new encapsulation/key/flags). ``remove`` of an
unknown binding is a no-op. Counters are per tunnel (home address, care-of address) and
per drop reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mobileha.core.binding import Binding, Encap


class DataPlaneError(RuntimeError):
    """The data plane cannot do what was asked (the message says why, for an operator)."""


class UnsupportedEncapsulation(DataPlaneError):
    """This backend cannot carry the binding's encapsulation (maps to reply code 139)."""


class BackendUnavailable(DataPlaneError):
    """The backend cannot run on this host (missing kernel feature, privileges...)."""


class TunnelCounters:
    """Packet/byte/drop counters of one tunnel. Plain attributes: cheap to bump per packet."""

    __slots__ = ("drops", "rx_bytes", "rx_pkts", "tx_bytes", "tx_pkts")

    def __init__(self) -> None:
        self.tx_pkts = 0  # packets encapsulated into the tunnel
        self.tx_bytes = 0  # inner bytes encapsulated
        self.rx_pkts = 0  # packets decapsulated from the tunnel and delivered
        self.rx_bytes = 0
        self.drops = 0  # packets of this tunnel dropped (loop, spoof, bad key, send error)

    def as_dict(self) -> dict[str, int]:
        return {
            k: getattr(self, k) for k in ("tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes", "drops")
        }


@dataclass(slots=True)
class DataPlaneStats:
    """A snapshot: per-tunnel counters keyed by (home address, care-of address), and drops
    by reason (``no-binding``, ``spoof``, ``loop``, ``bad-key``, ``malformed``, ...)."""

    tunnels: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DataPlaneSummary:
    """Cheap whole-node counters for ``show stats`` and ``/metrics``: the backend, the
    number of tunnels, totals over them (``TunnelCounters`` names) and drops by reason."""

    backend: str
    tunnels: int
    totals: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # control plane: map full, ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend carries, for the registration logic: the encapsulations (an HA refuses
    others with code 139), copies per home address (simultaneous bindings; None = no limit,
    1 = none, accepted with code 1) and bindings its tables hold (beyond: code 130)."""

    encaps: frozenset[Encap] = frozenset(Encap)
    max_copies: int | None = None
    max_bindings: int | None = None


@runtime_checkable
class DataPlane(Protocol):
    """What the node adapters need from a data plane backend."""

    def install(self, binding: Binding) -> None:
        """Start (or update) forwarding for ``binding``."""

    def remove(self, binding: Binding) -> None:
        """Stop forwarding for ``binding``: no routes, devices or proxy ARP left for it."""

    def claim_vip(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        """Own the virtual IP ``addr``: add it to the VIP interface (on the macvlan ``name``
        carrying the virtual MAC ``mac`` when the owner uses macvlans) and announce it with
        gratuitous ARPs; claiming it again announces it again. One implementation for
        every backend: :class:`mobileha.dataplane.vip.VipOwner`."""

    def release_vip(self, addr: str) -> None:
        """Give up the virtual IP ``addr``."""

    def stats(self) -> DataPlaneStats:
        """Per-tunnel counters and drops by reason."""

    def close(self) -> None:
        """Remove everything this data plane installed and release its resources."""


def install_each(install: Callable[[Binding], None], bindings: Iterable[Binding]) -> int:
    """``install`` every binding; those refused are skipped and, at the end, reported as one
    :class:`DataPlaneError` naming the first. Returns how many were installed."""
    errors: list[DataPlaneError] = []
    n = 0
    for b in bindings:
        try:
            install(b)
            n += 1
        except DataPlaneError as e:
            errors.append(e)
    if errors:
        raise DataPlaneError(f"{len(errors)} binding(s) not installed, first: {errors[0]}")
    return n


__all__ = [
    "BackendUnavailable",
    "Capabilities",
    "DataPlane",
    "DataPlaneError",
    "DataPlaneStats",
    "DataPlaneSummary",
    "TunnelCounters",
    "UnsupportedEncapsulation",
    "install_each",
]
