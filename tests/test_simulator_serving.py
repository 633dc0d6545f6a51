"""The engine's serving layer with a vendor that exists only here, over loopback HTTP.

"Toy" is a whole vendor in under a hundred lines: an upload budget of 2 per 5 s, a cap of 2 active
jobs answered 429 with its own message, a results step that may be asked early, cancel, cursor
pages, and its own status words. It is what adding a provider's folder looks like; the test shows
that authentication, faults, counting, recording and the ``/_simulator`` endpoints come from the
engine, in the vendor's error body. Time is a :class:`FakeClock`: nothing sleeps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import msgspec
import pytest
from aiohttp import web

from ade_async.testing import FakeClock, Simulator
from ade_async.testing._engine import (
    Answer,
    BudgetLimits,
    Call,
    Engine,
    JobRecord,
    Route,
    Routes,
    StatusNames,
    StoredFile,
    Timing,
    build_application,
    compile_schema,
    form_record,
    parse_form,
)

pytestmark = pytest.mark.anyio

KEY = "toy-key"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "total": {"type": "number"}}}


class ToyState(Engine[JobRecord]):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(
            api_keys=(KEY,),
            seed=11,
            timing=Timing(latency=(10.0, 10.0), queued_fraction=0.2),
            statuses=StatusNames(
                queued="queued", running="working", succeeded="done", failed="error", cancelled="stopped"
            ),
            endpoints=("upload", "create", "get", "results", "list", "cancel"),
            single_endpoint_faults={"lost_response": "create"},
            budgets={"upload": BudgetLimits(windows=((2, 5.0),)), "create": BudgetLimits(max_active=2)},
            fault_budget="upload",
            retry_after="seconds",
            record=True,
            clock=clock.now,
        )


class ToyRoutes(Routes[ToyState]):
    def routes(self) -> list[Route]:
        return [
            Route(method="POST", path="/toy/files", endpoint="upload", handle=self._upload),
            Route(method="POST", path="/toy/jobs", endpoint="create", handle=self._create),
            Route(method="GET", path="/toy/jobs", endpoint="list", handle=self._list),
            Route(method="GET", path="/toy/jobs/{id}", endpoint="get", handle=self._get),
            Route(method="GET", path="/toy/jobs/{id}/results", endpoint="results", handle=self._results),
            Route(method="POST", path="/toy/jobs/{id}/cancel", endpoint="cancel", handle=self._cancel),
        ]

    def error(self, endpoint: str, status: int, message: str, *, code: str = "InternalError") -> Answer:
        return Answer(status, msgspec.json.encode({"detail": message}))

    def stats_body(self, now: float) -> dict[str, Any]:
        return {"active": self.state.budgets.active("create", now), "jobs": len(self.state.jobs)}

    def _job(self, call: Call) -> JobRecord | None:
        return self.state.jobs.find(call.request.match_info["id"], call.key)

    def _view(self, job: JobRecord) -> dict[str, Any]:
        now = self.state.now()
        return {
            "id": job.job_id,
            "status": self.state.status_of(job, now),
            "progress": job.lifecycle.progress_at(now),
        }

    async def _upload(self, call: Call) -> Answer:
        request = call.request
        parts = parse_form(request.headers.get("Content-Type", ""), await request.read())
        call.form = form_record(parts)
        now = self.state.now()
        refusal = self.state.budgets.check("upload", now, scope=call.key)
        if refusal is not None:
            return self.too_many("upload", refusal.wait)
        self.state.budgets.take("upload", now, scope=call.key)
        part = parts[0]
        file_id = f"tf-{self.state.new_uuid()}"
        upload = StoredFile.of(
            filename=part.filename or "upload", content_type=part.content_type, data=part.data
        )
        self.state.files.add(file_id, call.key, upload, now)
        return Answer(201, msgspec.json.encode({"id": file_id}))

    async def _create(self, call: Call) -> Answer:
        body = json.loads(await call.request.read())
        upload = self.state.files.find(body["file_id"], call.key)
        if upload is None or upload.text() is None:
            return self.error("create", 404, "no such file")
        now = self.state.now()
        refusal = self.state.budgets.check("create", now)
        if refusal is not None:  # the vendor's own words, and no hint
            return self.too_many("create", None, f"concurrency limit of {refusal.limit} active jobs")
        lifecycle = self.state.plan(upload.text() or "", now)
        job = JobRecord(
            job_id=self.state.new_uuid(),
            owner=call.key,
            wall=0.0,
            lifecycle=lifecycle,
            filename=upload.filename,
            content_sha256=upload.sha256,
            schema=compile_schema(body["schema"]),
            document=upload.text(),
        )
        self.state.jobs.add(job)
        self.state.budgets.take("create", now, job=lifecycle)
        return Answer(200, msgspec.json.encode(self._view(job)))

    async def _get(self, call: Call) -> Answer:
        job = self._job(call)
        return (
            self.error("get", 404, "no such job")
            if job is None
            else Answer(200, msgspec.json.encode(self._view(job)))
        )

    async def _results(self, call: Call) -> Answer:
        job = self._job(call)
        if job is None:
            return self.error("results", 404, "no such job")
        found = self.state.result_when_ready(job, self.state.now())
        values = {} if found is None else found.values
        return Answer(200, msgspec.json.encode({**self._view(job), "results": values}))

    async def _cancel(self, call: Call) -> Answer:
        job = self._job(call)
        if job is None:
            return self.error("cancel", 404, "no such job")
        if not self.state.cancel(job, self.state.now()):
            return self.error("cancel", 409, "the job has ended")
        return Answer(200, msgspec.json.encode(self._view(job)))

    async def _list(self, call: Call) -> Answer:
        try:
            jobs, following = self.state.jobs.page_by_cursor(
                call.key, as_of=self.state.now(), cursor=call.request.query.get("cursor"), size=2
            )
        except ValueError as exc:
            return self.error("list", 422, str(exc))
        return Answer(
            200, msgspec.json.encode({"jobs": [self._view(job) for job in jobs], "next_cursor": following})
        )


@pytest.fixture
async def toy() -> AsyncIterator[tuple[str, ToyState, FakeClock]]:
    clock = FakeClock(start=1000.0)
    state = ToyState(clock)
    runner = web.AppRunner(build_application(ToyRoutes(state)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}", state, clock
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, dict[str, str]]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


def upload_form(text: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", text, filename="doc.md", content_type="text/markdown")
    return form


async def test_a_vendor_is_routes_over_the_engine(
    toy: tuple[str, ToyState, FakeClock], http: aiohttp.ClientSession
) -> None:
    base, state, clock = toy

    # Authentication is the engine's, in the vendor's body.
    async with aiohttp.ClientSession() as anonymous:
        status, body, _ = await call(anonymous, "GET", f"{base}/toy/jobs")
    assert (status, body) == (401, {"detail": "Missing API key: send 'Authorization: Bearer <key>'"})

    # Uploads draw on their own budget: the third in 5 s is refused, with a hint.
    ids = []
    for text in (b"Name: Ada\nTotal: 12.5\n", b"Name: Bob\n"):
        status, body, _ = await call(http, "POST", f"{base}/toy/files", data=upload_form(text))
        assert status == 201
        ids.append(body["id"])
    status, body, headers = await call(http, "POST", f"{base}/toy/files", data=upload_form(b"x: y\n"))
    assert (status, body, headers["Retry-After"]) == (429, {"detail": "Rate limit exceeded"}, "5")

    # Creates draw on theirs: two active jobs, the third refused in the vendor's words, no hint.
    jobs = []
    for _ in range(2):
        status, body, _ = await call(
            http, "POST", f"{base}/toy/jobs", json={"file_id": ids[0], "schema": SCHEMA}
        )
        assert (status, body["status"]) == (200, "queued")
        jobs.append(body["id"])
    status, body, headers = await call(
        http, "POST", f"{base}/toy/jobs", json={"file_id": ids[1], "schema": SCHEMA}
    )
    assert (status, body) == (429, {"detail": "concurrency limit of 2 active jobs"})
    assert "Retry-After" not in headers

    # Results asked early answer the status and nothing else.
    await clock.advance(3)
    status, body, _ = await call(http, "GET", f"{base}/toy/jobs/{jobs[0]}/results")
    assert (status, body["status"], body["results"], body["progress"]) == (200, "working", {}, 0.3)

    # A cancel ends a job and frees its slot at once.
    status, body, _ = await call(http, "POST", f"{base}/toy/jobs/{jobs[1]}/cancel")
    assert (status, body["status"]) == (200, "stopped")
    status, body, _ = await call(http, "POST", f"{base}/toy/jobs", json={"file_id": ids[1], "schema": SCHEMA})
    assert status == 200
    jobs.append(body["id"])

    # Time passes on the fake clock; the results are extracted from the uploaded text.
    await clock.advance(7)
    status, body, _ = await call(http, "GET", f"{base}/toy/jobs/{jobs[0]}/results")
    assert (body["status"], body["results"]) == ("done", {"name": "Ada", "total": 12.5})
    status, body, _ = await call(http, "POST", f"{base}/toy/jobs/{jobs[0]}/cancel")
    assert (status, body) == (409, {"detail": "the job has ended"})

    # Cursor pages, newest first.
    status, first, _ = await call(http, "GET", f"{base}/toy/jobs")
    assert [job["id"] for job in first["jobs"]] == [jobs[2], jobs[1]]
    status, second, _ = await call(http, "GET", f"{base}/toy/jobs", params={"cursor": first["next_cursor"]})
    assert ([job["id"] for job in second["jobs"]], second["next_cursor"]) == ([jobs[0]], None)
    status, body, _ = await call(http, "GET", f"{base}/toy/jobs", params={"cursor": "bogus"})
    assert status == 422

    # Faults come from the engine, answered in the vendor's body; a dropped request does nothing.
    state.inject("results", "503")
    status, body, _ = await call(http, "GET", f"{base}/toy/jobs/{jobs[0]}/results")
    assert (status, body) == (503, {"detail": "Simulated server error (503)"})
    state.inject("create", "drop")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await call(http, "POST", f"{base}/toy/jobs", json={"file_id": ids[1], "schema": SCHEMA})
    assert len(state.jobs) == 3
    with pytest.raises(ValueError, match="create endpoint only"):
        state.inject("upload", "lost_response")

    # Counters, the stats endpoint, the timeline and the recording are the engine's too.
    assert state.requests[("upload", 429)] == 1
    assert state.requests[("create", 429)] == 1
    assert state.requests[("create", 0)] == 1
    assert state.budgets.refused == {("upload", "window"): 1, ("create", "active"): 1}
    async with aiohttp.ClientSession() as anonymous:
        status, stats, _ = await call(anonymous, "GET", f"{base}/_simulator/stats?windows=5")
        status, timeline, _ = await call(anonymous, "GET", f"{base}/_simulator/jobs")
    assert stats["jobs"] == 3
    assert stats["max_in_window"]["upload"] == {"5.0": 2}
    assert stats["max_creates_in_window"] == {"5.0": 3}  # at 1000, 1000 and 1003
    assert [entry["outcome"] for entry in timeline] == ["done", "stopped", "done"]
    assert timeline[1]["done_at"] == 1003.0  # cancelled at the fake clock's 1003
    uploads = [exchange for exchange in state.exchanges if exchange.endpoint == "upload"]
    assert [(exchange.status, exchange.form[0].filename) for exchange in uploads] == [
        (201, "doc.md"),
        (201, "doc.md"),
        (429, "doc.md"),
    ]


async def test_simulator_names_its_provider() -> None:
    with pytest.raises(ValueError, match="unknown provider 'llamacloud'; expected one of landingai"):
        Simulator(provider="llamacloud")
    simulator = Simulator(provider="landingai")
    assert simulator.provider == "landingai"


async def test_command_line_provider_option() -> None:
    command = [sys.executable, "-m", "ade_async.testing", "--port", "0"]
    refused = await anyio.run_process([*command, "--provider", "nope"], check=False)
    assert refused.returncode == 2
    assert "invalid choice: 'nope'" in refused.stderr.decode()
    async with await anyio.open_process([*command, "--provider", "landingai"]) as process:
        try:
            assert process.stdout is not None
            with anyio.fail_after(20):  # bounds a hang only
                banner = (await process.stdout.receive()).decode()
            assert banner.startswith("ADE simulator serving on http://127.0.0.1:")
        finally:
            process.terminate()
