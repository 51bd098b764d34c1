"""The cluster coordinator: everything one home agent process decides, sans-IO.

One :class:`Cluster` per process owns, for each HA address it serves (one :class:`Agent`:
the real address, or each HSRP group's virtual address with load sharing), the
:class:`~mobileha.core.home_agent.HomeAgent` with its binding table, the
:class:`~mobileha.core.sync.SyncPeer` towards the redundancy peer and the reply gate; and,
for the process, the HSRP groups of its interface
(:class:`~mobileha.core.hsrp.HsrpInterface`), the interface's link state and the state of
tracked interfaces. The rules that keep "no acknowledged binding is lost" live here, where
they can be tested without sockets (tests/unit/core/test_cluster.py):

* **HSRP state -> home agent**: a group entering Active makes its agent answer and install
  every binding in the data plane; any other state makes it silent (its bindings stay in the
  table, their forwarding state goes). The sync peer learns the role (Standby starts a bulk
  download). States are compared as :class:`~mobileha.core.hsrp.State` members.
* **Readiness**: while the sync peer downloads the table that a standby (or a restarted HA)
  needs, its HSRP group is not ready: it neither preempts nor takes the Active role.
* **Peer lost**: when an HSRP group's Active timer runs out with a remote router as the
  Active (:class:`~mobileha.core.hsrp.ActiveTimerExpired`, whether or not HSRP changes
  state), the agent's sync peer stops waiting for it: a download cut by the Active's crash
  is abandoned, so the standby becomes ready and takes over as fast as HSRP does, with the
  bindings it has (:class:`DownloadIncomplete` says how many).
* **Reply gate** (:class:`ReplyGate`): the registration reply of a request that changed
  bindings is held until the peer has acknowledged the BU carrying the change, so every
  registration acknowledged to a mobile node is on the peer when the Active dies. Only
  while the peer is in sync and answering: after 0.5 s without a word from the peer the
  gate opens (replies go out at once) until the next BU Ack shows the peer is back.

Surface (aioquic's ``QuicConnection``): :meth:`Cluster.receive_datagram` demultiplexes one
datagram (the HSRP port -> HSRP; a sync message type of the ``SyncTypes`` registry -> the
sync peer named by the header's HA address; anything else -> the home agent of the
destination address), :meth:`Cluster.handle_timer`, :meth:`Cluster.get_timer`, and
:meth:`Cluster.handle_event` for :class:`Start`, :class:`Shutdown`, :class:`LinkChanged`,
:class:`TrackChanged`, :class:`SetReady`, :class:`Reconfigure` (a reload) and, for the
home agent of one HA address, AAA's answers (``SaFetched`` / ``SaFailed``,
:mod:`mobileha.core.subscribers`) and new SA sources (``ReloadSubscribers``). Every entry
point returns the actions for the adapter, in order: ``Send`` (registration replies, sync
messages), ``FetchSa`` (ask AAA for an MN's SA), ``HsrpSend`` (to the HSRP socket),
``InstallBinding`` / ``RemoveBinding`` and their subclasses (data plane), ``ClaimVip`` /
``ReleaseVip`` / ``GratuitousArp`` (VIP ownership), and notices for the operator's log
(``StateChange``, ``ActiveTimerExpired``, :class:`ActiveChanged`, ``SyncStateChanged``,
:class:`DownloadIncomplete`, :class:`LinkStateChanged`).
Randomness (HSRP hello jitter) and the wall-clock offset are injected.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from socket import inet_aton
from typing import Any, Final

from mobileha.core.actions import Addr, InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_S, Binding
from mobileha.core.home_agent import (
    HomeAgent,
    HomeAgentSettings,
    RefreshBinding,
    RestoreBinding,
    WithdrawBinding,
)
from mobileha.core.hsrp import (
    ActiveTimerExpired,
    GroupKey,
    HsrpConfig,
    HsrpGroup,
    HsrpInterface,
    State,
    StateChange,
)
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.core.subscribers import ReloadSubscribers, SaFailed, SaFetched
from mobileha.core.sync import (
    ApplyBindings,
    DeleteBinding,
    Key,
    ReadyChanged,
    Role,
    SyncConfig,
    SyncPeer,
    SyncState,
)
from mobileha.core.sync.channel import Change
from mobileha.wire.hsrp import HSRP_PORT
from mobileha.wire.sync import REC_DYNAMIC, peek_ha_address

# the home agent's actions that change a binding -> is it a deletion (sync record)?
_SYNCED_CHANGES: Final = {
    InstallBinding: False,
    RefreshBinding: False,
    RemoveBinding: True,
}

_IN_SYNC: Final = SyncState.IN_SYNC  # (an Enum member lookup per held reply is not free)

# HSRP state -> the sync peer's view of our role (every other state: Role.OTHER)
ROLE_OF: Final = {State.ACTIVE: Role.ACTIVE, State.STANDBY: Role.STANDBY}

# --- events in ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The adapter is up (sockets bound). ``address`` / ``identifier``: the HSRP
    interface's IPv4 address and MAC, for groups whose configuration leaves them unset."""

    address: str | None = None
    identifier: bytes | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Leave cleanly (SIGTERM): HSRP event b for every group (an Active one resigns and
    releases its VIP), held replies go out."""


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The HSRP interface went down (event b for every group) or up (event a)."""

    up: bool


