"""Issue 14's defects, each pinned by the test that failed before its fix.

One caller's mistake never takes down a client others share; admission slots never leak; a
cancellation is never swallowed or converted; a create on the wire is never cut off unrecorded; an
in-flight slot is freed only when its job is seen to end (or provably never existed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import CEILING, CreateHold, drive

import ade_async
from ade_async import PollPolicy, RateLimit, ReconcilePolicy, RetryPolicy
from ade_async._engine.admission import AdmissionGate
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}
QUICK_POLL = PollPolicy(first_delay=0.05, max_delay=0.2, coalesce=0.02, sweep=False)
QUICK_SEARCH = ReconcilePolicy(search_time=0.5, max_search_time=2.0, list_interval=0.05)


def doc(number: int, extra: str = "") -> str:
    return f"# Invoice\nInvoice Number: INV-{number}\nTotal: {number}.50\n{extra}"


def client_for(sim: Simulator, **kwargs: Any) -> ade_async.Client:
    kwargs.setdefault("poll", QUICK_POLL)
    kwargs.setdefault("rate_limit", RateLimit(adaptive=False))
    kwargs.setdefault("reconcile", QUICK_SEARCH)
    return ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, **kwargs)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.05, 0.2))) as simulator:
        yield simulator


@pytest.fixture
def sim_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def held(sim_clock: FakeClock) -> AsyncIterator[Simulator]:
    """A simulator on a fake clock: its jobs run until the test advances ``sim_clock``."""
    async with Simulator(SimulatorConfig(latency=(0.05, 0.2)), clock=sim_clock.now) as simulator:
        yield simulator


async def until(condition: Any, *, ceiling: float = 30.0) -> None:
    """Wait for an observable condition; the ceiling only bounds a hang, it decides nothing."""
    with anyio.fail_after(ceiling):
        while not condition():
            await anyio.sleep(0.005)


# --- 1. one caller's mistake never takes down the shared client -------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"window": 0},
        {"window": -3},
    ],
)
async def test_bad_extract_many_arguments_raise_to_that_caller_only(
    sim: Simulator, arguments: dict[str, Any]
) -> None:
    async with client_for(sim) as client:
        with pytest.raises(ValueError, match=r"timeout|window"):
            client.extract_many([doc(1)], schema=SCHEMA, **arguments)
        # The client and its other users carry on.
        result = await client.extract(doc(2), schema=SCHEMA)
        assert result.extraction["invoice_number"] == "INV-2"
    assert sim.stats().jobs_total == 1  # nothing was sent for the bad call


class _Exploding:
    """An input whose path cannot be computed: a stand-in for any unexpected error on one input."""

    def __fspath__(self) -> str:
        raise RuntimeError("this input is broken in a way nobody foresaw")


async def test_an_unexpected_error_on_one_input_is_that_inputs_failure(sim: Simulator) -> None:
    async with client_for(sim) as client:
        inputs: list[Any] = [doc(1), _Exploding(), doc(3)]
        outcomes = [o async for o in client.extract_many(inputs, schema=SCHEMA)]
        by_index = {o.index: o for o in outcomes}
        assert sorted(by_index) == [0, 1, 2]
        assert by_index[0].ok
        assert by_index[2].ok
        broken = by_index[1]
        assert not broken.ok
        assert broken.stage == "read"
        assert isinstance(broken.error, ade_async.ADEError)
        assert "nobody foresaw" in str(broken.error)
        assert isinstance(broken.error.__cause__, RuntimeError)
        result = await client.extract(doc(4), schema=SCHEMA)
        assert result.extraction["invoice_number"] == "INV-4"


async def test_a_bug_while_handling_one_poll_fails_that_job_not_the_client(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ade_async._engine import scheduler as _scheduler

    async with client_for(sim) as client:
        doomed = await client.submit(doc(1), schema=SCHEMA)
        original = _scheduler.PollScheduler._on_answer

        async def buggy(self: Any, job_id: str, *args: Any) -> None:
            if job_id == doomed.job_id:
                raise KeyError("a bug in the poller")
            await original(self, job_id, *args)

        monkeypatch.setattr(_scheduler.PollScheduler, "_on_answer", buggy)
        with pytest.raises(ade_async.ADEError, match="a bug in the poller"):
            await doomed
        monkeypatch.undo()
        result = await client.extract(doc(2), schema=SCHEMA)
        assert result.extraction["invoice_number"] == "INV-2"


# --- 2. an admission slot never leaks ----------------------------------------------------------------


async def test_a_failing_sending_hook_hands_its_admission_back(sim: Simulator) -> None:
    async with client_for(sim, rate_limit=RateLimit(adaptive=False, max_in_flight=1)) as client:

        async def broken_hook(progress: Any) -> None:
            if progress.phase == "sending":
                raise OSError("the journal's disk is full")

        with pytest.raises(OSError, match="disk is full"):
            await client.submit(doc(1), schema=SCHEMA, timeout=None, on_progress=broken_hook)
        stats = client.stats().admission
        assert (stats.in_flight, stats.admitted) == (0, 0)
        with anyio.fail_after(30):  # the slot came back: the next create is admitted
            result = await client.extract(doc(2), schema=SCHEMA)
        assert result.extraction["invoice_number"] == "INV-2"
    assert sim.stats().jobs_total == 1


# --- 7. cancellation edges ------------------------------------------------------------------------


async def test_close_and_cancel_together_never_turn_cancellation_into_closed() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((1, 60.0),), safety_margin=0.0), clock=clock)
    await gate.acquire()  # the window is now full: the next waiter waits
    scope = anyio.CancelScope()
    raised: list[BaseException] = []

    async def waiter() -> None:
        try:
            with scope:
                await gate.acquire()
        except BaseException as exc:  # pragma: no cover - the failure this test guards against
            raised.append(exc)
            raise

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await clock.advance(0)
        # In one breath: the client closes (failing every waiter) and the waiter is cancelled.
        gate.close(ade_async.ClientClosedError("closing"))
        scope.cancel()
    assert raised == []
    assert scope.cancelled_caught


async def test_leaving_extract_many_early_lets_creates_on_the_wire_land_and_reports_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ade_async")
    sim = Simulator(SimulatorConfig(latency=(0.05, 0.2)))
    on_the_wire = CreateHold(sim)  # the creates stay on the wire until the caller has left
    async with sim, client_for(sim) as client:
        outcomes = client.extract_many([doc(i) for i in range(3)], schema=SCHEMA)
        first = asyncio.ensure_future(outcomes.__anext__())
        await until(lambda: on_the_wire.arrived == 3)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        await outcomes.aclose()
        on_the_wire.release()
        # The three paid jobs exist; the client knows them and says so.
        await until(lambda: sim.stats().jobs_total == 3 and len(client.stats().abandoned_job_ids) == 3)
        abandoned = set(client.stats().abandoned_job_ids)
        assert abandoned == set(await _all_job_ids(client))
        for job_id in abandoned:
            assert any(job_id in record.getMessage() for record in caplog.records)


async def _all_job_ids(client: ade_async.Client) -> list[str]:
    return [job.job_id async for job in client.list_jobs()]


# --- 8. in-flight accounting -----------------------------------------------------------------------


async def test_a_job_past_its_deadline_keeps_its_slot_until_it_is_seen_to_end(
    held: Simulator, sim_clock: FakeClock
) -> None:
    async with client_for(held, rate_limit=RateLimit(adaptive=False, max_in_flight=1)) as client:
        # The job cannot end before its deadline, however slow the machine: its clock stands still.
        slow = await client.submit(doc(1, "<!-- ade-sim: latency 1.5 -->"), schema=SCHEMA, timeout=0.1)
        with pytest.raises(ade_async.JobTimeoutError):
            await slow
        assert client.stats().admission.in_flight == 1  # the job still runs server-side
        submitting = asyncio.ensure_future(client.submit(doc(2), schema=SCHEMA))
        await until(lambda: client.stats().admission.waiting == 1)  # held back while the job runs
        await sim_clock.advance(1.5)
        # Admitted only once the first job was seen to end: the slow watch saw it.
        with anyio.fail_after(CEILING):
            second = await submitting
        ended_at = held.job_completed_at(slow.job_id)
        assert ended_at is not None
        assert sim_clock.now() >= ended_at
        await sim_clock.advance(1.0)
        with anyio.fail_after(CEILING):
            assert (await second).extraction["invoice_number"] == "INV-2"
            # And the timed-out job can still be collected.
            collected = client.watch(slow.job_id)
            assert (await collected).extraction["invoice_number"] == "INV-1"


async def test_a_lost_create_keeps_its_slot_while_searched_and_hands_it_to_the_adopted_job(
    held: Simulator, sim_clock: FakeClock
) -> None:
    # The client shares the simulator's fake clock: the job cannot end, nor the search run out,
    # before the slot has been checked, however slow the machine.
    limit = RateLimit(adaptive=False, max_in_flight=2)
    async with client_for(held, rate_limit=limit, clock=sim_clock) as client:
        held.inject("create", "lost_response")
        task = asyncio.ensure_future(client.extract(doc(1, "<!-- ade-sim: latency 1.0 -->"), schema=SCHEMA))
        await until(lambda: client.stats().creates_unknown == 1)
        assert client.stats().admission.in_flight == 1  # a job may exist: its slot stays taken
        await drive(sim_clock, client, held, task.done)
        result = task.result()
        assert result.extraction["invoice_number"] == "INV-1"
        assert client.stats().creates_reconciled == 1
        assert client.stats().admission.in_flight == 0  # freed once the adopted job was seen to end


async def test_a_search_that_finds_nothing_frees_the_slot(sim: Simulator) -> None:
    async with client_for(sim, rate_limit=RateLimit(adaptive=False, max_in_flight=1)) as client:
        sim.inject("create", "502")  # a gateway's 502: the outcome is unknown, and no job exists
        with pytest.raises(ade_async.CreateOutcomeUnknownError):
            await client.extract(doc(1), schema=SCHEMA)
        assert client.stats().admission.in_flight == 0  # provably none: every candidate was seen
        with anyio.fail_after(30):
            await client.extract(doc(2), schema=SCHEMA)


# --- 9. smaller ones -------------------------------------------------------------------------------


async def test_the_poller_honours_the_retry_policys_statuses(sim: Simulator) -> None:
    policy = RetryPolicy(retry_statuses=frozenset({500}))
    async with client_for(sim, retry=policy) as client:
        handle = await client.submit(doc(1), schema=SCHEMA)
        sim.inject("get", "503", count=5)
        with pytest.raises(ade_async.ServerError):
            await handle


async def test_an_unreadable_job_list_during_a_search_is_a_warning_and_said_in_the_error(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ade_async")
    async with client_for(sim, retry=RetryPolicy(attempts=1)) as client:
        sim.inject("create", "lost_response")
        sim.inject("list", "500", count=1000)
        with pytest.raises(ade_async.CreateOutcomeUnknownError, match=r"could never be read"):
            await client.extract(doc(1), schema=SCHEMA)
    assert any(r.levelno == logging.WARNING and "list" in r.getMessage() for r in caplog.records)


async def test_submit_without_an_input_is_refused_locally(sim: Simulator) -> None:
    async with client_for(sim) as client:
        with pytest.raises(TypeError, match="nothing to extract"):
            await client.submit(schema=SCHEMA)
    assert sim.stats().jobs_total == 0
    assert sim.stats().count("create") == 0


async def test_wait_with_a_new_deadline_applies_it(held: Simulator) -> None:
    async with client_for(held) as client:  # the job runs until the clock moves: it never does
        handle = await client.submit(doc(1, "<!-- ade-sim: latency 5 -->"), schema=SCHEMA, timeout=None)
        again = client.watch(handle.job_id, timeout=0.1)
        with pytest.raises(ade_async.JobTimeoutError):
            await again
        assert not handle.done()  # the first waiter, with no deadline, still waits


# --- 6. memory ------------------------------------------------------------------------------------


async def test_an_inputs_bytes_are_released_once_its_create_is_answered(
    held: Simulator, sim_clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ade_async import _inputs
    from ade_async._engine import stage as _stage

    read_bytes: list[bytes] = []
    original = _inputs.read_document

    async def read(item: Any, **kwargs: Any) -> tuple[bytes, str]:
        content, name = await original(item, **kwargs)
        read_bytes.append(content)
        return content, name

    monkeypatch.setattr(_stage, "read_document", read)
    path = tmp_path / "a.md"
    path.write_text(doc(1, "<!-- ade-sim: latency 2 -->"))
    async with client_for(held) as client:  # the job runs until the test moves the clock
        outcomes = client.extract_many([path], schema=SCHEMA)
        pending = asyncio.ensure_future(outcomes.__anext__())
        await until(lambda: client.stats().creates_accepted == 1)
        await until(lambda: client.stats().jobs_submitted == 1)
        gc.collect()
        referrers = [r for r in gc.get_referrers(read_bytes[0]) if r is not read_bytes]
        assert referrers == [], "the input's bytes are still held while its job runs"
        await sim_clock.advance(2.0)
        with anyio.fail_after(CEILING):
            outcome = await pending
        assert outcome.ok
        await outcomes.aclose()


async def test_a_search_whose_caller_left_goes_on_and_settles_its_slot(
    held: Simulator, sim_clock: FakeClock
) -> None:
    # The client shares the simulator's fake clock: the job cannot end, nor the search run out,
    # before the slot has been checked, however slow the machine.
    limit = RateLimit(adaptive=False, max_in_flight=1)
    async with client_for(held, rate_limit=limit, clock=sim_clock) as client:
        held.inject("create", "lost_response")
        with anyio.CancelScope() as caller:
            task = asyncio.ensure_future(
                client.submit(doc(1, "<!-- ade-sim: latency 0.5 -->"), schema=SCHEMA)
            )
            await until(lambda: client.stats().creates_unknown == 1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not caller.cancelled_caught
        assert client.stats().admission.in_flight == 1  # the job may exist: its slot stays taken
        # The search goes on without its caller, finds the job, watches it to its end, frees the slot.
        await drive(sim_clock, client, held, lambda: client.stats().jobs_abandoned == 1)
        (job_id,) = client.stats().abandoned_job_ids
        await drive(sim_clock, client, held, lambda: client.stats().admission.in_flight == 0)
        assert client.stats().creates_reconciled == 1
        collected = asyncio.ensure_future(client.watch(job_id).result())
        await drive(sim_clock, client, held, collected.done)
        assert collected.result().extraction["invoice_number"] == "INV-1"
    assert held.stats().jobs_total == 1


@pytest.mark.parametrize("how", ["task.cancel", "asyncio.timeout"])
async def test_a_plain_asyncio_cancellation_never_cuts_a_create_on_the_wire(how: str) -> None:
    # anyio's shields do not hold against asyncio's own cancellation; the POST runs in a task of
    # the client's, so it lands whatever the caller's task undergoes.
    sim = Simulator(SimulatorConfig(latency=(0.05, 0.2)))
    on_the_wire = CreateHold(sim)  # the create stays on the wire until its caller is cancelled
    async with sim, client_for(sim, rate_limit=RateLimit(adaptive=False, max_in_flight=1)) as client:
        timeouts: list[asyncio.Timeout] = []

        async def caller() -> ade_async.JobHandle[Any]:
            async with asyncio.timeout(None) as timeout:
                timeouts.append(timeout)
                return await client.submit(doc(1), schema=SCHEMA)

        submitting = asyncio.ensure_future(caller())
        await until(lambda: on_the_wire.arrived == 1)
        if how == "task.cancel":
            submitting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await submitting
        else:
            timeouts[0].reschedule(asyncio.get_running_loop().time())
            with pytest.raises(TimeoutError):
                await submitting
        on_the_wire.release()
        await until(lambda: client.stats().jobs_abandoned == 1)
        (job_id,) = client.stats().abandoned_job_ids
        assert client.stats().creates_accepted == 1
        await until(lambda: client.stats().admission.in_flight == 0)  # freed once it was seen to end
        assert (await client.watch(job_id)).extraction["invoice_number"] == "INV-1"
    assert sim.stats().jobs_total == 1
