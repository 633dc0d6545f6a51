"""Many inputs, one outcome each: the engine behind ``client.extract_many``.

Inputs are read lazily from a sync or async iterable. At most ``window`` inputs are between "read"
and "outcome delivered" at any time, so 100,000 inputs never sit in memory at once, and a consumer
that stops reading holds everything back (the outcome stream has no buffer). Each input ends with
exactly one :class:`Succeeded` or :class:`Failed`; an input that cannot be read, submitted or
extracted fails alone and takes nothing else with it. If the input iterable itself raises, the
inputs already read still get their outcomes, and then the iterable's error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeAlias

import anyio
import anyio.lowlevel
from anyio.abc import ObjectSendStream

from ._errors import ADEError, CreateOutcomeUnknownError, InputError, JobTimeoutError
from ._inputs import MarkdownInput, check_markdown, read_markdown
from ._results import ExtractResult, Failed, JobHandle, Outcome, Succeeded

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
) -> None:
    """Read, submit and await every input; send each outcome, then a :class:`BatchEnd`.

    Args:
        inputs: paths, ``str`` content or ``bytes`` content.
        submit: creates a job from (content, file name) and returns its handle.
        window: the most inputs in progress at once.
        send: where outcomes go; closed on return.
    """
    async with send:
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
        await send.send(BatchEnd(failure))


async def _one(
    index: int,
    item: MarkdownInput,
    submit: Submit,
    send: ObjectSendStream[BatchItem],
    slots: anyio.Semaphore,
) -> None:
    try:
        await send.send(await _outcome(index, item, submit))
    finally:
        slots.release()


async def _outcome(index: int, item: MarkdownInput, submit: Submit) -> Outcome:
    try:
        content, filename = await read_markdown(item)
        check_markdown(content, filename)
    except InputError as error:
        return Failed(index, item, error, "read")
    except TypeError as error:  # not a path, str or bytes
        return Failed(index, item, InputError(str(error)), "read")
    try:
        handle = await submit(content, filename)
    except CreateOutcomeUnknownError as error:
        return Failed(index, item, error, "submit", possible_duplicate=error.resubmissions > 0)
    except ADEError as error:
        return Failed(index, item, error, "submit")
    duplicate = handle.possible_duplicate
    try:
        result: ExtractResult = await handle
    except JobTimeoutError as error:
        return Failed(index, item, error, "timeout", handle.job_id, possible_duplicate=duplicate)
    except ADEError as error:
        return Failed(index, item, error, "job", handle.job_id, possible_duplicate=duplicate)
    return Succeeded(index, item, handle.job_id, result, handle.reconciled, duplicate)


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
