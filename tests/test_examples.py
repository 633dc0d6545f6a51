"""Every example runs, against the simulator, so none can rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``examples/NAME`` as a user would and check it succeeded."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def test_quickstart_extracts_every_invoice() -> None:
    done = run_example("quickstart.py")
    root = EXAMPLES / "documents"
    documents = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md"))
    assert len(documents) >= 20
    for name in documents:
        assert f"{name} -> job " in done.stdout
    # Each result is printed as JSON after its header line; one invoice's values are known.
    first = done.stdout.split("invoice-0001.md -> job ", 1)[1].split("\n", 1)[1]
    payload = json.loads(first[: first.index("\n}") + 2])
    assert payload["document_type"] == "invoice"
    assert payload["document_number"] == "INV-2026-0001"
    assert payload["total_amount"] == 2520.0
    assert payload["currency"] == "EUR"


def test_typed_results_example() -> None:
    done = run_example("typed_results.py")
    assert done.stdout.strip() == "Fabrikam Print & Copy billed 1180.45 on 2026-04-02; paid: True"


def test_fastapi_app_self_test() -> None:
    done = run_example("fastapi_app.py", "--self-test")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("POST /extract/invoice -> job ")
    extraction = json.loads("\n".join(lines[1 : lines.index("}") + 1]))
    assert extraction["invoice_number"] == "INV-2026-0001"
    assert extraction["total_amount"] == 2520.0
    assert extraction["currency"] == "EUR"
    assert lines[-1].startswith("GET /jobs/")
    assert lines[-1].endswith("-> completed: document_type contract")


def test_one_job_example() -> None:
    done = run_example("one_job.py")
    extraction = json.loads(done.stdout)
    assert extraction["document_type"] == "medical_report"
