"""ade_async in a web service: one client, one quota and one poller shared by every request.

Install with ``pip install "ade_async[fastapi]"``. Works with FastAPI and with plain Starlette
(only Starlette is imported here)::

    from typing import Annotated
    from fastapi import Depends, FastAPI, UploadFile
    import ade_async
    from ade_async.fastapi import ade_lifespan, get_client, install_exception_handlers, submit_or_503

    SCHEMA = {"type": "object", "properties": {"total_amount": {"type": "number"}}}
    app = FastAPI(lifespan=ade_lifespan(rate_limit=ade_async.RateLimit.per_hour(2000)))
    install_exception_handlers(app)

    @app.post("/extract")
    async def extract(file: UploadFile, client: Annotated[ade_async.Client, Depends(get_client)]):
        handle = await submit_or_503(client, await file.read(), schema=SCHEMA, max_wait=5)
        return (await handle).extraction

What each piece does:

:func:`ade_lifespan`
    opens one :class:`~ade_async.Client` when the app starts and closes it when the app stops.
    The client lives in a task of its own, so it can also be closed *early*, the moment the
    server is told to stop (see "Shutdown" below).
:func:`get_client`
    the dependency that hands that client to a handler (``Depends(get_client)`` in FastAPI, a
    plain call in Starlette).
:func:`install_exception_handlers`
    turns every :class:`~ade_async.ADEError` into a JSON answer with a sensible status
    (:func:`error_response` holds the table).
:func:`submit_or_503`
    ``client.submit`` for a handler that would rather fail fast than wait for create quota: the
    wait for admission is bounded, and running out of it raises :class:`QuotaExhaustedError`
    (503 with ``Retry-After``).

Shutdown. A server such as uvicorn, told to stop, first waits for the requests in progress to
finish and only then runs the app's lifespan shutdown. A request awaiting a long job would keep
the process alive until that job ended. So, by default, the lifespan also listens for the
signals the server stops on (SIGINT, SIGTERM): from the first one, new requests get 503, jobs
already in progress get ``shutdown_grace`` seconds to end (their requests get their results),
then the client closes and every request still waiting is answered 503 (``ClientClosedError``).
The jobs themselves continue server-side (the API cannot cancel them); their ids can be collected
later. :func:`close_client` does the same on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any, Final

import anyio
from anyio.abc import TaskStatus

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'ade_async.fastapi needs FastAPI (or Starlette): install it with pip install "ade_async[fastapi]"'
    ) from exc

import msgspec

from ._client import Client
from ._errors import (
    ADEError,
    AdmissionTimeoutError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    CreateOutcomeUnknownError,
    InputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobLostError,
    JobNotFinishedError,
    JobTimeoutError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ResultDownloadError,
    ResultTypeError,
    SchemaError,
    TransportError,
    UnprocessableEntityError,
    describe_error_body,
)
from ._inputs import DocumentInput
from ._options import DEFAULT, Default
from ._results import JobHandle
from ._schema import SchemaInput

__all__ = [
    "QuotaExhaustedError",
    "ade_lifespan",
    "close_client",
    "error_response",
    "get_client",
    "install_exception_handlers",
    "submit_or_503",
]

logger = logging.getLogger("ade_async.fastapi")

#: Where the lifespan keeps its bookkeeping on ``app.state`` (the client itself is ``ade_client``).
_HOLDER_ATTR: Final = "ade_async_lifespan"
#: How often a closing client checks whether the work in progress has ended.
_IDLE_CHECK_INTERVAL: Final = 0.1
#: The signals servers stop on; uvicorn, hypercorn and gunicorn workers all use these two.
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
#: ``Retry-After`` when nothing better is known (the gate is not paused by a 429).
_DEFAULT_RETRY_AFTER: Final = 1


class QuotaExhaustedError(ADEError):
    """No create quota came free within the wait a handler allowed (:func:`submit_or_503`).

    Nothing was sent. Mapped to 503 with ``Retry-After``.

    Attributes:
        retry_after: seconds until the gate's current 429 pause ends, or ``None`` when it is not
            paused (the windows were merely full; the answer then says 1 s).
        max_wait: the wait that was allowed, in seconds.
    """

    def __init__(self, message: str, *, retry_after: float | None, max_wait: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.max_wait = max_wait


# --- the lifespan ----------------------------------------------------------------------------------


def ade_lifespan(
    client_factory: Callable[[], Client] | None = None,
    *,
    shutdown_grace: float = 10.0,
    close_on_signals: bool = True,
    **client_kwargs: Any,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that owns one :class:`~ade_async.Client` for the whole app.

    Pass it as ``FastAPI(lifespan=ade_lifespan(...))`` or ``Starlette(lifespan=...)``. At startup
    the client is created and entered (``async with``) and stored on ``app.state.ade_client``;
    at shutdown it is closed, which answers every request still waiting on it with
    :class:`~ade_async.ClientClosedError` (503) and leaves no task behind.

    To combine it with your own start-up code, enter it inside your lifespan::

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with ade_lifespan(rate_limit=RateLimit.per_hour(2000))(app):
                ...  # your own set-up
                yield

    Args:
        client_factory: makes the client, called once at startup (inside the running loop);
            by default ``Client(**client_kwargs)``.
        shutdown_grace: when closing, seconds to let the work in progress end (creates on the
            wire, jobs watched) before closing the client on whatever is left.
        close_on_signals: start closing as soon as the process receives SIGINT or SIGTERM,
            rather than when the server, having drained its requests, runs the lifespan
            shutdown (too late to answer requests that wait on jobs). The server's own handlers
            still run: this chains onto them, and only onto handlers a server installed (and
            only in the main thread, where signals are handled). Restored at shutdown.
        **client_kwargs: arguments for :class:`~ade_async.Client` (``api_key``, ``rate_limit``,
            ``poll``...), when no ``client_factory`` is given.

    Raises:
        TypeError: both ``client_factory`` and client arguments were given.
        ValueError: ``shutdown_grace`` is negative.
    """
    if client_factory is not None and client_kwargs:
        raise TypeError("pass either client_factory or Client arguments, not both")
    if not shutdown_grace >= 0:
        raise ValueError(f"shutdown_grace must be 0 or more seconds, got {shutdown_grace!r}")
    factory: Callable[[], Client] = client_factory or _ClientArguments(client_kwargs)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        holder = _ClientHolder(factory(), grace=shutdown_grace)
        # The client lives in a task of its own (not in this one, which is suspended in `yield`
        # for the life of the app), so that a signal or close_client() can close it early.
        async with anyio.create_task_group() as task_group:
            await task_group.start(holder.run, name="ade_async client owner")
            app.state.ade_client = holder.client
            setattr(app.state, _HOLDER_ATTR, holder)
            restore = _chain_stop_signals(holder) if close_on_signals else _nothing
            try:
                yield
            finally:
                restore()
                holder.request_close(grace=None)

    return lifespan


