"""The reliability suite's machinery: a corpus with known answers, scenarios, and their runners.

A :class:`Scenario` names faults to inject into the simulator (or a simulator that starts late),
and the runners push the corpus through it twice over: through ``Client.extract_many`` and through
the ``ade-async extract`` command (run in-process, so the simulator's counters are at hand). Each
run gives a :class:`RunReport`, and :func:`check_run` holds it to the suite's rules:

* every input ends with exactly one outcome;
* no result is lost: every success carries exactly the extraction the simulator's deterministic
  rule gives for that document, and every failure is one the scenario allows and is *reported*
  (a create whose outcome is unknown says so, with the upload's name and SHA-256);
* no job is submitted twice by the client (the simulator's ``duplicate_jobs`` is 0); a create whose
  answer was lost is found by its upload token and adopted (counted as *reconciled*), and any job
  the client still cannot know about belongs to an input reported as ``CreateOutcomeUnknownError``;
* no request to an ``output_url`` carries the API key;
* every fault the scenario injected was actually met (otherwise the scenario proved nothing).

The figures in ``tests/reliability/README.md`` are these reports, written by a real run (see
:func:`write_figures`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import socket
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import ade_async
from ade_async.cli import _extract as cli_extract
from ade_async.testing import ENDPOINTS, Faults, Simulator, SimulatorConfig, SimulatorStats

__all__ = [
    "API_KEY",
    "BASE_CLIENT",
    "BASE_SIMULATOR",
    "FAST_POLL",
    "SCHEMA",
    "RunReport",
    "Scenario",
    "check_run",
    "corpus",
    "expected_extraction",
    "fast_penalty",
    "figures_target",
    "journal_states",
    "patched_cli_client",
    "run_cli",
    "run_extract_many",
    "write_corpus",
    "write_figures",
]

#: A distinctive key, so a leak anywhere is found by a plain substring search.
API_KEY = "sk-reliability-6f1d0c9e-DO-NOT-LEAK"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number"},
        "notes": {"type": "string"},
    },
}

#: Every third document carries notes long enough to push its result over the simulator's
#: ``result_url_threshold`` below, so downloads (and their faults) are part of every run.
_NOTES = " ".join(f"word{n}" for n in range(400))
_UNKNOWN_STATUS = "queued_for_review"

#: Fast, short timings: jobs of 0.1-0.4 s, and a 429 fault that asks for 50 ms.
BASE_SIMULATOR: dict[str, Any] = {
    "api_keys": (API_KEY,),
    "latency": (0.1, 0.4),
    "result_url_threshold": 2000,
    "fault_retry_after": 0.05,
    "retry_after": "ms",
    "seed": 10,
}

#: Polls every 50-250 ms, sweeps from 4 watched jobs on, so list requests (and their faults)
#: happen even in a small run.
FAST_POLL = ade_async.PollPolicy(
    first_delay=0.05,
    max_delay=0.25,
    jitter=0.1,
    coalesce=0.02,
    sweep_threshold=4,
    sweep_interval=0.1,
    sweep_min_age=0.1,
    job_timeout=30.0,
)

BASE_CLIENT: dict[str, Any] = {
    "timeouts": ade_async.Timeouts(connect=5.0, read=1.5),
    "retry": ade_async.RetryPolicy(attempts=8, total_time=20.0, backoff_base=0.02, backoff_cap=0.2),
    "poll": FAST_POLL,
    # Searches for the jobs of lost creates: a list scan every 0.2 s, given up after 1 s without a
    # candidate still running (the default waits 30 s for the list's read-after-write lag).
    "reconcile": ade_async.ReconcilePolicy(search_time=1.0, max_search_time=10.0, list_interval=0.2),
    "seed": 7,
}


def fast_penalty(limit: ade_async.RateLimit) -> ade_async.RateLimit:
    """``limit`` with the suite's short 429 pauses and its adaptive rate held at 40/s.

    A 429 without a wait hint pauses the gate 5 s by default, and every 429 of a storm multiplies
    the adaptive rate by 0.7 down to a floor of one create a minute (20 in a row get there, and the
    next create then waits a minute). The suite shortens the pauses and holds the rate, so a storm
    costs its pauses only; the gate's logic is unchanged.
    """
    return dataclasses.replace(
        limit, penalty_base=0.05, penalty_cap=0.3, initial_rate=40.0, min_rate=40.0, max_rate=100.0
    )


def corpus(count: int, *, unknown_status_every: int = 4) -> dict[str, str]:
    """``count`` invoices by file name; some with long notes, some reporting an unknown status."""
    documents: dict[str, str] = {}
    for n in range(count):
        lines = [f"# Invoice {n}", "", f"Invoice Number: INV-{n}", f"Total: {n}.25"]
        if n % 3 == 0:
            lines.append(f"Notes: {_NOTES} {n}")
        if unknown_status_every and n % unknown_status_every == 1:
            # While running, the job reports a status string the API does not document.
            lines.append(f"<!-- ade-sim: status {_UNKNOWN_STATUS} -->")
        documents[f"invoice-{n:03d}.md"] = "\n".join(lines) + "\n"
    return documents


def expected_extraction(name: str) -> dict[str, Any]:
    """What the simulator's documented extraction rule gives for the corpus document ``name``."""
    n = int(name.removeprefix("invoice-").removesuffix(".md"))
    return {
        "invoice_number": f"INV-{n}",
        "total": n + 0.25,
        "notes": f"{_NOTES} {n}" if n % 3 == 0 else None,
    }


