"""DFP agent server and manager client over loopback TCP (P§6.5)."""

from __future__ import annotations

import asyncio
import random

import pytest

from mobileha.core.dfp import DfpManager
from mobileha.node.dfp import DfpAgentServer, DfpManagerClient
from mobileha.wire import dfp
from tests.helpers import until

pytestmark = pytest.mark.timeout(30)


def _addr() -> str:
    return f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"


def test_agent_manager_md5_weights_lost_revert_reconnect() -> None:
    host = _addr()
    load = {"b": 0}

    async def main() -> None:
        agent = DfpAgentServer(
            host,
            0,
            "10.0.1.100",
            lambda: (load["b"], 100, 1.0, 1.0),
            interval=0.2,
            key=b"dfp-pw",
            key_id=1,
            sample_s=0.05,
        )
        await agent.start()
        port = agent.bound_port
        got: list[tuple[str, int | None]] = []
        mgr = DfpManager(timeout=1.0, key=b"dfp-pw", backoff_min=0.1, backoff_max=0.2)
        mgr.add_agent(f"{host}:{port}", ["10.0.1.100"], 0.0)
        client = DfpManagerClient(mgr, lambda r, w: got.append((r, w)))
        await client.start()
        try:
            await until(lambda: ("10.0.1.100", 24) in got)
            # periodic reports keep arriving
            n = mgr.agents[f"{host}:{port}"].reports
            await until(lambda: mgr.agents[f"{host}:{port}"].reports >= n + 2, 2, "2 more reports")
            # load jump -> early report with the new weight
            load["b"] = 50
            agent.poke()
            await until(lambda: got[-1] == ("10.0.1.100", 12), 0.15)
            assert agent.agent.early_reports >= 1
            assert agent.view()["managers"] == 1
            # agent lost -> static weight (None), then reconnect when it is back
            await agent.stop()
            await until(lambda: got[-1] == ("10.0.1.100", None))
            agent2 = DfpAgentServer(
                host, port, "10.0.1.100", lambda: (0, 100, 1.0, 1.0), interval=0.2, key=b"dfp-pw"
            )
            await agent2.start()
            try:
                await until(lambda: got[-1] == ("10.0.1.100", 24))
                assert mgr.agents[f"{host}:{port}"].losses == 1
            finally:
                await agent2.stop()
        finally:
            await client.stop()
            await agent.stop()

    asyncio.run(main())


def test_wrong_password_ignored_and_report_timeout() -> None:
    host = _addr()

    async def one(agent_key: bytes | None) -> None:
        agent = DfpAgentServer(
            host, 0, "10.0.1.100", lambda: (0, 10, 1.0, 1.0), interval=0.2, key=agent_key
        )
        await agent.start()
        got: list[tuple[str, int | None]] = []
        mgr = DfpManager(timeout=0.9, key=b"right", backoff_min=5.0)
        a = f"{host}:{agent.bound_port}"
        mgr.add_agent(a, ["10.0.1.100"], 0.0)
        client = DfpManagerClient(mgr, lambda r, w: got.append((r, w)))
        await client.start()
        try:
            # no valid report within the timeout: the manager drops the connection
            await until(lambda: mgr.agents[a].losses >= 1, 2.0)
            if agent_key is None:  # unsigned reports were counted
                assert mgr.agents[a].bad >= 1
            else:  # the agent closed a manager whose BindID Request did not verify
                assert agent.service.counters.get("bad-auth", 0) >= 1
            assert not [w for _, w in got if w is not None]  # never applied
        finally:
            await client.stop()
            await agent.stop()

    async def main() -> None:
        for agent_key in (None, b"wrong"):
            await one(agent_key)

    asyncio.run(main())


def test_agent_closes_on_unknown_version_and_answers_parameters() -> None:
    host = _addr()

    async def main() -> None:
        agent = DfpAgentServer(host, 0, "10.0.1.100", lambda: (0, 10, 1.0, 1.0), interval=5.0)
        await agent.start()
        try:
            r, w = await asyncio.open_connection(host, agent.bound_port)
            f = dfp.Framer()
            first = f.feed(await r.read(100))
            assert dfp.decode(first[0]).weights()[0].weight == 24
            # DFP Parameters with a 1 s keepalive: next report within ~1 s, not 5 s
            w.write(dfp.encode(dfp.dfp_parameters(1)))
            w.write(dfp.encode(dfp.DfpMessage(dfp.BINDID_REQUEST)))
            msgs: list[dfp.DfpMessage] = []
            while len(msgs) < 2:
                msgs += [dfp.decode(m) for m in f.feed(await asyncio.wait_for(r.read(100), 2))]
            assert {m.type for m in msgs} >= {dfp.BINDID_REPORT}
            assert agent.service.rows()[0]["interval_s"] == 1.0  # this manager's, only
            # an unknown version cannot be resynchronised: the agent closes the connection
            w.write(b"\x07" + bytes(7))
            while True:
                data = await asyncio.wait_for(r.read(100), 3)
                if not data:
                    break
            w.close()
            await until(lambda: agent.view()["managers"] == 0)
        finally:
            await agent.stop()

    asyncio.run(main())
