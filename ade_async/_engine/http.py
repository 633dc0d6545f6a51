"""HTTP transport for ADE Extract Jobs v1 on aiohttp.

This is the one seam where the outside world is translated: aiohttp and OS exceptions become
:mod:`ade_async._errors` transport errors, HTTP error statuses become :class:`APIStatusError`
subclasses, and bodies become wire models. Everything ADE-specific about requests (paths, form
fields, the ``pageSize`` spelling, where errors live in bodies) is here or in ``_wire``.

Security rules enforced here:

* the ``Authorization`` header is attached per request, to API requests only. The download of an
  ``output_url`` (a presigned storage URL on another host) is sent without it, and the session
  has no default headers that could carry it;
* API requests do not follow redirects, so the header cannot be replayed to another host;
* no cookies are kept (the API needs none; a cookie jar could carry state between hosts);
* messages and logs name the method and path only, never headers, and never the query string of a
  presigned URL;
* an error raised here keeps nothing of aiohttp's: aiohttp's exceptions carry the request's
  headers (``request_info``), so they are translated into strings and the project's error is
  raised outside the ``except`` block (neither ``__cause__`` nor ``__context__`` leads back to
  them), and the header dict is never a local of a frame on an error's traceback (error trackers
  record frame locals); a cancellation passing through (to which a caller's ``TimeoutError`` is
  chained) leaves aiohttp's frames behind too;
* the key is masked (``***``) in any answer body that echoes it, so an error body cannot carry it;
* bodies are read up to a cap (``max_response_bytes`` for API answers, ``max_download_bytes`` for
  downloads), judged on ``Content-Length`` first and on the decoded bytes while reading, so a
  server cannot make the client hold more (:class:`ResponseTooLargeError`).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec

from .._config import ApiKey, Timeouts
from .._engine.retry_after import parse_retry_after
from .._errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    MalformedResponseError,
    ReadTimeoutError,
    ResponseTooLargeError,
    TransportError,
    error_for_status,
)
from .._version import __version__
from ..providers.landingai.wire import (
    AsyncExtractRequest,
    ExtractJobStatusResponse,
    JobCreationResponse,
    JobsListResponse,
    decode_created,
    decode_job,
    decode_job_list,
    raw_job_data,
)

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "JOBS_PATH",
    "Response",
    "Transport",
    "redact_url",
    "safe_filename",
]

logger = logging.getLogger("ade_async")

_T = TypeVar("_T")

#: The collection path of ADE Extract Jobs v1.
JOBS_PATH: Final = "/v1/ade/extract/jobs"
#: The largest API answer read by default. ADE puts results over about 1 MB behind ``output_url``,
#: so status and list answers stay far below this.
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
#: The largest result downloaded from an ``output_url`` by default.
DEFAULT_MAX_DOWNLOAD_BYTES: Final = 512 * 1024 * 1024


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """A raw HTTP answer, before it is judged by status."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def safe_filename(name: str) -> str:
    """A file name fit for a multipart header: control characters, quotes and backslashes become
    ``_`` (a newline in a header would be an injection; aiohttp refuses it outright)."""
    cleaned = "".join("_" if ord(c) < 0x20 or c in '"\\\x7f' else c for c in name)
    return cleaned or "document.md"


