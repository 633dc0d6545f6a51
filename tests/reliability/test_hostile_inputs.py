"""Hostile inputs: each gets a clear error of its own, and nothing else is affected.

The same corpus (``hostile.py``: binary and non-UTF-8 content, empty, over-the-limit and 60 MiB
files, odd names, symlink loops, a dangling link, a FIFO) goes through ``extract_many`` and through
``ade-async extract``; unreadable files are tried as an unprivileged user; hostile schemas are
refused before anything is sent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import ade_async
from ade_async.cli._extract import ExtractOptions, run_extract
from ade_async.testing import Simulator, SimulatorConfig

from .harness import API_KEY, journal_states
from .hostile import build_hostile_tree, invoice

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}
MAX_SIZE = 4096


def extraction_of(n: int) -> dict[str, Any]:
    return {"invoice_number": f"INV-{n}", "total": n + 0.25}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(api_keys=(API_KEY,), latency=(0.05, 0.2))) as simulator:
        yield simulator


def client_for(sim: Simulator) -> ade_async.Client:
    poll = ade_async.PollPolicy(first_delay=0.05, max_delay=0.2)
    return ade_async.Client(api_key=API_KEY, base_url=sim.base_url, poll=poll)


async def test_hostile_inputs_through_extract_many(sim: Simulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    expect = build_hostile_tree(docs, max_size=MAX_SIZE)
    (docs / "folder.md").mkdir()  # a directory where a file was expected
    paths = [docs / name for name in expect] + [docs / "folder.md"]
    outcomes: dict[str, ade_async.Outcome[Any]] = {}
    async with client_for(sim) as client:
        with anyio.fail_after(30):  # a FIFO that blocked the read would hang here
            async with contextlib.aclosing(client.extract_many(paths, schema=SCHEMA)) as stream:
                async for outcome in stream:
                    name = paths[outcome.index].name
                    assert name not in outcomes, f"{name!r} had two outcomes"
                    outcomes[name] = outcome
    assert len(outcomes) == len(paths)

    directory = outcomes.pop("folder.md")
    assert isinstance(directory, ade_async.Failed)
    assert (directory.stage, type(directory.error)) == ("read", ade_async.InputError)
    assert "directory" in str(directory.error)
    for name, wanted in expect.items():
        outcome = outcomes[name]
        if wanted.api is None:
            assert isinstance(outcome, ade_async.Succeeded), f"{name!r}: {outcome}"
            assert wanted.invoice is not None
            assert outcome.result.extraction == extraction_of(wanted.invoice)
            continue
        assert isinstance(outcome, ade_async.Failed), f"{name!r} should have failed"
        assert outcome.stage == wanted.stage, f"{name!r}: {outcome}"
        assert wanted.api in str(outcome.error), f"{name!r}: {outcome.error}"
        if wanted.stage == "read":
            assert isinstance(outcome.error, ade_async.InputError)
    stats = sim.stats()
    succeeded = sum(1 for wanted in expect.values() if wanted.api is None)
    assert stats.jobs_total == succeeded  # nothing unreadable was sent; nothing sent twice
    assert stats.duplicate_jobs == 0


def output_name(name: str, suffix: str) -> str:
    return (name[: -len(".md")] if name.endswith(".md") else name) + suffix


async def test_hostile_inputs_through_the_command(sim: Simulator, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    expect = build_hostile_tree(docs, max_size=MAX_SIZE)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out"
    options = ExtractOptions(
        inputs=[str(docs)],
        schema=schema,
        out=out,
        api_key=API_KEY,
        base_url=sim.base_url,
        max_size=MAX_SIZE,
        json=True,
        quiet=True,
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    with anyio.fail_after(60):
        code = await run_extract(options, stdout=stdout, stderr=stderr)
    assert code == 1, stderr.getvalue()  # some inputs failed, the rest succeeded
    summary = json.loads(stdout.getvalue())
    failing = [name for name, wanted in expect.items() if wanted.cli is not None]
    assert (summary["completed"], summary["failed"]) == (len(expect) - len(failing), len(failing))
    states = journal_states(out)
    for name, wanted in expect.items():
        result, error = out / output_name(name, ".json"), out / output_name(name, ".error.json")
        if wanted.cli is None:
            assert wanted.invoice is not None
            assert json.loads(result.read_bytes())["extraction"] == extraction_of(wanted.invoice), name
            assert not error.exists()
            assert states[name] == "completed"
            continue
        assert not result.exists(), name
        document = json.loads(error.read_bytes())
        assert (document["stage"], document["error_type"]) == ("read", "InputError"), name
        assert wanted.cli in document["message"], f"{name!r}: {document['message']}"
        assert states[name] == "failed"
    # Nothing was sent for a refused input, nothing twice, nothing written outside OUT.
    assert sim.stats().jobs_total == len(expect) - len(failing)
    assert sim.stats().duplicate_jobs == 0
    for path in out.rglob("*"):
        assert out.resolve() in path.resolve().parents
    assert not list(out.rglob("*.tmp"))


async def test_a_result_that_cannot_be_written_fails_alone_and_is_collected_later(
    sim: Simulator, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"inv-{n}.md").write_text(invoice(n))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out"
    (out / "inv-1.json").mkdir(parents=True)  # a folder where a result must go: the write fails
    options = ExtractOptions(
        inputs=[str(docs)],
        schema=schema,
        out=out,
        api_key=API_KEY,
        base_url=sim.base_url,
        json=True,
        quiet=True,
    )
    stdout = io.StringIO()
    assert await run_extract(options, stdout=stdout, stderr=io.StringIO()) == 1
    summary = json.loads(stdout.getvalue())
    assert (summary["completed"], summary["failed"]) == (2, 1)
    error = json.loads((out / "inv-1.error.json").read_bytes())
    assert (error["stage"], error["error_type"]) == ("write", "IsADirectoryError")
    assert error["job_id"]
    assert journal_states(out) == {"inv-0.md": "completed", "inv-1.md": "submitted", "inv-2.md": "completed"}

    (out / "inv-1.json").rmdir()  # fixed: a re-run collects the finished job, it does not pay again
    stdout = io.StringIO()
    assert await run_extract(options, stdout=stdout, stderr=io.StringIO()) == 0
    assert json.loads((out / "inv-1.json").read_bytes())["extraction"] == extraction_of(1)
    assert not (out / "inv-1.error.json").exists()
    assert sim.stats().jobs_total == 3


HOSTILE_SCHEMAS: list[tuple[str, str, str]] = [
    ("not JSON", '{"type": "object",', "not valid JSON"),
    (
        "NaN inside",
        '{"type": "object", "properties": {"a": {"type": "number", "default": NaN}}}',
        "not valid",
    ),
    ("array at the root", "[1, 2]", "object at the root"),
    ("root not an object schema", '{"type": "array", "items": {"type": "string"}}', '"type": "object"'),
    ("duplicate root type", '{"type": "object", "properties": {}, "type": "string"}', '"type": "object"'),
    ("properties not an object", '{"type": "object", "properties": [1, 2]}', "properties is not an object"),
    ("a property not a schema", '{"type": "object", "properties": {"a": 5}}', "properties.a is not a schema"),
    (
        "a $ref cycle",
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}},'
        ' "$defs": {"x": {"$ref": "#/$defs/x"}}}',
        "recursive",
    ),
    (
        "nested 5,000 levels deep",
        '{"type": "object", "properties": {"a": ' * 5000 + '{"type": "string"}' + "}}" * 5000,
        "nested too deeply",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for _, t, m in HOSTILE_SCHEMAS], ids=[n for n, _, _ in HOSTILE_SCHEMAS]
)
async def test_hostile_schemas_are_refused_before_anything_is_sent(
    sim: Simulator, tmp_path: Path, text: str, message: str
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(invoice(1))
    async with client_for(sim) as client:
        with pytest.raises(ade_async.SchemaError) as refused:
            # refused at the call, before any input is read or anything is sent
            client.extract_many([docs / "a.md"], schema=text)
        assert message in str(refused.value)
        # One call's bad schema affects no other call on the same client.
        good = await client.extract(invoice(2), schema=SCHEMA)
        assert good.extraction == extraction_of(2)

    schema = tmp_path / "schema.json"
    schema.write_text(text)
    options = ExtractOptions(
        inputs=[str(docs)],
        schema=schema,
        out=tmp_path / "out",
        api_key=API_KEY,
        base_url=sim.base_url,
        quiet=True,
    )
    stderr = io.StringIO()
    assert await run_extract(options, stdout=io.StringIO(), stderr=stderr) == 2  # usage error
    assert message in stderr.getvalue()
    assert sim.stats().jobs_total == 1  # the good extract only


# ------------------------------------------------------------------------------------------------
# unreadable files: the suite runs as root, who reads everything, so these run as "nobody"

_UNPRIVILEGED = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

_EXTRACT_MANY_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
import ade_async

async def main() -> None:
    base_url, *paths = sys.argv[1:]
    schema = {"type": "object", "properties": {"invoice_number": {"type": "string"}}}
    poll = ade_async.PollPolicy(first_delay=0.05, max_delay=0.2)
    async with ade_async.Client(base_url=base_url, poll=poll) as c:
        async for o in c.extract_many([Path(p) for p in paths], schema=schema):
            print(json.dumps({"name": Path(paths[o.index]).name, "ok": o.ok,
                              "stage": None if o.ok else o.stage, "error": None if o.ok else str(o.error)}))

asyncio.run(main())
"""


