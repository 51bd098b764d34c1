"""``mobileha show VIEW``: IOS-shaped output of a node's management API.

::

    mobileha show bindings   [--api URL | --config FILE] [--json] [--offset N] [--limit N]
    mobileha show standby | redundancy | slb | sessions | dfp | stats

``bindings`` mirrors ``show ip mobile binding``, ``standby`` ``show standby``,
``redundancy`` ``show ip mobile redundancy`` (+ statistics), ``slb`` ``show ip slb vservers``
+ ``show ip slb reals``, ``sessions`` ``show ip slb sessions ipmobile``, ``dfp``
``show ip slb dfp``, ``stats`` ``show ip mobile traffic``. Paged views (bindings, sessions)
are fetched page by page and printed as they arrive, so a million bindings never sit in
memory at once; ``--json`` streams them as one JSON object ``{"total": N, "items": [...]}``.

A home agent serving several HSRP groups (load sharing, ``[[hsrp.groups]]``) lists them in
its ``groups`` view; ``bindings`` then covers every group (one section per HA address, the
paging over all of them) and ``redundancy`` prints one block per group (``--json``:
``{"groups": [...]}``, each view with its ``hsrp_group``).

The API URL comes from ``--api``, else the ``management.listen`` of ``--config``, else the
``MOBILEHA_API`` environment variable, else ``http://127.0.0.1:8434``. The bearer token
(needed when the node has ``management.token``) comes from ``--token``, else the first line
of ``--token-file``, else ``MOBILEHA_TOKEN``, else the ``management.token`` (or
``token_file``) of ``--config``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

from mobileha.mgmt.views import (
    REAL_STATES,
    REDUN_COUNTERS,
    VIEW_NAMES,
    VIEW_SOURCES,
    reply_code_name,
)

DEFAULT_API = "http://127.0.0.1:8434"
PAGE_SIZE = 1000
PAGED_VIEWS = ("bindings", "sessions", "visitors")


class ApiError(Exception):
    """A management API request failed; ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.status = status


_headers: dict[str, str] = {}  # sent with every request of this process (the token)


def use_token(token: str | None) -> None:
    """Send ``Authorization: Bearer <token>`` with every request from now on (None: none)."""
    _headers.pop("Authorization", None)
    if token:
        _headers["Authorization"] = f"Bearer {token}"