def redact_url(url: str) -> str:
    """``scheme://host/path`` of a URL: presigned URLs carry credentials in their query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path


class Transport:
    """One aiohttp session talking to the ADE API for one client.

    The session is created by :meth:`open`, inside the running event loop (aiohttp binds a session
    to the loop it was created in), and closed by :meth:`close`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: ApiKey,
        timeouts: Timeouts,
        max_connections: int = 100,
        user_agent: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._max_download_bytes = max_download_bytes
        self._user_agent = user_agent or (
            f"ade_async/{__version__} aiohttp/{aiohttp.__version__} python/{platform.python_version()}"
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    async def open(self) -> None:
        """Create the HTTP session. Must be called from inside the running event loop."""
        if self._session is not None:
            raise RuntimeError("the transport is already open")
        timeout = aiohttp.ClientTimeout(
            total=self._timeouts.total,
            connect=self._timeouts.connect,
            sock_read=self._timeouts.read,
        )
        connector = aiohttp.TCPConnector(limit=self._max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self._user_agent},
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the session and its connections. Safe to call twice."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # --- the three API calls -------------------------------------------------------------------

    async def create_job(self, request: AsyncExtractRequest) -> JobCreationResponse:
        """``POST /v1/ade/extract/jobs``: returns the new job's id (HTTP 202)."""
        form = aiohttp.FormData()
        form.add_field("schema", request.schema)
        if request.markdown is not None:
            # The real API rejects a markdown part without a filename (422 "Invalid file
            # provided"), so the content always goes as a named file part.
            form.add_field(
                "markdown",
                request.markdown,
                filename=safe_filename(request.markdown_filename),
                content_type="text/markdown",
            )
        if request.markdown_url is not None:
            form.add_field("markdown_url", request.markdown_url)
        if request.model is not None:
            form.add_field("model", request.model)
        # Sent as text, the way curl -F sends booleans; FastAPI parses "true"/"false".
        form.add_field("strict", "true" if request.strict else "false")
        if request.output_save_url is not None:
            form.add_field("output_save_url", request.output_save_url)
        response = await self._send("POST", JOBS_PATH, data=form)
        self._raise_for_status("POST", JOBS_PATH, response)
        return self._decode("POST", JOBS_PATH, response, decode_created)

    async def get_job(self, job_id: str) -> ExtractJobStatusResponse:
        """``GET /v1/ade/extract/jobs/{job_id}``. 200 and 206 are both success."""
        job, _ = await self.get_job_detailed(job_id)
        return job

    async def get_job_detailed(self, job_id: str) -> tuple[ExtractJobStatusResponse, bytes | None]:
        """As :meth:`get_job`, plus the ``data`` member exactly as sent (for a completed job)."""
        path = f"{JOBS_PATH}/{quote(job_id, safe='')}"
        response = await self._send("GET", path)
        self._raise_for_status("GET", path, response)
        if response.status == 206:
            # 206: completed, but the output does not fully conform to the schema; a success
            # whose warnings are in the result's metadata.
            logger.debug("job %s completed with schema warnings (206)", job_id)
        job = self._decode("GET", path, response, decode_job)
        raw = self._decode("GET", path, response, raw_job_data) if job.data is not None else None
        return job, raw

    async def list_jobs(self, *, page: int, page_size: int, status: str | None) -> JobsListResponse:
        """``GET /v1/ade/extract/jobs``: one page (``page`` is 0-based; ``pageSize`` is camelCase)."""
        params: dict[str, str] = {"page": str(page), "pageSize": str(page_size)}
        if status is not None:
            params["status"] = status
        response = await self._send("GET", JOBS_PATH, params=params)
        self._raise_for_status("GET", JOBS_PATH, response)
        return self._decode("GET", JOBS_PATH, response, decode_job_list)

    async def download(self, url: str) -> Response:
        """GET a presigned ``output_url``: no Authorization header, redirects allowed.

        Returns the raw answer whatever its status; the caller decides what an error means
        (an expired URL is refreshed by re-getting the job).
        """
        return await self._send("GET", url, authenticated=False)

    # --- one place for I/O and error mapping ----------------------------------------------------

    async def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        data: aiohttp.FormData | None = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Response:
        session = self._session
        if session is None or session.closed:
            raise ClientClosedError("The client is closed; use it inside `async with Client(...)`.")
        shown = path_or_url if authenticated else redact_url(path_or_url)
        started = time.monotonic()
        failure: TransportError
        try:
            response = await self._exchange(
                session, method, path_or_url, data=data, params=params, authenticated=authenticated
            )
        except _BodyTooLarge as exc:
            failure = self._too_large(method, shown, exc, authenticated=authenticated)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Translated here and raised below, outside this block. aiohttp's exceptions carry the
            # request's headers (``request_info.headers['Authorization']``) and their tracebacks
            # the frames that built them: ``raise ... from exc`` would chain them as ``__cause__``,
            # and raising inside the block would chain them as ``__context__`` (even ``from None``
            # only hides it). Error trackers serialise both, with every frame's locals.
            failure = _transport_error(exc, method, shown)
        except BaseException as exc:
            # Anything else, above all a cancellation (a caller's timeout, a closing task group),
            # goes on as it is but without the frames below this one: aiohttp's hold the request's
            # headers as locals, and a caller's TimeoutError is chained to this very exception.
            raise exc.with_traceback(None)  # noqa: B904  (the same exception, re-raised)
        else:
            logger.debug(
                "%s %s -> %d (%d bytes, %.1f ms)",
                method,
                shown,
                response.status,
                len(response.body),
                (time.monotonic() - started) * 1000,
            )
            return response
        raise failure

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path_or_url: str,
        *,
        data: aiohttp.FormData | None,
        params: Mapping[str, str] | None,
        authenticated: bool,
    ) -> Response:
        """One request and its whole answer. Its errors are aiohttp's, translated by :meth:`_send`.

        The header dict is built in the call and never bound to a name: a frame on the traceback
        of an error the library raises must not hold it (trackers record frame locals). This
        frame is never on such a traceback anyway: :meth:`_send` raises its own errors.
        """
        async with session.request(
            method,
            self._base_url + path_or_url if authenticated else path_or_url,
            data=data,
            params=params,
            headers=self._authorization() if authenticated else None,
            allow_redirects=not authenticated,
        ) as answer:
            body = await _read_capped(
                answer, self._max_response_bytes if authenticated else self._max_download_bytes
            )
            if authenticated:
                body = self._scrub(body)
            return Response(status=answer.status, headers=answer.headers, body=body)

    def _too_large(
        self, method: str, shown: str, exc: _BodyTooLarge, *, authenticated: bool
    ) -> ResponseTooLargeError:
        setting = "max_response_bytes" if authenticated else "max_download_bytes"
        seen = f"its Content-Length says {exc.declared:,}" if exc.declared is not None else "read so far"
        return ResponseTooLargeError(
            f"{method} {shown}: the answer ({exc.status}) is larger than {setting} = {exc.limit:,} bytes "
            f"({seen}); the client stopped reading it. If such answers are expected, raise the cap: "
            f"Client({setting}=...).",
            method=method,
            path=shown,
            limit=exc.limit,
            status_code=exc.status,
        )

    def _authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.reveal()}"}

    def _scrub(self, body: bytes) -> bytes:
        """``body`` without the key: a server (or a debugging proxy) that echoes the request's
        headers into an error body must not turn the key into an exception attribute."""
        key = self._api_key.reveal().encode()
        return body.replace(key, b"***") if key in body else body

    @staticmethod
    def _raise_for_status(method: str, path: str, response: Response) -> None:
        # Only 2xx is success; a 3xx is an error too, because API requests never follow redirects.
        if 200 <= response.status < 300:
            return
        raise error_for_status(
            response.status,
            body=_error_body(response.body),
            method=method,
            path=path,
            retry_after=parse_retry_after(response.headers, now=time.time()),
        )

    @staticmethod
    def _decode(method: str, path: str, response: Response, decode: Callable[[bytes], _T]) -> _T:
        try:
            return decode(response.body)
        except msgspec.DecodeError as exc:
            raise MalformedResponseError(
                f"{method} {path} answered {response.status} with a body that does not match the API: {exc}",
                method=method,
                path=path,
                status_code=response.status,
            ) from exc


