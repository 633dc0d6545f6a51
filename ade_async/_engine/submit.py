"""One submission, from a staged document to a watched job: create, or find the job of a lost create.

The steps, each told to the caller's progress hook (:class:`~ade_async.CreateProgress`), which the
create waits for (a journal commits there): ``admission`` before each wait for quota, ``sending``
just before each POST (with the create's match key), ``rate_limited`` when a create was answered
429 (it then waits for admission again), ``searching`` when an answer was lost and its job is
looked for, ``created`` once the job id is known.

In-flight slots: a created job holds its create's slot until it is seen to end. A create whose
answer was lost keeps its slot while its job is looked for: found, the slot passes to that job;
not found, it is freed (every candidate was seen to end). If the caller stops waiting, the search
goes on and settles the slot itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import anyio.lowlevel

from .._errors import ADEError, CreateOutcomeUnknownError
from .create import SendPhase
from .events import CreateProgress, JobEvent, ProgressHook
from .reconcile import Found
from .types import Staged

if TYPE_CHECKING:
    from .._results import JobHandle
    from .engine import Engine

__all__ = ["PriorCreate", "submit"]

logger = logging.getLogger("ade_async")

T = TypeVar("T")

#: The most times one input's create is sent again after searches that found nothing.
_MAX_RESUBMISSIONS: Final = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class PriorCreate:
    """Creates an earlier process sent for one document, whose outcome it never learned (a
    journal keeps them): their job is looked for before anything is sent again.

    Attributes:
        match_keys: the match keys those creates carried (see :class:`CreateProgress`).
        sent_at: Unix time the first of them was sent (at the latest).
    """

    match_keys: tuple[str, ...]
    sent_at: float


async def submit(
    engine: Engine,
    staged: Staged,
    *,
    timeout: float | None,
    on_progress: ProgressHook | None,
    resubmit_unknown: bool,
    prior: PriorCreate | None,
    admission_timeout: float | None,
    schema_type: type[T] | None,
) -> JobHandle[T]:
    """Create (or find) the job of ``staged`` and watch it; see the module docstring.

    Once a job exists it is watched before anything can interrupt: if the caller is cancelled
    then (or the ``created`` hook raises), the job is logged and counted as abandoned and
    watched until it ends, never lost unrecorded.
    """
    from .._results import JobHandle

    if staged.file_id or staged.schema_id:  # what the provider prepared: a journal keeps the ids
        await _tell(
            on_progress, CreateProgress(phase="staged", file_id=staged.file_id, schema_id=staged.schema_id)
        )
    deadline = None if admission_timeout is None else engine.clock.now() + admission_timeout
    job_id, reconciled, duplicate = await _create_or_find(
        engine, staged, on_progress, resubmit_unknown, prior, deadline
    )
    watch = engine.watch(job_id, timeout=timeout)
    if not reconciled and watch.alive_at is None:
        watch.alive_at = engine.clock.now()  # just accepted: a new job has not ended
    engine.counters.jobs_submitted += 1
    engine.events.publish(JobEvent(kind="submitted", job_id=job_id, status=watch.status))
    handle: JobHandle[T] = JobHandle(
        watch,
        clock=engine.clock,
        cancel=engine.cancel,
        timeout=timeout,
        schema_type=schema_type,
        reconciled=reconciled,
        possible_duplicate=duplicate,
    )
    try:
        if on_progress is not None:
            with anyio.CancelScope(shield=True):  # the job id must reach a journal
                await on_progress(CreateProgress(phase="created", job_id=job_id))
        await anyio.lowlevel.checkpoint_if_cancelled()
    except BaseException:
        engine.abandoned(job_id)
        raise
    return handle


async def _create_or_find(
    engine: Engine,
    staged: Staged,
    on_progress: ProgressHook | None,
    allow_resubmit: bool,
    prior: PriorCreate | None,
    admission_deadline: float | None,
) -> tuple[str, bool, bool]:
    """The job id, whether it was found rather than created, and whether a create was sent again
    after a search found nothing (a possible duplicate)."""
    keys: list[str] = list(prior.match_keys) if prior is not None else []
    first_sent_at = prior.sent_at if prior is not None else None
    resubmissions = 0
    if prior is not None and prior.match_keys:
        await _tell(on_progress, CreateProgress(phase="searching", match_key=prior.match_keys[-1]))
        found = await engine.reconciler.find(keys, sent_at=prior.sent_at, unknown_at=time.time())
        if isinstance(found, Found):
            engine.adopted(found.job_id, holds_slot=False)  # an earlier process's: no slot here
            return found.job_id, True, False
        if not allow_resubmit:
            raise CreateOutcomeUnknownError(
                f"an earlier run sent the create for {staged.filename} and stopped before its answer; "
                f"{found.report.describe()}, none shows its match key. It was not sent again, to avoid "
                "paying twice: allow it with resubmit_unknown=True (--resubmit-unknown).",
                filename=staged.filename,
                content_sha256=staged.content_sha256,
                sent_at=prior.sent_at,
                cause=ADEError("the process that sent the create stopped before its answer"),
                search=found.report,
                match_key=prior.match_keys[-1],
            )
        resubmissions += 1
        engine.counters.possible_duplicates += 1
    while True:
        request, match_key = engine.provider.create_request(staged)

        async def phase(
            step: SendPhase,
            *,
            retry_after: float | None = None,
            paused_for: float | None = None,
            key: str | None = match_key,
        ) -> None:
            await _tell(
                on_progress,
                CreateProgress(phase=step, match_key=key, retry_after=retry_after, paused_for=paused_for),
            )

        try:
            job_id = await engine.creator.send(
                staged, request, match_key, on_phase=phase, admission_deadline=admission_deadline
            )
        except CreateOutcomeUnknownError as error:
            if match_key is None:
                engine.release_slot()  # nothing to look for, so nothing could settle it
                raise
            keys.append(match_key)
            first_sent_at = error.sent_at if first_sent_at is None else first_sent_at
            await _tell(on_progress, CreateProgress(phase="searching", match_key=match_key))
            found = await engine.reconciler.find(
                keys, sent_at=first_sent_at, unknown_at=time.time(), on_orphaned=engine.orphaned_search
            )
            if isinstance(found, Found):
                engine.adopted(found.job_id, holds_slot=True)
                return found.job_id, True, resubmissions > 0
            engine.release_slot()
            if not allow_resubmit or resubmissions >= _MAX_RESUBMISSIONS:
                raise error.after_search(found.report, resubmissions=resubmissions) from error
            resubmissions += 1
            engine.counters.possible_duplicates += 1
            logger.warning(
                "the job of a lost create for %s was not found (%s); sending it again, as allowed: "
                "it may be paid twice",
                staged.filename,
                found.report.describe(),
            )
            continue
        engine.holds(job_id)
        logger.debug("created job %s", job_id)
        return job_id, False, resubmissions > 0


async def create_once(engine: Engine, staged: Staged) -> str:
    """One create, no search (``client.create_job``): a lost answer raises at once, and frees its
    slot (nothing could ever settle it)."""
    request, match_key = engine.provider.create_request(staged)
    try:
        job_id = await engine.creator.send(staged, request, match_key)
    except CreateOutcomeUnknownError:
        engine.release_slot()
        raise
    engine.holds(job_id)
    return job_id


async def _tell(hook: ProgressHook | None, progress: CreateProgress) -> None:
    if hook is not None:
        await hook(progress)
