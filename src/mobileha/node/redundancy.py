"""asyncio adapter of HA-HA binding sync: a :class:`~mobileha.core.redundancy.SyncPeer`
sharing the home agent's UDP 434 socket (P§5.4 transport).

Wiring (all in-process, no socket of its own):

* ``HomeAgentNode.sync_hook``: datagrams of types 200-204 that arrive on the home agent's
  sockets come here (:meth:`RedundancyNode.handle_datagram`); we send with
  ``HomeAgentNode.send``.
* ``HomeAgentNode.binding_listeners``: the home agent core's binding actions become sync
  inputs. ``InstallBinding`` / ``RefreshBinding`` -> ``binding_changed``; ``RemoveBinding``
  (deregistration, expiry, replacement) -> ``binding_deleted``. ``RestoreBinding`` and
  ``WithdrawBinding`` (activation / standby, and the copies we install ourselves) are not
  changes and are ignored, so nothing echoes back to the peer.
* ``ApplyBinding`` / ``DeleteBinding`` -> ``HomeAgent.apply_synced`` / ``delete_synced``,
  whose actions the home agent node runs (data plane when active).
* HSRP: :meth:`RedundancyNode.on_hsrp_state` takes the HSRP adapter's ``StateChange``
  (Standby -> bulk download, Active); ``ReadyChanged`` -> ``HsrpNode.set_ready`` so the
  group neither preempts nor takes over before the download is complete.
* HSRP Active timer: when a group's Active timer expires while a remote router was Active
  (the Active is gone), :meth:`RedundancyNode.peer_down` runs right after (``call_soon``),
  so a standby whose bulk download was cut by the crash becomes ready and takes over as
  fast as HSRP does, with what it has (logged, counted in
  ``DownloadsIncompleteOnPeerLoss``), instead of after ``peer_timeout`` of silence. The
  expiry is seen by a subclass of the sans-IO ``HsrpInterface`` put in as ``HsrpNode.core``
  (the HSRP core reports no action when the readiness guard keeps us Standby, so there is
  no ``StateChange`` to watch).
* One :class:`~mobileha.node.base.DeadlineTimer` follows ``SyncPeer.next_deadline()``.

Replies wait for the peer (``HomeAgentNode.reply_gate``): the registration reply of a request
that changed bindings is held until the peer has acknowledged the BU carrying the change,
so every registration acknowledged to a mobile node is on the peer when the active dies
(the issue 7 acceptance "0 lost" under kill -9; without it a kill in the few milliseconds
between reply and BU ack lost the newest registrations, found by
tests/netns/test_redundancy_takeover.py). Only while the peer is in sync and answering: a
reply is held at most ``reply_hold_s``; when a hold runs out the gate opens (replies go out
at once) until the next BU ack shows the peer is back.

Bulk transfers iterate a list of references to the table's bindings taken when the BI
Request arrives (8 bytes per binding, no copies of the bindings: ``BindingTable.__iter__``
may not run while the table changes, and registrations keep arriving during a transfer).
A binding replaced or removed meanwhile is skipped: its BU carries the news.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mobileha.core.actions import InstallBinding, RemoveBinding, Send
from mobileha.core.binding import FLAG_S, Binding
from mobileha.core.home_agent import RestoreBinding, WithdrawBinding
from mobileha.core.hsrp import HsrpAction, HsrpInterface
from mobileha.core.redundancy import (
    ApplyBinding,
    DeleteBinding,
    Key,
    ReadyChanged,
    Role,
    SyncAction,
    SyncConfig,
    SyncPeer,
    SyncState,
)
from mobileha.log import get_logger
from mobileha.node.base import DeadlineTimer

_log = get_logger("mobileha.redundancy")


class _WatchedInterface(HsrpInterface):
    """An :class:`HsrpInterface` that reports the expiry of an Active timer while a remote
    router was the Active (the HSRP core emits nothing when the readiness guard keeps a
    downloading standby out of Active)."""

    # group key (version, group) -> callback; key None: any group
    on_active_lost: dict[tuple[int, int] | None, Callable[[], None]] | None = None

    def on_timer(self, now: float) -> list[HsrpAction]:
        lost: list[tuple[int, int]] = []
        for key, g in self.groups.items():
            t = g.t_active
            a = g.active
            if t is not None and t <= now and a is not None and a.addr != "local":
                lost.append(key)
        out = super().on_timer(now)
        cbs = self.on_active_lost
        if lost and cbs:
            for k, cb in list(cbs.items()):
                if k is None or k in lost:
                    cb()
        return out


class _Held:
    """A reply waiting for the peer's acknowledgement of ``waiting`` keys."""

    __slots__ = ("deadline", "done", "reply", "waiting")

    def __init__(self, deadline: float, reply: Send, waiting: int) -> None:
        self.deadline = deadline
        self.reply = reply
        self.waiting = waiting
        self.done = False


