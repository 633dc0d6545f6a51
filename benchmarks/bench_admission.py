"""Creating many jobs under a quota: ade_async's admission gate against what users write instead.

Scenario (defined in ``SCENARIO``): N creates against a simulator (its own process) enforcing a
two-window quota, by default 1,000 creates under 50 per second and 600 per 20 seconds. Contenders,
each against a fresh simulator, in one run:

* ``ade_async, known quota``: ``Client(rate_limit=RateLimit(windows=QUOTA))``;
* ``ade_async, adaptive``: ``Client()`` with the quota unknown, once with the simulator sending
  ``Retry-After`` and once without (the documented API sends none);
* ``aiolimiter bucket``: ``AsyncLimiter(50, 1)`` in front of plain aiohttp creates, retrying a 429
  after ``Retry-After`` or an exponential backoff (what a careful user writes with the popular
  limiter);
* ``retry on 429``: no limiter, 50 concurrent creates, the same 429 retry.

Reported per contender: wall time divided by the quota's lower bound (the exact schedule of N
creates under the windows, from t = 0), the most creates the simulator accepted in any window of
each period, and the 429s it sent. Run from the repository root::

    python benchmarks/bench_admission.py [--creates 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from _harness import SIM_KEY, quota_schedule_end, simulator_process, write_results
from aiolimiter import AsyncLimiter

import ade_async

QUOTA: tuple[tuple[int, float], ...] = ((50, 1.0), (600, 20.0))
SCHEMA = json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}})
CONCURRENCY = 50  # the peers' concurrency; ade_async needs none (its gate queues every create)


def lower_bound(creates: int, quota: tuple[tuple[int, float], ...]) -> float:
    """When the last of ``creates`` creates can go at the earliest, all queued at t = 0."""
    return quota_schedule_end(creates, quota)


async def with_ade_async(base_url: str, creates: int, rate_limit: ade_async.RateLimit | None) -> None:
    async with ade_async.Client(api_key=SIM_KEY, base_url=base_url, rate_limit=rate_limit) as client:
        await asyncio.gather(*(client.create_job(f"n: {i}", schema=SCHEMA) for i in range(creates)))


async def raw_create(session: aiohttp.ClientSession, url: str, i: int) -> tuple[int, float | None]:
    form = aiohttp.FormData()
    form.add_field("schema", SCHEMA)
    form.add_field("markdown", f"n: {i}".encode(), filename="doc.md")
    async with session.post(url, data=form) as response:
        await response.read()
        hint = response.headers.get("Retry-After")
        return response.status, float(hint) if hint and hint.isdigit() else None


async def create_retrying_429(
    session: aiohttp.ClientSession, url: str, i: int, before: Callable[[], Awaitable[None]]
) -> None:
    for attempt in range(50):
        await before()
        status, hint = await raw_create(session, url, i)
        if status == 202:
            return
        if status != 429:
            raise RuntimeError(f"create answered {status}")
        # Retry-After when given, else exponential backoff with jitter: the usual advice.
        await asyncio.sleep(hint if hint is not None else random.uniform(0, min(30.0, 0.5 * 2**attempt)))
    raise RuntimeError("gave up after 50 attempts")


async def with_peer(base_url: str, creates: int, limiter: AsyncLimiter | None) -> None:
    url = f"{base_url}/v1/ade/extract/jobs"
    gate = asyncio.Semaphore(CONCURRENCY)

    async def before() -> None:
        if limiter is not None:
            await limiter.acquire()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        async with gate:
            await create_retrying_429(session, url, i, before)

    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(one(session, i) for i in range(creates)))


def read_stats(base_url: str) -> dict[str, Any]:
    import urllib.request

    periods = ",".join(str(p) for _, p in QUOTA)
    with urllib.request.urlopen(f"{base_url}/_simulator/stats?windows={periods}", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def run_contender(
    name: str, retry_after: str, creates: int, body: Callable[[str], Awaitable[None]]
) -> dict[str, Any]:
    quota_args = [arg for count, period in QUOTA for arg in ("--quota", f"{count}/{period:g}s")]
    with simulator_process(*quota_args, "--retry-after", retry_after, "--latency", "1-1") as base_url:
        started = time.perf_counter()
        asyncio.run(body(base_url))
        wall = time.perf_counter() - started
        stats = read_stats(base_url)
    return {
        "contender": name,
        "retry_after": retry_after,
        "wall_s": wall,
        "creates_accepted": stats["creates_accepted"],
        "http_429": stats["rate_limited"],
        "max_in_window": stats["max_creates_in_window"],
        "duplicate_jobs": stats["duplicate_jobs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--only", default="", help="run only contenders whose name contains this text")
    args = parser.parse_args()
    n = args.creates
    bound = lower_bound(n, QUOTA)
    known = ade_async.RateLimit(windows=QUOTA)
    contenders: list[tuple[str, str, Callable[[str], Awaitable[None]]]] = [
        ("ade_async, known quota", "seconds", lambda url: with_ade_async(url, n, known)),
        ("ade_async, adaptive (Retry-After sent)", "seconds", lambda url: with_ade_async(url, n, None)),
        ("ade_async, adaptive (no Retry-After)", "none", lambda url: with_ade_async(url, n, None)),
        (
            "aiolimiter AsyncLimiter(50, 1) + retry on 429",
            "seconds",
            lambda url: with_peer(url, n, AsyncLimiter(50, 1)),
        ),
        ("retry on 429 only", "seconds", lambda url: with_peer(url, n, None)),
    ]
    rows = []
    for name, retry_after, body in contenders:
        if args.only not in name:
            continue
        row = run_contender(name, retry_after, n, body)
        row["over_bound"] = row["wall_s"] / bound
        rows.append(row)
        print(f"  done: {name}", flush=True)
    path = write_results("admission", {"creates": n, "quota": QUOTA, "lower_bound_s": bound, "rows": rows})
    quota_text = " and ".join(f"{c}/{p:g}s" for c, p in QUOTA)
    print(f"\n{n} creates under {quota_text}; lower bound {bound:.2f} s\n")
    print(
        "| contender | wall / bound | 429s (% of creates) | max in any "
        + " | max in any ".join(f"{p:g}s" for _, p in QUOTA)
        + " |"
    )
    print("|---|---:|---:|" + "---:|" * len(QUOTA))
    for row in rows:
        windows = " | ".join(str(row["max_in_window"][str(p)]) + f" (≤{c})" for c, p in QUOTA)
        limited = f"{row['http_429']} ({100 * row['http_429'] / n:.1f} %)"
        print(f"| {row['contender']} | {row['over_bound']:.3f}x | {limited} | {windows} |")
    print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()
