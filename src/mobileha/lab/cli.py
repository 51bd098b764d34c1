"""``mobileha lab``: the demo scenario in network namespaces (root), with the userspace data
plane, real HSRP over multicast and a CN pinging mobile nodes through a failover.

Topology (every box is a namespace named ``mh<6 hex>-<name>``, unique per run)::

                         slb (HA-SLB, directed mode, VIP 10.0.0.100)
                          |
    cn (10.1.0.2) ------- r ---- br-lana (10.10.1.0/24): ha-a1, ha-a2  VIP 10.10.1.100
                          |  \\--- br-lanb (10.10.2.0/24): ha-b1, ha-b2  VIP 10.10.2.100
                          |
                          fa (CoA 10.30.0.2) ---- br-vis (10.50.0.0/24): mn1, mn2 ...

* Each HA pair runs HSRP (version 2, multicast on its home LAN bridge) and HA-HA
  redundancy sync; each pair has its own home prefix / dynamic pool (10.98.1.0/24 for
  pair A, 10.98.2.0/24 for pair B), routed by ``r`` to the pair's VIP.
* The FA relays to the HA-SLB VIP; the SLB forwards each initial request to a pair (its
  HSRP VIP) keeping the FA source; the pair's Active answers the FA directly.
* Each MN host runs one ``mobile-node`` fleet (``count`` MNs, dynamic home addresses,
  GRE with the FA's key, reverse tunnel). The home addresses of a few MNs per pair are
  configured on their MN host and pinged from the CN every 100 ms for the whole run.
* Then the Active of pair A is killed with SIGKILL (and its link taken down, as when the
  box dies: its kernel would otherwise keep answering ARP for the VIP); the Standby takes
  over with the synced bindings. Reported: the HSRP takeover time, the ping outage per
  pair, bindings before/after/lost.

Everything (processes, namespaces and the devices in them) is removed on exit, on
Ctrl-C and on SIGTERM. ``--json`` makes the last line one JSON object (the summary).
Exit 0 when every MN registered, no binding was lost and pings resumed after the failover.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobileha.lab.netns import Host, Topology, netns_available
from mobileha.lab.scenario import NodeProc, PingMonitor, wait_until

KEY = "hex:00112233445566778899aabbccddeeff"
SYNC_KEY = "hex:ffeeddccbbaa99887766554433221100"
FA_KEY = "hex:0102030405060708090a0b0c0d0e0f10"  # FA-HA, between the FA and every HA
HSRP_AUTH = "md5:lab-hsrp-key"  # Cisco's HSRP MD5 TLV
SLB_VIP = "10.0.0.100"
COA = "10.30.0.2"
CN = "10.1.0.2"
HELLO_MS, HOLD_MS = 300, 1200


@dataclass
class Pair:
    name: str  # "a" / "b"
    index: int  # 1 / 2
    vip: str
    prefix: str
    has: list[NodeProc] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)

    def addr(self, i: int) -> str:
        return f"10.10.{self.index}.{11 + i}"


def _ha_config(pair: Pair, i: int, nais: list[str]) -> str:
    me, peer = pair.addr(i), pair.addr(1 - i)
    mns = "".join(
        f'\n[[mobile_node]]\nnai = "{n}"\nspi = 256\nkey = "{KEY}"\nalgorithm = "hmac-md5"\n'
        for n in nais
    )
    return f"""
[node]
role = "home-agent"
name = "ha-{pair.name}{i + 1}"
[management]
listen = "127.0.0.1:8434"
[home_agent]
address = "{me}"
home_prefix = "{pair.prefix}"
max_lifetime = 3600
[hsrp]
interface = "eth0"
group = {pair.index}
version = 2
name = "ha-pair-{pair.name}"
virtual_ip = "{pair.vip}"
priority = {110 - 10 * i}
preempt = false
hello_ms = {HELLO_MS}
hold_ms = {HOLD_MS}
authentication = "{HSRP_AUTH}"
[redundancy]
peer = "{peer}"
spi = 400
key = "{SYNC_KEY}"
retransmit_ms = 200
[dataplane]
backend = "userspace"
tun_name = "mha0"
[[foreign_agent]]
address = "{COA}"
spi = 300
key = "{FA_KEY}"
{mns}"""


def _slb_config(pairs: list[Pair]) -> str:
    reals = "".join(
        f'\n[[slb.real]]\nname = "pair-{p.name}"\naddress = "{p.vip}"\nweight = 8\n' for p in pairs
    )
    return f"""
