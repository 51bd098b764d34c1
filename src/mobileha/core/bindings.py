"""The home agent's mobility binding list (RFC 5944 §3.8.2.2; P§1.8), sized for 10^6 bindings.

Indexes:

* by home address: ``home address -> Binding`` (one care-of address, the usual case) or
  ``-> list[Binding]`` (simultaneous bindings, S flag: several care-of addresses);
* by NAI: the NAI's home address (or a list of home addresses: cdma2000 allows several per
  NAI), always the binding's own home-address string. Where the NAI's MN has an SA of its
  own (``holder_of``: every MN of a home agent configured per MN or through AAA), the index
  entry is a slot of that SA (``MobilitySA.bound``) and the binding's NAI is the SA's NAI
  string: an SA exists for the MN anyway, so the index and the NAI cost the binding nothing.
  NAIs without one (realm entries shared by many MNs, an SA gone from the AAA cache) are
  in the table's own dict ``NAI -> home address``. A lookup consults both.

Expiry: ONE structure for the whole table, a timer wheel with one-second buckets
(``bucket second -> list[Binding]``) plus a heap of bucket seconds. No per-binding timers.
Deadlines are rounded up to whole seconds (a binding expires at most 1 s after its granted
lifetime, like IOS's one-second binding timer), and every binding due in the same second
shares one ``float`` object for ``expires`` (memory). Deletion is lazy: a wheel entry whose
binding is no longer in the table, or whose deadline moved later, is skipped (moved) when its
bucket comes due. A refresh that moves the deadline later touches nothing; the old entry is
moved when it surfaces, so a live binding has about one wheel entry at any time.

Memory: docs/decisions/binding-memory.md (``bench/memory.py``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from typing import Protocol

from mobileha.core.binding import Binding

INFINITE = math.inf


class TableFull(Exception):
    """Adding the binding would exceed ``max_bindings`` (the HA answers 130)."""


def _bucket(expires: float) -> int:
    return math.ceil(expires)


class NaiHolder(Protocol):
    """What holds one NAI's index entry outside the table (``MobilitySA``)."""

    nai: str | None
    bound: str | list[str] | None


def no_holder(nai: str) -> NaiHolder | None:
    """Every NAI's index entry is in the table (no SAs hold any)."""
    return None


def _linked(v: str | list[str] | None, hoa: str) -> str | list[str]:
    """Index value ``v`` with ``hoa`` added (last: the most recently bound)."""
    if v is None:
        return hoa
    if isinstance(v, str):
        return v if v == hoa else [v, hoa]
    if hoa not in v:
        v.append(hoa)
    return v


def _unlinked(v: str | list[str], hoa: str) -> str | list[str] | None:
    """Index value ``v`` without ``hoa``."""
    if isinstance(v, str):
        return None if v == hoa else v
    if hoa in v:
        v.remove(hoa)
        if len(v) == 1:
            return v[0]
    return v


