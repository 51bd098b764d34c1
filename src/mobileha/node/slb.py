"""The HA-SLB node: virtual server on UDP 434, forwarding to real home agents (DESIGN §5).

Hot path per datagram: the reader's NAI check (:func:`mobileha.wire.mip.leading_nai`), one
:meth:`ServerFarm.receive_datagram` (which parses the request itself when the NAI is not
the first extension), one datagram out. The virtual server's socket is read by
:meth:`SlbNode._drain` registered with ``loop.add_reader``: up to :data:`BATCH` datagrams per
wake-up and one clock reading per batch (no per-datagram protocol callback, context switch
into ``Context.run`` or transport bookkeeping). With :mod:`mobileha._slbio` a batch is one
``recvmmsg`` and one ``sendmmsg`` per real whose relay tag or directed IPv4/UDP header is
built in C around the received bytes; without it (the reference), ``recvfrom`` and ``send``
per datagram and the same bytes made in Python (:meth:`SlbNode._packets`). A send that
would block is queued and flushed when the socket is writable. Bad input is counted by
reason and logged rate-limited; nothing here raises out of the reader.

Modes:

* ``relay`` (unprivileged): the request goes out of the virtual server's own socket with
  the relay tag (:mod:`mobileha.wire.slbtag`) carrying the FA's address and port.
* ``directed`` (root): a raw IPv4/UDP datagram whose source is the FA's own address and
  port, so the real HA sees (and answers) the FA directly (P§6.4 item 6).

A DFP manager (:class:`mobileha.node.dfp.DfpManagerClient`) connects to each real's agent
and feeds the weights into the farm.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobileha.core import dfp as dfpcore
from mobileha.core.slb import EVENT_REASONS, Real, RealState, ServerFarm, make_predictor
from mobileha.log import RateLimitedLogger, get_logger
from mobileha.node.base import StartupError, bind
from mobileha.node.dfp import DfpManagerClient
from mobileha.wire import mip, slbtag
from mobileha.wire.auth import ALG_PREFIX_SUFFIX, Authenticator
from mobileha.wire.ip import UdpDatagramEncoder

_log = get_logger("mobileha.slb")

_slbio: Any
try:  # the optional C accelerator (src/mobileha/_slbio.c, built by setup.py)
    from mobileha import _slbio
except ImportError:  # pragma: no cover - depends on the build
    _slbio = None

RCVBUF = 4 * 1024 * 1024
BATCH = 256  # datagrams per reader callback at most (then other callbacks get their turn)
MAX_PENDING = 65_536  # datagrams queued while the send buffer is full; beyond: "send-busy"
TIMER_GRANULARITY = 0.05  # seconds; session expiry is also checked lazily per request
TIMER_BUDGET = 20_000  # expiries per timer callback (about 0.1 s of work at most)
GC_FREEZE_MIN = 10_000  # sessions: gc.freeze() when the table has grown by this or 10%
_IDENT = struct.Struct("!Q")  # the Identification (mip.IDENT_AT)
# What a reader returns per datagram: (data, source, leading NAI or None, Identification)
Received = tuple[bytes, tuple[str, int], str | None, int]


@dataclass(slots=True)
class SlbRealSpec:
    address: str
    port: int = 434
    weight: int = 8
    maxconns: int = 0xFFFFFFFF
    dfp_agent: str | None = None  # "host:port"
    inservice: bool = True
    name: str = ""


@dataclass(slots=True)
class SlbSettings:
    """Everything the SLB node needs (the ``[slb]`` keys of DESIGN §6, plus DFP)."""

    virtual_address: str
    reals: Sequence[SlbRealSpec]
    port: int = 434
    mode: str = "directed"  # directed | relay
    session_s: float = 10.0
    reassign: int = 3
    faildetect_numconns: int = 8
    faildetect_numclients: int = 8
    retry_s: float = 60.0
    faildetect_window_s: float = 10.0  # a client's failures count once per window
    predictor: str = "ios-wrr"
    relay_vendor_id: int = slbtag.DEFAULT_VENDOR_ID
    relay_key: bytes | None = field(default=None, repr=False)
    relay_spi: int = 0
    relay_algorithm: str = ALG_PREFIX_SUFFIX
    max_sessions: int = 262_144  # mobileha.config.model.SLB_MAX_SESSIONS
    max_datagram: int = 4096  # larger requests are dropped and counted ("oversized")
    name: str = "slb"
    farm_name: str = "HAFARM"
    dfp_password: bytes | None = field(default=None, repr=False)
    dfp_timeout_s: float = 0.0  # 0: no report timeout
    dfp_retry_s: float = 10.0  # max reconnect backoff
    dfp_keepalive: int | None = None  # sent to agents as DFP Parameters when set
    dfp_max_message: int = 4096  # a longer DFP message closes the agent's connection
    fastpath: bool = True  # batched I/O of mobileha._slbio when it is built


def _bufsize(sock: socket.socket, size: int = RCVBUF) -> None:
    """Large socket buffers (a burst of 1,000 datagrams overflows the default on loopback);
    the FORCE variants pass net.core.rmem_max when we are root."""
    for force, plain in (
        (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, size)


class SlbNode:
    """Role ``slb``: one virtual server and its farm."""

    role = "slb"

    def __init__(self, settings: SlbSettings) -> None:
        if settings.mode not in ("directed", "relay"):
            raise ValueError(f"slb mode {settings.mode!r}: directed | relay")
        self.settings = settings
        self.name = settings.name
        self.farm = ServerFarm(
            settings.predictor,
            settings.session_s,
            settings.reassign,
            settings.max_sessions,
            failure_window_s=settings.faildetect_window_s,
        )
        for spec in settings.reals:
            r = self.farm.add_real(
                spec.address,
                port=spec.port,
                weight=spec.weight,
                maxconns=spec.maxconns,
                faildetect_numconns=settings.faildetect_numconns,
                faildetect_numclients=settings.faildetect_numclients,
                retry_s=settings.retry_s,
            )
            if not spec.inservice:
                r.state = RealState.OUT_OF_SERVICE
        self._names = {(s.address, s.port): s.name or s.address for s in settings.reals}
        self.dfp: dfpcore.DfpManager | None = None
        self._dfp_client: DfpManagerClient | None = None
        agents = [s for s in settings.reals if s.dfp_agent]
        if agents:
            self.dfp = dfpcore.DfpManager(
                timeout=settings.dfp_timeout_s,
                backoff_max=settings.dfp_retry_s,
                key=settings.dfp_password,
                keepalive=settings.dfp_keepalive,
                max_message=settings.dfp_max_message,
            )
            for s in agents:
                assert s.dfp_agent is not None
                self.dfp.add_agent(s.dfp_agent, [s.address], 0.0)
        self.n_received = 0
        self.n_forwarded = 0
        self._counters: dict[str, int] = {
            "dropped": 0,
            "real_unreachable": 0,  # ICMP port unreachable from a real (connected socket)
        }
        self._directed = UdpDatagramEncoder()
        # FA address -> (its last source port, plain relay tag for that address and port)
        self._sfx: dict[str, tuple[int, bytes]] = {}
        self._armed: asyncio.TimerHandle | None = None
        self._time: Callable[[], float] = lambda: 0.0
        self.bad = RateLimitedLogger(_log)
        self._sock: socket.socket | None = None  # the virtual server (relay: also sends)
        self._vs = (settings.virtual_address, settings.port)  # its bound address
        self._directed_mode = settings.mode == "directed"
        self._fast: Any = _slbio if settings.fastpath else None
        self._set_relay_tag(settings)
        self._pending: deque[tuple[bytes, tuple[str, int]]] = deque()  # send would block
        # relay: one socket per real, bound to the virtual address and connected to the real
        # (the kernel keeps its route: no per-datagram address parsing or route lookup)
        self._tx: dict[tuple[str, int], Callable[[bytes], int]] = {}
        self._txsocks: dict[tuple[str, int], socket.socket] = {}
        self._wfds: set[int] = set()  # sockets with a writer callback (sends were queued)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = time.monotonic()
        self._freeze_at = GC_FREEZE_MIN  # sessions: the table size of the next freeze_gc()

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> tuple[str, int]:
        """The bound (virtual address, port)."""
        if self._sock is not None:
            a = self._sock.getsockname()
            return str(a[0]), int(a[1])
        return self.settings.virtual_address, self.settings.port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        if self._directed_mode:
            # fail at start, not at the first request, when raw sockets are not allowed
            try:
                socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
            except PermissionError:
                raise StartupError(
                    "slb.mode",
                    self.settings.virtual_address,
                    "directed mode sends raw IP datagrams: it needs root or CAP_NET_RAW "
                    '(or mode = "relay")',
                ) from None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bufsize(sock)
        bind(
            sock,
            (self.settings.virtual_address, self.settings.port),
            "slb.port",
            "slb.virtual_address",
        )
        sock.setblocking(False)
        self._sock = sock
        self._vs = self.address
        self._time = self._loop.time
        self._loop.add_reader(sock.fileno(), self._drain)
        if self.dfp is not None:
            self._dfp_client = DfpManagerClient(self.dfp, self._apply_dfp)
            await self._dfp_client.start()
        _log.info(
            "slb started",
            vserver=f"{self.address[0]}:{self.address[1]}",
            mode=self.settings.mode,
            reals=len(self.farm.reals),
            predictor=self.farm.predictor.name,
            io="recvmmsg/sendmmsg (mobileha._slbio)" if self._fast is not None else "python",
        )
        if self.settings.fastpath and self._fast is None:
            _log.warning(
                "slb fastpath asked for but mobileha._slbio is not built "
                "(no C compiler or Python headers at install): using the Python reader"
            )

    async def stop(self) -> None:
        if self._dfp_client is not None:
            await self._dfp_client.stop()
            self._dfp_client = None
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        if self._loop is not None:
            for fd in self._wfds:
                self._loop.remove_writer(fd)
        self._wfds.clear()
        self._pending.clear()
        for ts in self._txsocks.values():
            ts.close()
        self._txsocks.clear()
        self._tx.clear()
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # ------------------------------------------------------------------ hot path

    @property
    def counters(self) -> dict[str, int]:
        return {
            "received": self.n_received,
            "forwarded": self.n_forwarded,
            "no_nai": self.farm.counters["no_nai"],  # keyed by (home address, FA)
            **self._counters,
        }

    def _bad(self, reason: str, detail: str = "") -> None:
        self._counters["dropped"] += 1
        self.bad.warn(reason, "request dropped", detail=detail)

    def _drain(self) -> None:
        """Reader callback: receive, decide and forward up to :data:`BATCH` datagrams.

        Three phases per batch: read every queued datagram, decide each (session, real,
        tag), then send them, grouped per real. Keeping the syscalls together and the
        Python work together measurably lowers the CPU per request (caches stay warm; a
        real HA that gets a run of requests wakes up once for them) at the price of a
        batch's processing time in latency (well under a millisecond). The loop polls
        level-triggered, so it calls again while datagrams remain queued. ``now`` is read
        once per batch (session timing is much coarser than a batch).

        With the C module :mod:`mobileha._slbio` (``fastpath``) the first and last phases
        are one ``recvmmsg`` and one ``sendmmsg`` per real; without it, ``recvfrom`` and
        ``send`` per datagram. The decisions are the same Python code either way.
        """
        sock = self._sock
        if sock is None:
            return
        bufsize = self.settings.max_datagram + 1  # longer arrives truncated: "oversized"
        ins: list[Received]
        if self._fast is not None:
            try:
                ins = self._fast.recv_requests(sock.fileno(), BATCH, bufsize)
            except OSError as e:  # e.g. an ICMP error reported on the socket
                self._bad("socket-error", str(e))
                return
        else:
            ins = self._recv_python(sock, bufsize)
        if not ins:
            return
        self.n_received += len(ins)
        now = self._time()
        groups = self._decide(ins, now)
        if groups:
            self._send_groups(groups)
        self._after(now)

    def _recv_python(self, sock: socket.socket, bufsize: int) -> list[Received]:
        """The reference reader: what :func:`mobileha._slbio.recv_requests` returns."""
        recvfrom = sock.recvfrom
        ident_of = _IDENT.unpack_from
        leading_nai = mip.leading_nai
        ins: list[Received] = []
        take = ins.append
        for _ in range(BATCH):
            try:
                data, src = recvfrom(bufsize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # e.g. an ICMP error reported on the socket
                self._bad("socket-error", str(e))
                break
            ident = ident_of(data, mip.IDENT_AT)[0] if len(data) >= 24 else 0
            take((data, src, leading_nai(data), ident))
        return ins

    def _decide(self, ins: list[Received], now: float) -> dict[Real, list[Received]]:
        """The session and real of each request: the requests grouped per real, in order
        (:meth:`_packets` makes the datagrams that go out)."""
        receive = self.farm.receive_datagram
        vs = self._vs
        maxd = self.settings.max_datagram
        groups: dict[Real, list[Received]] = {}
        debug = _log.is_enabled(logging.DEBUG)  # `debug ip mobile`: one line per request
        for item in ins:
            data, src, nai, ident = item
            try:
                if len(data) > maxd:
                    self._bad("oversized", f"more than {maxd} bytes")
                    continue
                d = receive(data, src, vs, now, nai, ident)
                r = d[0]
                if debug:
                    self._trace(d, src, nai, ident)
                if r is None:
                    self._bad(d.reason or "no-real")
                    continue
                g = groups.get(r)
                if g is None:
                    groups[r] = [item]
                else:
                    g.append(item)
            except Exception as e:  # a bug must not lose the rest of the batch
                self._bad("internal-error", repr(e))
        return groups

    def _packets(self, r: Real, items: list[Received]) -> list[bytes]:
        """The datagrams that carry ``items`` to ``r``: with the relay tag (``relay``) or
        inside an IPv4/UDP header from the FA (``directed``). The reference of
        :func:`mobileha._slbio.send_relay` / ``send_directed``, and the path of an
        authenticated tag."""
        out: list[bytes] = []
        take = out.append
        if self._directed_mode:
            encode = self._directed
            for data, (addr, sport), _, _ in items:
                try:
                    take(encode(addr, sport, r.address, r.port, data))
                except Exception as e:  # a bug must not lose the rest of the batch
                    self._bad("internal-error", repr(e))
        elif self._relay_auth is None:
            # plain tag: it depends only on the FA's address/port, so it is cached
            sfxs = self._sfx
            for data, (addr, sport), _, _ in items:
                c = sfxs.get(addr)
                take(
                    data + (c[1] if c is not None and c[0] == sport else self._sfx_for(addr, sport))
                )
        else:
            tag = self._tag
            for data, (addr, sport), _, _ in items:
                take(tag(data, addr, sport))
        return out

    def _trace(self, d: Any, src: tuple[str, int], nai: str | None, ident: int) -> None:
        r = d.real
        moved = d.reassigned_from
        _log.debug(
            "registration request",
            nai=nai or "-",
            ident=f"{ident >> 32:08X}.{ident & 0xFFFFFFFF:08X}",
            client=f"{src[0]}:{src[1]}",
            real="none" if r is None else f"{r.address}:{r.port}",
            session="new" if d.new_session else "retransmission" if d.retransmission else "-",
            reassigned_from="-" if moved is None else moved.address,
            reason=d.reason or "-",
        )

    def _send_groups(self, groups: dict[Real, list[Received]]) -> None:
        """Send each real's datagrams on its connected socket, in order; what would block
        is queued (and everything after it, to keep the order).

        With :mod:`mobileha._slbio`, the datagrams of a plain relay tag or of directed mode
        are put together by the kernel from the received bytes and a header built in C
        (``send_relay`` / ``send_directed``, one ``sendmmsg``); otherwise
        :meth:`_packets` makes them and they leave with ``send_all`` or ``send``."""
        fast = self._fast
        txs = self._tx
        fwd = 0
        for r, items in groups.items():
            dst = (r.address, r.port)
            i = 0
            pkts: list[bytes] | None = None
            if not self._pending:
                try:
                    tx = txs.get(dst)
                    if tx is None:
                        tx = self._connect(dst)
                except OSError as e:  # no socket for this real (e.g. its address is gone)
                    self._bad("send-error", f"{dst[0]}:{dst[1]}: {e}")
                    continue
                if fast is not None and self._c_headers:
                    i, sent = self._send_fast(fast, r, items, None)
                    fwd += sent
                elif fast is not None:
                    pkts = self._packets(r, items)
                    i, sent = self._send_fast(fast, r, items, pkts)
                    fwd += sent
                else:
                    pkts = self._packets(r, items)
                    for pkt in pkts:
                        try:
                            tx(pkt)
                            fwd += 1
                        except BlockingIOError:
                            break
                        except OSError as e:
                            fwd += self._send_error(pkt, dst, e)
                            if self._pending:
                                i += 1
                                break
                        i += 1
            if pkts is None:
                n = len(items)
                if i >= n:
                    continue
                pkts = self._packets(r, items[i:])
                i = 0
            for pkt in itertools.islice(pkts, i, None):
                fwd += self._defer(pkt, dst)
        self.n_forwarded += fwd

    def _send_fast(
        self, fast: Any, r: Real, items: list[Received], pkts: list[bytes] | None
    ) -> tuple[int, int]:
        """``sendmmsg`` on the real's socket of ``pkts``, or (``pkts`` None) of ``items``
        with their header built in C: (datagrams consumed, of which forwarded). It stops
        at the first that would block (queued by the caller)."""
        dst = (r.address, r.port)
        fd = self._txsocks[dst].fileno()
        i = fwd = 0
        n = len(items)
        while i < n:
            try:
                if pkts is not None:
                    k = fast.send_all(fd, pkts, i)
                elif self._directed_mode:
                    k = fast.send_directed(fd, items, r.address, r.port, i)
                else:
                    k = fast.send_relay(fd, items, self._tag_head, i)
            except OSError as e:  # the datagram at ``i`` failed
                pkt = pkts[i] if pkts is not None else self._packets(r, items[i : i + 1])[0]
                fwd += self._send_error(pkt, dst, e)
                i += 1
                if self._pending:  # it was queued: the rest goes behind it
                    break
                continue
            if k == 0:
                break
            i += k
            fwd += k
        return i, fwd

    def _connect(self, dst: tuple[str, int]) -> Callable[[bytes], int]:
        """The socket requests go to one real on, connected (the kernel keeps the route:
        no per-datagram address parsing or route lookup).

        ``relay``: UDP, bound to the virtual address (the real HA trusts the tag by that
        source address). ``directed``: a raw IPv4 socket (the datagrams carry their own IP
        and UDP headers with the FA's address) connected to the real's address.
        """
        if self._directed_mode:
            ts = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        else:
            ts = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            _bufsize(ts)
            if self._directed_mode:
                ts.connect((dst[0], 0))
            else:
                ts.bind((self.settings.virtual_address, 0))
                ts.connect(dst)
            ts.setblocking(False)
        except OSError:
            ts.close()
            raise
        self._txsocks[dst] = ts
        tx = self._tx[dst] = ts.send
        return tx

    def _send_error(self, pkt: bytes, dst: tuple[str, int], e: OSError) -> int:
        """A send failed. ECONNREFUSED reports an ICMP port unreachable from the real
        for an earlier datagram (the socket is connected): counted, and this datagram is
        sent once more (the error is cleared by being reported)."""
        if isinstance(e, ConnectionRefusedError):
            self._counters["real_unreachable"] += 1
            tx = self._tx.get(dst)
            if tx is not None:
                try:
                    tx(pkt)
                    return 1
                except BlockingIOError:
                    return self._defer(pkt, dst)
                except OSError as e2:
                    e = e2
        self._bad("send-error", f"{dst[0]}:{dst[1]}: {e}")
        return 0

    def _sfx_for(self, addr: str, port: int) -> bytes:
        if len(self._sfx) > 4096:
            self._sfx.clear()
        sfx = self._tag(b"", addr, port)
        self._sfx[addr] = (port, sfx)
        return sfx

    def _defer(self, pkt: bytes, dst: tuple[str, int]) -> int:
        """Queue a datagram the socket could not take now; 1 when queued, 0 when dropped."""
        if len(self._pending) >= MAX_PENDING:
            self._bad("send-busy", f"{MAX_PENDING} datagrams already wait for the socket")
            return 0
        out = self._txsocks.get(dst)
        if out is None or self._loop is None:
            self._bad("send-error", "not started")
            return 0
        self._watch(out)
        self._pending.append((pkt, dst))
        return 1

    def _watch(self, out: socket.socket) -> None:
        fd = out.fileno()
        if fd not in self._wfds and self._loop is not None:
            self._wfds.add(fd)
            self._loop.add_writer(fd, self._flush)

    def _flush(self) -> None:
        """Writer callback: send what was queued while a socket's buffer was full (in
        order; the first datagram that would block again waits for its socket)."""
        q = self._pending
        while q:
            pkt, dst = q[0]
            out = self._txsocks.get(dst)
            if out is None:
                self._bad("send-error", "socket closed")
                q.popleft()
                continue
            try:
                self._tx[dst](pkt)
            except BlockingIOError:
                self._watch(out)
                return
            except OSError as e:
                self._bad("send-error", str(e))
            q.popleft()
        if self._loop is not None:
            for fd in self._wfds:
                self._loop.remove_writer(fd)
        self._wfds.clear()

    def _after(self, now: float) -> None:
        """After a batch: log real state changes; arm the farm's one timer if none is."""
        if self.farm.has_events:
            self._log_events()
        if len(self.farm.sessions) > self._freeze_at:
            self.freeze_gc()
        # One timer for the whole farm, armed only when none is pending: expiry is also
        # handled lazily inside receive_datagram(), so a coarse timer is enough.
        if self._armed is None:
            self._arm(now)

    def freeze_gc(self) -> None:
        """Move the sessions out of the cyclic GC's generations, as the home agent node does
        with its bindings: a session holds no reference cycle (a test session's real
        lets go of it when it ends) and is freed by reference counting when it ends, but
        every session the table grows by is walked by up to three collections, and each
        full collection walks the whole table again. Called when the table has grown by
        10% (at least :data:`GC_FREEZE_MIN` sessions) since the last call."""
        gc.collect(1)
        gc.freeze()
        n = len(self.farm.sessions)
        self._freeze_at = n + max(GC_FREEZE_MIN, n // 10)

    def _arm(self, now: float) -> None:
        nd = self.farm.get_timer()
        if nd is None or self._loop is None:
            self._armed = None
            return
        self._armed = self._loop.call_at(max(nd, now + TIMER_GRANULARITY), self._on_timer)

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._armed = None
        now = self._loop.time()
        more = self.farm.handle_timer(now, TIMER_BUDGET)
        if self.farm.has_events:
            self._log_events()
        if more:  # a large backlog: continue soon, letting datagrams in between
            self._armed = self._loop.call_at(now, self._on_timer)
        else:
            self._arm(now)

    def _log_events(self) -> None:
        for ev in self.farm.drain_events():
            failed = ev.new is RealState.FAILED
            (_log.warning if failed else _log.info)(
                "real state",
                real=ev.address,
                name=next((n for (a, _), n in self._names.items() if a == ev.address), ""),
                old=ev.old.value,
                new=ev.new.value,
                event=ev.event.value,
                reason=ev.reason or EVENT_REASONS[ev.event],
            )

    def _apply_dfp(self, real: str, weight: int | None) -> None:
        assert self._loop is not None
        self.farm.set_dfp_weight(real, weight, self._loop.time())
        if self.farm.has_events:
            self._log_events()
        if self._armed is None:
            self._arm(self._loop.time())

    # ------------------------------------------------------------------ runtime changes

    def add_real(self, spec: SlbRealSpec) -> Real:
        s = self.settings
        r = self.farm.add_real(
            spec.address,
            port=spec.port,
            weight=spec.weight,
            maxconns=spec.maxconns,
            faildetect_numconns=s.faildetect_numconns,
            faildetect_numclients=s.faildetect_numclients,
            retry_s=s.retry_s,
        )
        self._names[(spec.address, spec.port)] = spec.name or spec.address
        if spec.dfp_agent and self.dfp is not None:
            self.dfp.add_agent(spec.dfp_agent, [spec.address], self._now())
            if self._dfp_client is not None:
                self._dfp_client._fire()
        return r

    async def reconfigure(self, settings: SlbSettings) -> None:
        """Reload: reals added, removed or changed (weight, session limit, in service,
        name, DFP agent) with the failure detection and retry settings, the session
        time, reassign threshold, session limit, predictor, relay tag (vendor id, SA) and
        the DFP manager's password and timers. Sessions stay where they are (on a removed
        real they move at their next request, without a failure). The virtual server, its
        port, mode and I/O need a restart: they must not change here."""
        old = self.settings
        for name in ("virtual_address", "port", "mode", "fastpath"):
            if getattr(settings, name) != getattr(old, name):
                raise ValueError(f"slb {name} cannot change without a restart")
        now = self._now()
        farm = self.farm
        farm.session_s = float(settings.session_s)
        farm.reassign = int(settings.reassign)
        farm.max_sessions = int(settings.max_sessions)
        if settings.predictor != old.predictor:
            farm.predictor = make_predictor(settings.predictor)
        before = {(r.address, r.port): r for r in old.reals}
        after = {(r.address, r.port): r for r in settings.reals}
        dfp_changes = False
        for key, spec in before.items():
            if key not in after:
                farm.remove_real(*key)
                self._names.pop(key, None)
                if spec.dfp_agent and self.dfp is not None:
                    self._run_dfp(self.dfp.remove_agent(spec.dfp_agent))
        self.settings = settings
        for key, spec in after.items():
            r = farm.real(*key)
            if r is None:
                self.add_real(spec)
                dfp_changes = dfp_changes or bool(spec.dfp_agent)
                if not spec.inservice:
                    farm.set_inservice(spec.address, False, now, spec.port)
                continue
            was = before[key]
            farm.set_weight(spec.address, spec.weight, spec.port)
            r.maxconns = spec.maxconns
            r.faildetect_numconns = settings.faildetect_numconns
            r.faildetect_numclients = settings.faildetect_numclients
            r.retry_s = float(settings.retry_s)
            if spec.inservice != was.inservice:
                farm.set_inservice(spec.address, spec.inservice, now, spec.port)
            self._names[key] = spec.name or spec.address
            if spec.dfp_agent != was.dfp_agent and self.dfp is not None:
                if was.dfp_agent:
                    self._run_dfp(self.dfp.remove_agent(was.dfp_agent))
                    r.dfp_lost = False  # removed from the config, not lost
                if spec.dfp_agent:
                    self.dfp.add_agent(spec.dfp_agent, [spec.address], now)
                    dfp_changes = True
        if self.dfp is not None:
            self.dfp.key = settings.dfp_password
            self.dfp.timeout = settings.dfp_timeout_s
            self.dfp.backoff_max = settings.dfp_retry_s
        elif any(rs.dfp_agent for rs in settings.reals):
            self.dfp = dfpcore.DfpManager(
                timeout=settings.dfp_timeout_s,
                backoff_max=settings.dfp_retry_s,
                key=settings.dfp_password,
                keepalive=settings.dfp_keepalive,
            )
            for rs in settings.reals:
                if rs.dfp_agent:
                    self.dfp.add_agent(rs.dfp_agent, [rs.address], now)
            if self._loop is not None:
                self._dfp_client = DfpManagerClient(self.dfp, self._apply_dfp)
                await self._dfp_client.start()
        if dfp_changes and self._dfp_client is not None:
            self._dfp_client._fire()
        self._set_relay_tag(settings)
        if farm.has_events:
            self._log_events()
        if self._armed is None and self._loop is not None:
            self._arm(now)

    def _set_relay_tag(self, settings: SlbSettings) -> None:
        """The relay tag of ``settings`` (start-up and reload): its SLB-HA SA, encoder,
        the plain tag's header for the C sender; the cached plain tags are dropped. The C
        senders put the plain relay tag or the directed IPv4/UDP header around the
        received bytes; an authenticated tag is made in Python (:meth:`_packets`)."""
        self._relay_auth = (
            Authenticator(settings.relay_key, settings.relay_algorithm)
            if settings.relay_key
            else None
        )
        self._tag = slbtag.encoder(
            vendor_id=settings.relay_vendor_id, key=self._relay_auth, spi=settings.relay_spi
        )
        self._c_headers = self._directed_mode or self._relay_auth is None
        self._tag_head = slbtag.plain_head(settings.relay_vendor_id)
        self._sfx.clear()

    def _run_dfp(self, actions: list[dfpcore.ManagerAction]) -> None:
        if self._dfp_client is not None:
            self._dfp_client._run(actions)
        else:
            for a in actions:
                if isinstance(a, dfpcore.SetWeight):
                    self.farm.set_dfp_weight(a.real, a.weight, self._now())

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    # ------------------------------------------------------------------ read-only state
    # (mobileha.mgmt renders the ``slb`` / ``sessions`` / ``dfp`` / ``stats`` views and the
    # CISCO-SLB-MIB families from these)

    def now(self) -> float:
        """The clock of the farm's deadlines (0.0 before the node started)."""
        return self._now()

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def real_name(self, r: Real) -> str:
        """The configured name of a real (its address when it has none)."""
        return self._names.get((r.address, r.port), r.address)

    @property
    def io(self) -> str:
        """How datagrams are read and written: "recvmmsg" (``_slbio``) or "python"."""
        return "recvmmsg" if self._fast is not None else "python"

    @property
    def in_service(self) -> bool:
        """The virtual server's socket is open."""
        return self._sock is not None


__all__ = ["SlbNode", "SlbRealSpec", "SlbSettings"]
