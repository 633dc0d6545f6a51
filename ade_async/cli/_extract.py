"""``ade-async extract``: a folder of Markdown files in, one JSON result per file out.

The run, per input: discover -> read and check -> journal -> admission -> create -> journal the job
id -> wait on the shared poller -> write the result atomically -> journal completed. A failure at
any step writes ``<name>.error.json`` and journals the failure; nothing else is affected. Running
the same command again resumes from the journal: finished inputs are skipped, inputs with a job
are collected by job id (never resubmitted), failed inputs are retried with ``--retry-failed``.
An input whose create was sent but never answered (lost, or the process died) is looked for by
the upload token its journal row holds and adopted when found; it is sent again only with
``--resubmit-unknown``, and then reported as a possible duplicate.

What a run report needs is journaled on the way, at no extra commit: each input's moments ride on
its state changes (:class:`~._journal.Moments`), 429s and a sample of the client's counters every
second are notes that join the journal's next commit, and the run's settings and summary open and
close a row of their own. At the end the report is written to ``OUT/.ade-async/report.html``
(:mod:`._report`; skipped with ``--no-report``, or with a line saying why when the ``report``
extra is not installed).

Interrupts: the first Ctrl-C (or SIGTERM) stops submitting, lets creates already on the wire get
their answer (and journals their job ids), and exits 3; the jobs go on server-side and a re-run
collects them. A second Ctrl-C exits at once; the journal is consistent at every moment.

The event loop also runs the shared poller, the admission timer and (with ``--redis``) the shared
quota's heartbeat, so nothing here blocks it: folders are walked in a thread
(:func:`~._discover.discover_in_thread`), each input is read, checked and hashed in a worker
thread, the journal commits in a thread of its own (each step awaits the commit of its change;
changes of many inputs share a transaction), and results are written and synced in a worker
thread. An input's bytes are let go once its create is answered: while its job runs, only its
handle is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import fcntl
import gc
import hashlib
import importlib.util
import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, NamedTuple
from urllib.parse import urlsplit

import anyio
import msgspec

from .._client import Client
from .._engine.events import CreateProgress, JobEvent
from .._engine.ratelimit import RateLimit, RedisBackend
from .._engine.reconcile import ReconcilePolicy
from .._engine.stats import ClientStats
from .._engine.submit import PriorCreate
from .._errors import (
    ADEError,
    AuthenticationError,
    ConfigurationError,
    CreateOutcomeUnknownError,
    InputError,
    JobTimeoutError,
    PaymentRequiredError,
    SchemaError,
)
from .._results import JobHandle
from .._schema import schema_to_dict
from ..providers import Provider, get_provider
from ._discover import JOURNAL_DIR, Input, UsageError, check_arguments, discover_in_thread
from ._journal import Action, Journal, JournalVersionError, Moments, Record, State, plan, settings_digest
from ._looplag import probe_from_environment
from ._outputs import TempNames, error_document, remove_stale_temporaries, write_atomic
from ._progress import ProgressReporter, Tally, choose_mode

__all__ = ["ExitCode", "ExtractOptions", "run_extract"]


#: Inputs in progress at once when --max-in-flight is not given.
_DEFAULT_WINDOW = 1000

#: Seconds between two samples of the client's counters (the report's requests over time).
_SAMPLE_INTERVAL: Final = 1.0
#: An idle run (every job waiting server-side) commits its queued notes this often at least.
_NOTES_FLUSH_INTERVAL: Final = 30.0


class ExitCode(enum.IntEnum):
    OK = 0  # every input succeeded
    SOME_FAILED = 1  # some inputs failed
    USAGE = 2  # usage or configuration error: nothing submitted
    PENDING = 3  # interrupted, or deadlines passed, with jobs still running server-side
    FATAL_API = 4  # 401 or 402 stopped the run


@dataclass(frozen=True, kw_only=True)
class ExtractOptions:
    inputs: list[str]
    provider: str = "landingai"
    schema: Path
    out: Path
    pattern: str | None = None  # the provider's default glob
    model: str | None = None
    strict: bool = False
    api_key: str | None = field(default=None, repr=False)  # options get logged; the key must not
    base_url: str | None = None
    environment: str | None = None
    rates: tuple[tuple[int, float], ...] = ()
    max_in_flight: int | None = None
    safety_margin: float | None = None
    redis_url: str | None = None
    quota_name: str | None = None
    job_timeout: float | None = None
    retry_failed: bool = False
    resubmit_unknown: bool = False
    search_time: float = 30.0
    simulate: bool = False
    json: bool = False
    quiet: bool = False
    max_size: int = 50 * 1024 * 1024
    progress_interval: float = 10.0
    report: bool = True  # --no-report: False


class _Phase(enum.Enum):
    READING = "reading"
    ADMISSION = "admission"  # waiting for the quota: nothing sent, safe to abandon
    SENDING = "sending"  # the create is on the wire: let it get its answer
    SEARCHING = "searching"  # its answer was lost: abandon the search, journal it unknown
    AWAITING = "awaiting"  # the job exists and is journaled: safe to stop waiting


class _Item:
    __slots__ = ("phase", "scope")

    def __init__(self) -> None:
        self.phase = _Phase.READING
        self.scope = anyio.CancelScope()


class _Fatal(Exception):
    """A 401 or 402: every further request would fail the same way."""


async def run_extract(
    options: ExtractOptions, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run one bulk extraction; returns the exit code (output to ``sys.stdout`` and ``sys.stderr``
    as they are at the call, unless given)."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        check_arguments(options.inputs)
        provider = get_provider(options.provider)
        provider_options = _provider_options(provider, options)
        schema = _load_schema(options.schema, provider, provider_options)
        out = _prepare_output(options.out)
    except UsageError as exc:
        print(f"ade-async: {exc}", file=stderr)
        return ExitCode.USAGE
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_lock(out))
        except UsageError as exc:
            print(f"ade-async: {exc}", file=stderr)
            return ExitCode.USAGE
        try:
            async with Journal(out / JOURNAL_DIR / "journal.sqlite") as journal:
                await journal.claim_provider(provider.info.name)
                names = TempNames(await journal.temp_tag())
                run = _Run(
                    options,
                    out,
                    journal,
                    names,
                    _Target(provider, provider_options, schema),
                    stdout=stdout,
                    stderr=stderr,
                )
                code = await run.main()
        except JournalVersionError as exc:
            print(f"ade-async: {exc}", file=stderr)
            return ExitCode.USAGE
        if options.report and run.run_id is not None:
            # Still holding the folder's lock; the journal is closed, everything committed.
            await _write_report(out, quiet=options.quiet, stderr=stderr)
        return code


async def _write_report(out: Path, *, quiet: bool, stderr: IO[str]) -> None:
    """Write OUT/.ade-async/report.html in a worker thread; a failure is said, never fatal."""
    from ._report import ReportUnavailable, write_report

    try:
        path = await anyio.to_thread.run_sync(write_report, out)
    except ReportUnavailable as exc:
        if not quiet:
            print(f"ade-async: report skipped: {exc}", file=stderr, flush=True)
        return
    except Exception as exc:  # the run's outcome stands; only its picture is missing
        print(f"ade-async: could not write the report: {type(exc).__name__}: {exc}", file=stderr, flush=True)
        return
    if not quiet:
        print(f"ade-async: report {path}", file=stderr, flush=True)


class _Run:
    def __init__(
        self,
        options: ExtractOptions,
        out: Path,
        journal: Journal,
        names: TempNames,
        target: _Target,
        *,
        stdout: IO[str],
        stderr: IO[str],
    ) -> None:
        self.options = options
        self.out = out
        self.journal = journal
        self.names = names  # this run's temporary file names in OUT
        self.provider = target.provider
        self.provider_options = target.options
        self.schema = target.schema
        prepared = target.provider.prepare_schema(target.schema, target.options)
        self.settings = settings_digest(
            prepared if isinstance(prepared, str) else msgspec.json.encode(prepared).decode(),
            options.model,
            options.strict,
        )
        self.stdout = stdout
        self.stderr = stderr
        self.tally = Tally()
        self.items: dict[int, _Item] = {}
        self.stopping = False
        self.fatal: ADEError | None = None
        self.interrupted = False
        self.probe = probe_from_environment()  # benchmarks only: how long the loop stalls
        self.run_id: int | None = None  # this run's row in the journal, once the client is up
        self.limit: RateLimit | None = None
        # Job id -> (Unix time its end was seen, JobEvent.detected_within), until _finish takes it.
        self.ended: dict[str, tuple[float, float | None]] = {}

    async def main(self) -> int:
        try:
            async with self._client() as client:
                run_id = await self.journal.begin_run(
                    provider=self.provider.info.name, settings=self._settings(client)
                )
                self.run_id = run_id
                self._note_sample(client.stats())  # the counters' zero: the report's first bucket
                await self._process(client)
                stats = client.stats()
                self._note_sample(stats)
        except UsageError as exc:
            print(f"ade-async: {exc}", file=self.stderr)
            return ExitCode.USAGE
        except ConfigurationError as exc:
            print(f"ade-async: {exc}", file=self.stderr)
            return ExitCode.USAGE
        code = self._exit_code()
        summary = self._summarise(code, stats)
        with anyio.CancelScope(shield=True):
            await self.journal.end_run(run_id, exit_code=int(code), summary=summary)
        return code

    def _settings(self, client: Client) -> dict[str, Any]:
        """What the report shows of this run's settings. Never the key: each item is named here."""
        options, limit = self.options, self.limit
        assert limit is not None
        return {
            "provider": self.provider.info.name,
            "api": self.provider.info.title,
            "base_url": _public_url(client.base_url),
            "simulated": options.simulate,
            # The quota in force: --rate windows (none: adaptive, learned from 429s).
            "windows": [[count, period] for count, period in limit.windows],
            "adaptive": limit.is_adaptive,
            "safety_margin": limit.safety_margin,
            "max_in_flight": options.max_in_flight or _DEFAULT_WINDOW,
            "shared_quota": options.redis_url is not None,
            "quota_name": options.quota_name,
            "job_timeout": options.job_timeout,
            "search_time": options.search_time,
            "model": options.model,
            "strict": options.strict,
            "retry_failed": options.retry_failed,
            "resubmit_unknown": options.resubmit_unknown,
            "inputs": [str(path) for path in options.inputs],
            "schema": str(options.schema),
            "out": str(self.out),
        }

    def _note_sample(self, stats: ClientStats) -> None:
        """The client's counters now, as a journal note (committed with the next change)."""
        at = time.time()
        values: dict[str, float | None] = {
            "creates_sent": stats.creates_sent,
            "creates_rate_limited": stats.creates_rate_limited,
            "polls_sent": stats.polls_sent,
            "sweep_requests": stats.sweep_requests,
            "reconcile_requests": stats.reconcile_requests,
            "results_fetched": stats.results_fetched,
            "reads_sent": stats.reads_sent,
            "in_flight": stats.admission.in_flight,
            "waiting": stats.admission.waiting,
            "adaptive_rate": stats.admission.adaptive_rate,
        }
        self.journal.note(lambda store: store.write_sample(at, values))

    async def _sample(self, client: Client) -> None:
        """Sample the counters every second; while no change commits them, flush now and then."""
        committed = self.journal.transactions
        flushed = time.monotonic()
        while True:
            await anyio.sleep(_SAMPLE_INTERVAL)  # a pace, not a synchronisation
            self._note_sample(client.stats())
            if time.monotonic() - flushed >= _NOTES_FLUSH_INTERVAL:
                if self.journal.transactions == committed:
                    await self.journal.flush()  # idle: one commit per interval, for crash's sake
                committed, flushed = self.journal.transactions, time.monotonic()

    def _on_job_event(self, event: JobEvent) -> None:
        """A job was seen to end: when, for the journal's moments (``_finish`` takes it)."""
        if event.kind in ("completed", "failed"):
            self.ended[event.job_id] = (time.time(), event.detected_within)

    def _rate_limit(self) -> RateLimit:
        """The --rate, --max-in-flight, --safety-margin, --redis and --quota-name options."""
        options = self.options
        backend = None
        if options.redis_url is not None:
            if importlib.util.find_spec("redis") is None:
                raise ConfigurationError("--redis needs the redis package: pip install 'ade-async[redis]'")
            try:
                backend = RedisBackend(url=options.redis_url, quota_name=options.quota_name)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        limit = RateLimit(windows=options.rates, max_in_flight=options.max_in_flight, backend=backend)
        if options.safety_margin is not None:
            limit = dataclasses.replace(limit, safety_margin=options.safety_margin)
        self.limit = limit
        return limit

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Client]:
        options = self.options
        limit = self._rate_limit()
        # The hard bound stays at its default (candidates still running are worth waiting for).
        reconcile = ReconcilePolicy(
            search_time=options.search_time, max_search_time=max(600.0, options.search_time)
        )
        if options.simulate:
            from ..testing import Simulator, SimulatorConfig

            # A demonstration quota, so the admission gate has something to do.
            config = SimulatorConfig(latency=(0.5, 3.0), quota=((20, 1.0),), retry_after=None)
            async with (
                Simulator(config) as sim,
                Client(
                    provider=self.provider,
                    api_key=sim.api_key,
                    base_url=sim.base_url,
                    rate_limit=limit,
                    reconcile=reconcile,
                ) as client,
            ):
                if not options.quiet:
                    print(
                        f"ade-async: simulating the API at {sim.base_url} (demo quota 20 creates/s)",
                        file=self.stderr,
                    )
                yield client
            return
        async with Client(
            provider=self.provider,
            api_key=options.api_key,
            base_url=options.base_url,
            environment=options.environment,
            rate_limit=limit,
            reconcile=reconcile,
        ) as client:
            yield client

    async def _process(self, client: Client) -> None:
        mode = choose_mode(quiet=self.options.quiet, stream=self.stderr)

        def waiting() -> int:
            return client.stats().admission.waiting

        reporter = ProgressReporter(
            self.tally,
            mode=mode,
            waiting=waiting,
            interval=self.options.progress_interval,
            stream=self.stderr,
        )
        async with anyio.create_task_group() as watchers:
            if self.probe is not None:
                watchers.start_soon(self.probe.run)
            # Jobs of earlier runs are never mistaken for the job of a create whose answer was lost.
            client.note_known_jobs(await self.journal.job_ids())
            watchers.start_soon(self._watch_signals)
            watchers.start_soon(reporter.run)
            watchers.start_soon(self._sample, client)
            unsubscribe = client.subscribe(self._on_job_event)
            # The interpreter's, the libraries' and the client's objects live as long as the run:
            # frozen, the collector's full passes skip them. Those passes hold the GIL, so they
            # stall the loop; at 5,000 files they were the largest stalls left (30-40 ms of CPU
            # every few seconds, about half of it on these objects). The command owns its
            # process; run in another one (the tests), everything is unfrozen after the run.
            gc.freeze()
            try:
                await self._feed(client)
            finally:
                gc.unfreeze()
                unsubscribe()
                watchers.cancel_scope.cancel()

    async def _feed(self, client: Client) -> None:
        # At most this many inputs between read and written: bounds memory on a huge folder.
        window = anyio.Semaphore(self.options.max_in_flight or _DEFAULT_WINDOW)
        options = self.options
        async with (
            anyio.create_task_group() as tasks,
            discover_in_thread(
                options.inputs,
                self.out,
                options.pattern or self.provider.info.default_glob,
                kinds=self.provider.info.input_kinds,
                what=self.provider.info.input_name,
            ) as inputs,
        ):
            # What a killed run left half-written: removed alongside (this run's names differ).
            tasks.start_soon(anyio.to_thread.run_sync, remove_stale_temporaries, self.out, self.names)
            async for item in inputs:
                if self._stopped():
                    break
                await window.acquire()
                if self._stopped():  # an interrupt may have come while waiting for room
                    window.release()
                    break
                self.tally.total += 1
                tasks.start_soon(self._one, client, item, window)
            self.tally.discovering = False

    def _stopped(self) -> bool:
        return self.stopping

    # --- one input ---------------------------------------------------------------------------------

    async def _one(self, client: Client, item: Input, window: anyio.Semaphore) -> None:
        state = _Item()
        self.items[id(state)] = state
        try:
            with state.scope:
                await self._process_one(client, item, state)
        finally:
            del self.items[id(state)]
            window.release()

    async def _process_one(self, client: Client, item: Input, state: _Item) -> None:
        handle = await self._start(client, item, state)
        # From here on only the handle is kept: the input's bytes (up to --max-size) lived in
        # _start's frame and the request, and are gone once the create was answered.
        if handle is None:
            return
        state.phase = _Phase.AWAITING
        if self.stopping:  # interrupted while its create was on the wire: it landed, journaled
            self.tally.pending += 1
            return
        self.tally.in_flight += 1
        try:
            await self._finish(item, handle)
        finally:
            self.tally.in_flight -= 1

    async def _start(self, client: Client, item: Input, state: _Item) -> JobHandle[Any] | None:
        """Read, check and plan the input, then create its job (or find the one it has): its
        handle, or ``None`` when there is nothing to wait for (skipped, or failed here)."""
        record = await self.journal.get(item.key) if item.problem is None else None
        try:
            # Whether its result exists matters only if the journal says it was completed.
            inspected = await self._inspect(
                item, check_output=record is not None and record.state is State.COMPLETED
            )
        except _InputProblem as problem:
            await self._fail(item, "read", problem.error, job_id=None)
            return None
        action = plan(
            record,
            content_sha256=inspected.digest,
            settings_sha256=self.settings,
            retry_failed=self.options.retry_failed,
            output_exists=inspected.output_exists,
        )
        if action is Action.SKIP:
            self.tally.skipped += 1
            return None
        if action is Action.SKIP_FAILED:
            self.tally.failed += 1
            return None
        if action is Action.COLLECT:
            assert record is not None
            assert record.job_id is not None
            return client.watch(record.job_id, timeout=self.options.job_timeout)
        prior: PriorCreate | None = None
        if action is Action.RECONCILE:
            assert record is not None
            # A create of an earlier run was never answered: look for its job before sending again.
            prior = _prior_create(record)
        else:
            # A version 1 journal holds no token to look for: the earlier create may have landed.
            duplicate = (
                record is not None
                and record.state is State.SUBMITTING
                and record.content_sha256 == inspected.digest
            )
            await self.journal.restart(
                item.key,
                source=str(item.source),
                content_sha256=inspected.digest,
                settings_sha256=self.settings,
            )
            if duplicate:
                self.tally.possible_duplicates += 1
                self._note_duplicate(item.key)  # after the restart, which clears the flag
        return await self._create(client, item, inspected.content, state, prior)

    async def _create(
        self, client: Client, item: Input, content: bytes, state: _Item, prior: PriorCreate | None
    ) -> JobHandle[Any] | None:
        """Create the input's job, journaling each step: its handle, or ``None`` if it failed."""

        admission_at: float | None = None  # when this input first waited for the quota

        async def on_progress(progress: CreateProgress) -> None:
            nonlocal admission_at
            phase = progress.phase
            if phase == "admission":
                # Waiting for quota (at first, or again after a 429): nothing is on the wire.
                state.phase = _Phase.ADMISSION
                admission_at = time.time() if admission_at is None else admission_at
                if self.stopping:
                    state.scope.cancel()  # after an interrupt, nothing new is sent
            elif phase == "sending":
                # From here an interrupt lets this create go and land: the journal is told first,
                # and the POST waits until the change (with the token it carries) is committed.
                state.phase = _Phase.SENDING
                await self.journal.record(
                    item.key,
                    State.SUBMITTING,
                    new_submission=True,
                    upload_token=progress.match_key,
                    moments=Moments(admission_at=admission_at, sent_at=time.time()),
                )
            elif phase == "rate_limited":
                # Answered 429: no job, the gate pauses. For the report, a note (no commit of its
                # own); the input's state stays "submitting" until the create is sent again.
                self._note_rate_limited(item.key, progress)
            elif phase == "searching":
                # Its answer was lost: a job may exist. Abandoning the search is safe (the journal
                # keeps the token; the next run looks again), waiting it out on an interrupt is not.
                state.phase = _Phase.SEARCHING
                if self.stopping:
                    state.scope.cancel()
            elif phase == "created":
                # Committed before anything else happens to it (the core shields this). Its time
                # is the gate's: an accepted create counts in the quota from its answer.
                state.phase = _Phase.AWAITING
                await self.journal.record(
                    item.key,
                    State.SUBMITTED,
                    job_id=progress.job_id,
                    moments=Moments(answered_at=time.time()),
                )
            # A phase this version does not know is only news: nothing to journal.

        # While in ADMISSION or SEARCHING an interrupt cancels this item's scope; once the create
        # is on the wire (SENDING) it is left to land, so its job id gets journaled.
        state.phase = _Phase.ADMISSION
        self.tally.submitting += 1
        try:
            # Only this frame and the submit hold the bytes; both end once the create is answered.
            handle = await client.submit(
                content,
                schema=self.schema,
                options=self.provider_options,
                filename=item.source.name,
                timeout=self.options.job_timeout,
                on_progress=on_progress,
                resubmit_unknown=self.options.resubmit_unknown,
                prior=prior,
            )
        except (AuthenticationError, PaymentRequiredError) as exc:
            self._stop_for(exc)
            # Refused: nothing was created by this create (tokens of earlier ones are kept).
            with anyio.CancelScope(shield=True):
                await self.journal.record(item.key, State.UNKNOWN if prior is not None else State.QUEUED)
            return None
        except CreateOutcomeUnknownError as exc:
            # Not FAILED: the job may exist, and the next run must look for it (by the tokens the
            # journal keeps) rather than submit again.
            self.tally.outcome_unknown += 1
            self.tally.possible_duplicates += exc.resubmissions > 0
            await self._fail(item, "submit", exc, job_id=None, state=State.UNKNOWN)
            if exc.resubmissions > 0:
                self._note_duplicate(item.key)
            return None
        except ADEError as exc:
            await self._fail(item, "submit", exc, job_id=None)
            return None
        except anyio.get_cancelled_exc_class():
            if state.phase is _Phase.SEARCHING:
                # Interrupted while looking for the job of a lost create: its outcome stays
                # unknown, and the journal (which keeps the tokens) says so for the next run.
                with anyio.CancelScope(shield=True):
                    await self.journal.record(item.key, State.UNKNOWN)
                self.tally.outcome_unknown += 1
            raise
        finally:
            self.tally.submitting -= 1
        self.tally.reconciled += handle.reconciled
        self.tally.possible_duplicates += handle.possible_duplicate
        if handle.possible_duplicate:
            self._note_duplicate(item.key)
        return handle

    def _note_duplicate(self, key: str) -> None:
        self.journal.note(lambda store: store.mark_possible_duplicate(key))

    def _note_rate_limited(self, key: str, progress: CreateProgress) -> None:
        at, hint, pause = time.time(), progress.retry_after, progress.paused_for
        self.journal.note(
            lambda store: store.write_mark("rate_limited", at=at, key=key, retry_after=hint, paused_for=pause)
        )

    async def _finish(self, item: Input, handle: JobHandle[Any]) -> None:
        try:
            result = await handle
        except JobTimeoutError:
            self.tally.pending += 1  # still running server-side: a re-run collects it
            return
        except (AuthenticationError, PaymentRequiredError) as exc:
            self._stop_for(exc)
            return
        except ADEError as exc:
            await self._fail(item, "job", exc, job_id=handle.job_id, moments=self._ended(handle.job_id))
            return
        try:
            # Synced to disk (with a stale error file's removal) before the journal says done.
            await write_atomic(item.output, result.raw, names=self.names, remove=item.error_output)
        except OSError as exc:
            # This input fails alone and the run goes on. Its job stays journaled as submitted, so
            # a re-run collects the result by job id (no new job) once the output can be written.
            await self._fail(item, "write", exc, job_id=handle.job_id, journal=False)
            return
        ended = self._ended(handle.job_id)
        await self.journal.record(
            item.key,
            State.COMPLETED,
            job_id=handle.job_id,
            moments=Moments(
                ended_at=ended.ended_at, detected_within=ended.detected_within, written_at=time.time()
            ),
        )
        self.tally.completed += 1

    def _ended(self, job_id: str) -> Moments:
        """When ``job_id`` was seen to end (now, if no event said: a failure before any poll)."""
        at, within = self.ended.pop(job_id, (time.time(), None))
        return Moments(ended_at=at, detected_within=within)

    async def _fail(
        self,
        item: Input,
        stage: str,
        error: BaseException,
        *,
        job_id: str | None,
        state: State = State.FAILED,
        journal: bool = True,
        moments: Moments | None = None,
    ) -> None:
        error_file: str | None = None  # relative to OUT, for the report's links
        if item.error_output is None:
            print(f"ade-async: {item.source}: {error}", file=self.stderr)
        else:
            document = error_document(source=item.source, stage=stage, error=error, job_id=job_id)
            try:
                await write_atomic(item.error_output, document, names=self.names)  # synced, then journaled
                with contextlib.suppress(ValueError):  # always inside OUT; a link must not leave it
                    error_file = item.error_output.relative_to(self.out).as_posix()
            except OSError as exc:  # the error file itself could not be written: say so, go on
                print(f"ade-async: cannot write {item.error_output}: {exc.strerror}", file=self.stderr)
        message = f"{type(error).__name__}: {error}"
        if journal:  # False: the journal keeps what it holds (a job to collect again)
            await self.journal.record(
                item.key,
                state,
                source=str(item.source),
                settings_sha256=self.settings,
                job_id=job_id,
                stage=stage,
                error=message,
                moments=moments,
                error_file=error_file,
            )
        else:  # its state stays; why it failed is only for the report: a note
            key = item.key
            self.journal.note(
                lambda store: store.write_failure_note(key, stage=stage, error=message, error_file=error_file)
            )
        self.tally.failed += 1

    async def _inspect(self, item: Input, *, check_output: bool) -> _Inspected:
        if item.problem is not None:
            raise _InputProblem(item.problem)
        output = item.output if check_output else None
        check = self.provider.check_document
        return await anyio.to_thread.run_sync(
            _inspect_input, item.source, self.options.max_size, output, check
        )

    # --- stopping ------------------------------------------------------------------------------------

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.interrupted:
                    print("\nade-async: interrupted again; exiting now", file=self.stderr, flush=True)
                    os._exit(130)
                self.interrupted = True
                name = signal.Signals(signum).name
                print(
                    f"\nade-async: {name}: no new submissions; waiting for creates on the wire "
                    "(press Ctrl-C again to exit at once)",
                    file=self.stderr,
                    flush=True,
                )
                self._stop()

    def _stop_for(self, error: ADEError) -> None:
        if self.fatal is None:
            self.fatal = error
            print(f"ade-async: stopping: {error}", file=self.stderr, flush=True)
        self._stop()

    def _stop(self) -> None:
        """Stop submitting; abandon waits that hold nothing; let creates on the wire land."""
        self.stopping = True
        for state in list(self.items.values()):
            if state.phase is _Phase.SENDING:
                continue  # its answer carries the job id: let it land and be journaled
            state.scope.cancel()
            if state.phase is _Phase.AWAITING:
                self.tally.pending += 1

    def _exit_code(self) -> int:
        if self.fatal is not None:
            return ExitCode.FATAL_API
        if self.interrupted or self.tally.pending:
            return ExitCode.PENDING
        if self.tally.failed:
            return ExitCode.SOME_FAILED
        return ExitCode.OK

    def _summarise(self, code: int, stats: Any) -> dict[str, Any]:
        """Print the summary (and, with ``--json``, its machine-readable form); return the latter,
        which the journal keeps as the run's summary."""
        t = self.tally
        elapsed = time.monotonic() - t.started
        journal = self.out / JOURNAL_DIR / "journal.sqlite"
        lines = [
            f"ade-async: {t.total} inputs in {elapsed:.1f} s: {t.completed} completed, "
            f"{t.skipped} already done, {t.failed} failed, {t.pending} still running server-side",
            f"  outputs in {self.out}; journal {journal}",
        ]
        if t.reconciled:
            lines.append(
                f"  {t.reconciled} inputs had a create whose answer was lost; their jobs were found and "
                "adopted (no duplicates)"
            )
        if t.possible_duplicates:
            lines.append(
                f"  {t.possible_duplicates} inputs were submitted again after a lost answer or a crash hid "
                "whether their first create landed: each may have a duplicate job"
            )
        if t.outcome_unknown:
            lines.append(
                f"  {t.outcome_unknown} inputs had a create whose answer was lost and whose job was not "
                "found: a re-run looks again; --resubmit-unknown sends them again"
            )
        if t.pending:
            lines.append(
                "  the jobs still running continue server-side; run the same command again to collect them"
            )
        if self.fatal is not None:
            lines.append(f"  stopped by the API: {self.fatal}")
        if not self.options.quiet or code != ExitCode.OK:
            print("\n".join(lines), file=self.stderr, flush=True)
        summary: dict[str, Any] = {
            "exit_code": int(code),
            "inputs": t.total,
            "completed": t.completed,
            "skipped": t.skipped,
            "failed": t.failed,
            "pending": t.pending,
            "possible_duplicates": t.possible_duplicates,
            "reconciled": t.reconciled,
            "outcome_unknown": t.outcome_unknown,
            "elapsed_s": round(elapsed, 3),
            "out": str(self.out),
            "journal": str(journal),
            "requests": {
                "creates_sent": stats.creates_sent,
                "creates_rate_limited": stats.creates_rate_limited,
                "polls_sent": stats.polls_sent,
                "sweep_requests": stats.sweep_requests,
                "reconcile_requests": stats.reconcile_requests,
                "results_fetched": stats.results_fetched,
            },
            "fatal_error": None if self.fatal is None else str(self.fatal),
        }
        if self.probe is not None:
            summary["loop_lag"] = self.probe.summary()
        if self.options.json:
            print(msgspec.json.encode(summary).decode(), file=self.stdout, flush=True)
        return summary


