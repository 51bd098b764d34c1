"""The composition root: a validated :class:`~mobileha.config.Config` -> core settings ->
node objects, one function per role.

:func:`build_node` picks the role's builder (:data:`ROLE_NODES`)::

    home-agent      home_agent_node(cfg)      HomeAgentNode around a Cluster (HSRP, sync, DFP)
    foreign-agent   foreign_agent_node(cfg)   ForeignAgentNode (+ AAA backend)
    slb             slb_node(cfg)             SlbNode (+ DFP manager)
    mobile-node     mobile_node_node(cfg)     MobileNodeNode (a fleet of MobileNode cores)

This is the one place that reads the config model to build the system: the sans-IO cores
take their own settings (:class:`~mobileha.core.home_agent.HomeAgentSettings`,
:class:`~mobileha.core.sync.SyncConfig`, the HSRP group config...) and the asyncio
nodes take cores and options (the home agent node's DFP agent still takes the ``[dfp]``
table, :class:`~mobileha.config.DfpConfig`, as it is). The builders of the parts
(``home_agent_core``, ``hsrp_node``, ``sync_config``, ``aaa_backend``...) are public for
tests and for programs that assemble nodes themselves (the demo).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mobileha.aaa.base import AaaBackend
from mobileha.config import DYNAMIC, AaaConfig, Config, HsrpConfig
from mobileha.config.model import MobileNodeSA
from mobileha.core.cluster import AgentSettings, AgentSpec, Cluster
from mobileha.core.discovery import Advertiser, AdvertiserConfig
from mobileha.core.foreign_agent import ForeignAgent, HaSecurity
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.hsrp import HsrpConfig as HsrpGroupSettings
from mobileha.core.mobile_node import MnSecurity, MobileNode
from mobileha.core.movement import Roamer
from mobileha.core.security import (
    SOURCE_FILE,
    SOURCE_INLINE,
    MobilitySA,
    RealmEntry,
    SecurityAssociations,
    is_nai_pattern,
)
from mobileha.core.subscribers import ReloadSubscribers, SubscriberSettings
from mobileha.core.sync import Mode, SyncConfig
from mobileha.dataplane.choice import node_options
from mobileha.dataplane.vip import VipOwner
from mobileha.node.advertising import LinkAdvertising
from mobileha.node.base import Node
from mobileha.node.foreign_agent import ForeignAgentNode
from mobileha.node.home_agent import HomeAgentNode
from mobileha.node.hsrp import HsrpNode, HsrpNodeConfig
from mobileha.node.icmp import interface_prefix
from mobileha.node.journal import BindingJournal
from mobileha.node.mobile_node import MobileNodeFleet, MobileNodeNode
from mobileha.node.roaming import RoamingNode
from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings
from mobileha.wire import hsrp as hsrp_wire
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.icmp import ADV_F, ADV_G, ADV_H, ADV_R, ADV_T, ADV_X
from mobileha.wire.sync import SyncTypes


class RoleUnavailable(Exception):
    """No node can be built for this role."""


def build_node(cfg: Config) -> Node:
    """The node of ``node.role``, built from ``cfg``; raises :class:`RoleUnavailable`."""
    builder = ROLE_NODES.get(cfg.role)
    if builder is None:
        raise RoleUnavailable(f"no node for role {cfg.role!r}")
    return builder(cfg)


def dataplane_options(cfg: Config, role: str) -> tuple[str, dict[str, Any]]:
    """``[dataplane]`` -> (backend name, options for any backend, see
    ``mobileha.dataplane.choice.open_dataplane``) for role ``"ha"`` or ``"fa"``; the maps of
    the ebpf backend are sized for the binding table (visitor list)."""
    dp = cfg.dataplane
    if role == "ha":
        assert cfg.home_agent is not None
        opts = node_options(
            role,
            device=dp.tun_name,
            mtu=dp.mtu,
            home_prefix=cfg.home_agent.home_prefix,
            capacity=cfg.home_agent.max_bindings,
        )
    else:
        fa = cfg.foreign_agent
        opts = node_options(
            role,
            device=dp.tun_name,
            mtu=dp.mtu,
            visitor_iface=dp.visitor_iface,
            capacity=fa.max_visitors if fa is not None else None,
        )
    return dp.backend, opts


# --------------------------------------------------------------------------- home agent


def home_agent_settings(cfg: Config, **overrides: Any) -> HomeAgentSettings:
    """``[home_agent]`` -> the core's settings (``overrides`` replace single fields)."""
    ha = cfg.home_agent
    if ha is None:
        raise ValueError("config has no [home_agent]")
    settings = HomeAgentSettings(
        address=ha.address,
        ha_address=ha.ha_address,
        port=ha.port,
        max_lifetime=ha.max_lifetime,
        max_bindings=ha.max_bindings,
        home_prefix=ha.home_prefix,
        pool=ha.pool,
        reverse_tunnel=ha.reverse_tunnel,
        reverse_tunnel_required=ha.reverse_tunnel_required,
        gre=ha.gre,
        minimal_encap=ha.minimal_encap,
        simultaneous_bindings=ha.simultaneous_bindings,
        trusted_slb=tuple(ha.trusted_slb),
        relay_vendor_id=ha.relay_vendor_id,
        redirect_ha=ha.redirect_ha,
        replay_tolerance=ha.replay_tolerance,
        answer_duplicates=ha.answer_duplicates,
        subscribers=subscriber_settings(cfg),
        revocation=ha.revocation,
    )
    return replace(settings, **overrides)


