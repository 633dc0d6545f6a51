"""The engine: one running client's admission gate, create sender, poller and search, wired.

It knows no vendor: every request comes from the :class:`~ade_async.providers.Provider` and every
answer is read by it. Data flows one way through it::

    document -> stage -> admission -> create -> watch -> polls (sweeps) -> result -> future

The engine also keeps the **slot ledger**: a job this client created holds one of the in-flight
slots (``RateLimit.max_in_flight``) until it is seen to end, however that is seen (the poller,
a read through :meth:`Engine.get`, the search for the job of a lost create); nothing else frees
a slot. Creates whose caller left are finished here: their jobs are watched as orphans and
reported as abandoned (``stats().abandoned_job_ids``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
from anyio.abc import TaskGroup

from .._errors import ADEError, ClientClosedError, CreateOutcomeUnknownError
from .admission import Admission
from .budgets import CREATE, Budgets
from .clock import Clock
from .create import CreateSender
from .events import EventBus
from .http import Api, HttpRequest, Response, Transport
from .ratelimit import RateLimit
from .reconcile import Found, NotFound, ReconcilePolicy
from .reconciler import Reconciler
from .retry import RetryPolicy, read_retry_delay
from .schedule import PollPolicy
from .scheduler import PollScheduler
from .stats import ClientStats, Counters
from .types import JobPage, JobSnapshot
from .watch import JobWatch

if TYPE_CHECKING:
    from .._results import ExtractResult
    from ..providers import Provider

__all__ = ["Engine", "EngineConfig", "run_engine"]

logger = logging.getLogger("ade_async")

_T = TypeVar("_T")

#: How long closing may take to tidy up (the transport), even when the closing task is cancelled.
_CLOSE_TIMEOUT: Final = 5.0


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """What a client configures its engine with (``Client.__init__`` resolves it).

    Attributes:
        provider: the vendor's translator.
        rate_limit: the ``create`` budget's.
        budget_limits: the provider's other budgets' (``upload``...), by name.
        retry, poll, reconcile: the client's policies.
        clock: the time source.
        rng: the jitter source.
        key_fingerprint: names a shared quota after the key without showing it.
        counters: the client's running totals (they outlive each engine).
        events: where job events are published.
    """

    provider: Provider
    rate_limit: RateLimit
    budget_limits: Mapping[str, RateLimit]
    retry: RetryPolicy
    poll: PollPolicy
    reconcile: ReconcilePolicy
    clock: Clock
    rng: random.Random
    key_fingerprint: str
    counters: Counters
    events: EventBus


@asynccontextmanager
async def run_engine(config: EngineConfig, transport: Transport) -> AsyncIterator[Engine]:
    """Open ``transport``, run an engine in a task group of its own, and, on leaving, fail every
    waiter with :class:`ClientClosedError`, stop every task and close the transport (within
    ``_CLOSE_TIMEOUT`` even if the closing task is cancelled). An error from the body comes out
    as itself, not wrapped in an ``ExceptionGroup``."""
    await transport.open()
    error: BaseException | None = None
    try:
        async with anyio.create_task_group() as task_group:
            engine = Engine(config, api=Api(transport), task_group=task_group)
            try:
                yield engine
            except GeneratorExit:
                raise
            except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
                error = exc
            finally:
                engine.close()
                task_group.cancel_scope.cancel()
    finally:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            await transport.close()
    if error is not None:
        raise error


class Engine:
    """Everything that exists while a client is open (see the module docstring).

    Args:
        config: the client's configuration.
        api: HTTP through the client's transport.
        task_group: the task group the engine's tasks (poller, search, the shared gate's driver,
            creates on the wire) run in.
    """

    def __init__(self, config: EngineConfig, *, api: Api, task_group: TaskGroup) -> None:
        provider, rate_limit, retry, poll = config.provider, config.rate_limit, config.retry, config.poll
        reconcile, clock, rng, counters = config.reconcile, config.clock, config.rng, config.counters
        events, key_fingerprint = config.events, config.key_fingerprint
        self.provider = provider
        self.api = api
        api.retry_reads_with(self.read)
        self.task_group = task_group
        self.retry = retry
        self.reconcile_policy = reconcile
        self.clock = clock
        self.rng = rng
        self.counters = counters
        self.events = events
        # Jobs this client created (or adopted for a lost create of its own) that hold a slot.
        self.unfinished: set[str] = set()
        self.budgets = Budgets(
            {CREATE: rate_limit, **config.budget_limits},
            provider=provider.info.name,
            clock=clock,
            rng=rng,
            key_fingerprint=key_fingerprint,
            task_group=task_group,
        )
        self.gate: Admission = self.budgets.gate(CREATE)
        api.admit_with(lambda budget, request: self.budgets.send(api, budget, request))
        self.creator = CreateSender(
            provider=provider,
            api=api,
            gate=self.gate,
            retry=retry,
            clock=clock,
            rng=rng,
            counters=counters,
            spawn=task_group.start_soon,
            on_orphan=self._orphaned_create,
        )
        self.scheduler = PollScheduler(
            provider=provider,
            api=api,
            policy=poll,
            clock=clock,
            rng=rng,
            counters=counters,
            events=events,
            on_finished=self.finished,
            holds_slot=self.unfinished.__contains__,
            retry_statuses=retry.retry_statuses,
        )
        self.reconciler = Reconciler(
            policy=reconcile,
            list_page=self.recent_page,
            get_job=self.get,
            clock=clock,
            counters=counters,
        )
        task_group.start_soon(self.scheduler.run, name="ade_async poller")
        task_group.start_soon(self.reconciler.run, name="ade_async reconciler")

    def close(self) -> None:
        """Fail every waiter (admission, jobs, searches) with :class:`ClientClosedError`."""
        self.budgets.close(ClientClosedError("The client was closed while this call waited for admission."))
        self.scheduler.close(ClientClosedError("The client was closed before this job ended."))
        self.reconciler.close(
            ClientClosedError("The client was closed while it looked for the job of a lost create.")
        )

    def describe(self) -> str:
        """What a client's repr shows of its engine."""
        s = self.gate.stats()
        return (
            f"admitted={s.admitted} in_flight={s.in_flight} waiting={s.waiting} "
            f"watched={self.scheduler.watching} 429s={s.rate_limited}"
        )

    def stats(self) -> ClientStats:
        return ClientStats.snapshot(self.counters, self.budgets.stats(), watched=self.scheduler.watching)

    # --- reads --------------------------------------------------------------------------------------

    async def read(self, request: HttpRequest) -> Response:
        """Send a read (get, list), retrying it under the retry policy."""
        return await self._retried_call(lambda: self.api.send(request))

    async def get(self, job_id: str) -> JobSnapshot:
        """One job, as it is now. A job this client created that is seen to end frees its slot."""
        request = self.provider.get_request(job_id)
        job = self.provider.parse_job(request, await self.read(request))
        if job.is_terminal:
            self.finished(job_id)
        return job

    async def list_page(self, *, status: str | None, page_size: int, cursor: str | None) -> JobPage:
        request = self.provider.list_request(status=status, page_size=page_size, cursor=cursor)
        return self.provider.parse_list(request, await self.read(request), cursor)

    async def recent_page(self, cursor: str | None) -> JobPage:
        """One page of every job, newest first (where the job of a lost create is looked for)."""
        request = self.provider.recent_request(cursor)
        return self.provider.parse_recent(request, await self.read(request), cursor)

    async def result(self, job: JobSnapshot) -> ExtractResult[Any]:
        """A finished job's result (seeing the job ended frees its slot)."""
        if job.is_terminal:
            self.finished(job.job_id)
        return await self.provider.fetch_result(self.api, job)

    async def cancel(self, job_id: str) -> JobSnapshot:
        """Ask the vendor to cancel the job (the provider says whether it can)."""
        job = await self.provider.cancel(self.api, job_id)
        if job.is_terminal:
            self.finished(job_id)
        return job

    async def _retried_call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a read, retrying it under the retry policy (the thin shell of read_retry_delay)."""
        started = self.clock.now()
        attempt = 0
        while True:
            attempt += 1
            self.counters.reads_sent += 1
            try:
                return await call()
            except ClientClosedError:
                raise
            except ADEError as error:
                elapsed = self.clock.now() - started
                delay = read_retry_delay(self.retry, error, attempt=attempt, elapsed=elapsed, rng=self.rng)
                if delay is None:
                    raise
                self.counters.read_retries += 1
                logger.debug("read failed (%s); retry %d in %.2f s", error, attempt, delay)
                await self.clock.sleep_until(self.clock.now() + delay)

    # --- watching -----------------------------------------------------------------------------------

    def watch(
        self, job_id: str, *, timeout: float | None, first_delay: float | None = None, orphan: bool = False
    ) -> JobWatch:
        """Watch a job on the shared poller (see :meth:`PollScheduler.watch`)."""
        watch = self.scheduler.watch(job_id, timeout=timeout, first_delay=first_delay, orphan=orphan)
        self.reconciler.note_known((job_id,))
        return watch

    # --- the slot ledger ----------------------------------------------------------------------------

    def holds(self, job_id: str) -> None:
        """A job this client created (or the job of its lost create) takes its create's slot."""
        self.unfinished.add(job_id)
        self.reconciler.note_known((job_id,))

    def finished(self, job_id: str) -> None:
        """A job was seen to end: the slot it held, if any, is free again."""
        if job_id in self.unfinished:
            self.unfinished.discard(job_id)
            self.release_slot()

    def release_slot(self) -> None:
        """Free one slot: its job ended, or provably never existed."""
        self.gate.release()

    def adopted(self, job_id: str, *, holds_slot: bool) -> None:
        """The job of a lost create was found."""
        self.counters.creates_reconciled += 1
        if holds_slot:
            self.holds(job_id)  # the lost create's slot passes to its job
        logger.info("found the job %s of a create whose answer was lost; adopted it", job_id)

    def abandoned(self, job_id: str) -> None:
        """A job exists whose caller stopped waiting: say so, and keep its id (it is paid)."""
        self.counters.jobs_abandoned += 1
        self.counters.abandoned.append(job_id)
        logger.warning(
            "job %s was created after its caller stopped waiting (e.g. extract_many was left early); "
            "it runs server-side and is watched until it ends: collect it with client.watch(%r)",
            job_id,
            job_id,
        )

    def orphaned_search(self, outcome: Found | NotFound) -> None:
        """A search whose caller stopped waiting has ended: settle its create's slot."""
        if isinstance(outcome, NotFound):
            self.release_slot()
            return
        self.adopted(outcome.job_id, holds_slot=True)
        self.watch(outcome.job_id, timeout=None, orphan=True)
        self.abandoned(outcome.job_id)

    def _orphaned_create(self, job_id: str | None, unknown: CreateOutcomeUnknownError | None) -> None:
        """The answer of a create whose caller left came: keep its job, or look for it."""
        if job_id is not None:
            self.holds(job_id)
            self.watch(job_id, timeout=None, orphan=True)
            self.abandoned(job_id)
            return
        if unknown is None or unknown.match_key is None:
            self.release_slot()  # nothing to look for, so nothing could settle it
            return
        match_key, sent_at = unknown.match_key, unknown.sent_at

        async def search() -> None:
            try:
                found = await self.reconciler.find((match_key,), sent_at=sent_at, unknown_at=time.time())
            except ClientClosedError:
                return
            except Exception:  # a bug: never into the client's task group
                logger.exception("looking for the job of an abandoned create failed")
                return
            self.orphaned_search(found)

        self.task_group.start_soon(search, name="ade_async orphaned search")
