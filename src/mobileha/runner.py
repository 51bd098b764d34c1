"""``mobileha run CONFIG``: run one node in the foreground until SIGTERM/SIGINT.

1. Load and validate the config (problems are printed with their keys; exit 2).
2. Set up structured logging from ``[log]`` (``--log-level`` / ``--log-format`` override).
3. Use uvloop when it is installed (``--no-uvloop`` to keep the stock loop).
4. Build the node of ``node.role`` with :func:`mobileha.compose.build_node` (the one
   composition root: config -> core settings -> node objects).
5. ``await node.start()``, then start the management API (``[management] listen``).
6. Wait for SIGTERM or SIGINT, or for the node to finish by itself: a node may provide an
   optional ``async def wait(self) -> int | None`` (e.g. a mobile-node load driver that
   ends); its result becomes the exit code. SIGHUP reloads the config
   (:class:`mobileha.reload.Reloader`; its last result is the API's ``reload`` view).
7. ``await node.stop()`` (HSRP Resign, pending sync flushed; bounded by ``--stop-timeout``),
   stop the API, exit. A second signal during the stop abandons it (exit 1).

Exit codes: 0 clean stop, 1 the node failed (could not be built, start, run or stop raised,
or stop timed out), 2 usage or config error.

:class:`NodeRunner` is the same sequence without signals or process exit, for programs that
run several nodes in one loop (the demo) and for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Any

from mobileha import systemd
from mobileha.compose import RoleUnavailable, build_node
from mobileha.config import Config, ConfigError, host_problems, load_config
from mobileha.log import add_log_arguments, get_logger
from mobileha.mgmt.api import ManagementServer
from mobileha.node.base import Node, StartupError, bind_error
from mobileha.reload import Reloader, ReloadResult, apply_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_log = get_logger("mobileha.runner")


class NodeRunner:
    """Start a node and its management API; stop both. No signals, no process exit."""

    def __init__(
        self,
        cfg: Config,
        node: Node | None = None,
        path: str | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
    ) -> None:
        """``path``: the config file a reload re-reads; ``log_level``/``log_format``:
        command-line overrides a reload keeps."""
        self.cfg = cfg
        self.node: Node = node if node is not None else build_node(cfg)
        self.api: ManagementServer | None = None
        self.reloader = Reloader(cfg, self.node, path, log_level=log_level, log_format=log_format)

    async def reload(self, new: Config | None = None) -> ReloadResult:
        """Re-read the config file (or take ``new``) and apply it (:mod:`mobileha.reload`)."""
        result = await self.reloader.reload(new)
        self.cfg = self.reloader.cfg
        return result

    async def start(self) -> None:
        await self.node.start()
        m = self.cfg.management
        if m.enabled:
            api = ManagementServer(
                self.node,
                m.listen.host,
                m.listen.port,
                {"reload": self.reloader.view},
                token=m.token,
            )
            try:
                try:
                    await api.start()
                except OSError as e:
                    raise bind_error(
                        e, (m.listen.host, m.listen.port), "management.listen", "management.listen"
                    ) from None
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.node.stop()
                raise
            self.api = api
        _log.info(
            "node started",
            node=self.node.name,
            role=self.node.role,
            api=self.api.url if self.api else "disabled",
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the node (bounded by ``timeout``), then the API (even if the node failed)."""
        try:
            await asyncio.wait_for(self.node.stop(), timeout)
        finally:
            if self.api is not None:
                await self.api.stop()
                self.api = None
        _log.info("node stopped", node=self.node.name, role=self.node.role)


