"""ade_async: an asyncio-first client for document extract jobs (LandingAI ADE Extract Jobs v1).

Start here::

    import ade_async

    async with ade_async.Client() as client:  # API key from VISION_AGENT_API_KEY
        job_id = await client.create_job(pathlib.Path("invoice.md"), schema={"type": "object", ...})

Every error is an :class:`ADEError`; see ``ade_async._errors`` for the whole tree. A faithful
simulator of the API lives in :mod:`ade_async.testing`.
"""

from ._client import Client
from ._config import Timeouts
from ._engine.admission import AdmissionStats, WindowUsage
from ._engine.events import EventKind, JobEvent
from ._engine.ratelimit import RateLimit, RedisBackend
from ._engine.reconcile import ReconcilePolicy, SearchReport
from ._engine.retry import RetryPolicy
from ._engine.schedule import PollPolicy
from ._engine.stats import ClientStats
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
    JobLostError,
    JobNotFinishedError,
    JobTimeoutError,
    MalformedResponseError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ReadTimeoutError,
    ResponseTooLargeError,
    ResultDownloadError,
    ResultTypeError,
    SchemaError,
    ServerError,
    TransportError,
    UnexpectedError,
    UnprocessableEntityError,
)
from ._results import ExtractResult, Failed, JobHandle, Outcome, Stage, Succeeded
from ._version import __version__
from .providers.landingai.wire import (
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
    "EventKind",
    "ExtractJobStatusResponse",
    "ExtractMetadata",
    "ExtractResponse",
    "ExtractResult",
    "ExtractWarning",
    "Failed",
    "InputError",
    "JobCancelledError",
    "JobError",
    "JobEvent",
    "JobFailedError",
    "JobHandle",
    "JobLostError",
    "JobNotFinishedError",
    "JobStatus",
    "JobSummary",
    "JobTimeoutError",
    "JobsListResponse",
    "MalformedResponseError",
    "NotFoundError",
    "Outcome",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimit",
    "RateLimitError",
    "ReadTimeoutError",
    "ReconcilePolicy",
    "RedisBackend",
    "ResponseTooLargeError",
    "ResultDownloadError",
    "ResultTypeError",
    "RetryPolicy",
    "SchemaError",
    "SearchReport",
    "ServerError",
    "Stage",
    "Succeeded",
    "Timeouts",
    "TransportError",
    "UnexpectedError",
    "UnprocessableEntityError",
    "ValidationErrorItem",
    "WindowUsage",
    "__version__",
]
