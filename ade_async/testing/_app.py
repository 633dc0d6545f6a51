"""The simulator's aiohttp application: thin handlers over :class:`SimulatorState`.

Routes (paths and shapes from the vendor's OpenAPI spec and seeds 000-002):

* ``POST /v1/ade/extract/jobs``: create (``multipart/form-data``; urlencoded is read too, for
  the error paths). Checks, in order: 401 key; 402 credits; FastAPI form validation (422
  ``schema`` missing, ``strict`` not a boolean); 400 model version; the schema (400/422, see
  ``_extraction``); the Markdown inputs (422); the ``markdown_url`` download (400); then the
  quota (429) and the job is accepted (202) in one step without awaiting, so a rejected or
  invalid create never counts toward the quota.
* ``GET /v1/ade/extract/jobs/{job_id}``: 200, or 206 when completed with warnings; 404.
* ``GET /v1/ade/extract/jobs``: one page of the caller's jobs, newest first; 422 on bad query.
* ``GET /_simulator/outputs/{token}``: the result behind an ``output_url`` (S3-like errors).

Error bodies follow seed 002: the create endpoint answers ``{"error": ...}``, get and list
``{"message": ...}``, and every 422 is FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``.

Faults are applied around the handlers (see ``Faults`` and ``Simulator.inject``): "drop" closes
the connection before anything is done; "lost_response" does the work and then closes it;
"malformed" does the work and cuts the body in half; "not_json" does the work and answers an HTML
page; "404" and "expired" answer as a missing job and an expired URL would, doing nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import msgspec
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from .._wire import (
    ExtractJobStatusResponse,
    HTTPValidationError,
    JobCreationResponse,
    JobsListResponse,
    JobStatus,
    JobSummary,
    ValidationErrorItem,
)
from ._config import SUPPORTED_MODEL, Endpoint, SimulatorConfig
from ._extraction import PreparedSchema, SchemaError, prepare_schema
from ._forms import FormError, FormPart, parse_form
from ._records import Exchange, FormField
from ._state import Job, SimulatorState

__all__ = [
    "CLOCK_KEY",
    "JOBS_PATH",
    "JOBS_TIMELINE_PATH",
    "OUTPUTS_PATH",
    "STATE_KEY",
    "STATS_PATH",
    "build_app",
]

logger: Final = logging.getLogger("ade_async.testing")

JOBS_PATH: Final = "/v1/ade/extract/jobs"
OUTPUTS_PATH: Final = "/_simulator/outputs"
#: Where the counters are served as JSON (not part of the ADE API; no key needed).
STATS_PATH: Final = "/_simulator/stats"
#: Where every job's timeline is served as JSON (for detection-latency measurements).
JOBS_TIMELINE_PATH: Final = "/_simulator/jobs"
#: Where a simulator application keeps its :class:`SimulatorState`.
STATE_KEY: Final = web.AppKey("ade_async.testing.state", SimulatorState)
#: Where it keeps the clock its jobs, quota windows, list lag and output URLs live by.
CLOCK_KEY: Final = web.AppKey[Callable[[], float]]("ade_async.testing.clock")

#: Largest create body read; far above any Markdown a test sends.
MAX_BODY_BYTES: Final = 256 * 1024 * 1024
#: The documented download timeout is not published; 10 s keeps failing tests short.
DOWNLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)

_JSON: Final = "application/json"
_XML: Final = "application/xml"
_XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: What an intercepting proxy or captive portal puts where the JSON should be ("not_json").
_HTML_PAGE: Final = (
    b"<html><head><title>Gateway</title></head><body>Please sign in to the network.</body></html>"
)
_LIST_STATUSES: Final = tuple(sorted(status.value for status in JobStatus))
_INTEGER: Final = re.compile(r"^[+-]?\d+$")


@dataclass(slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Context:
    """Per-request facts the handler hands back to the endpoint wrapper (for recording)."""

    form: tuple[FormField, ...] = ()


class _Downloader:
    """The client session that fetches ``markdown_url`` documents, opened on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str) -> bytes | None:
        """The document's bytes, or ``None`` when it cannot be downloaded."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT)
        try:
            async with self._session.get(url, allow_redirects=True) as response:
                if not 200 <= response.status < 300:
                    logger.debug("markdown_url answered %d", response.status)
                    return None
                return await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.debug("markdown_url download failed: %r", exc)
            return None

    async def close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_DOWNLOADER_KEY: Final = web.AppKey("ade_async.testing.downloader", _Downloader)


# ------------------------------------------------------------------------------------------
# answers


def _encode(value: object) -> bytes:
    return msgspec.json.encode(value)


def _error(endpoint: Endpoint, status: int, message: str, *, code: str = "InternalError") -> _Answer:
    if endpoint == "download":
        # Output URLs are presigned object-store URLs; their errors are S3's XML documents.
        xml = f"{_XML_DECLARATION}<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return _Answer(status, xml.encode(), _XML)
    # Seed 002: "message field, except for the create endpoint, which returns ... an error field".
    key = "error" if endpoint == "create" else "message"
    return _Answer(status, _encode({key: message}))


def _unprocessable(*items: ValidationErrorItem) -> _Answer:
    return _Answer(422, _encode(HTTPValidationError(detail=items)))


def _value_error(field_name: str, message: str) -> _Answer:
    return _unprocessable(ValidationErrorItem(loc=("body", field_name), msg=message, type="value_error"))


def _retry_after_headers(config: SimulatorConfig, wait: float, wall: float) -> dict[str, str]:
    form = config.retry_after
    if form == "seconds":
        return {"Retry-After": str(max(1, math.ceil(wait)))}
    if form == "ms":
        return {"retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
    if form == "date":
        # An HTTP-date has whole seconds: round the moment up so an honest client is never early.
        return {"Retry-After": email.utils.formatdate(math.ceil(wall + wait), usegmt=True)}
    return {}  # the documented API sends no hint


def _too_many(state: SimulatorState, endpoint: Endpoint, wait: float | None) -> _Answer:
    state.rate_limited += 1
    answer = _error(endpoint, 429, "Rate limit exceeded", code="SlowDown")
    answer.headers.update(_retry_after_headers(state.config, 1.0 if wait is None else wait, time.time()))
    return answer


def _bearer(headers: CIMultiDictProxy[str]) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _authenticate(state: SimulatorState, endpoint: Endpoint, request: web.Request) -> str | _Answer:
    """The caller's API key, or the 401 answer."""
    key = _bearer(request.headers)
    if key is None:
        return _error(endpoint, 401, "Missing API key: send 'Authorization: Bearer <key>'")
    if not state.is_valid_key(key):
        return _error(endpoint, 401, "Invalid API key")
    return key


