"""The one error tree of ade_async.

Every failure a user can see is an :class:`ADEError`; aiohttp and OS errors are translated at
one seam (``ade_async._transport``) and never escape. The tree::

    ADEError
    ├── ConfigurationError            missing key, unknown environment, ambiguous URL
    ├── InputError                    a Markdown input could not be read (missing file, unreadable)
    ├── SchemaError                   a schema the API would refuse, caught before any job is created
    ├── ClientClosedError             the client was closed (or never opened)
    ├── TransportError                no usable HTTP answer          .request_sent
    │   ├── ConnectError              could not connect (refused, DNS, TLS); nothing sent
    │   ├── ConnectTimeoutError       connecting took too long; nothing sent
    │   ├── ReadTimeoutError          sent, but the answer took too long
    │   ├── ConnectionLostError       the connection dropped after the request went out
    │   ├── MalformedResponseError    an answer came, but its body is not what the API documents
    │   └── ResponseTooLargeError     an answer's body is over the client's cap   .limit
    ├── APIStatusError                the API answered with an error status   .status_code .body
    │   ├── BadRequestError           400
    │   ├── AuthenticationError       401  missing or invalid API key
    │   ├── PaymentRequiredError      402  not enough credits
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404  unknown job (or another key's job)
    │   ├── UnprocessableEntityError  422  .detail: parsed validation errors
    │   ├── RateLimitError            429  .retry_after (seconds, or None)
    │   └── ServerError               5xx
    ├── JobError                      the job itself did not give a result   .job_id
    │   ├── JobFailedError            status "failed"      .failure_reason
    │   ├── JobCancelledError         status "cancelled"
    │   ├── JobNotFinishedError       asked for the result of a job still running
    │   ├── JobLostError              the API no longer knows the job (404, confirmed)
    │   └── JobTimeoutError           a client-side deadline passed (the job may still finish)
    ├── CreateOutcomeUnknownError     a create was sent but its answer was lost: the job may exist
    ├── AdmissionTimeoutError         no create quota came free within ``admission_timeout``
    ├── ResultDownloadError           a completed job's result could not be fetched from its URL
    ├── ResultTypeError               a result does not fit the type asked for (``result.to(T)``)
    ├── UnsupportedOperationError     the vendor cannot do this (cancel a job, say)  .operation
    └── UnexpectedError               a bug met while handling one input or job  .__cause__

``request_sent`` on transport errors says whether the server may have seen the request. It matters
for creating jobs, which the API does not make idempotent: a create that failed with
``request_sent=False`` provably created nothing; otherwise a job may exist.

The API key never appears in a message, ``repr`` or attribute of any of these errors, nor in their
chain of causes and contexts, nor in the local variables of the frames on their tracebacks (which
error trackers such as Sentry record): messages are built from the method, the path and the
response body only, and no aiohttp exception (whose ``request_info`` holds the request's headers)
is ever chained to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from ._engine.reconcile import SearchReport

__all__ = [
    "ADEError",
    "APIStatusError",
    "AdmissionTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "CreateOutcomeUnknownError",
    "InputError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobLostError",
    "JobNotFinishedError",
    "JobTimeoutError",
    "MalformedResponseError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReadTimeoutError",
    "ResponseTooLargeError",
    "ResultDownloadError",
    "ResultTypeError",
    "SchemaError",
    "ServerError",
    "TransportError",
    "UnexpectedError",
    "UnprocessableEntityError",
    "UnsupportedOperationError",
    "ValidationErrorItem",
    "error_for_status",
    "unexpected",
]


class ValidationErrorItem(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a 422 ``detail`` list (FastAPI's shape, which every vendor in scope uses)."""

    loc: tuple[str | int, ...] = ()
    msg: str = ""
    type: str = ""


class HTTPValidationError(msgspec.Struct, frozen=True, kw_only=True):
    """Body of a 422 answer: ``{"detail": [...]}``."""

    detail: tuple[ValidationErrorItem, ...] = ()


