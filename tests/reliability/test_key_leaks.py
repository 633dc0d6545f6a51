"""The API key is reachable from no exception ade_async raises: not its message, not its chain of
causes and contexts, not its attributes, not the local variables of the frames on its traceback.

Error trackers (Sentry and the like) serialise all of that, so each failure the transport can meet
is produced on loopback (by a server that writes raw bytes, and by the simulator's injected faults)
for every kind of request, through the public calls, and every error is searched with
:func:`leakcheck.secret_paths`.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ade_async
from ade_async._config import ApiKey
from ade_async.providers import landingai
from ade_async.providers.landingai import LandingAI
from ade_async.testing import ENDPOINTS, FAULT_ENDPOINTS, FAULT_KINDS, Faults, Simulator, SimulatorConfig

from .harness import fast_penalty
from .leakcheck import secret_paths
from .rawserver import MODES, RawServer, raw_server

pytestmark = pytest.mark.anyio

#: A distinctive key: found anywhere means leaked.
KEY = "sk-leakcheck-3b9f2e71-NEVER-SHOW"
#: What the walk looks for: the key, and the scheme word of the header that carries it.
NEEDLES = (KEY, "Bearer")
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}
DOCUMENT = "Name: Ada\n"

#: One quick retry, so the read and create retry loops are on the path too.
ONE_RETRY = ade_async.RetryPolicy(attempts=2, backoff_base=0.001, backoff_cap=0.001, jitter=0.0)
QUICK: dict[str, Any] = {
    "timeouts": ade_async.Timeouts(connect=2.0, read=0.2),
    "retry": ONE_RETRY,
    "poll": ade_async.PollPolicy(first_delay=0.01, max_delay=0.02, jitter=0.0, coalesce=0.0, sweep=False),
    # An unreadable list keeps a search going to its hard bound: keep that short too.
    "reconcile": ade_async.ReconcilePolicy(search_time=0.0, max_search_time=0.5, list_interval=0.01),
}


#: The tests' own frames hold the key (they pass it); the library's frames must not.
TESTS = str(Path(__file__).parent.parent)


def assert_no_leak(error: BaseException, needles: tuple[str, ...] = NEEDLES) -> None:
    paths = secret_paths(error, needles, skip_frames_in=[TESTS])
    assert paths == [], f"{type(error).__name__} ({error}) reaches the key at: {paths}"
    # Sent to another process (multiprocessing, Celery), it travels whole and without the key.
    pickled = pickle.dumps(error)
    assert KEY.encode() not in pickled
    assert str(pickle.loads(pickled)) == str(error)


# ------------------------------------------------------------------------------------------------
# the walk itself


def test_the_walk_finds_a_key_wherever_a_tracker_would() -> None:
    """A scan that cannot fail proves nothing: plant the key in each place it looks."""

    class Holder:
        def __init__(self) -> None:
            self.nested = {"list": [("x", {"deep": f"Bearer {KEY}"})]}

    def raising_with_a_local() -> None:
        headers = {"Authorization": f"Bearer {KEY}"}  # noqa: F841  (a frame local, on purpose)
        raise ValueError("no key in the message")

    planted: list[BaseException] = []
    cause = RuntimeError("inner")
    cause.holder = Holder()  # type: ignore[attr-defined]
    outer = ade_async.ADEError("outer")
    outer.__cause__ = cause
    planted.append(outer)
    try:
        raising_with_a_local()
    except ValueError as exc:
        planted.append(exc)
    try:
        try:
            raise KeyError(KEY)
        except KeyError:
            raise ade_async.ADEError("context only") from None  # suppressed, but still __context__
    except ade_async.ADEError as exc:
        planted.append(exc)
    group = ExceptionGroup("group", [ValueError(b"Bearer x")])
    planted.append(group)

    for error in planted:
        assert secret_paths(error, NEEDLES), error
    assert any("holder.nested" in path for path in secret_paths(outer, NEEDLES))
    assert any("<" in path and ".headers" in path for path in secret_paths(planted[1], NEEDLES))
    # The key object itself is opaque: slots and a masked repr, as a serialiser sees it.
    masked = ade_async.ADEError("holds the key object")
    masked.key = ApiKey(KEY)  # type: ignore[attr-defined]
    assert secret_paths(masked, NEEDLES) == []


# ------------------------------------------------------------------------------------------------
# a server that answers badly


def completed_job(output_url: str) -> landingai.ExtractJobStatusResponse:
    return msgspec.convert(
        {
            "job_id": "job-1",
            "status": "completed",
            "received_at": 0,
            "progress": 1.0,
            "output_url": output_url,
        },
        landingai.ExtractJobStatusResponse,
    )


async def _list(client: ade_async.Client) -> object:
    return [job async for job in client.list_jobs()]


#: The public calls, by the request they make (``extract`` and ``wait`` end on a handle).
CALLS: dict[str, Callable[[ade_async.Client, str], Awaitable[object]]] = {
    "create_job": lambda client, url: client.create_job(DOCUMENT, schema=SCHEMA),
    "get_job": lambda client, url: client.get_job("job-1"),
    "list_jobs": lambda client, url: _list(client),
    "fetch_result": lambda client, url: client.fetch_result(
        landingai.snapshot_of(completed_job(f"{url}/out.json?X-Sig=abc"))
    ),
    "extract": lambda client, url: client.extract(DOCUMENT, schema=SCHEMA),
    "wait": lambda client, url: client.watch("job-1", timeout=0.5),
}


async def _await_handle(outcome: object) -> object:
    if isinstance(outcome, ade_async.JobHandle):
        return await outcome
    return outcome


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("mode", MODES)
async def test_no_transport_failure_leads_to_the_key(mode: str, call: str) -> None:
    async with (
        raw_server(mode) as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **QUICK) as client,
    ):
        with pytest.raises(ade_async.ADEError) as info:
            await _await_handle(await CALLS[call](client, server.url))
        server.release()  # hanging connections go now; the error is already raised
    assert server.heads, "the request never reached the server: the test proved nothing"
    if call != "fetch_result":  # the download is the one request sent without the key
        assert any(KEY.encode() in head for head in server.heads)
    # An echo of the request shows the scheme word, with the key masked: look for the key only.
    assert_no_leak(info.value, (KEY,) if mode == "echo" else NEEDLES)


async def test_refused_connections_and_pool_timeouts_lead_to_no_key() -> None:
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with ade_async.Client(api_key=KEY, base_url=f"http://127.0.0.1:{port}", **QUICK) as client:
            for call in ("create_job", "get_job", "list_jobs"):
                with pytest.raises(ade_async.ConnectError) as refused:
                    await CALLS[call](client, "")
                assert_no_leak(refused.value)
    # One connection, held by an answer that never comes: the next request waits for the pool
    # past its connect timeout (nothing sent).
    async with raw_server("hang") as server:
        timeouts = ade_async.Timeouts(connect=0.2, read=30.0)
        options = {**QUICK, "timeouts": timeouts, "retry": ade_async.RetryPolicy.none()}
        async with (
            ade_async.Client(api_key=KEY, base_url=server.url, max_connections=1, **options) as client,
            _in_background(client.get_job("held")),
        ):
            await server.received(1)  # the one connection is taken
            with pytest.raises(ade_async.ConnectTimeoutError) as waited:
                await client.get_job("job-2")
            server.release()
    assert not any(b"job-2" in head for head in server.heads)
    assert_no_leak(waited.value)


@contextlib.asynccontextmanager
async def _in_background(call: Awaitable[object]) -> AsyncIterator[None]:
    import anyio

    async def run() -> None:
        with contextlib.suppress(ade_async.ADEError):
            await call

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run)
        yield


async def test_a_server_that_echoes_the_request_does_not_put_the_key_in_the_error() -> None:
    """Debugging proxies answer errors with the request's headers: the body is kept, the key not."""
    async with (
        raw_server("echo") as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **QUICK) as client,
    ):
        with pytest.raises(ade_async.BadRequestError) as info:
            await client.get_job("job-1")
    assert "Authorization" in str(info.value.body)  # the echo is there...
    assert secret_paths(info.value, [KEY], skip_frames_in=[TESTS]) == []  # ...without the key


