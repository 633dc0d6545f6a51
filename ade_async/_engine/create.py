"""Sending one create through the admission gate, under the create retry rules.

The shell around :func:`ade_async._retry.create_verdict`: wait for admission, send, and act on
the verdict. A 429 refunds the admission, pauses the gate for every waiter and sends again from the
head of the queue, without using the retry budget. An error that proves nothing was created is
retried within the budget. An unknown outcome is never retried: it raises
:class:`CreateOutcomeUnknownError`, keeping the admission counted (the server may have counted it)
and its in-flight slot taken (a job may exist; the search for it settles the slot).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import anyio

from .._errors import (
    ADEError,
    AdmissionTimeoutError,
    ClientClosedError,
    CreateOutcomeUnknownError,
    RateLimitError,
)
from .admission import Admission, Grant
from .clock import Clock
from .futures import settled
from .http import Api, HttpRequest
from .retry import CreateVerdict, RetryPolicy
from .stats import Counters
from .types import Staged

if TYPE_CHECKING:
    from ..providers import Provider

__all__ = ["CreateSender", "PhaseHook", "SendPhase"]

logger = logging.getLogger("ade_async")

#: ``admission``: waiting for quota, nothing on the wire; ``sending``: a create is going out;
#: ``rate_limited``: it was answered 429 (nothing made; it waits for admission again).
SendPhase: TypeAlias = Literal["admission", "sending", "rate_limited"]


class PhaseHook(Protocol):
    """Awaited at each step of a create; for ``rate_limited``, with the server's ``retry_after``
    hint (if any) and the pause the gate now keeps (seconds from now)."""

    def __call__(
        self, phase: SendPhase, /, *, retry_after: float | None = None, paused_for: float | None = None
    ) -> Awaitable[None]: ...


#: Starts a task in the client's task group (``TaskGroup.start_soon``).
Spawn: TypeAlias = Callable[[Callable[[], Coroutine[Any, Any, None]]], object]


class CreateSender:
    """Creates jobs: admission, one POST per attempt, and the verdict on each failure.

    Each POST runs in a task of the client's own (``spawn``), not in the caller's: a create on
    the wire always gets its answer, whatever happens to the caller (an anyio cancel scope, a
    plain ``task.cancel()``, ``asyncio.timeout``). If the caller has gone by then, the answer is
    settled here all the same and handed to ``on_orphan``: the job id of an accepted create, or
    the :class:`CreateOutcomeUnknownError` of a lost one (the client looks for its job).
    """

    def __init__(
        self,
        *,
        provider: Provider,
        api: Api,
        gate: Admission,
        retry: RetryPolicy,
        clock: Clock,
        rng: random.Random,
        counters: Counters,
        spawn: Spawn,
        on_orphan: Callable[[str | None, CreateOutcomeUnknownError | None], None],
    ) -> None:
        self._provider = provider
        self._api = api
        self._gate = gate
        self._retry = retry
        self._clock = clock
        self._rng = rng
        self._counters = counters
        self._spawn = spawn
        self._on_orphan = on_orphan

    async def send(
        self,
        staged: Staged,
        request: HttpRequest,
        match_key: str | None,
        *,
        on_phase: PhaseHook | None = None,
        admission_deadline: float | None = None,
    ) -> str:
        """Create the job and return its id; its admission stays in flight until released.

        ``request`` is the provider's create of ``staged``, sent again as is after a 429 or a
        failure that proves nothing was created (it carries the same ``match_key``).
        ``admission_deadline`` (on the clock) bounds every wait for admission: past it,
        :class:`AdmissionTimeoutError` (nothing was created).

        ``on_phase("admission")`` is awaited before each wait for admission (nothing is on the
        wire; safe to abandon), and ``on_phase("sending")`` once admission is granted, just before
        each POST: from then on a job may exist (a journal records that moment durably).
        ``on_phase("rate_limited", retry_after=..., paused_for=...)`` is awaited when a create was
        answered 429, before it waits for admission again (a run report marks those moments).

        From admission to the create's answer is one exception-safe scope: whatever happens in
        between (a hook that raises, a cancellation, a bug), the admission is handed back if the
        create provably never left, and otherwise kept counted (the server may have counted it).
        A POST already sent is never cut off (see the class).

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
            grant = await self._admission(front, admission_deadline)
            flight = _Flight(self._gate, grant)
            try:
                if on_phase is not None:
                    await on_phase("sending")
                answer = self._post(request, flight)
                try:
                    created = await settled(asyncio.shield(answer))
                except ADEError as error:
                    verdict = self._settle_failure(flight, error)
                    if verdict is CreateVerdict.RATE_LIMITED:
                        front = True
                        if on_phase is not None:
                            hint = error.retry_after if isinstance(error, RateLimitError) else None
                            await on_phase("rate_limited", retry_after=hint, paused_for=flight.paused_for)
                        continue
                    if verdict is CreateVerdict.UNKNOWN:
                        raise _unknown_outcome(staged, match_key, flight.sent_at, error) from error
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
                    if not answer.done():
                        # The caller left while the create is on the wire: its answer is settled
                        # when it comes, by the client, for nobody in particular.
                        flight.hand_over()
                        answer.add_done_callback(
                            functools.partial(self._orphaned, staged, match_key, request, flight)
                        )
                    raise
                self._counters.creates_accepted += 1
                flight.accepted()
                return created
            finally:
                flight.close()

    async def _admission(self, front: bool, deadline: float | None) -> Grant:
        """Wait for admission, until ``deadline`` at most (a 429 pause that outlasts it refuses
        at once: no use queueing)."""
        if deadline is None:
            return await self._gate.acquire(front=front)
        left = max(0.0, deadline - self._clock.now())
        if self._gate.stats().paused_for <= left:
            with anyio.move_on_after(left):
                return await self._gate.acquire(front=front)
        raise AdmissionTimeoutError(
            "no create quota came free in time; no job was created",
            paused_for=self._gate.stats().paused_for,
        )

    def _post(self, request: HttpRequest, flight: _Flight) -> asyncio.Future[str]:
        """Send the create in a task of the client's; the future holds the new job's id."""
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        flight.sent()
        self._counters.creates_sent += 1

        async def post() -> None:
            try:
                created = self._provider.parse_created(request, await self._api.send(request))
            except Exception as exc:
                answer.set_exception(exc)
            except BaseException:  # the client is closing under it: the job may exist
                answer.set_exception(
                    ClientClosedError("the client closed while a create was on the wire; a job may exist")
                )
                raise
            else:
                answer.set_result(created)

        self._spawn(post)
        return answer

    def _settle_failure(self, flight: _Flight, error: ADEError) -> CreateVerdict:
        """Account for one failed attempt and return its verdict (the provider's)."""
        if isinstance(error, ClientClosedError):
            verdict = CreateVerdict.UNKNOWN
        else:
            verdict = self._provider.create_verdict(error)
        if verdict is CreateVerdict.RATE_LIMITED:
            hint = error.retry_after if isinstance(error, RateLimitError) else None
            self._counters.creates_rate_limited += 1
            flight.rate_limited(hint)
        elif verdict is CreateVerdict.UNKNOWN:
            self._counters.creates_unknown += 1
            # Kept in the windows (the server may have counted it) and in flight (a job may
            # exist): whoever looks for the job settles the slot.
            flight.unanswered()
        else:
            flight.refund()
        return verdict

    def _orphaned(
        self,
        staged: Staged,
        match_key: str | None,
        request: HttpRequest,
        flight: _Flight,
        answer: asyncio.Future[str],
    ) -> None:
        """The answer of a create whose caller left: settle it, then tell the client."""
        error = answer.exception()
        if error is None:
            self._counters.creates_accepted += 1
            flight.accepted()
            self._on_orphan(answer.result(), None)
            return
        if not isinstance(error, ADEError):
            flight.unanswered()
            self._on_orphan(None, _unknown_outcome(staged, match_key, flight.sent_at, error))
            return
        if self._settle_failure(flight, error) is CreateVerdict.UNKNOWN:
            self._on_orphan(None, _unknown_outcome(staged, match_key, flight.sent_at, error))