def home_agent_security(cfg: Config) -> SecurityAssociations:
    """The home agent's SAs: ``[[mobile_node]]`` (MN-HA), ``[[foreign_agent]]`` (FA-HA) and,
    with the local AAA backend, the keys of ``[[aaa.user]]`` (MN-AAA)."""
    sas = SecurityAssociations()
    for m in cfg.mobile_nodes:
        sa = m.sa
        if m.nai is not None and is_nai_pattern(m.nai):
            add_realm_entry(sas, m)
            continue
        sas.add_mn(
            MobilitySA(
                sa.spi,
                sa.key,
                sa.algorithm,
                sa.replay,
                sa.replay_tolerance,
                nai=m.nai,
                home_address=None if m.dynamic else m.home_address,
                max_lifetime=m.lifetime,
            )
        )
    for fa in cfg.foreign_agents:
        sa = fa.sa
        sas.add_fa(
            fa.address, MobilitySA(sa.spi, sa.key, sa.algorithm, sa.replay, sa.replay_tolerance)
        )
    if cfg.aaa.backend == "local":
        for u in cfg.aaa.users:
            if u.spi is not None and u.key is not None:
                sas.add_aaa(u.nai, MobilitySA(u.spi, u.key, u.algorithm, nai=u.nai))
    return sas


def add_realm_entry(sas: SecurityAssociations, m: MobileNodeSA) -> None:
    """A realm or pattern ``[[mobile_node]]``: its shared SA (inline), AAA's SAs (aaa, the
    home agent fetches them) or the SAs of its subscriber file (file, as exact entries)."""
    assert m.nai is not None
    sa = m.sa
    if m.sa_source == SOURCE_FILE:
        for sub in m.subscribers:  # read and checked by the loader
            sas.add_mn(
                MobilitySA(
                    sub.spi, sub.key, sa.algorithm, sa.replay, sa.replay_tolerance,
                    nai=sub.nai, home_address=sub.home_address, max_lifetime=m.lifetime,
                    source=SOURCE_FILE,
                )
            )  # fmt: skip
    shared = None
    if m.sa_source == SOURCE_INLINE:
        shared = MobilitySA(
            sa.spi, sa.key, sa.algorithm, sa.replay, sa.replay_tolerance, max_lifetime=m.lifetime
        )
    sas.add_realm(
        RealmEntry(
            m.nai, m.sa_source, shared, sa.algorithm, sa.replay, sa.replay_tolerance,
            m.lifetime, m.file,
        )
    )  # fmt: skip


def subscriber_reload(cfg: Config, cluster: Cluster) -> list[ReloadSubscribers]:
    """The reload of SA sources (``[[mobile_node]]`` entries, realm entries, subscriber
    files) from a new ``cfg`` as one :class:`ReloadSubscribers` event per HA address of
    ``cluster``, each with its own SA table (the cache of SAs from AAA is per address).
    A reload hands them to the coordinator's ``handle_event``; bindings, replay state,
    pool allocations and cached SAs whose NAI is still sent to AAA are kept. Raises
    ConfigError (e.g. a bad subscriber file) before anything changes."""
    return [ReloadSubscribers(a.ha_addr, home_agent_security(cfg)) for a in cluster.agents]


