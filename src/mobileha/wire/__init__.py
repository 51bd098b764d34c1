"""Wire codecs: Mobile IP, HSRP, DFP, HA-HA sync, IP encapsulation headers and ARP.

Codecs only: no state, no I/O. Every decoder raises :class:`DecodeError` (or a subclass)
and nothing else; every encoder is the exact inverse of its decoder for canonical bytes.
"""

from __future__ import annotations

import socket


class DecodeError(ValueError):
    """A datagram or header could not be decoded.

    ``reason`` is a short, stable, machine-friendly string (used as a metrics label and
    for rate-limited logging), e.g. ``"short"``, ``"bad-length"``, ``"bad-type"``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class UnknownCriticalExtension(DecodeError):
    """A non-skippable Mobile IP extension (type < 128) that we do not understand.

    RFC 5944 §3.8: the home agent must silently discard such a request, so callers can
    tell this kind apart from an ordinary malformed datagram.
    """

    def __init__(self, ext_type: int) -> None:
        super().__init__("unknown-critical-extension", f"type {ext_type}")
        self.ext_type = ext_type


def ip_bytes(addr: str) -> bytes:
    """Dotted quad -> 4 bytes; ValueError otherwise (``inet_aton`` alone accepts "10.1")."""
    try:
        if addr.count(".") == 3:
            return socket.inet_aton(addr)
    except OSError:
        pass
    raise ValueError(f"not a dotted-quad IPv4 address: {addr!r}")


def ip_str(raw: bytes) -> str:
    """4 bytes -> dotted quad."""
    return socket.inet_ntoa(raw)


# 4 bytes -> dotted quad, for the hot paths (care-of, FA/PDSN and SLB addresses repeat;
# inet_ntoa costs ~0.5 us). Readers may ``.get`` it directly before calling ip_str_cached.
IP_STR_CACHE: dict[bytes, str] = {}


def ip_str_cached(raw: bytes) -> str:
    """:func:`ip_str` through :data:`IP_STR_CACHE` (bounded: cleared at 4,096 entries)."""
    s = IP_STR_CACHE.get(raw)
    if s is None:
        if len(IP_STR_CACHE) >= 4096:
            IP_STR_CACHE.clear()
        s = IP_STR_CACHE[raw] = socket.inet_ntoa(raw)
    return s


__all__ = [
    "IP_STR_CACHE",
    "DecodeError",
    "UnknownCriticalExtension",
    "ip_bytes",
    "ip_str",
    "ip_str_cached",
]
