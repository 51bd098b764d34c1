"""The receiving side of binding sync: records applied per key, newest wins (P§5.4).

For each record the table's binding, a tombstone of a deletion and our own not yet
acknowledged change for that key are compared by Identification. Tombstones are kept
``tombstone_ttl`` seconds and, while a bulk download is running, until it ends: an older
bulk record never resurrects a deleted binding. The results are
:class:`~mobileha.core.sync.base.ApplyBindings` / ``DeleteBinding`` actions that the home
agent executes on its table, in order, without feeding them back as changes.

[P] Replay nonces (record flag REC_NONCE): each record carries the nonce the home agent
issued last to the MN, and :class:`ApplyBindings` returns it. A nonce MN's Identification
does not grow (random high 32 bits, RFC 5944 §5.7), so a record whose Identification is not
greater is still applied when its request was made with the nonce we hold for the MN (the
next registration in the chain).

[P] SAs from AAA (record flag REC_SA): a record that is applied returns the MN's SA, its key
revealed with the secret derived from the HA-HA key, in :class:`ApplyBindings`; a block that
does not reveal is counted (``SaRecordErrors``) and the binding applied without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from mobileha.core.binding import Binding
from mobileha.core.sync.base import (
    Applied,
    ApplyBindings,
    Counters,
    DeleteBinding,
    Key,
    SyncAction,
    SyncConfig,
)
from mobileha.core.sync.records import bound_revocation, open_sa
from mobileha.core.sync.sender import BuSender
from mobileha.wire.sync import REC_DELETE, REC_DYNAMIC, BoundRecord


def chained(ident: int, nonce: int | None) -> bool:
    """[P] Was the request with Identification ``ident`` made with ``nonce``? RFC 5944
    §5.7: a nonce MN puts the nonce of the HA's last reply in the high 32 bits of its next
    request. Its Identifications do not grow (the nonces are random), so this chain, not the
    order of Identifications, tells which of two of its registrations/deletions is newer."""
    return nonce is not None and (ident >> 32) == nonce


class Merger:
    """Newest-wins application of the peer's records, with tombstones of deletions."""

    def __init__(
        self,
        config: SyncConfig,
        counters: Counters,
        sender: BuSender,
        lookup: Callable[[Key], Binding | None],
        nonce_of: Callable[[Binding], int | None] | None,
        sa_secret: bytes = b"",
    ) -> None:
        self.config = config
        self.counters = counters
        self._sender = sender
        self._lookup = lookup
        self._nonce_of = nonce_of
        self._sa_secret = sa_secret
        self._tombs: dict[Key, int] = {}
        # [P] the nonce issued with a deletion (nonce MNs): the MN's next registration
        # carries it in its high 32 bits, whatever the order of the Identifications
        self._tomb_nonces: dict[Key, int] = {}
        self._tomb_q: deque[tuple[float, Key, int]] = deque()

    @property
    def tombstones(self) -> int:
        return len(self._tombs)

    def apply(
        self,
        records: Iterable[BoundRecord],
        now: float,
        all_delete: bool,
        actions: list[SyncAction],
    ) -> None:
        """Apply the records of one BU or BI Reply (``all_delete``: the BU's D flag), as
        :func:`~mobileha.core.sync.records.decode_bound` gives them: the records that win
        go into :class:`ApplyBindings` actions, one per run between two deletions (the
        order of the records is kept)."""
        c = self.counters
        sender = self._sender
        latest = sender.latest
        tombs = self._tombs
        lookup = self._lookup
        append = actions.append
        applied = stale = 0
        nonce_of = self._nonce_of
        tomb_nonces = self._tomb_nonces
        run: list[Applied] | None = None  # the items of the last ApplyBindings in actions
        for b, rec_flags, nonce, rsa, rev_ts in records:
            if rev_ts is not None:
                bound_revocation(b, rec_flags, rev_ts)
            key = (b.home_addr, b.care_of)
            ident = b.ident
            if latest:
                own = latest.get(key)
                if own is not None:
                    if own.binding.ident >= ident:
                        stale += 1  # our own unacknowledged change is newer
                        continue
                    sender.superseded(key)  # the peer's is newer: do not send ours
            # a remaining lifetime of 0 (expired meanwhile) gives a deadline of now
            if all_delete or rec_flags & REC_DELETE or b.expires <= now:
                tomb = tombs.get(key)
                if tomb is None or ident > tomb or nonce is not None:
                    self.tombstone(key, ident, now, nonce)
                cur = lookup(key)
                if cur is not None:
                    if ident >= cur.ident or (
                        nonce_of is not None and chained(ident, nonce_of(cur))
                    ):
                        c.DeletedRecords += 1
                        append(DeleteBinding(b))
                        run = None
                    else:
                        stale += 1
                continue
            if tombs:
                tomb = tombs.get(key)
                if tomb is not None and ident <= tomb and not chained(ident, tomb_nonces.get(key)):
                    stale += 1  # deleted meanwhile: no resurrection
                    continue
            cur = lookup(key)
            if (
                cur is not None
                and ident <= cur.ident
                and (
                    nonce is None
                    or nonce_of is None
                    or ident == cur.ident
                    or not chained(ident, nonce_of(cur))
                )
            ):
                stale += 1  # older, or the same registration again (a duplicate)
                continue
            applied += 1
            sa = None
            if rsa is not None:
                try:
                    sa = open_sa(rsa, self._sa_secret, b.nai, b.home_addr)
                    c.SaRecords += 1
                except ValueError:  # not hidden with our key: the standby asks AAA itself
                    c.SaRecordErrors += 1
            if run is None:
                run = []
                append(ApplyBindings(run))
            run.append((b, rec_flags & REC_DYNAMIC != 0, nonce, sa))
        c.AppliedRecords += applied
        c.StaleRecords += stale

    def tombstone(self, key: Key, ident: int, now: float, nonce: int | None = None) -> None:
        """Remember a deletion. A nonce MN's Identifications do not grow, so its latest
        deletion replaces the tombstone, with the nonce issued in that deletion's reply."""
        tomb = self._tombs.get(key)
        if tomb is None or ident > tomb or nonce is not None:
            self._tombs[key] = ident
            if nonce is not None:
                self._tomb_nonces[key] = nonce
            else:
                self._tomb_nonces.pop(key, None)
            self._tomb_q.append((now + self.config.tombstone_ttl, key, ident))

    def prune(self, now: float) -> None:
        """Forget tombstones older than ``tombstone_ttl`` (not while a download runs)."""
        q = self._tomb_q
        tombs = self._tombs
        while q and q[0][0] <= now:
            _, key, ident = q.popleft()
            if tombs.get(key) == ident:
                del tombs[key]
                self._tomb_nonces.pop(key, None)


__all__ = ["Merger", "chained"]
