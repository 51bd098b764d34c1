"""RFC 2281 events b and a from the HSRP router's own interface, in network namespaces.

Three ``python -m mobileha.node.hsrp`` routers and a host on a bridge (hello 100 ms, hold
300 ms, preemption; helpers from test_hsrp_netns). ``ip link set eth0 down`` inside the
Active router's namespace: it goes to Initial (event b, from a netlink link event, at the
latest by the ``track_poll`` = 0.5 s poll) and removes the VIP, the Standby takes over within
hold + hello; ``ip link set eth0 up``: event a, the router comes back (Listen...) and, with
the highest priority and preemption, takes Active back. Exactly one Active at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mobileha.lab.netns import Topology

from .test_hsrp_netns import HELLO, HOLD, SLACK, VIP, lan, neigh_mac, states, wait

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

POLL = 0.5  # HsrpNodeConfig.track_poll default: the fallback poll of the interface


def test_own_interface_down_is_event_b_up_is_event_a(topology: Topology, tmp_path: Path) -> None:
    rs, host, _ = lan(topology, tmp_path)
    for r, prio in zip(rs, (100, 110, 120)):
        r.start(prio)
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 8, "election")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == rs[2].mac and VIP in rs[2].host.ip("addr", "show", "eth0")

    # the Active's own interface goes down: event b -> Initial, VIP released
    t0 = time.monotonic()
    rs[2].host.ip("link", "set", "eth0", "down")
    wait(lambda: rs[2].changed_to("Initial", t0) is not None, 3, "the Active leaves Active")
    t_init = rs[2].changed_to("Initial", t0) - t0  # type: ignore[operator]
    wait(lambda: rs[1].changed_to("Active", t0) is not None, 3, "the Standby takes over")
    t_take = rs[1].changed_to("Active", t0) - t0  # type: ignore[operator]
    print(
        f"eth0 down -> Active router Initial: {t_init * 1000:.0f} ms (netlink; poll {POLL:.1f} s)"
    )
    print(f"eth0 down -> Standby Active: {t_take * 1000:.0f} ms "
          f"(limit hold + hello {(HOLD + HELLO) * 1000:.0f})")  # fmt: skip
    assert t_init <= POLL + SLACK, t_init  # at worst one poll
    assert t_take <= HOLD + HELLO + SLACK, t_take
    d = rs[2].doc()
    assert d is not None and d["link_up"] is False
    assert d["counters"].get("link_events", 0) >= 1  # seen through netlink, not only the poll
    assert d["changes"][-1]["old"] == "Active" and d["changes"][-1]["event"] == "b"
    wait(lambda: VIP not in rs[2].host.ip("addr", "show", "eth0"), 2, "VIP removed")
    time.sleep(2 * POLL)  # still down: no more events, the log line was written once
    assert rs[2].state() == "Initial"
    assert sum("eth0 down" in ln for ln in Path(f"{rs[2].file}.log").read_text().splitlines()) == 1
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    assert neigh_mac(host) == rs[1].mac
    wait(lambda: states(rs) == ["Standby", "Active", "Initial"], 3, "new standby")

    # up again: event a, the router restarts the election and preempts (priority 120)
    t1 = time.monotonic()
    rs[2].host.ip("link", "set", "eth0", "up")
    wait(lambda: rs[2].changed_to("Active", t1) is not None, 5, "preemption after link up")
    t_back = rs[2].changed_to("Active", t1) - t1  # type: ignore[operator]
    d = rs[2].doc()
    assert d is not None
    back = [c for c in d["changes"] if c["t_mono"] >= t1]
    assert back[0]["old"] == "Initial" and back[0]["event"] == "a", back
    path = " -> ".join(
        f"{c['new']} ({c['event']}, {(c['t_mono'] - t1) * 1000:.0f} ms)" for c in back
    )
    print(f"eth0 up -> {path}: Active again after {t_back * 1000:.0f} ms")
    assert t_back <= POLL + 2 * HOLD + SLACK, t_back
    wait(lambda: states(rs) == ["Listen", "Standby", "Active"], 5, "settled")
    time.sleep(3 * HELLO)
    assert states(rs).count("Active") == 1 and states(rs) == ["Listen", "Standby", "Active"]
    assert VIP in rs[2].host.ip("addr", "show", "eth0")
    assert VIP not in rs[1].host.ip("addr", "show", "eth0")
    wait(lambda: host.run(f"ping -c1 -W1 {VIP}", check=False).returncode == 0, 3, "ping")
    wait(lambda: neigh_mac(host) == rs[2].mac, 2, "ARP entry back on the returning router")
