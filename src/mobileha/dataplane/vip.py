"""Virtual IP ownership: the one implementation behind ``DataPlane.claim_vip`` /
``release_vip`` (DESIGN §4), used for the HSRP virtual address.

:class:`VipOwner` adds a virtual address to one interface with pyroute2 (``/32`` by
default) and announces it with gratuitous ARPs through an ``AF_PACKET`` socket: a broadcast
ARP reply, as RFC 2281 §5.6 action I describes, and a gratuitous ARP request (which every
Linux host accepts). Two ways to own the address:

* default (``standby use-bia`` style): on the interface itself; the gratuitous ARPs carry
  the interface's own MAC, so hosts repoint their ARP entry at each takeover;
* ``macvlan=True``: on a macvlan device carrying the group's virtual MAC (P§4.4), created
  when the address is claimed and deleted when it is released; the gratuitous ARPs carry
  the virtual MAC, as RFC 2281 §6 asks. :meth:`VipOwner.prepare` sets
  ``net.ipv4.conf.all.arp_ignore=1`` (the real interface must not answer ARP for the VIP
  with its own MAC) and ``arp_announce=2`` (its ARP requests never carry the VIP as sender
  address).

Every method blocks on netlink (pyroute2's synchronous ``IPRoute``, one per call, so it is
safe from a worker thread while the data plane uses its own): node adapters call them from
their operation worker, in the order the core asked. Claiming an address that is already
ours announces it again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterable

from mobileha.wire.ip import ETH_P_ARP, ETH_P_IP, gratuitous_arp, mac_str

log = logging.getLogger("mobileha.vip")


def interface_info(ifname: str) -> tuple[int, str, int, bytes]:
    """(ifindex, primary IPv4 address, its prefix length, MAC) of ``ifname``."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise OSError(f"no interface {ifname!r}")
        mac = "00:00:00:00:00:00"
        for link in ipr.get_links(idx[0]):
            mac = link.get("IFLA_ADDRESS") or mac
        addrs = list(ipr.get_addr(index=idx[0], family=socket.AF_INET))
        if not addrs:
            raise OSError(f"interface {ifname!r} has no IPv4 address")
        addrs.sort(key=lambda a: a["prefixlen"])  # the widest prefix: not a /32 VIP
        return (
            int(idx[0]),
            str(addrs[0].get("IFA_ADDRESS")),
            int(addrs[0]["prefixlen"]),
            bytes.fromhex(str(mac).replace(":", "")),
        )


def sysctl(key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        log.warning("sysctl %s=%s: %s", key, value, exc)


class VipOwner:
    """The virtual addresses this host owns on ``ifname`` (module docstring)."""

    def __init__(
        self, ifname: str, *, prefixlen: int = 32, macvlan: bool = False, arp_ignore: bool = True
    ) -> None:
        self.ifname = ifname
        self.prefixlen = prefixlen
        self.macvlan = macvlan
        self.arp_ignore = arp_ignore
        self.ifindex = 0
        self.mac = bytes(6)
        self._packet: socket.socket | None = None
        self._devices: dict[str, tuple[str, bytes]] = {}  # address -> (device, its MAC)
        self.counters: dict[str, int] = {}

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def prepare(self) -> tuple[int, str, int, bytes]:
        """Read the interface, open the ``AF_PACKET`` socket, set the ARP sysctls a macvlan
        set-up needs; returns :func:`interface_info`."""
        info = interface_info(self.ifname)
        self.ifindex, _addr, _plen, self.mac = info
        if self.macvlan and self.arp_ignore:
            sysctl("net.ipv4.conf.all.arp_ignore", "1")
            sysctl("net.ipv4.conf.all.arp_announce", "2")
        if self._packet is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            sock.setblocking(False)
            self._packet = sock
        return info

    def device_of(self, addr: str) -> str | None:
        """The device ``addr`` is on while we own it (the interface or its macvlan)."""
        d = self._devices.get(addr)
        return None if d is None else d[0]

    def claim(self, addr: str, mac: bytes | None = None, name: str | None = None) -> None:
        """Own ``addr`` and announce it once. With ``macvlan``, ``addr`` goes on the macvlan
        device ``name`` carrying ``mac`` (created when missing)."""
        from pyroute2 import IPRoute

        if self._packet is None:
            self.prepare()
        macvlan = name if (self.macvlan and name and mac) else None
        with IPRoute() as ipr:
            idx = self.ifindex or ipr.link_lookup(ifname=self.ifname)[0]
            dev_mac = self.mac
            if macvlan is not None:
                assert mac is not None
                if not ipr.link_lookup(ifname=macvlan):
                    ipr.link("add", ifname=macvlan, kind="macvlan", link=idx,
                             macvlan_mode="bridge", address=mac_str(mac))  # fmt: skip
                sysctl(f"net.ipv6.conf.{macvlan}.disable_ipv6", "1")
                idx = ipr.link_lookup(ifname=macvlan)[0]
                ipr.link("set", index=idx, state="up")
                dev_mac = mac
            try:
                ipr.addr("add", index=idx, address=addr, prefixlen=self.prefixlen)
            except Exception as exc:  # EEXIST: already there
                log.debug("add %s on %s: %s", addr, macvlan or self.ifname, exc)
        self._devices[addr] = (macvlan or self.ifname, dev_mac)
        self._count("vip_claimed")
        self.announce(addr)

    def release(self, addr: str) -> None:
        """Give ``addr`` up (its macvlan goes with it)."""
        from pyroute2 import IPRoute

        dev = self._devices.pop(addr, (self.ifname, self.mac))[0]
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=dev)
            if not idx:
                return
            if dev != self.ifname:
                ipr.link("del", index=idx[0])
            else:
                try:
                    ipr.addr("del", index=idx[0], address=addr, prefixlen=self.prefixlen)
                except Exception as exc:  # EADDRNOTAVAIL: not there
                    log.debug("del %s: %s", addr, exc)
        self._count("vip_released")

    def announce(self, addr: str) -> None:
        """One gratuitous ARP reply and request for ``addr`` from the device that owns it,
        with that device's MAC; nothing when ``addr`` is not ours."""
        owned = self._devices.get(addr)
        if owned is None or self._packet is None:
            return
        dev, mac = owned
        try:
            for reply in (True, False):
                frame = gratuitous_arp(mac_str(mac), addr, reply=reply)
                self._packet.sendto(frame.ljust(60, b"\x00"), (dev, ETH_P_ARP))
            self._count("garp_sent", 2)
        except OSError as exc:
            self._count(f"garp_error_{exc.errno}")

    def send_frame(self, addr: str, frame: bytes) -> bool:
        """Send a whole Ethernet frame (IPv4) out of the macvlan that owns ``addr``; False
        when ``addr`` is on no macvlan of ours."""
        owned = self._devices.get(addr)
        if owned is None or owned[0] == self.ifname or self._packet is None:
            return False
        self._packet.sendto(frame, (owned[0], ETH_P_IP))
        return True

    def cleanup(self, leftovers: Iterable[tuple[str, str | None]]) -> None:
        """Remove macvlans and addresses a killed predecessor left: (device, address)."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for dev, addr in leftovers:
                idx = ipr.link_lookup(ifname=dev)
                if idx and dev != self.ifname:
                    ipr.link("del", index=idx[0])
                if addr is not None and self.ifindex:
                    with contextlib.suppress(Exception):
                        ipr.addr("del", index=self.ifindex, address=addr, prefixlen=self.prefixlen)

    def close(self) -> None:
        if self._packet is not None:
            self._packet.close()
            self._packet = None


__all__ = ["VipOwner", "interface_info", "sysctl"]