def fetch(api: str, view: str, query: Mapping[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """GET ``/api/<view>`` and decode the JSON; raises :class:`ApiError` with a readable text."""
    url = f"{api.rstrip('/')}/api/{view}"
    if query:
        url += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
    return _get_json(url, timeout)


def post_action(
    api: str, action: str, args: Mapping[str, Any] | None = None, timeout: float = 5.0
) -> Any:
    """POST ``/api/<action>`` with ``args`` as its JSON body (the token of
    :func:`use_token` sent with it) and decode the JSON answer; raises :class:`ApiError`."""
    url = f"{api.rstrip('/')}/api/{action}"
    body = json.dumps(dict(args or {})).encode()
    headers = {**_headers, "Content-Type": "application/json"}
    return _request_json(
        urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout
    )


def fetch_index(api: str, timeout: float = 5.0) -> Any:
    """GET ``/``: the node's name, role and the names of its views."""
    return _get_json(f"{api.rstrip('/')}/", timeout)


def _get_json(req: str | urllib.request.Request, timeout: float) -> Any:
    """``req`` (a URL: GET with the token of :func:`use_token`; or a request) answered
    with JSON; :class:`ApiError` with a readable text otherwise."""
    if isinstance(req, str):
        req = urllib.request.Request(req, headers=_headers)
    return _request_json(req, timeout)


def _request_json(req: urllib.request.Request, timeout: float) -> Any:
    url = req.full_url
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("error", "")
        except Exception:
            detail = ""
        hint = " (give the token: --token, --token-file or MOBILEHA_TOKEN)" if e.code == 401 else ""
        raise ApiError(f"{url}: HTTP {e.code} {detail}{hint}".rstrip(), e.code) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise ApiError(f"cannot reach the management API at {url}: {reason}") from None


def iter_pages(
    api: str, view: str, offset: int = 0, limit: int | None = None, page_size: int = PAGE_SIZE
) -> Iterator[dict[str, Any]]:
    """Yield pages of a paged view from ``offset``, at most ``limit`` rows in all."""
    left = limit
    while True:
        want = page_size if left is None else min(page_size, left)
        if want <= 0:
            return
        page = fetch(api, view, {"offset": offset, "limit": want})
        yield page
        n = len(page.get("items", []))
        if left is not None:
            left -= n
        nxt = page.get("next_offset")
        if nxt is None or n == 0:
            return
        offset = int(nxt)


# ----------------------------------------------------------------------------- formatting


def hms(seconds: float | int | None) -> str:
    """IOS-style ``hh:mm:ss``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _secs(v: float | None, unit: str = "sec") -> str:
    return "unknown" if v is None else f"{v:.3f} {unit}"


def _lifetime(granted: int, remaining: int) -> str:
    if granted == 0xFFFF:
        return "Lifetime granted INFINITE"
    return f"Lifetime granted {hms(granted)} ({granted}), remaining {hms(remaining)}"


def render_binding_header(total: int, out: IO[str]) -> None:
    out.write(f"Mobility Binding List:\nTotal {total}\n")


def render_binding(b: Mapping[str, Any], out: IO[str]) -> None:
    """One binding as ``show ip mobile binding`` prints it."""
    encap = str(b.get("encap", "ipip"))
    tunnel = f"    Tunnel src {b['ha_address']} dest {b['care_of']}, encap {encap.upper()}"
    if b.get("gre_key") is not None:
        tunnel += f" key 0x{int(b['gre_key']):X}"
    if int(b.get("flags", 0)) & 0x02:
        tunnel += ", reverse-allowed"
    lines = [
        f"{b['home_address']}:",
        f"    Care-of Addr {b['care_of']}, Src Addr {b['src_addr']}",
        "    " + _lifetime(int(b["lifetime_granted"]), int(b["lifetime_remaining"])),
        f"    Flags {b['flags_text']}, Identification {b['identification']}",
        tunnel,
    ]
    if b.get("nai"):
        lines.append(f"    NAI {b['nai']}")
    if t := b.get("traffic"):
        lines.append(
            f"    Tunnel in {t['rx_pkts']} pkts ({t['rx_bytes']} bytes), out {t['tx_pkts']} pkts"
            f" ({t['tx_bytes']} bytes), {t['drops']} dropped"
        )
    if b.get("state") and b["state"] != "active":
        lines.append(f"    State {b['state']} (synchronised from the peer)")
    out.write("\n".join(lines) + "\n")


def render_visitor(v: Mapping[str, Any], out: IO[str]) -> None:
    """One visitor as IOS ``show ip mobile visitor`` prints it (foreign agent)."""
    remaining = v.get("lifetime_remaining")
    lines = [
        f"{v['home_address']}:",
        f"    Interface {v['mn']}, Care-of Addr {v['care_of']}, HA Addr {v['home_agent']}",
        "    " + _lifetime(int(v["lifetime_granted"]), int(remaining or 0)),
        f"    Flags 0x{int(v.get('flags', 0)):02X}, Identification {v['identification']},"
        f" Tunnel {str(v.get('encap', 'ipip')).upper()}"
        + (f" key 0x{int(v['gre_key']):X}" if v.get("gre_key") is not None else ""),
    ]
    if v.get("target") and v.get("target") != v.get("home_agent"):
        lines.append(f"    Re-registrations to {v['target']} (the real HA behind the HA-SLB)")
    if v.get("nai"):
        lines.append(f"    NAI {v['nai']}")
    out.write("\n".join(lines) + "\n")


def cisco_mac(mac: str | None) -> str:
    """``00:00:0c:9f:f0:07`` (any separators) -> IOS ``0000.0c9f.f007``."""
    if not mac:
        return "unknown"
    digits = "".join(c for c in mac.lower() if c in "0123456789abcdef")
    if len(digits) != 12:
        return mac
    return ".".join(digits[i : i + 4] for i in (0, 4, 8))


def _ms_to_s(g: Mapping[str, Any], key: str) -> float | None:
    """``key`` in seconds from ``key_ms`` (node shape) or ``key_s`` (older shape)."""
    if g.get(f"{key}_ms") is not None:
        return float(g[f"{key}_ms"]) / 1000.0
    v = g.get(f"{key}_s")
    return None if v is None else float(v)


def render_standby(view: Any, out: IO[str]) -> None:
    """``show standby`` (the view is a list of groups, or ``{"groups": [...]}``)."""
    groups = view.get("groups", []) if isinstance(view, Mapping) else list(view)
    if not groups:
        out.write("No HSRP groups configured\n")
    for g in groups:
        changes = g.get("state_changes", 0)
        last = _ms_to_s(g, "last_state_change_ago")
        if last is None:
            last = g.get("last_change_s")
        preempt = "enabled" if g.get("preempt") else "disabled"
        delay = _ms_to_s(g, "preempt_delay") or 0
        if g.get("preempt") and delay:
            preempt += f", delay min {delay:g} secs"
        lines = [
            f"{g.get('interface', '?')} - Group {g['group']} (version {g.get('version', 1)})",
            f"  State is {g['state']}",
            f"    {changes} state change{'s' if changes != 1 else ''}, "
            f"last state change {hms(last) if last is not None else 'never'}",
            f"  Virtual IP address is {g.get('virtual_ip') or 'unknown'}",
            f"  Active virtual MAC address is {cisco_mac(g.get('virtual_mac'))}",
            f"  Hello time {_ms(int(g['hello_ms']))}, hold time {_ms(int(g['hold_ms']))}",
        ]
        nxt = _ms_to_s(g, "next_hello")
        if nxt is not None:
            lines.append(f"    Next hello sent in {nxt:.3f} secs")
        failures = int(g.get("auth_failures", 0))
        lines += [
            f"  Authentication {'MD5' if g.get('authentication') == 'md5' else 'text'}, "
            f"{failures} failure{'s' if failures != 1 else ''}",
            f"  Preemption {preempt}",
            "  Active router is " + _router(g, "active"),
            "  Standby router is " + _router(g, "standby"),
            f"  Priority {g['priority']} "
            f"(configured {g.get('configured_priority', g['priority'])})",
        ]
        for t in g.get("tracked", []) or []:
            lines.append(
                f"    Track object {t.get('name')} state {t.get('state')} "
                f"decrement {t.get('decrement')}"
            )
        if g.get("name"):
            lines.append(f'  Group name is "{g["name"]}" (cfgd)')
        if g.get("ready") is False:
            lines.append("  Not ready: binding download from the peer in progress")
        out.write("\n".join(lines) + "\n")


def _ms(ms: int) -> str:
    return f"{ms // 1000} sec" if ms % 1000 == 0 else f"{ms} msec"


def _router(g: Mapping[str, Any], which: str) -> str:
    who = g.get(f"{which}_router") or "unknown"
    if who in ("local", "unknown"):
        return str(who)
    text = str(who)
    if g.get(f"{which}_priority") is not None:
        text += f", priority {g[f'{which}_priority']}"
    expires = _ms_to_s(g, f"{which}_expires")
    if expires is not None:
        text += f" (expires in {expires:.3f} sec)"
    return text


def render_redundancy(v: Mapping[str, Any], out: IO[str]) -> None:
    """``show ip mobile redundancy`` followed by its statistics (cmiHaRedun*).

    Accepts the ``views.RedundancyView`` shape and ``core.sync.SyncPeer.view()``
    (``state``/``pending`` instead of ``sync_state``/``queue_depth``), or
    ``{"groups": [view, ...]}`` (load sharing): one block per group, headed by its
    ``hsrp_group`` number."""
    if "groups" in v:
        for i, g in enumerate(v["groups"]):
            if i:
                out.write("\n")
            _render_redundancy_group(g, out)
        return
    _render_redundancy_group(v, out)


def _render_redundancy_group(v: Mapping[str, Any], out: IO[str]) -> None:
    counters = v.get("counters", {})
    c = {k: int(counters.get(k, 0)) for k in REDUN_COUNTERS}
    bulk = v.get("last_bulk_s")
    bulk_txt = (
        "never" if bulk is None else f"{bulk:.3f} sec ({v.get('last_bulk_bindings') or 0} bindings)"
    )
    heard = v.get("peer_last_heard_s")
    sync = v.get("sync_state", v.get("state", "unknown"))
    queue = v.get("queue_depth", v.get("pending", 0))
    role = v.get("role", "unknown")
    hsrp = f"HSRP state {v['hsrp_state']}, " if v.get("hsrp_state") else ""
    mode = f", mode {v['mode']}" if v.get("mode") else ""
    title = "IP Mobility Home Agent Redundancy"
    if v.get("hsrp_group") is not None:
        title += f" - HSRP group {v['hsrp_group']}"
    lines = [
        title,
        f"  Redundancy group {v.get('group_name') or '-'}, HA address "
        f"{v.get('ha_address', '?')}{mode}",
        f"  Peer {v.get('peer', '?')}, last heard "
        f"{_secs(heard) + ' ago' if heard is not None else 'never'}",
        f"  {hsrp}role {role}, sync state {sync}"
        + ("" if v.get("ready", True) else ", NOT ready (holding HSRP down)"),
    ]
    if v.get("bindings") is not None:
        lines.append(f"  Bindings {v['bindings']}, binding updates waiting for ack {queue}")
    else:
        lines.append(f"  Binding updates waiting for ack {queue}")
    lines += [
        f"  Last bulk download {bulk_txt}",
        "IP Mobility Redundancy Statistics:",
        f"   Binding updates received {c['ReceivedBUs']}, sent {c['SentBUs']}, "
        f"total sent {c['TotalSentBUs']}, failed {c['FailedBUs']}",
        f"   Binding update acks received {c['ReceivedBUAcks']}, sent {c['SentBUAcks']}",
        f"   Binding info requests received {c['ReceivedBIReqs']}, sent {c['SentBIReqs']}, "
        f"total sent {c['TotalSentBIReqs']}, failed {c['FailedBIReqs']}",
        f"   Binding info reply received {c['ReceivedBIReps']}, dropped {c['DroppedBIReps']}, "
        f"sent {c['SentBIReps']}, total sent {c['TotalSentBIReps']}, failed {c['FailedBIReps']}",
        f"   Binding info reply acks received {c['ReceivedBIAcks']}, "
        f"dropped {c['DroppedBIAcks']}, sent {c['SentBIAcks']}",
        f"   Security violations {c['SecViolations']}",
    ]
    extra = {k: val for k, val in counters.items() if k not in c}
    if extra:
        lines.append("   Other: " + ", ".join(f"{k} {val}" for k, val in sorted(extra.items())))
    out.write("\n".join(lines) + "\n")


def _console(out: IO[str]) -> Console:
    return Console(file=out, width=132, highlight=False, soft_wrap=False)


def render_slb(v: Mapping[str, Any], out: IO[str]) -> None:
    """``show ip slb vservers`` line and the ``show ip slb reals`` table."""
    out.write(
        f"slb vserver {v.get('farm', 'HAFARM')} {v['virtual_address']}:{v['port']} udp "
        f"(ipmobile), {v.get('state', 'OPERATIONAL')}, mode {v['mode']}, "
        f"predictor {v['predictor']}" + (f", io {v['io']}" if v.get("io") else "") + "\n"
        f"  sessions {v.get('sessions', 0)} (total {v.get('total_sessions', 0)}), "
        f"forwarded {v.get('forwarded', 0)}, reassigned {v.get('reassigned', 0)}, "
        f"dropped {v.get('dropped', 0)}\n\n"
    )
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col, just in (
        ("real", "left"),
        ("farm name", "left"),
        ("weight", "right"),
        ("state", "left"),
        ("conns", "right"),
        ("total", "right"),
        ("fails", "right"),
        ("retry", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in v.get("reals", []):
        weight = str(r["weight_oper"])
        if r["weight_oper"] != r["weight_admin"]:
            weight += f"({r['weight_admin']})"
        if r.get("dfp_weight") is not None:
            weight += " dfp"
        real = r["address"] if r.get("port", 434) == 434 else f"{r['address']}:{r['port']}"
        retry = r.get("retry_in_s")
        t.add_row(
            real,
            str(r.get("farm", "")),
            weight,
            r.get("state_text") or REAL_STATES.get(r["state"], str(r["state"]).upper()),
            str(r.get("conns", 0)),
            str(r.get("total_conns", 0)),
            f"{r.get('failures', 0)}/{r.get('total_failures', 0)}",
            "-" if retry is None else f"{retry:.0f}s",
        )
    _console(out).print(t)


def _sessions_table() -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    # fixed widths: every page is its own table and the columns must line up across pages
    for col, just, width in (
        ("vserver", "left", 21),
        ("NAI / key", "left", 28),
        ("client", "left", 21),
        ("real", "left", 15),
        ("retrans", "right", 7),
        ("expires", "right", 8),
        ("state", "left", 7),
    ):
        t.add_column(col, justify=just, min_width=width)  # type: ignore[arg-type]
    return t


def render_sessions_page(items: list[Mapping[str, Any]], out: IO[str], header: bool) -> None:
    """One page of ``show ip slb sessions ipmobile``."""
    t = _sessions_table()
    t.show_header = header
    for s in items:
        t.add_row(
            str(s["vserver"]),
            str(s["key"]),
            str(s["client"]),
            str(s["real"]),
            str(s.get("retransmissions", 0)),
            f"{float(s.get('expires_in_s', 0)):.1f}s",
            str(s.get("state", "ESTAB")),
        )
    if items or header:
        _console(out).print(t)


def render_dfp(v: Mapping[str, Any], out: IO[str]) -> None:
    """``show ip slb dfp`` / ``show ip dfp agent``."""
    agents = v.get("agents", [])
    if not agents:
        out.write("No DFP agents\n")
        return
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in ("DFP agent", "role", "state", "last report", "reports", "errors", "weights"):
        t.add_column(col)
    for a in agents:
        weights = ", ".join(f"{w['address']}={w['weight']}" for w in a.get("weights", []))
        last = a.get("last_report_s")
        t.add_row(
            str(a["agent"]),
            str(a.get("role", "")),
            str(a.get("state", "")),
            "never" if last is None else f"{last:.1f}s ago",
            str(a.get("reports", 0)),
            str(a.get("errors", 0)),
            weights or "-",
        )
    _console(out).print(t)


def render_stats(v: Mapping[str, Any], out: IO[str]) -> None:
    """``show ip mobile traffic``: counters, reply codes, bad input; with
    ``{"groups": [view, ...]}`` (load sharing) one block per HSRP group."""
    if "groups" in v:
        for i, g in enumerate(v["groups"]):
            if i:
                out.write("\n")
            out.write(f"HSRP group {g.get('hsrp_group', '?')}\n")
            render_stats({k: x for k, x in g.items() if k != "hsrp_group"}, out)
        return
    out.write(f"{v.get('node', '?')} ({v.get('role', '?')}), uptime {hms(v.get('uptime_s', 0))}\n")
    counters = v.get("counters", {})
    if counters:
        width = max(len(k) for k in counters)
        out.write("Counters:\n")
        for k in sorted(counters):
            out.write(f"  {k:<{width}}  {counters[k]}\n")
    codes = v.get("reply_codes", {})
    if codes:
        out.write("Registration replies by code:\n")
        for code in sorted(codes, key=lambda c: int(c)):
            out.write(f"  {int(code):>3} {reply_code_name(int(code)):<34} {codes[code]}\n")
    bad = v.get("bad_input", {})
    if bad:
        out.write("Dropped / refused input by reason:\n")
        width = max(len(k) for k in bad)
        for k in sorted(bad):
            out.write(f"  {k:<{width}}  {bad[k]}\n")
    if subs := v.get("subscribers"):
        out.write(
            f"SA cache: {subs['sa_cache_size']} SAs from AAA, {subs['sa_cache_hits']} hits,"
            f" {subs['sa_cache_misses']} misses, {subs['aaa_failures']} AAA failures\n"
        )
    if dp := v.get("dataplane"):
        t = dp["totals"]
        out.write(
            f"Data plane {dp['backend']}: {dp['tunnels']} tunnels, out {t.get('tx_pkts', 0)}"
            f" pkts ({t.get('tx_bytes', 0)} bytes), in {t.get('rx_pkts', 0)} pkts"
            f" ({t.get('rx_bytes', 0)} bytes)\n"
        )
        for k, why in dp["not_taken"].items():
            out.write(f"  not {k}: {why}\n")
        for k in sorted(dp["drops"]):
            out.write(f"  dropped {k}: {dp['drops'][k]}\n")
        for k in sorted(dp.get("errors", {})):
            out.write(f"  error {k}: {dp['errors'][k]}\n")


def render_subscribers(v: Mapping[str, Any], out: IO[str]) -> None:
    """Realm entries, the cache of SAs from AAA and AAA's latency and failures."""
    out.write("Realm / pattern entries:\n")
    for r in v.get("realms", []):
        spi = f" spi {r['spi']}" if r.get("spi") is not None else ""
        out.write(f"  {r['pattern']:<32} {r['sa_source']}{spi}\n")
    cache = v.get("cache", {})
    if cache:
        out.write("SA cache and AAA:\n")
        width = max(len(k) for k in cache)
        for k in sorted(cache):
            out.write(f"  {k:<{width}}  {cache[k]}\n")
    lat = v.get("latency", {})
    if lat.get("count"):
        out.write(
            f"AAA latency: {lat['count']} answers, mean {lat['mean_ms']} ms,"
            f" max {lat['max_ms']} ms\n"
        )
    client = v.get("aaa_client", {})
    if client:
        out.write("RADIUS client: " + ", ".join(f"{k} {client[k]}" for k in sorted(client)) + "\n")


_RENDER: dict[str, Callable[[Any, IO[str]], None]] = {
    "subscribers": render_subscribers,
    "standby": render_standby,
    "redundancy": render_redundancy,
    "slb": render_slb,
    "dfp": render_dfp,
    "stats": render_stats,
}


# ----------------------------------------------------------------------------- command


def show(
    view: str,
    api: str,
    out: IO[str],
    as_json: bool = False,
    offset: int = 0,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
) -> None:
    """Fetch ``view`` from ``api`` and write it to ``out`` (raises :class:`ApiError`; a
    node without the view gets one that says which config section gives it)."""
    try:
        _show(view, api, out, as_json, offset, limit, page_size)
    except ApiError as e:
        if e.status != 404:
            raise
        raise ApiError(missing_view(view, fetch_index(api)), 404) from None


def missing_view(view: str, index: Mapping[str, Any]) -> str:
    """Why a node has no ``view``: what it is, which config gives the view, what it has."""
    have = ", ".join(str(v) for v in index.get("views", [])) or "none"
    return (
        f"node {index.get('node', '?')} ({index.get('role', '?')}) has no {view!r} view: "
        f"it is served by {VIEW_SOURCES.get(view, 'another kind of node')}. "
        f"This node's views: {have}"
    )


def _show(
    view: str,
    api: str,
    out: IO[str],
    as_json: bool,
    offset: int,
    limit: int | None,
    page_size: int,
) -> None:
    names: set[str] = set()
    groups: list[dict[str, Any]] = []
    if view in ("bindings", "redundancy", "stats"):
        names, groups = _groups(api)
    if view == "bindings" and len(groups) > 1:
        _show_group_bindings(groups, api, out, as_json, offset, limit, page_size)
        return
    if view in PAGED_VIEWS:
        _show_paged(view, api, out, as_json, offset, limit, page_size)
        return
    if view in ("redundancy", "stats") and len(groups) > 1:
        blocks = []
        for g in groups:
            if g["prefix"] + view in names:
                blocks.append({"hsrp_group": g["group"], **fetch(api, g["prefix"] + view)})
        data: Any = {"groups": blocks} if blocks else fetch(api, view)
    else:
        data = fetch(api, view)
    if as_json:
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        _RENDER[view](data, out)


def _show_paged(
    view: str,
    api: str,
    out: IO[str],
    as_json: bool,
    offset: int,
    limit: int | None,
    page_size: int,
) -> None:
    first = True
    total = shown = 0
    for page in iter_pages(api, view, offset, limit, page_size):
        items = page.get("items", [])
        total = int(page["total"])
        shown += len(items)
        if as_json:
            if first:
                out.write(f'{{"total": {int(page["total"])}, "offset": {offset}, "items": [')
            for i, item in enumerate(items):
                sep = "" if first and i == 0 else ","
                out.write(sep + "\n  " + json.dumps(item))
        elif view == "bindings":
            if first:
                render_binding_header(int(page["total"]), out)
            for b in items:
                render_binding(b, out)
        elif view == "visitors":
            if first:
                out.write(f"Mobile Visitor List:\nTotal {int(page['total'])}\n")
            for v in items:
                render_visitor(v, out)
        else:
            if first:
                out.write(f"Total sessions {int(page['total'])}\n")
            render_sessions_page(items, out, header=first)
        first = False
        out.flush()
    _end_of_rows(out, as_json, first, total, offset, shown)


def _end_of_rows(
    out: IO[str], as_json: bool, empty: bool, total: int, offset: int, shown: int
) -> None:
    """Close a paged listing; when rows remain (``--limit``), say how many and where the
    next page starts (``next_offset`` in JSON)."""
    rest = max(0, total - offset - shown)
    nxt = offset + shown if rest else None
    if as_json:
        if empty:
            out.write(f'{{"total": {total}, "offset": {offset}, "items": [')
        out.write(f'\n], "next_offset": {json.dumps(nxt)}}}\n')
    elif rest:
        out.write(f"... {rest} more (next: --offset {nxt})\n")


def _groups(api: str) -> tuple[set[str], list[dict[str, Any]]]:
    """The node's view names, and the HSRP groups of a load-sharing home agent (its
    ``groups`` view; ``[]`` on every other node)."""
    names = {str(n) for n in fetch_index(api).get("views", [])}
    if "groups" not in names:
        return names, []
    return names, list(fetch(api, "groups").get("groups", []))


def _show_group_bindings(
    groups: list[dict[str, Any]],
    api: str,
    out: IO[str],
    as_json: bool,
    offset: int,
    limit: int | None,
    page_size: int,
) -> None:
    """``show bindings`` of a load-sharing home agent: the groups' tables one after the
    other (a section per HA address), ``offset``/``limit`` counted over all of them."""
    totals = [int(fetch(api, g["prefix"] + "bindings", {"limit": 1})["total"]) for g in groups]
    total = sum(totals)
    if as_json:
        out.write(f'{{"total": {total}, "offset": {offset}, "items": [')
    else:
        render_binding_header(total, out)
    first = True
    shown = 0
    skip, left = offset, limit
    for g, n in zip(groups, totals, strict=True):
        if skip >= n:
            skip -= n
            continue
        if left is not None and left <= 0:
            break
        if not as_json:
            out.write(
                f"Home agent address {g['ha_address']} - HSRP group {g['group']}: Total {n}\n"
            )
        for page in iter_pages(api, g["prefix"] + "bindings", skip, left, page_size):
            items = page.get("items", [])
            for b in items:
                if as_json:
                    out.write(
                        ("" if first else ",")
                        + "\n  "
                        + json.dumps({**b, "hsrp_group": g["group"]})
                    )
                    first = False
                else:
                    render_binding(b, out)
            shown += len(items)
            if left is not None:
                left -= len(items)
            out.flush()
        skip = 0
    _end_of_rows(out, as_json, False, total, offset, shown)


def api_from_args(args: argparse.Namespace) -> str:
    """The API URL, and the token this process sends (:func:`use_token`)."""
    token = getattr(args, "token", None)
    token_file = getattr(args, "token_file", None)
    if token is None and token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.readline().strip()
        except OSError as e:
            raise ApiError(f"cannot read the token file {token_file}: {e.strerror}") from None
    if token is None:
        token = os.environ.get("MOBILEHA_TOKEN") or None
    url = None
    if args.api:
        url = str(args.api)
    elif args.config:
        from mobileha.config import load_config

        cfg = load_config(args.config)
        host, port = cfg.management.listen
        url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        if token is None:
            token = cfg.management.token
    use_token(token)
    return url or os.environ.get("MOBILEHA_API", DEFAULT_API)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="mobileha show", description="IOS-like views of a running node's management API"
    )
    ap.add_argument("view", choices=VIEW_NAMES)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--api", help=f"management API URL (default {DEFAULT_API})")
    where.add_argument("--config", help="take the API address from this node config")
    tok = ap.add_mutually_exclusive_group()
    tok.add_argument("--token", help="bearer token of the API (default: $MOBILEHA_TOKEN)")
    tok.add_argument("--token-file", help="file whose first line is the token")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of a table")
    ap.add_argument("--offset", type=int, default=0, help="first row (bindings, sessions)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many rows")
    args = ap.parse_args(argv)
    try:
        api = api_from_args(args)
        show(args.view, api, sys.stdout, args.json, max(0, args.offset), args.limit)
    except ApiError as e:
        print(f"mobileha show: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mobileha show bindings | head`
        return 0
    except Exception as e:
        from mobileha.config import ConfigError

        if isinstance(e, ConfigError):
            print(f"mobileha show: {args.config}: {'; '.join(e.problems)}", file=sys.stderr)
            return 2
        raise
    return 0


__all__ = [
    "ApiError",
    "fetch",
    "fetch_index",
    "iter_pages",
    "main",
    "post_action",
    "show",
    "use_token",
]
