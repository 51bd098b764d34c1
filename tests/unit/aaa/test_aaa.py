"""AAA backends without network: local table, MN-AAA checks, RADIUS packet mapping."""

from __future__ import annotations

import asyncio
import hashlib

from pyrad import packet as rpacket

from mobileha.aaa.base import MnAaaAuth
from mobileha.aaa.local import LocalAaa, LocalUser
from mobileha.aaa.radius import RadiusAaa, load_dictionary
from mobileha.compose import aaa_backend
from mobileha.config import AaaConfig, AaaUser, Endpoint
from mobileha.wire.auth import chap_radius_fields, mn_aaa_chap_authenticator

KEY = b"mn-aaa-secret"
CHAL = bytes(range(100, 116))
COVERED = b"\x01\x00\x07\x08" + bytes(20) + b"\x24\x01\x00\x14\x00\x00\x00\x02"


def mn_aaa(key: bytes = KEY, spi: int = 2) -> MnAaaAuth:
    return MnAaaAuth(spi, mn_aaa_chap_authenticator(key, CHAL, COVERED), CHAL, COVERED)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_mn_aaa_chap_matches_radius_chap() -> None:
    a = mn_aaa()
    ident, chal = a.chap_fields()
    assert ident == CHAL[0]
    assert chal == hashlib.md5(COVERED).digest() + CHAL
    # RADIUS CHAP: MD5(ident || password || challenge) == the MN-AAA authenticator
    assert hashlib.md5(bytes([ident]) + KEY + chal).digest() == a.authenticator
    assert a.chap_password() == bytes([ident]) + a.authenticator
    assert a.verify(KEY) and not a.verify(b"other")
    assert (ident, chal) == chap_radius_fields(CHAL, COVERED)


def test_local_table() -> None:
    aaa = LocalAaa(
        [
            LocalUser("a@x", home_agent="10.0.0.100", home_address="10.1.0.9", key=KEY),
            LocalUser("b@x"),
        ]
    )
    r = run(aaa.authorize("a@x", mn_aaa()))
    assert r.accepted and r.ha_address == "10.0.0.100" and r.home_address == "10.1.0.9"
    r = run(aaa.authorize("a@x", mn_aaa(b"wrong")))
    assert not r.accepted and r.reply_code == 108
    r = run(aaa.authorize("nobody@x"))
    assert not r.accepted and r.reply_code == 67
    r = run(aaa.authorize("nobody@x", mn_aaa()))
    assert r.reply_code == 108
    r = run(aaa.authorize("b@x"))
    assert r.accepted and r.ha_address is None and r.home_address is None
    r = run(aaa.authorize("b@x", mn_aaa()))  # no key for b: cannot pass MN-AAA
    assert r.reply_code == 108
    assert aaa.stats()["requests"] == 6


def test_local_empty_table_accepts_everyone() -> None:
    aaa = LocalAaa()
    assert not aaa.enabled
    assert run(aaa.authorize("any@x")).accepted


def test_backend_from_config() -> None:
    cfg = AaaConfig(users=(AaaUser("u@x", home_agent="10.0.0.1", key=KEY, spi=300),))
    b = aaa_backend(cfg)
    assert isinstance(b, LocalAaa) and b.users["u@x"].home_agent == "10.0.0.1"
    r = aaa_backend(
        AaaConfig(
            backend="radius",
            radius_server=Endpoint("127.0.0.1", 1812),
            radius_secret=b"s",
            nas_identifier="fa1",
        )
    )
    assert isinstance(r, RadiusAaa) and r.server == ("127.0.0.1", 1812)


def test_radius_request_encoding() -> None:
    r = RadiusAaa(("127.0.0.1", 1812), b"testing123", nas_identifier="pdsn1", nas_ip="127.0.0.2")
    pkt = r.build_request(7, "mn1@example.net", mn_aaa())
    raw = pkt.RequestPacket()
    dec = rpacket.AuthPacket(secret=b"testing123", dict=load_dictionary(), packet=raw)
    assert dec.code == rpacket.AccessRequest and dec.id == 7
    assert dec["User-Name"] == ["mn1@example.net"]
    ident, chal = mn_aaa().chap_fields()
    assert dec["CHAP-Password"] == [bytes([ident]) + mn_aaa().authenticator]
    assert dec["CHAP-Challenge"] == [chal]
    assert dec["NAS-Identifier"] == ["pdsn1"] and dec["NAS-IP-Address"] == ["127.0.0.2"]
    assert dec.verify_message_authenticator(secret=b"testing123")
    # pyrad's own CHAP check agrees (the server side of the same computation)
    assert dec.VerifyChapPasswd(KEY)