@dataclass(frozen=True, slots=True)
class TrackChanged:
    """A tracked interface went down (priority decrement) or up."""

    name: str
    up: bool


@dataclass(frozen=True, slots=True)
class SetReady:
    """Readiness of every HSRP group, set from outside (the standalone HSRP router)."""

    ready: bool


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What a reload may change for one HA address: its home agent's settings and
    security associations (MN-HA, FA-HA, MN-AAA; SLB-HA) and its sync configuration."""

    ha_addr: str
    settings: HomeAgentSettings
    sas: SecurityAssociations
    slb_sas: Mapping[str, MobilitySA]
    sync: SyncConfig | None = None


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Reload (SIGHUP): new settings for the HA addresses served and for the HSRP groups,
    applied to the running cores: bindings, replay state, pool allocations, sync sessions
    and HSRP states stay. What would need new cores (addresses, ports, groups, peers) is
    not here: the caller keeps those and names them for a restart."""

    agents: tuple[AgentSettings, ...] = ()
    hsrp: tuple[HsrpConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class ClearBindings:
    """Operator command (IOS ``clear ip mobile binding``): delete the bindings of one home
    address, of one NAI, or all, on every home agent that answers (the Active); the
    deletions reach the standby through binding sync and the FAs through registration
    revocation (RFC 3543) where it was negotiated."""

    home_addr: str | None = None
    nai: str | None = None
    all: bool = False


ClusterEvent = (
    Start | Shutdown | LinkChanged | TrackChanged | SetReady | Reconfigure | SaFetched
    | SaFailed | ReloadSubscribers | ClearBindings
)  # fmt: skip

# --- notices out (the adapter logs them) --------------------------------------------


@dataclass(frozen=True, slots=True)
class ActiveChanged:
    """The home agent of ``ha_addr`` answers registrations (and forwards) or stopped."""

    ha_addr: str
    active: bool


@dataclass(frozen=True, slots=True)
class DownloadIncomplete:
    """The peer was lost during the download that gated HSRP: ready (and possibly Active)
    with ``records`` of that download applied, ``bindings`` in the table."""

    ha_addr: str
    records: int
    bindings: int


@dataclass(frozen=True, slots=True)
class LinkStateChanged:
    """The HSRP interface's state changed (every group got event a or b)."""

    up: bool


# --- construction -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One HA address served by the process: its home agent core, the sync configuration
    towards the redundancy peer (None: no redundancy) and the number of the HSRP group
    whose Active state makes it answer (None: no HSRP, it answers as constructed)."""

    ha: HomeAgent
    sync: SyncConfig | None = None
    hsrp_group: int | None = None


class ReplyGate:
    """Registration replies held until the peer acknowledged the changes they report.

    A reply goes out when the peer has acknowledged every change of its request, or when
    the peer looks gone: nothing authenticated heard from it for ``hold_s`` while the reply
    waits (then the gate opens: replies go out at once until the next BU Ack shows the
    peer is back), or the sync peer is not in sync. While the peer is heard it is alive,
    so a reply whose BU was lost waits for the retransmission (a BU that runs out of
    retries is sent again in a new one), up to ``hold_max`` (the sync peer's
    ``peer_timeout``).

    A held reply waits on the sender's :class:`~mobileha.core.sync.channel.Change` objects
    themselves (their ``waiters``): the sender hands back the waiters of each change the
    peer acknowledged (or superseded), so the gate does no per-key bookkeeping of its own.
    """

    __slots__ = (
        "_acks_seen",
        "_held",
        "_open",
        "_sender",
        "hold_max",
        "hold_s",
        "hold_times",
        "replies_held",
        "replies_released_unacked",
        "sync",
    )

    def __init__(self, sync: SyncPeer, hold_s: float, hold_max: float) -> None:
        self.sync = sync
        self._sender = sync.sender
        self.hold_s = hold_s
        self.hold_max = max(hold_s, hold_max)
        sync.sender.released = []  # the sender lists the waiters it sees acknowledged
        self._held: deque[_Held] = deque()  # arrival order
        self._open = False  # True after a hold ran out: replies go out at once
        self._acks_seen = 0
        self.replies_held = 0
        self.replies_released_unacked = 0
        # when a list: how long each held reply waited (benchmarks set it)
        self.hold_times: list[float] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for h in self._held if not h.done)

    def hold(self, replies: list[Send], changes: Change | list[Change], now: float) -> bool:
        """Hold ``replies`` until the peer has acknowledged ``changes`` (one change, or a
        list; just queued by the sync peer, or a newer change to the same key); False (send
        them now) when the gate is open or the peer not in sync."""
        if self._open or self.sync.state is not _IN_SYNC:
            return False
        if isinstance(changes, Change):  # a registration's usual outcome
            h = _Held(now, replies, 1)
            w = changes.waiters
            if w is None:
                changes.waiters = [h]
            else:
                w.append(h)
        else:
            h = _Held(now, replies, len(changes))
            for ch in changes:
                w = ch.waiters
                if w is None:
                    ch.waiters = [h]
                else:
                    w.append(h)
        self._held.append(h)
        self.replies_held += 1
        return True

    def release(self, now: float, out: list[Any], force: bool = False) -> None:
        """Release the replies whose changes the peer acknowledged; all of them when the
        peer is not in sync (or ``force``); a hold that ran out opens the gate."""
        sync = self.sync
        acks = sync.counters.ReceivedBUAcks
        if acks != self._acks_seen:  # the peer answers: hold replies again
            self._acks_seen = acks
            self._open = False
        released = self._sender.released
        if released:
            times = self.hold_times
            for waiters in released:
                for h in waiters:
                    if not h.done:
                        h.waiting -= 1
                        if h.waiting <= 0:
                            h.done = True
                            out += h.replies
                            if times is not None:
                                times.append(now - h.since)
            released.clear()
        held = self._held
        if force or sync.state is not _IN_SYNC:
            for h in held:
                if not h.done:
                    h.done = True
                    out += h.replies
            held.clear()
            return
        while held and (held[0].done or self._deadline(held[0]) <= now):
            h = held.popleft()
            if not h.done:
                h.done = True
                self.replies_released_unacked += 1
                self._open = True
                out += h.replies

    def _deadline(self, h: _Held) -> float:
        heard = self.sync.last_heard
        silent = (h.since if h.since > heard else heard) + self.hold_s
        cap = h.since + self.hold_max
        return silent if silent < cap else cap

    def get_timer(self) -> float | None:
        held = self._held
        while held and held[0].done:
            held.popleft()
        return self._deadline(held[0]) if held else None


class _Held:
    """Replies waiting for the peer's acknowledgement of ``waiting`` changes (since
    ``since``)."""

    __slots__ = ("done", "replies", "since", "waiting")

    def __init__(self, since: float, replies: list[Send], waiting: int) -> None:
        self.since = since
        self.replies = replies
        self.waiting = waiting
        self.done = False


class Agent:
    """One HA address of the process, as the coordinator runs it."""

    __slots__ = ("active_timer_expiries", "gate", "ha", "ha_addr", "hsrp_key", "sync")

    def __init__(self, ha: HomeAgent, sync: SyncPeer | None, hsrp_key: GroupKey | None) -> None:
        self.ha = ha
        self.ha_addr = ha.settings.advertised
        self.sync = sync
        self.hsrp_key = hsrp_key
        self.gate: ReplyGate | None = None
        if sync is not None:
            c = sync.config
            self.gate = ReplyGate(sync, min(0.5, 1.5 * c.initial_timeout), c.peer_timeout)
        self.active_timer_expiries = 0  # HSRP: a remote Active was lost (see ActiveTimerExpired)

    @property
    def group(self) -> int | None:
        """The number of the HSRP group whose Active state makes it answer."""
        return None if self.hsrp_key is None else self.hsrp_key[1]


def _table_lookup(ha: HomeAgent) -> Callable[[Key], Binding | None]:
    """The sync peer's view of the table: the binding at ``key``; for a missing key the
    home address's non-S binding to another care-of address (a replacement orders against
    it: newest wins)."""
    index = ha.table.lookup

    def lookup(key: Key) -> Binding | None:
        home, coa = key
        v = index(home)
        if v is None:
            return None
        if isinstance(v, list):
            for b in v:
                if b.care_of == coa:
                    return b
            return None
        if v.care_of == coa or not v.flags & FLAG_S:
            return v
        return None

    return lookup


def _dynamic_of(ha: HomeAgent) -> Callable[[Binding], bool]:
    """Was a binding's home address allocated from the pool (record flag, P§5.4)?"""

    def dynamic_of(b: Binding) -> bool:
        pool = ha.pool  # (a reload may replace it)
        return pool is not None and pool.is_allocated(b.home_addr)

    return dynamic_of


