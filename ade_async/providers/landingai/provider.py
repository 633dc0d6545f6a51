"""LandingAI ADE Extract Jobs v1, as a :class:`~ade_async.providers.Provider`.

The contract (seeds 000-002, ``reference/ade-v1-openapi.json``, ``reference/ade-api-notes.md``):

* create: ``POST /v1/ade/extract/jobs``, multipart: ``schema`` as a JSON string, ``markdown`` as a
  named file part (a bare string part is answered 422) or ``markdown_url``; ``model``, ``strict``,
  ``output_save_url``. 202 ``{"job_id"}``. Nothing is uploaded first: the document travels in the
  create, so nothing is staged.
* get: ``GET /v1/ade/extract/jobs/{id}``: 200, or 206 for a job that completed with schema warnings
  (a success). Statuses ``pending``, ``processing``, ``completed``, ``failed``, ``cancelled``;
  others are kept and not terminal. ``progress`` is 0 or 1.
* list: ``GET /v1/ade/extract/jobs?page=&pageSize=&status=`` (0-based pages, camelCase size,
  ``has_more``), newest first.
* results: inline ``data``, or behind ``output_url`` (results over 1 MB, or ``output_save_url``),
  see :mod:`.results`.
* no cancel endpoint; errors 401/402/404/422/429/5xx (the engine maps statuses).
* a lost create is recognised by the random token in its upload's file name (:mod:`.tokens`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from ..._engine.http import Api, FormField, HttpRequest, Response, decoded, safe_filename
from ..._engine.types import JobPage, JobSnapshot, JobState, Staged
from ..._results import ExtractResult
from ..._schema import check_schema, encode_schema
from .._base import Provider, ProviderInfo
from .markdown import markdown_problem
from .results import fetch_result
from .tokens import new_upload_token, tag_filename, token_of
from .wire import (
    ExtractJobStatusResponse,
    JobStatus,
    JobSummary,
    decode_created,
    decode_job,
    decode_job_list,
)

__all__ = ["JOBS_PATH", "UNSUPPORTED_KEYWORDS", "LandingAI", "LandingAIOptions"]

logger = logging.getLogger("ade_async")

#: The collection path of ADE Extract Jobs v1.
JOBS_PATH: Final = "/v1/ade/extract/jobs"
#: The file name sent with content given as ``str`` or ``bytes`` (the API wants a ``.md`` name).
DEFAULT_FILENAME: Final = "document.md"
#: Jobs per page in the lists the engine reads (the API's maximum).
_PAGE: Final = 100

#: Keywords that make the API answer 422 with ``strict=true`` ("Keywords that cause errors").
UNSUPPORTED_KEYWORDS: Final = frozenset(
    {
        "allOf",
        "oneOf",
        "const",
        "maxItems",
        "minItems",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "pattern",
        "propertyOrdering",
        "uniqueItems",
    }
)

_STATES: Final = {
    JobStatus.PENDING: JobState.QUEUED,
    JobStatus.PROCESSING: JobState.RUNNING,
    JobStatus.COMPLETED: JobState.SUCCEEDED,
    JobStatus.FAILED: JobState.FAILED,
    JobStatus.CANCELLED: JobState.CANCELLED,
}
#: The statuses a sweep lists, in order: the active ones.
_ACTIVE: Final = (JobStatus.PENDING, JobStatus.PROCESSING)

INFO: Final = ProviderInfo(
    name="landingai",
    title="LandingAI ADE Extract Jobs v1",
    # The SDK's ENVIRONMENTS table (ade-api-notes §6). Keys are per region.
    hosts={"production": "https://api.va.landing.ai", "eu": "https://api.va.eu-west-1.landing.ai"},
    default_environment="production",
    # The variables the official landingai-ade SDK reads, so a machine set up for it works as is.
    api_key_env=("VISION_AGENT_API_KEY",),
    base_url_env="LANDINGAI_ADE_BASE_URL",
    environment_env="LANDINGAI_ADE_ENVIRONMENT",
    key_help="get a key at https://va.landing.ai/settings/api-key",
    input_kinds=(".md",),
    input_name="Markdown",
    default_glob="*.md",
    budgets={"create": "job creates (per organisation, per hour, distributed per minute)"},
    can_cancel=False,
    created_status=JobStatus.PENDING,  # a 202 means queued
    schema_rules=(
        "an object schema; with strict=True, no allOf, oneOf, const, min/max lengths, items or "
        "values, pattern, propertyOrdering, uniqueItems"
    ),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class LandingAIOptions:
    """What an ADE create takes besides the document and the schema.

    Attributes:
        model: the extract model, e.g. ``"extract-latest"``; the API's default when ``None``.
        strict: refuse schemas with unsupported keywords (checked before sending) instead of
            letting the API prune them.
        markdown_url: a URL the API downloads the Markdown from, instead of a document.
        output_save_url: where the API writes the result (required with zero data retention).
    """

    model: str | None = None
    strict: bool = False
    markdown_url: str | None = None
    output_save_url: str | None = None


class LandingAI(Provider):
    """LandingAI ADE Extract Jobs v1 (see the module docstring).

    Args:
        url_refreshes: how many times to get a job again for a fresh ``output_url`` when a
            download fails (the URLs expire about an hour after they are issued).
    """

    info = INFO
    options_type = LandingAIOptions

    def __init__(self, *, url_refreshes: int = 2) -> None:
        if url_refreshes < 0:
            raise ValueError(f"url_refreshes must be 0 or more, got {url_refreshes}")
        self.url_refreshes = url_refreshes

    # --- local checks ---------------------------------------------------------------------------------

    def prepare_schema(
        self, schema: dict[str, Any] | str, options: LandingAIOptions, *, check: bool = True
    ) -> str:
        """The ``schema`` form field: a JSON string, after the checks the API makes (seed 002)."""
        if not check:
            return schema if isinstance(schema, str) else encode_schema(schema)
        forbidden = UNSUPPORTED_KEYWORDS if options.strict else frozenset()
        return encode_schema(check_schema(schema, forbidden=forbidden))

    def check_document(self, content: bytes, filename: str) -> str | None:
        """Empty and non-UTF-8 Markdown are answered 422: refused before sending."""
        return markdown_problem(content)

    def needs_document(self, options: LandingAIOptions) -> bool:
        """A create carries the Markdown, unless the API is to download it (``markdown_url``)."""
        return options.markdown_url is None

    @property
    def default_filename(self) -> str:
        return DEFAULT_FILENAME

    # --- the create -----------------------------------------------------------------------------------

    def create_request(self, staged: Staged) -> tuple[HttpRequest, str | None]:
        """The multipart create; a fresh upload token per attempt is its match key."""
        options: LandingAIOptions = staged.options
        fields = [FormField("schema", staged.schema)]
        token: str | None = None
        if staged.content is not None:
            token = new_upload_token()
            # The real API rejects a markdown part without a filename (422 "Invalid file
            # provided"), so the content always goes as a named file part, tagged with the token.
            name = safe_filename(tag_filename(staged.filename, token), DEFAULT_FILENAME)
            fields.append(FormField("markdown", staged.content, name, "text/markdown"))
        if options.markdown_url is not None:
            fields.append(FormField("markdown_url", options.markdown_url))
        if options.model is not None:
            fields.append(FormField("model", options.model))
        # Sent as text, the way curl -F sends booleans; FastAPI parses "true"/"false".
        fields.append(FormField("strict", "true" if options.strict else "false"))
        if options.output_save_url is not None:
            fields.append(FormField("output_save_url", options.output_save_url))
        return HttpRequest(method="POST", path=JOBS_PATH, form=tuple(fields)), token

    def parse_created(self, request: HttpRequest, response: Response) -> str:
        return decoded(request, response, decode_created).job_id

    # --- watching -------------------------------------------------------------------------------------

    def get_request(self, job_id: str) -> HttpRequest:
        return HttpRequest(method="GET", path=f"{JOBS_PATH}/{quote(job_id, safe='')}")

    def parse_job(self, request: HttpRequest, response: Response) -> JobSnapshot:
        if response.status == 206:
            # 206: completed, but the output does not fully conform to the schema; a success whose
            # warnings are in the result's metadata.
            logger.debug("%s completed with schema warnings (206)", request.path)
        return snapshot_of(decoded(request, response, decode_job), body=response.body)

    def active_request(self, cursor: str | None) -> HttpRequest:
        status, page = _active_cursor(cursor)
        return self.list_request(status=status, page_size=_PAGE, cursor=str(page))

    def parse_active(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        status, page = _active_cursor(cursor)
        listing = decoded(request, response, decode_job_list)
        if listing.has_more and listing.jobs:
            after: str | None = f"{status}:{page + 1}"
        else:  # this status is done: the next one, or the end
            later = _ACTIVE[_ACTIVE.index(JobStatus(status)) + 1 :]
            after = f"{later[0]}:0" if later else None
        return JobPage(tuple(_summary(job) for job in listing.jobs), after)

    def recent_request(self, cursor: str | None) -> HttpRequest:
        return self.list_request(status=None, page_size=_PAGE, cursor=cursor)

    def parse_recent(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        return self.parse_list(request, response, cursor)

    def list_request(self, *, status: str | None, page_size: int, cursor: str | None) -> HttpRequest:
        """One page (``page`` is 0-based; ``pageSize`` is camelCase, 1 to 100)."""
        params = [("page", cursor or "0"), ("pageSize", str(page_size))]
        if status is not None:
            params.append(("status", str(status)))
        return HttpRequest(method="GET", path=JOBS_PATH, params=tuple(params))

    def parse_list(self, request: HttpRequest, response: Response, cursor: str | None) -> JobPage:
        listing = decoded(request, response, decode_job_list)
        # An empty page that claims more would loop forever: paging by number has no cursor.
        after = str(int(cursor or "0") + 1) if listing.has_more and listing.jobs else None
        return JobPage(tuple(_summary(job) for job in listing.jobs), after)

    # --- results --------------------------------------------------------------------------------------

    async def fetch_result(self, api: Api, job: JobSnapshot) -> ExtractResult[Any]:
        return await fetch_result(self, api, job)


def snapshot_of(job: ExtractJobStatusResponse, *, body: bytes | None = None) -> JobSnapshot:
    """A get's answer, normalised (``body``: the answer as sent, for the exact result JSON)."""
    if job.status == JobStatus.COMPLETED:
        result_at = "inline" if job.data is not None else "url" if job.output_url is not None else None
    else:
        result_at = None
    filename = job.metadata.filename if job.metadata is not None else None
    if filename is None and job.data is not None:
        filename = job.data.metadata.filename
    return JobSnapshot(
        job_id=job.job_id,
        state=_STATES.get(job.status, JobState.UNKNOWN),  # type: ignore[call-overload]
        status=job.status,
        progress=job.progress,
        failure_reason=job.failure_reason,
        created_at=float(job.received_at),
        result_at=result_at,  # type: ignore[arg-type]
        match_key=token_of(filename),
        detail=job,
        body=body,
    )


def _summary(job: JobSummary) -> JobSnapshot:
    """A list entry, normalised: lists carry no results and no file names."""
    return JobSnapshot(
        job_id=job.job_id,
        state=_STATES.get(job.status, JobState.UNKNOWN),  # type: ignore[call-overload]
        status=job.status,
        progress=job.progress,
        failure_reason=job.failure_reason,
        created_at=float(job.received_at),
        detail=job,
    )


def _active_cursor(cursor: str | None) -> tuple[str, int]:
    if cursor is None:
        return _ACTIVE[0], 0
    status, _, page = cursor.partition(":")
    return status, int(page)
