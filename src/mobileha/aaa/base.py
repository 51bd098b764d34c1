"""The one AAA interface the foreign agent (PDSN) uses, and the shapes it exchanges.

A backend answers ``await backend.authorize(nai, mn_aaa, home_address=...)`` with an
:class:`AaaResult`: accepted or not, the home agent address to relay to (in production the
HA-SLB virtual address, RADIUS ``3GPP2-Home-Agent-IP-Address``), the home address
(``Framed-IP-Address``), the registration reply code to send when refused, and raw
attributes for views and logs.

MN-AAA (RFC 4721 §8, CHAP_SPI = 2) is carried as :class:`MnAaaAuth`; a RADIUS server checks
it as ordinary CHAP: ``CHAP-Password = chap_ident || authenticator`` and
``CHAP-Challenge = chap_challenge`` (:meth:`MnAaaAuth.chap_fields`).

Reply codes (P§1.9) used for AAA outcomes:

* reject with an MN-AAA extension -> **108** "MN failed AAA authentication" (RFC 4721);
* reject without one (the NAI is not authorised) -> **67** "mobile node failed
  authentication" (the FA's own authentication of the MN failed);
* no answer (timeout) -> **78** "registration timeout". No FA code names AAA. 88 and
  80-82 are defined as ICMP errors received from the home agent path and would send an
  operator to debug the HA; 66 "insufficient resources" blames the FA. 78 says what
  happened: the FA gave up waiting and could not complete the registration in time, and it
  is also what the MN sees when the FA's pending-request timer fires first.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from mobileha.wire.auth import CHAP_SPI, chap_radius_fields

CODE_AAA_TIMEOUT: Final = 78
CODE_MN_AUTH_FAILED: Final = 67
CODE_MN_AAA_FAILED: Final = 108


@dataclass(frozen=True, slots=True)
class MnAaaAuth:
    """An MN-AAA Generalized Authentication extension (36/1) and what it covers."""

    spi: int
    authenticator: bytes
    challenge: bytes  # MN-FA challenge (132) value; b"" when the request had none
    covered: bytes  # the request up to the extension + its Type, Subtype, Length, SPI

    def chap_fields(self) -> tuple[int, bytes]:
        """(CHAP identifier, CHAP-Challenge) of the RFC 4721 CHAP-style computation."""
        return chap_radius_fields(self.challenge, self.covered)

    def chap_password(self) -> bytes:
        """RADIUS CHAP-Password: identifier byte + 16-byte response."""
        ident, _ = self.chap_fields()
        return bytes((ident,)) + self.authenticator

    def verify(self, key: bytes) -> bool:
        """Check the authenticator locally (CHAP_SPI, or HMAC-MD5 for other SPIs)."""
        if self.spi == CHAP_SPI:
            ident, chal = self.chap_fields()
            expect = hashlib.md5(bytes((ident,)) + key + chal).digest()
        else:
            expect = hmac.new(key, self.covered, hashlib.md5).digest()
        return hmac.compare_digest(expect, self.authenticator)


@dataclass(frozen=True, slots=True)
class AaaResult:
    accepted: bool
    ha_address: str | None = None
    home_address: str | None = None
    reply_code: int = 0  # registration reply code when not accepted
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def reject(cls, code: int, **attributes: Any) -> AaaResult:
        return cls(False, reply_code=code, attributes=attributes)


@dataclass(frozen=True, slots=True)
class SaAnswer:
    """AAA's answer to a home agent's request for an MN's MN-HA SA: accepted with ``spi``,
    ``key`` and optionally the ``home_address``, or refused (``reason``: ``reject``,
    ``timeout`` or ``error``, the names of ``mobileha.core.subscribers``)."""

    accepted: bool
    spi: int = 0
    key: bytes = field(default=b"", repr=False)
    home_address: str | None = None
    reason: str = ""


class AaaBackend(Protocol):
    """What the foreign agent node calls; one instance per node."""

    name: str

    async def authorize(
        self, nai: str, mn_aaa: MnAaaAuth | None = None, *, home_address: str | None = None
    ) -> AaaResult: ...

    async def close(self) -> None: ...

    def stats(self) -> Mapping[str, int]: ...


__all__ = [
    "CODE_AAA_TIMEOUT",
    "CODE_MN_AAA_FAILED",
    "CODE_MN_AUTH_FAILED",
    "AaaBackend",
    "AaaResult",
    "MnAaaAuth",
    "SaAnswer",
]
