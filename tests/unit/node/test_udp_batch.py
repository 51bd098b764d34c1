"""BatchedUdp (node/udp_batch.py): the C path (recvmmsg / sendmmsg through mobileha._slbio)
against the pure-Python path, the reference. Both deliver the same datagrams with the same
sources, send every reply to its own address in order, skip a datagram the kernel refuses,
and keep what would block until the socket is writable. Also the home agent node with
``batch_io`` registers a mobile node like the asyncio transport does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from mobileha.node.udp_batch import C_IO_AVAILABLE, BatchedUdp

PATHS = [False, pytest.param(True, marks=pytest.mark.skipif(not C_IO_AVAILABLE, reason="no C"))]


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    socks = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        socks.append(s)
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


def _server(
    loop: asyncio.AbstractEventLoop, c_io: bool, seen: list[tuple[bytes, tuple[str, int]]]
) -> BatchedUdp:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind(("127.0.0.1", 0))
    t: BatchedUdp

    def deliver(data: bytes, addr: tuple[str, int]) -> None:
        seen.append((data, addr))
        t.sendto(b"re:" + data, addr)

    t = BatchedUdp(loop, sock, deliver, c_io=c_io, batch=16)
    return t


def _exchange(c_io: bool, clients: list[socket.socket], n: int) -> tuple[list, dict, BatchedUdp]:  # type: ignore[type-arg]
    loop = asyncio.new_event_loop()
    seen: list[tuple[bytes, tuple[str, int]]] = []
    try:
        t = _server(loop, c_io, seen)
        dst = t.get_extra_info("sockname")
        for i in range(n):
            clients[i % 3].sendto(b"%d" % i, dst)
        loop.run_until_complete(asyncio.sleep(0.05))
        while len(seen) < n:
            loop.run_until_complete(asyncio.sleep(0.01))
        got = {c.getsockname()[1]: [c.recv(100) for _ in range(len(range(k, n, 3)))]
               for k, c in enumerate(clients)}  # fmt: skip
        t.close()
    finally:
        loop.close()
    return seen, got, t


@pytest.mark.parametrize("c_io", PATHS)
def test_every_datagram_is_delivered_and_answered_in_order(
    c_io: bool, clients: list[socket.socket]
) -> None:
    n = 600
    seen, got, t = _exchange(c_io, clients, n)
    assert t.c_io is c_io
    assert sorted(d for d, _ in seen) == sorted(b"%d" % i for i in range(n))
    for data, addr in seen:
        assert addr[0] == "127.0.0.1"
        k = int(data) % 3
        assert addr[1] == clients[k].getsockname()[1]
    for k, c in enumerate(clients):
        assert got[c.getsockname()[1]] == [b"re:%d" % i for i in range(k, n, 3)]
    assert t.received == n and t.batches < n  # several datagrams per read


def test_the_c_path_delivers_what_the_python_path_delivers(clients: list[socket.socket]) -> None:
    if not C_IO_AVAILABLE:
        pytest.skip("no C")
    py, py_got, _ = _exchange(False, clients, 200)
    c, c_got, _ = _exchange(True, clients, 200)
    assert sorted(d for d, _ in py) == sorted(d for d, _ in c)
    assert list(py_got.values()) == list(c_got.values())


@pytest.mark.parametrize("c_io", PATHS)
def test_a_large_datagram_arrives_whole(c_io: bool, clients: list[socket.socket]) -> None:
    loop = asyncio.new_event_loop()
    seen: list[tuple[bytes, tuple[str, int]]] = []
    try:
        t = _server(loop, c_io, seen)
        big = bytes(range(256)) * 40  # 10,240 bytes: more than a page
        clients[2].sendto(big, t.get_extra_info("sockname"))
        loop.run_until_complete(asyncio.sleep(0.05))
        assert [d for d, _ in seen] == [big]
        t.close()
    finally:
        loop.close()


@pytest.mark.parametrize("c_io", PATHS)
def test_a_refused_datagram_is_counted_and_the_rest_goes(
    c_io: bool, clients: list[socket.socket]
) -> None:
    loop = asyncio.new_event_loop()
    try:
        t = _server(loop, c_io, [])
        errors: list[OSError] = []
        t._on_error = errors.append
        dst = clients[0].getsockname()
        # broadcast without SO_BROADCAST: EACCES for that datagram only
        t._send([(b"a", dst), (b"b", ("255.255.255.255", 9)), (b"c", dst)])
        assert t.send_errors == 1 and len(errors) == 1
        assert [clients[0].recv(10), clients[0].recv(10)] == [b"a", b"c"]
        t.close()
    finally:
        loop.close()


@pytest.mark.parametrize("c_io", PATHS)
def test_what_would_block_waits_for_writability_in_order(
    c_io: bool, clients: list[socket.socket]
) -> None:
    loop = asyncio.new_event_loop()
    try:
        t = _server(loop, c_io, [])
        dst = clients[1].getsockname()
        t._queue([(b"1", dst), (b"2", dst)])  # as if sendmmsg had returned EAGAIN
        t.sendto(b"3", dst)  # behind the queued ones, not before them
        loop.run_until_complete(asyncio.sleep(0.05))
        assert [clients[1].recv(10) for _ in range(3)] == [b"1", b"2", b"3"]
        t.close()
        t.sendto(b"4", dst)  # closed: ignored
    finally:
        loop.close()


@pytest.mark.parametrize("c_io", PATHS)
def test_batch_end_runs_after_each_batch_and_its_sends_leave_with_it(
    c_io: bool, clients: list[socket.socket]
) -> None:
    loop = asyncio.new_event_loop()
    events: list[str] = []
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        t: BatchedUdp

        def deliver(data: bytes, addr: tuple[str, int]) -> None:
            events.append("d")
            t.sendto(data, addr)

        def end() -> None:
            events.append("end")
            t.sendto(b"after", clients[0].getsockname())

        t = BatchedUdp(
            loop, sock, deliver, c_io=c_io, batch_begin=lambda: events.append("begin"),
            batch_end=end,
        )  # fmt: skip
        for i in range(3):
            clients[0].sendto(b"%d" % i, sock.getsockname())
        loop.run_until_complete(asyncio.sleep(0.05))
        assert events == ["begin", "d", "d", "d", "end"]
        assert [clients[0].recv(10) for _ in range(4)] == [b"0", b"1", b"2", b"after"]
        t.close()
    finally:
        loop.close()


@pytest.mark.parametrize("c_io", PATHS)
def test_the_datagrams_chosen_first_are_delivered_first(
    c_io: bool, clients: list[socket.socket]
) -> None:
    loop = asyncio.new_event_loop()
    order: list[bytes] = []
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        t = BatchedUdp(
            loop, sock, lambda d, a: order.append(d), c_io=c_io, first=lambda d: d[:1] == b"s"
        )
        for d in (b"r1", b"s1", b"r2", b"r3", b"s2", b"r4"):
            clients[0].sendto(d, sock.getsockname())
        loop.run_until_complete(asyncio.sleep(0.05))
        # sync messages (first) ahead of the batch's requests; each kind in its own order
        assert order == [b"s1", b"s2", b"r1", b"r2", b"r3", b"r4"]
        assert t.received == 6
        t.close()
    finally:
        loop.close()


@pytest.mark.parametrize("c_io", PATHS)
def test_what_the_first_datagrams_queue_leaves_before_the_others_are_delivered(
    c_io: bool, clients: list[socket.socket]
) -> None:
    """A pair's BU Acks release held replies: they leave before the batch's requests are
    processed; what the requests queue leaves at the batch's end, in order."""
    loop = asyncio.new_event_loop()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        peer = clients[0]
        t: BatchedUdp
        sent_before: list[bytes] = []

        def deliver(data: bytes, addr: tuple[str, int]) -> None:
            if data[:1] == b"s":
                t.sendto(b"released-" + data, addr)
            else:
                if not sent_before:  # the first request: the releases are out already
                    peer.settimeout(0.5)
                    sent_before.extend(peer.recv(64) for _ in range(2))
                t.sendto(b"re-" + data, addr)

        t = BatchedUdp(loop, sock, deliver, c_io=c_io, first=lambda d: d[:1] == b"s")
        for d in (b"r1", b"s1", b"r2", b"s2"):
            peer.sendto(d, sock.getsockname())
        loop.run_until_complete(asyncio.sleep(0.05))
        assert sent_before == [b"released-s1", b"released-s2"]
        assert [peer.recv(64) for _ in range(2)] == [b"re-r1", b"re-r2"]
        t.close()
    finally:
        loop.close()