class _BodyTooLarge(Exception):
    """Raised inside :meth:`Transport._exchange`, turned into ResponseTooLargeError by ``_send``."""

    def __init__(self, *, limit: int, status: int, declared: int | None) -> None:
        super().__init__(limit)
        self.limit = limit
        self.status = status
        self.declared = declared


async def _read_capped(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``answer``, or :class:`_BodyTooLarge` once it passes ``limit`` bytes.

    ``Content-Length`` is checked first, so a body declared too large is not read at all; then the
    bytes are counted as they arrive, which also catches a chunked body, one that runs until the
    connection closes, and a compressed body that inflates past the limit (the count is of the
    decoded bytes, the ones this process would hold). Leaving the ``async with`` of the request
    unread closes the connection, so the rest is never received.
    """
    # A compressed body's Content-Length counts compressed bytes: only the decoded count is judged.
    encoded = answer.headers.get("Content-Encoding", "identity").lower() != "identity"
    declared = None if encoded else answer.content_length
    if declared is not None and declared > limit:
        raise _BodyTooLarge(limit=limit, status=answer.status, declared=declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge(limit=limit, status=answer.status, declared=None)
        chunks.append(chunk)
    return b"".join(chunks)


def _error_body(raw: bytes) -> Any:
    """An error body parsed as JSON when it is JSON, else its text (``None`` when empty)."""
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", errors="replace")


def _transport_error(exc: Exception, method: str, shown: str) -> TransportError:
    """The project's error for an aiohttp or OS failure; it keeps only strings from ``exc``.

    The description names the exception type and its reason, never ``str(exc)`` wholesale:
    aiohttp's messages may carry the full URL, and a presigned ``output_url`` carries credentials
    in its query string.
    """
    what = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeoutError(
            f"{method} {shown}: timed out connecting to the server ({what})", method=method, path=shown
        )
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return ReadTimeoutError(
            f"{method} {shown}: timed out waiting for the answer; the request was sent ({what})",
            method=method,
            path=shown,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused, DNS, TLS: the connection never opened, so nothing was sent.
        return ConnectError(
            f"{method} {shown}: could not connect: {_os_reason(exc)}", method=method, path=shown
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        return ConnectionLostError(
            f"{method} {shown}: the connection was lost before a complete answer ({what}: "
            f"{_reason(exc)}); the server may have acted on the request",
            method=method,
            path=shown,
        )
    if isinstance(exc, aiohttp.ClientResponseError):  # unparseable status line, too many redirects
        return MalformedResponseError(
            f"{method} {shown}: invalid HTTP answer ({what}: {_clip(exc.message) or exc.status})",
            method=method,
            path=shown,
            status_code=exc.status,
        )
    # Anything else aiohttp may add (InvalidURL, whose text is the URL): the type only.
    return TransportError(f"{method} {shown}: {what}", method=method, path=shown)


def _reason(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientOSError):
        return exc.strerror or type(exc).__name__
    return _clip(str(exc)) or type(exc).__name__


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    err = exc.os_error
    return err.strerror or type(err).__name__ if err is not None else type(exc).__name__
