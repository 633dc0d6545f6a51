"""Creates whose answer was lost: the job is found by its upload token and adopted, never paid twice
silently. The sans-I/O search first, then the client against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import drive

import ade_async
from ade_async._engine.http import safe_filename
from ade_async._engine.reconcile import Candidate, Found, NotFound, ReconcileBook, ReconcilePolicy
from ade_async.cli._journal import Action, JournalStore, JournalVersionError, Record, State, plan
from ade_async.providers.landingai.tokens import new_upload_token, tag_filename, token_of
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}}}
SENT = 1_800_000_000.0  # a wall-clock send time

pytestmark = pytest.mark.anyio


def invoice(n: int) -> str:
    return f"# Invoice {n}\n\nInvoice Number: INV-{n}\n"


# --- upload tokens ----------------------------------------------------------------------------------


def test_upload_names_keep_the_users_name_and_carry_a_random_token() -> None:
    token = new_upload_token()
    assert len(token) == 16
    assert token != new_upload_token()
    tagged = tag_filename("invoice.md", token)
    assert tagged == f"invoice.ade-{token}.md"
    assert safe_filename(tagged) == tagged  # header-safe as it is
    assert token_of(tagged) == token
    assert token_of(tag_filename("a.b.MD", token)) == token
    assert token_of(tag_filename(".md", token)) == token
    for name in ("..md", ".md", "notes.final.md"):  # the API checks the extension: it stays last
        assert tag_filename(name, token).endswith(f".ade-{token}.md")
    assert token_of("invoice.md") is None
    assert token_of(None) is None
    assert token_of("invoice.ade-short.md") is None


# --- the search, sans I/O -------------------------------------------------------------------------------


def book(*, clock_skew: float = 60.0) -> ReconcileBook:
    policy = ReconcilePolicy(
        search_time=10.0, max_search_time=100.0, list_interval=2.0, clock_skew=clock_skew
    )
    return ReconcileBook(policy)


def test_a_completed_candidate_with_the_token_is_found() -> None:
    b = book()
    key = b.start(["tokbaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT + 5, now=0.0)
    b.note_known("mine", wall=SENT)
    listing = [
        Candidate("mine", True, SENT + 1),  # created by this client: not a candidate
        Candidate("old", True, SENT - 500),  # outside the window
        Candidate("other", True, SENT + 2),
        Candidate("lost", True, SENT + 3),
    ]
    assert b.scan_due(0.0)
    assert b.on_listing(listing, now=0.0)[0] == ["other", "lost"]
    assert not b.scan_due(1.0)
    assert b.on_job("other", ended=True, match_key=token_of("x.ade-zzzzzzzzzzzzzzzz.md")) == []
    assert b.on_job("lost", ended=True, match_key=token_of("inv.ade-tokbaaaaaaaaaaaa.md")) == [
        (key, Found("lost"))
    ]
    assert b.searching == 0
    assert b.next_wake(5.0) is None


def test_candidates_still_running_keep_the_search_alive_until_the_hard_bound() -> None:
    b = book()
    key = b.start(["tokcaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    assert b.on_listing([Candidate("busy", False, SENT)], now=0.0)[0] == []
    assert b.expire(now=50.0, wall=SENT) == []  # past search_time, but "busy" could be it
    assert b.on_listing([Candidate("busy", False, SENT)], now=50.0)[0] == []
    (ended,) = b.expire(now=100.0, wall=SENT)
    assert ended[0] == key
    assert isinstance(ended[1], NotFound)
    assert ended[1].report.still_running == ("busy",)
    assert "1 still running could be it (busy)" in ended[1].report.describe()


def test_a_candidate_that_completes_later_is_then_fetched_and_matched() -> None:
    b = book()
    key = b.start(["tokdaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    assert b.on_listing([Candidate("j", False, SENT)], now=0.0)[0] == []
    assert b.on_listing([Candidate("j", True, SENT)], now=2.0)[0] == ["j"]
    assert b.on_listing([Candidate("j", True, SENT)], now=4.0)[0] == []  # already being fetched
    assert b.on_job("j", ended=True, match_key=token_of("d.ade-tokdaaaaaaaaaaaa.md")) == [(key, Found("j"))]


def test_without_candidates_the_search_ends_after_search_time_as_not_found() -> None:
    b = book()
    b.start(["tokeaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    assert b.on_listing([Candidate("f", True, SENT)], now=0.0)[0] == ["f"]
    assert b.on_job("f", ended=True, match_key=None) == []  # failed jobs carry no file name
    assert b.on_listing([Candidate("f", True, SENT)], now=2.0)[0] == []  # settled: never fetched again
    assert b.next_wake(2.0) == 4.0
    assert b.expire(now=9.9, wall=SENT) == []
    ((_, outcome),) = b.expire(now=10.0, wall=SENT)
    assert isinstance(outcome, NotFound)
    assert outcome.report.unidentified == ("f",)
    assert outcome.report.candidates_checked == 0


def test_a_failed_fetch_is_offered_again_and_a_vanished_job_is_settled() -> None:
    b = book()
    b.start(["tokfaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    listing = [Candidate("a", True, SENT), Candidate("b", True, SENT)]
    assert b.on_listing(listing, now=0.0)[0] == ["a", "b"]
    b.on_fetch_failed("a")
    b.on_vanished("b")
    assert b.on_listing(listing, now=2.0)[0] == ["a"]


def test_one_scan_serves_several_searches_and_each_finds_its_own_job() -> None:
    b = book()
    first = b.start(["tokgaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    second = b.start(["tokhaaaaaaaaaaaa", "tokiaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    listing = [Candidate("x", True, SENT), Candidate("y", True, SENT)]
    assert b.on_listing(listing, now=0.0)[0] == ["x", "y"]
    assert b.on_job("x", ended=True, match_key=token_of("b.ade-tokiaaaaaaaaaaaa.md")) == [
        (second, Found("x"))
    ]
    assert b.on_job("y", ended=True, match_key=token_of("a.ade-tokgaaaaaaaaaaaa.md")) == [(first, Found("y"))]


def test_a_search_that_starts_after_its_job_was_fetched_for_another_still_finds_it() -> None:
    # Found by the crash trials: settled jobs are never fetched again, so a later search must
    # recall the tokens seen while settling them.
    b = book()
    b.start(["tokkaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT, now=0.0)
    assert b.on_listing([Candidate("late", True, SENT)], now=0.0)[0] == ["late"]
    assert b.on_job("late", ended=True, match_key=token_of("z.ade-toklaaaaaaaaaaaa.md")) == []
    assert b.recall(["toklaaaaaaaaaaaa"]) == Found("late")
    assert b.recall(["tokmaaaaaaaaaaaa"]) is None


def test_clock_skew_widens_the_window() -> None:
    narrow = book(clock_skew=0.0)
    narrow.start(["tokjaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT + 1, now=0.0)
    skewed = [Candidate("early", True, SENT - 30)]  # the server's clock runs 30 s behind
    assert narrow.on_listing(skewed, now=0.0)[0] == []
    wide = book(clock_skew=60.0)
    wide.start(["tokjaaaaaaaaaaaa"], sent_at=SENT, unknown_at=SENT + 1, now=0.0)
    assert wide.on_listing(skewed, now=0.0)[0] == ["early"]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="search_time"):
        ReconcilePolicy(search_time=700.0)
    with pytest.raises(ValueError, match="list_interval"):
        ReconcilePolicy(list_interval=0.0)


# --- the journal's resume decision ----------------------------------------------------------------------


def record(state: State, tokens: tuple[str, ...] = ()) -> Record:
    return Record("k", "c", "s", state, None, 1, tokens, SENT if tokens else None)


def test_plan_reconciles_an_unanswered_create_before_any_resubmission() -> None:
    decide = {"content_sha256": "c", "settings_sha256": "s", "retry_failed": False, "output_exists": False}
    assert plan(record(State.SUBMITTING, ("t",)), **decide) is Action.RECONCILE  # type: ignore[arg-type]
    assert plan(record(State.UNKNOWN, ("t",)), **decide) is Action.RECONCILE  # type: ignore[arg-type]
    # A version 1 journal has no token to look for: submitted again (reported as a possible duplicate).
    assert plan(record(State.SUBMITTING), **decide) is Action.SUBMIT  # type: ignore[arg-type]
    # Changed content means a new job, whatever the old create did.
    changed = {**decide, "content_sha256": "other"}
    assert plan(record(State.UNKNOWN, ("t",)), **changed) is Action.SUBMIT  # type: ignore[arg-type]


def test_a_version_1_journal_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE inputs (key TEXT PRIMARY KEY, source TEXT NOT NULL, content_sha256 TEXT,
                settings_sha256 TEXT NOT NULL, state TEXT NOT NULL, job_id TEXT, stage TEXT, error TEXT,
                submissions INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL);
            CREATE TABLE events (id INTEGER PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL,
                job_id TEXT, detail TEXT, at REAL NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            INSERT INTO inputs VALUES ('a.md', 'a.md', 'c', 's', 'submitting', NULL, NULL, NULL, 1, 0);
            """
        )
    journal = JournalStore(path)
    try:
        old = journal.get("a.md")
        assert old is not None
        assert (old.state, old.upload_tokens, old.first_sent_at) == (State.SUBMITTING, (), None)
        journal.record("a.md", State.SUBMITTING, upload_token="t1")
        journal.record("a.md", State.SUBMITTING, upload_token="t2")
        new = journal.get("a.md")
        assert new is not None
        assert new.upload_tokens == ("t1", "t2")
        assert new.first_sent_at is not None
    finally:
        journal.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(JournalVersionError, match="newer ade-async"):
        JournalStore(path)


