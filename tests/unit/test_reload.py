"""Reload (SIGHUP): the file is validated whole, what can change live is applied to the
running node without losing a binding or a session, what needs a restart is named and left
as it runs, and an invalid file is refused with the node running on its old config."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import time
from pathlib import Path

import pytest

from mobileha import compose
from mobileha.config import loads_config
from mobileha.config.diff import differences
from mobileha.core.security import MobilitySA
from mobileha.reload import is_live
from mobileha.runner import NodeRunner
from mobileha.wire.auth import Authenticator, ntp_identification
from mobileha.wire.mip import NaiExt, RegistrationReply, RegistrationRequest, append_auth
from tests.helpers import free_port

KEY = bytes(range(16))
_STEP = itertools.count()  # each request a second later: Identifications always grow


def mn(nai: str) -> str:
    return f"""
[[mobile_node]]
nai = "{nai}"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""


def ha_config(
    host: str,
    port: int,
    *,
    level: str = "info",
    max_lifetime: int = 1800,
    extra_mns: tuple[str, ...] = (),
    address: str | None = None,
    mgmt: int = 18999,
) -> str:
    return f"""
[node]
role = "home-agent"
name = "ha-reload"
[management]
listen = "127.0.0.1:{mgmt}"
[log]
level = "{level}"
[home_agent]
address = "{address or host}"
port = {port}
home_prefix = "10.56.0.0/24"
max_lifetime = {max_lifetime}
[dataplane]
backend = "memory"
{mn("n1@example.net")}
{"".join(mn(n) for n in extra_mns)}
"""


async def register(host: str, port: int, nai: str) -> RegistrationReply:
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    try:
        hdr = RegistrationRequest(
            lifetime=600,
            ha_addr=host,
            care_of="127.0.0.1",
            ident=ntp_identification(time.time() + next(_STEP), random.getrandbits(32)),
        ).header()
        req = append_auth(hdr + NaiExt(nai).encode(), 32, 256, Authenticator(KEY, "hmac-md5"))
        await loop.sock_sendto(s, req, (host, port))
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(s, 2048), 3)
        return RegistrationReply.decode(data)
    finally:
        s.close()


def test_live_and_restart_keys() -> None:
    old = loads_config(ha_config("127.0.0.1", 434))
    new = loads_config(
        ha_config(
            "127.0.0.1",
            434,
            level="debug",
            max_lifetime=600,
            extra_mns=("n2@x",),
            address="127.0.0.2",
        )
    )
    diffs = {d.key: is_live("home-agent", d) for d in differences(old, new)}
    assert diffs["log.level"] and diffs["home_agent.max_lifetime"] and diffs["mobile_node"]
    assert diffs["home_agent.address"] is False
    assert not any(k.startswith("management") and v for k, v in diffs.items())


def test_ha_reload_keeps_bindings_applies_mns_and_refuses_a_bad_file(
    tmp_path: Path, caplog: object
) -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    path = tmp_path / "ha.toml"
    mgmt = free_port("127.0.0.1", socket.SOCK_STREAM)
    text = ha_config(host, port, mgmt=mgmt)
    path.write_text(text)
    cfg = loads_config(text)
    runner = NodeRunner(cfg, path=str(path))

    async def run() -> None:
        await runner.start()
        try:
            rep = await register(host, port, "n1@example.net")
            assert rep.code == 0
            core = runner.node.core  # type: ignore[attr-defined]
            assert core.sas.mn("n2@example.net", 256) is None
            binding = core.table.bindings_of(rep.home_addr)[0]
            # an added MN, a shorter maximum lifetime, debug logging, a new address
            # (restart): applied live but the address
            path.write_text(
                ha_config(
                    host,
                    port,
                    level="debug",
                    max_lifetime=300,
                    extra_mns=("n2@example.net",),
                    address="127.0.0.9",
                    mgmt=mgmt,
                )
            )
            result = await runner.reload()
            assert result.ok, result
            assert any(c.startswith("mobile_node") for c in result.changed), result.changed
            assert "home_agent.max_lifetime: 1800 -> 300" in result.changed
            assert "log.level: info -> debug" in result.changed
            assert result.restart == [
                f"home_agent.address: {host} -> 127.0.0.9",
                f"home_agent.ha_address: {host} -> 127.0.0.9",  # it defaults to the address
            ]
            assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
            assert core.table.bindings_of(rep.home_addr)[0] is binding  # not lost
            assert core.settings.address == host  # the address needs a restart
            rep2 = await register(host, port, "n2@example.net")
            assert rep2.code == 0 and rep2.lifetime == 300  # the new MN and the new maximum
            # an invalid file: refused, the node runs on its config
            path.write_text(text.replace("max_lifetime = 1800", "max_lifetime = -5"))
            bad = await runner.reload()
            assert not bad.ok and any("max_lifetime" in e for e in bad.errors), bad
            assert runner.reloader.view()["ok"] is False
            assert len(core.table) == 2
            assert (await register(host, port, "n1@example.net")).code == 0
        finally:
            await runner.stop()
            logging.getLogger().setLevel(logging.WARNING)

    asyncio.run(run())


