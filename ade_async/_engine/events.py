"""Job events, for progress displays and metrics: a tiny publish/subscribe bus.

Listeners are plain callables run synchronously in the event loop; they must be quick. An exception
in a listener is logged and otherwise ignored: a broken progress bar never breaks extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .._errors import ADEError

__all__ = [
    "CreatePhase",
    "CreateProgress",
    "EventBus",
    "EventKind",
    "JobEvent",
    "Listener",
    "ProgressHook",
]

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
        detected_within: for ``completed`` and ``failed``, an upper bound in seconds on how long
            the job had already ended when the client saw it end: the time since the last
            answer that showed it not ended (a poll, a sweep of the active lists, or the
            acceptance of its create). ``None`` when no answer showed it running (a job watched
            by id, or adopted after a lost create, and already over at its first poll), or when
            it was not seen to end (lost, or its watch failed). A run report's "detection
            delay" histogram is made of these.
    """

    kind: EventKind
    job_id: str
    status: str
    error: ADEError | None = None
    detected_within: float | None = None


Listener: TypeAlias = Callable[[JobEvent], None]

#: Where one create stands: ``staged`` (the provider uploaded the document or registered the schema first:
#: their ids, which a journal keeps), ``admission`` (waiting for quota; nothing on the wire, safe to
#: abandon), ``sending`` (a create is going out: from now on a job may exist), ``rate_limited`` (that
#: create was answered 429: no job was made, the admission gate pauses every waiter, and this create waits
#: for admission again, at the head of the queue), ``searching`` (its answer was lost; looking for its job;
#: abandoning leaves the outcome unknown), ``created`` (the job exists and its id is known). A hook that
#: handles some phases should ignore the ones it does not know: later versions may add more.
CreatePhase: TypeAlias = Literal["staged", "admission", "sending", "rate_limited", "searching", "created"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateProgress:
    """One step of one create, as told to the caller's progress hook.

    Attributes:
        phase: the step (:data:`CreatePhase`).
        match_key: for ``sending`` and ``searching``, what makes this create's job recognisable
            later (the upload token), so a journal can find it after a crash; ``None`` when the
            create carries none.
        job_id: for ``created``, the job.
        file_id: for ``staged``, the id of the file the provider uploaded first (if it does).
        schema_id: for ``staged``, the id of the schema the provider registered (if it does).
        retry_after: for ``rate_limited``, the wait the server asked for (``Retry-After``), in
            seconds, if it said.
        paused_for: for ``rate_limited``, how long the admission gate now pauses every create,
            in seconds from this moment (the server's hint, or a backoff of the client's).
    """

    phase: CreatePhase
    match_key: str | None = None
    job_id: str | None = None
    file_id: str | None = None
    schema_id: str | None = None
    retry_after: float | None = None
    paused_for: float | None = None


#: Awaited at each step of a create; the create waits for it (a journal commits durably here).
ProgressHook: TypeAlias = Callable[[CreateProgress], Awaitable[None]]


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
