"""Serving a vendor's routes: authentication, faults, counters and recording, done once for all.

A vendor module writes only its handlers. It subclasses :class:`Routes` over its state (an
:class:`~._core.Engine` subclass), lists its :class:`Route` entries, says what its error bodies
look like, and hands the table to :func:`build_application`::

    class LlamaRoutes(Routes[LlamaState]):
        def routes(self) -> list[Route]:
            return [
                Route(method="POST", path="/api/v1/beta/files", endpoint="upload", handle=self._upload),
                Route(method="POST", path="/api/v2/extract", endpoint="create", handle=self._create),
                ...
            ]

        def error(self, endpoint, status, message, *, code="InternalError") -> Answer:
            return Answer(status, msgspec.json.encode({"detail": message}))

        async def _create(self, call: Call) -> Answer:   # call.key: the caller's checked key
            ...

    app = build_application(LlamaRoutes(LlamaState(config)))

Around every handler, for every vendor alike:

1. the fault plan is asked for this request's fault (``_faults``); a "drop" closes the connection
   at once, a 5xx, a "429", a "404" or an "expired" is answered in the vendor's error body without
   calling the handler;
2. a "slow" fault sleeps, then the request counts as handled (``Engine.handled``);
3. on an authenticated route, ``Authorization: Bearer <key>`` is checked (401 in the vendor's body);
4. the handler runs; then "lost_response" closes the connection (the work is done), "malformed"
   cuts the body in half and "not_json" replaces it with an HTML page;
5. the answer is counted per endpoint and status, and recorded when recording is on.

Two simulator endpoints come with every application, without a key:
``GET /_simulator/stats[?windows=1,20]`` (the counters as JSON) and ``GET /_simulator/jobs`` (every
job's timeline), for benchmarks that run the simulator in another process.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar

from aiohttp import web
from multidict import CIMultiDictProxy

from ._core import Engine
from ._faults import SERVER_ERRORS
from ._jobs import JobRecord
from ._records import Exchange, FormField

__all__ = [
    "JOBS_TIMELINE_PATH",
    "JSON",
    "STATS_PATH",
    "Answer",
    "Call",
    "Route",
    "Routes",
    "build_application",
]

logger: Final = logging.getLogger("ade_async.testing")

JSON: Final = "application/json"
#: Where the counters are served as JSON (no key needed).
STATS_PATH: Final = "/_simulator/stats"
#: Where every job's timeline is served as JSON (for detection-latency measurements).
JOBS_TIMELINE_PATH: Final = "/_simulator/jobs"
#: What an intercepting proxy or captive portal puts where the JSON should be ("not_json").
_HTML_PAGE: Final = (
    b"<html><head><title>Gateway</title></head><body>Please sign in to the network.</body></html>"
)

S = TypeVar("S", bound=Engine[Any])


@dataclass(slots=True)
class Answer:
    """What a handler answers: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    """One request as a handler sees it.

    Attributes:
        request: the aiohttp request (path, query, headers, body).
        endpoint: the route's endpoint name.
        key: the caller's API key, checked (``""`` on an unauthenticated route).
        form: the form fields the handler read, for the recorded exchange (set it when reading one).
    """

    request: web.Request
    endpoint: str
    key: str = ""
    form: tuple[FormField, ...] = ()