class _ClientArguments:
    """Makes the client from ``Client`` arguments kept until startup.

    Not a ``functools.partial``: its ``repr`` shows its arguments, the API key among them, and it
    sits in the locals of the lifespan's frame, which is on the traceback of any startup error
    (error trackers record frame locals).
    """

    __slots__ = ("_arguments",)

    def __init__(self, arguments: dict[str, Any]) -> None:
        self._arguments = arguments

    def __call__(self) -> Client:
        return Client(**self._arguments)

    def __repr__(self) -> str:
        return f"<Client arguments: {', '.join(sorted(self._arguments))}>"


async def close_client(app: Starlette, *, grace: float | None = None) -> None:
    """Close the app's client now, as a stop signal would, and return once it is closed.

    From the call on, :func:`get_client` answers 503. Work in progress gets ``grace`` seconds
    to end (default: the lifespan's ``shutdown_grace``; ``0`` closes at once); then every request
    still waiting on the client gets :class:`~ade_async.ClientClosedError` (503). Calling it
    again, or after the app stopped, is harmless; a shorter ``grace`` cuts a running one short.

    Raises:
        RuntimeError: the app has no :func:`ade_lifespan` (or it has not started).
    """
    holder = _holder_of(app)
    holder.request_close(grace=grace)
    await holder.closed.wait()


def get_client(request: Request) -> Client:
    """The app's shared client, for handlers: ``client: Annotated[Client, Depends(get_client)]``.

    In plain Starlette, call it: ``client = get_client(request)``.

    Raises:
        ClientClosedError: the app is shutting down (mapped to 503).
        RuntimeError: the app has no :func:`ade_lifespan`; a programming error, hence a 500.
    """
    holder = _holder_of(request.app)
    if holder.closing:
        raise ClientClosedError("The service is shutting down; no new extraction is started.")
    return holder.client


