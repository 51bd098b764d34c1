"""The optional C module mobileha._slbio against the SLB's Python reader and senders (the
reference): the same datagrams give the same (data, (address, port), NAI, Identification)
tuples, send_all sends in order and reports what would block, and send_relay /
send_directed send the bytes the node's Python path makes."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.node import slb as nslb
from mobileha.wire import slbtag
from mobileha.wire.ip import UdpDatagramEncoder, build_udp_datagram

pytestmark = pytest.mark.skipif(nslb._slbio is None, reason="mobileha._slbio is not built")

BUF = 4097  # max_datagram 4096 + 1, as the node asks


def _rrq(nai: bytes, ident: int, nai_len: int | None = None) -> bytes:
    head = struct.pack("!BBH4s4s4sQ", 1, 0, 1800, bytes(4), bytes(4), bytes(4), ident)
    return head + bytes([131, len(nai) if nai_len is None else nai_len]) + nai


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        yield rx, tx
    finally:
        rx.close()
        tx.close()


def _node() -> nslb.SlbNode:
    return nslb.SlbNode(nslb.SlbSettings(virtual_address="127.0.0.1", reals=[], fastpath=False))


def _both(rx: socket.socket, tx: socket.socket, dgrams: list[bytes]) -> tuple[list, list]:  # type: ignore[type-arg]
    """What the C reader and the Python reader return for ``dgrams`` (sent twice)."""
    for d in dgrams:
        tx.sendto(d, rx.getsockname())
    c = nslb._slbio.recv_requests(rx.fileno(), 256, BUF)
    for d in dgrams:
        tx.sendto(d, rx.getsockname())
    p = _node()._recv_python(rx, BUF)
    return c, p


CASES = [
    _rrq(b"mn1@example.net", 1),
    _rrq(b"mn2@example.net", 2**64 - 1),
    _rrq(b"\xc3\xa9l\xc3\xa8ve@example.net", 3),  # UTF-8
    _rrq(b"\xff\xfe@bad", 4),  # not UTF-8: no NAI
    _rrq(b"", 5),  # empty NAI
    _rrq(b"short", 6, nai_len=40),  # length beyond the datagram
    _rrq(b"x" * 255, 7),
    b"\x03" + _rrq(b"reply@x", 8)[1:],  # not a request
    _rrq(b"a@b", 9)[:24],  # no extension
    _rrq(b"a@b", 9)[:20],  # shorter than the fixed part
    b"",
    b"\x01",
    _rrq(b"big@x", 10) + bytes(5000),  # oversized: truncated to BUF
    struct.pack("!BBH4s4s4sQ", 1, 0, 1, bytes(4), bytes(4), bytes(4), 11)
    + bytes([32, 4, 0, 0, 1, 0])  # first extension not the NAI
    + bytes([131, 3])
    + b"n@x",
]


def test_reader_matches_the_python_reader(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    c, p = _both(rx, tx, CASES)
    assert len(c) == len(CASES)
    assert c == p
    src = tx.getsockname()
    assert [t[1] for t in c] == [src] * len(CASES)
    assert c[0][2:] == ("mn1@example.net", 1)
    assert c[1][3] == 2**64 - 1
    assert c[2][2] == "élève@example.net"
    assert [t[2] for t in c[3:6]] == [None, None, None]
    assert len(c[12][0]) == BUF


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=20))
def test_reader_matches_on_random_datagrams(dgrams: list[bytes]) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        # mostly request-shaped: a random tail after a valid-looking head
        dgrams = [_rrq(b"", 1)[:24] + d if i % 2 else d for i, d in enumerate(dgrams)]
        c, p = _both(rx, tx, dgrams)
        assert c == p
    finally:
        rx.close()
        tx.close()


@settings(max_examples=2000, deadline=None)
@given(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.binary(max_size=600),
)
def test_ipv4_udp_matches_the_python_encoders(
    a: tuple[int, int, int, int], sport: int, dport: int, payload: bytes
) -> None:
    src = ".".join(map(str, a))
    args = (src, sport, "192.0.2.7", dport, payload)
    want = build_udp_datagram(*args)
    assert nslb._slbio.ipv4_udp(*args) == want == UdpDatagramEncoder()(*args)


def test_ipv4_udp_checksums_verify_with_scapy() -> None:
    scapy = pytest.importorskip("scapy.all")
    pkt = nslb._slbio.ipv4_udp("10.1.2.3", 434, "10.9.8.7", 434, _rrq(b"mn@x", 5))
    ip = scapy.IP(pkt)
    got_ip, got_udp = ip.chksum, ip[scapy.UDP].chksum
    del ip.chksum
    del ip[scapy.UDP].chksum
    again = scapy.IP(bytes(ip))
    assert (got_ip, got_udp) == (again.chksum, again[scapy.UDP].chksum)
    with pytest.raises(ValueError):
        nslb._slbio.ipv4_udp("10.1.2", 434, "10.9.8.7", 434, b"")
    with pytest.raises(ValueError):
        nslb._slbio.ipv4_udp("10.1.2.3", 70000, "10.9.8.7", 434, b"")


def test_empty_queue_and_bad_arguments(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, _ = pair
    io = nslb._slbio
    assert io.recv_requests(rx.fileno(), 16, BUF) == []
    with pytest.raises(ValueError):
        io.recv_requests(rx.fileno(), 0, BUF)
    with pytest.raises(ValueError):
        io.recv_requests(rx.fileno(), 16, 0)
    with pytest.raises(OSError):
        io.recv_requests(-1, 16, BUF)
    with pytest.raises(TypeError):
        io.send_all(rx.fileno(), ["not bytes"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        io.send_all(rx.fileno(), [], 1)


def test_send_all_in_order_and_stops_when_full(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    tx.connect(rx.getsockname())
    io = nslb._slbio
    msgs = [f"m{i}".encode() for i in range(150)]  # more than one sendmmsg chunk of 64
    assert io.send_all(tx.fileno(), msgs) == 150
    got = [rx.recv(100) for _ in range(150)]
    assert got == msgs
    assert io.send_all(tx.fileno(), msgs, 149) == 1 and rx.recv(100) == b"m149"
    # a full queue (a UNIX datagram pair blocks the sender where UDP on loopback would
    # drop): the count stops short, the rest would block
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.setblocking(False)
        sent = io.send_all(a.fileno(), [bytes(1000)] * 5000)
        assert 0 < sent < 5000
        assert io.send_all(a.fileno(), [b"x"]) == 0
        assert b.recv(2000) == bytes(1000)
    finally:
        a.close()
        b.close()


def test_reader_with_changing_batch_and_buffer_sizes(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The headers are laid out once per (max_n, bufsize): changing either is safe."""
    rx, tx = pair
    io = nslb._slbio
    msgs = [_rrq(f"mn{i}@x".encode(), i) for i in range(10)]
    for d in msgs:
        tx.sendto(d, rx.getsockname())
    got = io.recv_requests(rx.fileno(), 3, BUF)
    got += io.recv_requests(rx.fileno(), 3, 30)  # truncated to 30 bytes
    got += io.recv_requests(rx.fileno(), 256, BUF)
    # the truncated ones lost the end of their NAI: no NAI
    assert [t[2] for t in got] == [None if 3 <= i < 6 else f"mn{i}@x" for i in range(10)]
    assert [t[3] for t in got] == list(range(10))
    assert [len(t[0]) for t in got] == [
        len(d) if not 3 <= i < 6 else 30 for i, d in enumerate(msgs)
    ]
    assert {t[1] for t in got} == {tx.getsockname()}


