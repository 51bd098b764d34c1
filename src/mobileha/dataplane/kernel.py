"""The ``kernel`` data plane: Linux ipip/gre devices per care-of address plus host routes.

Selected on hosts whose kernel has the ``ipip`` and ``ip_gre`` drivers (CONFIG_NET_IPIP,
CONFIG_NET_IPGRE). Support is detected at start by creating and deleting a probe device;
without it the constructor raises :class:`BackendUnavailable` naming the missing option
(this machine kind: EOPNOTSUPP, "use the userspace data plane").

Home agent: one device per (encapsulation, HA address, care-of address, GRE key), shared
by all home addresses bound to that care-of address and reference-counted; a host route
``<home address>/32 dev <device>``. The device decapsulates the reverse tunnel itself
(``rp_filter=1`` on it drops inner sources that are not routed back through it, which is the
spoofing check). Foreign agent: the device toward the HA, a host route for the visitor on
``visitor_iface`` and, with T, a policy rule sending the visitor's packets into the device.

Limits (use the userspace backend for these): no minimal encapsulation (Linux has no such
device; :class:`UnsupportedEncapsulation`), and simultaneous bindings (S) get the newest
care-of address only: a kernel route cannot duplicate packets.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mobileha.core.binding import Binding, Encap
from mobileha.dataplane.base import (
    BackendUnavailable,
    Capabilities,
    DataPlaneError,
    DataPlaneStats,
    UnsupportedEncapsulation,
)
from mobileha.dataplane.vip import VipOwner

GRE_KEY_FLAG = 0x2000  # GRE_KEY in IFLA_GRE_[IO]FLAGS (pyroute2 encodes them big-endian)
RT_SCOPE_LINK = 253
KERNEL_OPTIONS = {
    "ipip": "CONFIG_NET_IPIP (module ipip)",
    "gre": "CONFIG_NET_IPGRE (module ip_gre)",
}
TABLE_BASE = 43440


class ThreadedIPRoute:
    """pyroute2's synchronous ``IPRoute`` on a worker thread of its own.

    pyroute2 0.9's synchronous API drives an asyncio loop internally, so it refuses to be
    created or called from a thread whose event loop is running ("event loop is already
    running") -- which is every thread of a ``mobileha run`` node. All netlink calls go
    through one worker thread; the caller blocks for the (sub-millisecond) answer.
    """

    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self._ex = ThreadPoolExecutor(1, thread_name_prefix="netlink")
        try:
            self._ipr = self._ex.submit(IPRoute).result()
        except BaseException:
            self._ex.shutdown(wait=False)
            raise

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._ipr, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._ex.submit(fn, *args, **kwargs).result()

        return call

    def close(self) -> None:
        try:
            self._ex.submit(self._ipr.close).result()
        finally:
            self._ex.shutdown(wait=False)


@dataclass(slots=True)
class _Dev:
    name: str
    index: int
    refs: int = 0


def _netlink_code(e: BaseException) -> int | None:
    code = getattr(e, "code", None)
    return int(code) if isinstance(code, int) else None


class KernelDataPlane:
    """Kernel tunnel devices managed through pyroute2 (``ipr`` may be injected for tests)."""

    name = "kernel"

    def __init__(
        self,
        role: str = "ha",
        visitor_iface: str | None = None,
        ttl: int = 64,
        ipr: Any = None,
        probe: bool = True,
        vip_iface: str | None = None,
        vip: VipOwner | None = None,
    ) -> None:
        """``vip`` (or ``vip_iface``): where claimed VIPs go (:mod:`mobileha.dataplane.vip`)."""
        if role not in ("ha", "fa"):
            raise ValueError(f"role must be 'ha' or 'fa', not {role!r}")
        if role == "fa" and not visitor_iface:
            raise ValueError("a foreign agent data plane needs visitor_iface")
        if ipr is None:
            ipr = ThreadedIPRoute()
        self._ipr = ipr
        self.role = role
        self.ttl = ttl
        self.visitor_iface = visitor_iface
        self.vip = vip if vip is not None else (VipOwner(vip_iface) if vip_iface else None)
        self.supported: set[str] = {"ipip", "gre"}
        self._devs: dict[tuple[int, str, str, int | None], _Dev] = {}
        self._bindings: dict[tuple[str, str], tuple[Binding, tuple[int, str, str, int | None]]] = {}
        self._vips: dict[str, int] = {}
        self._n = 0
        self._closed = False
        if probe:
            try:
                self.probe()
            except BaseException:
                with contextlib.suppress(Exception):
                    ipr.close()
                raise

    def probe(self) -> None:
        """Check that the kernel can make ipip and gre devices; raise with the missing option."""
        missing = []
        for kind in ("ipip", "gre"):
            name = f"mhprobe{kind}"
            try:
                self._ipr.link(
                    "add",
                    ifname=name,
                    kind=kind,
                    **{f"{kind}_local": "127.0.0.1", f"{kind}_remote": "127.0.0.2"},
                )
            except Exception as e:
                if _netlink_code(e) in (errno.EOPNOTSUPP, errno.ENODEV, errno.EAFNOSUPPORT):
                    missing.append(kind)
                    continue
                if _netlink_code(e) != errno.EEXIST:
                    raise BackendUnavailable(f"cannot create a {kind} device: {e}") from e
            with contextlib.suppress(Exception):
                self._ipr.link("del", ifname=name)
        self.supported = {"ipip", "gre"} - set(missing)
        if "ipip" in missing:
            opts = ", ".join(KERNEL_OPTIONS[k] for k in missing)
            raise BackendUnavailable(
                f"kernel data plane unavailable: this kernel has no {'/'.join(missing)} tunnel "
                f"devices (missing {opts}; EOPNOTSUPP); use the userspace data plane"
            )

    def capabilities(self) -> Capabilities:
        """IP-in-IP and (where ip_gre exists) GRE; one copy: a route cannot duplicate."""
        encaps = {Encap.IPIP} | ({Encap.GRE} if "gre" in self.supported else set())
        return Capabilities(frozenset(encaps), max_copies=1)

    # ------------------------------------------------------------------------------------
    def _ends(self, b: Binding) -> tuple[str, str]:
        return (b.ha_addr, b.care_of) if self.role == "ha" else (b.care_of, b.ha_addr)

    def _ifindex(self, name: str) -> int:
        idx = self._ipr.link_lookup(ifname=name)
        if not idx:
            raise DataPlaneError(f"interface {name!r} not found")
        return int(idx[0])

    def _get_dev(self, b: Binding) -> tuple[tuple[int, str, str, int | None], _Dev]:
        local, remote = self._ends(b)
        if b.encap == Encap.MINIMAL:
            raise UnsupportedEncapsulation(
                "the kernel data plane cannot do minimal encapsulation (RFC 2004): Linux has "
                "no such device; use the userspace data plane"
            )
        kind = "ipip" if b.encap == Encap.IPIP else "gre"
        if kind not in self.supported:
            raise UnsupportedEncapsulation(f"kernel lacks {KERNEL_OPTIONS[kind]}")
        key = (int(b.encap), local, remote, b.gre_key if kind == "gre" else None)
        dev = self._devs.get(key)
        if dev is None:
            self._n += 1
            name = f"mh{kind[0]}{self._n}"
            attrs: dict[str, Any] = {
                f"{kind}_local": local,
                f"{kind}_remote": remote,
                f"{kind}_ttl": self.ttl,
            }
            if kind == "gre" and b.gre_key is not None:
                attrs.update(
                    gre_ikey=b.gre_key,
                    gre_okey=b.gre_key,
                    gre_iflags=GRE_KEY_FLAG,
                    gre_oflags=GRE_KEY_FLAG,
                )
            self._ipr.link("add", ifname=name, kind=kind, **attrs)
            index = self._ifindex(name)
            self._ipr.link("set", index=index, state="up")
            dev = _Dev(name, index)
            self._devs[key] = dev
        return key, dev

    def _put_dev(self, key: tuple[int, str, str, int | None]) -> None:
        dev = self._devs[key]
        dev.refs -= 1
        if dev.refs <= 0:
            with contextlib.suppress(Exception):
                self._ipr.link("del", index=dev.index)
            del self._devs[key]

    def install(self, binding: Binding) -> None:
        if self._closed:
            raise DataPlaneError("data plane is closed")
        hoa = binding.home_addr
        for k in [k for k in self._bindings if k[0] == hoa and k != binding.key]:
            self.remove(self._bindings[k][0])  # kernel routes cannot duplicate (no S)
        if binding.key in self._bindings:
            self.remove(self._bindings[binding.key][0])
        key, dev = self._get_dev(binding)
        dev.refs += 1
        self._bindings[binding.key] = (binding, key)
        if self.role == "ha":
            self._ipr.route("replace", dst=f"{hoa}/32", oif=dev.index)
        else:
            vidx = self._ifindex(self.visitor_iface or "")
            self._ipr.route("replace", dst=f"{hoa}/32", oif=vidx, scope=RT_SCOPE_LINK)
            if binding.reverse_tunnel:
                table = TABLE_BASE + dev.index
                self._ipr.route("replace", dst="0.0.0.0/0", oif=dev.index, table=table)
                self._ipr.rule("add", src=hoa, src_len=32, iifname=self.visitor_iface, table=table)

    def remove(self, binding: Binding) -> None:
        entry = self._bindings.pop(binding.key, None)
        if entry is None:
            return
        b, key = entry
        dev = self._devs[key]
        hoa = b.home_addr
        if self.role == "ha":
            with contextlib.suppress(Exception):
                self._ipr.route("del", dst=f"{hoa}/32", oif=dev.index)
        else:
            with contextlib.suppress(Exception):
                vidx = self._ifindex(self.visitor_iface or "")
                self._ipr.route("del", dst=f"{hoa}/32", oif=vidx, scope=RT_SCOPE_LINK)
            if b.reverse_tunnel:
                with contextlib.suppress(Exception):
                    self._ipr.rule(
                        "del",
                        src=hoa,
                        src_len=32,
                        iifname=self.visitor_iface,
                        table=TABLE_BASE + dev.index,
                    )
        self._put_dev(key)

    def claim_vip(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        if self.vip is None:
            raise DataPlaneError("claim_vip needs vip_iface: the interface the VIP goes on")
        self.vip.claim(addr, mac, name)
        self._vips[addr] = 1

    def release_vip(self, addr: str) -> None:
        if self.vip is not None and self._vips.pop(addr, None) is not None:
            self.vip.release(addr)

    def stats(self) -> DataPlaneStats:
        tunnels: dict[tuple[str, str], dict[str, int]] = {}
        for bkey, (_b, dkey) in self._bindings.items():
            dev = self._devs[dkey]
            st: dict[str, int] = {}
            with contextlib.suppress(Exception):
                msg = self._ipr.link("get", index=dev.index)[0]
                s64 = msg.get_attr("IFLA_STATS64") or {}
                st = {
                    "tx_pkts": int(s64.get("tx_packets", 0)),
                    "tx_bytes": int(s64.get("tx_bytes", 0)),
                    "rx_pkts": int(s64.get("rx_packets", 0)),
                    "rx_bytes": int(s64.get("rx_bytes", 0)),
                    "drops": int(s64.get("rx_dropped", 0)) + int(s64.get("tx_dropped", 0)),
                }
            tunnels[bkey] = st
        return DataPlaneStats(tunnels, {})

    def devices(self) -> list[str]:
        return sorted(d.name for d in self._devs.values())

    def close(self) -> None:
        if self._closed:
            return
        for b, _k in list(self._bindings.values()):
            with contextlib.suppress(Exception):
                self.remove(b)
        self._closed = True
        with contextlib.suppress(Exception):
            self._ipr.close()


__all__ = ["GRE_KEY_FLAG", "KERNEL_OPTIONS", "KernelDataPlane", "ThreadedIPRoute"]
