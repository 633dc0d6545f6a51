"""ade_async against the peers a user would otherwise pick, in one run.

For each scenario of ``scenarios.py`` (quota-bound, latency-bound, faulty, large results through
``output_url``) and each contender, a fresh simulator starts in its own process and the contender
runs in another, so the CPU and memory measured are its own:

* ``tutorial``: the vendor tutorial's create-then-poll loop made concurrent (``peers.py``);
* ``sdk``: the official ``landingai-ade`` SDK's ``AsyncLandingAIADE`` with a semaphore and a poll
  loop per job (``peers.py``; skipped, and said so, when the SDK is not installed);
* ``extract_many``: ``ade_async.Client.extract_many`` with the known quota;
* ``cli``: the ``ade-async extract`` command on a folder of the same documents, ``--rate`` set to the
  known quota, as a user runs it.

Measured per run: wall time over the scenario's lower bound (the quota schedule from t = 0 plus the
latency the simulator drew for each job, see ``lower_bound``), 429s received, HTTP requests per job
by kind (the simulator's counters), time from a job's end to its result in hand, p50 and p95 (both
``time.monotonic()``, one host), client CPU per job (the contender process's whole user + system
time, start-up included, from ``os.wait4``), peak RSS (``VmHWM``), and correctness: inputs whose
correct result was delivered, inputs lost, duplicate jobs (the simulator counts jobs created twice
for the same content), ``output_url`` downloads and API keys sent to an ``output_url``.

Writes ``benchmarks/RESULTS.md`` (the tables and the goals) and ``benchmarks/results/peers.json``.
Run from the repository root::

    python benchmarks/bench_peers.py [--full] [--scenario NAME ...] [--only NAME ...] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _harness import SIM_KEY, fetch_json, machine, peak_rss_kb, percentile, quota_schedule, simulator_process
from scenarios import BY_NAME, SCENARIOS, SCHEMA, Scenario, document, expected_extraction, fingerprint

from ade_async._parsing import parse_latency

HERE = Path(__file__).parent
SIM_SERVER = HERE / "_sim_server.py"
CONTENDERS: dict[str, str] = {
    "tutorial": "tutorial loop: aiohttp + asyncio.gather, a 5 s poll loop per job, backoff on 429/5xx/drops",
    "sdk": "landingai-ade 1.18.1 AsyncLandingAIADE: semaphore(50) creates, a 3 s poll loop per job",
    "extract_many": "ade_async Client.extract_many, RateLimit(windows=quota), resubmit_unknown=True",
    "cli": "ade-async extract FOLDER --rate QUOTA --resubmit-unknown (the command)",
}
PEERS = ("tutorial", "sdk")
OURS = ("extract_many", "cli")


def sdk_installed() -> bool:
    try:
        import landingai_ade  # noqa: F401
    except ImportError:
        return False
    return True


# --- a contender's own process --------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How this run deviates from the scenarios' defaults (the quick-iteration options)."""

    full: bool = False
    jobs: int | None = None
    latency: tuple[float, float] | None = None
    #: The peers' poll interval instead of their 5 s and 3 s: only for quick smoke runs.
    peer_poll: float | None = None
    timeout: float = 900.0


def contender_main(
    name: str,
    scenario: Scenario,
    jobs: int,
    body_bytes: int,
    base_url: str,
    out: Path,
    peer_poll: float | None,
) -> None:
    """Run one library contender in this process and write its records and figures to ``out``."""
    import asyncio

    import peers

    cpu0, wall0 = time.process_time(), time.perf_counter()
    if name == "tutorial":
        poll = peer_poll or peers.TUTORIAL_POLL_S
        records = asyncio.run(peers.run_tutorial(base_url, SIM_KEY, jobs, body_bytes, poll))
    elif name == "sdk":
        poll = peer_poll or peers.SDK_POLL_S
        records = asyncio.run(peers.run_sdk(base_url, SIM_KEY, jobs, body_bytes, poll))
    else:
        records = asyncio.run(peers.run_extract_many(base_url, SIM_KEY, jobs, body_bytes, scenario.quota))
    figures = {
        "work_wall_s": time.perf_counter() - wall0,
        "work_cpu_s": time.process_time() - cpu0,
        "peak_rss_kb": peak_rss_kb(),
        "records": records,
    }
    out.write_text(json.dumps(figures))


# --- running one contender from the orchestrator ---------------------------------------------------