class _ClientHolder:
    """The client, the task that owns it, and the closing protocol."""

    def __init__(self, client: Client, *, grace: float) -> None:
        self.client = client
        self.grace = grace
        self.closing = False
        self.closed = anyio.Event()
        self._close_at = math.inf
        self._changed = anyio.Event()
        self._loop = asyncio.get_running_loop()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        try:
            async with self.client:
                task_status.started()
                while not self.closing:
                    await self._changed_wait()
                # Let work in progress end, so its requests get their answers, until the deadline
                # (brought forward by any later, shorter request to close).
                while anyio.current_time() < self._close_at and not _idle(self.client):
                    with anyio.move_on_after(
                        min(_IDLE_CHECK_INTERVAL, self._close_at - anyio.current_time())
                    ):
                        await self._changed_wait()
        finally:
            self.closing = True
            self.closed.set()

    async def _changed_wait(self) -> None:
        await self._changed.wait()
        self._changed = anyio.Event()

    def request_close(self, *, grace: float | None) -> None:
        """Start closing (from the event loop's thread); ``None`` means the configured grace."""
        if self.closed.is_set():
            return
        self.closing = True
        # The loop's own clock (what anyio.current_time() reads on asyncio): this may run as a
        # plain loop callback (after a signal), where anyio cannot tell which library is running.
        now = self._loop.time()
        self._close_at = min(self._close_at, now + (self.grace if grace is None else grace))
        self._changed.set()

    def on_stop_signal(self) -> None:
        """Called from a signal handler: hand the request to the loop, the only safe way in."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing left to close
            self._loop.call_soon_threadsafe(functools.partial(self.request_close, grace=None))


def _idle(client: Client) -> bool:
    """No create waiting or on the wire, no job watched: closing now would cut nothing short."""
    try:
        stats = client.stats()
    except ClientClosedError:
        return True
    admission = stats.admission
    return stats.jobs_watched == 0 and admission.waiting == 0 and admission.in_flight == 0


def _holder_of(app: Any) -> _ClientHolder:
    holder = getattr(app.state, _HOLDER_ATTR, None)
    if not isinstance(holder, _ClientHolder):
        raise RuntimeError(
            "this app has no ade_async client: create it with lifespan=ade_lifespan(...) "
            "(FastAPI or Starlette), and use it while the app is running"
        )
    return holder


def _chain_stop_signals(holder: _ClientHolder) -> Callable[[], None]:
    """Run ``holder.on_stop_signal`` before the server's own handler of each stop signal.

    Returns the function that puts the server's handlers back. Signals can only be handled in
    the main thread, and only a handler that is a Python callable is chained onto: a signal left
    to its default action has no graceful shutdown to get ahead of.
    """
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    installed: dict[int, tuple[Callable[[int, FrameType | None], Any], Callable[..., Any]]] = {}
    for stop_signal in _STOP_SIGNALS:
        previous = signal.getsignal(stop_signal)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
            holder.on_stop_signal()
            previous(signum, frame)

        signal.signal(stop_signal, handler)
        installed[stop_signal] = (handler, previous)

    def restore() -> None:
        for stop_signal, (handler, previous) in installed.items():
            if signal.getsignal(stop_signal) is handler:  # unless someone replaced ours since
                signal.signal(stop_signal, previous)

    return restore


def _nothing() -> None:
    return None


# --- failing fast on quota ------------------------------------------------------------------------


async def submit_or_503(
    client: Client,
    document: DocumentInput | None = None,
    *,
    schema: SchemaInput,
    max_wait: float,
    options: Any = None,
    filename: str | None = None,
    timeout: float | Default | None = DEFAULT,
) -> JobHandle[Any]:
    """``client.submit``, waiting at most ``max_wait`` seconds for create quota.

    The admission gate normally *waits* for quota, which suits a batch; a web request would
    rather answer "busy, retry in N s" at once. This is ``submit(admission_timeout=max_wait)``:
    only the wait for admission is bounded (a create still queued consumes nothing when it
    leaves, and one refused with 429 made no job, so its next wait is bounded too). A create once
    sent is never cut off: it runs in the client's own task and gets its answer whatever happens
    to the request. Worst case: a create whose answer was lost is looked for (its job adopted
    when found) for up to ``ReconcilePolicy.max_search_time`` (600 s by default) while candidate
    jobs still run, or until the client closes, which ends the search at once with
    ``ClientClosedError`` (the app's shutdown bounds every request this way); a request that
    goes away meanwhile leaves the search to the client, which settles it.

    Args:
        client: the shared client (:func:`get_client`).
        document, schema, options, filename, timeout: as for :meth:`ade_async.Client.submit`.
        max_wait: seconds to wait for admission; ``0`` takes quota only if it is free now.

    Returns:
        The job's handle; ``await handle`` gives the result.

    Raises:
        QuotaExhaustedError: no quota within ``max_wait`` (or the gate is paused by a 429 for
            longer than that); no job was created. 503 with ``Retry-After``.
        SchemaError, InputError, and everything :meth:`ade_async.Client.submit` raises.
    """
    if not max_wait >= 0:
        raise ValueError(f"max_wait must be 0 or more seconds, got {max_wait!r}")
    try:
        return await client.submit(
            document,
            schema=schema,
            options=options,
            filename=filename,
            timeout=timeout,
            admission_timeout=max_wait,
        )
    except AdmissionTimeoutError as exc:
        raise _quota_exhausted(max_wait, exc.paused_for) from None


def _paused_for(client: Client) -> float:
    try:
        return client.stats().admission.paused_for
    except ClientClosedError:
        return 0.0


def _quota_exhausted(max_wait: float, paused_for: float) -> QuotaExhaustedError:
    return QuotaExhaustedError(
        f"no create quota came free within {max_wait:g} s; no job was created",
        retry_after=paused_for if paused_for > 0 else None,
        max_wait=max_wait,
    )


# --- errors as HTTP answers ------------------------------------------------------------------------


def install_exception_handlers(app: Starlette) -> None:
    """Answer every :class:`~ade_async.ADEError` a handler raises as :func:`error_response` says.

    Works for FastAPI and Starlette apps. One handler is registered, for ``ADEError``; a handler
    you register for a subclass takes precedence for that subclass.
    """
    app.add_exception_handler(ADEError, _handle_ade_error)


async def _handle_ade_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ADEError)  # registered for ADEError only
    response = error_response(exc)
    # The full message (never the API key) is for the operator; the caller gets the short one.
    log = logger.warning if response.status_code >= 500 else logger.debug
    log("%s %s answered %d: %r", request.method, request.url.path, response.status_code, exc)
    return response


def error_response(exc: ADEError, *, job_id: str | None = None) -> JSONResponse:
    """The HTTP answer for an ade_async error: a status and a JSON body.

    The body is ``{"error": CODE, "message": TEXT}`` plus, where known, ``job_id``,
    ``failure_reason``, ``retry_after``, ``problems`` (schema) or ``detail`` (upstream
    validation). Messages are written for the caller: they never carry the API key, and upstream
    refusals of the service's credentials are not detailed.

    ========================================================  ======  =========================
    error                                                     status  ``error``
    ========================================================  ======  =========================
    ``QuotaExhaustedError``, ``RateLimitError``                503     ``quota_exhausted``, with
                                                                      ``Retry-After`` (seconds)
    ``ClientClosedError``                                     503     ``shutting_down``
    ``AuthenticationError``, ``PaymentRequiredError``,        503     ``upstream_refused``
    ``PermissionDeniedError``
    ``SchemaError``                                           422     ``invalid_schema``
    ``UnprocessableEntityError``, ``BadRequestError``         422     ``invalid_input``
    ``NotFoundError``                                         404     ``job_not_found``
    ``JobNotFinishedError``                                   409     ``job_not_finished``
    ``JobFailedError``                                        502     ``job_failed``
    ``JobCancelledError``, ``JobLostError``                   502     ``job_cancelled``,
                                                                      ``job_lost``
    ``JobTimeoutError``                                       504     ``job_timeout``
    ``CreateOutcomeUnknownError``                             502     ``create_outcome_unknown``
    ``TransportError``                                        502     ``upstream_unreachable``
    ``ResultDownloadError``, ``ResultTypeError``              502     ``result_unavailable``,
                                                                      ``unexpected_result``
    ``InputError``, ``ConfigurationError``                    500     ``internal_error``
    any other ``ADEError`` (``ServerError``...)               502     ``upstream_error``
    ========================================================  ======  =========================

    Args:
        exc: the error.
        job_id: the job concerned, when the error does not carry it (e.g. a
            ``ClientClosedError`` met while awaiting a handle).
    """
    status, code, message, extra = _describe(exc)
    known_job = getattr(exc, "job_id", None) or job_id
    body: dict[str, Any] = {"error": code, "message": message}
    if isinstance(known_job, str):
        body["job_id"] = known_job
    body.update(extra)
    headers: dict[str, str] = {}
    if code == "quota_exhausted":
        retry_after = getattr(exc, "retry_after", None)
        seconds = math.ceil(retry_after) if retry_after is not None and retry_after > 0 else None
        headers["Retry-After"] = str(seconds or _DEFAULT_RETRY_AFTER)
        body["retry_after"] = seconds or _DEFAULT_RETRY_AFTER
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(exc: ADEError) -> tuple[int, str, str, dict[str, Any]]:
    """``(status, code, message, extra body fields)`` for one error; the table above."""
    if isinstance(exc, QuotaExhaustedError | RateLimitError):
        return 503, "quota_exhausted", "The extraction quota is exhausted; retry later.", {}
    if isinstance(exc, ClientClosedError):
        return 503, "shutting_down", "The service is shutting down; retry later.", {}
    if isinstance(exc, AuthenticationError | PaymentRequiredError | PermissionDeniedError):
        # The operator's key or credits: nothing the caller can fix, nothing to tell them about.
        return 503, "upstream_refused", "The extraction service is unavailable; retry later.", {}
    if isinstance(exc, SchemaError):
        return 422, "invalid_schema", exc.message, {"problems": list(exc.problems)}
    if isinstance(exc, UnprocessableEntityError):
        detail = msgspec.to_builtins(exc.detail)
        return 422, "invalid_input", _upstream_reason(exc, "The input was rejected."), {"detail": detail}
    if isinstance(exc, BadRequestError):
        return 422, "invalid_input", _upstream_reason(exc, "The input was rejected."), {}
    if isinstance(exc, NotFoundError):
        return 404, "job_not_found", "No such job.", {}
    if isinstance(exc, JobError):
        return _describe_job_error(exc)
    if isinstance(exc, CreateOutcomeUnknownError):
        message = (
            "The job was sent but the answer was lost: it may or may not exist. "
            "It was not sent again, to avoid a duplicate."
        )
        return 502, "create_outcome_unknown", message, {}
    if isinstance(exc, TransportError):
        return 502, "upstream_unreachable", "The extraction service could not be reached.", {}
    if isinstance(exc, ResultDownloadError):
        return 502, "result_unavailable", f"The result of job {exc.job_id} could not be downloaded.", {}
    if isinstance(exc, ResultTypeError):
        return 502, "unexpected_result", f"The result of job {exc.job_id} has an unexpected shape.", {}
    if isinstance(exc, InputError | ConfigurationError):
        return 500, "internal_error", "The service could not start the extraction.", {}
    return 502, "upstream_error", "The extraction service failed; retry later.", {}


def _describe_job_error(exc: JobError) -> tuple[int, str, str, dict[str, Any]]:
    job_id = exc.job_id
    if isinstance(exc, JobFailedError):
        reason = exc.failure_reason
        return (
            502,
            "job_failed",
            f"Job {job_id} failed: {reason or 'no reason given'}",
            {"failure_reason": reason},
        )
    if isinstance(exc, JobTimeoutError):
        message = f"Job {job_id} did not end within {exc.timeout:g} s; it may still finish: ask again later."
        return 504, "job_timeout", message, {}
    if isinstance(exc, JobCancelledError):
        return 502, "job_cancelled", f"Job {job_id} was cancelled by the extraction service.", {}
    if isinstance(exc, JobLostError):
        return 502, "job_lost", f"Job {job_id} is no longer known to the extraction service.", {}
    if isinstance(exc, JobNotFinishedError):
        return 409, "job_not_finished", f"Job {job_id} has not finished (status {exc.status}).", {}
    return 502, "job_error", f"Job {job_id} gave no result.", {}


def _upstream_reason(exc: APIStatusError, fallback: str) -> str:
    """The upstream's own reason for refusing the input (it is about the input, not the key)."""
    return describe_error_body(exc.body) or fallback
