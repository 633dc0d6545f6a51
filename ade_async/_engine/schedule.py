"""When to poll which job: the poll schedule, sans-I/O.

One heap of ``(due time, job)`` for every job a client watches, and one of deadlines. The async
shell (``_scheduler.PollScheduler``) asks :meth:`PollSchedule.take_due` for the jobs to poll now,
reports each answer back, and sleeps until :meth:`PollSchedule.next_wake`. Nothing here sleeps,
reads a clock or does I/O, so a test can drive 100,000 jobs through hours of schedule in a moment.

Backoff per job: the first poll ``first_delay`` after the job is watched, then each delay
``multiplier`` times the previous, up to ``max_delay``; every delay is scaled by a random factor in
``[1 - jitter, 1 + jitter]`` so jobs created together drift apart. A job that cannot be polled
(a 5xx, a timeout, a dropped connection) backs off the same way. Polls falling due within
``coalesce`` seconds of each other are taken together, so the shell wakes once for them.

Removal is lazy: a job's heap entries carry a generation number, and entries of an older
generation (rescheduled or no longer watched) are skipped when they surface.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass

__all__ = ["PollPolicy", "PollSchedule"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PollPolicy:
    """How the shared poller watches jobs.

    Args:
        first_delay: seconds from submission to the first poll.
        multiplier: each delay is this many times the previous one...
        max_delay: ...up to this many seconds.
        jitter: each delay is scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
        coalesce: polls due within this many seconds of each other go out together.
        max_concurrent: at most this many job GETs in flight at once.
        max_per_second: if set, at most this many job GETs in any rolling second.
        job_timeout: default client-side deadline per job, in seconds (``None``: wait forever).
            When it passes, the job's waiters get :class:`JobTimeoutError`; the job may still
            finish server-side and can be collected later with ``client.wait(job_id)``.
        not_found_confirmations: a job the API stops knowing (404) is declared lost only after
            this many 404s in a row (a fresh job may not be visible yet).
        sweep: while at least ``sweep_threshold`` jobs are watched, learn which are still
            running from the list endpoint (``status=pending`` and ``status=processing``, 100 per
            page) every ``sweep_interval`` seconds, instead of one GET per job; a job missing
            from both lists gets one GET to confirm it ended and fetch its result
            (ratelimit-research §5).
        sweep_threshold: the fewest watched jobs for which sweeping pays.
        sweep_interval: seconds between sweeps.
        sweep_max_pages: pages read per status in one sweep, at least (raised to cover twice the
            jobs watched). The lists hold every job of the API key, other processes' too; past
            this the sweep concludes nothing and per-job polling carries on.
        sweep_min_age: jobs younger than this many seconds are not judged absent (the list lags
            behind writes).

    The defaults follow the official SDK's v2 ``wait()``: 1 s, x1.5, capped at 10 s.
    """

    first_delay: float = 1.0
    multiplier: float = 1.5
    max_delay: float = 10.0
    jitter: float = 0.2
    coalesce: float = 0.25
    max_concurrent: int = 16
    max_per_second: float | None = None
    job_timeout: float | None = 1800.0
    not_found_confirmations: int = 3
    sweep: bool = True
    sweep_threshold: int = 20
    sweep_interval: float = 1.0
    sweep_max_pages: int = 10
    sweep_min_age: float = 1.0

    def __post_init__(self) -> None:
        if not (0 < self.first_delay <= self.max_delay and math.isfinite(self.max_delay)):
            raise ValueError("expected 0 < first_delay <= max_delay (finite)")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.coalesce < 0:
            raise ValueError("coalesce must not be negative")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {self.max_concurrent}")
        if self.max_per_second is not None and self.max_per_second <= 0:
            raise ValueError("max_per_second must be positive or None")
        if self.job_timeout is not None and self.job_timeout <= 0:
            raise ValueError("job_timeout must be positive or None")
        if self.not_found_confirmations < 1:
            raise ValueError("not_found_confirmations must be at least 1")
        if self.sweep_threshold < 1 or self.sweep_max_pages < 1:
            raise ValueError("sweep_threshold and sweep_max_pages must be at least 1")
        if self.sweep_interval <= 0 or self.sweep_min_age < 0:
            raise ValueError("expected sweep_interval > 0 and sweep_min_age >= 0")


class _Watched:
    """The schedule's state for one job (slots keep it small: 100,000 of these are routine)."""

    __slots__ = ("deadline", "delay", "generation", "not_found", "polling")

    def __init__(self, delay: float, deadline: float | None) -> None:
        self.delay = delay
        self.deadline = deadline
        self.generation = 0
        self.not_found = 0
        self.polling = False  # taken by take_due and not yet answered


