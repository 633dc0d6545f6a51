"""The client's low-level calls against the simulator over loopback HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from conftest import CEILING

import ade_async
from ade_async.providers import landingai
from ade_async.providers.landingai import LandingAI, LandingAIOptions
from ade_async.providers.landingai.tokens import tag_filename, token_of
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total_amount": {"type": "number", "x-alternativeNames": ["total"]},
        "paid": {"type": "boolean"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
    },
}
INVOICE = "# Invoice\n\n**Invoice Number**: INV-7\n- Total: $1,234.50\n| Paid | yes |\nCurrency: EUR\n"
FAST = SimulatorConfig(latency=(0.01, 0.05))


def is_upload_of(uploaded: str | None, name: str) -> bool:
    """The upload name is ``name`` tagged with a random token (``march.ade-<token>.md``)."""
    token = token_of(uploaded)
    return token is not None and uploaded == tag_filename(name, token)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(FAST) as simulator:
        yield simulator


def raw_client(sim: Simulator, **kwargs: Any) -> ade_async.Client:
    """A client that shows each API answer as it is: no retries, no pacing (tests of one call)."""
    return ade_async.Client(
        api_key=sim.api_key,
        base_url=sim.base_url,
        retry=ade_async.RetryPolicy.none(),
        rate_limit=ade_async.RateLimit(adaptive=False),
        **kwargs,
    )


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[ade_async.Client]:
    async with raw_client(sim) as c:
        yield c


async def wait_terminal(client: ade_async.Client, job_id: str) -> ade_async.JobSnapshot:
    """Get the job until it has ended (tens of milliseconds; the ceiling only bounds a hang)."""
    with anyio.fail_after(CEILING):
        while True:
            job = await client.get_job(job_id)
            if job.is_terminal:
                return job
            await anyio.sleep(0.02)


async def test_create_get_fetch(client: ade_async.Client) -> None:
    job_id = await client.create_job(INVOICE, schema=SCHEMA)
    first = await client.get_job(job_id)
    assert first.job_id == job_id
    assert first.status in ("pending", "processing", "completed")
    job = await wait_terminal(client, job_id)
    assert job.status == "completed"
    assert job.progress == 1.0
    result = await client.fetch_result(job)
    assert result.extraction == {
        "invoice_number": "INV-7",
        "total_amount": 1234.5,
        "paid": True,
        "currency": "EUR",
    }
    assert result.conforms
    assert result.metadata.job_id == job_id
    assert is_upload_of(result.metadata.filename, "document.md")
    # fetch_result also takes a job id and gets the job itself
    assert (await client.fetch_result(job_id)).extraction == result.extraction


async def test_path_input_uploads_under_the_file_name(client: ade_async.Client, tmp_path: Path) -> None:
    path = tmp_path / "march-invoice.md"
    path.write_text(INVOICE, encoding="utf-8")
    job = await wait_terminal(client, await client.create_job(path, schema=SCHEMA))
    result = await client.fetch_result(job)
    assert is_upload_of(result.metadata.filename, "march-invoice.md")
    assert result.extraction["invoice_number"] == "INV-7"


async def test_schema_as_json_string_and_bytes_content(client: ade_async.Client) -> None:
    import json

    job_id = await client.create_job(INVOICE.encode(), schema=json.dumps(SCHEMA))
    result = await client.fetch_result(await wait_terminal(client, job_id))
    assert result.extraction["paid"] is True


async def test_206_is_a_success_with_warnings(client: ade_async.Client) -> None:
    doc = INVOICE.replace("Currency: EUR", "Currency: JPY")  # not in the enum
    job = await wait_terminal(client, await client.create_job(doc, schema=SCHEMA))
    assert job.status == "completed"
    result = await client.fetch_result(job)
    assert not result.conforms
    assert result.extraction["currency"] == "JPY"
    assert [w.code for w in result.metadata.warnings] == ["nonconformant_output"]
    assert result.metadata.schema_violation_error


async def test_failed_job(client: ade_async.Client) -> None:
    doc = INVOICE + "<!-- ade-sim: fail The document is too long -->\n"
    job = await wait_terminal(client, await client.create_job(doc, schema=SCHEMA))
    assert job.status == "failed"
    with pytest.raises(ade_async.JobFailedError) as info:
        await client.fetch_result(job)
    assert info.value.job_id == job.job_id
    assert info.value.failure_reason == "The document is too long"


async def test_cancelled_job(client: ade_async.Client) -> None:
    job = await wait_terminal(
        client, await client.create_job(INVOICE + "<!-- ade-sim: cancel -->", schema=SCHEMA)
    )
    with pytest.raises(ade_async.JobCancelledError):
        await client.fetch_result(job)


async def test_unknown_status_is_kept_and_not_terminal() -> None:
    clock = FakeClock()
    async with Simulator(FAST, clock=clock.now) as sim, raw_client(sim) as client:
        doc = INVOICE + "<!-- ade-sim: latency 30 -->\n<!-- ade-sim: status queued_for_gpu -->\n"
        job_id = await client.create_job(doc, schema=SCHEMA)
        await clock.advance(1.0)  # past the pending phase (at most 30 % of 50 ms), long before the end
        job = await client.get_job(job_id)
        assert job.status == "queued_for_gpu"
        assert not job.is_terminal
        with pytest.raises(ade_async.JobNotFinishedError) as info:
            await client.fetch_result(job)
    assert info.value.status == "queued_for_gpu"


async def test_not_found(client: ade_async.Client) -> None:
    with pytest.raises(ade_async.NotFoundError) as info:
        await client.get_job("00000000-0000-0000-0000-000000000000")
    assert info.value.status_code == 404
    assert "Job not found" in str(info.value)


async def test_another_keys_job_is_not_found() -> None:
    async with Simulator(SimulatorConfig(api_keys=("key-a", "key-b"), latency=(0.01, 0.02))) as sim:
        async with ade_async.Client(api_key="key-a", base_url=sim.base_url) as a:
            job_id = await a.create_job(INVOICE, schema=SCHEMA)
        async with ade_async.Client(api_key="key-b", base_url=sim.base_url) as b:
            with pytest.raises(ade_async.NotFoundError):
                await b.get_job(job_id)
            assert [job async for job in b.list_jobs()] == []


async def test_wrong_key_is_an_authentication_error_without_the_key(sim: Simulator) -> None:
    async with ade_async.Client(api_key="not-the-key-xyz", base_url=sim.base_url) as client:
        with pytest.raises(ade_async.AuthenticationError) as info:
            await client.create_job(INVOICE, schema=SCHEMA)
        with pytest.raises(ade_async.AuthenticationError):
            await client.get_job("j")
    assert "not-the-key-xyz" not in str(info.value)
    assert "not-the-key-xyz" not in repr(info.value)
    assert "not-the-key-xyz" not in repr(vars(info.value))


async def test_payment_required(sim: Simulator, client: ade_async.Client) -> None:
    sim.set_credits_exhausted(True)
    with pytest.raises(ade_async.PaymentRequiredError):
        await client.create_job(INVOICE, schema=SCHEMA)
    sim.set_credits_exhausted(False)
    assert await client.create_job(INVOICE, schema=SCHEMA)


@pytest.mark.parametrize(("fault", "status"), [("500", 500), ("502", 502), ("503", 503)])
async def test_server_errors(sim: Simulator, client: ade_async.Client, fault: str, status: int) -> None:
    sim.inject("get", fault)
    with pytest.raises(ade_async.ServerError) as info:
        await client.get_job("whatever")
    assert info.value.status_code == status


async def test_lost_create_response_is_reported_never_resent(
    sim: Simulator, client: ade_async.Client
) -> None:
    sim.inject("create", "lost_response")
    with pytest.raises(ade_async.CreateOutcomeUnknownError) as info:
        await client.create_job(INVOICE, schema=SCHEMA, filename="march.md")
    err = info.value
    assert isinstance(err.cause, ade_async.ConnectionLostError)
    assert err.filename == "march.md"
    assert err.match_key is not None  # the upload token the job would carry
    assert err.content_sha256 == hashlib.sha256(INVOICE.encode()).hexdigest()
    assert "may exist" in str(err)
    stats = sim.stats()
    assert stats.creates_accepted == 1  # the job exists although the client never heard of it
    assert stats.duplicate_jobs == 0  # and it was not sent a second time
    assert client.stats().creates_unknown == 1


async def test_malformed_answer(sim: Simulator, client: ade_async.Client) -> None:
    job_id = await client.create_job(INVOICE, schema=SCHEMA)
    sim.inject("get", "malformed")
    with pytest.raises(ade_async.MalformedResponseError):
        await client.get_job(job_id)


@pytest.mark.parametrize(
    ("form", "expected"),
    [(None, None), ("seconds", (0.5, 1.0)), ("ms", (0.5, 1.0)), ("date", (0.0, 2.0))],
)
async def test_429_carries_retry_after_in_each_form(
    form: str | None, expected: tuple[float, float] | None
) -> None:
    config = SimulatorConfig(latency=(0.01, 0.02), retry_after=form)  # type: ignore[arg-type]
    async with Simulator(config) as sim, raw_client(sim) as client:
        sim.inject("get", "429")
        with pytest.raises(ade_async.RateLimitError) as info:
            await client.get_job("any")
    if expected is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after is not None
        assert expected[0] <= info.value.retry_after <= expected[1]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"markdown": INVOICE, "schema": "{not json"}, ade_async.BadRequestError, "Invalid JSON schema"),
        (
            {"markdown": INVOICE, "schema": "[1, 2]"},
            ade_async.UnprocessableEntityError,
            "must parse to an object",
        ),
        (
            {"markdown": INVOICE, "schema": {"type": "array"}},
            ade_async.UnprocessableEntityError,
            '"type": "object"',
        ),
        (
            {
                "markdown": INVOICE,
                "schema": {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}},
                "strict": True,
            },
            ade_async.UnprocessableEntityError,
            "not supported: maxLength",
        ),
        (
            {"markdown": INVOICE, "schema": SCHEMA, "markdown_url": "https://example.invalid/x.md"},
            ade_async.UnprocessableEntityError,
            "Cannot provide both",
        ),
        ({"schema": SCHEMA}, ade_async.UnprocessableEntityError, "Must provide either"),
        (
            {"markdown": "", "schema": SCHEMA},
            ade_async.UnprocessableEntityError,
            "No markdown file or URL provided",
        ),
        (
            {"schema": SCHEMA, "markdown_url": "   "},
            ade_async.UnprocessableEntityError,
            "No markdown file or URL provided",
        ),
        (
            {"markdown": INVOICE, "schema": SCHEMA, "filename": "scan.pdf"},
            ade_async.UnprocessableEntityError,
            "Unsupported format",
        ),
        (
            {"markdown": b"\xff\xfe\x00bad", "schema": SCHEMA},
            ade_async.UnprocessableEntityError,
            "Unsupported format",
        ),
        (
            {"schema": SCHEMA, "markdown_url": "not a url"},
            ade_async.UnprocessableEntityError,
            "Invalid URL format",
        ),
        (
            {"markdown": INVOICE, "schema": SCHEMA, "model": "extract-20250930"},
            ade_async.BadRequestError,
            "Invalid extract version",
        ),
    ],
)
async def test_documented_validation_errors(
    sim: Simulator,
    client: ade_async.Client,
    kwargs: dict[str, Any],
    error: type[ade_async.APIStatusError],
    message: str,
) -> None:
    options = {
        k: kwargs.pop(k) for k in ("model", "strict", "markdown_url", "output_save_url") if k in kwargs
    }
    with pytest.raises(error, match=message) as info:
        await client.create_job(kwargs.pop("markdown", None), options=LandingAIOptions(**options), **kwargs)
    if isinstance(info.value, ade_async.UnprocessableEntityError):
        assert info.value.detail, "a 422 carries FastAPI's parsed detail list"
    assert sim.stats().creates_accepted == 0


async def test_non_strict_prunes_unsupported_keywords(client: ade_async.Client) -> None:
    schema = {"type": "object", "properties": {"invoice_number": {"type": "string", "maxLength": 3}}}
    result = await client.fetch_result(
        await wait_terminal(client, await client.create_job(INVOICE, schema=schema))
    )
    assert result.extraction == {"invoice_number": "INV-7"}
    assert not result.conforms  # "INV-7" is longer than the pruned maxLength: 206 with a warning


async def test_markdown_url(client: ade_async.Client) -> None:
    async def serve_doc(request: web.Request) -> web.Response:
        return web.Response(text=INVOICE, content_type="text/markdown")

    app = web.Application()
    app.router.add_get("/docs/inv.md", serve_doc)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/docs/inv.md"
        job = await wait_terminal(
            client, await client.create_job(schema=SCHEMA, options=LandingAIOptions(markdown_url=url))
        )
        result = await client.fetch_result(job)
    finally:
        await runner.cleanup()
    assert result.extraction["invoice_number"] == "INV-7"
    assert result.metadata.filename == "inv.md"  # a markdown_url upload carries no token


async def test_list_jobs_pages_through_everything() -> None:
    # On a clock that stands still, every job is still pending when listed, however slow the creates.
    async with (
        Simulator(SimulatorConfig(latency=(5.0, 5.0)), clock=FakeClock().now) as sim,
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
    ):
        created = {await client.create_job(INVOICE, schema=SCHEMA) for _ in range(7)}
        listed = [job async for job in client.list_jobs(page_size=3)]
        assert {job.job_id for job in listed} == created
        assert len(listed) == 7
        assert [job.job_id async for job in client.list_jobs(status="completed")] == []
        pending = [
            job.job_id async for job in client.list_jobs(status=landingai.JobStatus.PENDING, page_size=100)
        ]
        assert set(pending) == created
        with pytest.raises(ValueError, match="page_size"):
            [job async for job in client.list_jobs(page_size=101)]
        with pytest.raises(ade_async.UnprocessableEntityError):
            [job async for job in client.list_jobs(status="sleeping")]
        requests = sim.stats().requests
        assert requests[("list", 200)] == 3 + 1 + 1  # 7 jobs in pages of 3, then two single pages


class TestOutputUrl:
    """Results over the size threshold come through a presigned URL, fetched without the key."""

    @pytest.fixture
    async def big(self) -> AsyncIterator[tuple[Simulator, ade_async.Client]]:
        config = SimulatorConfig(latency=(0.01, 0.02), result_url_threshold=10)
        async with (
            Simulator(config) as sim,
            ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
        ):
            yield sim, client

    async def test_download_without_the_key(self, big: tuple[Simulator, ade_async.Client]) -> None:
        sim, client = big
        job = await wait_terminal(client, await client.create_job(INVOICE, schema=SCHEMA))
        assert job.detail.data is None
        assert job.detail.output_url is not None
        result = await client.fetch_result(job)
        assert result.extraction["invoice_number"] == "INV-7"
        stats = sim.stats()
        assert stats.downloads == 1
        assert stats.result_url_auth_headers == 0

    async def test_expired_url_is_refreshed(self, big: tuple[Simulator, ade_async.Client]) -> None:
        sim, client = big
        job = await wait_terminal(client, await client.create_job(INVOICE, schema=SCHEMA))
        sim.expire_result_urls()
        gets_before = sim.stats().gets
        result = await client.fetch_result(job)
        assert result.extraction["invoice_number"] == "INV-7"
        assert sim.stats().gets == gets_before + 1  # one re-GET for a fresh URL
        assert sim.stats().result_url_auth_headers == 0

    async def test_gives_up_after_the_refresh_budget(self, big: tuple[Simulator, ade_async.Client]) -> None:
        sim, _ = big
        async with ade_async.Client(
            api_key=sim.api_key, base_url=sim.base_url, provider=LandingAI(url_refreshes=0)
        ) as client:
            job = await wait_terminal(client, await client.create_job(INVOICE, schema=SCHEMA))
            sim.expire_result_urls()
            with pytest.raises(ade_async.ResultDownloadError) as info:
                await client.fetch_result(job)
        assert info.value.status_code == 403
        assert info.value.job_id == job.job_id
        assert "?" not in str(info.value)  # the presigned query string is never shown

    async def test_output_save_url_routes_the_result_through_output_url(
        self, big: tuple[Simulator, ade_async.Client]
    ) -> None:
        _, client = big
        job_id = await client.create_job(
            INVOICE,
            schema=SCHEMA,
            options=LandingAIOptions(output_save_url="https://bucket.example/out.json"),
        )
        job = await wait_terminal(client, job_id)
        assert job.detail.data is None
        assert job.detail.output_url is not None
