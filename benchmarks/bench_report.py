"""The run report at size: how long ``ade-async report OUT`` takes, and how big the page is.

Issue 19 asks for a 100,000-input journal to render in under 10 s into a file under 5 MB. This
builds journals of 1,000, 10,000 and 100,000 inputs as a long run leaves them (the same builder
as ``tests/test_report.py``: 1 % failed, some pending, unknown and possible duplicates, a 429 every
1,000 creates, a counter sample a second, two quota windows), then measures, three times each:

* the command as a user runs it, ``ade-async report OUT`` in a fresh process (interpreter and
  matplotlib start-up included): wall time;
* inside one process: reading the journal into figures, and drawing the page, separately;
* the size of ``report.html``.

Writes ``benchmarks/results/report.json``. Run from the repository root::

    python benchmarks/bench_report.py [--sizes 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import write_results

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from report_journal import build_journal

from ade_async.cli._journal import JournalStore
from ade_async.cli._report import render_html, report_path
from ade_async.cli._report_data import compute_figures, journal_path

TRIES = 3


def measure(inputs: int, folder: Path) -> dict[str, float]:
    started = time.perf_counter()
    build_journal(folder, inputs)
    built = time.perf_counter() - started
    command = [sys.executable, "-m", "ade_async", "report", str(folder)]
    walls, reads, draws = [], [], []
    for _ in range(TRIES):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
        started = time.perf_counter()
        store = JournalStore(journal_path(folder))
        try:
            figures = compute_figures(folder, store)
        finally:
            store.close()
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        render_html(figures)
        draws.append(time.perf_counter() - started)
    return {
        "inputs": inputs,
        "journal_build_s": built,
        "command_wall_s_median": statistics.median(walls),
        "command_wall_s_max": max(walls),
        "read_figures_s_median": statistics.median(reads),
        "draw_page_s_median": statistics.median(draws),
        "report_bytes": report_path(folder).stat().st_size,
        "journal_bytes": journal_path(folder).stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for inputs in args.sizes:
            row = measure(inputs, Path(scratch) / f"out-{inputs}")
            rows.append(row)
            print(
                f"{inputs:>7,} inputs: `ade-async report` {row['command_wall_s_median']:.2f} s "
                f"(max {row['command_wall_s_max']:.2f}; figures {row['read_figures_s_median']:.2f} s, "
                f"page {row['draw_page_s_median']:.2f} s), report {row['report_bytes'] / 1e6:.2f} MB, "
                f"journal {row['journal_bytes'] / 1e6:.1f} MB"
            )
    path = write_results("report", {"tries": TRIES, "runs": rows})
    print(f"raw figures: {path}")


if __name__ == "__main__":
    main()
