"""The figures of a run report, read from the journal alone: aggregation, no chart library.

``ade-async report OUT --json`` prints them; :mod:`._report` draws the same figures into one HTML
file. Everything is computed from what the journal keeps (see :mod:`._journal`):

* the run reported is the journal's latest (``runs``): its settings (the quota in force, limits;
  never the key) and, once it ended, the summary the command printed;
* its timeline is cut into equal buckets, at most :data:`MAX_BUCKETS` of them, so the figures stay
  the same size for 27 inputs or 100,000: creates answered per bucket, 429s per bucket, the most
  jobs in flight at once in each bucket, requests of each kind per bucket (from the counter
  samples), and, for each quota window ``COUNT/PERIOD``, the most creates any ``PERIOD`` ending in
  that bucket held (the line the client may not cross is ``COUNT``);
* distributions (job time from the create's answer to the job's end, the bound on how late each
  end was seen, the wait for the quota) are histograms with percentiles;
* per-input rows only where a person has to act: failures (grouped by stage and reason), inputs
  still pending or unknown, possible duplicates; each table lists at most :data:`ROW_LIMIT` rows
  and says how many more there are.

A journal written before version 3 has no moments: its figures say how many inputs have unknown
times, and the charts that need them are empty.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from .._version import __version__
from ._journal import JournalStore

__all__ = [
    "MAX_BUCKETS",
    "ROW_LIMIT",
    "Distribution",
    "Failure",
    "FailureGroup",
    "Figures",
    "InputRow",
    "RunInfo",
    "Table",
    "Timeline",
    "WindowPeaks",
    "compute_figures",
    "journal_path",
]

#: The most buckets a timeline is cut into (chart points, and JSON entries per series).
MAX_BUCKETS: Final = 240
#: The most per-input rows a table lists (the counts always cover every input).
ROW_LIMIT: Final = 1000
#: Bucket widths, in seconds: the smallest that keeps a run within MAX_BUCKETS is used. Never
#: under a second: the counters are sampled once a second, and a rate is read per second.
_BUCKET_WIDTHS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
#: Bins of each histogram.
_BINS: Final = 30
#: The longest reason shown for a failure group (error messages can be long).
_REASON_CHARS: Final = 240

#: Request kinds: the report's name -> the counter sample it comes from.
REQUEST_KINDS: Final = {
    "creates": "creates_sent",
    "polls": "polls_sent",
    "sweeps": "sweep_requests",
    "searches": "reconcile_requests",
    "results": "results_fetched",
}


class Distribution(msgspec.Struct, kw_only=True):
    """Values in seconds: how many, percentiles, and a histogram (``edges`` has one more entry
    than ``counts``). Percentiles are nearest-rank; ``None`` when there are no values."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    edges: list[float]
    counts: list[int]


class WindowPeaks(msgspec.Struct, kw_only=True):
    """One quota window ``count`` per ``period`` seconds: ``peaks[i]`` is the most creates any
    ``period``-long stretch ending in bucket ``i`` held, ``highest`` the most overall."""

    count: int
    period: float
    peaks: list[int]
    highest: int


class Timeline(msgspec.Struct, kw_only=True):
    """The run cut into buckets of ``bucket_s`` seconds from ``start`` (Unix time).

    ``creates``: creates answered with a job; ``rate_limited``: creates answered 429;
    ``in_flight``: the most jobs in flight at once; ``requests``: requests of each kind sent
    (see ``REQUEST_KINDS``); ``adaptive_rate``: the creates per second the client allowed itself
    at the bucket's end, when it was learning the quota (``None`` otherwise).
    """

    start: float
    bucket_s: float
    offsets: list[float]
    creates: list[int]
    rate_limited: list[int]
    in_flight: list[int]
    requests: dict[str, list[int]]
    adaptive_rate: list[float | None] | None


class Failure(msgspec.Struct, kw_only=True):
    """One failed input: its journal key, state, job id (if it had one), and its ``.error.json``
    relative to the output folder (``None`` when none was written)."""

    key: str
    state: str
    job_id: str | None
    error_file: str | None


class FailureGroup(msgspec.Struct, kw_only=True):
    """Failures with the same stage and reason (job ids and paths taken out of the message)."""

    stage: str
    reason: str
    count: int
    inputs: list[Failure]


class InputRow(msgspec.Struct, kw_only=True):
    """One input of a table: key, state, job id, and its ``.error.json`` if it has one."""

    key: str
    state: str
    job_id: str | None
    error_file: str | None = None


class Table(msgspec.Struct, kw_only=True):
    """``count`` inputs, of which ``rows`` lists at most ROW_LIMIT."""

    count: int
    rows: list[InputRow]


