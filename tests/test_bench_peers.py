"""Smoke test of ``benchmarks/bench_peers.py``: one tiny scenario, every contender, end to end.

It checks the harness counts what it claims (every input delivered once, the right requests, no key
sent to an ``output_url``), not how fast anything is. Needs the optional ``landingai-ade`` SDK (the
``bench`` extra); skipped without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("landingai_ade", reason="the SDK contender needs the 'bench' extra (landingai-ade)")

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_peers.py"
JOBS = 8


def test_output_url_scenario_runs_every_contender_and_counts_each_result_once(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH), "--scenario", "output_url", "--jobs", str(JOBS)]
    # Short jobs and short peer polls keep it to a few seconds; the figures are not the point here.
    command += ["--latency", "0.1-0.3", "--peer-poll", "0.2", "--out-dir", str(tmp_path), "--timeout", "60"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr

    raw = json.loads((tmp_path / "results" / "peers.json").read_text())
    (scenario,) = raw["scenarios"]
    rows = {row["contender"]: row for row in scenario["rows"]}
    assert set(rows) == {"tutorial", "sdk", "extract_many", "cli"}
    for name, row in rows.items():
        assert row["crash"] is None, name
        assert (row["delivered"], row["lost"], row["wrong_results"]) == (JOBS, 0, 0), name
        assert (row["jobs_created"], row["duplicate_jobs"]) == (JOBS, 0), name
        # Every result is above the simulator's threshold: one download each, never with the key.
        assert (row["downloads"], row["result_url_auth_headers"]) == (JOBS, 0), name
        assert row["requests_per_job"]["create"] == 1.0, name
        assert row["requests_per_job"]["download"] == 1.0, name
        assert row["detection_p50_s"] is not None, name
        assert row["lower_bound_s"] > 0, name

    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Goals (issue 9)" in report
    for name in rows:
        assert f"\n| {name} | " in report
