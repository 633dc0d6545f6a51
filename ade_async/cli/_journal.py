"""The crash-safe journal of a bulk extraction: one SQLite database in the output folder.

Every input is a row (its path, content hash, settings hash, state, job id) and every state change
is also appended to an ``events`` table. A change is acknowledged only once the transaction that
holds it is committed, and the command waits for that acknowledgement before the next step relies
on it. SQLite in WAL mode survives ``kill -9`` at any moment: a transaction is either in the file
or not.

States, in order::

    queued ──> submitting(token) ──> submitted(job_id) ──> completed
                     │    │                   │
                     │    └──> unknown ───────┤ (found later: submitted)
                     └─────────────────> failed(stage)

``submitting`` is written once admission is granted, just before the create goes out, together
with the upload token the create carries in its file name: from then on a job may exist. A run
that finds ``submitting`` left behind (a crash between the create and its answer) looks for the job
carrying that token and adopts it (:data:`Action.RECONCILE`) before anything is sent again.
``unknown`` is an input whose create's answer was lost and whose job a search did not find: the
next run searches again, and resubmits only with ``--resubmit-unknown``. Journals written before
tokens existed (schema version 1) are migrated in place; their ``submitting`` inputs are submitted
again and reported as possible duplicates, as before.

One thread, group commit. The command's event loop also runs the shared poller, the admission
timer and the Redis heartbeat: a commit (a write to the WAL, a lock, some milliseconds on a slow
disk) must not stall them. :class:`Journal` owns one thread, the only one that touches the
database; the loop queues changes and reads and awaits them. The thread takes what is queued
(up to :data:`MAX_BATCH`) and commits the changes among it in one transaction, so changes that
arrive while a commit runs share the next one: under load one transaction carries many inputs'
changes, and each waiting caller is released only after the transaction holding its change is
committed::

    event loop                                      journal thread
    await journal.record(a, submitting) ──┐
    await journal.record(b, completed) ───┼──> queue ──> BEGIN; a; b; c; COMMIT ──> release a, b, c
    await journal.get(c) ─────────────────┘                  (c: a read, answered in queue order)

If that shared transaction fails, each of its changes is tried again in a transaction of its own,
so a change that cannot be written fails alone. :class:`JournalStore` is the synchronous layer the
thread uses; tests and tools may use it directly, one thread at a time.

What a run report needs (``ade-async report``, schema version 3) is kept beside the states, at no
extra commit: the moments of each input's life ride on the changes that already happen (the time
it began waiting for the quota and the time its create was sent go with ``submitting``, the answer's
with ``submitted``, the job's end and the result's writing with ``completed``); each run is a row
of ``runs`` (its provider, settings without the key, and at the end its summary); 429s and the
pauses they caused go to ``marks``, and a snapshot of the client's counters every second to
``samples``. Those last, and a few flags, are *notes* (:meth:`Journal.note`): nobody waits for
them, and the journal's thread writes them inside the next transaction it commits anyway, so
they add no transaction while the run is busy. A note is telemetry, not a state: a crash may lose
the notes not yet committed, never a change. Older journals are migrated in place; their missing
moments stay ``NULL``, which the report shows as unknown.

:func:`plan` is the resume decision, a pure function.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import hashlib
import logging
import queue
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Self, TypeVar, cast

import anyio
import anyio.from_thread
import msgspec

__all__ = [
    "SAMPLE_FIELDS",
    "Action",
    "Journal",
    "JournalProviderError",
    "JournalStore",
    "JournalVersionError",
    "Moments",
    "Note",
    "Record",
    "State",
    "plan",
    "settings_digest",
]

T = TypeVar("T")

logger = logging.getLogger("ade_async")

#: A write nobody waits for: run by the journal's thread inside the next transaction it commits.
Note = Callable[["JournalStore"], None]

#: The client's counters a sample keeps (``samples`` columns besides ``run_id`` and ``at``):
#: cumulative request counts, and the admission gate's state at that moment.
SAMPLE_FIELDS: Final = (
    "creates_sent",
    "creates_rate_limited",
    "polls_sent",
    "sweep_requests",
    "reconcile_requests",
    "results_fetched",
    "reads_sent",
    "in_flight",
    "waiting",
    "adaptive_rate",
)

#: The most changes and reads one batch (one transaction) takes. Its callers all wake at once when
#: it commits, and each then runs on the loop until its next wait: an unbounded batch (hundreds at
#: the start of a big run) would make that one long stall.
MAX_BATCH: Final = 128

#: 1: the first journal; 2: upload tokens and the first send time of each input's creates;
#: 3: what a run report needs (each input's moments, runs, 429 marks, counter samples).
SCHEMA_VERSION: Final = 3

#: Columns version 3 added to ``inputs`` (``NULL`` in a migrated journal: unknown). Times are Unix
#: seconds: ``admission_at`` the input's create began waiting for the quota, ``sent_at`` its last
#: create left, ``answered_at`` that create was answered with a job id, ``ended_at`` the job was
#: seen to end, ``written_at`` its result was written; ``detected_within`` bounds how late the end
#: was seen (see ``JobEvent.detected_within``); ``error_file`` is the ``.error.json`` of a failure,
#: relative to the output folder.
_REPORT_COLUMNS: Final = (
    ("run_id", "INTEGER"),
    ("admission_at", "REAL"),
    ("sent_at", "REAL"),
    ("answered_at", "REAL"),
    ("ended_at", "REAL"),
    ("detected_within", "REAL"),
    ("written_at", "REAL"),
    ("error_file", "TEXT"),
    ("possible_duplicate", "INTEGER NOT NULL DEFAULT 0"),
)


class JournalVersionError(Exception):
    """The journal was written by a newer ade-async, whose format this one cannot vouch for."""


class JournalProviderError(JournalVersionError):
    """The journal belongs to a run with another provider: its job ids mean nothing to this one."""


class State(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Moments:
    """When steps of an input's life happened (Unix seconds), written with the change that
    follows them; a moment not given leaves the one recorded. See ``_REPORT_COLUMNS``."""

    admission_at: float | None = None
    sent_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    detected_within: float | None = None
    written_at: float | None = None

    def values(self) -> tuple[float | None, ...]:
        return (
            self.admission_at,
            self.sent_at,
            self.answered_at,
            self.ended_at,
            self.detected_within,
            self.written_at,
        )


@dataclass(frozen=True, slots=True)
class Record:
    """What the journal knows of one input."""

    key: str
    content_sha256: str | None
    settings_sha256: str
    state: State
    job_id: str | None
    submissions: int
    upload_tokens: tuple[str, ...] = ()
    first_sent_at: float | None = None


class Action(enum.Enum):
    SUBMIT = "submit"  # create a job
    COLLECT = "collect"  # a job exists: wait for it by id, never resubmit
    RECONCILE = "reconcile"  # a create's outcome is unknown: find its job by token before resubmitting
    SKIP = "skip"  # done in an earlier run
    SKIP_FAILED = "skip_failed"  # failed in an earlier run; retried only with --retry-failed


def plan(
    record: Record | None,
    *,
    content_sha256: str,
    settings_sha256: str,
    retry_failed: bool,
    output_exists: bool,
) -> Action:
    """What to do with an input, given what an earlier run left in the journal."""
    if record is None or record.content_sha256 != content_sha256 or record.settings_sha256 != settings_sha256:
        return Action.SUBMIT  # new, or its content, schema or options changed: a new job
    if record.state is State.COMPLETED:
        if output_exists:
            return Action.SKIP
        return Action.COLLECT if record.job_id else Action.SUBMIT  # the output was deleted
    if record.state is State.SUBMITTED and record.job_id:
        return Action.COLLECT
    if record.state in (State.SUBMITTING, State.UNKNOWN) and record.upload_tokens:
        return Action.RECONCILE
    if record.state is State.FAILED:
        if not retry_failed:
            return Action.SKIP_FAILED
        # A failed job that has a job id failed server-side: retrying means a new job.
        return Action.SUBMIT
    # queued, or submitting in a version 1 journal (no token to look for: a possible duplicate)
    return Action.SUBMIT


def settings_digest(schema_json: str, model: str | None, strict: bool) -> str:
    """A hash of what shapes a job's result besides its content."""
    text = f"{schema_json}\0{model or ''}\0{strict}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Journal(anyio.AsyncContextManagerMixin):
    """The journal of one run: a thread that owns the database, and an async API to it.

    ``async with Journal(path) as journal`` opens (or creates, or migrates) the database in the
    journal's thread and raises :class:`JournalVersionError` for a journal of a newer version.
    Every method is a coroutine that returns once the thread has done its work: a change once the
    transaction holding it is committed (see the module docstring), a read once answered. Leaving
    the block commits everything already queued, then closes the database.

    A caller cancelled while it waits is only no longer told: its change is committed all the
    same. Where an outcome must reach the journal even during an interrupt, shield the wait.

    Example::

        async with Journal(out / ".ade-async" / "journal.sqlite") as journal:
            await journal.record("a.md", State.SUBMITTING, upload_token=token)  # durable now
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Transactions committed that held changes or notes (a group commit counts once).
        self.transactions = 0
        self._queue: queue.SimpleQueue[_Op[object] | None] = queue.SimpleQueue()
        # Appended in the event loop, taken in the journal's thread (deque ends are thread-safe).
        self._notes: collections.deque[Note] = collections.deque()
        self._closed = False

    @property
    def notes_pending(self) -> int:
        """Notes not yet committed (see :meth:`note`)."""
        return len(self._notes)

    @property
    def backlog(self) -> int:
        """Changes and reads queued that the journal's thread has not taken yet."""
        return self._queue.qsize()

    @contextlib.asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
        opened: _Op[object] = _Op(_nothing, writes=False)
        error: BaseException | None = None
        limiter = anyio.CapacityLimiter(1)  # its own: it holds no token of the shared thread pool
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: anyio.to_thread.run_sync(self._serve, opened, limiter=limiter))
            try:
                await opened.done.wait()
                if opened.error is None:
                    yield self
            except GeneratorExit:
                raise
            except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
                error = exc
            finally:
                # After every change already queued: those are committed before the thread ends.
                self._closed = True
                self._queue.put(None)
        if opened.error is not None:
            raise opened.error
        if error is not None:
            raise error

    # --- the async API ---------------------------------------------------------------------------------

    async def get(self, key: str) -> Record | None:
        """What the journal knows of ``key`` (after every change queued before this read)."""
        return await self._call(lambda store: store.get(key), writes=False)

    async def job_ids(self) -> list[str]:
        """Every job id the journal knows (jobs of earlier runs: never mistaken for lost creates)."""
        return await self._call(JournalStore.job_ids, writes=False)

    async def record(
        self,
        key: str,
        state: State,
        *,
        source: str | None = None,
        content_sha256: str | None = None,
        settings_sha256: str | None = None,
        job_id: str | None = None,
        stage: str | None = None,
        error: str | None = None,
        new_submission: bool = False,
        upload_token: str | None = None,
        moments: Moments | None = None,
        error_file: str | None = None,
    ) -> None:
        """Record a state change; returns once it is committed (see :meth:`JournalStore.record`)."""

        def change(store: JournalStore) -> None:
            store.write_record(
                key,
                state,
                source=source,
                content_sha256=content_sha256,
                settings_sha256=settings_sha256,
                job_id=job_id,
                stage=stage,
                error=error,
                new_submission=new_submission,
                upload_token=upload_token,
                moments=moments,
                error_file=error_file,
            )

        await self._call(change, writes=True)

    async def restart(self, key: str, *, source: str, content_sha256: str, settings_sha256: str) -> None:
        """Start an input afresh; returns once committed (see :meth:`JournalStore.restart`)."""

        def change(store: JournalStore) -> None:
            store.write_restart(
                key, source=source, content_sha256=content_sha256, settings_sha256=settings_sha256
            )

        await self._call(change, writes=True)

    async def claim_provider(self, name: str) -> None:
        """Record the run's provider, or refuse a journal of another (:meth:`JournalStore.claim_provider`)."""
        await self._call(lambda store: store.claim_provider(name), writes=True)

    async def temp_tag(self) -> str:
        """The output folder's tag for temporary file names (see :meth:`JournalStore.temp_tag`)."""
        return await self._call(JournalStore.temp_tag, writes=True)

    async def begin_run(self, *, provider: str, settings: Mapping[str, Any]) -> int:
        """Open this run's row; every change from now on carries its id (:meth:`JournalStore.begin_run`)."""
        return await self._call(
            lambda store: store.begin_run(provider=provider, settings=settings), writes=True
        )

    async def end_run(self, run_id: int, *, exit_code: int, summary: Mapping[str, Any]) -> None:
        """Close this run's row with its exit code and summary (and commit every note queued)."""
        await self._call(
            lambda store: store.end_run(run_id, exit_code=exit_code, summary=summary), writes=True
        )

    def note(self, write: Note) -> None:
        """Queue a write nobody waits for: it is committed inside the next transaction the
        journal's thread runs (with the changes of that batch), or when the journal closes.

        For telemetry only (a 429's moment, a sample of counters): a crash may lose the notes
        not yet committed. Never for a state change that a later step relies on."""
        if self._closed:
            raise RuntimeError(f"the journal {self.path} is closed")
        self._notes.append(write)

    async def flush(self) -> None:
        """Commit the notes queued so far, in a transaction of their own if no change comes to
        carry them (an idle run calls this now and then, so a crash loses little)."""
        await self._call(_nothing, writes=True)

    async def _call(self, call: Callable[[JournalStore], T], *, writes: bool) -> T:
        if self._closed:
            raise RuntimeError(f"the journal {self.path} is closed")
        op: _Op[T] = _Op(call, writes=writes)
        self._queue.put(cast("_Op[object]", op))
        await op.done.wait()
        if op.error is not None:
            raise op.error
        return cast(T, op.result)

    # --- the journal's thread ----------------------------------------------------------------------------

    def _serve(self, opened: _Op[object]) -> None:
        """The thread: open the database, then take what is queued, batch by batch, until closed."""
        try:
            store = JournalStore(self.path)
        except Exception as exc:  # JournalVersionError, or a database that cannot be opened
            opened.error = exc
            anyio.from_thread.run_sync(opened.done.set)
            return
        try:
            anyio.from_thread.run_sync(opened.done.set)
            closing = False
            while not closing:
                batch = [self._queue.get()]
                while len(batch) < MAX_BATCH:  # what was queued meanwhile joins this transaction
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                ops = [op for op in batch if op is not None]
                closing = len(ops) < len(batch)
                # Notes queued so far ride along with this batch's changes (none with mere reads).
                self._apply(store, ops, self._take_notes() if any(op.writes for op in ops) else [])
                if ops:
                    anyio.from_thread.run_sync(_release, ops)
            self._write_notes(store, self._take_notes())  # those queued after the last change
        finally:
            store.close()

    def _take_notes(self) -> list[Note]:
        notes: list[Note] = []
        with contextlib.suppress(IndexError):
            while True:
                notes.append(self._notes.popleft())
        return notes

    def _write_notes(self, store: JournalStore, notes: list[Note]) -> None:
        """Notes alone, in one transaction; if that fails they are dropped (telemetry), logged."""
        if not notes:
            return
        try:
            with store.transaction():
                for write in notes:
                    write(store)
        except Exception:
            logger.warning(
                "the journal could not record %d report notes; dropping them", len(notes), exc_info=True
            )
            return
        self.transactions += 1

    def _apply(self, store: JournalStore, ops: list[_Op[object]], notes: list[Note]) -> None:
        """Run ``ops`` in order: reads alone, changes in one transaction (``notes`` first, in the
        same transaction), each op's error its own."""
        if not any(op.writes for op in ops):
            for op in ops:
                try:
                    op.result = op.call(store)
                except Exception as exc:
                    op.error = exc
            return
        try:
            with store.transaction():
                for write in notes:
                    write(store)
                for op in ops:
                    op.result = op.call(store)
        except Exception as exc:
            if len(ops) == 1 and not notes:
                ops[0].error = exc
                return
            for op in ops:  # one change that cannot be written must not fail the others
                self._apply(store, [op], [])
            self._write_notes(store, notes)  # nor can a note (telemetry: dropped if it fails)
            return
        self.transactions += 1


