"""Getting a completed job's result from wherever the API put it.

Small results come inline (``data``). Results over 1 MB, or those of jobs created with
``output_save_url``, come through ``output_url``: a presigned URL that expires about an hour after
the GET that issued it. It is downloaded *without* the API key (the transport never attaches it to
a download), and when a download fails the job is fetched again for a fresh URL, a bounded number
of times; not when the result is over ``max_download_bytes``, which a fresh URL would not change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from ..._engine.http import JOBS_PATH, Transport, redact_url
from ..._errors import (
    ADEError,
    ClientClosedError,
    JobCancelledError,
    JobFailedError,
    JobNotFinishedError,
    MalformedResponseError,
    ResponseTooLargeError,
    ResultDownloadError,
)
from ...providers.landingai.wire import (
    ExtractJobStatusResponse,
    ExtractResponse,
    JobStatus,
    decode_extract_response,
)

__all__ = ["ResultFetcher", "raise_unless_completed"]

logger = logging.getLogger("ade_async")


class ResultFetcher:
    """Turns a completed job into its :class:`ExtractResponse`.

    Args:
        transport: for downloads.
        refresh: gets the job again (for a fresh ``output_url``).
        url_refreshes: how many fresh URLs to ask for after failed downloads.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        refresh: Callable[[str], Awaitable[ExtractJobStatusResponse]],
        url_refreshes: int,
    ) -> None:
        self._transport = transport
        self._refresh = refresh
        self._url_refreshes = url_refreshes

    async def fetch(
        self, job: ExtractJobStatusResponse, raw_data: bytes | None = None
    ) -> tuple[ExtractResponse, ExtractJobStatusResponse, bytes]:
        """The result, the job envelope it came with (refreshed if the URL had to be renewed), and
        the result's JSON exactly as the API sent it (``raw_data``: the ``data`` member of the get
        that returned ``job``, when known).

        Raises:
            JobFailedError, JobCancelledError, JobNotFinishedError: the job has no result.
            ResultDownloadError: ``output_url`` could not be downloaded, fresh URLs included.
            MalformedResponseError: a completed job carries neither ``data`` nor ``output_url``.
        """
        refreshes_left = self._url_refreshes
        while True:
            raise_unless_completed(job)
            if job.data is not None:
                raw = raw_data if raw_data is not None else msgspec.json.encode(job.data)
                return job.data, job, raw
            if job.output_url is None:
                raise MalformedResponseError(
                    f"job {job.job_id} is completed but carries neither data nor output_url",
                    method="GET",
                    path=f"{JOBS_PATH}/{job.job_id}",
                    status_code=200,
                )
            try:
                response, body = await self._download(job.job_id, job.output_url)
                return response, job, body
            except ResultDownloadError as error:
                if refreshes_left == 0 or isinstance(error.__cause__, ResponseTooLargeError):
                    raise  # out of refreshes, or a fresh URL would serve the same oversized result
                refreshes_left -= 1
                logger.debug("refreshing output_url of job %s after a failed download", job.job_id)
                job = await self._refresh(job.job_id)
                raw_data = None

    async def _download(self, job_id: str, url: str) -> tuple[ExtractResponse, bytes]:
        shown = redact_url(url)
        try:
            response = await self._transport.download(url)
        except ClientClosedError:
            raise
        except ADEError as exc:
            raise ResultDownloadError(
                f"downloading the result of job {job_id} from {shown} failed: {exc}",
                job_id=job_id,
                status_code=None,
            ) from exc
        if response.status != 200:
            hint = " (the URL has probably expired)" if response.status in (400, 403, 404, 410) else ""
            raise ResultDownloadError(
                f"downloading the result of job {job_id} from {shown} answered {response.status}{hint}",
                job_id=job_id,
                status_code=response.status,
            )
        try:
            return decode_extract_response(response.body), response.body
        except msgspec.DecodeError as exc:  # also msgspec.ValidationError, its subclass
            raise ResultDownloadError(
                f"the result of job {job_id} downloaded from {shown} is not a valid extraction result: {exc}",
                job_id=job_id,
                status_code=response.status,
            ) from exc


def raise_unless_completed(job: ExtractJobStatusResponse) -> None:
    """Raise the job error that says why ``job`` has no result, unless it is completed."""
    if job.status == JobStatus.COMPLETED:
        return
    if job.status == JobStatus.FAILED:
        reason = job.failure_reason or "no reason given"
        raise JobFailedError(
            f"job {job.job_id} failed: {reason}", job_id=job.job_id, failure_reason=job.failure_reason
        )
    if job.status == JobStatus.CANCELLED:
        raise JobCancelledError(f"job {job.job_id} was cancelled", job_id=job.job_id)
    raise JobNotFinishedError(
        f"job {job.job_id} has no result yet (status {job.status!r})", job_id=job.job_id, status=job.status
    )