# --- the client against the simulator ---------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.1, 0.3))) as simulator:
        yield simulator


def quick(search_time: float = 3.0) -> ReconcilePolicy:
    return ReconcilePolicy(search_time=search_time, list_interval=0.2)


async def test_a_lost_create_answer_is_reconciled_one_job_right_result(sim: Simulator) -> None:
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, reconcile=quick()) as client:
        sim.inject("create", "lost_response")
        handle = await client.submit(invoice(7), schema=SCHEMA, filename="march.md")
        result = await handle
        stats = client.stats()
    assert result.extraction == {"invoice_number": "INV-7"}
    assert handle.reconciled
    assert not handle.possible_duplicate
    assert token_of(result.metadata.filename) is not None
    assert (stats.creates_unknown, stats.creates_reconciled, stats.possible_duplicates) == (1, 1, 0)
    assert stats.reconcile_requests >= 2  # at least one list page and the candidate's get
    assert sim.stats().jobs_total == 1
    assert sim.stats().duplicate_jobs == 0


async def test_concurrent_lost_answers_each_adopt_their_own_job(sim: Simulator) -> None:
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, reconcile=quick()) as client:
        # Some jobs of this client exist already: they must never be taken for a lost one.
        earlier = [await client.submit(invoice(100 + n), schema=SCHEMA) for n in range(3)]
        sim.inject("create", "lost_response", count=6)
        outcomes = [
            o async for o in client.extract_many([invoice(n) for n in range(6)], schema=SCHEMA, window=6)
        ]
        for handle in earlier:
            await handle
        stats = client.stats()
    assert all(o.ok for o in outcomes)
    for outcome in outcomes:
        assert isinstance(outcome, ade_async.Succeeded)
        assert outcome.reconciled
        assert outcome.result.extraction == {"invoice_number": f"INV-{outcome.index}"}
    assert len({o.job_id for o in outcomes}) == 6
    assert stats.creates_reconciled == 6
    assert sim.stats().jobs_total == 9
    assert sim.stats().duplicate_jobs == 0


