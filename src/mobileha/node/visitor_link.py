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

The ARP table is read from ``/proc/net/arp``; changes are lines written to one long-lived
``ip -force -batch -`` process (started on first use, again if it exits), so the datagram
path never waits for them and a burst of registrations costs no process per visitor.
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
        self._pending: list[str] = []  # ip -batch lines not written yet
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.Future[None] | None = None

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
        self._pending.append(" ".join(args) + "\n")
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            p = self._proc
            if p is None or p.returncode is not None or p.stdin is None:
                try:
                    p = self._proc = await asyncio.create_subprocess_exec(
                        "ip", "-force", "-batch", "-",
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )  # fmt: skip
                except OSError:
                    self.counters["ip_failed"] += len(self._pending)
                    self._pending.clear()
                    return
            assert p.stdin is not None
            lines, self._pending = self._pending, []
            try:
                p.stdin.write("".join(lines).encode())
                await p.stdin.drain()
            except (OSError, ConnectionError):
                self.counters["ip_failed"] += len(lines)
                self._proc = None

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 2.0)
        p = self._proc
        if p is not None and p.returncode is None:
            if p.stdin is not None:
                p.stdin.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(p.wait(), 2.0)
            if p.returncode is None:
                p.kill()


__all__ = ["VisitorNeighbours", "arp_entry"]