# ------------------------------------------------------------------------------------------------
# the simulator's faults


def _faults() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for endpoint in ENDPOINTS:
        for kind in FAULT_KINDS:
            only = FAULT_ENDPOINTS.get(kind)
            if only is None or only == endpoint:
                pairs.append((endpoint, kind))
    return pairs


@pytest.mark.parametrize(("endpoint", "kind"), _faults())
async def test_no_simulator_fault_leads_to_the_key(endpoint: str, kind: str) -> None:
    config = SimulatorConfig(
        api_keys=(KEY,),
        latency=(0.0, 0.0),
        result_url_threshold=0,
        faults=Faults(slow_seconds=0.5),
        fault_retry_after=0.01,
        retry_after="ms",
    )
    errors: list[BaseException] = []
    # No retries and no fresh output_url after a failed download, so each fault surfaces; short
    # pauses after 429s.
    options = {
        **QUICK,
        "retry": ade_async.RetryPolicy.none(),
        "provider": LandingAI(url_refreshes=0),
        "rate_limit": fast_penalty(ade_async.RateLimit()),
    }
    async with (
        Simulator(config) as sim,
        ade_async.Client(api_key=KEY, base_url=sim.base_url, **options) as client,
    ):
        job_id = await client.create_job(DOCUMENT, schema=SCHEMA)
        done = await client.watch(job_id, timeout=10.0)  # completed, its result downloaded
        assert done.job.detail.output_url is not None
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "create": lambda: client.create_job(DOCUMENT, schema=SCHEMA),
            "get": lambda: client.get_job(job_id),
            "list": lambda: _list(client),
            "download": lambda: client.fetch_result(done.job),
        }
        # Twice each: aiohttp repeats a dropped GET once by itself.
        sim.inject(endpoint, kind, 2)
        for _ in range(2):
            try:
                await calls[endpoint]()
            except ade_async.ADEError as failed:
                errors.append(failed)
        # The same fault met by the public paths that end on a handle.
        sim.inject(endpoint, kind, 4)
        ending_on_a_handle: list[Callable[[], Awaitable[object]]] = [
            lambda: client.extract(DOCUMENT, schema=SCHEMA, timeout=2.0),
            lambda: _await_handle(client.watch(job_id, timeout=2.0)),
        ]
        for make in ending_on_a_handle:
            try:
                await make()
            except ade_async.ADEError as failure:
                errors.append(failure)
    for error in errors:
        assert_no_leak(error)
    if (endpoint, kind) != ("create", "429"):  # a 429 on a create is waited out, not raised
        assert errors, "the fault raised nothing: the test proved nothing"


