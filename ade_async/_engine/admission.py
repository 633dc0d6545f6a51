"""The admission gate: who may create a job, and when.

Two parts, as everywhere in ade_async:

:class:`AdmissionCore`
    the decisions, sans-I/O. It holds the FIFO queue of waiters, one sliding log per window, the
    in-flight count, the 429 pause and the adaptive rate. Every method takes ``now``; ``poll``
    says who is admitted now and when to look again. Tests drive it with plain numbers.
:class:`AdmissionGate`
    the thin async shell: one future per waiter and a single timer, set for the moment ``poll``
    names. No task, no polling loop.

Exactness. A window ``(count, period)`` is a log of admission times; a waiter is admitted only
while fewer than ``count`` admissions fall in the last ``period + safety_margin`` seconds. Hence
no rolling ``period`` ever holds more than ``count`` admissions, from the gate's point of view.
The server counts arrivals, not admissions, and a create can arrive well after its admission (a
busy event loop, a burst of uploads, a slow server). So a create on the wire (:meth:`sent`)
counts in every window as if it arrived *now*, until its answer: accepted, it is logged at the
moment the answer came (no earlier than the arrival); refused with 429, it never counted; lost,
it is logged when the loss was seen. Then no window the server keeps can see more than ``count``
creates from this gate, however late they leave or arrive; the margin only covers creates whose
answer the gate is never told about.

Cancellation. A waiter that leaves before it is admitted consumes nothing and, if it was at the
head, the next waiter is considered at once. A waiter admitted in the same instant it was cancelled
hands its admission back (:meth:`AdmissionCore.refund`), so nothing is lost either way.

:class:`Admission` is what the rest of the client relies on. :class:`AdmissionGate` is the
in-memory one; ``_shared_admission.SharedAdmissionGate`` keeps the same promises with its state in
Redis, for a quota shared between processes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Protocol

from .admission_core import AdmissionCore, AdmissionStats, Grant, WindowUsage
from .clock import Clock, TimerHandle
from .futures import settled
from .ratelimit import RateLimit

__all__ = ["Admission", "AdmissionCore", "AdmissionGate", "AdmissionStats", "Grant", "WindowUsage"]


class Admission(Protocol):
    """The admission gate as the client uses it, whatever holds its state."""

    @property
    def options(self) -> RateLimit: ...

    async def acquire(self, *, front: bool = False) -> Grant:
        """Wait for the right to send one create, first in, first out (within this process)."""
        ...

    def release(self) -> None:
        """A granted create's job has finished (or the create failed for good)."""
        ...

    def refund(self, grant: Grant) -> None:
        """The server did not count this create (429, or it was provably never sent)."""
        ...

    def sent(self, grant: Grant) -> None:
        """``grant``'s create is going on the wire: it counts as now until its answer."""
        ...

    def on_accepted(self, grant: Grant) -> None:
        """Report a 202 for ``grant``'s create: it counts from this moment."""
        ...

    def on_unanswered(self, grant: Grant) -> None:
        """``grant``'s create was sent and its answer lost: it counts from now. Its in-flight
        slot stays taken (a job may exist); whoever settles the create's fate calls
        :meth:`release` once its job is seen to end or the search for it concludes."""
        ...

    def on_rate_limited(self, grant: Grant, retry_after: float | None) -> float:
        """Report a 429 for ``grant``'s create: refunds it and pauses every waiter."""
        ...

    def stats(self) -> AdmissionStats: ...

    def close(self, error: BaseException) -> None:
        """Fail every waiter with ``error`` (and every later ``acquire``)."""
        ...


