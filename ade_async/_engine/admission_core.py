"""The admission gate's decisions, sans-I/O: :class:`AdmissionCore` and what it answers with.

See :mod:`ade_async._engine.admission` for the whole story (exactness, cancellation); this module
holds the plain class whose methods take ``now``, and the frozen records it hands out.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .ratelimit import RateLimit

__all__ = ["AdmissionCore", "AdmissionStats", "Grant", "WindowUsage"]

logger = logging.getLogger("ade_async")

#: The smallest wait the gate answers: keeps float rounding from admitting a hair early.
_TICK = 1e-9


@dataclass(frozen=True, slots=True)
class Grant:
    """One admission: the right to send one create.

    Attributes:
        waiter: the id the waiter joined with.
        admitted_at: when it was admitted (the gate's clock; the Redis server's, in seconds, for a
            shared gate).
        member: the admission's entry in a shared gate's log (``None`` in memory).
    """

    waiter: int
    admitted_at: float
    member: str | None = None


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """How full one window is: ``used`` admissions in the last ``period`` seconds, of ``count``."""

    count: int
    period: float
    used: int


@dataclass(frozen=True, slots=True)
class AdmissionStats:
    """A snapshot of the gate.

    Attributes:
        admitted: admissions so far (refunds subtracted).
        waiting: waiters in the queue now.
        in_flight: admitted and not yet released.
        rate_limited: 429s reported to the gate.
        refunded: admissions handed back (429s, creates that provably never left).
        paused_for: seconds left of the current 429 pause (0 when not paused).
        windows: usage of each configured window.
        adaptive_rate: the adaptive limit in creates per second (``None`` when not adaptive).
        backend: ``"memory"``, or ``"redis"`` for a gate shared through Redis. For a shared gate,
            ``windows``, ``paused_for`` and ``adaptive_rate`` are the shared state (every process's
            admissions), as of the last answer from Redis; the counts above are this process's.
        shared_in_flight: shared gate: leases held by every process (``None`` in memory).
        backend_available: shared gate: whether the last call to Redis succeeded.
        backend_errors: shared gate: failed calls to Redis so far.
        backend_error: shared gate: the last failure, while Redis is unreachable.
        pending_reports: shared gate: reports waiting to reach Redis (bounded).
        reports_dropped: shared gate: reports dropped because Redis stayed unreachable.
    """

    admitted: int
    waiting: int
    in_flight: int
    rate_limited: int
    refunded: int
    paused_for: float
    windows: tuple[WindowUsage, ...]
    adaptive_rate: float | None
    backend: str = "memory"
    shared_in_flight: int | None = None
    backend_available: bool = True
    backend_errors: int = 0
    backend_error: str | None = None
    pending_reports: int = 0
    reports_dropped: int = 0


class _Window:
    """A sliding log of admission times for one ``(count, period)`` quota."""

    __slots__ = ("count", "log", "period", "span")

    def __init__(self, count: int, period: float, margin: float) -> None:
        self.count = count
        self.period = period
        self.span = period + margin  # what the gate enforces
        self.log: deque[float] = deque()

    def prune(self, now: float) -> None:
        horizon = now - self.span
        log = self.log
        while log and log[0] <= horizon:
            log.popleft()

    def wait(self, now: float, on_wire: int = 0) -> float:
        """Seconds until one more admission fits (0 when it fits now). Call after ``prune``.

        ``on_wire`` creates count as now: they never age out, so while they alone fill the
        window the answer is ``inf`` (only an answer makes room).
        """
        excess = len(self.log) + on_wire - self.count
        if excess < 0:
            return 0.0
        if excess >= len(self.log):
            return math.inf
        # The admission that must age out is the (excess)-th oldest in the window. It is out once
        # `t <= now - span` (the test `prune` applies); float rounding can make the difference
        # below round to zero a hair early, so never answer 0 while it is still in.
        oldest = self.log[excess]
        if oldest <= now - self.span:
            return 0.0
        return max(oldest + self.span - now, _TICK)

    def used(self, now: float, on_wire: int = 0) -> int:
        return sum(1 for t in self.log if t > now - self.period) + on_wire

    def log_at(self, now: float) -> None:
        """Add one entry at ``now`` (never earlier than any entry: times only move forward)."""
        self.log.insert(bisect.bisect_right(self.log, now), now)

    def remove(self, admitted_at: float) -> None:
        with contextlib.suppress(ValueError):  # already aged out: nothing to hand back
            self.log.remove(admitted_at)


class _Adaptive:
    """AIMD on a create rate, enforced as a minimum spacing between admissions.

    Slow start: the rate doubles after every ``increase_interval`` of 429-free sending in which
    the rate was what held waiters back, until the first 429; from then on it grows by
    ``increase_step`` per interval. A 429 multiplies it by ``decrease_factor``, once per burst (429s
    answering creates sent before the previous decrease do not count again).
    """

    __slots__ = ("_opts", "clean_since", "last_decrease", "limited", "rate", "slow_start")

    def __init__(self, opts: RateLimit, now: float) -> None:
        self._opts = opts
        self.rate = opts.initial_rate
        self.slow_start = True
        self.clean_since = now
        self.last_decrease = -math.inf
        self.limited = False  # whether the rate held a waiter back since the last change

    @property
    def spacing(self) -> float:
        return 1.0 / self.rate

    def on_accepted(self, now: float) -> None:
        opts = self._opts
        if not self.limited or now - self.clean_since < opts.increase_interval:
            return
        self.rate = min(opts.max_rate, self.rate * 2 if self.slow_start else self.rate + opts.increase_step)
        self.clean_since = now
        self.limited = False

    def on_rate_limited(self, now: float, sent_at: float) -> None:
        if sent_at < self.last_decrease:
            return  # this create left before we slowed down: the decrease already accounts for it
        opts = self._opts
        self.rate = max(opts.min_rate, self.rate * opts.decrease_factor)
        self.slow_start = False
        self.last_decrease = now
        self.clean_since = now
        self.limited = False


class AdmissionCore:
    """The gate's decisions, sans-I/O. Every time is a number on one monotonic scale.

    Args:
        options: the :class:`RateLimit`.
        now: the current time, to start the adaptive clock.
        rng: source of jitter for penalties without ``Retry-After`` (seed it in tests).
    """

    def __init__(self, options: RateLimit, *, now: float, rng: random.Random | None = None) -> None:
        self.options = options
        self._rng = rng or random.Random()
        self._windows = [_Window(c, p, options.safety_margin) for c, p in options.windows]
        self._adaptive = _Adaptive(options, now) if options.is_adaptive else None
        self._queue: deque[int] = deque()
        self._queued: set[int] = set()
        self._last_admitted = -math.inf
        self._paused_until = -math.inf
        self._consecutive_429 = 0
        self._penalized_at = -math.inf  # when the last 429 that counted set a pause
        self._in_flight = 0
        self._admitted = 0
        self._refunded = 0
        self._rate_limited = 0
        # Waiter ids of creates on the wire: out of the logs, counted as now in every window.
        self._on_wire: set[int] = set()

    # --- queue ---------------------------------------------------------------------------------

    def join(self, waiter: int, *, front: bool = False) -> None:
        """Queue a waiter: at the back, or at the front for a create being retried after a 429."""
        if waiter in self._queued:
            raise ValueError(f"waiter {waiter} is already queued")
        self._queued.add(waiter)
        if front:
            self._queue.appendleft(waiter)
        else:
            self._queue.append(waiter)

    def leave(self, waiter: int) -> None:
        """Remove a waiter that gave up before it was admitted (no-op if it is not queued)."""
        if waiter in self._queued:
            self._queued.discard(waiter)
            self._queue.remove(waiter)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    # --- decisions -----------------------------------------------------------------------------

    def poll(
        self, now: float, *, is_live: Callable[[int], bool] | None = None
    ) -> tuple[list[Grant], float | None]:
        """Admit waiters from the head while everything allows it.

        Args:
            now: the current time.
            is_live: says whether a waiter still wants admission; one that gave up is dropped
                from the queue here, without consuming anything.

        Returns:
            The grants made now, in queue order, and when to poll again: an absolute time, or
            ``None`` when nothing is waiting or only a release can make room (the in-flight cap).
        """
        grants: list[Grant] = []
        while self._queue:
            if is_live is not None and not is_live(self._queue[0]):
                self._queued.discard(self._queue.popleft())
                continue
            delay = self.delay(now)
            if delay > 0:
                return grants, (None if math.isinf(delay) else now + delay)
            waiter = self._queue.popleft()
            self._queued.discard(waiter)
            grants.append(self._admit(waiter, now))
        return grants, None

    def delay(self, now: float) -> float:
        """Seconds until one more admission is allowed (``inf`` while the in-flight cap is full)."""
        cap = self.options.max_in_flight
        if cap is not None and self._in_flight >= cap:
            return math.inf
        wait = self._paused_until - now
        on_wire = len(self._on_wire)
        for window in self._windows:
            window.prune(now)
            wait = max(wait, window.wait(now, on_wire))
        adaptive = self._adaptive
        if adaptive is not None:
            spacing_wait = self._last_admitted + adaptive.spacing - now
            if spacing_wait > 0 and spacing_wait >= wait:
                adaptive.limited = True  # the adaptive rate is what holds the head back
            wait = max(wait, spacing_wait)
        return max(0.0, wait)

    def _admit(self, waiter: int, now: float) -> Grant:
        for window in self._windows:
            window.log.append(now)
        self._last_admitted = now
        self._in_flight += 1
        self._admitted += 1
        return Grant(waiter, now)

    # --- feedback ------------------------------------------------------------------------------

    def release(self) -> None:
        """A granted create's job has finished (or the create failed for good): free its slot."""
        if self._in_flight <= 0:
            raise RuntimeError("release() without a matching admission")
        self._in_flight -= 1

    def refund(self, grant: Grant) -> None:
        """Hand an admission back: the server did not count it (429, or it was never sent).

        The admission leaves every window log and the in-flight count.
        """
        if grant.waiter in self._on_wire:
            self._on_wire.discard(grant.waiter)
        else:
            for window in self._windows:
                window.remove(grant.admitted_at)
        self.release()
        self._admitted -= 1
        self._refunded += 1

    def sent(self, grant: Grant) -> None:
        """``grant``'s create is going on the wire: until its answer it counts as now.

        It leaves the logs (where it counted from its admission) for the on-wire set.
        """
        if grant.waiter in self._on_wire:
            return
        for window in self._windows:
            window.remove(grant.admitted_at)
        self._on_wire.add(grant.waiter)

    def settle(self, grant: Grant, now: float) -> None:
        """``grant``'s create has its answer (or is given up on): it counts from ``now``.

        The server counted it when it arrived, between the send and the answer; counting it
        from the answer is the late side, so no window can fill early. The price is one round
        trip per create, against the length of the window.
        """
        if grant.waiter in self._on_wire:
            self._on_wire.discard(grant.waiter)
            for window in self._windows:
                window.log_at(now)

    def on_accepted(self, now: float, grant: Grant | None = None) -> None:
        """A create was accepted (202): 429s are no longer consecutive; adaptive may speed up.

        With ``grant`` (sent through :meth:`sent`), it now counts from ``now`` (:meth:`settle`).
        """
        if grant is not None:
            self.settle(grant, now)
        self._consecutive_429 = 0
        if self._adaptive is not None:
            self._adaptive.on_accepted(now)

    def on_rate_limited(self, now: float, *, retry_after: float | None, sent_at: float) -> float:
        """A create got a 429: pause the whole gate, and slow the adaptive rate.

        Args:
            now: when the 429 arrived.
            retry_after: the server's hint in seconds, if it sent one.
            sent_at: when that create was admitted.

        Returns:
            The gate's pause, in seconds, from ``now``.
        """
        self._rate_limited += 1
        opts = self.options
        # One burst of creates, sent before the pause its first 429 set, draws many 429s at once;
        # counting each as one more "in a row" would escalate the backoff to its cap (two minutes)
        # on a single overshoot. Only a 429 for a create sent after the last pause steps k up; the
        # others draw again at the same step (a bigger overshoot tends to a longer pause, within
        # that step's ceiling).
        if sent_at >= self._penalized_at:
            self._consecutive_429 += 1
            self._penalized_at = now
        if retry_after is not None:
            pause = min(max(retry_after, 0.0), opts.max_retry_after)
        else:
            # Exponential backoff with full jitter (ratelimit-research §3), k = consecutive 429s.
            ceiling = min(opts.penalty_cap, opts.penalty_base * 2 ** (self._consecutive_429 - 1))
            pause = self._rng.uniform(0.0, ceiling)
        self._paused_until = max(self._paused_until, now + pause)
        pause = self._paused_until - now
        if self._adaptive is not None:
            self._adaptive.on_rate_limited(now, sent_at)
        logger.debug(
            "create rate limited (429 #%d in a row): gate paused %.2f s%s",
            self._consecutive_429,
            pause,
            "" if self._adaptive is None else f", adaptive rate now {self._adaptive.rate:.2f}/s",
        )
        return pause

    # --- observability ---------------------------------------------------------------------------

    def stats(self, now: float) -> AdmissionStats:
        """A frozen snapshot of the gate's state."""
        return AdmissionStats(
            admitted=self._admitted,
            waiting=len(self._queue),
            in_flight=self._in_flight,
            rate_limited=self._rate_limited,
            refunded=self._refunded,
            paused_for=max(0.0, self._paused_until - now),
            windows=tuple(
                WindowUsage(w.count, w.period, w.used(now, len(self._on_wire))) for w in self._windows
            ),
            adaptive_rate=None if self._adaptive is None else self._adaptive.rate,
        )