async def test_a_lagging_list_is_waited_out() -> None:
    # One fake clock for the client and the simulator: scans come every 0.3 s of it and the list
    # shows the job after 1 s of it, so the first scans see nothing however slow the machine.
    clock = FakeClock()
    config = SimulatorConfig(latency=(0.1, 0.2), list_lag=1.0)
    async with Simulator(config, clock=clock.now) as lagging:
        policy = ReconcilePolicy(search_time=5.0, list_interval=0.3)
        async with ade_async.Client(
            api_key=lagging.api_key, base_url=lagging.base_url, reconcile=policy, clock=clock
        ) as client:
            lagging.inject("create", "lost_response")
            task = asyncio.ensure_future(client.extract(invoice(3), schema=SCHEMA))
            await drive(clock, client, lagging, task.done)
            result = task.result()
            stats = client.stats()
    assert result.extraction == {"invoice_number": "INV-3"}
    assert stats.creates_reconciled == 1
    assert stats.reconcile_requests >= 3  # the first scans saw nothing yet
    assert lagging.stats().jobs_total == 1


async def settle_with(
    clock: FakeClock, client: ade_async.Client, sim: Simulator, task: asyncio.Task[ade_async.JobHandle[Any]]
) -> None:
    """Advance the client's fake clock until ``task`` ends, a step once the simulator has answered."""
    await drive(clock, client, sim, task.done, step=0.5)


