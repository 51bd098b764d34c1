"""Codec benchmark (issue 2): decode + verify of a typical RRQ vs a bare struct unpack.

Prints rates for: the 24-byte fixed header unpack (baseline), the receivers' hot path
(parse_request: fixed header + one walk recording offsets, then MN-HA and FA-HA
verification), the span walk of the full decoders (walk_extensions + verification), full
object decoding, and full decode + verify; each as a ratio to the baseline measured in the
same run.

    .venv/bin/python bench/codec.py
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from mobileha.wire.auth import Authenticator
from mobileha.wire.mip import (
    EXT_FA_HA,
    EXT_MN_HA,
    AuthExt,
    NaiExt,
    RegistrationRequest,
    append_auth,
    decode,
    parse_request,
    walk_extensions,
)

N = 200_000
KEY = bytes(range(16))
MNHA = Authenticator(KEY, "hmac-md5")
FAHA = Authenticator(KEY[::-1], "md5-prefix-suffix")
FIXED = struct.Struct("!BBH4s4s4sQ")


def typical_rrq() -> bytes:
    req = RegistrationRequest(
        flags=0x02,
        lifetime=1800,
        home_addr="0.0.0.0",
        ha_addr="10.0.0.100",
        care_of="10.0.2.2",
        ident=0xE6B5A4C000000001,
        extensions=[NaiExt("mn000123@mobile.example.net")],
    )
    b = append_auth(req.encode(), EXT_MN_HA, 256, MNHA)
    return append_auth(b, EXT_FA_HA, 300, FAHA)


def rate(fn: Callable[[bytes], object], data: bytes, n: int = N) -> float:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(data)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def bare(data: bytes) -> object:
    return FIXED.unpack_from(data)


def lazy_verify(data: bytes) -> object:
    hdr = FIXED.unpack_from(data)
    nai = None
    ok = True
    for t, start, value, end in walk_extensions(data, 24):
        if t == 131:
            nai = data[value:end]
        elif t == EXT_MN_HA:
            ok = ok and MNHA.verify(data[: start + 6], data[value + 4 : end])
        elif t == EXT_FA_HA:
            ok = ok and FAHA.verify(data[: start + 6], data[value + 4 : end])
    assert ok
    return hdr, nai


def parsed_verify(data: bytes) -> object:
    p = parse_request(data)
    a, f = p.auth, p.faha
    assert MNHA.verify(data[: a + 6], data[a + 6 : a + 22])
    assert FAHA.verify(data[: f + 6], data[f + 6 : f + 22])
    return p


def full_decode(data: bytes) -> object:
    return decode(data)


def full_verify(data: bytes) -> object:
    msg = decode(data)
    assert msg.verify(msg.find(AuthExt, EXT_MN_HA), MNHA)
    assert msg.verify(msg.find(AuthExt, EXT_FA_HA), FAHA)
    return msg


def main() -> None:
    data = typical_rrq()
    base = rate(bare, data)
    print(f"typical RRQ: {len(data)} bytes (NAI + MN-HA HMAC-MD5 + FA-HA prefix+suffix)")
    print(f"{'case':<34}{'per second':>14}{'µs each':>10}{'ratio':>9}")
    for name, fn in [
        ("bare struct unpack (baseline)", bare),
        ("parse_request + verify (hot path)", parsed_verify),
        ("span walk + verify", lazy_verify),
        ("full decode", full_decode),
        ("full decode + verify", full_verify),
    ]:
        r = base if fn is bare else rate(fn, data, N // 4)
        print(f"{name:<34}{r:>14,.0f}{1e6 / r:>10.2f}{r / base:>9.3f}")


if __name__ == "__main__":
    main()