def test_radius_reply_mapping() -> None:
    r = RadiusAaa(("127.0.0.1", 1812), b"testing123")
    req = r.build_request(9, "mn1@example.net", mn_aaa())
    req.RequestPacket()
    acc = req.CreateReply()
    acc["Framed-IP-Address"] = "10.1.0.50"
    acc["3GPP2-Home-Agent-IP-Address"] = "10.0.0.100"
    raw = acc.ReplyPacket()
    res = r._result(req, raw, mn_aaa())
    assert res.accepted and res.ha_address == "10.0.0.100" and res.home_address == "10.1.0.50"
    rej = req.CreateReply()
    rej.code = rpacket.AccessReject
    assert r._result(req, rej.ReplyPacket(), mn_aaa()).reply_code == 108
    assert r._result(req, rej.ReplyPacket(), None).reply_code == 67


def test_radius_unsupported_spi_rejected_without_network() -> None:
    r = RadiusAaa(("127.0.0.1", 9), b"x")
    res = run(r.authorize("a@x", mn_aaa(spi=300)))
    assert not res.accepted and res.reply_code == 108


def _salt_encrypt(secret: bytes, vector: bytes, salt: bytes, key: bytes) -> bytes:
    """RFC 2868 §3.5 written out here (independent of wire.auth): salt, then the length
    byte, the key and zero padding XORed with MD5(secret || vector || salt), chained."""
    plain = bytes([len(key)]) + key
    plain += bytes(-len(plain) % 16)
    out, last = b"", vector + salt
    for i in range(0, len(plain), 16):
        b = hashlib.md5(secret + last).digest()
        c = bytes(x ^ y for x, y in zip(plain[i : i + 16], b, strict=True))
        out += c
        last = c
    return salt + out


def test_radius_sa_fetch_request_and_answers() -> None:
    r = RadiusAaa(("127.0.0.1", 1812), b"testing123", nas_identifier="ha1")
    req = r._access_request(11, "mn7@aaa.example")
    req["Service-Type"] = 17
    req["3GPP2-MN-HA-SPI"] = 1000
    raw = req.RequestPacket()
    dec = rpacket.AuthPacket(secret=b"testing123", dict=load_dictionary(), packet=raw)
    assert dec["User-Name"] == ["mn7@aaa.example"] and dec["3GPP2-MN-HA-SPI"] == [1000]
    assert dec.verify_message_authenticator(secret=b"testing123")
    key = b"a twenty-byte key!!!"  # more than one 16-byte block once hidden
    acc = req.CreateReply()
    acc["3GPP2-MN-HA-SPI"] = 1001
    acc["3GPP2-MN-HA-Shared-Key"] = _salt_encrypt(
        b"testing123", req.authenticator, b"\x80\x01", key
    )
    acc["Framed-IP-Address"] = "10.1.0.9"
    ans = r._sa_answer(req, acc.ReplyPacket(), 1000)
    assert ans.accepted and ans.key == key and ans.spi == 1001 and ans.home_address == "10.1.0.9"
    # no SPI in the answer: the requested one; no key: an error, not an SA
    acc = req.CreateReply()
    acc["3GPP2-MN-HA-Shared-Key"] = _salt_encrypt(
        b"testing123", req.authenticator, b"\x81\x02", key
    )
    assert r._sa_answer(req, acc.ReplyPacket(), 1000).spi == 1000
    assert r._sa_answer(req, req.CreateReply().ReplyPacket(), 1000).reason == "error"
    rej = req.CreateReply()
    rej.code = rpacket.AccessReject
    assert r._sa_answer(req, rej.ReplyPacket(), 1000).reason == "reject"
    assert r.stats()["sa_errors"] == 1 and r.stats()["rejects"] == 1
