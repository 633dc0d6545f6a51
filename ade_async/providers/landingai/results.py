"""Getting a completed job's result from wherever the API put it.

Small results come inline (``data``). Results over 1 MB, or those of jobs created with
``output_save_url``, come through ``output_url``: a presigned URL that expires about an hour after
the GET that issued it. It is downloaded *without* the API key (the transport never attaches it to
a download), and when a download fails the job is fetched again for a fresh URL, a bounded number
of times; not when the result is over ``max_download_bytes``, which a fresh URL would not change.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from ..._engine.http import Api, HttpRequest, redact_url
from ..._engine.types import JobSnapshot, ResultWarning, raise_unless_succeeded
from ..._errors import (
    ADEError,
    ClientClosedError,
    MalformedResponseError,
    ResponseTooLargeError,
    ResultDownloadError,
)
from ..._results import ExtractResult
from .wire import ExtractJobStatusResponse, ExtractResponse, decode_extract_response, raw_job_data

if TYPE_CHECKING:
    from .provider import LandingAI

__all__ = ["fetch_result"]

logger = logging.getLogger("ade_async")


async def fetch_result(provider: LandingAI, api: Api, job: JobSnapshot) -> ExtractResult[Any]:
    """The result of a completed job: inline, or downloaded from ``output_url`` without the key.

    When a download fails the job is got again for a fresh URL, ``provider.url_refreshes`` times
    at most (not when the result is over the download cap: a fresh URL would serve the same).

    Raises:
        JobFailedError, JobCancelledError, JobNotFinishedError: the job has no result.
        ResultDownloadError: ``output_url`` could not be downloaded, fresh URLs included.
        MalformedResponseError: a completed job carries neither ``data`` nor ``output_url``.
    """
    refreshes_left = provider.url_refreshes
    while True:
        raise_unless_succeeded(job)
        envelope: ExtractJobStatusResponse = job.detail
        if envelope.data is not None:
            raw = raw_job_data(job.body) if job.body is not None else None
            return _result(envelope.data, job, raw or msgspec.json.encode(envelope.data))
        if envelope.output_url is None:
            raise MalformedResponseError(
                f"job {job.job_id} is completed but carries neither data nor output_url",
                method="GET",
                path=provider.get_request(job.job_id).path,
                status_code=200,
            )
        try:
            response, body = await _download(api, job.job_id, envelope.output_url)
            return _result(response, job, body)
        except ResultDownloadError as error:
            if refreshes_left == 0 or isinstance(error.__cause__, ResponseTooLargeError):
                raise  # out of refreshes, or a fresh URL would serve the same oversized result
            refreshes_left -= 1
            logger.debug("refreshing output_url of job %s after a failed download", job.job_id)
            request = provider.get_request(job.job_id)
            job = provider.parse_job(request, await api.read(request))


def _result(response: ExtractResponse, job: JobSnapshot, raw: bytes) -> ExtractResult[Any]:
    metadata = response.metadata
    return ExtractResult(
        job_id=job.job_id,
        extraction=response.extraction,
        extraction_metadata=response.extraction_metadata,
        metadata=metadata,
        warnings=tuple(ResultWarning(w.code, w.msg) for w in metadata.warnings),
        schema_violation_error=metadata.schema_violation_error,
        raw=raw,
        job=job,
        detail=response,
    )


async def _download(api: Api, job_id: str, url: str) -> tuple[ExtractResponse, bytes]:
    request = HttpRequest(method="GET", path=url, authenticated=False)
    shown = redact_url(url)
    try:
        response = await api.transport.send(request)
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
