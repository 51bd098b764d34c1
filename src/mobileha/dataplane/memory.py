"""The ``memory`` data plane: records what would be installed (unit tests, loopback demo)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mobileha.core.binding import Binding
from mobileha.dataplane.base import DataPlaneError, DataPlaneStats, TunnelCounters
from mobileha.dataplane.vip import VipOwner


@dataclass(frozen=True, slots=True)
class Event:
    """One call made on the data plane, in order: ``op`` is install/remove/claim/release/close."""

    op: str
    key: tuple[str, str] | None = None
    addr: str | None = None


class MemoryDataPlane:
    """Keeps the forwarding state a real backend would have, without touching the host.

    ``tunnels`` maps home address -> {care-of address: binding} with the same S/replace
    semantics as the real backends; ``vips`` is the set of claimed VIPs; ``events`` the log.
    """

    name = "memory"

    def __init__(self, role: str = "ha", vip: VipOwner | None = None) -> None:
        """``vip``: owns claimed VIPs on a real interface (HSRP on a host whose bindings
        live in memory); without it a claim is only recorded."""
        if role not in ("ha", "fa"):
            raise ValueError(f"role must be 'ha' or 'fa', not {role!r}")
        self.role = role
        self.vip = vip
        self.tunnels: dict[str, dict[str, Binding]] = {}
        self.vips: set[str] = set()
        self.events: list[Event] = []
        self.counters: dict[tuple[str, str], TunnelCounters] = {}
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise DataPlaneError("data plane is closed")

    def install(self, binding: Binding) -> None:
        self._check()
        per = self.tunnels.setdefault(binding.home_addr, {})
        if not binding.simultaneous:
            for coa in [c for c in per if c != binding.care_of]:
                del per[coa]
                self.counters.pop((binding.home_addr, coa), None)
        per[binding.care_of] = replace(binding)
        self.counters.setdefault(binding.key, TunnelCounters())
        self.events.append(Event("install", binding.key))

    def remove(self, binding: Binding) -> None:
        self._check()
        per = self.tunnels.get(binding.home_addr)
        if per is not None and per.pop(binding.care_of, None) is not None:
            self.counters.pop(binding.key, None)
            if not per:
                del self.tunnels[binding.home_addr]
        self.events.append(Event("remove", binding.key))

    def claim_vip(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        self._check()
        self.vips.add(addr)
        self.events.append(Event("claim", addr=addr))
        if self.vip is not None:
            self.vip.claim(addr, mac, name)

    def release_vip(self, addr: str) -> None:
        self._check()
        self.vips.discard(addr)
        self.events.append(Event("release", addr=addr))
        if self.vip is not None:
            self.vip.release(addr)

    def lookup(self, home_addr: str) -> list[Binding]:
        """The bindings a packet to ``home_addr`` would be tunnelled along (one per copy)."""
        return list(self.tunnels.get(home_addr, {}).values())

    def tunnel_counters(self, home_addr: str, care_of: str) -> dict[str, int] | None:
        c = self.counters.get((home_addr, care_of))
        return c.as_dict() if c is not None else None

    def stats(self) -> DataPlaneStats:
        return DataPlaneStats(
            {k: c.as_dict() for k, c in self.counters.items()},
            {},
        )

    def close(self) -> None:
        if not self.closed:
            self.tunnels.clear()
            self.vips.clear()
            self.counters.clear()
            self.events.append(Event("close"))
            self.closed = True


__all__ = ["Event", "MemoryDataPlane"]