async def test_not_found_and_not_allowed_fails_clearly_and_sends_nothing_more(sim: Simulator) -> None:
    clock = FakeClock()
    # The default policy (30 s of search), on a fake clock: bounded, and nothing sent again.
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, clock=clock) as client:
        sim.inject("create", "502")  # a gateway's answer: maybe created, here not
        task = asyncio.ensure_future(client.submit(invoice(1), schema=SCHEMA, filename="lost.md"))
        await settle_with(clock, client, sim, task)
        with pytest.raises(ade_async.CreateOutcomeUnknownError) as info:
            task.result()
        stats = client.stats()
    error = info.value
    assert error.search is not None
    assert error.search.seconds >= 30.0
    assert error.resubmissions == 0
    assert "resubmit_unknown" in str(error)
    assert error.match_key is not None  # the upload token its job carries
    assert (stats.creates_sent, stats.possible_duplicates, stats.creates_reconciled) == (1, 0, 0)
    assert sim.stats().jobs_total == 0


async def test_not_found_and_allowed_resubmits_and_reports_a_possible_duplicate(sim: Simulator) -> None:
    clock = FakeClock()
    policy = ReconcilePolicy(resubmit_unknown=True)
    async with ade_async.Client(
        api_key=sim.api_key, base_url=sim.base_url, clock=clock, reconcile=policy
    ) as client:
        sim.inject("create", "502")
        task = asyncio.ensure_future(client.submit(invoice(2), schema=SCHEMA))
        await settle_with(clock, client, sim, task)
        handle = task.result()
        assert handle.possible_duplicate
        assert not handle.reconciled
        stats = client.stats()
    assert (stats.creates_sent, stats.creates_accepted, stats.possible_duplicates) == (2, 1, 1)
    assert sim.stats().jobs_total == 1


async def test_extract_many_outcomes_say_possible_duplicate(sim: Simulator) -> None:
    policy = quick(search_time=0.5)
    async with ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, reconcile=policy) as client:
        sim.inject("create", "502")
        outcomes = [o async for o in client.extract_many([invoice(5)], schema=SCHEMA, resubmit_unknown=True)]
        sim.inject("create", "502")
        refused = [o async for o in client.extract_many([invoice(6)], schema=SCHEMA)]
    (done,) = outcomes
    assert isinstance(done, ade_async.Succeeded)
    assert done.possible_duplicate
    assert done.result.extraction == {"invoice_number": "INV-5"}
    (failed,) = refused
    assert isinstance(failed, ade_async.Failed)
    assert failed.stage == "submit"
    assert isinstance(failed.error, ade_async.CreateOutcomeUnknownError)
    assert not failed.possible_duplicate