class RunInfo(msgspec.Struct, kw_only=True):
    """One run of ``ade-async extract`` on this output folder. ``summary`` is the one the command
    printed (``--json``); ``None`` while the run goes on, or when it was killed."""

    id: int
    started_at: float
    ended_at: float | None
    exit_code: int | None
    provider: str
    settings: dict[str, Any]
    summary: dict[str, Any] | None


class Figures(msgspec.Struct, kw_only=True):
    """Everything a run report shows (the ``--json`` document).

    ``outcomes``: every input the journal knows, by state; ``this_run``: the inputs this run
    changed, by state (inputs it skipped keep an earlier run's row); ``times_unknown``: inputs of
    this run whose moments the journal lacks (written by an older version).
    """

    format: int
    generated_at: float
    version: str
    out: str
    journal: str
    provider: str | None
    run: RunInfo | None
    runs: list[RunInfo]
    outcomes: dict[str, int]
    this_run: dict[str, int]
    times_unknown: int
    rate_limited: int
    paused_s: float
    timeline: Timeline | None
    windows: list[WindowPeaks]
    in_flight_cap: int | None
    job_time: Distribution
    detection: Distribution
    quota_wait: Distribution
    failures: list[FailureGroup]
    failures_count: int
    failures_listed: int
    pending: Table
    duplicates: Table


def journal_path(out: Path) -> Path:
    """Where the journal of output folder ``out`` is."""
    return out / ".ade-async" / "journal.sqlite"


def compute_figures(out: Path, store: JournalStore) -> Figures:
    """The figures of the journal's latest run (and of every input it knows) from ``store``."""
    runs = [_run_info(row) for row in store.rows(_RUNS_SQL)]
    run = runs[-1] if runs else None
    provider_rows = store.rows("SELECT value FROM meta WHERE key = 'provider'")
    outcomes = {str(state): int(n) for state, n in store.rows(_STATES_SQL)}
    outcomes["total"] = sum(outcomes.values())

    inputs = store.rows(_RUN_INPUTS_SQL, (run.id,)) if run is not None else []
    this_run: dict[str, int] = {}
    for row in inputs:
        this_run[row[0]] = this_run.get(row[0], 0) + 1
    # Inputs with a job (running or done) whose create's answer has no time: an older journal's.
    times_unknown = sum(1 for row in inputs if row[0] in ("completed", "submitted") and row[2] is None)

    marks = store.rows(_MARKS_SQL, (run.id,)) if run is not None else []
    samples = store.rows(_SAMPLES_SQL, (run.id,)) if run is not None else []
    timeline: Timeline | None = None
    windows: list[WindowPeaks] = []
    if run is not None:
        end = run.ended_at if run.ended_at is not None else _last_moment(run, inputs, marks, samples)
        timeline, windows = _timeline(run, end, inputs, marks, samples)

    failures, failures_count, failures_listed = _failures(store)
    return Figures(
        format=1,
        generated_at=time.time(),
        version=__version__,
        out=str(out),
        journal=str(journal_path(out)),
        provider=provider_rows[0][0] if provider_rows else None,
        run=run,
        runs=runs,
        outcomes=outcomes,
        this_run=this_run,
        times_unknown=times_unknown,
        rate_limited=len(marks),
        paused_s=round(sum(mark[2] or 0.0 for mark in marks), 3),
        timeline=timeline,
        windows=windows,
        in_flight_cap=_int_or_none(run.settings.get("max_in_flight")) if run is not None else None,
        job_time=distribution(row[3] - row[2] for row in inputs if row[2] is not None and row[3] is not None),
        detection=distribution(row[5] for row in inputs if row[5] is not None),
        quota_wait=distribution(
            row[1] - row[6] for row in inputs if row[1] is not None and row[6] is not None
        ),
        failures=failures,
        failures_count=failures_count,
        failures_listed=failures_listed,
        pending=_table(store.rows(_PENDING_SQL)),
        duplicates=_table(store.rows(_DUPLICATES_SQL)),
    )


# --- reads ---------------------------------------------------------------------------------------------

