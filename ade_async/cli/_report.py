"""The run report: one self-contained HTML file with charts and tables, from the journal.

``ade-async report OUT`` (and ``ade-async extract`` at the end of every run) writes
``OUT/.ade-async/report.html``: open it in any browser, offline. It shows, for the journal's
latest run (:mod:`._report_data` computes the figures):

* creates against each quota window (the most creates any window-long stretch held, and the
  line the client may not cross), 429s marked; with no quota given, creates per interval against
  the rate the client was learning;
* jobs in flight over time against the cap;
* histograms of job time (create answered to end seen), of how late each end was seen (the
  detection delay's upper bound) and of the wait for the quota, with p50/p90/p99;
* requests by kind over time (creates, polls, sweeps, searches for lost creates, results);
* tables: this run's totals (the summary ``--json`` printed), the journal's inputs by state,
  failures grouped by stage and reason with their job ids and links to their ``.error.json``,
  inputs still pending or unknown, possible duplicates, every run, and the run's settings (the
  provider, the quota, the limits; never the API key, which the journal never holds).

Charts are drawn by matplotlib (the ``report`` extra: ``pip install 'ade-async[report]'``) as SVG
written into the page, text kept as text: no script, font or style is fetched from anywhere. The
figures themselves are embedded too (``<script type="application/json" id="figures">``), the
same document ``ade-async report OUT --json`` prints. Everything is aggregated into at most
:data:`~._report_data.MAX_BUCKETS` time buckets and tables list at most
:data:`~._report_data.ROW_LIMIT` rows, so the file stays small whatever the run's size (about
100 KB, and well under 5 MB at 100,000 inputs with a thousand failures listed).

Example::

    from pathlib import Path
    from ade_async.cli._report import write_report

    path = write_report(Path("out"))  # out/.ade-async/report.html
"""

from __future__ import annotations

import html
import importlib.util
import io
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from ._journal import JournalStore
from ._report_data import (
    REQUEST_KINDS,
    Distribution,
    Figures,
    Table,
    Timeline,
    WindowPeaks,
    compute_figures,
    journal_path,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "INSTALL_HINT",
    "NoJournalError",
    "ReportUnavailable",
    "read_figures",
    "render_html",
    "report_path",
    "write_report",
]

#: How to get the chart library, for messages.
INSTALL_HINT: Final = "pip install 'ade-async[report]'"

# A palette that reads in colour and in grey, and for the common colour blindnesses.
_BLUE, _ORANGE, _RED, _GREEN, _GREY, _PURPLE, _BROWN = (
    "#1f77b4",
    "#ff7f0e",
    "#d62728",
    "#2ca02c",
    "#7f7f7f",
    "#9467bd",
    "#8c564b",
)
_KIND_COLOURS: Final = {
    "creates": _BLUE,
    "polls": _ORANGE,
    "sweeps": _GREEN,
    "searches": _PURPLE,
    "results": _BROWN,
}


class ReportUnavailable(Exception):
    """The chart library (the ``report`` extra) is not installed; the message says how to get it."""


class NoJournalError(Exception):
    """The folder holds no journal: no ``ade-async extract`` has run with it as ``--out``."""


def report_path(out: Path) -> Path:
    """Where the report of output folder ``out`` goes."""
    return out / ".ade-async" / "report.html"


def read_figures(out: Path) -> Figures:
    """The figures of ``out``'s journal (migrated in place first if an older version wrote it).

    Raises:
        NoJournalError: ``out`` has no journal.
        JournalVersionError: a newer ade-async wrote it.
    """
    path = journal_path(out)
    if not path.is_file():
        raise NoJournalError(
            f"{out} holds no journal ({path}): run `ade-async extract ... --out {out}` first"
        )
    store = JournalStore(path)
    try:
        return compute_figures(out, store)
    finally:
        store.close()


def write_report(out: Path) -> Path:
    """Write ``out``'s report (atomically: a reader never sees half a file) and return its path.

    Raises:
        ReportUnavailable: matplotlib is not installed (checked before any work).
        NoJournalError: ``out`` has no journal.
        JournalVersionError: a newer ade-async wrote it.
    """
    _require_matplotlib()
    figures = read_figures(out)
    page = render_html(figures)
    target = report_path(out)
    temporary = target.with_name(f".report.html.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportUnavailable(
            f"the report's charts need matplotlib, which is not installed: {INSTALL_HINT}"
        )


