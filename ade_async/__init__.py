"""ade_async: an asyncio-first client for document extract jobs (LandingAI ADE Extract Jobs v1).

Start here::

    import ade_async

    async with ade_async.Client() as client:  # API key from VISION_AGENT_API_KEY
        job_id = await client.create_job(pathlib.Path("invoice.md"), schema={"type": "object", ...})

Every error is an :class:`ADEError`; see ``ade_async._errors`` for the whole tree. A faithful
simulator of the API lives in :mod:`ade_async.testing`.
"""

from ._admission import AdmissionStats, WindowUsage
from ._client import Client
from ._config import Timeouts
from ._errors import (
    ADEError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    CreateOutcomeUnknownError,
    InputError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFinishedError,
    JobTimeoutError,
    MalformedResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeoutError,
    ResultDownloadError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._stats import ClientStats
from ._version import __version__
from ._wire import (
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
    "TERMINAL_STATUSES",
    "ADEError",
    "APIStatusError",
    "AdmissionStats",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "CreateOutcomeUnknownError",
    "ExtractJobStatusResponse",
    "ExtractMetadata",
    "ExtractResponse",
    "ExtractWarning",
    "InputError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobNotFinishedError",
    "JobStatus",
    "JobSummary",
    "JobTimeoutError",
    "JobsListResponse",
    "MalformedResponseError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimit",
    "RateLimitError",
    "ReadTimeoutError",
    "ResultDownloadError",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
    "TransportError",
    "UnprocessableEntityError",
    "ValidationErrorItem",
    "WindowUsage",
    "__version__",
]
