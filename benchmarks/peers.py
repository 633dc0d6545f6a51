"""The library contenders of ``bench_peers.py``: what a user would otherwise write, and ade_async.

Each function extracts inputs ``0 .. jobs - 1`` (``scenarios.document``) against ``base_url`` and
returns one record per input: ``{"job_id", "fingerprint", "at"}`` when its result is in hand (``at``:
``time.monotonic()`` then), or ``{"job_id", "error"}`` when the contender gave up on it. Every
contender builds each document just before sending it, so none holds all inputs in memory.

The peers are written the way a competent user writes them, not as strawmen:

* ``tutorial``: the vendor tutorial's create-then-poll loop made concurrent: ``asyncio.gather`` over
  one task per input on one ``aiohttp`` session (its connector caps connections at 100); each task
  creates its job, then GETs it every 5 seconds until it ends (the tutorial's interval, as in
  ``bench_poller.py``). Every request is retried on 429, 5xx and dropped connections with
  exponential backoff and full jitter (1 s doubling, capped at 60 s, 10 attempts): the docs' advice
  for 429 ("implement exponential backoff"), applied to every transient error. The API key goes on
  API requests only, never to an ``output_url``.
* ``sdk``: the official ``landingai-ade`` SDK's ``AsyncLandingAIADE`` with its default retries (3
  attempts, which retry POSTs too: ade-api-notes §8); creates go through an ``asyncio.Semaphore``
  of 50, each job is then polled with ``extract_jobs.get`` every 3 seconds (the interval of the
  SDK's own production test, ade-api-notes §4). An ``output_url`` result is downloaded with a plain
  ``httpx.AsyncClient``, as the SDK has no helper for it.
* ``extract_many``: ``ade_async.Client.extract_many`` over a generator of the inputs, with the
  scenario's quota given as ``RateLimit(windows=...)``: what the README shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scenarios import SCHEMA_JSON, document, fingerprint

Record = dict[str, Any]
TERMINAL = ("completed", "failed", "cancelled")


def _delivered(job_id: str, extraction: Any) -> Record:
    return {"job_id": job_id, "fingerprint": fingerprint(extraction), "at": time.monotonic()}


def _gave_up(job_id: str | None, error: BaseException | str) -> Record:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"job_id": job_id, "error": text[:300]}


# --- (a) the vendor tutorial's loop, made concurrent --------------------------------------------

TUTORIAL_POLL_S = 5.0
TUTORIAL_ATTEMPTS = 10
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class GaveUp(Exception):
    """The tutorial loop's retries ran out (or the answer was not retryable)."""


async def _with_backoff(send: Callable[[], Awaitable[tuple[int, bytes]]]) -> bytes:
    """``send`` until it answers 2xx; retry 429, 5xx and dropped connections with backoff."""
    import aiohttp

    last = ""
    for attempt in range(TUTORIAL_ATTEMPTS):
        try:
            status, body = await send()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            last = f"{type(exc).__name__}"
        else:
            if status < 300:
                return body
            if status not in TRANSIENT_STATUSES:
                raise GaveUp(f"HTTP {status}: {body[:200]!r}")
            last = f"HTTP {status}"
        await asyncio.sleep(random.uniform(0, min(60.0, 2.0**attempt)))
    raise GaveUp(f"{TUTORIAL_ATTEMPTS} attempts, last: {last}")


