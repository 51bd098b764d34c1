"""DFP agent weight and reports, DFP manager connection/timeout/revert logic (sans-IO)."""

from __future__ import annotations

import pytest

from mobileha.core.dfp import (
    AgentBack,
    AgentClosed,
    AgentConnected,
    AgentData,
    AgentLost,
    AgentState,
    Close,
    CloseManager,
    Connect,
    DfpAgent,
    DfpAgentService,
    DfpManager,
    ManagerAccepted,
    ManagerData,
    ManagerGone,
    SendToAgent,
    SendToManager,
    SetWeight,
    ha_weight,
)
from mobileha.wire import DecodeError, dfp


def test_cisco_ha_weight_formula() -> None:
    # weight = free/max * (cpu+mem)/32 * 24, cpu/mem scores 0..16 (free fractions x 16)
    assert ha_weight(0, 1000, 1.0, 1.0) == 24
    assert ha_weight(500, 1000, 1.0, 1.0) == 12
    assert ha_weight(0, 1000, 0.5, 0.5) == 12
    assert ha_weight(250, 1000, 1.0, 0.5) == 13  # 0.75 * 0.75 * 24 = 13.5
    assert ha_weight(1000, 1000, 1.0, 1.0) == 0  # full
    assert ha_weight(2000, 1000, 1.0, 1.0) == 0
    assert ha_weight(0, 0, 1.0, 1.0) == 0
    assert ha_weight(0, 10, 0.0, 0.0) == 0
    assert ha_weight(0, 10, 1.0, 1.0, max_weight=100) == 100
    assert ha_weight(0, 10, 7.0, -3.0) == 12  # clamped


def test_agent_periodic_and_early_reports() -> None:
    a = DfpAgent("10.0.1.100", interval=5.0)
    load = [0, 100, 1.0, 1.0]
    first = a.handle_timer(0.0, tuple(load))  # type: ignore[arg-type]
    assert first is not None
    assert dfp.decode(first).weights() == [dfp.HostWeight("10.0.1.100", 0, 24)]
    assert a.get_timer() == 5.0
    assert a.handle_timer(4.9, (0, 100, 1.0, 1.0)) is None
    assert a.sample((10, 100, 1.0, 1.0), 4.9) is None  # 21: small change, no early report
    rep = a.handle_timer(5.0, (10, 100, 1.0, 1.0))
    assert rep is not None and dfp.decode(rep).weights()[0].weight == 21
    early = a.sample((60, 100, 1.0, 1.0), 6.0)  # load jump 21 -> 9
    assert early is not None and dfp.decode(early).weights()[0].weight == 9
    assert a.early_reports == 1 and a.get_timer() == 11.0
    full = a.sample((100, 100, 1.0, 1.0), 6.5)  # any move to/from 0 is reported at once
    assert full is not None and dfp.decode(full).weights()[0].weight == 0


def test_agent_signed_reports_and_parameters() -> None:
    a = DfpAgent("10.0.1.100", key=b"pw", key_id=2)
    raw = a.report((0, 10, 1.0, 1.0), 0.0)
    assert dfp.verify(raw, b"pw", 2)
    assert a.receive_message(dfp.sign(dfp.dfp_parameters(2), b"pw")) == "parameters"
    assert a.interval == 2.0 and a.get_timer() == 2.0
    with pytest.raises(DecodeError):
        a.receive_message(dfp.encode(dfp.dfp_parameters(1)))  # unsigned
    b = DfpAgent("1.1.1.1")
    assert b.receive_message(dfp.encode(dfp.dfp_parameters(600))) == "parameters"
    assert b.interval == 60.0  # capped like the reference agent
    assert b.receive_message(dfp.encode(dfp.DfpMessage(dfp.SERVER_STATE, (dfp.LoadTlv(),)))) == (
        "server-state"
    )
    assert b.receive_message(dfp.encode(dfp.DfpMessage(dfp.BINDID_REQUEST))) == "bindid-request"
    assert dfp.decode(b.bindid_report()).tlvs == (dfp.BindIdTableTlv("1.1.1.1"),)


def pref(addr: str, w: int, key: bytes | None = None) -> bytes:
    m = dfp.preference_information([(addr, w)])
    return dfp.sign(m, key) if key else dfp.encode(m)


