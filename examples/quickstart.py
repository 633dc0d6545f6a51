"""Quickstart: extract fields from a folder of invoices through the built-in ADE simulator.

Runs with no API key and no network: it starts ``ade_async.testing.Simulator`` on loopback and
extracts every Markdown file under ``examples/documents`` (invoices, medical reports, contracts...)
with one general schema through ``client.extract_many``: one admission
gate paces the creates, one shared poller watches every job, and each document yields one outcome.
Against the real API, drop the simulator and construct ``Client()`` with your key in
``VISION_AGENT_API_KEY``.

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
SCHEMA = json.loads((HERE / "document_schema.json").read_text(encoding="utf-8"))


async def main() -> int:
    documents = sorted((HERE / "documents").rglob("*.md"))
    failures = 0
    async with (
        Simulator(SimulatorConfig(latency=(0.3, 1.0))) as sim,
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
    ):
        print(f"simulator at {sim.base_url}; extracting {len(documents)} documents", file=sys.stderr)

        def progress(event: ade_async.JobEvent) -> None:  # the poller calls this as jobs move
            if event.kind != "submitted":
                stats = client.stats()
                done = stats.jobs_completed + stats.jobs_failed
                print(f"  [{done}/{len(documents)}] {event.kind}: {event.job_id}", file=sys.stderr)

        client.subscribe(progress)
        async for outcome in client.extract_many(documents, schema=SCHEMA):
            name = documents[outcome.index].relative_to(HERE / "documents").as_posix()
            if isinstance(outcome, ade_async.Failed):
                failures += 1
                print(f"{name}: failed at {outcome.stage}: {outcome.error}", file=sys.stderr)
                continue
            result = outcome.result
            note = "" if result.conforms else "  (206: output does not fully conform to the schema)"
            print(f"{name} -> job {outcome.job_id}{note}")
            print(json.dumps(result.extraction, indent=2, ensure_ascii=False))
        stats = client.stats()
        print(
            f"{stats.jobs_completed} completed, {stats.jobs_failed} failed; "
            f"{stats.creates_sent} creates and {stats.polls_sent} polls sent",
            file=sys.stderr,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