def wait_measured(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, int]:
    """Wait for ``process``; its exit status, CPU seconds (user + system) and sampled peak RSS (kB).

    ``os.wait4`` reports the child's own CPU. Its ``ru_maxrss`` would include the memory of this
    process at fork, so the peak RSS is sampled from ``/proc`` instead (the library contenders also
    report their own ``VmHWM`` at the end, which is exact).
    """
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime, peak
        peak = max(peak, peak_rss_kb(process.pid) or 0)
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            return -9, usage.ru_utime + usage.ru_stime, peak
        time.sleep(0.1)


def write_folder(root: Path, jobs: int, body_bytes: int) -> Path:
    docs = root / "docs"
    for index in range(jobs):
        folder = docs / f"part-{index // 500:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc-{index:06d}.md").write_text(document(index, body_bytes), encoding="utf-8")
    return docs


def cli_records(out: Path, monotonic_offset: float) -> dict[int, dict[str, Any]]:
    """The command's results as records: one ``OUT/<path>.json`` per delivered input; the moment its
    result was in hand is the file's modification time, moved onto the monotonic clock."""
    records: dict[int, dict[str, Any]] = {}
    for path in out.rglob("doc-*.json"):
        index = int(path.name.split(".")[0].removeprefix("doc-"))
        body = json.loads(path.read_text(encoding="utf-8"))
        if path.name.endswith(".error.json"):
            error = f"{body.get('stage')}: {json.dumps(body)[:300]}"
            records.setdefault(index, {"job_id": body.get("job_id"), "error": error})
            continue
        records[index] = {
            "job_id": body["metadata"]["job_id"],
            "fingerprint": fingerprint(body["extraction"]),
            "at": path.stat().st_mtime - monotonic_offset,
        }
    return records


def run_contender(
    name: str,
    scenario: Scenario,
    jobs: int,
    body_bytes: int,
    base_url: str,
    scratch: Path,
    options: RunOptions,
) -> dict[str, Any]:
    """Run ``name`` against the simulator at ``base_url``; its raw figures and records."""
    report = scratch / f"{name}.json"
    if name == "cli":
        docs = write_folder(scratch, jobs, body_bytes)
        schema = scratch / "schema.json"
        schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
        out = scratch / "out"
        command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
        command += ["--out", str(out), "--api-key", SIM_KEY, "--base-url", base_url, "--quiet", "--json"]
        command += ["--resubmit-unknown"]  # as extract_many: an unfound job's input is sent again
        for count, period in scenario.quota:
            command += ["--rate", f"{count}/{period:g}s"]
    else:
        command = [sys.executable, __file__, "--contender", name, "--scenario", scenario.name]
        command += ["--jobs", str(jobs), "--body-bytes", str(body_bytes), "--base-url", base_url]
        command += ["--report", str(report)]
        if options.peer_poll:
            command += ["--peer-poll", str(options.peer_poll)]
    offset = time.time() - time.monotonic()
    started = time.perf_counter()
    stdout_path = scratch / f"{name}.stdout"
    with stdout_path.open("wb") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE)
        code, cpu, sampled_peak = wait_measured(process, options.timeout)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    figures: dict[str, Any] = {"exit_code": code, "process_wall_s": wall, "cpu_s": cpu}
    if name == "cli":
        figures["wall_s"] = wall  # as a user times the command: interpreter start-up included
        figures["peak_rss_kb"] = sampled_peak
        figures["records"] = cli_records(out, offset)
        try:
            figures["summary"] = json.loads(stdout_path.read_text())
        except ValueError:
            figures["summary"] = None
        # Exit 1 means "some inputs failed": a result to count, not a crash of the benchmark.
        if code not in (0, 1):
            figures["crash"] = f"exit {code}: {stderr[-2000:]}"
    elif code == 0 and report.exists():
        own = json.loads(report.read_text())
        figures["wall_s"] = own["work_wall_s"]  # from the first request to the last result
        figures["work_cpu_s"] = own["work_cpu_s"]
        figures["peak_rss_kb"] = own["peak_rss_kb"]
        figures["records"] = {int(index): record for index, record in own["records"].items()}
    else:
        figures["wall_s"] = wall
        figures["peak_rss_kb"] = sampled_peak
        figures["records"] = {}
        figures["crash"] = f"exit {code}: {stderr[-2000:]}"
    return figures


# --- measures --------------------------------------------------------------------------------------


def lower_bound(scenario: Scenario, jobs: int, timeline: list[dict[str, Any]]) -> float:
    """The earliest the last result can be in hand: the ``k``-th create at the earliest moment the
    quota allows it (all queued at t = 0), plus the latency the simulator drew for the ``k``-th job
    it accepted (it draws latencies in acceptance order, whatever the client sends); the maximum over
    ``k``. Network time and polling are counted as zero."""
    created = sorted(timeline, key=lambda job: job["created"])[:jobs]
    schedule = quota_schedule(jobs, scenario.quota)
    return max(start + job["done_at"] - job["created"] for start, job in zip(schedule, created, strict=False))


