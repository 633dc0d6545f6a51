"""ade_async.fastapi: a real uvicorn server on loopback, in front of the simulator.

Each test serves an app on a free loopback port (``uvicorn.Server.serve`` in a task) and drives it
with aiohttp: one client shared by every request, never above the quota, every request answered,
errors mapped to HTTP, shutdown that answers pending requests and leaves no task behind, plain
Starlette, and uvloop. A subprocess test sends the example service a real SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import anyio
import pytest
import uvicorn
from conftest import CEILING, drive, wait_until
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.routing import Route

import ade_async
from ade_async import PollPolicy, RateLimit
from ade_async.fastapi import (
    QuotaExhaustedError,
    ade_lifespan,
    close_client,
    error_response,
    get_client,
    install_exception_handlers,
    submit_or_503,
)
from ade_async.providers import landingai
from ade_async.testing import FakeClock, Faults, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

QUOTA = 40  # creates per rolling second, for the simulator and the client alike
# The gate counts a create when it admits it; the simulator when it arrives. Here one event loop
# carries the simulator, uvicorn, the client and hundreds of uploads, so that gap varies by far
# more than the 50 ms default margin (meant for network jitter) under load: widen it.
SAFETY_MARGIN = 0.3
QUICK_POLL = PollPolicy(first_delay=0.05, max_delay=0.3, coalesce=0.02)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"

ClientDep = Annotated[ade_async.Client, Depends(get_client)]


def doc(number: int, extra: str = "") -> str:
    return f"# Invoice\nInvoice Number: INV-{number}\nTotal: {number}.50\n{extra}"


def make_app(sim: Simulator, *, quota: int = QUOTA, **lifespan_kwargs: Any) -> FastAPI:
    """A small service: POST a Markdown body to /extract, optionally failing fast on quota."""
    lifespan_kwargs.setdefault("api_key", sim.api_key)
    app = FastAPI(
        lifespan=ade_lifespan(
            base_url=sim.base_url,
            rate_limit=RateLimit(windows=((quota, 1.0),), safety_margin=SAFETY_MARGIN),
            poll=QUICK_POLL,
            **lifespan_kwargs,
        )
    )
    install_exception_handlers(app)

    @app.post("/extract")
    async def extract(
        request: Request,
        client: ClientDep,
        max_wait: float | None = None,
        deadline: float | None = None,
        bad_schema: bool = False,
    ) -> Any:
        markdown = await request.body()
        schema: dict[str, Any] = {"type": "array"} if bad_schema else SCHEMA
        if max_wait is None:
            result = await client.extract(markdown, schema=schema, timeout=deadline)
        else:
            handle = await submit_or_503(client, markdown, schema=schema, max_wait=max_wait, timeout=deadline)
            result = await handle
        return {"job_id": result.job_id, "extraction": result.extraction}

    @app.get("/jobs/{job_id}")
    async def job(job_id: str, client: ClientDep) -> Any:
        return {"status": (await client.get_job(job_id)).status}

    return app


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Served]:
    """Serve ``app`` with uvicorn on a free loopback port until the block ends."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="on", log_config=None, log_level="warning"
    )
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    served = Served(f"http://127.0.0.1:{sock.getsockname()[1]}", server, task)
    try:
        with anyio.fail_after(CEILING):
            while not server.started:  # uvicorn offers a flag, nothing to await
                if task.done():
                    await task
                    raise RuntimeError("uvicorn stopped during startup")
                await asyncio.sleep(0.01)
        yield served
    finally:
        server.should_exit = True
        with anyio.fail_after(CEILING):
            await task
        sock.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3), quota=((QUOTA, 1.0),))) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: str, **params: Any) -> tuple[int, Any, Any]:
    query = {
        key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in params.items()
    }
    async with http.post(f"{url}/extract", data=body.encode(), params=query) as answer:
        return answer.status, await answer.json(), answer.headers


def client_of(app: Any) -> ade_async.Client:
    client = app.state.ade_client
    assert isinstance(client, ade_async.Client)
    return client