def subscriber_settings(cfg: Config) -> SubscriberSettings:
    """``[aaa]`` -> the home agent's limits for SAs fetched from AAA."""
    a = cfg.aaa
    return SubscriberSettings(
        ttl_s=a.sa_cache_ttl_s,
        max_entries=a.sa_cache_size,
        negative_ttl_s=a.sa_negative_ttl_s,
        resync_s=a.sa_resync_s,
        max_in_flight=a.sa_max_in_flight,
        timeout_s=a.sa_timeout_s,
    )


def sa_fetcher(cfg: Config) -> Any:
    """The RADIUS client that fetches MN-HA SAs for the home agent (``[aaa]`` backend
    radius and some ``[[mobile_node]]`` with sa_source aaa), else None."""
    if cfg.aaa.backend != "radius" or not any(m.sa_source == "aaa" for m in cfg.mobile_nodes):
        return None
    assert cfg.home_agent is not None
    return aaa_backend(cfg.aaa, nas_ip=cfg.home_agent.address)


def home_agent_slb_sas(cfg: Config) -> dict[str, MobilitySA]:
    """``[[home_agent.slb_sa]]``: the SLB-HA SAs of the relay tag, by SLB address."""
    assert cfg.home_agent is not None
    return {
        p.address: MobilitySA(p.sa.spi, p.sa.key, p.sa.algorithm) for p in cfg.home_agent.slb_sas
    }


def home_agent_core(cfg: Config, **overrides: Any) -> HomeAgent:
    """The sans-IO home agent of ``cfg`` (``overrides``: fields of its settings)."""
    settings = home_agent_settings(cfg, **overrides)
    return HomeAgent(settings, home_agent_security(cfg), slb_sas=home_agent_slb_sas(cfg))


def home_agent_agents(cfg: Config) -> list[AgentSettings]:
    """One entry per HA address the home agent serves (``home_agent.ha_address``, then
    the VIP of every ``[[hsrp.groups]]``): its core's settings, its security associations
    (:func:`home_agent_security`), SLB SAs and sync configuration.

    Building a home agent and reloading one both go through this function (and so through
    :func:`home_agent_security`): a new source of SAs added there (realms, AAA-backed SAs)
    is reloaded by SIGHUP with nothing more to do."""
    ha, hc = cfg.home_agent, cfg.hsrp
    assert ha is not None
    extra = hc.groups if hc is not None else ()
    # load sharing: the pool must never hand out another group's VIP
    vips = {"local_addresses": tuple(g.virtual_ip for g in extra)} if extra else {}
    settings = home_agent_settings(cfg, **vips)
    redundant = cfg.redundancy is not None
    out = [
        AgentSettings(
            settings.advertised,
            settings,
            home_agent_security(cfg),
            home_agent_slb_sas(cfg),
            sync_config(cfg) if redundant else None,
        )
    ]
    assert hc is not None or not extra
    for g in extra:
        sub = replace(cfg, home_agent=replace(ha, ha_address=g.virtual_ip))
        assert hc is not None
        others = (hc.virtual_ip, *(o.virtual_ip for o in extra if o is not g))
        if g.pool is not None:  # its own dynamic pool (the config checked it disjoint)
            gs = home_agent_settings(sub, pool=g.pool, local_addresses=others)
        else:  # static home addresses only (the config checked it): the first's pool
            gs = home_agent_settings(sub)
        out.append(
            AgentSettings(
                gs.advertised,
                gs,
                home_agent_security(sub),
                home_agent_slb_sas(sub),
                sync_config(sub) if redundant else None,
            )
        )
    return out


def home_agent_hsrp_groups(cfg: Config) -> list[HsrpGroupSettings]:
    """The core configurations of ``[hsrp]`` and every ``[[hsrp.groups]]``."""
    hc = cfg.hsrp
    if hc is None:
        return []
    first = hsrp_group_settings(hc)
    return [first] + [
        replace(
            first,
            group=g.group,
            vip=g.virtual_ip,
            priority=g.priority,
            preempt=g.preempt,
            preempt_delay_ms=g.preempt_delay_s * 1000,
            name=g.name or "",
        )
        for g in hc.groups
    ]