def _unprivileged_python_works() -> str | None:
    """``None`` when a process can run ade_async as nobody; else why not."""
    if os.geteuid() != 0:
        return "not running as root: an unreadable file is made with chmod 000 below"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    probe = subprocess.run(
        [*_UNPRIVILEGED, sys.executable, "-c", "import ade_async"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"python cannot run as nobody here: {probe.stderr.decode(errors='replace')[-200:]}"
    return None


@contextlib.contextmanager
def shared_folder() -> Iterator[Path]:
    """A folder "nobody" can use (pytest's tmp_path lives under a folder only root may enter)."""
    folder = Path(tempfile.mkdtemp(prefix="ade-async-unreadable-"))
    try:
        folder.chmod(0o777)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_an_unreadable_file_fails_alone_for_an_unprivileged_user(sim: Simulator) -> None:
    reason = _unprivileged_python_works()
    if reason is not None:
        pytest.skip(reason)
    with shared_folder() as root:
        docs = root / "docs"
        docs.mkdir(mode=0o755)
        (docs / "readable.md").write_text(invoice(1))
        secret = docs / "secret.md"
        secret.write_text(invoice(2))
        secret.chmod(0o000)
        locked = docs / "locked"
        locked.mkdir(mode=0o700)  # a folder nobody may enter
        (locked / "inside.md").write_text(invoice(3))
        for path in (docs, docs / "readable.md"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        schema = root / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        schema.chmod(0o644)
        env = {"VISION_AGENT_API_KEY": API_KEY, "HOME": str(root), "PYTHONUNBUFFERED": "1"}

        files = [str(docs / "readable.md"), str(secret), str(locked / "inside.md")]
        many = await anyio.run_process(
            [*_UNPRIVILEGED, sys.executable, "-c", _EXTRACT_MANY_SCRIPT, sim.base_url, *files],
            env=env,
            check=False,
        )
        assert many.returncode == 0, many.stderr.decode()
        outcomes = {line["name"]: line for line in map(json.loads, many.stdout.decode().splitlines())}
        assert outcomes["readable.md"]["ok"] is True
        assert outcomes["secret.md"]["stage"] == "read"
        assert "No permission to read" in outcomes["secret.md"]["error"]
        assert outcomes["inside.md"]["stage"] == "read"
        assert "No permission" in outcomes["inside.md"]["error"]

        out = root / "out"
        command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
        command += ["--out", str(out), "--base-url", sim.base_url, "--json", "--quiet"]
        done = await anyio.run_process([*_UNPRIVILEGED, *command], env=env, check=False)
        assert done.returncode == 1, done.stderr.decode()
        summary = json.loads(done.stdout)
        assert (summary["completed"], summary["failed"]) == (1, 2), summary
        assert json.loads((out / "readable.json").read_bytes())["extraction"] == extraction_of(1)
        error = json.loads((out / "secret.error.json").read_bytes())
        assert error["stage"] == "read"
        assert "Permission denied" in error["message"]
        # The folder it could not enter is reported as a failed input, not silently skipped.
        folder = json.loads((out / "locked.error.json").read_bytes())
        assert "cannot list this folder: Permission denied" in folder["message"]


def exploding_schema(levels: int) -> dict[str, Any]:
    """Each level refers twice to the next: a few lines that resolve to 2**levels fields."""
    defs: dict[str, Any] = {
        f"l{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/l{i + 1}"}, "b": {"$ref": f"#/$defs/l{i + 1}"}},
        }
        for i in range(levels)
    }
    defs[f"l{levels}"] = {"type": "string"}
    return {"type": "object", "properties": {"root": {"$ref": "#/$defs/l0"}}, "$defs": defs}