class ADEError(Exception):
    """Base class of every error raised by ade_async."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle support for every subclass, whatever its constructor.

        ``Exception``'s own ``__reduce__`` rebuilds an error as ``type(error)(*error.args)``,
        which fails for the keyword-only constructors of this tree: the error could be pickled but
        not unpickled (a worker of multiprocessing, Celery or Ray could not report it). Here the
        error is rebuilt without calling ``__init__``, then given back every attribute: the state
        is ``__dict__`` (notes included), restored by ``BaseException.__setstate__``. As for any
        exception, ``__cause__``, ``__context__`` and the traceback stay behind.
        """
        return (_rebuild, (type(self), self.args), self.__dict__.copy())


def _rebuild(cls: type[ADEError], args: tuple[Any, ...]) -> ADEError:
    """An error of class ``cls`` with ``args``, before its attributes are restored (unpickling)."""
    return cls.__new__(cls, *args)


class ConfigurationError(ADEError):
    """The client cannot be configured: a missing API key, an unknown environment, conflicting URLs."""


class InputError(ADEError):
    """A Markdown input could not be read; nothing was sent.

    Attributes:
        path: the file that could not be read, when the input was a path.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class SchemaError(ADEError):
    """The schema would be refused by the API (or cannot be turned into JSON Schema); nothing was sent.

    Attributes:
        problems: each reason, e.g. ``"unsupported keyword 'maxLength' at properties.name"``.
    """

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems)


class ClientClosedError(ADEError):
    """The client is closed (or was used outside ``async with``); nothing was sent."""


# --- transport ---------------------------------------------------------------------------------


class TransportError(ADEError):
    """No usable HTTP answer was received.

    Attributes:
        method: HTTP method of the request.
        path: URL path of the request (never the query string of a presigned URL).
        request_sent: False only when the request provably never left this process.
    """

    request_sent: bool = True

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS failure, TLS failure). Nothing was sent."""

    request_sent = False


class ConnectTimeoutError(TransportError):
    """Opening the connection took longer than the connect timeout. Nothing was sent."""

    request_sent = False


class ReadTimeoutError(TransportError):
    """The request was sent but no complete answer arrived within the read timeout."""


class ConnectionLostError(TransportError):
    """The connection dropped after the request went out; the server may have acted on it."""


class MalformedResponseError(TransportError):
    """The server answered, but the body does not match the documented shape.

    Attributes:
        status_code: the HTTP status of the malformed answer.
    """

    def __init__(self, message: str, *, method: str, path: str, status_code: int) -> None:
        super().__init__(message, method=method, path=path)
        self.status_code = status_code


class ResponseTooLargeError(TransportError):
    """An answer's body was larger than the client accepts; the client stopped reading it.

    Bodies are read up to a cap (``Client(max_response_bytes=...)`` for API answers, 32 MiB by
    default; ``max_download_bytes`` for results downloaded from a result URL, 512 MiB), so that a
    broken or hostile server cannot make the client hold gigabytes. The cap is checked against
    ``Content-Length`` before reading and against the bytes received while reading (a chunked or
    compressed body has no trustworthy length).

    The server did answer, so the request was sent and acted upon: for a create, a job may exist
    (its outcome is unknown, see ``CreateOutcomeUnknownError``); reads are not retried, as the
    same answer would come again.

    Attributes:
        limit: the cap in bytes that the answer exceeded.
        status_code: the HTTP status of the answer.
    """

    def __init__(self, message: str, *, method: str, path: str, limit: int, status_code: int) -> None:
        super().__init__(message, method=method, path=path)
        self.limit = limit
        self.status_code = status_code


# --- HTTP status errors --------------------------------------------------------------------------


