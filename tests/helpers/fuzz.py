"""Mutated datagrams and DFP streams against a whole cluster of ``mobileha run`` processes
on loopback: the harness of ``bench/fuzz.py`` (50,000 per port) and of the suite's sample.

The cluster: an HA pair (HSRP MD5, HA-HA sync, a DFP agent each) behind an HA-SLB in relay
mode (relay SA, DFP manager with a password), an FA whose home agent is the SLB. Each
target is one port of one node, fed from the address an attacker would use (the sync port
from the peer's address, HSRP from the peer's address with the right and a wrong key; the
DFP manager through a fake agent the SLB connects to). Seeds are valid messages; mutations
flip bits, overwrite, truncate, extend, insert and splice, and a tenth are random bytes.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mobileha.wire import dfp as dfpw
from mobileha.wire import hsrp as hsrpw
from mobileha.wire import slbtag
from mobileha.wire import sync as syncw
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.mip import NaiExt, RegistrationReply
from tests.helpers.attack import Node, subnet, udp
from tests.helpers.mip import request
from tests.helpers.net import free_port

KEY = bytes(range(16))
SYNC_KEY = b"fuzz-sync-key-16"
SLB_KEY = b"fuzz-slb-ha-key!"
DFP_KEY = b"fuzz-dfp"
HSRP_KEY = b"fuzz-hsrp"
NAI = "fuzz-mn@example.net"


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """One mutation of ``seed``."""
    r = rng.random()
    b = bytearray(seed)
    n = len(b)
    if r < 0.1 or not n:
        return rng.randbytes(rng.randrange(0, 600))
    if r < 0.4:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
    elif r < 0.55:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(n)] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    elif r < 0.65:
        del b[rng.randrange(n) :]
    elif r < 0.75:
        b += rng.randbytes(rng.randrange(1, 300))
    elif r < 0.85:
        i = rng.randrange(n + 1)
        b[i:i] = rng.randbytes(rng.randrange(1, 64))
    else:
        i, j = sorted((rng.randrange(n + 1), rng.randrange(n + 1)))
        b[j:j] = b[i:j] * rng.randint(1, 4)
    return bytes(b)


@dataclass
class Cluster:
    net: str
    a: str
    b: str
    vip: str
    slb: str
    fa: str
    fake_agent: str
    evil: str
    ha_port: int
    sync_port: int  # the peer's HA port: sync shares it (demultiplexed by type)
    hsrp_port: int
    dfp_port: int
    slb_port: int
    fa_port: int
    fake_port: int
    nodes: dict[str, Node] = field(default_factory=dict)
    fake: socket.socket | None = None

    def stop(self) -> None:
        for n in self.nodes.values():
            n.stop()
        if self.fake is not None:
            self.fake.close()


def _ha(c: Cluster, me: str, peer: str, prio: int) -> str:
    return f"""role = "home-agent"
[home_agent]
address = "{me}"
ha_address = "{c.vip}"
port = {c.ha_port}
home_prefix = "10.99.0.0/24"
trusted_slb = ["{c.slb}"]
[[home_agent.slb_sa]]
address = "{c.slb}"
spi = 500
key = "hex:{SLB_KEY.hex()}"
[hsrp]
interface = "lo"
version = 2
group = 3
virtual_ip = "{c.vip}"
priority = {prio}
preempt = true
hello_ms = 1000
hold_ms = 3000
port = {c.hsrp_port}
peers = ["{peer}"]
authentication = "md5:{HSRP_KEY.decode()}"
[redundancy]
peer = "{peer}"
port = {c.sync_port}
spi = 400
key = "hex:{SYNC_KEY.hex()}"
[dataplane]
backend = "memory"
[dfp]
listen = "{me}:{c.dfp_port}"
interval_s = 1
password = "hex:{DFP_KEY.hex()}"
[[mobile_node]]
nai = "{NAI}"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""


