"""``ade_async.Client``: the async context manager that owns the connection to the ADE API.

This layer holds the low-level calls, one per API operation, plus fetching a completed job's result
wherever the API put it. Later layers (admission, the shared poller, batches) build on these calls.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Final, Self, TypeVar

import msgspec

from ._admission import AdmissionGate
from ._clock import Clock, LoopClock
from ._config import Timeouts, resolve_api_key, resolve_base_url
from ._create import CreateSender
from ._errors import (
    ADEError,
    ClientClosedError,
    JobCancelledError,
    JobFailedError,
    JobNotFinishedError,
    MalformedResponseError,
    ResultDownloadError,
)
from ._inputs import MarkdownInput, read_markdown
from ._ratelimit import RateLimit
from ._retry import RetryPolicy, read_retry_delay
from ._schema import SchemaInput, schema_to_json
from ._stats import ClientStats, Counters
from ._transport import JOBS_PATH, Transport, redact_url
from ._wire import (
    AsyncExtractRequest,
    ExtractJobStatusResponse,
    ExtractResponse,
    JobsListResponse,
    JobStatus,
    JobSummary,
    decode_extract_response,
)

_T = TypeVar("_T")

__all__ = ["Client"]

logger = logging.getLogger("ade_async")

#: How many fresh ``output_url`` s to ask for when a download fails (URLs expire ~1 h after a GET).
_DEFAULT_URL_REFRESHES: Final = 2


class Client:
    """An asynchronous client for LandingAI ADE Extract Jobs v1.

    Use it as an async context manager; the HTTP session lives inside the block::

        async with ade_async.Client() as client:           # key from VISION_AGENT_API_KEY
            job_id = await client.create_job(Path("invoice.md"), schema=schema)
            job = await client.get_job(job_id)
            if job.is_terminal:
                result = await client.fetch_result(job)
                print(result.extraction)

    Args:
        api_key: the API key; defaults to the ``VISION_AGENT_API_KEY`` environment variable.
        base_url: the API root, e.g. a proxy or the simulator; defaults to
            ``LANDINGAI_ADE_BASE_URL``, then to the host of ``environment``.
        environment: ``"production"`` (US, the default) or ``"eu"``; defaults to
            ``LANDINGAI_ADE_ENVIRONMENT``. Keys are per region.
        timeouts: connect, read and total timeouts.
        max_connections: the size of the HTTP connection pool.
        url_refreshes: how many times to re-get a job for a fresh ``output_url`` when a
            download fails (the URLs expire about an hour after they are issued).
        rate_limit: how fast jobs may be created (:class:`RateLimit`); by default adaptive,
            learning the unpublished quota from 429s.
        retry: how failed calls are retried (:class:`RetryPolicy`). Reads are retried on
            transport errors, 408, 429 and 5xx; a create only when nothing can have been created.
        clock: the time source (tests pass ``ade_async.testing.FakeClock``).
        seed: seeds the jitter of backoffs, for reproducible runs.

    Raises:
        ConfigurationError: no API key, an unknown environment, or both ``base_url`` and
            ``environment`` given.

    The API has no endpoint to cancel a job: nothing in this client can stop work the server has
    accepted, and nothing pretends to.
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
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        if url_refreshes < 0:
            raise ValueError(f"url_refreshes must be 0 or more, got {url_refreshes}")
        self._transport = Transport(
            base_url=resolve_base_url(base_url, environment),
            api_key=resolve_api_key(api_key),
            timeouts=timeouts or Timeouts(),
            max_connections=max_connections,
        )
        self._url_refreshes = url_refreshes
        self._rate_limit = rate_limit if rate_limit is not None else RateLimit()
        self._retry = retry if retry is not None else RetryPolicy()
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._rng = random.Random(seed)
        self._counters = Counters()
        self._gate: AdmissionGate | None = None
        self._creator: CreateSender | None = None
        # Jobs this client created whose admission is still in flight: released when seen ended.
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

    def stats(self) -> ClientStats:
        """A frozen snapshot of what this client has done and of its admission gate."""
        gate = self._require_gate()
        return ClientStats.snapshot(self._counters, gate.stats())

    def __repr__(self) -> str:
        if self._gate is None or not self._transport.is_open:
            return f"<ade_async.Client base_url={self.base_url!r} closed>"
        s = self._gate.stats()
        return (
            f"<ade_async.Client base_url={self.base_url!r} open admitted={s.admitted} "
            f"in_flight={s.in_flight} waiting={s.waiting} 429s={s.rate_limited}>"
        )

    # --- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a Client can be entered only once; create a new one")
        self._entered = True
        await self._transport.open()
        # Created here, inside the running loop: the gate's timers belong to it.
        self._gate = AdmissionGate(self._rate_limit, clock=self._clock, rng=self._rng)
        self._creator = CreateSender(
            transport=self._transport,
            gate=self._gate,
            retry=self._retry,
            clock=self._clock,
            rng=self._rng,
            counters=self._counters,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client: creates still waiting for admission get :class:`ClientClosedError`,
        and the HTTP session closes. Later calls raise :class:`ClientClosedError` too."""
        if self._gate is not None:
            self._gate.close(
                ClientClosedError("The client was closed while this create waited for admission.")
            )
        await self._transport.close()

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
        """Create one extract job and return its id.

        The create first passes the client's admission gate (quota windows, in-flight cap,
        pauses after 429s). A 429 is waited out and the create sent again; a failure that proves
        nothing was created (connection refused, 5xx) is retried within the retry budget. A create
        whose answer was lost is never sent again (the API has no idempotency key, and a second
        job would be paid twice): it raises :class:`CreateOutcomeUnknownError`.

        The new job counts as in flight (for ``RateLimit.max_in_flight``) until this client sees
        it end, through :meth:`get_job` or :meth:`fetch_result`.

        Args:
            markdown: a path to a ``.md`` file, or the Markdown as ``str`` or ``bytes``.
            schema: a JSON Schema, as a mapping or a JSON string; its root must be an object.
            model: the extract model, e.g. ``"extract-latest"``; the API's default when ``None``.
            strict: reject schemas with unsupported keywords (422) instead of pruning them.
            markdown_url: a URL the API downloads the Markdown from, instead of ``markdown``.
            output_save_url: where the API writes the result (required with zero data retention).
            filename: the upload's file name; defaults to the file's name or ``document.md``.

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
        job_id = await self._require_creator().send(request)
        self._unfinished.add(job_id)
        logger.debug("created job %s", job_id)
        return job_id

    async def get_job(self, job_id: str) -> ExtractJobStatusResponse:
        """The job's current status, and its result once completed.

        An answer of 206 (completed, output not fully conforming to the schema) is a success:
        the warnings are in the result's ``metadata``.

        Transport errors, 408, 429 and 5xx are retried under the client's :class:`RetryPolicy`.

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
    ) -> AsyncIterator[JobSummary]:
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
        refreshes_left = self._url_refreshes
        while True:
            _raise_unless_completed(job)
            if job.data is not None:
                return job.data
            if job.output_url is None:
                raise MalformedResponseError(
                    f"job {job.job_id} is completed but carries neither data nor output_url",
                    method="GET",
                    path=f"{JOBS_PATH}/{job.job_id}",
                    status_code=200,
                )
            try:
                return await self._download_result(job.job_id, job.output_url)
            except ResultDownloadError:
                if refreshes_left == 0:
                    raise
                refreshes_left -= 1
                logger.debug("refreshing output_url of job %s after a failed download", job.job_id)
                job = await self.get_job(job.job_id)

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
        """A job this client created has ended: its in-flight admission is free again."""
        if job_id in self._unfinished:
            self._unfinished.discard(job_id)
            if self._gate is not None:
                self._gate.release()

    def _require_gate(self) -> AdmissionGate:
        if self._gate is None:
            raise ClientClosedError("The client is not open; use it inside `async with Client(...)`.")
        return self._gate

    def _require_creator(self) -> CreateSender:
        if self._creator is None or not self._transport.is_open:
            raise ClientClosedError("The client is closed; use it inside `async with Client(...)`.")
        return self._creator

    async def _download_result(self, job_id: str, url: str) -> ExtractResponse:
        shown = redact_url(url)
        try:
            response = await self._transport.download(url)
        except ClientClosedError:
            raise
        except ADEError as exc:
            raise ResultDownloadError(
                f"downloading the result of job {job_id} from {shown} failed: {exc}",
                job_id=job_id,
                status_code=None,
            ) from exc
        if response.status != 200:
            hint = " (the URL has probably expired)" if response.status in (400, 403, 404, 410) else ""
            raise ResultDownloadError(
                f"downloading the result of job {job_id} from {shown} answered {response.status}{hint}",
                job_id=job_id,
                status_code=response.status,
            )
        try:
            return decode_extract_response(response.body)
        except msgspec.DecodeError as exc:  # also msgspec.ValidationError, its subclass
            raise ResultDownloadError(
                f"the result of job {job_id} downloaded from {shown} is not a valid extraction result: {exc}",
                job_id=job_id,
                status_code=response.status,
            ) from exc


def _raise_unless_completed(job: ExtractJobStatusResponse) -> None:
    if job.status == JobStatus.COMPLETED:
        return
    if job.status == JobStatus.FAILED:
        reason = job.failure_reason or "no reason given"
        raise JobFailedError(
            f"job {job.job_id} failed: {reason}", job_id=job.job_id, failure_reason=job.failure_reason
        )
    if job.status == JobStatus.CANCELLED:
        raise JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id)
    raise JobNotFinishedError(
        f"job {job.job_id} has no result yet (status {job.status!r})", job_id=job.job_id, status=job.status
    )
