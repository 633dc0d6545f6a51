"""A simulated job's life, as a function of the clock. Sans-I/O, no vendor.

A job needs no background task: once created it *is* its timeline. It is queued until
``running_at``, running until ``done_at``, and from ``done_at`` on it has its outcome: succeeded,
failed (with a reason) or cancelled. So any request, at any moment, reads the state by asking
:meth:`Lifecycle.phase_at` with the current time, and a cancel just moves ``done_at`` to now.

The *spelling* of those phases on the wire is the vendor's: a vendor module declares a
:class:`StatusNames` (LandingAI's ``pending``/``processing``/``completed``..., LlamaCloud's
``PENDING``/``RUNNING``/``COMPLETED``...) and asks it for the status to report.

:class:`Timing` draws the timeline of a new job (latency, random failure) from the engine's seeded
RNG, and applies the document's markers (``_markers``). :class:`ActiveJobs` counts the jobs not yet
ended at a moment, for active-job caps and the "most jobs active at once" counter.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ._markers import Markers

__all__ = ["PHASES", "ActiveJobs", "Lifecycle", "Outcome", "Phase", "StatusNames", "Timing"]

#: How a job ends.
Outcome: TypeAlias = Literal["succeeded", "failed", "cancelled"]
#: Where a job is in its life; the last three are terminal.
Phase: TypeAlias = Literal["queued", "running", "succeeded", "failed", "cancelled"]
PHASES: Final[tuple[Phase, ...]] = ("queued", "running", "succeeded", "failed", "cancelled")


@dataclass(slots=True, eq=False)
class Lifecycle:
    """One job's timeline. Mutable only through :meth:`cancel`.

    Attributes:
        created: when the job was accepted (monotonic seconds).
        latency: the planned time from ``created`` to the outcome.
        running_at: when it leaves the queue.
        done_at: when it reaches its outcome (moved to the cancel time by :meth:`cancel`).
        outcome: how it ends.
        failure_reason: why it failed (``None`` unless ``outcome == "failed"``).
        status_override: a raw status to report instead of the vendor's running status (a
            ``status`` marker), or ``None``.
    """

    created: float
    latency: float
    running_at: float
    done_at: float
    outcome: Outcome
    failure_reason: str | None = None
    status_override: str | None = None

    def phase_at(self, now: float) -> Phase:
        """The phase at monotonic time ``now``."""
        if now >= self.done_at:
            return self.outcome
        if now >= self.running_at:
            return "running"
        return "queued"

    def is_terminal_at(self, now: float) -> bool:
        """Whether the job has its outcome at ``now`` (and will never change again)."""
        return now >= self.done_at

    def progress_at(self, now: float) -> float:
        """The fraction of the planned time elapsed, from 0.0 at creation to 1.0 at the outcome.

        For vendors that report progress (Contextual's ``completion_percentage`` is this x 100);
        LandingAI reports only 0.0 or 1.0, from :meth:`is_terminal_at`.
        """
        if now >= self.done_at:
            return 1.0
        span = self.done_at - self.created
        return 0.0 if span <= 0 else max(0.0, min(1.0, (now - self.created) / span))

    def cancel(self, now: float) -> bool:
        """End the job as cancelled at ``now``; False (and nothing changes) if it had already ended.

        Vendor modules call ``Engine.cancel`` instead, which also frees the job's active slots.
        """
        if self.is_terminal_at(now):
            return False
        self.outcome = "cancelled"
        self.failure_reason = None
        self.done_at = now
        self.running_at = min(self.running_at, now)
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusNames:
    """A vendor's spelling of the five phases.

    Example::

        SHOUTING = StatusNames(queued="QUEUED", running="BUSY", succeeded="DONE",
                               failed="BROKEN", cancelled="STOPPED")
        SHOUTING.at(job.lifecycle, now)   # "QUEUED", ..., or a status marker's override
    """

    queued: str
    running: str
    succeeded: str
    failed: str
    cancelled: str

    def of(self, phase: Phase) -> str:
        """The vendor's word for ``phase``."""
        if phase == "queued":
            return self.queued
        if phase == "running":
            return self.running
        if phase == "succeeded":
            return self.succeeded
        if phase == "failed":
            return self.failed
        return self.cancelled

    def at(self, lifecycle: Lifecycle, now: float) -> str:
        """The status to report for the job at ``now`` (a ``status`` marker replaces ``running``)."""
        phase = lifecycle.phase_at(now)
        if phase == "running" and lifecycle.status_override is not None:
            return lifecycle.status_override
        return self.of(phase)

    def all(self) -> tuple[str, ...]:
        """The five spellings, in phase order."""
        return tuple(self.of(phase) for phase in PHASES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """How new jobs' timelines are drawn.

    Args:
        latency: ``(lo, hi)`` seconds from create to outcome, drawn uniformly per job.
        queued_fraction: a job is queued for this fraction of its drawn latency.
        failure_rate: fraction of jobs that fail (unless a marker decides).
        failure_reason: the reason a randomly failed job reports (the vendor's wording).
    """

    latency: tuple[float, float] = (0.05, 0.2)
    queued_fraction: float = 0.3
    failure_rate: float = 0.0
    failure_reason: str = "Simulated processing error"

    def plan(self, rng: random.Random, markers: Markers, now: float) -> Lifecycle:
        """A new job's timeline, created at ``now``.

        Always draws the same values in the same order (latency, then the failure draw), so the
        sequence of random decisions depends on the jobs created, not on which documents carry
        markers.
        """
        drawn = rng.uniform(*self.latency)
        random_failure = rng.random() < self.failure_rate
        latency = markers.latency if markers.latency is not None else drawn
        # The queueing time is the service's, not the document's: a latency marker sets when the
        # job ends, while the queued phase stays the configured fraction of the drawn latency
        # (and never outlasts the job).
        queued = min(drawn * self.queued_fraction, latency)
        outcome: Outcome = "succeeded"
        reason: str | None = None
        if markers.outcome is not None:
            outcome, reason = markers.outcome, markers.failure_reason
        elif random_failure:
            outcome, reason = "failed", self.failure_reason
        return Lifecycle(
            created=now,
            latency=latency,
            running_at=now + queued,
            done_at=now + latency,
            outcome=outcome,
            failure_reason=reason,
            status_override=markers.running_status,
        )


class ActiveJobs:
    """The jobs not yet ended, counted at any moment in O(log n).

    A heap of end times, pruned from the top as time passes. A cancel moves an end earlier, so
    :meth:`refresh` rebuilds the heap after one (cancels are rare; the rebuild is linear). The
    most jobs active at once is exact: the count only rises when a job is added, and a job is
    added at the current time, later than any end a cancel moved.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Lifecycle]] = []
        self._seq = itertools.count()
        self.most = 0

    def _prune(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][2].is_terminal_at(now):
            heapq.heappop(heap)

    def add(self, lifecycle: Lifecycle, now: float) -> None:
        """Count ``lifecycle`` as active from ``now`` until it ends."""
        self._prune(now)
        if not lifecycle.is_terminal_at(now):
            heapq.heappush(self._heap, (lifecycle.done_at, next(self._seq), lifecycle))
        self.most = max(self.most, len(self._heap))

    def count(self, now: float) -> int:
        """Jobs active at ``now``."""
        self._prune(now)
        return len(self._heap)

    def next_end(self, now: float) -> float | None:
        """When the earliest active job ends, or ``None`` when none is active."""
        self._prune(now)
        return self._heap[0][2].done_at if self._heap else None

    def refresh(self) -> None:
        """Re-sort after ends moved (a cancel)."""
        self._heap = [(lc.done_at, seq, lc) for _, seq, lc in self._heap]
        heapq.heapify(self._heap)
