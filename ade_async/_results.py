"""What a user holds: job handles, typed results, and per-input outcomes of a batch.

Results are typed by the schema they were asked with: ``await client.extract(doc, schema=Invoice)``
gives an ``ExtractResult[Invoice]`` whose :attr:`ExtractResult.value` is an ``Invoice`` (a msgspec
Struct, a dataclass, a TypedDict or a pydantic model); with a JSON Schema dict the value is the
extracted ``dict``. ``result.to(T)`` converts to any other type.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar, cast

import msgspec

from ._engine.futures import settled
from ._engine.types import JobSnapshot, ResultWarning
from ._errors import ADEError, JobTimeoutError, ResultTypeError
from ._inputs import DocumentInput

if TYPE_CHECKING:
    from ._engine.clock import Clock
    from ._engine.watch import JobWatch

__all__ = ["ExtractResult", "Failed", "JobHandle", "Outcome", "Stage", "Succeeded"]

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractResult(Generic[T]):
    """A finished job's extraction.

    Attributes:
        job_id: the job.
        extraction: the extracted values as the vendor sent them, shaped like the schema (a
            ``dict``; a ``list`` for vendors that extract per page or per row).
        extraction_metadata: per-field metadata (references, citations, confidence), when the
            vendor gives it.
        metadata: the vendor's metadata about the extraction (model version, credits...).
        warnings: warnings about the result (fields that did not conform, say).
        schema_violation_error: why the output does not fully conform to the schema, if it
            does not.
        raw: the result document exactly as the command writes it: the extracted values under
            ``extraction``, with the vendor's own answer beside them.
        job: the job as last seen.
        detail: the vendor's own parsed result (a provider's wire model).
        schema_type: the type :attr:`value` converts to (``None``: the ``extraction`` itself).
    """

    job_id: str
    extraction: Any
    job: JobSnapshot = field(repr=False)
    extraction_metadata: Any = None
    metadata: Any = None
    warnings: tuple[ResultWarning, ...] = ()
    schema_violation_error: str | None = None
    raw: bytes = field(default=b"", repr=False)
    detail: Any = field(default=None, repr=False, compare=False)
    schema_type: type[T] | None = field(default=None, repr=False, compare=False)

    @property
    def conforms(self) -> bool:
        """False when the vendor reported the output does not fully conform to the schema."""
        return self.schema_violation_error is None and not self.warnings

    @property
    def value(self) -> T:
        """The extraction as the schema's type (the ``dict`` itself for a JSON Schema).

        Raises:
            ResultTypeError: the extraction does not fit the type.
        """
        if self.schema_type is None:
            return cast(T, self.extraction)
        return self.to(self.schema_type)

    def typed(self, type_: type[U] | None) -> ExtractResult[U]:
        """This result, its :attr:`value` converting to ``type_``."""
        return cast("ExtractResult[U]", dataclasses.replace(self, schema_type=type_))  # type: ignore[arg-type]

    def to(self, type_: type[U]) -> U:
        """The extraction converted to ``type_``: a msgspec Struct, a dataclass, a TypedDict, or a
        pydantic model class.

        Raises:
            ResultTypeError: the extraction does not fit ``type_``.
        """
        validate = getattr(type_, "model_validate", None)
        try:
            if callable(validate):  # a pydantic model class
                converted: U = validate(self.extraction)
                return converted
            return msgspec.convert(self.extraction, type_, strict=False)
        except (msgspec.ValidationError, ValueError, TypeError) as exc:  # pydantic's error is a ValueError
            raise ResultTypeError(
                f"the result of job {self.job_id} does not fit {getattr(type_, '__name__', type_)}: {exc}",
                job_id=self.job_id,
            ) from exc


class JobHandle(Generic[T]):
    """An awaitable handle on one job watched by the client's shared poller.

    ``await handle`` gives the :class:`ExtractResult`, or raises the job's error
    (:class:`JobFailedError`, :class:`JobCancelledError`, :class:`JobLostError`,
    :class:`JobTimeoutError`, :class:`ResultDownloadError`, :class:`ClientClosedError`).
    Any number of tasks may await one handle. Cancelling one of them abandons only that wait:
    the poller and the other waiters carry on, and so does the job; to stop the job itself, call
    :meth:`cancel` (where the vendor can).

    Each handle has its own timeout (``submit(timeout=...)``, ``client.watch(job_id,
    timeout=...)``): past it, awaiting the handle raises :class:`JobTimeoutError`, while other
    handles on the same job keep theirs.

    Attributes:
        reconciled: the create's answer was lost and this job was found by its match key (an
            upload token, a file id) and adopted (no second job was made).
        possible_duplicate: the create was sent again after a search could not find the job of
            an earlier create whose answer was lost: that earlier create may have made a
            second, paid job.
    """

    __slots__ = (
        "_cancel",
        "_clock",
        "_deadline",
        "_schema_type",
        "_timeout",
        "_watch",
        "possible_duplicate",
        "reconciled",
    )

    def __init__(
        self,
        watch: JobWatch,
        *,
        clock: Clock,
        cancel: Callable[[str], Awaitable[JobSnapshot]],
        timeout: float | None = None,
        schema_type: type[T] | None = None,
        reconciled: bool = False,
        possible_duplicate: bool = False,
    ) -> None:
        self._watch = watch
        self._clock = clock
        self._cancel = cancel
        self._timeout = timeout
        self._deadline = None if timeout is None else clock.now() + timeout
        self._schema_type = schema_type
        self.reconciled = reconciled
        self.possible_duplicate = possible_duplicate

    @property
    def job_id(self) -> str:
        return self._watch.job_id

    @property
    def status(self) -> str:
        """The job's status as last seen, in the vendor's spelling (``pending`` until the first
        poll)."""
        return self._watch.status

    @property
    def job(self) -> JobSnapshot | None:
        """The job as last polled, or ``None`` before the first poll."""
        return self._watch.last

    def done(self) -> bool:
        """Whether this handle's outcome is known: the job's result or error, or its timeout."""
        return self._watch.future.done() or (
            self._deadline is not None and self._clock.now() >= self._deadline
        )

    async def cancel(self) -> JobSnapshot:
        """Ask the vendor to cancel the job (its waiters then get :class:`JobCancelledError`).

        Raises:
            UnsupportedOperationError: the vendor cannot cancel jobs (LandingAI ADE cannot).
        """
        return await self._cancel(self.job_id)

    async def result(self) -> ExtractResult[T]:
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
                    f"job {self.job_id} did not end within its {self._timeout:g} s timeout; it may "
                    "still finish server-side: collect it later with client.watch(job_id)",
                    job_id=self.job_id,
                    timeout=self._timeout if self._timeout is not None else math.nan,
                )
        result = await settled(asyncio.shield(future))
        return result.typed(self._schema_type)

    def __await__(self) -> Generator[Any, None, ExtractResult[T]]:
        return self.result().__await__()

    def __repr__(self) -> str:
        state = "done" if self.done() else self.status
        return f"<JobHandle {self.job_id} {state}>"


#: Where an input's processing stopped: reading it, creating its job, the job itself, or a deadline.
Stage: TypeAlias = Literal["read", "submit", "job", "timeout"]


@dataclass(frozen=True, slots=True)
class Succeeded(Generic[T]):
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
    input: DocumentInput
    job_id: str
    result: ExtractResult[T]
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
    input: DocumentInput
    error: ADEError
    stage: Stage
    job_id: str | None = None
    possible_duplicate: bool = False
    ok: Literal[False] = False


#: One outcome per input of ``client.extract_many``.
Outcome: TypeAlias = Succeeded[T] | Failed
