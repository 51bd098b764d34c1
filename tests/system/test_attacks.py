"""An outsider against ``mobileha run`` processes on loopback, one test per attack of the
hardening review (docs/security.md): each sends what an attacker would (datagrams from any
127/8 source, raw captures replayed, TCP connections) and checks the node held.

``MOBILEHA_UNDER_TEST_SRC=/path/to/src`` runs the same attacks against another checkout's
nodes (tests/helpers/attack.py).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mobileha.wire import dfp as dfpw
from mobileha.wire import slbtag
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.hsrp import HsrpV1, text_auth
from mobileha.wire.mip import (
    EXT_MN_HA,
    GreKeyExt,
    NaiExt,
    RegistrationReply,
    RegistrationRequest,
    append_auth,
)
from tests.helpers import free_port, request, wait_for
from tests.helpers.attack import Node, check, node_command, node_env, recv_all, subnet, udp

pytestmark = pytest.mark.timeout(180)

KEY = bytes(range(16))
FA_KEY = b"fa-ha-shared-key"
SLB_KEY = b"slb-ha-relay-key"
NAI = "victim@example.net"


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for n in started:
        n.stop()


def ha_body(addr: str, port: int, extra: str = "", replay: str = "timestamp") -> str:
    return f"""role = "home-agent"
[home_agent]
address = "{addr}"
port = {port}
home_prefix = "10.77.0.0/24"
{extra}
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "{NAI}"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
replay = "{replay}"
"""


def ident() -> int:
    return ntp_identification(time.time(), int(time.monotonic_ns()) & 0xFFFFFFFF)


def replies(s: socket.socket, timeout: float) -> list[RegistrationReply]:
    out = []
    for raw in recv_all(s, timeout):
        try:
            out.append(RegistrationReply.decode(raw))
        except Exception:
            continue
    return out


def exchange(
    s: socket.socket, data: bytes, dst: tuple[str, int], tries: int = 5
) -> RegistrationReply | None:
    for _ in range(tries):
        s.sendto(data, dst)
        got = replies(s, 1.0)
        if got:
            return got[0]
    return None


def dicts(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from dicts(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from dicts(v)


# ------------------------------------------------------------------ 1: unprotected extensions


def test_extension_after_the_fa_ha_authenticator_is_not_acted_on(
    tmp_path: Path, nodes: list[Node]
) -> None:
    net = subnet()
    ha, fa = f"{net}.10", f"{net}.20"
    port = free_port(ha, socket.SOCK_DGRAM)
    extra = f"""[[foreign_agent]]
