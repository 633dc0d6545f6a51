"""A watched job, as the shared poller keeps it: its shared future and what was last seen of it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .types import JobSnapshot

if TYPE_CHECKING:
    from .._results import ExtractResult

__all__ = ["JobWatch", "consume"]


def consume(future: asyncio.Future[ExtractResult[Any]]) -> None:
    """Mark an outcome as seen: a job nobody awaits must not log "exception never retrieved"."""
    if not future.cancelled():
        future.exception()


class JobWatch:
    """One watched job: its shared future and what was last seen of it.

    ``deadline`` is the latest deadline of the job's handles (``None`` while one has none): past
    it nobody waits. A job that still holds an in-flight slot is then watched on as an
    **orphan**, slowly and without events, until it is seen to end and its slot is freed (or until
    ``client.wait`` takes it up again).
    """

    __slots__ = (
        "alive_at",
        "deadline",
        "ended_seen_at",
        "future",
        "garbled",
        "job_id",
        "last",
        "orphan",
        "since",
        "status",
        "sweep_misses",
        "timeout",
    )

    def __init__(
        self,
        job_id: str,
        future: asyncio.Future[ExtractResult[Any]],
        timeout: float | None,
        since: float = 0.0,
        *,
        orphan: bool = False,
        status: str = "",
    ) -> None:
        self.job_id = job_id
        self.future = future
        self.timeout = timeout
        self.deadline = None if timeout is None or orphan else since + timeout
        self.orphan = orphan
        self.since = since  # when watching began (the clock's time)
        self.status = status  # the provider's spelling of "just created", until the first poll
        self.last: JobSnapshot | None = None
        # Times in a row a sweep missed the job while it was in fact running (an unknown status,
        # list lag): from two on, sweeps stop judging it and its own polls carry on, until a
        # sweep lists it again.
        self.sweep_misses = 0
        self.garbled = 0  # answers in a row whose body did not match the API
        # The clock's time of the last answer that showed the job not ended (a poll, a sweep, the
        # create's acceptance), and of the poll that showed it ended: their difference bounds how
        # late its end was seen (JobEvent.detected_within).
        self.alive_at: float | None = None
        self.ended_seen_at: float | None = None

    @property
    def detected_within(self) -> float | None:
        """At most how long the job had ended when its end was seen (``None``: unknown)."""
        if self.alive_at is None or self.ended_seen_at is None:
            return None
        return max(0.0, self.ended_seen_at - self.alive_at)