def home_agent_node(cfg: Config) -> HomeAgentNode:
    """A home agent: the cluster coordinator of its HA addresses and the node that pumps it.
    With ``[hsrp]`` every HA address answers while its HSRP group is Active, with
    ``[redundancy]`` it syncs its bindings with the peer, with ``[[hsrp.groups]]`` every
    extra group's VIP is one more HA address (load sharing: own core, binding table, pool
    and sync peer keyed by that address)."""
    ha = cfg.home_agent
    assert ha is not None
    hc = cfg.hsrp
    agents = home_agent_agents(cfg)
    cores = [HomeAgent(a.settings, a.sas, slb_sas=dict(a.slb_sas)) for a in agents]
    if hc is not None:
        for core, g in zip(cores[1:], hc.groups, strict=True):
            if g.pool is None:
                core.pool = cores[0].pool
    backend, dp_options = dataplane_options(cfg, "ha")
    now = time.monotonic()
    common: dict[str, Any] = {
        "name": cfg.name,
        "dataplane_kind": backend,
        "dfp": cfg.dfp if cfg.dfp is not None and cfg.dfp.listen is not None else None,
        "rate_limit_s": cfg.log.rate_limit_s,
        "journal": BindingJournal(ha.journal, ha.journal_commit_ms, ha.journal_fsync)
        if ha.journal is not None
        else None,
        "sa_fetcher": sa_fetcher(cfg),
        "batch_io": True,  # registration sockets read and written in batches (recvmmsg)
    }
    if hc is None:
        cluster = Cluster([AgentSpec(cores[0])], wall_offset=time.time() - now, now=now)
        node = HomeAgentNode(cluster, dataplane_options=dp_options, **common)
        node.advertising = home_advertising(cfg)
        return node
    groups = home_agent_hsrp_groups(cfg)
    specs = [
        AgentSpec(core, a.sync, g.group) for core, a, g in zip(cores, agents, groups, strict=True)
    ]
    cluster = Cluster(specs, hsrp=groups, hsrp_port=hc.port, wall_offset=time.time() - now, now=now)
    unicast = bool(hc.peers)
    node_cfg = hsrp_node_config(hc, manage_vip=not unicast)
    if not unicast:  # the VIPs go on the interface, through the data plane
        dp_options["vip"] = VipOwner(
            hc.interface, prefixlen=node_cfg.vip_prefixlen, macvlan=node_cfg.macvlan
        )
    # unicast peers (loopback): a VIP socket only while its group is Active (the VIP is on
    # no interface, and a Standby's socket would take the Active's requests)
    when_active = [s.vip for s in groups if unicast and s.vip and s.vip != ha.address]
    node = HomeAgentNode(
        cluster, dataplane_options=dp_options, hsrp=node_cfg, vip_when_active=when_active,
        **common,
    )  # fmt: skip
    node.advertising = home_advertising(cfg)
    return node


def home_advertising(cfg: Config) -> LinkAdvertising | None:
    """A home agent's advertisements on ``advertise_interface`` (RFC 5944 §2.1): H, its
    address on that link as router address and source, the link's prefix length (mobile
    nodes that hear them know they are home, §2.4.3)."""
    ha = cfg.home_agent
    if ha is None or ha.advertise_interface is None:
        return None
    here = interface_prefix(ha.advertise_interface)
    if here is None:
        return None
    flags = ADV_H | (ADV_G if ha.gre else 0) | (ADV_T if ha.reverse_tunnel else 0)
    conf = AdvertiserConfig(
        interface=ha.advertise_interface,
        flags=flags,
        registration_lifetime=min(ha.max_lifetime, 0xFFFF),
        routers=((here[0], 0),),
        prefix_lengths=(here[1],),
        interval_s=ha.advertise_interval_ms / 1000.0,
        source=here[0],
    )
    return LinkAdvertising(Advertiser(conf))


def hsrp_group_settings(hc: HsrpConfig, identifier: bytes = bytes(6)) -> HsrpGroupSettings:
    """``[hsrp]`` -> the core's configuration of its (first) group."""
    auth = hc.authentication
    return HsrpGroupSettings(
        address=hc.address,
        group=hc.group,
        version=hc.version,
        vip=hc.virtual_ip,
        priority=hc.priority,
        preempt=hc.preempt,
        preempt_delay_ms=hc.preempt_delay_s * 1000,
        hello_ms=hc.hello_ms,
        hold_ms=hc.hold_ms,
        auth=hsrp_wire.text_auth(auth.secret) if auth.kind == "text" else bytes(8),
        md5_key=auth.secret if auth.kind == "md5" else None,
        identifier=identifier,
        name=hc.name or "",
    )