_RUNS_SQL: Final = (
    "SELECT id, started_at, ended_at, exit_code, provider, settings, summary FROM runs ORDER BY id"
)
_STATES_SQL: Final = "SELECT state, COUNT(*) FROM inputs GROUP BY state ORDER BY state"
#: state, sent_at, answered_at, ended_at, written_at, detected_within, admission_at
_RUN_INPUTS_SQL: Final = (
    "SELECT state, sent_at, answered_at, ended_at, written_at, detected_within, admission_at"
    " FROM inputs WHERE run_id = ?"
)
_MARKS_SQL: Final = "SELECT at, retry_after, paused_for FROM marks WHERE run_id = ? ORDER BY at"
_SAMPLES_SQL: Final = (
    "SELECT at, creates_sent, polls_sent, sweep_requests, reconcile_requests, results_fetched, adaptive_rate"
    " FROM samples WHERE run_id = ? ORDER BY at"
)
_FAILURES_SQL: Final = (
    "SELECT key, source, state, job_id, stage, error, error_file, upload_tokens FROM inputs"
    " WHERE state IN ('failed') OR (state = 'submitted' AND stage = 'write') ORDER BY stage, key"
)
_PENDING_SQL: Final = (
    "SELECT key, state, job_id, error_file FROM inputs"
    " WHERE state IN ('queued', 'submitting', 'unknown') OR (state = 'submitted' AND stage IS NULL)"
    " ORDER BY state, key"
)
_DUPLICATES_SQL: Final = (
    "SELECT key, state, job_id, error_file FROM inputs WHERE possible_duplicate = 1 ORDER BY key"
)


def _run_info(row: Sequence[Any]) -> RunInfo:
    return RunInfo(
        id=row[0],
        started_at=row[1],
        ended_at=row[2],
        exit_code=row[3],
        provider=row[4],
        settings=msgspec.json.decode(row[5]) if row[5] else {},
        summary=msgspec.json.decode(row[6]) if row[6] else None,
    )


def _last_moment(run: RunInfo, *sources: Iterable[Sequence[Any]]) -> float:
    """A run without an end (killed, or still going): its latest moment the journal holds."""
    latest = run.started_at
    for rows in sources:
        for row in rows:
            for value in row:
                if isinstance(value, float) and value > latest:
                    latest = value
    return latest


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


# --- the timeline ------------------------------------------------------------------------------------


def bucket_width(duration: float) -> float:
    """The smallest width in ``_BUCKET_WIDTHS`` that cuts ``duration`` into MAX_BUCKETS or fewer."""
    for width in _BUCKET_WIDTHS:
        if duration / width <= MAX_BUCKETS:
            return float(width)
    return math.ceil(duration / MAX_BUCKETS)


