"""The typed config of one node: frozen dataclasses, one per TOML table.

A :class:`Config` holds what ``node.role`` uses; tables of other roles are ``None`` or
empty. Keys, types, defaults and meanings are in :mod:`mobileha.config.schema`; the
dataclass defaults here are the same values (a test compares the two).

Two TOML keys mean different things depending on ``node.role``:

* ``[[mobile_node]]`` (array) in a home-agent config is the list of MN-HA security
  associations -> ``Config.mobile_nodes``; ``[mobile_node]`` (table) in a mobile-node
  config is the node's own settings -> ``Config.mobile_node``.
* ``[[foreign_agent]]`` (array) in a home-agent config is the list of FA-HA security
  associations -> ``Config.foreign_agents``; ``[foreign_agent]`` (table) in a
  foreign-agent config is the FA's own settings -> ``Config.foreign_agent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

ROLES = ("home-agent", "foreign-agent", "slb", "mobile-node")
ALG_PREFIX_SUFFIX = "md5-prefix-suffix"  # keyed MD5 prefix+suffix, Cisco default (P§1.6)
ALG_HMAC_MD5 = "hmac-md5"  # RFC 5944 default
ALGORITHMS = (ALG_PREFIX_SUFFIX, ALG_HMAC_MD5)
REPLAY_METHODS = ("timestamp", "nonce")
DYNAMIC = "dynamic"
# Table defaults sized to a memory budget of about 128 MiB each when full (docs/security.md)
SLB_MAX_SESSIONS = 262_144  # ~375 bytes a session
FA_MAX_PENDING = 65_536  # ~1.9 kB a pending request (it keeps the request)


class ConfigError(Exception):
    """A config was refused; ``problems`` are ``"key.path: what is wrong"`` strings."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid config")


