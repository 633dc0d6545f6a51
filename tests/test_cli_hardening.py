"""Hardening of the ``ade-async extract`` command (issue 14), in process against the simulator.

1. Blocking work stays off the event loop the poller, the admission timer and the Redis heartbeat
   share: the journal has a thread of its own and commits changes in groups, each caller released
   only once its change is committed; discovery, hashing and the Markdown checks run in threads
   (the checks in slices, so even they let the loop run); an input's bytes are let go once its
   create is answered.
2. A result (or an error file) is synced, renamed and its folder synced before the journal says
   the input is done.
3. A resumed run removes the temporary files a killed run left in OUT, and only those.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ade_async.cli import _discover, _extract
from ade_async.cli._discover import Input, UsageError, discover
from ade_async.cli._extract import ExtractOptions, run_extract
from ade_async.providers.landingai import markdown as _markdown
from ade_async.providers.landingai import provider as _landingai
from ade_async.testing import FakeClock, Simulator, SimulatorConfig
from ade_async.testing.landingai._state import SimulatorState

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}


def invoice(n: int, extra: str = "") -> str:
    return f"# Invoice {n}\n\nInvoice Number: INV-{n}\nTotal: {n}.25\n{extra}"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.1, 0.3))) as simulator:
        yield simulator


async def until(condition: Callable[[], object], *, ceiling: float = 30.0) -> None:
    """Wait for an observable condition; the ceiling only bounds a hang, it decides nothing."""
    with anyio.fail_after(ceiling):
        while not condition():
            await anyio.sleep(0.005)


def options_for(sim: Simulator, docs: Path, out: Path, **extra: Any) -> ExtractOptions:
    schema = docs.parent / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    return ExtractOptions(
        inputs=[str(docs)],
        schema=schema,
        out=out,
        api_key=sim.api_key,
        base_url=sim.base_url,
        json=True,
        quiet=True,
        **extra,
    )


async def extract(options: ExtractOptions) -> tuple[int, dict[str, Any]]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with anyio.fail_after(60):
        code = await run_extract(options, stdout=stdout, stderr=stderr)
    return code, json.loads(stdout.getvalue() or "{}") | {"stderr": stderr.getvalue()}


# --- 1. off the event loop ------------------------------------------------------------------------------


async def test_the_command_does_no_blocking_work_on_the_event_loop(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQL, directory listings and hashing of inputs all happen in other threads than the loop's."""
    docs = tmp_path / "docs"
    contents: set[bytes] = set()
    for i in range(12):
        path = docs / f"part-{i % 3}" / f"inv-{i}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(invoice(i))
        contents.add(path.read_bytes())
    (docs / "empty.md").write_bytes(b"")  # fails the Markdown check
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}
    on_loop: list[str] = []

    def note(what: str) -> None:
        seen[what] = seen.get(what, 0) + 1
        if threading.get_ident() == loop_thread:
            on_loop.append(what)

    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = real_connect(*args, **kwargs)
        db.set_trace_callback(lambda statement: note("sql " + statement.split()[0]))
        return db

    real_scandir = os.scandir

    def scandir(*args: Any, **kwargs: Any) -> Any:
        note("listing a folder")
        return real_scandir(*args, **kwargs)

    real_sha256 = hashlib.sha256

    def sha256(data: bytes = b"", **kwargs: Any) -> Any:
        if bytes(data) in contents:  # an input's content (the simulator hashes it too: not counted)
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("ade_async.cli"):
                note("hashing an input")
        return real_sha256(data, **kwargs)

    real_problem = _markdown.markdown_problem

    def markdown_problem(content: bytes) -> str | None:
        note("checking Markdown")
        return real_problem(content)

    monkeypatch.setattr(sqlite3, "connect", connect)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(hashlib, "sha256", sha256)
    monkeypatch.setattr(_landingai, "markdown_problem", markdown_problem)
    code, summary = await extract(options_for(sim, docs, tmp_path / "out"))
    assert code == 1, summary  # the empty file fails alone
    assert (summary["completed"], summary["failed"]) == (12, 1)
    # The probes saw the work (so their silence below means something) ...
    for what in ("sql INSERT", "sql COMMIT", "listing a folder", "hashing an input", "checking Markdown"):
        assert seen.get(what, 0) > 0, (what, seen)
    # ... and none of it ran on the event loop's thread.
    assert on_loop == []


