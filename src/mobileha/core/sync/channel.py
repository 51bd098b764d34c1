"""The transport shared by the BU sender and the bulk transfers: Identifications (NTP
timestamps, the replay window), messages retransmitted until acknowledged (one deadline
heap), acknowledgements, sequence numbers and the packing of records with the MN's nonce
and its SA from AAA.

Identification (P§5.4 [P]): our own are NTP timestamps, strictly increasing per peer; acks
copy the low 32 bits of the acknowledged message. An incoming Identification is accepted
once, and only within ``replay_tolerance`` seconds of our clock (an anti-replay window, as
IPsec's: a strict "greater than the last" would turn every benign reordering of two
retransmitted BUs into a 133). On a 133 ack the sender adopts the peer's clock, as a
Mobile IP MN does, and retransmits at once.
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Callable
from itertools import count as itercount
from socket import inet_aton
from typing import Any

from mobileha.core.actions import Send
from mobileha.core.binding import Binding
from mobileha.core.security import MobilitySA
from mobileha.core.sync.base import U32, Counters, Key, SyncAction, SyncConfig
from mobileha.core.sync.records import pack_records, pack_records_upto, seal_sa
from mobileha.wire.auth import NTP_EPOCH_OFFSET
from mobileha.wire.sync import (
    CHUNK_EXT,
    REC_DELETE,
    REC_DYNAMIC,
    MsgKind,
    SyncMessage,
    encode_raw,
)


class Change:
    """One of our binding changes, queued for or carried by a BU until acknowledged:
    the binding, its key (home, care-of address), the record flags (REC_DELETE,
    REC_DYNAMIC) and when it was made. ``waiters``: what waits for the peer to acknowledge
    it (the reply gate's held replies; a newer change to the same key takes them over)."""

    __slots__ = ("binding", "key", "rflags", "t", "waiters")

    def __init__(self, binding: Binding, delete: bool, dynamic: bool, t: float) -> None:
        self.binding = binding
        self.key: Key = (binding.home_addr, binding.care_of)
        self.rflags = (REC_DELETE if delete else 0) | (REC_DYNAMIC if dynamic else 0)
        self.t = t
        self.waiters: list[Any] | None = None

    @property
    def delete(self) -> bool:
        return bool(self.rflags & REC_DELETE)

    @property
    def dynamic(self) -> bool:
        return bool(self.rflags & REC_DYNAMIC)


class Out:
    """A message we retransmit until it is acknowledged."""

    __slots__ = (
        "alive",
        "attempts",
        "body",
        "changes",
        "chunk",
        "count",
        "deadline",
        "failures",
        "flags",
        "items",
        "kind",
        "lows",
        "seq",
    )

    def __init__(
        self,
        kind: MsgKind,
        seq: int,
        flags: int,
        count: int,
        body: bytes,
        chunk: int | None = None,
        changes: list[Change] | None = None,
    ) -> None:
        self.kind = kind
        self.seq = seq
        self.flags = flags
        self.count = count
        self.body = body
        self.chunk = chunk
        self.changes = changes
        # re-packed on retransmission: the bindings of a BI Reply and their record flags
        # (None: 0 each); a BU's come from its changes
        self.items: tuple[list[Binding], list[int] | None] | None = None
        self.attempts = 0
        self.failures = 0
        self.deadline = 0.0
        self.lows: list[int] = []  # low 32 bits of the Identifications it was sent with
        self.alive = True


class Channel:
    """Identification, transmission and retransmission timing towards one peer."""

    def __init__(
        self,
        config: SyncConfig,
        counters: Counters,
        *,
        unix_offset: float,
        nonce_of: Callable[[Binding], int | None] | None,
        now: float,
        sa_of: Callable[[Binding], MobilitySA | None] | None = None,
        sa_secret: bytes = b"",
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config
        self.counters = counters
        self._unix_offset = unix_offset
        self._clock_adjust = 0.0
        self._nonce_of = nonce_of
        self._sa_of = sa_of
        self._sa_secret = sa_secret
        # [P] REC_SA salts: 8 random bytes per channel and a counter, never repeated
        self._salt_prefix = random_bytes(8) if sa_of is not None else b""
        self._salts = itercount(1)
        self._dst = (config.peer_addr, config.port)
        self._ha_packed = inet_aton(config.ha_addr)
        self.types = config.types
        # sequence numbers start from the clock so that a restarted peer does not reuse
        # the transaction numbers of its previous life
        self._seq = int((now + unix_offset) * 1000) & U32
        self._seen: set[int] = set()
        self._seen_q: deque[int] = deque()
        self._timers: list[tuple[float, int, Out]] = []
        self._tick = itercount()
        self._last_tx_ident = 0
        # records of the last BI Reply (pack_upto): the next one most likely holds as many
        self._fit = 0

    # -- Identification --

    def agreed_time(self, now: float) -> float:
        return now + self._unix_offset + self._clock_adjust + NTP_EPOCH_OFFSET

    def new_ident(self, now: float) -> int:
        t = self.agreed_time(now)
        secs = int(t)
        ident = ((secs & U32) << 32) | int((t - secs) * 4294967296.0)
        if ident <= self._last_tx_ident:
            ident = self._last_tx_ident + 1
        self._last_tx_ident = ident
        return ident

    def ident_ok(self, ident: int, now: float) -> bool:
        """Accept ``ident`` once, within the replay tolerance of our clock."""
        our = int(self.agreed_time(now)) & U32
        tol = self.config.replay_tolerance
        if abs((ident >> 32) - our) > tol:
            return False
        seen = self._seen
        if ident in seen:
            return False
        seen.add(ident)
        q = self._seen_q
        q.append(ident)
        floor = (our - int(tol) - 2) << 32
        while q and q[0] < floor:
            seen.discard(q.popleft())
        return True

    def resync_clock(self, ack_ident: int, now: float) -> None:
        """A 133 ack: adopt the peer's clock for our Identifications (RFC 5944 §5.7 style)."""
        peer_secs = ack_ident >> 32
        our_secs = int(self.agreed_time(now)) & U32
        if abs(peer_secs - our_secs) > 1:
            self._clock_adjust += peer_secs - our_secs
            self._last_tx_ident = 0

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & U32
        return self._seq

    @staticmethod
    def ack_matches(out: Out | None, m: SyncMessage) -> bool:
        return out is not None and out.alive and (m.ident & U32) in out.lows

    # -- records --

    def pack_many(
        self, bindings: list[Binding], now: float, rec_flags: list[int] | None
    ) -> list[bytes]:
        """The record of each binding (with its ``rec_flags``; None: 0 each), with its MN's
        current replay nonce (read at packing time, so a retransmission carries the nonce
        of the latest reply) and, but in a deletion, its MN's SA from AAA ([P] REC_SA)."""
        nonces, blocks = self._extras(bindings, rec_flags)
        return pack_records(bindings, now, rec_flags, nonces, blocks)

    def pack_upto(
        self, bindings: list[Binding], now: float, rec_flags: list[int] | None, limit: int
    ) -> tuple[bytes, int]:
        """The records of ``bindings[:k]`` (as :meth:`pack_many`) joined, ``k`` the most
        that fit in ``limit`` bytes, at least one (one BI Reply's records).

        The MNs' nonces and SA blocks are looked up for the bindings packed, not for every
        one offered (a download offers more than the shortest records could fill; records
        with SA blocks fill a BI Reply with fewer): the bindings of the last BI Reply and one
        more are packed first, and only if they all fit are all the bindings packed. The
        packing stops at the first record that does not fit, so both give the same chunk."""
        n = len(bindings)
        if self._sa_of is not None or self._nonce_of is not None:
            est = self._fit + 1
            if est < n:
                head = bindings[:est]
                hflags = None if rec_flags is None else rec_flags[:est]
                records, k = self.pack_fitting(head, now, hflags, limit)
                if k < est:
                    self._fit = k
                    return records, k
        records, k = self.pack_fitting(bindings, now, rec_flags, limit)
        self._fit = k
        return records, k

    def pack_fitting(
        self, bindings: list[Binding], now: float, rec_flags: list[int] | None, limit: int
    ) -> tuple[bytes, int]:
        """The records of ``bindings[:k]`` (as :meth:`pack_many`) joined, ``k`` the most
        that fit in ``limit`` bytes, at least one; the nonces and SA blocks of every binding
        offered are looked up (a BU's: the queued changes, which usually all fit)."""
        nonces, blocks = self._extras(bindings, rec_flags)
        return pack_records_upto(bindings, now, rec_flags, nonces, blocks, limit)

    def _extras(
        self, bindings: list[Binding], rec_flags: list[int] | None
    ) -> tuple[list[int | None] | None, list[bytes | None] | None]:
        """The MNs' nonces and REC_SA blocks of ``bindings`` (None: none configured). A
        deletion carries no SA block; the others the block of their MN's SA from AAA, if
        it has one."""
        nonce_of = self._nonce_of
        sa_of = self._sa_of
        blocks = None
        if sa_of is not None:
            if rec_flags is None:
                sas = [sa_of(b) for b in bindings]
            else:
                sas = [
                    None if f & REC_DELETE else sa_of(b)
                    for b, f in zip(bindings, rec_flags, strict=True)
                ]
            sealed = self._sealed
            blocks = [None if sa is None else sealed(sa) for sa in sas]
        nonces = None if nonce_of is None else [nonce_of(b) for b in bindings]
        return nonces, blocks

    def _sealed(self, sa: MobilitySA) -> bytes | None:
        """The REC_SA block of ``sa``, hidden once per SA with a salt never used before and
        kept on the SA (retransmissions and bulk transfers repeat the same bytes)."""
        secret = self._sa_secret
        sealed = sa.sealed
        if sealed is not None and sealed[0] is secret:
            return sealed[1]
        salt = self._salt_prefix + next(self._salts).to_bytes(8, "big")
        try:
            block = seal_sa(sa, secret, salt, sa.home_address is not None).encode()
        except ValueError:  # a key too long for a record: the standby asks AAA itself
            return None
        sa.sealed = (secret, block)
        return block

    # -- sending --

    def transmit(self, out: Out, now: float, actions: list[SyncAction]) -> None:
        """Send ``out`` (again) with a fresh Identification and arm its retransmission."""
        cfg = self.config
        items = out.items
        if out.lows and items is None and out.changes is not None:
            items = ([ch.binding for ch in out.changes], [ch.rflags for ch in out.changes])
        if out.lows and items is not None:
            # a retransmission: the remaining lifetimes are those of now (P§5.4 "at send time")
            body = b"".join(self.pack_many(items[0], now, items[1]))
            if out.chunk is not None:
                body += CHUNK_EXT.pack(self.types.chunk, 4, out.chunk)
            out.body = body
        ident = self.new_ident(now)
        lows = out.lows
        lows.append(ident & U32)
        if len(lows) > 8:
            del lows[0]
        actions.append(
            Send(
                self._dst,
                encode_raw(
                    self.types.code(out.kind),
                    out.flags,
                    out.count,
                    out.seq,
                    self._ha_packed,
                    ident,
                    out.body,
                    cfg.spi,
                    cfg.authenticator,
                    self.types.hhae,
                ),
                cfg.src,
            )
        )
        out.deadline = now + cfg.initial_timeout * (1 << out.attempts)
        out.attempts += 1
        heapq.heappush(self._timers, (out.deadline, next(self._tick), out))

    def send_ack(
        self,
        kind: MsgKind,
        m: SyncMessage,
        code: int,
        chunk: int | None,
        now: float,
        actions: list[SyncAction],
    ) -> None:
        cfg = self.config
        ident = ((int(self.agreed_time(now)) & U32) << 32) | (m.ident & U32)
        body = b"" if chunk is None else CHUNK_EXT.pack(self.types.chunk, 4, chunk)
        actions.append(
            Send(
                self._dst,
                encode_raw(
                    self.types.code(kind),
                    code,
                    0,
                    m.seq,
                    self._ha_packed,
                    ident,
                    body,
                    cfg.spi,
                    cfg.authenticator,
                    self.types.hhae,
                ),
                cfg.src,
            )
        )

    # -- timing --

    def pop_due(self, now: float) -> Out | None:
        """The next live message whose retransmission deadline has come (earliest first),
        or None. Popped one at a time: handling one may end others."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            deadline, _, o = heapq.heappop(timers)
            if o.alive and o.deadline == deadline:
                return o
        return None

    def get_timer(self) -> float | None:
        timers = self._timers
        while timers and (not timers[0][2].alive or timers[0][2].deadline != timers[0][0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None


__all__ = ["Change", "Channel", "Out"]
