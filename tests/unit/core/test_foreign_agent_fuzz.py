"""Random and mutated datagrams never raise out of the FA and MN cores (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.core.actions import Send
from mobileha.core.foreign_agent import ForeignAgent, HaSecurity
from mobileha.core.mobile_node import MnSecurity, MobileNode

HERE = ("192.0.2.254", 434)  # the receiving socket's address (the cores do not use it)

KEY = bytes(range(16))


def _mn() -> MobileNode:
    return MobileNode(
        nai="fz@example.net",
        home_addr="0.0.0.0",
        ha_addr="10.0.0.100",
        security=MnSecurity(256, KEY),
        foreign_agent=("10.0.2.2", 434),
    )


VALID_RRQ = _mn().register(0.0)[0].payload


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    f = ForeignAgent(
        address="10.0.2.2",
        home_agent="10.0.0.100",
        challenge=True,
        ha_security={"10.0.0.100": HaSecurity(300, b"k" * 16)},
    )
    f.receive_datagram(data, ("10.9.9.9", 1000), HERE, 0.0)
    f.receive_datagram(b"\x03" + data, ("10.0.0.100", 434), HERE, 0.0)
    f.handle_timer(100.0)
    m = _mn()
    m.register(0.0)
    m.receive_datagram(data, ("10.0.2.2", 434), HERE, 0.1)
    m.receive_datagram(b"\x03" + data, ("10.0.2.2", 434), HERE, 0.1)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID_RRQ) - 1), st.integers(0, 255)), max_size=4))
def test_mutated_request_then_reply(muts: list[tuple[int, int]]) -> None:
    buf = bytearray(VALID_RRQ)
    for i, v in muts:
        buf[i] = v
    f = ForeignAgent(address="10.0.2.2", home_agent="10.0.0.100")
    acts = f.receive_datagram(bytes(buf), ("10.9.9.9", 1000), HERE, 0.0)
    for a in acts:
        if isinstance(a, Send) and a.payload[:1] == b"\x01":
            rep = bytearray(a.payload)
            rep[0] = 3
            f.receive_datagram(
                bytes(rep[:4] + rep[4:12] + rep[16:]), ("10.0.0.100", 434), HERE, 0.1
            )
    f.handle_timer(1000.0)
    assert f.pending_count == 0