# ------------------------------------------------------------------------------------------
# the endpoint wrapper: faults, counters, recording

_Handler = Callable[[web.Request, SimulatorState, _Context], Awaitable[_Answer]]


def _record(
    state: SimulatorState, endpoint: Endpoint, request: web.Request, ctx: _Context, answer: _Answer | None
) -> None:
    if not state.config.record:
        return
    headers = {} if answer is None else {"Content-Type": answer.content_type, **answer.headers}
    state.record(
        Exchange(
            endpoint=endpoint,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            form=ctx.form,
            status=0 if answer is None else answer.status,
            response_body=b"" if answer is None else answer.body,
            response_headers=headers,
        )
    )


def _hang_up(
    request: web.Request, state: SimulatorState, endpoint: Endpoint, ctx: _Context
) -> web.StreamResponse:
    """Close the connection without an answer."""
    state.requests[(endpoint, 0)] += 1
    _record(state, endpoint, request, ctx, None)
    logger.debug("closing the connection of a %s request without an answer", endpoint)
    # Closing the transport here means aiohttp's attempt to write the response below fails with
    # a ConnectionResetError that it treats as a premature client disconnection: nothing is sent
    # and nothing is logged above debug level (raising instead would log a traceback).
    request.protocol.force_close()
    return web.Response(status=204)