# --- the page ----------------------------------------------------------------------------------------


def render_html(figures: Figures) -> str:
    """The report page for ``figures``: one HTML document, nothing outside it."""
    _require_matplotlib()
    run = figures.run
    title = f"ade-async run report: {figures.out}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing is loaded from anywhere: the page may only use what it holds.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<header><h1>ade-async run report</h1><p class="where">{_e(figures.out)}</p>',
        f'<p class="when">{_run_line(figures)}</p></header>',
        _cards(figures),
        "<main>",
    ]
    if figures.times_unknown:
        parts.append(
            f'<p class="note">{figures.times_unknown:,} inputs of this run have no recorded times (their '
            "journal rows come from an older ade-async): they are missing from the charts.</p>"
        )
    if run is None:
        parts.append(
            '<p class="note">This journal holds no run with timings (it was written by an ade-async '
            "older than the report): the tables below show its inputs; the next run adds the charts.</p>"
        )
    parts.append(_section("Pace: creates against the quota", _pace_charts(figures)))
    parts.append(_section("Jobs in flight", [_chart_or_empty("in-flight", figures, _draw_in_flight)]))
    parts.append(
        _section(
            "Where time went",
            [
                _histogram_figure(
                    "job-time",
                    figures.job_time,
                    "Job time",
                    "seconds from the create's answer to the job's end seen",
                    _BLUE,
                ),
                _histogram_figure(
                    "detection",
                    figures.detection,
                    "Detection delay (at most)",
                    "seconds from the last answer that showed the job running to the one that showed its end",
                    _GREEN,
                ),
                _histogram_figure(
                    "quota-wait",
                    figures.quota_wait,
                    "Wait for the quota",
                    "seconds from the first wait for admission to the send of the create that made the job",
                    _ORANGE,
                ),
            ],
        )
    )
    parts.append(_section("Requests by kind", [_chart_or_empty("requests", figures, _draw_requests)]))
    parts.append(
        _section(
            "Outcomes", ['<div class="pair">', _this_run_table(figures), _states_table(figures), "</div>"]
        )
    )
    parts.append(_section("Failures", [_failures_table(figures)]))
    parts.append(_section("Inputs still pending or unknown", [_inputs_table("pending", figures.pending)]))
    parts.append(_section("Possible duplicates", [_inputs_table("duplicates", figures.duplicates)]))
    parts.append(_section("Runs on this folder", [_runs_table(figures)]))
    parts.append(_section("Settings", [_settings_table(figures)]))
    data = msgspec.json.encode(figures).decode().replace("</", "<\\/")  # no early end of the script
    parts += [
        "</main>",
        f"<footer>ade-async {_e(figures.version)} · generated {_e(_clock(figures.generated_at))} · "
        f"journal {_e(figures.journal)} · the figures as JSON: <code>ade-async report OUT --json</code>"
        "</footer>",
        f'<script type="application/json" id="figures">{data}</script>',
        "</body></html>",
    ]
    return "\n".join(parts)


_CSS: Final = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6472; --line: #d9dee6; --band: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; font: 15px/1.45 system-ui, -apple-system,
  "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