def _public_url(url: str) -> str:
    """``url`` without what may be a secret (user and password, query, fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _prior_create(record: Record) -> PriorCreate:
    # first_sent_at is written with the first token; the fallback only guards a hand-edited row.
    sent_at = record.first_sent_at if record.first_sent_at is not None else time.time()
    return PriorCreate(match_keys=record.upload_tokens, sent_at=sent_at)


@dataclass(frozen=True, slots=True)
class _Inspected:
    """An input read and checked: its content, the content's SHA-256, whether its result exists
    (``False`` when not looked for)."""

    content: bytes
    digest: str
    output_exists: bool


def _inspect_input(
    source: Path, max_size: int, output: Path | None, check: Callable[[bytes, str], str | None]
) -> _Inspected:
    """Read, check and hash one input, in a worker thread (none of it touches the event loop);
    ``output``, if given, is looked for.

    Opened non-blocking, then checked on the open file: opening a FIFO never waits for a writer,
    and nothing swapped in between a check and the open gets read. Four system calls for a
    small file (open, fstat, one read, close): each costs tens of microseconds on a small VM.

    Raises:
        _InputProblem: not a regular file, over ``max_size``, unreadable, or refused by ``check``
            (the provider's: empty or not UTF-8 Markdown, say).
    """
    try:
        descriptor = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise _InputProblem("not a regular file")
            if info.st_size > max_size:
                raise _InputProblem(f"too large: {info.st_size} bytes, the limit is {max_size}")
            # One byte more than its size: usually exactly its size comes back, the whole file.
            # Anything else (it grew, shrank, or a network file system answered short) reads on
            # to the end, or to just past the limit.
            chunks = [os.read(descriptor, info.st_size + 1)]
            read = len(chunks[0])
            if read != info.st_size:
                while read <= max_size:
                    chunk = os.read(descriptor, max_size + 1 - read)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    read += len(chunk)
        finally:
            os.close(descriptor)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _InputProblem("a symbolic link loop") from exc
        if exc.errno == errno.ENXIO:  # a socket: there is nothing to open
            raise _InputProblem("not a regular file") from exc
        raise _InputProblem(f"cannot read: {exc.strerror or exc}") from exc
    content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(content) > max_size:
        raise _InputProblem(f"too large: over {max_size} bytes")
    problem = check(content, source.name)
    if problem is not None:
        raise _InputProblem(problem)
    return _Inspected(content, hashlib.sha256(content).hexdigest(), output is not None and output.exists())


class _InputProblem(Exception):
    """An input that cannot be extracted; ``error`` is what its ``.error.json`` reports."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.error = InputError(message)


class _Target(NamedTuple):
    """What every input of a run is extracted with: the provider, its options, the schema."""

    provider: Provider
    options: Any
    schema: dict[str, Any]


def _load_schema(path: Path, provider: Provider, options: Any) -> dict[str, Any]:
    """The schema file, checked as the provider's vendor would (a usage error otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the schema file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"the schema file {path} is not UTF-8 text") from exc
    try:
        schema = schema_to_dict(text)
        provider.prepare_schema(schema, options)
    except SchemaError as exc:
        raise UsageError(f"the schema in {path} would be refused: {exc}") from exc
    return schema


def _provider_options(provider: Provider, options: ExtractOptions) -> Any:
    """The provider's options from --model and --strict (a usage error for a flag it lacks)."""
    given = {"model": options.model, "strict": options.strict or None}
    fields = {f.name for f in dataclasses.fields(provider.options_type)}
    for name, value in given.items():
        if value is not None and name not in fields:
            raise UsageError(f"--{name} does not apply to the {provider.info.name} provider")
    return provider.options_type(**{k: v for k, v in given.items() if v is not None and k in fields})


def _prepare_output(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / JOURNAL_DIR).mkdir(exist_ok=True)
        probe = out / JOURNAL_DIR / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to the output folder {out}: {exc.strerror or exc}") from exc
    return out.resolve()


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Hold the output folder for this run; a second run on it refuses to start."""
    path = out / JOURNAL_DIR / "lock"
    handle = open(path, "a+")  # noqa: SIM115 - held for the whole run, closed below
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UsageError(
                f"another ade-async run ({holder}) is using {out}; wait for it to finish or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