class _Flight:
    """One admission, from its grant to the create's answer: settled exactly once.

    :meth:`close` (in a ``finally``) settles whatever was left unsettled: an admission whose
    create never left is handed back; one whose create left without an answer is kept counted.
    """

    __slots__ = ("_gate", "_grant", "_handed_over", "_sent", "_settled", "paused_for", "sent_at")

    def __init__(self, gate: Admission, grant: Grant) -> None:
        self._gate = gate
        self._grant = grant
        self._sent = False
        self._settled = False
        self._handed_over = False
        self.sent_at = 0.0  # Unix time just before the POST
        self.paused_for: float | None = None  # after a 429: the gate's pause, seconds from then

    def sent(self) -> None:
        self._gate.sent(self._grant)
        self._sent = True
        self.sent_at = time.time()

    def hand_over(self) -> None:
        """Whoever receives the create's answer settles this admission: :meth:`close` leaves it."""
        self._handed_over = True

    def accepted(self) -> None:
        self._settled = True
        self._gate.on_accepted(self._grant)

    def rate_limited(self, retry_after: float | None) -> None:
        self._settled = True
        self.paused_for = self._gate.on_rate_limited(self._grant, retry_after)

    def unanswered(self) -> None:
        self._settled = True
        self._gate.on_unanswered(self._grant)

    def refund(self) -> None:
        self._settled = True
        self._gate.refund(self._grant)

    def close(self) -> None:
        if self._settled or self._handed_over:
            return
        if self._sent:
            self.unanswered()  # it may have arrived: keep it counted, and its slot taken
        else:
            self.refund()  # it never left: nothing was counted


def _unknown_outcome(
    staged: Staged, match_key: str | None, sent_at: float, error: BaseException
) -> CreateOutcomeUnknownError:
    return CreateOutcomeUnknownError(
        f"the create for {staged.filename} was sent but its outcome is unknown ({error}); a job may "
        "exist. It was not sent again, to avoid paying twice: its job can be recognised by its match "
        f"key {match_key!r} (the search does this for submit); or submit again knowingly.",
        filename=staged.filename,
        content_sha256=staged.content_sha256,
        sent_at=sent_at,
        cause=error if isinstance(error, ADEError) else ADEError(f"{type(error).__name__}: {error}"),
        match_key=match_key,
    )