def write_corpus(folder: Path, documents: Mapping[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in documents.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One way the network or the API misbehaves.

    Attributes:
        name: a short name (the test id and the figures' row).
        inject: ``(endpoint, fault kind, count)`` queued in the simulator before the run.
        simulator: ``SimulatorConfig`` options over :data:`BASE_SIMULATOR`.
        client: ``Client`` options over :data:`BASE_CLIENT`.
        documents: how many corpus documents.
        unknown_status_every: every n-th document reports an unknown status while running.
        unknown_creates: how many inputs end with ``CreateOutcomeUnknownError`` (creates whose
            answer never arrived and whose job was not found); ``None`` when random faults make
            the number unknowable.
        reconciled: how many inputs succeed through a job found after its create's answer was
            lost; ``None`` when random faults make the number unknowable.
        late_start: the API is unreachable (connections refused, nothing sent) until the client
            has retried twice; then the simulator starts on that very port.
        cli: run through the ``ade-async extract`` command too.
    """

    name: str
    inject: tuple[tuple[str, str, int], ...] = ()
    simulator: Mapping[str, Any] = field(default_factory=dict)
    client: Mapping[str, Any] = field(default_factory=dict)
    documents: int = 12
    unknown_status_every: int = 4
    unknown_creates: int | None = 0
    reconciled: int | None = 0
    late_start: bool = False
    cli: bool = False

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(**{**BASE_SIMULATOR, **self.simulator})

    def client_options(self) -> dict[str, Any]:
        options = {**BASE_CLIENT, **self.client}
        options.setdefault("rate_limit", fast_penalty(ade_async.RateLimit()))
        return options

    @property
    def injected(self) -> int:
        return sum(count for _, _, count in self.inject)


@dataclass(kw_only=True)
class RunReport:
    """What one run of a scenario did, from the outside: the figures and the evidence."""

    scenario: str
    path: str  # "extract_many" or "CLI"
    inputs: int
    outcomes: int = 0
    succeeded: int = 0
    #: inputs that ended with CreateOutcomeUnknownError (a job may exist; the outcome says so)
    reported_unknown: int = 0
    #: inputs that succeeded through a job found after their create's answer was lost
    reconciled: int = 0
    #: inputs whose create was sent again after a search found nothing (reported as such)
    possible_duplicates: int = 0
    #: inputs without an outcome, with a wrong result, or with an unexpected failure
    lost: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    duplicate_jobs: int = 0
    #: jobs created for inputs whose create went unanswered: paid, unknown to the client, reported
    orphan_jobs: int = 0
    result_url_auth_headers: int = 0
    failures_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())


def _fault_counts(stats: SimulatorStats, refused: int) -> dict[str, int]:
    faults = dict(stats.faults)
    quota_429s = stats.rate_limited - faults.get("429", 0)  # answered by the quota, not injected
    if quota_429s:
        faults["429 from the quota"] = quota_429s
    if refused:
        faults["refused"] = refused
    return faults


def _orphans(stats: SimulatorStats, documents: Mapping[str, str], unknown: set[str]) -> int:
    """Jobs that exist for inputs whose create the client could not confirm."""
    return sum(stats.jobs_by_content.get(_sha256(documents[name]), 0) for name in unknown)


def _held_port() -> socket.socket:
    """A loopback port that refuses connections until the simulator takes it over.

    Bound with ``SO_REUSEADDR`` but never listening: nothing else is given the port meanwhile
    (a port merely found free could be), connections to it are refused, and the simulator,
    which also binds with ``SO_REUSEADDR``, can bind and listen on it while it is held.
    """
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


@contextlib.asynccontextmanager
async def _serving(scenario: Scenario, refused: Callable[[], int]) -> AsyncIterator[tuple[Simulator, str]]:
    """The scenario's simulator with its faults queued, and the base URL clients should use.

    With ``late_start`` the URL names a port nothing listens on yet; the simulator starts there
    once ``refused()`` (the client's retried creates) reaches 2.
    """
    config = scenario.simulator_config()
    if not scenario.late_start:
        async with Simulator(config) as sim:
            for endpoint, kind, count in scenario.inject:
                sim.inject(endpoint, kind, count)
            yield sim, sim.base_url
        return
    holder = _held_port()
    port: int = holder.getsockname()[1]
    sim = Simulator(config, port=port)

    async def start_when_refused() -> None:
        with anyio.fail_after(30):  # bounds a hang only
            while refused() < 2:  # the client's count: nothing to await
                await anyio.sleep(0.01)
        await sim.start()

    try:
        async with anyio.create_task_group() as starter:
            starter.start_soon(start_when_refused)
            yield sim, f"http://127.0.0.1:{port}"
    finally:
        await sim.close()
        holder.close()


async def run_extract_many(scenario: Scenario, folder: Path) -> RunReport:
    """Push the corpus through ``Client.extract_many`` under the scenario's faults."""
    documents = corpus(scenario.documents, unknown_status_every=scenario.unknown_status_every)
    paths = write_corpus(folder, documents)
    report = RunReport(scenario=scenario.name, path="extract_many", inputs=len(paths))
    holder: list[ade_async.Client] = []

    def refused() -> int:
        return holder[0].stats().create_retries if holder else 0

    seen: Counter[int] = Counter()
    unknown: set[str] = set()
    failures: Counter[str] = Counter()
    async with _serving(scenario, refused) as (sim, base_url):
        async with ade_async.Client(
            api_key=API_KEY, base_url=base_url, **scenario.client_options()
        ) as client:
            holder.append(client)
            async with contextlib.aclosing(client.extract_many(paths, schema=SCHEMA)) as outcomes:
                async for outcome in outcomes:
                    seen[outcome.index] += 1
                    name = paths[outcome.index].name
                    report.reconciled += outcome.ok and outcome.reconciled
                    report.possible_duplicates += outcome.possible_duplicate
                    if outcome.ok:
                        if outcome.result.extraction == expected_extraction(name):
                            report.succeeded += 1
                        else:
                            report.lost.append(f"{name}: wrong extraction {outcome.result.extraction!r}")
                        continue
                    failures[type(outcome.error).__name__] += 1
                    if isinstance(outcome.error, ade_async.CreateOutcomeUnknownError):
                        _check_reported(outcome.error, documents[name], report)
                        unknown.add(name)
                    else:
                        report.lost.append(f"{name}: {outcome.stage}: {outcome.error!r}")
            refused_count = client.stats().create_retries if scenario.late_start else 0
        stats = sim.stats()
    report.outcomes = sum(seen.values())
    report.lost += [f"{paths[i].name}: {n} outcomes" for i, n in seen.items() if n != 1]
    report.lost += [f"{p.name}: no outcome" for i, p in enumerate(paths) if i not in seen]
    report.reported_unknown = len(unknown)
    report.failures_by_type = dict(failures)
    _fill_from_simulator(report, stats, documents, unknown, refused_count)
    return report


def _check_reported(error: ade_async.CreateOutcomeUnknownError, text: str, report: RunReport) -> None:
    """An unknown outcome is only "reported" if it carries what is needed to find the job."""
    if error.content_sha256 != _sha256(text) or not error.filename or error.sent_at is None:
        report.lost.append(f"unknown outcome without its upload's identity: {error!r}")


def _fill_from_simulator(
    report: RunReport,
    stats: SimulatorStats,
    documents: Mapping[str, str],
    unknown: set[str],
    refused: int,
) -> None:
    report.faults = _fault_counts(stats, refused)
    report.duplicate_jobs = stats.duplicate_jobs
    report.orphan_jobs = _orphans(stats, documents, unknown)
    report.result_url_auth_headers = stats.result_url_auth_headers


@contextlib.contextmanager
def patched_cli_client(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> Iterator[None]:
    """Make the command's client use the scenario's short timings.

    The command builds its client from its options (key, URL, rate windows); only what the
    command line cannot express here (poll pace, retry backoff, timeouts, the 429 penalty) is
    shortened, so a run takes a second, not minutes. Everything the command decides stays its own.
    """
    options = scenario.client_options()

    def make_client(**kwargs: Any) -> ade_async.Client:
        limit: ade_async.RateLimit = kwargs.pop("rate_limit")
        fast_limit = fast_penalty(limit)
        kwargs.pop("reconcile", None)  # the command's 30 s search, shortened like the rest
        extra = {name: options[name] for name in ("timeouts", "retry", "poll", "reconcile", "seed")}
        return ade_async.Client(rate_limit=fast_limit, **kwargs, **extra)

    with monkeypatch.context() as patch:
        patch.setattr(cli_extract, "Client", make_client)
        yield


async def run_cli(scenario: Scenario, root: Path, monkeypatch: pytest.MonkeyPatch) -> RunReport:
    """Push the corpus through ``ade-async extract`` (in-process) under the scenario's faults."""
    assert not scenario.late_start, "the command's runs need the API up from the start"
    documents = corpus(scenario.documents, unknown_status_every=scenario.unknown_status_every)
    docs, out = root / "docs", root / "out"
    paths = write_corpus(docs, documents)
    schema = root / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    report = RunReport(scenario=scenario.name, path="CLI", inputs=len(paths))
    stdout, stderr = io.StringIO(), io.StringIO()
    async with _serving(scenario, lambda: 0) as (sim, base_url):
        options = cli_extract.ExtractOptions(
            inputs=[str(docs)],
            schema=schema,
            out=out,
            api_key=API_KEY,
            base_url=base_url,
            json=True,
            quiet=True,
        )
        with patched_cli_client(monkeypatch, scenario):
            code = await cli_extract.run_extract(options, stdout=stdout, stderr=stderr)
        stats = sim.stats()
    summary = json.loads(stdout.getvalue())
    report.reconciled = summary["reconciled"]
    report.possible_duplicates = summary["possible_duplicates"]
    unknown: set[str] = set()
    failures: Counter[str] = Counter()
    states = journal_states(out)
    for path in paths:
        result_file = out / path.with_suffix(".json").name
        error_file = out / path.with_suffix(".error.json").name
        if result_file.exists() == error_file.exists():
            report.lost.append(f"{path.name}: result {result_file.exists()}, error {error_file.exists()}")
            continue
        report.outcomes += 1
        if result_file.exists():
            extraction = json.loads(result_file.read_bytes())["extraction"]
            if extraction == expected_extraction(path.name) and states.get(path.name) == "completed":
                report.succeeded += 1
            else:
                report.lost.append(f"{path.name}: {extraction!r}, journal {states.get(path.name)}")
            continue
        error = json.loads(error_file.read_bytes())
        failures[error["error_type"]] += 1
        unknown_state = states.get(path.name) in ("failed", "unknown")  # "unknown": searched again on resume
        if error["error_type"] == "CreateOutcomeUnknownError" and unknown_state:
            unknown.add(path.name)
        else:
            report.lost.append(f"{path.name}: {error}, journal {states.get(path.name)}")
    expected_code = 1 if unknown else 0
    if code != expected_code or summary["completed"] != report.succeeded or summary["failed"] != len(unknown):
        report.lost.append(f"exit code {code} and summary {summary} do not match the outputs")
    report.reported_unknown = len(unknown)
    report.failures_by_type = dict(failures)
    _fill_from_simulator(report, stats, documents, unknown, 0)
    return report


def journal_states(out: Path) -> dict[str, str]:
    """Journal key -> state, read from the command's SQLite journal."""
    with contextlib.closing(sqlite3.connect(out / ".ade-async" / "journal.sqlite")) as db:
        return dict(db.execute("SELECT key, state FROM inputs"))


def check_run(scenario: Scenario, report: RunReport) -> None:
    """Hold one run to the suite's rules (see the module docstring)."""
    assert report.lost == [], f"{scenario.name} via {report.path}: {report.lost}"
    assert report.outcomes == report.inputs
    assert report.succeeded + report.reported_unknown == report.inputs
    if scenario.unknown_creates is not None:
        assert report.reported_unknown == scenario.unknown_creates, report
    if scenario.reconciled is not None:
        assert report.reconciled == scenario.reconciled, report
    assert report.possible_duplicates == 0, "sent again without resubmit_unknown"
    assert report.duplicate_jobs == 0, "the client submitted a job twice"
    assert report.orphan_jobs <= report.reported_unknown, "a job exists that no outcome reports"
    assert report.result_url_auth_headers == 0, "the API key was sent to an output_url"
    if scenario.late_start:
        assert report.faults.get("refused", 0) >= 2, f"connections refused: {report.faults}"
    else:
        assert report.faults_total >= scenario.injected, f"faults met {report.faults}"
    if scenario.simulator.get("quota"):
        assert report.faults.get("429 from the quota", 0) > 0, "the quota never pushed back"
    random_faults: Faults | None = scenario.simulator.get("faults")
    if random_faults is not None and any(random_faults.rates(endpoint) for endpoint in ENDPOINTS):
        assert report.faults_total > 0, "no random fault was drawn"


def write_figures(reports: list[RunReport], notes: list[str], readme: Path) -> None:
    """Replace the figures in ``readme`` (between its markers) with these runs' figures and notes."""
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    rows = [
        "| scenario | run through | faults met | inputs | succeeded | of which reconciled "
        "| unknown creates (reported) | results lost | duplicate jobs | orphan jobs (reported) "
        "| key sent to output_url |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        faults = ", ".join(f"{kind} x{n}" for kind, n in sorted(r.faults.items())) or "none"
        rows.append(
            f"| {r.scenario} | {r.path} | {faults} | {r.inputs} | {r.succeeded} | {r.reconciled} "
            f"| {r.reported_unknown} "
            f"| {len(r.lost)} | {r.duplicate_jobs} | {r.orphan_jobs} | {r.result_url_auth_headers} |"
        )
    totals = (
        f"Totals over {len(reports)} runs: {sum(r.faults_total for r in reports)} faults met, "
        f"{sum(r.inputs for r in reports)} inputs, {sum(r.succeeded for r in reports)} succeeded "
        f"({sum(r.reconciled for r in reports)} through a job found after its answer was lost), "
        f"{sum(r.reported_unknown for r in reports)} ended as reported unknown creates, "
        f"{sum(len(r.lost) for r in reports)} results lost, "
        f"{sum(r.duplicate_jobs for r in reports)} duplicate jobs, "
        f"{sum(r.orphan_jobs for r in reports)} orphan jobs (each reported)."
    )
    text = readme.read_text(encoding="utf-8")
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    body = "\n".join([*rows, "", totals, *([""] + [f"- {note}" for note in notes] if notes else [])])
    readme.write_text(f"{before}{start}\n{body}\n{end}{after}", encoding="utf-8")


def figures_target() -> Path | None:
    """Where to write the figures: set ``ADE_RELIABILITY_FIGURES`` to a README path."""
    target = os.environ.get("ADE_RELIABILITY_FIGURES")
    return Path(target) if target else None
