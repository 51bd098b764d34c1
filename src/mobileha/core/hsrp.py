"""Sans-IO HSRP group: the RFC 2281 §5.3-5.7 state machine (P§4.3), versions 1 and 2.

The transition table below is the RFC's, character for character (``RFC2281_TABLE``); it is
parsed once at import and :meth:`HsrpGroup._event` interprets it. Everything the RFC leaves
to the implementation is a documented guard *around* the table, never a hidden edit of it:

* **Event classification** (who is "the active router"): a Hello whose State field is
  Active is from the active router (g/h by priority), Standby from the standby router (k/l),
  Speak from a speaker (f when of higher priority; a lower speaker is no event). A Resign is
  event i when its sender is the router we know as Active or its State field says Active. A
  Coup is event j when its sender has higher priority. "Higher priority" is the tuple
  ``(priority, IPv4 address)`` (RFC 2281 §5.1 Priority).
* **Speak -> Standby with no Active** [P, P§4.3 note]: in Speak an Active-timer expiry (c) has
  no action, so the timer is simply stopped. When the router then enters Standby (d or l in
  Speak) with the Active timer not running, nobody has been heard as Active for a Holdtime:
  we apply event c at once (Standby ``CDFI/6``), as IOS does ("Speak -> Standby",
  "Standby -> Active" together). Without this a lone router would stay Standby forever.
* **Readiness** (``set_ready``, for HA redundancy, DESIGN §3): while not ready, any cell that
  would enter Active is replaced by ``A`` (restart the Active timer, stay), and preemption
  (the ``*`` alternative of h) is not taken. ``set_ready(True)`` in Standby with no Active
  known applies c at once.
* **Preemption delay**: with ``preempt_delay_ms`` the ``*`` alternative of h is taken only
  once an h-with-preempt has been seen continuously for the delay (so preemption happens at
  the first Hello of the Active after the delay).
* **Messages** carry the sender's state after the transition, except a Resign, which carries
  Active (the role being given up).
* **Learning** (action E) happens only where the table says so and only from authenticated
  Hellos of the active router; hello/hold are learned only when not configured, the VIP only
  when not configured, and an Active router never learns (it never executes E).
* **v1 timers** are whole seconds on the wire: we send ``ceil(ms / 1000)`` (1..255). A
  receiver whose configured millisecond timers encode to the same seconds keeps its own
  milliseconds [P] (IOS's encoding of msec timers in v1 is not public, P§4.5).

Timers are kept in milliseconds; deadlines are ``now`` seconds (monotonic) + ms / 1000.
Inputs take ``now`` and return a list of actions; :meth:`HsrpGroup.get_timer` says when to
call :meth:`HsrpGroup.handle_timer`. :class:`HsrpInterface` holds many groups of one
interface with one heap and the same surface (``receive_datagram``, ``handle_timer``,
``get_timer``).

Besides the table's own actions (:class:`HsrpSend` for F/G/H, :class:`GratuitousArp` for I,
``ClaimVip``/``ReleaseVip`` on entering/leaving Active) a group reports
:class:`StateChange` and :class:`ActiveTimerExpired`: the Active timer of a *remote* Active
ran out (event c). The redundancy layer needs the latter even when the table makes no
state change (a standby kept out of Active by the readiness guard): it means the peer is
gone.
"""

from __future__ import annotations

import enum
import heapq
import hmac
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from mobileha.core.actions import Addr, ClaimVip, ReleaseVip, Send
from mobileha.wire import DecodeError, ip_bytes
from mobileha.wire import hsrp as w


class State(enum.IntEnum):
    """HSRP states; the values are the v1 wire values (RFC 2281 §5.1)."""

    INITIAL = 0
    LEARN = 1
    LISTEN = 2
    SPEAK = 4
    STANDBY = 8
    ACTIVE = 16

    @property
    def label(self) -> str:
        return self.name.capitalize()


class Event(enum.StrEnum):
    """RFC 2281 §5.5 events."""

    A = "a"  # HSRP configured on an enabled interface
    B = "b"  # HSRP disabled or interface disabled
    C = "c"  # Active timer expiry
    D = "d"  # Standby timer expiry
    E = "e"  # Hello timer expiry
    F = "f"  # Hello of higher priority from a router in Speak state
    G = "g"  # Hello of higher priority from the active router
    H = "h"  # Hello of lower priority from the active router
    I = "i"  # Resign from the active router  # noqa: E741
    J = "j"  # Coup from a higher priority router
    K = "k"  # Hello of higher priority from the standby router
    L = "l"  # Hello of lower priority from the standby router

    @property
    def reason(self) -> str:
        """What happened, in words (for the log line of a state change)."""
        return EVENT_REASONS[self]


