"""LandingAI ADE Extract Jobs v1: the first provider.

``Client()`` with no provider is this one. Its own pieces: the wire models (:mod:`.wire`), the
requests and answers (:mod:`.provider`), results inline or behind ``output_url`` (:mod:`.results`),
and the upload tokens that recognise the job of a lost create (:mod:`.tokens`).
"""

from .provider import INFO, UNSUPPORTED_KEYWORDS, LandingAI, LandingAIOptions, snapshot_of
from .wire import (
    TERMINAL_STATUSES,
    ExtractJobStatusResponse,
    ExtractMetadata,
    ExtractResponse,
    ExtractWarning,
    JobsListResponse,
    JobStatus,
    JobSummary,
    ValidationErrorItem,
)

__all__ = [
    "INFO",
    "TERMINAL_STATUSES",
    "UNSUPPORTED_KEYWORDS",
    "ExtractJobStatusResponse",
    "ExtractMetadata",
    "ExtractResponse",
    "ExtractWarning",
    "JobStatus",
    "JobSummary",
    "JobsListResponse",
    "LandingAI",
    "LandingAIOptions",
    "ValidationErrorItem",
    "snapshot_of",
]
