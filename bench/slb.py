"""HA-SLB forwarding benchmark (issue 5): our SLB next to the nginx UDP stream proxy.

Same run, same loopback, same three backends, same client:

* ``direct``: client -> backends round robin (no proxy; context only);
* ``nginx``:  client -> nginx ``stream`` UDP proxy (round robin, ``proxy_responses 1``,
  one worker, ``daemon off;``) -> backend -> nginx -> client;
* ``slb``:    client -> our SlbNode in its own process (relay mode: parse the RRQ and its
  NAI, NAI session, IOS WRR, relay tag) -> backend -> client directly (the SLB never sees
  replies, P§6.4).

The client keeps ``--window`` requests in flight on one UDP socket; every request is a
Registration Request with a new NAI, so every request creates an SLB session (the worst
case). A request counts when its reply arrives.

Method: ``--rounds`` rounds; each round measures every target once, in a random order
(``--seed``), so slow drifts of the machine's load hit all targets alike. The ratio
slb / nginx is taken per round (paired: both measured within seconds of each other) and
the median and range of those ratios are printed (target >= 1.3, relay and directed), with
requests/s and the CPU per request (user + system time of the proxy process, and of the
three backends) from /proc. After an SLB measurement the bench waits until that SLB's sessions have
expired (``session_s`` + 0.2 s), so its expiry work does not fall into the next target's
measurement. The machine's load average is printed: every process here shares the same
CPUs, so under outside load the ratio tends to the ratio of CPU per request, while on an
idle machine it is the ratio of whole-system throughput (where the SLB has one hop less:
the real HA answers the FA directly).

    .venv/bin/python bench/slb.py [--seconds 2] [--window 32] [--rounds 7] [--seed N] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NGINX_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
SESSION_S = 1.0  # SLB session time here: bounds the table (every request is a new session)
RRQ_HEAD = struct.Struct("!BBH4s4s4sQ")


def rrq(i: int) -> bytes:
    nai = f"mn{i:09d}@bench.example.net".encode()
    return (
        RRQ_HEAD.pack(1, 0, 1800, bytes(4), bytes([10, 0, 0, 100]), bytes(4), i)
        + bytes([131, len(nai)])
        + nai
    )


# ----------------------------------------------------------------------------- backends


def backend(
    addr: str, port_q: Any, trusted: frozenset[str] = frozenset(), io: str = "batched"
) -> None:
    """A fast honest responder standing in for a real HA: it answers each request at once
    and does for a relayed one what the HA does (``_untag``: a datagram from a
    ``trusted_slb`` address without an SA is checked for the relay tag, the tag is read and
    removed, the reply goes to the tag's origin); anything else is answered to its source.

    ``io``: ``batched`` reads and writes like the real HA's registration sockets
    (:class:`mobileha.node.udp_batch.BatchedUdp` with ``mobileha._slbio``: up to 64
    datagrams per ``recvmmsg``, the replies of a batch with one ``sendmmsg``), waiting in
    ``poll`` as its event loop does; ``simple``: one ``recvfrom`` and one ``sendto`` per
    request."""
    from mobileha.wire import slbtag

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((addr, 0))
    port_q.put(s.getsockname()[1])
    decode, has_tag = slbtag.decode, slbtag.has_tag

    def answer(data: bytes, src: tuple[str, int]) -> tuple[bytes, tuple[str, int]]:
        if src[0] in trusted and has_tag(data):
            a, p, data = decode(data)
            src = (a, p)
        return b"\x03" + data[1:], src

    fast = None
    if io == "batched":
        try:
            from mobileha import _slbio as fast
        except ImportError:
            pass
    if fast is None:
        recvfrom, sendto = s.recvfrom, s.sendto
        while True:
            sendto(*answer(*recvfrom(4096)))
    s.setblocking(False)
    fd = s.fileno()
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    recv, send = fast.recv_requests, fast.sendto_all
    while True:
        poll.poll()
        items = recv(fd, 64, 65535)
        if items:
            out = [answer(data, src) for data, src, _, _ in items]
            sent = 0
            while sent < len(out):  # a full send buffer: wait, as the HA's writer callback
                k = send(fd, out, sent)
                sent += k
                if not k:
                    select.select([], [fd], [])


# ----------------------------------------------------------------------------- our SLB


def run_slb(
    vip: str, reals: list[tuple[str, int]], port_q: Any, mode: str = "relay", fastpath: bool = True
) -> None:
    import asyncio

    from mobileha.node.slb import SlbNode, SlbRealSpec, SlbSettings

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        node = SlbNode(
            SlbSettings(
                virtual_address=vip,
                port=0,
                mode=mode,
                reals=[SlbRealSpec(a, p, 8) for a, p in reals],
                session_s=SESSION_S,
                max_sessions=10_000_000,
                fastpath=fastpath,
            )
        )
        await node.start()
        port_q.put(node.address[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# ----------------------------------------------------------------------------- nginx


def start_nginx(
    workdir: Path, listen: tuple[str, int], reals: list[tuple[str, int]]
) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(exe) or not os.path.exists(NGINX_MODULE):
        return None
    servers = "\n".join(f"    server {a}:{p};" for a, p in reals)
    conf = f"""
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log error;
load_module {NGINX_MODULE};
events {{ worker_connections 8192; }}
stream {{
  upstream ha {{
{servers}
  }}
  server {{
    listen {listen[0]}:{listen[1]} udp;
    proxy_pass ha;
    proxy_responses 1;
    proxy_timeout 2s;
  }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    p = subprocess.Popen(
        [exe, "-c", str(workdir / "nginx.conf"), "-p", str(workdir), "-e", str(workdir / "err")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    if p.poll() is not None:
        return None
    return p


# ----------------------------------------------------------------------------- client


def client(
    targets: list[tuple[str, int]], src: str, seconds: float, window: int, start: int
) -> tuple[float, int]:
    """One socket, ``window`` requests in flight; returns (replies/s, lost).

    When nothing arrives for 0.3 s the window is refilled with fresh requests (counted as
    lost). Requests are built before the clock starts.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((src, 0))
    s.settimeout(0.3)
    nt = len(targets)
    pool = [rrq(start + k) for k in range(300_000)]
    npool = len(pool)
    i = 0
    for _ in range(window):
        s.sendto(pool[i], targets[i % nt])
        i += 1
    done = lost = 0
    recv, sendto = s.recv, s.sendto
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        try:
            recv(4096)
            done += 1
        except TimeoutError:
            lost += window
            for _ in range(window):
                sendto(pool[i % npool], targets[i % nt])
                i += 1
            if time.monotonic() >= end:
                break
            continue
        sendto(pool[i % npool], targets[i % nt])
        i += 1
        if not done & 1023 and time.monotonic() >= end:
            break
    elapsed = time.monotonic() - t0
    s.close()
    return done / elapsed, lost


def cpu_us(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, seconds (from /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tck = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / tck, int(f[12]) / tck


def cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds (from /proc)."""
    return sum(cpu_us(pid))


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def med(v: list[float]) -> float:
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="HA-SLB forwarding rate vs nginx stream UDP proxy")
    ap.add_argument("--seconds", type=float, default=2.0, help="per target and round")
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7, help="median of this many runs each")
    ap.add_argument("--seed", type=int, default=None, help="order of the targets per round")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--backend-io",
        choices=("batched", "simple"),
        default="batched",
        help="the stand-in real HAs' I/O: batched (recvmmsg/sendmmsg, as the real HA's "
        "registration sockets) or simple (recvfrom/sendto per request)",
    )
    ap.add_argument(
        "--python-io",
        action="store_true",
        help="run the SLBs with slb.fastpath = false (the Python reader, no mobileha._slbio)",
    )
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)

    net = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    procs: list[Any] = []
    nginx: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="mobileha-bench-slb-"))
    try:
        reals = []
        for k in range(3):
            p = ctx.Process(
                target=backend,
                args=(
                    f"{net}.{11 + k}",
                    q,
                    frozenset({f"{net}.100", f"{net}.102"}),
                    a.backend_io,
                ),
                daemon=True,
            )
            p.start()
            procs.append(p)
            reals.append((f"{net}.{11 + k}", q.get(timeout=10)))
        fast = not a.python_io
        p = ctx.Process(target=run_slb, args=(f"{net}.100", reals, q, "relay", fast), daemon=True)
        p.start()
        procs.append(p)
        slb = (f"{net}.100", q.get(timeout=10))
        directed = None
        if os.geteuid() == 0:  # directed mode needs a raw socket
            p = ctx.Process(
                target=run_slb, args=(f"{net}.102", reals, q, "directed", fast), daemon=True
            )
            p.start()
            procs.append(p)
            directed = (f"{net}.102", q.get(timeout=10))
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((f"{net}.101", 0))
        nport = probe.getsockname()[1]
        probe.close()
        nginx = start_nginx(tmp, (f"{net}.101", nport), reals)
        results: dict[str, list[float]] = {"direct": [], "nginx": [], "slb": [], "slb-dir": []}
        nginx_worker = None
        if nginx is not None:
            kids = subprocess.run(
                ["pgrep", "-P", str(nginx.pid)], capture_output=True, text=True
            ).stdout.split()
            nginx_worker = int(kids[0]) if kids else None
        proxy_pid = {
            "direct": None,
            "nginx": nginx_worker,
            "slb": procs[3].pid,
            "slb-dir": procs[4].pid if directed else None,
        }
        backend_pids = [p.pid for p in procs[:3]]
        names = list(results)
        cpu: dict[str, dict[str, list[float]]] = {
            k: {"user": [], "sys": [], "backends": []} for k in names
        }
        losses: dict[str, int] = {k: 0 for k in names}
        start = 0
        plan = {
            "direct": reals,
            "nginx": [(f"{net}.101", nport)] if nginx else [],
            "slb": [slb],
            "slb-dir": [directed] if directed else [],
        }
        load0 = loadavg()
        for _ in range(a.rounds):
            order = [k for k in names if plan[k]]
            rng.shuffle(order)
            for name in order:
                pp = proxy_pid[name]
                u0, s0 = cpu_us(pp) if pp else (0.0, 0.0)
                b0 = sum(cpu_s(x) for x in backend_pids)
                r, lost = client(plan[name], f"{net}.2", a.seconds, a.window, start)
                u1, s1 = cpu_us(pp) if pp else (0.0, 0.0)
                n = max(r * a.seconds, 1.0)
                cpu[name]["user"].append((u1 - u0) / n * 1e6)
                cpu[name]["sys"].append((s1 - s0) / n * 1e6)
                cpu[name]["backends"].append((sum(cpu_s(x) for x in backend_pids) - b0) / n * 1e6)
                start += 10_000_000
                results[name].append(r)
                losses[name] += lost
                # let an SLB expire this run's sessions before the next target is measured
                time.sleep(SESSION_S + 0.2 if name.startswith("slb") else 0.3)
        load1 = loadavg()
        medr = {k: med(v) for k, v in results.items() if v}
        us = {
            k: {
                "proxy_cpu_us": round(med([u + s for u, s in zip(v["user"], v["sys"])]), 2),
                "proxy_user_us": round(med(v["user"]), 2),
                "proxy_sys_us": round(med(v["sys"]), 2),
                "backend_cpu_us": round(med(v["backends"]), 2),
            }
            for k, v in cpu.items()
            if v["user"]
        }

        def paired(k: str) -> list[float]:
            if not results["nginx"] or not results[k]:
                return []
            return [x / y for x, y in zip(results[k], results["nginx"]) if y > 0]

        rel, rdir = paired("slb"), paired("slb-dir")
        out = {
            "window": a.window,
            "slb_io": "python" if a.python_io else "fastpath",
            "backend_io": a.backend_io,
            "seconds": a.seconds,
            "rounds": a.rounds,
            "loadavg_before_after": [load0, load1],
            "requests_per_s": {k: round(v) for k, v in medr.items()},
            "lost": losses,
            "cpu_per_request": us,
            "slb_vs_nginx": round(med(rel), 3) if rel else None,
            "slb_vs_nginx_range": [round(min(rel), 3), round(max(rel), 3)] if rel else None,
            "slb_directed_vs_nginx": round(med(rdir), 3) if rdir else None,
            "slb_directed_vs_nginx_range": (
                [round(min(rdir), 3), round(max(rdir), 3)] if rdir else None
            ),
            "slb_vs_direct": round(medr["slb"] / medr["direct"], 3),
        }
        if a.json:
            print(json.dumps(out))
        else:
            print(
                f"HA-SLB forwarding, {a.window} in flight, {a.rounds} rounds x {a.seconds}s "
                f"(random order per round); load average {load0:.2f} -> {load1:.2f}; SLB I/O: "
                + ("Python reader (--python-io)" if a.python_io else "mobileha._slbio if built")
                + f"; backends' I/O: {a.backend_io}"
            )
            for tname, v in medr.items():
                c = us.get(tname, {})
                print(
                    f"  {tname:7s} {v:10.0f} requests/s  (lost {losses[tname]}; CPU per request: "
                    f"proxy {c.get('proxy_cpu_us', 0):.1f} us "
                    f"[user {c.get('proxy_user_us', 0):.1f} + sys {c.get('proxy_sys_us', 0):.1f}], "
                    f"backends {c.get('backend_cpu_us', 0):.1f} us)"
                )
            if not rel:
                print("  nginx stream module not available: no ratio")
            else:
                print(
                    f"  slb (relay) / nginx = {med(rel):.2f}  (per-round range "
                    f"{min(rel):.2f}-{max(rel):.2f}; target >= 1.3)"
                )
                if rdir:
                    print(
                        f"  slb (directed) / nginx = {med(rdir):.2f}  (per-round range "
                        f"{min(rdir):.2f}-{max(rdir):.2f}; target >= 1.3)"
                    )
            print(f"  slb / direct = {medr['slb'] / medr['direct']:.2f}")
            if load0 > 1.0:
                print(
                    "  note: the machine was busy before the run (load average > 1): under "
                    "CPU contention the ratio tends to the ratio of CPU per request"
                )
        return 0
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGTERM)
            try:
                nginx.wait(5)
            except subprocess.TimeoutExpired:
                nginx.kill()
        for p in procs:
            p.terminate()
            p.join(2)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