EVENT_REASONS: Final = {
    Event.A: "interface up",
    Event.B: "interface down or group removed",
    Event.C: "Active timer expired",
    Event.D: "Standby timer expired",
    Event.E: "Hello timer expired",
    Event.F: "higher priority Hello from a speaking router",
    Event.G: "higher priority Hello from the Active router",
    Event.H: "lower priority Hello from the Active router",
    Event.I: "Resign from the Active router",
    Event.J: "Coup from a higher priority router",
    Event.K: "higher priority Hello from the Standby router",
    Event.L: "lower priority Hello from the Standby router",
}


# RFC 2281 §5.7, verbatim (states numbered as in §5.3; "-" is an empty cell).
# Notes: "+" AB and 2 (Learn) if no VIP is configured, else 3 (Listen);
#        "*" with preemption BGFI/6, without A (no state change).
RFC2281_TABLE: Final = """
     1:Initial  2:Learn  3:Listen   4:Speak    5:Standby  6:Active
a    AB/2|3+    -        -          -          -          -
b    -          CD/1     CD/1       CD/1       CD/1       CDH/1
c    -          -        AB/4       -          CDFI/6     -
d    -          -        B/4        D/5        -          -
e    -          -        -          F          F          F
f    -          -        -          B/3        B/3        -
g    -          EAB/3    EA         EA         EA         AB/4
h    -          EAB/3    A|BGFI/6*  A|BGFI/6*  A|BGFI/6*  G
i    -          -        AB/4       A          CFI/6      -
j    -          -        -          -          -          ABH/4
k    -          -        B          B/3        B/3        B
l    -          -        B/4        D/5        -          B
"""

_RFC_STATE: Final = {
    1: State.INITIAL,
    2: State.LEARN,
    3: State.LISTEN,
    4: State.SPEAK,
    5: State.STANDBY,
    6: State.ACTIVE,
}


