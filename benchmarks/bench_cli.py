"""The ``ade-async extract`` command on a big folder: wall time over the quota's bound, journal
cost, peak memory.

Scenario: 5,000 small Markdown files, a simulator (its own process) enforcing 200 creates per
second, jobs lasting 0.5 to 2 s. The command runs as a user runs it (a subprocess, ``--rate 200/1s``,
``--quiet --json``). The lower bound is when the last create can go under the quota, all queued at
t = 0, plus the shortest job. Also measured alone: the journal's cost per file (the four commits of
one input's life: queued, submitting, submitted, completed). Run from the repository root::

    python benchmarks/bench_cli.py [--files 5000] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import SIM_KEY, peak_rss_kb, quota_schedule_end, simulator_process, write_results

from ade_async.cli._journal import Journal, State

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
MIN_LATENCY, MAX_LATENCY = 0.5, 2.0


def lower_bound(files: int, rate: int) -> float:
    return quota_schedule_end(files, ((rate, 1.0),)) + MIN_LATENCY


def journal_cost(files: int, folder: Path) -> float:
    """Microseconds of journal work per input, over a whole input's life."""
    journal = Journal(folder / "journal.sqlite")
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
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
        quota = f"{args.rate}/1s"
        with simulator_process(
            "--quota", quota, "--latency", f"{MIN_LATENCY}-{MAX_LATENCY}", "--retry-after", "none"
        ) as url:
            command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
            command += ["--out", str(root / "out"), "--rate", quota, "--api-key", SIM_KEY, "--base-url", url]
            command += ["--quiet", "--json"]
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            peak = 0
            while process.poll() is None:
                peak = max(peak, peak_rss_kb(process.pid) or 0)
                time.sleep(0.2)
            wall = time.perf_counter() - started
            stdout, stderr = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"ade-async exited {process.returncode}: {stderr}")
            summary = json.loads(stdout)
        outputs = sum(1 for _ in (root / "out").rglob("*.json"))
    bound = lower_bound(args.files, args.rate)
    figures = {
        "files": args.files,
        "quota": quota,
        "latency_s": [MIN_LATENCY, MAX_LATENCY],
        "lower_bound_s": bound,
        "wall_s": wall,
        "over_bound": wall / bound,
        "journal_us_per_file": journal_us,
        "peak_rss_mb": peak / 1024,
        "outputs": outputs,
        "summary": summary,
    }
    path = write_results("cli", figures)
    print(f"{args.files} files, quota {quota}, jobs of {MIN_LATENCY}-{MAX_LATENCY} s")
    print(f"  wall {wall:.1f} s over a lower bound of {bound:.1f} s: {wall / bound:.3f}x")
    print(f"  journal: {journal_us:.0f} us per file (four commits)")
    print(f"  peak RSS of the command: {peak / 1024:.0f} MB; outputs written: {outputs}")
    print(f"  requests: {summary['requests']}")
    print(f"raw figures: {path}")


if __name__ == "__main__":
    main()
