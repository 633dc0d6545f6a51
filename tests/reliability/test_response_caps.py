"""Answers are read up to a cap: a hostile or broken server cannot make the client hold gigabytes.

Two caps: ``max_response_bytes`` for API answers and ``max_download_bytes`` for result downloads
from ``output_url``. A loopback server (``rawserver``) sends bodies far over them: declared in
``Content-Length``, chunked without end, streamed until the connection closes, and a few kilobytes
of gzip that decompress to 16 MiB (so the count is of the bytes the client would hold, not of the
bytes on the wire).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import msgspec
import pytest

import ade_async
from ade_async.providers import landingai
from ade_async.providers.landingai import LandingAI
from ade_async.testing import Simulator, SimulatorConfig

from .leakcheck import secret_paths
from .rawserver import OVERSIZED_MODES, raw_server

pytestmark = pytest.mark.anyio

KEY = "sk-caps-91c2d4e0-SECRET"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}
API_CAP = 64 * 1024
DOWNLOAD_CAP = 128 * 1024
#: Retries allowed, so a test can see that a too-large answer is not asked for again.
OPTIONS: dict[str, Any] = {
    "max_response_bytes": API_CAP,
    "max_download_bytes": DOWNLOAD_CAP,
    "retry": ade_async.RetryPolicy(attempts=3, backoff_base=0.001, backoff_cap=0.001),
    "provider": LandingAI(url_refreshes=2),
    "poll": ade_async.PollPolicy(first_delay=0.01, max_delay=0.02, jitter=0.0, coalesce=0.0, sweep=False),
}
#: How much the server may have streamed before the client's cut-off reached it: the cap plus
#: socket buffers, far below the body it offered (1 GiB, or 16 MiB once decompressed).
STREAMED_AT_MOST = 32 << 20
TESTS = str(Path(__file__).parent.parent)


def _job(output_url: str) -> landingai.ExtractJobStatusResponse:
    job = {
        "job_id": "job-1",
        "status": "completed",
        "received_at": 0,
        "progress": 1.0,
        "output_url": output_url,
    }
    return msgspec.convert(job, landingai.ExtractJobStatusResponse)


async def _first_page(client: ade_async.Client) -> list[ade_async.JobSnapshot]:
    return [job async for job in client.list_jobs()]


@pytest.mark.parametrize("mode", OVERSIZED_MODES)
@pytest.mark.parametrize("call", ["get_job", "list_jobs"])
async def test_an_api_answer_over_the_cap_is_cut_off_and_named(mode: str, call: str) -> None:
    async with (
        raw_server(mode) as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **OPTIONS) as client,
    ):
        with pytest.raises(ade_async.ResponseTooLargeError) as info:
            await (client.get_job("job-1") if call == "get_job" else _first_page(client))
    error = info.value
    assert isinstance(error, ade_async.TransportError)
    assert error.limit == API_CAP
    assert error.request_sent  # the server answered: it saw the request
    assert "max_response_bytes" in str(error)
    assert f"{API_CAP:,}" in str(error)
    assert len(server.heads) == 1  # the same answer is not asked for again
    assert server.sent < STREAMED_AT_MOST
    assert secret_paths(error, [KEY, "Bearer"], skip_frames_in=[TESTS]) == []


@pytest.mark.parametrize("mode", OVERSIZED_MODES)
async def test_a_create_answered_too_large_has_an_unknown_outcome(mode: str) -> None:
    """The server answered, so it may have created the job: never sent again blindly."""
    async with (
        raw_server(mode) as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **OPTIONS) as client,
    ):
        with pytest.raises(ade_async.CreateOutcomeUnknownError) as info:
            await client.create_job("Name: Ada\n", schema=SCHEMA)
    assert isinstance(info.value.cause, ade_async.ResponseTooLargeError)
    assert "max_response_bytes" in str(info.value)
    assert len(server.heads) == 1


@pytest.mark.parametrize("mode", OVERSIZED_MODES)
async def test_a_download_over_its_cap_fails_without_fresh_urls(mode: str) -> None:
    async with (
        raw_server(mode) as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **OPTIONS) as client,
    ):
        with pytest.raises(ade_async.ResultDownloadError) as info:
            await client.fetch_result(
                landingai.snapshot_of(_job(f"{server.url}/results/job-1.json?X-Amz-Signature=abc"))
            )
    message = str(info.value)
    assert "max_download_bytes" in message
    assert f"{DOWNLOAD_CAP:,}" in message
    assert "X-Amz-Signature" not in message
    assert info.value.job_id == "job-1"
    # A fresh URL would serve the same result: the job is not re-got, the download not repeated.
    assert len(server.heads) == 1
    assert server.sent < STREAMED_AT_MOST


async def test_a_poll_answered_too_large_fails_the_job_at_once() -> None:
    """Polling again would read the same oversized answer until the deadline."""
    async with (
        raw_server("huge_chunked") as server,
        ade_async.Client(api_key=KEY, base_url=server.url, **OPTIONS) as client,
    ):
        with pytest.raises(ade_async.ResponseTooLargeError):
            await client.watch("job-1", timeout=600.0)
    assert len(server.heads) == 1


async def test_answers_up_to_the_cap_are_read_and_one_byte_more_is_not() -> None:
    config = SimulatorConfig(api_keys=(KEY,), latency=(0.0, 0.0), result_url_threshold=0)
    async with Simulator(config) as sim:
        async with ade_async.Client(api_key=KEY, base_url=sim.base_url) as client:
            job_id = await client.create_job("Name: Ada\n", schema=SCHEMA)
            done = await client.watch(job_id, timeout=10.0)
        assert done.job.detail.output_url is not None
        answer_size = len(await _raw_get(sim, job_id))  # the same size on every get
        result_size = len(done.raw)
        exact: dict[str, Any] = {"max_response_bytes": answer_size, "max_download_bytes": result_size}
        async with ade_async.Client(api_key=KEY, base_url=sim.base_url, **exact) as client:
            job = await client.get_job(job_id)
            assert (await client.fetch_result(job)).extraction == done.extraction
        smaller: dict[str, Any] = {
            "max_response_bytes": answer_size - 1,
            "retry": ade_async.RetryPolicy.none(),
        }
        async with ade_async.Client(api_key=KEY, base_url=sim.base_url, **smaller) as client:
            with pytest.raises(ade_async.ResponseTooLargeError):
                await client.get_job(job_id)
        smaller = {"max_download_bytes": result_size - 1, "provider": LandingAI(url_refreshes=0)}
        async with ade_async.Client(api_key=KEY, base_url=sim.base_url, **smaller) as client:
            with pytest.raises(ade_async.ResultDownloadError, match="max_download_bytes"):
                await client.fetch_result(job)


async def _raw_get(sim: Simulator, job_id: str) -> bytes:
    """The job's answer exactly as the simulator sends it."""
    import aiohttp

    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.base_url}/v1/ade/extract/jobs/{job_id}", headers=headers) as answer,
    ):
        assert answer.headers["Content-Length"]  # the cap is met by the declared length too
        return await answer.read()


def test_the_caps_default_to_32_and_512_mib_and_are_validated() -> None:
    parameters = inspect.signature(ade_async.Client).parameters
    assert parameters["max_response_bytes"].default == 32 * 1024 * 1024
    assert parameters["max_download_bytes"].default == 512 * 1024 * 1024
    assert parameters["max_response_bytes"].kind is inspect.Parameter.KEYWORD_ONLY
    for name in ("max_response_bytes", "max_download_bytes"):
        bad_values: list[Any] = [0, -1, 1.5, True, "1000"]
        for bad in bad_values:
            with pytest.raises((ValueError, TypeError), match=name):
                ade_async.Client(api_key=KEY, base_url="http://127.0.0.1:9", **{name: bad})