def _as_list(v: str | list[str] | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


class BindingTable:
    """Mobility bindings indexed by home address and NAI, with one expiry wheel."""

    __slots__ = (
        "_floats",
        "_heap",
        "_hoa",
        "_nai",
        "_wheel",
        "count",
        "holder_of",
        "lookup",
        "max_bindings",
    )

    def __init__(
        self,
        max_bindings: int = 1_000_000,
        holder_of: Callable[[str], NaiHolder | None] = no_holder,
    ) -> None:
        self.max_bindings = max_bindings
        self.count = 0
        self._hoa: dict[str, Binding | list[Binding]] = {}
        # lookup(home address): the raw index value (hot path: the registration's and the
        # sync merge's lookup is the dict's own get, no Python frame); one binding, a list
        # (S flag), or None. ``_hoa`` is never replaced, only cleared.
        self.lookup: Callable[[str], Binding | list[Binding] | None] = self._hoa.get
        # NAI -> home address(es), for NAIs without a holder (``holder_of``)
        self._nai: dict[str, str | list[str]] = {}
        # NAI -> the object that holds its index entry (its SA), or None
        self.holder_of = holder_of
        self._wheel: dict[int, list[Binding]] = {}
        self._heap: list[int] = []  # bucket seconds that have a wheel list
        self._floats: dict[int, float] = {}  # bucket second -> the shared float

    # ------------------------------------------------------------------ deadlines

    def deadline(self, now: float, lifetime: int) -> float:
        """The ``expires`` value for a lifetime granted at ``now`` (0xFFFF = infinite).

        Rounded up to a whole second and shared with every binding due in that second.
        """
        if lifetime == 0xFFFF:
            return INFINITE
        k = math.ceil(now + lifetime)
        f = self._floats.get(k)
        if f is None:
            f = self._floats[k] = float(k)
        return f

    def _schedule(self, b: Binding) -> None:
        if b.expires == INFINITE:
            return
        k = _bucket(b.expires)
        lst = self._wheel.get(k)
        if lst is None:
            self._wheel[k] = [b]
            heapq.heappush(self._heap, k)
        elif lst[-1] is not b:
            lst.append(b)

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return self.count

    def bindings_of(self, home_addr: str) -> list[Binding]:
        v = self._hoa.get(home_addr)
        if v is None:
            return []
        return list(v) if isinstance(v, list) else [v]

    def find(self, home_addr: str, care_of: str) -> Binding | None:
        v = self._hoa.get(home_addr)
        if v is None:
            return None
        if isinstance(v, list):
            for b in v:
                if b.care_of == care_of:
                    return b
            return None
        return v if v.care_of == care_of else None

    def home_addresses_of(self, nai: str) -> list[str]:
        h = self.holder_of(nai)
        out = _as_list(h.bound) if h is not None else []
        v = self._nai.get(nai)
        if v is not None:
            out += [x for x in _as_list(v) if x not in out]
        return out

    def home_address_of(self, nai: str) -> str | None:
        """The (most recently bound) home address of an NAI."""
        h = self.holder_of(nai)
        v = h.bound if h is not None else None
        if v is None:
            v = self._nai.get(nai)
        if v is None or isinstance(v, str):
            return v
        return v[-1]

    def __contains__(self, b: object) -> bool:
        return isinstance(b, Binding) and self._live(b)

    def _live(self, b: Binding) -> bool:
        v = self._hoa.get(b.home_addr)
        if v is b:
            return True
        if isinstance(v, list):
            return any(x is b for x in v)
        return False

    def __iter__(self) -> Iterator[Binding]:
        """Every binding (bulk sync, views). Do not modify the table while iterating."""
        for v in self._hoa.values():
            if isinstance(v, list):
                yield from v
            else:
                yield v

    def home_count(self) -> int:
        """Number of distinct home addresses with at least one binding."""
        return len(self._hoa)

    # ------------------------------------------------------------------ changes

    def _nai_link(self, b: Binding, nai: str, hoa: str) -> None:
        h = self.holder_of(nai)
        if h is not None:
            b.nai = h.nai  # one NAI string per MN: its SA's
            h.bound = _linked(h.bound, hoa)
            return
        v = self._nai.get(nai)
        if v is None:
            self._nai[nai] = hoa
        else:
            self._nai[nai] = _linked(v, hoa)

    def _nai_unlink(self, nai: str, hoa: str) -> None:
        h = self.holder_of(nai)
        if h is not None and h.bound is not None:
            h.bound = _unlinked(h.bound, hoa)
        v = self._nai.get(nai)
        if v is not None:
            v = _unlinked(v, hoa)
            if v is None:
                del self._nai[nai]
            else:
                self._nai[nai] = v

    def relink(self, nai: str, homes: str | list[str]) -> None:
        """Index ``homes`` (bound home addresses of ``nai``) again, where ``holder_of``
        says now: the NAI's SA changed or went (:class:`SecurityAssociations`)."""
        for hoa in _as_list(homes):
            for b in self.bindings_of(hoa):
                if b.nai == nai:
                    self._nai_link(b, nai, hoa)

    def add(self, b: Binding, *, replace: bool = True) -> list[Binding]:
        """Insert ``b``. ``replace`` (no S flag) removes every other binding of its home
        address; otherwise only a binding with the same care-of address is replaced.

        Returns the bindings removed. Raises :class:`TableFull` (nothing changed) when the
        table is full and ``b`` is not replacing anything.
        """
        hoa = b.home_addr
        v = self._hoa.get(hoa)
        removed: list[Binding]
        if v is None:
            if self.count >= self.max_bindings:
                raise TableFull
            removed = []
            self._hoa[hoa] = b
            self.count += 1
        elif isinstance(v, list):
            if replace:
                removed = [x for x in v if x is not b]
                self._hoa[hoa] = b
                self.count -= len(v) - 1  # the list becomes the single binding b
            else:
                removed = [x for x in v if x.care_of == b.care_of and x is not b]
                if not removed and not any(x is b for x in v):
                    if self.count >= self.max_bindings:
                        raise TableFull
                    self.count += 1
                    v.append(b)
                elif removed:
                    for i, x in enumerate(v):
                        if x is removed[0]:
                            v[i] = b
                            break
                    # any further duplicates of this care-of address (never created here)
                    for extra in removed[1:]:
                        v.remove(extra)
                        self.count -= 1
        else:
            if v is b:
                removed = []
            elif replace or v.care_of == b.care_of:
                removed = [v]
                self._hoa[hoa] = b
            else:
                if self.count >= self.max_bindings:
                    raise TableFull
                self._hoa[hoa] = [v, b]
                self.count += 1
                removed = []
        for old in removed:
            if old.nai is not None and old.nai != b.nai:
                self._unlink_if_gone(old)
        if b.nai is not None:
            self._nai_link(b, b.nai, hoa)
        self._schedule(b)
        return removed

    def add_new(self, bs: list[Binding]) -> list[Binding]:
        """Insert the leading bindings of ``bs`` whose home addresses have no binding yet
        (a bulk download's records), as :meth:`add` would: indexed by home address and NAI,
        on the expiry wheel. Returns the rest of ``bs``, from the first binding whose home
        address has one, for :meth:`add` in order (so the table ends as adding every
        binding in order leaves it, the order of an NAI's home addresses included). A run
        that could fill the table (each binding adds at most one) is returned whole: which
        bindings TableFull refuses depends on the order.

        One loop for the run instead of :meth:`add` and :meth:`_schedule` per binding: the
        Standby installs 10^6 bindings this way."""
        n = self.count
        if n + len(bs) > self.max_bindings:
            return bs
        index = self._hoa
        nai_link = self._nai_link
        holder_of = self.holder_of
        wheel = self._wheel
        heap = self._heap
        ceil = math.ceil
        rest: list[Binding] = []
        last_k = -1
        bucket: list[Binding] = []
        for i, b in enumerate(bs):
            hoa = b.home_addr
            if hoa in index:
                rest = bs[i:]
                break
            index[hoa] = b
            n += 1
            nai = b.nai
            if nai is not None:
                # _nai_link of the usual record: the first binding of an MN with an SA
                h = holder_of(nai)
                if h is not None and h.bound is None:
                    b.nai = h.nai
                    h.bound = hoa
                else:
                    nai_link(b, nai, hoa)
            # _schedule's wheel entry (bucket: _bucket of the deadline), the bucket of the
            # last deadline kept: most bindings of a run share it
            e = b.expires
            if e != INFINITE:
                k = ceil(e)
                if k != last_k:
                    got = wheel.get(k)
                    if got is None:
                        got = wheel[k] = []
                        heapq.heappush(heap, k)
                    bucket = got
                    last_k = k
                bucket.append(b)
        self.count = n
        return rest

    def live_snapshot(self) -> Iterator[Binding]:
        """The bindings of the table as it is now, each yielded only if it is still in the
        table when reached (bulk transfers: the table changes while they are iterated;
        no copies, 8 bytes per binding)."""
        get = self._hoa.get
        live = self._live
        for v in list(self._hoa.values()):
            if isinstance(v, list):  # simultaneous bindings: copied now, the list may change
                for b in v[:]:
                    if live(b):
                        yield b
            elif get(v.home_addr) is v or live(v):  # the usual case first
                yield v

    def _unlink_if_gone(self, old: Binding) -> None:
        """Drop ``old``'s NAI link unless another binding of its home address keeps it."""
        assert old.nai is not None
        for x in self.bindings_of(old.home_addr):
            if x.nai == old.nai:
                return
        self._nai_unlink(old.nai, old.home_addr)

    def refresh(
        self,
        b: Binding,
        expires: float,
        *,
        ident: int | None = None,
        lifetime: int | None = None,
    ) -> None:
        """Update a live binding in place (re-registration with the same care-of address)."""
        old = b.expires
        b.expires = expires
        if ident is not None:
            b.ident = ident
        if lifetime is not None:
            b.lifetime = lifetime
        if expires != INFINITE and (old == INFINITE or _bucket(expires) < _bucket(old)):
            self._schedule(b)  # earlier than its wheel entry: needs a new one

    def remove(self, b: Binding) -> bool:
        """Remove this binding (identity). Returns False if it was not in the table."""
        hoa = b.home_addr
        v = self._hoa.get(hoa)
        if v is b:
            del self._hoa[hoa]
        elif isinstance(v, list) and any(x is b for x in v):
            rest = [x for x in v if x is not b]
            self._hoa[hoa] = rest[0] if len(rest) == 1 else rest
        else:
            return False
        self.count -= 1
        if b.nai is not None:
            self._unlink_if_gone(b)
        return True

    def remove_key(self, home_addr: str, care_of: str) -> Binding | None:
        b = self.find(home_addr, care_of)
        if b is not None:
            self.remove(b)
        return b

    def remove_home(self, home_addr: str) -> list[Binding]:
        """Remove every binding of a home address (deregistration with CoA = HoA)."""
        gone = self.bindings_of(home_addr)
        for b in gone:
            self.remove(b)
        return gone

    def clear(self) -> None:
        for b in self:
            if b.nai is not None:
                h = self.holder_of(b.nai)
                if h is not None:
                    h.bound = None
        self._hoa.clear()
        self._nai.clear()
        self._wheel.clear()
        self._heap.clear()
        self._floats.clear()
        self.count = 0

    # ------------------------------------------------------------------ expiry

    def next_deadline(self) -> float | None:
        """Earliest second at which :meth:`expire` may have work (possibly a stale entry)."""
        return float(self._heap[0]) if self._heap else None

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose lifetime ended at or before ``now``."""
        out: list[Binding] = []
        heap = self._heap
        while heap and heap[0] <= now:
            k = heapq.heappop(heap)
            lst = self._wheel.pop(k, None)
            self._floats.pop(k, None)
            if not lst:
                continue
            for b in lst:
                if not self._live(b):
                    continue  # deleted or replaced: lazy deletion
                if b.expires <= now:
                    self.remove(b)
                    out.append(b)
                else:
                    self._schedule(b)  # refreshed since: move to its current bucket
        floats = self._floats
        if len(floats) > len(self._wheel) + 1024:  # deadlines handed out but never used
            self._floats = {k: v for k, v in floats.items() if k in self._wheel or k > now}
        return out


__all__ = ["INFINITE", "BindingTable", "NaiHolder", "TableFull", "no_holder"]
