"""The home agent node on its binding journal: a registration is written (commit interval
0: before the loop does anything else), a crash (kill -9) loses nothing written, the next
node restores the binding with its data plane entry before answering, a torn tail is
ignored with a warning, and what is still buffered at a crash is what a kill loses."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

from mobileha import compose
from mobileha.config import loads_config
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import views_for
from mobileha.wire.auth import ntp_identification
from mobileha.wire.mip import RegistrationReply
from tests.helpers import free_port, request

KEY = bytes(range(16))


def config(host: str, port: int, journal: Path, commit_ms: int) -> str:
    return f"""
[node]
role = "home-agent"
[management]
enabled = false
[home_agent]
address = "{host}"
port = {port}
home_prefix = "10.58.0.0/24"
journal = "{journal}"
journal_commit_ms = {commit_ms}
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "n1@example.net"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""


async def register(host: str, port: int, at: float) -> RegistrationReply:
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    req = request(
        ha_addr=host, care_of="127.0.0.7", nai="n1@example.net", key=KEY,
        ident=ntp_identification(at, 1),
    )  # fmt: skip
    await loop.sock_sendto(s, req, (host, port))
    data, _ = await asyncio.wait_for(loop.sock_recvfrom(s, 2048), 3)
    s.close()
    return RegistrationReply.decode(data)


def test_crash_and_restart(tmp_path: Path) -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    journal = tmp_path / "j"

    async def run() -> None:
        node = compose.home_agent_node(loads_config(config(host, port, journal, 0)))
        await node.start()
        rep = await register(host, port, time.time())
        assert rep.code == 0
        node.crash()  # kill -9: no clean stop, nothing more written
        with open(journal, "ab") as f:
            f.write(b"\x00\x00\x00\x30torn")  # a write cut short by the kill
        node2 = compose.home_agent_node(loads_config(config(host, port, journal, 10)))
        await node2.start()
        try:
            (b,) = node2.core.table.bindings_of(rep.home_addr)
            assert b.care_of == "127.0.0.7" and node2.dataplane.lookup(rep.home_addr)
            assert 1790 < b.expires - node2.now() <= 1800  # the request asked for 1800 s
            assert node2.journal is not None
            assert node2.journal.view()["entries_since_compaction"] == 1
            assert b"torn" not in journal.read_bytes()  # cut off before appending
            # buffered for 10 ms, then written; a crash before that loses it
            rep2 = await register(host, port, time.time() + 1)
            assert rep2.code == 0 and node2.journal.view()["buffered"] == 1
            await asyncio.sleep(0.05)
            assert node2.journal.view()["buffered"] == 0 and node2.journal.stats["writes"] == 1
            # in show stats and /metrics
            assert views_for(node2)["stats"]({})["journal"]["entries"] == 1
            names = {m.name for m in families_for(node2)}
            assert {"mobileha_journal_entries", "mobileha_journal_errors"} <= names
        finally:
            await node2.stop()

    asyncio.run(run())
