"""The HTTP transport on aiohttp: one request in, its whole answer out, nothing vendor-specific.

This is the one seam where the outside world is translated: aiohttp and OS exceptions become
:mod:`ade_async._errors` transport errors. It knows nothing of any vendor: a provider builds each
:class:`~ade_async._engine.http.HttpRequest` and reads each answer (``_engine.http.Api`` judges
statuses and decodes bodies). Tests may put any other :class:`~ade_async._engine.http.Transport`
in its place (``ade_async.testing.MockTransport``).

Security rules enforced here:

* the ``Authorization`` header is attached per request, to API requests only. The download of an
  result URL (a presigned storage URL on another host) is sent without it, and the session
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
from collections.abc import Mapping, Sequence
from typing import Final

import aiohttp

from .._config import ApiKey, Timeouts
from .._errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    MalformedResponseError,
    ReadTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from .._version import __version__
from .http import HttpRequest, Response, redact_url

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "DEFAULT_MAX_RESPONSE_BYTES", "AiohttpTransport"]

logger = logging.getLogger("ade_async")

#: The largest API answer read by default (vendors put big results behind a URL or an endpoint
#: of their own, so status and list answers stay far below this).
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
#: The largest result downloaded from a result URL by default.
DEFAULT_MAX_DOWNLOAD_BYTES: Final = 512 * 1024 * 1024


class AiohttpTransport:
    """One aiohttp session talking to one API for one client: the default :class:`Transport`.

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

    async def send(self, request: HttpRequest) -> Response:
        """Send ``request`` and return its whole answer, whatever its status.

        API requests (``request.authenticated``) go to the base URL with the key attached;
        others (a presigned download) go to their own URL without it.

        Raises:
            TransportError: no usable answer (see the error tree); ResponseTooLargeError for an
                answer over its cap.
            ClientClosedError: the transport is not open.
        """
        data: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if request.form:
            form = aiohttp.FormData()
            for part in request.form:
                form.add_field(part.name, part.value, filename=part.filename, content_type=part.content_type)
            data = form
        elif request.json is not None:
            data = request.json
            headers = {"Content-Type": "application/json"}
        return await self._send(
            request.method,
            request.path,
            data=data,
            params=request.params or None,
            headers=headers,
            authenticated=request.authenticated,
        )

    # --- one place for I/O and error mapping ----------------------------------------------------

    async def _send(
        self,
        method: str,
        path_or_url: str,
        *,
        data: aiohttp.FormData | bytes | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
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
                session,
                method,
                path_or_url,
                data=data,
                params=params,
                headers=headers,
                authenticated=authenticated,
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
        data: aiohttp.FormData | bytes | None,
        params: Sequence[tuple[str, str]] | None,
        headers: Mapping[str, str] | None,
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
            headers={**(headers or {}), **self._authorization()} if authenticated else headers,
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


def _transport_error(exc: Exception, method: str, shown: str) -> TransportError:
    """The project's error for an aiohttp or OS failure; it keeps only strings from ``exc``.

    The description names the exception type and its reason, never ``str(exc)`` wholesale:
    aiohttp's messages may carry the full URL, and a presigned result URL carries credentials
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
