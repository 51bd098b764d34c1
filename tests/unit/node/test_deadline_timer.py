"""DeadlineTimer (node/base.py): the one loop timer that follows a core's get_timer(); the
lazy variant keeps an armed timer when the deadline moves later (it fires early, the core
finds nothing due, the next update arms the real deadline)."""

from __future__ import annotations

import asyncio

from mobileha.node.base import DeadlineTimer


def _armed(lazy: bool, updates: list[float | None]) -> list[float | None]:
    """The deadline armed after each update (relative to the start)."""
    loop = asyncio.new_event_loop()
    try:
        t = DeadlineTimer(loop, lambda: None, lazy=lazy)
        t0 = loop.time()
        out: list[float | None] = []
        for d in updates:
            t.update(None if d is None else t0 + d)
            w = t._when
            out.append(None if w is None else round(w - t0, 3))
            assert (t._handle is None) == (w is None)
        t.cancel()
        return out
    finally:
        loop.close()


def test_eager_timer_follows_every_deadline() -> None:
    assert _armed(False, [5.0, 20.0, None, 10.0]) == [5.0, 20.0, None, 10.0]


def test_lazy_timer_keeps_the_earlier_deadline_and_rearms_for_an_earlier_one() -> None:
    # later deadlines (and none) leave the 10 s timer in place; an earlier one replaces it
    assert _armed(True, [10.0, 20.0, None, 15.0, 5.0]) == [10.0, 10.0, 10.0, 10.0, 5.0]


def test_a_lazy_timer_fires_and_cancel_stops_it() -> None:
    loop = asyncio.new_event_loop()
    fired: list[int] = []
    try:
        t = DeadlineTimer(loop, lambda: fired.append(1), lazy=True)
        t.update(loop.time() + 0.01)
        loop.run_until_complete(asyncio.sleep(0.05))
        assert fired == [1] and t._when is None
        t.update(loop.time() + 0.01)
        t.cancel()
        loop.run_until_complete(asyncio.sleep(0.05))
        assert fired == [1]
    finally:
        loop.close()
