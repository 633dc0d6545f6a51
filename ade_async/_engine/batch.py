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
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeAlias

import anyio
import anyio.lowlevel
from anyio.abc import ObjectSendStream

from .._errors import ADEError, CreateOutcomeUnknownError, InputError, JobTimeoutError, unexpected
from .._inputs import MarkdownInput, check_markdown, read_markdown
from .._results import ExtractResult, Failed, JobHandle, Outcome, Succeeded

__all__ = ["BatchEnd", "BatchItem", "run_batch"]

logger = logging.getLogger("ade_async")


class BatchEnd:
    """Sent after the last outcome: the batch ran to its end (``error``: the iterable's own failure)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


BatchItem: TypeAlias = Outcome | BatchEnd
Submit: TypeAlias = Callable[[bytes, str], Awaitable[JobHandle]]


async def run_batch(
    inputs: Iterable[MarkdownInput] | AsyncIterable[MarkdownInput],
    *,
    submit: Submit,
    window: int,
    send: ObjectSendStream[BatchItem],
) -> BaseException | None:
    """Read, submit and await every input; send each outcome.

    Args:
        inputs: paths, ``str`` content or ``bytes`` content.
        submit: creates a job from (content, file name) and returns its handle.
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
    item: MarkdownInput,
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


async def _outcome(index: int, item: MarkdownInput, submit: Submit) -> Outcome:
    """One input's outcome. Whatever goes wrong stays with this input: an unexpected exception
    (a bug, or an input object that misbehaves) becomes its :class:`Failed` outcome too."""
    try:
        handle = await _read_and_submit(index, item, submit)
    except _Stopped as stop:
        return stop.outcome
    # The input's bytes are gone by now (only the handle is kept while the job runs).
    duplicate = handle.possible_duplicate
    try:
        result: ExtractResult = await handle
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


async def _read_and_submit(index: int, item: MarkdownInput, submit: Submit) -> JobHandle:
    """Read and submit one input; the bytes live only in this frame, which ends with the create's
    answer, so 1,000 inputs in a window never hold 1,000 documents while their jobs run."""
    try:
        content, filename = await read_markdown(item)
        check_markdown(content, filename)
    except InputError as error:
        raise _Stopped(Failed(index, item, error, "read")) from None
    except TypeError as error:  # not a path, str or bytes
        raise _Stopped(Failed(index, item, InputError(str(error)), "read")) from None
    except Exception as exc:
        raise _Stopped(Failed(index, item, unexpected("reading the input", exc), "read")) from None
    try:
        return await submit(content, filename)
    except CreateOutcomeUnknownError as error:
        failed = Failed(index, item, error, "submit", possible_duplicate=error.resubmissions > 0)
    except ADEError as error:
        failed = Failed(index, item, error, "submit")
    except Exception as exc:
        failed = Failed(index, item, unexpected("submitting the input", exc), "submit")
    raise _Stopped(failed)


async def _iterate(
    inputs: Iterable[MarkdownInput] | AsyncIterable[MarkdownInput],
) -> AsyncIterable[MarkdownInput]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item
            await anyio.lowlevel.checkpoint()  # a long sync iterable must not starve the loop