def ade_tasks() -> list[asyncio.Task[Any]]:
    """Tasks left by ade_async (the client's poller, the lifespan's owner task)."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done()
        and (task.get_name().startswith("ade_async") or "ade_async" in repr(task.get_coro()).split(" at ")[0])
    ]


# --- the shared client -------------------------------------------------------------------------------


async def test_200_concurrent_requests_share_one_client_within_the_quota(http: aiohttp.ClientSession) -> None:
    # The client and the simulator share one fake clock, moved once the simulator has answered
    # what was sent: a create arrives within a step (50 ms) of its admission however loaded the
    # machine, so the quota windows agree on both sides of the wire.
    clock = FakeClock()
    config = SimulatorConfig(latency=(0.05, 0.3), quota=((QUOTA, 1.0),))
    async with Simulator(config, clock=clock.now) as sim:
        app = make_app(sim, clock=clock)
        async with serving(app) as served:
            requests = [asyncio.create_task(post(http, served.url, doc(n))) for n in range(200)]
            client = client_of(app)
            await drive(clock, client, sim, lambda: all(r.done() for r in requests), step=0.05)
            answers = [r.result() for r in requests]
            stats = client.stats()

        assert [status for status, _, _ in answers] == [200] * 200
        for number, (_, body, _) in enumerate(answers):
            assert body["extraction"] == {"invoice_number": f"INV-{number}", "total": number + 0.5}
        assert len({body["job_id"] for _, body, _ in answers}) == 200
        # One client did it all, and the quota held on the server's side of the wire.
        simulated = sim.stats()
        assert simulated.creates_accepted == 200
        assert stats.creates_accepted == 200
        assert stats.jobs_submitted == 200
        assert stats.jobs_completed == 200
        assert simulated.rate_limited == 0
        assert stats.creates_rate_limited == 0
        assert sim.max_creates_in_window(1.0) <= QUOTA
        assert simulated.duplicate_jobs == 0


# --- errors as HTTP answers ------------------------------------------------------------------------


async def test_errors_become_http_answers(sim: Simulator, http: aiohttp.ClientSession) -> None:
    app = make_app(sim)
    async with serving(app) as served:
        status, body, _ = await post(http, served.url, doc(1, "<!-- ade-sim: fail OCR engine exploded -->"))
        assert status == 502
        assert body["error"] == "job_failed"
        assert body["failure_reason"] == "OCR engine exploded"
        assert "OCR engine exploded" in body["message"]
        assert body["job_id"]

        status, body, _ = await post(http, served.url, doc(2), bad_schema=True)
        assert status == 422
        assert body["error"] == "invalid_schema"
        assert body["problems"]

        status, body, _ = await post(http, served.url, doc(3, "<!-- ade-sim: latency 3600 -->"), deadline=0.3)
        assert status == 504
        assert body["error"] == "job_timeout"
        # The job id is what lets the caller collect the job later.
        async with http.get(f"{served.url}/jobs/{body['job_id']}") as answer:
            assert answer.status == 200
            assert (await answer.json())["status"] in ("pending", "processing")

        async with http.get(f"{served.url}/jobs/no-such-job") as answer:
            assert answer.status == 404
            assert (await answer.json())["error"] == "job_not_found"

        status, body, _ = await post(http, served.url, doc(4), max_wait=2)
        assert status == 200  # fail-fast only fails when the quota is busy
    assert sim.stats().rate_limited == 0


async def test_fail_fast_on_quota_answers_503_with_retry_after(http: aiohttp.ClientSession) -> None:
    # The quota's windows run on a fake clock that stands still until every request has been
    # admitted or refused: however slowly the requests arrive, the window cannot slide meanwhile.
    clock = FakeClock()
    config = SimulatorConfig(latency=(0.05, 0.3), quota=((QUOTA, 1.0),))
    async with Simulator(config, clock=clock.now) as sim:
        app = make_app(sim, clock=clock)
        async with serving(app) as served:
            # Twice the per-second quota at once, each allowed to wait 0.2 s for admission: the
            # first QUOTA go through, the rest cannot be admitted in time and are refused.
            requests = [
                asyncio.create_task(post(http, served.url, doc(n), max_wait=0.2)) for n in range(2 * QUOTA)
            ]
            client = client_of(app)
            await wait_until(
                lambda: sum(r.done() for r in requests) + sim.stats().count("create") == 2 * QUOTA
            )
            await drive(clock, client, sim, lambda: all(r.done() for r in requests), step=0.05)
            answers = [r.result() for r in requests]
            admission = client.stats().admission

        ok = [body for status, body, _ in answers if status == 200]
        refused = [(body, headers) for status, body, headers in answers if status == 503]
        assert len(ok) + len(refused) == 2 * QUOTA
        assert len(ok) == QUOTA
        for body, headers in refused:
            assert body["error"] == "quota_exhausted"
            assert headers["Retry-After"] == "1"
            assert body["retry_after"] == 1
        # Refused requests sent nothing and left nothing queued or counted.
        assert sim.stats().creates_accepted == len(ok)
        assert admission.waiting == 0
        assert admission.admitted == len(ok)
        assert sim.stats().rate_limited == 0


async def test_a_429_pause_longer_than_max_wait_refuses_at_once() -> None:
    # The client believes in a larger quota than the simulator's (1 per 30 s): its second create
    # is answered 429 with Retry-After: 30, which pauses the whole gate.
    async with (
        Simulator(SimulatorConfig(latency=(0.05, 0.1), quota=((1, 30.0),))) as strict_sim,
        ade_async.Client(
            api_key=strict_sim.api_key,
            base_url=strict_sim.base_url,
            rate_limit=RateLimit(windows=((1000, 1.0),)),
            poll=QUICK_POLL,
        ) as client,
    ):
        first = await submit_or_503(client, doc(1), schema=SCHEMA, max_wait=1)
        # This create went out and was refused with 429: no job was made, so it is back to waiting
        # for admission, which max_wait bounds again: a 503 rather than a 30 s hold.
        second = asyncio.create_task(submit_or_503(client, doc(2), schema=SCHEMA, max_wait=1))
        await wait_until(lambda: client.stats().creates_rate_limited == 1)
        with pytest.raises(QuotaExhaustedError) as info:
            await submit_or_503(client, doc(3), schema=SCHEMA, max_wait=1)
        assert info.value.retry_after is not None
        assert info.value.retry_after > 1
        response = error_response(info.value)
        assert int(response.headers["Retry-After"]) > 1
        with pytest.raises(QuotaExhaustedError):
            await second
        assert (await first).extraction["invoice_number"] == "INV-1"
    assert strict_sim.stats().creates_accepted == 1
    assert strict_sim.stats().rate_limited == 1


async def test_a_search_for_a_lost_create_is_shielded_and_ended_by_closing() -> None:
    # A create whose answer is lost may have made a paid job: the search for it is not cut short
    # by max_wait or by the caller, only by the client closing (the worst case documented).
    async with Simulator(SimulatorConfig(latency=(0.05, 0.1))) as lossy_sim:
        client = ade_async.Client(
            api_key=lossy_sim.api_key,
            base_url=lossy_sim.base_url,
            poll=QUICK_POLL,
            reconcile=ade_async.ReconcilePolicy(search_time=600.0, list_interval=0.05),
        )
        async with client:
            lossy_sim.inject("create", "lost_response")
            lossy_sim.inject("list", "500", count=100_000)  # the job cannot be found
            searching = asyncio.create_task(submit_or_503(client, doc(1), schema=SCHEMA, max_wait=0.1))
            await wait_until(lambda: lossy_sim.stats().count("list") > 2)
            assert not searching.done()  # max_wait passed long ago: the search goes on
        with pytest.raises(ade_async.ClientClosedError):
            await searching
    assert lossy_sim.stats().creates_accepted == 1


async def test_max_wait_never_cuts_a_create_on_the_wire() -> None:
    async with (
        Simulator(SimulatorConfig(latency=(0.05, 0.1), faults=Faults(slow_seconds=1.0))) as slow_sim,
        ade_async.Client(api_key=slow_sim.api_key, base_url=slow_sim.base_url, poll=QUICK_POLL) as client,
    ):
        # Admitted at once, then the create takes 1 s to be answered: longer than max_wait, which
        # bounds only the wait for admission.
        slow_sim.inject("create", "slow")
        handle = await submit_or_503(client, doc(1), schema=SCHEMA, max_wait=0.1)
        assert (await handle).extraction["invoice_number"] == "INV-1"

        # Quota free now: max_wait=0 takes it.
        handle = await submit_or_503(client, doc(2), schema=SCHEMA, max_wait=0)
        assert (await handle).extraction["invoice_number"] == "INV-2"

        # The caller's own cancellation leaves the create on the wire to the client: it lands,
        # and the job it made is watched (and reported) rather than lost. The caller gives up
        # once the create is on the wire.
        slow_sim.inject("create", "slow")

        async def give_up_once_sent(caller: anyio.CancelScope) -> None:
            await wait_until(lambda: slow_sim.stats().faults.get("slow") == 2)
            caller.cancel()

        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as caller:
                tg.start_soon(give_up_once_sent, caller)
                await submit_or_503(client, doc(3), schema=SCHEMA, max_wait=5)
                await anyio.sleep_forever()
        assert caller.cancelled_caught
        await wait_until(lambda: client.stats().jobs_abandoned == 1)
        (late,) = client.stats().abandoned_job_ids
        assert (await client.watch(late)).extraction["invoice_number"] == "INV-3"
        assert client.stats().creates_sent == 3
    assert slow_sim.stats().creates_accepted == 3
    assert slow_sim.stats().duplicate_jobs == 0


async def test_upstream_refusal_does_not_leak_the_key(sim: Simulator, http: aiohttp.ClientSession) -> None:
    secret = "sk-live-do-not-show-0123456789"
    app = make_app(sim, api_key=secret)
    async with serving(app) as served, http.post(f"{served.url}/extract", data=doc(1).encode()) as answer:
        text = await answer.text()
        headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        assert answer.status == 503
        assert json.loads(text)["error"] == "upstream_refused"
    assert secret not in text
    assert secret not in headers


@pytest.mark.parametrize(
    ("error", "status", "code", "fields"),
    [
        (
            QuotaExhaustedError("busy", retry_after=2.1, max_wait=1),
            503,
            "quota_exhausted",
            {"retry_after": 3},
        ),
        (
            ade_async.RateLimitError(
                "429", status_code=429, body=None, method="GET", path="/x", retry_after=None
            ),
            503,
            "quota_exhausted",
            {"retry_after": 1},
        ),
        (ade_async.ClientClosedError("closed"), 503, "shutting_down", {}),
        (
            ade_async.PaymentRequiredError(
                "402", status_code=402, body={"error": "no"}, method="POST", path="/x"
            ),
            503,
            "upstream_refused",
            {},
        ),
        (ade_async.SchemaError("bad", problems=["root must be an object"]), 422, "invalid_schema", {}),
        (
            ade_async.UnprocessableEntityError(
                "422",
                status_code=422,
                body={"detail": []},
                method="POST",
                path="/x",
                detail=[
                    landingai.ValidationErrorItem(
                        loc=("body", "markdown"), msg="Field required", type="missing"
                    )
                ],
            ),
            422,
            "invalid_input",
            {"detail": [{"loc": ["body", "markdown"], "msg": "Field required", "type": "missing"}]},
        ),
        (
            ade_async.JobFailedError("f", job_id="j1", failure_reason="bad scan"),
            502,
            "job_failed",
            {"job_id": "j1"},
        ),
        (ade_async.JobCancelledError("c", job_id="j2"), 502, "job_cancelled", {"job_id": "j2"}),
        (ade_async.JobLostError("l", job_id="j3"), 502, "job_lost", {"job_id": "j3"}),
        (ade_async.JobTimeoutError("t", job_id="j4", timeout=2.0), 504, "job_timeout", {"job_id": "j4"}),
        (
            ade_async.CreateOutcomeUnknownError(
                "lost",
                filename="a.md",
                content_sha256=None,
                sent_at=0.0,
                cause=ade_async.ReadTimeoutError("t", method="POST", path="/x"),
            ),
            502,
            "create_outcome_unknown",
            {},
        ),
        (ade_async.ConnectError("refused", method="GET", path="/x"), 502, "upstream_unreachable", {}),
        (
            ade_async.ServerError("500", status_code=500, body=None, method="GET", path="/x"),
            502,
            "upstream_error",
            {},
        ),
        (
            ade_async.ResultDownloadError("from https://bucket/x", job_id="j5", status_code=403),
            502,
            "result_unavailable",
            {"job_id": "j5"},
        ),
    ],
)
async def test_error_table(error: ade_async.ADEError, status: int, code: str, fields: dict[str, Any]) -> None:
    response = error_response(error)
    body = json.loads(bytes(response.body))
    assert response.status_code == status
    assert body["error"] == code
    assert body["message"]
    for key, value in fields.items():
        assert body[key] == value
    if code == "quota_exhausted":
        assert response.headers["Retry-After"] == str(fields["retry_after"])
    assert "bucket" not in body["message"]  # no upstream URL reaches the caller


async def test_error_response_can_name_the_job() -> None:
    response = error_response(ade_async.ClientClosedError("closed"), job_id="j9")
    assert json.loads(bytes(response.body))["job_id"] == "j9"


# --- lifecycle -----------------------------------------------------------------------------------------


async def test_shutdown_answers_pending_requests_and_leaves_no_task(http: aiohttp.ClientSession) -> None:
    before = set(asyncio.all_tasks())
    clock = FakeClock()  # the simulator's: its jobs end only when the test says
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3)), clock=clock.now) as held:
        app = make_app(held, shutdown_grace=3600)
        async with serving(app) as served:
            slow = [
                asyncio.create_task(post(http, served.url, doc(n, "<!-- ade-sim: latency 60 -->")))
                for n in range(5)
            ]
            quick = asyncio.create_task(post(http, served.url, doc(9, "<!-- ade-sim: latency 0.2 -->")))
            client = client_of(app)
            await wait_until(lambda: client.stats().jobs_submitted == 6)
            # What a stop signal does: the server stops (after its requests are answered) and the
            # client closes, after a grace in which the quick job can still end ...
            served.server.should_exit = True
            closing = asyncio.create_task(close_client(app))
            await clock.advance(0.2)
            with anyio.fail_after(CEILING):
                quick_answer = await quick
            assert not closing.done()  # the grace runs on for the jobs still watched
            # ... which a shorter grace (a second signal, say) cuts short.
            await close_client(app, grace=0)
            with anyio.fail_after(CEILING):
                await closing
                answers = await asyncio.gather(*slow)
            with pytest.raises(ade_async.ClientClosedError):
                client.stats()
            with pytest.raises(ade_async.ClientClosedError):
                get_client(Request({"type": "http", "app": app}))

    assert quick_answer[0] == 200
    for status, body, _ in answers:
        assert status == 503
        assert body["error"] == "shutting_down"
    assert ade_tasks() == []
    left = [task for task in asyncio.all_tasks() - before if not task.done()]
    assert left == [], left
    assert held.stats().creates_accepted == 6  # nothing was sent twice, nothing after closing


async def test_lifespan_shutdown_closes_a_client_with_pending_waiters(sim: Simulator) -> None:
    # Run the lifespan by hand, as a server that sends the shutdown while requests still wait.
    app = Starlette()
    lifespan = ade_lifespan(api_key=sim.api_key, base_url=sim.base_url, poll=QUICK_POLL, shutdown_grace=0)
    async with lifespan(app):
        client = client_of(app)
        handle = await client.submit(doc(1, "<!-- ade-sim: latency 60 -->"), schema=SCHEMA)
        waiter = asyncio.ensure_future(handle.result())
        await asyncio.sleep(0)
    with pytest.raises(ade_async.ClientClosedError):
        await waiter
    assert ade_tasks() == []


async def test_get_client_without_the_lifespan_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="ade_lifespan"):
        get_client(Request({"type": "http", "app": FastAPI()}))


async def test_bad_lifespan_arguments(sim: Simulator) -> None:
    with pytest.raises(TypeError):
        ade_lifespan(lambda: ade_async.Client(api_key="k"), api_key="k")
    with pytest.raises(ValueError, match="shutdown_grace"):
        ade_lifespan(shutdown_grace=-1)


async def test_plain_starlette(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async def extract(request: Request) -> JSONResponse:
        client = get_client(request)
        result = await client.extract(await request.body(), schema=SCHEMA)
        return JSONResponse(result.extraction)

    app = Starlette(
        routes=[Route("/extract", extract, methods=["POST"])],
        lifespan=ade_lifespan(
            lambda: ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, poll=QUICK_POLL)
        ),
    )
    install_exception_handlers(app)
    async with serving(app) as served:
        status, body, _ = await post(http, served.url, doc(7))
        assert (status, body) == (200, {"invoice_number": "INV-7", "total": 7.5})
        status, body, _ = await post(http, served.url, doc(8, "<!-- ade-sim: fail no text layer -->"))
        assert status == 502
        assert body["failure_reason"] == "no text layer"
    assert ade_tasks() == []


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop")])
async def test_under_uvloop(anyio_backend: Any, sim: Simulator, http: aiohttp.ClientSession) -> None:
    uvloop = pytest.importorskip("uvloop")
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    app = make_app(sim)
    async with serving(app) as served:
        answers = await asyncio.gather(*(post(http, served.url, doc(n)) for n in range(20)))
        status, body, _ = await post(http, served.url, doc(1, "<!-- ade-sim: fail on uvloop -->"))
    assert [status for status, _, _ in answers] == [200] * 20
    assert answers[3][1]["extraction"]["invoice_number"] == "INV-3"
    assert (status, body["failure_reason"]) == (502, "on uvloop")
    assert ade_tasks() == []


# --- in a real process ---------------------------------------------------------------------------------


async def test_sigterm_answers_a_pending_request_with_its_job_id(http: aiohttp.ClientSession) -> None:
    """The example service, sent a real SIGTERM while a request waits on a long job."""
    process = await anyio.open_process(
        [sys.executable, str(EXAMPLE), "--port", "0", "--shutdown-grace", "0.2"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        buffered = b""
        with anyio.fail_after(30):
            while b"serving on " not in buffered:
                buffered += await process.stderr.receive()
        url = buffered.split(b"serving on ", 1)[1].split(b" ", 1)[0].decode()

        form = aiohttp.FormData()
        form.add_field("file", doc(1, "<!-- ade-sim: latency 60 -->").encode(), filename="slow.md")
        pending = asyncio.create_task(http.post(f"{url}/extract/invoice", data=form))

        async def watched() -> int:
            async with http.get(f"{url}/healthz") as answer:
                return int((await answer.json())["jobs_watched"])

        with anyio.fail_after(20):
            while await watched() < 1:
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            answer = await pending
            body = await answer.json()
            returncode = await process.wait()
        assert answer.status == 503
        assert body["error"] == "shutting_down"
        assert answer.headers["Location"] == f"/jobs/{body['job_id']}"
        # uvicorn re-raises the signal it handled once it has shut down cleanly.
        assert returncode in (0, -signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_importing_ade_async_needs_no_web_framework() -> None:
    code = (
        "import sys\n"
        "import ade_async\n"
        "assert 'starlette' not in sys.modules and 'fastapi' not in sys.modules\n"
        "sys.modules['starlette'] = None\n"
        "try:\n"
        "    import ade_async.fastapi\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert 'pip install "ade_async[fastapi]"' in done.stdout
