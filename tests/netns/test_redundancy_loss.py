"""Issue 7 acceptance in network namespaces: 30% loss on the sync path
(tests/netns/redundancy_lab.py draws the topology).

HA1 Active, HA2 Standby; nftables in HA2's namespace drops 30% of the HA-HA sync datagrams
in both directions (``numgen random``; only UDP 434 between the two real addresses, HSRP and
registrations are untouched). 400 MNs register and renew through the FA (~200 registrations/s),
100 more register and then deregister. Then the MNs stop (kill -9, no more changes): every
registration acknowledged to an MN (the FA's visitor list) is on HA2 with that
Identification or a newer one (a request relayed just before the kill is answered once its
BU is through), the deregistered ones are gone from HA2, and the FA, HA1 and HA2 end up
agreeing on every Identification. The
cmiHaRedun counters show the retransmissions (TotalSentBUs > SentBUs on HA1).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mobileha.lab.netns import Topology

from .redundancy_lab import HA_ADDRS, NAI, build, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

N_A, N_B = 400, 100
NAI_B = "mnb{n}@lab.example"


def test_thirty_percent_sync_loss_converges_with_retransmissions(
    topology: Topology, tmp_path: Path
) -> None:
    lab = build(topology, tmp_path)
    nais = [(NAI.format(n=n), "dynamic") for n in range(1, N_A + 1)]
    nais += [(NAI_B.format(n=n), "dynamic") for n in range(1, N_B + 1)]
    h1 = lab.add_ha(0, lab.ha_config(0, mn_nais=nais, priority=110))
    h2 = lab.add_ha(1, lab.ha_config(1, mn_nais=nais, priority=100))
    h1.start()
    h2.start()
    try:
        wait_for(lambda: h1.state() == "Active" and h2.state() == "Standby", 30, "election")
        wait_for(lambda: h2.redundancy()["state"] == "in-sync", 10, "HA2 in sync")
        a1 = HA_ADDRS[0]
        ha2 = lab.topo.hosts["ha2"]
        ha2.loss(30, f"ip saddr {a1} udp dport 434", hook="input")
        ha2.loss(30, f"ip daddr {a1} udp sport 434", hook="output")
        lab.start_fa()
        fa = lab.start_fleet("mn", count=N_A, lifetime=20, renew_fraction=0.1)
        # lifetime 10 s: an MN of B whose reply came after the FA gave up on it (78, when the
        # HAs are starved of CPU) does not deregister, and its binding expires instead
        fb = lab.start_fleet("mnb", count=N_B, nai=NAI_B, lifetime=10)
        wait_for(lambda: h1.total() == N_A + N_B, 20, "all registered on HA1", 0.1)
        time.sleep(3)  # renewals under loss
        fb.term()  # deregisters its 100 MNs
        wait_for(lambda: h1.total() == N_A, 15, "B deregistered (or expired) on HA1", 0.1)
        time.sleep(1)
        fa.kill9()  # freeze: no more changes
        time.sleep(0.2)
        acked = lab.visitors()  # what the MNs were told before the freeze
        assert len(acked) == N_A

        # A request relayed just before the kill may still be in HA1's reply gate (its BU not
        # yet through the loss): the FA learns it when the reply is released. So converged
        # means: the FA's visitor list now, HA2 and HA1 agree on every Identification, and
        # none is older than what the MNs had been acknowledged before the freeze.
        def converged() -> bool:
            visitors = lab.visitors()
            t1, t2 = h1.bindings(), h2.bindings()
            if len(t2) != N_A or len(t1) != N_A or len(visitors) != N_A:
                return False
            for hoa, v in visitors.items():
                key = (hoa, v["care_of"])
                b1, b2 = t1.get(key), t2.get(key)
                if b1 is None or b2 is None:
                    return False
                if not v["identification"] == b1["identification"] == b2["identification"]:
                    return False
                if b2["identification"] < acked[hoa]["identification"]:
                    raise AssertionError(f"{hoa}: HA2 has an older registration than acked")
            return True

        def differences() -> str:
            visitors = lab.visitors()
            t1, t2 = h1.bindings(), h2.bindings()
            lines = [f"HA1 {len(t1)} bindings, HA2 {len(t2)}, visitors {len(visitors)}"]
            for hoa, v in visitors.items():
                b1, b2 = t1.get((hoa, v["care_of"])), t2.get((hoa, v["care_of"]))
                ids = {x["identification"] if x else None for x in (v, b1, b2)}
                if len(ids) != 1:
                    lines.append(f"  {hoa} visitor {v} HA1 {b1} HA2 {b2}")
            lines += [f"  only on HA2: {k}" for k in t2.keys() - t1.keys()]
            lines.append(f"HA1 redundancy {h1.redundancy()}")
            lines.append(f"HA2 redundancy {h2.redundancy()}")
            return "\n".join(lines[:40])

        t0 = time.monotonic()
        wait_for(converged, 30, "HA2 converged under 30% loss", 0.2, detail=differences)
        print(f"HA2 converged {time.monotonic() - t0:.2f} s after the last change")
        t1, t2 = h1.bindings(), h2.bindings()
        assert {k: b["identification"] for k, b in t1.items()} == {
            k: b["identification"] for k, b in t2.items()
        }
        c1, c2 = h1.counters(), h2.counters()
        names = ("SentBUs", "TotalSentBUs", "FailedBUs", "ReceivedBUAcks", "DroppedBUAcks")
        print("HA1", {k: c1[k] for k in names})
        print("HA2", {k: c2[k] for k in ("ReceivedBUs", "SentBUAcks", "SecViolations")})
        drops = ha2.run("nft list ruleset").stdout
        print(" ".join(ln.strip() for ln in drops.splitlines() if "counter" in ln))
        assert c1["TotalSentBUs"] > c1["SentBUs"] > 0, "no retransmissions counted"
        assert c2["SecViolations"] == 0
        rv = h1.redundancy()
        print(
            f"replies held {rv.get('replies_held')}, released unacknowledged "
            f"{rv.get('replies_released_unacked')}"
        )
    except BaseException:
        print(lab.logs())
        raise
