"""A mobile node that moves between two foreign agents while a correspondent streams to it,
with real ``mobileha run`` processes in namespaces::

    cn (10.1.0.2) --- r --- ha (10.2.0.2; 10.99.0.0/24 routed to it)
                      |        eth1 10.99.0.1 (home link) -- mn eth2
                      |
                      +--- fa1 (10.3.0.2) --eth1 10.4.0.1-- mn eth0 (10.4.0.5)
                      +--- fa2 (10.5.0.2) --eth1 10.6.0.1-- mn eth1 (10.6.0.5)

The MN (home address 10.99.0.5 on its ``lo``) discovers the FAs from their agent
advertisements (RFC 5944 §2) and moves by taking one link down and the other up. The CN
sends 1,000 UDP packets a second to the home address; the receiver on the MN records each
arrival. Over the moves: every move registers through the new FA, the old FA's visitor
entry goes within 1 s (the HA revokes it, RFC 3543), no reply 133, and the median outage
(the longest gap in arrivals around a move) is at most one advertisement interval plus
200 ms. Figures (p50/p95/max) are printed. Then the MN comes home (its home link up, the
others down): it hears the HA's advertisement (H), sends its gratuitous ARPs and
deregisters; the HA has no binding left, the last FA's visitor entry is revoked, and the
CN's packets reach the MN natively on the home link.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobileha.lab.netns import Host, Topology
from mobileha.lab.scenario import NodeProc, wait_until
from tests.helpers.netns import require_netns

pytestmark = [pytest.mark.netns]

CN, HA, HOA = "10.1.0.2", "10.2.0.2", "10.99.0.5"
FA1, FA2 = "10.3.0.2", "10.5.0.2"
FA1_V, FA2_V = "10.4.0.1", "10.6.0.1"
NAI = "roamer@lab.example"
KEY = "hex:00112233445566778899aabbccddeeff"
FAHA = "hex:0f0e0d0c0b0a09080706050403020100"
ADV_MS = 1000
MOVES = int(os.environ.get("MOBILEHA_ROAM_MOVES", "20"))
PORT = 9999

HA_CFG = f"""
[node]
role = "home-agent"
name = "ha"
[management]
listen = "127.0.0.1:8434"
[home_agent]
address = "{HA}"
max_lifetime = 600
revocation = true
advertise_interface = "eth1"
[dataplane]
backend = "userspace"
tun_name = "mha0"
[[mobile_node]]
nai = "{NAI}"
home_address = "{HOA}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
[[foreign_agent]]
address = "{FA1}"
spi = 300
key = "{FAHA}"
algorithm = "hmac-md5"
[[foreign_agent]]
address = "{FA2}"
spi = 300
key = "{FAHA}"
algorithm = "hmac-md5"
"""


def fa_cfg(name: str, addr: str) -> str:
    return f"""
[node]
role = "foreign-agent"
name = "{name}"
[management]
listen = "127.0.0.1:8434"
[foreign_agent]
address = "{addr}"
home_agent = "{HA}"
reverse_tunnel = false
gre = false
advertise_interval_ms = {ADV_MS}
revocation = true
[[foreign_agent.home_agent_sa]]
address = "{HA}"
spi = 300
key = "{FAHA}"
algorithm = "hmac-md5"
[dataplane]
backend = "userspace"
tun_name = "mha0"
visitor_iface = "eth1"
"""


MN_CFG = f"""
[node]
role = "mobile-node"
name = "mn"
[management]
listen = "127.0.0.1:8434"
[mobile_node]
nai = "{NAI}"
home_address = "{HOA}"
home_agent = "{HA}"
interfaces = "eth0,eth1,eth2"
local_address = "0.0.0.0"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
lifetime = 600
retransmit_ms = 300
"""

SENDER = """
import socket, struct, sys, time
dst, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic(); n = 0
while True:
    due = t0 + n / rate
    d = due - time.monotonic()
    if d > 0:
        time.sleep(d)
    try:
        s.sendto(struct.pack("!Qd", n, time.monotonic()) + bytes(32), (dst, port))
    except OSError:
        pass
    n += 1
"""

RECEIVER = """
import signal, socket, struct, sys, time
out = sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(0.2)
arrivals = []
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    try:
        d = s.recv(2048)
    except (TimeoutError, OSError):
        continue
    arrivals.append(time.monotonic())
with open(out, "w") as f:
    f.write("\\n".join(f"{t:.6f}" for t in arrivals))
