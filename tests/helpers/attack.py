"""An outsider against ``mobileha run`` processes on loopback: nodes, datagrams from any
127/8 source, what the nodes hold.

The code under test is the ``mobileha`` of this environment, or the source tree named by
``MOBILEHA_UNDER_TEST_SRC`` (its ``src`` directory put on the nodes' PYTHONPATH): that is how
the attack tests are run against another checkout (the attacker's code stays this tree's).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers.net import free_port
from tests.helpers.procs import mobileha_command, stop_process, wait_ready


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    src = os.environ.get("MOBILEHA_UNDER_TEST_SRC")
    if src:
        env["PYTHONPATH"] = src
    return env


def node_command() -> list[str]:
    if os.environ.get("MOBILEHA_UNDER_TEST_SRC"):
        return [sys.executable, "-m", "mobileha.cli"]
    return mobileha_command()


def subnet() -> str:
    """A random 127.a.b prefix for one test's addresses."""
    return f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"


def check(tmp: Path, name: str, body: str) -> subprocess.CompletedProcess[str]:
    """``mobileha check`` of a config body (``[node]`` and the API's listen are added)."""
    cfg = tmp / f"{name}.check.toml"
    port = free_port("127.0.0.1", socket.SOCK_STREAM)
    cfg.write_text(f'[node]\nname = "{name}"\n{body}\n[management]\nlisten = "127.0.0.1:{port}"\n')
    return subprocess.run(
        [*node_command(), "check", str(cfg)], capture_output=True, text=True, env=node_env()
    )


class Node:
    """One ``mobileha run`` process; its API on a free loopback port."""

    def __init__(self, tmp: Path, name: str, body: str, token: str | None = None) -> None:
        self.name = name
        self.token = token  # management.token of the node, sent by get()
        self.api_port = free_port("127.0.0.1", socket.SOCK_STREAM)
        self.cfg = tmp / f"{name}.toml"
        self.cfg.write_text(
            f'[node]\nname = "{name}"\n{body}\n[management]\nlisten = "127.0.0.1:{self.api_port}"\n'
            + (f'token = "{token}"\n' if token else "")
        )
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [*node_command(), "run", str(self.cfg)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=node_env(),
            )
        wait_ready(self.proc, lambda: self.get("/healthz", raw=True), 30, name, self.log)

    def get(self, path: str, raw: bool = False, token: str | None = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}")
        token = token or self.token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def udp_sockets(self, addr: str, port: int) -> int:
        """How many of the process's UDP sockets are bound to ``addr:port``."""
        inodes = set()
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        want = f"{socket.inet_aton(addr)[::-1].hex().upper()}:{port:04X}"
        n = 0
        for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
            f = line.split()
            if f[1] == want and f[9] in inodes:
                n += 1
        return n

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc)


def udp(src: str, port: int = 0) -> socket.socket:
    """A UDP socket bound to ``src`` (any 127/8 address is local: the outsider's spoofing)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, port))
    return s


def recv_all(s: socket.socket, timeout: float) -> list[bytes]:
    """Every datagram ``s`` receives within ``timeout`` seconds."""
    import time

    out: list[bytes] = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            out.append(s.recv(65535))
        except TimeoutError:
            break
    return out


def _hold_connections(
    host: str, port: int, n: int, sources: list[str], announce: int, conn: Any
) -> None:
    """A worker process of :func:`stall_dfp`: open ``n`` stalled connections, report how
    many were made, hold them until told to close."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    head = struct.pack("!BBHI", 1, 0, 0x0101, announce) + bytes(announce // 2)
    held: list[socket.socket] = []
    for i in range(n):
        try:
            c = socket.create_connection(
                (host, port), 5, source_address=(sources[i % len(sources)], 0)
            )
            c.setblocking(False)
            with contextlib.suppress(OSError):
                c.send(head)
            held.append(c)
        except OSError:
            pass
    conn.send(len(held))
    conn.recv()
    for c in held:
        c.close()
    conn.send(0)


def stall_dfp(
    node: Node,
    host: str,
    port: int,
    n: int,
    sources: list[str],
    announce: int = 4000,
    per_worker: int = 2000,
) -> dict[str, float]:
    """Open ``n`` TCP connections to a DFP agent, each sending a header that announces
    ``announce`` bytes and half of them, then nothing; they stay open on our side (held by
    worker processes of ``per_worker`` each, for the descriptor limit). Returns the node's
    peak RSS growth (kB) while they were open, how often its management API answered (once
    per worker's batch) and how many connections were made."""
    import multiprocessing as mp
    import time

    base = node.rss_kb()
    peak = base
    api_ok = api_tries = 0
    worst_api_s = 0.0
    made = 0
    workers = []
    try:
        left = n
        while left > 0:
            k = min(per_worker, left)
            left -= k
            parent, child = mp.Pipe()
            p = mp.Process(target=_hold_connections, args=(host, port, k, sources, announce, child))
            p.start()
            workers.append((p, parent))
            made += parent.recv()
            peak = max(peak, node.rss_kb())
            api_tries += 1
            t = time.monotonic()
            with contextlib.suppress(OSError):
                if node.get("/healthz", raw=True):
                    api_ok += 1
            worst_api_s = max(worst_api_s, time.monotonic() - t)
        time.sleep(1.0)
        peak = max(peak, node.rss_kb())
    finally:
        for p, parent in workers:
            with contextlib.suppress(OSError, EOFError):
                parent.send("close")
                parent.recv()
            p.join(10)
    return {
        "connections": made,
        "rss_base_kb": base,
        "rss_peak_growth_kb": peak - base,
        "api_answered": api_ok,
        "api_tries": api_tries,
        "api_worst_s": worst_api_s,
    }


def dfp_agent_node(tmp: Path) -> tuple[Node, str, int]:
    """A home agent whose DFP agent has a password, on a fresh loopback address: the node,
    its address and the DFP port."""
    net = subnet()
    ha = f"{net}.10"
    port = free_port(ha, socket.SOCK_DGRAM)
    dport = free_port(ha, socket.SOCK_STREAM)
    body = f"""role = "home-agent"
[home_agent]
address = "{ha}"
port = {port}
home_prefix = "10.78.0.0/24"
[dataplane]
backend = "memory"
[dfp]
listen = "{ha}:{dport}"
password = "text:stall-test"
"""
    return Node(tmp, "ha", body), ha, dport


__all__ = [
    "Node",
    "check",
    "dfp_agent_node",
    "node_command",
    "node_env",
    "recv_all",
    "stall_dfp",
    "subnet",
    "udp",
]