# ------------------------------------------------------------------------------------------------
# errors raised before any request


def test_errors_raised_while_constructing_the_client_lead_to_no_key() -> None:
    """``Client.__init__`` holds the key string as an argument: its frame is on these tracebacks."""
    attempts: list[Callable[[], object]] = [
        lambda: ade_async.Client(api_key=KEY, max_connections=0),
        lambda: ade_async.Client(api_key=KEY, max_connections=-1),
        lambda: ade_async.Client(api_key=KEY, base_url="ftp://example.invalid"),
        lambda: ade_async.Client(api_key=KEY, base_url="http://192.0.2.1:8000"),  # plain http, not loopback
        lambda: ade_async.Client(api_key=KEY, base_url="https://a.invalid", environment="eu"),
        lambda: ade_async.Client(api_key=KEY, environment="mars"),
    ]
    for attempt in attempts:
        with pytest.raises((ValueError, ade_async.ADEError)) as info:
            attempt()
        assert_no_leak(info.value)


async def test_a_fastapi_lifespan_that_cannot_make_its_client_leads_to_no_key() -> None:
    """``ade_lifespan(api_key=...)`` keeps the arguments until startup; a startup error must not
    show them (its frames are on the traceback, and a server reports startup errors)."""
    from starlette.applications import Starlette

    from ade_async.fastapi import ade_lifespan

    lifespan = ade_lifespan(api_key=KEY, max_connections=0)
    with pytest.raises(ValueError, match="max_connections") as info:
        async with lifespan(Starlette()):
            pass
    assert_no_leak(info.value)


def test_the_command_options_do_not_show_the_key() -> None:
    """``ExtractOptions`` is a dataclass: its ``repr`` (in logs, in a tracker's frame locals) would
    show every field."""
    from ade_async.cli._extract import ExtractOptions

    options = ExtractOptions(inputs=["docs"], schema=Path("s.json"), out=Path("out"), api_key=KEY)
    assert KEY not in repr(options)
    assert options.api_key == KEY


@pytest.mark.parametrize("call", ["create_job", "get_job", "list_jobs"])
@pytest.mark.parametrize("bound", ["anyio.fail_after", "asyncio.timeout"])
async def test_a_wait_cut_short_by_the_caller_leads_to_no_key(call: str, bound: str) -> None:
    """The caller's own timeout cancels a request in flight: the TimeoutError it gets is chained
    to that cancellation, whose traceback runs through the transport (and aiohttp)."""
    async with (
        raw_server("hang") as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **QUICK) as client,
    ):
        with pytest.raises(TimeoutError) as info:
            await _cut_short_once_sent(CALLS[call](client, server.url), server, bound)
        server.release()
    assert len(server.heads) == 1  # cut short in flight, and not sent again
    assert isinstance(info.value.__context__ or info.value.__cause__, BaseException)
    assert_no_leak(info.value)


async def _cut_short_once_sent(request: Awaitable[object], server: RawServer, bound: str) -> None:
    """Await ``request`` under a timeout that expires as soon as the server has the request."""
    import asyncio

    import anyio

    async def expire(move_deadline: Callable[[], None]) -> None:
        await server.received(1)
        move_deadline()

    if bound == "anyio.fail_after":
        with anyio.fail_after(60) as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(expire, lambda: setattr(scope, "deadline", -math.inf))
                await request
    else:
        async with asyncio.timeout(60) as timeout, anyio.create_task_group() as tasks:
            tasks.start_soon(expire, lambda: timeout.reschedule(asyncio.get_running_loop().time()))
            await request
