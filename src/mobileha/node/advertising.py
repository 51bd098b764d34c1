"""Agent advertisements of a home agent on its home link (RFC 5944 §2.1: "a home agent
MAY advertise"; mobile nodes use them to find out that they are home, §2.4.3).

:class:`LinkAdvertising` pumps one sans-IO :class:`~mobileha.core.discovery.Advertiser`:
its own :class:`~mobileha.node.base.DeadlineTimer` for the periodic advertisements, a raw
ICMP socket (:class:`~mobileha.node.icmp.IcmpIo`, joined to 224.0.0.11 on the link) for
solicitations, which it answers at once. Without CAP_NET_RAW it logs once and stays off.
"""

from __future__ import annotations

import asyncio

from mobileha.core.discovery import Advertiser, SendIcmp
from mobileha.log import get_logger
from mobileha.node.base import DeadlineTimer
from mobileha.node.icmp import IcmpIo
from mobileha.wire.icmp import MOBILE_AGENTS, ROUTER_SOLICITATION, AgentSolicitation

_log = get_logger("mobileha.adv")


class LinkAdvertising:
    def __init__(self, advertiser: Advertiser) -> None:
        self.advertiser = advertiser
        self.icmp: IcmpIo | None = None
        self._timer: DeadlineTimer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bad_solicitations = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        ifname = self.advertiser.config.interface
        icmp = IcmpIo(self._icmp, groups=[(MOBILE_AGENTS, ifname)], types={ROUTER_SOLICITATION})
        try:
            icmp.start(loop)
        except OSError as e:
            _log.warning("no raw ICMP socket: no agent advertisements", error=str(e))
            return
        self.icmp = icmp
        self._timer = DeadlineTimer(loop, self._on_timer)
        self._run(self.advertiser.start(loop.time()))

    def stop(self) -> None:
        self.advertiser.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self.icmp is not None:
            self.icmp.close()
            self.icmp = None

    def _icmp(self, data: bytes, src: str, _dst: str, ifname: str | None) -> None:
        if not data or data[0] != ROUTER_SOLICITATION or self._loop is None:
            return
        if ifname is not None and ifname != self.advertiser.config.interface:
            return
        try:
            AgentSolicitation.decode(data)
        except Exception:
            self.bad_solicitations += 1
            return
        self._run(self.advertiser.solicited(src, self._loop.time()))

    def _on_timer(self) -> None:
        if self._loop is not None:
            self._run(self.advertiser.handle_timer(self._loop.time()))

    def _run(self, actions: list[SendIcmp]) -> None:
        if self.icmp is not None:
            for a in actions:
                self.icmp.send(a)
        if self._timer is not None:
            self._timer.update(self.advertiser.get_timer())


__all__ = ["LinkAdvertising"]