@dataclass(frozen=True, slots=True)
class Alt:
    """One alternative of a cell: action letters (executed in order) and the next state."""

    actions: str
    next: State | None


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: one alternative, or two chosen by ``cond`` ('+' VIP known, '*' preempt)."""

    alts: tuple[Alt, ...]
    cond: str = ""


def _parse_alt(text: str, inherit: str) -> Alt:
    if "/" in text:
        acts, st = text.split("/")
        return Alt(acts, _RFC_STATE[int(st)])
    if text.isdigit():  # "3" in "AB/2|3+": same actions, other state
        return Alt(inherit, _RFC_STATE[int(text)])
    return Alt(text, None)


def _parse_table(text: str) -> dict[tuple[State, Event], Cell]:
    lines = [ln.split() for ln in text.strip().splitlines()]
    states = [_RFC_STATE[int(h.split(":")[0])] for h in lines[0]]
    table: dict[tuple[State, Event], Cell] = {}
    for row in lines[1:]:
        ev = Event(row[0])
        for st, cell in zip(states, row[1:], strict=True):
            if cell == "-":
                continue
            cond = cell[-1] if cell[-1] in "+*" else ""
            parts = cell.rstrip("+*").split("|")
            first = _parse_alt(parts[0], "")
            alts = (first, *(_parse_alt(p, first.actions) for p in parts[1:]))
            table[(st, ev)] = Cell(alts, cond)
    return table


TABLE: Final = _parse_table(RFC2281_TABLE)


# --------------------------------------------------------------------------- actions
GroupKey = tuple[int, int]  # (version, group)


@dataclass(frozen=True, slots=True)
class HsrpSend(Send):
    """A Hello, Coup or Resign of one group (actions F, G, H), to the group's multicast
    address and UDP port 1985. ``group`` (version, group) and ``vmac`` say which group sent
    it; ``from_active``: the group was Active when it was sent, so RFC 2281 §6.1 wants it
    sent from the virtual MAC (where the adapter owns one)."""

    group: GroupKey = (1, 0)
    vmac: bytes = b""
    from_active: bool = False


@dataclass(frozen=True, slots=True)
class GratuitousArp:
    """Action I: broadcast an ARP for ``vip`` with ``mac`` (the group's virtual MAC)."""

    vip: str
    mac: bytes
    group: int


@dataclass(frozen=True, slots=True)
class StateChange:
    """The group changed state (for logs, traps, the redundancy layer)."""

    group: int
    old: State
    new: State
    event: Event


@dataclass(frozen=True, slots=True)
class ActiveTimerExpired:
    """Event c with a remote router as the Active: ``active`` (its address) has not been
    heard for a Holdtime. Reported whatever the table does with the event (a router kept
    out of Active by the readiness guard makes no state change)."""

    group: int
    active: str


HsrpAction = (
    HsrpSend | Send | ClaimVip | ReleaseVip | GratuitousArp | StateChange | ActiveTimerExpired
)


# --------------------------------------------------------------------------- config
def _ip_int(addr: str) -> int:
    return int.from_bytes(ip_bytes(addr), "big")


def v1_seconds(ms: int) -> int:
    """The 1-byte seconds value v1 carries for a millisecond timer (ceil, 1..255) [P]."""
    return min(255, max(1, math.ceil(ms / 1000)))


@dataclass(slots=True)
class HsrpConfig:
    """One group's configuration (IOS ``standby <group> ...``; defaults from P§4.1)."""

    address: str  # our real interface address (sender IP, tie breaker)
    group: int = 0
    version: int = 1
    vip: str | None = None  # None: learn it from the Active (Learn state)
    priority: int = w.DEFAULT_PRIORITY
    preempt: bool = False
    preempt_delay_ms: int = 0
    hello_ms: int | None = None  # None (both): not configured, default 3000/10000, learnable
    hold_ms: int | None = None
    auth: bytes = w.DEFAULT_AUTH  # 8-byte text password (used when md5_key is None)
    md5_key: bytes | None = None  # MD5 authentication (Cisco's MD5 TLV, P§4.5)
    md5_key_id: int = 0
    identifier: bytes = bytes(6)  # v2 Identifier: our interface MAC
    jitter: float = 0.1  # Hello timer jitter: each interval is hello * (1 - U(0, jitter))
    name: str = ""

    def __post_init__(self) -> None:
        _ip_int(self.address)
        if self.vip is not None:
            _ip_int(self.vip)
        if self.version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        if not 0 <= self.group <= (255 if self.version == 1 else 4095):
            raise ValueError(f"group {self.group} out of range for version {self.version}")
        if not 0 <= self.priority <= 255:
            raise ValueError("priority must be 0-255")
        if (self.hello_ms is None) != (self.hold_ms is None):
            raise ValueError("configure both hello and hold time, or neither (RFC 2281 §5.1)")
        if (
            self.hello_ms is not None
            and self.hold_ms is not None
            and not (0 < self.hello_ms < self.hold_ms)
        ):
            raise ValueError("hold time must be greater than hello time")
        if len(self.auth) > 8:
            raise ValueError("text authentication is at most 8 bytes")
        self.auth = self.auth.ljust(8, b"\x00")
        if len(self.identifier) != 6:
            raise ValueError("identifier is a 6-byte MAC")
        if not 0 <= self.preempt_delay_ms <= 3_600_000:
            raise ValueError("preempt delay must be 0-3600 s")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter must be in [0, 1)")


def parse_auth(spec: str) -> tuple[bytes, bytes | None]:
    """``"text:cisco"`` -> (b"cisco\\0\\0\\0", None); ``"md5:KEY"`` -> (zeros, b"KEY")."""
    kind, _, val = spec.partition(":")
    if kind == "text":
        return w.text_auth(val), None
    if kind == "md5":
        if not val:
            raise ValueError("md5 authentication needs a key")
        return bytes(8), val.encode()
    raise ValueError(f"authentication must be text:PASSWORD or md5:KEY, not {spec!r}")


@dataclass(slots=True)
class _Rx:
    """A received message reduced to what the state machine needs."""

    opcode: int
    state: State
    priority: int
    hello_ms: int
    hold_ms: int
    vip: str


@dataclass(slots=True)
class _Peer:
    addr: str
    priority: int
    heard: float = 0.0
    hold_ms: int = 0


@dataclass(slots=True)
class _Track:
    down: bool
    decrement: int


# --------------------------------------------------------------------------- the group
class HsrpGroup:
    """One HSRP group on one interface (sans-IO)."""

    def __init__(self, config: HsrpConfig, rng: random.Random | None = None) -> None:
        self.cfg = config
        self._rng = rng or random.Random()
        self._my_ip = _ip_int(config.address)
        self.state = State.INITIAL
        self.ready = True
        self.vip: str | None = config.vip
        self._learned_hello: int | None = None
        self._learned_hold: int | None = None
        self._tracks: dict[str, _Track] = {}
        # set_priority / set_preempt change these, never the configuration they start from
        self.configured_priority = config.priority
        self.preempt = config.preempt
        self.preempt_delay_ms = config.preempt_delay_ms
        self._priority = config.priority
        # timers (absolute deadlines, seconds) -------------------------------------------
        self.t_active: float | None = None
        self.t_standby: float | None = None
        self.t_hello: float | None = None
        self._preempt_since: float | None = None
        # who is who ---------------------------------------------------------------------
        self.active: _Peer | None = None  # None, or the active router (addr "local" = us)
        self.standby: _Peer | None = None
        # statistics ---------------------------------------------------------------------
        self.state_changes = 0
        self.last_change: float | None = None
        self.auth_failures = 0
        self.counters: Counter[str] = Counter()
        self.last_cell: tuple[Event, str, State | None] | None = None
        mac_version = 1 if config.version == 1 else 2
        self.vmac = w.virtual_mac(config.group, mac_version)
        self._mcast = (w.MCAST_V1 if config.version == 1 else w.MCAST_V2, w.HSRP_PORT)

    # ---------------------------------------------------------------- parameters in use
    @property
    def group(self) -> int:
        return self.cfg.group

    @property
    def hello_ms(self) -> int:
        if self.cfg.hello_ms is not None:
            return self.cfg.hello_ms
        return self._learned_hello or w.DEFAULT_HELLO_MS

    @property
    def hold_ms(self) -> int:
        if self.cfg.hold_ms is not None:
            return self.cfg.hold_ms
        return self._learned_hold or w.DEFAULT_HOLD_MS

    @property
    def priority(self) -> int:
        """The priority in use: configured minus the decrements of tracked objects that are down."""
        return self._priority

    def _recompute_priority(self) -> None:
        dec = sum(t.decrement for t in self._tracks.values() if t.down)
        self._priority = max(0, self.configured_priority - dec)

    def _higher(self, prio: int, addr: str) -> bool:
        return (prio, _ip_int(addr)) > (self._priority, self._my_ip)

    # ---------------------------------------------------------------- public inputs
    def start(self, now: float) -> list[HsrpAction]:
        """Event a: HSRP configured on an enabled interface (interface up)."""
        out: list[HsrpAction] = []
        self._event(Event.A, now, out)
        return out

    def stop(self, now: float) -> list[HsrpAction]:
        """Event b: HSRP disabled / interface down. An Active router sends a Resign."""
        out: list[HsrpAction] = []
        self._event(Event.B, now, out)
        return out

    interface_up = start
    interface_down = stop

    def set_ready(self, ready: bool, now: float) -> list[HsrpAction]:
        """While not ready the group never enters Active and never preempts (redundancy)."""
        out: list[HsrpAction] = []
        self.ready = ready
        self._preempt_since = None
        if ready and self.state is State.STANDBY and self.active is None:
            self.counters["ready_takeover"] += 1
            self._event(Event.C, now, out)
        return out

    def set_identity(self, address: str | None, identifier: bytes | None) -> None:
        """Fill in what the configuration left unset (address ``0.0.0.0``, a zero v2
        Identifier) with the interface's address and MAC, before the group starts."""
        c = self.cfg
        fill: dict[str, Any] = {}
        if address and c.address in ("", "0.0.0.0"):
            fill["address"] = address
        if identifier and c.version == 2 and c.identifier == bytes(6):
            fill["identifier"] = identifier
        if not fill:
            return
        if self.state is not State.INITIAL:
            raise ValueError("the identity of a running group cannot change")
        self.cfg = replace(c, **fill)
        self._my_ip = _ip_int(self.cfg.address)

    def reconfigure(self, config: HsrpConfig, now: float) -> list[HsrpAction]:
        """Reload: the group's new priority, preemption, timers, authentication and name,
        without leaving its state (a higher priority with preemption takes over at the next
        hello, as on IOS). Group, version, virtual IP and address need a restart."""
        c = self.cfg
        for name in ("group", "version", "vip"):
            if getattr(config, name) != getattr(c, name):
                raise ValueError(f"HSRP {name} cannot change without a restart")
        # the identity filled in at start (interface address and MAC) stays
        self.cfg = replace(config, address=c.address, identifier=c.identifier)
        self.set_preempt(config.preempt, config.preempt_delay_ms)
        return self.set_priority(config.priority, now)

    def set_priority(self, priority: int, now: float) -> list[HsrpAction]:
        """A new configured priority (tracked decrements still apply to it)."""
        if not 0 <= priority <= 255:
            raise ValueError("priority must be 0-255")
        self.configured_priority = priority
        self._recompute_priority()
        return []

    def set_preempt(self, preempt: bool, delay_ms: int = 0) -> None:
        if not 0 <= delay_ms <= 3_600_000:
            raise ValueError("preempt delay must be 0-3600 s")
        self.preempt = preempt
        self.preempt_delay_ms = delay_ms
        self._preempt_since = None

    def track(self, name: str, down: bool, decrement: int = 10) -> None:
        """Interface tracking: while ``name`` is down, lower the priority by ``decrement``.

        Decrements of several tracked objects add up; the priority never goes below 0 (P§4.7).
        """
        self._tracks[name] = _Track(down, decrement)
        self._recompute_priority()

    def untrack(self, name: str) -> None:
        self._tracks.pop(name, None)
        self._recompute_priority()

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[HsrpAction]:
        """A UDP 1985 datagram from ``src`` (address, port) to ``dst`` (the multicast group,
        or our address with unicast peers). Undecodable input is counted and dropped."""
        try:
            msg = w.decode(data)
        except DecodeError as exc:
            self.counters[f"rx_error_{exc.reason}"] += 1
            return []
        return self.receive_message(msg, data, src[0], now)

    def receive_message(
        self, msg: w.HsrpMessage, raw: bytes, src: str, now: float
    ) -> list[HsrpAction]:
        """A decoded message (``raw`` is needed to check an MD5 digest)."""
        out: list[HsrpAction] = []
        rx = self._reduce(msg, src)
        if rx is None:
            return out
        md5 = msg.md5 if isinstance(msg, (w.HsrpV1, w.HsrpV2)) else None
        if md5 is not None and md5.ip != src:
            # The MD5 digest covers the sender address of its TLV (P§4.5): a packet sent
            # from another address is a replay of someone else's, whatever its digest.
            self.counters["rx_md5_sender_mismatch"] += 1
            return out
        if not self._authentic(msg, raw):
            self.auth_failures += 1
            self.counters["rx_auth_failure"] += 1
            return out
        if self.state is State.INITIAL:
            self.counters["rx_while_initial"] += 1
            return out
        self.counters[f"rx_{w.OPCODE_NAMES[rx.opcode].lower()}"] += 1
        ev = self._classify(rx, src)
        if ev is Event.I:
            self.active = None
        if ev is not None:
            self._event(ev, now, out, rx)
        if rx.opcode == w.OP_HELLO or (rx.opcode == w.OP_COUP and rx.state is State.ACTIVE):
            self._note_peer(rx, src, now)
        return out

    def _note_peer(self, rx: _Rx, src: str, now: float) -> None:
        """Who is the active / standby router (Resign classification, show standby).

        While two routers claim Active (a healed partition), "the active router" is the
        higher of them, so that the loser's Resign is not taken for the winner's. A Coup
        (state Active) counts as a claim too: its sender is about to be Active, and the
        Resign it provokes from the old Active must not make a Standby take over.
        """
        peer = _Peer(src, rx.priority, now, rx.hold_ms)
        if rx.state is State.ACTIVE:
            if self.state is State.ACTIVE:
                return  # we are the active router (or are about to fight for it)
            cur = self.active
            if (
                cur is None
                or cur.addr in (src, "local")
                or (rx.priority, _ip_int(src)) > (cur.priority, _ip_int(cur.addr))
                or now > cur.heard + cur.hold_ms / 1000.0
            ):
                self.active = peer
            if self.standby is not None and self.standby.addr == src:
                self.standby = None
        elif rx.state is State.STANDBY:
            if self.state is not State.STANDBY:
                self.standby = peer
            if self.active is not None and self.active.addr == src:
                self.active = None

    def handle_timer(self, now: float) -> list[HsrpAction]:
        """Run every timer that is due (events c, d, e), earliest first."""
        out: list[HsrpAction] = []
        for _ in range(16):  # a bounded number of expiries per call
            due = [
                (t, i)
                for i, t in enumerate((self.t_active, self.t_standby, self.t_hello))
                if t is not None and t <= now
            ]
            if not due:
                break
            _, which = min(due)
            if which == 0:
                self.t_active = None
                gone = self.active
                if gone is not None and gone.addr != "local":
                    self.active = None
                    out.append(ActiveTimerExpired(self.group, gone.addr))
                self._event(Event.C, now, out)
            elif which == 1:
                self.t_standby = None
                if self.standby is not None and self.standby.addr != "local":
                    self.standby = None
                self._event(Event.D, now, out)
            else:
                self._arm_hello(now)
                self._event(Event.E, now, out)
        return out

    def get_timer(self) -> float | None:
        ts = [t for t in (self.t_active, self.t_standby, self.t_hello) if t is not None]
        return min(ts) if ts else None

    # ---------------------------------------------------------------- the table
    def _choose(self, cell: Cell, ev: Event, now: float) -> Alt:
        if cell.cond == "+":
            return cell.alts[0] if self.vip is None else cell.alts[1]
        if cell.cond == "*":
            if not (self.preempt and self.ready):
                return cell.alts[0]
            if self.preempt_delay_ms > 0:
                if self._preempt_since is None:
                    self._preempt_since = now
                if (now - self._preempt_since) * 1000 < self.preempt_delay_ms - 1e-6:
                    self.counters["preempt_delayed"] += 1
                    return cell.alts[0]
            return cell.alts[1]
        return cell.alts[0]

    def _event(self, ev: Event, now: float, out: list[HsrpAction], rx: _Rx | None = None) -> None:
        cell = TABLE.get((self.state, ev))
        if cell is None:
            self.last_cell = (ev, "", None)
            return
        alt = self._choose(cell, ev, now)
        if alt.next is State.ACTIVE and not self.ready:
            # [P] readiness guard: hold the role back, keep watching for an Active router
            self.counters["active_blocked_not_ready"] += 1
            alt = Alt("A", None)
        if ev is Event.G:
            self._preempt_since = None
        self.last_cell = (ev, alt.actions, alt.next)
        old = self.state
        if alt.next is not None and alt.next is not old:
            self._enter(alt.next, ev, now, out)
        for letter in alt.actions:
            self._do(letter, ev, now, out, rx)
        # [P] Speak -> Standby while no Active has been heard for a Holdtime: apply c now.
        if (
            old is State.SPEAK
            and self.state is State.STANDBY
            and self.t_active is None
            and self.active is None
        ):
            self.counters["standby_without_active"] += 1
            self._event(Event.C, now, out)

    def _enter(self, new: State, ev: Event, now: float, out: list[HsrpAction]) -> None:
        old = self.state
        self.state = new
        self.state_changes += 1
        self.last_change = now
        self._preempt_since = None
        out.append(StateChange(self.group, old, new, ev))
        if old is State.ACTIVE:
            if self.active is not None and self.active.addr == "local":
                self.active = None
            if self.vip is not None:
                out.append(ReleaseVip(self.vip))
        if old is State.STANDBY and self.standby is not None and self.standby.addr == "local":
            self.standby = None
        if new is State.ACTIVE:
            self.active = _Peer("local", self._priority)
            if self.standby is not None and self.standby.addr == "local":
                self.standby = None
            if self.vip is not None:
                out.append(ClaimVip(self.vip))
        elif new is State.STANDBY:
            self.standby = _Peer("local", self._priority)
        if new is State.INITIAL:
            self.t_hello = None
            self.active = None
            self.standby = None
        elif old is State.INITIAL:
            self._arm_hello(now)

    def _do(
        self, letter: str, ev: Event, now: float, out: list[HsrpAction], rx: _Rx | None
    ) -> None:
        if letter == "A":
            from_hello = rx is not None and rx.hold_ms > 0 and ev in (Event.G, Event.H)
            hold = rx.hold_ms if (from_hello and rx is not None) else self.hold_ms
            self.t_active = now + hold / 1000.0
        elif letter == "B":
            from_hello = rx is not None and rx.hold_ms > 0 and ev in (Event.K, Event.L)
            hold = rx.hold_ms if (from_hello and rx is not None) else self.hold_ms
            self.t_standby = now + hold / 1000.0
        elif letter == "C":
            self.t_active = None
        elif letter == "D":
            self.t_standby = None
        elif letter == "E":
            if rx is not None:
                self._learn(rx)
        elif letter == "F":
            out.append(self._send(w.OP_HELLO, self.state))
        elif letter == "G":
            out.append(self._send(w.OP_COUP, self.state))
        elif letter == "H":
            out.append(self._send(w.OP_RESIGN, State.ACTIVE))
        elif letter == "I":
            if self.vip is not None:
                out.append(GratuitousArp(self.vip, self.vmac, self.group))
        else:  # pragma: no cover - the table only holds A-I
            raise AssertionError(letter)
        self.counters[f"action_{letter}"] += 1

    def _learn(self, rx: _Rx) -> None:
        """Action E: learn parameters from an authenticated Hello of the active router."""
        if self.state is State.ACTIVE:
            return  # RFC 2281 §5.1: the active router MUST NOT learn
        if self.cfg.vip is None and rx.vip != "0.0.0.0":
            self.vip = rx.vip
        if self.cfg.hello_ms is None and 0 < rx.hello_ms < rx.hold_ms:
            self._learned_hello = rx.hello_ms
            self._learned_hold = rx.hold_ms

    def _arm_hello(self, now: float) -> None:
        j = self._rng.random() * self.cfg.jitter if self.cfg.jitter else 0.0
        self.t_hello = now + self.hello_ms * (1.0 - j) / 1000.0

    # ---------------------------------------------------------------- receive helpers
    def _classify(self, rx: _Rx, src: str) -> Event | None:
        higher = self._higher(rx.priority, src)
        if rx.opcode == w.OP_HELLO:
            if rx.state is State.ACTIVE:
                return Event.G if higher else Event.H
            if rx.state is State.STANDBY:
                return Event.K if higher else Event.L
            if rx.state is State.SPEAK and higher:
                return Event.F
            return None
        if rx.opcode == w.OP_RESIGN:
            # from "the active router": the one we know as Active, or, knowing none, a
            # sender that says it is Active
            if self.active is not None:
                return Event.I if self.active.addr == src else None
            return Event.I if rx.state is State.ACTIVE else None
        if rx.opcode == w.OP_COUP:
            return Event.J if higher else None
        return None

    def _reduce(self, msg: w.HsrpMessage, src: str) -> _Rx | None:
        try:
            _ip_int(src)
        except ValueError:
            self.counters["rx_bad_source"] += 1
            return None
        if src == self.cfg.address:
            self.counters["rx_own"] += 1
            return None
        if isinstance(msg, w.HsrpAdvertise):
            self.counters["rx_advertise"] += 1
            return None
        if isinstance(msg, w.HsrpV1):
            if self.cfg.version != 1 or msg.group != self.group:
                self.counters["rx_other_group"] += 1
                return None
            if msg.state not in State._value2member_map_:
                self.counters["rx_bad_state"] += 1
                return None
            return _Rx(
                msg.opcode,
                State(msg.state),
                msg.priority,
                self._v1_ms(msg.hellotime, self.cfg.hello_ms),
                self._v1_ms(msg.holdtime, self.cfg.hold_ms),
                msg.vip,
            )
        gs = msg.group_state
        if gs is None or self.cfg.version != 2 or gs.group != self.group:
            self.counters["rx_other_group"] += 1
            return None
        st = w.V2_TO_V1_STATE.get(gs.state)
        if st is None or gs.ip_version != 4 or gs.opcode > w.OP_RESIGN:
            self.counters["rx_bad_state"] += 1
            return None
        return _Rx(gs.opcode, State(st), gs.priority, gs.hello_ms, gs.hold_ms, gs.vip)

    @staticmethod
    def _v1_ms(secs: int, configured: int | None) -> int:
        if configured is not None and v1_seconds(configured) == secs:
            return configured
        return secs * 1000

    def _authentic(self, msg: w.HsrpMessage, raw: bytes) -> bool:
        md5 = msg.md5 if isinstance(msg, (w.HsrpV1, w.HsrpV2)) else None
        if self.cfg.md5_key is not None:
            if md5 is None or md5.key_id != self.cfg.md5_key_id:
                return False
            return w.md5_verify(raw, self.cfg.md5_key)
        if md5 is not None:
            return False
        if isinstance(msg, w.HsrpV1):
            return hmac.compare_digest(msg.auth, self.cfg.auth)
        if isinstance(msg, w.HsrpV2):
            ta = msg.text_auth
            return ta is not None and hmac.compare_digest(ta.auth, self.cfg.auth)
        return False

    # ---------------------------------------------------------------- send helpers
    def encode(self, opcode: int, state: State) -> bytes:
        """The packet we would send now (Hello, Coup or Resign) with our parameters."""
        c = self.cfg
        vip = self.vip or "0.0.0.0"
        md5 = w.Md5Auth(ip=c.address, key_id=c.md5_key_id) if c.md5_key is not None else None
        if c.version == 1:
            raw = w.HsrpV1(
                opcode,
                int(state),
                v1_seconds(self.hello_ms),
                v1_seconds(self.hold_ms),
                self._priority,
                c.group,
                vip,
                bytes(8) if md5 is not None else c.auth,
                0,
                md5,
            ).encode()
        else:
            gs = w.GroupStateTlv(
                opcode,
                w.V1_TO_V2_STATE[int(state)],
                c.group,
                c.identifier,
                self._priority,
                self.hello_ms,
                self.hold_ms,
                vip,
            )
            auth: w.V2Tlv = md5 if md5 is not None else w.TextAuthTlv(c.auth)
            raw = w.HsrpV2((gs, auth)).encode()
        if c.md5_key is not None:
            raw = w.md5_sign(raw, c.md5_key)
        return raw

    def _send(self, opcode: int, state: State) -> HsrpSend:
        self.counters[f"tx_{w.OPCODE_NAMES[opcode].lower()}"] += 1
        return HsrpSend(
            self._mcast,
            self.encode(opcode, state),
            None,
            (self.cfg.version, self.group),
            self.vmac,
            self.state is State.ACTIVE,
        )

    # ---------------------------------------------------------------- views
    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything IOS ``show standby`` shows for this group (JSON-serialisable)."""

        def left(t: float | None) -> int | None:
            return None if t is None else max(0, round((t - now) * 1000))

        def peer(p: _Peer | None) -> str | None:
            return None if p is None else p.addr

        auth = "md5" if self.cfg.md5_key is not None else "text"
        return {
            "group": self.group,
            "version": self.cfg.version,
            "name": self.cfg.name,  # "" when not configured
            "state": self.state.label,
            "state_changes": self.state_changes,
            "last_state_change_ago_ms": (
                None if self.last_change is None else round((now - self.last_change) * 1000)
            ),
            "virtual_ip": self.vip,
            "virtual_ip_configured": self.cfg.vip is not None,
            "virtual_mac": w.mac_str(self.vmac),
            "local_address": self.cfg.address,
            "hello_ms": self.hello_ms,
            "hold_ms": self.hold_ms,
            "timers_configured": self.cfg.hello_ms is not None,
            "next_hello_ms": left(self.t_hello),
            "authentication": auth,
            "md5_key_id": self.cfg.md5_key_id if auth == "md5" else None,
            "auth_failures": self.auth_failures,
            "preempt": self.preempt,
            "preempt_delay_ms": self.preempt_delay_ms,
            "active_router": peer(self.active),
            "active_priority": None if self.active is None else self.active.priority,
            "active_expires_ms": left(self.t_active),
            "standby_router": peer(self.standby),
            "standby_priority": None if self.standby is None else self.standby.priority,
            "standby_expires_ms": left(self.t_standby),
            "priority": self._priority,
            "configured_priority": self.configured_priority,
            "tracked": [
                {"name": n, "state": "Down" if t.down else "Up", "decrement": t.decrement}
                for n, t in sorted(self._tracks.items())
            ],
            "ready": self.ready,
            "counters": dict(self.counters),
        }


# --------------------------------------------------------------------------- interface


@dataclass(slots=True)
class HsrpInterface:
    """All HSRP groups of one interface, with one deadline heap (O(log n) per timer)."""

    groups: dict[GroupKey, HsrpGroup] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    _heap: list[tuple[float, int, int]] = field(default_factory=list)
    _due: dict[GroupKey, float] = field(default_factory=dict)

    @classmethod
    def of(cls, groups: Iterable[HsrpGroup]) -> HsrpInterface:
        iface = cls()
        for g in groups:
            iface.add(g)
        return iface

    def add(self, g: HsrpGroup) -> None:
        key = (g.cfg.version, g.group)
        if key in self.groups:
            raise ValueError(f"group {key} already configured")
        self.groups[key] = g
        self._reschedule(key)

    def remove(self, version: int, group: int, now: float) -> list[HsrpAction]:
        g = self.groups.pop((version, group), None)
        self._due.pop((version, group), None)
        return [] if g is None else g.stop(now)

    def _reschedule(self, key: GroupKey) -> None:
        g = self.groups.get(key)
        dl = None if g is None else g.get_timer()
        if dl is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) != dl:
            self._due[key] = dl
            heapq.heappush(self._heap, (dl, key[0], key[1]))

    def _each(self, fn: str, now: float) -> list[HsrpAction]:
        out: list[HsrpAction] = []
        for key, g in self.groups.items():
            out += getattr(g, fn)(now)
            self._reschedule(key)
        return out

    def start(self, now: float) -> list[HsrpAction]:
        return self._each("start", now)

    def stop(self, now: float) -> list[HsrpAction]:
        return self._each("stop", now)

    def set_ready(self, ready: bool, now: float, key: GroupKey | None = None) -> list[HsrpAction]:
        """Readiness (:meth:`HsrpGroup.set_ready`) of the group ``key``, or of every group."""
        out: list[HsrpAction] = []
        for k, g in self.groups.items():
            if key is None or k == key:
                out += g.set_ready(ready, now)
                self._reschedule(k)
        return out

    def track(self, name: str, down: bool, decrement: int) -> None:
        """Interface tracking (:meth:`HsrpGroup.track`) for every group."""
        for key, g in self.groups.items():
            g.track(name, down, decrement)
            self._reschedule(key)

    def receive_datagram(self, data: bytes, src: Addr, dst: Addr, now: float) -> list[HsrpAction]:
        """A UDP 1985 datagram: decoded once, handed to the group it names."""
        try:
            msg = w.decode(data)
        except DecodeError as exc:
            self.counters[f"rx_error_{exc.reason}"] += 1
            return []
        if isinstance(msg, w.HsrpAdvertise):
            self.counters["rx_advertise"] += 1
            return []
        if isinstance(msg, w.HsrpV1):
            key = (1, msg.group)
        else:
            gs = msg.group_state
            if gs is None:
                self.counters["rx_no_group_state"] += 1
                return []
            key = (2, gs.group)
        g = self.groups.get(key)
        if g is None:
            self.counters["rx_unknown_group"] += 1
            return []
        out = g.receive_message(msg, data, src[0], now)
        self._reschedule(key)
        return out

    def handle_timer(self, now: float) -> list[HsrpAction]:
        out: list[HsrpAction] = []
        while self._heap and self._heap[0][0] <= now:
            dl, ver, grp = heapq.heappop(self._heap)
            key = (ver, grp)
            if self._due.get(key) != dl:
                continue  # stale entry
            del self._due[key]
            g = self.groups.get(key)
            if g is not None:
                out += g.handle_timer(now)
                self._reschedule(key)
        return out

    def get_timer(self) -> float | None:
        while self._heap:
            dl, ver, grp = self._heap[0]
            if self._due.get((ver, grp)) == dl:
                return dl
            heapq.heappop(self._heap)
        return None

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [g.snapshot(now) for _, g in sorted(self.groups.items())]


__all__ = [
    "RFC2281_TABLE",
    "TABLE",
    "ActiveTimerExpired",
    "Alt",
    "Cell",
    "Event",
    "GratuitousArp",
    "GroupKey",
    "HsrpAction",
    "HsrpConfig",
    "HsrpGroup",
    "HsrpInterface",
    "HsrpSend",
    "State",
    "StateChange",
    "parse_auth",
    "v1_seconds",
]