address = "{fa}"
spi = 300
key = "hex:{FA_KEY.hex()}"
algorithm = "hmac-md5"
"""
    # the [[foreign_agent]] array must follow [home_agent]'s keys and the [[mobile_node]]s
    nodes.append(Node(tmp_path, "ha", ha_body(ha, port) + extra))
    valid = request(
        ha_addr=ha, care_of=fa, ident=ident(), nai=NAI, key=KEY, fa_key=FA_KEY, fa_spi=300
    )
    forged = valid + GreKeyExt(0xBAD0BAD).encode()  # appended by someone on the path
    with udp(fa) as s:
        rep = exchange(s, forged, (ha, port))
    assert rep is not None and rep.code == 0
    rows = [d for d in dicts(nodes[0].get("/api/bindings")) if "encap" in d]
    assert rows, "no binding"
    assert all(d.get("gre_key") != 0xBAD0BAD and d["encap"] != "gre" for d in rows), rows


# ------------------------------------------------------------------ 2: nonce replays


def test_replayed_nonce_request_does_not_desynchronise_the_mobile_node(
    tmp_path: Path, nodes: list[Node]
) -> None:
    net = subnet()
    ha, mn, evil = f"{net}.10", f"{net}.30", f"{net}.66"
    port = free_port(ha, socket.SOCK_DGRAM)
    nodes.append(Node(tmp_path, "ha", ha_body(ha, port, replay="nonce")))

    def req(nonce: int, low: int) -> bytes:
        return request(ha_addr=ha, care_of=mn, ident=(nonce << 32) | low, nai=NAI, key=KEY)

    with udp(mn) as m, udp(evil) as e:
        first = exchange(m, req(0, 1), (ha, port))
        assert first is not None and first.code == 133
        accepted = req(first.ident >> 32, 2)
        ok = exchange(m, accepted, (ha, port))
        assert ok is not None and ok.code == 0
        nonce = ok.ident >> 32
        for _ in range(50):  # the attacker replays the accepted request
            e.sendto(accepted, (ha, port))
            time.sleep(0.01)
        answered = replies(e, 1.0)
        assert answered and all(r.code == 133 for r in answered)
        assert {r.ident >> 32 for r in answered} == {nonce}  # the nonce the MN must use
        again = exchange(m, req(nonce, 3), (ha, port))
        assert again is not None and again.code == 0


# ------------------------------------------------------------------ 3: relay tag trust


def test_relay_tag_is_not_trusted_on_the_source_address(tmp_path: Path, nodes: list[Node]) -> None:
    net = subnet()
    ha, slb, victim = f"{net}.10", f"{net}.50", f"{net}.99"
    port = free_port(ha, socket.SOCK_DGRAM)
    trusted = f'trusted_slb = ["{slb}"]'
    chk = check(tmp_path, "ha-nosa", ha_body(ha, port, trusted))
    assert chk.returncode != 0 and "slb_sa" in chk.stderr, chk.stdout + chk.stderr
    body = ha_body(ha, port, trusted).replace(
        "[dataplane]",
        f'[[home_agent.slb_sa]]\naddress = "{slb}"\nspi = 500\nkey = "hex:{SLB_KEY.hex()}"\n'
        "[dataplane]",
    )
    nodes.append(Node(tmp_path, "ha", body))
    with udp(victim) as v, udp(slb) as attacker:
        vport = v.getsockname()[1]
        valid = request(ha_addr=ha, care_of=victim, ident=ident(), nai=NAI, key=KEY)
        attacker.sendto(slbtag.encode(valid, victim, vport), (ha, port))  # plain tag
        attacker.sendto(  # an "authenticated" tag under a key the HA does not share
            slbtag.encode(valid, victim, vport, key=b"x" * 16, spi=500), (ha, port)
        )
        assert replies(v, 1.5) == []
        # a tag under the SLB-HA SA is honoured: the reply goes to the origin it names
        attacker.sendto(slbtag.encode(valid, victim, vport, key=SLB_KEY, spi=500), (ha, port))
        assert [r.code for r in replies(v, 2.0)] == [0]


# ------------------------------------------------------------------ 4: SLB failure accounting


def test_one_source_cannot_fail_the_reals_of_the_slb(tmp_path: Path, nodes: list[Node]) -> None:
    net = subnet()
    ha1, ha2, vip, mn, evil = f"{net}.11", f"{net}.12", f"{net}.50", f"{net}.30", f"{net}.66"
    port = free_port(ha1, socket.SOCK_DGRAM)
    vport = free_port(vip, socket.SOCK_DGRAM)
    for name, addr in (("ha1", ha1), ("ha2", ha2)):
        extra = f'trusted_slb = ["{vip}"]'
        body = ha_body(addr, port, extra).replace(
            "[dataplane]",
            f'[[home_agent.slb_sa]]\naddress = "{vip}"\nspi = 500\nkey = "hex:{SLB_KEY.hex()}"\n'
            "[dataplane]",
        )
        nodes.append(Node(tmp_path, name, body))
    reals = "".join(f'[[slb.real]]\naddress = "{a}"\nport = {port}\n' for a in (ha1, ha2))
    nodes.append(
        Node(
            tmp_path,
            "slb",
            f"""role = "slb"