def measure(
    name: str,
    scenario: Scenario,
    jobs: int,
    body_bytes: int,
    figures: dict[str, Any],
    stats: dict[str, Any],
    timeline: list[dict[str, Any]],
) -> dict[str, Any]:
    records: dict[int, dict[str, Any]] = figures["records"]
    done_at = {job["job_id"]: job["done_at"] for job in timeline}
    delivered = wrong = 0
    delays: list[float] = []
    ordered_delays: list[tuple[float, float]] = []
    errors: dict[str, int] = {}
    examples: dict[str, str] = {}
    for index in range(jobs):
        record = records.get(index)
        if record is None or "fingerprint" not in record:
            if record is not None:
                kind = record["error"].split(":")[0]
                errors[kind] = errors.get(kind, 0) + 1
                examples.setdefault(kind, record["error"])
            continue
        if record["fingerprint"] != fingerprint(expected_extraction(index, body_bytes)):
            wrong += 1
            continue
        delivered += 1
        if record["job_id"] in done_at:
            delays.append(record["at"] - done_at[record["job_id"]])
            ordered_delays.append((done_at[record["job_id"]], delays[-1]))
    by_kind: dict[str, float] = {}
    for endpoint, _status, count in stats["requests"]:
        by_kind[endpoint] = by_kind.get(endpoint, 0.0) + count / jobs
    bound = lower_bound(scenario, jobs, timeline) if timeline else float("nan")
    return {
        "contender": name,
        "wall_s": figures["wall_s"],
        "lower_bound_s": bound,
        "over_bound": figures["wall_s"] / bound if bound else float("nan"),
        "http_429": stats["rate_limited"],
        "requests_per_job": by_kind,
        "requests_per_job_total": sum(by_kind.values()),
        "detection_p50_s": percentile(delays, 0.5) if delays else None,
        "detection_p95_s": percentile(delays, 0.95) if delays else None,
        "cpu_ms_per_job": figures["cpu_s"] * 1000 / jobs,
        "work_cpu_ms_per_job": figures.get("work_cpu_s", figures["cpu_s"]) * 1000 / jobs,
        "peak_rss_mb": figures["peak_rss_kb"] / 1024,
        "delivered": delivered,
        "wrong_results": wrong,
        "lost": jobs - delivered - wrong,
        "errors": errors,
        "error_examples": examples,
        "jobs_created": stats["jobs_total"],
        "duplicate_jobs": stats["duplicate_jobs"],
        "downloads": stats["downloads"],
        "result_url_auth_headers": stats["result_url_auth_headers"],
        "faults": stats["faults"],
        # (endpoint, status, count); status 0 is a connection closed without an answer.
        "requests_by_status": stats["requests"],
        # Each delivered job's delay from its end to its result in hand, in the order the jobs ended.
        "delays_by_end_order_s": [round(delay, 3) for _, delay in sorted(ordered_delays)],
        "crash": figures.get("crash"),
    }


def run_scenario(scenario: Scenario, names: list[str], options: RunOptions) -> dict[str, Any]:
    full = options.full
    size = scenario.size(full)
    jobs = options.jobs or size.jobs
    latency = options.latency or size.latency
    rows = []
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bench-peers-{name}-") as scratch_dir:
            spec = json.dumps(scenario.simulator_spec(full, latency))
            with simulator_process("--spec", spec, script=SIM_SERVER) as base_url:
                figures = run_contender(
                    name, scenario, jobs, size.body_bytes, base_url, Path(scratch_dir), options
                )
                stats = fetch_json(f"{base_url}/_simulator/stats")
                timeline = fetch_json(f"{base_url}/_simulator/jobs")
        row = measure(name, scenario, jobs, size.body_bytes, figures, stats, timeline)
        rows.append(row)
        crash = f", CRASHED: {row['crash'][:200]}" if row["crash"] else ""
        print(
            f"  {scenario.name} / {name}: {row['over_bound']:.3f}x the bound, {row['delivered']}/{jobs} "
            f"delivered, {row['duplicate_jobs']} duplicate jobs, {row['http_429']} 429s{crash}",
            flush=True,
        )
    return {
        "scenario": scenario.name,
        "summary": scenario.summary,
        "jobs": jobs,
        "latency_s": list(latency),
        "body_bytes": size.body_bytes,
        "quota": [list(window) for window in scenario.quota],
        "simulator": scenario.simulator_spec(full, latency),
        "rows": rows,
    }


