"""Loading: TOML text -> checked rows -> the typed :class:`~mobileha.config.model.Config`.

``load_config(path)`` returns a :class:`Config` or raises :class:`ConfigError` with every
problem (:mod:`mobileha.config.validate`). ``[node]`` is read first: the role decides what
the other tables mean and which of them are allowed. Each role's tables are then checked
key by key, their cross-key rules run, and the model objects are built from the rows with
the derived defaults (``home_agent.ha_address``, ``hsrp.address``, ``hsrp.multicast``,
``foreign_agent.care_of_address``, ``aaa.nas_identifier``...).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mobileha.config import validate as v
from mobileha.config.model import (
    ALG_PREFIX_SUFFIX,
    DYNAMIC,
    AaaConfig,
    AaaUser,
    Config,
    ConfigError,
    DataplaneConfig,
    DfpConfig,
    ForeignAgentConfig,
    HomeAgentConfig,
    HsrpConfig,
    HsrpGroupConfig,
    LogConfig,
    ManagementConfig,
    MobileNodeConfig,
    MobileNodeSA,
    NodeSection,
    PeerSA,
    RedundancyConfig,
    SecurityAssociation,
    SlbConfig,
    SlbReal,
)
from mobileha.config.subscribers import read_subscriber_file
from mobileha.config.validate import Checker, Row


def loads_config(text: str, source: str = "<string>") -> Config:
    """Parse TOML text and validate it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"toml: {e}"]) from None
    return config_from_dict(data, source=source)


def load_config(path: str | Path) -> Config:
    """Read and validate one node's TOML config; raises :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"file: cannot read {p}: {e.strerror or e}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"file: {p} is not UTF-8 text"]) from None
    return loads_config(text, source=str(p))


def config_from_dict(data: Mapping[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document; raises :class:`ConfigError` with every problem."""
    ck = Checker()
    doc = dict(data)
    node = ck.table("node", "node", doc.get("node", {}))
    role = node["role"] if node else None
    allowed = v.check_sections(ck, doc, role)

    def section(name: str) -> Row | None:
        if name not in doc or name not in allowed:
            return None
        return ck.table(name, name, doc[name])

    mgmt = section("management") or ck.table("management", "management", {})
    log = section("log") or ck.table("log", "log", {})
    assert mgmt is not None and log is not None
    name = (node["name"] if node else None) or role or "node"
    kw: dict[str, Any] = {
        "node": NodeSection(role=role or "", name=name),
        "management": ManagementConfig(
            listen=mgmt["listen"],
            enabled=mgmt["enabled"],
            token=v.check_management(ck, mgmt),
            token_file=mgmt["token_file"],
        ),
        "log": LogConfig(
            level=log["level"], format=log["format"], rate_limit_s=log["rate_limit_s"]
        ),
        "source": source,
    }
    if (dp := section("dataplane")) is not None:
        kw["dataplane"] = DataplaneConfig(
            backend=dp["backend"],
            tun_name=dp["tun_name"],
            mtu=dp["mtu"],
            visitor_iface=dp["visitor_iface"],
        )
    if (dfp := section("dfp")) is not None:
        kw["dfp"] = DfpConfig(**dfp)
        v.check_dfp(ck, dfp, role)
    if role in ("home-agent", "foreign-agent") and "aaa" in doc:
        kw["aaa"] = _aaa(ck, doc["aaa"], name)

    if role == "home-agent":
        kw.update(_home_agent(ck, doc))
        if not ck.problems:
            kw["mobile_nodes"] = _subscriber_files(ck, kw.get("mobile_nodes", ()), source)
    elif role == "foreign-agent":
        kw.update(_foreign_agent(ck, doc))
    elif role == "slb":
        kw.update(_slb(ck, doc))
    elif role == "mobile-node":
        kw.update(_mobile_node(ck, doc))

    if role in ("home-agent", "slb"):
        reals = kw["slb"].reals if "slb" in kw else ()
        agents = [
            (f"slb.real[{i}].dfp_agent", str(r.dfp_agent))
            for i, r in enumerate(reals)
            if r.dfp_agent is not None
        ]
        if dfp is not None or agents:
            dfp_row = dfp if dfp is not None else ck.table("dfp", "dfp", {})
            assert dfp_row is not None
            v.check_dfp_auth(ck, dfp_row, role, agents)

    if ck.problems:
        raise ConfigError(ck.problems)
    return Config(**kw)


# --------------------------------------------------------------------------- shared tables


