"""The ``ade-async extract`` command on a big folder: wall time over the quota's bound, event-loop
stalls, CPU per job, journal cost, peak memory.

Scenario: 5,000 small Markdown files, a simulator (its own process) enforcing 200 creates per
second, jobs lasting 0.5 to 2 s. The command runs as a user runs it (a subprocess, ``--rate 200/1s``,
``--quiet --json``). The lower bound is when the last create can go under the quota, all queued at
t = 0, plus the shortest job. Measured:

* wall time over that bound;
* event-loop stalls: the command runs its loop-lag probe (``ade_async/cli/_looplag.py``, switched on
  by an environment variable only benchmarks set), a timer every 5 ms that records how late it
  fires; the largest and the 99th-percentile lateness are reported. A stall delays everything
  sharing the loop: polls, the admission timer, the Redis heartbeat;
* CPU per job: the command process's whole user + system time (start-up included, from
  ``getrusage(RUSAGE_CHILDREN)`` around it) divided by the files;
* the journal's cost per file, measured alone (the four changes of one input's life: queued,
  submitting, submitted, completed): one commit each through the synchronous store, and through
  the command's journal thread with 1,000 inputs at a time (group commit: wall time per input, and
  changes per transaction);
* peak RSS of the command, and the machine's load average before and after (other work on a 2-core
  machine skews every figure: run it twice, at a quiet moment);
* the run report: the command runs with ``--no-report`` (the figures above are the run's alone),
  then ``ade-async report OUT`` is timed on its own, and the page's size noted. ``--keep DIR``
  keeps the documents and the output folder (with ``report.html``) in DIR.

Each run appends a row to ``benchmarks/results/cli-runs.json`` (with ``--label``, the commit and the
load) and rewrites the command's section of ``benchmarks/RESULTS.md`` from the latest rows. Run from
the repository root::

    python benchmarks/bench_cli.py [--files 5000] [--rate 200] [--label after] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _harness import RESULTS_DIR, SIM_KEY, peak_rss_kb, quota_schedule_end, simulator_process, write_results

from ade_async.cli._journal import Journal, JournalStore, State
from ade_async.cli._looplag import ENV as LOOP_LAG_ENV

RESULTS_MD = Path(__file__).parent / "RESULTS.md"
RUNS = RESULTS_DIR / "cli-runs.json"
#: The command's section of RESULTS.md lies between these lines (bench_peers.py keeps it).
BEGIN, END = "<!-- bench_cli: begin -->", "<!-- bench_cli: end -->"
#: Rows kept in the RESULTS.md table (the JSON keeps every run).
SHOWN_RUNS = 12

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
MIN_LATENCY, MAX_LATENCY = 0.5, 2.0


def lower_bound(files: int, rate: int) -> float:
    return quota_schedule_end(files, ((rate, 1.0),)) + MIN_LATENCY


def journal_cost(files: int, folder: Path) -> float:
    """Microseconds of journal work per input, over a whole input's life, one commit per change
    (the journal's synchronous store: what every change cost before group commit)."""
    journal = JournalStore(folder / "journal.sqlite")
    started = time.perf_counter()
    for i in range(files):
        key = f"docs/file-{i:05d}.md"
        journal.restart(key, source=key, content_sha256=f"{i:064x}", settings_sha256="s" * 64)
        journal.record(key, State.SUBMITTING, new_submission=True)
        journal.record(key, State.SUBMITTED, job_id=f"job-{i}")
        journal.record(key, State.COMPLETED, job_id=f"job-{i}")
    elapsed = time.perf_counter() - started
    journal.close()
    return elapsed / files * 1e6


def group_commit_cost(files: int, folder: Path, window: int = 1000) -> tuple[float, float]:
    """The same four changes per input through the command's async journal, ``window`` inputs at
    a time (the command's default): wall microseconds per input, and changes per transaction."""

    async def run() -> tuple[float, float]:
        async with Journal(folder / "journal-async.sqlite") as journal:
            room = anyio.Semaphore(window)

            async def life(i: int) -> None:
                key = f"docs/file-{i:05d}.md"
                try:
                    digest = f"{i:064x}"
                    await journal.restart(key, source=key, content_sha256=digest, settings_sha256="s" * 64)
                    await journal.record(key, State.SUBMITTING, new_submission=True)
                    await journal.record(key, State.SUBMITTED, job_id=f"job-{i}")
                    await journal.record(key, State.COMPLETED, job_id=f"job-{i}")
                finally:
                    room.release()

            started = time.perf_counter()
            async with anyio.create_task_group() as tasks:
                for i in range(files):
                    await room.acquire()
                    tasks.start_soon(life, i)
            elapsed = time.perf_counter() - started
            return elapsed / files * 1e6, 4 * files / journal.transactions

    return anyio.run(run)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--label", default="", help="a word for this run's row (e.g. before, after)")
    parser.add_argument("--keep", type=Path, default=None, help="work in this (empty) folder and keep it")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            root = args.keep
            root.mkdir(parents=True, exist_ok=True)
        docs = root / "docs"
        for i in range(args.files):
            folder = docs / f"batch-{i // 500:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"invoice-{i:05d}.md").write_text(
                f"# Invoice\n\nInvoice Number: INV-{i}\nTotal: {i}.50\n"
            )
        schema = root / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        journal_us = journal_cost(args.files, root)
        group_us, per_transaction = group_commit_cost(args.files, root)
        quota = f"{args.rate}/1s"
        with simulator_process(
            "--quota", quota, "--latency", f"{MIN_LATENCY}-{MAX_LATENCY}", "--retry-after", "none"
        ) as url:
            command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
            command += ["--out", str(root / "out"), "--rate", quota, "--api-key", SIM_KEY, "--base-url", url]
            command += ["--quiet", "--json", "--no-report"]
            environment = {**os.environ, LOOP_LAG_ENV: "1"}
            load_before = os.getloadavg()[0]
            # The simulator is a child too, but it is reaped only after this: the delta is the command's.
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
            )
            peak = 0
            while process.poll() is None:
                peak = max(peak, peak_rss_kb(process.pid) or 0)
                time.sleep(0.2)
            wall = time.perf_counter() - started
            children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            load_after = os.getloadavg()[0]
            cpu = (children_after.ru_utime - children_before.ru_utime) + (
                children_after.ru_stime - children_before.ru_stime
            )
            stdout, stderr = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"ade-async exited {process.returncode}: {stderr}")
            summary = json.loads(stdout)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ade_async", "report", str(root / "out")], check=True)
        report_s = time.perf_counter() - started
        report_bytes = (root / "out" / ".ade-async" / "report.html").stat().st_size
        outputs = sum(1 for _ in (root / "out").rglob("*.json"))
    bound = lower_bound(args.files, args.rate)
    lag = summary.get("loop_lag", {})
    figures = {
        "files": args.files,
        "quota": quota,
        "latency_s": [MIN_LATENCY, MAX_LATENCY],
        "lower_bound_s": bound,
        "wall_s": wall,
        "over_bound": wall / bound,
        "stall_max_ms": lag.get("max_ms"),
        "stall_p99_ms": lag.get("p99_ms"),
        "cpu_s": cpu,
        "cpu_ms_per_job": cpu / args.files * 1000,
        "journal_us_per_file": journal_us,
        "journal_group_commit_us_per_file": group_us,
        "journal_changes_per_transaction": per_transaction,
        "peak_rss_mb": peak / 1024,
        "load_before": load_before,
        "load_after": load_after,
        "outputs": outputs,
        "report_s": report_s,
        "report_bytes": report_bytes,
        "summary": summary,
    }
    path = write_results("cli", figures)
    record_run(figures, args.label)
    print(f"{args.files} files, quota {quota}, jobs of {MIN_LATENCY}-{MAX_LATENCY} s")
    print(f"  wall {wall:.1f} s over a lower bound of {bound:.1f} s: {wall / bound:.3f}x")
    print(f"  event-loop stalls: max {lag.get('max_ms')} ms, p99 {lag.get('p99_ms')} ms")
    print(f"  CPU: {cpu:.2f} s, {cpu / args.files * 1000:.2f} ms per job")
    print(f"  journal: {journal_us:.0f} us per file (four commits)")
    print(
        f"  journal, group commit (1,000 inputs at a time): {group_us:.0f} us per file, "
        f"{per_transaction:.1f} changes per transaction"
    )
    print(f"  peak RSS of the command: {peak / 1024:.0f} MB; outputs written: {outputs}")
    print(f"  load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}")
    print(f"  requests: {summary['requests']}")
    print(f"  run report: `ade-async report` {report_s:.2f} s, {report_bytes / 1e3:.0f} KB")
    print(f"raw figures: {path}; RESULTS.md updated")


