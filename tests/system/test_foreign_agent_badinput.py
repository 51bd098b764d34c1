"""100,000 random and mutated datagrams to a ``mobileha run`` foreign agent's port: it stays
up, counts drops by reason, its memory stays bounded, and a valid registration through it
still succeeds afterwards.

Safety: mutations never touch the HA field of a request (bytes 8-11, left 0.0.0.0 so the FA
relays to its configured loopback HA), and random datagrams never start with type 1, so no
relayed request can be aimed at an address outside loopback.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest

from mobileha.core.mobile_node import MnSecurity, MobileNode
from tests.helpers import free_port, wait_for
from tests.helpers.procs import Proc
from tests.system.test_registration_e2e import KEY, mn_counters

N = 100_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def base_requests(fa_addr: str) -> list[bytes]:
    out = []
    for i in range(20):
        m = MobileNode(
            nai=f"fuzz{i}@example.net",
            home_addr="0.0.0.0",
            ha_addr="0.0.0.0",
            security=MnSecurity(256, bytes(range(16)), "hmac-md5"),
            foreign_agent=(fa_addr, 434),
            aaa_key=b"x" if i % 2 else None,
        )
        out.append(m.register(0.0)[0].payload)
    return out


@pytest.mark.timeout(120)
def test_fa_survives_100k_bad_datagrams(tmp_path: Path) -> None:
    rnd = random.Random(4344)
    net = f"127.{rnd.randint(60, 99)}.{random.randint(0, 255)}"
    ha_addr, fa_addr = f"{net}.10", f"{net}.20"
    ha_port, fa_port = free_port(ha_addr), free_port(fa_addr)
    procs: list[Proc] = []
    try:
        procs.append(
            Proc(
                tmp_path,
                "ha",
                f"""role = "home-agent"
[home_agent]
address = "{ha_addr}"
port = {ha_port}
home_prefix = "10.78.0.0/16"
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "good@example.net"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
""",
            )
        )
        fa = Proc(
            tmp_path,
            "fa",
            f"""role = "foreign-agent"
[foreign_agent]
address = "{fa_addr}"
port = {fa_port}
home_agent = "{ha_addr}"
home_agent_port = {ha_port}
pending_timeout_s = 1
[dataplane]
backend = "memory"
""",
        )
        procs.append(fa)
        rss0 = rss_kib(fa.proc.pid)
        bases = base_requests(fa_addr)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        t0 = time.monotonic()
        for i in range(N):
            kind = i % 4
            if kind == 0:  # random bytes, never a request type
                d = bytearray(rnd.randbytes(rnd.randint(0, 80)))
                if d and d[0] == 1:
                    d[0] = 2
            elif kind == 1:  # random "replies"
                d = bytearray(b"\x03" + rnd.randbytes(rnd.randint(0, 80)))
            else:  # mutated valid requests (HA field untouched), some truncated
                d = bytearray(rnd.choice(bases))
                for _ in range(rnd.randint(1, 4)):
                    j = rnd.randrange(1, len(d))
                    if not 8 <= j < 12:
                        d[j] = rnd.randrange(256)
                if rnd.random() < 0.3:
                    d = d[: rnd.randrange(len(d))]
                    if len(d) > 8:
                        d[8:12] = bytes(4)
            sock.sendto(bytes(d), (fa_addr, fa_port))
            if i % 500 == 499:
                time.sleep(0.01)  # ~50k/s at most: a robustness test, not a flood
        sent_s = time.monotonic() - t0
        assert fa.proc.poll() is None, "FA died"
        # pending requests time out (1 s)
        wait_for(lambda: fa.api("api/stats")["counters"]["pending"] == 0, 5, "no request pending")
        st = fa.api("api/stats")
        drops = st["bad_input"]
        counted = sum(drops.values()) + st["counters"]["requests"]
        print(
            f"sent {N} in {sent_s:.1f}s; FA counted {counted} (drops by reason: {drops}); "
            f"FA codes {st['fa_codes']}; RSS {rss0} -> {rss_kib(fa.proc.pid)} KiB"
        )
        # Most datagrams must have been seen and classified (a loaded machine may still drop
        # some in the socket buffer before the FA reads them).
        assert len(drops) >= 3 and counted >= 0.6 * N
        assert st["counters"]["internal_errors"] == 0
        assert st["counters"]["pending"] == 0
        growth = rss_kib(fa.proc.pid) - rss0
        assert growth < 64 * 1024, f"RSS grew by {growth} KiB"
        # a valid registration still succeeds
        mn = Proc(
            tmp_path,
            "mn",
            f"""role = "mobile-node"
[mobile_node]
nai = "good@example.net"
home_agent = "{ha_addr}"
foreign_agent = "{fa_addr}:{fa_port}"
spi = 256
key = "{KEY}"
algorithm = "hmac-md5"
""",
        )
        procs.append(mn)
        wait_for(lambda: mn_counters(mn)["registered"] == 1, 15, "valid registration")
    finally:
        for p in reversed(procs):
            p.stop()
