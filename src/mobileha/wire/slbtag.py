"""The HA-SLB relay tag (DESIGN §5, [P]): the FA's original address and port in an NVSE.

In ``relay`` mode the SLB forwards a Registration Request with an ordinary UDP socket, so
the real HA would see the SLB as the source. The SLB therefore appends one Normal
Vendor/Organization Specific Extension (type 134, RFC 3115, P§2.8) at the very end of the
datagram::

    Type=134 Length Reserved(2) Vendor-ID(4) Vendor-NVSE-Type(2) Value
    vendor type 1 (origin):               addr(4) port(2)                      16 bytes
    vendor type 2 (authenticated origin): addr(4) port(2) SPI(4) auth(16)      36 bytes

The authenticator (type 2) covers the whole datagram from its first byte through the SPI
(the request with the tag header and origin), with the SLB-HA security association's
algorithm (keyed MD5 prefix+suffix by default, or HMAC-MD5), like RFC 5944 §3.5.1.

The real HA honours the tag only from configured SLB addresses, and only authenticated
when it has an SLB-HA SA (an authenticated tag it cannot check is refused), removes it,
processes the original request bytes (whose own authenticators are untouched) and replies
directly to the original address and port.
Vendor id default 32473 (IANA "example" enterprise number, RFC 5612).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Final

from mobileha.wire import DecodeError, ip_str_cached
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator

EXT_NVSE: Final = 134
DEFAULT_VENDOR_ID: Final = 32473
TAG_ORIGIN: Final = 1
TAG_ORIGIN_AUTH: Final = 2

_HDR = struct.Struct("!BBHIH")  # type, length, reserved, vendor id, vendor type (10 bytes)
_ORIGIN = struct.Struct("!4sH")
_SPI = struct.Struct("!I")
PLAIN_LEN: Final = _HDR.size + _ORIGIN.size  # 16
AUTH_LEN: Final = PLAIN_LEN + 4 + 16  # 36


def _auth(key: bytes | Authenticator, algorithm: str) -> Authenticator:
    return key if isinstance(key, Authenticator) else Authenticator(key, algorithm)


def encode(
    payload: bytes,
    orig_addr: str,
    orig_port: int,
    *,
    vendor_id: int = DEFAULT_VENDOR_ID,
    key: bytes | Authenticator | None = None,
    spi: int = 0,
    algorithm: str = ALG_PREFIX_SUFFIX,
) -> bytes:
    """``payload`` + the tag (authenticated when ``key`` is given)."""
    addr = socket.inet_aton(orig_addr)
    if key is None:
        return (
            payload
            + _HDR.pack(EXT_NVSE, PLAIN_LEN - 2, 0, vendor_id, TAG_ORIGIN)
            + _ORIGIN.pack(addr, orig_port)
        )
    covered = (
        payload
        + _HDR.pack(EXT_NVSE, AUTH_LEN - 2, 0, vendor_id, TAG_ORIGIN_AUTH)
        + _ORIGIN.pack(addr, orig_port)
        + _SPI.pack(spi)
    )
    return covered + _auth(key, algorithm).compute(covered)


def encoder(
    *,
    vendor_id: int = DEFAULT_VENDOR_ID,
    key: bytes | Authenticator | None = None,
    spi: int = 0,
    algorithm: str = ALG_PREFIX_SUFFIX,
) -> Callable[[bytes, str, int], bytes]:
    """A fast ``(payload, orig_addr, orig_port) -> tagged`` for one SLB's settings (the
    constant parts are packed once); same bytes as :func:`encode`."""
    aton = socket.inet_aton
    if key is None:
        head = _HDR.pack(EXT_NVSE, PLAIN_LEN - 2, 0, vendor_id, TAG_ORIGIN)

        def plain(payload: bytes, orig_addr: str, orig_port: int) -> bytes:
            return payload + head + aton(orig_addr) + orig_port.to_bytes(2, "big")

        return plain
    auth = _auth(key, algorithm)
    ahead = _HDR.pack(EXT_NVSE, AUTH_LEN - 2, 0, vendor_id, TAG_ORIGIN_AUTH)
    spib = _SPI.pack(spi)
    compute = auth.compute

    def authed(payload: bytes, orig_addr: str, orig_port: int) -> bytes:
        covered = payload + ahead + aton(orig_addr) + orig_port.to_bytes(2, "big") + spib
        return covered + compute(covered)

    return authed


_HEADS: dict[int, tuple[bytes, bytes]] = {}


def _heads(vendor_id: int) -> tuple[bytes, bytes]:
    """The 10 constant header bytes of the (plain, authenticated) tag for a vendor id."""
    h = _HEADS.get(vendor_id)
    if h is None:
        if len(_HEADS) > 64:
            _HEADS.clear()
        h = _HEADS[vendor_id] = (
            _HDR.pack(EXT_NVSE, PLAIN_LEN - 2, 0, vendor_id, TAG_ORIGIN),
            _HDR.pack(EXT_NVSE, AUTH_LEN - 2, 0, vendor_id, TAG_ORIGIN_AUTH),
        )
    return h


def plain_head(vendor_id: int = DEFAULT_VENDOR_ID) -> bytes:
    """The 10 constant bytes that start a plain tag (the origin's address and port follow):
    what :func:`mobileha._slbio.send_relay` puts behind each datagram before them."""
    return _heads(vendor_id)[0]


# A plain tag seen before (its 16 bytes, which include the vendor id) -> (origin address,
# port, vendor id): an SLB relays for a limited set of FAs/PDSNs, so most tags repeat and
# decode() answers them with one slice and one lookup. Bounded: cleared at 4,096 entries.
_ORIGINS: dict[bytes, tuple[str, int, int]] = {}
_ORIGINS_MAX: Final = 4096


def has_tag(data: bytes, vendor_id: int = DEFAULT_VENDOR_ID) -> bool:
    """Whether ``data`` ends with a relay tag (either kind)."""
    o = _ORIGINS.get(data[-PLAIN_LEN:])
    if o is not None and o[2] == vendor_id:
        return True
    h = _HEADS.get(vendor_id)
    plain, authed = h if h is not None else _heads(vendor_id)
    return data[-AUTH_LEN : -AUTH_LEN + 10] == authed or data[-PLAIN_LEN:-6] == plain


def decode(
    data: bytes,
    key: bytes | Authenticator | None = None,
    *,
    vendor_id: int = DEFAULT_VENDOR_ID,
    spi: int | None = None,
    algorithm: str = ALG_PREFIX_SUFFIX,
) -> tuple[str, int, bytes]:
    """Find and check the tag at the end of ``data``.

    Returns ``(orig_addr, orig_port, payload_without_tag)``. Raises DecodeError with reason
    ``slbtag-missing`` (no tag), ``slbtag-unauthenticated`` (``key`` given but the tag has no
    authenticator), ``slbtag-bad-spi`` or ``slbtag-bad-auth``, and ``slbtag-unverifiable``
    for an authenticated tag without ``key``: a receiver that cannot check the
    authenticator does not take the tag as if it had been checked.
    """
    n = len(data)
    start = n - AUTH_LEN
    # an authenticated tag first (its header starts with the NVSE type byte)
    if start >= 0 and data[start] == EXT_NVSE:
        h = _HEADS.get(vendor_id)
        authed = h[1] if h is not None else _heads(vendor_id)[1]
        if data[start : start + 10] == authed:
            addr, port = _ORIGIN.unpack_from(data, start + _HDR.size)
            if key is None:
                raise DecodeError("slbtag-unverifiable", "authenticated relay tag, no SLB-HA SA")
            (got_spi,) = _SPI.unpack_from(data, start + PLAIN_LEN)
            if spi is not None and got_spi != spi:
                raise DecodeError("slbtag-bad-spi", f"SPI {got_spi}")
            if not _auth(key, algorithm).verify(data[: n - 16], data[n - 16 :]):
                raise DecodeError("slbtag-bad-auth", "SLB-HA authenticator mismatch")
            return ip_str_cached(addr), port, data[:start]
    start = n - PLAIN_LEN
    if start < 0:
        raise DecodeError("slbtag-missing", "no HA-SLB relay tag at the end of the datagram")
    tag = data[start:]
    o = _ORIGINS.get(tag)
    if o is None or o[2] != vendor_id:
        h = _HEADS.get(vendor_id)
        plain = h[0] if h is not None else _heads(vendor_id)[0]
        if not tag.startswith(plain):
            raise DecodeError("slbtag-missing", "no HA-SLB relay tag at the end of the datagram")
        if len(_ORIGINS) >= _ORIGINS_MAX:
            _ORIGINS.clear()
        o = _ORIGINS[tag] = (ip_str_cached(tag[10:14]), (tag[14] << 8) | tag[15], vendor_id)
    if key is not None:
        raise DecodeError("slbtag-unauthenticated", "relay tag without authenticator")
    return o[0], o[1], data[:start]


__all__ = [
    "AUTH_LEN",
    "DEFAULT_VENDOR_ID",
    "EXT_NVSE",
    "PLAIN_LEN",
    "TAG_ORIGIN",
    "TAG_ORIGIN_AUTH",
    "decode",
    "encode",
    "encoder",
    "has_tag",
    "plain_head",
]
