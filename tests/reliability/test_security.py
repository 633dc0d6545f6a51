"""Security checks: the key leaks nowhere, never reaches an ``output_url``, TLS is verified, and
outputs stay inside the output folder."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import anyio
import anyio.to_thread
import pytest
from aiohttp import web

import ade_async
from ade_async.cli._extract import ExtractOptions, run_extract
from ade_async.cli._jobs import Connection, wait_jobs
from ade_async.testing import Simulator

from .harness import (
    API_KEY,
    BASE_CLIENT,
    SCHEMA,
    Scenario,
    corpus,
    expected_extraction,
    patched_cli_client,
    write_corpus,
)
from .leakcheck import secret_paths

pytestmark = pytest.mark.anyio

#: A wrong key that looks real: refusing it must not echo it either.
WRONG_KEY = "sk-wrong-0b5e77aa-ALSO-SECRET"
#: Pieces of each key distinctive enough that finding one means a (partial) leak.
SECRETS = (API_KEY, "6f1d0c9e", WRONG_KEY, "0b5e77aa")


def leaks(texts: Iterable[str | bytes]) -> list[str]:
    """Every text that contains a piece of a key, shortened around the find."""
    found = []
    for text in texts:
        raw = text if isinstance(text, bytes) else text.encode("utf-8", errors="replace")
        for secret in SECRETS:
            at = raw.find(secret.encode())
            if at >= 0:
                found.append(raw[max(0, at - 80) : at + 80].decode(errors="replace"))
    return found


def test_the_scan_finds_a_planted_key() -> None:
    """The scanner itself: a check that cannot fail proves nothing."""
    assert leaks([f"header Authorization: Bearer {API_KEY}"])
    assert leaks([b"...6f1d0c9e..."])
    assert not leaks(["Bearer ***", "ApiKey('***')"])


#: Errors met during a run; each is also walked as an error tracker would (``leakcheck``).
_ERRORS: list[BaseException] = []


def describe_error(error: BaseException) -> list[str]:
    """An error as a user could see it: message, repr, traceback with its causes, attributes."""
    _ERRORS.append(error)
    texts = ["".join(traceback.format_exception(error)), repr(error)]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # the whole cause chain
        seen.add(id(current))
        texts.append(repr(vars(current)) if hasattr(current, "__dict__") else "")
        texts.append(repr(current.args))
        current = current.__cause__ or current.__context__
    return texts


SECURITY_SCENARIO = Scenario(
    name="security batch",
    inject=(
        ("create", "lost_response", 1),
        ("create", "500", 1),
        ("create", "malformed", 1),
        ("get", "503", 2),
        ("get", "404", 1),
        ("get", "drop", 2),
        ("list", "502", 1),
        ("download", "expired", 1),
        ("download", "malformed", 1),
    ),
    documents=16,
)


async def test_a_whole_batch_at_debug_level_leaks_the_key_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: ade_async's, aiohttp's, everyone's
    texts: list[str | bytes] = []
    documents = corpus(SECURITY_SCENARIO.documents)
    paths = write_corpus(tmp_path / "docs", documents)
    options = SECURITY_SCENARIO.client_options()
    async with Simulator(SECURITY_SCENARIO.simulator_config()) as sim:
        for endpoint, kind, count in SECURITY_SCENARIO.inject:
            sim.inject(endpoint, kind, count)
        async with ade_async.Client(api_key=API_KEY, base_url=sim.base_url, **options) as client:
            texts.append(repr(client))
            succeeded = 0
            async for outcome in client.extract_many(paths, schema=SCHEMA):
                texts += [repr(outcome), str(outcome)]
                if isinstance(outcome, ade_async.Failed):
                    texts += describe_error(outcome.error)
                else:
                    succeeded += 1
                    assert outcome.result.extraction == expected_extraction(paths[outcome.index].name)
                    texts.append(repr(outcome.result))
            handle = await client.submit(documents["invoice-000.md"] + "again\n", schema=SCHEMA)
            texts += [repr(handle), repr(await handle), repr(client.stats()), repr(client)]
        assert succeeded >= SECURITY_SCENARIO.documents - 3  # the faults did not stop the batch

        # A refused key: the 401 must not echo it.
        async with ade_async.Client(api_key=WRONG_KEY, base_url=sim.base_url, **BASE_CLIENT) as wrong:
            with pytest.raises(ade_async.AuthenticationError) as refused:
                await wrong.create_job(documents["invoice-001.md"], schema=SCHEMA)
            texts += [*describe_error(refused.value), repr(wrong)]

        # The command over the same documents, with faults again, writing its journal and files.
        for endpoint, kind, count in (
            ("create", "lost_response", 1),  # its job is found and adopted
            ("create", "502", 1),  # no job was made: searched for, then reported in an .error.json
            ("get", "503", 1),
            ("download", "503", 1),
        ):
            sim.inject(endpoint, kind, count)
        schema_file = tmp_path / "schema.json"
        schema_file.write_text(json.dumps(SCHEMA))
        out = tmp_path / "out"
        cli_options = ExtractOptions(
            inputs=[str(tmp_path / "docs")],
            schema=schema_file,
            out=out,
            api_key=API_KEY,
            base_url=sim.base_url,
            json=True,
        )
        stdout, stderr = io.StringIO(), io.StringIO()
        with patched_cli_client(monkeypatch, SECURITY_SCENARIO):
            code = await run_extract(cli_options, stdout=stdout, stderr=stderr)
        assert code == 1, stderr.getvalue()  # the 502's input is reported as a failed input
        assert json.loads(stdout.getvalue())["reconciled"] == 1  # the lost answer's job was adopted
        texts += [stdout.getvalue(), stderr.getvalue()]
        stats = sim.stats()

    assert stats.result_url_auth_headers == 0
    assert stats.downloads > 0  # results did come through output_url
    written = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.name == "journal.sqlite" for path in written)
    assert any(path.name.endswith(".error.json") for path in written)
    texts += [path.read_bytes() for path in written]  # results, errors, journal (and its WAL), lock
    texts.append(caplog.text)
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts += describe_error(record.exc_info[1])
    assert any(record.levelno == logging.DEBUG and record.name == "ade_async" for record in caplog.records)
    assert leaks(texts) == []
    # Deeper than the texts: causes, contexts, attributes and the frame locals of tracebacks.
    tests = str(Path(__file__).parent.parent)
    assert _ERRORS
    assert [path for error in _ERRORS for path in secret_paths(error, SECRETS, skip_frames_in=[tests])] == []


async def test_the_simulator_refuses_and_counts_a_key_sent_to_an_output_url() -> None:
    """The check above relies on this counter: prove it counts what it claims."""
    scenario = Scenario(name="output_url", simulator={"result_url_threshold": 0, "latency": (0.0, 0.0)})
    async with Simulator(scenario.simulator_config()) as sim:
        async with ade_async.Client(api_key=API_KEY, base_url=sim.base_url, **BASE_CLIENT) as client:
            job = await client.get_job(await client.create_job("Invoice Number: INV-1\n", schema=SCHEMA))
            assert job.detail.output_url is not None
            assert (await client.fetch_result(job)).extraction["invoice_number"] == "INV-1"
        assert sim.stats().result_url_auth_headers == 0
        careless = {"Authorization": f"Bearer {API_KEY}"}  # a client sending its key to the download
        async with (
            aiohttp.ClientSession() as http,
            http.get(job.detail.output_url, headers=careless) as answer,
        ):
            assert answer.status == 400
        assert sim.stats().result_url_auth_headers == 1


# ------------------------------------------------------------------------------------------------
# TLS


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextlib.asynccontextmanager
async def tls_server(cert: Path, key: Path, seen: list[str]) -> AsyncIterator[str]:
    """An HTTPS server on loopback whose certificate no default trust store accepts."""

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"job_id": "x", "status": "pending", "received_at": 0, "progress": 0.0})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_tls_verification_is_on_by_default_and_the_key_never_reaches_an_untrusted_host(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The usual ways to turn verification off elsewhere change nothing here.
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    seen: list[str] = []
    async with tls_server(*self_signed, seen) as base_url:
        async with ade_async.Client(
            api_key=API_KEY, base_url=base_url, retry=ade_async.RetryPolicy.none()
        ) as c:
            with pytest.raises(ade_async.ConnectError) as refused:
                await c.get_job("some-job")
            with pytest.raises(ade_async.ConnectError):
                await c.create_job("Invoice Number: INV-1\n", schema=SCHEMA)
        # A plain client that trusts that certificate reaches the server: the refusal above was
        # the certificate, not a broken server.
        trusting = ssl.create_default_context(cafile=str(self_signed[0]))
        probe = f"{base_url}/v1/ade/extract/jobs/x"
        async with aiohttp.ClientSession() as http, http.get(probe, ssl=trusting) as answer:
            assert answer.status == 200
    message = str(refused.value)
    assert "certificate verify failed" in message
    assert refused.value.request_sent is False  # nothing was sent: a create here is safe to retry
    assert seen == [""]  # only the trusting probe got through, and it carried no key
    assert leaks([message]) == []


def test_there_is_no_switch_to_turn_tls_verification_off() -> None:
    """Verification cannot be turned off silently: the client takes no such option."""
    import inspect

    parameters = set(inspect.signature(ade_async.Client).parameters)
    for switch in ("verify", "ssl", "verify_ssl", "insecure", "ssl_context", "connector", "session"):
        assert switch not in parameters


# ------------------------------------------------------------------------------------------------
# output paths


async def test_job_ids_cannot_steer_outputs_out_of_the_folder(tmp_path: Path) -> None:
    """``ade-async jobs wait`` names files after job ids the user typed (or pasted)."""
    scenario = Scenario(name="paths", simulator={"latency": (0.0, 0.0)})
    async with Simulator(scenario.simulator_config()) as sim:
        hostile_ids = ["../../escape", "/etc/passwd", "..", "a/../../b", "sub/dir", ""]
        out = tmp_path / "nested" / "out"
        out.mkdir(parents=True)
        # A timeout that only bounds a hang: each id must end as not found, never as timed out.
        connection = Connection(provider="landingai", api_key=API_KEY, base_url=sim.base_url)
        code = await wait_jobs(connection, hostile_ids, out=out, timeout=60.0)
    assert code == 1  # unknown jobs: each fails alone
    written = [
        path for path in await anyio.to_thread.run_sync(lambda: list(tmp_path.rglob("*"))) if path.is_file()
    ]
    assert written
    for path in written:
        assert path.parent == out, f"{path} is outside {out}"
        assert json.loads(path.read_bytes())["error_type"] in ("JobLostError", "NotFoundError")
    assert len(written) == len(set(hostile_ids))


def test_input_names_cannot_steer_outputs_out_of_the_folder(tmp_path: Path) -> None:
    """Whatever the names under an input folder, every output path is inside OUT."""
    from ade_async.cli._discover import discover

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("..md", "...md", ".md", "..\n.md", "sub/..md", "sub/. .md"):
        (docs / name).write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("x")
    (docs / "link").symlink_to(outside, target_is_directory=True)  # not followed
    out = (tmp_path / "out").resolve()
    inputs = list(discover([str(docs)], out))
    assert len(inputs) == 6
    for item in inputs:
        for path in (item.output, item.error_output):
            assert path is not None
            assert out in Path(path).resolve().parents, path
    assert all("secret" not in str(item.source) for item in inputs)
