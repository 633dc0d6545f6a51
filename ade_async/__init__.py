"""ade_async: an asyncio-first client for document extract jobs, one engine for several vendors.

Start here::

    import ade_async

    async with ade_async.Client() as client:  # LandingAI ADE; the key from its variable
        result = await client.extract(pathlib.Path("invoice.md"), schema=Invoice)
        invoice = result.value

Every error is an :class:`ADEError`; see ``ade_async._errors`` for the whole tree. Vendors are
providers (:mod:`ade_async.providers`); a faithful simulator of each lives in
:mod:`ade_async.testing`.
"""

from ._client import DEFAULT, Client
from ._config import Timeouts
from ._engine.admission import AdmissionStats, WindowUsage
from ._engine.events import CreatePhase, CreateProgress, EventKind, JobEvent, ProgressHook
from ._engine.http import FormField, HttpRequest, Response, Transport
from ._engine.ratelimit import RateLimit, RedisBackend
from ._engine.reconcile import ReconcilePolicy, SearchReport
from ._engine.retry import RetryPolicy
from ._engine.schedule import PollPolicy
from ._engine.stats import ClientStats
from ._engine.submit import PriorCreate
from ._engine.types import JobPage, JobSnapshot, JobState, ResultWarning
from ._errors import (
    ADEError,
    AdmissionTimeoutError,
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
    UnsupportedOperationError,
    ValidationErrorItem,
)
from ._inputs import DocumentInput
from ._results import ExtractResult, Failed, JobHandle, Outcome, Stage, Succeeded
from ._version import __version__

__all__ = [
    "DEFAULT",
    "ADEError",
    "APIStatusError",
    "AdmissionStats",
    "AdmissionTimeoutError",
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
    "CreatePhase",
    "CreateProgress",
    "DocumentInput",
    "EventKind",
    "ExtractResult",
    "Failed",
    "FormField",
    "HttpRequest",
    "InputError",
    "JobCancelledError",
    "JobError",
    "JobEvent",
    "JobFailedError",
    "JobHandle",
    "JobLostError",
    "JobNotFinishedError",
    "JobPage",
    "JobSnapshot",
    "JobState",
    "JobTimeoutError",
    "MalformedResponseError",
    "NotFoundError",
    "Outcome",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollPolicy",
    "PriorCreate",
    "ProgressHook",
    "RateLimit",
    "RateLimitError",
    "ReadTimeoutError",
    "ReconcilePolicy",
    "RedisBackend",
    "Response",
    "ResponseTooLargeError",
    "ResultDownloadError",
    "ResultTypeError",
    "ResultWarning",
    "RetryPolicy",
    "SchemaError",
    "SearchReport",
    "ServerError",
    "Stage",
    "Succeeded",
    "Timeouts",
    "Transport",
    "TransportError",
    "UnexpectedError",
    "UnprocessableEntityError",
    "UnsupportedOperationError",
    "ValidationErrorItem",
    "WindowUsage",
    "__version__",
]
