"""Dynamic home address pool (RFC 2794 dynamic home addresses; P§2.2).

A request with home address 0.0.0.0 and an NAI gets an address from the pool (a prefix
inside the home prefix). While the NAI has a binding it keeps that address (the home agent
finds it through the binding table's NAI index); after the binding is gone the address
returns to the pool, but the pool remembers the last address of up to ``hint_size`` NAIs
and gives it back to the same NAI when it is still free (an NAI keeps its address across
re-registrations, also after a short lapse).

Allocation state is one byte per address (``bytearray``; a /16 pool is 64 KiB) and a
next-fit cursor searched with ``bytearray.find`` (C speed), so allocation is O(1) amortised
and memory does not grow with the number of bindings. Allocations are exportable and
importable (:meth:`export`, :meth:`mark`) so that a standby that receives "dynamically
allocated" binding records (P§5.4 record flag) never allocates the same address twice.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from socket import inet_ntoa

from mobileha.wire.addrpool import index_of, pool_flags, pool_state

_U32 = struct.Struct("!I")


class AddressPool:
    """Addresses of ``prefix`` except network/broadcast and ``exclude``."""

    __slots__ = (
        "_base",
        "_bits",
        "_cursor",
        "_excluded",
        "_hints",
        "_size",
        "free",
        "hint_size",
        "prefix",
    )

    def __init__(self, prefix: str, exclude: Iterable[str] = (), hint_size: int = 65536) -> None:
        net = ipaddress.IPv4Network(prefix, strict=False)
        self.prefix = str(net)
        if net.prefixlen >= 31:
            first, last = int(net.network_address), int(net.broadcast_address)
        else:
            first, last = int(net.network_address) + 1, int(net.broadcast_address) - 1
        self._base = first
        self._size = last - first + 1
        self._bits = bytearray(self._size)  # 0 free, 1 allocated, 2 excluded
        self._cursor = 0
        self.free = self._size
        self.hint_size = hint_size
        self._hints: OrderedDict[str, int] = OrderedDict()
        self._excluded = 0
        for a in exclude:
            i = self._index(a)
            if i is not None and self._bits[i] == 0:
                self._bits[i] = 2
                self.free -= 1
                self._excluded += 1

    def _index(self, addr: str) -> int | None:
        return index_of(self._base, self._size, addr)

    def _addr(self, i: int) -> str:
        return inet_ntoa(_U32.pack(self._base + i))

    @property
    def size(self) -> int:
        return self._size

    def __contains__(self, addr: object) -> bool:
        return isinstance(addr, str) and self._index(addr) is not None

    def is_allocated(self, addr: str) -> bool:
        return pool_state(self._bits, self._base, addr) == 1

    def flags_of(self, addrs: Sequence[str], flag: int) -> list[int]:
        """``flag`` for each address of ``addrs`` allocated from the pool, 0 for the others
        (:meth:`is_allocated` of a batch: the REC_DYNAMIC flags of a bulk transfer's
        records)."""
        return pool_flags(self._bits, self._base, addrs, flag)

    def is_free(self, addr: str) -> bool:
        """In the pool, neither allocated nor excluded."""
        i = self._index(addr)
        return i is not None and self._bits[i] == 0

    def allocate(self, nai: str | None = None) -> str | None:
        """A free address (the NAI's previous one when still free), or None if exhausted."""
        if nai is not None:
            i = self._hints.get(nai)
            if i is not None and self._bits[i] == 0:
                self._bits[i] = 1
                self.free -= 1
                return self._addr(i)
        if self.free <= 0:
            return None
        bits = self._bits
        i = bits.find(0, self._cursor)
        if i < 0:
            i = bits.find(0, 0)
            if i < 0:
                return None
        bits[i] = 1
        self.free -= 1
        self._cursor = i + 1 if i + 1 < self._size else 0
        if nai is not None:
            self._remember(nai, i)
        return self._addr(i)

    def _remember(self, nai: str, i: int) -> None:
        h = self._hints
        h[nai] = i
        h.move_to_end(nai)
        if len(h) > self.hint_size:
            h.popitem(last=False)

    def mark(self, addr: str, nai: str | None = None) -> bool:
        """Mark ``addr`` allocated (import from the redundancy peer). False if outside."""
        i = self._index(addr)
        if i is None:
            return False
        if self._bits[i] == 0:
            self._bits[i] = 1
            self.free -= 1
        if nai is not None:
            self._remember(nai, i)
        return True

    def exclude(self, addr: str) -> bool:
        """Keep a free ``addr`` out of allocation from now on (a static home address added
        by a reload); False when it is outside the pool or allocated right now."""
        i = self._index(addr)
        if i is None or self._bits[i] == 1:
            return False
        if self._bits[i] == 0:
            self._bits[i] = 2
            self.free -= 1
            self._excluded += 1
        return True

    def release(self, addr: str) -> bool:
        i = self._index(addr)
        if i is None or self._bits[i] != 1:
            return False
        self._bits[i] = 0
        self.free += 1
        return True

    def export(self) -> Iterator[str]:
        """Every allocated address."""
        bits = self._bits
        i = bits.find(1)
        while i >= 0:
            yield self._addr(i)
            i = bits.find(1, i + 1)

    def import_(self, addrs: Iterable[str]) -> int:
        return sum(1 for a in addrs if self.mark(a))

    @property
    def allocated(self) -> int:
        return self._size - self.free - self._excluded

    def rebuilt(self, prefix: str, exclude: Iterable[str] = ()) -> AddressPool:
        """The pool a reload configures (``prefix``, ``exclude``), carrying this pool's
        allocations that fall inside it and the NAIs' previous addresses. An allocation
        outside the new pool stays bound; it is just not the pool's to release any more.
        An allocated address the new pool excludes stays allocated until it is released."""
        new = AddressPool(prefix, (), self.hint_size)
        excluded = set(exclude)
        for a in self.export():
            new.mark(a)
        for a in excluded:
            i = new._index(a)
            if i is not None and new._bits[i] == 0:
                new._bits[i] = 2
                new.free -= 1
                new._excluded += 1
        for nai, i in self._hints.items():
            j = new._index(self._addr(i))
            if j is not None:
                new._hints[nai] = j
        return new


__all__ = ["AddressPool"]