def _sa(row: Row, tolerance: int = 7, replay: str = "timestamp") -> SecurityAssociation:
    return SecurityAssociation(
        spi=row.get("spi") or 0,
        key=row.get("key") or b"",
        algorithm=row.get("algorithm") or ALG_PREFIX_SUFFIX,
        replay=row.get("replay") or replay,
        replay_tolerance=row.get("replay_tolerance") or tolerance,
    )


def _peer_sas(
    ck: Checker, schema: str, path: str, data: Any, tolerance: int = 7
) -> tuple[PeerSA, ...]:
    rows = ck.array(schema, path, data)
    v.check_unique_peers(ck, path, rows)
    return tuple(PeerSA(address=r["address"] or "", sa=_sa(r, tolerance)) for r in rows)


def _aaa(ck: Checker, data: Any, node_name: str) -> AaaConfig:
    row = ck.table("aaa", "aaa", data)
    if row is None:
        return AaaConfig()
    users = ck.array("aaa.user[]", "aaa.user", data.get("user", []))
    v.check_aaa(ck, row, users)
    return AaaConfig(
        backend=row["backend"],
        radius_server=row["radius_server"],
        radius_secret=row["radius_secret"],
        radius_timeout_s=row["radius_timeout_s"],
        radius_retries=row["radius_retries"],
        nas_identifier=row["nas_identifier"] or node_name,
        sa_cache_ttl_s=row["sa_cache_ttl_s"],
        sa_cache_size=row["sa_cache_size"],
        sa_negative_ttl_s=row["sa_negative_ttl_s"],
        sa_timeout_s=row["sa_timeout_s"],
        sa_max_in_flight=row["sa_max_in_flight"],
        sa_resync_s=row["sa_resync_s"],
        users=tuple(
            AaaUser(
                nai=u["nai"] or "",
                home_address=u["home_address"],
                home_agent=u["home_agent"],
                spi=u["spi"],
                key=u["key"],
                algorithm=u["algorithm"],
            )
            for u in users
        ),
    )


# --------------------------------------------------------------------------- home agent


def _home_agent(ck: Checker, doc: dict[str, Any]) -> dict[str, Any]:
    """``[home_agent]`` with its ``[[mobile_node]]``, ``[[foreign_agent]]``, ``[hsrp]`` and
    ``[redundancy]`` tables."""
    raw = doc.get("home_agent")
    row = ck.table("home_agent", "home_agent", raw) if raw is not None else None
    if row is None:
        return {}
    out: dict[str, Any] = {}
    tolerance = row["replay_tolerance"]
    max_lifetime = row["max_lifetime"]
    hsrp = ck.table("hsrp", "hsrp", doc["hsrp"]) if "hsrp" in doc else None
    groups: list[Row] = []
    if hsrp is not None:
        v.check_hsrp(ck, hsrp)
        groups = ck.array("hsrp.groups[]", "hsrp.groups", doc["hsrp"].get("groups", []))
        v.check_hsrp_groups(ck, hsrp, groups)
        out["hsrp"] = _hsrp(hsrp, groups, row)
    if "redundancy" in doc:
        r = ck.table("redundancy", "redundancy", doc["redundancy"])
        if r is not None:
            v.check_redundancy(ck, r, row, hsrp)
            out["redundancy"] = _redundancy(r)

    v.check_home_pool(ck, row)
    if row["journal"] is not None and "redundancy" in doc:
        ck.add(
            "home_agent.journal",
            "is for a home agent without a peer: a redundant one restores its table from the "
            "peer's bulk download",
        )
    pool = row["pool"] if row["pool"] is not None else row["home_prefix"]
    slb_raw = raw.get("slb_sa", []) if isinstance(raw, dict) else []
    slb_rows = ck.array("home_agent.slb_sa[]", "home_agent.slb_sa", slb_raw)
    v.check_unique_peers(ck, "home_agent.slb_sa", slb_rows)
    v.check_slb_sas(ck, row, slb_rows)
    v.check_slb_trust(ck, row, slb_rows)
    mns = ck.array("mobile_node[]", "mobile_node", doc.get("mobile_node", []))
    v.check_mobile_node_sas(ck, row, mns, pool)
    v.check_mobile_node_sources(ck, mns, doc.get("aaa"))
    fas = _peer_sas(ck, "foreign_agent[]", "foreign_agent", doc.get("foreign_agent", []), tolerance)
    if groups:
        dynamic = any(m["home_address"] == DYNAMIC for m in mns)
        v.check_group_pools(ck, row, groups, dynamic)

    ha_address = row["ha_address"]
    if ha_address is None:
        ha_address = (hsrp["virtual_ip"] if hsrp else None) or row["address"] or ""
    out["home_agent"] = HomeAgentConfig(
        address=row["address"] or "",
        ha_address=ha_address,
        port=row["port"],
        trusted_slb=row["trusted_slb"],
        relay_vendor_id=row["relay_vendor_id"],
        max_lifetime=max_lifetime,
        replay_tolerance=tolerance,
        max_bindings=row["max_bindings"],
        home_prefix=row["home_prefix"],
        pool=pool,
        reverse_tunnel=row["reverse_tunnel"],
        gre=row["gre"],
        minimal_encap=row["minimal_encap"],
        slb_sas=tuple(PeerSA(address=r["address"] or "", sa=_sa(r)) for r in slb_rows),
        reverse_tunnel_required=row["reverse_tunnel_required"],
        simultaneous_bindings=row["simultaneous_bindings"],
        redirect_ha=row["redirect_ha"],
        answer_duplicates=row["answer_duplicates"],
        journal=row["journal"],
        journal_commit_ms=row["journal_commit_ms"],
        journal_fsync=row["journal_fsync"],
        slb_trust=row["slb_trust"],
        revocation=row["revocation"],
        advertise_interface=row["advertise_interface"],
        advertise_interval_ms=row["advertise_interval_ms"],
    )
    out["mobile_nodes"] = tuple(
        MobileNodeSA(
            nai=m["nai"],
            home_address=m["home_address"],
            sa=_sa(m, tolerance),
            lifetime=min(
                m["lifetime"] if m["lifetime"] is not None else max_lifetime, max_lifetime
            ),
            sa_source=m["sa_source"],
            file=m["file"],
        )
        for m in mns
    )
    out["foreign_agents"] = fas
    return out


