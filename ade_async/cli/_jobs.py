"""``ade-async jobs ...`` and ``ade-async providers``: look at, collect and cancel jobs of the API key."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec

from .._client import Client
from .._engine.types import JobSnapshot
from .._errors import (
    ADEError,
    AuthenticationError,
    ConfigurationError,
    JobTimeoutError,
    PaymentRequiredError,
    UnsupportedOperationError,
)
from ..providers import available
from ._outputs import error_document, write_atomic

__all__ = ["Connection", "cancel_job", "get_job", "list_jobs", "print_providers", "wait_jobs"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Connection:
    """Where the API is and who calls it (the key is never shown in a repr)."""

    provider: str
    api_key: str | None = dataclasses.field(default=None, repr=False)
    base_url: str | None = None
    environment: str | None = None

    def client(self) -> Client:
        return Client(
            provider=self.provider, api_key=self.api_key, base_url=self.base_url, environment=self.environment
        )


def print_providers(stdout: IO[str]) -> int:
    """One paragraph per installed provider: what it is, its variables, hosts and abilities."""
    for info in available():
        print(f"{info.name}: {info.title}", file=stdout)
        print(f"  key:        {' or '.join(info.api_key_env)}", file=stdout)
        if info.base_url_env:
            print(f"  base URL:   {info.base_url_env}", file=stdout)
        if info.environment_env:
            print(f"  region:     {info.environment_env}", file=stdout)
        hosts = ", ".join(f"{name} {url}" for name, url in info.hosts.items())
        print(f"  hosts:      {hosts} (default {info.default_environment})", file=stdout)
        print(f"  documents:  {' '.join(info.input_kinds)} (folders: {info.default_glob})", file=stdout)
        print(f"  cancel:     {'yes' if info.can_cancel else 'no'}", file=stdout)
        print(f"  budgets:    {'; '.join(f'{k}: {v}' for k, v in info.budgets.items())}", file=stdout)
    return 0


def _shown(job: JobSnapshot) -> Any:
    """What ``jobs get`` prints: the vendor's own answer when there is one."""
    return job.detail if job.detail is not None else dataclasses.asdict(job)


def _report(error: ADEError, stderr: IO[str]) -> int:
    print(f"ade-async: {error}", file=stderr)
    if isinstance(error, ConfigurationError):
        return 2
    if isinstance(error, AuthenticationError | PaymentRequiredError):
        return 4
    return 1


async def list_jobs(connection: Connection, *, status: str | None, limit: int) -> int:
    """Print one line per job: id, status, time received (Unix seconds), failure reason."""
    try:
        async with connection.client() as client:
            shown = 0
            async for job in client.list_jobs(status=status, page_size=min(100, limit)):
                reason = f"  {job.failure_reason}" if job.failure_reason else ""
                received = "" if job.created_at is None else f"{job.created_at:.0f}"
                print(f"{job.job_id}  {job.status:<10}  {received}{reason}")
                shown += 1
                if shown >= limit:
                    break
    except ADEError as error:
        return _report(error, sys.stderr)
    return 0


async def get_job(connection: Connection, job_id: str) -> int:
    """Print the job's status document as JSON, as the vendor sent it."""
    try:
        async with connection.client() as client:
            job = await client.get_job(job_id)
    except ADEError as error:
        return _report(error, sys.stderr)
    print(msgspec.json.format(msgspec.json.encode(_shown(job)), indent=2).decode())
    return 0


async def cancel_job(connection: Connection, job_id: str) -> int:
    """Cancel a job where the vendor can; print what it became."""
    try:
        async with connection.client() as client:
            job = await client.cancel(job_id)
    except UnsupportedOperationError as error:
        print(f"ade-async: {error}", file=sys.stderr)
        return 2
    except ADEError as error:
        return _report(error, sys.stderr)
    print(f"{job.job_id}  {job.status}")
    return 0


async def wait_jobs(connection: Connection, job_ids: list[str], *, out: Path, timeout: float | None) -> int:
    """Wait for the jobs; write ``OUT/<job_id>.json`` (or ``.error.json``) for each."""
    failures = pending = 0
    try:
        async with connection.client() as client:

            async def one(job_id: str) -> None:
                nonlocal failures, pending
                name = "".join(c if c.isalnum() or c in "-_" else "_" for c in job_id) or "job"
                try:
                    result = await client.watch(job_id, timeout=timeout)
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
