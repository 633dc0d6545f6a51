"""Quickstart: extract fields from three invoices through the built-in ADE simulator.

Runs with no API key and no network: it starts ``ade_async.testing.Simulator`` on loopback, creates
one extract job per Markdown file in ``examples/documents``, waits for each job, and prints the
extracted fields. Against the real API, drop the simulator and construct ``Client()`` with your key
in ``VISION_AGENT_API_KEY``.

    python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import ade_async
from ade_async.testing import Simulator, SimulatorConfig

HERE = Path(__file__).parent
SCHEMA = json.loads((HERE / "invoice_schema.json").read_text(encoding="utf-8"))


async def wait_for(client: ade_async.Client, job_id: str) -> ade_async.ExtractJobStatusResponse:
    """Poll one job until it ends: 0.2 s, growing by half each time (the simulator is quick)."""
    delay = 0.2
    while True:
        job = await client.get_job(job_id)
        if job.is_terminal:
            return job
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 2.0)


async def main() -> int:
    documents = sorted((HERE / "documents").glob("*.md"))
    async with (
        Simulator(SimulatorConfig(latency=(0.3, 1.0))) as sim,
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
    ):
        print(f"simulator at {sim.base_url}; submitting {len(documents)} documents", file=sys.stderr)
        job_ids = [await client.create_job(path, schema=SCHEMA) for path in documents]
        jobs = await asyncio.gather(*(wait_for(client, job_id) for job_id in job_ids))
        failures = 0
        for path, job in zip(documents, jobs, strict=True):
            try:
                result = await client.fetch_result(job)
            except ade_async.JobError as exc:
                failures += 1
                print(f"{path.name}: {exc}", file=sys.stderr)
                continue
            note = "" if result.conforms else "  (206: output does not fully conform to the schema)"
            print(f"{path.name} -> job {job.job_id}{note}")
            print(json.dumps(result.extraction, indent=2, ensure_ascii=False))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
