"""The simulator itself, over real loopback HTTP with a plain aiohttp client.

Latencies are zero or far away (30 s), so every lifecycle assertion is deterministic; tests of
windows and expiry run the simulator on a ``FakeClock`` and move it, never sleep or assert how
long something took.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from ade_async.testing import (
    ENDPOINTS,
    FAULT_KINDS,
    FakeClock,
    Faults,
    Simulator,
    SimulatorConfig,
    SimulatorState,
    build_app,
    parse_duration,
    parse_latency,
    parse_rate,
)
from ade_async.testing._engine._extraction import REFERENCE_NAMESPACE, reference_id
from ade_async.testing._engine._forms import FormError, FormPart, parse_form, parse_header_params
from ade_async.testing._engine._markers import parse_markers
from ade_async.testing.landingai._schema import SchemaError, extract, prepare_schema

pytestmark = pytest.mark.anyio

JOBS = "/v1/ade/extract/jobs"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(
    os.environ.get("ADE_OPENAPI_SPEC", PROJECT_ROOT.parent / "shared/reference/ade-v1-openapi.json")
)
INSTANT = SimulatorConfig(latency=(0.0, 0.0))

INVOICE = (
    b"# Invoice INV-2024-001\n"  # 1
    b"\n"  # 2
    b"<!-- exported by the billing system -->\n"  # 3
    b"**Invoice Number:** INV-2024-001\n"  # 4
    b"- Invoice Date: 2024-03-15\n"  # 5
    b"- Vendor Name: `ACME Corp`\n"  # 6
    b"\n"  # 7
    b"| Field | Value |\n"  # 8
    b"| --- | --- |\n"  # 9
    b"| Total Amount | $1,234.50 |\n"  # 10
    b"| Line Count | 3 |\n"  # 11
    b"\n"  # 12
    b"Paid: yes\n"  # 13
    b"Tags: urgent; net-30, export\n"  # 14
    b"Customer_City: Springfield\n"  # 15
    b"Status: open\n"  # 16
    b"Total: 99\n"  # 17: later than "Total Amount" on line 10, so not used
)
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "title": "Invoice Date", "format": "YYYY-MM-DD"},
        "total": {"type": "number", "x-alternativeNames": ["Total Amount"]},
        "line_count": {"type": "integer"},
        "paid": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "enum": ["open", "paid"]},
        "vendor": {"type": "object", "properties": {"vendor_name": {"type": "string"}}},
        "customer": {"$ref": "#/$defs/customer"},
        "po_number": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {
        "customer": {
            "type": "object",
            "properties": {"customer_city": {"type": "string"}, "customer_zip": {"type": "string"}},
        }
    },
}
SIMPLE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}}


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(INSTANT) as simulator:
        yield simulator


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_form(
    schema: Any = SIMPLE_SCHEMA,
    markdown: bytes | None = b"Name: Ada\n",
    filename: str = "doc.md",
    **fields: str,
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if schema is not None:
        form.add_field("schema", schema if isinstance(schema, str) else json.dumps(schema))
    if markdown is not None:
        form.add_field("markdown", markdown, filename=filename, content_type="text/markdown")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def create(
    http: aiohttp.ClientSession, sim: Simulator, data: Any = None, *, key: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with http.post(
        sim.base_url + JOBS, data=make_form() if data is None else data, headers=auth(key or sim.api_key)
    ) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


async def create_id(
    http: aiohttp.ClientSession, sim: Simulator, data: Any = None, *, key: str | None = None
) -> str:
    status, body, _ = await create(http, sim, data, key=key)
    assert status == 202, body
    job_id = body["job_id"]
    assert isinstance(job_id, str)
    return job_id


async def get_job(
    http: aiohttp.ClientSession, sim: Simulator, job_id: str, *, key: str | None = None
) -> tuple[int, Any]:
    async with http.get(f"{sim.base_url}{JOBS}/{job_id}", headers=auth(key or sim.api_key)) as response:
        return response.status, await response.json(content_type=None)


async def list_jobs(
    http: aiohttp.ClientSession, sim: Simulator, *, key: str | None = None, **query: str
) -> tuple[int, Any]:
    async with http.get(sim.base_url + JOBS, params=query, headers=auth(key or sim.api_key)) as response:
        return response.status, await response.json(content_type=None)


def markdown_doc(text: str) -> aiohttp.FormData:
    return make_form(markdown=text.encode())


# ---------------------------------------------------------------------------------------------
# auth and validation


async def test_missing_or_unknown_key_is_401(http: aiohttp.ClientSession, sim: Simulator) -> None:
    async with http.post(sim.base_url + JOBS, data=make_form()) as response:
        assert response.status == 401
        assert "error" in await response.json()  # create answers errors in "error" (seed 002)
    for url in (sim.base_url + JOBS, f"{sim.base_url}{JOBS}/some-id"):
        for headers in ({}, auth("wrong-key"), {"Authorization": f"Basic {sim.api_key}"}):
            async with http.get(url, headers=headers) as response:
                assert response.status == 401
                assert "message" in await response.json()  # get and list answer in "message"
    assert sim.stats().jobs_total == 0


def _form_fields(*fields: tuple[str, str | bytes, str | None]) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value, filename in fields:
        if filename is None:
            form.add_field(name, value)
        else:
            form.add_field(name, value, filename=filename, content_type="text/markdown")
    return form


SCHEMA_TEXT = json.dumps(SIMPLE_SCHEMA)
DOC = b"Name: Ada\n"

# (id, form fields, status, body key or "detail", expected message or its prefix)
VALIDATION_CASES: list[tuple[str, list[tuple[str, str | bytes, str | None]], int, str, str]] = [
    ("schema-missing", [("markdown", DOC, "a.md")], 422, "detail", "Field required"),
    (
        "schema-not-json",
        [("schema", "{nope", None), ("markdown", DOC, "a.md")],
        400,
        "error",
        "Invalid JSON schema: ",
    ),
    (
        "schema-not-object",
        [("schema", "[1, 2]", None), ("markdown", DOC, "a.md")],
        422,
        "detail",
        "The provided JSON must parse to an object at the root",
    ),
    (
        "schema-root-type",
        [("schema", '{"type": "array"}', None), ("markdown", DOC, "a.md")],
        422,
        "detail",
        'The provided schema must have "type": "object" for the root',
    ),
    (
        "schema-ref-cycle",
        [
            (
                "schema",
                json.dumps(
                    {
                        "type": "object",
                        "properties": {"a": {"$ref": "#/$defs/A"}},
                        "$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/definitions/B"}}}},
                        "definitions": {"B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}},
                    }
                ),
                None,
            ),
            ("markdown", DOC, "a.md"),
        ],
        422,
        "detail",
        "The provided schema contains recursive local $ref cycles",
    ),
    (
        "schema-unsupported-strict",
        [
            (
                "schema",
                json.dumps(
                    {
                        "type": "object",
                        "properties": {
                            "pattern": {"type": "string", "pattern": "^a", "maxLength": 3},
                            "n": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        },
                    }
                ),
                None,
            ),
            ("strict", "TRUE", None),
            ("markdown", DOC, "a.md"),
        ],
        422,
        "detail",
        "The following schema fields were not supported: maxLength, minimum, pattern",
    ),
    (
        "strict-not-boolean",
        [("schema", SCHEMA_TEXT, None), ("strict", "maybe", None), ("markdown", DOC, "a.md")],
        422,
        "detail",
        "Input should be a valid boolean, unable to interpret input",
    ),
    (
        "both-inputs",
        [
            ("schema", SCHEMA_TEXT, None),
            ("markdown", DOC, "a.md"),
            ("markdown_url", "http://127.0.0.1:9/a.md", None),
        ],
        422,
        "detail",
        "Cannot provide both 'markdown' and 'markdown_url'",
    ),
    (
        "no-input",
        [("schema", SCHEMA_TEXT, None)],
        422,
        "detail",
        "Must provide either 'markdown' or 'markdown_url'",
    ),
    (
        "empty-file",
        [("schema", SCHEMA_TEXT, None), ("markdown", b"", "a.md")],
        422,
        "detail",
        "No markdown file or URL provided",
    ),
    (
        "blank-url",
        [("schema", SCHEMA_TEXT, None), ("markdown_url", "   ", None)],
        422,
        "detail",
        "No markdown file or URL provided",
    ),
    (
        "two-files",
        [("schema", SCHEMA_TEXT, None), ("markdown", DOC, "a.md"), ("markdown", DOC, "b.md")],
        422,
        "detail",
        "Multiple Markdown files detected",
    ),
    (
        "file-without-filename",
        [("schema", SCHEMA_TEXT, None), ("markdown", "Name: Ada", None)],
        422,
        "detail",
        "Invalid file provided",
    ),
    (
        "not-md",
        [("schema", SCHEMA_TEXT, None), ("markdown", b"%PDF-1.7", "report.pdf")],
        422,
        "detail",
        "Unsupported format",
    ),
    (
        "not-utf8",
        [("schema", SCHEMA_TEXT, None), ("markdown", b"\xff\xfe\x00bad", "a.MD")],
        422,
        "detail",
        "Unsupported format",
    ),
    (
        "url-not-http",
        [("schema", SCHEMA_TEXT, None), ("markdown_url", "ftp://example.com/a.md", None)],
        422,
        "detail",
        "Invalid URL format",
    ),
    (
        "model-deprecated",
        [("schema", SCHEMA_TEXT, None), ("model", "extract-20251024", None), ("markdown", DOC, "a.md")],
        400,
        "error",
        "Invalid extract version 'extract-20251024'",
    ),
    (
        "model-unknown",
        [("schema", SCHEMA_TEXT, None), ("model", "gpt-9", None), ("markdown", DOC, "a.md")],
        400,
        "error",
        "Invalid extract version 'gpt-9'",
    ),
]


@pytest.mark.parametrize(
    ("fields", "status", "key", "message"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
async def test_documented_validation_errors(
    http: aiohttp.ClientSession,
    fields: list[tuple[str, str | bytes, str | None]],
    status: int,
    key: str,
    message: str,
) -> None:
    # A quota of one: a rejected create must not consume it (checked by the create after).
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), quota=((1, 60.0),))) as sim:
        answer, body, _ = await create(http, sim, _form_fields(*fields))
        assert answer == status, body
        if key == "detail":
            assert set(body) == {"detail"}
            item = body["detail"][0]
            assert set(item) == {"loc", "msg", "type"}
            assert item["loc"][0] == "body"
            assert item["msg"] == message
        else:
            assert set(body) == {"error"}
            assert body["error"].startswith(message)
        assert sim.stats().jobs_total == 0
        await create_id(http, sim)  # the quota is untouched


async def test_missing_schema_detail_is_fastapi_shaped(http: aiohttp.ClientSession, sim: Simulator) -> None:
    _, body, _ = await create(http, sim, _form_fields(("markdown", DOC, "a.md"), ("strict", "nope", None)))
    assert body == {
        "detail": [
            {"loc": ["body", "schema"], "msg": "Field required", "type": "missing"},
            {
                "loc": ["body", "strict"],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "type": "bool_parsing",
            },
        ]
    }


async def test_supported_models_and_urlencoded_error_paths(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    for model in ("extract-latest", "extract-20260314", ""):
        job_id = await create_id(http, sim, make_form(model=model) if model else make_form())
        _, job = await get_job(http, sim, job_id)
        assert job["version"] == "extract-20260314"
    # A urlencoded form can only carry markdown as a plain field: no filename.
    status, body, _ = await create(http, sim, {"schema": SCHEMA_TEXT, "markdown": "Name: Ada"})
    assert (status, body["detail"][0]["msg"]) == (422, "Invalid file provided")
    status, body, _ = await create(http, sim, {"markdown_url": "http://127.0.0.1:9/a.md"})
    assert (status, body["detail"][0]["type"]) == (422, "missing")


async def test_credits_exhausted_is_402(http: aiohttp.ClientSession, sim: Simulator) -> None:
    sim.set_credits_exhausted(True)
    status, body, _ = await create(http, sim)
    assert status == 402
    assert set(body) == {"error"}
    sim.set_credits_exhausted(False)
    await create_id(http, sim)
    assert sim.stats().requests[("create", 402)] == 1


async def test_bodies_that_are_not_forms(http: aiohttp.ClientSession, sim: Simulator) -> None:
    headers = {**auth(sim.api_key), "Content-Type": "multipart/form-data; boundary=xyz"}
    async with http.post(sim.base_url + JOBS, data=b"--xyz\r\nbroken", headers=headers) as response:
        assert response.status == 400
        assert await response.json() == {"error": "There was an error parsing the body"}
    async with http.post(
        sim.base_url + JOBS, json={"schema": SCHEMA_TEXT}, headers=auth(sim.api_key)
    ) as response:
        assert response.status == 422  # JSON is not a form: the schema field is missing
        assert (await response.json())["detail"][0]["type"] == "missing"


def test_form_parser() -> None:
    assert parse_header_params('form-data; name="a;b"; filename="x\\"y.md"') == (
        "form-data",
        {"name": "a;b", "filename": 'x"y.md'},
    )
    assert parse_header_params("form-data; name=doc; filename=a.md; filename*=UTF-8''na%C3%AFve.md") == (
        "form-data",
        {"name": "doc", "filename": "naïve.md"},
    )
    body = (
        b"preamble\r\n--B\r\n"
        b'Content-Disposition: form-data; name="schema"\r\n\r\n{}\r\n'
        b"--B\r\n"
        b'Content-Disposition: form-data; name="markdown"; filename="a.md"\r\n'
        b"Content-Type: text/markdown\r\n\r\nline\r\n--A-line\r\n"
        b"--B--\r\nepilogue"
    )
    assert parse_form('multipart/form-data; boundary="B"', body) == [
        FormPart("schema", None, None, b"{}"),
        FormPart("markdown", "a.md", "text/markdown", b"line\r\n--A-line"),
    ]
    assert parse_form("application/x-www-form-urlencoded", b"a=1&b=") == [
        FormPart("a", None, None, b"1"),
        FormPart("b", None, None, b""),
    ]
    assert parse_form("application/json", b"{}") == []
    for broken in (b"no boundary here", b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated"):
        with pytest.raises(FormError):
            parse_form("multipart/form-data; boundary=B", broken)


@pytest.fixture
async def doc_server() -> AsyncIterator[str]:
    """A second loopback server that hosts Markdown for ``markdown_url``."""

    async def invoice(_request: web.Request) -> web.Response:
        return web.Response(body=INVOICE, content_type="text/markdown")

    app = web.Application()
    app.router.add_get("/files/invoice.md", invoice)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_markdown_url_is_downloaded(
    http: aiohttp.ClientSession, sim: Simulator, doc_server: str
) -> None:
    form = make_form(schema=INVOICE_SCHEMA, markdown=None, markdown_url=f"{doc_server}/files/invoice.md")
    job_id = await create_id(http, sim, form)
    status, job = await get_job(http, sim, job_id)
    assert status == 200
    assert job["data"]["extraction"]["invoice_number"] == "INV-2024-001"
    assert job["metadata"]["filename"] == "invoice.md"
    assert sim.stats().jobs_by_content == {hashlib.sha256(INVOICE).hexdigest(): 1}

    status, body, _ = await create(
        http, sim, make_form(markdown=None, markdown_url=f"{doc_server}/files/missing.md")
    )
    assert (status, body) == (400, {"error": "Failed to download document from URL"})
    assert sim.stats().jobs_total == 1


# ---------------------------------------------------------------------------------------------
# lifecycle and extraction


async def test_create_answers_202_with_a_uuid(http: aiohttp.ClientSession, sim: Simulator) -> None:
    status, body, headers = await create(http, sim)
    assert status == 202
    assert set(body) == {"job_id"}
    assert uuid.UUID(body["job_id"]).version == 4
    assert headers["Content-Type"].startswith("application/json")


async def test_pending_then_processing_then_terminal(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(30.0, 30.0), processing_fraction=1.0)) as sim:
        job_id = await create_id(http, sim)
        status, job = await get_job(http, sim, job_id)
        assert status == 200
        assert job["status"] == "pending"
        assert job["progress"] == 0.0
        assert job["created_at"] == job["received_at"]
        assert job["data"] is None
        assert job["output_url"] is None
        assert job["metadata"] is None
        assert job["org_id"] == "org-simulator"
        completed_at = sim.job_completed_at(job_id)
        assert completed_at is not None
        assert sim.job_completed_at("nope") is None
        # A latency marker overrides the drawn latency.
        quick = await create_id(http, sim, markdown_doc("Name: Ada\n<!-- ade-sim: latency 0 -->\n"))
        status, job = await get_job(http, sim, quick)
        assert (status, job["status"], job["progress"]) == (200, "completed", 1.0)
        assert sim.stats().jobs_by_status == {"pending": 1, "completed": 1}

    async with Simulator(SimulatorConfig(latency=(30.0, 30.0), processing_fraction=0.0)) as sim:
        job_id = await create_id(http, sim)
        _, job = await get_job(http, sim, job_id)
        assert (job["status"], job["progress"]) == ("processing", 0.0)
        strange = await create_id(
            http, sim, markdown_doc("<!-- ade-sim: status queued_for_gpu -->\nName: Ada\n")
        )
        _, job = await get_job(http, sim, strange)
        assert job["status"] == "queued_for_gpu"  # an unknown status, reported while it runs


async def test_on_a_fake_clock_jobs_move_only_when_it_does(http: aiohttp.ClientSession) -> None:
    clock = FakeClock(start=100.0)
    config = SimulatorConfig(latency=(10.0, 10.0), processing_fraction=0.5)
    async with Simulator(config, clock=clock.now) as sim:
        job_id = await create_id(http, sim)
        assert sim.job_completed_at(job_id) == 110.0
        assert (await get_job(http, sim, job_id))[1]["status"] == "pending"
        await clock.advance(5.0)
        assert (await get_job(http, sim, job_id))[1]["status"] == "processing"
        await clock.advance(4.0)
        assert (await get_job(http, sim, job_id))[1]["status"] == "processing"
        await clock.advance(1.0)
        assert (await get_job(http, sim, job_id))[1]["status"] == "completed"
        async with http.get(sim.base_url + "/_simulator/jobs") as response:
            (entry,) = await response.json()
        assert (entry["created"], entry["done_at"]) == (100.0, 110.0)
        assert sim.stats().jobs_by_status == {"completed": 1}


async def test_exact_deterministic_extraction(http: aiohttp.ClientSession, sim: Simulator) -> None:
    form = make_form(schema=INVOICE_SCHEMA, markdown=INVOICE, filename="invoice.md")
    job_id = await create_id(http, sim, form)
    status, job = await get_job(http, sim, job_id)
    assert status == 200
    sha = hashlib.sha256(INVOICE).hexdigest()

    def ref(line: int) -> list[str]:
        return [str(uuid.uuid5(REFERENCE_NAMESPACE, f"{sha}:{line}"))]

    def leaf(value: Any, line: int | None) -> dict[str, Any]:
        return {"value": value, "references": ref(line) if line is not None else []}

    metadata = {
        "filename": "invoice.md",
        "org_id": "org-simulator",
        "duration_ms": 0,
        "credit_usage": 2.2,  # 1.0 + 0.1 x 12 leaves
        "job_id": job_id,
        "version": "extract-20260314",
        "schema_violation_error": None,
        "fallback_model_version": None,
        "warnings": [],
    }
    assert job == {
        "job_id": job_id,
        "status": "completed",
        "received_at": job["received_at"],
        "progress": 1.0,
        "created_at": job["received_at"],
        "org_id": "org-simulator",
        "version": "extract-20260314",
        "data": {
            "extraction": {
                "invoice_number": "INV-2024-001",
                "date": "2024-03-15",
                "total": 1234.5,
                "line_count": 3,
                "paid": True,
                "tags": ["urgent", "net-30", "export"],
                "status": "open",
                "vendor": {"vendor_name": "ACME Corp"},
                "customer": {"customer_city": "Springfield", "customer_zip": None},
                "po_number": None,
                "notes": [],
            },
            "extraction_metadata": {
                "invoice_number": leaf("INV-2024-001", 4),
                "date": leaf("2024-03-15", 5),
                "total": leaf(1234.5, 10),
                "line_count": leaf(3, 11),
                "paid": leaf(True, 13),
                "tags": leaf(["urgent", "net-30", "export"], 14),
                "status": leaf("open", 16),
                "vendor": {"vendor_name": leaf("ACME Corp", 6)},
                "customer": {"customer_city": leaf("Springfield", 15), "customer_zip": leaf(None, None)},
                "po_number": leaf(None, None),
                "notes": leaf([], None),
            },
            "metadata": metadata,
        },
        "output_url": None,
        "metadata": metadata,
        "failure_reason": None,
    }


async def test_warnings_answer_206(http: aiohttp.ClientSession, sim: Simulator) -> None:
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "maxLength": 3},  # pruned (strict=false), then violated
            "count": {"type": "integer"},
            "state": {"type": "string", "enum": ["open", "closed"]},
            "currency": {"type": "string", "default": "USD"},  # non-null default: a 206
            "tags": {"type": "array", "items": {"type": "integer"}},
        },
    }
    doc = b"Code: ABCDEF\nCount: many\nState: pending\nTags: 1, x, 3\n"
    job_id = await create_id(http, sim, make_form(schema=schema, markdown=doc, strict="false"))
    status, job = await get_job(http, sim, job_id)
    assert status == 206
    assert job["status"] == "completed"
    data = job["data"]
    assert data["extraction"] == {
        "code": "ABCDEF",
        "count": None,
        "state": "pending",
        "currency": None,
        "tags": [1, None, 3],
    }
    warnings = data["metadata"]["warnings"]
    assert [w["code"] for w in warnings] == ["nonconformant_schema"] + ["nonconformant_output"] * 4
    assert "'currency'" in warnings[0]["msg"]
    for warning, path in zip(warnings[1:], ("code", "count", "state", "tags[1]"), strict=True):
        assert f"'{path}'" in warning["msg"]
    violation = data["metadata"]["schema_violation_error"]
    assert violation.startswith("Extracted data does not completely conform to the requested schema: ")
    assert job["metadata"] == data["metadata"]

    # Pruned keywords alone are no warning: the output conforms, 200.
    pruned_only = {"type": "object", "properties": {"code": {"type": "string", "maxLength": 3}}}
    ok = await create_id(http, sim, make_form(schema=pruned_only, markdown=b"Code: AB\n"))
    status, job = await get_job(http, sim, ok)
    assert status == 200
    assert job["data"]["metadata"]["warnings"] == []


async def test_failed_and_cancelled_jobs(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), failure_rate=1.0)) as sim:
        job_id = await create_id(http, sim)
        status, job = await get_job(http, sim, job_id)
        assert (status, job["status"], job["progress"]) == (200, "failed", 0.0)
        assert job["failure_reason"]
        assert job["data"] is None
        assert job["metadata"] is None

    async with Simulator(INSTANT) as sim:
        failed = await create_id(
            http, sim, markdown_doc("<!-- ade-sim: fail Document too long -->\nName: Ada\n")
        )
        cancelled = await create_id(http, sim, markdown_doc("Name: Ada\n<!-- ade-sim: cancel -->\n"))
        status, job = await get_job(http, sim, failed)
        assert (status, job["status"], job["failure_reason"]) == (200, "failed", "Document too long")
        status, job = await get_job(http, sim, cancelled)
        assert (status, job["status"], job["failure_reason"]) == (200, "cancelled", None)
        assert sim.stats().jobs_by_status == {"failed": 1, "cancelled": 1}


async def test_unknown_job_and_another_keys_job_are_404(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(api_keys=("key-a", "key-b"), latency=(0.0, 0.0))) as sim:
        job_id = await create_id(http, sim, key="key-a")
        assert await get_job(http, sim, "00000000-0000-4000-8000-000000000000") == (
            404,
            {"message": "Job not found"},
        )
        assert await get_job(http, sim, job_id, key="key-b") == (404, {"message": "Job not found"})
        status, _ = await get_job(http, sim, job_id, key="key-a")
        assert status == 200


# ---------------------------------------------------------------------------------------------
# output_url


async def test_large_results_go_through_output_url(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(latency=(0.0, 0.0), result_url_threshold=50)
    async with Simulator(config) as sim:
        job_id = await create_id(
            http, sim, make_form(schema=INVOICE_SCHEMA, markdown=INVOICE, filename="invoice.md")
        )
        status, job = await get_job(http, sim, job_id)
        assert status == 200
        assert job["data"] is None
        url = job["output_url"]
        assert url.startswith(sim.base_url + "/")
        assert job["metadata"]["filename"] == "invoice.md"

        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            result = await response.json()
        assert result["extraction"]["invoice_number"] == "INV-2024-001"
        assert set(result) == {"extraction", "extraction_metadata", "metadata"}

        # The API key must never go to output_url: refused and counted.
        async with http.get(url, headers=auth(sim.api_key)) as response:
            assert response.status == 400
        assert sim.stats().result_url_auth_headers == 1

        sim.expire_result_urls()
        async with http.get(url) as response:
            assert response.status == 403
            text = await response.text()
        assert "<Code>AccessDenied</Code>" in text
        assert "Request has expired" in text

        _, again = await get_job(http, sim, job_id)
        fresh = again["output_url"]
        assert fresh != url  # a new URL per get
        async with http.get(fresh) as response:
            assert response.status == 200
        async with http.get(sim.base_url + "/_simulator/outputs/not-a-token") as response:
            assert response.status == 403
        assert sim.stats().downloads == 2


async def test_output_save_url_and_ttl(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    config = SimulatorConfig(latency=(0.0, 0.0), result_url_ttl=0.05)
    async with Simulator(config, clock=clock.now) as sim:
        form = make_form(output_save_url="https://bucket.example/results/")
        job_id = await create_id(http, sim, form)
        _, job = await get_job(http, sim, job_id)
        assert job["data"] is None
        assert job["output_url"]
        await clock.advance(0.04)  # within the TTL
        async with http.get(job["output_url"]) as response:
            assert response.status == 200
        await clock.advance(0.02)  # past the TTL
        async with http.get(job["output_url"]) as response:
            assert response.status == 403


# ---------------------------------------------------------------------------------------------
# list


async def test_list_pages_newest_first_with_status_filter(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(api_keys=("key-a", "key-b"), latency=(0.0, 0.0))) as sim:
        ids = [await create_id(http, sim, markdown_doc(f"Name: n{i}\n"), key="key-a") for i in range(5)]
        failed = await create_id(http, sim, markdown_doc("<!-- ade-sim: fail boom -->"), key="key-a")
        await create_id(http, sim, key="key-b")

        status, page = await list_jobs(http, sim, key="key-a")
        assert status == 200
        assert [j["job_id"] for j in page["jobs"]] == [failed, *reversed(ids)]
        assert page["has_more"] is False
        assert page["org_id"] == "org-simulator"
        assert set(page["jobs"][0]) == {
            "job_id",
            "status",
            "received_at",
            "progress",
            "created_at",
            "failure_reason",
        }

        seen: list[str] = []
        for number, (size, more) in enumerate([(2, True), (2, True), (2, False)]):
            _, page = await list_jobs(http, sim, key="key-a", page=str(number), pageSize="2")
            assert len(page["jobs"]) == size
            assert page["has_more"] is more
            seen.extend(j["job_id"] for j in page["jobs"])
        assert seen == [failed, *reversed(ids)]

        _, page = await list_jobs(http, sim, key="key-a", status="failed")
        assert [(j["job_id"], j["failure_reason"], j["progress"]) for j in page["jobs"]] == [
            (failed, "boom", 0.0)
        ]
        _, page = await list_jobs(http, sim, key="key-a", status="completed", pageSize="3", page="1")
        assert [j["job_id"] for j in page["jobs"]] == [ids[1], ids[0]]
        assert all(j["progress"] == 1.0 for j in page["jobs"])
        _, page = await list_jobs(http, sim, key="key-b")
        assert len(page["jobs"]) == 1
        assert sim.stats().lists == 7


@pytest.mark.parametrize(
    ("query", "loc", "kind", "message"),
    [
        ({"pageSize": "101"}, "pageSize", "less_than_equal", "Input should be less than or equal to 100"),
        ({"pageSize": "0"}, "pageSize", "greater_than_equal", "Input should be greater than or equal to 1"),
        ({"page": "-1"}, "page", "greater_than_equal", "Input should be greater than or equal to 0"),
        (
            {"page": "one"},
            "page",
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"status": "done"},
            "status",
            "enum",
            "Input should be 'cancelled', 'completed', 'failed', 'pending' or 'processing'",
        ),
    ],
)
async def test_list_query_validation(
    http: aiohttp.ClientSession, sim: Simulator, query: dict[str, str], loc: str, kind: str, message: str
) -> None:
    status, body = await list_jobs(http, sim, **query)
    assert status == 422
    assert body == {"detail": [{"loc": ["query", loc], "msg": message, "type": kind}]}


async def test_list_lags_behind_writes(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), list_lag=30.0)) as sim:
        job_id = await create_id(http, sim)
        _, page = await list_jobs(http, sim)
        assert page["jobs"] == []  # not indexed yet
        status, _ = await get_job(http, sim, job_id)
        assert status == 200  # while a get sees it at once


def test_list_lag_reports_the_status_as_of_the_lag() -> None:
    state = SimulatorState(SimulatorConfig(latency=(10.0, 10.0), processing_fraction=0.5, list_lag=2.0))
    schema = prepare_schema(json.dumps(SIMPLE_SCHEMA), False)

    def new(at: float) -> str:
        return state.create_job(
            api_key="sim-key",
            document="Name: Ada\n",
            content_sha256="0" * 64,
            filename="a.md",
            model="extract-20260314",
            schema=schema,
            output_save_url=False,
            now=at,
            wall=1e9 + at,
        ).job_id

    first, second = new(100.0), new(101.0)

    def listed(now: float) -> list[tuple[str, str]]:
        jobs, _ = state.list_jobs("sim-key", page=0, page_size=10, status=None, now=now)
        return [(job.job_id, status) for job, status in jobs]

    assert listed(101.9) == []
    assert listed(102.0) == [(first, "pending")]
    assert listed(107.9) == [(second, "pending"), (first, "processing")]  # as of 105.9
    assert listed(108.0) == [(second, "processing"), (first, "processing")]
    assert listed(112.5) == [(second, "processing"), (first, "completed")]
    assert listed(113.0) == [(second, "completed"), (first, "completed")]
    jobs, more = state.list_jobs("sim-key", page=0, page_size=1, status="completed", now=113.0)
    assert ([job.job_id for job, _ in jobs], more) == ([second], True)


# ---------------------------------------------------------------------------------------------
# quota


@pytest.mark.parametrize("form", [None, "seconds", "ms", "date"])
async def test_quota_answers_429_with_the_configured_hint(http: aiohttp.ClientSession, form: Any) -> None:
    config = SimulatorConfig(latency=(0.0, 0.0), quota=((2, 30.0),), retry_after=form)
    async with Simulator(config) as sim:
        await create_id(http, sim)
        await create_id(http, sim)
        status, body, headers = await create(http, sim)
        assert (status, body) == (429, {"error": "Rate limit exceeded"})
        lowered = {name.lower(): value for name, value in headers.items()}
        if form is None:
            assert "retry-after" not in lowered
            assert "retry-after-ms" not in lowered
        elif form == "seconds":
            assert 1 <= int(lowered["retry-after"]) <= 30
        elif form == "ms":
            assert 0 < int(lowered["retry-after-ms"]) <= 30_000
        else:
            when = email.utils.parsedate_to_datetime(lowered["retry-after"])
            assert when.tzinfo is not None
        stats = sim.stats()
        assert (stats.rate_limited, stats.creates_accepted, stats.jobs_total) == (1, 2, 2)
        assert sim.max_creates_in_window(30.0) == 2


async def test_quota_is_per_organisation_and_slides(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    config = SimulatorConfig(api_keys=("key-a", "key-b"), latency=(0.0, 0.0), quota=((1, 0.2), (100, 60.0)))
    async with Simulator(config, clock=clock.now) as sim:
        await create_id(http, sim, key="key-a")
        status, _, headers = await create(http, sim, key="key-b")  # the quota is shared
        assert status == 429
        assert headers["Retry-After"] == "1"  # 0.2 s, rounded up to whole seconds
        await clock.advance(0.15)
        status, _, _ = await create(http, sim, key="key-b")
        assert status == 429  # still inside the window
        await clock.advance(0.1)  # the first create has left the window
        await create_id(http, sim, key="key-b")
        assert sim.stats().rate_limited == 2
        assert sim.max_creates_in_window(0.2) == 1
        assert sim.max_creates_in_window(60.0) == 2


def test_quota_windows_and_max_creates_in_window() -> None:
    state = SimulatorState(SimulatorConfig(quota=((2, 10.0),)))
    schema = prepare_schema(json.dumps(SIMPLE_SCHEMA), False)
    for at in (0.0, 1.0):
        assert state.quota_wait(at) is None
        state.create_job(
            api_key="sim-key",
            document="",
            content_sha256="0" * 64,
            filename="a.md",
            model="m",
            schema=schema,
            output_save_url=False,
            now=at,
            wall=at,
        )
    assert state.quota_wait(2.0) == pytest.approx(8.0)  # until the create at 0.0 leaves
    assert state.quota_wait(9.5) == pytest.approx(0.5)
    assert state.quota_wait(10.0) is None  # [t, t + period): the create at 0.0 has left

    history = SimulatorState(SimulatorConfig())
    for at in (0.0, 0.5, 0.99, 1.0, 1.5):
        history.create_job(
            api_key="sim-key",
            document="",
            content_sha256="0" * 64,
            filename="a.md",
            model="m",
            schema=schema,
            output_save_url=False,
            now=at,
            wall=at,
        )
    assert history.max_creates_in_window(1.0) == 3  # [0, 1) and [0.5, 1.5) hold three
    assert history.max_creates_in_window(0.5) == 2
    assert history.max_creates_in_window(2.0) == 5


# ---------------------------------------------------------------------------------------------
# faults


@pytest.mark.parametrize("code", ["500", "502", "503"])
async def test_injected_server_errors(http: aiohttp.ClientSession, sim: Simulator, code: str) -> None:
    sim.inject("create", code)
    status, body, _ = await create(http, sim)
    assert (status, set(body)) == (int(code), {"error"})
    assert sim.stats().jobs_total == 0
    job_id = await create_id(http, sim)
    sim.inject("get", code, count=2)
    for _ in range(2):
        status, body = await get_job(http, sim, job_id)
        assert (status, set(body)) == (int(code), {"message"})
    assert (await get_job(http, sim, job_id))[0] == 200
    assert sim.stats().faults == {code: 3}


async def test_injected_429_ignores_the_quota(http: aiohttp.ClientSession, sim: Simulator) -> None:
    sim.inject("list", "429")
    async with http.get(sim.base_url + JOBS, headers=auth(sim.api_key)) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert await response.json() == {"message": "Rate limit exceeded"}
    assert sim.stats().rate_limited == 1


async def test_drop_closes_the_connection_before_acting(
    http: aiohttp.ClientSession, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.inject("create", "drop")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await create(http, sim)
    stats = sim.stats()
    assert (stats.jobs_total, stats.creates_accepted) == (0, 0)
    assert stats.requests == {("create", 0): 1}

    # aiohttp's client retries an idempotent request once after a disconnect: drop twice.
    job_id = await create_id(http, sim)
    sim.inject("get", "drop", count=2)
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await get_job(http, sim, job_id)
    assert (await get_job(http, sim, job_id))[0] == 200
    assert sim.stats().requests[("get", 0)] == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "no noisy server logs"


async def test_lost_response_creates_the_job(
    http: aiohttp.ClientSession, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim.inject("create", "lost_response")
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await create(http, sim)
    stats = sim.stats()
    assert (stats.jobs_total, stats.creates_accepted) == (1, 1)
    assert stats.requests == {("create", 0): 1}
    _, page = await list_jobs(http, sim)
    assert len(page["jobs"]) == 1  # the job exists although its creator never heard of it
    await create_id(http, sim)
    assert sim.stats().duplicate_jobs == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(ValueError, match="create endpoint only"):
        sim.inject("get", "lost_response")


async def test_malformed_and_slow(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), faults=Faults(slow_seconds=0.01))) as sim:
        sim.inject("create", "malformed")
        async with http.post(sim.base_url + JOBS, data=make_form(), headers=auth(sim.api_key)) as response:
            assert response.status == 202
            raw = await response.read()
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        assert sim.stats().jobs_total == 1  # the work was done; only the answer is broken

        job_id = await create_id(http, sim)
        sim.inject("get", "malformed")
        async with http.get(f"{sim.base_url}{JOBS}/{job_id}", headers=auth(sim.api_key)) as response:
            assert response.status == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(await response.read())

        sim.inject("get", "slow")
        assert (await get_job(http, sim, job_id))[0] == 200  # late, but normal
        assert sim.stats().faults == {"malformed": 2, "slow": 1}


async def test_random_faults(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(
        latency=(0.0, 0.0), faults=Faults(error_rate={"list": 1.0}, drop_rate={"create": 1.0})
    )
    async with Simulator(config) as sim:
        for _ in range(5):
            status, _ = await list_jobs(http, sim)
            assert status in (500, 502, 503)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await create(http, sim)
        sim.inject("create", "503")  # injected faults come first
        assert (await create(http, sim))[0] == 503
        stats = sim.stats()
        assert sum(n for kind, n in stats.faults.items() if kind in ("500", "502", "503")) == 6
        assert stats.faults["drop"] == 1


def test_inject_validates() -> None:
    state = SimulatorState(SimulatorConfig())
    with pytest.raises(ValueError, match="endpoint"):
        state.inject("delete", "500")
    with pytest.raises(ValueError, match="fault"):
        state.inject("get", "418")
    with pytest.raises(ValueError, match="count"):
        state.inject("get", "500", count=0)
    assert set(ENDPOINTS) == {"create", "get", "list", "download"}
    assert "lost_response" in FAULT_KINDS


# ---------------------------------------------------------------------------------------------
# counters and recording


async def test_counters(http: aiohttp.ClientSession, sim: Simulator) -> None:
    one = await create_id(http, sim, markdown_doc("Name: one\n"))
    await create_id(http, sim, markdown_doc("Name: one\n"))
    await create_id(http, sim, markdown_doc("Name: one\n"))
    await create_id(http, sim, markdown_doc("Name: two\n"))
    await get_job(http, sim, one)
    await get_job(http, sim, "missing")
    await list_jobs(http, sim)
    stats = sim.stats()
    assert stats.jobs_by_content == {
        hashlib.sha256(b"Name: one\n").hexdigest(): 3,
        hashlib.sha256(b"Name: two\n").hexdigest(): 1,
    }
    assert stats.duplicate_jobs == 2
    assert (stats.jobs_total, stats.creates_accepted) == (4, 4)
    assert stats.jobs_by_status == {"completed": 4}
    assert (stats.gets, stats.lists) == (2, 1)
    assert stats.requests == {("create", 202): 4, ("get", 200): 1, ("get", 404): 1, ("list", 200): 1}
    assert stats.count("get") == 2
    assert stats.count("get", 404) == 1
    with pytest.raises(AttributeError):
        stats.gets = 0  # type: ignore[misc]


async def test_record_keeps_every_exchange(http: aiohttp.ClientSession) -> None:
    async with Simulator(SimulatorConfig(latency=(0.0, 0.0), record=True)) as sim:
        job_id = await create_id(http, sim, make_form(model="extract-latest"))
        await get_job(http, sim, job_id)
        await list_jobs(http, sim, pageSize="2")
        sim.inject("get", "drop", count=2)
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await get_job(http, sim, job_id)
        exchanges = sim.exchanges
    assert [(e.endpoint, e.method, e.status) for e in exchanges] == [
        ("create", "POST", 202),
        ("get", "GET", 200),
        ("list", "GET", 200),
        ("get", "GET", 0),
        ("get", "GET", 0),
    ]
    created = exchanges[0]
    assert created.path == JOBS
    assert json.loads(created.response_body) == {"job_id": job_id}
    assert created.response_headers["Content-Type"] == "application/json"
    fields = {f.name: f for f in created.form}
    assert fields["schema"].is_file is False
    assert fields["schema"].value == SCHEMA_TEXT
    markdown = fields["markdown"]
    assert (markdown.is_file, markdown.filename, markdown.content_type, markdown.value, markdown.size) == (
        True,
        "doc.md",
        "text/markdown",
        None,
        len(b"Name: Ada\n"),
    )
    assert fields["model"].value == "extract-latest"
    assert exchanges[1].path == f"{JOBS}/{job_id}"
    assert exchanges[2].query == {"pageSize": "2"}
    assert exchanges[3].response_body == b""
    assert exchanges[3].response_headers == {}


async def test_answers_validate_against_the_vendor_spec(http: aiohttp.ClientSession) -> None:
    """Every JSON answer the spec describes (202, 200, 206, 422) validates against its schema."""
    jsonschema = pytest.importorskip("jsonschema")
    spec_file = anyio.Path(SPEC_PATH)
    if not await spec_file.is_file():
        pytest.skip(f"the vendor's OpenAPI spec is not at {SPEC_PATH} (set ADE_OPENAPI_SPEC)")
    spec: dict[str, Any] = json.loads(await spec_file.read_text(encoding="utf-8"))
    config = SimulatorConfig(latency=(0.0, 0.0), record=True, result_url_threshold=400)
    async with Simulator(config) as sim:
        small = await create_id(http, sim)
        large = await create_id(http, sim, make_form(schema=INVOICE_SCHEMA, markdown=INVOICE))
        warned = await create_id(
            http,
            sim,
            make_form(
                schema={"type": "object", "properties": {"n": {"type": "integer"}}}, markdown=b"N: x\n"
            ),
        )
        failed = await create_id(http, sim, markdown_doc("<!-- ade-sim: fail nope -->"))
        pending = await create_id(http, sim, markdown_doc("<!-- ade-sim: latency 60 -->"))
        for job_id in (small, large, warned, failed, pending):
            await get_job(http, sim, job_id)
        await list_jobs(http, sim, pageSize="3")
        await list_jobs(http, sim, pageSize="0")
        await create(http, sim, _form_fields(("markdown", DOC, "a.md")))
        exchanges = sim.exchanges
    operations = {"create": (JOBS, "post"), "get": (JOBS + "/{job_id}", "get"), "list": (JOBS, "get")}
    checked: set[tuple[str, int]] = set()
    for exchange in exchanges:
        path, method = operations[exchange.endpoint]
        response = spec["paths"][path][method]["responses"].get(str(exchange.status), {})
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            continue
        validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
        errors = [
            f"{list(e.path)}: {e.message}" for e in validator.iter_errors(json.loads(exchange.response_body))
        ]
        assert not errors, (exchange.endpoint, exchange.status, errors)
        checked.add((exchange.endpoint, exchange.status))
    assert checked == {
        ("create", 202),
        ("create", 422),
        ("get", 200),
        ("get", 206),
        ("list", 200),
        ("list", 422),
    }


# ---------------------------------------------------------------------------------------------
# mounting, configuration, the command line


async def test_build_app_serves_without_the_simulator_class(http: aiohttp.ClientSession) -> None:
    app, state = build_app(INSTANT)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        async with http.get(f"http://{host}:{port}{JOBS}", headers=auth("sim-key")) as response:
            assert response.status == 200
        assert state.lists == 1
    finally:
        await runner.cleanup()


async def test_simulator_lifecycle() -> None:
    simulator = Simulator(INSTANT)
    with pytest.raises(RuntimeError):
        _ = simulator.base_url
    await simulator.start()
    try:
        assert simulator.base_url == f"http://127.0.0.1:{simulator.port}"
        assert not simulator.base_url.endswith("/")
        assert simulator.api_key == "sim-key"
        with pytest.raises(RuntimeError):
            await simulator.start()
    finally:
        await simulator.close()
        await simulator.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimulatorConfig(api_keys=()),
        lambda: SimulatorConfig(api_keys="sim-key"),  # type: ignore[arg-type]
        lambda: SimulatorConfig(latency=(0.2, 0.1)),
        lambda: SimulatorConfig(latency=(-1.0, 0.1)),
        lambda: SimulatorConfig(processing_fraction=1.5),
        lambda: SimulatorConfig(failure_rate=-0.1),
        lambda: SimulatorConfig(quota=((0, 1.0),)),
        lambda: SimulatorConfig(quota=((1, 0.0),)),
        lambda: SimulatorConfig(retry_after="minutes"),  # type: ignore[arg-type]
        lambda: SimulatorConfig(list_lag=-1.0),
        lambda: SimulatorConfig(result_url_threshold=-1),
        lambda: SimulatorConfig(result_url_ttl=0.0),
        lambda: Faults(error_rate={"get": 1.5}),
        lambda: Faults(error_rate={"upload": 0.1}),
        lambda: Faults(error_rate={"get": 0.6}, drop_rate={"get": 0.6}),
        lambda: Faults(slow_seconds=-1.0),
    ],
)
def test_config_rejects_bad_values(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make()


def test_config_is_frozen_and_copies_mappings() -> None:
    rates = {"get": 0.5}
    faults = Faults(error_rate=rates)
    rates["get"] = 1.0
    assert faults.error_rate["get"] == 0.5
    config = SimulatorConfig(quota=[(5, 1)])  # type: ignore[arg-type]
    assert config.quota == ((5, 1.0),)
    with pytest.raises(AttributeError):
        config.seed = 1  # type: ignore[misc]


def test_parsers() -> None:
    assert parse_rate("50/1s") == (50, 1.0)
    assert parse_rate("3000/1h") == (3000, 3600.0)
    assert parse_rate("10/20s") == (10, 20.0)
    assert parse_rate("100/m") == (100, 60.0)
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2") == 2.0
    assert parse_latency("0.05-0.2") == (0.05, 0.2)
    assert parse_latency("0") == (0.0, 0.0)
    for bad in ("50", "x/1s", "0/1s", "5/0s", "5/1y"):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_rate(bad)
    with pytest.raises(ValueError):  # noqa: PT011
        parse_latency("0.3-0.1")


async def test_standalone_command_line() -> None:
    command = [
        sys.executable,
        "-m",
        "ade_async.testing",
        "--port",
        "0",
        "--api-key",
        "key-one",
        "--api-key",
        "key-two",
        "--quota",
        "5/1s",
        "--latency",
        "0-0",
        "--retry-after",
        "ms",
    ]
    async with await anyio.open_process(command, cwd=PROJECT_ROOT) as process:
        assert process.stdout is not None
        try:
            line = b""
            with anyio.fail_after(30):
                while not line.endswith(b"\n"):
                    line += await process.stdout.receive()
            text = line.decode()
            assert "key-one" in text
            assert "key-two" in text
            base_url = next(word for word in text.split() if word.startswith("http://127.0.0.1:"))
            async with (
                aiohttp.ClientSession() as http,
                http.get(base_url + JOBS, headers=auth("key-two")) as response,
            ):
                assert response.status == 200
                assert (await response.json())["jobs"] == []
        finally:
            process.terminate()
        with anyio.fail_after(30):
            assert await process.wait() == 0


# ---------------------------------------------------------------------------------------------
# the extraction rule, without HTTP


def test_schema_preparation_rules() -> None:
    schema = prepare_schema(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "a": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "b": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
                    "c": {"$ref": "#/definitions/c", "title": "Sea"},
                    "d": {"properties": {"x": {"type": "number"}}},
                    "e": {"items": {"type": "boolean"}},
                },
                "definitions": {"c": {"type": "integer", "title": "Cee"}},
            }
        ),
        True,
    )
    kinds = {spec.name: spec.kind for spec in schema.fields}
    assert kinds == {"a": "integer", "b": "string", "c": "integer", "d": "object", "e": "array"}
    c = next(spec for spec in schema.fields if spec.name == "c")
    assert c.labels == ("c", "sea")  # the $ref's sibling title overrides the target's
    assert schema.leaf_count == 5
    with pytest.raises(SchemaError) as info:
        prepare_schema('{"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}', False)
    assert (info.value.status, info.value.message) == (
        422,
        "The provided JSON object was not a valid JSON schema",
    )
    # Property *names* that look like keywords are not keywords.
    prepare_schema('{"type": "object", "properties": {"pattern": {"type": "string"}}}', True)


def test_extraction_coercions() -> None:
    schema = prepare_schema(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "amount": {"type": "integer"},
                    "price": {"type": "number"},
                    "ok": {"type": "boolean"},
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
                    },
                    "empty": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"q": {"type": "string"}}},
                    },
                },
            }
        ),
        False,
    )
    document = "* **Amount**: 1,200.00\nPRICE: € 9.5\nok: N\nSKU: A-1\n"
    result = extract(document, schema, content_sha256="ab")
    assert result.extraction == {
        "amount": 1200,
        "price": 9.5,
        "ok": False,
        "items": [{"sku": "A-1"}],
        "empty": [],
    }
    assert result.extraction_metadata["items"] == [
        {"sku": {"value": "A-1", "references": [reference_id("ab", 4)]}}
    ]
    assert result.warnings == ()
    assert result.schema_violation_error is None


def test_markers() -> None:
    markers = parse_markers(
        "<!-- ade-sim: cancel -->\n<!-- ade-sim: fail later -->\n<!-- ade-sim: latency x -->\n"
        "<!-- ade-sim: latency 2.5 -->\n<!--ade-sim:status  warming up -->\n"
    )
    assert (markers.outcome, markers.failure_reason, markers.latency, markers.running_status) == (
        "cancelled",
        None,
        2.5,
        "warming up",
    )
    assert parse_markers("<!-- ade-sim: fail -->").failure_reason == "Simulated failure"


async def test_stats_endpoint_serves_the_counters() -> None:
    config = SimulatorConfig(latency=(0.01, 0.02), quota=((2, 60.0),))
    # On a clock that stands still, all three creates fall in the 1 s window however slow the loop.
    async with Simulator(config, clock=FakeClock().now) as sim, aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {sim.api_key}"}
        for _ in range(3):
            form = aiohttp.FormData()
            form.add_field("schema", '{"type": "object", "properties": {}}')
            form.add_field("markdown", b"a: b", filename="a.md")
            async with http.post(f"{sim.base_url}/v1/ade/extract/jobs", data=form, headers=headers) as r:
                await r.read()
        async with http.get(f"{sim.base_url}/_simulator/stats?windows=60,1") as r:
            assert r.status == 200
            body = await r.json()
        async with http.get(f"{sim.base_url}/_simulator/stats?windows=soon") as r:
            assert r.status == 422
    assert body["creates_accepted"] == 2
    assert body["rate_limited"] == 1
    assert body["max_creates_in_window"] == {"60.0": 2, "1.0": 2}
    assert ["create", 429, 1] in body["requests"]


async def test_jobs_timeline_endpoint() -> None:
    async with Simulator(SimulatorConfig(latency=(0.5, 0.5))) as sim, aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("schema", '{"type": "object", "properties": {}}')
        form.add_field("markdown", b"a: b", filename="a.md")
        headers = {"Authorization": f"Bearer {sim.api_key}"}
        async with http.post(f"{sim.base_url}/v1/ade/extract/jobs", data=form, headers=headers) as r:
            job_id = (await r.json())["job_id"]
        async with http.get(f"{sim.base_url}/_simulator/jobs") as r:
            timeline = await r.json()
    assert [entry["job_id"] for entry in timeline] == [job_id]
    assert timeline[0]["done_at"] == pytest.approx(timeline[0]["created"] + 0.5)
    assert timeline[0]["done_at"] == sim.job_completed_at(job_id)
    assert timeline[0]["outcome"] == "completed"
