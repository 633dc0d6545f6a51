"""``ade_async.Client``: one connection, one admission gate and one shared poller per client.

The client is an async context manager. Entering it opens the HTTP session and a task group that
owns the poller's single task; leaving it stops the poller, fails every pending waiter with
:class:`ClientClosedError`, and closes the session. Data flows one way: input, admission, create,
watch, polls, result, future resolved.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Final, Self, TypeVar

import anyio
import anyio.lowlevel
import msgspec
from anyio.abc import TaskGroup

from ._config import Timeouts, resolve_api_key, resolve_base_url
from ._engine.admission import Admission, AdmissionGate
from ._engine.batch import BatchEnd, BatchItem, run_batch
from ._engine.clock import Clock, LoopClock
from ._engine.create import CreateSender, PhaseHook, SendPhase
from ._engine.events import CreateProgress, EventBus, JobEvent, Listener, ProgressHook
from ._engine.http import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_RESPONSE_BYTES, Transport
from ._engine.ratelimit import RateLimit
from ._engine.reconcile import Found, NotFound, ReconcilePolicy, new_upload_token, tag_filename, token_of
from ._engine.reconciler import Reconciler
from ._engine.retry import RetryPolicy, read_retry_delay
from ._engine.schedule import PollPolicy
from ._engine.scheduler import PollScheduler
from ._engine.shared_admission import SharedAdmissionGate
from ._engine.stats import ClientStats, Counters
from ._errors import ADEError, ClientClosedError, CreateOutcomeUnknownError, unexpected
from ._inputs import MarkdownInput, check_markdown, read_markdown
from ._results import ExtractResult, JobHandle, Outcome
from ._schema import SchemaInput, prepare_schema, schema_to_json
from .providers.landingai.results import ResultFetcher
from .providers.landingai.wire import (
    AsyncExtractRequest,
    ExtractJobStatusResponse,
    ExtractResponse,
    JobsListResponse,
    JobStatus,
    JobSummary,
)

__all__ = ["DEFAULT", "Client"]

logger = logging.getLogger("ade_async")

_T = TypeVar("_T")

#: How many fresh ``output_url`` s to ask for when a download fails (URLs expire ~1 h after a GET).
_DEFAULT_URL_REFRESHES: Final = 2
#: ``extract_many``'s window when the rate limit sets no in-flight cap.
_DEFAULT_WINDOW: Final = 1000
#: How long closing may take to tidy up (the session), even when the closing task is cancelled.
_CLOSE_TIMEOUT: Final = 5.0
#: The most times one input's create is sent again after searches that found nothing.
_MAX_RESUBMISSIONS: Final = 2


class _Default(enum.Enum):
    TOKEN = "DEFAULT"


#: "Use the client's default" (the poll policy's ``job_timeout``), where ``None`` means "no deadline".
DEFAULT: Final = _Default.TOKEN


class Client(anyio.AsyncContextManagerMixin):
    """An asynchronous client for LandingAI ADE Extract Jobs v1.

    Use it as an async context manager::

        async with ade_async.Client() as client:           # key from VISION_AGENT_API_KEY
            result = await client.extract(Path("invoice.md"), schema=Invoice)
            invoice = result.to(Invoice)

            async for outcome in client.extract_many(Path("docs").glob("*.md"), schema=Invoice):
                report(outcome.input, outcome.ok)

    Args:
        api_key: the API key; defaults to the ``VISION_AGENT_API_KEY`` environment variable.
        base_url: the API root, e.g. a proxy or the simulator; defaults to
            ``LANDINGAI_ADE_BASE_URL``, then to the host of ``environment``. Plain ``http://`` is
            refused unless the host is loopback (``localhost``, ``127.0.0.0/8``, ``[::1]``): the
            key goes in every request's header.
        environment: ``"production"`` (US, the default) or ``"eu"``; defaults to
            ``LANDINGAI_ADE_ENVIRONMENT``. Keys are per region.
        timeouts: connect, read and total timeouts.
        max_connections: the size of the HTTP connection pool.
        url_refreshes: how many times to re-get a job for a fresh ``output_url`` when a
            download fails (the URLs expire about an hour after they are issued).
        rate_limit: how fast jobs may be created (:class:`RateLimit`); by default adaptive,
            learning the unpublished quota from 429s. ``RateLimit(backend=RedisBackend(...))``
            shares the quota with every process and host that names the same quota; the
            backend's driver then runs in this client's task group.
        retry: how failed calls are retried (:class:`RetryPolicy`). Reads are retried on
            transport errors, 408, 429 and 5xx; a create only when nothing can have been created.
        poll: how the shared poller watches jobs (:class:`PollPolicy`).
        reconcile: how a create whose answer was lost is looked for (:class:`ReconcilePolicy`),
            and whether it may be sent again when its job cannot be found.
        clock: the time source (tests pass ``ade_async.testing.FakeClock``).
        seed: seeds the jitter of backoffs and polls, for reproducible runs.
        max_response_bytes: the largest API answer read, in bytes (32 MiB). ADE sends results
            over about 1 MB through ``output_url``, so real answers are far smaller; the cap keeps
            a broken or hostile server from filling memory. A larger answer raises
            :class:`ResponseTooLargeError` (for a create: :class:`CreateOutcomeUnknownError`, as
            the server answered and a job may exist).
        max_download_bytes: the largest result downloaded from an ``output_url``, in bytes
            (512 MiB). A larger one raises :class:`ResultDownloadError` without asking for a
            fresh URL.

    Raises:
        ConfigurationError: no API key, an unknown environment, both ``base_url`` and
            ``environment`` given, or a plain ``http://`` base URL to a host that is not loopback.
        ValueError: a count or cap out of range (``max_connections``, ``url_refreshes``,
            ``max_response_bytes``, ``max_download_bytes``).
        TypeError: a cap that is not a whole number of bytes.

    The API has no endpoint to cancel a job: nothing in this client can stop work the server has
    accepted, and nothing pretends to. Cancelling a wait only stops waiting.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        environment: str | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        url_refreshes: int = _DEFAULT_URL_REFRESHES,
        rate_limit: RateLimit | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        reconcile: ReconcilePolicy | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        key = resolve_api_key(api_key)
        # From here on the key lives only in ``key`` (masked): this frame is on the traceback of
        # every error raised below, and error trackers record frame locals.
        del api_key
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        if url_refreshes < 0:
            raise ValueError(f"url_refreshes must be 0 or more, got {url_refreshes}")
        _check_cap("max_response_bytes", max_response_bytes)
        _check_cap("max_download_bytes", max_download_bytes)
        self._key_fingerprint = key.fingerprint()  # names a shared quota; the key stays in the transport
        self._transport = Transport(
            base_url=resolve_base_url(base_url, environment),
            api_key=key,
            timeouts=timeouts or Timeouts(),
            max_connections=max_connections,
            max_response_bytes=max_response_bytes,
            max_download_bytes=max_download_bytes,
        )
        self._url_refreshes = url_refreshes
        self._rate_limit = rate_limit if rate_limit is not None else RateLimit()
        self._retry = retry if retry is not None else RetryPolicy()
        self._poll = poll if poll is not None else PollPolicy()
        self._reconcile = reconcile if reconcile is not None else ReconcilePolicy()
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._rng = random.Random(seed)
        self._counters = Counters()
        self._events = EventBus()
        self._fetcher = ResultFetcher(
            transport=self._transport, refresh=self.get_job, url_refreshes=url_refreshes
        )
        self._running: _Running | None = None
        # Jobs this client created whose admission is still in flight: freed when seen to end.
        self._unfinished: set[str] = set()
        self._entered = False

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._transport.base_url

    @property
    def rate_limit(self) -> RateLimit:
        """The admission options in force."""
        return self._rate_limit

    @property
    def poll_policy(self) -> PollPolicy:
        """The shared poller's options."""
        return self._poll

    def stats(self) -> ClientStats:
        """A frozen snapshot of what this client has done, its poller and its admission gate."""
        running = self._require_running()
        return ClientStats.snapshot(self._counters, running.gate.stats(), watched=running.scheduler.watching)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`JobEvent` (submitted, completed, failed,
        timed out); returns a function that unsubscribes. Listeners must be quick and not block."""
        return self._events.subscribe(listener)

    def __repr__(self) -> str:
        running = self._running
        if running is None:
            return f"<ade_async.Client base_url={self.base_url!r} closed>"
        s = running.gate.stats()
        return (
            f"<ade_async.Client base_url={self.base_url!r} open admitted={s.admitted} "
            f"in_flight={s.in_flight} waiting={s.waiting} watched={running.scheduler.watching} "
            f"429s={s.rate_limited}>"
        )

    # --- lifecycle ------------------------------------------------------------------------------

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        if self._entered:
            raise RuntimeError("a Client can be entered only once; create a new one")
        self._entered = True
        await self._transport.open()
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as task_group:
                self._running = self._start(task_group)
                try:
                    yield self
                except GeneratorExit:
                    raise
                except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
                    error = exc
                finally:
                    self._stop()
                    task_group.cancel_scope.cancel()
        finally:
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await self._transport.close()
        if error is not None:
            raise error

    def _start(self, task_group: TaskGroup) -> _Running:
        # Made here, inside the running loop: the gate's and the poller's timers belong to it.
        gate: Admission
        if self._rate_limit.backend is None:
            gate = AdmissionGate(self._rate_limit, clock=self._clock, rng=self._rng)
        else:
            shared = SharedAdmissionGate(
                self._rate_limit, key_fingerprint=self._key_fingerprint, rng=self._rng
            )
            task_group.start_soon(shared.run, name="ade_async shared admission")
            gate = shared
        creator = CreateSender(
            transport=self._transport,
            gate=gate,
            retry=self._retry,
            clock=self._clock,
            rng=self._rng,
            counters=self._counters,
            spawn=task_group.start_soon,
            on_orphan=self._orphaned_create,
        )
        scheduler = PollScheduler(
            transport=self._transport,
            fetcher=self._fetcher,
            policy=self._poll,
            clock=self._clock,
            rng=self._rng,
            counters=self._counters,
            events=self._events,
            on_finished=self._finished,
            holds_slot=self._unfinished.__contains__,
            retry_statuses=self._retry.retry_statuses,
        )
        reconciler = Reconciler(
            policy=self._reconcile,
            list_page=lambda page: self._list_page(page, 100, None),
            get_job=lambda job_id: self._read(lambda: self._transport.get_job(job_id)),
            clock=self._clock,
            counters=self._counters,
        )
        task_group.start_soon(scheduler.run, name="ade_async poller")
        task_group.start_soon(reconciler.run, name="ade_async reconciler")
        return _Running(task_group, gate, creator, scheduler, reconciler)

    def _stop(self) -> None:
        running, self._running = self._running, None
        if running is None:
            return
        running.gate.close(ClientClosedError("The client was closed while this create waited for admission."))
        running.scheduler.close(ClientClosedError("The client was closed before this job ended."))
        running.reconciler.close(
            ClientClosedError("The client was closed while it looked for the job of a lost create.")
        )

    # --- the everyday calls -----------------------------------------------------------------------

    async def extract(
        self,
        markdown: MarkdownInput | None = None,
        *,
        schema: SchemaInput,
        model: str | None = None,
        strict: bool = False,
        markdown_url: str | None = None,
        output_save_url: str | None = None,
        filename: str | None = None,
        deadline: float | _Default | None = DEFAULT,
        resubmit_unknown: bool | None = None,
    ) -> ExtractResult:
        """Extract one document: submit it and wait for the result.

        Example::

            result = await client.extract(Path("invoice.md"), schema=Invoice)
            invoice = result.to(Invoice)

        Takes the arguments of :meth:`submit` (``deadline`` included). Raises what
        :meth:`submit` and awaiting a :class:`JobHandle` raise.
        """
        handle = await self.submit(
            markdown,
            schema=schema,
            model=model,
            strict=strict,
            markdown_url=markdown_url,
            output_save_url=output_save_url,
            filename=filename,
            deadline=deadline,
            resubmit_unknown=resubmit_unknown,
        )
        return await handle

    async def submit(
        self,
        markdown: MarkdownInput | None = None,
        *,
        schema: SchemaInput,
        model: str | None = None,
        strict: bool = False,
        markdown_url: str | None = None,
        output_save_url: str | None = None,
        filename: str | None = None,
        deadline: float | _Default | None = DEFAULT,
        resubmit_unknown: bool | None = None,
    ) -> JobHandle:
        """Create a job and return a handle the shared poller resolves.

        The schema is checked first, as the API would (:class:`SchemaError`), then the job passes
        admission and is created (see :meth:`create_job`). ``await handle`` gives the result.

        The upload's file name carries a random token (``invoice.ade-<token>.md``; a completed
        job's ``metadata.filename`` shows it). When a create's answer is lost, the client looks
        for the job carrying that token in the job list (see :class:`ReconcilePolicy`) and adopts
        it (``handle.reconciled``). If the search ends without finding it, the create is sent
        again only when ``resubmit_unknown`` allows it (``handle.possible_duplicate``, counted in
        ``stats().possible_duplicates``); otherwise :class:`CreateOutcomeUnknownError` says what
        the search learned.

        Args:
            markdown: a path to a ``.md`` file (``os.PathLike``), or the Markdown as ``str`` or
                ``bytes`` (a ``str`` is content, never a path, as in the official SDK).
            schema: a JSON Schema (mapping or JSON string), a msgspec Struct type, or a pydantic
                model class.
            model: the extract model, e.g. ``"extract-latest"``; the API's default when ``None``.
            strict: reject schemas with unsupported keywords instead of letting the API prune them.
            markdown_url: a URL the API downloads the Markdown from, instead of ``markdown``.
            output_save_url: where the API writes the result (required with zero data retention).
            filename: the upload's file name; defaults to the file's name or ``document.md``.
            deadline: the job's client-side deadline in seconds from now, ``None`` for none; by
                default the poll policy's ``job_timeout``. When it passes, waiters get
                :class:`JobTimeoutError` and the job may still finish server-side. (To bound one
                wait without ending the watch, wrap it: ``with anyio.fail_after(5): await handle``.)
            resubmit_unknown: send the create again when the job of a create whose answer was
                lost cannot be found; ``None``: the client's ``ReconcilePolicy`` decides.

        Raises:
            SchemaError: the API would refuse the schema; nothing was sent.
            InputError: the Markdown file cannot be read, or the Markdown is empty or not UTF-8
                (the API would refuse it); nothing was sent.
            CreateOutcomeUnknownError: an answer was lost, the job was not found, and resubmitting
                was not allowed.
            APIStatusError, TransportError: as :meth:`create_job`.
        """
        request = await self._build_request(
            markdown,
            schema=schema,
            model=model,
            strict=strict,
            markdown_url=markdown_url,
            output_save_url=output_save_url,
            filename=filename,
        )
        return await self._submit_prepared(request, deadline, resubmit_unknown=resubmit_unknown)

    def wait(self, job_id: str, *, deadline: float | _Default | None = DEFAULT) -> JobHandle:
        """A handle on any existing job, watched by the shared poller from now on.

        Use it to collect a job submitted elsewhere, or one whose deadline passed earlier. If the
        job is already watched, the watch is shared; ``deadline`` is this handle's own (other
        handles on the job keep theirs).
        """
        running = self._require_running()
        timeout = self._deadline(deadline)
        watch = running.scheduler.watch(job_id, timeout=timeout, first_delay=0.0)
        running.reconciler.note_known((job_id,))
        return JobHandle(watch, clock=self._clock, timeout=timeout)

    async def extract_many(
        self,
        inputs: Iterable[MarkdownInput] | AsyncIterable[MarkdownInput],
        *,
        schema: SchemaInput,
        model: str | None = None,
        strict: bool = False,
        deadline: float | _Default | None = DEFAULT,
        window: int | None = None,
        resubmit_unknown: bool | None = None,
    ) -> AsyncGenerator[Outcome, None]:
        """Extract many documents; yield one :class:`Succeeded` or :class:`Failed` per input, as
        jobs end.

        Example::

            async with contextlib.aclosing(client.extract_many(paths, schema=Invoice)) as outcomes:
                async for outcome in outcomes:
                    if outcome.ok:
                        save(outcome.input, outcome.result)
                    else:
                        report(outcome.input, outcome.stage, outcome.error)

        Inputs are read lazily, at most ``window`` at a time (default: the rate limit's
        ``max_in_flight``, else 1000), so a huge folder never sits in memory. A ``str`` input is
        Markdown content; pass paths as ``pathlib.Path``. Nothing is dropped: every input yields
        exactly one outcome, in the order jobs end (``outcome.index`` gives the input order); an
        unexpected exception while handling one input (say, an input object that misbehaves) is
        that input's :class:`Failed` outcome (:class:`UnexpectedError`). Leave early with
        ``aclosing`` (or ``break`` and let the generator close): work in progress is abandoned;
        creates already on the wire still get their answer, and their jobs, paid for, are logged,
        listed in ``stats().abandoned_job_ids`` and watched until they end. Lost create answers
        are handled as in :meth:`submit` (``resubmit_unknown`` likewise); ``outcome.reconciled``
        and ``outcome.possible_duplicate`` say what happened.

        Raises:
            ValueError, TypeError: a bad argument (``deadline``, ``window``, ``inputs``), checked
                before anything is read or sent; the client and its other users are unaffected.
            SchemaError: before anything is read or sent, if the API would refuse the schema.
            ClientClosedError: the client closed before every input had its outcome.
            Exception: whatever the ``inputs`` iterable raised, after the outcomes of the inputs
                read before it.
        """
        if isinstance(inputs, str | bytes | os.PathLike):
            raise TypeError("inputs must be an iterable of inputs; wrap a single input in a list")
        if not isinstance(inputs, Iterable | AsyncIterable):
            raise TypeError(f"inputs must be an iterable of inputs, got {type(inputs).__name__}")
        # Every argument is checked before anything starts: a mistake is this caller's alone.
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be a whole number of at least 1, got {window!r}")
        self._deadline(deadline)
        schema_json = prepare_schema(schema, strict=strict)
        running = self._require_running()
        size = window or self._rate_limit.max_in_flight or _DEFAULT_WINDOW

        async def submit(content: bytes, filename: str) -> JobHandle:
            request = AsyncExtractRequest(
                schema=schema_json, markdown=content, markdown_filename=filename, model=model, strict=strict
            )
            return await self._submit_prepared(request, deadline, resubmit_unknown=resubmit_unknown)

        send, receive = anyio.create_memory_object_stream[BatchItem](0)
        scope = anyio.CancelScope()

        async def feed() -> None:
            # Runs in the client's task group, so nothing may escape it: a failure of the batch
            # machinery goes to this caller alone, as the batch's end.
            with scope:
                async with send:
                    try:
                        failure = await run_batch(inputs, submit=submit, window=size, send=send)
                    except Exception as exc:
                        logger.exception("extract_many failed")
                        failure = unexpected("running extract_many", exc)
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await send.send(BatchEnd(failure))

        running.task_group.start_soon(feed, name="ade_async extract_many")
        try:
            async with receive:
                async for item in receive:
                    if isinstance(item, BatchEnd):
                        if item.error is not None:
                            raise item.error
                        return
                    yield item
            raise ClientClosedError(
                "The client was closed before every input of extract_many had its outcome."
            )
        finally:
            # Work in progress is abandoned; creates already on the wire still land (they are
            # paid), and their jobs are logged and counted in stats().abandoned_job_ids.
            scope.cancel()

    # --- low-level API calls ----------------------------------------------------------------------

    async def create_job(
        self,
        markdown: MarkdownInput | None = None,
        *,
        schema: SchemaInput,
        model: str | None = None,
        strict: bool = False,
        markdown_url: str | None = None,
        output_save_url: str | None = None,
        filename: str | None = None,
    ) -> str:
        """Create one extract job and return its id (low level: no schema checks, no watching).

        The create passes the client's admission gate (quota windows, in-flight cap, pauses after
        429s). A 429 is waited out and the create sent again; a failure that proves nothing was
        created (connection refused, 5xx) is retried within the retry budget. A create whose
        answer was lost is never sent again (the API has no idempotency key, and a second job
        would be paid twice): it raises :class:`CreateOutcomeUnknownError` at once, whose
        ``filename`` carries the upload's token (``submit`` looks for the job itself).

        The new job counts as in flight (for ``RateLimit.max_in_flight``) until this client sees
        it end (through :meth:`get_job`, :meth:`fetch_result` or a handle).

        Args:
            markdown: a path to a ``.md`` file, or the Markdown as ``str`` or ``bytes``.
            schema: a JSON Schema (mapping or JSON string), or a type to derive one from; sent
                without client-side checks.
            model, strict, markdown_url, output_save_url, filename: as for :meth:`submit`.

        Raises:
            InputError: the Markdown file cannot be read.
            UnprocessableEntityError: the API rejected the input (``detail`` says why).
            CreateOutcomeUnknownError: the create was sent and its answer lost; a job may exist.
            AuthenticationError, PaymentRequiredError, BadRequestError: the API refused it.
            ServerError, TransportError: failures that outlasted the retry budget.
        """
        content: bytes | None = None
        upload_name = "document.md"
        if markdown is not None:
            content, upload_name = await read_markdown(markdown, filename=filename)
        request = AsyncExtractRequest(
            schema=schema_to_json(schema),
            markdown=content,
            markdown_filename=upload_name,
            markdown_url=markdown_url,
            model=model,
            strict=strict,
            output_save_url=output_save_url,
        )
        tagged, _ = _tag_upload(request)
        try:
            return await self._create(tagged)
        except CreateOutcomeUnknownError:
            # No search follows (this call raises at once), so nothing could ever settle the
            # slot: free it rather than shrink max_in_flight for good.
            self._release_slot()
            raise

    async def get_job(self, job_id: str) -> ExtractJobStatusResponse:
        """The job's current status, and its result once completed.

        An answer of 206 (completed, output not fully conforming to the schema) is a success:
        the warnings are in the result's ``metadata``. Transport errors, 408, 429 and 5xx are
        retried under the client's :class:`RetryPolicy`.

        Raises:
            NotFoundError: no such job for this API key.
        """
        job = await self._read(lambda: self._transport.get_job(job_id))
        if job.is_terminal:
            self._finished(job_id)
        return job

    async def list_jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        page_size: int = 100,
    ) -> AsyncGenerator[JobSummary, None]:
        """Every job of this API key, page by page, optionally only those with one status.

        The list lags behind writes (a new job may be missing for a few seconds), carries no
        results (get a job to read its result), and has no total count.

        Args:
            status: one of ``pending``, ``processing``, ``completed``, ``failed``, ``cancelled``.
            page_size: jobs per request, 1 to 100.
        """
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, got {page_size}")
        page = 0
        while True:
            listing = await self._list_page(page, page_size, None if status is None else str(status))
            for job in listing.jobs:
                yield job
            # An empty page that claims more would loop forever; the API's paging has no cursor.
            if not listing.has_more or not listing.jobs:
                return
            page += 1

    async def fetch_result(self, job: ExtractJobStatusResponse | str) -> ExtractResponse:
        """The result of a completed job, wherever the API put it.

        Small results come inline (``data``). Results over 1 MB, or jobs created with
        ``output_save_url``, come through ``output_url``: a presigned URL, downloaded here
        *without* the API key. When a download fails (an expired URL answers 403), the job is
        fetched again for a fresh URL, up to ``url_refreshes`` times.

        Args:
            job: a job as returned by :meth:`get_job`, or a job id (then it is fetched first).

        Raises:
            JobFailedError: the job failed (``failure_reason`` says why).
            JobCancelledError: the job was cancelled.
            JobNotFinishedError: the job is still running.
            ResultDownloadError: the result could not be downloaded from ``output_url``.
        """
        if isinstance(job, str):
            job = await self.get_job(job)
        response, _, _ = await self._fetcher.fetch(job)
        return response

    # --- internals -----------------------------------------------------------------------------------

    async def _build_request(
        self,
        markdown: MarkdownInput | None,
        *,
        schema: SchemaInput,
        model: str | None,
        strict: bool,
        markdown_url: str | None,
        output_save_url: str | None,
        filename: str | None,
    ) -> AsyncExtractRequest:
        """The checked create request of ``submit`` (and of the FastAPI helper): the schema as the
        API would take it, the Markdown read. Raises SchemaError or InputError; nothing is sent."""
        if markdown is None and markdown_url is None:
            raise TypeError("nothing to extract: pass the Markdown (a path, str or bytes) or markdown_url")
        if markdown is not None and markdown_url is not None:
            raise ValueError("pass either the Markdown or markdown_url, not both")
        schema_json = prepare_schema(schema, strict=strict)
        content: bytes | None = None
        upload_name: str | None = None
        if markdown is not None:
            content, upload_name = await read_markdown(markdown, filename=filename)
            check_markdown(content, upload_name)
        return AsyncExtractRequest(
            schema=schema_json,
            markdown=content,
            markdown_filename=upload_name or "document.md",
            markdown_url=markdown_url,
            model=model,
            strict=strict,
            output_save_url=output_save_url,
        )

    async def _submit_prepared(
        self,
        request: AsyncExtractRequest,
        deadline: float | _Default | None,
        *,
        on_progress: ProgressHook | None = None,
        resubmit_unknown: bool | None = None,
        prior: PriorCreate | None = None,
    ) -> JobHandle:
        """Create (or find) the job of ``request`` and watch it.

        ``on_progress`` is awaited at each step of the create (:class:`CreateProgress`): before
        each wait for admission, just before each POST (with the upload token it carries), when
        its answer was lost and the search begins, and once the job id is known. ``prior``
        names creates sent by an earlier process whose outcome is unknown (the command's
        journal): their job is looked for first.

        Once a job exists it is watched before anything can interrupt: if this call is cancelled
        then (or the ``created`` hook raises), the job is logged and counted as abandoned
        (``stats().abandoned_job_ids``) and watched until it ends, never lost unrecorded.
        """
        running = self._require_running()
        timeout = self._deadline(deadline)  # checked first: a bad value must not leave a paid job
        allow = self._reconcile.resubmit_unknown if resubmit_unknown is None else resubmit_unknown
        job_id, reconciled, duplicate = await self._create_or_find(request, on_progress, allow, prior)
        watch = running.scheduler.watch(job_id, timeout=timeout)
        self._counters.jobs_submitted += 1
        self._events.publish(JobEvent(kind="submitted", job_id=job_id, status=watch.status))
        handle = JobHandle(
            watch, clock=self._clock, timeout=timeout, reconciled=reconciled, possible_duplicate=duplicate
        )
        try:
            if on_progress is not None:
                with anyio.CancelScope(shield=True):  # the job id must reach a journal
                    await on_progress(CreateProgress(phase="created", job_id=job_id))
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            self._abandoned(job_id)
            raise
        return handle

    async def _create_or_find(
        self,
        request: AsyncExtractRequest,
        on_progress: ProgressHook | None,
        allow_resubmit: bool,
        prior: PriorCreate | None,
    ) -> tuple[str, bool, bool]:
        """The job id, whether it was found rather than created, and whether a create was sent
        again after a search found nothing (a possible duplicate).

        In-flight slots: a created job holds its create's slot until it is seen to end. A create
        whose answer was lost keeps its slot while its job is looked for: found, the slot passes
        to that job; not found, it is freed (every candidate was seen to end). If this caller
        stops waiting, the search goes on and settles the slot itself.
        """
        reconciler = self._require_running().reconciler
        tokens: list[str] = list(prior.tokens) if prior is not None else []
        first_sent_at = prior.sent_at if prior is not None else None
        resubmissions = 0
        unknown: CreateOutcomeUnknownError | None = None
        if prior is not None and prior.tokens:
            await _tell(on_progress, CreateProgress(phase="searching", match_key=prior.tokens[-1]))
            found = await reconciler.find(tokens, sent_at=prior.sent_at, unknown_at=time.time())
            if isinstance(found, Found):
                self._adopted(found.job_id)  # an earlier process's create: it holds no slot here
                return found.job_id, True, False
            if not allow_resubmit:
                raise CreateOutcomeUnknownError(
                    f"an earlier run sent the create for {request.markdown_filename} and stopped before "
                    f"its answer; {found.report.describe()}, none carries its upload token. It was not "
                    "sent again, to avoid paying twice: allow it with resubmit_unknown=True "
                    "(--resubmit-unknown).",
                    filename=request.markdown_filename,
                    content_sha256=None
                    if request.markdown is None
                    else hashlib.sha256(request.markdown).hexdigest(),
                    sent_at=prior.sent_at,
                    cause=ADEError("the process that sent the create stopped before its answer"),
                    search=found.report,
                )
            resubmissions += 1
            self._counters.possible_duplicates += 1
        while True:
            tagged, token = _tag_upload(request)

            async def phase(step: SendPhase, token: str | None = token) -> None:
                await _tell(on_progress, CreateProgress(phase=step, match_key=token))

            try:
                job_id = await self._create(tagged, phase)
            except CreateOutcomeUnknownError as error:
                if token is None:
                    self._release_slot()  # nothing to look for, so nothing could settle it
                    raise  # a markdown_url create carries no token
                unknown = error
                tokens.append(token)
                first_sent_at = error.sent_at if first_sent_at is None else first_sent_at
                await _tell(on_progress, CreateProgress(phase="searching", match_key=token))
                found = await reconciler.find(
                    tokens, sent_at=first_sent_at, unknown_at=time.time(), on_orphaned=self._orphaned_search
                )
                if isinstance(found, Found):
                    self._adopted(found.job_id, holds_slot=True)
                    return found.job_id, True, resubmissions > 0
                self._release_slot()
                if not allow_resubmit or resubmissions >= _MAX_RESUBMISSIONS:
                    raise unknown.after_search(found.report, resubmissions=resubmissions) from error
                resubmissions += 1
                self._counters.possible_duplicates += 1
                logger.warning(
                    "the job of a lost create for %s was not found (%s); sending it again, as allowed: "
                    "it may be paid twice",
                    request.markdown_filename,
                    found.report.describe(),
                )
                continue
            return job_id, False, resubmissions > 0

    def _note_known_jobs(self, job_ids: Iterable[str]) -> None:
        """Jobs created elsewhere that are accounted for (the command's journal): never taken for
        the job of a create whose answer was lost."""
        self._require_running().reconciler.note_known(job_ids)

    def _adopted(self, job_id: str, *, holds_slot: bool = False) -> None:
        self._counters.creates_reconciled += 1
        if holds_slot:
            self._unfinished.add(job_id)  # the lost create's slot passes to its job
        logger.info("found the job %s of a create whose answer was lost; adopted it", job_id)

    def _orphaned_search(self, outcome: Found | NotFound) -> None:
        """A search whose caller stopped waiting has ended: settle its create's slot."""
        if isinstance(outcome, NotFound):
            self._release_slot()
            return
        self._adopted(outcome.job_id, holds_slot=True)
        running = self._running
        if running is not None:
            running.scheduler.watch(outcome.job_id, timeout=None, orphan=True)
        self._abandoned(outcome.job_id)

    def _orphaned_create(
        self, job_id: str | None, unknown: CreateOutcomeUnknownError | None, filename: str
    ) -> None:
        """The answer of a create whose caller left came: keep its job, or look for it."""
        running = self._running
        if running is None:
            return
        if job_id is not None:
            self._unfinished.add(job_id)
            running.reconciler.note_known((job_id,))
            running.scheduler.watch(job_id, timeout=None, orphan=True)
            self._abandoned(job_id)
            return
        token = token_of(filename)
        if unknown is None or token is None:
            self._release_slot()  # nothing to look for, so nothing could settle it
            return

        async def search() -> None:
            try:
                found = await running.reconciler.find(
                    (token,), sent_at=unknown.sent_at, unknown_at=time.time()
                )
            except ClientClosedError:
                return
            except Exception:  # a bug: never into the client's task group
                logger.exception("looking for the job of an abandoned create failed")
                return
            self._orphaned_search(found)

        running.task_group.start_soon(search, name="ade_async orphaned search")

    def _abandoned(self, job_id: str) -> None:
        """A job exists whose caller stopped waiting: say so, and keep its id (it is paid)."""
        self._counters.jobs_abandoned += 1
        self._counters.abandoned.append(job_id)
        logger.warning(
            "job %s was created after its caller stopped waiting (e.g. extract_many was left early); "
            "it runs server-side and is watched until it ends: collect it with client.wait(%r)",
            job_id,
            job_id,
        )

    async def _create(self, request: AsyncExtractRequest, on_phase: PhaseHook | None = None) -> str:
        running = self._require_running()
        job_id = await running.creator.send(request, on_phase=on_phase)
        self._unfinished.add(job_id)
        running.reconciler.note_known((job_id,))
        logger.debug("created job %s", job_id)
        return job_id

    def _deadline(self, deadline: float | _Default | None) -> float | None:
        if deadline is DEFAULT:
            return self._poll.job_timeout
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline must be positive or None, got {deadline}")
        return deadline

    async def _list_page(self, page: int, page_size: int, status: str | None) -> JobsListResponse:
        return await self._read(
            lambda: self._transport.list_jobs(page=page, page_size=page_size, status=status)
        )

    async def _read(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run a read, retrying it under the retry policy (the thin shell of read_retry_delay)."""
        started = self._clock.now()
        attempt = 0
        while True:
            attempt += 1
            self._counters.reads_sent += 1
            try:
                return await call()
            except ClientClosedError:
                raise
            except ADEError as error:
                elapsed = self._clock.now() - started
                delay = read_retry_delay(self._retry, error, attempt=attempt, elapsed=elapsed, rng=self._rng)
                if delay is None:
                    raise
                self._counters.read_retries += 1
                logger.debug("read failed (%s); retry %d in %.2f s", error, attempt, delay)
                await self._clock.sleep_until(self._clock.now() + delay)

    def _finished(self, job_id: str) -> None:
        """A job this client created has ended: its in-flight slot is free again."""
        if job_id in self._unfinished:
            self._unfinished.discard(job_id)
            self._release_slot()

    def _release_slot(self) -> None:
        if self._running is not None:
            self._running.gate.release()

    def _require_running(self) -> _Running:
        if self._running is None or not self._transport.is_open:
            raise ClientClosedError("The client is not open; use it inside `async with Client(...)`.")
        return self._running


async def _tell(hook: ProgressHook | None, progress: CreateProgress) -> None:
    if hook is not None:
        await hook(progress)


def _check_cap(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of bytes, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 byte, got {value}")


class PriorCreate(msgspec.Struct, frozen=True, kw_only=True):
    """Creates an earlier process sent for one input, whose outcome it never learned.

    Attributes:
        tokens: the upload tokens those creates carried.
        sent_at: Unix time the first of them was sent (at the latest).
    """

    tokens: tuple[str, ...]
    sent_at: float


def _tag_upload(request: AsyncExtractRequest) -> tuple[AsyncExtractRequest, str | None]:
    """The request with a fresh upload token in its file name, and the token (``None`` for a
    ``markdown_url`` create, whose file name the API takes from the URL)."""
    if request.markdown is None:
        return request, None
    token = new_upload_token()
    tagged = msgspec.structs.replace(
        request, markdown_filename=tag_filename(request.markdown_filename, token)
    )
    return tagged, token


class _Running:
    """What exists only while the client is open."""

    __slots__ = ("creator", "gate", "reconciler", "scheduler", "task_group")

    def __init__(
        self,
        task_group: TaskGroup,
        gate: Admission,
        creator: CreateSender,
        scheduler: PollScheduler,
        reconciler: Reconciler,
    ) -> None:
        self.task_group = task_group
        self.gate = gate
        self.creator = creator
        self.scheduler = scheduler
        self.reconciler = reconciler