# --- the report ------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def scenario_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"### {result['scenario']}: {result['summary']}",
        "",
        f"{result['jobs']:,} jobs, latencies {result['latency_s'][0]:g}-{result['latency_s'][1]:g} s, "
        f"quota {', '.join(f'{c}/{p:g}s' for c, p in result['quota'])}.",
        "",
        "| contender | wall / bound | 429s | requests/job (create + get + list + download) "
        "| result p50 / p95 after job end | CPU ms/job | peak RSS MB | delivered | lost | jobs created "
        "| duplicate jobs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        kinds = " + ".join(
            f"{row['requests_per_job'].get(k, 0):.2f}" for k in ("create", "get", "list", "download")
        )
        lines.append(
            f"| {row['contender']} "
            f"| {row['over_bound']:.3f}x ({row['wall_s']:.1f} / {row['lower_bound_s']:.1f} s) "
            f"| {row['http_429']} | {row['requests_per_job_total']:.2f} ({kinds}) "
            f"| {_f(row['detection_p50_s'], 2, ' s')} / {_f(row['detection_p95_s'], 2, ' s')} "
            f"| {row['cpu_ms_per_job']:.2f} | {row['peak_rss_mb']:.0f} | {row['delivered']} | {row['lost']} "
            f"| {row['jobs_created']} | {row['duplicate_jobs']} |"
        )
    notes = []
    for row in result["rows"]:
        if row["errors"]:
            notes.append(
                f"{row['contender']} gave up on: " + ", ".join(f"{n} x {k}" for k, n in row["errors"].items())
            )
        if row["wrong_results"]:
            notes.append(f"{row['contender']}: {row['wrong_results']} results did not match their input")
        if row["result_url_auth_headers"]:
            notes.append(
                f"{row['contender']} sent its API key to an output_url {row['result_url_auth_headers']} times"
            )
        if row["crash"]:
            notes.append(f"{row['contender']} crashed: {row['crash'][:300]}")
        if result["body_bytes"]:
            notes.append(
                f"{row['contender']}: {row['downloads']} output_url downloads for {row['delivered']} results"
            )
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return lines


def goals(results: list[dict[str, Any]]) -> list[str]:
    """Each goal of issue 9, checked against this run's rows, per ade_async contender."""
    lines = ["| goal | ade_async contender | scenario | figure | met |", "|---|---|---|---|---|"]

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    for result in results:
        rows = {row["contender"]: row for row in result["rows"]}
        peers = [rows[name] for name in PEERS if name in rows]
        for ours in (rows[name] for name in OURS if name in rows):
            if result["scenario"] == "quota":
                ok = ours["over_bound"] <= 1.05 and ours["http_429"] == 0
                figure = f"{ours['over_bound']:.3f}x, {ours['http_429']} 429s"
                lines.append(
                    f"| within 1.05x of the bound, 0 429s | {ours['contender']} | quota | {figure} "
                    f"| {verdict(ok)} |"
                )
            if peers:
                best = min(peers, key=lambda row: row["requests_per_job_total"])
                ratio = ours["requests_per_job_total"] / best["requests_per_job_total"]
                figure = (
                    f"{ratio:.2f}x ({ours['requests_per_job_total']:.2f} vs {best['contender']} "
                    f"{best['requests_per_job_total']:.2f})"
                )
                lines.append(
                    f"| at most 1/3 of the best peer's requests per job | {ours['contender']} "
                    f"| {result['scenario']} "
                    f"| {figure} | {verdict(ratio <= 1 / 3)} |"
                )
            if "sdk" in rows:
                sdk = rows["sdk"]
                ratio = ours["cpu_ms_per_job"] / sdk["cpu_ms_per_job"]
                figure = f"{ratio:.2f}x ({ours['cpu_ms_per_job']:.2f} vs {sdk['cpu_ms_per_job']:.2f} ms)"
                lines.append(
                    f"| at most half the SDK's CPU per job | {ours['contender']} | {result['scenario']} "
                    f"| {figure} | {verdict(ratio <= 0.5)} |"
                )
            if result["scenario"] == "faulty":
                ok = ours["lost"] == 0 and ours["duplicate_jobs"] == 0 and not ours["wrong_results"]
                figure = f"{ours['lost']} lost, {ours['duplicate_jobs']} duplicate jobs"
                lines.append(
                    f"| no lost or duplicated work under faults | {ours['contender']} | faulty | {figure} "
                    f"| {verdict(ok)} |"
                )
    return lines


