""":class:`MockTransport`: answer a client's requests with a function, no server, no sockets.

The way httpx users test with ``httpx.MockTransport``: pass it as ``Client(transport=...)`` and
every request the provider builds goes to ``handler`` instead of the network. The handler sees the
:class:`~ade_async.HttpRequest` as the provider built it (method, path, query parameters, JSON or
multipart body); the API key is never in it, since the real transport attaches it at the last
moment. It returns an :class:`~ade_async.Response` (or awaits one), or raises one of the
library's transport errors to play a failure.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, final

from .._engine.http import HttpRequest, Response
from .._errors import ClientClosedError

__all__ = ["MockTransport", "json_response"]

Handler = Callable[[HttpRequest], "Response | Awaitable[Response]"]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A :class:`Response` with ``body`` encoded as JSON."""
    import msgspec

    return Response(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=msgspec.json.encode(body),
    )


@final
class MockTransport:
    """A :class:`~ade_async.Transport` that calls ``handler`` for every request.

    Args:
        handler: takes the request, returns (or awaits) its :class:`~ade_async.Response`.
        base_url: what ``client.base_url`` shows.

    Attributes:
        requests: every request handled, in order.

    Example::

        def handler(request: ade_async.HttpRequest) -> ade_async.Response:
            if request.method == "POST":
                return json_response(202, {"job_id": "j-1"})
            return json_response(404, {"message": "Job not found"})

        async with ade_async.Client(api_key="k", transport=MockTransport(handler)) as client:
            assert await client.create_job("# Invoice", schema=schema) == "j-1"
    """

    def __init__(self, handler: Handler, *, base_url: str = "https://mock.invalid") -> None:
        self._handler = handler
        self._base_url = base_url
        self._open = False
        self.requests: list[HttpRequest] = []

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    async def send(self, request: HttpRequest) -> Response:
        if not self._open:
            raise ClientClosedError("The client is closed; use it inside `async with Client(...)`.")
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    def __repr__(self) -> str:
        return f"<MockTransport {self._base_url} {len(self.requests)} requests>"
