"""HTTP, vendor-neutral: requests a provider builds, answers it reads, and the transport between.

:class:`HttpRequest`
    one request as a provider describes it: method, path (relative to the API's base URL) or a
    full URL (a presigned download, sent without the key), query parameters (repeated keys
    allowed), and a JSON or multipart body. It never holds the API key: the transport attaches
    it at the last moment, so no request object on a traceback can carry it.
:class:`Response`
    an answer, whatever its status.
:class:`Transport`
    what moves one request and its whole answer: the default is
    :class:`~ade_async._engine.transport.AiohttpTransport`; tests inject another
    (``ade_async.testing.MockTransport``), as httpx users do with its ``MockTransport``.
:class:`Api`
    what providers use: send through the transport, judge the status (every non-2xx becomes an
    :class:`~ade_async.APIStatusError`), decode the body (a body that does not match becomes
    :class:`~ade_async.MalformedResponseError`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import msgspec

from .._errors import MalformedResponseError, error_for_status
from .retry_after import parse_retry_after

__all__ = ["Api", "FormField", "HttpRequest", "Response", "Transport", "redact_url", "safe_filename"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FormField:
    """One part of a multipart body: a text field, or a file when ``filename`` is set."""

    name: str
    value: str | bytes = field(repr=False)
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One request, as a provider builds it (see the module docstring).

    Attributes:
        method: ``GET``, ``POST``, ...
        path: the path under the API's base URL, or a full URL when not ``authenticated``.
        params: query parameters, in order; a key may repeat (``expand=a&expand=b``).
        json: a JSON body, already encoded.
        form: a multipart body's parts.
        authenticated: an API request (the key attached, no redirects followed); ``False`` for
            a presigned download (no key, redirects followed).
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: bytes | None = field(default=None, repr=False)
    form: tuple[FormField, ...] = ()
    authenticated: bool = True

    @property
    def shown(self) -> str:
        """What messages and logs may show of it: the path, never a presigned URL's query."""
        return self.path if self.authenticated else redact_url(self.path)


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """A raw HTTP answer, before it is judged by status."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Moves one request and its whole answer; raises only the project's transport errors."""

    @property
    def base_url(self) -> str: ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, request: HttpRequest) -> Response: ...


class Api:
    """A provider's view of HTTP: send, judge the status, decode.

    Args:
        transport: what moves the bytes.
    """

    __slots__ = ("_budgeted", "_retried", "transport")

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._retried: Callable[[HttpRequest], Awaitable[Response]] | None = None
        self._budgeted: Callable[[str, HttpRequest], Awaitable[Response]] | None = None

    def admit_with(self, budgeted: Callable[[str, HttpRequest], Awaitable[Response]]) -> None:
        """Route :meth:`send_within` through ``budgeted`` (the engine's per-budget gates)."""
        self._budgeted = budgeted

    async def send_within(self, budget: str, request: HttpRequest) -> Response:
        """:meth:`send`, once admitted on the provider's ``budget`` (an upload, say), a 429 waited
        out and sent again; without an engine (a bare ``Api``), just :meth:`send`."""
        if self._budgeted is None:
            return await self.send(request)
        return await self._budgeted(budget, request)

    def retry_reads_with(self, retried: Callable[[HttpRequest], Awaitable[Response]]) -> None:
        """Route :meth:`read` through ``retried`` (the engine's reads, under the retry policy)."""
        self._retried = retried

    async def read(self, request: HttpRequest) -> Response:
        """A read (get, list) a provider makes on its own, e.g. to refresh an expired result URL:
        :meth:`send`, retried under the client's retry policy when the engine runs it."""
        if self._retried is None:
            return await self.send(request)
        return await self._retried(request)

    async def send(self, request: HttpRequest) -> Response:
        """Send ``request``; a 2xx answer is returned, anything else raised as its error.

        Raises:
            APIStatusError: the answer's status is not 2xx (redirects included: API requests
                never follow them).
            TransportError: no usable answer.
        """
        response = await self.transport.send(request)
        if not 200 <= response.status < 300:
            raise error_for_status(
                response.status,
                body=error_body(response.body),
                method=request.method,
                path=request.shown,
                retry_after=parse_retry_after(response.headers, now=time.time()),
            )
        return response

    async def call(self, request: HttpRequest, decode: Callable[[bytes], _T]) -> _T:
        """:meth:`send`, then decode the body (:class:`MalformedResponseError` if it does not fit)."""
        return decoded(request, await self.send(request), decode)


def decoded(request: HttpRequest, response: Response, decode: Callable[[bytes], _T]) -> _T:
    """``decode(response.body)``, a mismatch becoming :class:`MalformedResponseError`."""
    try:
        return decode(response.body)
    except msgspec.DecodeError as exc:
        raise MalformedResponseError(
            f"{request.method} {request.shown} answered {response.status} with a body that does not "
            f"match the API: {exc}",
            method=request.method,
            path=request.shown,
            status_code=response.status,
        ) from exc


def error_body(raw: bytes) -> Any:
    """An error body parsed as JSON when it is JSON, else its text (``None`` when empty)."""
    if not raw.strip():
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", errors="replace")


def safe_filename(name: str, default: str = "document") -> str:
    """A file name fit for a multipart header: control characters, quotes and backslashes become
    ``_`` (a newline in a header would be an injection; aiohttp refuses it outright)."""
    cleaned = "".join("_" if ord(c) < 0x20 or c in '"\\\x7f' else c for c in name)
    return cleaned or default


def redact_url(url: str) -> str:
    """``scheme://host/path`` of a URL: presigned URLs carry credentials in their query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
