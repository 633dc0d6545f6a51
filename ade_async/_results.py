"""What a user holds: job handles, typed results, and per-input outcomes of a batch."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

import msgspec

from ._engine.futures import settled
from ._errors import ADEError, JobTimeoutError, ResultTypeError
from ._inputs import MarkdownInput
from .providers.landingai.wire import (
    ExtractJobStatusResponse,
    ExtractMetadata,
    ExtractResponse,
    ExtractWarning,
)

if TYPE_CHECKING:
    from ._engine.clock import Clock
    from ._engine.scheduler import JobWatch

__all__ = ["ExtractResult", "Failed", "JobHandle", "Outcome", "Stage", "Succeeded"]

T = TypeVar("T")


class ExtractResult(msgspec.Struct, frozen=True, kw_only=True):
    """A job's extraction, typed.

    Attributes:
        job_id: the job.
        response: the extraction response as the API returned it (inline, or downloaded from
            ``output_url``).
        job: the job envelope last seen (status, timestamps, version; ``data`` is ``None`` when the
            result came through ``output_url``).
        raw: the extraction response's JSON exactly as the API sent it (fields this version does
            not model included): what the ``ade-async`` command writes to disk.
    """

    job_id: str
    response: ExtractResponse
    job: ExtractJobStatusResponse
    raw: bytes

    @property
    def extraction(self) -> dict[str, Any]:
        """The extracted values, shaped like the schema."""
        return self.response.extraction

    @property
    def extraction_metadata(self) -> dict[str, Any]:
        """Each extracted value with its references into the Markdown."""
        return self.response.extraction_metadata

    @property
    def metadata(self) -> ExtractMetadata:
        """Model version, duration, credits and warnings."""
        return self.response.metadata

    @property
    def warnings(self) -> tuple[ExtractWarning, ...]:
        """Structured warnings (the API answers 206 when there are any)."""
        return self.response.metadata.warnings

    @property
    def schema_violation_error(self) -> str | None:
        """Why the output does not fully conform to the schema; ``None`` when it does."""
        return self.response.metadata.schema_violation_error

    @property
    def conforms(self) -> bool:
        """False when the API reported the output does not fully conform to the schema (206)."""
        return self.response.conforms

    def to(self, type_: type[T]) -> T:
        """The extraction converted to ``type_``: a msgspec Struct, a dataclass, a TypedDict, or a
        pydantic model class.

        Raises:
            ResultTypeError: the extraction does not fit ``type_``.
        """
        validate = getattr(type_, "model_validate", None)
        try:
            if callable(validate):  # a pydantic model class
                converted: T = validate(self.extraction)
                return converted
            return msgspec.convert(self.extraction, type_, strict=False)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:  # pydantic's error is a ValueError
            raise ResultTypeError(
                f"the result of job {self.job_id} does not fit {getattr(type_, '__name__', type_)}: {exc}",
                job_id=self.job_id,
            ) from exc


class JobHandle:
    """An awaitable handle on one job watched by the client's shared poller.

    ``await handle`` gives the :class:`ExtractResult`, or raises the job's error
    (:class:`JobFailedError`, :class:`JobCancelledError`, :class:`JobLostError`,
    :class:`JobTimeoutError`, :class:`ResultDownloadError`, :class:`ClientClosedError`).
    Any number of tasks may await one handle. Cancelling one of them abandons only that wait:
    the poller and the other waiters carry on, and so does the job (the API cannot cancel jobs).

    Each handle has its own deadline (``submit(deadline=...)``, ``client.wait(job_id,
    deadline=...)``): past it, awaiting the handle raises :class:`JobTimeoutError`, while other
    handles on the same job keep theirs.

    Attributes:
        reconciled: the create's answer was lost and this job was found by its upload token
            and adopted (no second job was made).
        possible_duplicate: the create was sent again after a search could not find the job of
            an earlier create whose answer was lost: that earlier create may have made a
            second, paid job.
    """

    __slots__ = ("_clock", "_deadline", "_timeout", "_watch", "possible_duplicate", "reconciled")

    def __init__(
        self,
        watch: JobWatch,
        *,
        clock: Clock,
        timeout: float | None = None,
        reconciled: bool = False,
        possible_duplicate: bool = False,
    ) -> None:
        self._watch = watch
        self._clock = clock
        self._timeout = timeout
        self._deadline = None if timeout is None else clock.now() + timeout
        self.reconciled = reconciled
        self.possible_duplicate = possible_duplicate

    @property
    def job_id(self) -> str:
        return self._watch.job_id

    @property
    def status(self) -> str:
        """The job's status as last seen (``pending`` until the first poll)."""
        return self._watch.status

    @property
    def job(self) -> ExtractJobStatusResponse | None:
        """The job envelope as last polled, or ``None`` before the first poll."""
        return self._watch.last

    def done(self) -> bool:
        """Whether this handle's outcome is known: the job's result or error, or its deadline."""
        return self._watch.future.done() or (
            self._deadline is not None and self._clock.now() >= self._deadline
        )

    async def result(self) -> ExtractResult:
        """Wait for the job's result (the same as ``await handle``).

        To bound one wait without ending the watch, wrap it: ``with anyio.fail_after(5): ...``.
        """
        future = self._watch.future
        deadline = self._deadline
        if deadline is not None and not future.done():
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def wake(_: object = None) -> None:
                if not woken.done():
                    woken.set_result(None)

            future.add_done_callback(wake)
            timer = self._clock.call_at(deadline, wake)
            try:
                await woken
            finally:
                timer.cancel()
                future.remove_done_callback(wake)
            if not future.done():
                raise JobTimeoutError(
                    f"job {self.job_id} did not end within its {self._timeout:g} s deadline; it may "
                    "still finish server-side: collect it later with client.wait(job_id)",
                    job_id=self.job_id,
                    timeout=self._timeout if self._timeout is not None else math.nan,
                )
        return await settled(asyncio.shield(future))

    def __await__(self) -> Generator[Any, None, ExtractResult]:
        return self.result().__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else self.status
        return f"<JobHandle {self.job_id} {state}>"


#: Where an input's processing stopped: reading it, creating its job, the job itself, or a deadline.
Stage: TypeAlias = Literal["read", "submit", "job", "timeout"]


@dataclass(frozen=True, slots=True)
class Succeeded:
    """An input whose job completed.

    Attributes:
        index: the input's position in the input sequence (0-based).
        input: the input as given.
        job_id: its job.
        result: the extraction.
        reconciled: its create's answer was lost and the job was found and adopted.
        possible_duplicate: its create was sent again after its first job could not be found:
            another, paid job may exist for this input.
    """

    index: int
    input: MarkdownInput
    job_id: str
    result: ExtractResult
    reconciled: bool = False
    possible_duplicate: bool = False
    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class Failed:
    """An input that did not give a result.

    Attributes:
        index: the input's position in the input sequence (0-based).
        input: the input as given.
        error: why.
        stage: ``read`` (the input could not be read), ``submit`` (its job could not be created,
            or the create's outcome is unknown), ``job`` (the job failed, was cancelled or lost,
            or its result could not be downloaded) or ``timeout`` (its deadline passed).
        job_id: its job, when one was created.
        possible_duplicate: its create was sent more than once after answers were lost: more
            than one paid job may exist for this input.
    """

    index: int
    input: MarkdownInput
    error: ADEError
    stage: Stage
    job_id: str | None = None
    possible_duplicate: bool = False
    ok: Literal[False] = False


#: One outcome per input of ``client.extract_many``.
Outcome: TypeAlias = Succeeded | Failed