class RedundancyNode:
    """Binding sync of one home agent with its redundancy peer (one HA address)."""

    role = "redundancy"

    def __init__(
        self,
        ha: Any,
        config: SyncConfig,
        *,
        hsrp: Any = None,
        hsrp_group: tuple[int, int] | None = None,
    ) -> None:
        """``ha``: a :class:`mobileha.node.home_agent.HomeAgentNode`; ``hsrp``: an optional
        :class:`mobileha.node.hsrp.HsrpNode` whose ``set_ready`` follows our ``ready``.
        ``hsrp_group`` (version, group): the HSRP node runs several groups (load sharing)
        and this sync follows that one only: its readiness and its Active timer."""
        self.ha = ha
        self.hsrp = hsrp
        self.hsrp_group = hsrp_group
        self._group_ready = True
        self.name = f"{getattr(ha, 'name', 'ha')}-sync"
        core = ha.core
        self._core = core
        now = ha.now()
        self.peer = SyncPeer(
            config,
            self._lookup,
            self._iterate,
            unix_offset=time.time() - now,
            dynamic_of=lambda b: bool(core.is_dynamic(b.home_addr)),
            nonce_of=core.nonce_of,
            now=now,
        )
        self._timer: DeadlineTimer | None = None
        # replies held until the peer acknowledges, in arrival (= deadline) order, and by
        # the keys they wait for; the peer lists the keys it acknowledges in peer.acked
        self.reply_hold_s = min(0.5, 1.5 * config.initial_timeout)
        self._held: deque[_Held] = deque()
        self._by_key: dict[Key, list[_Held]] = {}
        self.peer.acked = []
        self._gate_open = False  # True after a hold ran out: replies go out at once
        self._acks_seen = 0
        self.replies_held = 0
        self.replies_released_unacked = 0
        ha.sync_hook = self._on_sync_datagram
        ha.binding_listeners.append(self._on_ha_action)
        ha.reply_gate = self._hold_reply
        self.active_timer_expiries = 0
        if hsrp is not None:
            self._watch_active_timer(hsrp)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        import asyncio

        self._timer = DeadlineTimer(asyncio.get_running_loop(), self._on_timer)
        self._timer.update(self.peer.next_deadline())

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.ha.sync_hook == self._on_sync_datagram:
            self.ha.sync_hook = None
        if self._on_ha_action in self.ha.binding_listeners:
            self.ha.binding_listeners.remove(self._on_ha_action)
        if self.ha.reply_gate == self._hold_reply:
            self.ha.reply_gate = None
        self._release(force=True)

    def crash(self) -> None:
        """Simulate a crash in-process (loopback demo, tests): the retransmission timer
        stops at once; unacknowledged BUs are simply lost, as with ``kill -9``."""
        if self._timer is not None:
            self._timer.cancel()

    # ------------------------------------------------------------------ table access

    def _lookup(self, key: Key) -> Binding | None:
        """The binding at ``key``; for a missing key the home address's non-S binding to
        another care-of address (a replacement orders against it: newest wins)."""
        home, coa = key
        v: Binding | list[Binding] | None = self._core.table.lookup(home)
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

    def _iterate(self) -> Iterator[Binding]:
        table = self._core.table
        snapshot = list(table)
        for b in snapshot:
            if b in table:
                yield b

    # ------------------------------------------------------------------ inputs

    def _on_sync_datagram(self, data: bytes, src: tuple[str, int]) -> None:
        self.handle_datagram(data, src)

    def handle_datagram(self, data: bytes, src: tuple[str, int], now: float | None = None) -> None:
        """A datagram of types 200-204 received on the home agent's socket."""
        self._run(self.peer.handle_datagram(data, src, self.ha.now() if now is None else now))

    def _on_ha_action(self, a: Any) -> None:
        if isinstance(a, (RestoreBinding, WithdrawBinding)):
            return
        if isinstance(a, InstallBinding):
            self._run(self.peer.binding_changed(a.binding, self.ha.now()))
        elif isinstance(a, RemoveBinding):
            self._run(self.peer.binding_deleted(a.binding, self.ha.now()))

    def on_hsrp_state(self, change: Any) -> None:
        """An HSRP ``StateChange`` of our group (``new`` is a ``core.hsrp.State``)."""
        name = getattr(change.new, "name", str(change.new)).upper()
        role = (
            Role.ACTIVE if name == "ACTIVE" else Role.STANDBY if name == "STANDBY" else Role.OTHER
        )
        if role is self.peer.role and role is not Role.STANDBY:
            return
        self._run(self.peer.role_changed(role, self.ha.now()))

    def start_download(self) -> None:
        """Start-up with an Active peer: download its table before becoming ready."""
        self._run(self.peer.start_download(self.ha.now()))

    def reconcile(self) -> None:
        """After a split brain: exchange both tables (newest Identification wins)."""
        self._run(self.peer.reconcile(self.ha.now()))

    def peer_down(self) -> None:
        """The peer is gone (HSRP Active timer expired): stop waiting for it."""
        peer = self.peer
        before = peer.counters.DownloadsIncompleteOnPeerLoss
        self._run(peer.peer_down(self.ha.now()))
        if peer.counters.DownloadsIncompleteOnPeerLoss != before:
            _log.warning(
                "peer lost during the bulk download: ready with an incomplete table",
                node=self.name,
                records_received=peer.incomplete_records,
                bindings=len(self._core.table),
            )

    def _watch_active_timer(self, hsrp: Any) -> None:
        """Call :meth:`peer_down` when an HSRP group's Active timer expires with a remote
        router as Active (see the module docstring): ``hsrp.core`` (still without groups,
        before ``HsrpNode.start``) is replaced by a :class:`_WatchedInterface`."""
        iface = hsrp.core
        if not isinstance(iface, _WatchedInterface):
            old = iface
            iface = _WatchedInterface()
            for g in old.groups.values():
                iface.add(g)
            iface.on_active_lost = {}
            hsrp.core = iface
        assert iface.on_active_lost is not None
        iface.on_active_lost[self.hsrp_group] = self._on_active_lost

    def _set_hsrp_ready(self, ready: bool) -> None:
        """``ReadyChanged``: the whole HSRP node, or only our group (load sharing)."""
        h = self.hsrp
        if h is None:
            return
        key = self.hsrp_group
        if key is None:
            h.set_ready(ready)
            return
        self._group_ready = ready
        self.apply_group_ready()

    def apply_group_ready(self) -> None:
        """Set our group's readiness in the running HSRP node (its groups exist only after
        ``HsrpNode.start``; the home agent calls this again right after it). Uses the
        adapter's internals (``_run``, ``core._reschedule``): ``HsrpNode.set_ready`` sets
        every group."""
        h = self.hsrp
        key = self.hsrp_group
        if h is None or key is None:
            return
        g = h.core.groups.get(key)
        loop = getattr(h, "_loop", None)
        if g is None or loop is None or not getattr(h, "_started", False):
            return
        if g.ready == self._group_ready:
            return
        actions = g.set_ready(self._group_ready, loop.time())
        h.core._reschedule(key)
        h._run(actions)

    def _on_active_lost(self) -> None:
        self.active_timer_expiries += 1
        loop = self.ha._loop
        if loop is not None:
            loop.call_soon(self.peer_down)  # not inside the HSRP adapter's _run
        else:
            self.peer_down()

    # ------------------------------------------------------------------ reply gate

    def _hold_reply(self, reply: Send, keys: list[Key]) -> bool:
        """``HomeAgentNode.reply_gate``: hold ``reply`` until the peer has ``keys``."""
        peer = self.peer
        if self._gate_open or peer.state is not SyncState.IN_SYNC:
            return False
        waiting = [k for k in keys if peer.is_pending(k)]
        if not waiting:
            return False
        h = _Held(self.ha.now() + self.reply_hold_s, reply, len(waiting))
        by_key = self._by_key
        for k in waiting:
            lst = by_key.get(k)
            if lst is None:
                by_key[k] = [h]
            else:
                lst.append(h)
        self._held.append(h)
        self.replies_held += 1
        if self._timer is not None:
            self._timer.update(self._deadline())
        return True

    def _release(self, force: bool = False) -> None:
        """Send the held replies whose changes the peer has acknowledged; all of them when
        the peer is not in sync (or ``force``); a hold that ran out opens the gate."""
        peer = self.peer
        send = self.ha.send_action
        acks = peer.counters.ReceivedBUAcks
        if acks != self._acks_seen:  # the peer answers: hold replies again
            self._acks_seen = acks
            self._gate_open = False
        acked = peer.acked
        if acked:
            by_key = self._by_key
            for k in acked:
                lst = by_key.pop(k, None)
                if lst is None:
                    continue
                for h in lst:
                    if not h.done:
                        h.waiting -= 1
                        if h.waiting <= 0:
                            h.done = True
                            send(h.reply)
            acked.clear()
        held = self._held
        if force or peer.state is not SyncState.IN_SYNC:
            for h in held:
                if not h.done:
                    h.done = True
                    send(h.reply)
            held.clear()
            self._by_key.clear()
            return
        now = self.ha.now()
        while held and (held[0].done or held[0].deadline <= now):
            h = held.popleft()
            if not h.done:
                h.done = True
                self.replies_released_unacked += 1
                self._gate_open = True
                send(h.reply)
        if not held:
            self._by_key.clear()

    def _deadline(self) -> float | None:
        d = self.peer.next_deadline()
        if self._held:
            h = self._held[0].deadline
            d = h if d is None else min(d, h)
        return d

    # ------------------------------------------------------------------ actions

    def _run(self, actions: Iterable[SyncAction]) -> None:
        ha = self.ha
        core = self._core
        now = None
        for a in actions:
            cls = a.__class__
            if cls is Send:
                assert isinstance(a, Send)
                ha.send(a.payload, a.dst, a.src[0] if a.src is not None else None)
            elif cls is ApplyBinding:
                assert isinstance(a, ApplyBinding)
                if now is None:
                    now = ha.now()
                out = core.apply_synced(a.binding, now, a.dynamic, a.nonce)
                if out:
                    ha._run(out)
            elif cls is DeleteBinding:
                assert isinstance(a, DeleteBinding)
                if now is None:
                    now = ha.now()
                b = a.binding
                # SyncPeer decided that this deletion is newer than our binding (by
                # Identification, or by the nonce chain of a nonce MN)
                if core.table.find(b.home_addr, b.care_of) is not None:
                    out = core.delete_synced(b.home_addr, b.care_of, now)
                    if out:
                        ha._run(out)
            elif cls is ReadyChanged:
                assert isinstance(a, ReadyChanged)
                self._set_hsrp_ready(a.ready)
        self._release()
        if self._timer is not None:
            self._timer.update(self._deadline())

    def _on_timer(self) -> None:
        self._run(self.peer.on_timer(self.ha.now()))

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the ``redundancy`` view and the cmiHaRedun* families)

    @property
    def bindings(self) -> int:
        """Bindings held for this HA address (active: owned; standby: synced copies)."""
        return len(self._core.table)

    @property
    def replies_waiting(self) -> int:
        """Replies held now, waiting for the peer's acknowledgement."""
        return sum(1 for h in self._held if not h.done)


__all__ = ["RedundancyNode"]
