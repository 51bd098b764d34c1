"""Validation: every problem of a config, each named by its full key path.

Problems are ``"key.path: what is wrong"`` strings (``hsrp.hold_ms: ...``,
``slb.real[1].weight: ...``; array indexes count from 0), all of them collected, not just
the first. Two levels:

* one value against its :class:`~mobileha.config.schema.Spec` (:func:`check_value`) and one
  table against its schema (:meth:`Checker.table`: unknown keys with a "did you mean",
  missing required keys, defaults filled in);
* the rules that tie keys together, one ``check_*`` function per table, called by
  :mod:`mobileha.config.load` in the order the problems are reported.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from typing import Any

from mobileha.config.model import DYNAMIC, Endpoint, HsrpAuth
from mobileha.config.schema import (
    ALL_SECTIONS,
    CHILDREN,
    REQUIRED,
    ROLE_REQUIRED,
    ROLE_SECTIONS,
    SCHEMA,
    Spec,
    type_text,
)

# --------------------------------------------------------------------------- values


def type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "table"
    return type(v).__name__


def is_ipv4(v: str) -> bool:
    try:
        ipaddress.IPv4Address(v)
    except ValueError:
        return False
    return True


def parse_secret(v: str) -> bytes:
    """``"hex:0011.."`` or ``"text:secret"`` -> bytes; raises ValueError with the reason."""
    if v.startswith("hex:"):
        digits = v[4:]
        try:
            out = bytes.fromhex(digits)
        except ValueError:
            raise ValueError("expected 'hex:' followed by an even number of hex digits") from None
    elif v.startswith("text:"):
        out = v[5:].encode()
    else:
        raise ValueError("expected 'hex:<hex digits>' or 'text:<secret>'")
    if not out:
        raise ValueError("empty key")
    return out


def parse_endpoint(v: str) -> Endpoint:
    host, sep, port = v.rpartition(":")
    if not sep or not is_ipv4(host) or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected 'a.b.c.d:port' with port 0..65535")
    return Endpoint(str(ipaddress.IPv4Address(host)), int(port))


def check_value(s: Spec, v: Any) -> tuple[Any, str | None]:
    """Return (value, None) or (None, problem)."""
    k = s.kind
    if k == "str":
        if not isinstance(v, str):
            return None, f"expected string, got {type_name(v)}"
        if not v:
            return None, "must not be empty"
        return v, None
    if k == "int":
        rng = f"integer {int(s.lo or 0)}..{int(s.hi or 0)}"
        if not isinstance(v, int) or isinstance(v, bool):
            return None, f"expected {rng}, got {type_name(v)}"
        if (s.lo is not None and v < s.lo) or (s.hi is not None and v > s.hi):
            return None, f"expected {rng}, got {v}"
        return v, None
    if k == "number":
        rng = type_text(s)
        if not isinstance(v, int | float) or isinstance(v, bool):
            return None, f"expected {rng}, got {type_name(v)}"
        if (s.lo is not None and v < s.lo) or (s.hi is not None and v > s.hi):
            return None, f"expected {rng}, got {v}"
        return float(v), None
    if k == "bool":
        if not isinstance(v, bool):
            return None, f"expected true or false, got {type_name(v)}"
        return v, None
    if k == "choice":
        if not isinstance(v, str) or v not in s.choices:
            got = repr(v) if isinstance(v, str) else type_name(v)
            return None, "expected one of " + ", ".join(s.choices) + f", got {got}"
        return v, None
    if not isinstance(v, str) and k != "addr_list":
        return None, f"expected string ({type_text(s)}), got {type_name(v)}"
    if k in ("addr", "addr_or_dynamic"):
        assert isinstance(v, str)
        if k == "addr_or_dynamic" and v == DYNAMIC:
            return v, None
        if not is_ipv4(v):
            extra = ' or "dynamic"' if k == "addr_or_dynamic" else ""
            return None, f"expected an IPv4 address{extra}, got {v!r}"
        return str(ipaddress.IPv4Address(v)), None
    if k == "addr_list":
        if not isinstance(v, list):
            return None, f"expected array of IPv4 addresses, got {type_name(v)}"
        out: list[str] = []
        for i, item in enumerate(v):
            if not isinstance(item, str) or not is_ipv4(item):
                return None, f"item {i}: expected an IPv4 address, got {item!r}"
            out.append(str(ipaddress.IPv4Address(item)))
        return tuple(out), None
    assert isinstance(v, str)
    if k == "endpoint":
        try:
            return parse_endpoint(v), None
        except ValueError as e:
            return None, f"{e}, got {v!r}"
    if k == "prefix":
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as e:
            return None, f"expected an IPv4 prefix 'a.b.c.d/len': {e}"
        return str(net), None
    if k == "secret":
        try:
            return parse_secret(v), None
        except ValueError as e:
            return None, str(e)
    if k == "hsrp_auth":
        kind, sep, secret = v.partition(":")
        if not sep or kind not in ("text", "md5") or not secret:
            return None, "expected 'text:<up to 8 chars>' or 'md5:<key>'"
        return HsrpAuth(kind, secret.encode()), None
    raise AssertionError(k)


# --------------------------------------------------------------------------- tables

# Keys that existed and were removed: what an old config gets instead of "unknown key".
REMOVED = {
    "home_agent.sync_port": "removed: HA-HA sync messages arrive on home_agent.port and go "
    "to the peer's redundancy.port",
}


class Row(dict[str, Any]):
    """One checked table: key -> value, defaults filled in for missing and bad keys;
    ``bad`` names the keys whose own check failed (their cross-key rules are skipped, so a
    key is reported once)."""

    def __init__(self) -> None:
        super().__init__()
        self.bad: set[str] = set()

    def ok(self, *keys: str) -> bool:
        """True when none of ``keys`` failed its own check."""
        return not (set(keys) & self.bad)


class Checker:
    """Collects the problems of one config."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def table(self, schema_name: str, path: str, data: Any) -> Row | None:
        """Check one table against its schema; None when ``data`` is not a table."""
        if not isinstance(data, dict):
            self.add(path, f"expected a table, got {type_name(data)}")
            return None
        spec = SCHEMA[schema_name]
        children = CHILDREN.get(schema_name, {})
        out = Row()
        for key in data:
            if key not in spec and key not in children:
                gone = REMOVED.get(f"{schema_name}.{key}")
                self.add(
                    f"{path}.{toml_key(key)}",
                    gone if gone else "unknown key" + suggest(key, [*spec, *children]),
                )
        for key, s in spec.items():
            kpath = f"{path}.{key}"
            if key not in data:
                if s.default is REQUIRED:
                    self.add(kpath, s.missing or "required key is missing")
                out[key] = None if s.default is REQUIRED else s.default
                continue
            value, problem = check_value(s, data[key])
            if problem is not None:
                self.add(kpath, problem)
                out[key] = None if s.default is REQUIRED else s.default
                out.bad.add(key)
            else:
                out[key] = value
        return out

    def array(self, schema_name: str, path: str, data: Any) -> list[Row]:
        """Check an array of tables; the rows that are tables."""
        if not isinstance(data, list):
            self.add(path, f"expected an array of tables ([[{path}]]), got {type_name(data)}")
            return []
        rows = []
        for i, item in enumerate(data):
            row = self.table(schema_name, f"{path}[{i}]", item)
            if row is not None:
                rows.append(row)
        return rows


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise."""
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key)


def suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- cross-key rules


def check_sections(ck: Checker, doc: dict[str, Any], role: str | None) -> set[str]:
    """The top-level tables: known, used by the role, the role's own one present. Returns
    the sections the role may have."""
    if "node" not in doc:
        ck.problems.clear()  # the defaults of a missing [node] say nothing useful
        ck.add("node", "required table is missing ([node] with role = ...)")
    allowed = ROLE_SECTIONS.get(role or "", ALL_SECTIONS)
    for key in doc:
        if key not in ALL_SECTIONS:
            ck.add(toml_key(key), "unknown section" + suggest(key, sorted(ALL_SECTIONS)))
        elif key not in allowed:
            ck.add(key, f"not used by role {role!r}")
    if role in ROLE_REQUIRED and ROLE_REQUIRED[role] not in doc:
        ck.add(ROLE_REQUIRED[role], f"required for role {role!r}")
    return allowed


def check_dfp(ck: Checker, dfp: Row, role: str | None) -> None:
    if role == "home-agent" and dfp["listen"] is None and dfp.ok("listen"):
        ck.add("dfp.listen", "required on a home agent (the DFP agent listens)")


def check_aaa(ck: Checker, row: Row, users: list[Row]) -> None:
    seen: dict[str, int] = {}
    for i, u in enumerate(users):
        if u["nai"] in seen:
            ck.add(f"aaa.user[{i}].nai", f"duplicate of aaa.user[{seen[u['nai']]}].nai")
        elif u["nai"]:
            seen[u["nai"]] = i
        if (u["spi"] is None) != (u["key"] is None) and u.ok("spi", "key"):
            ck.add(f"aaa.user[{i}].key", "spi and key go together")
    if row["backend"] == "radius":
        for k in ("radius_server", "radius_secret"):
            if row[k] is None and row.ok(k):
                ck.add(f"aaa.{k}", "required with aaa.backend = 'radius'")


def check_unique_peers(ck: Checker, path: str, rows: list[Row]) -> None:
    """Security associations with peers: one per (address, spi)."""
    seen: dict[tuple[str, int], int] = {}
    for i, row in enumerate(rows):
        ident = (row["address"], row["spi"])
        if ident in seen and row["address"]:
            ck.add(f"{path}[{i}]", f"duplicate address and spi of {path}[{seen[ident]}]")
        seen.setdefault(ident, i)


def check_hsrp(ck: Checker, h: Row) -> None:
    version = h["version"]
    if version == 1 and h.ok("group", "version") and h["group"] > 255:
        ck.add("hsrp.group", f"expected integer 0..255 with version 1, got {h['group']}")
    if h.ok("hello_ms", "hold_ms") and h["hold_ms"] <= h["hello_ms"]:
        ck.add("hsrp.hold_ms", "must be greater than hsrp.hello_ms")
    if version == 1 and h.ok("version"):
        for k in ("hello_ms", "hold_ms"):
            if h.ok(k) and h[k] % 1000:
                ck.add(f"hsrp.{k}", "must be whole seconds with version 1 (use version 2)")
    auth: HsrpAuth | None = h["authentication"]
    if auth is not None and auth.kind == "text" and len(auth.secret) > 8:
        ck.add("hsrp.authentication", "text authentication is at most 8 bytes")


def check_hsrp_groups(ck: Checker, h: Row, groups: list[Row]) -> None:
    """``[[hsrp.groups]]``: group numbers and virtual IPs unique across all groups."""
    version = h["version"]
    seen_groups = {h["group"]: "hsrp.group"}
    seen_vips = {h["virtual_ip"]: "hsrp.virtual_ip"}
    for i, g in enumerate(groups):
        p = f"hsrp.groups[{i}]"
        if g["group"] is None:
            pass
        elif g["group"] in seen_groups and g.ok("group"):
            ck.add(f"{p}.group", f"duplicate of {seen_groups[g['group']]}")
        elif version == 1 and g.ok("group") and g["group"] > 255:
            ck.add(f"{p}.group", f"expected integer 0..255 with version 1, got {g['group']}")
        seen_groups.setdefault(g["group"], f"{p}.group")
        if g["virtual_ip"] and g["virtual_ip"] in seen_vips and g.ok("virtual_ip"):
            ck.add(f"{p}.virtual_ip", f"duplicate of {seen_vips[g['virtual_ip']]}")
        seen_vips.setdefault(g["virtual_ip"], f"{p}.virtual_ip")


def check_redundancy(ck: Checker, r: Row, ha: Row, hsrp: Row | None) -> None:
    if hsrp is None:
        ck.add("redundancy", "needs an [hsrp] group (redundancy follows HSRP state)")
    elif (
        ha["ha_address"] is not None
        and hsrp["virtual_ip"]
        and ha["ha_address"] != hsrp["virtual_ip"]
    ):
        ck.add(
            "home_agent.ha_address", "must equal hsrp.virtual_ip when [redundancy] is configured"
        )
    if r["peer"] and r["peer"] == ha["address"]:
        ck.add("redundancy.peer", "must differ from home_agent.address")
    seen: dict[int, str] = {}
    for key in ("bu_type", "bu_ack_type", "bi_request_type", "bi_reply_type", "bi_ack_type"):
        code = r[key]
        if not r.ok(key):
            continue
        if code in (1, 3):
            ck.add(f"redundancy.{key}", "must not be a registration request/reply type (1, 3)")
        elif code in seen:
            ck.add(f"redundancy.{key}", f"same type code as redundancy.{seen[code]}")
        seen.setdefault(code, key)
    if r["chunk_type"] == r["hhae_type"] and r.ok("chunk_type", "hhae_type"):
        ck.add("redundancy.chunk_type", "must differ from redundancy.hhae_type")


def check_home_pool(ck: Checker, ha: Row) -> None:
    home_prefix, pool = ha["home_prefix"], ha["pool"]
    if pool is not None and home_prefix is None and ha.ok("pool", "home_prefix"):
        ck.add("home_agent.pool", "needs home_agent.home_prefix")
    elif (
        pool is not None
        and home_prefix is not None
        and not ipaddress.IPv4Network(pool).subnet_of(ipaddress.IPv4Network(home_prefix))
    ):
        ck.add("home_agent.pool", f"must be inside home_agent.home_prefix {home_prefix}")


def check_slb_sas(ck: Checker, ha: Row, slb_sas: list[Row]) -> None:
    for i, sa in enumerate(slb_sas):
        if sa["address"] and sa["address"] not in ha["trusted_slb"]:
            ck.add(f"home_agent.slb_sa[{i}].address", "not listed in home_agent.trusted_slb")


def check_mobile_node_sas(ck: Checker, ha: Row, mns: list[Row], pool: str | None) -> None:
    """``[[mobile_node]]`` of a home agent: unique NAIs and static home addresses; a dynamic
    home address needs an NAI and a pool (``pool``: the pool in effect)."""
    nais: dict[str, int] = {}
    hoas: dict[str, int] = {}
    for i, m in enumerate(mns):
        p = f"mobile_node[{i}]"
        if m["nai"] is not None:
            if m["nai"] in nais:
                ck.add(f"{p}.nai", f"duplicate of mobile_node[{nais[m['nai']]}].nai")
            nais.setdefault(m["nai"], i)
        hoa = m["home_address"]
        if hoa == DYNAMIC and m.ok("home_address"):
            if m["nai"] is None and m.ok("nai"):
                ck.add(f"{p}.nai", "required with a dynamic home address")
            if pool is None and ha.ok("home_prefix", "pool"):
                ck.add(f"{p}.home_address", "dynamic needs home_agent.home_prefix (the pool)")
        elif hoa != DYNAMIC:
            if hoa in hoas:
                ck.add(f"{p}.home_address", f"duplicate of mobile_node[{hoas[hoa]}].home_address")
            hoas.setdefault(hoa, i)


def check_mobile_node_sources(ck: Checker, mns: list[Row], aaa: Any) -> None:
    """Where each ``[[mobile_node]]`` entry's SA comes from: ``inline`` needs spi and key;
    ``aaa`` (fetched from RADIUS) and ``file`` stand for many NAIs (a realm or a pattern),
    take neither (AAA or the file gives them) and need ``[aaa]`` with backend radius or a
    ``file``; realm and pattern entries get dynamic home addresses (AAA may name one)."""
    radius = isinstance(aaa, dict) and aaa.get("backend") == "radius"
    for i, m in enumerate(mns):
        p = f"mobile_node[{i}]"
        src = m["sa_source"]
        nai = m["nai"]
        pattern = isinstance(nai, str) and (nai.startswith("@") or any(c in nai for c in "*?["))
        if pattern and m["home_address"] != DYNAMIC and m.ok("home_address"):
            ck.add(f"{p}.home_address", "a realm or pattern entry has dynamic home addresses")
        if src == "inline":
            for k in ("spi", "key"):
                if m[k] is None and m.ok(k):
                    ck.add(f"{p}.{k}", "required with sa_source = 'inline'")
            if m["file"] is not None:
                ck.add(f"{p}.file", "only with sa_source = 'file'")
            continue
        if not pattern and m.ok("nai"):
            ck.add(f"{p}.nai", f"sa_source = '{src}' needs a realm (@realm) or a pattern")
        for k in ("spi", "key"):
            if m[k] is not None:
                ck.add(f"{p}.{k}", f"not used with sa_source = '{src}' (it comes from {src})")
        if src == "aaa":
            if not radius:
                ck.add(f"{p}.sa_source", "'aaa' needs [aaa] with backend = 'radius'")
            if m["file"] is not None:
                ck.add(f"{p}.file", "only with sa_source = 'file'")
        elif m["file"] is None:
            ck.add(f"{p}.file", "required with sa_source = 'file'")


def check_group_pools(ck: Checker, ha: Row, groups: list[Row], dynamic: bool) -> None:
    """Load sharing: the two HAs allocate dynamic home addresses independently, one group
    each, so every HA address needs its own pool and the pools must not overlap."""
    home = ha["home_prefix"]
    nets: list[tuple[str, ipaddress.IPv4Network]] = []
    if ha["pool"] is not None:
        nets.append(("home_agent.pool", ipaddress.IPv4Network(ha["pool"])))
    elif dynamic and ha.ok("pool"):
        ck.add("home_agent.pool", "required with [[hsrp.groups]] and dynamic home addresses")
    for i, g in enumerate(groups):
        p = f"hsrp.groups[{i}].pool"
        if g["pool"] is None:
            if dynamic:
                ck.add(p, "required with dynamic home addresses (one pool per HA address)")
            continue
        net = ipaddress.IPv4Network(g["pool"])
        if home is not None and not net.subnet_of(ipaddress.IPv4Network(home)):
            ck.add(p, f"must be inside home_agent.home_prefix {home}")
        for other, onet in nets:
            if net.overlaps(onet):
                ck.add(p, f"overlaps {other}")
        nets.append((p, net))


_OWN_TABLE = {
    "foreign_agent": "a foreign-agent config has one [foreign_agent] table "
    "([[foreign_agent]] arrays are FA-HA SAs of a home agent)",
    "mobile_node": "a mobile-node config has one [mobile_node] table "
    "([[mobile_node]] arrays are MN-HA SAs of a home agent)",
}


def check_own_table(ck: Checker, name: str, raw: Any) -> bool:
    """``[foreign_agent]`` / ``[mobile_node]`` of their own role is one table, not the
    array a home agent has under the same name."""
    if isinstance(raw, list):
        ck.add(name, _OWN_TABLE[name])
        return False
    return True


def check_slb_reals(ck: Checker, slb: Row, raw: dict[str, Any], reals: list[Row]) -> None:
    """At least one real; reals unique by (address, port), none on the virtual address."""
    if "real" not in raw:
        ck.add("slb.real", "at least one [[slb.real]] is required")
    seen: dict[tuple[str, int], int] = {}
    for i, r in enumerate(reals):
        ident = (r["address"], r["port"])
        if r["address"] and ident in seen:
            ck.add(f"slb.real[{i}].address", f"duplicate of slb.real[{seen[ident]}]")
        seen.setdefault(ident, i)
        if r["address"] and r["address"] == slb["virtual_address"]:
            ck.add(f"slb.real[{i}].address", "must differ from slb.virtual_address")


def check_mobile_node(ck: Checker, m: Row) -> None:
    """``[mobile_node]`` of a mobile-node config."""
    if m["count"] > 1 and m["nai"] and "{n}" not in m["nai"]:
        ck.add("mobile_node.nai", "must contain '{n}' when mobile_node.count > 1")
    if m["foreign_agent"] is not None and m["co_located_care_of"] is not None:
        ck.add("mobile_node.co_located_care_of", "exclusive with mobile_node.foreign_agent")
    if (
        m["foreign_agent"] is None
        and m["co_located_care_of"] is None
        and m["interfaces"] is None
        and m.ok("foreign_agent", "co_located_care_of", "interfaces")
    ):
        ck.add("mobile_node", "needs foreign_agent, co_located_care_of or interfaces")
    if m["interfaces"] is not None and m["count"] > 1:
        ck.add("mobile_node.interfaces", "roaming drives one mobile node (count = 1)")
    if m["retransmit_max_ms"] < m["retransmit_ms"]:
        ck.add("mobile_node.retransmit_max_ms", "must be at least mobile_node.retransmit_ms")
    hoa = m["home_address"]
    if m["count"] > 1 and hoa != DYNAMIC and hoa:
        last = int(ipaddress.IPv4Address(hoa)) + m["count"] - 1
        if last > 0xFFFFFFFF:
            ck.add("mobile_node.count", "home addresses run past 255.255.255.255")


# --------------------------------------------------------------------------- channels


def _loopback(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_management(ck: Checker, m: Row) -> str | None:
    """The API's bearer token (``token``, or the first line of ``token_file``), required
    when the API listens on a non-loopback address. Returns the token."""
    token: str | None = m["token"]
    path: str | None = m["token_file"]
    if token is not None and path is not None:
        ck.add("management.token_file", "exclusive with management.token")
        return token
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                token = f.readline().strip()
        except (OSError, UnicodeDecodeError) as e:
            ck.add("management.token_file", f"cannot read {path}: {getattr(e, 'strerror', e)}")
            return None
        key = "management.token_file"
    else:
        key = "management.token"
    if token is not None and (len(token) < 16 or not token.isascii() or not token.isprintable()):
        ck.add(key, "the token must be at least 16 printable ASCII characters")
    if token is None and m["enabled"] and m.ok("listen") and not _loopback(m["listen"].host):
        ck.add(
            "management.listen",
            f"{m['listen']} is not a loopback address: set management.token (or "
            "management.token_file) so that requests must carry it, or listen on 127.0.0.1",
        )
    return token


def check_slb_trust(ck: Checker, ha: Row, slb_sas: list[Row]) -> None:
    """A relay tag is trusted with an SLB-HA SA per trusted SLB, unless the operator chose
    the source address alone (``slb_trust = "source-address"``, which check warns about)."""
    if ha["slb_trust"] != "sa" or not ha.ok("trusted_slb"):
        return
    with_sa = {r["address"] for r in slb_sas}
    for i, addr in enumerate(ha["trusted_slb"]):
        if addr not in with_sa:
            ck.add(
                f"home_agent.trusted_slb[{i}]",
                f"{addr} has no [[home_agent.slb_sa]]: its relay tags could be forged by "
                "anyone who can send from its address; add an SLB-HA SA (the SLB's "
                '[slb.relay_sa]) or set home_agent.slb_trust = "source-address"',
            )


def check_dfp_auth(
    ck: Checker, dfp: Row, role: str | None, agents: list[tuple[str, str]] | None = None
) -> None:
    """DFP is authenticated (``password``) or limited to listed peers (``allow``): on a home
    agent for the managers that connect, on an SLB for the agents it connects to."""
    if dfp["password"] is not None or not dfp.ok("password", "allow"):
        return
    allow = set(dfp["allow"])
    if role == "home-agent" and not allow:
        ck.add(
            "dfp.password",
            "required: set dfp.password (IOS `password` of the DFP agent), or list in "
            "dfp.allow the managers that may connect without one",
        )
    elif role == "slb":
        for where, agent in agents or []:
            host = agent.rpartition(":")[0]
            if host not in allow:
                ck.add(
                    where,
                    f"{host} is not in dfp.allow and dfp.password is not set: set "
                    "dfp.password, or list the agent in dfp.allow",
                )


__all__ = [
    "Checker",
    "Row",
    "check_dfp_auth",
    "check_management",
    "check_slb_trust",
    "check_value",
    "is_ipv4",
    "parse_endpoint",
    "parse_secret",
    "toml_key",
    "type_name",
]
