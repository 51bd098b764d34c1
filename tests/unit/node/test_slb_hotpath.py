"""The SLB hot paths added for speed (issue 5 bench): the session FIFO of core/slb and the
batched socket reader of node/slb keep the exact behaviour of the general paths."""

from __future__ import annotations

import asyncio
import gc
import socket
from typing import Any

import pytest

from mobileha.core.slb import ServerFarm
from mobileha.node import slb as nslb
from mobileha.wire import slbtag
from tests.helpers import farm_request, request


def farm(session_s: float = 10.0) -> ServerFarm:
    f = ServerFarm("ios-wrr", session_s=session_s, reassign=10**9)
    for a in ("A", "B"):
        f.add_real(a, weight=1)
    return f


def test_fifo_session_expires_exactly_at_its_deadline() -> None:
    f = farm()
    farm_request(f, "n1", 1, "c", 0.25)
    farm_request(f, "n2", 1, "c", 0.5)
    assert f.get_timer() == pytest.approx(10.25)
    f.handle_timer(10.24)
    assert set(f.sessions) == {"n1", "n2"}
    f.handle_timer(10.25)
    assert set(f.sessions) == {"n2"}
    assert f.get_timer() == pytest.approx(10.5)
    f.handle_timer(10.5)
    assert not f.sessions and f.get_timer() is None
    assert f.counters["expired"] == 2 and all(r.conns == 0 for r in f.reals)


def test_touched_session_moves_to_the_heap_and_expires_late() -> None:
    f = farm()
    farm_request(f, "n1", 1, "c", 0.0)
    farm_request(f, "n2", 1, "c", 1.0)
    farm_request(f, "n1", 2, "c", 5.0)  # touched: expires at 15
    f.handle_timer(10.0)  # n1's FIFO entry surfaces, is re-queued on the heap, does not fire
    assert set(f.sessions) == {"n1", "n2"}
    assert f.get_timer() == pytest.approx(11.0)
    f.handle_timer(11.0)
    assert set(f.sessions) == {"n1"}
    assert f.get_timer() == pytest.approx(15.0)
    f.handle_timer(15.0)
    assert not f.sessions


def test_clock_going_backwards_keeps_expiry_exact() -> None:
    f = farm()
    farm_request(f, "late", 1, "c", 5.0)
    farm_request(f, "early", 1, "c", 2.0)  # not FIFO order any more: goes to the heap
    assert f.get_timer() == pytest.approx(12.0)
    f.handle_timer(12.0)
    assert set(f.sessions) == {"late"}
    f.handle_timer(15.0)
    assert not f.sessions


def test_expiry_budget_spans_fifo_and_heap() -> None:
    f = farm(session_s=1.0)
    for i in range(30):
        farm_request(f, f"n{i}", 1, "c", i * 0.01)
    farm_request(f, "n0", 2, "c", 0.5)  # touched
    assert f.handle_timer(5.0, budget=10) is True
    while f.handle_timer(5.0, budget=10):
        pass
    assert not f.sessions and all(r.conns == 0 for r in f.reals)


def test_repeat_decisions_are_cached_but_correct() -> None:
    f = farm()
    d1 = farm_request(f, "n1", 1, "c", 0.0)
    d2 = farm_request(f, "n1", 1, "c", 1.0)
    d3 = farm_request(f, "n1", 1, "c", 2.0)
    assert d1.new_session and not d1.retransmission
    assert d2.retransmission and not d2.new_session and d2.real is d1.real
    assert d3 == d2
    assert f.counters["retransmissions"] == 2
    assert f.sessions["n1"].retrans_total == 2


# ---------------------------------------------------------------------------- node reader


def _rrq(nai: str, ident: int) -> bytes:
    return request(ha_addr="0.0.0.0", ident=ident, nai=nai)


FASTPATHS = [
    pytest.param(False, id="python-io"),
    pytest.param(
        True,
        id="slbio",
        marks=pytest.mark.skipif(nslb._slbio is None, reason="mobileha._slbio is not built"),
    ),
]


def _relay_node(fastpath: bool) -> tuple[socket.socket, socket.socket, nslb.SlbNode]:
    """A real HA stand-in socket, an FA socket and a relay SLB (not started) in front of it."""
    be = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    be.bind(("127.0.0.1", 0))
    fa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fa.bind(("127.0.0.1", 0))
    node = nslb.SlbNode(
        nslb.SlbSettings(
            virtual_address="127.0.0.1",
            port=0,
            mode="relay",
            reals=[nslb.SlbRealSpec("127.0.0.1", be.getsockname()[1])],
            fastpath=fastpath,
        )
    )
    return be, fa, node


