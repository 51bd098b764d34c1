"""One Registration Request builder for every test, on mobileha's own encoder
(``wire.mip``) and authenticators (``wire.auth``).

Tests that must not trust mobileha's codec (interop against scapy/tshark, the C reader's
malformed-length cases) build their bytes independently and say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mobileha.wire.auth import Authenticator
from mobileha.wire.mip import EXT_FA_HA, EXT_MN_HA, NaiExt, RegistrationRequest, append_auth


def request(
    *,
    ha_addr: str,
    ident: int,
    care_of: str = "0.0.0.0",
    home_addr: str = "0.0.0.0",
    flags: int = 0,
    lifetime: int = 1800,
    nai: str | None = None,
    before: Iterable[Any] = (),
    key: bytes | None = None,
    spi: int = 256,
    alg: str = "hmac-md5",
    after: Iterable[Any] = (),
    fa_key: bytes | None = None,
    fa_spi: int = 300,
    fa_alg: str = "hmac-md5",
) -> bytes:
    """A Registration Request in the order of RFC 5944 §3.6.1.3: fixed part, NAI
    (RFC 2794), the ``before`` extensions, the MN-HA authenticator (when ``key`` is given),
    the ``after`` extensions (e.g. a GRE key CVSE), the FA-HA authenticator (``fa_key``).
    Extensions are ``wire.mip`` extension objects (anything with ``encode()``)."""
    msg = RegistrationRequest(
        flags=flags,
        lifetime=lifetime,
        home_addr=home_addr,
        ha_addr=ha_addr,
        care_of=care_of,
        ident=ident,
    ).header()
    if nai is not None:
        msg += NaiExt(nai).encode()
    for e in before:
        msg += e.encode()
    if key is not None:
        msg = append_auth(msg, EXT_MN_HA, spi, Authenticator(key, alg))
    for e in after:
        msg += e.encode()
    if fa_key is not None:
        msg = append_auth(msg, EXT_FA_HA, fa_spi, Authenticator(fa_key, fa_alg))
    return msg


SLB_VSERVER = ("10.0.0.100", 434)


def farm_request(
    farm: Any, key: str | tuple[str, str], ident: int, client: str, now: float, port: int = 0
) -> Any:
    """A Registration Request of session ``key`` from the FA ``client`` into a
    :class:`mobileha.core.slb.ServerFarm`: the NAI ``key``, or, for a ``(home address, FA)``
    key, a request without an NAI from that home address. Returns the farm's Decision."""
    if isinstance(key, str):
        req = RegistrationRequest(lifetime=1800, ident=ident, extensions=[NaiExt(key)])
    else:
        req = RegistrationRequest(lifetime=1800, ident=ident, home_addr=key[0])
    return farm.receive_datagram(req.encode(), (client, port), SLB_VSERVER, now)
