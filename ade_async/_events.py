"""Job events, for progress displays and metrics: a tiny publish/subscribe bus.

Listeners are plain callables run synchronously in the event loop; they must be quick. An exception
in a listener is logged and otherwise ignored: a broken progress bar never breaks extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from ._errors import ADEError

__all__ = ["EventBus", "EventKind", "JobEvent", "Listener"]

logger = logging.getLogger("ade_async")

#: ``submitted`` (created, now watched), ``completed`` (result in hand), ``failed`` (the job
#: failed, was cancelled or lost, or its result could not be fetched), ``timed_out``.
EventKind: TypeAlias = Literal["submitted", "completed", "failed", "timed_out"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """Something happened to a job.

    Attributes:
        kind: what happened.
        job_id: the job.
        status: its status as last seen.
        error: the error, for ``failed`` and ``timed_out``.
    """

    kind: EventKind
    job_id: str
    status: str
    error: ADEError | None = None


Listener: TypeAlias = Callable[[JobEvent], None]


class EventBus:
    """Delivers each event to every subscribed listener."""

    __slots__ = ("_listeners",)

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: JobEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("an ade_async event listener raised; ignoring it")