[slb]
virtual_address = "{vip}"
port = {vport}
mode = "relay"
[slb.relay_sa]
spi = 500
key = "hex:{SLB_KEY.hex()}"
{reals}""",
        )
    )
    bad = request(
        ha_addr=vip, care_of=evil, ident=ident(), nai="nobody@evil.example", key=b"k" * 16
    )
    with udp(evil) as e:
        for _ in range(60):  # one made-up NAI, a wrong key, one source
            e.sendto(bad, (vip, vport))
            time.sleep(0.02)
    with udp(mn) as m:
        for i in range(4):  # new mobile nodes are still served
            good = request(ha_addr=vip, care_of=mn, ident=ident() + i, nai=NAI, key=KEY)
            rep = exchange(m, good, (vip, vport))
            assert rep is not None and rep.code == 0, nodes[2].get("/api/slb")


# ------------------------------------------------------------------ 5, 6, 7: HSRP


def hsrp_ha(addr: str, peer: str, vip: str, port: int, hsrp_port: int, prio: int, auth: str) -> str:
    version = "version = 2\n" if auth.startswith("md5") else ""
    return (
        ha_body(addr, port)
        .replace(
            "[dataplane]",
            f"""[hsrp]
interface = "lo"
group = 7
{version}virtual_ip = "{vip}"
priority = {prio}
preempt = true
hello_ms = 1000
hold_ms = 3000
port = {hsrp_port}
peers = ["{peer}"]
authentication = "{auth}"
[dataplane]""",
        )
        .replace(f'address = "{addr}"\nport', f'address = "{addr}"\nha_address = "{vip}"\nport')
    )


def hsrp_state(n: Node) -> str:
    try:
        v = n.get("/api/standby")
    except OSError:
        return "?"
    groups = v["groups"] if isinstance(v, dict) else v
    return str(groups[0]["state"]).lower()


def test_hsrp_has_no_implicit_password(tmp_path: Path, nodes: list[Node]) -> None:
    net = subnet()
    ha, peer, vip = f"{net}.11", f"{net}.12", f"{net}.100"
    port = free_port(ha, socket.SOCK_DGRAM)
    hport = free_port(ha, socket.SOCK_DGRAM)
    body = hsrp_ha(ha, peer, vip, port, hport, 110, "md5:hsrp-secret")
    chk = check(tmp_path, "noauth", body.replace('authentication = "md5:hsrp-secret"\n', ""))
    assert chk.returncode != 0, chk.stdout + chk.stderr
    assert "md5:<key-string>" in chk.stderr and "text:cisco" in chk.stderr
    n = Node(tmp_path, "ha", body)
    nodes.append(n)
    wait_for(lambda: hsrp_state(n) == "active", 20, "HA active")
    coup = HsrpV1(opcode=1, state=16, priority=255, group=7, vip=vip, auth=text_auth("cisco"))
    hello = HsrpV1(opcode=0, state=16, priority=255, group=7, vip=vip, auth=text_auth("cisco"))
    with udp(peer) as s:
        for _ in range(10):
            s.sendto(coup.encode(), (ha, hport))
            s.sendto(hello.encode(), (ha, hport))
            time.sleep(0.2)
    assert hsrp_state(n) == "active"


def _capture_hello(src: str, dport: int, timeout: float) -> bytes:
    """One HSRP datagram from ``src`` to port ``dport`` sniffed on lo (AF_PACKET)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800)) as raw:
        raw.bind(("lo", 0))
        raw.settimeout(0.5)
        want = socket.inet_aton(src)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                pkt = raw.recv(65535)
            except TimeoutError:
                continue
            ihl = (pkt[0] & 15) * 4
            if pkt[9] == 17 and pkt[12:16] == want:
                (dp,) = struct.unpack_from("!H", pkt, ihl + 2)
                if dp == dport:
                    return pkt[ihl + 8 :]
    raise AssertionError("no Hello captured")


