"""Registration Revocation (RFC 3543) between a home agent and a foreign agent, sans-IO.

The part both agents share: building, authenticating, retransmitting and acknowledging
revocation messages. The agents decide *when* to revoke and what a received revocation
does to their bindings / visitors (core/home_agent.py, core/foreign_agent.py).

* **Negotiation** (§3.2, §4.2.1): the FA appends a Revocation Support extension (137) to a
  relayed request, protected by its FA-HA authenticator; the HA answers with one in the
  reply. Revocation is negotiated for the binding when both did; the I bit when both set
  it. :func:`support_ext` builds the extension; :data:`NEGOTIATED`, :data:`I_NEGOTIATED`
  and the peer's timestamp are packed into one integer per binding / visitor
  (:func:`negotiated_state`), which the HA also synchronises to its standby.
* **Messages** (§3.3, §3.4): a Revocation (type 7) carries A (1 from the home agent, 0 from
  the foreign agent), I, the home address, the home domain address (the HA's), the foreign
  domain address (the FA's care-of address) and a Revocation Identifier, the sender's
  current 32-bit timestamp (NTP seconds, the clock of its 137 extensions). The
  acknowledgement (type 15) copies the home address and the identifier. Both end with an
  FA-HA authentication extension (34) computed with the FA-HA security association; one
  that does not verify is silently discarded (counted, ``bad_auth``).
* **Retransmission** (§4.2.2.1, §4.2.3.1): until acknowledged, with a new identifier
  (current timestamp, new authenticator) each time, at most one per second per binding,
  the interval doubling from ``retransmit_s``, at most ``retries`` times, and never beyond
  the binding's lifetime.
* **Replay** (§3.5): a received revocation must carry the A bit of the other role (a
  reflection of our own is discarded), an identifier above the last one accepted from
  that peer for that home address, and not below the timestamp of the registration it
  revokes (:meth:`Revocations.fresh`).
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Final, Protocol

from mobileha.core.actions import Addr, Send
from mobileha.wire import DecodeError
from mobileha.wire.auth import NTP_EPOCH_OFFSET, Authenticator
from mobileha.wire.mip import (
    EXT_FA_HA,
    MIP_PORT,
    AuthExt,
    RegistrationRevocation,
    RevocationAck,
    RevocationSupportExt,
    append_auth,
)

REV_A: Final = 0x8000  # Revocation: sent by the home agent (RFC 3543 §3.3)
REV_I: Final = 0x4000  # Revocation: inform the mobile node
ACK_I: Final = 0x8000  # Revocation Acknowledgement: the MN is (to be) informed (§3.4)
SUPPORT_I: Final = 0x8000  # Revocation Support extension: I-bit support (§3.2)

# Per-binding negotiated state, one int: the peer's 137 timestamp in the low 32 bits.
NEGOTIATED: Final = 1 << 32
I_NEGOTIATED: Final = 1 << 33
_TS: Final = 0xFFFFFFFF

RETRANSMIT_S: Final = 1.0  # §4.2.2.1: at most one revocation per second per binding
RETRIES: Final = 3
RECENT_MAX: Final = 65536  # bound on the per-(peer, home address) replay memory


def negotiated_state(peer_timestamp: int, i_bit: bool) -> int:
    """The packed state of a binding for which both agents sent a 137 extension."""
    return NEGOTIATED | (I_NEGOTIATED if i_bit else 0) | (peer_timestamp & _TS)


def peer_timestamp(state: int) -> int:
    return state & _TS


def support_ext(i_bit: bool, timestamp: int) -> bytes:
    """A Revocation Support extension (137): I-bit support, our timestamp (§3.2)."""
    return RevocationSupportExt(SUPPORT_I if i_bit else 0, timestamp & _TS).encode()


def ntp_seconds(now: float, unix_offset: float) -> int:
    """The 32-bit timestamp of identifiers and 137 extensions: NTP seconds of wall time."""
    return (int(now + unix_offset) + NTP_EPOCH_OFFSET) & _TS


class RevocationSA(Protocol):
    """An FA-HA security association as both agents hold it."""

    spi: int

    @property
    def auth(self) -> Authenticator: ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received revocation or acknowledgement whose FA-HA authenticator verified."""

    message: RegistrationRevocation | RevocationAck
    src: Addr