def record_run(figures: dict[str, Any], label: str) -> None:
    """Append this run to ``results/cli-runs.json`` and rewrite the command's RESULTS.md section."""
    runs: list[dict[str, Any]] = json.loads(RUNS.read_text()) if RUNS.exists() else []
    runs.append(
        {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "commit": commit(),
            "label": label,
            **{
                name: figures[name]
                for name in (
                    "files",
                    "over_bound",
                    "wall_s",
                    "lower_bound_s",
                    "stall_max_ms",
                    "stall_p99_ms",
                    "cpu_ms_per_job",
                    "journal_us_per_file",
                    "journal_group_commit_us_per_file",
                    "peak_rss_mb",
                    "load_before",
                    "load_after",
                )
            },
        }
    )
    RUNS.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    section = render(runs[-SHOWN_RUNS:])
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS_MD.write_text(text, encoding="utf-8")


def render(runs: list[dict[str, Any]]) -> str:
    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        BEGIN,
        "## The command on a big folder (`benchmarks/bench_cli.py`)",
        "",
        "Written by `benchmarks/bench_cli.py` (one row per run, newest last; every run in",
        "`benchmarks/results/cli-runs.json`). Files under a 200 creates/s quota, jobs of 0.5-2 s. Stalls:",
        "how late a 5 ms timer on the command's event loop fired (max, p99). CPU: the command process's",
        "user + system time per job, start-up included. Journal: the four changes of one input's life,",
        "alone: one commit each / through the journal thread, 1,000 inputs at a time (group commit).",
        "Load: the machine's 1-minute load average before / after (2 cores: above 2 means other work).",
        "",
        "| date | commit | label | files | wall / bound | stall max / p99 ms | CPU ms/job "
        "| journal us/file: one commit each / grouped | peak RSS MB | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['date']} | `{run['commit']}` | {run['label']} | {run['files']} "
            f"| {run['over_bound']:.3f}x ({run['wall_s']:.1f} / {run['lower_bound_s']:.1f} s) "
            f"| {number(run['stall_max_ms'], 1)} / {number(run['stall_p99_ms'], 1)} "
            f"| {run['cpu_ms_per_job']:.2f} | {run['journal_us_per_file']:.0f} / "
            f"{number(run.get('journal_group_commit_us_per_file'), 0)} | {run['peak_rss_mb']:.0f} "
            f"| {run['load_before']:.1f} / {run['load_after']:.1f} |"
        )
    lines.append(END)
    return "\n".join(lines)


def commit() -> str:
    """The short commit of the code measured, with ``+`` when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "ade_async"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()