def write_markdown(
    path: Path, results: list[dict[str, Any]], command: str, skipped: list[str], full: bool, minutes: float
) -> None:
    info = machine()
    lines = [
        "# Benchmark results: ade_async against its peers",
        "",
        "Written by `benchmarks/bench_peers.py` (the command's own section at the end by",
        "`benchmarks/bench_cli.py`); do not edit by hand. Raw figures: `benchmarks/results/peers.json`.",
        "",
        f"- command: `{command}`",
        f"- size: {'--full' if full else 'default'}; date: {info['date']}; Python {info['python']}; "
        f"{info['cpus']} CPUs; {info['platform']}; the whole run took {minutes:.1f} minutes",
        "- each contender runs in its own process against a fresh simulator in another; the simulator sends",
        "  no `Retry-After` (like the documented API)",
        "- wall / bound: the lower bound is the quota schedule from t = 0 plus the latencies the simulator",
        "  drew; library contenders are timed from their first request, the command from its start",
        "  (interpreter included)",
        "- CPU: the contender process's whole user + system time (start-up included) divided by the jobs",
        "- result p50 / p95: from the moment the simulator ended a job to the moment its result was in the",
        "  client's hands (the command: when it wrote the result file)",
        "- lost: inputs without a correct result (given up on, or reported failed); jobs created beyond",
        "  delivered + duplicates were paid for and never collected",
    ]
    for note in skipped:
        lines.append(f"- skipped: {note}")
    lines += ["", "## Contenders", ""]
    lines += [f"- `{name}`: {text}" for name, text in CONTENDERS.items()]
    lines += ["", "## Goals (issue 9)", "", *goals(results), "", "## Scenarios", ""]
    for result in results:
        lines += [*scenario_table(result), ""]
    text = "\n".join(lines) + "\n"
    # bench_cli.py owns a section of this file (between its markers): carried over as it was.
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    begin, end = "<!-- bench_cli: begin -->", "<!-- bench_cli: end -->"
    if begin in old and end in old:
        text += "\n" + begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the deeper sizes (longer jobs, more of them)")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(BY_NAME), help="run only this scenario (repeatable)"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(CONTENDERS), help="run only this contender (repeatable)"
    )
    parser.add_argument("--jobs", type=int, help="override every selected scenario's number of jobs")
    parser.add_argument(
        "--latency",
        type=parse_latency,
        metavar="LO-HI",
        help="override every selected scenario's job latencies",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a contender is killed")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=HERE,
        help="where RESULTS.md and results/peers.json go (default: benchmarks/)",
    )
    parser.add_argument(
        "--peer-poll",
        type=float,
        help="the peers' poll interval in seconds (smoke runs only; default 5 s and 3 s)",
    )
    parser.add_argument("--contender", help=argparse.SUPPRESS)
    parser.add_argument("--body-bytes", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        scenario = BY_NAME[args.scenario[0]]
        contender_main(
            args.contender, scenario, args.jobs, args.body_bytes, args.base_url, args.report, args.peer_poll
        )
        return

    names = [name for name in CONTENDERS if not args.only or name in args.only]
    skipped = []
    if "sdk" in names and not sdk_installed():
        names.remove("sdk")
        skipped.append("sdk: landingai-ade is not installed (pip install -e '.[bench]')")
        print(f"skipped {skipped[-1]}", flush=True)
    scenarios = [scenario for scenario in SCENARIOS if not args.scenario or scenario.name in args.scenario]
    options = RunOptions(
        full=args.full, jobs=args.jobs, latency=args.latency, peer_poll=args.peer_poll, timeout=args.timeout
    )
    command = "python " + " ".join(shlex.quote(arg) for arg in [os.path.relpath(__file__), *sys.argv[1:]])
    results = []
    run_started = time.monotonic()
    for scenario in scenarios:
        print(f"{scenario.name}: {scenario.summary}", flush=True)
        results.append(run_scenario(scenario, names, options))
    minutes = (time.monotonic() - run_started) / 60
    raw = {
        "machine": machine(),
        "command": command,
        "options": asdict(options),
        "skipped": skipped,
        "run_minutes": minutes,
    }
    raw_path = args.out_dir / "results" / "peers.json"
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(json.dumps({**raw, "scenarios": results}, indent=2) + "\n", encoding="utf-8")
    markdown = args.out_dir / "RESULTS.md"
    write_markdown(markdown, results, command, skipped, args.full, minutes)
    print(f"\n{markdown.read_text()}\nraw figures: {raw_path}")


if __name__ == "__main__":
    main()