def _timeline(
    run: RunInfo,
    end: float,
    inputs: Sequence[Sequence[Any]],
    marks: Sequence[Sequence[Any]],
    samples: Sequence[Sequence[Any]],
) -> tuple[Timeline, list[WindowPeaks]]:
    start = run.started_at
    width = bucket_width(max(end - start, 0.0))
    buckets = max(1, math.ceil((end - start) / width))

    def index(at: float) -> int:
        return min(buckets - 1, max(0, int((at - start) // width)))

    answered = sorted(row[2] for row in inputs if row[2] is not None and start <= row[2] <= end)
    creates = [0] * buckets
    for at in answered:
        creates[index(at)] += 1
    rate_limited = [0] * buckets
    for mark in marks:
        rate_limited[index(mark[0])] += 1

    windows = []
    for count, period in run.settings.get("windows") or ():
        peaks = _window_peaks(answered, float(period), buckets, index)
        windows.append(WindowPeaks(count=int(count), period=float(period), peaks=peaks, highest=max(peaks)))

    in_flight = _in_flight(inputs, start, end, buckets, width)
    requests, adaptive = _requests(samples, start, buckets, width)
    timeline = Timeline(
        start=start,
        bucket_s=width,
        offsets=[round(i * width, 3) for i in range(buckets)],
        creates=creates,
        rate_limited=rate_limited,
        in_flight=in_flight,
        requests=requests,
        adaptive_rate=adaptive if run.settings.get("adaptive") else None,
    )
    return timeline, windows


def _window_peaks(answered: Sequence[float], period: float, buckets: int, index: Any) -> list[int]:
    """For each bucket, the most creates any ``period`` ending in it held (two pointers: O(n))."""
    peaks = [0] * buckets
    first = 0
    for last, at in enumerate(answered):
        while answered[first] <= at - period:  # a window is (at - period, at]
            first += 1
        held = last - first + 1
        bucket = index(at)
        if held > peaks[bucket]:
            peaks[bucket] = held
    return peaks


def _in_flight(
    inputs: Sequence[Sequence[Any]], start: float, end: float, buckets: int, width: float
) -> list[int]:
    """The most jobs in flight at once per bucket: each input with a job counts from its create's
    send (or answer) to its end seen (or the run's end), clipped to the run."""
    changes: list[tuple[float, int]] = []
    for row in inputs:
        sent, answered, ended = row[1], row[2], row[3]
        if answered is None:
            continue  # no job: it never held a place among the jobs in flight
        began = max(start, sent if sent is not None else answered)
        finished = min(end, ended if ended is not None else end)
        if finished < began:
            continue  # ended before this run began
        changes.append((began, 1))
        changes.append((finished, -1))
    changes.sort(key=lambda change: (change[0], change[1]))  # an end before a start at the same time
    peaks = [0] * buckets
    current = 0
    for at, step in changes:
        current += step
        bucket = min(buckets - 1, max(0, int((at - start) // width)))
        if current > peaks[bucket]:
            peaks[bucket] = current
    # A bucket with no change holds what the previous one ended with.
    current = 0
    position = 0
    for bucket in range(buckets):
        bucket_end = start + (bucket + 1) * width
        peaks[bucket] = max(peaks[bucket], current)
        while position < len(changes) and changes[position][0] < bucket_end:
            current += changes[position][1]
            position += 1
    return peaks


def _requests(
    samples: Sequence[Sequence[Any]], start: float, buckets: int, width: float
) -> tuple[dict[str, list[int]], list[float | None]]:
    """Requests of each kind per bucket (differences of the cumulative counter samples), and
    the adaptive rate at each bucket's end."""
    times = [row[0] for row in samples]
    requests: dict[str, list[int]] = {kind: [0] * buckets for kind in REQUEST_KINDS}
    adaptive: list[float | None] = [None] * buckets
    previous = [0] * len(REQUEST_KINDS)
    # A sample is taken a moment after each second of the run: the one nearest a bucket's end
    # (up to half a second after it) closes that bucket.
    late = min(0.5, width / 2)
    for bucket in range(buckets):
        last = bisect.bisect_left(times, start + (bucket + 1) * width + late) - 1
        if bucket == buckets - 1:
            last = len(samples) - 1  # the final sample (taken as the run ended) belongs to the end
        if last < 0:
            continue
        row = samples[last]
        for i, kind in enumerate(REQUEST_KINDS):
            value = int(row[1 + i] or 0)
            requests[kind][bucket] = max(0, value - previous[i])
            previous[i] = max(previous[i], value)
        adaptive[bucket] = row[6]
    return requests, adaptive


# --- distributions and tables ------------------------------------------------------------------------


def distribution(values: Iterable[float]) -> Distribution:
    """Percentiles (nearest rank) and a histogram of ``values`` (negative ones count as 0: clocks)."""
    ordered = sorted(max(0.0, value) for value in values)
    if not ordered:
        return Distribution(count=0, p50=None, p90=None, p99=None, max=None, edges=[], counts=[])

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 4)

    top = ordered[-1]
    step = top / _BINS if top > 0 else 1.0
    bins = _BINS if top > 0 else 1
    counts = [0] * bins
    for value in ordered:
        counts[min(bins - 1, int(value / step))] += 1
    return Distribution(
        count=len(ordered),
        p50=rank(0.50),
        p90=rank(0.90),
        p99=rank(0.99),
        max=round(top, 4),
        edges=[round(i * step, 4) for i in range(bins + 1)],
        counts=counts,
    )


def _failures(store: JournalStore) -> tuple[list[FailureGroup], int, int]:
    """Failures grouped by stage and reason, largest first; their count, and the rows listed."""
    groups: dict[tuple[str, str], FailureGroup] = {}
    total = 0
    for key, source, state, job_id, stage, error, error_file, tokens in store.rows(_FAILURES_SQL):
        total += 1
        reason = _reason(error or "no reason recorded", key, source, job_id, tokens)
        group = groups.get((stage or "?", reason))
        if group is None:
            group = groups[(stage or "?", reason)] = FailureGroup(
                stage=stage or "?", reason=reason, count=0, inputs=[]
            )
        group.count += 1
        group.inputs.append(Failure(key=key, state=state, job_id=job_id, error_file=error_file))
    ordered = sorted(groups.values(), key=lambda group: (-group.count, group.stage, group.reason))
    room = ROW_LIMIT
    for group in ordered:
        del group.inputs[room:]
        room -= len(group.inputs)
    return ordered, total, ROW_LIMIT - room


def _reason(error: str, key: str, source: str, job_id: str | None, tokens: str | None) -> str:
    """The error without what differs between inputs (paths, names, job ids, upload tokens), so
    that failures of one cause fall in one group."""
    names = {key, source, Path(source).name, Path(key).name, job_id or "", *(tokens or "").split()}
    for name in sorted((name for name in names if len(name) > 2), key=len, reverse=True):
        error = error.replace(name, "…")
    return error if len(error) <= _REASON_CHARS else error[: _REASON_CHARS - 1] + "…"


def _table(rows: Sequence[Sequence[Any]]) -> Table:
    listed = [
        InputRow(key=key, state=state, job_id=job_id, error_file=error_file)
        for key, state, job_id, error_file in rows[:ROW_LIMIT]
    ]
    return Table(count=len(rows), rows=listed)
