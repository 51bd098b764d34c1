"""ICMP errors from inside our tunnels relayed to the original sender (RFC 5944 §4.4 via
RFC 2003 §4 / RFC 2004 §4), sans-IO: the type mapping, the MTU of Fragmentation Needed
less the tunnel header, what is never relayed, and the rate limits."""

from __future__ import annotations

import pytest

from mobileha.core.tunnel_icmp import TunnelIcmpRelay, relayed_type
from mobileha.wire import icmp as icmp_wire
from mobileha.wire.icmp import IcmpError, decode_quoted
from mobileha.wire.ip import (
    IPv4Header,
    build_udp_datagram,
    encap_gre,
    encap_ipip,
    encap_minimal,
    encode_ipv4,
)

HA, COA, CN, HOA = "10.2.0.2", "10.3.0.2", "10.1.0.2", "10.99.0.5"
ROUTER = "10.7.0.1"


def inner() -> bytes:
    return build_udp_datagram(CN, 5000, HOA, 9999, b"x" * 40)


def error(outer: bytes, icmp_type: int, code: int, mtu: int = 0, quote: int = 576) -> bytes:
    rest = b"\x00\x00" + mtu.to_bytes(2, "big")
    return IcmpError(icmp_type, code, outer[:quote], rest).encode()


def relay(**kw: object) -> TunnelIcmpRelay:
    return TunnelIcmpRelay(lambda o, i: o.src == HA and o.dst == COA and i.dst == HOA, **kw)  # type: ignore[arg-type]


def test_mapping_table() -> None:
    D = icmp_wire.DEST_UNREACHABLE
    assert relayed_type(D, icmp_wire.UNREACH_NET) == (D, icmp_wire.UNREACH_NET)
    assert relayed_type(D, icmp_wire.UNREACH_HOST) == (D, icmp_wire.UNREACH_HOST)
    assert relayed_type(D, icmp_wire.UNREACH_PROTOCOL) == (D, icmp_wire.UNREACH_HOST)
    assert relayed_type(D, icmp_wire.UNREACH_PORT) is None
    assert relayed_type(D, icmp_wire.UNREACH_SRCFAIL) is None
    assert relayed_type(icmp_wire.TIME_EXCEEDED, 0) == (D, icmp_wire.UNREACH_HOST)
    assert relayed_type(icmp_wire.SOURCE_QUENCH, 0) is None
    assert relayed_type(icmp_wire.PARAMETER_PROBLEM, 0) is None


@pytest.mark.parametrize(
    ("outer", "overhead"),
    [
        (encap_ipip(inner(), HA, COA), 20),
        (encap_gre(inner(), HA, COA, key=7), 28),
        (encap_minimal(inner(), HA, COA), 12),
    ],
    ids=["ipip", "gre-key", "minimal"],
)
def test_host_unreachable_and_frag_needed_relayed_to_the_sender(
    outer: bytes, overhead: int
) -> None:
    r = relay()
    (out,) = r.receive(error(outer, icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_HOST), 0.0)
    assert out.dst == CN
    err = IcmpError.decode(out.payload)
    assert (err.icmp_type, err.code) == (icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_HOST)
    h, payload = decode_quoted(err.quoted)
    assert (h.src, h.dst, h.proto) == (CN, HOA, 17) and len(payload) == 8
    (out,) = r.receive(
        error(outer, icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_NEEDFRAG, mtu=1400), 0.1
    )
    assert IcmpError.decode(out.payload).next_hop_mtu == 1400 - overhead
    assert r.stats.relayed == 2


def test_not_relayed() -> None:
    r = relay()
    outer = encap_ipip(inner(), HA, COA)
    assert r.receive(error(outer, icmp_wire.DEST_UNREACHABLE, icmp_wire.UNREACH_PORT), 0) == []
    other = encap_ipip(inner(), HA, "10.3.0.99")  # not a tunnel of ours
    assert r.receive(error(other, icmp_wire.DEST_UNREACHABLE, 1), 0) == []
    # an RFC 792 router quotes 8 bytes past the outer header: not enough for the inner one
    assert r.receive(error(outer, icmp_wire.DEST_UNREACHABLE, 1, quote=28), 0) == []
    # not a tunnel packet at all
    plain = inner()
    assert r.receive(error(plain, icmp_wire.DEST_UNREACHABLE, 1), 0) == []
    # about an ICMP error (never an error about an error)
    icmp_err = encode_ipv4(IPv4Header(CN, HOA, 1, 28)) + bytes([3, 1]) + bytes(6)
    assert r.receive(error(encap_ipip(icmp_err, HA, COA), icmp_wire.DEST_UNREACHABLE, 1), 0) == []
    assert r.stats.relayed == 0
    assert {"type-3-3", "not-ours", "short-quote", "not-tunnel", "about-an-icmp-error"} <= set(
        r.stats.not_relayed
    )


def test_rate_limited_per_destination() -> None:
    r = relay(burst=3, per_destination=1.0)
    e = error(encap_ipip(inner(), HA, COA), icmp_wire.DEST_UNREACHABLE, 1)
    sent = sum(len(r.receive(e, 0.0)) for _ in range(10))
    assert sent == 3 and r.stats.rate_limited == 7
    assert len(r.receive(e, 1.0)) == 1  # one token a second
    assert r.receive(e, 1.1) == []
