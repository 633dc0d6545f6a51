"""What a client has done so far: mutable counters inside, a frozen snapshot outside."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .admission import AdmissionStats

__all__ = ["ClientStats", "Counters"]

#: How many abandoned job ids the stats keep (the count goes on).
_ABANDONED_KEPT: Final = 1000


class Counters:
    """The client's running totals. Only the client's own layers increment them."""

    __slots__ = (
        "abandoned",
        "create_retries",
        "creates_accepted",
        "creates_rate_limited",
        "creates_reconciled",
        "creates_sent",
        "creates_unknown",
        "jobs_abandoned",
        "jobs_completed",
        "jobs_failed",
        "jobs_submitted",
        "jobs_timed_out",
        "poll_failures",
        "polls_sent",
        "possible_duplicates",
        "read_retries",
        "reads_sent",
        "reconcile_requests",
        "results_fetched",
        "sweep_requests",
    )

    def __init__(self) -> None:
        # Job ids created (or found) while their caller had already gone: the most recent ones.
        self.abandoned: deque[str] = deque(maxlen=_ABANDONED_KEPT)
        self.jobs_abandoned = 0
        self.creates_sent = 0
        self.creates_accepted = 0
        self.creates_rate_limited = 0
        self.creates_unknown = 0
        self.create_retries = 0
        self.creates_reconciled = 0
        self.possible_duplicates = 0
        self.reconcile_requests = 0
        self.reads_sent = 0
        self.read_retries = 0
        self.jobs_submitted = 0
        self.jobs_completed = 0
        self.jobs_failed = 0
        self.jobs_timed_out = 0
        self.polls_sent = 0
        self.poll_failures = 0
        self.results_fetched = 0
        self.sweep_requests = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientStats:
    """A snapshot of a client's activity, from ``client.stats()``.

    Attributes:
        creates_sent: create requests sent (each retry counts).
        creates_accepted: creates answered 202.
        creates_rate_limited: creates answered 429 (each was sent again after the pause).
        creates_unknown: creates whose outcome is unknown (:class:`CreateOutcomeUnknownError`).
        create_retries: creates sent again after an error that proved nothing was created.
        creates_reconciled: creates whose outcome was unknown and whose job was then found by
            its upload token and adopted (no second job was made).
        possible_duplicates: creates sent again after a search could not find the job of an
            earlier, unknown create (``resubmit_unknown``): each may have made a second job.
        reconcile_requests: list and get requests sent to look for those jobs.
        reads_sent: get and list requests sent by the caller's own calls and by searches for
            the jobs of lost creates.
        read_retries: those reads sent again after a retryable failure.
        jobs_submitted: jobs created through ``submit``/``extract``/``extract_many``.
        jobs_watched: jobs the shared poller watches now (submitted or adopted, not yet ended).
        jobs_completed: watched jobs whose result is in hand.
        jobs_failed: watched jobs that failed, were cancelled or lost, or whose result could not
            be fetched.
        jobs_timed_out: watched jobs whose client-side deadline passed.
        polls_sent: GETs the shared poller sent.
        poll_failures: polls that failed (transient errors, 404s).
        results_fetched: results fetched by the poller (inline or downloaded).
        sweep_requests: list requests the poller sent to sweep the active jobs.
        jobs_abandoned: jobs whose create was on the wire (or whose lost create was being looked
            for) when its caller stopped waiting, e.g. by leaving ``extract_many`` early: they
            were let land because they are paid; the poller watches them until they end.
        abandoned_job_ids: the ids of the most recent of those jobs (up to 1,000).
        admission: the ``create`` budget's admission gate (the one every provider has).
        budgets: every budget's gate by name (``create``, and ``upload`` for a vendor that takes
            uploads first), each with its own windows, pause and 429 count.
    """

    creates_sent: int
    creates_accepted: int
    creates_rate_limited: int
    creates_unknown: int
    create_retries: int
    creates_reconciled: int
    possible_duplicates: int
    reconcile_requests: int
    reads_sent: int
    read_retries: int
    jobs_submitted: int
    jobs_watched: int
    jobs_completed: int
    jobs_failed: int
    jobs_timed_out: int
    polls_sent: int
    poll_failures: int
    results_fetched: int
    sweep_requests: int
    jobs_abandoned: int
    abandoned_job_ids: tuple[str, ...]
    admission: AdmissionStats
    budgets: Mapping[str, AdmissionStats]

    @classmethod
    def snapshot(
        cls, counters: Counters, budgets: Mapping[str, AdmissionStats], *, watched: int
    ) -> ClientStats:
        return cls(
            creates_sent=counters.creates_sent,
            creates_accepted=counters.creates_accepted,
            creates_rate_limited=counters.creates_rate_limited,
            creates_unknown=counters.creates_unknown,
            create_retries=counters.create_retries,
            creates_reconciled=counters.creates_reconciled,
            possible_duplicates=counters.possible_duplicates,
            reconcile_requests=counters.reconcile_requests,
            reads_sent=counters.reads_sent,
            read_retries=counters.read_retries,
            jobs_submitted=counters.jobs_submitted,
            jobs_watched=watched,
            jobs_completed=counters.jobs_completed,
            jobs_failed=counters.jobs_failed,
            jobs_timed_out=counters.jobs_timed_out,
            polls_sent=counters.polls_sent,
            poll_failures=counters.poll_failures,
            results_fetched=counters.results_fetched,
            sweep_requests=counters.sweep_requests,
            jobs_abandoned=counters.jobs_abandoned,
            abandoned_job_ids=tuple(counters.abandoned),
            admission=budgets["create"],
            budgets=dict(budgets),
        )