h1 { font-size: 24px; margin: 0; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
header .where { margin: 4px 0 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
header .when, .note, footer { color: var(--muted); }
.note { background: var(--band); padding: 8px 12px; border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 10px;
  margin: 18px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .value { font-size: 24px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 13px; }
.card.bad .value { color: #b3261e; }
.card.good .value { color: #1b7a34; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 20px;
  align-items: start; }
figure { margin: 12px 0 20px; }
figure svg { display: block; width: 100%; height: auto; }
figure h3 { font-size: 15px; margin: 0 0 2px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 2px; }
figure.empty { border: 1px dashed var(--line); border-radius: 6px; padding: 14px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td code, td.key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
  word-break: break-all; }
caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: bottom; font-size: 13px; }
footer { margin-top: 32px; font-size: 13px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { body { max-width: none; } figure, table { break-inside: avoid; } }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(at: float | None) -> str:
    if at is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "yes" if value is True else ("no" if value is False else "-")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _run_line(figures: Figures) -> str:
    run = figures.run
    if run is None:
        return "no run recorded"
    ended = "still running, or killed" if run.ended_at is None else _clock(run.ended_at)
    length = None if run.ended_at is None else run.ended_at - run.started_at
    code = "" if run.exit_code is None else f" · exit code {run.exit_code}"
    return (
        f"run {run.id} of {len(figures.runs)} · provider {_e(run.provider)}"
        f" · started {_e(_clock(run.started_at))}"
        f" · ended {_e(ended)} · {_e(_duration(length))}{code}"
    )


def _cards(figures: Figures) -> str:
    summary = (figures.run.summary if figures.run is not None else None) or {}
    failed = summary.get("failed", figures.outcomes.get("failed", 0))
    pending = summary.get("pending", figures.pending.count)
    cards = [
        ("inputs", summary.get("inputs", figures.outcomes.get("total", 0)), ""),
        ("completed", summary.get("completed", figures.this_run.get("completed", 0)), "good"),
        ("already done", summary.get("skipped", 0), ""),
        ("failed", failed, "bad" if failed else ""),
        ("pending", pending, "bad" if pending else ""),
        ("429s", figures.rate_limited, "bad" if figures.rate_limited else ""),
    ]
    items = [
        f'<div class="card {style}" data-key="{_e(key)}"><div class="value">{_number(value)}</div>'
        f'<div class="label">{_e(key)}</div></div>'
        for key, value, style in cards
    ]
    return f'<section class="cards" id="cards">{"".join(items)}</section>'


def _section(title: str, body: Sequence[str]) -> str:
    return f"<h2>{_e(title)}</h2>\n" + "\n".join(body)


# --- tables --------------------------------------------------------------------------------------------


def _row(label: str, key: str, value: object) -> str:
    cell = f'<td class="n" data-key="{_e(key)}">{_e(_number(value))}</td>'
    return f'<tr><th scope="row">{_e(label)}</th>{cell}</tr>'


_SUMMARY_ROWS: Final = (
    ("inputs", "inputs found"),
    ("completed", "completed in this run"),
    ("skipped", "already done (skipped)"),
    ("failed", "failed (including outcomes unknown)"),
    ("pending", "still running server-side"),
    ("reconciled", "lost create answers, job found and adopted"),
    ("possible_duplicates", "possible duplicates"),
    ("outcome_unknown", "outcomes unknown"),
    ("elapsed_s", "elapsed (s)"),
)
_REQUEST_ROWS: Final = (
    ("creates_sent", "creates sent"),
    ("creates_rate_limited", "creates answered 429"),
    ("polls_sent", "polls"),
    ("sweep_requests", "sweeps of the active lists"),
    ("reconcile_requests", "searches for lost creates"),
    ("results_fetched", "results fetched"),
)


def _this_run_table(figures: Figures) -> str:
    summary = figures.run.summary if figures.run is not None else None
    if summary is None:
        counts = "".join(_row(state, state, n) for state, n in sorted(figures.this_run.items()))
        return (
            '<table id="this-run"><caption>This run left no summary (it is still going, or was killed): '
            f"the inputs it changed, by state in the journal.</caption>{counts}</table>"
        )
    rows = [_row(label, key, summary.get(key)) for key, label in _SUMMARY_ROWS]
    requests = summary.get("requests") or {}
    request_rows = [_row(label, key, requests.get(key)) for key, label in _REQUEST_ROWS]
    return (
        '<table id="this-run"><caption>This run, as the command summed it up '
        "(<code>ade-async extract --json</code>)</caption>"
        f'<tr><th colspan="2">This run</th></tr>{"".join(rows)}</table>'
        f'<table id="requests"><tr><th colspan="2">Requests sent in this run</th></tr>{"".join(request_rows)}'
        "</table>"
    )


_STATE_LABELS: Final = {
    "completed": "completed",
    "failed": "failed",
    "unknown": "outcome unknown (the next run looks for its job)",
    "submitted": "job running (a re-run collects it)",
    "submitting": "create sent, no answer recorded",
    "queued": "not sent",
    "total": "total",
}


def _states_table(figures: Figures) -> str:
    rows = [
        _row(_STATE_LABELS.get(state, state), state, n)
        for state, n in sorted(figures.outcomes.items(), key=lambda item: item[0] == "total")
    ]
    return (
        '<table id="states"><caption>Every input the journal knows (all runs on this folder), by its '
        f'state now.</caption><tr><th colspan="2">Inputs in the journal</th></tr>{"".join(rows)}</table>'
    )


def _link(error_file: str | None) -> str:
    if not error_file:
        return "-"
    href = "../" + urllib.parse.quote(error_file)  # the report lives in OUT/.ade-async/
    return f'<a href="{_e(href)}">{_e(error_file)}</a>'


def _failures_table(figures: Figures) -> str:
    if not figures.failures:
        return '<p id="failures-none">No failures.</p>'
    rows = []
    for number, group in enumerate(figures.failures):
        rows.append(
            f'<tr class="group" id="failure-group-{number}">'
            f'<th class="n" data-key="count">{group.count:,}</th>'
            f'<th>{_e(group.stage)}</th><th colspan="2">{_e(group.reason)}</th></tr>'
        )
        for failure in group.inputs:
            rows.append(
                f'<tr><td></td><td class="key">{_e(failure.key)}</td><td><code>{_e(failure.job_id or "-")}'
                f"</code></td><td>{_link(failure.error_file)}</td></tr>"
            )
    more = figures.failures_count - figures.failures_listed
    caption = f"{figures.failures_count:,} failed inputs, grouped by stage and reason"
    if more:
        caption += f"; {more:,} more not listed (see the journal)"
    return (
        f'<table id="failures"><caption>{caption}</caption><tr><th class="n">inputs</th><th>stage</th>'
        f"<th>reason / job id</th><th>error file</th></tr>{''.join(rows)}</table>"
    )


def _inputs_table(name: str, table: Table) -> str:
    if not table.count:
        return f'<p id="{name}-none">None.</p>'
    rows = "".join(
        f'<tr><td class="key">{_e(row.key)}</td><td>{_e(row.state)}</td>'
        f"<td><code>{_e(row.job_id or '-')}</code></td><td>{_link(row.error_file)}</td></tr>"
        for row in table.rows
    )
    more = table.count - len(table.rows)
    caption = f"{table.count:,} inputs" + (f"; {more:,} more not listed" if more else "")
    return (
        f'<table id="{name}"><caption>{caption}</caption><tr><th>input</th><th>state</th><th>job id</th>'
        f"<th>error file</th></tr>{rows}</table>"
    )


def _runs_table(figures: Figures) -> str:
    rows = []
    for run in figures.runs:
        summary = run.summary or {}
        length = None if run.ended_at is None else run.ended_at - run.started_at
        rows.append(
            f'<tr><td class="n">{run.id}</td><td>{_e(_clock(run.started_at))}</td>'
            f'<td>{_e(_duration(length))}</td><td class="n">{_e(_number(run.exit_code))}</td>'
            f'<td class="n">{_e(_number(summary.get("inputs")))}</td>'
            f'<td class="n">{_e(_number(summary.get("completed")))}</td>'
            f'<td class="n">{_e(_number(summary.get("failed")))}</td></tr>'
        )
    return (
        '<table id="runs"><tr><th class="n">run</th><th>started</th><th>took</th><th class="n">exit code</th>'
        '<th class="n">inputs</th><th class="n">completed</th><th class="n">failed</th></tr>'
        f"{''.join(rows)}</table>"
    )


def _rate(count: int, period: float) -> str:
    for unit, seconds in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if period >= seconds and period % seconds == 0:
            return f"{count}/{period / seconds:g}{unit}"
    return f"{count}/{period:g}s"


def _settings_table(figures: Figures) -> str:
    settings = dict(figures.run.settings) if figures.run is not None else {}
    if not settings:
        return "<p>No settings recorded.</p>"
    windows = settings.pop("windows", None) or []
    quota = ", ".join(_rate(int(count), float(period)) for count, period in windows)
    if not quota:
        quota = "none given: learned from 429s (adaptive)"
    labels = {
        "provider": "provider",
        "api": "API",
        "base_url": "API address",
        "simulated": "simulated (--simulate)",
        "adaptive": "adaptive rate",
        "safety_margin": "safety margin (s)",
        "max_in_flight": "max in flight",
        "shared_quota": "quota shared through Redis",
        "quota_name": "shared quota's name",
        "job_timeout": "job timeout (s)",
        "search_time": "search time for lost creates (s)",
        "model": "model",
        "strict": "strict schema",
        "retry_failed": "--retry-failed",
        "resubmit_unknown": "--resubmit-unknown",
        "inputs": "inputs",
        "schema": "schema",
        "out": "output folder",
    }
    rows = [f'<tr><th scope="row">quota (--rate)</th><td data-key="quota">{_e(quota)}</td></tr>']
    for key, value in settings.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else _number(value)
        rows.append(
            f'<tr><th scope="row">{_e(labels.get(key, key))}</th>'
            f'<td data-key="{_e(key)}">{_e(shown)}</td></tr>'
        )
    return f'<table id="settings">{"".join(rows)}</table>'


# --- charts --------------------------------------------------------------------------------------------


def _figure(chart_id: str, title: str, svg: str, caption: str) -> str:
    # The title is the page's, not the chart's: the legend above the plot gets the whole width.
    return (
        f'<figure class="chart" id="chart-{chart_id}"><h3>{_e(title)}</h3>{svg}'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _empty(chart_id: str, why: str) -> str:
    return f'<figure class="chart empty" id="chart-{chart_id}"><p>{_e(why)}</p></figure>'


@contextmanager
def _canvas(chart_id: str, height: float = 2.9) -> Iterator[tuple[Axes, io.StringIO]]:
    """A fresh figure (no pyplot: no global state, nothing shown), saved as SVG on exit."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    style = {
        "svg.fonttype": "none",  # text stays text: smaller, sharp, searchable
        "svg.hashsalt": f"ade-async-{chart_id}",  # ids differ between the charts of one page
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e3e7ee",
        "grid.linewidth": 0.8,
        "axes.axisbelow": True,
        "legend.frameon": False,
    }
    with matplotlib.rc_context(cast(Any, style)):
        figure = Figure(figsize=(10, height), dpi=96, layout="constrained")
        axes = figure.add_subplot()
        # Every y axis counts things: whole ticks, written 20,000 rather than 20000.
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        buffer = io.StringIO()
        yield axes, buffer
        figure.savefig(buffer, format="svg", metadata={"Date": None})


def _svg(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # the page is the document: no XML prolog or doctype


def _legend(axes: Axes) -> None:
    """The legend above the plot, on the right (the title is on the left): it never hides data."""
    handles, _labels = axes.get_legend_handles_labels()
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=max(1, len(handles)), borderaxespad=0.2)


def _steps(xs: Sequence[float], values: Sequence[Any], width: float) -> tuple[list[float], list[Any]]:
    """Points for ``step(where="post")`` that draw the last bucket to its end too."""
    return [*xs, xs[-1] + width], [*values, values[-1]]


def _time_axis(timeline: Timeline) -> tuple[list[float], float, str]:
    """Bucket starts in the unit that suits the run's length, the bucket width, and the label."""
    length = timeline.bucket_s * len(timeline.offsets)
    scale, unit = (1.0, "s") if length <= 300 else ((60.0, "min") if length <= 3 * 3600 else (3600.0, "h"))
    return (
        [offset / scale for offset in timeline.offsets],
        timeline.bucket_s / scale,
        f"time since the run began ({unit})",
    )


def _per(timeline: Timeline) -> str:
    width = timeline.bucket_s
    return (
        f"{width:g} s" if width < 60 else (f"{width / 60:g} min" if width < 3600 else f"{width / 3600:g} h")
    )


def _mark_429s(axes: Axes, timeline: Timeline, xs: Sequence[float], width: float, total: int) -> None:
    hits = [x + width / 2 for x, n in zip(xs, timeline.rate_limited, strict=True) if n]
    if hits:
        axes.vlines(
            hits,
            0,
            1,
            transform=axes.get_xaxis_transform(),
            colors=_RED,
            alpha=0.35,
            linewidth=1.2,
            label=f"429 answers ({total:,})",
        )


def _pace_charts(figures: Figures) -> list[str]:
    timeline = figures.timeline
    if timeline is None or not any(timeline.creates):
        return [_empty("creates", "No create was answered in this run: nothing to draw.")]
    if figures.windows:
        return [
            _window_chart(timeline, window, figures.rate_limited, i)
            for i, window in enumerate(figures.windows)
        ]
    return [_adaptive_chart(timeline, figures.rate_limited)]


def _window_chart(timeline: Timeline, window: WindowPeaks, rate_limited: int, number: int) -> str:
    xs, width, label = _time_axis(timeline)
    name = _rate(window.count, window.period)
    chart_id = f"window-{number}"
    with _canvas(chart_id) as (axes, buffer):
        # A run that keeps to the quota runs along its line: the data is drawn over it, and shaded.
        steps = _steps(xs, window.peaks, width)
        axes.step(
            *steps,
            where="post",
            color=_BLUE,
            linewidth=1.8,
            zorder=3,
            label=f"most creates in any {window.period:g} s",
        )
        axes.fill_between(*steps, step="post", color=_BLUE, alpha=0.15, zorder=2)
        axes.axhline(window.count, color=_RED, linestyle="--", linewidth=1.2, zorder=4, label=f"quota {name}")
        _mark_429s(axes, timeline, xs, width, rate_limited)
        axes.set_ylim(0, max(window.count, window.highest) * 1.15 + 1)
        axes.set_xlim(0, xs[-1] + width)
        axes.set_xlabel(label)
        axes.set_ylabel(f"creates per {window.period:g} s")
        _legend(axes)
    caption = (
        f"The most creates answered in any {window.period:g}-second stretch ending in each {_per(timeline)} "
        f"interval; the dashed line is the quota ({name}), which the client may not cross. Highest: "
        f"{window.highest:,}. {_ticks(rate_limited)}"
    )
    return _figure(chart_id, f"Creates against the quota window {name}", _svg(buffer), caption)


def _adaptive_chart(timeline: Timeline, rate_limited: int) -> str:
    xs, width, label = _time_axis(timeline)
    with _canvas("creates") as (axes, buffer):
        axes.bar(
            xs,
            timeline.creates,
            width=width,
            align="edge",
            color=_BLUE,
            alpha=0.8,
            label="creates answered",
        )
        if timeline.adaptive_rate is not None and any(rate is not None for rate in timeline.adaptive_rate):
            allowance = [
                None if rate is None else rate * timeline.bucket_s for rate in timeline.adaptive_rate
            ]
            axes.step(
                *_steps(xs, [math_nan(a) for a in allowance], width),
                where="post",
                color=_RED,
                linestyle="--",
                linewidth=1.4,
                label="pace allowed (learned)",
            )
        _mark_429s(axes, timeline, xs, width, rate_limited)
        axes.set_xlim(0, xs[-1] + width)
        axes.set_xlabel(label)
        axes.set_ylabel(f"creates per {_per(timeline)}")
        _legend(axes)
    caption = (
        f"Creates answered with a job in each {_per(timeline)} interval. No --rate was given, so the client "
        f"learned the quota from 429s: the dashed line is the pace it allowed itself. {_ticks(rate_limited)}"
    )
    return _figure("creates", "Creates per interval (quota learned)", _svg(buffer), caption)


def _ticks(rate_limited: int) -> str:
    if not rate_limited:
        return "No create was answered 429."
    return f"Red ticks: the {rate_limited:,} creates answered 429 (each paused every create)."


def math_nan(value: float | None) -> float:
    """``None`` as NaN (matplotlib leaves a gap)."""
    return float("nan") if value is None else value


def _chart_or_empty(chart_id: str, figures: Figures, draw: Callable[[str, Figures], str | None]) -> str:
    drawn = draw(chart_id, figures)
    return drawn if drawn is not None else _empty(chart_id, "No timings were recorded for this run.")


def _draw_in_flight(chart_id: str, figures: Figures) -> str | None:
    timeline = figures.timeline
    if timeline is None or not any(timeline.in_flight):
        return None
    xs, width, label = _time_axis(timeline)
    cap = figures.in_flight_cap
    with _canvas(chart_id) as (axes, buffer):
        steps = _steps(xs, timeline.in_flight, width)
        axes.step(*steps, where="post", color=_BLUE, linewidth=1.6, label="jobs in flight (most)")
        axes.fill_between(*steps, step="post", color=_BLUE, alpha=0.12)
        highest = max(timeline.in_flight)
        top = highest * 1.2 + 1
        if cap is not None and cap <= 2.5 * highest:
            axes.axhline(
                cap, color=_RED, linestyle="--", linewidth=1.4, label=f"cap {cap:,} (--max-in-flight)"
            )
            top = max(top, cap * 1.15)
        elif cap is not None:  # far above: drawing it would flatten what happened
            axes.plot([], [], color=_RED, linestyle="--", label=f"cap {cap:,} (far above)")
        axes.set_ylim(0, top)
        axes.set_xlim(0, xs[-1] + width)
        axes.set_xlabel(label)
        axes.set_ylabel("jobs")
        _legend(axes)
    caption = (
        f"The most jobs in flight at once in each {_per(timeline)} interval (from the create's send to the "
        f"job's end seen). Highest: {max(timeline.in_flight):,}"
        + (f"; cap {cap:,}." if cap is not None else ".")
    )
    return _figure(chart_id, "Jobs in flight against the cap", _svg(buffer), caption)


def _draw_requests(chart_id: str, figures: Figures) -> str | None:
    timeline = figures.timeline
    if timeline is None or not any(any(series) for series in timeline.requests.values()):
        return None
    xs, width, label = _time_axis(timeline)
    with _canvas(chart_id) as (axes, buffer):
        for kind in REQUEST_KINDS:
            series = timeline.requests[kind]
            if any(series):
                axes.step(
                    *_steps(xs, series, width),
                    where="post",
                    color=_KIND_COLOURS[kind],
                    linewidth=1.4,
                    label=f"{kind} ({sum(series):,})",
                )
        axes.set_xlim(0, xs[-1] + width)
        axes.set_ylim(bottom=0)
        axes.set_xlabel(label)
        axes.set_ylabel(f"requests per {_per(timeline)}")
        _legend(axes)
    caption = (
        f"Requests sent in each {_per(timeline)} interval, by kind (totals in the legend): creates (429s "
        "included), polls of single jobs, sweeps of the active-job lists, searches for the jobs of lost "
        "creates, results fetched."
    )
    return _figure(chart_id, "Requests by kind", _svg(buffer), caption)


def _histogram_figure(chart_id: str, values: Distribution, title: str, unit: str, colour: str) -> str:
    if not values.count:
        return _empty(chart_id, f"{title}: no values recorded in this run.")
    with _canvas(chart_id, height=2.6) as (axes, buffer):
        widths = [right - left for left, right in zip(values.edges, values.edges[1:], strict=False)]
        axes.bar(
            values.edges[:-1],
            values.counts,
            width=widths,
            align="edge",
            color=colour,
            alpha=0.75,
            edgecolor="white",
            linewidth=0.5,
        )
        for name, value, style in (
            ("p50", values.p50, "-"),
            ("p90", values.p90, "--"),
            ("p99", values.p99, ":"),
        ):
            if value is not None:
                axes.axvline(
                    value, color="#333a45", linestyle=style, linewidth=1.3, label=f"{name} {_seconds(value)}"
                )
        axes.set_xlim(0, (values.edges[-1] if values.edges[-1] > 0 else 1) * 1.03)  # p99 may be the edge
        axes.set_xlabel(unit)
        axes.set_ylabel("inputs")
        _legend(axes)
    caption = (
        f"{values.count:,} inputs: p50 {_seconds(values.p50)}, p90 {_seconds(values.p90)}, "
        f"p99 {_seconds(values.p99)}, max {_seconds(values.max)}; {unit}."
    )
    return _figure(chart_id, title, _svg(buffer), caption)


def _seconds(value: float | None) -> str:
    """A duration for a person: 0.042 s, 3.1 s, 48 s, 1,350 s."""
    if value is None:
        return "-"
    return f"{value:.2g} s" if value < 10 else f"{value:,.0f} s"
