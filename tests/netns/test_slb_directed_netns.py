"""``directed`` mode across namespaces: FA -> SLB (router, raw IP forwarding keeping the
FA's source) -> real home agent, which sees the FA's own address and answers it directly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mobileha.lab.netns import Topology

pytestmark = pytest.mark.netns

KEY = bytes(range(16))

SLB = r"""
import asyncio, sys
from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings
async def main():
    node = SlbNode(SlbSettings(virtual_address="10.70.0.100", mode="directed",
                               reals=[SlbRealSpec("10.70.2.2", 434, 8)]))
    await node.start()
    print("READY", flush=True)
    while True:
        await asyncio.sleep(0.2)
        print(node.counters["forwarded"], flush=True)
asyncio.run(main())
"""

HA = r"""
import asyncio, sys
from mobileha import compose
from mobileha.config import load_config
async def main():
    node = compose.home_agent_node(load_config(sys.argv[1]))
    await node.start()
    print("READY", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

FA = r"""
import json, socket, struct, time
from mobileha.wire import mip
from mobileha.wire.auth import Authenticator
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.70.1.2", 0))
s.settimeout(0.5)
nai = b"mn@example.net"
ident = ((int(time.time()) + 2208988800) << 32) | 7
head = struct.pack("!BBH4s4s4sQ", 1, 0, 600, bytes(4), socket.inet_aton("10.70.0.100"),
                   socket.inet_aton("10.70.1.2"), ident)
req = mip.append_auth(head + bytes([131, len(nai)]) + nai, 32, 256,
                      Authenticator(bytes(range(16)), "hmac-md5"))
for _ in range(20):
    s.sendto(req, ("10.70.0.100", 434))
    try:
        data, src = s.recvfrom(2048)
    except TimeoutError:
        continue
    rep = mip.decode(data)
    print(json.dumps({"src": src[0], "code": rep.code, "ha": rep.ha_addr,
                      "fa_port": s.getsockname()[1]}))
    break
"""


def _ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    assert "READY" in line, line


def test_directed_real_ha_sees_fa_address(topology: Topology, tmp_path: Path) -> None:
    try:
        import mobileha.node.home_agent  # noqa: F401
    except ImportError:
        pytest.skip("home agent node not available")
    fa, slb, ha = topology.host("fa"), topology.host("slb"), topology.host("ha")
    topology.link(fa, slb, "10.70.1.2/24", "10.70.1.1/24")
    topology.link(slb, ha, "10.70.2.1/24", "10.70.2.2/24")
    slb.addr("lo", "10.70.0.100/32")
    slb.ip("link", "set", "lo", "up")
    slb.forwarding()
    fa.route("default", via="10.70.1.1")
    ha.route("default", via="10.70.2.1")
    cfg = tmp_path / "ha.toml"
    cfg.write_text(
        f"""
[node]
role = "home-agent"
name = "ha-netns"
[management]
enabled = false
[home_agent]
address = "10.70.2.2"
home_prefix = "10.71.0.0/16"
[dataplane]
backend = "memory"
[[mobile_node]]
nai = "mn@example.net"
spi = 256
key = "hex:{KEY.hex()}"
algorithm = "hmac-md5"
"""
    )
    cap = ha.capture("eth0", str(tmp_path / "ha.pcap"), "udp port 434")
    h = ha.popen([sys.executable, "-c", HA, str(cfg)], stdout=subprocess.PIPE)
    _ready(h)
    s = slb.popen([sys.executable, "-c", SLB], stdout=subprocess.PIPE)
    _ready(s)
    out = fa.run([sys.executable, "-c", FA], timeout=30).stdout.strip()
    assert out, "no reply reached the FA"
    got = json.loads(out)
    # the real HA answered the FA directly, from its own address
    assert got["code"] == 0 and got["src"] == "10.70.2.2" and got["ha"] == "10.70.2.2"
    text = cap.stop()
    # on the HA's link the request carries the FA's own address and port as its source
    r = subprocess.run(
        ["tcpdump", "-nn", "-r", str(tmp_path / "ha.pcap")], capture_output=True, text=True
    )
    lines = (r.stdout or text).splitlines()
    assert any(f"10.70.1.2.{got['fa_port']} > 10.70.2.2.434" in ln for ln in lines), lines
    assert any(f"10.70.2.2.434 > 10.70.1.2.{got['fa_port']}" in ln for ln in lines), lines