async def run_tutorial(
    base_url: str, api_key: str, jobs: int, body_bytes: int, poll_s: float = TUTORIAL_POLL_S
) -> dict[int, Record]:
    import aiohttp

    url = f"{base_url}/v1/ade/extract/jobs"
    auth = {"Authorization": f"Bearer {api_key}"}
    records: dict[int, Record] = {}

    async def exchange(
        session: aiohttp.ClientSession, method: str, target: str, **kw: Any
    ) -> tuple[int, bytes]:
        async with session.request(method, target, **kw) as response:
            return response.status, await response.read()

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        job_id: str | None = None
        try:

            def create() -> Awaitable[tuple[int, bytes]]:
                # A fresh form per attempt: an aiohttp form can be sent once.
                form = aiohttp.FormData()
                form.add_field("schema", SCHEMA_JSON)
                form.add_field("markdown", document(index, body_bytes).encode(), filename="document.md")
                return exchange(session, "POST", url, data=form, headers=auth)

            job_id = json.loads(await _with_backoff(create))["job_id"]
            while True:
                await asyncio.sleep(poll_s)
                job = json.loads(
                    await _with_backoff(lambda: exchange(session, "GET", f"{url}/{job_id}", headers=auth))
                )
                if job["status"] in TERMINAL:
                    break
            if job["status"] != "completed":
                records[index] = _gave_up(job_id, f"job {job['status']}")
                return
            if job.get("output_url"):
                # Presigned: no API key to the object store.
                result = json.loads(await _with_backoff(lambda: exchange(session, "GET", job["output_url"])))
            else:
                result = job["data"]
            records[index] = _delivered(job_id, result["extraction"])
        except Exception as exc:  # the user's gather must not lose every other input to one failure
            records[index] = _gave_up(job_id, exc)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, index) for index in range(jobs)))
    return records


# --- (b) the official SDK ------------------------------------------------------------------------

SDK_POLL_S = 3.0
SDK_CREATE_CONCURRENCY = 50


async def run_sdk(
    base_url: str, api_key: str, jobs: int, body_bytes: int, poll_s: float = SDK_POLL_S
) -> dict[int, Record]:
    import httpx
    from landingai_ade import AsyncLandingAIADE

    records: dict[int, Record] = {}
    gate = asyncio.Semaphore(SDK_CREATE_CONCURRENCY)

    async def one(client: AsyncLandingAIADE, downloads: httpx.AsyncClient, index: int) -> None:
        job_id: str | None = None
        try:
            async with gate:
                # A named file part: the API refuses a bare string (ade-api-notes §1).
                markdown = ("document.md", document(index, body_bytes).encode(), "text/markdown")
                created = await client.extract_jobs.create(schema=SCHEMA_JSON, markdown=markdown)
            job_id = created.job_id
            while True:
                await asyncio.sleep(poll_s)
                job = await client.extract_jobs.get(job_id)
                if job.status in TERMINAL:
                    break
            if job.status != "completed":
                records[index] = _gave_up(job_id, f"job {job.status}")
                return
            if job.output_url:
                response = await downloads.get(job.output_url)
                response.raise_for_status()
                extraction = response.json()["extraction"]
            else:
                assert job.data is not None
                extraction = job.data.extraction
            records[index] = _delivered(job_id, extraction)
        except Exception as exc:
            records[index] = _gave_up(job_id, exc)

    async with (
        AsyncLandingAIADE(apikey=api_key, base_url=base_url) as client,
        httpx.AsyncClient() as downloads,
    ):
        await asyncio.gather(*(one(client, downloads, index) for index in range(jobs)))
    return records


# --- (c) ade_async ------------------------------------------------------------------------------


async def run_extract_many(
    base_url: str, api_key: str, jobs: int, body_bytes: int, quota: tuple[tuple[int, float], ...]
) -> dict[int, Record]:
    import ade_async

    records: dict[int, Record] = {}
    limit = ade_async.RateLimit(windows=quota)
    inputs = (document(index, body_bytes) for index in range(jobs))
    # A batch user lets a create whose job the search could not find be sent again (reported as a
    # possible duplicate), rather than leave the input undone.
    async with (
        ade_async.Client(api_key=api_key, base_url=base_url, rate_limit=limit) as client,
        contextlib.aclosing(
            client.extract_many(inputs, schema=SCHEMA_JSON, resubmit_unknown=True)
        ) as outcomes,
    ):
        async for outcome in outcomes:
            if outcome.ok:
                records[outcome.index] = _delivered(outcome.job_id, outcome.result.extraction)
            else:
                error = f"{outcome.stage}: {type(outcome.error).__name__}: {outcome.error}"
                records[outcome.index] = _gave_up(outcome.job_id, error)
    return records


LIBRARY_CONTENDERS = ("tutorial", "sdk", "extract_many")