def hsrp_node_config(
    hc: HsrpConfig, identifier: bytes = bytes(6), **node_kw: Any
) -> HsrpNodeConfig:
    """The HSRP adapter configuration of ``[hsrp]`` (its first group). ``hsrp.peers`` are
    used *instead of* multicast (loopback set-ups); keyword arguments are fields of
    :class:`HsrpNodeConfig` (``manage_vip``, ``watch_interface``...)."""
    multicast_group = (
        None if hc.multicast in (hsrp_wire.MCAST_V1, hsrp_wire.MCAST_V2) else hc.multicast
    )
    return HsrpNodeConfig(
        interface=hc.interface,
        groups=[hsrp_group_settings(hc, identifier)],
        peers=list(hc.peers),
        port=hc.port,
        multicast=not hc.peers,
        multicast_group=multicast_group,
        **node_kw,
    )


def hsrp_node(hc: HsrpConfig, identifier: bytes = bytes(6), **node_kw: Any) -> HsrpNode:
    """A standalone HSRP router of ``[hsrp]``; ``on_state_change`` and ``on_vip`` go to
    :class:`HsrpNode`, the other keyword arguments to :func:`hsrp_node_config`."""
    callbacks = {k: node_kw.pop(k) for k in ("on_state_change", "on_vip") if k in node_kw}
    return HsrpNode(hsrp_node_config(hc, identifier, **node_kw), **callbacks)


def sync_config(cfg: Config) -> SyncConfig:
    """``[redundancy]`` -> the sync peer's configuration (the HA address in the sync header
    is ``home_agent.ha_address``)."""
    r, ha = cfg.redundancy, cfg.home_agent
    if r is None or ha is None:
        raise ValueError("config has no [redundancy]")
    sa = r.sa
    return SyncConfig(
        peer_addr=r.peer,
        ha_addr=ha.ha_address,
        spi=sa.spi,
        authenticator=Authenticator(sa.key, sa.algorithm),
        port=r.port,
        mode=Mode.PEER if r.mode == "virtual-network" else Mode.ACTIVE_STANDBY,
        types=SyncTypes(
            bu=r.bu_type,
            bu_ack=r.bu_ack_type,
            bi_request=r.bi_request_type,
            bi_reply=r.bi_reply_type,
            bi_ack=r.bi_ack_type,
            hhae=r.hhae_type,
            chunk=r.chunk_type,
        ),
        replay_tolerance=float(sa.replay_tolerance),
        initial_timeout=r.retransmit_ms / 1000.0,
        max_retries=r.retries,
        max_pending=r.queue_max,
        max_message=r.chunk_bytes,
    )


# --------------------------------------------------------------------------- foreign agent


def aaa_backend(aaa: AaaConfig, nas_ip: str | None = None) -> AaaBackend:
    """The backend ``[aaa]`` asks for: the local ``[[aaa.user]]`` table or RADIUS."""
    if aaa.backend == "radius":
        from mobileha.aaa.radius import RadiusAaa

        if aaa.radius_server is None or aaa.radius_secret is None:
            raise ValueError("aaa.radius_server and aaa.radius_secret are required")
        return RadiusAaa(
            (aaa.radius_server.host, aaa.radius_server.port),
            aaa.radius_secret,
            timeout_s=aaa.radius_timeout_s,
            retries=aaa.radius_retries,
            nas_identifier=aaa.nas_identifier or "mobileha",
            nas_ip=nas_ip,
        )
    from mobileha.aaa.local import LocalAaa, LocalUser

    return LocalAaa(
        LocalUser(
            nai=u.nai, home_agent=u.home_agent, home_address=u.home_address, spi=u.spi, key=u.key
        )
        for u in aaa.users
    )


