"""Job handles, the shared poller, extract and extract_many, against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from conftest import CEILING, drive, wait_until

import ade_async
from ade_async import PollPolicy, RateLimit
from ade_async.providers.landingai import LandingAIOptions
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}},
}
QUICK_POLL = PollPolicy(first_delay=0.05, max_delay=0.2, coalesce=0.02)


def doc(number: int, extra: str = "") -> str:
    return f"# Invoice\nInvoice Number: INV-{number}\nTotal: {number}.50\n{extra}"


class Invoice(msgspec.Struct):
    invoice_number: str
    total: float


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3))) as simulator:
        yield simulator


def client_for(sim: Simulator, **kwargs: Any) -> ade_async.Client:
    kwargs.setdefault("poll", QUICK_POLL)
    kwargs.setdefault("rate_limit", RateLimit(adaptive=False))
    return ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, **kwargs)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[ade_async.Client]:
    async with client_for(sim) as c:
        yield c


@pytest.fixture
def sim_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def held(sim_clock: FakeClock) -> AsyncIterator[Simulator]:
    """A simulator on a fake clock: its jobs run until the test advances ``sim_clock``."""
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3)), clock=sim_clock.now) as simulator:
        yield simulator


async def test_submit_then_await_the_handle(client: ade_async.Client) -> None:
    handle = await client.submit(doc(1), schema=SCHEMA)
    assert handle.status == "pending"
    assert not handle.done()
    result = await handle
    assert handle.done()
    assert isinstance(result, ade_async.ExtractResult)
    assert result.job_id == handle.job_id
    assert result.extraction == {"invoice_number": "INV-1", "total": 1.5}
    assert result.conforms
    assert result.job.status == "completed"
    assert result.metadata.job_id == handle.job_id
    assert handle.status == "completed"
    assert await handle == result  # awaiting again gives the same outcome
    assert repr(handle).endswith("done>")


async def test_extract_is_the_one_liner(client: ade_async.Client) -> None:
    result = await client.extract(doc(2), schema=SCHEMA)
    assert result.extraction["invoice_number"] == "INV-2"


async def test_typed_schemas_and_results(client: ade_async.Client) -> None:
    result = await client.extract(doc(3), schema=Invoice)
    assert result.to(Invoice) == Invoice(invoice_number="INV-3", total=3.5)
    with pytest.raises(ade_async.ResultTypeError) as info:
        result.to(dict[str, int])
    assert info.value.job_id == result.job_id


async def test_pydantic_schema_and_result(client: ade_async.Client) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        invoice_number: str
        total: float

    result = await client.extract(doc(4), schema=Model)
    typed = result.to(Model)
    assert (typed.invoice_number, typed.total) == ("INV-4", 4.5)


async def test_many_jobs_share_one_poller(sim: Simulator, client: ade_async.Client) -> None:
    jobs = 150
    handles = [
        await client.submit(doc(i, f"<!-- ade-sim: latency {0.3 + i % 7 * 0.1} -->"), schema=SCHEMA)
        for i in range(jobs)
    ]
    results: list[ade_async.ExtractResult[Any]] = []

    async def collect() -> None:  # one task awaits every handle in turn
        for handle in handles:
            results.append(await handle)

    peak_tasks = 0
    collector = asyncio.create_task(collect())
    while not collector.done():
        # A sample, not a wait: a slower machine samples less often, which can only lower the peak.
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        await anyio.sleep(0.01)
    await collector
    # Never one loop per job: the tasks alive at any moment (the poller, at most 16 polls, the
    # in-process simulator's own connection handlers, pytest's) stay far below the job count.
    assert peak_tasks < jobs // 3
    assert [r.extraction["invoice_number"] for r in results] == [f"INV-{i}" for i in range(jobs)]
    stats = client.stats()
    assert stats.jobs_completed == jobs
    assert stats.jobs_watched == 0
    assert stats.admission.in_flight == 0  # every ended job freed its admission
    assert stats.polls_sent == sim.stats().gets
    assert stats.polls_sent < jobs * 8


async def test_206_failed_cancelled_and_unknown_status(
    client: ade_async.Client, held: Simulator, sim_clock: FakeClock
) -> None:
    schema = {
        "type": "object",
        "properties": {"total": {"type": "number"}, "cur": {"type": "string", "enum": ["EUR"]}},
    }
    partial = await client.extract("Total: 5\ncur: USD\n", schema=schema)
    assert not partial.conforms
    assert partial.warnings[0].code == "nonconformant_output"
    assert partial.schema_violation_error
    with pytest.raises(ade_async.JobFailedError) as failed:
        await client.extract(doc(5, "<!-- ade-sim: fail Markdown too long -->"), schema=SCHEMA)
    assert failed.value.failure_reason == "Markdown too long"
    with pytest.raises(ade_async.JobCancelledError):
        await client.extract(doc(6, "<!-- ade-sim: cancel -->"), schema=SCHEMA)
    async with client_for(held) as patient:
        handle = await patient.submit(
            doc(7, "<!-- ade-sim: status queued_for_gpu -->\n<!-- ade-sim: latency 0.6 -->"), schema=SCHEMA
        )
        await sim_clock.advance(0.3)  # past the pending phase, well before the end
        await wait_until(lambda: handle.status == "queued_for_gpu")  # kept as it came ...
        assert not handle.done()  # ... and not taken as the end
        await sim_clock.advance(0.3)
        with anyio.fail_after(CEILING):
            assert (await handle).extraction["invoice_number"] == "INV-7"


async def test_transient_poll_failures_are_ridden_out(sim: Simulator, client: ade_async.Client) -> None:
    handle = await client.submit(doc(8), schema=SCHEMA)
    sim.inject("get", "503", count=2)
    sim.inject("get", "drop", count=2)  # aiohttp retries a dropped idempotent GET once by itself
    sim.inject("get", "429")
    result = await handle
    assert result.extraction["invoice_number"] == "INV-8"
    assert client.stats().poll_failures >= 3


async def test_404_for_a_job_becomes_job_lost_after_confirmation(sim: Simulator) -> None:
    policy = PollPolicy(first_delay=0.02, max_delay=0.1, not_found_confirmations=3)
    async with client_for(sim, poll=policy) as client:
        handle = client.watch("00000000-0000-0000-0000-00000000dead")
        with pytest.raises(ade_async.JobLostError) as info:
            await handle
    assert info.value.job_id.endswith("dead")
    assert sim.stats().count("get", 404) == 3


async def test_download_failure_is_refreshed(sim: Simulator) -> None:
    config = SimulatorConfig(latency=(0.05, 0.1), result_url_threshold=10)
    async with Simulator(config) as big, client_for(big) as client:
        handle = await client.submit(doc(9), schema=SCHEMA)
        big.inject("download", "503")
        result = await handle
        assert result.extraction["invoice_number"] == "INV-9"
        assert result.job.detail.data is None  # it came through output_url
        stats = big.stats()
        assert stats.count("download", 503) == 1
        assert stats.downloads == 1
        assert stats.result_url_auth_headers == 0


async def test_cancelling_one_waiter_leaves_the_others(held: Simulator, sim_clock: FakeClock) -> None:
    async with client_for(held) as client:
        handle = await client.submit(doc(10, "<!-- ade-sim: latency 0.4 -->"), schema=SCHEMA)
        impatient = asyncio.create_task(handle.result())
        patient = asyncio.create_task(handle.result())
        await asyncio.sleep(0)  # both run up to their wait on the handle
        impatient.cancel()
        await sim_clock.advance(0.4)  # only now can the job end
        with anyio.fail_after(CEILING):
            result = await patient
        assert impatient.cancelled()
        assert result.extraction["invoice_number"] == "INV-10"
        # A wait bounded from outside ends the wait, not the watch.
        other = await client.submit(doc(11, "<!-- ade-sim: latency 0.4 -->"), schema=SCHEMA)
        with anyio.move_on_after(0.05) as bounded:
            await other
        assert bounded.cancelled_caught  # the job cannot have ended: its clock stands still
        await sim_clock.advance(0.4)
        with anyio.fail_after(CEILING):
            assert (await other).extraction["invoice_number"] == "INV-11"


async def test_deadline_then_collect_later_with_wait(held: Simulator, sim_clock: FakeClock) -> None:
    async with client_for(held) as client:
        # The job cannot end before the deadline, however slow the machine: its clock stands still.
        handle = await client.submit(doc(12, "<!-- ade-sim: latency 0.8 -->"), schema=SCHEMA, timeout=0.2)
        with pytest.raises(ade_async.JobTimeoutError) as info:
            await handle
        assert info.value.job_id == handle.job_id
        assert info.value.timeout == 0.2
        assert client.stats().jobs_timed_out == 1
        await sim_clock.advance(0.8)  # the job went on server-side ...
        with anyio.fail_after(CEILING):
            result = await client.watch(handle.job_id)  # ... collect it
    assert result.extraction["invoice_number"] == "INV-12"
    assert held.stats().jobs_total == 1  # never resubmitted


async def test_close_with_jobs_pending_answers_every_waiter_and_leaves_nothing(sim: Simulator) -> None:
    tasks_before = set(asyncio.all_tasks())
    outcomes: list[BaseException] = []

    waiting = 0

    async def waiter(handle: ade_async.JobHandle[Any]) -> None:
        nonlocal waiting
        waiting += 1
        try:
            await handle
        except ade_async.ClientClosedError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        async with client_for(sim) as client:
            for i in range(5):
                tg.start_soon(
                    waiter, await client.submit(doc(i, "<!-- ade-sim: latency 3600 -->"), schema=SCHEMA)
                )
            await wait_until(lambda: waiting == 5)  # every waiter is waiting on its handle
        # Answered at once, not when the hour-long jobs end (the ceiling only bounds a hang).
        await wait_until(lambda: len(outcomes) == 5)
    assert len(outcomes) == 5
    assert set(asyncio.all_tasks()) <= tasks_before  # the poller and its polls are gone
    assert repr(client).endswith("closed>")
    assert not client._transport.is_open  # the HTTP session and its sockets are closed
    with pytest.raises(ade_async.ClientClosedError):
        await client.submit(doc(1), schema=SCHEMA)


async def test_bad_schema_fails_before_anything_is_sent(sim: Simulator, client: ade_async.Client) -> None:
    for bad, strict in [
        ({"type": "array"}, False),
        ("{nope", False),
        ("[1]", False),
        (
            {"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}},
            True,
        ),
    ]:
        with pytest.raises(ade_async.SchemaError):
            await client.submit(doc(1), schema=bad, options=LandingAIOptions(strict=strict))  # type: ignore[arg-type]
        with pytest.raises(ade_async.SchemaError):
            [
                o
                async for o in client.extract_many(  # type: ignore[call-overload]
                    [doc(1)], schema=bad, options=LandingAIOptions(strict=strict)
                )
            ]
    assert sim.stats().count("create") == 0


async def test_events_and_stats(client: ade_async.Client) -> None:
    events: list[ade_async.JobEvent] = []
    unsubscribe = client.subscribe(events.append)
    ok = await client.submit(doc(13), schema=SCHEMA)
    bad = await client.submit(doc(14, "<!-- ade-sim: fail nope -->"), schema=SCHEMA)
    await ok
    with pytest.raises(ade_async.JobFailedError):
        await bad
    unsubscribe()
    await client.extract(doc(15), schema=SCHEMA)
    kinds = sorted((e.kind, e.job_id) for e in events)
    assert kinds == sorted(
        [
            ("submitted", ok.job_id),
            ("submitted", bad.job_id),
            ("completed", ok.job_id),
            ("failed", bad.job_id),
        ]
    )
    failed = next(e for e in events if e.kind == "failed")
    assert isinstance(failed.error, ade_async.JobFailedError)
    stats = client.stats()
    assert (stats.jobs_submitted, stats.jobs_completed, stats.jobs_failed) == (3, 2, 1)


async def test_a_broken_listener_breaks_nothing(client: ade_async.Client) -> None:
    def broken(event: ade_async.JobEvent) -> None:
        raise RuntimeError("progress bar bug")

    client.subscribe(broken)
    assert (await client.extract(doc(16), schema=SCHEMA)).extraction["invoice_number"] == "INV-16"


class TestExtractMany:
    async def test_one_outcome_per_input_with_its_stage(self, tmp_path: Path) -> None:
        good = tmp_path / "good.md"
        good.write_text(doc(20))
        wrong_name = tmp_path / "scan.pdf"
        wrong_name.write_text(doc(21))
        inputs: list[Any] = [
            good,
            tmp_path / "missing.md",
            doc(22).encode(),
            doc(23, "<!-- ade-sim: fail unreadable table -->"),
            wrong_name,
            12345,
            doc(24, "<!-- ade-sim: latency 1000000 -->"),
        ]
        # The simulator and the client share one fake clock, so the deadline passes when the test
        # says, never because a loaded machine was slow to collect the quick jobs.
        clock = FakeClock()
        outcomes: list[ade_async.Outcome[Any]] = []
        async with (
            Simulator(SimulatorConfig(latency=(0.05, 0.3)), clock=clock.now) as sim,
            client_for(sim, clock=clock) as client,
        ):

            async def consume() -> None:
                async for outcome in client.extract_many(inputs, schema=SCHEMA, timeout=3600.0):
                    outcomes.append(outcome)

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await drive(clock, client, sim, lambda: len(outcomes) == len(inputs) - 1)  # all but one
                await clock.advance(7200.0)  # past the slow job's deadline, nowhere near its end
                await drive(clock, client, sim, lambda: len(outcomes) == len(inputs))
        assert sorted(o.index for o in outcomes) == list(range(len(inputs)))
        by_index = {o.index: o for o in outcomes}
        first, third = by_index[0], by_index[2]
        assert isinstance(first, ade_async.Succeeded)
        assert isinstance(third, ade_async.Succeeded)
        assert first.result.extraction["invoice_number"] == "INV-20"
        assert third.result.extraction["invoice_number"] == "INV-22"
        stages = {i: (o.stage if not o.ok else "ok") for i, o in by_index.items()}
        assert stages == {0: "ok", 1: "read", 2: "ok", 3: "job", 4: "submit", 5: "read", 6: "timeout"}
        failed = by_index[3]
        assert isinstance(failed, ade_async.Failed)
        assert isinstance(failed.error, ade_async.JobFailedError)
        assert failed.job_id == failed.error.job_id
        missing, refused = by_index[1], by_index[4]
        assert isinstance(missing, ade_async.Failed)
        assert isinstance(refused, ade_async.Failed)
        assert missing.job_id is None
        assert isinstance(refused.error, ade_async.UnprocessableEntityError)
        assert sim.stats().duplicate_jobs == 0

    async def test_inputs_are_read_lazily_within_the_window(self, client: ade_async.Client) -> None:
        pulled = 0

        def inputs() -> Iterator[str]:
            nonlocal pulled
            for i in range(1000):
                pulled += 1
                yield doc(i)

        got = 0
        async with contextlib.aclosing(client.extract_many(inputs(), schema=SCHEMA, window=4)) as outcomes:
            async for outcome in outcomes:
                assert outcome.ok
                got += 1
                if got == 6:
                    break
        assert pulled <= 6 + 4 + 1  # never the whole iterable

    async def test_async_iterable_and_an_iterable_that_fails(self, client: ade_async.Client) -> None:
        async def inputs() -> AsyncIterator[str]:
            for i in range(3):
                yield doc(i)
            raise OSError("the directory went away")

        seen: list[int] = []

        async def consume() -> None:
            async for outcome in client.extract_many(inputs(), schema=SCHEMA):
                seen.append(outcome.index)

        with pytest.raises(OSError, match="went away"):
            await consume()
        assert sorted(seen) == [0, 1, 2]  # what was read still got its outcome

    async def test_closing_the_client_mid_batch_is_an_error_not_an_early_end(self, sim: Simulator) -> None:
        errors: list[BaseException] = []
        seen: list[object] = []

        async def consume(client: ade_async.Client) -> None:
            try:
                async for outcome in client.extract_many(
                    [doc(1, "<!-- ade-sim: latency 30 -->")] * 3, schema=SCHEMA
                ):
                    seen.append(outcome)
            except ade_async.ClientClosedError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg, client_for(sim) as client:
            tg.start_soon(consume, client)
            await wait_until(lambda: client.stats().jobs_watched == 3)  # closed mid-batch, every job out
        # Either each input failed with the closed client, or the iteration said so: never silence.
        assert errors or len(seen) == 3
        for outcome in seen:
            assert not outcome.ok  # type: ignore[attr-defined]

    async def test_a_single_string_is_refused(self, client: ade_async.Client) -> None:
        with pytest.raises(TypeError, match="iterable"):
            [o async for o in client.extract_many(doc(1), schema=SCHEMA)]


async def test_errors_inside_the_block_come_out_unwrapped(sim: Simulator) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with client_for(sim):
            raise KeyError("mine")


async def test_polls_can_be_rate_limited(sim: Simulator) -> None:
    poll = PollPolicy(first_delay=0.01, max_delay=0.02, coalesce=0.0, max_per_second=20, sweep=False)
    async with client_for(sim, poll=poll) as client:
        started = anyio.current_time()
        handles = [
            await client.submit(doc(i, "<!-- ade-sim: latency 0.6 -->"), schema=SCHEMA) for i in range(5)
        ]
        for handle in handles:
            await handle
        elapsed = anyio.current_time() - started
        polls = client.stats().polls_sent
    # At most 20 polls in any second: the polls sent bound the time it took from below.
    assert polls <= 20 * (elapsed + 1)
    assert sim.stats().gets == polls


async def test_a_job_whose_answers_stay_garbled_fails_instead_of_hanging(sim: Simulator) -> None:
    async with client_for(sim) as client:
        handle = await client.submit(doc(30, "<!-- ade-sim: latency 0.1 -->"), schema=SCHEMA)
        sim.inject("get", "malformed", count=3)
        with pytest.raises(ade_async.MalformedResponseError), anyio.fail_after(CEILING):
            await handle


async def test_results_keep_the_exact_json_the_api_sent(client: ade_async.Client) -> None:
    result = await client.extract(doc(31), schema=SCHEMA)
    assert msgspec.json.decode(result.raw) == msgspec.json.decode(msgspec.json.encode(result.detail))


async def test_a_bad_deadline_is_refused_before_any_job_is_created(
    sim: Simulator, client: ade_async.Client
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await client.submit(doc(40), schema=SCHEMA, timeout=0)
    assert sim.stats().count("create") == 0
