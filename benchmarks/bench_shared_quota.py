"""Four processes, one quota: the Redis-shared gate against a static split and independent gates.

Scenario: one folder of Markdown files in four parts, four ``ade-async extract`` processes (one part
each) started together against one simulator (its own process) enforcing the organisation's quota:
40 creates per second and 400 per 15 seconds, with ``Retry-After`` on its 429s. Contenders:

* **shared**: every process gets the whole quota (``--rate 40/1s --rate 400/15s``) and
  ``--redis URL``: one gate for all four, in a local ``redis-server``;
* **static split**: each process gets a quarter (``--rate 10/1s --rate 100/15s``), no Redis;
* **independent**: each process gets the whole quota in its own memory: four times too much.

The lower bound is when the last create can go under the quota with every create queued at t = 0
(``quota_schedule_end``), plus the shortest job. Wall time includes starting four Python processes
and each one noticing its last job ended (polls), so the table also shows the creates' own span:
from the first accepted create to the last, against the quota's schedule for them.

Also measured: the cost of one admission decision against the local Redis (acquire + refund, one
round trip each, from one process), next to the in-memory gate's. Run from the repository root
(needs ``redis-server`` on the PATH)::

    python benchmarks/bench_shared_quota.py [--files 800]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
from _harness import SIM_KEY, free_port, quota_schedule_end, simulator_process, write_results

from ade_async import RateLimit, RedisBackend
from ade_async._engine.admission import AdmissionGate
from ade_async._engine.clock import LoopClock
from ade_async._engine.shared_admission import SharedAdmissionGate

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
WINDOWS = ((40, 1.0), (400, 15.0))
PROCESSES = 4
MIN_LATENCY, MAX_LATENCY = 0.2, 1.0


def rate_args(share: int) -> list[str]:
    return [arg for count, period in WINDOWS for arg in ("--rate", f"{count // share}/{period:g}s")]


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while (
        subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def run_contender(name: str, extra: list[str], root: Path, schema: Path) -> dict[str, object]:
    """Four processes against a fresh simulator; wall time, 429s, what the simulator saw."""
    periods = ",".join(f"{period:g}" for _, period in WINDOWS)
    quota = [arg for count, period in WINDOWS for arg in ("--quota", f"{count}/{period:g}s")]
    with simulator_process(*quota, "--latency", f"{MIN_LATENCY}-{MAX_LATENCY}") as url:
        started = time.perf_counter()
        started_monotonic = time.monotonic()  # the simulator's job times are on this clock
        processes = []
        for part in range(PROCESSES):
            command = [sys.executable, "-m", "ade_async", "extract", str(root / "docs" / f"part-{part}")]
            command += ["--schema", str(schema), "--out", str(root / f"out-{name}-{part}")]
            command += ["--api-key", SIM_KEY, "--base-url", url, "--quiet", "--json", *extra]
            processes.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        summaries = []
        for process in processes:
            stdout, stderr = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"{name}: ade-async exited {process.returncode}: {stderr}")
            summaries.append(json.loads(stdout))
        wall = time.perf_counter() - started
        with urllib.request.urlopen(f"{url}/_simulator/stats?windows={periods}") as answer:
            seen = json.load(answer)
        with urllib.request.urlopen(f"{url}/_simulator/jobs") as answer:
            created = sorted(job["created"] for job in json.load(answer))
    return {
        "wall_s": wall,
        # What the gate decides alone: when the first and the last accepted create arrived.
        "first_create_s": created[0] - started_monotonic,
        "last_create_s": created[-1] - started_monotonic,
        "rate_limited": seen["rate_limited"],
        "jobs": seen["jobs_total"],
        "duplicate_jobs": seen["duplicate_jobs"],
        "max_creates_in_window": seen["max_creates_in_window"],
        "completed": sum(s["completed"] for s in summaries),
    }


async def decision_cost(url: str | None, decisions: int) -> float:
    """Microseconds per admission decision (acquire, then refund), one waiter at a time."""
    if url is None:
        gate: AdmissionGate | SharedAdmissionGate = AdmissionGate(
            RateLimit(windows=((10**9, 1.0),)), clock=LoopClock()
        )
    else:
        backend = RedisBackend(url=url, quota_name="bench-decisions")
        gate = SharedAdmissionGate(
            RateLimit(windows=((10**9, 1.0),), backend=backend), key_fingerprint="0" * 16
        )
    async with anyio.create_task_group() as task_group:
        if isinstance(gate, SharedAdmissionGate):
            task_group.start_soon(gate.run)
        gate.refund(await gate.acquire())  # connect, load the script
        started = time.perf_counter()
        for _ in range(decisions):
            gate.refund(await gate.acquire())
        elapsed = time.perf_counter() - started
        gate.close(RuntimeError("done"))
    return elapsed / decisions * 1e6


#: How the folder is split over the four processes: evenly, and as real workers often are.
LAYOUTS = {"even": (0.25, 0.25, 0.25, 0.25), "uneven": (0.4, 0.3, 0.2, 0.1)}


def write_parts(root: Path, files: int, shares: tuple[float, ...]) -> None:
    bounds = [round(files * sum(shares[: i + 1])) for i in range(len(shares))]
    for i in range(files):
        part = next(p for p, bound in enumerate(bounds) if i < bound)
        folder = root / "docs" / f"part-{part}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"invoice-{i:05d}.md").write_text(f"# Invoice\n\nInvoice Number: INV-{i}\nTotal: {i}.50\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=800, help="files in all (split over four processes)")
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--only", default="", help="run only contenders whose name contains this")
    parser.add_argument("--layout", choices=[*LAYOUTS, "both"], default="both")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("bench_shared_quota.py needs redis-server on the PATH (e.g. apt-get install redis-server)")
    schedule = quota_schedule_end(args.files, WINDOWS)
    bound = schedule + MIN_LATENCY
    figures: dict[str, object] = {
        "files": args.files,
        "quota": WINDOWS,
        "lower_bound_s": bound,
        "create_schedule_s": schedule,
    }
    layouts = list(LAYOUTS) if args.layout == "both" else [args.layout]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        schema = root / "schema.json"
        schema.write_text(json.dumps(SCHEMA))
        redis, url = start_redis(root)
        try:
            for layout in layouts:
                shutil.rmtree(root / "docs", ignore_errors=True)
                write_parts(root, args.files, LAYOUTS[layout])
                contenders = {
                    "shared (Redis)": [*rate_args(1), "--redis", url, "--quota-name", f"bench-{layout}"],
                    "static split (1/4 each)": rate_args(PROCESSES),
                    "independent (whole quota each)": rate_args(1),
                }
                for name, extra in contenders.items():
                    if args.only.lower() in name.lower():
                        tag = f"{layout}-{name.split()[0]}"
                        results[f"{layout}: {name}"] = run_contender(tag, extra, root, schema)
            in_memory_us = asyncio.run(decision_cost(None, args.decisions))
            redis_us = asyncio.run(decision_cost(url, args.decisions))
        finally:
            redis.terminate()
            redis.wait()
    figures["layouts"] = {name: LAYOUTS[name] for name in layouts}
    figures["contenders"] = results
    figures["decision_us"] = {"in_memory": in_memory_us, "redis": redis_us}
    path = write_results("shared_quota", figures)
    windows = ", ".join(f"{c}/{p:g}s" for c, p in WINDOWS)
    print(f"{args.files} files, {PROCESSES} processes, quota {windows}; lower bound {bound:.1f} s")
    print(f"{'contender':42} {'wall/bound':>10} {'creates/schedule':>16} {'429s':>6}  max per window")
    for name, r in results.items():
        over = float(r["wall_s"]) / bound  # type: ignore[arg-type]
        span = (float(r["last_create_s"]) - float(r["first_create_s"])) / schedule  # type: ignore[arg-type]
        seen = json.dumps(r["max_creates_in_window"])
        print(f"{name:42} {over:>9.3f}x {span:>15.3f}x {r['rate_limited']:>6}  {seen}")
    print(f"one admission decision: {redis_us:.0f} us against local Redis, {in_memory_us:.1f} us in memory")
    print(f"raw figures: {path}")


if __name__ == "__main__":
    main()
