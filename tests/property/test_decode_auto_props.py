"""`mobileha decode` without `--kind` never takes a real Registration Request for another
family, whatever its flags, lifetime, addresses and Identification (a request with flags 0
starts like a DFP header, one with flags 0x28 like an HSRPv2 TLV)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mobileha.tools.decode import decode_one
from tests.helpers import request

addr = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))


@settings(max_examples=400, deadline=None)
@given(
    flags=st.integers(0, 255),
    lifetime=st.integers(0, 0xFFFF),
    home=addr,
    ha=addr,
    coa=addr,
    ident=st.integers(0, 2**64 - 1),
    nai=st.none() | st.text("abcdefghij@.", min_size=1, max_size=40),
    alg=st.sampled_from(["hmac-md5", "md5-prefix-suffix"]),
    spi=st.integers(256, 2**32 - 1),
)
def test_every_authenticated_request_decodes_as_mobile_ip(
    flags: int,
    lifetime: int,
    home: str,
    ha: str,
    coa: str,
    ident: int,
    nai: str | None,
    alg: str,
    spi: int,
) -> None:
    msg = request(
        flags=flags,
        lifetime=lifetime,
        home_addr=home,
        ha_addr=ha,
        care_of=coa,
        ident=ident,
        nai=nai,
        key=b"k" * 16,
        alg=alg,
        spi=spi,
    )
    d = decode_one(msg)
    assert d.get("protocol") == "mip" and "error" not in d, d
    assert int(d["mip.ident"], 16) == ident and d["message"] == "Registration Request"
