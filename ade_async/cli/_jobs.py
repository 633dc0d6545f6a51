"""``ade-async jobs ...``: look at and collect jobs of the API key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import anyio
import msgspec

from .._client import Client
from .._errors import ADEError, AuthenticationError, ConfigurationError, JobTimeoutError, PaymentRequiredError
from ._outputs import error_document, write_atomic

__all__ = ["get_job", "list_jobs", "wait_jobs"]


def _client(api_key: str | None, base_url: str | None, environment: str | None) -> Client:
    return Client(api_key=api_key, base_url=base_url, environment=environment)


def _report(error: ADEError, stderr: IO[str]) -> int:
    print(f"ade-async: {error}", file=stderr)
    if isinstance(error, ConfigurationError):
        return 2
    if isinstance(error, AuthenticationError | PaymentRequiredError):
        return 4
    return 1


async def list_jobs(
    *, status: str | None, limit: int, api_key: str | None, base_url: str | None, environment: str | None
) -> int:
    """Print one line per job: id, status, received time, failure reason."""
    try:
        async with _client(api_key, base_url, environment) as client:
            shown = 0
            async for job in client.list_jobs(status=status, page_size=min(100, limit)):
                reason = f"  {job.failure_reason}" if job.failure_reason else ""
                print(f"{job.job_id}  {job.status:<10}  {job.received_at}{reason}")
                shown += 1
                if shown >= limit:
                    break
    except ADEError as error:
        return _report(error, sys.stderr)
    return 0


async def get_job(job_id: str, *, api_key: str | None, base_url: str | None, environment: str | None) -> int:
    """Print the job's status document as JSON."""
    try:
        async with _client(api_key, base_url, environment) as client:
            job = await client.get_job(job_id)
    except ADEError as error:
        return _report(error, sys.stderr)
    print(msgspec.json.format(msgspec.json.encode(job), indent=2).decode())
    return 0


async def wait_jobs(
    job_ids: list[str],
    *,
    out: Path,
    deadline: float | None,
    api_key: str | None,
    base_url: str | None,
    environment: str | None,
) -> int:
    """Wait for the jobs; write ``OUT/<job_id>.json`` (or ``.error.json``) for each."""
    failures = pending = 0
    try:
        async with _client(api_key, base_url, environment) as client:

            async def one(job_id: str) -> None:
                nonlocal failures, pending
                name = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id) or "job"
                try:
                    result = await client.wait(job_id, deadline=deadline)
                except JobTimeoutError:
                    pending += 1
                    print(f"{job_id}: still running", file=sys.stderr)
                    return
                except ADEError as error:
                    failures += 1
                    document = error_document(source=Path(job_id), stage="job", error=error, job_id=job_id)
                    await write_atomic(out / f"{name}.error.json", document)
                    print(f"{job_id}: {error}", file=sys.stderr)
                    return
                await write_atomic(out / f"{name}.json", result.raw)
                print(f"{job_id}: {out / (name + '.json')}")

            async with anyio.create_task_group() as tasks:
                for job_id in dict.fromkeys(job_ids):
                    tasks.start_soon(one, job_id)
    except ADEError as error:
        return _report(error, sys.stderr)
    return 3 if pending else (1 if failures else 0)
