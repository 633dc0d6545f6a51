"""Wire models decode the documented shapes and tolerate what the API may add."""

from __future__ import annotations

import msgspec
import pytest

from ade_async.providers import landingai
from ade_async.providers.landingai.wire import (
    decode_created,
    decode_extract_response,
    decode_job,
    decode_job_list,
)

# The completed-job example from the vendor's Extract Jobs page (seed 000), abbreviated there too.
SEED_EXAMPLE = b"""{
  "job_id": "cmf8x2k9p0001abcd1234efgh", "status": "completed",
  "received_at": 1781819747, "created_at": 1781819747, "progress": 1.0,
  "org_id": "a1b2c3d4e5f6", "version": "extract-20260314",
  "data": {
    "extraction": {"exam_date": "2010-05-20",
                   "procedure": "MRI OF THE LUMBAR SPINE WITH AND WITHOUT CONTRAST"},
    "extraction_metadata": {"exam_date": {"references": ["93996806-781d-4404-bfa4-f6e49323a227"],
                                          "value": "2010-05-20"}},
    "metadata": {"filename": "markdown-mri-report.md", "duration_ms": 6807, "credit_usage": 1.4,
                 "version": "extract-20260314", "schema_violation_error": null, "warnings": []}
  },
  "output_url": null,
  "metadata": {"filename": "markdown-mri-report.md", "duration_ms": 8100, "credit_usage": 1.4,
               "version": "extract-20260314"},
  "failure_reason": null
}"""


def test_seed_example_decodes() -> None:
    job = decode_job(SEED_EXAMPLE)
    assert job.is_terminal
    assert job.status == landingai.JobStatus.COMPLETED
    assert job.data is not None
    assert job.data.extraction["exam_date"] == "2010-05-20"
    assert job.data.conforms
    assert job.metadata is not None
    assert job.metadata.org_id is None  # omitted in the example although the spec requires it


def test_unknown_fields_and_statuses_are_tolerated() -> None:
    job = decode_job(
        b'{"job_id": "j", "status": "queued_for_gpu", "received_at": 1, "progress": 0, "new": [1]}'
    )
    assert job.status == "queued_for_gpu"
    assert not job.is_terminal
    assert job.created_at == 0


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_terminal_statuses(status: str) -> None:
    job = decode_job(b'{"job_id": "j", "status": "%s", "received_at": 1, "progress": 1}' % status.encode())
    assert job.is_terminal


def test_warnings_make_a_result_nonconforming() -> None:
    body = b"""{"extraction": {"a": null}, "extraction_metadata": {},
      "metadata": {"filename": "f.md", "org_id": null, "duration_ms": 1, "credit_usage": 1,
                   "job_id": "j", "version": "v", "schema_violation_error": "a: expected number",
                   "warnings": [{"code": "nonconformant_output", "msg": "a"},
                                {"code": "brand_new", "msg": "b"}]}}"""
    result = decode_extract_response(body)
    assert not result.conforms
    assert [w.code for w in result.metadata.warnings] == ["nonconformant_output", "brand_new"]


def test_list_and_create_decode() -> None:
    page = decode_job_list(
        b'{"jobs": [{"job_id": "a", "status": "pending", "received_at": 1, "progress": 0.0}],'
        b' "has_more": true}'
    )
    assert page.has_more
    assert page.jobs[0].job_id == "a"
    assert decode_created(b'{"job_id": "12345678-1234-1234-1234-123456789012"}').job_id.startswith("1234")


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"status": "pending"}', b'{"job_id": 5, "status": "x", "received_at": 1, "progress": 0}'],
)
def test_malformed_bodies_raise_decode_errors(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_job(body)


def test_models_are_frozen() -> None:
    job = decode_job(SEED_EXAMPLE)
    with pytest.raises(AttributeError):
        job.status = "failed"  # type: ignore[misc]