def test_md5_hello_replayed_from_another_address_does_not_block_failover(
    tmp_path: Path, nodes: list[Node]
) -> None:
    net = subnet()
    a_ip, b_ip, vip, evil = f"{net}.11", f"{net}.12", f"{net}.100", f"{net}.66"
    port = free_port(a_ip, socket.SOCK_DGRAM)
    hport = free_port(a_ip, socket.SOCK_DGRAM)
    a = Node(tmp_path, "a", hsrp_ha(a_ip, b_ip, vip, port, hport, 110, "md5:pair-secret"))
    nodes.append(a)
    b = Node(tmp_path, "b", hsrp_ha(b_ip, a_ip, vip, port, hport, 100, "md5:pair-secret"))
    nodes.append(b)
    wait_for(lambda: hsrp_state(a) == "active" and hsrp_state(b) == "standby", 30, "A/B")
    hello = _capture_hello(a_ip, hport, 10)
    a.proc.kill()
    a.proc.wait()
    with udp(evil) as s:
        end = time.monotonic() + 10
        while time.monotonic() < end and hsrp_state(b) != "active":
            s.sendto(hello, (b_ip, hport))
            time.sleep(0.3)
    assert hsrp_state(b) == "active", b.log_text()


def test_hsrp_flaps_leave_one_vip_socket(tmp_path: Path, nodes: list[Node]) -> None:
    net = subnet()
    ha, peer, vip = f"{net}.11", f"{net}.12", f"{net}.100"
    port = free_port(ha, socket.SOCK_DGRAM)
    hport = free_port(ha, socket.SOCK_DGRAM)
    n = Node(tmp_path, "ha", hsrp_ha(ha, peer, vip, port, hport, 110, "text:flaps"))
    nodes.append(n)
    wait_for(lambda: hsrp_state(n) == "active", 20, "HA active")
    auth = text_auth("flaps")
    with udp(peer) as s:
        # the right password: bursts in which priorities 255 and 1 alternate, so that the HA
        # claims and releases the VIP several times before its loop runs anything else
        up = HsrpV1(opcode=1, state=16, priority=255, group=7, vip=vip, auth=auth).encode()
        down = HsrpV1(opcode=0, state=16, priority=1, group=7, vip=vip, auth=auth).encode()
        for _ in range(200):  # 1,000 flaps
            for _ in range(5):
                s.sendto(up, (ha, hport))
                s.sendto(down, (ha, hport))
            time.sleep(0.01)
    wait_for(lambda: hsrp_state(n) == "active", 20, "HA active again")
    time.sleep(1.0)
    assert n.udp_sockets(vip, port) == 1
    with udp(f"{net}.30") as m:
        good = request(ha_addr=vip, care_of=f"{net}.30", ident=ident(), nai=NAI, key=KEY)
        rep = exchange(m, good, (vip, port))
    assert rep is not None and rep.code == 0


# ------------------------------------------------------------------ 8: DFP


def _dfp_reports(s: socket.socket, timeout: float) -> int:
    framer = dfpw.Framer()
    n = 0
    for raw in recv_all_tcp(s, timeout):
        for m in framer.feed(raw):
            if dfpw.decode(m).type == dfpw.PREFERENCE_INFORMATION:
                n += 1
    return n


def recv_all_tcp(s: socket.socket, timeout: float) -> list[bytes]:
    out = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        out.append(data)
    return out


def test_dfp_obeys_only_its_managers_and_bounds_connections(
    tmp_path: Path, nodes: list[Node]
) -> None:
    net = subnet()
    ha, evil = f"{net}.10", f"{net}.66"
    port = free_port(ha, socket.SOCK_DGRAM)
    dport = free_port(ha, socket.SOCK_STREAM)
    dfp = f'[dfp]\nlisten = "{ha}:{dport}"\ninterval_s = 1\n'
    chk = check(tmp_path, "open", ha_body(ha, port) + dfp)
    assert chk.returncode != 0 and "dfp.password" in chk.stderr, chk.stdout + chk.stderr
    n = Node(tmp_path, "ha", ha_body(ha, port) + dfp + 'password = "text:dfp-secret"\n')
    nodes.append(n)
    key = b"dfp-secret"
    with socket.create_connection((ha, dport), 5) as mgr:
        mgr.sendall(dfpw.sign(dfpw.DfpMessage(dfpw.BINDID_REQUEST), key))
        assert _dfp_reports(mgr, 1.5) >= 1
        # a stranger's DFP Parameters (interval 60) must not silence the manager's reports
        with socket.create_connection((ha, dport), 5, source_address=(evil, 0)) as st:
            st.sendall(dfpw.encode(dfpw.dfp_parameters(60)))
            st.settimeout(3.0)
            assert st.recv(65536) == b""  # closed, nothing reported to it
        assert _dfp_reports(mgr, 3.5) >= 2
    base = n.rss_kb()
    stalled = []
    for i in range(300):  # half announce 65,535 bytes, half 4,000 and stall half-way
        size = 65535 if i % 2 else 4000
        try:
            c = socket.create_connection((ha, dport), 5, source_address=(evil, 0))
            c.sendall(struct.pack("!BBHI", 1, 0, 0x0101, size) + bytes(min(size, 2000)))
            stalled.append(c)
        except OSError:
            break
    try:
        time.sleep(1.0)
        assert n.get("/healthz", raw=True)
        assert n.rss_kb() - base < 20_000
        (row,) = n.get("/api/dfp")["agents"]
        # at most max_connections (32) held, each at most one unfinished message
        assert row["dropped"].get("too-long", 0) >= 1
        assert row["dropped"].get("refused-full", 0) >= 300 - 2 * 32
    finally:
        for c in stalled:
            c.close()


