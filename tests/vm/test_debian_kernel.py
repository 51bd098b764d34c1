"""The kernel data plane proven in a real kernel: Debian's ``linux-image-amd64`` (6.1, with
the ipip and ip_gre modules this host's kernel lacks) booted under qemu with virtme-ng, and
``tests/vm/guest.py`` run inside it: the kernel backend's ipip and gre devices carrying
pings CN -> MN and MN -> CN in namespaces, and nothing left after the deregistration. With
``MOBILEHA_VM_BACKENDS="kernel ebpf"`` the ebpf backend's programs run on that kernel too
(Debian 12's kernel; the suite runs the ebpf backend on the host's kernel in tests/netns and
leaves it out here, since every step of the emulated guest costs seconds).

The guest is emulated (``vng --disable-kvm``, TCG): on this machine kind a KVM guest hangs
after "Probing EDD" (nested virtualisation). virtme-ng shares the host's root file system
read-only with the guest, so the project's venv, BPF object and tests are used as they are.
Skips with the reason where root, qemu, the kernel image, a static busybox or virtme-ng are
missing (``make`` installs them: apt packages qemu-system-x86, linux-image-amd64,
busybox-static; virtme-ng from the dev extras).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mobileha.dataplane.ebpf import object_problem

pytestmark = [pytest.mark.netns, pytest.mark.vm, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
GUEST = Path(__file__).with_name("guest.py")
BIN = Path(sys.executable).parent
BACKENDS = os.environ.get("MOBILEHA_VM_BACKENDS", "kernel").split()


def debian_kernel() -> tuple[str, str] | None:
    """(image, release) of the newest installed Debian amd64 kernel with its modules."""
    for image in sorted(glob.glob("/boot/vmlinuz-*-amd64"), reverse=True):
        release = image.split("vmlinuz-", 1)[1]
        if os.path.isdir(f"/lib/modules/{release}"):
            return image, release
    return None


def vm_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    vng = shutil.which("vng", path=f"{BIN}:{os.environ.get('PATH', '')}")
    if vng is None:
        return "virtme-ng not installed (pip: the dev extras)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu not installed (apt: qemu-system-x86)"
    if debian_kernel() is None:
        return "no Debian kernel image in /boot (apt: linux-image-amd64)"
    if not os.path.exists("/bin/busybox"):
        return "no static busybox for the guest's initramfs (apt: busybox-static)"
    return object_problem() if "ebpf" in BACKENDS else None


def boot_and_run(image: str) -> tuple[dict[str, Any] | None, str]:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    inner = (
        f"modprobe -a ipip ip_gre veth; cd {REPO} && "
        f"MOBILEHA_VM_BACKENDS='{' '.join(BACKENDS)}' "
        f"PYTHONDONTWRITEBYTECODE=1 {sys.executable} {GUEST}"
    )
    r = subprocess.run(
        ["vng", "--disable-kvm", "--force-initramfs", "--run", image, "--cpus", "2",
         "--memory", "1G", "--exec", inner],
        capture_output=True, text=True, timeout=840, env=env, cwd=REPO,
    )  # fmt: skip
    out = r.stdout + r.stderr
    for line in out.splitlines():
        if line.startswith("VM-RESULT "):
            result: dict[str, Any] = json.loads(line[len("VM-RESULT ") :])
            return result, out
    return None, out


def test_kernel_and_ebpf_backends_on_debians_kernel() -> None:
    if problem := vm_problem():
        pytest.skip(f"cannot boot the Debian kernel under qemu: {problem}")
    found = debian_kernel()
    assert found is not None
    image, release = found
    res, out = boot_and_run(image)
    assert res is not None, f"no result from the guest:\n{out[-4000:]}"
    assert res["kernel_release"] == release
    for backend in BACKENDS:
        r = res[backend]
        assert "error" not in r, f"{backend}: {r}"
        for encap in ("ipip", "gre"):
            e = r[encap]
            assert e["cn_to_mn"] and e["mn_to_cn"], f"{backend} {encap}: {e}"
            assert e["unreachable_after"], f"{backend} {encap}: {e}"
            assert len(e["ha_tunnels"]) == 1, f"{backend} {encap}: {e}"
        assert r["leftovers"] == [], f"{backend}: {r['leftovers']}"
    for encap in ("ipip", "gre") if "ebpf" in BACKENDS else ():
        (t,) = res["ebpf"][encap]["ha_tunnels"]  # the programs' counters work on 6.1 too
        assert t["tx_pkts"] >= 2 and t["rx_pkts"] >= 2, t
