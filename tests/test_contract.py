"""Contract: what the client sends and what the simulator answers validate against the vendor's spec.

The spec is the vendor's published OpenAPI document, kept beside the repository at
``../shared/reference/ade-v1-openapi.json`` (or named by ``ADE_OPENAPI_SPEC``). It is not copied
into this repository; where it is absent these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import ade_async
from ade_async.providers.landingai import LandingAIOptions
from ade_async.testing import Exchange, FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SPEC_PATH = Path(
    os.environ.get(
        "ADE_OPENAPI_SPEC", Path(__file__).resolve().parents[2] / "shared/reference/ade-v1-openapi.json"
    )
)
SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
DOC = "Invoice Number: A-1\nTotal: 12.50\n"

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so one recorded session can serve every test here."""
    return "asyncio"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"the vendor's OpenAPI spec is not at {SPEC_PATH} (set ADE_OPENAPI_SPEC to its path)")
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) whose refs resolve inside the spec."""
    root = {**schema, "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


def check(spec: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    errors = sorted(validator(spec, schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture(scope="module")
async def exchanges() -> AsyncIterator[list[Exchange]]:
    """Drive every endpoint and outcome through the real client, recording the wire traffic."""
    config = SimulatorConfig(latency=(0.01, 0.03), record=True, retry_after="ms")
    clock = FakeClock()  # the simulator's: jobs end when the fixture moves it
    async with (
        Simulator(config, clock=clock.now) as sim,
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
    ):
        ok = await client.create_job(DOC, schema=SCHEMA, options=LandingAIOptions(model="extract-latest"))
        partial = await client.create_job(DOC.replace("12.50", "twelve"), schema=SCHEMA)
        failed = await client.create_job(
            DOC + "<!-- ade-sim: fail too long -->", schema=SCHEMA, options=LandingAIOptions(strict=True)
        )
        big = await client.create_job(
            DOC * 1, schema=SCHEMA, options=LandingAIOptions(output_save_url="https://bucket.example/o.json")
        )
        pending = await client.create_job(DOC + "<!-- ade-sim: latency 60 -->", schema=SCHEMA)
        await client.get_job(pending)
        await clock.advance(1.0)  # past every short job's end, long before the 60 s one's
        for job_id in (ok, partial, failed, big):
            assert (await client.get_job(job_id)).is_terminal
        [job async for job in client.list_jobs(page_size=2)]
        [job async for job in client.list_jobs(status="completed")]
        for bad in ({"document": DOC, "schema": "[1]"}, {"schema": SCHEMA}, {"document": DOC, "schema": "{"}):
            with pytest.raises(ade_async.APIStatusError):
                await client.create_job(**bad)
        with pytest.raises(ade_async.NotFoundError):
            await client.get_job("missing")
        sim.inject("create", "429")
        await client.create_job(DOC, schema=SCHEMA)  # answered 429, waited out, sent again
        yield list(sim.exchanges)


async def test_every_outcome_was_exercised(exchanges: list[Exchange]) -> None:
    seen = {(e.endpoint, e.status) for e in exchanges}
    for expected in [
        ("create", 202),
        ("create", 422),
        ("create", 400),
        ("create", 429),
        ("get", 200),
        ("get", 206),
        ("get", 404),
        ("list", 200),
    ]:
        assert expected in seen, f"no {expected} exchange recorded"


async def test_requests_match_the_spec(spec: dict[str, Any], exchanges: list[Exchange]) -> None:
    form_schema = {"$ref": "#/components/schemas/AsyncExtractRequest"}
    list_params = {p["name"]: p for p in spec["paths"]["/v1/ade/extract/jobs"]["get"]["parameters"]}
    checked = 0
    for exchange in exchanges:
        if exchange.endpoint == "create" and exchange.status == 202:
            fields = {f.name: f for f in exchange.form}
            assert fields["markdown"].is_file, "markdown must be a file part"
            assert fields["markdown"].filename, "markdown must carry a filename"
            assert fields["markdown"].filename.endswith(".md")
            form: dict[str, Any] = {}
            for name, field in fields.items():
                if field.is_file:
                    form[name] = "<binary>"
                elif name == "strict":
                    assert field.value in ("true", "false")
                    form[name] = field.value == "true"
                else:
                    form[name] = field.value
            check(spec, form_schema, form)
            assert set(fields) <= set(spec["components"]["schemas"]["AsyncExtractRequest"]["properties"])
            checked += 1
        elif exchange.endpoint == "list":
            assert set(exchange.query) <= set(list_params), "only documented query parameters"
            for name, value in exchange.query.items():
                schema = list_params[name]["schema"]
                instance: Any = int(value) if name in ("page", "pageSize") else value
                check(spec, schema, instance)
            checked += 1
    assert checked >= 6


RESPONSE_SCHEMAS = {
    ("create", 202): ("post", "/v1/ade/extract/jobs"),
    ("create", 422): ("post", "/v1/ade/extract/jobs"),
    ("get", 200): ("get", "/v1/ade/extract/jobs/{job_id}"),
    ("get", 206): ("get", "/v1/ade/extract/jobs/{job_id}"),
    ("list", 200): ("get", "/v1/ade/extract/jobs"),
}


async def test_responses_match_the_spec(spec: dict[str, Any], exchanges: list[Exchange]) -> None:
    checked = 0
    for exchange in exchanges:
        where = RESPONSE_SCHEMAS.get((exchange.endpoint, exchange.status))
        if where is None:
            continue
        method, path = where
        declared = spec["paths"][path][method]["responses"][str(exchange.status)]
        schema = declared["content"]["application/json"]["schema"]
        check(spec, schema, json.loads(exchange.response_body))
        checked += 1
    assert checked >= 10


async def test_completed_jobs_carry_every_required_metadata_field(
    spec: dict[str, Any], exchanges: list[Exchange]
) -> None:
    required = set(spec["components"]["schemas"]["ExtractMetadata"]["required"])
    completed = [
        json.loads(e.response_body)
        for e in exchanges
        if e.endpoint == "get"
        and e.status in (200, 206)
        and json.loads(e.response_body)["status"] == "completed"
    ]
    assert completed
    for body in completed:
        assert required <= set(body["metadata"])
        if body["data"] is not None:
            assert required <= set(body["data"]["metadata"])
        else:
            assert body["output_url"]
