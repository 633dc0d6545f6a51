"""Crash trials: run ``ade-async extract`` over a folder, SIGKILL it at random moments, re-run it
each time, then let a last run finish, and check that nothing was lost or paid twice silently.

Usage::

    python scripts/crash_trials.py                       # 300 files, 20 kills
    python scripts/crash_trials.py --files 30 --kills 4 --json   # the short version the tests run

The simulator runs in this process (on loopback); each run of the command is a child process
killed with SIGKILL, the harshest stop there is (no handler runs, no buffer is flushed). A quota
(``--rate``) paces the creates so that kills land part-way through the folder; a share of creates
is slow (``--slow-rate``, 0.5 s) and a share of their answers is lost on purpose (``--lost-rate``),
so both kinds of ambiguity occur: an answer lost on the wire (the running client looks for the job)
and a process killed with creates on the wire (the next run looks for them, from the upload tokens
in its journal). The runs use ``--resubmit-unknown`` and ``--search-time 5``, so the last run ends
with every input done; each resubmission is counted, and the checks below tell whether any of them
actually made a second job.

Checks, after the last run:

* every input has exactly one result file, with its own extraction, and no error file;
* no input got a job after the journal had acknowledged one for it (the simulator's job list,
  matched to inputs by content, against the journal's first ``submitted`` event);
* every input with more than one job in the simulator was sent more than once by the journal's
  count (``submissions``): a duplicate is never silent;
* no temporary file is left in the output folder: a kill during an atomic write leaves one, and the
  next run must remove it (the figures count those the kills left).

Prints the figures (kills, unanswered creates left by kills, adopted, resubmitted, jobs, duplicate
jobs, wall time) and exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from ade_async.testing import Faults, Simulator, SimulatorConfig

SCHEMA = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}


@dataclass
class Report:
    """The figures and findings of one set of trials."""

    inputs: int
    kills: int = 0
    finished_before_kill: int = 0  # runs that ended on their own before their kill moment
    unanswered_at_kills: int = 0  # inputs journaled "submitting" when a run was killed
    adopted_after_kill: int = 0  # ...whose next run found and adopted the job
    resubmitted_after_kill: int = 0  # ...whose next run sent a new create
    temporaries_left_by_kills: int = 0  # temporary files found in OUT right after the kills
    temporaries_left: int = 0  # ...and after the last run (must be 0)
    results: int = 0
    error_files: int = 0
    jobs: int = 0
    duplicate_jobs: int = 0
    lost_answers: int = 0  # create answers the simulator dropped on purpose
    final_exit_code: int | None = None
    final_summary: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def invoice(n: int) -> str:
    return f"# Invoice {n}\n\nInvoice Number: INV-{n}\nTotal: {n}.25\n"


def make_inputs(docs: Path, count: int) -> dict[str, int]:
    """``count`` distinct invoices in a few sub-folders; returns relative path -> number."""
    numbers: dict[str, int] = {}
    for n in range(count):
        relative = Path(f"batch-{n % 7}") / f"inv-{n}.md"
        (docs / relative).parent.mkdir(parents=True, exist_ok=True)
        (docs / relative).write_text(invoice(n))
        numbers[relative.as_posix()] = n
    return numbers


def child_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_AGENT", "LANDINGAI_ADE"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def temporary_files(out: Path) -> list[str]:
    """Every ``*.tmp`` file under ``out`` (half-written results), relative to it."""
    if not out.exists():
        return []
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name.endswith(".tmp"))


def journal_rows(out: Path) -> list[sqlite3.Row]:
    path = out / ".ade-async" / "journal.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return list(db.execute("SELECT * FROM inputs"))


def journal_events(out: Path) -> list[tuple[int, str, str, str | None, float]]:
    path = out / ".ade-async" / "journal.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT id, key, state, job_id, at FROM events ORDER BY id"))


async def run_trials(
    work: Path,
    *,
    files: int,
    kills: int,
    seed: int,
    rate: int,
    lost_rate: float,
    slow_rate: float,
    kill_window: tuple[float, float],
) -> Report:
    """Run the trials in ``work`` (which must be empty) and check the outcome."""
    started = time.monotonic()
    rng = random.Random(seed)
    docs, out, schema = work / "docs", work / "out", work / "schema.json"
    numbers = make_inputs(docs, files)
    schema.write_text(json.dumps(SCHEMA))
    report = Report(inputs=files)
    # Slow creates keep some on the wire when a kill lands; lost answers make the running client
    # search; a quota paces the creates, so a run is killed part-way through its folder.
    faults = Faults(lost_response_rate=lost_rate, slow_rate={"create": slow_rate}, slow_seconds=0.5)
    config = SimulatorConfig(latency=(0.2, 1.5), list_lag=0.5, quota=((rate, 1.0),), faults=faults, seed=seed)
    async with Simulator(config) as sim:
        command = [
            sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema),
            "--out", str(out), "--api-key", sim.api_key, "--base-url", sim.base_url,
            "--quiet", "--json", "--search-time", "5", "--resubmit-unknown", "--rate", f"{rate}/1s",
        ]  # fmt: skip
        # (input key, id of its last event) for every input a kill left in "submitting".
        unanswered: set[tuple[str, int]] = set()
        for _ in range(kills):
            async with await anyio.open_process(command, env=child_environment()) as process:
                await anyio.sleep(rng.uniform(*kill_window))
                with contextlib.suppress(ProcessLookupError):  # it had finished already: not a kill
                    process.send_signal(signal.SIGKILL)
                code = await process.wait()
            if code != -signal.SIGKILL:
                report.finished_before_kill += 1
                if code != 0:
                    report.problems.append(f"a run exited {code} before it could be killed")
                continue
            report.kills += 1
            report.temporaries_left_by_kills += len(temporary_files(out))
            last_event: dict[str, int] = {}
            for event_id, key, *_ in journal_events(out):
                last_event[key] = event_id
            for row in journal_rows(out):
                if row["state"] == "submitting":
                    unanswered.add((row["key"], last_event[row["key"]]))
        with anyio.fail_after(300):
            final = await anyio.run_process(command, env=child_environment(), check=False)
        report.final_exit_code = final.returncode
        try:
            report.final_summary = json.loads(final.stdout.decode())
        except ValueError:
            report.problems.append(f"the last run printed no summary: {final.stderr.decode()[-500:]}")
        report.lost_answers = sim.stats().faults.get("lost_response", 0)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{sim.base_url}/_simulator/jobs") as answer,
        ):
            jobs: list[dict[str, Any]] = await answer.json()
    report.wall_seconds = time.monotonic() - started
    _check(report, out, numbers, jobs, unanswered)
    return report


def _check(
    report: Report,
    out: Path,
    numbers: dict[str, int],
    jobs: list[dict[str, Any]],
    unanswered: set[tuple[str, int]],
) -> None:
    problems = report.problems
    if report.final_exit_code != 0:
        problems.append(f"the last run exited {report.final_exit_code}")
    # Every input: exactly one result, its own, and no error file.
    for relative, n in numbers.items():
        result = out / Path(relative).with_suffix(".json")
        if not result.exists():
            problems.append(f"{relative}: no result")
            continue
        report.results += 1
        if json.loads(result.read_text())["extraction"].get("invoice_number") != f"INV-{n}":
            problems.append(f"{relative}: the result is not its own")
    report.error_files = len(list(out.rglob("*.error.json")))
    if report.error_files:
        problems.append(f"{report.error_files} error files left")
    leftovers = temporary_files(out)
    report.temporaries_left = len(leftovers)
    if leftovers:
        problems.append(f"{len(leftovers)} temporary files left: {leftovers[:5]}")
    stray = [p for p in out.rglob("*.json") if not p.name.endswith(".error.json")]
    if len(stray) != len(numbers):
        problems.append(f"{len(stray)} result files for {len(numbers)} inputs")
    # The simulator's jobs, matched to inputs by content.
    by_digest = {hashlib.sha256(invoice(n).encode()).hexdigest(): rel for rel, n in numbers.items()}
    jobs_of: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        key = by_digest.get(job["content_sha256"])
        if key is None:
            problems.append(f"job {job['job_id']} matches no input")
            continue
        jobs_of.setdefault(key, []).append(job)
    report.jobs = len(jobs)
    report.duplicate_jobs = sum(len(j) - 1 for j in jobs_of.values())
    # The journal: the first acknowledged job of each input, and how often each was sent.
    acknowledged: dict[str, tuple[str, float]] = {}  # key -> (job id, Unix time journaled)
    events = journal_events(out)
    for _, key, state, job_id, at in events:
        if state == "submitted" and job_id and key not in acknowledged:
            acknowledged[key] = (job_id, at)
    # The simulator's times are this process's time.monotonic(); the journal's are Unix times.
    to_wall = time.time() - time.monotonic()
    submissions = {row["key"]: row["submissions"] for row in journal_rows(out)}
    for key, its_jobs in jobs_of.items():
        created = {job["job_id"]: job["created"] + to_wall for job in its_jobs}
        if key not in acknowledged or acknowledged[key][0] not in created:
            problems.append(f"{key}: its acknowledged job {acknowledged.get(key)} is not among its jobs")
            continue
        first, acknowledged_at = acknowledged[key]
        # A job made after the journal held the first job's id: a resubmission of an acknowledged
        # input (0.05 s of slack for the two clocks' reading).
        late = [job_id for job_id, at in created.items() if at > acknowledged_at + 0.05]
        if late:
            problems.append(f"{key}: submitted again after job {first} was acknowledged: {late}")
        if len(its_jobs) > 1 and submissions.get(key, 0) < len(its_jobs):
            problems.append(
                f"{key}: {len(its_jobs)} jobs but the journal counts {submissions.get(key)} sends"
            )
    # What became of the creates a kill left unanswered.
    for key, after in unanswered:
        following = next((e[2] for e in events if e[1] == key and e[0] > after), None)
        if following == "submitted":
            report.adopted_after_kill += 1
        elif following == "submitting":
            report.resubmitted_after_kill += 1
    report.unanswered_at_kills = len(unanswered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--rate", type=int, default=10, help="creates per second (quota and --rate)")
    parser.add_argument("--lost-rate", type=float, default=0.1, help="share of create answers lost")
    parser.add_argument("--slow-rate", type=float, default=0.3, help="share of creates that take 0.5 s")
    parser.add_argument("--kill-after", type=float, nargs=2, default=(0.6, 2.5), metavar=("MIN", "MAX"))
    parser.add_argument("--work", type=Path, default=None, help="a folder to keep (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    # A killed client leaves the simulator's server mid-request: expected here, not worth a traceback.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)

    async def go(work: Path) -> Report:
        return await run_trials(
            work,
            files=args.files,
            kills=args.kills,
            seed=args.seed,
            rate=args.rate,
            lost_rate=args.lost_rate,
            slow_rate=args.slow_rate,
            kill_window=(args.kill_after[0], args.kill_after[1]),
        )

    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        report = anyio.run(go, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="ade-crash-") as temporary:
            report = anyio.run(go, Path(temporary))
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}))
    else:
        summary = report.final_summary
        print(
            f"{report.kills} kills over {report.inputs} inputs in {report.wall_seconds:.1f} s "
            f"({report.finished_before_kill} runs ended before their kill moment)\n"
            f"  unanswered creates left by kills: {report.unanswered_at_kills} "
            f"(adopted by the next run: {report.adopted_after_kill}, "
            f"sent again: {report.resubmitted_after_kill})\n"
            f"  create answers lost on the wire: {report.lost_answers} "
            f"(last run: {summary.get('reconciled', '?')} reconciled)\n"
            f"  results: {report.results}/{report.inputs}, error files: {report.error_files}\n"
            f"  temporary files left by kills: {report.temporaries_left_by_kills} "
            f"(after the last run: {report.temporaries_left})\n"
            f"  simulator jobs: {report.jobs}, duplicate jobs: {report.duplicate_jobs}, "
            f"last run's possible duplicates: {summary.get('possible_duplicates', '?')}\n"
            f"  last run exit code: {report.final_exit_code}"
        )
        for problem in report.problems:
            print(f"  PROBLEM: {problem}")
        print("OK" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