def _subscriber_files(
    ck: Checker, mns: tuple[MobileNodeSA, ...], source: str
) -> tuple[MobileNodeSA, ...]:
    """Read the subscriber file of every ``sa_source = "file"`` entry (a relative path is
    relative to the configuration file); its problems name the entry, the file and line."""
    out = []
    for i, m in enumerate(mns):
        if m.sa_source == "file" and m.file is not None and m.nai is not None:
            path = Path(m.file)
            if not path.is_absolute() and not source.startswith("<"):
                path = Path(source).parent / path
            try:
                subs = read_subscriber_file(path, m.nai)
            except ConfigError as e:
                for p in e.problems:
                    ck.add(f"mobile_node[{i}].file", p)
                subs = []
            m = replace(m, file=str(path), subscribers=tuple(subs))
        out.append(m)
    return tuple(out)


def _hsrp(h: Row, groups: list[Row], ha: Row) -> HsrpConfig:
    version = h["version"]
    return HsrpConfig(
        virtual_ip=h["virtual_ip"] or "",
        address=h["address"] or ha["address"] or "",
        interface=h["interface"],
        group=h["group"],
        version=version,
        name=h["name"],
        priority=h["priority"],
        preempt=h["preempt"],
        preempt_delay_s=h["preempt_delay_s"],
        hello_ms=h["hello_ms"],
        hold_ms=h["hold_ms"],
        authentication=h["authentication"],
        port=h["port"],
        multicast=h["multicast"] or ("224.0.0.2" if version == 1 else "224.0.0.102"),
        peers=h["peers"],
        groups=tuple(
            HsrpGroupConfig(
                group=g["group"] if g["group"] is not None else 0,
                virtual_ip=g["virtual_ip"] or "",
                priority=g["priority"],
                preempt=g["preempt"],
                preempt_delay_s=g["preempt_delay_s"],
                name=g["name"],
                pool=g["pool"],
            )
            for g in groups
        ),
    )


def _redundancy(r: Row) -> RedundancyConfig:
    return RedundancyConfig(
        peer=r["peer"] or "",
        sa=_sa(r, r["replay_tolerance"]),
        port=r["port"],
        mode=r["mode"],
        hhae_type=r["hhae_type"],
        chunk_type=r["chunk_type"],
        bu_type=r["bu_type"],
        bu_ack_type=r["bu_ack_type"],
        bi_request_type=r["bi_request_type"],
        bi_reply_type=r["bi_reply_type"],
        bi_ack_type=r["bi_ack_type"],
        retransmit_ms=r["retransmit_ms"],
        retries=r["retries"],
        queue_max=r["queue_max"],
        chunk_bytes=r["chunk_bytes"],
    )


# --------------------------------------------------------------------------- other roles


