"""HomeAgentNode in-process on loopback: config -> node, UDP registration, data plane, timer
expiry, views, metrics, the embedded DFP agent and the sync hook."""

from __future__ import annotations

import asyncio
import random
import socket
import time

from mobileha import compose
from mobileha.config import loads_config
from mobileha.mgmt.metrics import families_for
from mobileha.mgmt.views import views_for
from mobileha.wire import dfp as wdfp
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.mip import NaiExt, RegistrationReply, RegistrationRequest, append_auth
from tests.helpers import free_port, until

KEY = bytes(range(16))


def _config(host: str, port: int, dfp_port: int) -> str:
    return f"""
[node]
role = "home-agent"
name = "ha-node-test"
[management]
enabled = false
[home_agent]
address = "{host}"
port = {port}
home_prefix = "10.55.0.0/24"
simultaneous_bindings = 3
redirect_ha = "10.9.9.9"
[dataplane]
backend = "memory"
[dfp]
listen = "{host}:{dfp_port}"
password = "text:ha-node-dfp"
[[mobile_node]]
nai = "n1@example.net"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
[[foreign_agent]]
address = "10.0.2.2"
spi = 300
key = "hex:{KEY.hex()}"
"""


def test_compose_maps_keys() -> None:
    cfg = loads_config(_config("127.0.0.1", 434, 8081))
    core = compose.home_agent_core(cfg)
    s = core.settings
    assert s.simultaneous_bindings == 3 and s.redirect_ha == "10.9.9.9"
    assert core.sas.mn("n1@example.net", 256) is not None
    assert core.sas.fa("10.0.2.2", 300) is not None
    assert core.sas.fa("10.0.2.2", 300).algorithm == "md5-prefix-suffix"  # type: ignore[union-attr]
    assert core.pool is not None and core.pool.size == 254


def test_node_registration_expiry_views_metrics_dfp() -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host, socket.SOCK_DGRAM)
    dfp_port = free_port(host, socket.SOCK_STREAM)
    node = compose.home_agent_node(loads_config(_config(host, port, dfp_port)))

    async def run() -> None:
        await node.start()
        try:
            loop = asyncio.get_running_loop()
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            hdr = RegistrationRequest(
                lifetime=1,
                ha_addr=host,
                care_of="127.0.0.1",
                ident=ntp_identification(time.time(), 7),
            ).header()
            req = append_auth(
                hdr + NaiExt("n1@example.net").encode(), 32, 256, Authenticator(KEY, "hmac-md5")
            )
            await loop.sock_sendto(client, req, (host, port))
            data, src = await asyncio.wait_for(loop.sock_recvfrom(client, 2048), 3)
            assert src == (host, port)
            reply = RegistrationReply.decode(data)
            assert reply.code == 0 and reply.lifetime == 1
            hoa = reply.home_addr
            assert node.dataplane.lookup(hoa)  # installed
            page = views_for(node)["bindings"]({"limit": "10"})
            assert page["total"] == 1 and page["items"][0]["home_address"] == hoa
            assert page["items"][0]["state"] == "active"
            stats = views_for(node)["stats"]({})
            assert stats["reply_codes"] == {"0": 1}
            names = {m.name for m in families_for(node)}
            assert {"cmiHaRegTotalMobilityBindings", "mobileha_ha_replies"} <= names
            # the embedded DFP agent reports a weight once a manager proves the password
            r, w = await asyncio.open_connection(host, dfp_port)
            w.write(wdfp.sign(wdfp.dfp_parameters(5), b"ha-node-dfp"))
            head = await asyncio.wait_for(r.readexactly(8), 3)
            _version, mtype, length = wdfp.decode_header(head)
            body = await asyncio.wait_for(r.readexactly(length - 8), 3)
            msg = wdfp.decode(head + body)
            assert mtype == wdfp.preference_information([(host, 1)]).type == msg.type
            assert msg is not None
            w.close()
            assert "dfp" in views_for(node)
            # without [redundancy] a sync message type is bad input for the home agent
            drops = sum(node.core.drops.values())
            await loop.sock_sendto(client, bytes([200]) + bytes(19), (host, port))

            def dropped_and_expired() -> bool:
                return sum(node.core.drops.values()) > drops and not node.dataplane.lookup(hoa)

            # the single timer expires the binding (lifetime 1 s, 1 s wheel granularity)
            await until(dropped_and_expired, 4, "binding expired")
            assert len(node.core.table) == 0 and node.core.expired == 1
            client.close()
        finally:
            await node.stop()

    asyncio.run(run())
