"""RADIUS AAA backend: pyrad's packet encoding over our own asyncio UDP socket.

pyrad's clients block (or use their own loop handling), so only ``pyrad.packet`` and
``pyrad.dictionary`` are used; the socket, identifiers, timeouts and retransmissions are
here, on the node's event loop. Nothing blocks: an unreachable server costs
``timeout_s * (retries + 1)`` seconds for that one request and then maps to code 78.

Access-Request (RFC 2865, RFC 4721 §8 CHAP mapping, 3GPP2 X.S0011 style):

* ``User-Name`` = the NAI;
* with an MN-AAA extension using CHAP_SPI: ``CHAP-Password`` = identifier (first challenge
  byte) + the 16-byte MN-AAA authenticator, ``CHAP-Challenge`` = MD5(preceding request
  bytes + extension header) + the last 237 challenge bytes. The server verifies it as plain
  CHAP against the user's password, which is the MN-AAA shared key;
* without one, no credentials: the server's policy must authorise the NAI by itself
  (e.g. ``Auth-Type := Accept``), ``Service-Type = Authorize-Only``;
* ``NAS-IP-Address`` / ``NAS-Identifier``, and ``Message-Authenticator`` (BlastRADIUS).

Access-Accept -> ``3GPP2-Home-Agent-IP-Address`` (vendor 5535, attribute 7: the HA, in
production the HA-SLB virtual address) and ``Framed-IP-Address`` (home address).
Access-Reject -> 108 with an MN-AAA extension, 67 without; timeout -> 78 (``aaa.base``).
Replies are checked (Response Authenticator, Message-Authenticator, identifier); anything
else is dropped and counted.

The home agent's MN-HA SA (:meth:`RadiusAaa.fetch_sa`, 3GPP2 X.S0011 HA-AAA; the vendor
attributes of 3GPP2 because FreeRADIUS and the PDSN/HA AAA servers of operators already
carry them, dictionary.3gpp2, rather than a dictionary of our own):

* Access-Request: ``User-Name`` = the NAI, ``Service-Type = Authorize-Only``,
  ``3GPP2-MN-HA-SPI`` (vendor 5535, 57) = the SPI of the MN's request, NAS attributes and
  ``Message-Authenticator``;
* Access-Accept: ``3GPP2-MN-HA-Shared-Key`` (vendor 5535, 58; salt-encrypted as RFC 2868
  §3.5: a 2-byte salt with its high bit set, then the key hidden with MD5(secret ||
  Request Authenticator || salt), :func:`mobileha.wire.auth.reveal_key`) is the MN-HA key;
  ``3GPP2-MN-HA-SPI`` its SPI (absent: the requested one); ``Framed-IP-Address`` the MN's
  home address when AAA assigns one. Algorithm, replay protection and lifetime are the
  realm entry's: the 3GPP2 attributes carry none of them.
* An Access-Accept without a key that decrypts is ``error``; an Access-Reject ``reject``;
  no answer after ``timeout_s * (retries + 1)`` ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pyrad import packet as rpacket
from pyrad.dictionary import Dictionary

from mobileha.aaa.base import (
    CODE_AAA_TIMEOUT,
    CODE_MN_AAA_FAILED,
    CODE_MN_AUTH_FAILED,
    AaaResult,
    MnAaaAuth,
    SaAnswer,
)
from mobileha.wire.auth import CHAP_SPI, reveal_key

SERVICE_FRAMED = 2
SERVICE_AUTHORIZE_ONLY = 17
_SOCKET_BUF = 1 << 20


def dictionary_path() -> str:
    """The RADIUS dictionary shipped with the package (``mobileha/aaa/dictionary``)."""
    return str(resources.files("mobileha.aaa").joinpath("dictionary"))


_DICT: Dictionary | None = None


def load_dictionary() -> Dictionary:
    global _DICT
    if _DICT is None:
        _DICT = Dictionary(dictionary_path())
    return _DICT


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: RadiusAaa) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.owner._received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc.: the request times out on its own.
        self.owner._counts["socket_errors"] += 1


class RadiusAaa:
    name = "radius"

    def __init__(
        self,
        server: tuple[str, int],
        secret: bytes,
        *,
        timeout_s: float = 3.0,
        retries: int = 3,
        nas_identifier: str = "mobileha",
        nas_ip: str | None = None,
    ) -> None:
        self.server = server
        self.secret = secret
        self.timeout_s = timeout_s
        self.retries = retries
        self.nas_identifier = nas_identifier
        self.nas_ip = nas_ip
        self.dict = load_dictionary()
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Lock | None = None
        self._waiting: dict[int, tuple[rpacket.AuthPacket, asyncio.Future[bytes]]] = {}
        self._ids = asyncio.Queue[int]()
        for i in range(256):
            self._ids.put_nowait(i)
        self._counts: dict[str, int] = {
            "requests": 0,
            "accepts": 0,
            "rejects": 0,
            "timeouts": 0,
            "retransmissions": 0,
            "bad_replies": 0,
            "socket_errors": 0,
            "sa_requests": 0,
            "sa_errors": 0,
        }

    enabled = True

    async def _open(self) -> asyncio.DatagramTransport:
        if self._transport is not None:
            return self._transport
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._transport is None:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), remote_addr=self.server
                )
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        import socket

                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUF)
                self._transport = transport
        assert self._transport is not None
        return self._transport

    def _access_request(self, ident: int, nai: str) -> rpacket.AuthPacket:
        """An Access-Request for ``nai`` with its Message-Authenticator (BlastRADIUS)."""
        pkt = rpacket.AuthPacket(
            code=rpacket.AccessRequest,
            id=ident,
            secret=self.secret,
            authenticator=os.urandom(16),
            dict=self.dict,
        )
        pkt.add_message_authenticator()
        pkt["User-Name"] = nai
        return pkt

    def build_request(self, ident: int, nai: str, mn_aaa: MnAaaAuth | None) -> rpacket.AuthPacket:
        pkt = self._access_request(ident, nai)
        if mn_aaa is not None and mn_aaa.spi == CHAP_SPI:
            _chap_id, challenge = mn_aaa.chap_fields()
            pkt["CHAP-Password"] = mn_aaa.chap_password()
            pkt["CHAP-Challenge"] = challenge
            pkt["Service-Type"] = SERVICE_FRAMED
        else:
            pkt["Service-Type"] = SERVICE_AUTHORIZE_ONLY
        if self.nas_ip:
            pkt["NAS-IP-Address"] = self.nas_ip
        pkt["NAS-Identifier"] = self.nas_identifier
        return pkt

    async def authorize(
        self, nai: str, mn_aaa: MnAaaAuth | None = None, *, home_address: str | None = None
    ) -> AaaResult:
        self._counts["requests"] += 1
        if mn_aaa is not None and mn_aaa.spi != CHAP_SPI:
            # RADIUS can only check the CHAP-style MN-AAA (RFC 4721 §8).
            self._counts["rejects"] += 1
            return AaaResult.reject(CODE_MN_AAA_FAILED, reason="mn-aaa-spi-unsupported")
        await self._open()
        ident = await self._ids.get()
        try:
            pkt = self.build_request(ident, nai, mn_aaa)
            data = await self._exchange(pkt, ident)
        finally:
            self._ids.put_nowait(ident)
        if data is None:
            self._counts["timeouts"] += 1
            return AaaResult.reject(CODE_AAA_TIMEOUT, reason="radius-timeout")
        return self._result(pkt, data, mn_aaa)

    async def _exchange(self, pkt: rpacket.AuthPacket, ident: int) -> bytes | None:
        """Send ``pkt`` until a verified reply arrives (its bytes) or the tries run out."""
        transport = await self._open()
        raw = pkt.RequestPacket()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        self._waiting[ident] = (pkt, fut)
        try:
            for attempt in range(self.retries + 1):
                if attempt:
                    self._counts["retransmissions"] += 1
                transport.sendto(raw)
                try:
                    return await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
                except TimeoutError:
                    continue
            return None
        finally:
            self._waiting.pop(ident, None)

    async def fetch_sa(self, nai: str, spi: int) -> SaAnswer:
        """The MN-HA SA of ``nai`` (module docstring: 3GPP2 attributes); never raises."""
        self._counts["sa_requests"] += 1
        await self._open()
        ident = await self._ids.get()
        try:
            pkt = self._access_request(ident, nai)
            pkt["Service-Type"] = SERVICE_AUTHORIZE_ONLY
            pkt["3GPP2-MN-HA-SPI"] = spi
            if self.nas_ip:
                pkt["NAS-IP-Address"] = self.nas_ip
            pkt["NAS-Identifier"] = self.nas_identifier
            data = await self._exchange(pkt, ident)
        finally:
            self._ids.put_nowait(ident)
        if data is None:
            self._counts["timeouts"] += 1
            return SaAnswer(False, reason="timeout")
        return self._sa_answer(pkt, data, spi)

    def _sa_answer(self, pkt: rpacket.AuthPacket, data: bytes, spi: int) -> SaAnswer:
        try:
            reply = pkt.CreateReply(packet=data)
            if reply.code != rpacket.AccessAccept:
                self._counts["rejects"] += 1
                return SaAnswer(False, reason="reject")
            self._counts["accepts"] += 1
            hidden = reply.get("3GPP2-MN-HA-Shared-Key")
            if not hidden:
                raise ValueError("Access-Accept without 3GPP2-MN-HA-Shared-Key")
            value = bytes(hidden[0])
            if len(value) < 18:
                raise ValueError("3GPP2-MN-HA-Shared-Key too short")
            key = reveal_key(self.secret, pkt.authenticator + value[:2], value[2:])
            if not key:
                raise ValueError("empty MN-HA key")
            spis = reply.get("3GPP2-MN-HA-SPI")
            hoas = reply.get("Framed-IP-Address")
        except Exception:  # a malformed Accept: the SA is unusable
            self._counts["sa_errors"] += 1
            return SaAnswer(False, reason="error")
        return SaAnswer(
            True,
            spi=int(spis[0]) if spis else spi,
            key=key,
            home_address=str(hoas[0]) if hoas else None,
        )

    def _received(self, data: bytes) -> None:
        if len(data) < 20:
            self._counts["bad_replies"] += 1
            return
        entry = self._waiting.get(data[1])
        if entry is None:
            self._counts["bad_replies"] += 1
            return
        pkt, fut = entry
        try:
            reply = pkt.CreateReply(packet=data)
            ok = pkt.VerifyReply(reply, data)
        except Exception:  # pyrad raises assorted errors on malformed packets
            ok = False
        if not ok:
            self._counts["bad_replies"] += 1
            return
        if not fut.done():
            fut.set_result(data)

    def _result(self, pkt: rpacket.AuthPacket, data: bytes, mn_aaa: MnAaaAuth | None) -> AaaResult:
        reply = pkt.CreateReply(packet=data)
        attrs: dict[str, Any] = {}
        for k in reply.keys():  # noqa: SIM118 (pyrad decodes names in keys())
            if isinstance(k, str):
                v = reply[k]
                attrs[k] = v[0] if len(v) == 1 else list(v)
        if reply.code == rpacket.AccessAccept:
            self._counts["accepts"] += 1
            ha = attrs.get("3GPP2-Home-Agent-IP-Address")
            hoa = attrs.get("Framed-IP-Address")
            return AaaResult(
                True,
                ha_address=str(ha) if ha else None,
                home_address=str(hoa) if hoa else None,
                attributes=attrs,
            )
        self._counts["rejects"] += 1
        code = CODE_MN_AAA_FAILED if mn_aaa is not None else CODE_MN_AUTH_FAILED
        return AaaResult(False, reply_code=code, attributes=attrs)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for _pkt, fut in self._waiting.values():
            if not fut.done():
                fut.cancel()

    def stats(self) -> Mapping[str, int]:
        return dict(self._counts)


__all__ = ["RadiusAaa", "dictionary_path", "load_dictionary"]
