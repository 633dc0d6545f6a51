"""The transport seam: aiohttp never leaks, failures map to the error tree, the key stays home.

These tests use small purpose-built aiohttp servers on loopback, to produce exactly the failure
each one needs.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from aiohttp import BodyPartReader, web

import ade_async
from ade_async.providers.landingai import LandingAIOptions
from ade_async.providers.landingai.tokens import tag_filename, token_of

pytestmark = pytest.mark.anyio

# These tests look at the seam itself, so every failure surfaces at once (retries are tested in
# test_retries.py).
NO_RETRY = ade_async.RetryPolicy.none()

SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, so nothing else can take it, but not
    listening (a port merely found free could be taken by another process before the test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_connection_refused_is_a_connect_error_and_nothing_was_sent() -> None:
    with refusing_port() as port:
        async with ade_async.Client(
            api_key="k", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY
        ) as client:
            with pytest.raises(ade_async.ConnectError) as info:
                await client.create_job("# doc", schema=SCHEMA)
    assert not info.value.request_sent
    assert info.value.path == "/v1/ade/extract/jobs"


async def test_slow_answer_is_a_read_timeout() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.Event().wait()  # never answers: the server is cancelled when the test ends
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v1/ade/extract/jobs/{job_id}", slow)
    async with serve(app) as url:
        timeouts = ade_async.Timeouts(read=0.2)
        async with ade_async.Client(api_key="k", base_url=url, timeouts=timeouts, retry=NO_RETRY) as client:
            with pytest.raises(ade_async.ReadTimeoutError) as info:
                await client.get_job("j")
    assert info.value.request_sent


async def test_dropped_connection_is_connection_lost() -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)  # not a wait for anything: the connection is closed already
        return web.Response()

    app = web.Application()
    app.router.add_post("/v1/ade/extract/jobs", drop)
    app.router.add_get("/v1/ade/extract/jobs/{job_id}", drop)
    async with serve(app) as url, ade_async.Client(api_key="k", base_url=url, retry=NO_RETRY) as client:
        with pytest.raises(ade_async.CreateOutcomeUnknownError) as info:
            await client.create_job("# doc", schema=SCHEMA)
        with pytest.raises(ade_async.ConnectionLostError) as lost:
            await client.get_job("j")  # a read shows the mapped error itself (after its retries)
    # The create may have been accepted: it is not repeated, and the error says why.
    assert isinstance(info.value.cause, ade_async.ConnectionLostError)
    assert info.value.cause.request_sent
    assert lost.value.request_sent


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"id": "x"}', b"<html>ok</html>"])
async def test_malformed_success_body(body: bytes) -> None:
    async def weird(request: web.Request) -> web.Response:
        return web.Response(status=202, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/ade/extract/jobs", weird)
    async with serve(app) as url, ade_async.Client(api_key="k", base_url=url, retry=NO_RETRY) as client:
        with pytest.raises(ade_async.CreateOutcomeUnknownError) as info:
            await client.create_job("# doc", schema=SCHEMA)
    # A 202 with a garbled body: the job exists, but its id is unreadable.
    assert isinstance(info.value.cause, ade_async.MalformedResponseError)
    assert info.value.cause.status_code == 202


async def test_api_redirects_are_not_followed_so_the_key_cannot_travel() -> None:
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"job_id": "j"}, status=202)

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", elsewhere)
    async with serve(other) as other_url:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(other_url + "/v1/ade/extract/jobs")

        app = web.Application()
        app.router.add_post("/v1/ade/extract/jobs", redirect)
        async with serve(app) as url, ade_async.Client(api_key="secret-key", base_url=url) as client:
            with pytest.raises(ade_async.APIStatusError) as info:
                await client.create_job("# doc", schema=SCHEMA)
    assert info.value.status_code == 307
    assert seen == []


async def test_request_shape_and_headers() -> None:
    captured: dict[str, object] = {}
    queries: list[dict[str, str]] = []

    async def create(request: web.Request) -> web.Response:
        captured["auth"] = request.headers.get("Authorization")
        captured["ua"] = request.headers.get("User-Agent")
        fields: dict[str, object] = {}
        async for part in await request.multipart():
            assert isinstance(part, BodyPartReader)
            fields[str(part.name)] = (part.filename, bytes(await part.read()))
        captured["fields"] = fields
        return web.json_response({"job_id": "j-1"}, status=202)

    async def listing(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        return web.json_response({"jobs": [], "has_more": False})

    app = web.Application()
    app.router.add_post("/v1/ade/extract/jobs", create)
    app.router.add_get("/v1/ade/extract/jobs", listing)
    async with serve(app) as url, ade_async.Client(api_key="secret-key", base_url=url) as client:
        job_id = await client.create_job(
            "# Invoice\nTotal: 5",
            schema=SCHEMA,
            options=LandingAIOptions(model="extract-latest", strict=True, output_save_url="https://o/x"),
        )
        assert [job async for job in client.list_jobs(status="pending", page_size=7)] == []
    assert job_id == "j-1"
    assert captured["auth"] == "Bearer secret-key"
    assert str(captured["ua"]).startswith("ade_async/")
    fields = captured["fields"]
    assert isinstance(fields, dict)
    assert fields["schema"] == (None, b'{"type":"object","properties":{"a":{"type":"string"}}}')
    name, content = fields["markdown"]
    assert content == b"# Invoice\nTotal: 5"
    # A named file part; the name carries the upload token that finds the job of a lost answer.
    assert name == tag_filename("document.md", token_of(name) or "(no token)")
    assert fields["model"] == (None, b"extract-latest")
    assert fields["strict"] == (None, b"true")
    assert fields["output_save_url"] == (None, b"https://o/x")
    assert "markdown_url" not in fields
    assert queries == [{"page": "0", "pageSize": "7", "status": "pending"}]


async def test_job_ids_cannot_escape_the_path() -> None:
    paths: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        paths.append(request.raw_path)
        return web.json_response({"message": "Job not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with serve(app) as url, ade_async.Client(api_key="k", base_url=url, retry=NO_RETRY) as client:
        with pytest.raises(ade_async.NotFoundError):
            await client.get_job("../../admin?x=1")
    # Slashes and the question mark are escaped: the id stays one path segment with no query.
    assert len(paths) == 1
    assert paths[0].startswith("/v1/ade/extract/jobs/..%2F..%2Fadmin%3Fx")


async def test_use_outside_the_context_manager_is_refused() -> None:
    client = ade_async.Client(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ade_async.ClientClosedError):
        await client.get_job("j")
    async with client:
        pass
    with pytest.raises(ade_async.ClientClosedError):
        await client.get_job("j")
    with pytest.raises(RuntimeError, match="only once"):
        async with client:
            pass


async def test_unreadable_markdown_is_an_input_error_before_any_request(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    with refusing_port() as port:  # nothing is sent, so nothing need listen
        async with ade_async.Client(
            api_key="k", base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY
        ) as client:
            with pytest.raises(ade_async.InputError, match="not found") as info:
                await client.create_job(tmp_path / "missing.md", schema=SCHEMA)
            assert info.value.path == str(tmp_path / "missing.md")
            with pytest.raises(ade_async.InputError, match="directory"):
                await client.create_job(tmp_path, schema=SCHEMA)
            with pytest.raises(TypeError, match="document must be"):
                await client.create_job(123, schema=SCHEMA)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="schema must be"):
                await client.create_job("# x", schema=["not", "a", "mapping"])  # type: ignore[arg-type]


def test_upload_file_names_cannot_inject_headers() -> None:
    from ade_async._engine.http import safe_filename

    assert safe_filename("line\nbreak.md") == "line_break.md"
    assert safe_filename('quote".md') == "quote_.md"
    assert safe_filename("back\\slash\r.md") == "back_slash_.md"
    assert safe_filename("ünïcødé ..name.md") == "ünïcødé ..name.md"
    assert safe_filename("", "document.md") == "document.md"
