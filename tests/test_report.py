"""The run report: what the journal records on the way, ``ade-async report``, and the page in a
real browser (headless Chromium over the DevTools protocol, on loopback)."""

from __future__ import annotations

import functools
import io
import json
import os
import sqlite3
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from _chromium import Chromium
from PIL import Image
from report_journal import build_journal

from ade_async.cli._extract import _public_url
from ade_async.cli._journal import SCHEMA_VERSION, Journal, JournalStore, State
from ade_async.cli._report import render_html, report_path, write_report
from ade_async.cli._report_data import (
    MAX_BUCKETS,
    ROW_LIMIT,
    _in_flight,
    _window_peaks,
    bucket_width,
    compute_figures,
    distribution,
)
from ade_async.testing import Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}
KEY = "sk-report-secret-5f3c9a1e7b2d"
#: The charts a run with --rate, 429s and failures draws.
CHARTS_WITH_RATE = ("window-0", "in-flight", "job-time", "detection", "quota-wait", "requests")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_AGENT", "LANDINGAI_ADE"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def ade_async(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ade_async", *map(str, args)]
    done = await anyio.run_process(command, check=False, env=env or environment())
    return subprocess.CompletedProcess(command, done.returncode, done.stdout.decode(), done.stderr.decode())


def make_inputs(root: Path, count: int) -> Path:
    """``count`` invoices and one empty file (a failure at the read stage)."""
    docs = root / "docs"
    for i in range(count):
        folder = docs / ("sub" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"inv-{i}.md").write_text(f"# Invoice {i}\n\nInvoice Number: INV-{i}\nTotal: {i}.25\n")
    (docs / "empty.md").write_text("")
    (root / "schema.json").write_text(json.dumps(SCHEMA))
    return docs


async def busy_run(tmp_path: Path, *extra: str) -> tuple[Path, dict[str, Any]]:
    """A run with everything a report shows: 429s (the server's quota is under --rate), jobs
    that fail, a file that cannot be read. Returns the output folder and the ``--json`` summary."""
    config = SimulatorConfig(
        api_keys=(KEY,), latency=(0.2, 0.8), quota=((4, 1.0),), retry_after=None, failure_rate=0.25, seed=3
    )
    async with Simulator(config) as sim:
        docs = make_inputs(tmp_path, 16)
        out = tmp_path / "out"
        done = await ade_async(
            "extract", docs, "--schema", tmp_path / "schema.json", "--out", out, "--json", "--quiet",
            "--base-url", sim.base_url, *extra,
            env=environment(VISION_AGENT_API_KEY=KEY),
        )  # fmt: skip
    assert done.returncode == 1, done.stderr  # some failed
    return out, json.loads(done.stdout)


