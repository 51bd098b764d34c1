"""The data-plane lab: topology and tool driver for tests/netns, bench/dataplane.py, demos.

    cn (10.1.0.2) --- r --- ha (10.2.0.2, home prefix 10.99.0.0/24 routed to it)
                      |
                      +--- fa (CoA 10.3.0.2) --- mn (home address 10.99.0.5)

The HA and FA run ``python -m mobileha.dataplane.tool`` and get Binding objects through it;
the registration protocol is swapped in later by installing the same bindings from a real
HomeAgent/ForeignAgent (``Lab.register`` is the single place that does it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from mobileha.lab.netns import Host, Topology

CN, HA, COA, MN_LINK_FA, HOA = "10.1.0.2", "10.2.0.2", "10.3.0.2", "10.4.0.1", "10.99.0.5"
HOME_PREFIX = "10.99.0.0/24"


class Driver:
    """A data-plane tool process in a namespace, spoken to with JSON lines."""

    def __init__(self, host: Host, *args: str) -> None:
        self.host = host
        self.proc = host.popen(
            [sys.executable, "-m", "mobileha.dataplane.tool", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = self._read()
        if not first.get("ready"):
            raise RuntimeError(f"data plane on {host.name} not ready: {first}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"data plane tool on {self.host.name} exited: {err}")
        out: dict[str, Any] = json.loads(line)
        return out

    def cmd(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if not reply.get("ok"):
            raise RuntimeError(f"{op} on {self.host.name}: {reply}")
        return reply

    def stats(self) -> dict[str, Any]:
        return self.cmd("stats")

    def quit(self) -> None:
        if self.proc.poll() is None:
            self.cmd("quit")
            self.proc.wait(timeout=10)


@dataclass
class Lab:
    topo: Topology
    cn: Host
    r: Host
    ha: Host
    fa: Host
    mn: Host
    r_ha_if: str
    r_fa_if: str
    fa_mn_if: str
    r_cn_if: str = "eth0"
    mn_if: str = "eth0"
    ha_dp: Driver | None = None
    fa_dp: Driver | None = None

    def start_dataplanes(self, backend: str = "userspace") -> None:
        self.ha_dp = Driver(self.ha, "--backend", backend, "--role", "ha", "--tun", "mhtun0")
        self.fa_dp = Driver(
            self.fa,
            "--backend",
            backend,
            "--role",
            "fa",
            "--tun",
            "mhtun0",
            "--visitor-iface",
            self.fa_mn_if,
        )

    def binding(
        self, encap: str = "ipip", gre_key: int | None = None, flags: int = 0, **kw: Any
    ) -> dict[str, Any]:
        b = {
            "home_addr": HOA,
            "care_of": COA,
            "ha_addr": HA,
            "encap": encap,
            "gre_key": gre_key,
            "flags": flags,
        }
        b.update(kw)
        return b

    def register(self, binding: dict[str, Any]) -> None:
        """Install the binding on both agents (stands in for a successful registration)."""
        assert self.ha_dp is not None and self.fa_dp is not None
        self.fa_dp.cmd("install", binding=binding)
        self.ha_dp.cmd("install", binding=binding)

    def deregister(self, binding: dict[str, Any]) -> None:
        assert self.ha_dp is not None and self.fa_dp is not None
        self.ha_dp.cmd("remove", binding=binding)
        self.fa_dp.cmd("remove", binding=binding)


def build(topo: Topology) -> Lab:
    cn, r, ha, fa, mn = (topo.host(n) for n in ("cn", "r", "ha", "fa", "mn"))
    l_cn = topo.link(cn, r, f"{CN}/24", "10.1.0.1/24")
    l_ha = topo.link(ha, r, f"{HA}/24", "10.2.0.1/24")
    l_fa = topo.link(fa, r, f"{COA}/24", "10.3.0.1/24")
    l_mn = topo.link(fa, mn, f"{MN_LINK_FA}/24", None)
    mn.addr(l_mn.b_if, f"{HOA}/32")
    mn.ip("route", "add", MN_LINK_FA, "dev", l_mn.b_if)
    mn.route("default", via=MN_LINK_FA)
    cn.route("default", via="10.1.0.1")
    ha.route("default", via="10.2.0.1")
    fa.route("default", via="10.3.0.1")
    r.route(HOME_PREFIX, via=HA)
    for h in (r, ha, fa):
        h.forwarding()
    return Lab(topo, cn, r, ha, fa, mn, l_ha.b_if, l_fa.b_if, l_mn.a_if, l_cn.b_if, l_mn.b_if)
