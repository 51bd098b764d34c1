"""Wait for a condition instead of sleeping a fixed time.

:func:`until` is for tests running an asyncio loop (the condition is polled between loop
iterations, so the nodes under test keep running); :func:`wait_for` is for tests driving
other processes from plain threads. Both fail with ``what`` in the message, and return as
soon as the condition holds, so a test takes the time the system needs, not a guess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(
    pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition", step: float = 0.005
) -> float:
    """Poll ``pred`` on the running loop until it is true; the seconds it took."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while not pred():
        if loop.time() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)
    return loop.time() - t0


def wait_for(
    pred: Callable[[], Any],
    timeout: float,
    what: str = "condition",
    step: float = 0.05,
    *,
    ignore: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll ``pred`` until it returns a true value (returned); exceptions of the types in
    ``ignore`` count as "not yet" (a process still starting). On timeout the assertion
    message names ``what``, the last ignored exception and ``detail()`` (e.g. process logs)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except ignore as e:
            last = e
        if time.monotonic() >= deadline:
            msg = f"timed out after {timeout} s waiting for {what}"
            if last is not None:
                msg += f" ({last!r})"
            if detail is not None:
                msg += "\n" + detail()
            raise AssertionError(msg)
        time.sleep(step)