def report_json(out: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "ade_async", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        env=environment(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def inputs(out: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(out / ".ade-async" / "journal.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {row["key"]: dict(row) for row in db.execute("SELECT * FROM inputs")}


# --- the journal and the figures -----------------------------------------------------------------------


async def test_a_run_journals_each_inputs_moments_and_the_report_agrees_with_its_summary(
    tmp_path: Path,
) -> None:
    out, summary = await busy_run(tmp_path, "--rate", "6/1s")
    rows = inputs(out)
    completed = [row for row in rows.values() if row["state"] == "completed"]
    assert len(completed) == summary["completed"] > 0
    for row in completed:  # every moment of a finished input, in the order they happen
        assert (
            row["admission_at"]
            <= row["sent_at"]
            <= row["answered_at"]
            <= row["ended_at"]
            <= row["written_at"]
        )
        assert row["detected_within"] is not None
        assert row["detected_within"] >= 0
    job_failures = [row for row in rows.values() if row["stage"] == "job"]
    assert job_failures  # failure_rate 0.25 over 16 jobs (seeded)
    for row in job_failures:
        assert row["answered_at"] <= row["ended_at"]
        assert row["error_file"] is not None
        assert (out / row["error_file"]).is_file()
    assert rows["empty.md"]["stage"] == "read"

    figures = report_json(out)
    run = figures["run"]
    assert run["summary"] == summary  # the summary extract printed, kept as it was
    assert run["exit_code"] == summary["exit_code"] == 1
    assert run["settings"]["windows"] == [[6, 1.0]]
    # Figures the journal gives, against counts the command's client kept on its own.
    requests = summary["requests"]
    assert requests["creates_rate_limited"] > 0  # the server allows 4/s, the client sends 6/s
    assert figures["rate_limited"] == requests["creates_rate_limited"]
    assert sum(figures["timeline"]["rate_limited"]) == requests["creates_rate_limited"]
    timeline_requests = figures["timeline"]["requests"]
    assert sum(timeline_requests["creates"]) == requests["creates_sent"]
    assert sum(timeline_requests["polls"]) == requests["polls_sent"]
    assert sum(timeline_requests["results"]) == requests["results_fetched"]
    assert sum(figures["timeline"]["creates"]) == len(completed) + len(job_failures)
    assert figures["job_time"]["count"] == len(completed) + len(job_failures)
    assert figures["this_run"]["completed"] == summary["completed"]
    assert figures["failures_count"] == summary["failed"]
    assert figures["outcomes"]["total"] == summary["inputs"]
    # No window of the quota ever held more than it allows, as the client's gate promises.
    (window,) = figures["windows"]
    assert window["count"] == 6
    assert 0 < window["highest"] <= 6
    groups = {(group["stage"], group["reason"]): group for group in figures["failures"]}
    ((_stage, reason),) = [key for key in groups if key[0] == "read"]
    assert reason.startswith("InputError: empty file")
    assert groups["read", reason]["count"] == 1
    job_groups = [group for (stage, _reason), group in groups.items() if stage == "job"]
    assert len(job_groups) == 1  # one cause, one group, whatever the job ids
    assert {failure["job_id"] for failure in job_groups[0]["inputs"]} == {
        row["job_id"] for row in job_failures
    }
    assert report_path(out).is_file()  # extract wrote the page too


async def test_the_report_never_holds_the_api_key(tmp_path: Path) -> None:
    out, _summary = await busy_run(tmp_path)
    page = report_path(out).read_text()
    assert "429" in page  # it is the report of this run
    assert KEY not in page
    assert KEY not in json.dumps(report_json(out))
    for name in os.listdir(out / ".ade-async"):  # nor the journal (with its WAL), nor anything there
        assert KEY.encode() not in (out / ".ade-async" / name).read_bytes(), name


def test_a_base_url_is_shown_without_what_may_be_a_secret() -> None:
    assert (
        _public_url("https://user:pw@api.example.test:8443/v1?token=t#f")
        == "https://api.example.test:8443/v1"
    )
    assert _public_url("http://[::1]:9000") == "http://[::1]:9000"


async def test_no_report_skips_it_and_a_missing_chart_library_is_explained(tmp_path: Path) -> None:
    docs = make_inputs(tmp_path, 2)
    (docs / "empty.md").unlink()
    schema = tmp_path / "schema.json"
    done = await ade_async(
        "extract", docs, "--schema", schema, "--out", tmp_path / "a", "--simulate", "--no-report"
    )
    assert done.returncode == 0, done.stderr
    assert not report_path(tmp_path / "a").exists()
    assert "ade-async: report" not in done.stderr

    # Without matplotlib (hidden from the interpreter), extract finishes and says why there is no
    # report; `report` refuses with the same hint; `report --json` needs nothing more.
    hidden = "import sys; sys.modules['matplotlib'] = None; from ade_async.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", hidden]
    extract = await anyio.run_process(
        [*command, "extract", str(docs), "--schema", str(schema), "--out", str(tmp_path / "b"), "--simulate"],
        check=False,
        env=environment(),
    )
    assert extract.returncode == 0, extract.stderr
    assert "report skipped" in extract.stderr.decode()
    assert "pip install 'ade-async[report]'" in extract.stderr.decode()
    assert not report_path(tmp_path / "b").exists()
    report = await anyio.run_process(
        [*command, "report", str(tmp_path / "b")], check=False, env=environment()
    )
    assert report.returncode == 2
    assert "pip install 'ade-async[report]'" in report.stderr.decode()
    figures = await anyio.run_process([*command, "report", str(tmp_path / "b"), "--json"], check=False)
    assert figures.returncode == 0, figures.stderr
    assert json.loads(figures.stdout)["run"]["summary"]["completed"] == 2


def test_report_of_a_folder_without_a_journal_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ade_async", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "holds no journal" in done.stderr
    assert not (tmp_path / ".ade-async").exists()  # nothing created on the way


def test_a_version_2_journal_is_migrated_in_place_with_its_times_unknown(tmp_path: Path) -> None:
    folder = tmp_path / ".ade-async"
    folder.mkdir()
    with sqlite3.connect(folder / "journal.sqlite") as db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE inputs (key TEXT PRIMARY KEY, source TEXT NOT NULL, content_sha256 TEXT,
                settings_sha256 TEXT NOT NULL, state TEXT NOT NULL, job_id TEXT, stage TEXT, error TEXT,
                submissions INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL, upload_tokens TEXT,
                first_sent_at REAL);
            CREATE TABLE events (id INTEGER PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL,
                job_id TEXT, detail TEXT, at REAL NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '2'), ('provider', 'landingai');
            INSERT INTO inputs (key, source, settings_sha256, state, job_id, updated_at)
                VALUES ('a.md', 'docs/a.md', 's', 'completed', 'job-a', 1.0),
                       ('b.md', 'docs/b.md', 's', 'submitted', 'job-b', 1.0);
            INSERT INTO inputs (key, source, settings_sha256, state, job_id, stage, error, updated_at)
                VALUES ('c.md', 'docs/c.md', 's', 'failed', 'job-c', 'job',
                        'JobFailedError: job job-c failed: bad scan', 1.0);
            """
        )
    figures = report_json(tmp_path)
    assert figures["run"] is None
    assert figures["timeline"] is None
    assert figures["outcomes"] == {"completed": 1, "failed": 1, "submitted": 1, "total": 3}
    assert figures["pending"]["rows"] == [
        {"key": "b.md", "state": "submitted", "job_id": "job-b", "error_file": None}
    ]
    (group,) = figures["failures"]
    assert group["reason"] == "JobFailedError: job … failed: bad scan"
    with sqlite3.connect(folder / "journal.sqlite") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(inputs)")}
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        times = db.execute("SELECT answered_at, ended_at FROM inputs WHERE key = 'a.md'").fetchone()
    assert int(version) == SCHEMA_VERSION == 3
    assert {"admission_at", "sent_at", "answered_at", "ended_at", "written_at", "run_id"} <= columns
    assert times == (None, None)  # unknown, not invented
    page = write_report(tmp_path).read_text()
    assert "holds no run with timings" in page
    assert "bad scan" in page


async def test_notes_ride_along_with_changes_and_never_cost_a_transaction_of_their_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"

    def marks() -> int:
        with sqlite3.connect(path) as db:
            count: int = db.execute("SELECT COUNT(*) FROM marks").fetchone()[0]
            return count

    def broken(store: JournalStore) -> None:
        raise RuntimeError("a note that cannot be written")

    async with Journal(path) as journal:
        await journal.record("a.md", State.QUEUED)
        before = journal.transactions
        for i in range(50):  # 429s of a busy moment
            journal.note(
                functools.partial(JournalStore.write_mark, kind="rate_limited", at=float(i), key="a.md")
            )
        assert marks() == 0  # nothing written yet: nobody waits for a note
        await journal.record("a.md", State.SUBMITTING, upload_token="t1")
        assert journal.transactions == before + 1  # the change's commit carried the 50 notes
        assert marks() == 50
        # A note that fails never fails the change it rode with; the notes beside it are dropped.
        journal.note(broken)
        await journal.record("a.md", State.SUBMITTED, job_id="job-1")
        record = await journal.get("a.md")
        assert record is not None
        assert record.state is State.SUBMITTED
        # An idle journal commits its notes when asked (the command does it every 30 s at most).
        journal.note(lambda store: store.write_mark("rate_limited", at=99.0))
        await journal.flush()
        assert marks() == 51
        journal.note(lambda store: store.write_mark("rate_limited", at=100.0))
    assert marks() == 52  # the last ones are committed as the journal closes


# --- the figures' arithmetic ---------------------------------------------------------------------------


def test_window_peaks_count_the_creates_of_any_period_ending_in_each_bucket() -> None:
    answered = [0.1, 0.2, 0.95, 1.05, 1.1, 2.5]

    def index(at: float) -> int:
        return int(at)

    # (at - 1, at]: at 1.1 the window holds 0.2, 0.95, 1.05, 1.1 (0.1 has left).
    assert _window_peaks(answered, 1.0, 3, index) == [3, 4, 1]


def test_in_flight_holds_between_changes_and_an_end_comes_before_a_start_at_the_same_moment() -> None:
    rows = [
        # state, sent, answered, ended
        ("completed", 0.0, 0.5, 2.0),
        ("completed", 2.0, 2.1, 3.5),  # starts as the first ends: never two at once
        ("submitted", 0.2, 0.4, None),  # still running at the end
        ("failed", 0.3, None, None),  # no job: never in flight
    ]
    assert _in_flight(rows, 0.0, 4.0, 4, 1.0) == [2, 2, 2, 2]
    assert _in_flight(rows[:2], 0.0, 4.0, 4, 1.0) == [1, 1, 1, 1]
    assert _in_flight(rows[:1], 0.0, 4.0, 4, 1.0) == [1, 1, 1, 0]


def test_distribution_gives_nearest_rank_percentiles_and_a_histogram_of_every_value() -> None:
    values = distribution(float(i) for i in range(1, 101))
    assert (values.count, values.p50, values.p90, values.p99, values.max) == (100, 50.0, 90.0, 99.0, 100.0)
    assert sum(values.counts) == 100
    assert len(values.edges) == len(values.counts) + 1
    assert distribution([]).count == 0
    assert distribution([0.0, 0.0]).counts == [2]


def test_buckets_are_a_second_at_least_and_never_more_than_the_limit() -> None:
    assert bucket_width(5.0) == 1.0
    for duration in (0.0, 239.0, 241.0, 3600.0, 86400.0, 30 * 86400.0):
        assert duration / bucket_width(duration) <= MAX_BUCKETS


def test_a_100000_input_journal_gives_a_report_under_5_mb(tmp_path: Path) -> None:
    """The size limit of issue 19. The render time is measured by benchmarks/bench_report.py,
    not asserted here."""
    build_journal(tmp_path, 100_000)
    path = write_report(tmp_path)
    size = path.stat().st_size
    assert size < 5 * 1024 * 1024, size
    store = JournalStore(tmp_path / ".ade-async" / "journal.sqlite")
    try:
        figures = compute_figures(tmp_path, store)
    finally:
        store.close()
    assert figures.outcomes["total"] == 100_000
    assert figures.failures_count > ROW_LIMIT // 2
    assert sum(len(group.inputs) for group in figures.failures) == min(ROW_LIMIT, figures.failures_count)
    assert figures.timeline is not None
    assert len(figures.timeline.offsets) <= MAX_BUCKETS
    assert [window.count for window in figures.windows] == [200, 20000]
    page = path.read_text()
    for table in ("this-run", "states", "failures", "pending", "duplicates", "runs", "settings"):
        assert f'id="{table}"' in page
    assert render_html(figures).count("<figure") == page.count("<figure")  # the same page from the figures


# --- in a real browser ---------------------------------------------------------------------------------


def drawn(png: bytes) -> tuple[float, float]:
    """The share of a picture's pixels that are ink (not background), and the share that are
    coloured: the data. Axes, grid and text are grey; every series and line is a colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = cast("list[tuple[int, tuple[int, int, int]]]", image.getcolors(image.width * image.height))
    size = image.width * image.height
    ink = sum(count for count, (r, g, b) in colours if min(r, g, b) < 235)
    data = sum(count for count, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    return ink / size, data / size


def error_stage(link: str) -> str:
    """The stage in the ``.error.json`` a ``file://`` link of the page leads to."""
    target = Path(urllib.parse.unquote(urllib.parse.urlparse(link).path))
    stage: str = json.loads(target.read_text())["stage"]
    return stage


def number(text: str) -> float:
    return float(text.replace(",", "").replace(" s", ""))


async def test_the_report_draws_every_chart_and_shows_the_runs_numbers_in_chromium(tmp_path: Path) -> None:
    out, summary = await busy_run(tmp_path, "--rate", "6/1s")
    figures = report_json(out)
    page_url = report_path(out).as_uri()
    async with Chromium(tmp_path / "profile").running() as browser, browser.open(page_url) as page:
        # Every chart is there, was laid out at a real size, and put ink on the screen.
        charts = await page.evaluate(
            "[...document.querySelectorAll('figure.chart')].map(f => {"
            " const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : null;"
            " return [f.id, r && [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]]; })"
        )
        assert [chart_id for chart_id, _box in charts] == [f"chart-{name}" for name in CHARTS_WITH_RATE]
        for chart_id, box in charts:
            assert box is not None, f"{chart_id} has no drawing"
            x, y, width, height = box
            assert width > 600
            assert height > 150, chart_id
            png = await page.screenshot({"x": x, "y": y, "width": width, "height": height})
            ink, data = drawn(png)
            assert ink > 0.02, f"{chart_id}: {ink:.1%} of its pixels drawn"
            assert data > 0.005, f"{chart_id}: {data:.2%} of its pixels are data"
        # The text of the charts came through (matplotlib keeps it as text in the SVG).
        legend = await page.evaluate("document.querySelector('#chart-window-0 svg').textContent")
        assert f"429 answers ({summary['requests']['creates_rate_limited']:,})" in legend
        assert "quota 6/1s" in legend

        # The tables show the numbers the command printed, as a person reads them.
        async def cells(selector: str) -> dict[str, str]:
            pairs = await page.evaluate(
                f"[...document.querySelectorAll('{selector} [data-key]')]"
                ".map(c => [c.dataset.key, c.textContent])"
            )
            return dict(pairs)

        this_run = await cells("#this-run")
        for key in (
            "inputs",
            "completed",
            "skipped",
            "failed",
            "pending",
            "possible_duplicates",
            "reconciled",
        ):
            assert number(this_run[key]) == summary[key], key
        requests = await cells("#requests")
        for key, value in summary["requests"].items():
            assert number(requests[key]) == value, key
        states = await cells("#states")
        assert {key: number(text) for key, text in states.items()} == figures["outcomes"]
        cards = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.card')]"
            ".map(c => [c.dataset.key, c.querySelector('.value').textContent]))"
        )
        assert number(cards["completed"]) == summary["completed"]
        assert number(cards["failed"]) == summary["failed"]
        assert number(cards["429s"]) == summary["requests"]["creates_rate_limited"]
        groups = await page.evaluate(
            "[...document.querySelectorAll('#failures tr.group')].map(r => [r.children[1].textContent,"
            " Number(r.children[0].textContent)])"
        )
        assert sum(count for _stage, count in groups) == summary["failed"]
        job_ids = await page.evaluate(
            "[...document.querySelectorAll('#failures td code')].map(c => c.textContent)"
        )
        failed_jobs = {row["job_id"] for row in inputs(out).values() if row["stage"] == "job"}
        assert failed_jobs <= set(job_ids)
        # Each failure links to its .error.json, which is there.
        links = await page.evaluate("[...document.querySelectorAll('#failures a')].map(a => a.href)")
        assert len(links) == summary["failed"]
        assert all(error_stage(link) in ("read", "job") for link in links)
        settings = await cells("#settings")
        assert settings["quota"] == "6/1s"
        text = await page.evaluate("document.body.innerText")
        assert KEY not in text
        (tmp_path / "report.png").write_bytes(await page.screenshot(full_page=True))
