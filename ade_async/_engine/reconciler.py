"""The async shell of :class:`~ade_async._reconcile.ReconcileBook`: one task per client that scans
the job list and fetches candidates for every create whose answer was lost.

One scan (newest first, page by page, stopping at a page older than every search's window)
serves all pending searches, at most every ``list_interval`` seconds: the list lags and is paged,
and hammering it would only spend the read budget. Candidates are fetched with the client's own
retried reads. A failed scan or fetch is logged and tried again at the next scan; it never ends a
search early.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import anyio

from .._errors import ADEError, ClientClosedError, NotFoundError
from .clock import Clock, wait_until
from .futures import settled
from .reconcile import Candidate, Found, NotFound, ReconcileBook, ReconcilePolicy
from .stats import Counters
from .types import JobPage, JobSnapshot

__all__ = ["Reconciler"]

logger = logging.getLogger("ade_async")

ListPage = Callable[[str | None], Awaitable[JobPage]]
GetJob = Callable[[str], Awaitable[JobSnapshot]]


class Reconciler:
    """Looks for the jobs of creates whose outcome is unknown. :meth:`run` is its one task."""

    def __init__(
        self,
        *,
        policy: ReconcilePolicy,
        list_page: ListPage,
        get_job: GetJob,
        clock: Clock,
        counters: Counters,
    ) -> None:
        self.book = ReconcileBook(policy)
        self._list_page = list_page
        self._get_job = get_job
        self._clock = clock
        self._counters = counters
        self._waiters: dict[int, asyncio.Future[Found | NotFound]] = {}
        self._wake = anyio.Event()
        self._closed: ADEError | None = None
        self._scan_error: str | None = None  # while scans fail: one warning per outage

    def note_known(self, job_ids: Iterable[str]) -> None:
        """Jobs this client created, adopted or watches: never candidates."""
        wall = time.time()
        for job_id in job_ids:
            self.book.note_known(job_id, wall=wall)

    async def find(
        self,
        match_keys: Iterable[str],
        *,
        sent_at: float,
        unknown_at: float,
        on_orphaned: Callable[[Found | NotFound], None] | None = None,
    ) -> Found | NotFound:
        """Search until the job showing one of ``match_keys`` is found or the search ends.

        Args:
            match_keys: the match keys of every create sent for this input.
            sent_at: Unix time the first of those creates was sent.
            unknown_at: Unix time its outcome became unknown (or the process died).
            on_orphaned: if the caller stops waiting (it is cancelled), the search goes on and
                this is called with its outcome (the client settles the create's in-flight slot
                with it); without it, the search stops with its caller.
        """
        if self._closed is not None:
            raise self._closed
        keys = tuple(match_keys)
        known = self.book.recall(keys)
        if known is not None:
            return known
        key = self.book.start(keys, sent_at=sent_at, unknown_at=unknown_at, now=self._clock.now())
        future: asyncio.Future[Found | NotFound] = asyncio.get_running_loop().create_future()
        self._waiters[key] = future
        self._wake.set()
        try:
            return await settled(asyncio.shield(future))  # cancelling the caller leaves the search
        finally:
            if future.done() or on_orphaned is None or self._closed is not None:
                if self._waiters.pop(key, None) is not None:  # closed, or nobody needs it: stop
                    self.book.cancel(key)
            else:
                future.add_done_callback(functools.partial(_hand_over, on_orphaned))

    def close(self, error: ADEError) -> None:
        """Fail every pending search with ``error``; no new search is accepted."""
        self._closed = error
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._wake.set()

    async def run(self) -> None:
        """The one loop: scan when due, resolve what the scan found, sleep until the next step."""
        while self._closed is None:
            now = self._clock.now()
            if self.book.scan_due(now):
                await self._scan(now)
            self._settle(self.book.expire(now=self._clock.now(), wall=time.time()))
            await self._sleep_until(self.book.next_wake(self._clock.now()))

    async def _scan(self, now: float) -> None:
        oldest = self.book.oldest_wanted()
        seen: list[Candidate] = []
        wall = time.time()
        try:
            cursor: str | None = None
            for _ in range(self.book.policy.max_pages):
                self._counters.reconcile_requests += 1
                listing = await self._list_page(cursor)
                seen.extend(_candidate(job, wall) for job in listing.jobs)
                # Newest first, as the vendors list: a page entirely older than every window ends
                # the scan. Were the order different, the scan would only read more pages, never
                # conclude wrongly: the match key decides.
                cursor = listing.next_cursor
                if cursor is None or not listing.jobs:
                    break
                if oldest is not None and all(_candidate(j, wall).created_at < oldest for j in listing.jobs):
                    break
        except ClientClosedError:
            raise
        except Exception as error:  # ADEError, or a bug: either way this scan learned nothing
            if self._scan_error is None:
                logger.warning(
                    "cannot read the job list to look for the jobs of lost creates (%s); "
                    "trying again every %g s",
                    error,
                    self.book.policy.list_interval,
                    exc_info=not isinstance(error, ADEError),
                )
            self._scan_error = f"{type(error).__name__}: {error}"
            self.book.on_scan_failed(self._scan_error, now=now)
            return
        if self._scan_error is not None:
            logger.warning("the job list can be read again")
            self._scan_error = None
        to_fetch, found = self.book.on_listing(seen, now=now)
        self._settle(found)
        for job_id in to_fetch:
            self._counters.reconcile_requests += 1
            try:
                job = await self._get_job(job_id)
            except NotFoundError:
                self.book.on_vanished(job_id)
                continue
            except ClientClosedError:
                raise
            except Exception as error:  # ADEError, or a bug: fetched again after the next scan
                logger.debug("reconcile fetch of %s failed (%s)", job_id, error)
                self.book.on_fetch_failed(job_id)  # fetched again after the next scan
                continue
            self._settle(self.book.on_job(job_id, ended=job.is_terminal, match_key=job.match_key))

    def _settle(self, ended: Iterable[tuple[int, Found | NotFound]]) -> None:
        for key, outcome in ended:
            future = self._waiters.pop(key, None)
            if future is not None and not future.done():
                future.set_result(outcome)

    async def _sleep_until(self, wake_at: float | None) -> None:
        self._wake = anyio.Event()
        await wait_until(self._clock, self._wake, wake_at)


def _hand_over(
    on_orphaned: Callable[[Found | NotFound], None], future: asyncio.Future[Found | NotFound]
) -> None:
    """An orphaned search ended: pass its outcome on (a closed client's searches end unheard)."""
    if not future.cancelled() and future.exception() is None:
        on_orphaned(future.result())


def _candidate(job: JobSnapshot, wall: float) -> Candidate:
    # A vendor that does not say when a job was created: taken as now, so it is looked at.
    created_at = job.created_at if job.created_at is not None else wall
    return Candidate(job.job_id, job.is_terminal, created_at, job.match_key)