class _Op(Generic[T]):
    """A change or a read waiting for the journal's thread, and its outcome."""

    __slots__ = ("call", "done", "error", "result", "writes")

    def __init__(self, call: Callable[[JournalStore], T], *, writes: bool) -> None:
        self.call = call
        self.writes = writes
        self.done = anyio.Event()  # set in the event loop once the outcome is known
        self.result: T | None = None
        self.error: Exception | None = None


def _nothing(store: JournalStore) -> None:
    return None


def _release(ops: list[_Op[object]]) -> None:
    """In the event loop: wake every caller of a batch whose outcome is known."""
    for op in ops:
        op.done.set()


class JournalStore:
    """The journal's database, synchronously: for the journal's thread, or one tool at a time.

    ``record`` and ``restart`` each commit a transaction of their own; ``write_record`` and
    ``write_restart`` write inside the caller's :meth:`transaction` (the journal's group commit).
    Opened by one process at a time (the caller holds the folder lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we run explicit transactions (one per batch of changes).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a process crash never loses a committed transaction (only a power
        # loss may drop the last ones), at a fraction of FULL's fsync cost per commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS inputs (
                key TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                content_sha256 TEXT,
                settings_sha256 TEXT NOT NULL,
                state TEXT NOT NULL,
                job_id TEXT,
                stage TEXT,
                error TEXT,
                submissions INTEGER NOT NULL DEFAULT 0,
                updated_at REAL NOT NULL,
                upload_tokens TEXT,
                first_sent_at REAL
            );
            CREATE TABLE IF NOT EXISTS events (
                id INTEGER PRIMARY KEY,
                key TEXT NOT NULL,
                state TEXT NOT NULL,
                job_id TEXT,
                detail TEXT,
                at REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS runs (
                id INTEGER PRIMARY KEY,
                started_at REAL NOT NULL,
                ended_at REAL,
                provider TEXT NOT NULL,
                settings TEXT NOT NULL,
                exit_code INTEGER,
                summary TEXT
            );
            CREATE TABLE IF NOT EXISTS marks (
                id INTEGER PRIMARY KEY,
                run_id INTEGER,
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                key TEXT,
                retry_after REAL,
                paused_for REAL
            );
            CREATE TABLE IF NOT EXISTS samples (
                id INTEGER PRIMARY KEY,
                run_id INTEGER,
                at REAL NOT NULL,
                creates_sent INTEGER,
                creates_rate_limited INTEGER,
                polls_sent INTEGER,
                sweep_requests INTEGER,
                reconcile_requests INTEGER,
                results_fetched INTEGER,
                reads_sent INTEGER,
                in_flight INTEGER,
                waiting INTEGER,
                adaptive_rate REAL
            );
            """
        )
        #: The run whose changes this store writes now (:meth:`begin_run`); ``None`` outside a run.
        self.run_id: int | None = None
        self._migrate()

    def _migrate(self) -> None:
        """Bring an older journal up to :data:`SCHEMA_VERSION`; refuse a newer one."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            self._db.close()
            raise JournalVersionError(
                f"the journal {self.path} was written by a newer ade-async (format {version}; this one "
                f"reads up to {SCHEMA_VERSION}): upgrade ade-async, or use another --out"
            )
        with self.transaction():
            columns = {info[1] for info in self._db.execute("PRAGMA table_info(inputs)")}
            # Version 1 had neither column: added empty, which plan() reads as "no token".
            if "upload_tokens" not in columns:
                self._db.execute("ALTER TABLE inputs ADD COLUMN upload_tokens TEXT")
            if "first_sent_at" not in columns:
                self._db.execute("ALTER TABLE inputs ADD COLUMN first_sent_at REAL")
            # Versions 1 and 2 kept no moments: added empty, which the report shows as unknown.
            for name, kind in _REPORT_COLUMNS:
                if name not in columns:
                    self._db.execute(f"ALTER TABLE inputs ADD COLUMN {name} {kind}")
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def claim_provider(self, name: str) -> None:
        """Record the run's provider, or refuse a journal kept for another one.

        A journal without one was written before providers existed: by LandingAI ADE runs.

        Raises:
            JournalProviderError: the journal's inputs were extracted with another provider.
        """
        # Run as a change (inside the journal thread's transaction), like temp_tag.
        row = self._db.execute("SELECT value FROM meta WHERE key = 'provider'").fetchone()
        if row is None:
            has_inputs = self._db.execute("SELECT 1 FROM inputs LIMIT 1").fetchone() is not None
            recorded = "landingai" if has_inputs else name
            self._db.execute("INSERT INTO meta (key, value) VALUES ('provider', ?)", (recorded,))
        else:
            recorded = row[0]
        if recorded != name:
            raise JournalProviderError(
                f"the journal {self.path} belongs to runs with the {recorded} provider, and this run "
                f"uses {name}: its jobs cannot be collected or searched here. Use another --out, or "
                f"--provider {recorded}."
            )

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> Record | None:
        row = self._db.execute(
            "SELECT key, content_sha256, settings_sha256, state, job_id, submissions, upload_tokens,"
            " first_sent_at FROM inputs WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        tokens = tuple((row[6] or "").split())
        return Record(row[0], row[1], row[2], State(row[3]), row[4], row[5], tokens, row[7])

    def job_ids(self) -> list[str]:
        """Every job id the journal knows (jobs of earlier runs: never mistaken for lost creates)."""
        return [row[0] for row in self._db.execute("SELECT job_id FROM inputs WHERE job_id IS NOT NULL")]

    def record(
        self,
        key: str,
        state: State,
        *,
        source: str | None = None,
        content_sha256: str | None = None,
        settings_sha256: str | None = None,
        job_id: str | None = None,
        stage: str | None = None,
        error: str | None = None,
        new_submission: bool = False,
        upload_token: str | None = None,
        moments: Moments | None = None,
        error_file: str | None = None,
    ) -> None:
        """Record a state change in a transaction of its own, committed when this returns.

        ``upload_token`` (with ``submitting``) is added to the input's tokens, and the first one
        sets ``first_sent_at``: what a later run needs to find the job of a create it never saw
        answered. ``moments`` and ``error_file`` (a failure's ``.error.json``, relative to the
        output folder) are kept for the run report; the change also carries the current run's
        id (:meth:`begin_run`)."""
        with self.transaction():
            self.write_record(
                key,
                state,
                source=source,
                content_sha256=content_sha256,
                settings_sha256=settings_sha256,
                job_id=job_id,
                stage=stage,
                error=error,
                new_submission=new_submission,
                upload_token=upload_token,
                moments=moments,
                error_file=error_file,
            )

    def write_record(
        self,
        key: str,
        state: State,
        *,
        source: str | None = None,
        content_sha256: str | None = None,
        settings_sha256: str | None = None,
        job_id: str | None = None,
        stage: str | None = None,
        error: str | None = None,
        new_submission: bool = False,
        upload_token: str | None = None,
        moments: Moments | None = None,
        error_file: str | None = None,
    ) -> None:
        """:meth:`record`'s writes, inside the caller's :meth:`transaction`."""
        now = time.time()
        times = (moments or _NO_MOMENTS).values()
        exists = self._db.execute("SELECT 1 FROM inputs WHERE key = ?", (key,)).fetchone() is not None
        if not exists:
            self._db.execute(
                "INSERT INTO inputs (key, source, content_sha256, settings_sha256, state, job_id, stage,"
                " error, submissions, updated_at, run_id, admission_at, sent_at, answered_at, ended_at,"
                " detected_within, written_at, error_file)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    source or key,
                    content_sha256,
                    settings_sha256 or "",
                    state,
                    job_id,
                    stage,
                    error,
                    1 if new_submission else 0,
                    now,
                    self.run_id,
                    *times,
                    error_file,
                ),
            )
        else:
            # One statement, as before version 3: the moments cost no extra write.
            self._db.execute(
                "UPDATE inputs SET state = ?, job_id = COALESCE(?, job_id), stage = ?, error = ?,"
                " source = COALESCE(?, source), content_sha256 = COALESCE(?, content_sha256),"
                " settings_sha256 = COALESCE(?, settings_sha256),"
                " submissions = submissions + ?, updated_at = ?, run_id = COALESCE(?, run_id),"
                " admission_at = COALESCE(?, admission_at), sent_at = COALESCE(?, sent_at),"
                " answered_at = COALESCE(?, answered_at), ended_at = COALESCE(?, ended_at),"
                " detected_within = COALESCE(?, detected_within), written_at = COALESCE(?, written_at),"
                " error_file = ? WHERE key = ?",
                (
                    state,
                    job_id,
                    stage,
                    error,
                    source,
                    content_sha256,
                    settings_sha256,
                    1 if new_submission else 0,
                    now,
                    self.run_id,
                    *times,
                    error_file,
                    key,
                ),
            )
        if upload_token is not None:
            self._db.execute(
                "UPDATE inputs SET upload_tokens = TRIM(COALESCE(upload_tokens, '') || ' ' || ?),"
                " first_sent_at = COALESCE(first_sent_at, ?) WHERE key = ?",
                (upload_token, now, key),
            )
        detail = error if error is not None else (f"token {upload_token}" if upload_token else None)
        self._db.execute(
            "INSERT INTO events (key, state, job_id, detail, at) VALUES (?, ?, ?, ?, ?)",
            (key, state, job_id, detail, now),
        )

    def restart(self, key: str, *, source: str, content_sha256: str, settings_sha256: str) -> None:
        """Start an input afresh (new, or changed since an earlier run): forget its old job.

        In a transaction of its own, committed when this returns."""
        with self.transaction():
            self.write_restart(
                key, source=source, content_sha256=content_sha256, settings_sha256=settings_sha256
            )

    def write_restart(self, key: str, *, source: str, content_sha256: str, settings_sha256: str) -> None:
        """:meth:`restart`'s writes, inside the caller's :meth:`transaction`."""
        now = time.time()
        self._db.execute(
            "INSERT INTO inputs (key, source, content_sha256, settings_sha256, state, updated_at, run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET source = excluded.source,"
            " content_sha256 = excluded.content_sha256, settings_sha256 = excluded.settings_sha256,"
            " state = excluded.state, job_id = NULL, stage = NULL, error = NULL,"
            " upload_tokens = NULL, first_sent_at = NULL, updated_at = excluded.updated_at,"
            " run_id = excluded.run_id, admission_at = NULL, sent_at = NULL, answered_at = NULL,"
            " ended_at = NULL, detected_within = NULL, written_at = NULL, error_file = NULL,"
            " possible_duplicate = 0",
            (key, source, content_sha256, settings_sha256, State.QUEUED, now, self.run_id),
        )
        self._db.execute(
            "INSERT INTO events (key, state, job_id, detail, at) VALUES (?, ?, NULL, NULL, ?)",
            (key, State.QUEUED, now),
        )

    def temp_tag(self) -> str:
        """This output folder's tag for temporary file names: 16 hex digits, made at first use and
        kept here, so a later run recognises the temporary files a killed one left behind."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'temp_tag'").fetchone()
        if row is not None and re.fullmatch(r"[0-9a-f]{16}", row[0]):
            return str(row[0])
        tag = secrets.token_hex(8)
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('temp_tag', ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (tag,),
        )
        return tag

    # --- what a run report needs -----------------------------------------------------------------------

    def begin_run(self, *, provider: str, settings: Mapping[str, Any]) -> int:
        """Open a run's row (its provider and settings: never the API key) and return its id;
        changes written from now on carry it. Inside the caller's :meth:`transaction`."""
        cursor = self._db.execute(
            "INSERT INTO runs (started_at, provider, settings) VALUES (?, ?, ?)",
            (time.time(), provider, msgspec.json.encode(dict(settings)).decode()),
        )
        assert cursor.lastrowid is not None
        self.run_id = cursor.lastrowid
        return self.run_id

    def end_run(self, run_id: int, *, exit_code: int, summary: Mapping[str, Any]) -> None:
        """Close a run's row: when it ended, its exit code, and the summary it printed."""
        self._db.execute(
            "UPDATE runs SET ended_at = ?, exit_code = ?, summary = ? WHERE id = ?",
            (time.time(), exit_code, msgspec.json.encode(dict(summary)).decode(), run_id),
        )

    def write_mark(
        self,
        kind: str,
        *,
        at: float,
        key: str | None = None,
        retry_after: float | None = None,
        paused_for: float | None = None,
    ) -> None:
        """A moment of the run's pace: ``rate_limited`` (a create answered 429, the input's
        ``key``, the server's ``retry_after`` hint and the gate's pause that followed)."""
        self._db.execute(
            "INSERT INTO marks (run_id, at, kind, key, retry_after, paused_for) VALUES (?, ?, ?, ?, ?, ?)",
            (self.run_id, at, kind, key, retry_after, paused_for),
        )

    def write_sample(self, at: float, values: Mapping[str, float | None]) -> None:
        """The client's counters at ``at`` (the names in :data:`SAMPLE_FIELDS`; others ignored)."""
        self._db.execute(
            f"INSERT INTO samples (run_id, at, {', '.join(SAMPLE_FIELDS)})"
            f" VALUES (?, ?, {', '.join('?' * len(SAMPLE_FIELDS))})",
            (self.run_id, at, *(values.get(name) for name in SAMPLE_FIELDS)),
        )

    def mark_possible_duplicate(self, key: str) -> None:
        """The input was sent again while an earlier create of it may have made a job."""
        self._db.execute("UPDATE inputs SET possible_duplicate = 1 WHERE key = ?", (key,))

    def write_failure_note(self, key: str, *, stage: str, error: str, error_file: str | None) -> None:
        """Why an input failed, where its state stays as it is (a result that could not be
        written: its job stays ``submitted``, for a re-run to collect)."""
        self._db.execute(
            "UPDATE inputs SET stage = ?, error = ?, error_file = ? WHERE key = ?",
            (stage, error, error_file, key),
        )

    def rows(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read (for the run report, which only reads)."""
        return self._db.execute(sql, parameters).fetchall()

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM inputs GROUP BY state").fetchall())

    def events_for(self, key: str) -> list[tuple[str, str | None]]:
        """The state changes of one input, oldest first (for tests and audits)."""
        rows = self._db.execute(
            "SELECT state, job_id FROM events WHERE key = ? ORDER BY id", (key,)
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def transaction(self) -> _Transaction:
        """``with store.transaction():`` one ``BEGIN IMMEDIATE ... COMMIT`` (rolled back on error)."""
        return _Transaction(self._db)


_NO_MOMENTS: Final = Moments()


class _Transaction:
    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except BaseException:
                self._rollback()  # a failed COMMIT leaves the transaction open: end it
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