# ------------------------------------------------------------------ 9: FA reply source


def test_foreign_agent_takes_replies_only_from_its_home_agent(
    tmp_path: Path, nodes: list[Node]
) -> None:
    net = subnet()
    fa, ha, mn, evil = f"{net}.20", f"{net}.10", f"{net}.30", f"{net}.66"
    fport = free_port(fa, socket.SOCK_DGRAM)
    hport = free_port(ha, socket.SOCK_DGRAM)
    n = Node(
        tmp_path,
        "fa",
        f"""role = "foreign-agent"
[foreign_agent]
address = "{fa}"
port = {fport}
home_agent = "{ha}"
home_agent_port = {hport}
[dataplane]
backend = "memory"
""",
    )
    nodes.append(n)
    with udp(ha, hport) as h, udp(mn) as m, udp(evil) as e:
        m.sendto(
            RegistrationRequest(
                lifetime=600, ha_addr=ha, care_of=fa, ident=ident(), extensions=[NaiExt(NAI)]
            ).encode(),
            (fa, fport),
        )
        h.settimeout(5)
        relayed = RegistrationRequest.decode(h.recv(65535))
        rep = RegistrationReply(
            code=0,
            lifetime=600,
            home_addr="10.77.0.9",
            ha_addr=ha,
            ident=relayed.ident,
            extensions=[NaiExt(NAI)],
        ).encode()
        rep = append_auth(rep, EXT_MN_HA, 256, Authenticator(KEY, "hmac-md5"))
        e.sendto(rep, (fa, fport))  # the on-path attacker answers first
        assert [r.code for r in replies(m, 1.5)] == []
        assert all(d.get("total", 0) == 0 for d in [n.get("/api/visitors")])
        h.sendto(rep, (fa, fport))  # the home agent's answer is relayed
        assert [r.code for r in replies(m, 2.0)] == [0]


# ------------------------------------------------------------------ management API


def test_management_api_needs_its_token(tmp_path: Path, nodes: list[Node]) -> None:
    net = subnet()
    ha = f"{net}.10"
    port = free_port(ha, socket.SOCK_DGRAM)
    body = ha_body(ha, port)
    chk = check(tmp_path, "open", body)
    assert chk.returncode == 0 and "management.token" in chk.stderr  # loopback: a warning
    wide = tmp_path / "wide.toml"
    wide.write_text(f'[node]\nname = "w"\n{body}\n[management]\nlisten = "0.0.0.0:18999"\n')
    r = subprocess.run(
        [*node_command(), "check", str(wide)], capture_output=True, text=True, env=node_env()
    )
    assert r.returncode != 0 and "management.token" in r.stderr, r.stdout + r.stderr
    token = "a-management-token-of-32-chars!!"
    n = Node(tmp_path, "ha", body, token=token)
    nodes.append(n)
    with pytest.raises(urllib.error.HTTPError) as e:
        n.get("/api/bindings", token="x" * 32)
    assert e.value.code == 401
    assert n.get("/api/bindings")["total"] == 0
