"""Proxy ARP and gratuitous ARP on a physical home link, through an AF_PACKET socket (P§3.4).

While a home address has a binding, the home agent answers ARP requests for it with its own
MAC (or the HSRP virtual MAC when one is given), and it announces that with a few gratuitous
ARPs when the first binding appears (RFC 5944 §4.6). When the last binding goes away it stops
answering and, if it has seen the mobile node's own MAC on the link, sends gratuitous ARPs
that restore it.

The responder does no I/O on its own: its owner polls :meth:`ArpResponder.fileno`, calls
:meth:`handle_readable` when it is readable and :meth:`run_timers` at
:meth:`next_deadline` (monotonic seconds) for the repeated gratuitous ARPs.
"""

from __future__ import annotations

import heapq
import socket
import time

from mobileha.wire import DecodeError
from mobileha.wire.ip import (
    ARP_REQUEST,
    ETH_P_ARP,
    arp_reply,
    decode_arp_frame,
    gratuitous_arp,
    mac_str,
)

GARP_COUNT = 3  # gratuitous ARPs per announcement ("repeated a few times", P§3.4)
GARP_INTERVAL = 0.5  # seconds between them
LEARNED_MAX = 65536  # bound on the MAC-learning table


class ArpResponder:
    """Answers ARP for proxied addresses on ``ifname`` and sends gratuitous ARPs."""

    def __init__(self, ifname: str, mac: str | None = None) -> None:
        self.ifname = ifname
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        try:
            s.bind((ifname, ETH_P_ARP))
            s.setblocking(False)
            own = s.getsockname()[4]
        except OSError:
            s.close()
            raise
        self.sock = s
        self.mac = mac or mac_str(own[:6])
        self.proxied: dict[str, str] = {}  # address -> MAC we answer with
        self.learned: dict[str, str] = {}  # address -> MAC seen as ARP sender on the link
        self.counters = {"requests": 0, "replies_sent": 0, "garps_sent": 0, "malformed": 0}
        self._timers: list[tuple[float, int, bytes, int]] = []  # (when, seq, frame, remaining)
        self._seq = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    # proxying --------------------------------------------------------------------------------
    def proxy(self, addr: str, mac: str | None = None, announce: bool = True) -> None:
        """Answer ARP for ``addr`` with ``mac`` (default: ours); announce with gratuitous ARPs."""
        first = addr not in self.proxied
        self.proxied[addr] = mac or self.mac
        if announce and first:
            self.gratuitous(addr, self.proxied[addr])

    def unproxy(self, addr: str, restore_mac: str | None = None) -> None:
        """Stop answering for ``addr``; gratuitous ARPs restore ``restore_mac`` (or the learned
        MAC of the mobile node) when known."""
        if self.proxied.pop(addr, None) is None:
            return
        mac = restore_mac or self.learned.get(addr)
        if mac is not None:
            self.gratuitous(addr, mac)

    def gratuitous(self, addr: str, mac: str | None = None, count: int = GARP_COUNT) -> None:
        """Send ``count`` gratuitous ARPs (the first now, the others every GARP_INTERVAL)."""
        frame = gratuitous_arp(mac or self.mac, addr)
        self._send(frame)
        self.counters["garps_sent"] += 1
        if count > 1:
            self._seq += 1
            heapq.heappush(
                self._timers, (time.monotonic() + GARP_INTERVAL, self._seq, frame, count - 1)
            )

    # I/O hooks ---------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def run_timers(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        while self._timers and self._timers[0][0] <= now:
            _, seq, frame, left = heapq.heappop(self._timers)
            self._send(frame)
            self.counters["garps_sent"] += 1
            if left > 1:
                heapq.heappush(self._timers, (now + GARP_INTERVAL, seq, frame, left - 1))

    def handle_readable(self) -> None:
        """Read every pending frame; answer requests for proxied addresses."""
        while True:
            try:
                frame, meta = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            if meta[2] == socket.PACKET_OUTGOING:
                continue
            try:
                _eth, arp = decode_arp_frame(frame)
            except DecodeError:
                self.counters["malformed"] += 1
                continue
            if (
                arp.spa != "0.0.0.0"
                and arp.spa not in self.proxied
                and (len(self.learned) < LEARNED_MAX or arp.spa in self.learned)
            ):
                self.learned[arp.spa] = arp.sha
            if arp.op != ARP_REQUEST or arp.is_gratuitous:
                continue
            self.counters["requests"] += 1
            mac = self.proxied.get(arp.tpa)
            if mac is not None:
                self._send(arp_reply(mac, arp.tpa, arp.sha, arp.spa))
                self.counters["replies_sent"] += 1

    def _send(self, frame: bytes) -> None:
        try:
            self.sock.send(frame)
        except OSError:
            self.counters["send_errors"] = self.counters.get("send_errors", 0) + 1

    def close(self) -> None:
        self._timers.clear()
        self.sock.close()


__all__ = ["GARP_COUNT", "GARP_INTERVAL", "ArpResponder"]