class APIStatusError(ADEError):
    """The API answered with an error status.

    Attributes:
        status_code: the HTTP status.
        body: the parsed JSON body, or the raw text when it was not JSON (``None`` when empty).
        method: HTTP method of the request.
        path: URL path of the request.
    """

    def __init__(self, message: str, *, status_code: int, body: Any, method: str, path: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.method = method
        self.path = path


class BadRequestError(APIStatusError):
    """400: the request was malformed (invalid JSON schema, unreachable ``markdown_url``, ZDR rules)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid for this environment (keys are per region)."""


class PaymentRequiredError(APIStatusError):
    """402: the organisation does not have enough credits."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not perform this request."""


class NotFoundError(APIStatusError):
    """404: no such job for this API key."""


class UnprocessableEntityError(APIStatusError):
    """422: the API rejected the input.

    Attributes:
        detail: the validation errors of FastAPI's ``{"detail": [...]}`` body, each with ``loc``,
            ``msg`` and ``type``; empty when the body had another shape.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any,
        method: str,
        path: str,
        detail: Sequence[ValidationErrorItem] = (),
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, method=method, path=path)
        self.detail: tuple[ValidationErrorItem, ...] = tuple(detail)


class RateLimitError(APIStatusError):
    """429: the rate limit was exceeded.

    Attributes:
        retry_after: seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (delay or HTTP
            date); ``None`` when the server sent neither (ADE documents no such header).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any,
        method: str,
        path: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body, method=method, path=path)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the server failed. Safe to retry for reads; a create may or may not have been accepted."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for_status(
    status_code: int,
    *,
    body: Any,
    method: str,
    path: str,
    retry_after: float | None = None,
) -> APIStatusError:
    """Build the :class:`APIStatusError` subclass for an HTTP error answer.

    The message reads the body defensively, in the order the vendor's pages suggest: ``error``
    (create), ``message`` (get, list), ``detail`` (FastAPI validation), then the raw text.
    """
    reason = describe_error_body(body)
    message = f"{method} {path} answered {status_code}" + (f": {reason}" if reason else "")
    if status_code == 429:
        return RateLimitError(
            message, status_code=status_code, body=body, method=method, path=path, retry_after=retry_after
        )
    if status_code == 422:
        try:
            items = msgspec.convert(body, HTTPValidationError).detail
        except msgspec.ValidationError:  # another shape: keep the body, no structured detail
            items = ()
        return UnprocessableEntityError(
            message, status_code=status_code, body=body, method=method, path=path, detail=items
        )
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIStatusError
    return cls(message, status_code=status_code, body=body, method=method, path=path)


_MAX_REASON_CHARS = 500


def describe_error_body(body: Any) -> str:
    """A short human-readable reason from an error body of any shape (empty when there is none)."""
    if body is None:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return _clip(value)
            if isinstance(value, dict):  # e.g. {"error": {"message": ...}}
                inner = value.get("message")
                if isinstance(inner, str) and inner:
                    return _clip(inner)
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return _clip(detail)
        if isinstance(detail, list) and detail:
            return _clip("; ".join(_describe_validation_item(item) for item in detail))
        code = body.get("code")
        if isinstance(code, str) and code:
            return _clip(code)
    if isinstance(body, str):
        return _clip(body.strip())
    return _clip(repr(body))


def _describe_validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    msg = str(item.get("msg", ""))
    loc = item.get("loc")
    if isinstance(loc, list) and loc:
        return f"{'.'.join(str(part) for part in loc)}: {msg}"
    return msg


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


# --- job errors ------------------------------------------------------------------------------------


class JobError(ADEError):
    """The job did not produce a result.

    Attributes:
        job_id: the job's id; the job exists server-side.
    """

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobFailedError(JobError):
    """The job ended with status ``failed``.

    Attributes:
        failure_reason: the API's ``failure_reason`` (``None`` if it gave none).
    """

    def __init__(self, message: str, *, job_id: str, failure_reason: str | None) -> None:
        super().__init__(message, job_id=job_id)
        self.failure_reason = failure_reason


class JobCancelledError(JobError):
    """The job ended with status ``cancelled`` (the API has no cancel endpoint; the server did it)."""


class JobNotFinishedError(JobError):
    """A result was asked for while the job is still running.

    Attributes:
        status: the job's status when it was asked.
    """

    def __init__(self, message: str, *, job_id: str, status: str) -> None:
        super().__init__(message, job_id=job_id)
        self.status = status


class JobLostError(JobError):
    """The API answered 404 for a job that existed, several times in a row: it is gone."""


class JobTimeoutError(JobError):
    """A client-side deadline passed before the job ended. The job may still finish server-side.

    Attributes:
        timeout: the deadline in seconds.
    """

    def __init__(self, message: str, *, job_id: str, timeout: float) -> None:
        super().__init__(message, job_id=job_id)
        self.timeout = timeout


