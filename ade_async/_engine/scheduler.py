"""The shared poller: ONE task per client watches every job and resolves each job's future.

The decisions (who is due, backoff, deadlines, 404 confirmation) are :class:`PollSchedule`'s; this
is the thin async shell around it. It sleeps on one timer until the next job falls due, takes every
job due together, and sends their GETs concurrently, at most ``max_concurrent`` at a time (and,
optionally, at most ``max_per_second``). Each answer is reported back to the schedule; a job that
ended has its result fetched (from wherever the vendor keeps it) and its future resolved.
There is never one loop per job.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from .._errors import (
    ADEError,
    APIStatusError,
    ClientClosedError,
    JobError,
    JobLostError,
    JobTimeoutError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ResponseTooLargeError,
    TransportError,
    unexpected,
)
from .admission import AdmissionGate
from .clock import Clock, wait_until
from .events import EventBus, JobEvent
from .http import Api
from .ratelimit import RateLimit
from .schedule import PollPolicy, PollSchedule
from .stats import Counters
from .types import JobSnapshot
from .watch import JobWatch, consume

if TYPE_CHECKING:
    from .._results import ExtractResult
    from ..providers import Provider

__all__ = ["JobWatch", "PollScheduler"]

logger = logging.getLogger("ade_async")

#: Garbled answers in a row after which a job's watch gives up with the decoding error.
_GARBLED_LIMIT = 3


class PollScheduler:
    """Watches jobs for one client.

    Args:
        provider: builds each request and reads each answer (gets, active lists, results).
        api: sends them.
        policy: the poll policy.
        clock: the time source.
        rng: jitter source.
        counters: the client's counters (polls are counted here).
        events: where job events are published.
        on_finished: called with a job id once the job was seen to end or was lost (the client
            frees its in-flight slot).
        holds_slot: whether a job holds one of the client's in-flight slots: such a job is
            watched on past its deadline, as an orphan, until it is seen to end.
        retry_statuses: the error statuses after which a poll is tried again (the client's
            ``RetryPolicy.retry_statuses``); any other error status ends the watch with it.
    """

    def __init__(
        self,
        *,
        provider: Provider,
        api: Api,
        policy: PollPolicy,
        clock: Clock,
        rng: random.Random,
        counters: Counters,
        events: EventBus,
        on_finished: Callable[[str], None],
        holds_slot: Callable[[str], bool] = lambda _job_id: False,
        retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504}),
    ) -> None:
        self._provider = provider
        self._api = api
        self._policy = policy
        self._clock = clock
        self._counters = counters
        self._events = events
        self._on_finished = on_finished
        self._holds_slot = holds_slot
        self._retry_statuses = retry_statuses
        self._schedule = PollSchedule(policy, rng)
        self._watches: dict[str, JobWatch] = {}
        self._slots = anyio.Semaphore(policy.max_concurrent)
        self._rate = _read_gate(policy.max_per_second, clock)
        self._wake = anyio.Event()
        self._sleeping_until: float | None = None
        self._closed: ADEError | None = None
        self._next_sweep = -math.inf
        self._sweeping = False
        self._swept = False  # whether sweeps were on at the loop's last turn

    @property
    def watching(self) -> int:
        """Jobs watched now."""
        return len(self._watches)

    def watch(
        self,
        job_id: str,
        *,
        timeout: float | None,
        first_delay: float | None = None,
        orphan: bool = False,
    ) -> JobWatch:
        """Watch a job (or return its existing watch, its deadline extended) and return the watch.

        Args:
            job_id: the job.
            timeout: the new waiter's deadline in seconds from now (``None``: none). A job already
                watched keeps the later of its deadline and this one, and an orphan is taken up
                again: every waiter's own deadline is its handle's business.
            first_delay: seconds to the first poll (default: the policy's).
            orphan: nobody waits: watch only to see the job end (its slot is then freed).
        """
        if self._closed is not None:
            raise self._closed
        now = self._clock.now()
        existing = self._watches.get(job_id)
        if existing is not None:
            if not orphan:
                self._extend(existing, timeout, now)
            return existing
        future: asyncio.Future[ExtractResult[Any]] = asyncio.get_running_loop().create_future()
        future.add_done_callback(consume)
        watch = JobWatch(
            job_id, future, timeout, now, orphan=orphan, status=self._provider.info.created_status
        )
        self._watches[job_id] = watch
        if orphan:
            first_delay = self._policy.max_delay
        elif first_delay is None and self._sweeps_on():
            # Sweeps will see this job end; its own first poll is only the fallback for a sweep
            # that cannot tell (each sweep that lists it as active pushes that poll further out).
            first_delay = max(self._policy.first_delay, 3 * self._policy.sweep_interval)
        self._schedule.watch(job_id, now, deadline=watch.deadline, first_delay=first_delay)
        self._nudge()
        return watch

    def _extend(self, watch: JobWatch, timeout: float | None, now: float) -> None:
        deadline = None if timeout is None else now + timeout
        if watch.orphan:
            watch.orphan = False  # a waiter again: normal polls, events, this deadline
            watch.deadline, watch.timeout = deadline, timeout
            self._schedule.set_deadline(watch.job_id, deadline)
            self._schedule.restart(watch.job_id, now)
            self._nudge()
        elif watch.deadline is not None and (deadline is None or deadline > watch.deadline):
            watch.deadline, watch.timeout = deadline, timeout
            self._schedule.set_deadline(watch.job_id, deadline)

    def close(self, error: ADEError) -> None:
        """Fail every pending watch with ``error``; no new watch is accepted."""
        self._closed = error
        watches, self._watches = self._watches, {}
        for watch in watches.values():
            self._schedule.forget(watch.job_id)
            if not watch.future.done():
                watch.future.set_exception(error)
        if self._rate is not None:
            self._rate.close(error)
        self._wake.set()

    async def run(self) -> None:
        """The poller's one loop. Runs until cancelled (when the client closes)."""
        async with anyio.create_task_group() as polls:
            while self._closed is None:
                now = self._clock.now()
                for job_id in self._schedule.take_expired(now):
                    self._expire(job_id)
                if self._sweep_due(now):
                    self._sweeping = True
                    self._next_sweep = now + self._policy.sweep_interval
                    polls.start_soon(self._sweep, polls)
                sweeps_on = self._sweeps_on()
                if self._swept and not sweeps_on:
                    # Sweeps stopped (few jobs left): the jobs they followed had their own polls
                    # pushed out by each sweep, up to max_delay; bring those back to the start.
                    for job_id in self._watches:
                        self._schedule.restart(job_id, now)
                self._swept = sweeps_on
                for job_id in self._schedule.take_due(now):
                    await self._slots.acquire()  # bounded: at most max_concurrent GETs at once
                    polls.start_soon(self._poll, job_id)
                wake_at = self._schedule.next_wake()
                if self._sweeps_on() and not self._sweeping:
                    wake_at = self._next_sweep if wake_at is None else min(wake_at, self._next_sweep)
                await self._sleep_until(wake_at)

    # --- sweeps ---------------------------------------------------------------------------------------

    def _sweeps_on(self) -> bool:
        return self._policy.sweep and len(self._watches) >= self._policy.sweep_threshold

    def _sweep_due(self, now: float) -> bool:
        return self._sweeps_on() and not self._sweeping and now >= self._next_sweep

    async def _sweep(self, polls: TaskGroup) -> None:
        """Learn from the active lists which watched jobs still run; GET only those that left."""
        try:
            active = await self._active_jobs()
            if active is None:
                return  # inconclusive: per-job polling carries on
            now = self._clock.now()
            gone: list[str] = []
            for job_id, watch in self._watches.items():
                status = active.get(job_id)
                if status is not None:
                    watch.status = status
                    watch.alive_at = now
                    watch.sweep_misses = 0  # visible in the lists (any list lag is over)
                    if not self._schedule.is_polling(job_id):
                        self._schedule.on_running(job_id, now)  # its own poll can wait
                elif watch.sweep_misses < 2 and now - watch.since >= self._policy.sweep_min_age:
                    gone.append(job_id)
            for job_id in gone:
                if job_id in self._watches and self._schedule.claim(job_id):
                    await self._slots.acquire()
                    polls.start_soon(self._poll, job_id, True)
        except ClientClosedError:
            pass
        except Exception:  # a bug: this sweep concludes nothing, per-job polls carry on
            logger.exception("unexpected error during a sweep of the job lists")
        finally:
            self._sweeping = False
            self._wake.set()  # the loop slept without a sweep time while this one ran: replan

    async def _active_jobs(self) -> dict[str, str] | None:
        """Job id -> status of every job still queued or running (the provider's active lists),
        or ``None`` if that is unknowable."""
        active: dict[str, str] = {}
        # Enough pages to cover twice the jobs watched (the lists also hold other processes'
        # jobs), and never fewer than the policy's floor, per active status (two, as a rule).
        max_pages = 2 * max(self._policy.sweep_max_pages, math.ceil(2 * len(self._watches) / 100))
        cursor: str | None = None
        for _ in range(max_pages):
            self._counters.sweep_requests += 1
            request = self._provider.active_request(cursor)
            try:
                page = self._provider.parse_active(request, await self._api.send(request), cursor)
            except (TransportError, APIStatusError) as error:
                logger.debug("sweep abandoned: %s", error)
                return None
            for job in page.jobs:
                active[job.job_id] = job.status
            cursor = page.next_cursor
            if cursor is None:
                return active
        logger.debug("sweep abandoned: more than %d pages of active jobs", max_pages)
        return None

    # --- one poll ----------------------------------------------------------------------------------

    async def _poll(self, job_id: str, confirming: bool = False) -> None:
        try:
            if self._rate is not None:
                await self._rate.acquire()
                self._rate.release()  # a read holds nothing once sent
            self._counters.polls_sent += 1
            try:
                request = self._provider.get_request(job_id)
                job = self._provider.parse_job(request, await self._api.send(request))
            except NotFoundError:
                self._on_not_found(job_id)
            except (TransportError, APIStatusError) as error:
                self._on_poll_error(job_id, error)
            else:
                if confirming and not job.is_terminal:
                    watch = self._watches.get(job_id)
                    if watch is not None:
                        watch.sweep_misses += 1
                await self._on_answer(job_id, job)
        except ClientClosedError:
            pass  # the client is closing: every watch has been failed already
        except Exception as exc:
            # A bug (here, or in code this calls) ends this job's watch with an error its
            # waiters see; the poller and every other job carry on.
            logger.exception("unexpected error while polling job %s", job_id)
            self._schedule.forget(job_id)
            self._settle(job_id, error=unexpected(f"polling job {job_id}", exc))
        finally:
            self._slots.release()
            self._nudge()

    async def _on_answer(self, job_id: str, job: JobSnapshot) -> None:
        watch = self._watches.get(job_id)
        if watch is None:
            return  # timed out while this poll was in flight
        watch.status = job.status
        watch.last = job
        watch.garbled = 0
        if not job.is_terminal:
            watch.alive_at = self._clock.now()
            self._schedule.on_running(job_id, watch.alive_at)
            return
        watch.ended_seen_at = self._clock.now()
        self._schedule.forget(job_id)
        try:
            result = await self._provider.fetch_result(self._api, job)
        except ClientClosedError:
            raise
        except ADEError as error:  # failed, cancelled, or the result could not be fetched
            self._settle(job_id, error=error)
        else:
            self._counters.results_fetched += 1
            self._settle(job_id, result=result)

    def _on_not_found(self, job_id: str) -> None:
        self._counters.poll_failures += 1
        if self._schedule.on_not_found(job_id, self._clock.now()):
            self._settle(
                job_id,
                error=JobLostError(
                    f"job {job_id} is no longer known to the API (404, "
                    f"{self._policy.not_found_confirmations} times in a row)",
                    job_id=job_id,
                ),
            )

    def _on_poll_error(self, job_id: str, error: ADEError) -> None:
        self._counters.poll_failures += 1
        watch = self._watches.get(job_id)
        if isinstance(error, MalformedResponseError) and watch is not None:
            # One garbled answer is noise on the wire; the same answer three times in a row is
            # what the server says about this job, and waiting for the deadline would not help.
            watch.garbled += 1
            if watch.garbled >= _GARBLED_LIMIT:
                self._schedule.forget(job_id)
                self._settle(job_id, error=error)
                return
        if isinstance(error, ResponseTooLargeError) or (
            isinstance(error, APIStatusError) and error.status_code not in self._retry_statuses
        ):
            # 401, 402, 403, 422..., or an answer over the size cap: polling again will not help.
            self._schedule.forget(job_id)
            self._settle(job_id, error=error)
            return
        hint = error.retry_after if isinstance(error, RateLimitError) else None
        logger.debug("poll of job %s failed (%s); backing off", job_id, error)
        self._schedule.on_failure(job_id, self._clock.now(), retry_after=hint)

    def _expire(self, job_id: str) -> None:
        """Every waiter's deadline has passed. A job holding an in-flight slot is watched on, as
        an orphan, until it is seen to end; any other is forgotten."""
        watch = self._watches.get(job_id)
        if watch is None:
            return
        timeout = watch.timeout if watch.timeout is not None else math.nan
        error = JobTimeoutError(
            f"job {job_id} did not end within its {timeout:g} s deadline; it may still finish "
            "server-side: collect it later with client.wait(job_id)",
            job_id=job_id,
            timeout=timeout,
        )
        self._counters.jobs_timed_out += 1
        self._events.publish(JobEvent(kind="timed_out", job_id=job_id, status=watch.status, error=error))
        if self._holds_slot(job_id):
            # Handles time out on their own deadlines; the job keeps its slot until it ends.
            watch.orphan, watch.deadline = True, None
            self._schedule.watch(job_id, self._clock.now(), deadline=None, first_delay=self._policy.max_delay)
            return
        del self._watches[job_id]
        watch.future.set_exception(error)

    def _settle(
        self, job_id: str, *, result: ExtractResult[Any] | None = None, error: ADEError | None = None
    ) -> None:
        watch = self._watches.pop(job_id, None)
        if watch is None:
            return
        self._on_finished(job_id)
        if error is None:
            assert result is not None
            watch.future.set_result(result)
        else:
            watch.future.set_exception(error)
        if watch.orphan:
            return  # nobody waits: its end only freed its slot (counted when it timed out)
        if error is None:
            self._counters.jobs_completed += 1
            self._events.publish(
                JobEvent(
                    kind="completed",
                    job_id=job_id,
                    status=watch.status,
                    detected_within=watch.detected_within,
                )
            )
            return
        self._counters.jobs_failed += 1
        self._events.publish(
            JobEvent(
                kind="failed",
                job_id=job_id,
                status=watch.status,
                error=error,
                detected_within=watch.detected_within,
            )
        )
        if not isinstance(error, JobError):
            logger.debug("job %s: %s", job_id, error)

    # --- the one timer -------------------------------------------------------------------------------

    async def _sleep_until(self, wake_at: float | None) -> None:
        self._wake = anyio.Event()
        self._sleeping_until = wake_at
        try:
            await wait_until(self._clock, self._wake, wake_at)
        finally:
            self._sleeping_until = None

    def _nudge(self) -> None:
        """Wake the loop if something may now be due earlier than it planned to wake."""
        wake_at = self._schedule.next_wake()
        if wake_at is None:
            return
        if self._sleeping_until is None or wake_at < self._sleeping_until:
            self._wake.set()


def _read_gate(per_second: float | None, clock: Clock) -> AdmissionGate | None:
    """A sliding-window gate for poll GETs, reusing the admission gate (no 429 pauses needed)."""
    if per_second is None:
        return None
    window = ((int(per_second), 1.0),) if per_second >= 1 else ((1, 1.0 / per_second),)
    return AdmissionGate(RateLimit(windows=window, adaptive=False, safety_margin=0.0), clock=clock)
