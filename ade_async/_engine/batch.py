"""Many inputs, one outcome each: the engine behind ``client.extract_many``.

Inputs are read lazily from a sync or async iterable. At most ``window`` inputs are between "read"
and "outcome delivered" at any time, so 100,000 inputs never sit in memory at once, and a consumer
that stops reading holds everything back (the outcome stream has no buffer). Each input ends with
exactly one :class:`Succeeded` or :class:`Failed`; an input that cannot be read, submitted or
extracted fails alone and takes nothing else with it. If the input iterable itself raises, the
inputs already read still get their outcomes, and then the iterable's error is raised. An
unexpected exception while handling one input (a bug, an input object that misbehaves) becomes that
input's :class:`Failed` outcome (an :class:`UnexpectedError` whose ``__cause__`` is the original);
nothing escapes into the client's task group.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, TypeAlias

import anyio
import anyio.lowlevel
from anyio.abc import ObjectSendStream, TaskGroup

from .._errors import (
    ADEError,
    ClientClosedError,
    CreateOutcomeUnknownError,
    InputError,
    JobTimeoutError,
    unexpected,
)
from .._inputs import DocumentInput
from .._options import check_count
from .._results import ExtractResult, Failed, JobHandle, Outcome, Succeeded

__all__ = ["BatchEnd", "BatchItem", "run_batch", "stream"]

logger = logging.getLogger("ade_async")


class BatchEnd:
    """Sent after the last outcome: the batch ran to its end (``error``: the iterable's own failure)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


BatchItem: TypeAlias = Outcome[Any] | BatchEnd
#: Reads, checks and submits one input (``InputError``: it cannot be read or would be refused).
Submit: TypeAlias = Callable[[DocumentInput], Awaitable[JobHandle[Any]]]


def stream(
    inputs: Iterable[DocumentInput] | AsyncIterable[DocumentInput],
    *,
    submit: Submit,
    window: int | None,
    default_window: int,
    task_group: TaskGroup,
) -> AsyncGenerator[Outcome[Any], None]:
    """``client.extract_many``: run the batch in ``task_group`` (the client's) and yield its
    outcomes to this caller as jobs end, ``window`` (or ``default_window``) at most in progress.

    The arguments are checked here, at the call, before anything starts (this is not itself a
    generator function): a mistake is this caller's alone.

    Nothing of the batch may escape into the task group: a failure of the batch machinery is
    this caller's alone, raised after the outcomes before it. Leaving early abandons work in
    progress; creates already on the wire still land (the engine finishes them).
    """
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Iterable | AsyncIterable):
        raise TypeError("inputs must be an iterable of inputs; wrap a single input in a list")
    check_count("window", window, allow_none=True)
    return _stream(inputs, submit, window or default_window, task_group)


async def _stream(
    inputs: Iterable[DocumentInput] | AsyncIterable[DocumentInput],
    submit: Submit,
    window: int,
    task_group: TaskGroup,
) -> AsyncGenerator[Outcome[Any], None]:
    send, receive = anyio.create_memory_object_stream[BatchItem](0)
    scope = anyio.CancelScope()

    async def feed() -> None:
        with scope:
            async with send:
                try:
                    failure = await run_batch(inputs, submit=submit, window=window, send=send)
                except Exception as exc:
                    logger.exception("extract_many failed")
                    failure = unexpected("running extract_many", exc)
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await send.send(BatchEnd(failure))

    task_group.start_soon(feed, name="ade_async extract_many")
    try:
        async with receive:
            async for item in receive:
                if isinstance(item, BatchEnd):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        raise ClientClosedError("The client was closed before every input of extract_many had its outcome.")
    finally:
        scope.cancel()


async def run_batch(
    inputs: Iterable[DocumentInput] | AsyncIterable[DocumentInput],
    *,
    submit: Submit,
    window: int,
    send: ObjectSendStream[BatchItem],
) -> BaseException | None:
    """Read, submit and await every input; send each outcome.

    Args:
        inputs: paths, ``str`` content or ``bytes`` content.
        submit: reads one input and creates its job; returns its handle (``InputError``: the
            input could not be read or would be refused).
        window: the most inputs in progress at once.
        send: where outcomes go (the caller closes it and sends the :class:`BatchEnd`).

    Returns:
        The input iterable's own failure, raised after every input read before it has its
        outcome; ``None`` when it ran to its end.
    """
    slots = anyio.Semaphore(window)
    failure: BaseException | None = None
    async with anyio.create_task_group() as items:
        try:
            index = 0
            async for item in _iterate(inputs):
                await slots.acquire()
                items.start_soon(_one, index, item, submit, send, slots)
                index += 1
        except Exception as exc:  # the iterable itself failed: finish what was read first
            failure = exc
    return failure


async def _one(
    index: int,
    item: DocumentInput,
    submit: Submit,
    send: ObjectSendStream[BatchItem],
    slots: anyio.Semaphore,
) -> None:
    try:
        outcome = await _outcome(index, item, submit)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send.send(outcome)  # the consumer left: nobody to tell
    finally:
        slots.release()


async def _outcome(index: int, item: DocumentInput, submit: Submit) -> Outcome[Any]:
    """One input's outcome. Whatever goes wrong stays with this input: an unexpected exception
    (a bug, or an input object that misbehaves) becomes its :class:`Failed` outcome too."""
    try:
        handle = await _read_and_submit(index, item, submit)
    except _Stopped as stop:
        return stop.outcome
    # The input's bytes are gone by now (only the handle is kept while the job runs).
    duplicate = handle.possible_duplicate
    try:
        result: ExtractResult[Any] = await handle
    except JobTimeoutError as error:
        return Failed(index, item, error, "timeout", handle.job_id, possible_duplicate=duplicate)
    except ADEError as error:
        return Failed(index, item, error, "job", handle.job_id, possible_duplicate=duplicate)
    except Exception as exc:
        bug = unexpected(f"waiting for job {handle.job_id}", exc)
        return Failed(index, item, bug, "job", handle.job_id, possible_duplicate=duplicate)
    return Succeeded(index, item, handle.job_id, result, handle.reconciled, duplicate)


class _Stopped(Exception):
    """An input's processing ended before its job existed; ``outcome`` says how."""

    def __init__(self, outcome: Failed) -> None:
        super().__init__()
        self.outcome = outcome


async def _read_and_submit(index: int, item: DocumentInput, submit: Submit) -> JobHandle[Any]:
    """Read and submit one input; the bytes live only in ``submit``'s frame, which ends with the
    create's answer, so 1,000 inputs in a window never hold 1,000 documents while their jobs run."""
    try:
        return await submit(item)
    except InputError as error:
        failed = Failed(index, item, error, "read")
    except TypeError as error:  # not a path, str or bytes
        failed = Failed(index, item, InputError(str(error)), "read")
    except CreateOutcomeUnknownError as error:
        failed = Failed(index, item, error, "submit", possible_duplicate=error.resubmissions > 0)
    except ADEError as error:
        failed = Failed(index, item, error, "submit")
    except Exception as exc:
        failed = Failed(index, item, unexpected("submitting the input", exc), "submit")
    raise _Stopped(failed)


async def _iterate(
    inputs: Iterable[DocumentInput] | AsyncIterable[DocumentInput],
) -> AsyncIterable[DocumentInput]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item
            await anyio.lowlevel.checkpoint()  # a long sync iterable must not starve the loop