async def run(
    cfg: Config,
    stop_timeout: float = 10.0,
    node: Node | None = None,
    path: str | None = None,
    log_level: str | None = None,
    log_format: str | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or the node's optional ``wait()`` returns); exit code.
    SIGHUP reloads ``path`` (a SIGHUP before the node is up is applied once it is)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hup = asyncio.Event()
    signals_seen: list[int] = []
    main_task = asyncio.current_task()

    def on_signal(signum: int) -> None:
        signals_seen.append(signum)
        if len(signals_seen) == 1:
            _log.info("signal received, stopping", signal=signal.Signals(signum).name)
            stop.set()
        else:
            _log.warning("second signal, abandoning the clean stop")
            if main_task is not None:
                main_task.cancel()

    def on_hup() -> None:
        _log.info("SIGHUP received: reloading the config", config=path or "")
        hup.set()

    installed: list[int] = []
    for sig, handler, args in (
        (signal.SIGTERM, on_signal, (int(signal.SIGTERM),)),
        (signal.SIGINT, on_signal, (int(signal.SIGINT),)),
        (signal.SIGHUP, on_hup, ()),
    ):
        try:
            loop.add_signal_handler(sig, handler, *args)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        try:
            runner = NodeRunner(cfg, node, path, log_level, log_format)
        except RoleUnavailable as e:
            _log.error(str(e), role=cfg.role)
            print(f"mobileha run: {e}", file=sys.stderr)
            return EXIT_FAILED
        try:
            await runner.start()
        except StartupError as e:  # the operator's to fix: one line, no traceback
            systemd.notify(f"STATUS=failed to start: {e}")
            _log.error("node failed to start", node=cfg.name, key=e.key, address=e.address,
                       error=e.reason)  # fmt: skip
            print(f"mobileha run: {e}", file=sys.stderr)
            return EXIT_FAILED
        except Exception as e:
            _log.exception("node failed to start", node=cfg.name, error=repr(e))
            return EXIT_FAILED
        # systemd (Type=notify): ready once the sockets, data plane and API are up
        systemd.notify(f"READY=1\nSTATUS={runner.node.role} {runner.node.name} running")
        watchdog = systemd.Watchdog()
        watchdog.start(loop)
        reloads = asyncio.ensure_future(_reloads(runner, hup))
        try:
            code = await _wait(runner.node, stop)
        finally:
            reloads.cancel()
            with contextlib.suppress(BaseException):
                await reloads
            watchdog.stop()
        systemd.notify("STOPPING=1\nSTATUS=stopping")
        try:
            await runner.stop(stop_timeout)
        except TimeoutError:
            _log.error("node did not stop in time", timeout_s=stop_timeout)
            return EXIT_FAILED
        except Exception as e:
            _log.exception("node failed to stop cleanly", error=repr(e))
            return EXIT_FAILED
        return code
    except asyncio.CancelledError:
        return EXIT_FAILED
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _reloads(runner: NodeRunner, hup: asyncio.Event) -> None:
    """Reload at each SIGHUP (several during one reload make one more)."""
    while True:
        await hup.wait()
        hup.clear()
        systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={systemd.monotonic_usec()}")
        status = "reload failed"
        try:
            result = await runner.reload()
            status = (
                f"reloaded: {len(result.changed)} change(s), {len(result.restart)} need a restart"
                if result.ok
                else f"reload refused: {'; '.join(result.errors)[:200]}"
            )
        except Exception as e:  # a reload never takes the node down
            _log.exception("reload failed", error=repr(e))
        systemd.notify(f"READY=1\nSTATUS={status}")


async def _wait(node: Node, stop: asyncio.Event) -> int:
    waiter = asyncio.ensure_future(stop.wait())
    tasks: set[asyncio.Future[Any]] = {waiter}
    node_wait: Callable[[], Any] | None = getattr(node, "wait", None)
    done_task: asyncio.Future[Any] | None = None
    if node_wait is not None:
        done_task = asyncio.ensure_future(node_wait())
        tasks.add(done_task)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
    if done_task is not None and done_task in done:
        try:
            result = done_task.result()
        except Exception as e:
            _log.exception("node failed while running", error=repr(e))
            return EXIT_FAILED
        _log.info("node finished by itself", result=result)
        return int(result) if isinstance(result, int) else EXIT_OK
    return EXIT_OK


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit, so that the limits a node sets
    itself (DFP ``max_connections``, the management API's) are what refuses connections,
    not the descriptor table. Returns the soft limit now in force."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def _new_loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="mobileha run", description="run one mobileha node")
    ap.add_argument("config", help="the node's TOML config")
    add_log_arguments(ap)
    ap.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    ap.add_argument(
        "--stop-timeout", type=float, default=10.0, help="seconds allowed for a clean stop"
    )
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        for p in e.problems:
            print(f"{args.config}: {p}", file=sys.stderr)
        return EXIT_USAGE
    host = host_problems(cfg)
    if host:
        for p in host:
            print(f"{args.config}: {p}", file=sys.stderr)
        return EXIT_USAGE
    apply_logging(cfg, args.log_level, args.log_format)
    nofile = raise_fd_limit()
    factory = _new_loop_factory(not args.no_uvloop)
    _log.info(
        "starting",
        config=args.config,
        role=cfg.role,
        node=cfg.name,
        loop="uvloop" if factory else "asyncio",
        nofile=nofile,
    )
    with asyncio.Runner(loop_factory=factory) as r:
        return r.run(
            run(cfg, args.stop_timeout, None, args.config, args.log_level, args.log_format)
        )


__all__ = ["NodeRunner", "main", "raise_fd_limit", "run"]
