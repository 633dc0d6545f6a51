"""``FakeClock``: time that moves only when a test moves it.

Anything in ade_async that waits (the admission gate, retries, the poller) reads time from an
injected clock. Give it a ``FakeClock`` and a test can cover an hour of quota windows in
milliseconds, deterministically::

    clock = FakeClock()
    async with Client(..., clock=clock) as client:
        ...
        await clock.advance(60)   # fires every timer due in the next minute, in order
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

__all__ = ["FakeClock"]


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A manually advanced monotonic clock implementing ade_async's ``Clock`` protocol.

    Args:
        start: the initial reading of :meth:`now`.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The current fake time."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        """Run ``callback`` once the clock reaches ``when`` (during :meth:`advance`)."""
        timer = _Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        return timer

    async def sleep_until(self, deadline: float) -> None:
        """Suspend until :meth:`advance` reaches ``deadline``."""
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(deadline, wake)
        try:
            await future
        finally:
            timer.cancel()

    def next_deadline(self) -> float | None:
        """When the earliest pending timer fires, or ``None`` when none is pending."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order.

        After each timer fires, the event loop runs until it is idle, so the tasks the timer woke
        get to act (and set new timers) before time moves on.
        """
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self._now + seconds
        while True:
            await _settle()
            due = self.next_deadline()
            if due is None or due > target:
                break
            _, _, timer = heapq.heappop(self._heap)
            self._now = max(self._now, timer.when)
            timer.callback()
        self._now = target
        await _settle()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, timers={len(self._heap)})"


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run: a few passes of the event loop with nothing else to do."""
    for _ in range(rounds):
        await asyncio.sleep(0)