def test_manager_connect_report_timeout_reconnect_revert() -> None:
    m = DfpManager(timeout=3.0, connect_timeout=1.0, backoff_min=0.5, backoff_max=4.0)
    m.add_agent("10.0.1.10:8081", ["10.0.1.100"], now=0.0)
    assert m.get_timer() == 0.0
    assert m.handle_timer(0.0) == [Connect("10.0.1.10:8081")]
    assert m.agents["10.0.1.10:8081"].state is AgentState.CONNECTING
    # connect times out -> back off, no weight change (no weight was applied)
    acts = m.handle_timer(1.0)
    assert acts == [Close("10.0.1.10:8081", "connect-timeout")]
    assert m.get_timer() == 1.5
    assert m.handle_timer(1.5) == [Connect("10.0.1.10:8081")]
    assert m.handle_event(AgentConnected("10.0.1.10:8081"), 1.6) == []
    raw = pref("10.0.1.100", 12)
    assert m.handle_event(AgentData("10.0.1.10:8081", raw[:5]), 2.0) == []
    assert m.handle_event(AgentData("10.0.1.10:8081", raw[5:] + pref("10.0.1.100", 0)), 2.0) == [
        SetWeight("10.0.1.100", 12),
        AgentBack("10.0.1.10:8081", (("10.0.1.100", 12),)),  # its first report: logged
        SetWeight("10.0.1.100", 0),
    ]
    assert m.get_timer() == 5.0
    # report timeout -> close, revert to static, reconnect with the minimum backoff
    acts = m.handle_timer(5.0)
    assert acts == [
        Close("10.0.1.10:8081", "report-timeout"),
        AgentLost("10.0.1.10:8081", "report-timeout", ("10.0.1.100",)),  # logged with why
        SetWeight("10.0.1.100", None),
    ]
    rec = m.agents["10.0.1.10:8081"]
    assert rec.state is AgentState.IDLE and rec.connect_at == 5.5 and rec.losses == 1
    # agent closes the connection after a reconnect, before reporting: revert, no Close
    # action, no notice (it was not reporting)
    m.handle_timer(5.5)
    m.handle_event(AgentConnected("10.0.1.10:8081"), 5.6)
    assert m.handle_event(AgentClosed("10.0.1.10:8081"), 6.0) == [SetWeight("10.0.1.100", None)]
    assert m.rows(6.0)[0]["losses"] == 2


def test_manager_backoff_grows_and_caps() -> None:
    m = DfpManager(connect_timeout=1.0, backoff_min=1.0, backoff_max=4.0)
    m.add_agent("a:1", ["r"], 0.0)
    t = 0.0
    gaps = []
    for _ in range(5):
        assert m.handle_timer(t) == [Connect("a:1")]
        m.handle_event(AgentClosed("a:1", "refused"), t)
        nd = m.get_timer()
        assert nd is not None
        gaps.append(nd - t)
        t = nd
    assert gaps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_manager_security_bad_stream_and_mapping() -> None:
    m = DfpManager(key=b"pw", keepalive=2)
    m.add_agent("a:1", ["10.0.1.100"], 0.0)
    m.handle_timer(0.0)
    acts = m.handle_event(AgentConnected("a:1"), 0.0)
    assert len(acts) == 1 and isinstance(acts[0], SendToAgent)
    assert dfp.verify(acts[0].data, b"pw")
    assert dfp.decode(acts[0].data).tlvs[1] == dfp.KeepaliveTlv(2)
    assert (
        m.handle_event(AgentData("a:1", pref("10.0.1.100", 5)), 0.1) == []
    )  # unsigned: ignored, counted
    assert m.counters["bad"] == 1
    # a single-real agent may report its own (physical) address
    assert m.handle_event(AgentData("a:1", pref("10.0.1.10", 7, b"pw")), 0.2) == [
        SetWeight("10.0.1.100", 7),
        AgentBack("a:1", (("10.0.1.100", 7),)),
    ]
    # unknown version: the stream cannot be resynchronised -> close + revert
    acts = m.handle_event(AgentData("a:1", b"\x09" + bytes(7)), 0.3)
    assert acts == [
        Close("a:1", "bad-stream"),
        AgentLost("a:1", "bad-stream", ("10.0.1.100",)),
        SetWeight("10.0.1.100", None),
    ]
    # multi-real agent ignores hosts it does not know
    m.add_agent("b:1", ["10.9.0.1", "10.9.0.2"], 0.0)
    m.agents["b:1"].state = AgentState.CONNECTED
    both = dfp.DfpMessage(
        dfp.PREFERENCE_INFORMATION,
        (dfp.LoadTlv((dfp.HostWeight("10.9.0.9", 0, 1),)),),
    )
    assert m.handle_event(AgentData("b:1", dfp.sign(both, b"pw")), 1.0) == []
    assert m.remove_agent("b:1") == [
        Close("b:1", "removed"),
        SetWeight("10.9.0.1", None),
        SetWeight("10.9.0.2", None),
    ]
    assert m.remove_agent("zz") == []
    assert m.handle_event(AgentConnected("zz"), 0.0) == [Close("zz", "unknown")]


# ---------------------------------------------------------------- the agent's connections

LOAD = (0, 100, 1.0, 1.0)