def _items(payloads: list[bytes], srcs: list[tuple[str, int]]) -> list[nslb.Received]:
    return [(p, s, None, 0) for p, s in zip(payloads, srcs, strict=True)]


def _sent(rx: socket.socket, n: int) -> list[bytes]:
    return [rx.recv(70000) for _ in range(n)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(max_size=300),
            st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
            st.integers(0, 65535),
        ),
        min_size=1,
        max_size=80,  # more than one sendmmsg chunk of 64
    ),
    st.integers(0, 2**32 - 1),
)
def test_send_relay_sends_what_the_python_path_makes(
    reqs: list[tuple[bytes, tuple[int, int, int], int]], vendor_id: int
) -> None:
    """send_relay puts the same plain tag behind each datagram as the node's Python path
    (_packets: payload + the slbtag encoder's tag), and a real decodes it back."""
    node = nslb.SlbNode(
        nslb.SlbSettings(
            virtual_address="127.0.0.1", reals=[], mode="relay", relay_vendor_id=vendor_id
        )
    )
    items = _items(
        [p for p, _, _ in reqs], [(f"10.{a}.{b}.{c}", port) for _, (a, b, c), port in reqs]
    )
    real = nslb.Real("127.0.0.1", 434)
    want = node._packets(real, items)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.connect(rx.getsockname())
        assert nslb._slbio.send_relay(tx.fileno(), items, node._tag_head) == len(items)
        got = _sent(rx, len(items))
        assert got == want
        for (payload, src, _, _), dgram in zip(items, got, strict=True):
            assert slbtag.decode(dgram, vendor_id=vendor_id) == (*src, payload)
        assert nslb._slbio.send_relay(tx.fileno(), items, node._tag_head, len(items) - 1) == 1
        assert rx.recv(70000) == want[-1]
    finally:
        rx.close()
        tx.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="directed mode needs a raw socket")