def _endpoint(endpoint: Endpoint, handle: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        ctx = _Context()
        fault = state.next_fault(endpoint)
        if fault == "drop":
            return _hang_up(request, state, endpoint, ctx)
        if fault in ("500", "502", "503"):
            status = int(fault)
            answer = _error(endpoint, status, f"Simulated server error ({status})")
        elif fault == "429":
            wait = state.quota_wait(request.app[CLOCK_KEY]())
            answer = _too_many(state, endpoint, state.config.fault_retry_after if wait is None else wait)
        elif fault == "404":
            answer = _error(endpoint, 404, "Job not found")
        elif fault == "expired":
            answer = _error(endpoint, 403, "Request has expired", code="AccessDenied")
        else:
            if fault == "slow":
                await asyncio.sleep(state.config.faults.slow_seconds)
            answer = await handle(request, state, ctx)
            if fault == "lost_response":
                return _hang_up(request, state, endpoint, ctx)
            if fault == "malformed":
                answer.body = answer.body[: len(answer.body) // 2]
            elif fault == "not_json":
                answer.body, answer.content_type = _HTML_PAGE, "text/html"
        state.requests[(endpoint, answer.status)] += 1
        _record(state, endpoint, request, ctx, answer)
        return web.Response(
            status=answer.status, body=answer.body, content_type=answer.content_type, headers=answer.headers
        )

    return handler


# ------------------------------------------------------------------------------------------
# create


@dataclass(frozen=True, slots=True)
class _CreateRequest:
    schema: PreparedSchema
    model: str
    markdown: bytes | None
    filename: str
    markdown_url: str | None
    output_save_url: bool


async def _read_form(request: web.Request) -> list[FormPart]:
    """The create form's fields, in order (an empty list when the body is not a form)."""
    content_type = request.headers.get("Content-Type", "")
    mime = content_type.partition(";")[0].strip().lower()
    if not (mime.startswith("multipart/") or mime == "application/x-www-form-urlencoded"):
        return []  # not a form: every field is missing, as for FastAPI
    return parse_form(content_type, await request.read())


def _form_record(parts: list[FormPart]) -> tuple[FormField, ...]:
    return tuple(
        FormField(
            name=part.name,
            is_file=part.filename is not None,
            filename=part.filename,
            content_type=part.content_type,
            value=None if part.filename is not None else part.text,
            size=len(part.data),
        )
        for part in parts
    )


def _resolve_model(requested: str | None, config: SimulatorConfig) -> str | None:
    # ade-api-notes §7: absent or "extract-latest" -> the newest snapshot; the older snapshots
    # (extract-20250930, extract-20251024) "are deprecated and will result in errors".
    if requested is None or requested == "extract-latest":
        return config.default_model
    if requested in (SUPPORTED_MODEL, config.default_model):
        return requested
    return None


def _valid_url(text: str) -> bool:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        return False
    return url.scheme in ("http", "https") and bool(url.host)


def _parse_create(parts: list[FormPart], config: SimulatorConfig) -> _CreateRequest | _Answer:
    # The last value of a repeated text field wins, as in FastAPI.
    fields = {part.name: part for part in parts}

    # FastAPI validates the form model first and reports every problem at once.
    problems: list[ValidationErrorItem] = []
    schema_part = fields.get("schema")
    if schema_part is None:
        problems.append(ValidationErrorItem(loc=("body", "schema"), msg="Field required", type="missing"))
    strict = False
    strict_part = fields.get("strict")
    if strict_part is not None:
        word = strict_part.text.strip().lower()
        if word == "true":
            strict = True
        elif word not in ("false", ""):
            problems.append(
                ValidationErrorItem(
                    loc=("body", "strict"),
                    msg="Input should be a valid boolean, unable to interpret input",
                    type="bool_parsing",
                )
            )
    if problems or schema_part is None:
        return _unprocessable(*problems)

    model_part = fields.get("model")
    requested = model_part.text.strip() if model_part is not None else ""
    model = _resolve_model(requested or None, config)
    if model is None:
        supported = ", ".join(sorted({"extract-latest", SUPPORTED_MODEL, config.default_model}))
        return _error(
            "create", 400, f"Invalid extract version '{requested}'. Supported versions: {supported}"
        )

    try:
        schema = prepare_schema(schema_part.text, strict)
    except SchemaError as exc:
        if exc.status == 400:
            return _error("create", 400, exc.message)
        return _value_error("schema", exc.message)

    # Markdown inputs (seed 002, "Create an Extract Job: Status 422").
    documents = [part for part in parts if part.name == "markdown"]
    url_part = fields.get("markdown_url")
    if len(documents) > 1:
        return _value_error("markdown", "Multiple Markdown files detected")
    if documents and url_part is not None:
        return _value_error("markdown", "Cannot provide both 'markdown' and 'markdown_url'")
    if not documents and url_part is None:
        return _value_error("markdown", "Must provide either 'markdown' or 'markdown_url'")
    save_part = fields.get("output_save_url")
    output_save_url = save_part is not None and bool(save_part.text.strip())
    if documents:
        document = documents[0]
        # A bare string part (no filename) is refused (ade-api-notes §1, "Practical gotcha").
        if not document.filename:
            return _value_error("markdown", "Invalid file provided")
        if not document.data:
            return _value_error("markdown", "No markdown file or URL provided")
        if not document.filename.lower().endswith(".md"):
            return _value_error("markdown", "Unsupported format")
        return _CreateRequest(
            schema=schema,
            model=model,
            markdown=document.data,
            filename=document.filename,
            markdown_url=None,
            output_save_url=output_save_url,
        )
    assert url_part is not None
    url = url_part.text.strip()
    if not url:
        return _value_error("markdown_url", "No markdown file or URL provided")
    if not _valid_url(url):
        return _value_error("markdown_url", "Invalid URL format")
    segment = URL(url).name  # decoded already
    return _CreateRequest(
        schema=schema,
        model=model,
        markdown=None,
        filename=segment or "document.md",
        markdown_url=url,
        output_save_url=output_save_url,
    )


def _decode_markdown(data: bytes) -> str | None:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


async def _create(request: web.Request, state: SimulatorState, ctx: _Context) -> _Answer:
    key = _authenticate(state, "create", request)
    if isinstance(key, _Answer):
        return key
    if state.credits_exhausted:
        return _error("create", 402, "Insufficient credits: add credits to your account to continue")
    try:
        parts = await _read_form(request)
    except web.HTTPRequestEntityTooLarge:
        return _error("create", 413, "Request body too large")
    except FormError:
        # FastAPI's answer to a body it cannot parse as the form it claims to be.
        return _error("create", 400, "There was an error parsing the body")
    ctx.form = _form_record(parts)

    parsed = _parse_create(parts, state.config)
    if isinstance(parsed, _Answer):
        return parsed
    data = parsed.markdown
    if parsed.markdown_url is not None:
        data = await request.app[_DOWNLOADER_KEY].fetch(parsed.markdown_url)
        if data is None:
            return _error("create", 400, "Failed to download document from URL")
        if not data:
            return _value_error("markdown_url", "No markdown file or URL provided")
    assert data is not None
    document = _decode_markdown(data)
    if document is None:
        return _value_error(
            "markdown" if parsed.markdown is not None else "markdown_url", "Unsupported format"
        )

    # From here on nothing awaits: the quota check and the acceptance are one atomic step.
    now = request.app[CLOCK_KEY]()
    wait = state.quota_wait(now)
    if wait is not None:
        return _too_many(state, "create", wait)
    job = state.create_job(
        api_key=key,
        document=document,
        content_sha256=hashlib.sha256(data).hexdigest(),
        filename=parsed.filename,
        model=parsed.model,
        schema=parsed.schema,
        output_save_url=parsed.output_save_url,
        now=now,
        wall=time.time(),
    )
    return _Answer(202, _encode(JobCreationResponse(job_id=job.job_id)))


# ------------------------------------------------------------------------------------------
# get, list, download


def _job_body(request: web.Request, state: SimulatorState, job: Job, now: float) -> _Answer:
    status = job.status_at(now)
    config = state.config
    if status != "completed":
        body = ExtractJobStatusResponse(
            job_id=job.job_id,
            status=status,
            received_at=job.received_at,
            progress=0.0,  # "stays 0.0 until the job is completed" (seed 000)
            created_at=job.received_at,  # the spec: created_at "mirrors received_at"
            org_id=config.org_id,
            failure_reason=job.failure_reason if status == "failed" else None,
        )
        return _Answer(200, _encode(body))
    result = state.result_of(job)
    # 206: completed, but with warnings (seed 002: "Any warning ... causes ... a 206").
    code = 206 if result.has_warnings else 200
    if job.cached_body is not None:
        return _Answer(code, job.cached_body)
    output_url: str | None = None
    if result.via_output_url:
        # A fresh presigned-like URL on every get (ade-api-notes §2), on this very server.
        token = state.issue_output_token(job, now)
        output_url = f"{request.url.origin()}{OUTPUTS_PATH}/{token}"
    encoded = _encode(
        ExtractJobStatusResponse(
            job_id=job.job_id,
            status=status,
            received_at=job.received_at,
            progress=1.0,
            created_at=job.received_at,
            org_id=config.org_id,
            version=job.model,
            data=None if result.via_output_url else result.response,
            output_url=output_url,
            metadata=result.response.metadata,
            failure_reason=None,
        )
    )
    if output_url is None:
        job.cached_body = encoded  # the same on every later get
    return _Answer(code, encoded)


async def _get(request: web.Request, state: SimulatorState, ctx: _Context) -> _Answer:
    state.gets += 1
    key = _authenticate(state, "get", request)
    if isinstance(key, _Answer):
        return key
    job = state.find_job(request.match_info["job_id"], key)
    if job is None:
        # Seed 002: also when "the job belongs to a different API key".
        return _error("get", 404, "Job not found")
    return _job_body(request, state, job, request.app[CLOCK_KEY]())


def _int_query(
    query: dict[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[ValidationErrorItem],
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw.strip()):
        problems.append(
            ValidationErrorItem(
                loc=("query", name),
                msg="Input should be a valid integer, unable to parse string as an integer",
                type="int_parsing",
            )
        )
        return default
    value = int(raw.strip())
    if value < low:
        problems.append(
            ValidationErrorItem(
                loc=("query", name),
                msg=f"Input should be greater than or equal to {low}",
                type="greater_than_equal",
            )
        )
    elif high is not None and value > high:
        problems.append(
            ValidationErrorItem(
                loc=("query", name),
                msg=f"Input should be less than or equal to {high}",
                type="less_than_equal",
            )
        )
    return value


async def _list(request: web.Request, state: SimulatorState, ctx: _Context) -> _Answer:
    state.lists += 1
    key = _authenticate(state, "list", request)
    if isinstance(key, _Answer):
        return key
    query = dict(request.query)
    problems: list[ValidationErrorItem] = []
    page = _int_query(query, "page", 0, 0, None, problems)
    page_size = _int_query(query, "pageSize", 10, 1, 100, problems)  # camelCase on the wire
    status = query.get("status")
    if status is not None and status not in _LIST_STATUSES:
        choices = ", ".join(f"'{s}'" for s in _LIST_STATUSES[:-1]) + f" or '{_LIST_STATUSES[-1]}'"
        problems.append(
            ValidationErrorItem(loc=("query", "status"), msg=f"Input should be {choices}", type="enum")
        )
    if problems:
        return _unprocessable(*problems)
    jobs, has_more = state.list_jobs(
        key, page=page, page_size=page_size, status=status, now=request.app[CLOCK_KEY]()
    )
    summaries = tuple(
        JobSummary(
            job_id=job.job_id,
            status=listed,
            received_at=job.received_at,
            progress=1.0 if listed == "completed" else 0.0,
            created_at=job.received_at,
            failure_reason=job.failure_reason if listed == "failed" else None,
        )
        for job, listed in jobs
    )
    return _Answer(
        200, _encode(JobsListResponse(jobs=summaries, org_id=state.config.org_id, has_more=has_more))
    )


async def _download(request: web.Request, state: SimulatorState, ctx: _Context) -> _Answer:
    if "Authorization" in request.headers:
        # A presigned URL carries its own credentials; S3 refuses a second auth mechanism. A
        # client that sends its API key here is leaking it to a third-party host.
        state.output_url_auth_headers += 1
        return _error(
            "download",
            400,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
            "query string parameter or the Authorization header should be specified",
            code="InvalidArgument",
        )
    job = state.redeem_output_token(request.match_info["token"], request.app[CLOCK_KEY]())
    if job is None or job.result is None:
        return _error("download", 403, "Request has expired", code="AccessDenied")
    state.downloads += 1
    return _Answer(200, job.result.body)


async def _stats(request: web.Request) -> web.Response:
    """``GET /_simulator/stats[?windows=1,20]``: the counters as JSON, for out-of-process users.

    Benchmarks and users' integration tests that run the simulator in its own process read what it
    saw here. ``windows`` lists periods (seconds) for which to report the most creates accepted in
    any rolling window of that length.
    """
    state = request.app[STATE_KEY]
    stats = state.stats(request.app[CLOCK_KEY]())
    periods: list[float] = []
    for item in request.query.get("windows", "").split(","):
        if item.strip():
            try:
                periods.append(float(item))
            except ValueError:
                return web.json_response({"message": f"not a number of seconds: {item!r}"}, status=422)
    body = {
        "requests": [[endpoint, status, n] for (endpoint, status), n in sorted(stats.requests.items())],
        "creates_accepted": stats.creates_accepted,
        "rate_limited": stats.rate_limited,
        "jobs_total": stats.jobs_total,
        "duplicate_jobs": stats.duplicate_jobs,
        "jobs_by_status": stats.jobs_by_status,
        "output_url_auth_headers": stats.output_url_auth_headers,
        "downloads": stats.downloads,
        "faults": stats.faults,
        "gets": stats.gets,
        "lists": stats.lists,
        "max_creates_in_window": {str(p): state.max_creates_in_window(p) for p in periods},
    }
    return web.json_response(body)


async def _jobs(request: web.Request) -> web.Response:
    """``GET /_simulator/jobs``: every job's timeline, for out-of-process benchmarks.

    Times are seconds of the simulator's clock, by default ``time.monotonic()`` (CLOCK_MONOTONIC on
    Linux, so comparable with another process's ``time.monotonic()`` on the same host): when each job was
    created and when it reaches (or will reach) its terminal status. Each job also names its upload
    (``filename``, ``content_sha256``), so a harness can tell which input made which job.
    """
    state = request.app[STATE_KEY]
    return web.json_response(
        [
            {
                "job_id": job.job_id,
                "created": job.created,
                "done_at": job.done_at,
                "outcome": job.outcome,
                "filename": job.filename,
                "content_sha256": job.content_sha256,
            }
            for job in state.jobs()
        ]
    )


# ------------------------------------------------------------------------------------------


def build_app(
    config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
) -> tuple[web.Application, SimulatorState]:
    """A fresh simulator application and the state its handlers share.

    Mount the application anywhere aiohttp serves one (``web.AppRunner``,
    ``aiohttp.test_utils.TestServer``); :class:`Simulator` does this on a loopback port.
    ``clock`` is the monotonic time the simulator lives by (see :class:`Simulator`).

    Example::

        app, state = build_app(SimulatorConfig(latency=(0.0, 0.0)))
        state.inject("get", "503")
    """
    state = SimulatorState(config if config is not None else SimulatorConfig())
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE_KEY] = state
    app[CLOCK_KEY] = clock
    downloader = _Downloader()
    app[_DOWNLOADER_KEY] = downloader
    app.on_cleanup.append(downloader.close)
    app.router.add_post(JOBS_PATH, _endpoint("create", _create))
    app.router.add_get(JOBS_PATH, _endpoint("list", _list), allow_head=False)
    app.router.add_get(JOBS_PATH + "/{job_id}", _endpoint("get", _get), allow_head=False)
    app.router.add_get(OUTPUTS_PATH + "/{token}", _endpoint("download", _download), allow_head=False)
    app.router.add_get(STATS_PATH, _stats, allow_head=False)
    app.router.add_get(JOBS_TIMELINE_PATH, _jobs, allow_head=False)
    return app, state
