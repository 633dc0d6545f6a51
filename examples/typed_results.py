"""Typed schemas and results: a msgspec Struct is both the schema and the result type.

python examples/typed_results.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

import ade_async
from ade_async.testing import Simulator, SimulatorConfig

HERE = Path(__file__).parent


class Invoice(msgspec.Struct):
    """Fields to extract; msgspec turns this class into the JSON Schema sent to the API."""

    invoice_number: str
    invoice_date: str
    vendor: str
    total_amount: float
    paid: bool


async def main() -> None:
    async with (
        Simulator(SimulatorConfig(latency=(0.2, 0.5))) as sim,
        ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
    ):
        result = await client.extract(HERE / "documents" / "invoice-0002.md", schema=Invoice)
        invoice = result.value  # an Invoice, validated: the result is typed by its schema
        when = invoice.invoice_date
        print(f"{invoice.vendor} billed {invoice.total_amount:.2f} on {when}; paid: {invoice.paid}")


if __name__ == "__main__":
    asyncio.run(main())
