"""Time, injected: the clock the admission gate and the poller read and set timers on.

Decision logic takes ``now`` as an argument and never reads a clock itself; the thin async shells
around it get time from a :class:`Clock`. Production uses :class:`LoopClock` (the event loop's
monotonic clock); tests use ``ade_async.testing.FakeClock`` and move time by hand, so nothing in a
test sleeps for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import anyio

__all__ = ["Clock", "LoopClock", "TimerHandle", "wait_until"]


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time in seconds, sleeping, and one-shot timers."""

    def now(self) -> float:
        """The current time, in seconds, on a monotonic scale."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline``."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (in the event loop's thread) once ``now() >= when``."""
        ...


class LoopClock:
    """The running event loop's clock (``loop.time()``, monotonic)."""

    __slots__ = ()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)

    def __repr__(self) -> str:
        return "LoopClock()"


async def wait_until(clock: Clock, wake: anyio.Event, wake_at: float | None) -> None:
    """Return when ``wake`` is set or ``clock`` reaches ``wake_at`` (``None``: only ``wake``).

    One timer on the injected clock, so a fake clock drives it too; the timer never outlives
    the wait.
    """
    timer = None if wake_at is None else clock.call_at(wake_at, wake.set)
    try:
        await wake.wait()
    finally:
        if timer is not None:
            timer.cancel()