class PollSchedule:
    """The poll heap of one client.

    Args:
        policy: the poll policy.
        rng: the jitter source (seed it for reproducible schedules).
    """

    def __init__(self, policy: PollPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self._jobs: dict[str, _Watched] = {}
        self._due: list[tuple[float, int, str, int]] = []  # (due, seq, job_id, generation)
        self._deadlines: list[tuple[float, str]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    # --- watching ------------------------------------------------------------------------------

    def watch(
        self, job_id: str, now: float, *, deadline: float | None, first_delay: float | None = None
    ) -> None:
        """Start watching a job: its first poll falls ``first_delay`` (default: the policy's) from now."""
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} is already watched")
        first = self.policy.first_delay if first_delay is None else first_delay
        entry = _Watched(first, deadline)
        self._jobs[job_id] = entry
        self._push(job_id, entry, now + self._jittered(first))
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, job_id))

    def set_deadline(self, job_id: str, deadline: float | None) -> None:
        """Replace a watched job's deadline (``None``: none). The old one goes stale."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return
        entry.deadline = deadline
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, job_id))

    def forget(self, job_id: str) -> None:
        """Stop watching a job (terminal, timed out, or lost). Its heap entries go stale."""
        self._jobs.pop(job_id, None)

    # --- what to do now ---------------------------------------------------------------------------

    def take_due(self, now: float) -> list[str]:
        """Jobs to poll now: every one due by ``now + coalesce``, in due order."""
        horizon = now + self.policy.coalesce
        taken: list[str] = []
        heap = self._due
        while heap and heap[0][0] <= horizon:
            _, _, job_id, generation = heapq.heappop(heap)
            entry = self._jobs.get(job_id)
            if entry is None or entry.generation != generation or entry.polling:
                continue  # stale: forgotten or rescheduled since
            entry.polling = True
            taken.append(job_id)
        return taken

    def claim(self, job_id: str) -> bool:
        """Take one job for polling now, out of turn (a sweep found it gone from the active
        lists). False if it is not watched or already being polled."""
        entry = self._jobs.get(job_id)
        if entry is None or entry.polling:
            return False
        entry.polling = True
        return True

    def is_polling(self, job_id: str) -> bool:
        entry = self._jobs.get(job_id)
        return entry is not None and entry.polling

    def take_expired(self, now: float) -> list[str]:
        """Jobs whose deadline has passed; they are forgotten."""
        expired: list[str] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, job_id = heapq.heappop(heap)
            entry = self._jobs.get(job_id)
            if entry is not None and entry.deadline == deadline:
                del self._jobs[job_id]
                expired.append(job_id)
        return expired

    def next_wake(self) -> float | None:
        """When something next falls due (a poll or a deadline), or ``None`` if nothing will."""
        while self._due:
            _, _, job_id, generation = self._due[0]
            entry = self._jobs.get(job_id)
            if entry is not None and entry.generation == generation and not entry.polling:
                break
            heapq.heappop(self._due)
        while self._deadlines:
            deadline, job_id = self._deadlines[0]
            entry = self._jobs.get(job_id)
            if entry is not None and entry.deadline == deadline:
                break
            heapq.heappop(self._deadlines)
        candidates = [self._due[0][0]] if self._due else []
        if self._deadlines:
            candidates.append(self._deadlines[0][0])
        return min(candidates) if candidates else None

    # --- answers ------------------------------------------------------------------------------------

    def on_running(self, job_id: str, now: float) -> None:
        """The job is not finished: poll it again after the next, longer delay."""
        self._back_off(job_id, now, hint=None, reset_not_found=True)

    def restart(self, job_id: str, now: float) -> None:
        """Poll the job again soon, its backoff reset to ``first_delay`` (no-op while it is polled).

        For jobs whose own polls were pushed far out because sweeps were following them: when
        sweeps stop (too few jobs left to be worth a list), they must not wait out a long delay.
        """
        entry = self._jobs.get(job_id)
        if entry is None or entry.polling:
            return
        entry.delay = self.policy.first_delay
        entry.generation += 1
        self._push(job_id, entry, now + self._jittered(entry.delay))

    def on_failure(self, job_id: str, now: float, *, retry_after: float | None = None) -> None:
        """The poll failed transiently (5xx, timeout, dropped connection, 429): back off and retry."""
        self._back_off(job_id, now, hint=retry_after, reset_not_found=False)

    def on_not_found(self, job_id: str, now: float) -> bool:
        """The API answered 404. Returns True when that is confirmed (the job is lost and forgotten)."""
        entry = self._jobs.get(job_id)
        if entry is None:
            return True
        entry.not_found += 1
        if entry.not_found >= self.policy.not_found_confirmations:
            self.forget(job_id)
            return True
        # Confirm soon, without growing the job's normal backoff.
        entry.polling = False
        entry.generation += 1
        self._push(job_id, entry, now + self._jittered(self.policy.first_delay))
        return False

    # --- internals -------------------------------------------------------------------------------

    def _back_off(self, job_id: str, now: float, *, hint: float | None, reset_not_found: bool) -> None:
        entry = self._jobs.get(job_id)
        if entry is None:
            return
        if reset_not_found:
            entry.not_found = 0
        entry.delay = min(self.policy.max_delay, entry.delay * self.policy.multiplier)
        delay = self._jittered(entry.delay)
        if hint is not None:
            delay = max(delay, hint)
        entry.polling = False
        entry.generation += 1
        self._push(job_id, entry, now + delay)

    def _push(self, job_id: str, entry: _Watched, due: float) -> None:
        heapq.heappush(self._due, (due, next(self._seq), job_id, entry.generation))

    def _jittered(self, delay: float) -> float:
        jitter = self.policy.jitter
        return delay * (1.0 + jitter * (2.0 * self._rng.random() - 1.0)) if jitter else delay