def test_the_home_agent_node_with_batched_io_registers_a_mobile_node() -> None:
    from mobileha.core.cluster import AgentSpec, Cluster
    from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
    from mobileha.core.security import MobilitySA, SecurityAssociations
    from mobileha.node.home_agent import HomeAgentNode
    from mobileha.wire.auth import ntp_identification
    from mobileha.wire.mip import RegistrationReply
    from tests.helpers.mip import request
    from tests.helpers.net import free_port

    key = bytes(range(16))
    port = free_port("127.0.0.1")
    sas = SecurityAssociations()
    sas.add_mn(MobilitySA(256, key, "hmac-md5", nai="mn1@example.net"))
    core = HomeAgent(HomeAgentSettings("127.0.0.1", port=port, home_prefix="10.64.0.0/16"), sas)
    loop = asyncio.new_event_loop()

    async def run() -> RegistrationReply:
        import time

        cluster = Cluster([AgentSpec(core)], wall_offset=time.time() - loop.time(), now=loop.time())
        node = HomeAgentNode(cluster, name="t", addresses=["127.0.0.1"], batch_io=True)
        await node.start()
        try:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.bind(("127.0.0.1", 0))
            c.setblocking(False)
            rrq = request(
                ha_addr="127.0.0.1", care_of="127.0.0.1", nai="mn1@example.net", key=key,
                spi=256, ident=ntp_identification(time.time(), 1), lifetime=600,
            )  # fmt: skip
            c.sendto(rrq, ("127.0.0.1", port))
            data = await asyncio.wait_for(loop.sock_recv(c, 2048), 2.0)
            c.close()
            return RegistrationReply.decode(data)
        finally:
            await node.stop()

    try:
        reply = loop.run_until_complete(run())
    finally:
        loop.close()
    assert reply.code == 0 and len(core.table) == 1
