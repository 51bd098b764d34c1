"""The kernel data plane (ipip/gre devices) in namespaces; skips naming the missing option."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mobileha.core.binding import FLAG_T
from mobileha.lab.dataplane import CN, HOA, Lab, build
from mobileha.lab.netns import Topology

pytestmark = pytest.mark.netns


@pytest.fixture
def klab(topology: Topology) -> Iterator[Lab]:
    lab = build(topology)
    try:
        lab.start_dataplanes(backend="kernel")
    except RuntimeError as e:
        if "CONFIG_NET_IP" in str(e):
            pytest.skip(f"kernel tunnel devices unavailable here: {e}")
        raise
    yield lab


@pytest.mark.parametrize(("encap", "key"), [("ipip", None), ("gre", 0x401)])
def test_kernel_backend_carries_ping_both_ways(klab: Lab, encap: str, key: int | None) -> None:
    b = klab.binding(encap, gre_key=key, flags=FLAG_T)
    klab.register(b)
    for src, dst in (("cn", HOA), ("mn", CN)):
        r = getattr(klab, src).run(f"ping -n -c 2 -i 0.2 -W 2 {dst}", check=False)
        assert r.returncode == 0, r.stdout
    klab.deregister(b)
    assert klab.cn.run(f"ping -n -c 1 -W 1 {HOA}", check=False).returncode != 0
    for h in (klab.ha, klab.fa):
        assert "mhi" not in h.run("ip link").stdout and "mhg" not in h.run("ip link").stdout
        assert HOA not in h.run("ip route show table all").stdout