async def test_a_schema_that_explodes_once_resolved_fails_each_input_clearly(
    sim: Simulator, tmp_path: Path
) -> None:
    """No documented rule refuses it locally, so it is sent: the API side must answer, not hang."""
    schema_dict = exploding_schema(40)  # 2**40 fields once resolved; about 4 KB as text
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"inv-{n}.md").write_text(invoice(n))
    async with client_for(sim) as client:
        with anyio.fail_after(30):
            outcomes = [o async for o in client.extract_many(sorted(docs.iterdir()), schema=schema_dict)]
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert isinstance(outcome, ade_async.Failed)
        assert outcome.stage == "submit"
        assert isinstance(outcome.error, ade_async.UnprocessableEntityError)
        assert "not a valid JSON schema" in str(outcome.error)

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(schema_dict))
    out = tmp_path / "out"
    options = ExtractOptions(
        inputs=[str(docs)],
        schema=schema,
        out=out,
        api_key=API_KEY,
        base_url=sim.base_url,
        json=True,
        quiet=True,
    )
    stdout = io.StringIO()
    with anyio.fail_after(30):
        assert await run_extract(options, stdout=stdout, stderr=io.StringIO()) == 1
    assert json.loads(stdout.getvalue())["failed"] == 3
    for n in range(3):
        error = json.loads((out / f"inv-{n}.error.json").read_bytes())
        assert (error["stage"], error["error_type"]) == ("submit", "UnprocessableEntityError")
    assert sim.stats().jobs_total == 0
