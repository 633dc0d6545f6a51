"""The low-level calls of :class:`ade_async.Client`: one request each, no watching.

``create_job`` creates (admission and create retries, no local checks, no search for a lost
answer); ``get_job``, ``list_jobs``, ``fetch_result`` read; ``cancel`` asks the vendor to cancel,
where it can. They return the engine's normalised types (:class:`JobSnapshot`), the vendor's own
answer in ``snapshot.detail``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from ._engine.stage import stage
from ._engine.submit import create_once
from ._engine.types import JobSnapshot
from ._options import check_count
from ._results import ExtractResult

if TYPE_CHECKING:
    from ._engine.engine import Engine
    from ._inputs import DocumentInput
    from ._schema import SchemaInput
    from .providers import Provider

__all__ = ["LowLevelCalls"]


class LowLevelCalls(abc.ABC):
    """Mixed into :class:`ade_async.Client` (which provides the provider and the running engine)."""

    _provider: Provider

    @abc.abstractmethod
    def _running(self) -> Engine: ...

    async def create_job(
        self,
        document: DocumentInput | None = None,
        *,
        schema: SchemaInput,
        options: Any = None,
        filename: str | None = None,
    ) -> str:
        """Create one job and return its id: admission and retries, no local checks, no watching,
        no search (a lost answer raises :class:`CreateOutcomeUnknownError` at once)."""
        engine = self._running()
        staged, _ = await stage(self._provider, engine.api, document, schema, options, filename, check=False)
        return await create_once(engine, staged)

    async def get_job(self, job_id: str) -> JobSnapshot:
        """The job as it is now (reads are retried under the retry policy).

        Raises:
            NotFoundError: no such job for this key.
        """
        return await self._running().get(job_id)

    async def list_jobs(
        self, *, status: str | None = None, page_size: int = 100
    ) -> AsyncGenerator[JobSnapshot]:
        """Every job of this key, page by page, optionally with one status (the vendor's spelling)."""
        check_count("page_size", page_size, maximum=100)
        engine = self._running()
        cursor: str | None = None
        while True:
            page = await engine.list_page(status=status, page_size=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def fetch_result(self, job: JobSnapshot | str) -> ExtractResult[Any]:
        """A finished job's result, wherever the vendor keeps it (got first, given an id).

        Raises:
            JobFailedError, JobCancelledError, JobNotFinishedError: the job has no result.
            ResultDownloadError: it could not be fetched.
        """
        engine = self._running()
        return await engine.result(await engine.get(job) if isinstance(job, str) else job)

    async def cancel(self, job_id: str) -> JobSnapshot:
        """Ask the vendor to cancel a job (``client.provider.info.can_cancel`` says if it can).

        Raises:
            UnsupportedOperationError: it cannot (LandingAI ADE has no cancel endpoint).
        """
        return await self._running().cancel(job_id)
