"""The normalised types the engine works on, whatever the vendor.

A provider translates its vendor's answers into these, and the engine (admission, create sender,
poller, lost-create search, batch) never sees a vendor's field names or status spellings:

:class:`JobState`
    where a job is: queued, running, succeeded, failed, cancelled, or unknown (a status this
    version does not know: never terminal, so it is polled on until a deadline).
:class:`JobSnapshot`
    one look at a job: its id, state, the vendor's raw status string, progress (0 to 1) if the
    vendor reports it, failure reason, timestamps, where its result is, the key that ties it to
    the create that made it (``match_key``), and the vendor's own parsed answer (``detail``).
:class:`JobPage`
    one page of a listing, with an opaque cursor to the next.
:class:`Staged`
    what a create needs that was prepared before it: the document's bytes or an uploaded file's
    id, a registered schema's id, the checked schema, the vendor's options.
:class:`ResultWarning`
    one warning about a result (a field that did not conform, say).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .._errors import JobCancelledError, JobFailedError, JobNotFinishedError

__all__ = [
    "JobPage",
    "JobSnapshot",
    "JobState",
    "ResultLocation",
    "ResultWarning",
    "Staged",
    "raise_unless_succeeded",
]


class JobState(enum.Enum):
    """A job's state, in the engine's words."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: A status this version does not know: never terminal.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """Whether the job will never change again."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

#: Where a finished job's result is: in the job's own answer (``inline``), behind a URL to
#: download (``url``), or at an endpoint of its own (``endpoint``); ``None`` while it has none.
ResultLocation: TypeAlias = Literal["inline", "url", "endpoint"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSnapshot:
    """One look at one job.

    Attributes:
        job_id: the job.
        state: its state (:class:`JobState`).
        status: the vendor's own status string, kept as sent (``"completed"``, ``"RUNNING"``...).
        progress: how far along it is, from 0 to 1, if the vendor says.
        failure_reason: why it failed, if the vendor says.
        created_at: when the vendor received it, in Unix seconds (the server's clock), if known.
        updated_at: when it last changed, in Unix seconds, if known.
        result_at: where its result is, once it has one.
        match_key: what ties it to the create that made it (an upload token, a file id), when
            this answer shows it: how the job of a create whose answer was lost is recognised.
        detail: the vendor's own parsed answer (a provider's wire model), for what only that
            vendor has.
        body: the answer exactly as sent, when a provider needs it again (the exact JSON of a
            result that came inline).
    """

    job_id: str
    state: JobState
    status: str
    progress: float | None = None
    failure_reason: str | None = None
    created_at: float | None = None
    updated_at: float | None = None
    result_at: ResultLocation | None = None
    match_key: str | None = None
    detail: Any = field(default=None, repr=False, compare=False)
    body: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self.state.is_terminal


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs, and the cursor of the next page (``None`` after the last)."""

    jobs: tuple[JobSnapshot, ...]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Staged:
    """What a provider prepared for a create, before it: everything the create request needs.

    Attributes:
        filename: the document's name (for uploads, and for messages).
        content: the document's bytes, when the create carries them (LandingAI ADE).
        file_id: the id of an uploaded file, when the vendor takes an upload first.
        schema: the checked schema, as the provider will send it.
        schema_id: the id of a registered schema, when the vendor registers schemas first.
        options: the vendor's options (a provider's own options object).
        content_sha256: hex SHA-256 of the document, for messages and audits.
    """

    filename: str
    schema: Any
    content: bytes | None = field(default=None, repr=False)
    file_id: str | None = None
    schema_id: str | None = None
    options: Any = None
    content_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ResultWarning:
    """One warning about a result, as the vendor gave it (``code``, and a message)."""

    code: str
    msg: str = ""


def raise_unless_succeeded(job: JobSnapshot) -> None:
    """Raise the job error that says why ``job`` has no result, unless it succeeded.

    Raises:
        JobFailedError: it failed (``failure_reason`` says why, when the vendor does).
        JobCancelledError: it was cancelled.
        JobNotFinishedError: it has not ended.
    """
    if job.state is JobState.SUCCEEDED:
        return
    if job.state is JobState.FAILED:
        reason = job.failure_reason or "no reason given"
        raise JobFailedError(
            f"job {job.job_id} failed: {reason}", job_id=job.job_id, failure_reason=job.failure_reason
        )
    if job.state is JobState.CANCELLED:
        raise JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id)
    raise JobNotFinishedError(
        f"job {job.job_id} has no result yet (status {job.status!r})", job_id=job.job_id, status=job.status
    )
