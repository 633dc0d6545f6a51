"""Sending one create through the admission gate, under the create retry rules.

The shell around :func:`ade_async._retry.create_verdict`: wait for admission, send, and act on
the verdict. A 429 refunds the admission, pauses the gate for every waiter and sends again from the
head of the queue, without using the retry budget. An error that proves nothing was created is
retried within the budget. An unknown outcome is never retried: it raises
:class:`CreateOutcomeUnknownError`, keeping the admission counted (the server may have counted it)
and its in-flight slot taken (a job may exist; the search for it settles the slot).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias

import anyio

from .._engine.admission import Admission, Grant
from .._engine.clock import Clock
from .._engine.http import Transport
from .._engine.retry import CreateVerdict, RetryPolicy, create_verdict
from .._engine.stats import Counters
from .._errors import ADEError, CreateOutcomeUnknownError, RateLimitError
from ..providers.landingai.wire import AsyncExtractRequest

__all__ = ["CreateSender", "PhaseHook", "SendPhase"]

logger = logging.getLogger("ade_async")

#: ``admission``: waiting for quota, nothing on the wire; ``sending``: a create is going out.
SendPhase: TypeAlias = Literal["admission", "sending"]
PhaseHook: TypeAlias = Callable[[SendPhase], Awaitable[None]]


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

    async def send(self, request: AsyncExtractRequest, *, on_phase: PhaseHook | None = None) -> str:
        """Create the job and return its id; its admission stays in flight until released.

        ``on_phase("admission")`` is awaited before each wait for admission (nothing is on the
        wire; safe to abandon), and ``on_phase("sending")`` once admission is granted, just before
        each POST: from then on a job may exist (a journal records that moment durably).

        From admission to the create's answer is one exception-safe scope: whatever happens in
        between (a hook that raises, a cancellation, a bug), the admission is handed back if the
        create provably never left, and otherwise kept counted (the server may have counted it).
        The POST itself is shielded from cancellation: a create on the wire always gets its
        answer (bounded by the transport's timeouts, and by the client closing its session), so
        a paid job is never created unrecorded.

        Raises:
            CreateOutcomeUnknownError: the create was sent and its answer lost.
            APIStatusError: the API refused it (4xx), or 5xx answers outlasted the retry budget.
            TransportError: the connection could not be opened within the retry budget.
        """
        started = self._clock.now()
        failures = 0  # attempts that failed for reasons other than the quota
        front = False
        while True:
            if on_phase is not None:
                await on_phase("admission")
            grant = await self._gate.acquire(front=front)
            flight = _Flight(self._gate, grant)
            try:
                if on_phase is not None:
                    await on_phase("sending")
                flight.sent()
                sent_at = time.time()
                self._counters.creates_sent += 1
                try:
                    with anyio.CancelScope(shield=True):
                        created = await self._transport.create_job(request)
                except ADEError as error:
                    verdict = create_verdict(error)
                    if verdict is CreateVerdict.RATE_LIMITED:
                        hint = error.retry_after if isinstance(error, RateLimitError) else None
                        self._counters.creates_rate_limited += 1
                        flight.rate_limited(hint)
                        front = True
                        continue
                    if verdict is CreateVerdict.UNKNOWN:
                        self._counters.creates_unknown += 1
                        # Kept in the windows (the server may have counted it) and in flight (a
                        # job may exist): whoever looks for the job settles the slot.
                        flight.unanswered()
                        raise _unknown_outcome(request, sent_at, error) from error
                    flight.refund()
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
                self._counters.creates_accepted += 1
                flight.accepted()
                return created.job_id
            finally:
                flight.close()


class _Flight:
    """One admission, from its grant to the create's answer: settled exactly once.

    :meth:`close` (in a ``finally``) settles whatever was left unsettled: an admission whose
    create never left is handed back; one whose create left without an answer is kept counted.
    """

    __slots__ = ("_gate", "_grant", "_sent", "_settled")

    def __init__(self, gate: Admission, grant: Grant) -> None:
        self._gate = gate
        self._grant = grant
        self._sent = False
        self._settled = False

    def sent(self) -> None:
        self._gate.sent(self._grant)
        self._sent = True

    def accepted(self) -> None:
        self._settled = True
        self._gate.on_accepted(self._grant)

    def rate_limited(self, retry_after: float | None) -> None:
        self._settled = True
        self._gate.on_rate_limited(self._grant, retry_after)

    def unanswered(self) -> None:
        self._settled = True
        self._gate.on_unanswered(self._grant)

    def refund(self) -> None:
        self._settled = True
        self._gate.refund(self._grant)

    def close(self) -> None:
        if self._settled:
            return
        if self._sent:
            self.unanswered()  # it may have arrived: keep it counted, and its slot taken
        else:
            self.refund()  # it never left: nothing was counted


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