@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=300), st.integers(1, 255), st.integers(0, 65535)),
        min_size=1,
        max_size=80,
    ),
    st.integers(1, 65535),
)
def test_send_directed_sends_what_the_python_path_makes(
    reqs: list[tuple[bytes, int, int]], dport: int
) -> None:
    """send_directed sends the IPv4/UDP datagrams the node's Python path makes (the
    reference encoder), read back whole on a raw socket."""
    node = nslb.SlbNode(nslb.SlbSettings(virtual_address="127.0.0.1", reals=[], mode="directed"))
    items = _items([p for p, _, _ in reqs], [(f"127.9.9.{a}", port) for _, a, port in reqs])
    real = nslb.Real("127.0.0.1", dport)
    want = node._packets(real, items)
    assert want == [build_udp_datagram(s[0], s[1], "127.0.0.1", dport, p) for p, s, _, _ in items]
    sniff = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    sniff.settimeout(2.0)
    sniff.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        tx.connect(("127.0.0.1", 0))
        assert nslb._slbio.send_directed(tx.fileno(), items, "127.0.0.1", dport) == len(items)
        got: list[bytes] = []
        while len(got) < len(items):
            d = sniff.recv(70000)
            if d[12:15] == b"\x7f\x09\x09":  # ours (127.9.9.x)
                got.append(d)
        # the kernel fills the IP identification of a datagram sent with ID 0, and its
        # checksum with it: compare the rest, and the UDP part whole
        strip = [(d[:4] + d[8:10] + d[12:20], d[20:]) for d in got]
        assert strip == [(d[:4] + d[8:10] + d[12:20], d[20:]) for d in want]
    finally:
        sniff.close()
        tx.close()


def test_send_relay_and_directed_bad_arguments(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, _ = pair
    io = nslb._slbio
    head = slbtag.plain_head()
    with pytest.raises(ValueError):
        io.send_relay(rx.fileno(), [], b"short")
    with pytest.raises(TypeError):
        io.send_relay(rx.fileno(), [(b"x",)], head)  # type: ignore[list-item]
    with pytest.raises(ValueError):
        io.send_relay(rx.fileno(), [(b"x", ("not-an-address", 1), None, 0)], head)
    with pytest.raises(ValueError):
        io.send_directed(rx.fileno(), [], "10.1.2", 434)
    with pytest.raises(ValueError):
        io.send_directed(rx.fileno(), [(bytes(65508), ("10.0.0.1", 1), None, 0)], "10.0.0.2", 1)