class Endpoint(NamedTuple):
    """``"addr:port"``; a tuple, so it is an ``Addr`` for sockets and actions."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


DEFAULT_LISTEN = Endpoint("127.0.0.1", 8434)


@dataclass(frozen=True, slots=True)
class NodeSection:
    role: str
    name: str


@dataclass(frozen=True, slots=True)
class ManagementConfig:
    listen: Endpoint = DEFAULT_LISTEN
    enabled: bool = True
    token: str | None = field(default=None, repr=False)  # from `token` or `token_file`
    token_file: str | None = None


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    format: str = "kv"
    rate_limit_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SecurityAssociation:
    """A mobility security association (P§1.6, P§1.7): SPI, key, algorithm, replay method."""

    spi: int
    key: bytes = field(repr=False)
    algorithm: str = ALG_PREFIX_SUFFIX
    replay: str = "timestamp"
    replay_tolerance: int = 7


@dataclass(frozen=True, slots=True)
class MobileNodeSA:
    """``[[mobile_node]]`` of a home-agent config: who may register, with which MN-HA SA."""

    nai: str | None  # an NAI, "@realm" or a glob pattern
    home_address: str  # dotted quad, or "dynamic"
    sa: SecurityAssociation  # sa_source aaa/file: algorithm and replay only (spi 0, no key)
    lifetime: int
    sa_source: str = "inline"  # inline | aaa | file
    file: str | None = None  # sa_source file: the subscriber file
    # sa_source file: its lines (config.subscribers.Subscriber: nai, spi, key, home address)
    subscribers: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def dynamic(self) -> bool:
        return self.home_address == DYNAMIC


@dataclass(frozen=True, slots=True)
class PeerSA:
    """An SA with a peer identified by address: ``[[foreign_agent]]`` (FA-HA) of a home agent,
    ``[[home_agent.slb_sa]]`` (SLB-HA), ``[[foreign_agent.home_agent_sa]]`` (FA-HA, FA side)."""

    address: str
    sa: SecurityAssociation


@dataclass(frozen=True, slots=True)
class HomeAgentConfig:
    address: str
    ha_address: str
    port: int = 434
    trusted_slb: tuple[str, ...] = ()
    relay_vendor_id: int = 32473
    max_lifetime: int = 36000
    replay_tolerance: int = 7
    max_bindings: int = 1_000_000
    home_prefix: str | None = None
    pool: str | None = None
    reverse_tunnel: bool = True
    gre: bool = True
    minimal_encap: bool = True
    slb_sas: tuple[PeerSA, ...] = ()
    reverse_tunnel_required: bool = False
    simultaneous_bindings: int = 5
    redirect_ha: str | None = None
    answer_duplicates: bool = False
    journal: str | None = None
    journal_commit_ms: int = 10
    journal_fsync: bool = False
    slb_trust: str = "sa"  # "sa" | "source-address"
    revocation: bool = False  # RFC 3543
    advertise_interface: str | None = None  # agent advertisements on the home link
    advertise_interval_ms: int = 1000


@dataclass(frozen=True, slots=True)
class HsrpAuth:
    kind: str  # "text" | "md5"
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class HsrpConfig:
    virtual_ip: str
    address: str
    authentication: HsrpAuth
    interface: str = "lo"
    group: int = 0
    version: int = 1
    name: str | None = None
    priority: int = 100
    preempt: bool = False
    preempt_delay_s: int = 0
    hello_ms: int = 3000
    hold_ms: int = 10000
    port: int = 1985
    multicast: str = "224.0.0.2"
    peers: tuple[str, ...] = ()
    # [[hsrp.groups]]: more groups on the same interface, each one more HA address (its
    # VIP) served by this home agent: load sharing (P§5.1)
    groups: tuple[HsrpGroupConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class HsrpGroupConfig:
    """One more HSRP group of ``[hsrp]`` (timers, version, authentication, interface and
    peers are those of ``[hsrp]``); its ``virtual_ip`` is one more HA address."""

    group: int
    virtual_ip: str
    priority: int = 100
    preempt: bool = False
    preempt_delay_s: int = 0
    name: str | None = None
    pool: str | None = None  # own dynamic home address pool (prefix)


@dataclass(frozen=True, slots=True)
class RedundancyConfig:
    peer: str
    sa: SecurityAssociation
    port: int = 434
    mode: str = "virtual-network"
    hhae_type: int = 35
    chunk_type: int = 160
    bu_type: int = 200
    bu_ack_type: int = 201
    bi_request_type: int = 202
    bi_reply_type: int = 203
    bi_ack_type: int = 204
    retransmit_ms: int = 1000
    retries: int = 3
    queue_max: int = 100_000
    chunk_bytes: int = 1400


@dataclass(frozen=True, slots=True)
class DataplaneConfig:
    backend: str = "auto"
    tun_name: str = "mha0"
    mtu: int = 1500
    visitor_iface: str | None = None


@dataclass(frozen=True, slots=True)
class DfpConfig:
    listen: Endpoint | None = None
    max_weight: int = 24
    interval_s: int = 5
    password: bytes | None = field(default=None, repr=False)
    timeout_s: int = 0
    retry_interval_s: int = 10
    allow: tuple[str, ...] = ()
    max_connections: int = 32
    idle_timeout_s: int = 10
    max_message_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class SlbReal:
    address: str
    name: str
    port: int = 434
    weight: int = 8
    maxconns: int = 4294967295
    dfp_agent: Endpoint | None = None
    inservice: bool = True


@dataclass(frozen=True, slots=True)
class SlbConfig:
    virtual_address: str
    reals: tuple[SlbReal, ...]
    port: int = 434
    mode: str = "directed"
    session_s: int = 10
    reassign: int = 3
    faildetect_numconns: int = 8
    faildetect_numclients: int = 8
    retry_s: int = 60
    predictor: str = "ios-wrr"
    relay_vendor_id: int = 32473
    max_sessions: int = SLB_MAX_SESSIONS
    relay_sa: SecurityAssociation | None = None
    fastpath: bool = True
    faildetect_window_s: int = 10


@dataclass(frozen=True, slots=True)
class ForeignAgentConfig:
    """``[foreign_agent]`` of a foreign-agent config (the FA's own settings)."""

    address: str
    care_of_address: str
    port: int = 434
    home_agent: str | None = None
    max_lifetime: int = 36000
    max_visitors: int = 1_000_000
    pending_timeout_s: int = 7
    reverse_tunnel: bool = True
    gre: bool = True
    home_agent_sas: tuple[PeerSA, ...] = ()
    gre_key_format: str = "rfc6245"  # rfc6245 | cvse | both
    challenge: bool = False
    home_agent_port: int = 434
    ha_fallback_after: int = 3
    real_home_agents: tuple[str, ...] = ()
    max_pending: int = FA_MAX_PENDING
    # agent advertisements (RFC 5944 §2), registration revocation (RFC 3543)
    advertise: bool = True
    advertise_interface: str | None = None  # resolved: dataplane.visitor_iface
    advertise_interval_ms: int = 1000
    advertise_prefix_length: int | None = None
    revocation: bool = False


@dataclass(frozen=True, slots=True)
class MobileNodeConfig:
    """``[mobile_node]`` of a mobile-node config (the node's own settings)."""

    nai: str
    home_agent: str
    sa: SecurityAssociation
    count: int = 1
    home_address: str = DYNAMIC
    foreign_agent: Endpoint | None = None
    co_located_care_of: str | None = None
    local_address: str = "127.0.0.1"
    lifetime: int = 1800
    reverse_tunnel: bool = False
    encap: str = "ipip"
    retransmit_ms: int = 1000
    retransmit_max_ms: int = 16000
    renew_fraction: float = 0.8
    aaa_key: bytes | None = field(default=None, repr=False)
    home_agent_port: int = 434
    ha_fallback_after: int = 3
    interfaces: tuple[str, ...] = ()  # roaming links (RFC 5944 §2.4)

    def nai_of(self, n: int) -> str:
        """NAI of the n-th MN (1..count)."""
        return self.nai.replace("{n}", str(n))


@dataclass(frozen=True, slots=True)
class AaaUser:
    nai: str
    home_address: str = DYNAMIC
    home_agent: str | None = None
    spi: int | None = None
    key: bytes | None = field(default=None, repr=False)
    algorithm: str = ALG_PREFIX_SUFFIX


@dataclass(frozen=True, slots=True)
class AaaConfig:
    backend: str = "local"
    radius_server: Endpoint | None = None
    radius_secret: bytes | None = field(default=None, repr=False)
    radius_timeout_s: float = 3.0
    radius_retries: int = 3
    nas_identifier: str = ""
    users: tuple[AaaUser, ...] = ()
    # home agent: MN-HA SAs from RADIUS (core.subscribers.SubscriberSettings)
    sa_cache_ttl_s: float = 3600.0
    sa_cache_size: int = 1_000_000
    sa_negative_ttl_s: float = 30.0
    sa_timeout_s: float = 13.0
    sa_max_in_flight: int = 256
    sa_resync_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Config:
    """A whole node config. Role tables not used by ``node.role`` are ``None`` / empty."""

    node: NodeSection
    management: ManagementConfig = ManagementConfig()
    log: LogConfig = LogConfig()
    home_agent: HomeAgentConfig | None = None
    mobile_nodes: tuple[MobileNodeSA, ...] = ()  # [[mobile_node]] of a home agent
    foreign_agents: tuple[PeerSA, ...] = ()  # [[foreign_agent]] of a home agent
    hsrp: HsrpConfig | None = None
    redundancy: RedundancyConfig | None = None
    dataplane: DataplaneConfig = DataplaneConfig()
    dfp: DfpConfig | None = None
    slb: SlbConfig | None = None
    foreign_agent: ForeignAgentConfig | None = None  # [foreign_agent] of a foreign agent
    mobile_node: MobileNodeConfig | None = None  # [mobile_node] of a mobile node
    aaa: AaaConfig = AaaConfig()
    source: str = "<memory>"

    @property
    def role(self) -> str:
        return self.node.role

    @property
    def name(self) -> str:
        return self.node.name


__all__ = [
    "ALGORITHMS",
    "ALG_HMAC_MD5",
    "ALG_PREFIX_SUFFIX",
    "DEFAULT_LISTEN",
    "DYNAMIC",
    "REPLAY_METHODS",
    "ROLES",
    "AaaConfig",
    "AaaUser",
    "Config",
    "ConfigError",
    "DataplaneConfig",
    "DfpConfig",
    "Endpoint",
    "ForeignAgentConfig",
    "HomeAgentConfig",
    "HsrpAuth",
    "HsrpConfig",
    "HsrpGroupConfig",
    "LogConfig",
    "ManagementConfig",
    "MobileNodeConfig",
    "MobileNodeSA",
    "NodeSection",
    "PeerSA",
    "RedundancyConfig",
    "SecurityAssociation",
    "SlbConfig",
    "SlbReal",
]
