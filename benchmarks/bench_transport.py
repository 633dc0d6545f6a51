"""How much the client's transport costs over a hand-written aiohttp loop.

Scenario: one job in the simulator (its own process), N concurrent ``GET /v1/ade/extract/jobs/{id}``
calls at a fixed concurrency. Contenders, alternated in one run:

* ``ade_async``: ``Client.get_job`` (error mapping, msgspec decoding into typed models);
* ``baseline``: what a user writes by hand: ``aiohttp.ClientSession.get`` + ``json.loads``.

Reported: requests per second and client CPU microseconds per request (median of the runs), and
the ratio ade_async / baseline. Run from the repository root::

    python benchmarks/bench_transport.py [--requests 5000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from _harness import SIM_KEY, Measurement, median_by_wall, simulator_process, write_results

import ade_async

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
DOC = "Invoice Number: INV-1\nTotal: 100.00\n"


async def timed(requests: int, concurrency: int, one: object) -> Measurement:
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> None:
        async with gate:
            await one()  # type: ignore[operator]

    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(guarded() for _ in range(requests)))
    return Measurement(time.perf_counter() - wall0, time.process_time() - cpu0, requests)


async def run(base_url: str, requests: int, concurrency: int, rounds: int) -> dict[str, object]:
    async with ade_async.Client(api_key=SIM_KEY, base_url=base_url) as client:
        job_id = await client.create_job(DOC, schema=SCHEMA)
        while not (await client.get_job(job_id)).is_terminal:
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SIM_KEY}"}) as session:
            url = f"{base_url}/v1/ade/extract/jobs/{job_id}"

            async def by_hand() -> None:
                async with session.get(url) as response:
                    response.raise_for_status()
                    json.loads(await response.read())

            async def by_client() -> None:
                await client.get_job(job_id)

            await timed(300, concurrency, by_hand)  # warm both pools
            await timed(300, concurrency, by_client)
            ours: list[Measurement] = []
            theirs: list[Measurement] = []
            for _ in range(rounds):
                ours.append(await timed(requests, concurrency, by_client))
                theirs.append(await timed(requests, concurrency, by_hand))
    a, b = median_by_wall(ours), median_by_wall(theirs)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "rounds": rounds,
        "ade_async": {"req_per_s": a.per_second, "cpu_us_per_req": a.cpu_us_per_op},
        "baseline_aiohttp_json": {"req_per_s": b.per_second, "cpu_us_per_req": b.cpu_us_per_op},
        "throughput_ratio": a.per_second / b.per_second,
        "cpu_ratio": a.cpu_us_per_op / b.cpu_us_per_op,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with simulator_process("--latency", "0-0") as base_url:
        figures = asyncio.run(run(base_url, args.requests, args.concurrency, args.rounds))
    path = write_results("transport", figures)
    a = figures["ade_async"]
    b = figures["baseline_aiohttp_json"]
    assert isinstance(a, dict)
    assert isinstance(b, dict)
    print(f"GET job x{args.requests}, concurrency {args.concurrency}, median of {args.rounds} rounds")
    print(f"  ade_async.Client.get_job : {a['req_per_s']:8.0f} req/s  {a['cpu_us_per_req']:6.0f} us CPU/req")
    print(f"  aiohttp + json.loads     : {b['req_per_s']:8.0f} req/s  {b['cpu_us_per_req']:6.0f} us CPU/req")
    ratios = f"throughput {figures['throughput_ratio']:.2f}x, CPU {figures['cpu_ratio']:.2f}x"
    print(f"  ratio (ade_async / baseline): {ratios}")
    print(f"  raw figures: {path}")


if __name__ == "__main__":
    main()
