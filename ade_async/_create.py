"""Sending one create through the admission gate, under the create retry rules.

The shell around :func:`ade_async._retry.create_verdict`: wait for admission, send, and act on
the verdict. A 429 refunds the admission, pauses the gate for every waiter and sends again from the
head of the queue, without using the retry budget. An error that proves nothing was created is
retried within the budget. An unknown outcome is never retried: it raises
:class:`CreateOutcomeUnknownError`, keeping the admission counted (the server may have counted it).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable

from ._admission import Admission
from ._clock import Clock
from ._errors import ADEError, CreateOutcomeUnknownError, RateLimitError
from ._retry import CreateVerdict, RetryPolicy, create_verdict
from ._stats import Counters
from ._transport import Transport
from ._wire import AsyncExtractRequest

__all__ = ["CreateSender"]

logger = logging.getLogger("ade_async")


class CreateSender:
    """Creates jobs: admission, one POST per attempt, and the verdict on each failure."""

    def __init__(
        self,
        *,
        transport: Transport,
        gate: Admission,
        retry: RetryPolicy,
        clock: Clock,
        rng: random.Random,
        counters: Counters,
    ) -> None:
        self._transport = transport
        self._gate = gate
        self._retry = retry
        self._clock = clock
        self._rng = rng
        self._counters = counters

    async def send(
        self, request: AsyncExtractRequest, *, on_sending: Callable[[], None] | None = None
    ) -> str:
        """Create the job and return its id; its admission stays in flight until released.

        ``on_sending`` is called once admission is granted, just before each POST goes out:
        from then on a job may exist (a journal records that moment).

        Raises:
            CreateOutcomeUnknownError: the create was sent and its answer lost.
            APIStatusError: the API refused it (4xx), or 5xx answers outlasted the retry budget.
            TransportError: the connection could not be opened within the retry budget.
        """
        started = self._clock.now()
        failures = 0  # attempts that failed for reasons other than the quota
        front = False
        while True:
            grant = await self._gate.acquire(front=front)
            if on_sending is not None:
                on_sending()
            self._gate.sent(grant)
            sent_at = time.time()
            self._counters.creates_sent += 1
            try:
                created = await self._transport.create_job(request)
            except ADEError as error:
                verdict = create_verdict(error)
                if verdict is CreateVerdict.RATE_LIMITED:
                    hint = error.retry_after if isinstance(error, RateLimitError) else None
                    self._counters.creates_rate_limited += 1
                    self._gate.on_rate_limited(grant, hint)
                    front = True
                    continue
                if verdict is CreateVerdict.UNKNOWN:
                    self._counters.creates_unknown += 1
                    # Keep the create in the windows (the server may have counted it), but free
                    # its in-flight slot: there is no job id to follow.
                    self._gate.on_unanswered(grant)
                    raise _unknown_outcome(request, sent_at, error) from error
                self._gate.refund(grant)
                if verdict is CreateVerdict.FINAL:
                    raise
                failures += 1
                elapsed = self._clock.now() - started
                delay = self._retry.next_delay(failures=failures, elapsed=elapsed, rng=self._rng)
                if delay is None:
                    raise
                self._counters.create_retries += 1
                logger.debug("create not accepted (%s); retrying in %.2f s", error, delay)
                await self._clock.sleep_until(self._clock.now() + delay)
                front = True
                continue
            except BaseException:
                # Cancelled (or worse) while the create was on the wire: it may have arrived.
                # Keep it counted in the windows; free the in-flight slot, as no one will follow it.
                self._gate.on_unanswered(grant)
                raise
            self._counters.creates_accepted += 1
            self._gate.on_accepted(grant)
            return created.job_id


def _unknown_outcome(
    request: AsyncExtractRequest, sent_at: float, error: ADEError
) -> CreateOutcomeUnknownError:
    digest = hashlib.sha256(request.markdown).hexdigest() if request.markdown is not None else None
    what = request.markdown_filename if request.markdown is not None else "a markdown_url"
    return CreateOutcomeUnknownError(
        f"the create for {what} was sent but its outcome is unknown ({error}); a job may exist. "
        "It was not sent again, to avoid paying twice: a completed job's metadata.filename carries "
        "this upload's name (list_jobs(), then get_job()); or submit again knowingly.",
        filename=request.markdown_filename if request.markdown is not None else None,
        content_sha256=digest,
        sent_at=sent_at,
        cause=error,
    )