class ResultDownloadError(ADEError):
    """A completed job's result could not be downloaded from its result URL.

    Attributes:
        job_id: the job whose result could not be fetched.
        status_code: the storage server's last HTTP status, or ``None`` after a transport failure.
    """

    def __init__(self, message: str, *, job_id: str, status_code: int | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status_code = status_code


class CreateOutcomeUnknownError(ADEError):
    """A create was sent but its answer was lost, timed out or garbled: the job may exist.

    No vendor offers an idempotency key, so ade_async never repeats such a create blindly: that
    could pay for the same document twice. ``submit``, ``extract`` and ``extract_many`` first look
    for the job by its match key (LandingAI ADE: a random token in the upload's file name, which a
    completed job's metadata echoes) and adopt it when found; this error means the search ended
    without finding it and resubmitting was not allowed (``ReconcilePolicy(resubmit_unknown=True)``
    allows it). :meth:`Client.create_job` raises it at once, without searching.

    Attributes:
        filename: the document's file name (``None`` when there was no document).
        content_sha256: hex SHA-256 of the document (``None`` when there was no document).
        sent_at: Unix time just before the create was sent.
        cause: the error that hid the outcome.
        search: what the search for the job learned (``None`` when there was no search).
        resubmissions: how many times the create was sent again after a search (each may have
            made a duplicate job).
        match_key: what its job can be recognised by (LandingAI ADE: the upload token in the file
            name; a vendor with uploads: the file's id); ``None`` when nothing can.
    """

    def __init__(
        self,
        message: str,
        *,
        filename: str | None,
        content_sha256: str | None,
        sent_at: float,
        cause: ADEError,
        search: SearchReport | None = None,
        resubmissions: int = 0,
        match_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.match_key = match_key
        self.filename = filename
        self.content_sha256 = content_sha256
        self.sent_at = sent_at
        self.cause = cause
        self.search = search
        self.resubmissions = resubmissions

    def after_search(self, search: SearchReport, *, resubmissions: int) -> CreateOutcomeUnknownError:
        """This error, completed with what a search for the job learned."""
        also = ""
        if resubmissions:
            also = f"; it had been sent {resubmissions} more time(s), each may be a duplicate"
        return CreateOutcomeUnknownError(
            f"the create for {self.filename or 'a markdown_url'} was sent but its outcome is unknown "
            f"({self.cause}); {search.describe()}, none shows its match key{also}. It was not sent "
            "again, to avoid paying twice: allow it with resubmit_unknown=True (--resubmit-unknown).",
            filename=self.filename,
            content_sha256=self.content_sha256,
            sent_at=self.sent_at,
            cause=self.cause,
            search=search,
            resubmissions=resubmissions,
            match_key=self.match_key,
        )


class AdmissionTimeoutError(ADEError):
    """No create quota came free within the ``admission_timeout`` a caller gave; no job was created.

    Attributes:
        paused_for: seconds left of the admission gate's 429 pause when it gave up (0 if none):
            a hint of when to try again.
    """

    def __init__(self, message: str, *, paused_for: float = 0.0) -> None:
        super().__init__(message)
        self.paused_for = paused_for


class ResultTypeError(ADEError):
    """A result's extraction does not fit the type it was asked to convert to.

    Attributes:
        job_id: the job whose result it is.
    """

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class UnsupportedOperationError(ADEError):
    """The provider's vendor cannot do what was asked (cancel a job, say); nothing was sent.

    Attributes:
        operation: what was asked (``"cancel"``).
        provider: the provider's name.
    """

    def __init__(self, message: str, *, operation: str, provider: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.provider = provider


class UnexpectedError(ADEError):
    """An exception nobody foresaw (a bug in ade_async, or in code it called, such as an input's
    ``__fspath__``) while handling one input or one job.

    It ends that input's or job's processing only: the client and everything else it does carry
    on. The original exception is the ``__cause__``, with its traceback.
    """


def unexpected(doing: str, exc: BaseException) -> UnexpectedError:
    """An :class:`UnexpectedError` saying what was being done; raise it ``from exc``."""
    error = UnexpectedError(f"unexpected {type(exc).__name__} while {doing}: {exc}")
    error.__cause__ = exc
    return error