def start_cluster(tmp: Path) -> Cluster:
    net = subnet()
    a, b, vip = f"{net}.11", f"{net}.12", f"{net}.100"
    c = Cluster(
        net=net,
        a=a,
        b=b,
        vip=vip,
        slb=f"{net}.50",
        fa=f"{net}.20",
        fake_agent=f"{net}.40",
        evil=f"{net}.66",
        ha_port=(ha_port := free_port(a, socket.SOCK_DGRAM)),
        sync_port=ha_port,
        hsrp_port=free_port(a, socket.SOCK_DGRAM),
        dfp_port=free_port(a, socket.SOCK_STREAM),
        slb_port=free_port(f"{net}.50", socket.SOCK_DGRAM),
        fa_port=free_port(f"{net}.20", socket.SOCK_DGRAM),
        fake_port=free_port(f"{net}.40", socket.SOCK_STREAM),
    )
    fake = socket.socket()
    fake.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    fake.bind((c.fake_agent, c.fake_port))
    fake.listen(16)
    c.fake = fake
    try:
        c.nodes["ha-a"] = Node(tmp, "ha-a", _ha(c, a, b, 110))
        c.nodes["ha-b"] = Node(tmp, "ha-b", _ha(c, b, a, 100))
        c.nodes["slb"] = Node(
            tmp,
            "slb",
            f"""role = "slb"
[slb]
virtual_address = "{c.slb}"
port = {c.slb_port}
mode = "relay"
max_sessions = 20000
[slb.relay_sa]
spi = 500
key = "hex:{SLB_KEY.hex()}"
[[slb.real]]
name = "pair"
address = "{vip}"
port = {c.ha_port}
dfp_agent = "{a}:{c.dfp_port}"
[[slb.real]]
name = "fake"
address = "{c.fake_agent}"
port = {c.ha_port}
weight = 0
dfp_agent = "{c.fake_agent}:{c.fake_port}"
[dfp]
retry_interval_s = 1
password = "hex:{DFP_KEY.hex()}"
""",
        )
        c.nodes["fa"] = Node(
            tmp,
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{c.fa}"
port = {c.fa_port}
home_agent = "{c.slb}"
home_agent_port = {c.slb_port}
real_home_agents = ["{vip}"]
max_pending = 4096
[dataplane]
backend = "memory"
""",
        )
    except BaseException:
        c.stop()
        raise
    return c


def _ident() -> int:
    return ntp_identification(time.time(), random.getrandbits(32))


def register_through_fa(c: Cluster, tries: int = 10) -> int | None:
    """A valid registration MN -> FA -> SLB -> HA pair; the reply code the MN got."""
    mn = f"{c.net}.30"
    with udp(mn) as s:
        s.settimeout(1.0)
        for _ in range(tries):
            rrq = request(ha_addr=c.slb, care_of=c.fa, ident=_ident(), nai=NAI, key=KEY)
            s.sendto(rrq, (c.fa, c.fa_port))
            try:
                while True:
                    rep = RegistrationReply.decode(s.recv(65535))
                    if rep.code in (0, 1):
                        return rep.code
                    if rep.code != 133:
                        break
            except (TimeoutError, Exception):
                continue
    return None


def _seeds(c: Cluster) -> dict[str, tuple[str, str, int, list[bytes]]]:
    """target -> (node, destination address, port, seeds); the source is per target."""
    rrq = request(ha_addr=c.vip, care_of=c.fa, ident=_ident(), nai=NAI, key=KEY)
    rrq_slb = request(ha_addr=c.slb, care_of=c.fa, ident=_ident(), nai=NAI, key=KEY)
    tagged = slbtag.encode(rrq_slb, c.fa, c.fa_port, key=SLB_KEY, spi=500)
    rrp = (
        RegistrationReply(
            code=0, lifetime=600, home_addr="10.99.0.5", ha_addr=c.vip, ident=_ident()
        ).encode()
        + NaiExt(NAI).encode()
    )
    auth = Authenticator(SYNC_KEY, "md5-prefix-suffix")
    rec = syncw.BindingRecord("10.99.0.7", c.fa, c.fa, _ident(), 600, 500, nai=NAI)
    bu = syncw.encode(
        syncw.SyncMessage(syncw.MsgKind.BU, 1, c.vip, _ident(), records=(rec,)), 400, auth
    )
    bir = syncw.encode(syncw.SyncMessage(syncw.MsgKind.BI_REQUEST, 2, c.vip, _ident()), 400, auth)

    def hello(key: bytes) -> bytes:
        g = hsrpw.GroupStateTlv(state=6, group=3, priority=110, vip=c.vip, hello_ms=1000)
        m = hsrpw.Md5Auth(ip=c.a)
        return hsrpw.md5_sign(hsrpw.HsrpV2((g, m)).encode(), key)

    return {
        "ha 434": ("ha-a", c.vip, c.ha_port, [rrq, tagged]),
        "fa 434": ("fa", c.fa, c.fa_port, [rrq_slb, rrp]),
        "slb 434": ("slb", c.slb, c.slb_port, [rrq_slb]),
        "sync from peer": ("ha-b", c.b, c.sync_port, [bu, bir]),
        "hsrp right key": ("ha-b", c.b, c.hsrp_port, [hello(HSRP_KEY)]),
        "hsrp wrong key": ("ha-b", c.b, c.hsrp_port, [hello(b"wrong")]),
    }


def _source(c: Cluster, target: str) -> str:
    if target in ("sync from peer", "hsrp right key", "hsrp wrong key"):
        return c.a  # the peer's address
    if target == "ha 434":
        return c.slb  # the trusted SLB's address
    return c.evil


def fuzz_udp(c: Cluster, target: str, count: int, rng: random.Random) -> int:
    _node, dst, port, seeds = _seeds(c)[target]
    with udp(_source(c, target)) as s:
        s.setblocking(False)
        sent = 0
        while sent < count:
            try:
                s.sendto(mutate(rng, rng.choice(seeds)), (dst, port))
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                pass  # e.g. EMSGSIZE is impossible here; ICMP errors of earlier sends
            sent += 1
            if sent % 200 == 0:
                time.sleep(0.004)  # keep within what the nodes read: fuzz, not flood
    return sent


def _dfp_stream(rng: random.Random, seeds: list[bytes], p_header: float = 0.1) -> bytes:
    """One DFP message for a stream: a valid header with a mutated body, or (with
    probability ``p_header``) a mutation of the whole message, which usually breaks the
    stream (the peer closes the connection)."""
    seed = rng.choice(seeds)
    if rng.random() < p_header:
        return mutate(rng, seed)
    body = mutate(rng, seed[8:])[:4000]
    return struct.pack("!BBHI", 1, 0, struct.unpack_from("!H", seed, 2)[0], 8 + len(body)) + body


def fuzz_dfp_agent(c: Cluster, count: int, rng: random.Random) -> int:
    """Messages to the HA's DFP agent, over connections that are re-opened when closed."""
    seeds = [
        dfpw.sign(dfpw.DfpMessage(dfpw.BINDID_REQUEST), DFP_KEY),
        dfpw.sign(dfpw.dfp_parameters(5), DFP_KEY),
        dfpw.encode(dfpw.dfp_parameters(60)),
    ]
    sent = 0
    while sent < count:
        try:
            with socket.create_connection((c.a, c.dfp_port), 5, source_address=(c.evil, 0)) as s:
                s.settimeout(0.0)
                s.sendall(seeds[0])
                for _ in range(min(rng.randint(1, 50), count - sent)):
                    s.sendall(_dfp_stream(rng, seeds))
                    sent += 1
                    with _suppress():
                        s.recv(65536)
        except OSError:
            sent += 1
    return sent


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


def fuzz_dfp_manager(c: Cluster, count: int, rng: random.Random, budget_s: float) -> int:
    """Messages to the SLB's DFP manager from the fake agent it connects to."""
    assert c.fake is not None
    seeds = [
        dfpw.sign(dfpw.preference_information([(c.fake_agent, 5)]), DFP_KEY),
        dfpw.encode(dfpw.preference_information([(c.fake_agent, 60000)])),
        dfpw.sign(dfpw.DfpMessage(dfpw.BINDID_REPORT), DFP_KEY),
    ]
    c.fake.settimeout(5.0)
    sent = 0
    end = time.monotonic() + budget_s
    while sent < count and time.monotonic() < end:
        try:
            conn, _ = c.fake.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(2.0)
            try:
                while sent < count:
                    # few stream-breaking messages: the manager reconnects after a backoff
                    conn.sendall(_dfp_stream(rng, seeds, p_header=0.001))
                    sent += 1
                    if sent % 100 == 0:
                        time.sleep(0.002)
            except OSError:
                continue  # the manager closed it (a stream it cannot resynchronise)
    return sent


@dataclass
class Result:
    sent: dict[str, int]
    rss_kb: dict[str, tuple[int, int]]  # node -> (baseline, after)
    alive: dict[str, bool]
    sockets: dict[str, int]  # "node addr:port" -> UDP sockets bound there
    final_code: int | None
    seconds: float


def run(
    tmp: Path,
    count: int,
    seed: int = 1,
    log: Callable[[str], None] = lambda s: None,
    settle_s: float = 12.0,
) -> Result:
    """Start the cluster, fuzz every target with ``count`` inputs, and report."""
    c = start_cluster(tmp)
    try:
        t0 = time.monotonic()
        deadline = time.monotonic() + 60
        while register_through_fa(c, tries=2) not in (0, 1):
            if time.monotonic() > deadline:
                raise AssertionError("the cluster never registered a mobile node")
        rng = random.Random(seed)
        warm = min(1000, count)
        for target in _seeds(c):  # warm up: lazy allocations before the baseline
            fuzz_udp(c, target, warm, rng)
        fuzz_dfp_agent(c, min(200, count), rng)
        time.sleep(settle_s)
        base = {name: n.rss_kb() for name, n in c.nodes.items()}
        sent: dict[str, int] = {}
        threads = []

        def manager() -> None:
            sent["dfp manager"] = fuzz_dfp_manager(c, count, rng_m, budget_s=max(60, count / 50))

        rng_m = random.Random(seed + 1)
        threads.append(threading.Thread(target=manager, daemon=True))
        threads[0].start()
        for target in _seeds(c):
            sent[target] = fuzz_udp(c, target, count, rng)
            log(f"{target}: {sent[target]} sent")
        sent["dfp agent"] = fuzz_dfp_agent(c, count, rng)
        log(f"dfp agent: {sent['dfp agent']} sent")
        for t in threads:
            t.join(timeout=max(120, count / 50))
        log(f"dfp manager: {sent.get('dfp manager', 0)} sent")
        time.sleep(settle_s)
        code = register_through_fa(c)
        rss = {name: (base[name], n.rss_kb()) for name, n in c.nodes.items()}
        socks = {
            f"ha-a VIP {c.vip}:{c.ha_port}": c.nodes["ha-a"].udp_sockets(c.vip, c.ha_port),
            f"ha-b VIP {c.vip}:{c.ha_port}": c.nodes["ha-b"].udp_sockets(c.vip, c.ha_port),
            f"ha-a {c.a}:{c.ha_port}": c.nodes["ha-a"].udp_sockets(c.a, c.ha_port),
            f"ha-b {c.b}:{c.sync_port}": c.nodes["ha-b"].udp_sockets(c.b, c.sync_port),
            f"ha-b {c.b}:{c.hsrp_port}": c.nodes["ha-b"].udp_sockets(c.b, c.hsrp_port),
            f"slb {c.slb}:{c.slb_port}": c.nodes["slb"].udp_sockets(c.slb, c.slb_port),
            f"fa {c.fa}:{c.fa_port}": c.nodes["fa"].udp_sockets(c.fa, c.fa_port),
        }
        return Result(
            sent=sent,
            rss_kb=rss,
            alive={name: n.alive() for name, n in c.nodes.items()},
            sockets=socks,
            final_code=code,
            seconds=time.monotonic() - t0,
        )
    finally:
        c.stop()


__all__ = ["Cluster", "Result", "mutate", "run", "start_cluster"]
