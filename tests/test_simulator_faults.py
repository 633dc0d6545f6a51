"""The simulator's fault kinds added for the reliability suite, over loopback with plain aiohttp.

``404`` (a live job reported missing), ``expired`` (an output URL past its expiry), ``not_json``
(an HTML page under a success status), a 429 fault's announced wait, and the random-fault flags
of ``python -m ade_async.testing``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from ade_async.testing import FAULT_ENDPOINTS, FAULT_KINDS, Simulator, SimulatorConfig, SimulatorState

pytestmark = pytest.mark.anyio

JOBS = "/v1/ade/extract/jobs"
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


def form(markdown: bytes = b"Name: Ada\n") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("schema", json.dumps(SCHEMA))
    data.add_field("markdown", markdown, filename="doc.md", content_type="text/markdown")
    return data


async def create_id(http: aiohttp.ClientSession, sim: Simulator, markdown: bytes = b"Name: Ada\n") -> str:
    async with http.post(sim.base_url + JOBS, data=form(markdown), headers=auth(sim)) as response:
        assert response.status == 202
        job_id: str = (await response.json())["job_id"]
        return job_id


async def get(http: aiohttp.ClientSession, sim: Simulator, job_id: str) -> tuple[int, Any]:
    async with http.get(f"{sim.base_url}{JOBS}/{job_id}", headers=auth(sim)) as response:
        return response.status, await response.json(content_type=None)


async def test_404_fault_reports_a_live_job_missing_once(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0))) as sim:
        job_id = await create_id(http, sim)
        sim.inject("get", "404", count=2)
        assert await get(http, sim, job_id) == (404, {"message": "Job not found"})
        assert (await get(http, sim, job_id))[0] == 404
        status, body = await get(http, sim, job_id)
        assert (status, body["status"]) == (200, "completed")  # it was there all along
        assert sim.stats().faults == {"404": 2}


async def test_expired_fault_refuses_a_valid_output_url(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), result_url_threshold=0)) as sim:
        job_id = await create_id(http, sim)
        _, job = await get(http, sim, job_id)
        url = job["output_url"]
        sim.inject("download", "expired")
        async with http.get(url) as response:
            assert response.status == 403
            assert response.content_type == "application/xml"
            assert b"<Code>AccessDenied</Code>" in await response.read()
        async with http.get(url) as response:  # the same URL, still valid: only the fault refused it
            assert response.status == 200
            assert (await response.json())["extraction"] == {"name": "Ada"}
        stats = sim.stats()
        assert (stats.faults, stats.downloads) == ({"expired": 1}, 1)


async def test_not_json_fault_does_the_work_and_answers_html(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0))) as sim:
        sim.inject("create", "not_json")
        async with http.post(sim.base_url + JOBS, data=form(), headers=auth(sim)) as response:
            assert (response.status, response.content_type) == (202, "text/html")
            body = await response.read()
        assert body.startswith(b"<html>")
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
        assert sim.stats().jobs_total == 1  # the job exists although the answer is unreadable
        job_id = await create_id(http, sim, b"Name: Bob\n")
        sim.inject("get", "not_json")
        async with http.get(f"{sim.base_url}{JOBS}/{job_id}", headers=auth(sim)) as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"<html>")


@pytest.mark.parametrize(("form_name", "header"), [("ms", "retry-after-ms"), ("seconds", "Retry-After")])
async def test_429_fault_announces_the_configured_wait(
    http: aiohttp.ClientSession, form_name: Any, header: str
) -> None:
    config = SimulatorConfig(latency=(0.0, 0.0), retry_after=form_name, fault_retry_after=0.25)
    async with Simulator(config) as sim:
        sim.inject("create", "429")
        async with http.post(sim.base_url + JOBS, data=form(), headers=auth(sim)) as response:
            assert response.status == 429
            # 250 ms; a Retry-After in whole seconds rounds up so a client is never early.
            assert response.headers[header] == ("250" if form_name == "ms" else "1")
        assert sim.stats().jobs_total == 0


def test_single_endpoint_faults_are_refused_elsewhere() -> None:
    state = SimulatorState(SimulatorConfig())
    assert {"404", "expired", "not_json"} <= set(FAULT_KINDS)
    for kind, endpoint in FAULT_ENDPOINTS.items():
        state.inject(endpoint, kind)
        for other in ("create", "get", "list", "download"):
            if other != endpoint:
                with pytest.raises(ValueError, match=f"the {endpoint} endpoint only"):
                    state.inject(other, kind)
    with pytest.raises(ValueError, match="fault_retry_after"):
        SimulatorConfig(fault_retry_after=0)


async def test_random_fault_flags_of_the_standalone_simulator(http: aiohttp.ClientSession) -> None:
    command = [sys.executable, "-m", "ade_async.testing", "--port", "0"]
    refused = await anyio.run_process([*command, "--error-rate", "0.7", "--drop-rate", "0.4"], check=False)
    assert refused.returncode == 2
    assert "add up to 1.1" in refused.stderr.decode()

    async with await anyio.open_process([*command, "--error-rate", "1"]) as process:
        try:
            assert process.stdout is not None
            banner = ""
            with anyio.fail_after(30):  # a read may return part of the line: read up to its end
                while not banner.endswith("\n"):
                    banner += (await process.stdout.receive()).decode()
            base_url = banner.split(" serving on ")[1].split()[0]
            for path in (JOBS, f"{JOBS}/some-job"):  # every endpoint answers a 5xx
                async with http.get(base_url + path, headers={"Authorization": "Bearer sim-key"}) as answer:
                    assert answer.status in (500, 502, 503)
            async with http.get(base_url + "/_simulator/stats") as answer:
                faults = (await answer.json())["faults"]
            assert sum(faults.values()) == 2
        finally:
            process.terminate()