async def test_an_inputs_bytes_are_released_once_its_create_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a job runs only its handle is kept: its content (up to 50 MiB) is not."""
    clock = FakeClock()  # the simulator's: the job runs until the test has looked
    async with Simulator(SimulatorConfig(latency=(0.1, 0.3)), clock=clock.now) as sim:
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "slow.md").write_text(invoice(1, "<!-- ade-sim: latency 3 -->"))
        held: list[bytes] = []
        real_inspect = _extract._inspect_input

        def inspect(*args: Any) -> Any:
            inspected = real_inspect(*args)
            held.append(inspected.content)
            return inspected

        runs: list[Any] = []

        class Run(_extract._Run):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                runs.append(self)

        monkeypatch.setattr(_extract, "_inspect_input", inspect)
        monkeypatch.setattr(_extract, "_Run", Run)
        options = options_for(sim, docs, tmp_path / "out")
        referrers: list[Any] = []
        async with anyio.create_task_group() as tasks:
            outcome: dict[str, Any] = {}

            async def run() -> None:
                outcome["code"], outcome["summary"] = await extract(options)

            tasks.start_soon(run)
            # The create was answered and the input now waits for its job (3 s): in flight.
            await until(lambda: bool(runs) and runs[0].tally.in_flight == 1)
            assert sim.stats().jobs_total == 1
            gc.collect()
            referrers = [r for r in gc.get_referrers(held[0]) if r is not held]
            assert sim.stats().jobs_by_status.get("completed", 0) == 0  # checked while the job ran
            await clock.advance(3.0)  # now the job ends
        assert outcome["code"] == 0, outcome
        assert referrers == [], "the input's bytes are still held while its job runs"


@settings(max_examples=400, deadline=None)
@given(
    content=st.lists(
        st.sampled_from([b"a", b" ", b"\n", "\u00e9".encode(), "\u20ac".encode(), "\U0001d11e".encode()])
        | st.binary(max_size=3),
        max_size=12,
    ).map(b"".join),
    slice_size=st.integers(min_value=1, max_value=9),
)
def test_the_markdown_check_in_slices_says_what_a_whole_check_says(content: bytes, slice_size: int) -> None:
    """The check runs in slices (so a worker thread checking 50 MiB lets the loop run between
    them); wherever the slices fall, even inside a character, the verdict is the whole one's."""
    if not content.strip():
        whole: str | None = "empty file: there is nothing to extract"
    else:
        try:
            content.decode("utf-8")
            whole = None
        except UnicodeDecodeError as exc:
            whole = f"not UTF-8 text (byte {exc.start}): the API takes UTF-8 Markdown"
    assert _markdown.markdown_problem(content, slice_size=slice_size) == whole


# --- 1. the journal: its own thread, group commit -------------------------------------------------------


