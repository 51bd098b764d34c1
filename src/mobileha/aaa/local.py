"""Local AAA table from the node config (``[[aaa.user]]``).

A user row gives the home agent to use (RFC 4433 assignment; the HA-SLB VIP in a
production-like setup), the home address (or ``dynamic``) and, optionally, the MN-AAA key:
an MN-AAA extension is checked with it (RFC 4721 CHAP_SPI, or HMAC-MD5 for the user's own
SPI). An empty table authorises every NAI and assigns nothing (AAA effectively off).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mobileha.aaa.base import (
    CODE_MN_AAA_FAILED,
    CODE_MN_AUTH_FAILED,
    AaaResult,
    MnAaaAuth,
)
from mobileha.wire.auth import CHAP_SPI

DYNAMIC = "dynamic"


@dataclass(frozen=True, slots=True)
class LocalUser:
    nai: str
    home_agent: str | None = None
    home_address: str = DYNAMIC
    spi: int | None = None
    key: bytes | None = None


class LocalAaa:
    name = "local"

    def __init__(self, users: Iterable[LocalUser] = ()) -> None:
        self.users: dict[str, LocalUser] = {u.nai: u for u in users}
        self._stats = {"requests": 0, "accepts": 0, "rejects": 0}

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    async def authorize(
        self, nai: str, mn_aaa: MnAaaAuth | None = None, *, home_address: str | None = None
    ) -> AaaResult:
        return self.authorize_now(nai, mn_aaa)

    def authorize_now(self, nai: str, mn_aaa: MnAaaAuth | None = None) -> AaaResult:
        """The same answer without awaiting (the table needs no I/O)."""
        self._stats["requests"] += 1
        if not self.users:
            self._stats["accepts"] += 1
            return AaaResult(True)
        u = self.users.get(nai)
        if u is None:
            self._stats["rejects"] += 1
            return AaaResult.reject(
                CODE_MN_AAA_FAILED if mn_aaa is not None else CODE_MN_AUTH_FAILED,
                reason="unknown-nai",
            )
        if mn_aaa is not None and (
            u.key is None
            or (mn_aaa.spi != CHAP_SPI and mn_aaa.spi != u.spi)
            or not mn_aaa.verify(u.key)
        ):
            self._stats["rejects"] += 1
            return AaaResult.reject(CODE_MN_AAA_FAILED, reason="mn-aaa")
        self._stats["accepts"] += 1
        hoa = None if u.home_address == DYNAMIC else u.home_address
        return AaaResult(True, ha_address=u.home_agent, home_address=hoa)

    async def close(self) -> None:
        return None

    def stats(self) -> Mapping[str, int]:
        return dict(self._stats)


__all__ = ["LocalAaa", "LocalUser"]
