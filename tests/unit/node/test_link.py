"""node/link.py: netlink link events matched by interface index, and LinkWatch reporting
each change of the watched interface and of tracked interfaces once (state injected)."""

from __future__ import annotations

import asyncio
import socket
import struct

from mobileha.node.link import RTM_DELLINK, RTM_NEWLINK, LinkWatch, link_event_for


def _nlmsg(mtype: int, ifindex: int, attrs: bytes = b"") -> bytes:
    ifinfo = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, ifindex, 0x1, 0xFFFFFFFF)
    body = ifinfo + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_netlink_link_events_are_matched_by_ifindex() -> None:
    operstate = struct.pack("=HHB3x", 5, 16, 2)  # IFLA_OPERSTATE = IF_OPER_DOWN, padded
    assert link_event_for(_nlmsg(RTM_NEWLINK, 7, operstate), 7)
    assert link_event_for(_nlmsg(RTM_DELLINK, 7), 7)
    assert not link_event_for(_nlmsg(RTM_NEWLINK, 8, operstate), 7)
    assert not link_event_for(_nlmsg(20, 7), 7)  # RTM_NEWADDR: not a link event
    # several messages in one datagram: ours is the second
    assert link_event_for(_nlmsg(RTM_NEWLINK, 3, operstate) + _nlmsg(RTM_NEWLINK, 7), 7)
    assert not link_event_for(b"", 7) and not link_event_for(b"\x00" * 15, 7)
    assert not link_event_for(struct.pack("=IHHII", 0, RTM_NEWLINK, 0, 0, 0) + bytes(16), 0)


def test_changes_are_reported_once() -> None:
    state = {"eth0": True, "eth9": True}
    links: list[bool] = []
    tracks: list[tuple[str, bool]] = []

    async def main() -> None:
        w = LinkWatch(
            "eth0",
            track=["eth9"],
            poll=3600.0,  # the poll is driven by hand below
            on_link=links.append,
            on_track=lambda n, up: tracks.append((n, up)),
            link_state=lambda name: state[name],
        )
        assert w.start(asyncio.get_running_loop()) is True
        try:
            w.check()
            state["eth0"] = False
            w.check()
            w.check()  # no change: not reported again
            w._poll()
            state["eth9"] = False
            w._poll()
            w._poll()
            state["eth0"] = state["eth9"] = True
            w._poll()
        finally:
            w.stop()
        assert w.up and w.counters["link_down"] == 1 and w.counters["link_up"] == 1

    asyncio.run(main())
    assert links == [False, True]
    assert tracks == [("eth9", False), ("eth9", True)]


def test_not_watching_reports_nothing_and_starts_up() -> None:
    async def main() -> None:
        w = LinkWatch(None, link_state=lambda name: False)
        assert w.start(asyncio.get_running_loop()) is True
        w.check()
        w.stop()
        assert not w.counters

    asyncio.run(main())