def _service(**kw: object) -> DfpAgentService:
    key = kw.pop("key", None)
    return DfpAgentService(DfpAgent("10.0.1.100", interval=5.0, key=key), **kw)  # type: ignore[arg-type]


def test_agent_service_admission_allow_and_cap() -> None:
    s = _service(allow=["10.0.0.50"], max_connections=2)
    assert s.handle_event(ManagerAccepted(1, "10.0.0.66"), 0.0, LOAD) == [
        CloseManager(1, "refused-peer")
    ]
    first = s.handle_event(ManagerAccepted(2, "10.0.0.50"), 0.0, LOAD)
    assert isinstance(first[0], SendToManager) and dfp.decode(first[0].data).weights()
    s.handle_event(ManagerAccepted(3, "10.0.0.50"), 0.0, LOAD)
    assert s.handle_event(ManagerAccepted(4, "10.0.0.50"), 0.0, LOAD) == [
        CloseManager(4, "refused-full")
    ]
    assert s.counters["refused-peer"] == 1 and s.counters["refused-full"] == 1
    s.handle_event(ManagerGone(2), 1.0, LOAD)
    assert len(s.conns) == 1
    assert isinstance(s.handle_event(ManagerAccepted(5, "10.0.0.50"), 1.0, LOAD)[0], SendToManager)


def test_agent_service_message_length_idle_and_memory() -> None:
    s = _service(max_message=256, idle_timeout=10.0)
    s.handle_event(ManagerAccepted(1, "m"), 0.0, LOAD)
    s.handle_event(ManagerAccepted(2, "m"), 0.0, LOAD)
    # a header announcing more than the limit closes at once
    big = bytes([1, 0, 3, 1]) + (65535).to_bytes(4, "big")
    assert s.handle_event(ManagerData(1, big), 0.1, LOAD) == [CloseManager(1, "too-long")]
    # a message that stays unfinished is closed after the idle timeout
    part = bytes([1, 0, 3, 1]) + (200).to_bytes(4, "big") + bytes(50)
    assert s.handle_event(ManagerData(2, part), 1.0, LOAD) == []
    assert s.rows()[0]["pending_bytes"] == 58
    assert s.get_timer() == 5.0  # its report comes first
    s.handle_timer(5.0, LOAD)
    assert s.get_timer() == 10.0
    s.handle_timer(10.0, LOAD)
    assert s.get_timer() == 1.0 + 10.0  # the unfinished message's deadline
    assert s.handle_timer(11.0, LOAD) == [CloseManager(2, "idle")]
    assert not s.conns and s.counters["too-long"] == 1 and s.counters["idle"] == 1


def test_agent_service_password_per_manager_interval() -> None:
    s = _service(key=b"pw", idle_timeout=3.0)
    assert s.handle_event(ManagerAccepted(1, "a"), 0.0, LOAD) == []  # no report before proof
    s.handle_event(ManagerAccepted(2, "b"), 0.0, LOAD)
    s.handle_event(ManagerAccepted(3, "c"), 0.0, LOAD)
    # manager 1 proves the password and asks for 1 s reports: only its own schedule moves
    assert s.handle_event(ManagerData(1, dfp.sign(dfp.dfp_parameters(1), b"pw")), 0.5, LOAD) == []
    # a stranger's DFP Parameters (interval 60) does not verify: closed, nobody silenced
    stranger = dfp.encode(dfp.dfp_parameters(60))
    assert s.handle_event(ManagerData(2, stranger), 0.5, LOAD) == [CloseManager(2, "bad-auth")]
    sent = s.handle_timer(1.5, LOAD)
    assert [a.conn for a in sent if isinstance(a, SendToManager)] == [1]
    # manager 3 never proves the password: closed after the idle timeout
    assert CloseManager(3, "unauthenticated") in s.handle_timer(3.0, LOAD)
    assert set(s.conns) == {1} and s.agent.interval == 5.0
    # a BindID Request is answered
    (rep,) = s.handle_event(
        ManagerData(1, dfp.sign(dfp.DfpMessage(dfp.BINDID_REQUEST), b"pw")), 4.0, LOAD
    )
    assert isinstance(rep, SendToManager) and dfp.decode(rep.data).type == dfp.BINDID_REPORT


def test_manager_proves_its_password_on_connect() -> None:
    m = DfpManager(key=b"pw")
    m.add_agent("a:1", ["r"], 0.0)
    m.handle_timer(0.0)
    (hello,) = m.handle_event(AgentConnected("a:1"), 0.1)
    assert isinstance(hello, SendToAgent) and dfp.verify(hello.data, b"pw")
    assert dfp.decode(hello.data).type == dfp.BINDID_REQUEST
    plain = DfpManager()
    plain.add_agent("a:1", ["r"], 0.0)
    plain.handle_timer(0.0)
    assert plain.handle_event(AgentConnected("a:1"), 0.1) == []