class CommitGate:
    """Holds every journal COMMIT (in the journal's thread) until the test lets it through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = False
        self.started = 0  # COMMITs that began (and wait for a permit)
        self.statements: list[str] = []
        self._permits = threading.Semaphore(0)
        self._lock = threading.Lock()
        real_connect = sqlite3.connect

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            db: sqlite3.Connection = real_connect(*args, **kwargs)
            db.set_trace_callback(self._trace)
            return db

        monkeypatch.setattr(sqlite3, "connect", connect)

    def _trace(self, statement: str) -> None:
        if not self.armed:
            return
        with self._lock:
            self.statements.append(statement)
        if statement == "COMMIT":
            with self._lock:
                self.started += 1
            self._permits.acquire()

    def release(self, commits: int = 1) -> None:
        for _ in range(commits):
            self._permits.release()


def committed_keys(path: Path) -> set[str]:
    """What another connection sees: committed rows only."""
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT key FROM inputs")}


async def test_each_change_is_acknowledged_only_once_committed_and_queued_changes_share_a_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ade_async.cli._journal import Journal, State

    gate = CommitGate(monkeypatch)
    path = tmp_path / "journal.sqlite"
    released: list[str] = []
    async with Journal(path) as journal, anyio.create_task_group() as tasks:
        gate.armed = True

        async def record(key: str) -> None:
            await journal.record(key, State.QUEUED, source=key, settings_sha256="s")
            released.append(key)

        tasks.start_soon(record, "first")
        await until(lambda: gate.started == 1)  # its transaction is committing, held
        for i in range(50):
            tasks.start_soon(record, f"later-{i}")
        await until(lambda: journal.backlog == 50)  # queued while the first commit runs
        assert released == []
        assert committed_keys(path) == set()
        gate.release()
        await until(lambda: released == ["first"])
        await until(lambda: gate.started == 2)  # the 50 in one transaction, committing, held
        assert released == ["first"]  # none of the 50 is released before its commit
        assert committed_keys(path) == {"first"}
        gate.release()
        await until(lambda: len(released) == 51)
        assert committed_keys(path) == {"first"} | {f"later-{i}" for i in range(50)}
        assert journal.transactions == 2
        # Reads go through the same thread, after the changes queued before them.
        gate.release(10)
        record_ = await journal.get("later-7")
        assert record_ is not None
        assert record_.state is State.QUEUED


async def test_a_transaction_takes_at_most_max_batch_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its callers all wake when it commits: a bounded batch bounds that burst on the loop."""
    from ade_async.cli._journal import MAX_BATCH, Journal, State

    gate = CommitGate(monkeypatch)
    async with Journal(tmp_path / "journal.sqlite") as journal, anyio.create_task_group() as tasks:
        gate.armed = True
        tasks.start_soon(lambda: journal.record("first", State.QUEUED, source="first"))
        await until(lambda: gate.started == 1)
        for i in range(2 * MAX_BATCH + 1):
            tasks.start_soon(functools.partial(journal.record, f"later-{i}", State.QUEUED, source="x"))
        await until(lambda: journal.backlog == 2 * MAX_BATCH + 1)
        gate.release(10)
    assert journal.transactions == 1 + 3


async def test_a_change_that_cannot_be_written_fails_alone_in_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ade_async.cli import _journal
    from ade_async.cli._journal import Journal, State

    real = _journal.JournalStore.write_record

    def write_record(self: Any, key: str, state: Any, **kwargs: Any) -> None:
        if key == "bad":
            raise sqlite3.OperationalError("disk I/O error")
        real(self, key, state, **kwargs)

    monkeypatch.setattr(_journal.JournalStore, "write_record", write_record)
    gate = CommitGate(monkeypatch)
    path = tmp_path / "journal.sqlite"
    outcomes: dict[str, str] = {}
    async with Journal(path) as journal, anyio.create_task_group() as tasks:
        gate.armed = True

        async def record(key: str) -> None:
            try:
                await journal.record(key, State.QUEUED, source=key, settings_sha256="s")
            except sqlite3.Error as exc:
                outcomes[key] = str(exc)
            else:
                outcomes[key] = "ok"

        tasks.start_soon(record, "first")
        await until(lambda: gate.started == 1)
        for key in ("good-1", "bad", "good-2"):
            tasks.start_soon(record, key)
        await until(lambda: journal.backlog == 3)
        gate.release(10)  # the group fails as a whole, then each change is tried alone
    assert outcomes == {"first": "ok", "good-1": "ok", "bad": "disk I/O error", "good-2": "ok"}
    assert committed_keys(path) == {"first", "good-1", "good-2"}


