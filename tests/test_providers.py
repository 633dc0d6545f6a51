"""The provider seam: one engine, vendors as providers, LandingAI ADE the first and the default.

What is checked here: the public face picks and describes providers; capabilities are told, never
faked (ADE cannot cancel); results are typed by their schema; a transport can be injected; the
command records its provider and refuses another's journal; and the layout holds (nothing
vendor-specific outside the vendor's folders, no skin calls a private method of the client).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, assert_type

import msgspec
import pytest

import ade_async
from ade_async.providers import available, get_provider
from ade_async.providers.landingai import LandingAI, LandingAIOptions
from ade_async.testing import MockTransport, Simulator, SimulatorConfig, json_response

pytestmark = pytest.mark.anyio

PACKAGE = Path(ade_async.__file__).resolve().parent
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}
DOC = "# Invoice\nInvoice Number: INV-9\nTotal: 9.50\n"


class Invoice(msgspec.Struct):
    invoice_number: str
    total: float


@pytest.fixture
async def sim() -> Any:
    async with Simulator(SimulatorConfig(latency=(0.02, 0.05))) as simulator:
        yield simulator


def test_the_default_client_is_landingai_and_providers_are_listed() -> None:
    client = ade_async.Client(api_key="k")
    assert client.provider.info.name == "landingai"
    assert client.base_url == "https://api.va.landing.ai"
    assert "landingai" in repr(client)
    names = [info.name for info in available()]
    assert "landingai" in names
    assert isinstance(get_provider("landingai"), LandingAI)
    with pytest.raises(ValueError, match="available: landingai"):
        ade_async.Client(provider="nobody", api_key="k")
    with pytest.raises(TypeError, match="LandingAIOptions"):
        get_provider().check_options({"model": "x"})


def test_the_key_variable_and_hosts_come_from_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    info = get_provider().info
    with pytest.raises(ade_async.ConfigurationError, match=info.api_key_env[0]):
        ade_async.Client()
    monkeypatch.setenv(info.api_key_env[0], "from-env")
    assert ade_async.Client(environment="eu").base_url == info.hosts["eu"]


async def test_cancel_is_a_capability_never_faked(sim: Simulator) -> None:
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client:
        assert client.provider.info.can_cancel is False
        handle = await client.submit(DOC, schema=SCHEMA)
        sent = sim.stats().count("create") + sim.stats().count("get")
        with pytest.raises(ade_async.UnsupportedOperationError, match="cannot cancel") as info:
            await handle.cancel()
        assert (info.value.operation, info.value.provider) == ("cancel", "landingai")
        with pytest.raises(ade_async.UnsupportedOperationError):
            await client.cancel(handle.job_id)
        assert sim.stats().count("create") + sim.stats().count("get") <= sent + 1  # polls only
        result = await handle  # the job ran on, as the vendor runs it
        assert result.extraction["invoice_number"] == "INV-9"


async def test_results_are_typed_by_their_schema(sim: Simulator) -> None:
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client:
        typed = await client.extract(DOC, schema=Invoice)
        assert_type(typed, ade_async.ExtractResult[Invoice])
        assert typed.value == Invoice(invoice_number="INV-9", total=9.5)
        plain = await client.extract(DOC, schema=SCHEMA)
        assert_type(plain, ade_async.ExtractResult[dict[str, Any]])
        assert plain.value == {"invoice_number": "INV-9", "total": 9.5}
        assert plain.to(Invoice) == typed.value
        outcomes = [o async for o in client.extract_many([DOC], schema=Invoice)]
        assert isinstance(outcomes[0], ade_async.Succeeded)
        assert outcomes[0].result.value == Invoice(invoice_number="INV-9", total=9.5)
        # The provider's options, typed: strict refuses a keyword before anything is sent.
        strict_schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 2}}}
        with pytest.raises(ade_async.SchemaError, match="maxLength"):
            await client.submit(DOC, schema=strict_schema, options=LandingAIOptions(strict=True))


async def test_a_transport_can_be_injected() -> None:
    polls = 0

    def handler(request: ade_async.HttpRequest) -> ade_async.Response:
        nonlocal polls
        if request.method == "POST":
            fields = {part.name: part for part in request.form}
            assert msgspec.json.decode(fields["schema"].value)["title"] == "Invoice"  # from the type
            assert fields["markdown"].filename is not None
            return json_response(202, {"job_id": "job-1"})
        polls += 1
        done = polls > 1
        body: dict[str, Any] = {
            "job_id": "job-1",
            "status": "completed" if done else "processing",
            "received_at": 1,
            "progress": 1.0 if done else 0.0,
        }
        if done:
            body["data"] = {
                "extraction": {"invoice_number": "INV-1", "total": 1.5},
                "extraction_metadata": {},
                "metadata": {"filename": "d.md"},
            }
        return json_response(200, body)

    transport = MockTransport(handler)
    poll = ade_async.PollPolicy(first_delay=0.01, max_delay=0.02, coalesce=0.0)
    async with ade_async.Client(api_key="sk-mock-secret-123", transport=transport, poll=poll) as client:
        result = await client.extract(DOC, schema=Invoice)
    assert result.value == Invoice(invoice_number="INV-1", total=1.5)
    assert [r.method for r in transport.requests][:2] == ["POST", "GET"]
    assert all("sk-mock-secret-123" not in repr(r) for r in transport.requests)  # never in a request


def test_a_journal_of_another_provider_is_refused(tmp_path: Path) -> None:
    from ade_async.cli._journal import JournalProviderError, JournalStore

    store = JournalStore(tmp_path / "journal.sqlite")
    store.claim_provider("landingai")
    store.claim_provider("landingai")  # the same again: fine
    with pytest.raises(JournalProviderError, match="--provider landingai"):
        store.claim_provider("another")
    store.close()


def test_the_command_refuses_to_resume_another_providers_run(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(DOC)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out"
    (out / ".ade-async").mkdir(parents=True)
    from ade_async.cli._journal import JournalStore

    JournalStore(out / ".ade-async" / "journal.sqlite").close()
    with sqlite3.connect(out / ".ade-async" / "journal.sqlite") as db:
        db.execute("INSERT INTO meta (key, value) VALUES ('provider', 'another')")
    command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
    done = subprocess.run(
        [*command, "--out", str(out), "--simulate", "--quiet"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "another provider" in done.stderr or "the another provider" in done.stderr


def test_the_providers_command_and_cancel_for_a_vendor_that_cannot() -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "ade_async", "providers"], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0
    info = get_provider().info
    assert f"{info.name}: {info.title}" in listing.stdout
    assert info.api_key_env[0] in listing.stdout
    assert "cancel:     no" in listing.stdout
    cancel = subprocess.run(
        [sys.executable, "-m", "ade_async", "jobs", "cancel", "job-1", "--api-key", "k"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cancel.returncode == 2
    assert "cannot cancel" in cancel.stderr


# --- the layout holds -------------------------------------------------------------------------------

#: What only LandingAI ADE's folders may say: its paths, its page-size spelling, its key
#: variable, its result URL field, and its word for a running job ("pending" is also the
#: command's own word for inputs still running, so it proves nothing here).
_ADE_ONLY = re.compile(r"/v1/ade/|pageSize|VISION_AGENT_API_KEY|output_url|\"processing\"")


def test_nothing_vendor_specific_outside_the_vendors_folders() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(("providers/landingai/", "testing/landingai/")):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _ADE_ONLY.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_the_skins_use_only_the_public_api() -> None:
    skins = [PACKAGE / "fastapi.py", *sorted((PACKAGE / "cli").glob("*.py"))]
    private_calls = re.compile(r"\b(client|self\._client|_client)\._[a-z]\w*\(")
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in skins
        for line in path.read_text(encoding="utf-8").splitlines()
        if private_calls.search(line)
    ]
    assert offenders == []