class _Flaky:
    """Makes the node's relay sends report EAGAIN ``fail`` times (the first ones), on the
    Python path (``send``) and on the C one (``send_all`` / ``send_relay`` returning 0)."""

    def __init__(self, node: nslb.SlbNode, fail: int) -> None:
        self.fail = fail
        connect = node._connect
        fast = node._fast
        if fast is not None:
            flaky = self

            class FlakyFast:
                recv_requests = staticmethod(fast.recv_requests)
                ipv4_udp = staticmethod(fast.ipv4_udp)

                @staticmethod
                def send_all(fd: int, pkts: list[bytes], start: int = 0) -> int:
                    if flaky.fail:
                        flaky.fail -= 1
                        return 0
                    return int(fast.send_all(fd, pkts, start))

                @staticmethod
                def send_relay(fd: int, items: list[Any], head: bytes, start: int = 0) -> int:
                    if flaky.fail:
                        flaky.fail -= 1
                        return 0
                    return int(fast.send_relay(fd, items, head, start))

            node._fast = FlakyFast()

        def flaky_connect(dst: tuple[str, int]) -> Any:
            send = connect(dst)

            def tx(data: bytes) -> int:
                if self.fail:
                    self.fail -= 1
                    raise BlockingIOError
                return send(data)

            node._tx[dst] = tx
            return tx

        node._connect = flaky_connect  # type: ignore[method-assign]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fastpath", FASTPATHS)
@pytest.mark.parametrize(("fail", "max_pending", "want"), [(3, 100, 5), (10**9, 2, 0)])
def test_send_that_would_block_is_queued_in_order(
    monkeypatch: pytest.MonkeyPatch, fail: int, max_pending: int, want: int, fastpath: bool
) -> None:
    monkeypatch.setattr(nslb, "MAX_PENDING", max_pending)

    async def main() -> None:
        be, fa, node = _relay_node(fastpath)
        be.setblocking(False)
        await node.start()
        try:
            _Flaky(node, fail)
            for i in range(5):
                fa.sendto(_rrq(f"mn{i}@x", i), node.address)
            got: list[str] = []
            loop = asyncio.get_running_loop()
            while len(got) < want:
                data = await asyncio.wait_for(loop.sock_recv(be, 4096), 3.0)
                oa, op, req = slbtag.decode(data)
                assert (oa, op) == fa.getsockname()
                got.append(req[26:].decode())
            if not want:  # nothing leaves while every send would block
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(loop.sock_recv(be, 4096), 0.5)
            assert got == [f"mn{i}@x" for i in range(want)]
            assert node.counters["received"] == 5
            if want:
                assert node.counters["forwarded"] == 5 and node.counters["dropped"] == 0
            else:  # 2 queued (counted as forwarded, like a transport's buffer), 3 dropped
                assert node.counters["forwarded"] == 2 and node.counters["dropped"] == 3
                assert node.bad.totals["send-busy"] == 3
        finally:
            await node.stop()
            be.close()
            fa.close()

    asyncio.run(main())


@pytest.mark.timeout(20)
@pytest.mark.parametrize("fastpath", FASTPATHS)
def test_a_failing_datagram_does_not_lose_the_rest_of_the_batch(fastpath: bool) -> None:
    async def main() -> None:
        be, fa, node = _relay_node(fastpath)
        be.settimeout(3.0)
        await node.start()
        real_receive = node.farm.receive_datagram

        def receive(data: bytes, *a: Any) -> Any:
            if b"bad@x" in data:
                raise RuntimeError("boom")
            return real_receive(data, *a)

        node.farm.receive_datagram = receive  # type: ignore[method-assign]
        try:
            for nai in ("a@x", "bad@x", "b@x"):
                fa.sendto(_rrq(nai, 1), node.address)
            got = set()
            for _ in range(2):
                data = await asyncio.get_running_loop().run_in_executor(None, be.recv, 4096)
                got.add(slbtag.decode(data)[2][26:].decode())
            assert got == {"a@x", "b@x"}
            assert node.bad.totals["internal-error"] == 1
            assert node.counters["forwarded"] == 2 and node.counters["dropped"] == 1
        finally:
            await node.stop()
            be.close()
            fa.close()

    asyncio.run(main())


def test_sessions_are_moved_out_of_the_cyclic_gc_as_the_table_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """freeze_gc() runs after a batch once the table has grown by GC_FREEZE_MIN (or 10%)
    since the last time; frozen sessions still end and are freed as before."""
    monkeypatch.setattr(nslb, "GC_FREEZE_MIN", 50)
    node = nslb.SlbNode(
        nslb.SlbSettings(
            virtual_address="127.0.0.1",
            reals=[nslb.SlbRealSpec("127.0.0.1", 434)],
            session_s=10.0,
            fastpath=False,
        )
    )
    node._freeze_at = nslb.GC_FREEZE_MIN
    frozen = gc.get_freeze_count()
    try:
        src = ("127.0.0.2", 434)
        for i in range(120):
            data = request(ha_addr="127.0.0.1", ident=1, nai=f"mn{i}@x")
            node._decide([(data, src, f"mn{i}@x", 1)], 1.0)
            node._after(1.0)
        assert len(node.farm.sessions) == 120
        assert gc.get_freeze_count() > frozen
        assert node._freeze_at == 102 + 50  # frozen at 51, then at 102 sessions: next +50
        real = node.farm.reals[0]
        assert real.conns == 120
        node.farm.handle_timer(11.0)
        assert not node.farm.sessions and real.conns == 0 and node.farm.n_expired == 120
    finally:
        gc.unfreeze()