class AdmissionGate:
    """The async shell over :class:`AdmissionCore`: waiters are futures, time is one timer.

    Args:
        options: the rate limit.
        clock: the clock to read and to set the timer on.
        rng: jitter source for penalties (seed it in tests).
    """

    def __init__(self, options: RateLimit, *, clock: Clock, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._core = AdmissionCore(options, now=clock.now(), rng=rng)
        self._futures: dict[int, asyncio.Future[Grant]] = {}
        self._ids = itertools.count()
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed: BaseException | None = None

    @property
    def options(self) -> RateLimit:
        return self._core.options

    async def acquire(self, *, front: bool = False) -> Grant:
        """Wait for the right to send one create, first in, first out.

        Args:
            front: join at the head of the queue (a create being retried after a 429 keeps its
                place rather than going to the back).

        Cancelling the waiting task consumes nothing.
        """
        if self._closed is not None:
            raise self._closed
        waiter = next(self._ids)
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._futures[waiter] = future
        self._core.join(waiter, front=front)
        self._pump()
        try:
            return await settled(future)
        except BaseException:
            self._futures.pop(waiter, None)
            if future.done() and not future.cancelled() and future.exception() is None:
                # Admitted in the same instant the waiter was cancelled: hand the slot back.
                # (A future failed by close() holds no grant, and reading it would replace the
                # cancellation being raised with the closing error.)
                self._core.refund(future.result())
            else:
                self._core.leave(waiter)
            self._pump()
            raise

    def close(self, error: BaseException) -> None:
        """Fail every waiter with ``error`` (and every later ``acquire``); stop the timer."""
        self._closed = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        futures, self._futures = self._futures, {}
        for waiter, future in futures.items():
            self._core.leave(waiter)
            if not future.done():
                future.set_exception(error)

    def release(self) -> None:
        """The job of a granted create has finished (or the create failed for good)."""
        self._core.release()
        self._pump()

    def refund(self, grant: Grant) -> None:
        """The server did not count this create (429, or it was provably never sent)."""
        self._core.refund(grant)
        self._pump()

    def sent(self, grant: Grant) -> None:
        """``grant``'s create is going on the wire: it counts as now until its answer."""
        self._core.sent(grant)

    def on_accepted(self, grant: Grant) -> None:
        """Report a 202 for ``grant``'s create: it counts from now."""
        self._core.on_accepted(self._clock.now(), grant)
        self._pump()

    def on_unanswered(self, grant: Grant) -> None:
        """``grant``'s create was sent and its answer lost: it counts from now; its slot stays
        taken until :meth:`release` (a job may exist)."""
        self._core.settle(grant, self._clock.now())
        self._pump()

    def on_rate_limited(self, grant: Grant, retry_after: float | None) -> float:
        """Report a 429 for ``grant``'s create: refunds it and pauses every waiter. Returns the pause."""
        now = self._clock.now()
        pause = self._core.on_rate_limited(now, retry_after=retry_after, sent_at=grant.admitted_at)
        self._core.refund(grant)
        self._pump()
        return pause

    def stats(self) -> AdmissionStats:
        return self._core.stats(self._clock.now())

    def __repr__(self) -> str:
        s = self.stats()
        windows = ", ".join(f"{w.used}/{w.count} per {w.period:g}s" for w in s.windows) or "no windows"
        adaptive = "" if s.adaptive_rate is None else f" adaptive={s.adaptive_rate:.2f}/s"
        paused = f" paused={s.paused_for:.1f}s" if s.paused_for else ""
        return (
            f"<AdmissionGate {windows}; admitted={s.admitted} waiting={s.waiting} "
            f"in_flight={s.in_flight} 429s={s.rate_limited}{adaptive}{paused}>"
        )

    def _pump(self) -> None:
        """Hand out every admission possible now and set the one timer for the next moment."""
        if self._closed is not None:
            return
        # A waiter's future is cancelled the moment its task is, before the task runs its cleanup:
        # such a waiter is skipped here rather than admitted.
        grants, wake_at = self._core.poll(self._clock.now(), is_live=self._is_live)
        for grant in grants:
            self._futures.pop(grant.waiter).set_result(grant)
        if wake_at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None if wake_at is None else self._clock.call_at(wake_at, self._on_timer)
            self._timer_at = wake_at

    def _is_live(self, waiter: int) -> bool:
        future = self._futures.get(waiter)
        return future is not None and not future.done()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._pump()
