"""scapy as an independent HSRP encoder/decoder and as a peer router (sans-IO).

* issue 2: scapy-built v1 (+MD5), v2 (text and MD5) and Advertise packets decode with our codec
  to the same field values, and ours decode with scapy;
* issue 6: a scapy peer with higher priority and preemption (Coup + Active Hello) makes us give
  up Active (we Resign); a lower-priority router claiming Active gets a Coup from us; a Coup
  with the wrong authentication is ignored and counted.
"""

from __future__ import annotations

import random

import pytest

scapy_hsrp = pytest.importorskip("scapy.layers.hsrp")
from scapy.layers.hsrp import (  # noqa: E402
    HSRP,
    HSRPAdvertise,
    HSRPmd5,
    HSRPv2,
    HSRPv2TextAuth,
)
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.packet import Raw, raw  # noqa: E402

from mobileha.core.actions import ClaimVip, ReleaseVip, Send  # noqa: E402
from mobileha.core.hsrp import HsrpConfig, HsrpGroup, State  # noqa: E402
from mobileha.wire import hsrp as w  # noqa: E402

HSRP_DST = ("224.0.0.2", 1985)  # the Hellos' destination (receivers do not check it)

ME, PEER_HI, PEER_LO, VIP = "10.0.0.5", "10.0.0.9", "10.0.0.3", "10.0.0.1"
MAC = "02:00:00:00:00:09"


def _scapy_parse(payload: bytes, version: int) -> object:
    """Let scapy dissect our payload the way it would off the wire (IP/UDP 1985)."""
    dst = w.MCAST_V1 if version == 1 else w.MCAST_V2
    pkt = IP(raw(IP(src=ME, dst=dst, ttl=1) / UDP(sport=1985, dport=1985) / Raw(payload)))
    return pkt[UDP].payload


# ------------------------------------------------------------------ codec both directions
def test_scapy_v1_decodes_with_ours() -> None:
    p = HSRP(opcode=1, state=8, hellotime=2, holdtime=7, priority=150, group=42,
             auth=b"secret\0\0", virtualIP="192.0.2.1")  # fmt: skip
    m = w.decode(raw(p))
    assert m == w.HsrpV1(w.OP_COUP, w.STANDBY, 2, 7, 150, 42, "192.0.2.1", b"secret\0\0")


def test_scapy_v1_md5_decodes_with_ours() -> None:
    p = HSRP(priority=99, group=3, virtualIP="192.0.2.3", auth=b"\0" * 8) / HSRPmd5(
        sourceip="192.0.2.10", keyid=77, authdigest=b"\x11" * 16
    )
    m = w.decode(raw(p))
    assert isinstance(m, w.HsrpV1) and m.md5 is not None
    assert (m.priority, m.group, m.vip) == (99, 3, "192.0.2.3")
    assert (m.md5.ip, m.md5.key_id, m.md5.digest, m.md5.algorithm) == (
        "192.0.2.10", 77, b"\x11" * 16, 1)  # fmt: skip


def test_scapy_advertise_decodes_with_ours() -> None:
    p = HSRPAdvertise(state=2, activegroups=5, passivegroups=6)
    assert w.decode(raw(p)) == w.HsrpAdvertise(state=2, active_groups=5, passive_groups=6)
    back = HSRP(w.HsrpAdvertise(state=1, active_groups=9).encode())
    assert isinstance(back, HSRPAdvertise) and back.activegroups == 9 and back.state == 1


def test_scapy_v2_decodes_with_ours() -> None:
    # scapy's HSRPv2 defaults are v1-style (state 16, zero identifier): set them explicitly
    p = HSRPv2(opcode=0, state=6, ipVer=4, group=0x123, identifier=MAC, priority=4242,
               hellotime=100, holdtime=300, virtualIP="198.51.100.7") / HSRPv2TextAuth(
        auth=b"pw\0\0\0\0\0\0")  # fmt: skip
    m = w.decode(raw(p))
    assert isinstance(m, w.HsrpV2)
    gs, ta = m.group_state, m.text_auth
    assert gs == w.GroupStateTlv(
        0, 6, 0x123, bytes.fromhex(MAC.replace(":", "")), 4242, 100, 300, "198.51.100.7"
    )
    assert ta == w.TextAuthTlv(b"pw\0\0\0\0\0\0")


