"""The ``memory`` data plane: records what would be installed (unit tests, loopback demo)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from operator import attrgetter
from typing import NamedTuple

from mobileha.core.binding import FLAG_S, Binding
from mobileha.dataplane.base import DataPlaneError, DataPlaneStats, TunnelCounters, install_each
from mobileha.dataplane.vip import VipOwner

# Every field of a Binding, read in one C call: a copy is Binding(*_FIELDS(b)) (the core
# changes its bindings in place; what is installed here is the binding as it was installed).
# dataclasses.replace walks fields() and builds keyword arguments per call, several times
# slower for a table-sized install.
_FIELDS = attrgetter(*(f.name for f in fields(Binding)))


class Event(NamedTuple):
    """One call made on the data plane, in order: ``op`` is install/remove/claim/release/close.
    (A named tuple: one is made per installed binding, a frozen dataclass costs 4x more.)"""

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
        self._install(binding)

    def install_many(self, bindings: Iterable[Binding]) -> int:
        """Install every binding (a takeover): the same as one :meth:`install` each."""
        self._check()
        return install_each(self._install, bindings)

    def _install(self, binding: Binding) -> None:
        hoa = binding.home_addr
        coa = binding.care_of
        per = self.tunnels.get(hoa)
        if per is None:
            per = self.tunnels[hoa] = {}
        elif not binding.flags & FLAG_S:
            for c in [c for c in per if c != coa]:
                del per[c]
                self.counters.pop((hoa, c), None)
        per[coa] = Binding(*_FIELDS(binding))
        key = (hoa, coa)
        if key not in self.counters:
            self.counters[key] = TunnelCounters()
        self.events.append(Event("install", key))

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