SLB = """
[node]
role = "slb"
name = "slb-reload"
[management]
enabled = false
[slb]
virtual_address = "{host}"
port = {port}
mode = "relay"
session_s = 60
[dfp]
allow = ["127.0.0.11"]
[[slb.real]]
name = "a"
address = "127.0.0.10"
port = 10434
weight = {wa}
[[slb.real]]
name = "b"
address = "127.0.0.11"
port = 10434
"""


def test_slb_reload_changes_a_weight_and_keeps_the_sessions() -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    cfg = loads_config(SLB.format(host=host, port=port, wa=8))
    runner = NodeRunner(cfg)

    async def run() -> None:
        await runner.start()
        try:
            farm = runner.node.farm  # type: ignore[attr-defined]
            for i in range(6):
                farm.receive_datagram(b"", ("10.0.0.1", 434), (host, port), 1.0, f"m{i}@x", i)
            sessions = dict(farm.sessions)
            result = await runner.reload(loads_config(SLB.format(host=host, port=port, wa=3)))
            assert result.ok and result.changed == ["slb.real[0].weight: 8 -> 3"], result
            assert farm.real("127.0.0.10", 10434).weight == 3
            assert farm.sessions == sessions
        finally:
            await runner.stop()

    asyncio.run(run())


def test_slb_reload_adds_and_removes_reals_and_dfp_agents() -> None:
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    base = SLB.format(host=host, port=port, wa=8)
    with_agent = base.replace('name = "b"\n', 'name = "b"\ndfp_agent = "127.0.0.11:1"\n')
    runner = NodeRunner(loads_config(base))

    async def run() -> None:
        await runner.start()
        try:
            node = runner.node
            result = await runner.reload(loads_config(with_agent))
            assert result.ok and result.changed == [
                "slb.real[1].dfp_agent: none -> 127.0.0.11:1"
            ], result
            assert node.dfp is not None and "127.0.0.11:1" in node.dfp.agents  # type: ignore[attr-defined]
            farm = node.farm  # type: ignore[attr-defined]
            result = await runner.reload(loads_config(base))
            assert result.ok and "127.0.0.11:1" not in node.dfp.agents  # type: ignore[attr-defined]
            assert not farm.real("127.0.0.11", 10434).dfp_lost
            # a real removed, a new one added
            three = base.replace('address = "127.0.0.11"', 'address = "127.0.0.12"')
            result = await runner.reload(loads_config(three))
            assert result.ok, result
            assert farm.real("127.0.0.11", 10434) is None
            assert farm.real("127.0.0.12", 10434) is not None
        finally:
            await runner.stop()

    asyncio.run(run())


def test_a_new_source_of_sas_is_reloaded_through_home_agent_security(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hook other SA sources use (realm tables, AAA-backed SAs): whatever
    compose.home_agent_security returns for the new config is what the running cores get."""
    host = f"127.0.{random.randint(20, 250)}.{random.randint(2, 250)}"
    port = free_port(host)
    text = ha_config(host, port, mgmt=free_port("127.0.0.1", socket.SOCK_STREAM))
    runner = NodeRunner(loads_config(text))
    plain = compose.home_agent_security

    def with_realm(cfg: object) -> object:
        sas = plain(cfg)  # type: ignore[arg-type]
        sas.add_mn(MobilitySA(256, KEY, "hmac-md5", nai="r1@realm.example"))
        return sas

    async def run() -> None:
        await runner.start()
        try:
            core = runner.node.core  # type: ignore[attr-defined]
            assert core.sas.mn("r1@realm.example", 256) is None
            monkeypatch.setattr(compose, "home_agent_security", with_realm)
            result = await runner.reload(loads_config(text))
            assert result.ok and result.changed == []
            assert core.sas.mn("r1@realm.example", 256) is not None
            assert (await register(host, port, "r1@realm.example")).code == 0
        finally:
            await runner.stop()

    asyncio.run(run())