def test_scapy_v2_md5_decodes_with_ours() -> None:
    p = HSRPv2(state=5, ipVer=4, group=7, identifier=MAC, virtualIP="198.51.100.8") / HSRPmd5(
        sourceip="198.51.100.2", keyid=1, authdigest=b"\x22" * 16
    )
    m = w.decode(raw(p))
    assert isinstance(m, w.HsrpV2) and m.md5 is not None and m.group_state is not None
    assert m.group_state.state == 5 and m.md5.ip == "198.51.100.2"


@pytest.mark.parametrize("md5", [False, True])
def test_our_v1_decodes_with_scapy(md5: bool) -> None:
    g = HsrpGroup(HsrpConfig(address=ME, group=9, vip=VIP, priority=120,
                             md5_key=b"k" if md5 else None, md5_key_id=4))  # fmt: skip
    p = _scapy_parse(g.encode(w.OP_HELLO, State.ACTIVE), 1)
    assert isinstance(p, HSRP)
    assert (p.version, p.opcode, p.state, p.hellotime, p.holdtime) == (0, 0, 16, 3, 10)
    assert (p.priority, p.group, p.virtualIP) == (120, 9, VIP)
    if md5:
        m5 = p[HSRPmd5]
        assert (m5.type, m5.len, m5.algo, m5.sourceip, m5.keyid) == (4, 28, 1, ME, 4)
        assert len(m5.authdigest) == 16 and m5.authdigest != bytes(16)
    else:
        assert p.auth == b"cisco\0\0\0"


@pytest.mark.parametrize("md5", [False, True])
def test_our_v2_decodes_with_scapy(md5: bool) -> None:
    g = HsrpGroup(HsrpConfig(address=ME, group=1000, version=2, vip=VIP, priority=130,
                             hello_ms=250, hold_ms=900, identifier=bytes.fromhex("020000000009"),
                             md5_key=b"k" if md5 else None))  # fmt: skip
    p = _scapy_parse(g.encode(w.OP_COUP, State.STANDBY), 2)
    assert isinstance(p, HSRPv2)
    assert (p.type, p.len, p.version, p.opcode, p.state, p.ipVer) == (1, 40, 2, 1, 5, 4)
    assert (p.group, p.identifier, p.priority) == (1000, MAC, 130)
    assert (p.hellotime, p.holdtime, p.virtualIP) == (250, 900, VIP)
    if md5:
        assert p[HSRPmd5].sourceip == ME
    else:
        assert p[HSRPv2TextAuth].auth == b"cisco\0\0\0"


# ------------------------------------------------------------------ scapy as a peer router
def _active_group(version: int, **kw: object) -> tuple[HsrpGroup, float]:
    g = HsrpGroup(
        HsrpConfig(address=ME, group=1, version=version, vip=VIP, priority=100,
                   hello_ms=1000, hold_ms=3000, jitter=0.0, **kw),  # type: ignore[arg-type]
        rng=random.Random(0),
    )  # fmt: skip
    now = 0.0
    g.start(now)
    while g.state is not State.ACTIVE:  # alone on the LAN: Listen, Speak, Standby, Active
        now = g.get_timer() or now + 1
        g.handle_timer(now)
    return g, now


def _scapy_msg(version: int, opcode: int, state: State, prio: int, auth: bytes = b"cisco") -> bytes:
    auth = auth.ljust(8, b"\0")
    if version == 1:
        return raw(HSRP(opcode=opcode, state=int(state), hellotime=1, holdtime=3,
                        priority=prio, group=1, auth=auth, virtualIP=VIP))  # fmt: skip
    return raw(
        HSRPv2(opcode=opcode, state=w.V1_TO_V2_STATE[int(state)], ipVer=4, group=1,
               identifier=MAC, priority=prio, hellotime=1000, holdtime=3000, virtualIP=VIP)
        / HSRPv2TextAuth(auth=auth)
    )  # fmt: skip


