"""Which failures are retried, for which call, and after how long: the retry policy, sans-I/O.

Reads (get a job, list jobs) are safe to repeat: they are retried on transport errors (except an
answer over the size cap, which would come again as large), 408, 429 and 5xx, with exponential
backoff and jitter, honouring ``Retry-After`` up to a cap, within a budget of attempts and total
time.

Creates are not idempotent (the API has no idempotency key), so a create is repeated only when the
server provably did not accept it:

* the connection never opened (refused, DNS, TLS, connect timeout): nothing was sent;
* the server answered 429: nothing was created; the admission gate pauses and the create is sent
  again, *without* using the retry budget (quota waits are not failures);
* the server answered 500, 503 or 408: the application's own error answer, not a 202 (the ADE
  troubleshooting page: "Server error while creating the job. Retry.").

A create whose outcome is unknown is never repeated blindly: it raises
:class:`~ade_async.CreateOutcomeUnknownError` (the client then looks for the job, see
``_reconcile``). Unknown means the request went out and the answer was lost, timed out, garbled or
too large to read (:class:`~ade_async.ResponseTooLargeError`: the server answered, so it may have
created the job), **or a gateway answered 502 or 504**: those come from a proxy in front of the
application, which may have accepted the create and then failed to answer in time (504), or whose
answer the proxy lost (502). Before the client could look for a job by its upload token, retrying them was the
lesser evil; now a search settles it without risking a second paid job.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from .._errors import (
    ADEError,
    APIStatusError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
)

__all__ = ["CreateVerdict", "RetryPolicy", "create_verdict", "read_retry_delay"]

#: Answers of a gateway in front of the API (bad gateway, gateway timeout), not of the API itself.
_GATEWAY_STATUSES = frozenset({502, 504})


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How hard to try before giving up on one call.

    Args:
        attempts: tries per call, the first included (1 disables retries). 429s on creates are
            not counted: they are quota waits, handled by the admission gate.
        total_time: seconds after the first try beyond which no retry starts.
        backoff_base: the first backoff, in seconds; it doubles per retry...
        backoff_cap: ...up to this.
        jitter: the fraction of each backoff that is random (0 = none, 1 = full jitter), so
            clients that failed together do not retry together.
        max_retry_after: the longest ``Retry-After`` obeyed on a read (longer hints are capped).
        retry_statuses: statuses after which a read is retried.

    Example::

        Client(retry=RetryPolicy(attempts=8, total_time=300))
        Client(retry=RetryPolicy.none())          # fail fast
    """

    attempts: int = 5
    total_time: float = 120.0
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not (self.total_time >= 0 and self.backoff_base > 0 and self.backoff_cap >= self.backoff_base):
            raise ValueError("expected total_time >= 0 and 0 < backoff_base <= backoff_cap")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")
        if self.max_retry_after < 0:
            raise ValueError("max_retry_after must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries at all: every failure surfaces at once."""
        return cls(attempts=1)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The pause before retry number ``retry`` (1 for the first retry)."""
        ceiling: float = min(self.backoff_cap, self.backoff_base * 2.0 ** (retry - 1))
        return ceiling * (1.0 - self.jitter * rng.random())

    def next_delay(
        self, *, failures: int, elapsed: float, rng: random.Random, retry_after: float | None = None
    ) -> float | None:
        """The pause before trying again after ``failures`` failed tries, or ``None`` to give up.

        Args:
            failures: tries that failed so far (1 after the first failure).
            elapsed: seconds since the first try.
            rng: jitter source.
            retry_after: the server's hint, honoured up to ``max_retry_after``.
        """
        if failures >= self.attempts:
            return None
        delay = self.backoff(failures, rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        if elapsed + delay > self.total_time:
            return None
        return delay


def read_retry_delay(
    policy: RetryPolicy,
    error: ADEError,
    *,
    attempt: int,
    elapsed: float,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before repeating a read that failed with ``error``, or ``None`` to give up.

    Args:
        policy: the retry policy.
        error: what the last try raised.
        attempt: how many tries have been made (1 after the first).
        elapsed: seconds since the first try.
        rng: jitter source.
    """
    if isinstance(error, ResponseTooLargeError):
        retryable = False  # the same answer would come again, as large
    elif isinstance(error, TransportError):
        retryable = True
    elif isinstance(error, APIStatusError):
        retryable = error.status_code in policy.retry_statuses
    else:
        retryable = False
    if not retryable:
        return None
    hint = error.retry_after if isinstance(error, RateLimitError) else None
    return policy.next_delay(failures=attempt, elapsed=elapsed, rng=rng, retry_after=hint)


class CreateVerdict(enum.Enum):
    """What a failed create means for trying again."""

    RATE_LIMITED = "rate_limited"  # 429: pause the gate, send again; not a failure
    NOT_ACCEPTED = "not_accepted"  # provably nothing was created: may retry within the budget
    UNKNOWN = "unknown"  # the server may have created the job: never repeat blindly
    FINAL = "final"  # the server refused the request (4xx): repeating cannot help


def create_verdict(error: ADEError) -> CreateVerdict:
    """Classify the error of one create attempt."""
    if isinstance(error, RateLimitError):
        return CreateVerdict.RATE_LIMITED
    if isinstance(error, ServerError) and error.status_code in _GATEWAY_STATUSES:
        return CreateVerdict.UNKNOWN  # a proxy's answer: the application behind it may have accepted
    if isinstance(error, ServerError) or (isinstance(error, APIStatusError) and error.status_code == 408):
        # An error answer is not a 202; 408 says the server never had the whole request.
        return CreateVerdict.NOT_ACCEPTED
    if isinstance(error, TransportError):
        return CreateVerdict.UNKNOWN if error.request_sent else CreateVerdict.NOT_ACCEPTED
    return CreateVerdict.FINAL