[node]
role = "slb"
name = "haslb"
[management]
listen = "127.0.0.1:8434"
[slb]
virtual_address = "{SLB_VIP}"
mode = "directed"
session_s = 10
{reals}"""


FA_CONFIG = f"""
[node]
role = "foreign-agent"
name = "fa"
[management]
listen = "127.0.0.1:8434"
[foreign_agent]
address = "{COA}"
home_agent = "{SLB_VIP}"
reverse_tunnel = true
gre = true
[dataplane]
backend = "userspace"
tun_name = "mha0"
visitor_iface = "br-vis"
""" + "".join(
    f'[[foreign_agent.home_agent_sa]]\naddress = "{a}"\nspi = 300\nkey = "{FA_KEY}"\n'
    for a in (SLB_VIP, "10.10.1.100", "10.10.2.100")
)


def _mn_config(name: str, nai: str, count: int, local: str, lifetime: int) -> str:
    return f"""
[node]
role = "mobile-node"
name = "{name}"
[management]
listen = "127.0.0.1:8434"
[mobile_node]
nai = "{nai}"
count = {count}
home_address = "dynamic"
home_agent = "{SLB_VIP}"
foreign_agent = "{COA}:434"
local_address = "{local}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
lifetime = {lifetime}
reverse_tunnel = true
encap = "gre"
retransmit_ms = 500
"""


def _items(page: Any) -> list[dict[str, Any]]:
    if isinstance(page, dict):
        return list(page.get("items", []))
    return list(page or [])


def _hsrp_state(ha: NodeProc) -> str:
    if not ha.alive():
        return "dead"
    v = ha.try_api("standby")
    groups = v.get("groups", v) if isinstance(v, dict) else v
    if not groups:
        return "?"
    return str(groups[0].get("state", "?")).capitalize()


def _all_pages(node: NodeProc, view: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = node.api(view, f"offset={offset}&limit=1000")
        out += _items(page)
        nxt = page.get("next_offset") if isinstance(page, dict) else None
        if nxt is None:
            return out
        offset = int(nxt)


class Lab:
    def __init__(self, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        self.args = args
        self.say = say
        self.topo: Topology | None = None
        self.work = Path(tempfile.mkdtemp(prefix="mobileha-lab-"))
        self.pairs = [
            Pair("a", 1, "10.10.1.100", "10.98.1.0/24"),
            Pair("b", 2, "10.10.2.100", "10.98.2.0/24"),
        ]
        self.slb: NodeProc | None = None
        self.fa: NodeProc | None = None
        self.mns: list[NodeProc] = []
        self.mn_hosts: list[Host] = []
        self.pings: dict[str, PingMonitor] = {}
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ topology
    def build(self) -> None:
        topo = self.topo = Topology(prefix="mh")
        self.summary["run_id"] = topo.run_id
        # The run id in the work directory name: every process's command line carries it.
        new = self.work.with_name(f"mobileha-lab-{topo.run_id}")
        self.work.rename(new)
        self.work = new
        cn, r, slb, fa = (topo.host(n) for n in ("cn", "r", "slb", "fa"))
        self.cn, self.r = cn, r
        topo.link(cn, r, f"{CN}/24", "10.1.0.1/24")
        topo.link(slb, r, "10.20.0.2/24", "10.20.0.1/24")
        slb.addr("lo", f"{SLB_VIP}/32")
        topo.link(fa, r, f"{COA}/24", "10.30.0.1/24")
        cn.route("default", via="10.1.0.1")
        slb.route("default", via="10.20.0.1")
        fa.route("default", via="10.30.0.1")
        r.route(f"{SLB_VIP}/32", via="10.20.0.2")
        for p in self.pairs:
            lan = topo.bridge(f"lan{p.name}", host=r)
            r.addr(lan.dev, f"10.10.{p.index}.1/24")
            for i in range(2):
                h = topo.host(f"ha-{p.name}{i + 1}")
                topo.link(h, lan, f"{p.addr(i)}/24")
                h.route("default", via=f"10.10.{p.index}.1")
                h.forwarding()
                p.hosts.append(h)
            r.route(p.prefix, via=p.vip)
        vis = topo.bridge("vis", host=fa)
        fa.addr(vis.dev, "10.50.0.1/24")
        for i in range(self.args.mn_hosts):
            h = topo.host(f"mn{i + 1}")
            topo.link(h, vis, f"10.50.0.{11 + i}/24")
            h.route("default", via="10.50.0.1")
            self.mn_hosts.append(h)
        for h in (r, fa, slb):
            h.forwarding()

    # ------------------------------------------------------------------ nodes
    def fleets(self) -> list[tuple[str, int]]:
        """(NAI pattern, count) per MN host: the MNs split evenly over the hosts."""
        n, hosts = self.args.mns, self.args.mn_hosts
        sizes = [n // hosts + (1 if i < n % hosts else 0) for i in range(hosts)]
        return [(f"mn{i + 1}-{{n}}@lab.example", c) for i, c in enumerate(sizes) if c]

    def start_nodes(self) -> None:
        nais = [pat.replace("{n}", str(k)) for pat, c in self.fleets() for k in range(1, c + 1)]
        for p in self.pairs:
            for i, h in enumerate(p.hosts):
                cfg = _ha_config(p, i, nais)
                p.has.append(NodeProc(h, f"ha-{p.name}{i + 1}", cfg, self.work).start())
                if i == 0:  # the first one comes up first and becomes Active
                    time.sleep(0.3)
        assert self.topo is not None
        self.slb = NodeProc(
            self.topo.hosts["slb"], "slb", _slb_config(self.pairs), self.work
        ).start()
        self.fa = NodeProc(self.topo.hosts["fa"], "fa", FA_CONFIG, self.work).start()

        def pairs_ready() -> bool:
            return all(
                sorted(_hsrp_state(h) for h in p.has) == ["Active", "Standby"] for p in self.pairs
            )

        if not wait_until(pairs_ready, 30, 0.2):
            raise RuntimeError(f"HSRP pairs did not settle: {self.states()}")
        for n in (self.slb, self.fa):
            if not wait_until(n.try_api_ok("stats"), 15):
                raise RuntimeError(f"{n.name} did not start:\n{n.tail()}")
        self.say(f"HSRP: {self.states()}")

    def states(self) -> dict[str, str]:
        return {h.name: _hsrp_state(h) for p in self.pairs for h in p.has}

    def active(self, p: Pair) -> NodeProc | None:
        for h in p.has:
            if _hsrp_state(h) == "Active":
                return h
        return None

    def start_mns(self) -> None:
        for i, (pat, count) in enumerate(self.fleets()):
            h = self.mn_hosts[i]
            cfg = _mn_config(f"mn{i + 1}", pat, count, f"10.50.0.{11 + i}", self.args.lifetime)
            self.mns.append(NodeProc(h, f"mn{i + 1}", cfg, self.work).start())

    def mn_rows(self) -> list[tuple[NodeProc, dict[str, Any]]]:
        return [(mn, row) for mn in self.mns for row in _all_pages(mn, "mobile_nodes")]

    def registered(self) -> tuple[int, int]:
        ok = failed = 0
        for mn in self.mns:
            c = mn.api("stats")["counters"]
            ok += int(c.get("registered", 0))
            failed += int(c.get("denied", 0))
        return ok, failed

    def bindings(self, ha: NodeProc) -> set[str]:
        return {b["home_address"] for b in _all_pages(ha, "bindings")}

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        a = self.args
        t_start = time.monotonic()
        self.build()
        assert self.topo is not None
        self.say(
            f"topology {self.topo.run_id}: {len(self.topo.namespaces())} namespaces "
            f"(cn, r, slb, 2 HA pairs, fa, {a.mn_hosts} MN hosts)"
        )
        self.start_nodes()
        t_reg = time.monotonic()
        self.start_mns()
        total = a.mns
        wait_until(lambda: self.registered()[0] >= total, a.register_timeout, 0.2)
        ok, failed = self.registered()
        reg_s = time.monotonic() - t_reg
        self.say(f"registered {ok}/{total} mobile nodes in {reg_s:.1f} s ({failed} denials)")
        self.summary.update(registrations_ok=ok, registrations_failed=total - ok)

        # Which pair holds which MN (the SLB split), from the Actives' binding tables.
        before: dict[str, set[str]] = {}
        for p in self.pairs:
            act = self.active(p)
            before[p.name] = self.bindings(act) if act is not None else set()
        self.summary["slb_split"] = {f"pair-{k}": len(v) for k, v in before.items()}
        self.say(f"SLB split: {self.summary['slb_split']}")

        # Ping targets: a few MNs per pair get their home address on their MN host.
        rows = self.mn_rows()
        targets: dict[str, list[str]] = {p.name: [] for p in self.pairs}
        for mn, row in rows:
            hoa = str(row.get("home_address"))
            for p in self.pairs:
                if hoa in before[p.name] and len(targets[p.name]) < a.ping_targets:
                    mn.host.addr("eth0", f"{hoa}/32")
                    targets[p.name].append(hoa)
        for hoas in targets.values():
            for hoa in hoas:
                self.pings[hoa] = PingMonitor(self.cn, hoa, a.ping_interval)
        if not wait_until(lambda: all(m.replies for m in self.pings.values()), 10, 0.2):
            dead = [h for h, m in self.pings.items() if not m.replies]
            self.say(f"WARNING: no ping answers yet from {dead}")
        time.sleep(a.steady)
        self.say(
            "pinging "
            + ", ".join(f"pair {k}: {' '.join(v) or '-'}" for k, v in targets.items())
            + f" every {int(a.ping_interval * 1000)} ms"
        )

        # Failover: kill -9 the Active of pair A.
        victim_pair = self.pairs[0]
        victim = self.active(victim_pair)
        if victim is None:
            raise RuntimeError("pair A has no Active")
        standby = next(h for h in victim_pair.has if h is not victim)
        bindings_before = len(before[victim_pair.name])
        seq_before = {h: m.last_seq() for h, m in self.pings.items()}
        t_kill = time.monotonic()
        victim.kill9()
        victim.host.ip("link", "set", "eth0", "down")
        self.say(f"kill -9 {victim.name} (Active of pair {victim_pair.name}, its link down)")
        took = wait_until(lambda: _hsrp_state(standby) == "Active", 15, 0.05)
        failover_ms = round((time.monotonic() - t_kill) * 1000.0, 1) if took else None
        self.say(f"{standby.name} is {_hsrp_state(standby)} after {failover_ms} ms")
        t_wall = time.time()
        wait_until(lambda: all(m.received_since(t_wall) > 0 for m in self.pings.values()), 10, 0.1)
        time.sleep(a.steady)
        after = self.bindings(standby) if took else set()
        lost = before[victim_pair.name] - after
        for m in self.pings.values():
            m.stop()
        outage = {
            p.name: max(
                (self.pings[h].outage_ms(seq_before[h]) for h in targets[p.name]), default=None
            )
            for p in self.pairs
        }
        resumed = all(m.received_since(t_wall) > 0 for m in self.pings.values())
        sent = sum(m.last_seq() for m in self.pings.values())
        got = sum(len(m.replies) for m in self.pings.values())
        self.say(
            f"ping outage: pair {victim_pair.name} {outage[victim_pair.name]} ms, "
            f"pair {self.pairs[1].name} {outage[self.pairs[1].name]} ms "
            f"({got} answers / ~{sent} echo requests)"
        )
        self.say(
            f"bindings of pair {victim_pair.name}: before {bindings_before}, "
            f"after {len(after)}, lost {len(lost)}"
        )
        self.summary.update(
            mobile_nodes=total,
            killed=victim.name,
            took_over=standby.name,
            failover_ms=failover_ms,
            ping_targets=sum(len(v) for v in targets.values()),
            ping_outage_ms=outage[victim_pair.name],
            ping_outage_other_pair_ms=outage[self.pairs[1].name],
            pings_resumed=resumed,
            bindings_before=bindings_before,
            bindings_after=len(after),
            bindings_lost=len(lost),
            namespaces=len(self.topo.namespaces()),
            duration_s=round(time.monotonic() - t_start, 1),
        )
        self.summary["ok"] = bool(
            ok == total and not lost and resumed and took and all(targets.values())
        )
        return self.summary

    def close(self) -> None:
        for m in self.pings.values():
            with contextlib.suppress(Exception):
                m.stop()
        # MNs first (they deregister), then the rest; the topology kills what is left.
        for n in self.mns:
            with contextlib.suppress(Exception):
                n.terminate(timeout=5)
        if self.topo is not None:
            self.topo.close()
        if not self.args.keep_logs:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="mobileha lab",
        description="The demo scenario in network namespaces (root): HA-SLB, two HSRP HA "
        "pairs, FA, mobile nodes, a CN pinging them through a kill -9 failover.",
    )
    ap.add_argument("--mns", type=int, default=30, help="mobile nodes (default 30)")
    ap.add_argument("--mn-hosts", type=int, default=2, help="MN namespaces (default 2)")
    ap.add_argument(
        "--ping-targets", type=int, default=2, help="MNs pinged per HA pair (default 2)"
    )
    ap.add_argument("--ping-interval", type=float, default=0.1, help="seconds (default 0.1)")
    ap.add_argument("--lifetime", type=int, default=600, help="MN registration lifetime")
    ap.add_argument("--steady", type=float, default=2.0, help="seconds of pings around failover")
    ap.add_argument("--register-timeout", type=float, default=30.0)
    ap.add_argument("--keep-logs", action="store_true", help="keep the node logs and configs")
    ap.add_argument("--json", action="store_true", help="last line: the summary as JSON")
    ap.add_argument(
        "--roaming",
        action="store_true",
        help="instead: one MN moving between two FAs under traffic, an HA pair, outage "
        "of each handoff (mobileha.lab.roaming)",
    )
    ap.add_argument("--moves", type=int, default=6, help="--roaming: moves (default 6)")
    args = ap.parse_args(argv)
    if args.roaming:
        return _roaming(args)
    if not 1 <= args.mn_hosts <= 50 or args.mns < args.mn_hosts:
        ap.error("need 1 <= --mn-hosts <= 50 and --mns >= --mn-hosts")
    say = _session()
    if say is None:
        return 2
    old = signal.signal(signal.SIGTERM, _interrupt)
    lab = Lab(args, say)
    rc = 1
    try:
        summary = lab.run()
        rc = 0 if summary.get("ok") else 1
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        lab.summary["ok"] = False
        lab.summary["interrupted"] = True
        rc = 130
    except Exception as e:
        say(f"lab failed: {e}")
        for n in [*(h for p in lab.pairs for h in p.has), lab.slb, lab.fa, *lab.mns]:
            if n is not None and "Traceback" in n.tail():
                say(f"--- {n.name} log:\n{n.tail(1500)}")
        lab.summary["ok"] = False
        lab.summary["error"] = str(e)
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            lab.close()
        signal.signal(signal.SIGTERM, old)
    say(f"torn down ({lab.summary.get('run_id', '?')}: namespaces and processes removed)")
    if args.json:
        print(json.dumps(lab.summary, sort_keys=True), flush=True)
    return rc


def _session() -> Callable[[str], None] | None:
    """A lab run's progress printer (seconds since start), or None (printed why) where
    network namespaces cannot be made."""
    ok, reason = netns_available()
    if not ok:
        print(f"mobileha lab: cannot run here: {reason}", file=sys.stderr)
        return None
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.2f}] {msg}", flush=True)

    return say


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM -> the same clean teardown as Ctrl-C."""
    raise KeyboardInterrupt


def _roaming(args: argparse.Namespace) -> int:
    from mobileha.lab import roaming

    say = _session()
    if say is None:
        return 2
    old = signal.signal(signal.SIGTERM, _interrupt)
    work = Path(tempfile.mkdtemp(prefix="mobileha-roaming-"))
    summary: dict[str, Any] = {"ok": False}
    try:
        summary = roaming.run(args.moves, 1000, 1.0, say, work)
    except KeyboardInterrupt:
        say("interrupted: tearing down")
    except Exception as e:
        say(f"lab failed: {e}")
        summary["error"] = str(e)
    finally:
        signal.signal(signal.SIGTERM, old)
        if not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
    say("torn down (namespaces and processes removed)")
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary.get("ok") else 1


__all__ = ["main"]
