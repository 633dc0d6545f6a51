"""The simulator's own wire models of LandingAI ADE Extract Jobs v1, from the vendor's OpenAPI spec.

The client has its wire models (``ade_async._wire``); the simulator must not use them. If both
sides shared one model, a wrong field name or a wrong default in it would be sent by the client,
accepted by the simulator and answered back, and every test would pass. So the models here are
written from the spec (``reference/ade-v1-openapi.json``, components ``JobCreationResponse``,
``ExtractJobStatusResponse``, ``ExtractResponse``, ``ExtractMetadata``, ``ExtractWarning``,
``JobsListResponse``, ``JobSummary``, ``HTTPValidationError`` and ``ValidationError``), with the
spec's names, its required fields required, and its defaults; a test checks them against the
spec's schemas.

They are the server's view, for encoding answers: fields the spec requires have no default, and
the optional ones are always sent (``null`` when unset), as FastAPI sends them.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = [
    "ExtractJobStatusResponse",
    "ExtractMetadata",
    "ExtractResponse",
    "ExtractWarning",
    "HTTPValidationError",
    "JobCreationResponse",
    "JobSummary",
    "JobsListResponse",
    "ValidationError",
    "encode",
]


class _Model(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the models: immutable and keyword-only."""


class JobCreationResponse(_Model, frozen=True, kw_only=True):
    """Body of the 202 answer to ``POST /v1/ade/extract/jobs``."""

    job_id: str


class ExtractWarning(_Model, frozen=True, kw_only=True):
    """A structured warning; ``code`` is an ``ExtractWarningCode``: ``nonconformant_schema`` or
    ``nonconformant_output``."""

    code: str
    msg: str


class ExtractMetadata(_Model, frozen=True, kw_only=True):
    """Information about one extraction (the spec requires the first six fields)."""

    filename: str
    org_id: str | None
    duration_ms: int
    credit_usage: float
    job_id: str
    version: str | None
    schema_violation_error: str | None = None
    fallback_model_version: str | None = None
    warnings: tuple[ExtractWarning, ...] = ()


class ExtractResponse(_Model, frozen=True, kw_only=True):
    """An extraction result: ``data`` of a completed job, or what its ``output_url`` serves."""

    extraction: dict[str, Any]
    extraction_metadata: dict[str, Any]
    metadata: ExtractMetadata


class ExtractJobStatusResponse(_Model, frozen=True, kw_only=True):
    """Body of ``GET /v1/ade/extract/jobs/{job_id}`` (200, or 206 when completed with warnings)."""

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


class JobSummary(_Model, frozen=True, kw_only=True):
    """One job of a list page."""

    job_id: str
    status: str
    received_at: int
    progress: float
    created_at: int = 0
    failure_reason: str | None = None


class JobsListResponse(_Model, frozen=True, kw_only=True):
    """Body of ``GET /v1/ade/extract/jobs``: one page, no total."""

    jobs: tuple[JobSummary, ...]
    org_id: str | None = None
    has_more: bool = False


class ValidationError(_Model, frozen=True, kw_only=True):
    """One entry of a 422 ``detail`` list (the spec's ``ValidationError``, FastAPI's shape)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class HTTPValidationError(_Model, frozen=True, kw_only=True):
    """Body of a 422 answer."""

    detail: tuple[ValidationError, ...] = ()


_encoder: Final = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    """``value`` as compact JSON (the models above, or plain dicts)."""
    return _encoder.encode(value)
