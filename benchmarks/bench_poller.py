"""Watching many jobs: ade_async's one shared poller against one poll loop per job.

Scenario (``SCENARIO``): 2,000 jobs, a generous quota, job latencies drawn uniformly from 1 to 20
seconds by the simulator (its own process). Each contender runs in its own process (so CPU and
peak memory are its own) against a fresh simulator:

* ``ade_async sweep``: ``client.extract_many`` over the 2,000 documents with the default
  ``PollPolicy``: one poller that, with 20 or more jobs watched, lists the active jobs every second
  and GETs only the jobs that left the lists;
* ``ade_async per-job``: the same with ``PollPolicy(sweep=False)``: one GET per job per poll
  (1 s, x1.5, capped at 10 s);
* ``loop-per-job 5s``: the vendor tutorial's loop made concurrent, as a user writes it:
  ``asyncio.gather`` over one task per job that creates, then GETs every 5 seconds until the job
  ends;
* ``loop-per-job 1s``: the same, polling every second (lower latency, more requests).

Measured: HTTP requests per job by kind (the simulator's counters), detection latency (when the
client saw the job end minus when the simulator ended it; both ``time.monotonic()``, one clock on
one host) p50 and p95, client CPU per job, peak RSS. Also the scheduler core alone: 100,000 jobs on
a fake clock, microseconds per scheduling decision and bytes per tracked job. Run from the
repository root::

    python benchmarks/bench_poller.py [--jobs 2000] [--latency 1-20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from _harness import SIM_KEY, fetch_json, peak_rss_kb, percentile, simulator_process, write_results

import ade_async
from ade_async._engine.schedule import PollPolicy, PollSchedule

SCHEMA = json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}})
CONTENDERS = ("ade_async sweep", "ade_async per-job", "loop-per-job 5s", "loop-per-job 1s")


def documents(n: int) -> list[str]:
    return [f"n: {i}\n" for i in range(n)]


# --- contenders (each runs in its own process) ---------------------------------------------------


async def run_ade_async(base_url: str, n: int, *, sweep: bool) -> dict[str, float]:
    seen: dict[str, float] = {}
    limit = ade_async.RateLimit(adaptive=False)  # the quota is generous: measure the poller
    poll = ade_async.PollPolicy(sweep=sweep)
    async with ade_async.Client(
        api_key=SIM_KEY, base_url=base_url, rate_limit=limit, poll=poll, seed=1
    ) as client:

        def on_event(event: ade_async.JobEvent) -> None:
            if event.kind == "completed":
                seen[event.job_id] = time.monotonic()

        client.subscribe(on_event)
        async for outcome in client.extract_many(documents(n), schema=SCHEMA, window=n):
            if not outcome.ok:
                raise RuntimeError(f"input {outcome.index} failed: {outcome.error}")
    return seen


async def run_loop_per_job(base_url: str, n: int, interval: float) -> dict[str, float]:
    seen: dict[str, float] = {}
    url = f"{base_url}/v1/ade/extract/jobs"

    async def one(session: aiohttp.ClientSession, markdown: str) -> None:
        form = aiohttp.FormData()
        form.add_field("schema", SCHEMA)
        form.add_field("markdown", markdown.encode(), filename="doc.md")
        async with session.post(url, data=form) as response:
            response.raise_for_status()
            job_id = (await response.json())["job_id"]
        while True:
            await asyncio.sleep(interval)
            async with session.get(f"{url}/{job_id}") as response:
                response.raise_for_status()
                job = await response.json()
            if job["status"] in ("completed", "failed", "cancelled"):
                seen[job_id] = time.monotonic()
                if job["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {job['status']}")
                return

    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(one(session, markdown) for markdown in documents(n)))
    return seen


def own_peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM), or ``ru_maxrss`` where there is no ``/proc``."""
    return peak_rss_kb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def contender_main(name: str, base_url: str, n: int, out: Path) -> None:
    rss_start = own_peak_rss_kb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if name.startswith("ade_async"):
        seen = asyncio.run(run_ade_async(base_url, n, sweep=name.endswith("sweep")))
    else:
        seen = asyncio.run(run_loop_per_job(base_url, n, float(name.split()[-1].rstrip("s"))))
    figures = {
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_kb": own_peak_rss_kb(),
        "rss_at_start_kb": rss_start,
        "seen": seen,
    }
    out.write_text(json.dumps(figures))


# --- the orchestrating process --------------------------------------------------------------------


