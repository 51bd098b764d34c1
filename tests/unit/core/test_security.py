"""SecurityAssociations: lookups, reserved SPIs refused, pre-keyed authenticators."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from mobileha.core.security import MobilitySA, SecurityAssociations, SecurityConfigError


def test_lookup_by_nai_hoa_and_fa() -> None:
    s = SecurityAssociations()
    sa = MobilitySA(256, b"k" * 16, "hmac-md5", nai="a@x", home_address="10.1.0.1")
    s.add_mn(sa)
    assert s.mn("a@x", 256) is sa and s.mn("10.1.0.1", 256) is sa
    assert s.mn("a@x", 257) is None and s.mn_known("a@x") is sa
    fa = MobilitySA(300, b"f" * 16)
    s.add_fa("10.0.2.2", fa)
    assert s.fa("10.0.2.2", 300) is fa and s.has_fa("10.0.2.2") and not s.has_fa("10.0.2.3")
    assert fa.algorithm == "md5-prefix-suffix"  # Cisco default


@pytest.mark.parametrize("spi", [0, 1, 2, 255])
def test_reserved_spis_refused(spi: int) -> None:
    s = SecurityAssociations()
    with pytest.raises(SecurityConfigError):
        s.add_mn(MobilitySA(spi, b"k", nai="a@x"))
    with pytest.raises(SecurityConfigError):
        s.add_fa("10.0.2.2", MobilitySA(spi, b"k"))


def test_bad_config_refused() -> None:
    with pytest.raises(SecurityConfigError):
        MobilitySA(256, b"k", "sha1")
    with pytest.raises(SecurityConfigError):
        MobilitySA(256, b"k", replay="none")
    s = SecurityAssociations()
    with pytest.raises(SecurityConfigError):
        s.add_mn(MobilitySA(256, b"k"))  # no identity
    s.add_mn(MobilitySA(256, b"k", nai="a@x"))
    with pytest.raises(SecurityConfigError):
        s.add_mn(MobilitySA(256, b"k", nai="a@x"))


def test_authenticators_match_hashlib() -> None:
    key, msg = bytes(range(16)), b"covered bytes"
    assert (
        MobilitySA(256, key, "hmac-md5").auth.compute(msg)
        == hmac.new(key, msg, hashlib.md5).digest()
    )
    assert MobilitySA(256, key).auth.compute(msg) == hashlib.md5(key + msg + key).digest()