async def test_a_journal_from_a_newer_version_is_refused_when_opened(tmp_path: Path) -> None:
    from ade_async.cli._journal import Journal, JournalVersionError

    path = tmp_path / "journal.sqlite"
    async with Journal(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(JournalVersionError, match="newer ade-async"):
        async with Journal(path):
            pass


# --- 1. discovery in a thread ---------------------------------------------------------------------------


def make_tree(root: Path, files: int, per_folder: int = 100) -> None:
    for i in range(files):
        folder = root / f"f-{i // per_folder:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc-{i:05d}.md").write_text("x")


async def test_discovery_in_a_thread_yields_what_discover_yields_in_the_same_order(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_tree(docs, 700, per_folder=70)
    (docs / "f-000" / "notes.txt").write_text("not matched")
    (docs / "deep" / "er").mkdir(parents=True)
    (docs / "deep" / "er" / "x.md").write_text("x")
    (docs / "linked").symlink_to(docs / "f-001", target_is_directory=True)  # not followed
    single = tmp_path / "single.txt"  # named directly: taken, and refused as not Markdown
    single.write_text("x")
    out = (tmp_path / "out").resolve()
    arguments = [str(docs), str(single), str(docs / "f-002")]  # f-002 twice: duplicates refused
    expected = list(discover(arguments, out))
    async with _discover.discover_in_thread(arguments, out) as inputs:
        found = [item async for item in inputs]
    assert found == expected
    assert any(item.problem for item in found)


async def test_discovery_is_lazy_and_stops_with_its_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge tree is never listed into memory up front: the thread stays a bounded distance
    ahead of what the run has taken, and stops when the run stops reading."""
    docs = tmp_path / "docs"
    make_tree(docs, 6000)
    made: list[Input] = []
    real_make = _discover._make

    def make(*args: Any, **kwargs: Any) -> Input:
        item = real_make(*args, **kwargs)
        made.append(item)
        return item

    monkeypatch.setattr(_discover, "_make", make)
    out = (tmp_path / "out").resolve()
    taken = []
    async with _discover.discover_in_thread([str(docs)], out) as inputs:
        async for item in inputs:
            taken.append(item)
            if len(taken) == 10:
                break
        ahead = _discover.DISCOVERY_AHEAD
        assert len(made) <= len(taken) + ahead
    assert taken == made[:10]
    assert len(made) <= 10 + ahead < 6000  # the thread stopped with its reader


async def test_a_discovery_error_reaches_the_reader_after_the_inputs_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    make_tree(docs, 30)
    real_make = _discover._make
    count = 0

    def make(*args: Any, **kwargs: Any) -> Input:
        nonlocal count
        count += 1
        if count == 21:
            raise UsageError("refusing an output path outside OUT")
        return real_make(*args, **kwargs)

    monkeypatch.setattr(_discover, "_make", make)
    taken = []

    async def read_all() -> None:
        async with _discover.discover_in_thread([str(docs)], (tmp_path / "out").resolve()) as inputs:
            async for item in inputs:
                taken.append(item)

    with pytest.raises(UsageError, match="outside OUT"):
        await read_all()
    assert len(taken) == 20


# --- 2. results durable before "done" -------------------------------------------------------------------

_EVENT_INSERT = re.compile(
    r"INSERT INTO events \(key, state, job_id, detail, at\) VALUES \('((?:[^']|'')*)', '(\w+)', "
    r"(?:NULL|'[^']*'), (NULL|'(?:[^']|'')*')"
)


class Sequence:
    """What happened, in order, across threads: syncs, renames, journal commits, creates."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[tuple[Any, ...]] = []
        self.sync_threads: set[int] = set()
        self._lock = threading.Lock()
        self._open: dict[int, list[tuple[str, str, str | None]]] = {}
        real_fsync, real_replace, real_connect = os.fsync, os.replace, sqlite3.connect
        real_create = SimulatorState.create_job

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            real_fsync(fd)
            self.sync_threads.add(threading.get_ident())
            self._add("fsync", path)

        def replace(source: Any, target: Any, **kwargs: Any) -> None:
            real_replace(source, target, **kwargs)
            self._add("replace", os.fspath(source), os.fspath(target))

        def trace(statement: str) -> None:
            changes = self._open.setdefault(threading.get_ident(), [])
            if statement.startswith("BEGIN"):
                changes.clear()
            elif match := _EVENT_INSERT.match(statement):
                key, state, detail = match.groups()
                changes.append((key.replace("''", "'"), state, None if detail == "NULL" else detail[1:-1]))
            elif statement == "COMMIT":
                self._add("commit", tuple(changes))
                changes.clear()

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            db: sqlite3.Connection = real_connect(*args, **kwargs)
            db.set_trace_callback(trace)
            return db

        def create_job(state: SimulatorState, **kwargs: Any) -> Any:
            self._add("create", kwargs["filename"])
            return real_create(state, **kwargs)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(sqlite3, "connect", connect)
        monkeypatch.setattr(SimulatorState, "create_job", create_job)

    def _add(self, *step: Any) -> None:
        with self._lock:
            self.steps.append(step)

    def index(self, predicate: Callable[[tuple[Any, ...]], bool], *, after: int = -1) -> int:
        for i, step in enumerate(self.steps):
            if i > after and predicate(step):
                return i
        raise AssertionError(f"no such step after {after}: {self.steps}")

    def position(self, step: tuple[Any, ...], *, after: int = -1) -> int:
        return self.index(lambda s: s == step, after=after)

    def renamed_to(self, target: Path) -> int:
        return self.index(lambda s: s[0] == "replace" and s[2] == str(target))

    def committed(self, key: str, state: str) -> int:
        return self.index(lambda s: s[0] == "commit" and any(c[:2] == (key, state) for c in s[1]))


async def test_a_result_is_synced_renamed_and_its_folder_synced_before_the_journal_says_done(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power loss must never leave a journal that says completed (or failed) next to a result
    (or an error file) that is empty or missing: file synced, renamed, folder synced, then the
    commit. Also: each create goes out only after its "submitting" with its token is committed."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "good.md").write_text(invoice(1))
    (docs / "bad.md").write_text(invoice(2, "<!-- ade-sim: fail unreadable -->"))
    out = (tmp_path / "out").resolve()
    sequence = Sequence(monkeypatch)
    loop_thread = threading.get_ident()
    code, summary = await extract(options_for(sim, docs, out))
    assert code == 1, summary
    for key, final, state in (
        ("sub/good.md", out / "sub" / "good.json", "completed"),
        ("bad.md", out / "bad.error.json", "failed"),
    ):
        renamed = sequence.renamed_to(final)
        temporary = sequence.steps[renamed][1]
        assert Path(temporary).parent == final.parent
        synced = sequence.position(("fsync", temporary))
        folder_synced = sequence.position(("fsync", str(final.parent)), after=renamed)
        assert synced < renamed < folder_synced < sequence.committed(key, state), sequence.steps
        assert final.read_bytes()
    # The folder made for sub/good.json was synced into OUT too (its entry is what finds it).
    assert ("fsync", str(out)) in sequence.steps
    assert loop_thread not in sequence.sync_threads  # the syncing is done off the event loop
    # The create carries the token that "submitting" committed before it.
    created = sequence.index(lambda s: s[0] == "create" and s[1].startswith("good."))
    token = re.search(r"\.ade-([^.]+)\.md$", sequence.steps[created][1])
    assert token is not None
    committed = sequence.index(
        lambda s: s[0] == "commit" and ("sub/good.md", "submitting", f"token {token.group(1)}") in s[1]
    )
    assert committed < created
    assert sequence.committed("sub/good.md", "submitted") > created


# --- 3. stale temporary files ---------------------------------------------------------------------------


def folder_tag(out: Path) -> str:
    with sqlite3.connect(out / ".ade-async" / "journal.sqlite") as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'temp_tag'").fetchone()
    assert row is not None, "the journal names its folder's temporary files"
    return str(row[0])


async def test_a_resumed_run_removes_its_own_stale_temporary_files_and_nothing_else(
    sim: Simulator, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "a.md").write_text(invoice(1))
    out = (tmp_path / "out").resolve()
    options = options_for(sim, docs, out)
    code, _ = await extract(options)
    assert code == 0
    tag = folder_tag(out)
    # What a run killed during an atomic write leaves: a temporary sibling of a result.
    stale = [
        out / "sub" / f".ade-async.{tag}.0badc0de-7.a.json.tmp",
        out / f".ade-async.{tag}.12345678-0.line\nbreak.json.tmp",
    ]
    for path in stale:
        path.write_bytes(b'{"extraction": {"inv')  # cut short by the kill
    # Look-alikes that are not provably this folder's: a user's file, another folder's, a link.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f".ade-async.{tag}.0badc0de-8.x.json.tmp").write_text("not OUT's")
    keep = [
        out / ".notes.tmp",
        out / "sub" / ".a.json.9f8e7d6c5b4a.tmp",  # the shape of earlier versions: not provable
        out / f".ade-async.{'0' * 16}.0badc0de-1.a.json.tmp",  # another folder's tag
        out / f".ade-async.{tag}.0badc0de-1.a.json",  # not a temporary name
        out / f"ade-async.{tag}.0badc0de-1.a.json.tmp",  # no leading dot
        out / "notes.tmp",
    ]
    for path in keep:
        path.write_text("mine")
    link = out / f".ade-async.{tag}.0badc0de-2.b.json.tmp"
    link.symlink_to(outside / f".ade-async.{tag}.0badc0de-8.x.json.tmp")  # a link: never followed
    (out / "linked").symlink_to(outside, target_is_directory=True)
    code, summary = await extract(options)
    assert code == 0, summary
    assert summary["skipped"] == 1
    assert [path for path in stale if path.exists()] == []
    assert [path for path in keep if not path.exists()] == []
    assert link.is_symlink()
    assert (outside / f".ade-async.{tag}.0badc0de-8.x.json.tmp").read_text() == "not OUT's"


@contextlib.contextmanager
def holding_the_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock as another running ade-async would."""
    with open(out / ".ade-async" / "lock", "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        yield


async def test_stale_temporary_files_are_left_alone_while_another_run_holds_the_folder(
    sim: Simulator, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(invoice(1))
    out = (tmp_path / "out").resolve()
    options = options_for(sim, docs, out)
    assert (await extract(options))[0] == 0
    in_progress = out / f".ade-async.{folder_tag(out)}.0badc0de-3.a.json.tmp"
    in_progress.write_text("another run is writing this")
    with holding_the_lock(out):
        code, summary = await extract(options)
    assert code == 2
    assert "another ade-async run" in summary["stderr"]
    assert in_progress.exists()


def test_temporary_names_carry_the_folder_and_the_run() -> None:
    """Every temporary name the command makes has the shape the clean-up recognises."""
    from ade_async.cli._outputs import TempNames

    names = TempNames("0123456789abcdef")
    later = TempNames("0123456789abcdef")
    other_folder = TempNames("fedcba9876543210")
    for final in ("a.json", "b.error.json", "ü" * 200 + ".json", "line\nbreak.json"):
        name = names.next(final)
        assert name.startswith(".ade-async.0123456789abcdef.")
        assert name.endswith(".tmp")
        assert len(name.encode()) <= 255
        assert not names.is_stale(name)  # this run's own: in use, never removed
        assert later.is_stale(name)  # a later run (holding the lock) may remove it
        assert not other_folder.is_stale(name)
    assert names.next("a.json") != names.next("a.json")
