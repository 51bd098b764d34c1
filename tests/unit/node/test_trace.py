"""Registration log lines (``debug ip mobile``): the fields of a request and a reply at
debug only; denials at info, rate-limited per code with the NAI."""

from __future__ import annotations

import logging

import pytest

from mobileha.log import _FIELDS_ATTR, get_logger
from mobileha.node.trace import RegistrationTrace, message_fields
from mobileha.wire.mip import NaiExt, RegistrationReply
from tests.helpers import request


def reply(code: int, nai: str = "a@x") -> bytes:
    rep = RegistrationReply(code=code, lifetime=0, home_addr="10.0.0.5", ha_addr="10.0.1.1")
    return rep.header() + NaiExt(nai).encode()


def test_fields_of_a_request_and_a_reply() -> None:
    q = message_fields(request(ha_addr="10.0.1.1", ident=(7 << 32) | 9, nai="a@x"))
    assert q["message"] == "request" and q["nai"] == "a@x" and q["ident"] == "00000007.00000009"
    r = message_fields(reply(131))
    assert r["code"] == 131 and r["code_name"] and r["home_address"] == "10.0.0.5"
    assert message_fields(b"\x05abc") == {}
    assert message_fields(b"\x01\x00") == {"message": "undecodable"}


def test_debug_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    t = RegistrationTrace(get_logger("mobileha.test.trace"), "n")
    data = request(ha_addr="10.0.1.1", ident=1, nai="a@x")
    with caplog.at_level(logging.INFO, "mobileha.test.trace"):
        t.trace("received", data, ("10.0.0.1", 434))
        t.reply_sent(reply(0), ("10.0.0.1", 434))
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, "mobileha.test.trace"):
        t.trace("received", data, ("10.0.0.1", 434))
    (rec,) = caplog.records
    assert rec.getMessage() == "registration received"
    assert getattr(rec, _FIELDS_ATTR)["nai"] == "a@x"


def test_denials_rate_limited_per_code(caplog: pytest.LogCaptureFixture) -> None:
    t = RegistrationTrace(get_logger("mobileha.test.deny"), "n", rate_limit_s=60)
    with caplog.at_level(logging.INFO, "mobileha.test.deny"):
        for i in range(5):
            t.reply_sent(reply(131, f"m{i}@x"), ("10.0.0.1", 434))
        t.reply_sent(reply(129, "z@x"), ("10.0.0.1", 434))
        t.reply_sent(reply(0, "ok@x"), ("10.0.0.1", 434))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per code, the accepted one not at all
    assert [getattr(r, _FIELDS_ATTR)["nai"] for r in caplog.records] == ["m0@x", "z@x"]
    assert t.denials.totals == {"denied-131": 5, "denied-129": 1}
