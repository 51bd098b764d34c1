"""Mobile IP authenticators and Identification helpers (P§1.6, P§1.7, P§2.4).

* MN-HA (32), MN-FA (33), FA-HA (34) and the project's HA-HA extension (P§5.4) all use
  :class:`Authenticator`: HMAC-MD5 (RFC 5944 default) or keyed MD5 "prefix+suffix"
  (RFC 2002/3344, the Cisco IOS default ``cmiSecAlgorithmMode prefixSuffix``).
* The authenticator covers the message from its first byte through the extension's own
  Type, Length and SPI (RFC 5944 §3.5.1); callers pass exactly those bytes as ``covered``.
* MN-AAA with SPI CHAP_SPI (RFC 4721 §8): ``MD5(challenge[0] || key ||
  MD5(preceding || type, subtype, length, SPI) || challenge[-237:])`` -- the same shape as a
  RADIUS CHAP response with identifier ``challenge[0]`` and challenge
  ``MD5(...) || challenge[-237:]`` (see :func:`chap_radius_fields`).

Keys are pre-processed once per security association (a pre-keyed HMAC or MD5 object
that is ``.copy()``-ed per message), which is what keeps verification near 1 µs.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

ALG_HMAC_MD5: Final = "hmac-md5"
ALG_PREFIX_SUFFIX: Final = "md5-prefix-suffix"
ALGORITHMS: Final = (ALG_HMAC_MD5, ALG_PREFIX_SUFFIX)

CHAP_SPI: Final = 2  # RFC 4721 §9
SPI_MIN_VALID: Final = 256  # SPIs 0-255 are reserved (RFC 5944 §3.5.1)
AUTH_LEN: Final = 16  # 128-bit MD5 digest

NTP_EPOCH_OFFSET: Final = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_U32: Final = 0xFFFFFFFF


class Authenticator:
    """A keyed authenticator for one security association.

    >>> a = Authenticator(bytes(range(16)), ALG_HMAC_MD5)
    >>> len(a.compute(b"x"))
    16
    """

    __slots__ = ("_base", "_outer", "algorithm", "key")

    def __init__(self, key: bytes, algorithm: str = ALG_HMAC_MD5) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown authentication algorithm {algorithm!r}")
        self.key = key
        self.algorithm = algorithm
        self._outer: Any = None
        if algorithm == ALG_HMAC_MD5:
            # RFC 2104 with the two padded-key blocks hashed once: per message, two
            # hashlib copies (hmac.HMAC.copy builds a Python object each time)
            k = hashlib.md5(key).digest() if len(key) > 64 else key
            k = k.ljust(64, b"\0")
            self._base: Any = hashlib.md5(bytes(x ^ 0x36 for x in k))
            self._outer = hashlib.md5(bytes(x ^ 0x5C for x in k))
        else:
            self._base = hashlib.md5(key)

    def compute(self, covered: bytes | bytearray | memoryview) -> bytes:
        """The 16-byte authenticator over ``covered``."""
        m = self._base.copy()
        m.update(covered)
        outer = self._outer
        if outer is not None:  # HMAC-MD5
            o = outer.copy()
            o.update(m.digest())
            digest: bytes = o.digest()
            return digest
        m.update(self.key)
        digest = m.digest()
        return digest

    def verify(self, covered: bytes | bytearray | memoryview, authenticator: bytes) -> bool:
        """Constant-time comparison of ``authenticator`` with the expected value."""
        return hmac.compare_digest(self.compute(covered), authenticator)


def compute_authenticator(key: bytes, algorithm: str, covered: bytes) -> bytes:
    """One-shot form of :meth:`Authenticator.compute`."""
    return Authenticator(key, algorithm).compute(covered)


def chap_radius_fields(challenge: bytes, preceding_with_header: bytes) -> tuple[int, bytes]:
    """RADIUS CHAP identifier and CHAP-Challenge for an MN-AAA (CHAP_SPI) authenticator.

    ``preceding_with_header`` is the Mobile IP data before the MN-AAA extension followed by
    that extension's Type, Subtype, Length and SPI. A RADIUS server verifies the MN-AAA
    authenticator as CHAP: ``MD5(ident || secret || chap_challenge)``.
    """
    if not challenge:
        challenge = b"\x00"  # RFC 4721 §3.5: co-located MNs use the challenge value 0
    inner = hashlib.md5(preceding_with_header).digest()
    return challenge[0], inner + challenge[-237:]


def mn_aaa_chap_authenticator(key: bytes, challenge: bytes, preceding_with_header: bytes) -> bytes:
    """The RFC 4721 §8 CHAP-style MN-AAA authenticator (SPI = CHAP_SPI)."""
    ident, chap_challenge = chap_radius_fields(challenge, preceding_with_header)
    return hashlib.md5(bytes((ident,)) + key + chap_challenge).digest()


# --- key hiding (RFC 2868 §3.5) --------------------------------------------------------

HIDE_BLOCK: Final = 16


def hidden_len(key_len: int) -> int:
    """Length of a hidden key of ``key_len`` bytes: the length byte, the key and zero
    padding to a multiple of 16 (RFC 2868 §3.5)."""
    return -(-(1 + key_len) // HIDE_BLOCK) * HIDE_BLOCK


def hide_key(secret: bytes, vector: bytes, key: bytes) -> bytes:
    """The RFC 2868 §3.5 encryption of ``key`` (Tunnel-Password and the RADIUS attributes
    marked ``encrypt=2``, e.g. 3GPP2-MN-HA-Shared-Key): plaintext ``P = len(key) || key ||
    zero padding`` in 16-byte blocks ``p(i)``, ``b(1) = MD5(secret || vector)``, ``c(i) =
    p(i) xor b(i)``, ``b(i) = MD5(secret || c(i-1))``. RADIUS uses the Request
    Authenticator followed by the 2-byte salt as ``vector``; the HA-HA sync record uses its
    own 16-byte salt. Keys of at most 255 bytes."""
    if len(key) > 255:
        raise ValueError("a hidden key has at most 255 bytes")
    plain = bytes((len(key),)) + key
    plain += bytes(hidden_len(len(key)) - len(plain))
    out = bytearray()
    last = vector
    for i in range(0, len(plain), HIDE_BLOCK):
        b = hashlib.md5(secret + last).digest()
        c = bytes(x ^ y for x, y in zip(plain[i : i + HIDE_BLOCK], b, strict=True))
        out += c
        last = c
    return bytes(out)


def reveal_key(secret: bytes, vector: bytes, hidden: bytes) -> bytes:
    """The inverse of :func:`hide_key`; ValueError when ``hidden`` is not a multiple of 16
    bytes or its length byte points past the end (a wrong secret or vector, usually)."""
    if not hidden or len(hidden) % HIDE_BLOCK:
        raise ValueError(f"hidden key of {len(hidden)} bytes (a multiple of 16 is needed)")
    plain = bytearray()
    last = vector
    for i in range(0, len(hidden), HIDE_BLOCK):
        c = hidden[i : i + HIDE_BLOCK]
        b = hashlib.md5(secret + last).digest()
        plain += bytes(x ^ y for x, y in zip(c, b, strict=True))
        last = c
    n = plain[0]
    if n + 1 > len(plain):
        raise ValueError("hidden key length byte beyond the data (wrong secret?)")
    return bytes(plain[1 : 1 + n])


# --- Identification (P§1.7) -------------------------------------------------------------


def ntp_identification(unix_time: float, low: int) -> int:
    """A timestamp Identification: NTP seconds (since 1900) in the high 32 bits, ``low`` in
    the low 32 bits (RFC 5944 §5.7 lets the sender randomise them; the MN matches replies
    on them)."""
    seconds = (int(unix_time) + NTP_EPOCH_OFFSET) & _U32
    return (seconds << 32) | (low & _U32)


def ident_seconds(ident: int) -> int:
    """The NTP seconds of a timestamp Identification."""
    return (ident >> 32) & _U32


def ident_unix_time(ident: int) -> float:
    """The Unix time of a timestamp Identification (whole seconds + fraction)."""
    return ((ident >> 32) & _U32) - NTP_EPOCH_OFFSET + (ident & _U32) / 2**32


def timestamp_acceptable(
    ident: int, last_ident: int | None, unix_now: float, tolerance_s: float
) -> bool:
    """RFC 5944 §5.7: within ``tolerance_s`` of our clock and newer than the last accepted."""
    if last_ident is not None and ident <= last_ident:
        return False
    delta = ((ident >> 32) & _U32) - ((int(unix_now) + NTP_EPOCH_OFFSET) & _U32)
    return abs(delta) <= tolerance_s


def mismatch_reply_ident(request_ident: int, unix_now: float) -> int:
    """Reply Identification for a timestamp 133 rejection: our time, the request's low bits."""
    return ntp_identification(unix_now, request_ident & _U32)


def nonce_reply_ident(request_ident: int, new_nonce: int) -> int:
    """Nonce method: a fresh nonce in the high 32 bits, the request's low 32 bits."""
    return ((new_nonce & _U32) << 32) | (request_ident & _U32)


__all__ = [
    "ALGORITHMS",
    "ALG_HMAC_MD5",
    "ALG_PREFIX_SUFFIX",
    "AUTH_LEN",
    "CHAP_SPI",
    "HIDE_BLOCK",
    "NTP_EPOCH_OFFSET",
    "SPI_MIN_VALID",
    "Authenticator",
    "chap_radius_fields",
    "compute_authenticator",
    "hidden_len",
    "hide_key",
    "ident_seconds",
    "ident_unix_time",
    "mismatch_reply_ident",
    "mn_aaa_chap_authenticator",
    "nonce_reply_ident",
    "ntp_identification",
    "reveal_key",
    "timestamp_acceptable",
]
