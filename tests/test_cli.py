"""The ``ade-async`` command end to end: a subprocess against the simulator on loopback."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import ByteReceiveStream
from conftest import CEILING, CreateHold, wait_until

from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

SCHEMA = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}


def invoice(n: int, extra: str = "") -> str:
    return f"# Invoice {n}\n\nInvoice Number: INV-{n}\nTotal: {n}.25\n{extra}"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.1, 0.4))) as simulator:
        yield simulator


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


def make_tree(root: Path, count: int = 6) -> list[Path]:
    """``root/inv-i.md`` and ``root/sub/inv-j.md``."""
    files = []
    for i in range(count):
        folder = root / ("sub" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"inv-{i}.md"
        path.write_text(invoice(i))
        files.append(path)
    return files


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_AGENT", "LANDINGAI_ADE"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def extract_command(sim: Simulator, docs: Path, schema: Path, out: Path, *extra: str) -> list[str]:
    """``python -m ade_async extract DOCS`` against ``sim``, for tests that drive the process."""
    command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
    return [*command, "--out", str(out), "--api-key", sim.api_key, "--base-url", sim.base_url, *extra]


async def cli(
    *args: str | Path, sim: Simulator | None = None, check_exit: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ade_async", *map(str, args)]
    if sim is not None and args and args[0] == "extract":
        command += ["--api-key", sim.api_key, "--base-url", sim.base_url]
    done = await anyio.run_process(command, check=False, env=environment())
    result = subprocess.CompletedProcess(command, done.returncode, done.stdout.decode(), done.stderr.decode())
    if check_exit is not None:
        assert result.returncode == check_exit, result.stderr
    return result


@contextlib.contextmanager
def hold_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock as a running ade-async would."""
    (out / ".ade-async").mkdir(parents=True)
    with open(out / ".ade-async" / "lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        held.write("pid 4242")
        held.flush()
        yield


async def receive_until(stream: ByteReceiveStream, text: str) -> str:
    """What ``stream`` says up to and including ``text`` (a process's stderr, as it goes)."""
    seen = b""
    with anyio.fail_after(CEILING):
        while text.encode() not in seen:
            seen += await stream.receive()
    return seen.decode(errors="replace")


async def receive_rest(stream: ByteReceiveStream) -> str:
    """Everything ``stream`` says until the process closes it."""
    seen = b""
    with anyio.fail_after(CEILING):
        async for chunk in stream:
            seen += chunk
    return seen.decode(errors="replace")


def journal_rows(out: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(out / ".ade-async" / "journal.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {row["key"]: dict(row) for row in db.execute("SELECT * FROM inputs")}


def journal_states_so_far(out: Path) -> set[str]:
    """The states in a running command's journal; none while it is still being created."""
    if not (out / ".ade-async" / "journal.sqlite").exists():
        return set()  # (connecting would create it)
    try:
        return {row["state"] for row in journal_rows(out).values()}
    except sqlite3.OperationalError:  # no file yet, or its tables not yet created
        return set()


def journal_events(out: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(out / ".ade-async" / "journal.sqlite") as db:
        return list(db.execute("SELECT key, state, job_id FROM events ORDER BY id"))


async def test_extract_a_tree_then_resume_skips_everything(
    sim: Simulator, tmp_path: Path, schema_file: Path
) -> None:
    files = make_tree(tmp_path / "docs")
    single = tmp_path / "loose.md"
    single.write_text(invoice(99))
    out = tmp_path / "out"
    done = await cli(
        "extract",
        tmp_path / "docs",
        single,
        "--schema",
        schema_file,
        "--out",
        out,
        "--json",
        sim=sim,
        check_exit=0,
    )
    summary = json.loads(done.stdout)
    assert summary["completed"] == 7
    assert summary["failed"] == 0
    for i, path in enumerate(files):
        relative = path.relative_to(tmp_path / "docs").with_suffix(".json")
        result = json.loads((out / relative).read_text())
        assert result["extraction"] == {"invoice_number": f"INV-{i}", "total": i + 0.25}
        assert set(result) == {"extraction", "extraction_metadata", "metadata"}
    assert json.loads((out / "loose.json").read_text())["extraction"]["invoice_number"] == "INV-99"
    assert {row["state"] for row in journal_rows(out).values()} == {"completed"}
    assert not list(out.rglob("*.tmp"))
    jobs_before = sim.stats().jobs_total

    again = await cli(
        "extract",
        tmp_path / "docs",
        single,
        "--schema",
        schema_file,
        "--out",
        out,
        "--json",
        sim=sim,
        check_exit=0,
    )
    assert json.loads(again.stdout)["skipped"] == 7
    assert sim.stats().jobs_total == jobs_before  # nothing resubmitted

    files[0].write_text(invoice(1000))  # one input changed: only it is extracted again
    changed = await cli(
        "extract",
        tmp_path / "docs",
        single,
        "--schema",
        schema_file,
        "--out",
        out,
        "--json",
        sim=sim,
        check_exit=0,
    )
    assert json.loads(changed.stdout)["completed"] == 1
    assert sim.stats().jobs_total == jobs_before + 1
    assert json.loads((out / "inv-0.json").read_text())["extraction"]["invoice_number"] == "INV-1000"


async def test_bad_inputs_fail_alone(sim: Simulator, tmp_path: Path, schema_file: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(invoice(1))
    (docs / "empty.md").write_bytes(b"")
    (docs / "latin1.md").write_bytes("Invoice Number: caf\xe9".encode("latin-1"))
    (docs / "big.md").write_text(invoice(2) + "x" * 5000)
    (docs / "line\nbreak.md").write_text(invoice(3))
    (docs / "ünïcødé ..name.md").write_text(invoice(4))
    (docs / "loop-a.md").symlink_to(docs / "loop-b.md")
    (docs / "loop-b.md").symlink_to(docs / "loop-a.md")
    (docs / "job-fails.md").write_text(invoice(5, "<!-- ade-sim: fail unreadable table -->"))
    notes = tmp_path / "notes.txt"
    notes.write_text(invoice(6))
    out = tmp_path / "out"
    done = await cli(
        "extract", docs, notes, "--schema", schema_file, "--out", out, "--max-size", "1000", "--json", sim=sim
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["completed"], summary["failed"]) == (3, 7)
    for good in ("good.json", "line\nbreak.json", "ünïcødé ..name.json"):
        assert (out / good).exists()
    errors = {p.name: json.loads(p.read_text()) for p in out.glob("*.error.json")}
    assert {name: e["stage"] for name, e in errors.items()} == {
        "empty.error.json": "read",
        "latin1.error.json": "read",
        "big.error.json": "read",
        "loop-a.error.json": "read",
        "loop-b.error.json": "read",
        "notes.txt.error.json": "read",
        "job-fails.error.json": "job",
    }
    assert "empty" in errors["empty.error.json"]["message"]
    assert "UTF-8" in errors["latin1.error.json"]["message"]
    assert "too large" in errors["big.error.json"]["message"]
    assert "loop" in errors["loop-a.error.json"]["message"]
    assert "Markdown" in errors["notes.txt.error.json"]["message"]
    failed_job = errors["job-fails.error.json"]
    assert failed_job["error_type"] == "JobFailedError"
    assert failed_job["failure_reason"] == "unreadable table"
    assert failed_job["job_id"]
    # Nothing escaped the output folder.
    assert all(out in p.resolve().parents for p in out.rglob("*") if p.is_file())


async def test_failed_inputs_are_retried_only_when_asked(
    sim: Simulator, tmp_path: Path, schema_file: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.md").write_text(invoice(1))
    (docs / "bad.md").write_text(invoice(2, "<!-- ade-sim: fail nope -->"))
    out = tmp_path / "out"
    await cli("extract", docs, "--schema", schema_file, "--out", out, sim=sim, check_exit=1)
    jobs = sim.stats().jobs_total
    await cli("extract", docs, "--schema", schema_file, "--out", out, sim=sim, check_exit=1)
    assert sim.stats().jobs_total == jobs
    (docs / "bad.md").write_text(invoice(2))  # fixed; but unchanged content would need --retry-failed
    await cli("extract", docs, "--schema", schema_file, "--out", out, sim=sim, check_exit=0)
    assert not (out / "bad.error.json").exists()
    (docs / "ok.md").write_text(invoice(1, "<!-- ade-sim: fail again -->"))
    await cli("extract", docs, "--schema", schema_file, "--out", out, sim=sim, check_exit=1)
    jobs = sim.stats().jobs_total
    await cli("extract", docs, "--schema", schema_file, "--out", out, "--retry-failed", sim=sim, check_exit=1)
    assert sim.stats().jobs_total == jobs + 1


@pytest.mark.parametrize(
    ("schema_text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "object at the root"),
        ('{"type": "array"}', '"type": "object"'),
    ],
)
async def test_a_bad_schema_is_a_usage_error(
    sim: Simulator, tmp_path: Path, schema_text: str, message: str
) -> None:
    make_tree(tmp_path / "docs", 2)
    schema = tmp_path / "bad.json"
    schema.write_text(schema_text)
    done = await cli(
        "extract", tmp_path / "docs", "--schema", schema, "--out", tmp_path / "out", sim=sim, check_exit=2
    )
    assert message in done.stderr
    assert sim.stats().count("create") == 0


async def test_usage_errors(sim: Simulator, tmp_path: Path, schema_file: Path) -> None:
    make_tree(tmp_path / "docs", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = await cli(
        "extract", tmp_path / "docs", "--schema", schema_file, "--out", blocker, sim=sim, check_exit=2
    )
    assert "output folder" in done.stderr
    done = await cli(
        "extract", tmp_path / "nope", "--schema", schema_file, "--out", tmp_path / "o", sim=sim, check_exit=2
    )
    assert "no such file" in done.stderr
    done = await cli(
        "extract", tmp_path / "docs", "--schema", schema_file, "--out", tmp_path / "o2", check_exit=2
    )
    assert "VISION_AGENT_API_KEY" in done.stderr  # no key anywhere
    done = await cli(
        "extract",
        "--rate",
        "fast",
        tmp_path / "docs",
        "--schema",
        schema_file,
        "--out",
        tmp_path / "o3",
        check_exit=2,
    )
    assert "invalid rate" in done.stderr
    assert sim.stats().count("create") == 0


async def test_wrong_key_stops_the_run_with_exit_4(sim: Simulator, tmp_path: Path, schema_file: Path) -> None:
    make_tree(tmp_path / "docs", 3)
    command: list[str | Path] = [
        "extract",
        tmp_path / "docs",
        "--schema",
        schema_file,
        "--out",
        tmp_path / "out",
    ]
    done = await cli(*command, "--api-key", "wrong-key-123", "--base-url", sim.base_url, check_exit=4)
    assert "401" in done.stderr
    assert "wrong-key-123" not in done.stderr + done.stdout
    assert {row["state"] for row in journal_rows(tmp_path / "out").values()} <= {"queued"}


async def test_a_second_run_on_the_same_folder_refuses(
    sim: Simulator, tmp_path: Path, schema_file: Path
) -> None:
    make_tree(tmp_path / "docs", 2)
    out = tmp_path / "out"
    with hold_lock(out):
        done = await cli(
            "extract", tmp_path / "docs", "--schema", schema_file, "--out", out, sim=sim, check_exit=2
        )
    assert "another ade-async run" in done.stderr
    assert sim.stats().count("create") == 0


async def test_interrupt_records_jobs_and_a_rerun_collects_them(tmp_path: Path, schema_file: Path) -> None:
    clock = FakeClock()  # the jobs run until the test moves this clock, however slow the machine
    async with Simulator(SimulatorConfig(latency=(2.0, 2.5)), clock=clock.now) as sim:
        make_tree(tmp_path / "docs", 6)
        out = tmp_path / "out"
        command = extract_command(sim, tmp_path / "docs", schema_file, out, "--quiet")
        async with await anyio.open_process(command, env=environment()) as process:
            await wait_until(lambda: sim.stats().jobs_total == 6)
            process.send_signal(signal.SIGINT)
            assert process.stderr is not None
            stderr = await receive_rest(process.stderr)
            with anyio.fail_after(CEILING):
                code = await process.wait()
        assert code == 3, stderr
        assert "continue server-side" in stderr or "run the same command again" in stderr
        rows = journal_rows(out)
        assert {row["state"] for row in rows.values()} == {"submitted"}
        await clock.advance(2.5)  # the jobs end server-side
        done = await cli(
            "extract",
            tmp_path / "docs",
            "--schema",
            schema_file,
            "--out",
            out,
            "--json",
            sim=sim,
            check_exit=0,
        )
        assert json.loads(done.stdout)["completed"] == 6
        assert sim.stats().jobs_total == 6  # collected by job id, never resubmitted


async def test_crash_trials_lose_nothing_and_never_resubmit_an_acknowledged_job(tmp_path: Path) -> None:
    """The short version of ``scripts/crash_trials.py``: 30 files, 4 SIGKILLs at random moments,
    a share of create answers lost, then a run to the end; the script checks every input has
    exactly one result of its own and no input got a job after one was acknowledged."""
    command = [sys.executable, str(SCRIPTS / "crash_trials.py"), "--files", "30", "--kills", "4"]
    command += ["--kill-after", "0.6", "1.5", "--seed", "7", "--work", str(tmp_path), "--json"]
    done = await anyio.run_process(command, check=False, env=environment())
    report = json.loads(done.stdout.decode())
    assert report["problems"] == [], report
    assert done.returncode == 0
    assert report["results"] == report["inputs"] == 30
    assert report["kills"] + report["finished_before_kill"] == 4
    assert report["final_exit_code"] == 0
    assert report["duplicate_jobs"] == 0  # the simulator never made a second job for an input
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_crash_trials_count_a_leftover_temporary_file_as_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A half-written result a kill left, still there after the last run, fails the trials."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("crash_trials", SCRIPTS / "crash_trials.py")
    assert spec is not None
    assert spec.loader is not None
    trials = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "crash_trials", trials)  # its dataclasses look themselves up
    spec.loader.exec_module(trials)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / ".ade-async.0123456789abcdef.0badc0de-0.a.json.tmp").write_text('{"extr')
    report = trials.Report(inputs=0, final_exit_code=0)
    trials._check(report, out, {}, [], set())
    assert report.temporaries_left == 1
    assert any("temporary files left" in problem for problem in report.problems), report.problems


async def test_a_kill_while_creates_await_their_answer_then_resume_adopts_the_jobs(
    tmp_path: Path, schema_file: Path
) -> None:
    # The answers are lost and the list lags: the killed run is still looking for the jobs (the
    # list cannot show them before the test moves the simulator's clock).
    clock = FakeClock()
    async with Simulator(SimulatorConfig(latency=(0.2, 0.5), list_lag=2.0), clock=clock.now) as sim:
        make_tree(tmp_path / "docs", 3)
        out = tmp_path / "out"
        sim.inject("create", "lost_response", count=3)
        command = extract_command(sim, tmp_path / "docs", schema_file, out, "--quiet")
        async with await anyio.open_process(command, env=environment()) as process:
            await wait_until(lambda: sim.stats().jobs_total == 3)
            process.kill()
            await process.wait()
        rows = journal_rows(out)
        assert {row["state"] for row in rows.values()} == {"submitting"}
        assert all(row["upload_tokens"] for row in rows.values())
        await clock.advance(3.0)  # the list shows the jobs now, and they have ended
        done = await cli(
            "extract",
            tmp_path / "docs",
            "--schema",
            schema_file,
            "--out",
            out,
            "--json",
            sim=sim,
            check_exit=0,
        )
        summary = json.loads(done.stdout)
        assert (summary["completed"], summary["reconciled"], summary["possible_duplicates"]) == (3, 3, 0)
        assert "found and adopted" in done.stderr
        assert sim.stats().jobs_total == 3  # adopted, not submitted again
        assert sim.stats().duplicate_jobs == 0
    for key, row in journal_rows(out).items():
        assert row["state"] == "completed"
        assert row["submissions"] == 1, key


async def test_an_unfound_job_fails_resumably_and_is_resubmitted_only_when_allowed(
    sim: Simulator, tmp_path: Path, schema_file: Path
) -> None:
    make_tree(tmp_path / "docs", 2)
    out = tmp_path / "out"
    arguments = ("extract", tmp_path / "docs", "--schema", schema_file, "--out", out, "--json")
    sim.inject("create", "502")  # a gateway error: the job may exist (here it does not)
    first = await cli(*arguments, "--search-time", "1", sim=sim, check_exit=1)
    summary = json.loads(first.stdout)
    assert (summary["completed"], summary["failed"], summary["outcome_unknown"]) == (1, 1, 1)
    assert "--resubmit-unknown" in first.stderr
    (unknown,) = [row for row in journal_rows(out).values() if row["state"] == "unknown"]
    error = json.loads((out / Path(unknown["key"]).with_suffix(".error.json")).read_text())
    assert error["stage"] == "submit"
    assert "CreateOutcomeUnknownError" in json.dumps(error)
    # A plain re-run (even with --retry-failed) looks again, and sends nothing.
    again = await cli(*arguments, "--search-time", "1", "--retry-failed", sim=sim, check_exit=1)
    assert json.loads(again.stdout)["outcome_unknown"] == 1
    assert sim.stats().creates_accepted == 1
    # Allowed: sent again, and reported as a possible duplicate.
    allowed = await cli(*arguments, "--search-time", "1", "--resubmit-unknown", sim=sim, check_exit=0)
    summary = json.loads(allowed.stdout)
    assert (summary["completed"], summary["possible_duplicates"], summary["outcome_unknown"]) == (1, 1, 0)
    assert "may have a duplicate job" in allowed.stderr
    assert sim.stats().jobs_total == 2
    assert not list(out.rglob("*.error.json"))


async def test_plain_progress_lines_when_not_a_terminal(tmp_path: Path, schema_file: Path) -> None:
    make_tree(tmp_path / "docs", 4)
    out = tmp_path / "out"
    clock = FakeClock()  # the jobs run until a progress line has been seen
    async with Simulator(SimulatorConfig(latency=(0.1, 0.4)), clock=clock.now) as sim:
        command = extract_command(sim, tmp_path / "docs", schema_file, out, "--progress-interval", "0.2")
        async with await anyio.open_process(command, env=environment()) as process:
            assert process.stderr is not None
            stderr = await receive_until(process.stderr, " done | ")
            await wait_until(lambda: sim.stats().jobs_total == 4)
            await clock.advance(0.4)
            stderr += await receive_rest(process.stderr)
            with anyio.fail_after(CEILING):
                assert await process.wait() == 0, stderr
        lines = [line for line in stderr.splitlines() if " done | " in line]
        assert lines
        assert "waiting on the quota" in lines[0]
        assert "4 inputs" in stderr  # the summary
        quiet = await cli(
            "extract",
            tmp_path / "docs",
            "--schema",
            schema_file,
            "--out",
            out,
            "--quiet",
            sim=sim,
            check_exit=0,
        )
    assert quiet.stderr == ""


async def test_live_progress_on_a_terminal(sim: Simulator, tmp_path: Path, schema_file: Path) -> None:
    pytest.importorskip("rich")
    make_tree(tmp_path / "docs", 4)
    command = extract_command(sim, tmp_path / "docs", schema_file, tmp_path / "out")

    def run_on_a_pty() -> tuple[int, str]:
        import pty

        primary, secondary = pty.openpty()
        proc = subprocess.Popen(
            command, stdin=secondary, stdout=secondary, stderr=secondary, env=environment()
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(primary)
        return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")

    code, screen = await anyio.to_thread.run_sync(run_on_a_pty)
    assert code == 0, screen
    assert "ade-async" in screen
    assert "4/4" in screen  # the live bar's count


async def test_jobs_subcommands_and_module_entry(sim: Simulator, tmp_path: Path) -> None:
    help_text = await cli("--help", check_exit=0)
    assert "extract" in help_text.stdout
    from ade_async import Client

    async with Client(api_key=sim.api_key, base_url=sim.base_url) as client:
        job_id = await client.create_job(invoice(7), schema=SCHEMA)
    connection = ["--api-key", sim.api_key, "--base-url", sim.base_url]
    listing = await cli("jobs", "list", *connection, check_exit=0)
    assert job_id in listing.stdout
    shown = await cli("jobs", "get", job_id, *connection, check_exit=0)
    assert json.loads(shown.stdout)["job_id"] == job_id
    waited = await cli("jobs", "wait", job_id, "--out", tmp_path / "w", *connection, check_exit=0)
    assert (
        json.loads((tmp_path / "w" / f"{job_id}.json").read_text())["extraction"]["invoice_number"] == "INV-7"
    )
    assert waited.stdout.strip().endswith(".json")
    missing = await cli("jobs", "get", "nope", *connection, check_exit=1)
    assert "404" in missing.stderr


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def test_simulate_runs_the_examples_without_a_key(tmp_path: Path) -> None:
    examples = EXAMPLES
    done = await cli(
        "extract",
        examples / "documents",
        "--schema",
        examples / "document_schema.json",
        "--out",
        tmp_path / "out",
        "--simulate",
        "--json",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["completed"] == summary["inputs"] >= 20


async def test_job_timeout_exits_3_and_a_rerun_collects(tmp_path: Path, schema_file: Path) -> None:
    clock = FakeClock()  # the jobs cannot end before the timeout, however slow the machine
    async with Simulator(SimulatorConfig(latency=(1.5, 1.5)), clock=clock.now) as sim:
        make_tree(tmp_path / "docs", 3)
        out = tmp_path / "out"
        command: list[str | Path] = [
            "extract",
            tmp_path / "docs",
            "--schema",
            schema_file,
            "--out",
            out,
            "--json",
        ]
        first = await cli(*command, "--job-timeout", "0.3", sim=sim, check_exit=3)
        assert json.loads(first.stdout)["pending"] == 3
        assert "continue server-side" in first.stderr
        await clock.advance(1.5)  # the jobs end server-side
        second = await cli(*command, sim=sim, check_exit=0)
        assert json.loads(second.stdout)["completed"] == 3
        assert sim.stats().jobs_total == 3  # collected by job id


async def test_a_second_interrupt_exits_at_once(tmp_path: Path, schema_file: Path) -> None:
    sim = Simulator(SimulatorConfig(latency=(0.5, 0.5)))
    held = CreateHold(sim)  # the creates stay on the wire: the first ^C waits for them
    async with sim:
        make_tree(tmp_path / "docs", 3)
        out = tmp_path / "out"
        command = extract_command(sim, tmp_path / "docs", schema_file, out, "--quiet")
        try:
            async with await anyio.open_process(command, env=environment()) as process:
                assert process.stderr is not None
                await wait_until(lambda: held.arrived == 3)  # every create is on the wire
                process.send_signal(signal.SIGINT)
                await receive_until(process.stderr, "waiting for creates on the wire")
                assert process.returncode is None  # still waiting for the creates on the wire
                process.send_signal(signal.SIGINT)
                with anyio.fail_after(CEILING):
                    code = await process.wait()
        finally:
            held.release()
        # 130, not 3: it left at once, without the answers to its creates.
        assert code == 130
        # The journal is consistent: those inputs are known to have been sent (a re-run reports
        # them as possible duplicates if it cannot tell).
        assert {row["state"] for row in journal_rows(out).values()} == {"submitting"}


async def test_an_interrupt_stops_a_search_at_once_sends_nothing_and_journals_unknown(
    tmp_path: Path, schema_file: Path
) -> None:
    # The create's answer is lost and its job runs for 20 s of the simulator's clock, which stands
    # still until the test moves it: the search for it cannot end before the job does. The first
    # ^C must end the search at once, send nothing new (even though a resent create is allowed),
    # and leave the input for the next run to look for.
    clock = FakeClock()
    async with Simulator(SimulatorConfig(latency=(0.2, 0.4)), clock=clock.now) as sim:
        make_tree(tmp_path / "docs", 1)
        (tmp_path / "docs" / "inv-0.md").write_text(invoice(0, "<!-- ade-sim: latency 20 -->"))
        out = tmp_path / "out"
        sim.inject("create", "lost_response")
        command = extract_command(
            sim, tmp_path / "docs", schema_file, out, "--quiet", "--json", "--resubmit-unknown"
        )
        command += ["--search-time", "600"]
        async with await anyio.open_process(command, env=environment()) as process:
            await wait_until(lambda: sim.stats().lists > 0)  # the search has begun
            process.send_signal(signal.SIGINT)
            assert process.stdout is not None
            summary = json.loads(await receive_rest(process.stdout))
            with anyio.fail_after(CEILING):  # a hang bound; what matters is that the job still runs
                code = await process.wait()
            assert sim.stats().jobs_by_status.get("completed", 0) == 0  # the search did not wait
        assert code == 3
        assert summary["outcome_unknown"] == 1
        assert sim.stats().count("create") == 1  # nothing new was sent
        (row,) = journal_rows(out).values()
        assert row["state"] == "unknown"
        assert row["upload_tokens"]
        await clock.advance(20.0)  # the job ends server-side
        # The next run looks again, finds the job by its token, and adopts it: one job in all.
        done = await cli(
            "extract", tmp_path / "docs", "--schema", schema_file, "--out", out, "--json", sim=sim
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reconciled"] == 1
        assert sim.stats().jobs_total == 1


def test_base_url_over_plain_http_to_another_host_is_a_usage_error(
    tmp_path: Path, schema_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything is sent (nothing listens there, and nothing is tried).

    ``capfd``, not ``capsys``: ``run_extract`` binds ``sys.stderr`` as a default argument when its
    module is first imported, which may be before this test replaces it."""
    from ade_async.cli._main import main

    make_tree(tmp_path / "docs", 1)
    remote = "http://192.0.2.1:8000"  # TEST-NET-1 (RFC 5737): routed nowhere, were it ever tried
    for command in (
        ["extract", str(tmp_path / "docs"), "--schema", str(schema_file), "--out", str(tmp_path / "out")],
        ["jobs", "get", "job-1"],
        ["jobs", "list"],
        ["jobs", "wait", "job-1", "--out", str(tmp_path / "w")],
    ):
        assert main([*command, "--api-key", "sk-cli-secret", "--base-url", remote]) == 2, command
        err = capfd.readouterr().err
        assert remote in err
        assert "plain http://" in err
        assert "sk-cli-secret" not in err


# --- the key from a file ---------------------------------------------------------------------------

API_COMMANDS: list[list[str]] = [
    ["extract", "docs", "--schema", "schema.json", "--out", "out"],
    ["jobs", "list"],
    ["jobs", "get", "job-1"],
    ["jobs", "wait", "job-1", "--out", "w"],
]


async def test_the_key_can_come_from_a_file(sim: Simulator, tmp_path: Path, schema_file: Path) -> None:
    make_tree(tmp_path / "docs", 2)
    key_file = tmp_path / "key"
    key_file.write_text(sim.api_key + "\n")  # as `echo KEY > file` writes it
    connection = ["--api-key-file", str(key_file), "--base-url", sim.base_url]
    await cli(
        "extract",
        tmp_path / "docs",
        "--schema",
        schema_file,
        "--out",
        tmp_path / "out",
        *connection,
        check_exit=0,
    )
    listing = await cli("jobs", "list", *connection, check_exit=0)
    assert len(listing.stdout.splitlines()) == 2
    # The file's content is what is sent: a wrong key in it is refused, and not echoed.
    key_file.write_text("sk-wrong-in-a-file-77\n")
    refused = await cli("jobs", "list", *connection, check_exit=4)
    assert "401" in refused.stderr
    assert "sk-wrong-in-a-file-77" not in refused.stderr + refused.stdout


@pytest.mark.parametrize("command", API_COMMANDS, ids=lambda command: " ".join(command[:2]))
def test_a_key_file_that_cannot_serve_is_a_usage_error(
    command: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from ade_async.cli._main import main

    base = ["--base-url", "http://127.0.0.1:9"]  # never reached: every case stops before a request
    secret = "sk-in-the-file-5e1f"
    files = {
        "missing": (tmp_path / "nope", "cannot read"),
        "a folder": (tmp_path, "cannot read"),
        "empty": (tmp_path / "empty", "is empty"),
        "blank": (tmp_path / "blank", "is empty"),
        "two lines": (tmp_path / "two", "more than one line"),
        "not UTF-8": (tmp_path / "latin1", "not UTF-8"),
    }
    (tmp_path / "empty").write_text("")
    (tmp_path / "blank").write_text(" \n")
    (tmp_path / "two").write_text(f"{secret}\nsecond-line\n")
    (tmp_path / "latin1").write_bytes(b"sk-\xe9t\xe9-5e1f\n")
    for name, (path, reason) in files.items():
        assert main([*command, "--api-key-file", str(path), *base]) == 2, name
        err = capfd.readouterr().err
        assert reason in err, (name, err)
        assert str(path) in err
        assert secret not in err
        assert "second-line" not in err
    # Both ways at once are ambiguous.
    (tmp_path / "good").write_text(secret)
    assert main([*command, "--api-key", "k", "--api-key-file", str(tmp_path / "good"), *base]) == 2
    assert "not allowed with argument" in capfd.readouterr().err


def test_the_help_warns_that_a_key_on_the_command_line_is_visible(capfd: pytest.CaptureFixture[str]) -> None:
    from ade_async.cli._main import main

    for command in API_COMMANDS:
        assert main([*command[:2], "--help"] if command[0] == "jobs" else [command[0], "--help"]) == 0
        shown = " ".join(capfd.readouterr().out.split())
        assert "--api-key-file PATH" in shown
        assert "`ps`" in shown
        assert "VISION_AGENT_API_KEY" in shown
