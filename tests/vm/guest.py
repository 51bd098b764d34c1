"""Runs inside the qemu guest (tests/vm/test_debian_kernel.py): the kernel and ebpf data
planes carrying pings in namespaces on Debian's kernel, one JSON line of results on stdout.

The guest is emulated (TCG), where every Python start-up costs seconds: the data planes of
the home and foreign agent run in processes forked from this one after the imports (each
enters its namespace, then serves ``mobileha.dataplane.tool``'s JSON lines over pipes),
instead of a fresh ``python -m mobileha.dataplane.tool`` per agent.

For each backend and encapsulation (IP-in-IP; GRE with a key), with T: the CN pings the
MN's home address and the MN pings the CN; after the deregistration the home address is
unreachable and no tunnel device or route for it is left on either agent.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from typing import Any

from mobileha.core.binding import FLAG_T
from mobileha.dataplane import tool
from mobileha.dataplane.ebpf import EbpfDataPlane  # noqa: F401 (imported before forking)
from mobileha.dataplane.kernel import KernelDataPlane  # noqa: F401
from mobileha.lab.dataplane import CN, HOA, Driver, Lab, build
from mobileha.lab.netns import Host, Topology

CLONE_NEWNET = 0x40000000


class _Forked:
    """What Driver needs of a Popen: a tool serving in a forked child, over two pipes."""

    def __init__(self, host: Host, argv: list[str]) -> None:
        import pyroute2  # noqa: F401  (the child must not pay for the import)

        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: enter the namespace, become the tool
            os.dup2(to_child, 0)
            os.dup2(from_child, 1)
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{host.ns}", os.O_RDONLY)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                os._exit(3)
            sys.stdin = os.fdopen(0, "r")
            sys.stdout = os.fdopen(1, "w", buffering=1)
            code = 1
            try:
                code = tool.main(argv)
            finally:
                os._exit(code)
        os.close(to_child)
        os.close(from_child)
        self.pid = pid
        self.stdin = os.fdopen(from_parent, "w", buffering=1)
        self.stdout = os.fdopen(to_parent, "r")
        self.stderr = None
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        _pid, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def driver(host: Host, *argv: str) -> Driver:
    d = Driver.__new__(Driver)
    d.host = host
    d.proc = _Forked(host, list(argv))  # type: ignore[assignment]
    first = d._read()
    if not first.get("ready"):
        raise RuntimeError(f"data plane on {host.name} not ready: {first}")
    d.ready = first
    return d


def ping(h: Host, dst: str, count: int = 2) -> bool:
    r = h.run(f"ping -n -c {count} -i 0.3 -W 3 {dst}", check=False, timeout=60)
    return r.returncode == 0 and f"{count} received" in r.stdout


def leftovers(lab: Lab) -> list[str]:
    out = []
    for h in (lab.ha, lab.fa):
        for cmd in ("ip -o link", "ip route show table all", "ip rule"):
            for line in h.run(cmd).stdout.splitlines():
                if HOA in line or " mhi" in line or " mhg" in line or "mhtun0" in line:
                    out.append(f"{h.name}: {line}")
    return out


def backend_run(lab: Lab, backend: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    common = ["--backend", backend, "--tun", "mhtun0"]
    try:
        lab.ha_dp = driver(lab.ha, *common, "--role", "ha")
        lab.fa_dp = driver(lab.fa, *common, "--role", "fa", "--visitor-iface", lab.fa_mn_if)
    except RuntimeError as e:
        return {"error": str(e)}
    try:
        for encap, key in (("ipip", None), ("gre", 0x401)):
            b = lab.binding(encap, gre_key=key, flags=FLAG_T)
            lab.register(b)
            r = {"cn_to_mn": ping(lab.cn, HOA), "mn_to_cn": ping(lab.mn, CN)}
            st = lab.ha_dp.stats()
            r["ha_tunnels"] = st["tunnels"]
            lab.deregister(b)
            r["unreachable_after"] = not ping(lab.cn, HOA, count=1)
            res[encap] = r
    finally:
        lab.ha_dp.quit()
        lab.fa_dp.quit()
        lab.ha_dp = lab.fa_dp = None
    res["leftovers"] = leftovers(lab)
    return res


def main() -> int:
    t0 = time.monotonic()
    out: dict[str, Any] = {"kernel_release": os.uname().release}
    with Topology() as topo:
        lab = build(topo)
        for backend in os.environ.get("MOBILEHA_VM_BACKENDS", "kernel").split():
            out[backend] = backend_run(lab, backend)
    out["seconds"] = round(time.monotonic() - t0, 1)
    print("VM-RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
