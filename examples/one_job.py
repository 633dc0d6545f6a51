"""One job, the one-liner: ``client.extract`` submits a document and awaits its result.

python examples/one_job.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import ade_async
from ade_async.testing import Simulator, SimulatorConfig

HERE = Path(__file__).parent


async def main() -> None:
    schema = json.loads((HERE / "document_schema.json").read_text(encoding="utf-8"))
    async with (
        Simulator(SimulatorConfig(latency=(0.2, 0.5))) as sim,  # drop this and the two sim.* below
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,  # for the real API
    ):
        result = await client.extract(HERE / "documents" / "medical-report-0002.md", schema=schema)
        print(json.dumps(result.extraction, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
