"""The ``ebpf`` data plane: Mobile IP tunnels in BPF programs, the bindings in BPF maps.

The programs (``dataplane/bpf/tunnel.bpf.c``, compiled by ``make`` into ``tunnel.bpf.o``)
forward every packet in the kernel; this class loads them, attaches them and keeps their
maps in step with the bindings through the ``bpf()`` system call (:mod:`.bpfsys`): a single
install is a handful of map updates, a takeover one ``BPF_MAP_UPDATE_BATCH`` per map.

Devices and hooks (``name`` is the sink device, ``mhbpf0`` by default):

* the sink, a veth pair ``name`` / ``name`` + ``p`` without ARP and with an MTU of ``mtu``
  minus the largest header we add (28 bytes), so the kernel answers "fragmentation needed"
  for DF packets that will not fit the tunnel and fragments the others before we see them.
  Home agent: the home prefix (or a host route per home address) points at it. Foreign
  agent: a policy rule per reverse-tunnelled visitor, ``from <home address> iif
  <visitor_iface> lookup <rt_table>``, and a default route in ``rt_table`` point at it.
  ``mh_out`` on its tc egress encapsulates and redirects to the egress device of the
  outer destination; ``mh_seg`` on the peer's ingress handles the GSO packets the kernel
  had to segment first (minimal encapsulation, simultaneous bindings).
* ``mh_in`` on the tc ingress of every other interface (``interfaces``, default all but
  loopback, the sink pair and the visitor link): decapsulation of tunnelled packets sent
  to one of our tunnel endpoints, after the checks of the userspace backend (HA: reverse
  tunnels, inner source = home address of a binding with T from that care-of address, the
  binding's encapsulation and GRE key; FA: the visitor's home address from its HA).
  Decapsulated packets continue into the kernel, which forwards them (HA: to the
  correspondent; FA: to the visitor through a host route on ``visitor_iface``).

Counters: per binding (packets/bytes encapsulated and decapsulated, drops) in a per-CPU
hash keyed by a slot number, and drops by reason in a per-CPU array (``REASONS``).

Nothing is pinned: the maps live as long as the programs, the programs as long as their tc
filters. :meth:`close` removes the filters, the sink (with its routes), the FA's rules and
host routes. A restart after ``kill -9`` finds the previous instance by its names (the
sink, filters named ``mh_in:<name>``, FA rules at ``rule_priority`` into ``rt_table``,
host routes of protocol ``RTPROT_MOBILEHA``) and removes it before starting.

Limits: at most ``MAX_COPIES`` simultaneous bindings per home address; minimal
encapsulation only of packets without IP options (the kernel helper inserts after a
20-byte header; such packets are dropped and counted as ``ip-options``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mobileha.core.binding import FLAG_T, Binding, Encap
from mobileha.dataplane.base import (
    BackendUnavailable,
    Capabilities,
    DataPlaneError,
    DataPlaneStats,
    DataPlaneSummary,
    install_each,
)
from mobileha.dataplane.bpfsys import BPF_ANY, BpfError, BpfMap, LoadedObject, load_object
from mobileha.dataplane.vip import VipOwner
from mobileha.log import RateLimitedLogger, get_logger

_log = get_logger("mobileha.dataplane.ebpf")

BPF_DIR = Path(__file__).resolve().parent / "bpf"
SOURCE = BPF_DIR / "tunnel.bpf.c"
OBJECT = BPF_DIR / "tunnel.bpf.o"
PROGRAMS = ("mh_out", "mh_seg", "mh_in")
MAPS = (
    "mh_enc",
    "mh_more",
    "mh_dec",
    "mh_peer",
    "mh_local",
    "mh_tstat",
    "mh_drops",
    "mh_totals",
    "mh_cfg",
)
# The order of `enum reason` in tunnel.bpf.c.
REASONS = (
    "no-binding",
    "loop",
    "spoof",
    "unknown-peer",
    "bad-key",
    "bad-encap",
    "malformed",
    "fragment",
    "unreachable",
    "not-ipv4",
    "encap-error",
    "ip-options",
    "no-neighbour",
)
MAX_COPIES = 8  # MAX_COPIES in tunnel.bpf.c
MAX_OVERHEAD = 28  # outer IPv4 (20) + GRE with key (8)
TF_KEY, TF_REVERSE, TF_SLOW = 1, 2, 4
ROLE_HA, ROLE_FA = 0, 1
TC_PRIO = 4344  # tc filter preference of our filters
TC_INGRESS, TC_EGRESS = 0xFFFFFFF2, 0xFFFFFFF3
RTPROT_MOBILEHA = 73  # rtm_protocol of the host routes we add (found again after kill -9)
RT_SCOPE_LINK = 253
NTF_PROXY = 0x08

# Map layouts (tunnel.bpf.c): addresses and the GRE key in network order, the rest native.
_TUN = struct.Struct("=4s4s4sIBBBx")  # remote, local, key, slot, encap, flags, ncopies
_MORE_KEY = struct.Struct("=4sI")  # address, copy index
_DEC_KEY = struct.Struct("=4s4s4s")  # remote, local, inner address
_DEC_VAL = struct.Struct("=4sIBBH")  # key, slot, encap, flags
_PEER_KEY = struct.Struct("=4s4s")
_U32 = struct.Struct("=I")
_KEY = struct.Struct("!I")  # a GRE key as it is on the wire
_TSTAT = struct.Struct("=5Q")
_CFG = struct.Struct("=IIII")  # role, ttl, fib ifindex, peer ifindex
_TSTAT_FIELDS = ("tx_pkts", "tx_bytes", "rx_pkts", "rx_bytes", "drops")


_peer_aton = functools.lru_cache(maxsize=1 << 16)(socket.inet_aton)  # few distinct peers
_NO_KEY = bytes(4)


class _Tunnel:
    """One installed binding, as the maps see it."""

    __slots__ = (
        "binding",
        "encap",
        "flags",
        "inner_b",
        "key_b",
        "local_b",
        "peer",
        "remote_b",
        "reverse",
        "slot",
    )

    def __init__(self, b: Binding, role: str, slot: int) -> None:
        self.binding = b
        self.slot = slot
        local, remote = (b.ha_addr, b.care_of) if role == "ha" else (b.care_of, b.ha_addr)
        self.local_b = _peer_aton(local)
        self.remote_b = _peer_aton(remote)
        self.inner_b = socket.inet_aton(b.home_addr)
        self.encap = encap = int(b.encap)
        self.reverse = reverse = bool(b.flags & FLAG_T)
        k = b.gre_key
        if k is None:
            self.key_b = _NO_KEY
            self.flags = TF_REVERSE if reverse else 0
        else:
            self.key_b = _KEY.pack(k & 0xFFFFFFFF)
            self.flags = (TF_REVERSE if reverse else 0) | (TF_KEY if encap == Encap.GRE else 0)
        self.peer = self.remote_b + self.local_b  # the mh_peer key

    def tun(self, ncopies: int = 0, extra: int = 0) -> bytes:
        return _TUN.pack(
            self.remote_b, self.local_b, self.key_b, self.slot, self.encap, self.flags | extra,
            ncopies,
        )  # fmt: skip

    @property
    def dec_key(self) -> bytes:
        return self.remote_b + self.local_b + self.inner_b

    def dec_val(self) -> bytes:
        return _DEC_VAL.pack(self.key_b, self.slot, self.encap, self.flags, 0)


def _tstat_sum(m: BpfMap, v: bytes) -> dict[str, int]:
    """A per-CPU ``struct tstat`` value summed over the CPUs."""
    sums = [0, 0, 0, 0, 0]
    for cpu in range(m.ncpus):
        for i, x in enumerate(_TSTAT.unpack_from(v, cpu * m.stride)):
            sums[i] += x
    return dict(zip(_TSTAT_FIELDS, sums))


def object_problem() -> str | None:
    """Why the BPF object cannot be used (not built), or None."""
    if not OBJECT.exists():
        return (
            f"the BPF object {OBJECT} is not built (`make bpf` compiles {SOURCE.name} with clang; "
            "Debian packages clang, llvm, libbpf-dev)"
        )
    return None


def _sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


class EbpfDataPlane:
    """BPF tunnels for a home agent (``role="ha"``) or a foreign agent (``"fa"``)."""

    name = "ebpf"

    def __init__(
        self,
        role: str = "ha",
        *,
        sink: str = "mhbpf0",
        mtu: int = 1500,
        ttl: int = 64,
        home_prefix: str | None = None,
        home_iface: str | None = None,
        visitor_iface: str | None = None,
        interfaces: Iterable[str] | None = None,
        capacity: int = 65536,
        rt_table: int = 4344,
        rule_priority: int = 4344,
        obj_path: str | None = None,
        ipr: Any = None,
        vip: VipOwner | None = None,
    ) -> None:
        """``vip``: where claimed VIPs go (:mod:`mobileha.dataplane.vip`); HSRP on the
        home link passes it."""
        if role not in ("ha", "fa"):
            raise ValueError(f"role must be 'ha' or 'fa', not {role!r}")
        if role == "fa" and not visitor_iface:
            raise ValueError("a foreign agent data plane needs visitor_iface")
        if len(sink) > 14:
            raise ValueError(f"sink name {sink!r}: at most 14 characters (its peer adds 'p')")
        self.role = role
        self.sink = sink
        self.peer_name = sink + "p"
        self.mtu = mtu
        self.ttl = ttl
        self.home_prefix = home_prefix
        self.home_iface = home_iface
        self.visitor_iface = visitor_iface
        self.capacity = max(16, int(capacity))
        self.rt_table = rt_table
        self.rule_priority = rule_priority
        self.filter_name = f"mh_in:{sink}"
        self.vip = vip
        self._vips: set[str] = set()
        self._lock = threading.RLock()
        self._closed = False
        self._tunnels: dict[tuple[str, str], _Tunnel] = {}
        self._by_hoa: dict[str, dict[str, _Tunnel]] = {}
        self._more: dict[str, int] = {}  # extra copies written to mh_more per address
        self._slots: dict[int, _Tunnel] = {}
        self._free: list[int] = []
        self._reused: list[int] = []
        self._next_slot = 1
        # tunnel peers: peer key -> slots of its bindings (ordered), and the slot the map
        # names (its drops count spoofed packets from the peer)
        self._peers: dict[bytes, dict[int, None]] = {}
        self._peer_slot: dict[bytes, int] = {}
        self._locals: dict[bytes, int] = {}
        self._routes: set[str] = set()
        self._rules: set[str] = set()
        self._proxied: set[str] = set()
        self._attached: list[tuple[int, int]] = []  # (ifindex, parent) of our filters
        self.errors: dict[str, int] = {"map-full": 0, "netlink": 0, "coa-unreachable": 0}
        self._bad = RateLimitedLogger(_log, 10.0)

        path = obj_path or str(OBJECT)
        if obj_path is None and (problem := object_problem()):
            raise BackendUnavailable(problem)
        if ipr is None:
            from mobileha.dataplane.kernel import ThreadedIPRoute

            try:
                ipr = ThreadedIPRoute()
            except Exception as e:
                raise BackendUnavailable(f"netlink unavailable: {e}") from e
        self._ipr = ipr
        self._obj: LoadedObject | None = None
        try:
            self._cleanup_leftovers()
            self._obj = self._load(path)
            self.maps: dict[str, BpfMap] = dict(self._obj.maps)
            self._setup_devices()
            self._attach(interfaces)
        except BaseException:
            self._teardown()
            with contextlib.suppress(Exception):
                self._ipr.close()
            raise

    # ------------------------------------------------------------------------ start-up
    def _load(self, path: str) -> LoadedObject:
        sizes = {
            "mh_enc": self.capacity,
            "mh_more": self.capacity,
            "mh_dec": self.capacity,
            "mh_peer": self.capacity,
            "mh_local": 1024,
            "mh_tstat": self.capacity,
        }
        try:
            return load_object(path, PROGRAMS, MAPS, sizes)
        except BpfError as e:
            if e.errno in (errno.EPERM, errno.EACCES):
                raise BackendUnavailable(
                    f"cannot load BPF programs: {e.strerror} (needs root: CAP_BPF and "
                    "CAP_NET_ADMIN)"
                ) from e
            raise BackendUnavailable(f"cannot load the BPF programs: {e}") from e

    def _ifindex(self, name: str) -> int:
        idx = self._ipr.link_lookup(ifname=name)
        if not idx:
            raise DataPlaneError(f"interface {name!r} not found")
        return int(idx[0])

    def _setup_devices(self) -> None:
        ipr = self._ipr
        try:
            ipr.link(
                "add",
                ifname=self.sink,
                kind="veth",
                peer={"ifname": self.peer_name},
            )
        except Exception as e:
            raise BackendUnavailable(f"cannot create the veth pair {self.sink}: {e}") from e
        self.sink_index = self._ifindex(self.sink)
        self.peer_index = self._ifindex(self.peer_name)
        for dev in (self.sink, self.peer_name):
            _sysctl(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", "1")
            _sysctl(f"/proc/sys/net/ipv4/conf/{dev}/forwarding", "1")
            _sysctl(f"/proc/sys/net/ipv4/conf/{dev}/rp_filter", "0")
        # Without GSO on the sink, aggregates passed to the peer are segmented on the way.
        for idx in (self.sink_index, self.peer_index):
            ipr.link("set", index=idx, mtu=self.mtu - MAX_OVERHEAD, arp=False, state="up")
        ipr.link("set", index=self.sink_index, gso_max_segs=1)
        cfg = _CFG.pack(ROLE_HA if self.role == "ha" else ROLE_FA, self.ttl, self.sink_index,
                        self.peer_index)  # fmt: skip
        self.maps["mh_cfg"].update(_U32.pack(0), cfg)
        if self.role == "ha" and self.home_prefix:
            ipr.route("replace", dst=self.home_prefix, oif=self.sink_index)
        if self.role == "fa":
            self._visitor_index = self._ifindex(self.visitor_iface or "")
            ipr.route("replace", dst="0.0.0.0/0", oif=self.sink_index, table=self.rt_table)
        self._home_index = self._ifindex(self.home_iface) if self.home_iface else None

    def _attach(self, interfaces: Iterable[str] | None) -> None:
        assert self._obj is not None
        progs = self._obj.programs
        self._add_filter(self.sink_index, TC_EGRESS, progs["mh_out"], f"mh_out:{self.sink}")
        self._add_filter(self.peer_index, TC_INGRESS, progs["mh_seg"], f"mh_seg:{self.sink}")
        if interfaces is None:
            skip = {"lo", self.sink, self.peer_name, self.visitor_iface}
            names = [
                str(link.get_attr("IFLA_IFNAME"))
                for link in self._ipr.get_links()
                if link.get_attr("IFLA_IFNAME") not in skip
            ]
        else:
            names = list(interfaces)
        self.interfaces = names
        for n in names:
            self._add_filter(self._ifindex(n), TC_INGRESS, progs["mh_in"], self.filter_name)

    def _add_filter(self, index: int, parent: int, fd: int, name: str) -> None:
        with contextlib.suppress(Exception):  # already there (shared with someone else)
            self._ipr.tc("add", "clsact", index)
        self._ipr.tc(
            "add-filter",
            "bpf",
            index,
            ":1",
            fd=fd,
            name=name,
            parent=parent,
            classid=1,
            direct_action=True,
            prio=TC_PRIO,
        )
        self._attached.append((index, parent))

    def _our_filter(self, f: Any) -> bool:
        opts = f.get_attr("TCA_OPTIONS")
        name = opts.get_attr("TCA_BPF_NAME") if opts is not None else None
        return bool(name) and str(name).endswith(f":{self.sink}")

    def _cleanup_leftovers(self) -> None:
        """Remove what a previous instance with our names left (after kill -9)."""
        ipr = self._ipr
        found = []
        for link in ipr.get_links():
            idx = int(link["index"])
            name = link.get_attr("IFLA_IFNAME")
            if name == self.sink:
                with contextlib.suppress(Exception):
                    ipr.link("del", index=idx)
                found.append(f"device {name}")
                continue
            if name == self.peer_name:
                continue
            if self._remove_filters(idx):
                found.append(f"filter on {name}")
        if self.role == "fa":
            with contextlib.suppress(Exception):
                for r in ipr.get_rules(family=socket.AF_INET):
                    if (
                        r.get_attr("FRA_PRIORITY") == self.rule_priority
                        and r.get_attr("FRA_TABLE") == self.rt_table
                    ):
                        ipr.rule("del", priority=self.rule_priority, table=self.rt_table,
                                 src=r.get_attr("FRA_SRC"), src_len=r["src_len"],
                                 iifname=r.get_attr("FRA_IFNAME"))  # fmt: skip
                        found.append("rule")
        with contextlib.suppress(Exception):
            for rt in ipr.get_routes(family=socket.AF_INET, proto=RTPROT_MOBILEHA):
                if rt["proto"] == RTPROT_MOBILEHA:
                    ipr.route("del", dst=f"{rt.get_attr('RTA_DST')}/32", scope=rt["scope"],
                              oif=rt.get_attr("RTA_OIF"), proto=RTPROT_MOBILEHA)  # fmt: skip
                    found.append("route")
        if found:
            _log.warning("removed what a previous ebpf data plane left", sink=self.sink,
                         found=", ".join(sorted(set(found))))  # fmt: skip

    def _remove_filters(self, index: int) -> int:
        """Delete our filters from ``index`` (and its clsact qdisc if it is left empty)."""
        ipr = self._ipr
        n = 0
        for parent in (TC_INGRESS, TC_EGRESS):
            try:
                filters = ipr.get_filters(index=index, parent=parent)
            except Exception:
                continue
            for f in filters:
                if f.get_attr("TCA_KIND") == "bpf" and self._our_filter(f):
                    with contextlib.suppress(Exception):
                        ipr.tc("del-filter", "bpf", index, f["handle"], parent=parent,
                               prio=f["info"] >> 16)  # fmt: skip
                        n += 1
        self._drop_empty_clsact(index)
        return n

    def _drop_empty_clsact(self, index: int) -> None:
        """Delete the clsact qdisc of ``index`` if no filter is left on it."""
        ipr = self._ipr
        try:
            left = [
                f
                for parent in (TC_INGRESS, TC_EGRESS)
                for f in ipr.get_filters(index=index, parent=parent)
                if f.get_attr("TCA_KIND")
            ]
            has_clsact = any(
                q.get_attr("TCA_KIND") == "clsact" for q in ipr.get_qdiscs(index=index)
            )
        except Exception:
            return
        if has_clsact and not left:
            with contextlib.suppress(Exception):
                ipr.tc("del", "clsact", index)

    # ------------------------------------------------------------------------ helpers
    def capabilities(self) -> Capabilities:
        """Every encapsulation; ``MAX_COPIES`` copies; ``capacity`` bindings (map size)."""
        return Capabilities(max_copies=MAX_COPIES, max_bindings=self.capacity)

    def _slot(self) -> int:
        """A counters slot. A reused one may still hold counters (the program creates them
        at a binding's first packet, and a packet in flight at its removal can): the
        caller clears those of the slots in ``_reused``."""
        if self._free:
            s = self._free.pop()
            self._reused.append(s)
            return s
        s = self._next_slot
        self._next_slot += 1
        return s

    def _clear_reused(self) -> None:
        m = self.maps["mh_tstat"]
        for s in self._reused:  # one by one: a batch delete stops at the first absent key
            m.delete(_U32.pack(s))
        self._reused.clear()

    def _encaps(self, hoa: str) -> list[_Tunnel]:
        """The copies of ``hoa``'s packets (HA: every binding; FA: reverse-tunnelled ones)."""
        ts = self._by_hoa.get(hoa, {}).values()
        return list(ts) if self.role == "ha" else [t for t in ts if t.reverse]

    def _enc_entries(self, hoa: str) -> tuple[bytes, list[tuple[bytes, bytes]], int]:
        """(first entry or b"", more entries, extra copies before) for ``hoa``."""
        ts = self._encaps(hoa)
        if not ts:
            return b"", [], self._more.get(hoa, 0)
        slow = TF_SLOW if len(ts) > 1 or any(t.encap == Encap.MINIMAL for t in ts) else 0
        first = ts[0].tun(len(ts), slow)
        a = socket.inet_aton(hoa)
        more = [(_MORE_KEY.pack(a, i), t.tun()) for i, t in enumerate(ts[1:], 1)]
        return first, more, self._more.get(hoa, 0)

    def _write_enc(self, hoa: str) -> None:
        per = self._by_hoa.get(hoa)
        if per is not None and len(per) == 1 and self.role == "ha" and hoa not in self._more:
            t = next(iter(per.values()))  # one copy, as nearly always: one map update
            slow = TF_SLOW if t.encap == Encap.MINIMAL else 0
            self.maps["mh_enc"].update(t.inner_b, t.tun(1, slow))
            return
        first, more, before = self._enc_entries(hoa)
        a = socket.inet_aton(hoa)
        m_more, m_enc = self.maps["mh_more"], self.maps["mh_enc"]
        for k, v in more:
            m_more.update(k, v)
        if first:
            m_enc.update(a, first)
        else:
            m_enc.delete(a)
        for i in range(len(more) + 1, before + 1):
            m_more.delete(_MORE_KEY.pack(a, i))
        if more:
            self._more[hoa] = len(more)
        else:
            self._more.pop(hoa, None)

    def _decaps(self, t: _Tunnel) -> bool:
        return self.role == "fa" or t.reverse

    def _check_peer(self, t: _Tunnel) -> None:
        """A new tunnel peer: log (rate-limited) and count when no route leads to it. The
        binding stays installed (routing may converge; RFC 5944 has no reply code for it);
        its packets are dropped and counted as ``unreachable`` meanwhile."""
        peer = socket.inet_ntoa(t.remote_b)
        why = None
        try:
            rt = self._ipr.route("get", dst=peer)[0]
            if rt["type"] != 1:  # RTN_UNICAST; local, blackhole, unreachable, prohibit...
                why = f"route type {rt['type']}"
            elif rt.get_attr("RTA_OIF") in (self.sink_index, self.peer_index):
                why = "routed into the tunnel itself"
        except Exception as e:
            why = str(e)
        if why is not None:
            self.errors["coa-unreachable"] += 1
            b = t.binding
            self._bad.warn(
                "coa-unreachable",
                "tunnel peer unreachable: packets of the binding are dropped (unreachable)",
                peer=peer,
                home_address=b.home_addr,
                care_of=b.care_of,
                error=why,
            )

    def _ref(self, t: _Tunnel) -> None:
        slots = self._peers.get(t.peer)
        if slots is None:
            slots = self._peers[t.peer] = {}
            self._peer_slot[t.peer] = t.slot
            self.maps["mh_peer"].update(t.peer, _U32.pack(t.slot))
            self._check_peer(t)
        slots[t.slot] = None
        n = self._locals.get(t.local_b, 0) + 1
        self._locals[t.local_b] = n
        if n == 1:
            self.maps["mh_local"].update(t.local_b, _U32.pack(1))

    def _unref(self, t: _Tunnel) -> None:
        slots = self._peers.get(t.peer)
        if slots is not None and slots.pop(t.slot, 0) is None:
            if not slots:
                del self._peers[t.peer]
                del self._peer_slot[t.peer]
                self.maps["mh_peer"].delete(t.peer)
            elif self._peer_slot[t.peer] == t.slot:  # the map names a leaving binding
                other = self._peer_slot[t.peer] = next(iter(slots))
                self.maps["mh_peer"].update(t.peer, _U32.pack(other))
        n = self._locals.get(t.local_b, 0) - 1
        if n <= 0:
            self._locals.pop(t.local_b, None)
            self.maps["mh_local"].delete(t.local_b)
        else:
            self._locals[t.local_b] = n

    def _forget(self, key: tuple[str, str]) -> _Tunnel:
        """Drop a tunnel from the maps (not the encapsulation entries of its address)."""
        t = self._tunnels.pop(key)
        per = self._by_hoa.get(key[0])
        if per is not None:
            per.pop(key[1], None)
            if not per:
                del self._by_hoa[key[0]]
        if self._decaps(t):
            self.maps["mh_dec"].delete(t.dec_key)
        self._unref(t)
        self.maps["mh_tstat"].delete(_U32.pack(t.slot))
        self._slots.pop(t.slot, None)
        self._free.append(t.slot)
        return t

    # ------------------------------------------------------------------------ control
    def install(self, binding: Binding) -> None:
        if binding.encap not in (Encap.IPIP, Encap.GRE, Encap.MINIMAL):
            raise DataPlaneError(f"unknown encapsulation {binding.encap!r}")
        with self._lock:
            if self._closed:
                raise DataPlaneError("data plane is closed")
            try:
                self._install(binding)
            except BpfError as e:
                self._undo(binding)
                raise self._map_error(e, binding) from e

    def _install(self, b: Binding) -> None:
        hoa = b.home_addr
        per = self._by_hoa.get(hoa, {})
        if not b.simultaneous:
            for coa in [c for c in per if c != b.care_of]:
                self._forget((hoa, coa))
        elif b.care_of not in per and len(self._encaps(hoa)) >= MAX_COPIES:
            raise DataPlaneError(
                f"{hoa}: more than {MAX_COPIES} simultaneous bindings (the BPF data plane's limit)"
            )
        old = self._tunnels.get(b.key)
        first = not self._by_hoa.get(hoa)
        if old is not None:
            t = _Tunnel(b, self.role, old.slot)
            if self._decaps(old) and (not self._decaps(t) or old.dec_key != t.dec_key):
                self.maps["mh_dec"].delete(old.dec_key)
            self._unref(old)
        else:
            t = _Tunnel(b, self.role, self._slot())
            self._clear_reused()
        self._tunnels[b.key] = t
        self._by_hoa.setdefault(hoa, {})[b.care_of] = t
        self._slots[t.slot] = t
        if self._decaps(t):
            self.maps["mh_dec"].update(t.dec_key, t.dec_val())
        self._ref(t)
        self._write_enc(hoa)
        if first:
            self._add_host_state(b)
        elif self.role == "fa":
            self._set_fa_rule(hoa)

    def _undo(self, b: Binding) -> None:
        """After a failed install: nothing of ``b`` stays in the maps."""
        with contextlib.suppress(Exception):
            if b.key in self._tunnels:
                self._forget(b.key)
            self._write_enc(b.home_addr)
            if not self._by_hoa.get(b.home_addr):
                self._del_host_state(b.home_addr)

    def _map_error(self, e: BpfError, b: Binding) -> DataPlaneError:
        if e.errno in (errno.E2BIG, errno.ENOMEM, errno.ENOSPC):
            self.errors["map-full"] += 1
            return DataPlaneError(
                f"BPF map full ({self.capacity} entries): binding {b.home_addr} -> {b.care_of} "
                "not installed"
            )
        return DataPlaneError(f"BPF map update failed for {b.home_addr} -> {b.care_of}: {e}")

    def remove(self, binding: Binding) -> None:
        with self._lock:
            if binding.key not in self._tunnels or self._closed:
                return
            hoa = binding.home_addr
            self._forget(binding.key)
            self._write_enc(hoa)
            if not self._by_hoa.get(hoa):
                self._del_host_state(hoa)
            elif self.role == "fa":
                self._set_fa_rule(hoa)

    def install_many(self, bindings: Iterable[Binding]) -> int:
        """Install a whole table (takeover, bulk download): the maps are written with one
        ``BPF_MAP_UPDATE_BATCH`` per map. Returns the number of bindings installed."""
        with self._lock:
            if self._closed:
                raise DataPlaneError("data plane is closed")
            return self._install_many(list(bindings))

    def _install_many(self, bindings: list[Binding]) -> int:
        touched: dict[str, None] = {}
        new: list[_Tunnel] = []
        later: list[Binding] = []  # updates, replacements, copies over the limit: one by one
        tunnels, by_hoa, slots, role = self._tunnels, self._by_hoa, self._slots, self.role
        for b in bindings:
            hoa, coa = b.home_addr, b.care_of
            per = by_hoa.get(hoa)
            if hoa in touched:
                assert per is not None
                if not b.simultaneous or coa in per or len(per) >= MAX_COPIES:
                    later.append(b)
                    continue
            elif per is not None:  # installed before: an update or a replacement
                later.append(b)
                continue
            else:
                per = by_hoa[hoa] = {}
            t = _Tunnel(b, role, self._slot())
            tunnels[hoa, coa] = per[coa] = slots[t.slot] = t
            touched[hoa] = None
            new.append(t)
        n = self._write_many(new, touched) if new else 0
        return n + install_each(self.install, later)

    def _write_many(self, new: list[_Tunnel], touched: dict[str, None]) -> int:
        m = self.maps
        try:
            self._clear_reused()
            dec = new if self.role == "fa" else [t for t in new if t.reverse]  # _decaps
            m["mh_dec"].update_batch(
                b"".join(t.dec_key for t in dec), b"".join(t.dec_val() for t in dec)
            )
            peers: dict[bytes, int] = {}
            locals_: dict[bytes, None] = {}
            all_peers, peer_slot, all_locals = self._peers, self._peer_slot, self._locals
            for t in new:
                peer = t.peer
                slots = all_peers.get(peer)
                if slots is None:
                    slots = all_peers[peer] = {}
                    peer_slot[peer] = peers[peer] = t.slot
                slots[t.slot] = None
                n = all_locals.get(t.local_b, 0)
                if not n:
                    locals_[t.local_b] = None
                all_locals[t.local_b] = n + 1
            m["mh_peer"].update_batch(
                b"".join(peers), b"".join(_U32.pack(s) for s in peers.values())
            )
            m["mh_local"].update_batch(b"".join(locals_), _U32.pack(1) * len(locals_))
            firsts: list[bytes] = []
            fkeys: list[bytes] = []
            mkeys: list[bytes] = []
            mvals: list[bytes] = []
            by_hoa = self._by_hoa
            ha = self.role == "ha"
            for hoa in touched:
                per = by_hoa[hoa]
                if ha and len(per) == 1:  # the common case, quickly
                    (t,) = per.values()
                    fkeys.append(t.inner_b)
                    firsts.append(t.tun(1, TF_SLOW if t.encap == Encap.MINIMAL else 0))
                    continue
                first, more, _before = self._enc_entries(hoa)
                if first:
                    fkeys.append(socket.inet_aton(hoa))
                    firsts.append(first)
                for k, v in more:
                    mkeys.append(k)
                    mvals.append(v)
                if more:
                    self._more[hoa] = len(more)
            m["mh_more"].update_batch(b"".join(mkeys), b"".join(mvals))
            m["mh_enc"].update_batch(b"".join(fkeys), b"".join(firsts), BPF_ANY)
        except BpfError as e:
            for t in new:
                self._undo(t.binding)
            raise self._map_error(e, new[0].binding) from e
        if self.role == "fa" or not self.home_prefix or self._home_index is not None:
            for hoa in touched:  # (an HA with a home-prefix route and no proxy ARP: none)
                self._add_host_state(next(iter(self._by_hoa[hoa].values())).binding)
        return len(new)

    # ------------------------------------------------------------------------ routes
    def _add_host_state(self, b: Binding) -> None:
        hoa = b.home_addr
        ipr = self._ipr
        try:
            if self.role == "ha":
                if not self.home_prefix:
                    ipr.route("replace", dst=f"{hoa}/32", oif=self.sink_index,
                              proto=RTPROT_MOBILEHA)  # fmt: skip
                    self._routes.add(hoa)
                if self._home_index is not None:
                    ipr.neigh("add", dst=hoa, ifindex=self._home_index, flags=NTF_PROXY)
                    self._proxied.add(hoa)
            else:
                ipr.route("replace", dst=f"{hoa}/32", oif=self._visitor_index,
                          scope=RT_SCOPE_LINK, proto=RTPROT_MOBILEHA)  # fmt: skip
                self._routes.add(hoa)
                self._set_fa_rule(hoa)
        except Exception as e:
            self.errors["netlink"] += 1
            raise DataPlaneError(f"cannot add the route for {hoa}: {e}") from e

    def _rule(self, hoa: str) -> dict[str, Any]:
        return {"src": hoa, "src_len": 32, "iifname": self.visitor_iface, "table": self.rt_table,
                "priority": self.rule_priority}  # fmt: skip

    def _set_fa_rule(self, hoa: str) -> None:
        """The visitor's reverse-tunnel rule exists iff one of its bindings has T."""
        want = any(t.reverse for t in self._by_hoa.get(hoa, {}).values())
        if want and hoa not in self._rules:
            self._ipr.rule("add", **self._rule(hoa))
            self._rules.add(hoa)
        elif not want and hoa in self._rules:
            self._del_rule(hoa)

    def _del_rule(self, hoa: str) -> None:
        with contextlib.suppress(Exception):
            self._ipr.rule("del", **self._rule(hoa))
        self._rules.discard(hoa)

    def _del_host_state(self, hoa: str) -> None:
        ipr = self._ipr
        if hoa in self._routes:
            where: dict[str, Any] = {"oif": self.sink_index}
            if self.role == "fa":
                where = {"oif": self._visitor_index, "scope": RT_SCOPE_LINK}
            with contextlib.suppress(Exception):
                ipr.route("del", dst=f"{hoa}/32", proto=RTPROT_MOBILEHA, **where)
            self._routes.discard(hoa)
        if hoa in self._rules:
            self._del_rule(hoa)
        if hoa in self._proxied and self._home_index is not None:
            with contextlib.suppress(Exception):
                ipr.neigh("del", dst=hoa, ifindex=self._home_index, flags=NTF_PROXY)
            self._proxied.discard(hoa)

    def installed_routes(self) -> list[str]:
        """Host routes this data plane has added (for tests and ``mobileha show``)."""
        return sorted(self._routes)

    def claim_vip(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        if self.vip is None:
            raise DataPlaneError("claim_vip needs the interface of the VIP (vip)")
        self.vip.claim(addr, mac, name)
        self._vips.add(addr)

    def release_vip(self, addr: str) -> None:
        if addr not in self._vips or self.vip is None:
            return
        self.vip.release(addr)
        self._vips.discard(addr)

    # ------------------------------------------------------------------------ counters
    def stats(self) -> DataPlaneStats:
        with self._lock:
            if self._closed:
                return DataPlaneStats({}, {})
            m = self.maps["mh_tstat"]
            tunnels: dict[tuple[str, str], dict[str, int]] = {}
            for k, v in m.items():
                t = self._slots.get(_U32.unpack(k)[0])
                if t is not None:
                    tunnels[t.binding.key] = _tstat_sum(m, v)
            for key in self._tunnels:  # entries the kernel could not show yet
                tunnels.setdefault(key, dict.fromkeys(_TSTAT_FIELDS, 0))
            return DataPlaneStats(tunnels, self.drops())

    def _per_cpu_array(self, name: str, labels: tuple[str, ...]) -> dict[str, int]:
        m = self.maps[name]
        out = dict.fromkeys(labels, 0)
        for k, v in m.items():
            i = _U32.unpack(k)[0]
            if i < len(labels):
                out[labels[i]] = sum(
                    struct.unpack_from("=Q", v, c * m.stride)[0] for c in range(m.ncpus)
                )
        return out

    def drops(self) -> dict[str, int]:
        """Packets dropped by reason (``REASONS``), summed over the CPUs."""
        return self._per_cpu_array("mh_drops", REASONS)

    def summary(self) -> DataPlaneSummary:
        """Totals from the kernel's per-CPU arrays: no walk over the bindings."""
        with self._lock:
            if self._closed:
                return DataPlaneSummary(self.name, 0)
            totals = self._per_cpu_array("mh_totals", _TSTAT_FIELDS[:4])
            drops = self.drops()
            totals["drops"] = sum(drops.values())
            return DataPlaneSummary(self.name, len(self._tunnels), totals, drops, dict(self.errors))

    def tunnel_counters(self, home_addr: str, care_of: str) -> dict[str, int] | None:
        """One binding's counters (one map lookup), or None when it is not installed."""
        with self._lock:
            t = self._tunnels.get((home_addr, care_of))
            if t is None or self._closed:
                return None
            m = self.maps["mh_tstat"]
            v = m.lookup(_U32.pack(t.slot))
        return _tstat_sum(m, v) if v is not None else dict.fromkeys(_TSTAT_FIELDS, 0)

    # ------------------------------------------------------------------------ teardown
    def _teardown(self) -> None:
        ipr = self._ipr if hasattr(self, "_ipr") else None
        if ipr is not None:
            for index in dict.fromkeys(i for i, _p in self._attached):
                self._remove_filters(index)
            self._attached.clear()
            for hoa in list(self._routes | self._rules | self._proxied):
                self._del_host_state(hoa)
            if self.role == "fa":
                with contextlib.suppress(Exception):
                    ipr.route("del", dst="0.0.0.0/0", table=self.rt_table,
                              oif=getattr(self, "sink_index", 0))  # fmt: skip
            with contextlib.suppress(Exception):
                ipr.link("del", ifname=self.sink)  # its peer, routes and clsact go with it
        if getattr(self, "_obj", None) is not None:
            assert self._obj is not None
            self._obj.close()
            self._obj = None

    def close(self) -> None:
        """Detach the programs, delete the sink, routes and rules; the maps go with them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for addr in list(self._vips):
                with contextlib.suppress(Exception):
                    self.release_vip(addr)
            self._teardown()
            self._tunnels.clear()
            self._by_hoa.clear()
            self._slots.clear()
        with contextlib.suppress(Exception):
            self._ipr.close()


def probe() -> str | None:
    """Why the ebpf backend cannot run on this host, or None (no side effects)."""
    problem = object_problem()
    if problem:
        return problem
    if os.geteuid() != 0:
        return "needs root (CAP_BPF, CAP_NET_ADMIN)"
    try:
        from mobileha.dataplane.bpfsys import libbpf

        libbpf()
    except BpfError as e:
        return str(e)
    return None


__all__ = ["MAX_COPIES", "MAX_OVERHEAD", "OBJECT", "REASONS", "EbpfDataPlane", "probe"]