def run_contender(name: str, n: int, latency: str, scratch: Path) -> dict[str, Any]:
    out = scratch / f"{name.replace(' ', '_')}.json"
    with simulator_process("--latency", latency, "--seed", "7") as base_url:
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--contender",
                name,
                "--base-url",
                base_url,
                "--jobs",
                str(n),
                "--out",
                str(out),
            ],
            check=True,
        )
        stats = fetch_json(f"{base_url}/_simulator/stats")
        timeline = {job["job_id"]: job["done_at"] for job in fetch_json(f"{base_url}/_simulator/jobs")}
    figures = json.loads(out.read_text())
    seen: dict[str, float] = figures.pop("seen")
    if len(seen) != n or set(seen) != set(timeline):
        raise RuntimeError(f"{name}: saw {len(seen)} of {n} jobs end")
    delays = [seen[job_id] - timeline[job_id] for job_id in seen]
    by_kind = {endpoint: count / n for endpoint, _status, count in _sum_by_endpoint(stats["requests"])}
    return {
        "contender": name,
        "requests_per_job": by_kind,
        "requests_per_job_total": sum(by_kind.values()),
        "detection_p50_s": percentile(delays, 0.50),
        "detection_p95_s": percentile(delays, 0.95),
        "detection_min_s": min(delays),
        "cpu_ms_per_job": figures["cpu_s"] * 1000 / n,
        "peak_rss_mb": figures["peak_rss_kb"] / 1024,
        "rss_growth_mb": (figures["peak_rss_kb"] - figures["rss_at_start_kb"]) / 1024,
        "wall_s": figures["wall_s"],
        "duplicate_jobs": stats["duplicate_jobs"],
    }


def _sum_by_endpoint(rows: list[list[Any]]) -> list[tuple[str, int, int]]:
    totals: dict[str, int] = {}
    for endpoint, _status, count in rows:
        totals[endpoint] = totals.get(endpoint, 0) + count
    return [(endpoint, 0, count) for endpoint, count in sorted(totals.items())]


def core_benchmark(jobs: int = 100_000, decisions: int = 1_000_000) -> dict[str, float]:
    """The schedule alone on fake time: cost per decision and memory per watched job."""
    policy = PollPolicy()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    schedule = PollSchedule(policy, random.Random(1))
    for i in range(jobs):
        schedule.watch(f"{i:036d}", 0.0, timeout=1800.0)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    core_bytes = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / jobs
    # Watched job ids are uuid strings in real use; they are counted here too, as 36-char strings.

    made, now = 0, 0.0
    started = time.perf_counter()
    while made < decisions:
        wake = schedule.next_wake()
        assert wake is not None
        now = wake
        for job_id in schedule.take_due(now):
            schedule.on_running(job_id, now)
            made += 1
    per_decision_us = (time.perf_counter() - started) / made * 1e6

    async def with_watches() -> float:
        from ade_async._engine.scheduler import JobWatch

        loop = asyncio.get_running_loop()
        gc.collect()
        tracemalloc.start()
        first = tracemalloc.take_snapshot()
        watches = [JobWatch(f"{i:036d}", loop.create_future(), 1800.0) for i in range(jobs)]
        second = tracemalloc.take_snapshot()
        tracemalloc.stop()
        size = sum(stat.size_diff for stat in second.compare_to(first, "filename")) / jobs
        del watches
        return size

    watch_bytes = asyncio.run(with_watches())
    return {
        "jobs": jobs,
        "decisions": made,
        "us_per_decision": per_decision_us,
        "schedule_bytes_per_job": core_bytes,
        "watch_and_future_bytes_per_job": watch_bytes,
        "bytes_per_tracked_job": core_bytes + watch_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency", default="1-20", help="job latency range in seconds, LO-HI")
    parser.add_argument("--only", default="", help="run only contenders whose name contains this text")
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        contender_main(args.contender, args.base_url, args.jobs, args.out)
        return

    core = core_benchmark()
    print(
        f"scheduler core, {core['jobs']:,} jobs on a fake clock: {core['us_per_decision']:.2f} us per "
        f"decision, {core['bytes_per_tracked_job']:.0f} bytes per tracked job (schedule "
        f"{core['schedule_bytes_per_job']:.0f} + watch and future "
        f"{core['watch_and_future_bytes_per_job']:.0f})",
        flush=True,
    )
    scratch = Path(__file__).parent / "results"
    scratch.mkdir(exist_ok=True)
    rows = []
    for name in CONTENDERS:
        if args.only and args.only not in name:
            continue
        rows.append(run_contender(name, args.jobs, args.latency, scratch))
        (scratch / f"{name.replace(' ', '_')}.json").unlink(missing_ok=True)
        print(f"  done: {name}", flush=True)
    path = write_results("poller", {"jobs": args.jobs, "latency_s": args.latency, "core": core, "rows": rows})

    print(f"\n{args.jobs} jobs, latency {args.latency} s, generous quota\n")
    print(
        "| contender | requests/job (create + get + list + download) | detection p50 | p95 "
        "| CPU ms/job | peak RSS MB |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        kinds = " + ".join(
            f"{row['requests_per_job'].get(k, 0):.2f}" for k in ("create", "get", "list", "download")
        )
        print(
            f"| {row['contender']} | {row['requests_per_job_total']:.2f} ({kinds}) "
            f"| {row['detection_p50_s']:.2f} s | {row['detection_p95_s']:.2f} s "
            f"| {row['cpu_ms_per_job']:.2f} | {row['peak_rss_mb']:.0f} |"
        )
    print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()
