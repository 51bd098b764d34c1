"""The kernel backend can be created from inside a running event loop (as `mobileha run`
does): pyroute2's synchronous IPRoute runs on a worker thread of its own."""

from __future__ import annotations

import asyncio
import os

import pytest

from mobileha.dataplane.base import BackendUnavailable
from mobileha.dataplane.kernel import KernelDataPlane, ThreadedIPRoute


def test_threaded_iproute_works_inside_a_running_loop() -> None:
    async def inside() -> list[str]:
        ipr = ThreadedIPRoute()
        try:
            return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
        finally:
            ipr.close()

    names = asyncio.run(inside())
    assert "lo" in names


@pytest.mark.skipif(os.geteuid() != 0, reason="creating tunnel devices needs root")
def test_kernel_backend_inside_a_running_loop() -> None:
    async def inside() -> str:
        try:
            dp = KernelDataPlane(role="ha")
        except BackendUnavailable as e:
            return f"unavailable: {e}"  # this kernel: no ipip/gre, reported clearly
        dp.close()
        return "ok"

    result = asyncio.run(inside())
    assert result == "ok" or "CONFIG_NET_IPIP" in result, result
    assert "event loop" not in result