"""


def _up(h: Host, ifname: str, up: bool) -> None:
    h.ip("link", "set", ifname, "up" if up else "down")


@pytest.fixture
def net(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require_netns()
    with Topology(prefix=f"mob{os.getpid()}") as topo:
        cn, r, ha, fa1, fa2, mn = (topo.host(n) for n in ("cn", "r", "ha", "fa1", "fa2", "mn"))
        topo.link(cn, r, f"{CN}/24", "10.1.0.1/24")
        topo.link(ha, r, f"{HA}/24", "10.2.0.1/24")
        topo.link(fa1, r, f"{FA1}/24", "10.3.0.1/24")
        topo.link(fa2, r, f"{FA2}/24", "10.5.0.1/24")
        topo.link(fa1, mn, f"{FA1_V}/24", "10.4.0.5/24")  # fa1 eth1 - mn eth0
        topo.link(fa2, mn, f"{FA2_V}/24", "10.6.0.5/24")  # fa2 eth1 - mn eth1
        topo.link(ha, mn, "10.99.0.1/24", None)  # ha eth1 - mn eth2: the home link
        mn.addr("lo", f"{HOA}/32")
        for k in ("all", "default", "eth0", "eth1", "eth2"):
            mn.sysctl(f"net.ipv4.conf.{k}.rp_filter", 0)
        cn.route("default", via="10.1.0.1")
        ha.route("default", via="10.2.0.1")
        fa1.route("default", via="10.3.0.1")
        fa2.route("default", via="10.5.0.1")
        r.route("10.99.0.0/24", via=HA)
        for h in (r, ha, fa1, fa2):
            h.forwarding()
        _up(mn, "eth1", False)  # the MN starts on fa1's link
        _up(mn, "eth2", False)
        nodes = {
            "ha": NodeProc(ha, "ha", HA_CFG, tmp_path).start(),
            "fa1": NodeProc(fa1, "fa1", fa_cfg("fa1", FA1), tmp_path).start(),
            "fa2": NodeProc(fa2, "fa2", fa_cfg("fa2", FA2), tmp_path).start(),
        }
        try:
            for p in nodes.values():
                assert wait_until(p.try_api_ok("stats"), 20), p.tail()
            nodes["mn"] = NodeProc(mn, "mn", MN_CFG, tmp_path).start()
            assert wait_until(nodes["mn"].try_api_ok("stats"), 20), nodes["mn"].tail()
            yield {"topo": topo, "cn": cn, "mn": mn, "nodes": nodes, "tmp": tmp_path}
        finally:
            for p in nodes.values():
                p.terminate()


def _binding_coa(ha: NodeProc) -> str | None:
    b = ha.try_api("bindings")
    items = b.get("items", []) if b else []
    return items[0].get("care_of") if items else None


def _visitors(fa: NodeProc) -> int | None:
    v = fa.try_api("visitors")
    return None if v is None else len(v.get("items", []))


def _percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def test_roaming_between_two_foreign_agents_under_traffic(net: dict[str, Any]) -> None:
    nodes, cn, mn, tmp = net["nodes"], net["cn"], net["mn"], net["tmp"]
    ha, fa = nodes["ha"], {"eth0": nodes["fa1"], "eth1": nodes["fa2"]}
    coa = {"eth0": FA1, "eth1": FA2}
    logs = lambda: "\n".join(f"--- {n}\n{p.tail(3000)}" for n, p in nodes.items())  # noqa: E731
    assert wait_until(lambda: _binding_coa(ha) == FA1, 20), logs()
    out = tmp / "arrivals.txt"
    rx = mn.popen([sys.executable, "-c", RECEIVER, str(PORT), str(out)])
    tx = cn.popen([sys.executable, "-c", SENDER, HOA, str(PORT), "1000"])
    time.sleep(1.5)
    moves: list[float] = []
    revoked_in: list[float] = []
    registered_in: list[float] = []  # move -> the HA's binding names the new FA (polled)
    cur = "eth0"
    try:
        for _ in range(MOVES):
            new = "eth1" if cur == "eth0" else "eth0"
            t_move = time.monotonic()
            _up(mn, cur, False)
            _up(mn, new, True)
            moves.append(t_move)
            want, old_fa = coa[new], fa[cur]
            assert wait_until(lambda: _binding_coa(ha) == want, 10), logs()  # noqa: B023
            t_reg = time.monotonic()
            registered_in.append(t_reg - t_move)
            assert wait_until(lambda: _visitors(old_fa) == 0, 3), logs()  # noqa: B023
            revoked_in.append(time.monotonic() - t_reg)
            assert _visitors(fa[new]) == 1
            cur = new
            time.sleep(1.2)
        # home: the home link up, the foreign one down
        t_home = time.monotonic()
        _up(mn, cur, False)
        _up(mn, "eth2", True)
        assert wait_until(lambda: _binding_coa(ha) is None, 10), (
            json.dumps(nodes["mn"].try_api("roaming"), default=str) + logs()
        )
        home_in = time.monotonic() - t_home
        assert wait_until(lambda: _visitors(fa[cur]) == 0, 3), logs()
        time.sleep(1.5)
    finally:
        tx.terminate()
        tx.wait(5)
        time.sleep(0.3)
        rx.terminate()
        rx.wait(5)
    arrivals = [float(x) for x in out.read_text().split()]
    assert len(arrivals) > 1000 * MOVES // 2
    # the outage of a move: the longest gap between two arrivals from just before the
    # move (the link commands take a few ms) until the traffic is back
    outages = []
    for t, t_next in zip(moves, [*moves[1:], t_home], strict=True):
        window = [a for a in arrivals if t - 0.05 <= a <= t_next - 0.05]
        assert len(window) > 100, "no traffic around a move"
        outages.append(max(b - a for a, b in itertools.pairwise(window)))
    p50, p95, mx = (_percentile(outages, 50), _percentile(outages, 95), max(outages))
    home_window = [a for a in arrivals if a >= t_home - 0.05]
    assert len(home_window) > 1000, "the CN's packets do not reach the MN at home"
    home_outage = max(b - a for a, b in itertools.pairwise(home_window))
    stats = nodes["mn"].api("stats")
    codes = stats.get("reply_codes", {})
    ha_stats = ha.api("stats")
    report = {
        "moves": MOVES,
        "outage_ms": {k: round(v * 1000, 1) for k, v in (("p50", p50), ("p95", p95), ("max", mx))},
        "old_visitor_gone_after_registration_ms_max": round(max(revoked_in) * 1000, 1),
        "binding_moved_ms": [round(x * 1000) for x in registered_in],
        "home": {"deregistered_ms": round(home_in * 1000), "outage_ms": round(home_outage * 1000)},
        "mn_reply_codes": codes,
        "roaming": nodes["mn"].try_api("roaming"),
    }
    print(json.dumps(report, indent=1, default=str))
    assert "133" not in codes
    assert max(revoked_in) < 1.0
    assert statistics.median(outages) <= ADV_MS / 1000 + 0.2, report
    assert ha_stats is not None
