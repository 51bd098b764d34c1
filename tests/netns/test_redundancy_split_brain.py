"""Issue 7 acceptance in network namespaces: split brain (tests/netns/redundancy_lab.py).

Two co-located MN hosts on the home bridge, c1 and c2, each with a permanent ARP entry
for the VIP pointing at one home agent (c1 -> HA1, c2 -> HA2), so each side keeps
reaching "its" HA. nftables in both HA namespaces drops everything from the other HA (HSRP
hellos and HA-HA sync): both become Active. During the cut (static home addresses: two
dynamic pools would hand out the same addresses on both sides):

* A (50 MNs) register on HA1 only, B (50) on HA2 only;
* S (30) register on HA1, then later from c2 on HA2: the newest is HA2's;
* T (30) register on HA2, then later from c1 on HA1: the newest is on HA1, which will
  lose the election (equal priority, HA2 has the higher address).

Heal (the nftables tables are deleted): one Active within two hello intervals (from the
lower HA's log line "Active -> Speak"), then both tables hold every binding of A, B, S
and T, S with c2's care-of address and T with c1's (newest Identification wins), with the
same Identifications on both HAs: nothing lost.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from mobileha.lab.netns import Topology

from .redundancy_lab import HA_ADDRS, VIP, build, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

HELLO = 0.1
C1, C2 = "10.50.0.21", "10.50.0.22"
GROUPS = {  # name: (NAI pattern, first static home address, count)
    "a": ("mna{n}@lab.example", "10.60.10.1", 50),
    "b": ("mnb{n}@lab.example", "10.60.20.1", 50),
    "s": ("mns{n}@lab.example", "10.60.30.1", 30),
    "t": ("mnt{n}@lab.example", "10.60.40.1", 30),
}


def hoas(group: str) -> list[str]:
    _nai, first, n = GROUPS[group]
    base = first.rsplit(".", 1)[0]
    return [f"{base}.{i}" for i in range(1, n + 1)]


def speak_after(log: Path, t_wall: float) -> float | None:
    """Wall time of the first 'Active -> Speak' logged after ``t_wall``."""
    for line in log.read_text().splitlines():
        if "state Active -> Speak" in line:
            m = re.match(r"ts=(\S+)Z", line)
            if m:
                t = datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
                if t >= t_wall - 0.001:
                    return t
    return None


def test_split_brain_heal_one_active_tables_reconciled(topology: Topology, tmp_path: Path) -> None:
    lab = build(topology, tmp_path)
    nais = []
    for nai, first, n in GROUPS.values():
        base, last = first.rsplit(".", 1)
        nais += [(nai.format(n=i), f"{base}.{int(last) + i - 1}") for i in range(1, n + 1)]
    h1 = lab.add_ha(0, lab.ha_config(0, mn_nais=nais))
    h2 = lab.add_ha(1, lab.ha_config(1, mn_nais=nais))
    c1, c2 = topology.host("c1"), topology.host("c2")
    topology.link(c1, lab.home, f"{C1}/24")
    topology.link(c2, lab.home, f"{C2}/24")
    h1.start()
    wait_for(lambda: h1.state() == "Active", 20, "HA1 Active")
    h2.start()

    def fleet(name: str, group: str, host_name: str) -> None:
        nai, first, n = GROUPS[group]
        host = c1 if host_name == "c1" else c2
        lab.start_fleet(
            name, host=host, count=n, nai=nai, home_address=first, lifetime=600,
            via_fa=False, local=C1 if host is c1 else C2,
        )  # fmt: skip

    def registered(name: str, n: int) -> bool:
        return bool(lab.fleet_api(name, "stats")["counters"]["registered"] == n)

    try:
        wait_for(lambda: h2.state() == "Standby", 20, "HA2 Standby")
        wait_for(lambda: h2.redundancy()["ready"], 10, "HA2 in sync")
        for host, ha in ((c1, h1), (c2, h2)):
            mac = json.loads(ha.host.ip("-j", "link", "show", "eth0"))[0]["address"]
            host.ip("neigh", "replace", VIP, "lladdr", mac, "dev", "eth0", "nud", "permanent")
        # cut: each HA drops everything from the other (hellos and sync)
        for i, ha in enumerate((h1, h2)):
            ha.host.nft(
                "table inet split {\n chain in {\n  type filter hook input priority 0;\n"
                f"  ip saddr {HA_ADDRS[1 - i]} drop\n }}\n}}\n"
            )
        wait_for(lambda: h1.state() == "Active" and h2.state() == "Active", 5, "two Actives")
        fleet("fa1", "a", "c1")
        fleet("fb2", "b", "c2")
        fleet("fs1", "s", "c1")
        fleet("ft2", "t", "c2")
        for name, g in (("fa1", "a"), ("fb2", "b"), ("fs1", "s"), ("ft2", "t")):
            wait_for(lambda n=name, g=g: registered(n, GROUPS[g][2]), 20, f"{name} registered")
        lab.fleets["fs1"].kill9()
        lab.fleets["ft2"].kill9()
        # the second registration must carry the higher Identification: a new fleet process
        # does not know the first one's IDs (NTP seconds + random low bits), so start it in
        # a later second (one MN moving between care-of addresses counts up by itself)
        time.sleep(1.1)
        fleet("fs2", "s", "c2")  # S again, later, on HA2
        fleet("ft1", "t", "c1")  # T again, later, on HA1
        for name, g in (("fs2", "s"), ("ft1", "t")):
            wait_for(lambda n=name, g=g: registered(n, GROUPS[g][2]), 20, f"{name} registered")
        for name in ("fa1", "fb2", "fs2", "ft1"):
            lab.fleets[name].kill9()  # freeze: no renewals, no deregistrations
        t1, t2 = h1.bindings(), h2.bindings()
        assert len(t1) == 50 + 30 + 30 and len(t2) == 50 + 30 + 30, (len(t1), len(t2))
        newest = {**{k: b for k, b in t1.items() if k[0] in hoas("t")},
                  **{k: b for k, b in t2.items() if k[0] in hoas("s")}}  # fmt: skip
        assert len(newest) == 60

        # heal
        t_heal = time.time()
        for ha in (h1, h2):
            ha.host.run(["nft", "delete", "table", "inet", "split"])
        wait_for(lambda: {h1.state(), h2.state()} == {"Active", "Standby"}, 5, "one Active")
        t_speak = speak_after(h1.log, t_heal)
        assert t_speak is not None, "HA1 did not step down"
        took = t_speak - t_heal
        print(f"healed -> one Active: {took * 1000:.0f} ms (limit {2 * HELLO * 1000:.0f})")
        assert took <= 2 * HELLO, took
        assert h2.state() == "Active"

        expect = {h: C1 for h in hoas("a") + hoas("t")} | {h: C2 for h in hoas("b") + hoas("s")}

        def reconciled() -> bool:
            a, b = h1.bindings(), h2.bindings()
            want = {(h, c) for h, c in expect.items()}
            if set(a) != want or set(b) != want:
                return False
            return all(a[k]["identification"] == b[k]["identification"] for k in want)

        t0 = time.monotonic()
        try:
            wait_for(reconciled, 20, "tables reconciled", 0.2)
        except AssertionError:
            a, b = h1.bindings(), h2.bindings()
            want = set(expect.items())
            print(f"HA1 {len(a)} bindings, HA2 {len(b)}; expected {len(expect)}")
            print("HA1 missing", sorted(want - set(a))[:8], "extra", sorted(set(a) - want)[:8])
            print("HA2 missing", sorted(want - set(b))[:8], "extra", sorted(set(b) - want)[:8])
            diff = [k for k in want & set(a) & set(b)
                    if a[k]["identification"] != b[k]["identification"]]  # fmt: skip
            print("Identification differs", [(k, a[k]["identification"],
                  b[k]["identification"]) for k in diff[:5]])  # fmt: skip
            print("HA1", h1.redundancy())
            print("HA2", h2.redundancy())
            raise
        print(f"tables reconciled {time.monotonic() - t0:.2f} s after the one-Active check")
        final = h2.bindings()
        for k, b in newest.items():
            assert final[k]["identification"] == b["identification"], k
        c1c, c2c = h1.counters(), h2.counters()
        keys = ("SentBUs", "TotalSentBUs", "FailedBUs", "DownloadsCompleted", "StaleRecords")
        print("HA1", {k: c1c[k] for k in keys})
        print("HA2", {k: c2c[k] for k in keys})
    except BaseException:
        print(lab.logs())
        raise
