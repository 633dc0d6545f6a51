"""The LandingAI simulator's routes: thin handlers over :class:`SimulatorState`.

Routes (paths and shapes from the vendor's OpenAPI spec and seeds 000-002):

* ``POST /v1/ade/extract/jobs``: create. After the key (401, checked by the serving layer): 402
  credits; the form (400/422, see ``_create``); the ``markdown_url`` download (400); then the
  quota (429) and the job is accepted (202) in one step without awaiting, so a rejected or
  invalid create never counts toward the quota.
* ``GET /v1/ade/extract/jobs/{job_id}``: 200, or 206 when completed with warnings; 404.
* ``GET /v1/ade/extract/jobs``: one page of the caller's jobs, newest first; 422 on bad query.
* ``GET /_simulator/outputs/{token}``: the result behind an ``output_url`` (S3-like errors).

Error bodies are in ``_answers``; faults, authentication, counting and recording are the engine's
serving layer's (``_engine._serving``), the same for every vendor.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, Final, Literal

from aiohttp import web

from .._config import SimulatorConfig
from .._engine import Answer, Call, FormError, Route, Routes, build_application, form_record
from ._answers import error, unprocessable, value_error
from ._contract import JOBS_PATH, LIST_STATUSES, OUTPUTS_PATH
from ._create import Downloader, decode_markdown, parse_create, read_form
from ._state import CREATE_BUDGET, Job, SimulatorState
from ._wire import (
    ExtractJobStatusResponse,
    JobCreationResponse,
    JobsListResponse,
    JobSummary,
    ValidationError,
    encode,
)

__all__ = ["LandingAIRoutes", "build_app"]

#: Largest create body read; far above any Markdown a test sends.
MAX_BODY_BYTES: Final = 256 * 1024 * 1024

_INTEGER: Final = re.compile(r"^[+-]?\d+$")


class LandingAIRoutes(Routes[SimulatorState]):
    """The routes of ADE Extract Jobs v1 over a :class:`SimulatorState`."""

    def __init__(self, state: SimulatorState) -> None:
        super().__init__(state)
        self._downloader = Downloader()

    def routes(self) -> list[Route]:
        return [
            Route(method="POST", path=JOBS_PATH, endpoint="create", handle=self._create),
            Route(method="GET", path=JOBS_PATH, endpoint="list", handle=self._list),
            Route(method="GET", path=JOBS_PATH + "/{job_id}", endpoint="get", handle=self._get),
            Route(
                method="GET",
                path=OUTPUTS_PATH + "/{token}",
                endpoint="download",
                handle=self._download,
                authenticated=False,  # a presigned URL carries its own credentials
            ),
        ]

    def error(self, endpoint: str, status: int, message: str, *, code: str = "InternalError") -> Answer:
        return error(endpoint, status, message, code=code)

    def fault_answer(self, endpoint: str, kind: Literal["404", "expired"]) -> Answer:
        if kind == "404":
            return error(endpoint, 404, "Job not found")
        return error(endpoint, 403, "Request has expired", code="AccessDenied")

    def stats_body(self, now: float) -> dict[str, Any]:
        stats = self.state.stats(now)
        return {
            "requests": [[endpoint, status, n] for (endpoint, status), n in sorted(stats.requests.items())],
            "creates_accepted": stats.creates_accepted,
            "rate_limited": stats.rate_limited,
            "jobs_total": stats.jobs_total,
            "duplicate_jobs": stats.duplicate_jobs,
            "jobs_by_status": stats.jobs_by_status,
            "result_url_auth_headers": stats.result_url_auth_headers,
            "downloads": stats.downloads,
            "faults": stats.faults,
            "gets": stats.gets,
            "lists": stats.lists,
            "max_active_jobs": stats.max_active_jobs,
            "rate_limited_by_budget": stats.rate_limited_by_budget,
        }

    async def close(self) -> None:
        await self._downloader.close()

    # -------------------------------------------------------------------------------- create

    async def _create(self, call: Call) -> Answer:
        state = self.state
        if state.credits_exhausted:
            return error("create", 402, "Insufficient credits: add credits to your account to continue")
        try:
            parts = await read_form(call.request)
        except web.HTTPRequestEntityTooLarge:
            return error("create", 413, "Request body too large")
        except FormError:
            # FastAPI's answer to a body it cannot parse as the form it claims to be.
            return error("create", 400, "There was an error parsing the body")
        call.form = form_record(parts)

        parsed = parse_create(parts, state.config)
        if isinstance(parsed, Answer):
            return parsed
        data = parsed.markdown
        if parsed.markdown_url is not None:
            data = await self._downloader.fetch(parsed.markdown_url)
            if data is None:
                return error("create", 400, "Failed to download document from URL")
            if not data:
                return value_error("markdown_url", "No markdown file or URL provided")
        assert data is not None
        document = decode_markdown(data)
        if document is None:
            return value_error(
                "markdown" if parsed.markdown is not None else "markdown_url", "Unsupported format"
            )

        # From here on nothing awaits: the quota check and the acceptance are one atomic step.
        now = self.state.now()
        refusal = state.budgets.check(CREATE_BUDGET, now)
        if refusal is not None:
            return self.too_many("create", refusal.wait)
        job = state.create_job(
            api_key=call.key,
            document=document,
            content_sha256=hashlib.sha256(data).hexdigest(),
            filename=parsed.filename,
            model=parsed.model,
            schema=parsed.schema,
            output_save_url=parsed.output_save_url,
            now=now,
            wall=time.time(),
        )
        return Answer(202, encode(JobCreationResponse(job_id=job.job_id)))

    # ------------------------------------------------------------------- get, list, download

    def _job_body(self, call: Call, job: Job, now: float) -> Answer:
        state = self.state
        status = state.status_of(job, now)
        config = state.config
        if status != state.statuses.succeeded:
            body = ExtractJobStatusResponse(
                job_id=job.job_id,
                status=status,
                received_at=job.received_at,
                progress=0.0,  # "stays 0.0 until the job is completed" (seed 000)
                created_at=job.received_at,  # the spec: created_at "mirrors received_at"
                org_id=config.org_id,
                failure_reason=job.failure_reason if status == state.statuses.failed else None,
            )
            return Answer(200, encode(body))
        result = state.result_of(job)
        # 206: completed, but with warnings (seed 002: "Any warning ... causes ... a 206").
        code = 206 if result.has_warnings else 200
        if job.cached_body is not None:
            return Answer(code, job.cached_body)
        output_url: str | None = None
        if result.via_output_url:
            # A fresh presigned-like URL on every get (ade-api-notes §2), on this very server.
            token = state.issue_output_token(job, now)
            output_url = f"{call.request.url.origin()}{OUTPUTS_PATH}/{token}"
        encoded = encode(
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
        return Answer(code, encoded)

    async def _get(self, call: Call) -> Answer:
        job = self.state.find_job(call.request.match_info["job_id"], call.key)
        if job is None:
            # Seed 002: also when "the job belongs to a different API key".
            return error("get", 404, "Job not found")
        return self._job_body(call, job, self.state.now())

    async def _list(self, call: Call) -> Answer:
        state = self.state
        query = dict(call.request.query)
        problems: list[ValidationError] = []
        page = _int_query(query, "page", 0, 0, None, problems)
        page_size = _int_query(query, "pageSize", 10, 1, 100, problems)  # camelCase on the wire
        status = query.get("status")
        if status is not None and status not in LIST_STATUSES:
            choices = ", ".join(f"'{s}'" for s in LIST_STATUSES[:-1]) + f" or '{LIST_STATUSES[-1]}'"
            problems.append(
                ValidationError(loc=("query", "status"), msg=f"Input should be {choices}", type="enum")
            )
        if problems:
            return unprocessable(*problems)
        jobs, has_more = state.list_jobs(
            call.key, page=page, page_size=page_size, status=status, now=self.state.now()
        )
        summaries = tuple(
            JobSummary(
                job_id=job.job_id,
                status=listed,
                received_at=job.received_at,
                progress=1.0 if listed == state.statuses.succeeded else 0.0,
                created_at=job.received_at,
                failure_reason=job.failure_reason if listed == state.statuses.failed else None,
            )
            for job, listed in jobs
        )
        return Answer(
            200, encode(JobsListResponse(jobs=summaries, org_id=state.config.org_id, has_more=has_more))
        )

    async def _download(self, call: Call) -> Answer:
        state = self.state
        if "Authorization" in call.request.headers:
            # A presigned URL carries its own credentials; S3 refuses a second auth mechanism. A
            # client that sends its API key here is leaking it to a third-party host.
            state.result_url_auth_headers += 1
            return error(
                "download",
                400,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature "
                "query string parameter or the Authorization header should be specified",
                code="InvalidArgument",
            )
        job = state.redeem_output_token(call.request.match_info["token"], self.state.now())
        if job is None or job.result is None:
            return error("download", 403, "Request has expired", code="AccessDenied")
        state.downloads += 1
        return Answer(200, job.result.body)


def _int_query(
    query: dict[str, str],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[ValidationError],
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw.strip()):
        problems.append(
            ValidationError(
                loc=("query", name),
                msg="Input should be a valid integer, unable to parse string as an integer",
                type="int_parsing",
            )
        )
        return default
    value = int(raw.strip())
    if value < low:
        problems.append(
            ValidationError(
                loc=("query", name),
                msg=f"Input should be greater than or equal to {low}",
                type="greater_than_equal",
            )
        )
    elif high is not None and value > high:
        problems.append(
            ValidationError(
                loc=("query", name),
                msg=f"Input should be less than or equal to {high}",
                type="less_than_equal",
            )
        )
    return value


def build_app(
    config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
) -> tuple[web.Application, SimulatorState]:
    """A fresh LandingAI simulator application and the state its handlers share.

    Mount the application anywhere aiohttp serves one (``web.AppRunner``,
    ``aiohttp.test_utils.TestServer``); :class:`~ade_async.testing.Simulator` does this on a
    loopback port. ``clock`` is the monotonic time jobs, quota windows, list lag and result URL
    expiry follow (``FakeClock().now`` moves them only when a test does).

    Example::

        app, state = build_app(SimulatorConfig(latency=(0.0, 0.0)))
        state.inject("get", "503")
    """
    state = SimulatorState(config if config is not None else SimulatorConfig(), clock=clock)
    return build_application(LandingAIRoutes(state), client_max_size=MAX_BODY_BYTES), state
