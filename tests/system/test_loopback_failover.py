"""Recovery when a real home agent dies without a standby: the loopback cluster of
examples/loopback/ (tests.helpers.loopback; MN lifetime 10 s renewed every 3 s), kill -9 of
the real HA "a": the FA re-homes the MNs of "a" to the HA-SLB virtual address after a few
unanswered requests (RFC 4433), the SLB fails "a" (its DFP agent is lost and it leaves a
session unanswered) and gives the sessions to "b"; every MN is registered with "b" within
10 s of the kill, and the SLB and FA logs name the failure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.helpers.loopback import loopback_cluster

pytestmark = pytest.mark.timeout(150)

N_MN = 20
RECOVERY_S = 10.0


def short_lifetime(name: str, text: str) -> str:
    if name == "mn":
        return text.replace("lifetime = 600", "lifetime = 10\nrenew_fraction = 0.3")
    return text


def test_kill_a_real_ha_every_mn_registers_again_within_10s(tmp_path: Path) -> None:
    with loopback_cluster(tmp_path, short_lifetime) as c:
        wait_for(lambda: sum(c.bindings()) == N_MN, 40, "20 bindings", 0.2, ignore=(Exception,))
        a, b = c.bindings()
        assert a > 0 and b > 0, (a, b)
        b_addr = c.addr(11)
        # the DFP agents report before the kill (the SLB knows "a" through DFP)
        wait_for(
            lambda: all(r["dfp_weight"] for r in c.api("slb", "/api/slb")["reals"]),
            20,
            "DFP reports for both reals",
            0.2,
            ignore=(Exception,),
        )

        c.procs["ha-a"].kill()
        c.procs["ha-a"].wait()
        killed = time.monotonic()
        back: dict[str, float] = {}  # NAI -> seconds after the kill it was with b

        def all_on_b() -> bool:
            t = time.monotonic() - killed
            for m in c.api("mn", f"/api/mobile_nodes?limit={N_MN}")["items"]:
                if m["state"] == "registered" and m["home_agent"] == b_addr:
                    back.setdefault(m["nai"], t)
            return len(back) == N_MN and c.api("ha-b", "/api/bindings")["total"] == N_MN

        wait_for(
            all_on_b, RECOVERY_S, f"all {N_MN} MNs registered with b", 0.1, ignore=(Exception,)
        )
        took = time.monotonic() - killed
        print(
            f"every MN registered again {took:.1f} s after kill -9 of a real HA;",
            "seconds per MN:",
            sorted(round(t, 1) for t in back.values()),
            "MN reply codes:",
            c.api("mn", "/api/stats")["reply_codes"],
        )
        assert took < RECOVERY_S
    slb, fa = c.log("slb"), c.log("fa")
    assert "DFP agent lost" in slb, slb[-3000:]
    assert "new=failed" in slb and "DFP agent lost and a session" in slb, slb[-3000:]
    assert "home agent not answering" in fa, fa[-3000:]
