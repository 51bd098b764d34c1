"""The one key table: every accepted key with its type, default and meaning.

:data:`SCHEMA` maps a table path (``"hsrp"``, ``"slb.real[]"``; ``[]`` marks an array of
tables) to its keys; each key is a :class:`Spec`. Validation
(:mod:`mobileha.config.validate`) checks values against it, loading fills defaults from
it, and the reference in ``docs/config.md`` and in the README is rendered from it by
:func:`reference_table` (``python -m mobileha.config.reference --write``; a test keeps the
files identical to the schema).

Value kinds: *addr* is a dotted-quad IPv4 address; *endpoint* is ``"addr:port"``; *prefix*
is ``"a.b.c.d/len"``; *secret* is ``"hex:00112233..."`` or ``"text:..."`` (stored as
``bytes``); *hsrp-auth* is ``"text:<up to 8 chars>"`` or ``"md5:<key>"``. Durations end in
``_s`` (seconds) or ``_ms`` (milliseconds). Defaults are Cisco's where Cisco has one
(PROTOCOLS P§1.7, P§4.1, P§6.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mobileha.config.model import (
    ALG_PREFIX_SUFFIX,
    ALGORITHMS,
    DEFAULT_LISTEN,
    DYNAMIC,
    FA_MAX_PENDING,
    REPLAY_METHODS,
    ROLES,
    SLB_MAX_SESSIONS,
    Endpoint,
)

REQUIRED: Any = object()  # the default of a key that must be given


@dataclass(frozen=True)
class Spec:
    """One key: how it is checked, its default and its one-line meaning (for the table)."""

    kind: str  # str, int, number, bool, addr, addr_or_dynamic, endpoint, prefix, secret,
    #            hsrp_auth, choice, addr_list
    default: Any = REQUIRED
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""
    default_doc: str | None = None  # shown instead of the default (derived defaults)
    missing: str | None = None  # the problem of a missing required key, when it needs words


def _i(default: Any, lo: int, hi: int, doc: str, default_doc: str | None = None) -> Spec:
    return Spec("int", default, lo, hi, doc=doc, default_doc=default_doc)


_SPI = Spec("int", REQUIRED, 256, 0xFFFFFFFF, doc="SPI")
_ALG = Spec("choice", ALG_PREFIX_SUFFIX, choices=ALGORITHMS, doc="authenticator algorithm")
_REPLAY = Spec("choice", "timestamp", choices=REPLAY_METHODS, doc="replay protection")
_PORT434 = _i(434, 1, 65535, "UDP registration port")
_BIG = 100_000_000


def _with(s: Spec, doc: str, **kw: Any) -> Spec:
    d = dict(s.__dict__)
    d.update(kw)
    d["doc"] = doc
    return Spec(**d)


SCHEMA: dict[str, dict[str, Spec]] = {
    "node": {
        "role": Spec("choice", choices=ROLES, doc="which node this process runs"),
        "name": Spec(
            "str", None, doc="node name in logs, views and metrics", default_doc="the role"
        ),
    },
    "management": {
        "listen": Spec(
            "endpoint",
            DEFAULT_LISTEN,
            doc="HTTP JSON API and /metrics (port 0 = any free port)",
        ),
        "enabled": Spec("bool", True, doc="serve the management API"),
    },
    "log": {
        "level": Spec(
            "choice",
            "info",
            choices=("debug", "info", "warning", "error"),
            doc="log level (`--log-level` overrides)",
        ),
        "format": Spec(
            "choice", "kv", choices=("kv", "json"), doc="key=value or JSON lines on stderr"
        ),
        "rate_limit_s": Spec(
            "number",
            10.0,
            0,
            None,
            doc="bad-input warnings: at most one per reason per interval",
        ),
    },
    "home_agent": {
        "address": Spec("addr", doc="real address of this HA (source of HA-HA sync, DFP)"),
        "port": _PORT434,
        "ha_address": Spec(
            "addr",
            None,
            doc="HA address advertised to MNs (the HSRP VIP when redundant)",
            default_doc="`hsrp.virtual_ip`, else `home_agent.address`",
        ),
        "trusted_slb": Spec(
            "addr_list",
            (),
            doc="SLB addresses whose relay tag (the FA's address and port) is honoured",
        ),
        "relay_vendor_id": _i(32473, 0, 0xFFFFFF, "vendor id of the SLB relay NVSE"),
        "max_lifetime": _i(36000, 1, 65535, "largest lifetime granted, seconds (65535 = infinite)"),
        "replay_tolerance": _i(7, 1, 3600, "timestamp replay window, seconds (SA default)"),
        "max_bindings": _i(1_000_000, 1, _BIG, "binding table size; beyond it code 130"),
        "home_prefix": Spec(
            "prefix",
            None,
            doc="virtual home network; required for dynamic home addresses",
            default_doc="none",
        ),
        "pool": Spec(
            "prefix",
            None,
            doc="dynamic home address pool, inside home_prefix",
            default_doc="`home_agent.home_prefix`",
        ),
        "reverse_tunnel": Spec("bool", True, doc="accept the T flag (RFC 3024)"),
        "gre": Spec("bool", True, doc="accept GRE encapsulation (G flag)"),
        "minimal_encap": Spec("bool", True, doc="accept minimal encapsulation (M flag)"),
        "reverse_tunnel_required": Spec(
            "bool", False, doc="refuse requests without the T flag (code 138, RFC 3024)"
        ),
        "simultaneous_bindings": _i(
            5, 1, 255, "care-of addresses per MN with the S flag (1 = unsupported, code 1)"
        ),
        "redirect_ha": Spec(
            "addr",
            None,
            doc="RFC 4433: answer dynamic-HA requests with 143 naming this HA",
            default_doc="none",
        ),
        "answer_duplicates": Spec(
            "bool",
            False,
            doc="answer a repeat of the accepted request (same ID) instead of 133",
        ),
        "journal": Spec(
            "str",
            None,
            doc="binding journal file: bindings survive a restart or kill -9 (no peer only)",
            default_doc="none (off)",
        ),
        "journal_commit_ms": _i(
            10,
            0,
            100,
            "journal group commit interval: at most this much is lost by a kill -9 "
            "(0 = a write per datagram)",
        ),
        "journal_fsync": Spec(
            "bool", False, doc="fdatasync each journal write too (survives a host crash)"
        ),
        # registration revocation (RFC 3543)
        "revocation": Spec(
            "bool", False, doc="negotiate registration revocation with FAs (RFC 3543)"
        ),
        "advertise_interface": Spec(
            "str",
            None,
            doc="home link to send agent advertisements on (H flag)",
            default_doc="none (off)",
        ),
        "advertise_interval_ms": _i(1000, 50, 1_800_000, "home agent advertisement interval"),
    },
    "home_agent.slb_sa[]": {
        "address": Spec("addr", doc="SLB whose relay tag must carry this SA's authenticator"),
        "spi": _SPI,
        "key": Spec("secret", doc="shared key"),
        "algorithm": _ALG,
    },
    "mobile_node[]": {
        "nai": Spec(
            "str",
            None,
            doc="NAI (RFC 2794), a realm (`@example.net`) or a glob pattern (`mn-*@example.net`); "
            "required with a dynamic home address",
            default_doc="none",
        ),
        "home_address": Spec(
            "addr_or_dynamic", DYNAMIC, doc="static home address, or dynamic from the pool"
        ),
        "spi": Spec(
            "int", None, 256, 0xFFFFFFFF, doc="MN-HA SPI (sa_source inline)", default_doc="none"
        ),
        "key": Spec("secret", None, doc="MN-HA key (sa_source inline)", default_doc="none"),
        "sa_source": Spec(
            "choice",
            "inline",
            choices=("inline", "aaa", "file"),
            doc="where the MN-HA SA comes from: spi/key here, RADIUS ([aaa]) at the first "
            "registration, or `file`",
        ),
        "file": Spec(
            "str",
            None,
            doc="sa_source file: subscriber file, one `nai spi key [home_address]` per line",
            default_doc="none",
        ),
        "algorithm": _with(_ALG, "MN-HA authenticator algorithm"),
        "replay": _with(_REPLAY, "replay protection (RFC 5944 §5.7)"),
        "replay_tolerance": _i(
            None, 1, 3600, "timestamp window, seconds", "`home_agent.replay_tolerance`"
        ),
        "lifetime": _i(
            None, 1, 65535, "largest lifetime granted to this MN", "`home_agent.max_lifetime`"
        ),
    },
    "foreign_agent[]": {
        "address": Spec("addr", doc="FA/PDSN address (IP source of its RRQs)"),
        "spi": _with(_SPI, "FA-HA SPI"),
        "key": Spec("secret", doc="FA-HA key"),
        "algorithm": _with(_ALG, "FA-HA authenticator algorithm"),
        "replay": _REPLAY,
        "replay_tolerance": _i(
            None, 1, 3600, "timestamp window, seconds", "`home_agent.replay_tolerance`"
        ),
    },
    "hsrp": {
        "interface": Spec("str", "lo", doc="interface that carries the VIP and the hellos"),
        "address": Spec(
            "addr", None, doc="own real address (hello source)", default_doc="`home_agent.address`"
        ),
        "group": _i(0, 0, 4095, "group number (0..255 with version 1)"),
        "version": _i(1, 1, 2, "HSRP version"),
        "virtual_ip": Spec("addr", doc="the group's virtual IP"),
        "name": Spec(
            "str",
            None,
            doc="group name (`standby name`, tied to redundancy)",
            default_doc="none",
        ),
        "priority": _i(100, 0, 255, "priority"),
        "preempt": Spec("bool", False, doc="take over from a lower priority Active"),
        "preempt_delay_s": _i(0, 0, 3600, "preempt delay, seconds"),
        "hello_ms": _i(3000, 1, 255000, "hello time, ms (whole seconds with version 1)"),
        "hold_ms": _i(10000, 1, 255000, "hold time, ms; must exceed hello_ms"),
        "authentication": Spec(
            "hsrp_auth",
            doc="`md5:<key-string>` (Cisco's MD5 TLV, recommended) or `text:<up to 8 chars>`",
            missing='required: set hsrp.authentication = "md5:<key-string>" (recommended) '
            'or "text:cisco" (the IOS default, for interop; sent in clear)',
        ),
        "port": _i(1985, 1, 65535, "UDP port"),
        "multicast": Spec(
            "addr",
            None,
            doc="hello destination",
            default_doc="`224.0.0.2` (v1) / `224.0.0.102` (v2)",
        ),
        "peers": Spec(
            "addr_list",
            (),
            doc="unicast hello destinations instead of multicast (loopback tests)",
        ),
    },
    "hsrp.groups[]": {
        "group": _i(REQUIRED, 0, 4095, "another group number (load sharing: one more HA address)"),
        "virtual_ip": Spec("addr", doc="its virtual IP: one more HA address served"),
        "priority": _i(100, 0, 255, "priority in this group"),
        "preempt": Spec("bool", False, doc="take over from a lower priority Active"),
        "preempt_delay_s": _i(0, 0, 3600, "preempt delay, seconds"),
        "name": Spec("str", None, doc="group name", default_doc="none"),
        "pool": Spec(
            "prefix",
            None,
            doc="this HA address's dynamic home address pool (inside home_prefix, disjoint "
            "from home_agent.pool); needed with dynamic MNs",
            default_doc="none",
        ),
    },
    "redundancy": {
        "peer": Spec("addr", doc="real address of the peer HA"),
        "port": _i(
            434, 1, 65535, "the peer's home_agent.port: HA-HA sync goes there and arrives on ours"
        ),
        "spi": _with(_SPI, "HA-HA SPI (HHAE)"),
        "key": Spec("secret", doc="HA-HA key"),
        "algorithm": _with(_ALG, "HHAE algorithm"),
        "replay_tolerance": _i(7, 1, 3600, "Identification window, seconds"),
        "mode": Spec(
            "choice",
            "virtual-network",
            choices=("virtual-network", "physical"),
            doc="home network: virtual (no physical home link) or physical",
        ),
        "hhae_type": _i(35, 0, 255, "type code of the HA-HA authentication extension (HHAE)"),
        "chunk_type": _i(160, 128, 255, "type code of the BI Reply chunk-number extension"),
        "bu_type": _i(200, 0, 255, "message type code of the Binding Update"),
        "bu_ack_type": _i(201, 0, 255, "message type code of the Binding Update Ack"),
        "bi_request_type": _i(202, 0, 255, "message type code of the Binding Information Request"),
        "bi_reply_type": _i(203, 0, 255, "message type code of the Binding Information Reply"),
        "bi_ack_type": _i(204, 0, 255, "message type code of the Binding Information Reply Ack"),
        "retransmit_ms": _i(1000, 10, 60000, "first retransmission timeout, doubled per retry"),
        "retries": _i(3, 0, 100, "retransmissions before a message counts as failed"),
        "queue_max": _i(100_000, 1, _BIG, "unacknowledged BU queue bound"),
        "chunk_bytes": _i(1400, 200, 65000, "largest BI Reply datagram"),
    },
    "dataplane": {
        "backend": Spec(
            "choice",
            "auto",
            choices=("auto", "kernel", "ebpf", "userspace", "memory"),
            doc="data plane backend; auto: kernel, else ebpf, else userspace",
        ),
        "tun_name": Spec("str", "mha0", doc="TUN device (userspace) or sink device (ebpf) name"),
        "mtu": _i(1500, 576, 65535, "tunnel MTU"),
        "visitor_iface": Spec(
            "str",
            None,
            doc="foreign agent: interface of the visitor link (userspace)",
            default_doc="none",
        ),
    },
    "dfp": {
        "listen": Spec(
            "endpoint",
            None,
            doc="DFP agent listen address (home-agent)",
            default_doc="none",
        ),
        "max_weight": _i(24, 0, 65535, "dfp_max_weight of the HA weight formula"),
        "interval_s": _i(5, 1, 60, "Preference Information report interval, seconds"),
        "password": Spec(
            "secret",
            None,
            doc="DFP MD5 password; without it `dfp.allow` must list the peers",
            default_doc="none",
        ),
        "timeout_s": _i(0, 0, 65535, "manager: longest gap between reports (0 = none)"),
        "retry_interval_s": _i(10, 1, 65535, "manager: seconds between connection attempts"),
    },
    "slb": {
        "virtual_address": Spec("addr", doc="virtual server address"),
        "port": _i(434, 1, 65535, "virtual server UDP port"),
        "mode": Spec(
            "choice",
            "directed",
            choices=("directed", "relay"),
            doc="forwarding: directed (raw IP from the FA's address, root) or relay (relay tag)",
        ),
        "session_s": _i(10, 1, 65535, "NAI session (sticky) time, reset by each request"),
        "reassign": _i(3, 1, 255, "retransmissions before a session moves"),
        "faildetect_numconns": _i(8, 1, 255, "failures before a real is failed"),
        "faildetect_numclients": _i(8, 1, 255, "distinct failed clients before a real is failed"),
        "retry_s": _i(60, 1, 3600, "seconds before a failed real is retried"),
        "predictor": Spec(
            "choice",
            "ios-wrr",
            choices=("ios-wrr", "smooth-wrr"),
            doc="weighted round robin algorithm",
        ),
        "relay_vendor_id": _i(32473, 0, 0xFFFFFF, "vendor id of the relay NVSE"),
        "max_sessions": _i(
            SLB_MAX_SESSIONS, 1, _BIG, "session table size (~375 bytes a session, docs/security.md)"
        ),
        "fastpath": Spec(
            "bool",
            True,
            doc="batched socket I/O of the C module mobileha._slbio when it is built "
            "(else, and with false, the Python reader)",
        ),
    },
    "slb.relay_sa": {
        "spi": _with(_SPI, "SLB-HA SPI of the relay tag authenticator"),
        "key": Spec("secret", doc="SLB-HA key"),
        "algorithm": _ALG,
    },
    "slb.real[]": {
        "address": Spec("addr", doc="real server: the HSRP virtual address of an HA pair"),
        "port": _i(434, 1, 65535, "real's UDP port"),
        "weight": _i(8, 0, 65535, "admin weight (0 = no new sessions)"),
        "maxconns": _i(4294967295, 1, 4294967295, "session limit"),
        "dfp_agent": Spec("endpoint", None, doc="DFP agent of this real", default_doc="none"),
        "inservice": Spec("bool", True, doc="administratively in service"),
        "name": Spec("str", None, doc="display name", default_doc="the address"),
    },
    "foreign_agent": {
        "address": Spec("addr", doc="FA address (care-of address, RRQ source)"),
        "port": _PORT434,
        "home_agent": Spec(
            "addr",
            None,
            doc="default HA address when AAA gives none (the SLB VIP)",
            default_doc="none",
        ),
        "care_of_address": Spec(
            "addr", None, doc="advertised care-of address", default_doc="`foreign_agent.address`"
        ),
        "max_lifetime": _i(36000, 1, 65535, "largest lifetime relayed"),
        "max_visitors": _i(1_000_000, 1, _BIG, "visitor list size"),
        "pending_timeout_s": _i(7, 1, 3600, "pending request lifetime, seconds"),
        "reverse_tunnel": Spec("bool", True, doc="offer reverse tunnelling (RFC 3024)"),
        "gre": Spec("bool", True, doc="add a GRE key extension, ask for GRE"),
        "gre_key_format": Spec(
            "choice",
            "rfc6245",
            choices=("rfc6245", "cvse", "both"),
            doc="GRE key as RFC 6245 extension 48, 3GPP2 CVSE, or both",
        ),
        "challenge": Spec("bool", False, doc="require RFC 4721 MN-FA challenges (codes 104-106)"),
        "home_agent_port": _i(434, 1, 65535, "UDP port requests are relayed to on home agents"),
        "ha_fallback_after": _i(
            3,
            0,
            100,
            "unanswered requests in a row after which a real HA's MNs go to the HA-SLB "
            "(home_agent) again, RFC 4433 (0 = never)",
        ),
        # agent advertisements (RFC 5944 §2) and registration revocation (RFC 3543)
        "advertise": Spec("bool", True, doc="send agent advertisements, answer solicitations"),
        "advertise_interface": Spec(
            "str",
            None,
            doc="interface of the advertisements (the visitor link)",
            default_doc="`dataplane.visitor_iface`",
        ),
        "advertise_interval_ms": _i(1000, 50, 1_800_000, "agent advertisement interval"),
        "advertise_prefix_length": _i(
            None, 0, 32, "Prefix-Lengths Extension (19) value", "the interface's prefix"
        ),
        "revocation": Spec(
            "bool", False, doc="offer registration revocation to home agents (RFC 3543)"
        ),
    },
    "foreign_agent.home_agent_sa[]": {
        "address": Spec("addr", doc="HA (or SLB VIP) address of this FA-HA SA"),
        "spi": _with(_SPI, "FA-HA SPI"),
        "key": Spec("secret", doc="FA-HA key"),
        "algorithm": _with(_ALG, "FA-HA algorithm"),
    },
    "mobile_node": {
        "nai": Spec("str", doc="NAI; with count > 1 it must contain `{n}`"),
        "count": _i(1, 1, 10_000_000, "number of MNs this process drives (`{n}` = 1..count)"),
        "home_address": Spec(
            "addr_or_dynamic", DYNAMIC, doc="home address (with count > 1: the first)"
        ),
        "home_agent": Spec(
            "addr", doc="HA address (the SLB VIP, or 255.255.255.255 / 0.0.0.0 RFC 4433)"
        ),
        "foreign_agent": Spec(
            "endpoint",
            None,
            doc="register via this FA (exclusive with co_located_care_of)",
            default_doc="none",
        ),
        "co_located_care_of": Spec(
            "addr", None, doc="co-located care-of address (D flag)", default_doc="none"
        ),
        "local_address": Spec("addr", "127.0.0.1", doc="local bind address"),
        "spi": _with(_SPI, "MN-HA SPI"),
        "key": Spec("secret", doc="MN-HA key"),
        "algorithm": _with(_ALG, "MN-HA algorithm"),
        "replay": _REPLAY,
        "lifetime": _i(1800, 1, 65535, "requested lifetime, seconds"),
        "reverse_tunnel": Spec("bool", False, doc="ask for a reverse tunnel (T flag)"),
        "encap": Spec(
            "choice", "ipip", choices=("ipip", "gre", "minimal"), doc="requested encapsulation"
        ),
        "retransmit_ms": _i(1000, 10, 60000, "first retransmission timeout, doubled per retry"),
        "retransmit_max_ms": _i(16000, 10, 600000, "retransmission timeout ceiling"),
        "renew_fraction": Spec(
            "number", 0.8, 0.1, 0.95, doc="re-register after this part of the granted lifetime"
        ),
        "aaa_key": Spec(
            "secret",
            None,
            doc="MN-AAA key: add an RFC 4721 CHAP MN-AAA extension (SPI 2)",
            default_doc="none",
        ),
        "home_agent_port": _i(434, 1, 65535, "home agent UDP port (co-located mode)"),
        "ha_fallback_after": _i(
            3,
            0,
            100,
            "unanswered transmissions after which a learned HA is dropped for home_agent, "
            "RFC 4433 (0 = never)",
        ),
        # agent discovery and movement (RFC 5944 §2.4)
        "interfaces": Spec(
            "str",
            None,
            doc="roam over these links (comma-separated): discover FAs, move, return home",
            default_doc="none",
        ),
    },
    "aaa": {
        "backend": Spec("choice", "local", choices=("local", "radius"), doc="AAA source"),
        "radius_server": Spec(
            "endpoint",
            None,
            doc="RADIUS server (required with backend radius)",
            default_doc="none",
        ),
        "radius_secret": Spec(
            "secret",
            None,
            doc="RADIUS shared secret (required with backend radius)",
            default_doc="none",
        ),
        "radius_timeout_s": Spec("number", 3.0, 0.1, 60, doc="seconds per RADIUS attempt"),
        "radius_retries": _i(3, 0, 10, "RADIUS retransmissions"),
        "nas_identifier": Spec(
            "str", None, doc="NAS-Identifier sent to RADIUS", default_doc="`node.name`"
        ),
        # home agent: MN-HA SAs fetched from RADIUS ([[mobile_node]] sa_source = "aaa")
        "sa_cache_ttl_s": Spec(
            "number",
            3600.0,
            1,
            604800,
            doc="HA: keep an SA from AAA this long (longer while bound)",
        ),
        "sa_cache_size": _i(1_000_000, 1, _BIG, "HA: most SAs from AAA kept"),
        "sa_negative_ttl_s": Spec(
            "number", 30.0, 0, 3600, doc="HA: an Access-Reject is remembered this long (0: not)"
        ),
        "sa_timeout_s": Spec(
            "number", 13.0, 0.1, 120, doc="HA: a first registration waits this long for AAA"
        ),
        "sa_max_in_flight": _i(256, 1, 65536, "HA: most SA fetches running at once"),
        "sa_resync_s": Spec(
            "number",
            0.0,
            0,
            604800,
            doc="HA: fetch an SA older than this again when the MN fails authentication (0: never)",
        ),
    },
    "aaa.user[]": {
        "nai": Spec("str", doc="local user NAI"),
        "home_agent": Spec("addr", None, doc="HA address to assign (RFC 4433)", default_doc="none"),
        "home_address": Spec("addr_or_dynamic", DYNAMIC, doc="home address"),
        "spi": Spec("int", None, 256, 0xFFFFFFFF, doc="MN-HA / MN-AAA SPI", default_doc="none"),
        "key": Spec("secret", None, doc="MN-HA / MN-AAA key", default_doc="none"),
        "algorithm": _with(_ALG, "algorithm"),
    },
}

# Authentication and resource limits of the channels an outsider can reach (the management
# API, relay tags, DFP, replies at the FA), kept together; `mobileha check` warns about each
# channel they leave unauthenticated (mobileha.config.security).
_CHANNEL_KEYS: dict[str, dict[str, Spec]] = {
    "management": {
        "token": Spec(
            "str",
            None,
            doc="bearer token every request must carry (`Authorization: Bearer ...`); "
            "required when `listen` is not a loopback address",
            default_doc="none",
        ),
        "token_file": Spec(
            "str",
            None,
            doc="file whose first line is the token (instead of `token`)",
            default_doc="none",
        ),
    },
    "home_agent": {
        "slb_trust": Spec(
            "choice",
            "sa",
            choices=("sa", "source-address"),
            doc="relay tags of `trusted_slb`: `sa` needs a `[[home_agent.slb_sa]]` per SLB; "
            "`source-address` trusts the (spoofable) source address alone",
        ),
    },
    "dfp": {
        "allow": Spec(
            "addr_list",
            (),
            doc="peers served without `password`: managers that may connect to the agent, "
            "agents whose reports the SLB applies; with a password, also the only peers",
        ),
        "max_connections": _i(32, 1, 65535, "agent: simultaneous manager connections"),
        "idle_timeout_s": _i(
            10,
            1,
            3600,
            "agent: close a connection with a message unfinished (or, with a password, none "
            "verified yet) for this long",
        ),
        "max_message_bytes": _i(
            4096, 64, 65535, "largest DFP message accepted; a longer one closes the connection"
        ),
    },
    "foreign_agent": {
        "real_home_agents": Spec(
            "addr_list",
            (),
            doc="real HAs behind `home_agent` (the HA-SLB) whose replies are accepted without "
            "an FA-HA SA",
        ),
        "max_pending": _i(
            FA_MAX_PENDING,
            1,
            _BIG,
            "requests awaiting a reply; beyond it code 66 (~1.9 kB each, docs/security.md)",
        ),
    },
    "slb": {
        "faildetect_window_s": _i(
            10,
            1,
            3600,
            "a client's failures against a real count once per window, and a real that "
            "answered a session within it is not failed (docs/security.md)",
        ),
    },
}
for _section, _keys in _CHANNEL_KEYS.items():
    SCHEMA[_section].update(_keys)

# Sub-tables/arrays nested in a section: parent -> {child key: schema name}.
CHILDREN: dict[str, dict[str, str]] = {
    "home_agent": {"slb_sa": "home_agent.slb_sa[]"},
    "hsrp": {"groups": "hsrp.groups[]"},
    "slb": {"relay_sa": "slb.relay_sa", "real": "slb.real[]"},
    "foreign_agent": {"home_agent_sa": "foreign_agent.home_agent_sa[]"},
    "aaa": {"user": "aaa.user[]"},
}

_COMMON = {"node", "management", "log"}
ROLE_SECTIONS: dict[str, set[str]] = {
    "home-agent": _COMMON
    | {"home_agent", "mobile_node", "foreign_agent", "hsrp", "redundancy", "dataplane", "dfp"}
    | {"aaa"},
    "foreign-agent": _COMMON | {"foreign_agent", "dataplane", "aaa"},
    "slb": _COMMON | {"slb", "dfp"},
    "mobile-node": _COMMON | {"mobile_node", "dataplane"},
}
# The one table each role cannot do without.
ROLE_REQUIRED = {
    "home-agent": "home_agent",
    "foreign-agent": "foreign_agent",
    "slb": "slb",
    "mobile-node": "mobile_node",
}
ALL_SECTIONS = set().union(*ROLE_SECTIONS.values())


def type_text(s: Spec) -> str:
    if s.kind == "choice":
        return "one of " + ", ".join(s.choices)
    if s.kind == "int":
        return f"integer {int(s.lo or 0)}..{int(s.hi or 0)}"
    if s.kind == "number":
        if s.hi is None:
            return f"number >= {s.lo:g}"
        return f"number {s.lo:g}..{s.hi:g}"
    return {
        "str": "string",
        "bool": "bool",
        "addr": "addr",
        "addr_or_dynamic": 'addr or "dynamic"',
        "endpoint": "endpoint",
        "prefix": "prefix",
        "secret": "secret",
        "hsrp_auth": "hsrp-auth",
        "addr_list": "list of addr",
    }[s.kind]


def default_text(s: Spec) -> str:
    if s.default_doc is not None:
        return s.default_doc
    d = s.default
    if d is REQUIRED:
        return "required"
    if d is None:
        return "none"
    if isinstance(d, bool):
        return "`true`" if d else "`false`"
    if isinstance(d, float) and d.is_integer():
        return f"`{int(d)}`"
    if isinstance(d, tuple) and not isinstance(d, Endpoint):
        return "`[]`" if not d else "`" + repr(list(d)) + "`"
    return f"`{d}`"


def reference_keys() -> list[str]:
    """Every accepted key path, as written in the reference table (``slb.real[].weight``)."""
    return [f"{sec}.{key}" for sec, keys in SCHEMA.items() for key in keys]


def reference_table() -> str:
    """The Markdown key reference (docs/config.md and the README carry this text)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for sec, keys in SCHEMA.items():
        for key, s in keys.items():
            rows.append(f"| `{sec}.{key}` | {type_text(s)} | {default_text(s)} | {s.doc} |")
    return "\n".join(rows)


__all__ = [
    "ALL_SECTIONS",
    "CHILDREN",
    "REQUIRED",
    "ROLE_REQUIRED",
    "ROLE_SECTIONS",
    "SCHEMA",
    "Spec",
    "default_text",
    "reference_keys",
    "reference_table",
    "type_text",
]