@dataclass(slots=True)
class _Pending:
    peer: Addr
    home_addr: str
    hda: str
    fda: str
    inform: bool
    expires: float  # the binding's lifetime: no retransmission after it (§4.2.2.1)
    src: Addr | None
    ident: int = 0
    tries: int = 1
    interval: float = RETRANSMIT_S
    next_at: float = 0.0
    gen: int = 0


@dataclass(slots=True)
class RevocationStats:
    sent: int = 0  # revocations, first transmissions
    retransmitted: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0  # given up (retries or the binding's lifetime ran out)
    received: int = 0  # authenticated revocations from the peer, accepted
    acks_sent: int = 0
    acks_unmatched: int = 0
    replayed: int = 0  # stale identifier, reflection, or before the registration
    bad_auth: int = 0
    no_sa: int = 0
    malformed: int = 0
    mn_informed: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "drops"}


class Revocations:
    """The revocations one agent sent and is waiting for, and the replay memory of the ones
    it received (module docstring). ``home``: we are the home agent (A = 1 in ours)."""

    def __init__(
        self,
        *,
        home: bool,
        sa_for: Callable[[str], RevocationSA | None],
        retransmit_s: float = RETRANSMIT_S,
        retries: int = RETRIES,
        port: int = MIP_PORT,
    ) -> None:
        self.home = home
        self.sa_for = sa_for
        self.retransmit_s = max(RETRANSMIT_S, retransmit_s)
        self.retries = retries
        self.port = port
        self.unix_offset = 0.0  # Unix time minus ``now`` (the adapter sets it)
        self.stats = RevocationStats()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._heap: list[tuple[float, int, tuple[str, str]]] = []
        self._gen = itertools.count(1)
        self._last_sent: dict[tuple[str, str], int] = {}
        self._recent: OrderedDict[tuple[str, str], int] = OrderedDict()

    # ------------------------------------------------------------------ sending

    def timestamp(self, now: float) -> int:
        return ntp_seconds(now, self.unix_offset)

    def revoke(
        self,
        peer: Addr,
        home_addr: str,
        hda: str,
        fda: str,
        *,
        inform: bool,
        expires: float,
        now: float,
        src: Addr | None = None,
    ) -> list[Send]:
        """Revoke the binding of ``home_addr`` at ``peer`` (the FA, or the HA). Nothing
        when there is no FA-HA SA with the peer (revocation needs one, §4.2.1) or the
        binding already expired (§3.3)."""
        if expires <= now:
            return []
        if self.sa_for(peer[0]) is None:
            self.stats.no_sa += 1
            return []
        key = (peer[0], home_addr)
        p = _Pending(peer, home_addr, hda, fda, inform, expires, src)
        self._pending[key] = p  # a newer revocation of the same binding replaces one
        self.stats.sent += 1
        return [self._transmit(p, now)]

    def _transmit(self, p: _Pending, now: float) -> Send:
        key = (p.peer[0], p.home_addr)
        ident = self.timestamp(now)
        last = self._last_sent.get(key)
        if last is not None and ident <= last:
            ident = (last + 1) & _TS  # each transmission a new identifier (§4.2.2.1)
        self._last_sent[key] = ident
        if len(self._last_sent) > RECENT_MAX:
            self._last_sent.pop(next(iter(self._last_sent)))
        p.ident = ident
        p.gen = next(self._gen)
        p.next_at = now + p.interval
        heapq.heappush(self._heap, (p.next_at, p.gen, key))
        flags = (REV_A if self.home else 0) | (REV_I if p.inform else 0)
        msg = RegistrationRevocation(
            flags=flags,
            home_addr=p.home_addr,
            home_domain_addr=p.hda,
            foreign_domain_addr=p.fda,
            revocation_id=ident,
        ).encode()
        return Send(p.peer, self._authenticate(msg, p.peer[0]), p.src)

    def _authenticate(self, msg: bytes, peer: str) -> bytes:
        sa = self.sa_for(peer)
        assert sa is not None
        return append_auth(msg, EXT_FA_HA, sa.spi, sa.auth)

    def cancel(self, peer: str, home_addr: str) -> None:
        """Stop retransmitting a revocation (the binding came back, e.g. re-registered)."""
        self._pending.pop((peer, home_addr), None)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            t, gen, key = heap[0]
            p = self._pending.get(key)
            if p is not None and p.gen == gen:
                return t
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> list[Send]:
        out: list[Send] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _t, gen, key = heapq.heappop(heap)
            p = self._pending.get(key)
            if p is None or p.gen != gen:
                continue
            if p.tries > self.retries or now >= p.expires:
                del self._pending[key]
                self.stats.unacknowledged += 1
                continue
            p.tries += 1
            p.interval *= 2
            self.stats.retransmitted += 1
            out.append(self._transmit(p, now))
        return out

    # ------------------------------------------------------------------ receiving

    def authenticate(self, data: bytes, src: Addr) -> Inbound | None:
        """Decode a revocation or acknowledgement and check its FA-HA authenticator
        (§3.3: exactly one, verified with the SA of the sender); None: discard."""
        try:
            msg: RegistrationRevocation | RevocationAck
            if data[:1] == b"\x07":
                msg = RegistrationRevocation.decode(data)
            else:
                msg = RevocationAck.decode(data)
        except DecodeError as e:
            self.stats.malformed += 1
            self._drop(e.reason)
            return None
        sa = self.sa_for(src[0])
        if sa is None:
            self.stats.no_sa += 1
            self._drop("no-security-association")
            return None
        fahas = [e for e in msg.extensions if isinstance(e, AuthExt) and e.ext_type == EXT_FA_HA]
        if len(fahas) != 1 or fahas[0].spi != sa.spi or not msg.verify(fahas[0], sa.auth):
            self.stats.bad_auth += 1
            self._drop("bad-authenticator")
            return None
        return Inbound(msg, src)

    def fresh(self, rev: RegistrationRevocation, peer: str, registered_ts: int | None) -> bool:
        """§3.5: the other role's A bit, an identifier above the last accepted one from
        ``peer`` for this home address, and not before the registration it revokes
        (``registered_ts``: the peer's timestamp in that registration, None if unknown)."""
        from_home = bool(rev.flags & REV_A)
        if from_home == self.home:
            self.stats.replayed += 1
            self._drop("reflected")
            return False
        key = (peer, rev.home_addr)
        last = self._recent.get(key)
        rid = rev.revocation_id
        if last is not None and rid <= last:
            self.stats.replayed += 1
            self._drop("replayed-identifier")
            return False
        if registered_ts is not None and rid < registered_ts:
            self.stats.replayed += 1
            self._drop("before-registration")
            return False
        self._recent[key] = rid
        self._recent.move_to_end(key)
        if len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)
        self.stats.received += 1
        return True

    def acknowledge(self, rev: RegistrationRevocation, src: Addr, dst: Addr, inform: bool) -> Send:
        """The acknowledgement of an accepted revocation (§3.4): home address and
        identifier copied, to its source, from the address it was sent to."""
        msg = RevocationAck(
            flags=ACK_I if inform else 0,
            home_addr=rev.home_addr,
            revocation_id=rev.revocation_id,
        ).encode()
        self.stats.acks_sent += 1
        return Send(src, self._authenticate(msg, src[0]), dst)

    def acknowledged(self, ack: RevocationAck, src: Addr) -> _Pending | None:
        """Match an acknowledgement to the revocation in flight (§3.5: home address and
        the identifier of its last transmission); the matched one is done."""
        key = (src[0], ack.home_addr)
        p = self._pending.get(key)
        if p is None or p.ident != ack.revocation_id:
            self.stats.acks_unmatched += 1
            self._drop("unmatched-ack")
            return None
        del self._pending[key]
        self.stats.acknowledged += 1
        return p

    def _drop(self, reason: str) -> None:
        d = self.stats.drops
        d[reason] = d.get(reason, 0) + 1


__all__ = [
    "ACK_I",
    "I_NEGOTIATED",
    "NEGOTIATED",
    "RETRANSMIT_S",
    "RETRIES",
    "REV_A",
    "REV_I",
    "SUPPORT_I",
    "Inbound",
    "RevocationSA",
    "RevocationStats",
    "Revocations",
    "negotiated_state",
    "ntp_seconds",
    "peer_timestamp",
    "support_ext",
]
