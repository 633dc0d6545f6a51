"""Wire models of LandingAI ADE Extract Jobs v1, as msgspec Structs.

One Struct per schema of the vendor's OpenAPI spec (``AsyncExtractRequest``, ``JobCreationResponse``,
``ExtractJobStatusResponse``, ``ExtractResponse``, ``ExtractMetadata``, ``ExtractWarning``,
``JobsListResponse``, ``JobSummary``, ``HTTPValidationError``), with the spec's field names.

Decoding is tolerant in the ways the real service needs:

* unknown fields are ignored (msgspec's default), so a new server field never breaks a client;
* ``status`` stays a plain string: values this version does not know are kept and treated as not
  terminal;
* fields the spec marks required inside ``ExtractMetadata`` default to ``None``, because the
  vendor's own example omits some of them (seed 001: job-level ``metadata`` has no ``org_id``).

Everything vendor-specific about the shape of the data lives here and in ``_transport``.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import msgspec

from ..._errors import HTTPValidationError, ValidationErrorItem

__all__ = [
    "TERMINAL_STATUSES",
    "AsyncExtractRequest",
    "ExtractJobStatusResponse",
    "ExtractMetadata",
    "ExtractResponse",
    "ExtractWarning",
    "HTTPValidationError",
    "JobCreationResponse",
    "JobStatus",
    "JobSummary",
    "JobsListResponse",
    "ValidationErrorItem",
    "decode_created",
    "decode_extract_response",
    "decode_job",
    "decode_job_list",
    "decode_validation_error",
    "raw_job_data",
]


class JobStatus(enum.StrEnum):
    """The job statuses the API documents. ``status`` fields stay ``str`` so new values survive."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses after which a job never changes (the SDK's contract test uses the same set).
TERMINAL_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class _Model(msgspec.Struct, frozen=True, kw_only=True):
    """Base of all wire models: immutable, keyword-only, unknown fields ignored."""


class AsyncExtractRequest(_Model, frozen=True, kw_only=True):
    """The form fields of ``POST /v1/ade/extract/jobs`` (``multipart/form-data``).

    ``schema`` is the JSON Schema serialised to a string. Exactly one of ``markdown`` (sent as a
    file part with a ``.md`` filename; a bare string part is answered 422) or ``markdown_url``
    should be set; ``markdown_filename`` is the name of that file part, not a form field.
    """

    schema: str
    markdown: bytes | None = None
    markdown_filename: str = "document.md"
    markdown_url: str | None = None
    model: str | None = None
    strict: bool = False
    output_save_url: str | None = None


class JobCreationResponse(_Model, frozen=True, kw_only=True):
    """Body of the 202 answer to a create: the new job's id, nothing else."""

    job_id: str


class ExtractWarning(_Model, frozen=True, kw_only=True):
    """A structured warning (``extract-20260314`` and later).

    ``code`` is ``nonconformant_schema`` or ``nonconformant_output`` today; other values are kept.
    """

    code: str
    msg: str = ""


class ExtractMetadata(_Model, frozen=True, kw_only=True):
    """Information about one extraction: model version, duration, credits, schema warnings."""

    filename: str | None = None
    org_id: str | None = None
    duration_ms: int | None = None
    credit_usage: float | None = None
    job_id: str | None = None
    version: str | None = None
    #: Why the output does not conform to the schema; ``None`` means it conforms.
    schema_violation_error: str | None = None
    fallback_model_version: str | None = None
    warnings: tuple[ExtractWarning, ...] = ()


class ExtractResponse(_Model, frozen=True, kw_only=True):
    """An extraction result: values shaped like the schema, their references, and metadata."""

    extraction: dict[str, Any]
    extraction_metadata: dict[str, Any]
    metadata: ExtractMetadata

    @property
    def conforms(self) -> bool:
        """False when the API reported the output does not fully conform to the schema (its 206)."""
        return self.metadata.schema_violation_error is None and not self.metadata.warnings


class ExtractJobStatusResponse(_Model, frozen=True, kw_only=True):
    """Body of ``GET /v1/ade/extract/jobs/{job_id}`` (200, or 206 when completed with warnings).

    A completed job carries its result in ``data``, or, for results over 1 MB or when
    ``output_save_url`` was set, at ``output_url`` (a presigned URL that expires about an hour
    after this GET).
    """

    job_id: str
    status: str
    received_at: int
    progress: float
    created_at: int = 0
    org_id: str | None = None
    version: str | None = None
    data: ExtractResponse | None = None
    output_url: str | None = None
    metadata: ExtractMetadata | None = None
    failure_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True for ``completed``, ``failed`` and ``cancelled``; unknown statuses are not terminal."""
        return self.status in TERMINAL_STATUSES


class JobSummary(_Model, frozen=True, kw_only=True):
    """One job in a list page. Lists carry no results: get the job to read them."""

    job_id: str
    status: str
    received_at: int
    progress: float
    created_at: int = 0
    failure_reason: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True for ``completed``, ``failed`` and ``cancelled``; unknown statuses are not terminal."""
        return self.status in TERMINAL_STATUSES


class JobsListResponse(_Model, frozen=True, kw_only=True):
    """Body of ``GET /v1/ade/extract/jobs``: one page of jobs. There is no total count."""

    jobs: tuple[JobSummary, ...]
    org_id: str | None = None
    has_more: bool = False


class _RawData(msgspec.Struct):
    """Only the ``data`` member of a get-job body, kept as the exact JSON the API sent."""

    data: msgspec.Raw = msgspec.Raw(b"null")  # (msgspec decodes Raw alone, not in a union)


_created_decoder: Final = msgspec.json.Decoder(JobCreationResponse)
_raw_data_decoder: Final = msgspec.json.Decoder(_RawData)
_job_decoder: Final = msgspec.json.Decoder(ExtractJobStatusResponse)
_list_decoder: Final = msgspec.json.Decoder(JobsListResponse)
_extract_response_decoder: Final = msgspec.json.Decoder(ExtractResponse)
_validation_decoder: Final = msgspec.json.Decoder(HTTPValidationError)


def decode_created(body: bytes) -> JobCreationResponse:
    """Decode a create answer. Raises ``msgspec.DecodeError`` (incl. ``ValidationError``) if malformed."""
    return _created_decoder.decode(body)


def decode_job(body: bytes) -> ExtractJobStatusResponse:
    """Decode a get-job answer. Raises ``msgspec.DecodeError`` if malformed."""
    return _job_decoder.decode(body)


def raw_job_data(body: bytes) -> bytes | None:
    """The ``data`` member of a get-job body exactly as sent (unknown fields kept), or ``None``."""
    raw = bytes(_raw_data_decoder.decode(body).data)
    return None if raw == b"null" else raw


def decode_job_list(body: bytes) -> JobsListResponse:
    """Decode a list page. Raises ``msgspec.DecodeError`` if malformed."""
    return _list_decoder.decode(body)


def decode_extract_response(body: bytes) -> ExtractResponse:
    """Decode a result document (inline ``data`` or the content behind ``output_url``)."""
    return _extract_response_decoder.decode(body)


def decode_validation_error(body: bytes) -> HTTPValidationError:
    """Decode a 422 body. Raises ``msgspec.DecodeError`` if it has another shape."""
    return _validation_decoder.decode(body)