def foreign_agent_options(cfg: Config) -> dict[str, Any]:
    """``[foreign_agent]`` -> the options of :class:`ForeignAgent` that a reload may change
    (:data:`ForeignAgent.RELOADABLE`), except ``aaa``."""
    fa = cfg.foreign_agent
    if fa is None:
        raise ValueError("foreign_agent: required for role 'foreign-agent'")
    return {
        "home_agent": fa.home_agent,
        "ha_port": fa.home_agent_port,
        "max_lifetime": fa.max_lifetime,
        "max_visitors": fa.max_visitors,
        "pending_timeout_s": fa.pending_timeout_s,
        "reverse_tunnel": fa.reverse_tunnel,
        "gre": fa.gre,
        "gre_key_format": fa.gre_key_format,
        "challenge": fa.challenge,
        "ha_security": {
            s.address: HaSecurity(s.sa.spi, s.sa.key, s.sa.algorithm) for s in fa.home_agent_sas
        },
        "ha_fallback_after": fa.ha_fallback_after,
        "real_home_agents": fa.real_home_agents,
        "max_pending": fa.max_pending,
    }


def foreign_agent_aaa(cfg: Config) -> AaaBackend | None:
    """The FA's AAA backend; None when it has nothing to say (a local table without users
    is no AAA: the FA relays to ``foreign_agent.home_agent``)."""
    fa = cfg.foreign_agent
    assert fa is not None
    aaa: AaaBackend | None = aaa_backend(cfg.aaa, nas_ip=fa.address)
    if not bool(getattr(aaa, "enabled", True)):
        aaa = None
    return aaa


def foreign_agent_node(cfg: Config) -> ForeignAgentNode:
    """A foreign agent (with its AAA backend, :func:`foreign_agent_aaa`)."""
    options = foreign_agent_options(cfg)
    fa = cfg.foreign_agent
    assert fa is not None
    aaa = foreign_agent_aaa(cfg)
    core = ForeignAgent(
        address=fa.address,
        care_of=fa.care_of_address,
        port=fa.port,
        aaa=aaa is not None,
        advertise=advertiser_config(cfg),
        revocation=fa.revocation,
        **options,
    )
    backend, dp_options = dataplane_options(cfg, "fa")
    return ForeignAgentNode(
        core,
        name=cfg.name,
        aaa=aaa,
        log_interval_s=cfg.log.rate_limit_s,
        dataplane_kind=backend,
        dataplane_options=dp_options,
    )


def advertiser_config(cfg: Config) -> AdvertiserConfig | None:
    """The FA's agent advertisements (RFC 5944 §2.1) on ``advertise_interface``: F, R
    (registration required), T/G as offered, X with revocation; its address as the router
    address and IP source; the Prefix-Lengths Extension from the config or the interface.
    None: advertising is off or there is no interface to advertise on."""
    fa = cfg.foreign_agent
    if fa is None or not fa.advertise or fa.advertise_interface is None:
        return None
    iface = fa.advertise_interface
    here = interface_prefix(iface)
    plen = fa.advertise_prefix_length
    if plen is None and here is not None:
        plen = here[1]
    # the router address and IP source: our address on the visitor link (mobile nodes
    # reach it on-link and use it as their default router, §2.3.1), else ``address``
    router = here[0] if here is not None else fa.address
    if router == "0.0.0.0":
        return None
    flags = ADV_R | ADV_F
    flags |= ADV_T if fa.reverse_tunnel else 0
    flags |= ADV_G if fa.gre else 0
    flags |= ADV_X if fa.revocation else 0
    return AdvertiserConfig(
        interface=iface,
        flags=flags,
        registration_lifetime=min(fa.max_lifetime, 0xFFFF),
        care_of=(fa.care_of_address,),
        routers=((router, 0),),
        prefix_lengths=(plen,) if plen is not None else None,
        interval_s=fa.advertise_interval_ms / 1000.0,
        source=router,
    )


# --------------------------------------------------------------------------- HA-SLB


def slb_settings(cfg: Config) -> SlbSettings:
    """``[slb]`` and the DFP manager's ``[dfp]`` -> the SLB node's settings."""
    s = cfg.slb
    if s is None:
        raise ValueError("config has no [slb] table")
    dfp = cfg.dfp
    sa = s.relay_sa
    return SlbSettings(
        virtual_address=s.virtual_address,
        reals=[
            SlbRealSpec(
                address=r.address,
                port=r.port,
                weight=r.weight,
                maxconns=r.maxconns,
                dfp_agent=str(r.dfp_agent) if r.dfp_agent else None,
                inservice=r.inservice,
                name=r.name,
            )
            for r in s.reals
        ],
        port=s.port,
        mode=s.mode,
        session_s=float(s.session_s),
        reassign=s.reassign,
        faildetect_numconns=s.faildetect_numconns,
        faildetect_numclients=s.faildetect_numclients,
        retry_s=float(s.retry_s),
        predictor=s.predictor,
        relay_vendor_id=s.relay_vendor_id,
        relay_key=sa.key if sa else None,
        relay_spi=sa.spi if sa else 0,
        relay_algorithm=sa.algorithm if sa else ALG_PREFIX_SUFFIX,
        max_sessions=s.max_sessions,
        faildetect_window_s=float(s.faildetect_window_s),
        fastpath=s.fastpath,
        name=cfg.name,
        dfp_password=dfp.password if dfp else None,
        dfp_timeout_s=float(dfp.timeout_s) if dfp else 0.0,
        dfp_retry_s=float(dfp.retry_interval_s) if dfp else 10.0,
        dfp_max_message=dfp.max_message_bytes if dfp else 4096,
    )


