"""The data-plane lab: topology and tool driver for tests/netns, bench/dataplane.py, demos.

    cn (10.1.0.2) --- r --- ha (10.2.0.2, home prefix 10.99.0.0/24 routed to it)
                      |
                      +--- fa (CoA 10.3.0.2) --- mn (home address 10.99.0.5)

Two ways to get bindings installed:

* ``start_dataplanes`` + ``register``: the HA and FA run ``python -m mobileha.dataplane.tool``
  and get Binding objects through it (data-plane tests without the registration protocol).
* ``start_nodes`` + ``start_mn``: real ``mobileha run`` home-agent, foreign-agent and
  mobile-node processes with the userspace data plane; the MN registers through the FA and
  the agents install the negotiated bindings themselves (``tests/netns/test_dataplane_e2e.py``).
  The MN sends its requests from an address on the visitor link (``MN_LINK``): the FA answers
  a UDP source address (it has no link-layer delivery), and that address is on-link, while
  the home address only gets a host route on the FA once the binding is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobileha.lab.netns import Host, Topology
from mobileha.lab.scenario import NodeProc, wait_until

CN, HA, COA, MN_LINK_FA, HOA = "10.1.0.2", "10.2.0.2", "10.3.0.2", "10.4.0.1", "10.99.0.5"
MN_LINK = "10.4.0.5"
HOME_PREFIX = "10.99.0.0/24"
NAI = "mn1@lab.example"
MN_HA_KEY = "00112233445566778899aabbccddeeff"
TUN = "mha0"


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
            raise RuntimeError(f"data plane on {host.name} not ready: {first.get('error', first)}")
        self.ready = first  # the backend in use and why auto passed the others

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
    nodes: dict[str, NodeProc] = field(default_factory=dict)
    workdir: Path = Path("/tmp")
    backend: str = "userspace"  # of the nodes started by the e2e tests

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

    # ---------------------------------------------------------------- real registration
    def prepare_mn_link(self) -> None:
        """The MN's own address on the visitor link (its registration source) and a default
        route whose source is the home address (the MN's traffic comes from its HoA)."""
        self.mn.addr(self.mn_if, f"{MN_LINK}/24")
        self.mn.ip("route", "replace", "default", "via", MN_LINK_FA, "src", HOA)

    def start_ha(
        self, workdir: Path, max_lifetime: int = 36000, backend: str = "userspace", **kw: Any
    ) -> NodeProc:
        ha = NodeProc(self.ha, "ha", ha_config(max_lifetime, backend, **kw), workdir).start()
        self.nodes["ha"] = ha
        if not wait_until(lambda: ha.api("stats") is not None, 15):
            raise RuntimeError(f"home agent did not start:\n{ha.tail()}")
        return ha

    def start_fa(self, workdir: Path, gre: bool, backend: str = "userspace") -> NodeProc:
        fa = NodeProc(self.fa, "fa", fa_config(self.fa_mn_if, gre, backend), workdir).start()
        self.nodes["fa"] = fa
        if not wait_until(lambda: fa.api("stats") is not None, 15):
            raise RuntimeError(f"foreign agent did not start:\n{fa.tail()}")
        return fa

    def start_mn(self, workdir: Path, encap: str, reverse: bool, lifetime: int = 600) -> NodeProc:
        mn = NodeProc(self.mn, "mn", mn_config(encap, reverse, lifetime), workdir).start()
        self.nodes["mn"] = mn
        return mn

    def ha_bindings(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.nodes["ha"].api("bindings")["items"]
        return items

    def fa_visitors(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.nodes["fa"].api("visitors")["items"]
        return items

    def wait_registered(self, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until the HA has the MN's binding and the FA its visitor entry."""

        def ok() -> bool:
            return bool(self.ha_bindings()) and bool(self.fa_visitors())

        if not wait_until(ok, timeout):
            logs = "\n".join(f"--- {n}\n{p.tail()}" for n, p in self.nodes.items())
            raise RuntimeError(f"the mobile node did not register:\n{logs}")
        return self.ha_bindings()[0]

    def stop_nodes(self, *names: str) -> None:
        for n in names or tuple(self.nodes):
            p = self.nodes.pop(n, None)
            if p is not None:
                p.terminate()


def _key(hexkey: str = MN_HA_KEY) -> str:
    return f"hex:{hexkey}"


def ha_config(
    max_lifetime: int = 36000, backend: str = "userspace", max_bindings: int = 1000
) -> str:
    """The home agent at ``HA``: host routes per home address into the data plane."""
    return f"""
[node]
role = "home-agent"
name = "ha"
[management]
listen = "127.0.0.1:8434"
[home_agent]
address = "{HA}"
max_lifetime = {max_lifetime}
max_bindings = {max_bindings}
[dataplane]
backend = "{backend}"
tun_name = "{TUN}"
[[mobile_node]]
nai = "{NAI}"
home_address = "{HOA}"
spi = 256
key = "{_key()}"
algorithm = "hmac-md5"
"""


def fa_config(visitor_iface: str, gre: bool, backend: str = "userspace") -> str:
    """The foreign agent at ``COA``; ``gre`` adds the GRE key extension (RFC 6245)."""
    return f"""
[node]
role = "foreign-agent"
name = "fa"
[management]
listen = "127.0.0.1:8434"
[foreign_agent]
address = "{COA}"
home_agent = "{HA}"
reverse_tunnel = true
gre = {"true" if gre else "false"}
[dataplane]
backend = "{backend}"
tun_name = "{TUN}"
visitor_iface = "{visitor_iface}"
"""


def mn_config(encap: str, reverse: bool, lifetime: int) -> str:
    return f"""
[node]
role = "mobile-node"
name = "mn"
[management]
listen = "127.0.0.1:8434"
[mobile_node]
nai = "{NAI}"
home_address = "{HOA}"
home_agent = "{HA}"
foreign_agent = "{COA}:434"
local_address = "{MN_LINK}"
spi = 256
key = "{_key()}"
algorithm = "hmac-md5"
lifetime = {lifetime}
reverse_tunnel = {"true" if reverse else "false"}
encap = "{encap}"
retransmit_ms = 300
"""


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
