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
from mobileha.core.cluster import AgentSpec, Cluster
from mobileha.core.foreign_agent import ForeignAgent, HaSecurity
from mobileha.core.home_agent import HomeAgent, HomeAgentSettings
from mobileha.core.hsrp import HsrpConfig as HsrpGroupSettings
from mobileha.core.mobile_node import MnSecurity, MobileNode
from mobileha.core.security import MobilitySA, SecurityAssociations
from mobileha.core.sync import Mode, SyncConfig
from mobileha.dataplane.choice import node_options
from mobileha.dataplane.vip import VipOwner
from mobileha.node.base import Node
from mobileha.node.foreign_agent import ForeignAgentNode
from mobileha.node.home_agent import HomeAgentNode
from mobileha.node.hsrp import HsrpNode, HsrpNodeConfig
from mobileha.node.mobile_node import MobileNodeFleet, MobileNodeNode
from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings
from mobileha.wire import hsrp as hsrp_wire
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
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
    )
    return replace(settings, **overrides)


def home_agent_security(cfg: Config) -> SecurityAssociations:
    """The home agent's SAs: ``[[mobile_node]]`` (MN-HA), ``[[foreign_agent]]`` (FA-HA) and,
    with the local AAA backend, the keys of ``[[aaa.user]]`` (MN-AAA)."""
    sas = SecurityAssociations()
    for m in cfg.mobile_nodes:
        sa = m.sa
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


def home_agent_core(cfg: Config, **overrides: Any) -> HomeAgent:
    """The sans-IO home agent of ``cfg`` (``overrides``: fields of its settings)."""
    settings = home_agent_settings(cfg, **overrides)
    assert cfg.home_agent is not None
    slb_sas = {
        p.address: MobilitySA(p.sa.spi, p.sa.key, p.sa.algorithm) for p in cfg.home_agent.slb_sas
    }
    return HomeAgent(settings, home_agent_security(cfg), slb_sas=slb_sas)


def home_agent_node(cfg: Config) -> HomeAgentNode:
    """A home agent: the cluster coordinator of its HA addresses and the node that pumps it.
    With ``[hsrp]`` every HA address answers while its HSRP group is Active, with
    ``[redundancy]`` it syncs its bindings with the peer, with ``[[hsrp.groups]]`` every
    extra group's VIP is one more HA address (load sharing: own core, binding table, pool
    and sync peer keyed by that address)."""
    ha = cfg.home_agent
    assert ha is not None
    hc = cfg.hsrp
    extra = hc.groups if hc is not None else ()
    # load sharing: the pool must never hand out another group's VIP
    vips = {"local_addresses": tuple(g.virtual_ip for g in extra)} if extra else {}
    core = home_agent_core(cfg, **vips)
    backend, dp_options = dataplane_options(cfg, "ha")
    now = time.monotonic()
    common: dict[str, Any] = {
        "name": cfg.name,
        "dataplane_kind": backend,
        "dfp": cfg.dfp if cfg.dfp is not None and cfg.dfp.listen is not None else None,
        "rate_limit_s": cfg.log.rate_limit_s,
        "batch_io": True,  # registration sockets read and written in batches (recvmmsg)
    }
    if hc is None:
        cluster = Cluster([AgentSpec(core)], wall_offset=time.time() - now, now=now)
        return HomeAgentNode(cluster, dataplane_options=dp_options, **common)
    first = hsrp_group_settings(hc)
    groups = [first]
    specs = [AgentSpec(core, sync_config(cfg) if cfg.redundancy is not None else None, hc.group)]
    for g in extra:
        groups.append(
            replace(
                first,
                group=g.group,
                vip=g.virtual_ip,
                priority=g.priority,
                preempt=g.preempt,
                preempt_delay_ms=g.preempt_delay_s * 1000,
                name=g.name or "",
            )
        )
        sub = replace(cfg, home_agent=replace(ha, ha_address=g.virtual_ip))
        others = (hc.virtual_ip, *(o.virtual_ip for o in extra if o is not g))
        if g.pool is not None:  # its own dynamic pool (the config checked it disjoint)
            g_core = home_agent_core(sub, pool=g.pool, local_addresses=others)
        else:  # static home addresses only (the config checked it): share ours
            g_core = home_agent_core(sub)
            g_core.pool = core.pool
        specs.append(
            AgentSpec(g_core, sync_config(sub) if cfg.redundancy is not None else None, g.group)
        )
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
    return HomeAgentNode(
        cluster, dataplane_options=dp_options, hsrp=node_cfg, vip_when_active=when_active,
        **common,
    )  # fmt: skip


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


def foreign_agent_node(cfg: Config) -> ForeignAgentNode:
    """A foreign agent; AAA only when the backend has something to say (a local table
    without users is no AAA: the FA relays to ``foreign_agent.home_agent``)."""
    fa = cfg.foreign_agent
    if fa is None:
        raise ValueError("foreign_agent: required for role 'foreign-agent'")
    aaa: AaaBackend | None = aaa_backend(cfg.aaa, nas_ip=fa.address)
    if not bool(getattr(aaa, "enabled", True)):
        aaa = None
    core = ForeignAgent(
        address=fa.address,
        care_of=fa.care_of_address,
        port=fa.port,
        ha_port=fa.home_agent_port,
        home_agent=fa.home_agent,
        max_lifetime=fa.max_lifetime,
        max_visitors=fa.max_visitors,
        pending_timeout_s=fa.pending_timeout_s,
        reverse_tunnel=fa.reverse_tunnel,
        gre=fa.gre,
        gre_key_format=fa.gre_key_format,
        challenge=fa.challenge,
        ha_security={
            s.address: HaSecurity(s.sa.spi, s.sa.key, s.sa.algorithm) for s in fa.home_agent_sas
        },
        aaa=aaa is not None,
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
        fastpath=s.fastpath,
        name=cfg.name,
        dfp_password=dfp.password if dfp else None,
        dfp_timeout_s=float(dfp.timeout_s) if dfp else 0.0,
        dfp_retry_s=float(dfp.retry_interval_s) if dfp else 10.0,
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
                care_of=mc.co_located_care_of,
                lifetime=mc.lifetime,
                reverse_tunnel=mc.reverse_tunnel,
                encap=mc.encap,
                retransmit_s=mc.retransmit_ms / 1000.0,
                retransmit_max_s=mc.retransmit_max_ms / 1000.0,
                renew_fraction=mc.renew_fraction,
                aaa_key=mc.aaa_key,
                ha_port=mc.home_agent_port,
                retry_denied_s=mc.retransmit_max_ms / 1000.0,
            )
        )
    return mns


def mobile_node_node(cfg: Config) -> MobileNodeNode:
    """The mobile nodes of ``[mobile_node]`` on one socket (``local_address``)."""
    mns = mobile_node_cores(cfg)
    assert cfg.mobile_node is not None
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
    "slb_node",
    "slb_settings",
    "sync_config",
]