Handler = Callable[[Call], Awaitable[Answer]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One route of a vendor: method, path (aiohttp's ``{name}`` syntax), endpoint name, handler.

    ``authenticated=False`` skips the Bearer check (a presigned download carries its own
    credentials in its URL).
    """

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    endpoint: str
    handle: Handler
    authenticated: bool = True


class Routes(abc.ABC, Generic[S]):
    """A vendor's route table over its state; see the module docstring.

    Subclasses implement :meth:`routes`, :meth:`error` and :meth:`stats_body`; they may refine
    :meth:`fault_answer` and :meth:`timeline_entry`, and release resources in :meth:`close`.
    """

    def __init__(self, state: S) -> None:
        self.state = state

    @abc.abstractmethod
    def routes(self) -> Sequence[Route]:
        """The vendor's routes."""

    @abc.abstractmethod
    def error(self, endpoint: str, status: int, message: str, *, code: str = "InternalError") -> Answer:
        """The vendor's error answer on ``endpoint`` (``code`` is for S3-style XML errors)."""

    @abc.abstractmethod
    def stats_body(self, now: float) -> dict[str, Any]:
        """The counters served at ``/_simulator/stats``, as JSON-ready values."""

    def fault_answer(self, endpoint: str, kind: Literal["404", "expired"]) -> Answer:
        """The answer of a "404" fault (a live resource reported missing) or an "expired" one."""
        if kind == "404":
            return self.error(endpoint, 404, "Not found")
        return self.error(endpoint, 403, "Request has expired", code="AccessDenied")

    def too_many(self, endpoint: str, wait: float | None, message: str = "Rate limit exceeded") -> Answer:
        """A 429 in the vendor's error body, announcing ``wait`` seconds (no hint when ``None``)."""
        self.state.rate_limited += 1
        answer = self.error(endpoint, 429, message, code="SlowDown")
        if wait is not None:
            answer.headers.update(self.state.retry_after_headers(wait, time.time()))
        return answer

    def timeline_entry(self, job: JobRecord) -> dict[str, Any]:
        """One job of ``/_simulator/jobs``: times on the ``time.monotonic()`` clock of this process."""
        lifecycle = job.lifecycle
        return {
            "job_id": job.job_id,
            "created": lifecycle.created,
            "done_at": lifecycle.done_at,
            "outcome": self.state.statuses.of(lifecycle.outcome),
            "filename": job.filename,
            "content_sha256": job.content_sha256,
        }

    async def close(self) -> None:
        """Release what the routes opened (called when the application is cleaned up)."""


# ------------------------------------------------------------------------------------------
# the wrapper


def _bearer(headers: CIMultiDictProxy[str]) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _record(state: Engine[Any], call: Call, answer: Answer | None) -> None:
    if not state.recording:
        return
    request = call.request
    headers = {} if answer is None else {"Content-Type": answer.content_type, **answer.headers}
    state.record(
        Exchange(
            endpoint=call.endpoint,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            form=call.form,
            status=0 if answer is None else answer.status,
            response_body=b"" if answer is None else answer.body,
            response_headers=headers,
        )
    )


def _hang_up(state: Engine[Any], call: Call) -> web.StreamResponse:
    """Close the connection without an answer."""
    state.requests[(call.endpoint, 0)] += 1
    _record(state, call, None)
    logger.debug("closing the connection of a %s request without an answer", call.endpoint)
    # Closing the transport here means aiohttp's attempt to write the response below fails with
    # a ConnectionResetError that it treats as a premature client disconnection: nothing is sent
    # and nothing is logged above debug level (raising instead would log a traceback).
    call.request.protocol.force_close()
    return web.Response(status=204)


async def _answer(table: Routes[Any], route: Route, call: Call) -> Answer | None:
    """The answer to one request, or ``None`` to close the connection without one."""
    state = table.state
    endpoint = route.endpoint
    fault = state.next_fault(endpoint)
    if fault == "drop":
        return None
    if fault in SERVER_ERRORS:
        return table.error(endpoint, int(fault), f"Simulated server error ({fault})")
    if fault == "429":
        budget = state.fault_budget
        wait = None if budget is None else state.budgets.wait(budget, state.now())
        return table.too_many(endpoint, state.fault_retry_after if wait is None else wait)
    if fault == "404" or fault == "expired":
        return table.fault_answer(endpoint, fault)
    if fault == "slow":
        await asyncio.sleep(state.slow_seconds)
    state.handled[endpoint] += 1
    if route.authenticated:
        key = _bearer(call.request.headers)
        if key is None:
            return table.error(endpoint, 401, "Missing API key: send 'Authorization: Bearer <key>'")
        if not state.is_valid_key(key):
            return table.error(endpoint, 401, "Invalid API key")
        call.key = key
    answer = await route.handle(call)
    if fault == "lost_response":
        return None
    if fault == "malformed":
        answer.body = answer.body[: len(answer.body) // 2]
    elif fault == "not_json":
        answer.body, answer.content_type = _HTML_PAGE, "text/html"
    return answer


def _serve(table: Routes[Any], route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = table.state
        call = Call(request, route.endpoint)
        answer = await _answer(table, route, call)
        if answer is None:
            return _hang_up(state, call)
        state.requests[(route.endpoint, answer.status)] += 1
        _record(state, call, answer)
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type, headers=answer.headers
        )

    return handler


# ------------------------------------------------------------------------------------------
# the simulator's own endpoints


def _stats_handler(table: Routes[Any]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def stats(request: web.Request) -> web.StreamResponse:
        """``GET /_simulator/stats[?windows=1,20]``: the counters as JSON.

        ``windows`` lists periods (seconds) for which to report the most draws on each budget in
        any rolling window of that length (``max_creates_in_window`` for the create budget).
        """
        state = table.state
        periods: list[float] = []
        for item in request.query.get("windows", "").split(","):
            if item.strip():
                try:
                    periods.append(float(item))
                except ValueError:
                    return web.json_response({"message": f"not a number of seconds: {item!r}"}, status=422)
        body = table.stats_body(state.now())
        body["max_creates_in_window"] = {str(p): state.max_creates_in_window(p) for p in periods}
        body["max_in_window"] = {
            budget: {str(p): state.budgets.max_in_window(budget, p) for p in periods}
            for budget in state.budgets.names()
        }
        return web.json_response(body)

    return stats


def _timeline_handler(table: Routes[Any]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def jobs(request: web.Request) -> web.StreamResponse:
        """``GET /_simulator/jobs``: every job's timeline, for out-of-process benchmarks.

        Times are ``time.monotonic()`` seconds of the simulator process (CLOCK_MONOTONIC on Linux,
        so comparable with another process's ``time.monotonic()`` on the same host): when each job
        was created and when it reaches (or will reach) its terminal status. Each job also names
        its input (``filename``, ``content_sha256``), so a harness can tell which input made which
        job.
        """
        return web.json_response([table.timeline_entry(job) for job in table.state.jobs])

    return jobs


def build_application(table: Routes[Any], *, client_max_size: int = 1024**2) -> web.Application:
    """An aiohttp application serving ``table``'s routes and the simulator's own endpoints.

    Args:
        table: the vendor's routes over its state.
        client_max_size: the largest request body read, in bytes.
    """
    app = web.Application(client_max_size=client_max_size)
    for route in table.routes():
        app.router.add_route(route.method, route.path, _serve(table, route))

    async def close(_app: web.Application) -> None:
        await table.close()

    app.on_cleanup.append(close)
    app.router.add_get(STATS_PATH, _stats_handler(table), allow_head=False)
    app.router.add_get(JOBS_TIMELINE_PATH, _timeline_handler(table), allow_head=False)
    return app