def _sent(out: list[object], version: int) -> list[object]:
    return [_scapy_parse(a.payload, version) for a in out if isinstance(a, Send)]


@pytest.mark.parametrize("version", [1, 2])
def test_higher_priority_peer_with_preemption_takes_active_from_us(version: int) -> None:
    g, now = _active_group(version)
    # a preempting router sends a Coup, then Hellos as Active (RFC 2281 action BGFI)
    out = g.receive_datagram(
        _scapy_msg(version, w.OP_COUP, State.ACTIVE, 200), (PEER_HI, 1985), HSRP_DST, now + 0.1
    )
    assert g.state is State.SPEAK
    assert ReleaseVip(VIP) in out
    [resign] = _sent(out, version)
    assert resign.opcode == 2  # we Resign (action H)
    out = g.receive_datagram(
        _scapy_msg(version, w.OP_HELLO, State.ACTIVE, 200), (PEER_HI, 1985), HSRP_DST, now + 0.2
    )
    assert g.state is State.SPEAK and g.snapshot(now)["active_router"] == PEER_HI


@pytest.mark.parametrize("version", [1, 2])
def test_higher_priority_active_hello_alone_makes_us_step_down(version: int) -> None:
    g, now = _active_group(version)
    out = g.receive_datagram(
        _scapy_msg(version, w.OP_HELLO, State.ACTIVE, 200), (PEER_HI, 1985), HSRP_DST, now + 0.1
    )
    assert g.state is State.SPEAK and ReleaseVip(VIP) in out  # event g in Active: AB/Speak


@pytest.mark.parametrize("version", [1, 2])
def test_lower_priority_router_claiming_active_gets_a_coup(version: int) -> None:
    g, now = _active_group(version)
    out = g.receive_datagram(
        _scapy_msg(version, w.OP_HELLO, State.ACTIVE, 50), (PEER_LO, 1985), HSRP_DST, now + 0.1
    )
    assert g.state is State.ACTIVE
    [coup] = _sent(out, version)
    assert coup.opcode == 1 and coup.priority == 100
    assert coup.state == (16 if version == 1 else 6)
    assert ClaimVip(VIP) not in out


@pytest.mark.parametrize("version", [1, 2])
def test_coup_with_wrong_authentication_is_ignored_and_counted(version: int) -> None:
    g, now = _active_group(version)
    out = g.receive_datagram(
        _scapy_msg(version, w.OP_COUP, State.ACTIVE, 200, b"wrong"), (PEER_HI, 1985), HSRP_DST, now
    )
    assert out == [] and g.state is State.ACTIVE
    assert g.auth_failures == 1 and g.snapshot(now)["auth_failures"] == 1


@pytest.mark.parametrize("version", [1, 2])
def test_md5_group_ignores_scapy_coup_with_bad_digest(version: int) -> None:
    g, now = _active_group(version, md5_key=b"right", md5_key_id=0)
    if version == 1:
        bad = HSRP(opcode=1, state=16, priority=200, group=1, auth=b"\0" * 8, virtualIP=VIP)
    else:
        bad = HSRPv2(opcode=1, state=6, ipVer=4, group=1, identifier=MAC, priority=200,
                     virtualIP=VIP)  # fmt: skip
    raw_bad = raw(bad / HSRPmd5(sourceip=PEER_HI, keyid=0, authdigest=b"\x01" * 16))
    assert (
        g.receive_datagram(raw_bad, (PEER_HI, 1985), HSRP_DST, now) == [] and g.auth_failures == 1
    )
    good = w.md5_sign(raw_bad, b"right")  # the same Coup with the right [P] digest
    g.receive_datagram(good, (PEER_HI, 1985), HSRP_DST, now)
    assert g.state is State.SPEAK