def _foreign_agent(ck: Checker, doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("foreign_agent")
    if raw is None or not v.check_own_table(ck, "foreign_agent", raw):
        return {}
    row = ck.table("foreign_agent", "foreign_agent", raw)
    if row is None:
        return {}
    sas = _peer_sas(
        ck,
        "foreign_agent.home_agent_sa[]",
        "foreign_agent.home_agent_sa",
        raw.get("home_agent_sa", []),
    )
    fa = ForeignAgentConfig(
        address=row["address"] or "",
        care_of_address=row["care_of_address"] or row["address"] or "",
        port=row["port"],
        home_agent=row["home_agent"],
        max_lifetime=row["max_lifetime"],
        max_visitors=row["max_visitors"],
        pending_timeout_s=row["pending_timeout_s"],
        reverse_tunnel=row["reverse_tunnel"],
        gre=row["gre"],
        home_agent_sas=sas,
        gre_key_format=row["gre_key_format"],
        challenge=row["challenge"],
        home_agent_port=row["home_agent_port"],
        ha_fallback_after=row["ha_fallback_after"],
        real_home_agents=row["real_home_agents"],
        max_pending=row["max_pending"],
        advertise=row["advertise"],
        advertise_interface=row["advertise_interface"] or _visitor_iface(doc),
        advertise_interval_ms=row["advertise_interval_ms"],
        advertise_prefix_length=row["advertise_prefix_length"],
        revocation=row["revocation"],
    )
    return {"foreign_agent": fa}


def _visitor_iface(doc: dict[str, Any]) -> str | None:
    dp = doc.get("dataplane")
    iface = dp.get("visitor_iface") if isinstance(dp, dict) else None
    return iface if isinstance(iface, str) and iface else None


def _slb(ck: Checker, doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("slb")
    row = ck.table("slb", "slb", raw) if raw is not None else None
    if row is None or not isinstance(raw, dict):
        return {}
    relay_sa = None
    if "relay_sa" in raw:
        r = ck.table("slb.relay_sa", "slb.relay_sa", raw["relay_sa"])
        if r is not None:
            relay_sa = _sa(r)
    reals = ck.array("slb.real[]", "slb.real", raw.get("real", []))
    v.check_slb_reals(ck, row, raw, reals)
    slb = SlbConfig(
        virtual_address=row["virtual_address"] or "",
        reals=tuple(
            SlbReal(
                address=r["address"] or "",
                name=r["name"] or r["address"] or f"real{i}",
                port=r["port"],
                weight=r["weight"],
                maxconns=r["maxconns"],
                dfp_agent=r["dfp_agent"],
                inservice=r["inservice"],
            )
            for i, r in enumerate(reals)
        ),
        port=row["port"],
        mode=row["mode"],
        session_s=row["session_s"],
        reassign=row["reassign"],
        faildetect_numconns=row["faildetect_numconns"],
        faildetect_numclients=row["faildetect_numclients"],
        retry_s=row["retry_s"],
        predictor=row["predictor"],
        relay_vendor_id=row["relay_vendor_id"],
        max_sessions=row["max_sessions"],
        faildetect_window_s=row["faildetect_window_s"],
        relay_sa=relay_sa,
        fastpath=row["fastpath"],
    )
    return {"slb": slb}


def _mobile_node(ck: Checker, doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("mobile_node")
    if raw is None or not v.check_own_table(ck, "mobile_node", raw):
        return {}
    m = ck.table("mobile_node", "mobile_node", raw)
    if m is None:
        return {}
    v.check_mobile_node(ck, m)
    mn = MobileNodeConfig(
        nai=m["nai"] or "",
        home_agent=m["home_agent"] or "",
        sa=_sa(m),
        count=m["count"],
        home_address=m["home_address"],
        foreign_agent=m["foreign_agent"],
        co_located_care_of=m["co_located_care_of"],
        local_address=m["local_address"],
        lifetime=m["lifetime"],
        reverse_tunnel=m["reverse_tunnel"],
        encap=m["encap"],
        retransmit_ms=m["retransmit_ms"],
        retransmit_max_ms=m["retransmit_max_ms"],
        renew_fraction=m["renew_fraction"],
        aaa_key=m["aaa_key"],
        home_agent_port=m["home_agent_port"],
        ha_fallback_after=m["ha_fallback_after"],
        interfaces=_interfaces(m["interfaces"]),
    )
    return {"mobile_node": mn}


def _interfaces(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else ()


__all__ = ["config_from_dict", "load_config", "loads_config"]
