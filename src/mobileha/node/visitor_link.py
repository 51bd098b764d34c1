"""The visitors' link-layer addresses on the visitor link (RFC 5944 §4.6).

A foreign agent must not ARP for a visiting mobile node's home address: it delivers to
the link-layer address the node's registration came from. The UDP adapter sees the
request's IP source (the node's address on the visitor link), whose link-layer address
the kernel learnt when the request and the reply crossed the link; when the visitor's
binding is installed, :class:`VisitorNeighbours` copies that entry to a permanent
neighbour entry for the home address on the visitor interface, and deletes it when the
binding goes. Besides following the RFC this avoids waiting for a stale neighbour entry
(left INCOMPLETE by traffic to a node that had just left the link) to be probed again,
which takes up to a second after the node comes back.

The ARP table is read from ``/proc/net/arp``; changes run ``ip neigh`` as subprocesses
tracked on the event loop, so the datagram path never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

from mobileha.core.binding import Binding


def arp_entry(addr: str, ifname: str, path: str = "/proc/net/arp") -> str | None:
    """The link-layer address the kernel holds for ``addr`` on ``ifname`` (None: none
    complete)."""
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) >= 6 and cols[0] == addr and cols[5] == ifname:
                    flags = int(cols[2], 16)
                    return cols[3] if flags & 0x2 else None  # ATF_COM: complete
    except OSError:
        return None
    return None


class VisitorNeighbours:
    """Permanent neighbour entries for visitors' home addresses on ``ifname``."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.entries: dict[str, str] = {}  # home address -> link-layer address
        self.counters: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def learn(self, b: Binding) -> None:
        src = b.src_addr
        if not src or src == b.home_addr:
            return
        mac = arp_entry(src, self.ifname)
        if mac is None:
            self.counters["no_link_address"] += 1
            return
        if self.entries.get(b.home_addr) == mac:
            return
        self.entries[b.home_addr] = mac
        self.counters["learned"] += 1
        self._ip(
            "neigh", "replace", b.home_addr, "lladdr", mac, "dev", self.ifname, "nud", "permanent"
        )

    def forget(self, b: Binding) -> None:
        if self.entries.pop(b.home_addr, None) is None:
            return
        self.counters["forgotten"] += 1
        self._ip("neigh", "del", b.home_addr, "dev", self.ifname)

    def _ip(self, *args: str) -> None:
        task = asyncio.ensure_future(_run_ip(args, self.counters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t, 2.0)


async def _run_ip(args: tuple[str, ...], counters: Counter[str]) -> None:
    try:
        p = await asyncio.create_subprocess_exec(
            "ip", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        if await p.wait() != 0:
            counters["ip_failed"] += 1
    except OSError:
        counters["ip_failed"] += 1


__all__ = ["VisitorNeighbours", "arp_entry"]
