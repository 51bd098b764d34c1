"""What the node adapters log about registrations (IOS ``debug ip mobile``).

* At ``debug``: every Registration Request and Reply a node receives, relays or sends, one
  line each with the fields an operator follows a registration by (NAI, home address, home
  agent, care-of address, lifetime, Identification, code), so one registration can be traced
  end to end across MN, FA, SLB and HA logs by its NAI and Identification. Only at debug:
  nothing per packet at info.
* At ``info``: denials (reply codes 64 and up), rate-limited per code
  (:class:`~mobileha.log.RateLimitedLogger`: the first one of each code per interval with
  its NAI, the rest counted in ``suppressed``).

The decoding is done only when a line is written (debug enabled, or a denial).
"""

from __future__ import annotations

import logging
from typing import Any

from mobileha.log import RateLimitedLogger, StructLogger
from mobileha.wire import DecodeError
from mobileha.wire.mip import RRP, RRQ, RegistrationReply, RegistrationRequest, reply_code_name

DENIED_FROM = 64


def _ident(ident: int) -> str:
    return f"{ident >> 32:08X}.{ident & 0xFFFFFFFF:08X}"


def message_fields(data: bytes) -> dict[str, Any]:
    """The traced fields of a Registration Request or Reply (``{}``: neither)."""
    try:
        if data[:1] == bytes([RRQ]):
            q = RegistrationRequest.decode(data)
            return {
                "message": "request",
                "nai": q.nai or "-",
                "home_address": q.home_addr,
                "home_agent": q.ha_addr,
                "care_of": q.care_of,
                "lifetime": q.lifetime,
                "flags": f"{q.flags:02X}",
                "ident": _ident(q.ident),
            }
        if data[:1] == bytes([RRP]):
            p = RegistrationReply.decode(data)
            return {
                "message": "reply",
                "nai": p.nai or "-",
                "home_address": p.home_addr,
                "home_agent": p.ha_addr,
                "lifetime": p.lifetime,
                "code": p.code,
                "code_name": reply_code_name(p.code),
                "ident": _ident(p.ident),
            }
    except (DecodeError, ValueError, IndexError):
        return {"message": "undecodable"}
    return {}


class RegistrationTrace:
    """The registration log lines of one node."""

    def __init__(self, log: StructLogger, node: str, rate_limit_s: float = 10.0) -> None:
        self.log = log
        self.node = node
        self.denials = RateLimitedLogger(log, rate_limit_s, level=logging.INFO)

    @property
    def debug(self) -> bool:
        return self.log.is_enabled(logging.DEBUG)

    def trace(self, what: str, data: bytes, peer: Any) -> None:
        """A debug line: ``what`` (received / relayed / sent ...) ``data`` from/to ``peer``."""
        if self.log.is_enabled(logging.DEBUG):
            fields = message_fields(data)
            if fields:
                peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
                self.log.debug(f"registration {what}", node=self.node, peer=peer_text, **fields)

    def reply_sent(self, data: bytes, dst: Any, what: str = "reply sent") -> None:
        """A reply leaves: traced at debug; a denial logged (rate-limited per code)."""
        if len(data) > 1 and data[0] == RRP and data[1] >= DENIED_FROM:
            fields = message_fields(data)
            code = fields.pop("code", data[1])
            fields.pop("message", None)
            self.denials.warn(
                f"denied-{code}",
                "registration denied",
                node=self.node,
                code=code,
                to=f"{dst[0]}:{dst[1]}" if isinstance(dst, tuple) else str(dst),
                **fields,
            )
        self.trace(what, data, dst)


__all__ = ["RegistrationTrace", "message_fields"]
