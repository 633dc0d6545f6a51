"""A 50 MB result: downloaded from ``output_url`` and written to disk whole, with bounded memory.

The command runs in its own process with ``tracemalloc`` on, so the peak counts the command's
memory only (the simulator serving the result lives in the test process). The bound is on bytes,
never on time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from ade_async.testing import Simulator, SimulatorConfig

from .harness import API_KEY

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "notes": {"type": "string"}}}

#: Runs the command with allocation tracing, and reports the traced peak in bytes on stderr.
_TRACED_CLI = (
    "import sys, tracemalloc\n"
    "tracemalloc.start()\n"
    "from ade_async.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('peak-traced-bytes', tracemalloc.get_traced_memory()[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


async def test_a_50_mb_result_is_written_whole_with_bounded_memory(
    tmp_path: Path, figure_notes: list[str]
) -> None:
    # One 25 MB "Notes:" line: the extraction holds it once and extraction_metadata once more,
    # so the result is about 50 MB, far over the 1 MB above which it comes through output_url.
    notes = " ".join(f"w{n:07d}" for n in range(25_000_000 // 9))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.md").write_text(f"Invoice Number: INV-1\nNotes: {notes}\n", encoding="utf-8")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "out"
    config = SimulatorConfig(api_keys=(API_KEY,), latency=(0.1, 0.1))
    async with Simulator(config) as sim:
        command = [sys.executable, "-c", _TRACED_CLI, "extract", str(docs), "--schema", str(schema)]
        command += ["--out", str(out), "--base-url", sim.base_url, "--json", "--quiet"]
        done = await anyio.run_process(command, check=False, env={"VISION_AGENT_API_KEY": API_KEY})
        stats = sim.stats()
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert (stats.downloads, stats.result_url_auth_headers) == (1, 0)

    result_file = out / "big.json"
    size = result_file.stat().st_size
    assert size > 50_000_000
    result = json.loads(result_file.read_bytes())
    assert result["extraction"] == {"invoice_number": "INV-1", "notes": notes}
    assert result["extraction_metadata"]["notes"]["value"] == notes
    assert not list(out.rglob("*.tmp"))

    peak = int(stderr.split("peak-traced-bytes")[1].split()[0])
    figure_notes.append(
        f"A {size / 1e6:.1f} MB result (from a 25 MB upload) through output_url and `ade-async extract`: "
        f"peak traced memory of the command {peak / 1e6:.1f} MB, {peak / size:.2f}x the result."
    )
    # Held at most: the 25 MB upload, the downloaded body and its decoded form (the result is an
    # ExtractResult carrying both), plus transients. One more copy of the result would break this.
    assert peak < 3 * size, f"peak traced memory {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB result"