def _dynamic_flags(ha: HomeAgent) -> Callable[[list[Binding]], list[int]]:
    """The record flag REC_DYNAMIC of each binding of a bulk transfer's batch whose home
    address was allocated from the pool, 0 for the others (P§5.4)."""

    def dynamic_flags(bs: list[Binding]) -> list[int]:
        pool = ha.pool  # (a reload may replace it)
        if pool is None:
            return [0] * len(bs)
        return pool.flags_of([b.home_addr for b in bs], REC_DYNAMIC)

    return dynamic_flags


def _table_iterate(ha: HomeAgent) -> Callable[[], Iterator[Binding]]:
    """Bulk transfers iterate references to the table's bindings taken when the BI Request
    arrives (8 bytes per binding, no copies; the table itself may not be iterated while it
    changes, and registrations keep arriving during a transfer). A binding replaced or
    removed meanwhile is skipped: its BU carries the news."""
    return ha.table.live_snapshot


# --- the coordinator ----------------------------------------------------------------


class Cluster:
    """The sans-IO coordinator of one home agent process (module docstring)."""

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        *,
        hsrp: Sequence[HsrpConfig] = (),
        hsrp_port: int = HSRP_PORT,
        track: Mapping[str, int] | None = None,
        rng: random.Random | None = None,
        wall_offset: float = 0.0,
        now: float = 0.0,
    ) -> None:
        """``agents``: the HA addresses served (the first one also serves the real address
        and takes every registration to an address no agent advertises). ``hsrp``: the
        groups of the HSRP interface; ``hsrp_port``: where their datagrams arrive.
        ``track``: tracked interfaces and their priority decrements. ``rng``: the HSRP
        hello jitter. ``wall_offset``: Unix time minus ``now`` (replay timestamps, sync
        Identifications)."""
        self.counters: Counter[str] = Counter()
        self.link_up = True
        self.track = dict(track or {})
        self._wall_offset = wall_offset
        self._hsrp_port = hsrp_port
        rng = rng if rng is not None else random.Random()
        self.hsrp: HsrpInterface | None = None
        keys: dict[int, GroupKey] = {}
        if hsrp:
            self.hsrp = HsrpInterface.of(HsrpGroup(c, rng=rng) for c in hsrp)
            keys = {c.group: (c.version, c.group) for c in hsrp}
        self.agents: list[Agent] = []
        for spec in agents:
            ha = spec.ha
            key = None
            if spec.hsrp_group is not None:
                key = keys.get(spec.hsrp_group)
                if key is None:
                    raise ValueError(f"HSRP group {spec.hsrp_group} is not configured")
                ha.active = False  # silent until HSRP says Active
            sync = None
            if spec.sync is not None:
                sync = SyncPeer(
                    spec.sync,
                    _table_lookup(ha),
                    _table_iterate(ha),
                    unix_offset=wall_offset,
                    dynamic_of=_dynamic_of(ha),
                    dynamic_flags=_dynamic_flags(ha),
                    nonce_of=ha.nonce_of,
                    sa_of=ha.aaa_sa_of,
                    random_bytes=ha.random_bytes,
                    now=now,
                )
            self.agents.append(Agent(ha, sync, key))
        self._by_hsrp = {a.hsrp_key[1]: a for a in self.agents if a.hsrp_key is not None}
        # registrations: by destination address; the first agent takes the rest
        self._default = self.agents[0] if self.agents else None
        self._by_addr = {a.ha_addr: a for a in self.agents}
        if self._default is not None:
            self._by_addr.setdefault(self._default.ha.settings.address, self._default)
        # sync messages: by the registry of type codes, then the header's HA address
        synced = [a for a in self.agents if a.sync is not None]
        self._sync_by_ha = {inet_aton(a.ha_addr): a for a in synced}
        self._sync_default = synced[0] if synced else None
        self._sync_codes: Mapping[int, object] = {}
        if synced:
            types = {a.sync.config.types for a in synced if a.sync is not None}
            if len(types) != 1:
                raise ValueError("every sync peer of a process uses the same type codes")
            self._sync_codes = types.pop().registry
        self._lone = len(self.agents) == 1 and not synced and self.hsrp is None
        self.wall_offset = wall_offset

    @property
    def wall_offset(self) -> float:
        """Unix time minus ``now``; the adapter refreshes it as the clocks drift or step (the
        home agents' replay timestamps follow it)."""
        return self._wall_offset

    @wall_offset.setter
    def wall_offset(self, value: float) -> None:
        self._wall_offset = value
        for a in self.agents:
            a.ha.unix_offset = value

    def agent(self, ha_addr: str) -> Agent:
        """The agent serving ``ha_addr``."""
        return self._by_addr[ha_addr]

    # ------------------------------------------------------------------ datagrams

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[Any]:
        """One UDP datagram from ``src`` to our ``dst`` (address, port)."""
        if dst[1] == self._hsrp_port and self.hsrp is not None:
            if not self.link_up:
                self.counters["hsrp_rx_link_down"] += 1
                return []
            out: list[Any] = []
            self._hsrp_actions(self.hsrp.receive_datagram(data, src, dst, now), now, out)
            return out
        if data and data[0] in self._sync_codes:
            a = self._sync_by_ha.get(peek_ha_address(data), self._sync_default)
            if a is not None and a.sync is not None:
                out = []
                self._sync_actions(a, a.sync.receive_datagram(data, src, dst, now), now, out)
                return out
        a = self._by_addr.get(dst[0], self._default)
        if a is None:
            self.counters["no_home_agent"] += 1
            return []
        actions = a.ha.receive_datagram(data, src, dst, now)
        if a.sync is None or not actions:
            return actions
        return self._ha_actions(a, actions, now)

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float) -> list[Any]:
        """Run everything due at ``now``: binding expiry, sync retransmissions and
        batches, reply holds, HSRP timers."""
        out: list[Any] = []
        for a in self.agents:
            expired = a.ha.handle_timer(now)
            if expired:
                out += expired if a.sync is None else self._ha_actions(a, expired, now)
            if a.sync is not None:
                self._sync_actions(a, a.sync.handle_timer(now), now, out)
        if self.hsrp is not None:
            self._hsrp_actions(self.hsrp.handle_timer(now), now, out)
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (None: nothing scheduled)."""
        if self._lone:
            return self.agents[0].ha.get_timer()
        best: float | None = None
        for a in self.agents:
            for t in (
                a.ha.get_timer(),
                None if a.sync is None else a.sync.get_timer(),
                None if a.gate is None else a.gate.get_timer(),
            ):
                if t is not None and (best is None or t < best):
                    best = t
        if self.hsrp is not None:
            t = self.hsrp.get_timer()
            if t is not None and (best is None or t < best):
                best = t
        return best

    # ------------------------------------------------------------------ events

    def handle_event(self, event: ClusterEvent, now: float) -> list[Any]:
        out: list[Any] = []
        hsrp = self.hsrp
        if isinstance(event, Start):
            if hsrp is not None:
                for g in hsrp.groups.values():
                    g.set_identity(event.address, event.identifier)
            for a in self.agents:
                if a.sync is not None and a.hsrp_key is not None:
                    # start-up: download the peer's table before HSRP may make us
                    # Active (a restarted HA with a higher priority and preemption
                    # would otherwise Coup with a partial table); a dead peer lets the
                    # request fail and we are ready again
                    self._sync_actions(a, a.sync.start_download(now), now, out)
            if hsrp is not None:
                if self.link_up:
                    self._hsrp_actions(hsrp.start(now), now, out)
                else:
                    self.counters["start_link_down"] += 1
        elif isinstance(event, Shutdown):
            if hsrp is not None:
                self._hsrp_actions(hsrp.stop(now), now, out)
            for a in self.agents:
                if a.gate is not None:
                    a.gate.release(now, out, force=True)
        elif isinstance(event, LinkChanged):
            if event.up != self.link_up:
                self.link_up = event.up
                self.counters["link_up" if event.up else "link_down"] += 1
                out.append(LinkStateChanged(event.up))
                if hsrp is not None:
                    self._hsrp_actions(hsrp.start(now) if event.up else hsrp.stop(now), now, out)
        elif isinstance(event, TrackChanged):
            if hsrp is not None and event.name in self.track:
                hsrp.track(event.name, not event.up, self.track[event.name])
        elif isinstance(event, SetReady):
            if hsrp is not None:
                self._hsrp_actions(hsrp.set_ready(event.ready, now), now, out)
        elif isinstance(event, Reconfigure):
            self._reconfigure(event, now, out)
        elif isinstance(event, SaFetched | SaFailed | ReloadSubscribers):
            # AAA's answer to a FetchSa of the home agent of that address, or its new SA
            # sources; the requests it runs again go through the reply gate like any other
            target = self._by_addr.get(event.ha_addr)
            if target is None:
                self.counters["event_unknown_ha"] += 1
                return out
            actions = target.ha.handle_event(event, now)
            if target.sync is not None and actions:
                actions = self._ha_actions(target, actions, now)
            out += actions
        elif isinstance(event, ClearBindings):
            for a in self.agents:
                cleared = a.ha.clear(
                    now, home_addr=event.home_addr, nai=event.nai, everything=event.all
                )
                if cleared:
                    out += cleared if a.sync is None else self._ha_actions(a, cleared, now)
        else:  # pragma: no cover - the union above is exhaustive
            raise TypeError(f"not a cluster event: {event!r}")
        return out

    def _reconfigure(self, event: Reconfigure, now: float, out: list[Any]) -> None:
        """Apply a reload to the running cores (checked whole before anything changes)."""
        by_addr = {a.ha_addr: a for a in self.agents}
        missing = [x.ha_addr for x in event.agents if x.ha_addr not in by_addr]
        groups = self.hsrp.groups if self.hsrp is not None else {}
        missing += [
            f"HSRP group {c.group}" for c in event.hsrp if (c.version, c.group) not in groups
        ]
        if missing:
            raise ValueError(f"not served by this process: {', '.join(missing)}")
        first = self.agents[0].ha if self.agents else None
        shared = [a for a in self.agents[1:] if first is not None and a.ha.pool is first.pool]
        for x in event.agents:
            a = by_addr[x.ha_addr]
            a.ha.reconfigure(x.settings, x.sas, dict(x.slb_sas))
            if a.sync is not None and x.sync is not None:
                a.sync.reconfigure(x.sync)
                if a.gate is not None:
                    sc = x.sync
                    a.gate.hold_s = min(0.5, 1.5 * sc.initial_timeout)
                    a.gate.hold_max = max(a.gate.hold_s, sc.peer_timeout)
        for a in shared:  # load-sharing groups with static addresses share the first's pool
            assert first is not None
            a.ha.pool = first.pool
        for c in event.hsrp:
            self._hsrp_actions(groups[(c.version, c.group)].reconfigure(c, now), now, out)

    # ------------------------------------------------------------------ internals

    def _ha_actions(self, a: Agent, actions: list[Any], now: float) -> list[Any]:
        """A home agent's actions with sync: changes become BU inputs, and replies wait at
        the gate for the peer's acknowledgement of the changes of the same request."""
        sync = a.sync
        assert sync is not None
        if len(actions) == 2:  # a registration's usual outcome: one change and its reply
            x, reply = actions
            if x.__class__ is Send:
                x, reply = reply, x
            delete = _SYNCED_CHANGES.get(x.__class__)
            if reply.__class__ is Send and delete is not None:
                sent: list[Any] = []
                ch = sync.queue_change(x.binding, delete, now, sent)
                out = [x]
                if sent:
                    self._sync_actions(a, sent, now, out)
                gate = a.gate
                if gate is None or not gate.hold([reply], ch, now):
                    out.append(reply)
                return out
        out = []
        replies: list[Send] | None = None
        changes: list[Change] = []
        sent = []  # the sync peer's actions (BUs that filled up)
        for x in actions:
            cls = x.__class__
            if cls is Send:
                if replies is None:
                    replies = [x]
                else:
                    replies.append(x)
                continue
            out.append(x)
            if cls in _SYNCED_CHANGES:
                delete = _SYNCED_CHANGES[cls]
            elif cls is RestoreBinding or cls is WithdrawBinding:
                continue  # forwarding state only: the binding did not change
            elif isinstance(x, InstallBinding):
                delete = False
            elif isinstance(x, RemoveBinding):
                delete = True
            else:
                continue
            changes.append(sync.queue_change(x.binding, delete, now, sent))
        if sent:
            # (no acknowledgement can arrive meanwhile: nothing to release early)
            self._sync_actions(a, sent, now, out)
        if replies is not None:
            gate = a.gate
            if not (changes and gate is not None and gate.hold(replies, changes, now)):
                out += replies
        return out

    def _sync_actions(self, a: Agent, actions: list[Any], now: float, out: list[Any]) -> None:
        """Run a sync peer's actions: records go into the home agent's table (the data
        plane follows while it is Active), readiness to the HSRP group; then release the
        replies the peer has acknowledged."""
        ha = a.ha
        for x in actions:
            cls = x.__class__
            if cls is Send:
                out.append(x)
            elif cls is ApplyBindings:
                r = ha.apply_synced_all(x.items, now)
                if r:
                    out += r
            elif cls is DeleteBinding:
                b = x.binding
                # the sync peer decided that this deletion is newer than our binding (by
                # Identification, or by the nonce chain of a nonce MN)
                if ha.table.find(b.home_addr, b.care_of) is not None:
                    r = ha.delete_synced(b.home_addr, b.care_of, now)
                    if r:
                        out += r
            elif cls is ReadyChanged:
                if a.hsrp_key is not None and self.hsrp is not None:
                    ready = self.hsrp.set_ready(x.ready, now, a.hsrp_key)
                    self._hsrp_actions(ready, now, out)
            else:
                out.append(x)  # SyncStateChanged
        if a.gate is not None:
            a.gate.release(now, out)

    def _hsrp_actions(self, actions: list[Any], now: float, out: list[Any]) -> None:
        """Pass HSRP's actions on; state changes reach the agent of the group; an expired
        Active timer, once the rest is done, tells the agent's sync peer."""
        lost: list[ActiveTimerExpired] = []
        for x in actions:
            out.append(x)
            cls = x.__class__
            if cls is StateChange:
                a = self._by_hsrp.get(x.group)
                if a is not None:
                    self._role(a, x.new, now, out)
            elif cls is ActiveTimerExpired:
                lost.append(x)
        for x in lost:
            a = self._by_hsrp.get(x.group)
            if a is not None:
                a.active_timer_expiries += 1
                if a.sync is not None:
                    self._peer_down(a, now, out)

    def _role(self, a: Agent, state: State, now: float, out: list[Any]) -> None:
        active = state is State.ACTIVE
        if active:
            self._set_active(a, True, now, out)
        sync = a.sync
        if sync is not None:
            role = ROLE_OF.get(state, Role.OTHER)
            if role is not sync.role or role is Role.STANDBY:
                self._sync_actions(a, sync.role_changed(role, now), now, out)
        if not active:
            self._set_active(a, False, now, out)

    def _set_active(self, a: Agent, active: bool, now: float, out: list[Any]) -> None:
        if a.ha.active == active:
            return
        out.append(ActiveChanged(a.ha_addr, active))
        out += a.ha.set_active(active, now)

    def _peer_down(self, a: Agent, now: float, out: list[Any]) -> None:
        sync = a.sync
        assert sync is not None
        before = sync.counters.DownloadsIncompleteOnPeerLoss
        self._sync_actions(a, sync.peer_down(now), now, out)
        if sync.counters.DownloadsIncompleteOnPeerLoss != before:
            out.append(DownloadIncomplete(a.ha_addr, sync.incomplete_records, len(a.ha.table)))


__all__ = [
    "ROLE_OF",
    "ActiveChanged",
    "Agent",
    "AgentSettings",
    "AgentSpec",
    "ClearBindings",
    "Cluster",
    "ClusterEvent",
    "DownloadIncomplete",
    "LinkChanged",
    "LinkStateChanged",
    "Reconfigure",
    "ReplyGate",
    "SetReady",
    "Shutdown",
    "Start",
    "TrackChanged",
]