def slb_node(cfg: Config) -> SlbNode:
    """An HA-SLB virtual server with its farm of reals and DFP manager."""
    return SlbNode(slb_settings(cfg))


# --------------------------------------------------------------------------- mobile nodes


def mobile_node_cores(cfg: Config) -> list[MobileNode]:
    """``[mobile_node]`` -> ``count`` MN cores: NAI ``{n}`` = 1..count, static home
    addresses counting up from ``home_address``."""
    mc = cfg.mobile_node
    if mc is None:
        raise ValueError("mobile_node: required for role 'mobile-node'")
    fa = mc.foreign_agent
    mns: list[MobileNode] = []
    for n in range(1, mc.count + 1):
        if mc.home_address == DYNAMIC:
            hoa = "0.0.0.0"
        else:
            hoa = str(ipaddress.IPv4Address(mc.home_address) + (n - 1))
        mns.append(
            MobileNode(
                nai=mc.nai_of(n) if mc.nai else None,
                home_addr=hoa,
                ha_addr=mc.home_agent,
                security=MnSecurity(mc.sa.spi, mc.sa.key, mc.sa.algorithm, mc.sa.replay),
                foreign_agent=(fa.host, fa.port) if fa is not None else None,
                # roaming: no care-of address until an agent is found
                care_of=mc.co_located_care_of or ("0.0.0.0" if fa is None else None),
                lifetime=mc.lifetime,
                reverse_tunnel=mc.reverse_tunnel,
                encap=mc.encap,
                retransmit_s=mc.retransmit_ms / 1000.0,
                retransmit_max_s=mc.retransmit_max_ms / 1000.0,
                renew_fraction=mc.renew_fraction,
                aaa_key=mc.aaa_key,
                ha_port=mc.home_agent_port,
                retry_denied_s=mc.retransmit_max_ms / 1000.0,
                ha_fallback_after=mc.ha_fallback_after,
            )
        )
    return mns


def mobile_node_node(cfg: Config) -> MobileNodeNode | RoamingNode:
    """The mobile nodes of ``[mobile_node]`` on one socket (``local_address``); with
    ``interfaces`` and neither a fixed FA nor a co-located care-of address, one mobile
    node that discovers agents and moves (RFC 5944 §2.4)."""
    mns = mobile_node_cores(cfg)
    assert cfg.mobile_node is not None
    mc = cfg.mobile_node
    if mc.interfaces and mc.foreign_agent is None and mc.co_located_care_of is None:
        roamer = Roamer(mns[0], mc.interfaces)
        return RoamingNode(roamer, name=cfg.name, local_address=mc.local_address)
    fleet = MobileNodeFleet(mns, local=(cfg.mobile_node.local_address, 0))
    return MobileNodeNode(fleet, name=cfg.name)


ROLE_NODES: dict[str, Callable[[Config], Node]] = {
    "home-agent": home_agent_node,
    "foreign-agent": foreign_agent_node,
    "slb": slb_node,
    "mobile-node": mobile_node_node,
}


__all__ = [
    "ROLE_NODES",
    "RoleUnavailable",
    "aaa_backend",
    "add_realm_entry",
    "build_node",
    "dataplane_options",
    "foreign_agent_node",
    "home_agent_core",
    "home_agent_node",
    "home_agent_security",
    "home_agent_settings",
    "hsrp_group_settings",
    "hsrp_node",
    "hsrp_node_config",
    "mobile_node_cores",
    "mobile_node_node",
    "sa_fetcher",
    "slb_node",
    "slb_settings",
    "subscriber_reload",
    "subscriber_settings",
    "sync_config",
]
