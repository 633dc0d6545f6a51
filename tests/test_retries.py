"""Admission and retries end to end: the client against the simulator's quotas and faults."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from conftest import CEILING, drive, wait_until

import ade_async
from ade_async import RateLimit, RetryPolicy
from ade_async._engine.retry import CreateVerdict, create_verdict, read_retry_delay
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
QUICK_RETRY = RetryPolicy(attempts=4, backoff_base=0.01, backoff_cap=0.05)


def client_for(sim: Simulator, **kwargs: Any) -> ade_async.Client:
    return ade_async.Client(api_key=sim.api_key, base_url=sim.base_url, **kwargs)


async def create_all(client: ade_async.Client, n: int, *, clock: FakeClock, sim: Simulator) -> list[str]:
    """Send ``n`` creates at once, moving ``clock`` (the client's and the simulator's) until done."""
    ids: list[str] = []

    async def one(i: int) -> None:
        ids.append(await client.create_job(f"n: {i}", schema=SCHEMA))

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
        await drive(clock, client, sim, lambda: len(ids) == n)
    return ids


async def test_known_quota_is_never_exceeded() -> None:
    # One fake clock for both sides, moved once the simulator has answered what was sent: a
    # create arrives within a step (10 ms, under the 50 ms safety margin) of its admission,
    # however loaded the machine.
    windows = ((4, 0.3), (6, 1.0))
    clock = FakeClock()
    async with (
        Simulator(SimulatorConfig(latency=(0.01, 0.02), quota=windows), clock=clock.now) as sim,
        client_for(sim, rate_limit=RateLimit(windows=windows), clock=clock) as client,
    ):
        ids = await create_all(client, 12, clock=clock, sim=sim)
        stats = sim.stats()
        assert len(set(ids)) == 12
        assert stats.rate_limited == 0
        assert stats.creates_accepted == 12
        assert sim.max_creates_in_window(0.3) <= 4
        assert sim.max_creates_in_window(1.0) <= 6
        assert client.stats().admission.admitted == 12


@pytest.mark.parametrize("retry_after", ["ms", "seconds", None])
async def test_unknown_quota_is_learned_and_every_create_lands_once(retry_after: str | None) -> None:
    config = SimulatorConfig(latency=(0.01, 0.02), quota=((5, 0.5),), retry_after=retry_after)  # type: ignore[arg-type]
    limit = RateLimit(initial_rate=20.0, max_rate=40.0, penalty_base=0.05, penalty_cap=0.3)
    clock = FakeClock()  # the learning follows the fake schedule, not the machine's speed
    async with (
        Simulator(config, clock=clock.now) as sim,
        client_for(sim, rate_limit=limit, clock=clock) as client,
    ):
        ids = await create_all(client, 20, clock=clock, sim=sim)
        stats = sim.stats()
        client_stats = client.stats()
    assert len(set(ids)) == 20
    assert stats.creates_accepted == 20
    assert stats.duplicate_jobs == 0
    assert stats.rate_limited >= 1  # the allowance was unknown: 429s taught it
    assert client_stats.creates_rate_limited == stats.rate_limited
    assert client_stats.admission.rate_limited == stats.rate_limited
    assert client_stats.create_retries == 0  # quota waits do not use the retry budget
    assert client_stats.admission.adaptive_rate is not None
    assert client_stats.admission.adaptive_rate < 20.0


async def test_5xx_on_create_is_retried_and_creates_one_job() -> None:
    async with (
        Simulator(SimulatorConfig(latency=(0.01, 0.02))) as sim,
        client_for(sim, retry=QUICK_RETRY) as client,
    ):
        sim.inject("create", "503", count=2)
        job_id = await client.create_job("n: 1", schema=SCHEMA)
        assert job_id
        assert sim.stats().jobs_total == 1
        assert client.stats().create_retries == 2
        sim.inject("create", "500", count=4)
        with pytest.raises(ade_async.ServerError):
            await client.create_job("n: 2", schema=SCHEMA)  # the budget is 4 attempts
        assert sim.stats().jobs_total == 1
        assert client.stats().admission.in_flight == 1  # refused creates hold no slot


async def test_create_with_unknown_outcome_is_never_resent() -> None:
    async with (
        Simulator(SimulatorConfig(latency=(0.01, 0.02))) as sim,
        client_for(sim, retry=QUICK_RETRY) as client,
    ):
        for fault in ("lost_response", "drop", "malformed"):
            sim.inject("create", fault)
            with pytest.raises(ade_async.CreateOutcomeUnknownError):
                await client.create_job(f"fault: {fault}", schema=SCHEMA)
        stats = sim.stats()
        assert stats.count("create") == 3  # each sent exactly once
        assert stats.duplicate_jobs == 0
        assert client.stats().creates_unknown == 3
        assert client.stats().admission.in_flight == 0


async def test_refused_connection_is_retried_then_raised() -> None:
    # Bound, so nothing else can take the port during the test, but not listening: refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with ade_async.Client(
            api_key="k", base_url=f"http://127.0.0.1:{port}", retry=QUICK_RETRY
        ) as client:
            with pytest.raises(ade_async.ConnectError):
                await client.create_job("n: 1", schema=SCHEMA)
            stats = client.stats()
    assert stats.creates_sent == 4
    assert stats.create_retries == 3
    assert stats.admission.in_flight == 0
    assert stats.admission.admitted == 0  # every attempt was refunded: nothing reached a server


async def test_reads_ride_out_5xx_429_and_drops() -> None:
    config = SimulatorConfig(latency=(0.01, 0.02), retry_after="ms")
    async with Simulator(config) as sim, client_for(sim, retry=QUICK_RETRY) as client:
        job_id = await client.create_job("n: 1", schema=SCHEMA)
        sim.inject("get", "503")
        sim.inject("get", "429")
        sim.inject("get", "502")
        job = await client.get_job(job_id)
        assert job.job_id == job_id
        assert client.stats().read_retries == 3
        sim.inject("list", "500")
        assert [j.job_id async for j in client.list_jobs()] == [job_id]
        sim.inject("get", "503", count=4)  # exactly the budget
        with pytest.raises(ade_async.ServerError):
            await client.get_job(job_id)
        with pytest.raises(ade_async.NotFoundError):  # 404 is an answer, not a failure: no retry
            await client.get_job("unknown")


async def test_in_flight_cap_waits_for_jobs_to_end() -> None:
    clock = FakeClock()  # the simulator's: the jobs end when the test says
    async with (
        Simulator(SimulatorConfig(latency=(0.05, 0.05)), clock=clock.now) as sim,
        client_for(sim, rate_limit=RateLimit(max_in_flight=2, adaptive=False)) as client,
    ):
        first = await client.create_job("n: 1", schema=SCHEMA)
        await client.create_job("n: 2", schema=SCHEMA)
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(client.create_job, "n: 3", schema=SCHEMA))
            await wait_until(lambda: client.stats().admission.waiting == 1)  # held back: two in flight
            tg.cancel_scope.cancel()
        assert client.stats().admission.waiting == 0
        assert sim.stats().jobs_total == 2
        assert client.stats().admission.in_flight == 2
        await clock.advance(0.05)  # both jobs end; the client has not seen it yet
        assert client.stats().admission.in_flight == 2
        assert (await client.get_job(first)).is_terminal
        assert client.stats().admission.in_flight == 1  # seeing it end freed its slot
        with anyio.fail_after(CEILING):
            await client.create_job("n: 3", schema=SCHEMA)
        assert "in_flight=2" in repr(client)


async def test_closing_the_client_releases_creates_waiting_for_admission() -> None:
    async with Simulator(SimulatorConfig(latency=(0.01, 0.02))) as sim:
        outcome: list[BaseException] = []
        client = client_for(sim, rate_limit=RateLimit(windows=((1, 3600.0),)))

        async def waiting_create() -> None:
            try:
                await client.create_job("n: 2", schema=SCHEMA)
            except ade_async.ClientClosedError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            async with client:
                await client.create_job("n: 1", schema=SCHEMA)
                tg.start_soon(waiting_create)
                await wait_until(lambda: client.stats().admission.waiting == 1)
            # The waiter hears at once that the client closed, not when the window frees in an
            # hour (the ceiling only bounds a hang).
            await wait_until(lambda: bool(outcome))
        assert len(outcome) == 1
        assert sim.stats().jobs_total == 1


@pytest.fixture
def rng() -> Any:
    import random

    return random.Random(3)


def test_read_retry_rules(rng: Any) -> None:
    policy = RetryPolicy(attempts=3, backoff_base=1.0, backoff_cap=4.0, jitter=0.0, max_retry_after=10.0)
    server = ade_async.ServerError("x", status_code=503, body=None, method="GET", path="/p")
    assert read_retry_delay(policy, server, attempt=1, elapsed=0, rng=rng) == 1.0
    assert read_retry_delay(policy, server, attempt=2, elapsed=0, rng=rng) == 2.0
    assert read_retry_delay(policy, server, attempt=3, elapsed=0, rng=rng) is None
    limited = ade_async.RateLimitError(
        "x", status_code=429, body=None, method="GET", path="/p", retry_after=30.0
    )
    assert read_retry_delay(policy, limited, attempt=1, elapsed=0, rng=rng) == 10.0  # capped hint
    lost = ade_async.ConnectionLostError("x", method="GET", path="/p")
    assert read_retry_delay(policy, lost, attempt=1, elapsed=0, rng=rng) == 1.0
    assert read_retry_delay(policy, lost, attempt=1, elapsed=119.5, rng=rng) is None  # total_time
    missing = ade_async.NotFoundError("x", status_code=404, body=None, method="GET", path="/p")
    assert read_retry_delay(policy, missing, attempt=1, elapsed=0, rng=rng) is None


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (
            ade_async.RateLimitError("x", status_code=429, body=None, method="POST", path="/"),
            CreateVerdict.RATE_LIMITED,
        ),
        (
            ade_async.ServerError("x", status_code=500, body=None, method="POST", path="/"),
            CreateVerdict.NOT_ACCEPTED,
        ),
        (
            ade_async.ServerError("x", status_code=503, body=None, method="POST", path="/"),
            CreateVerdict.NOT_ACCEPTED,
        ),
        # A gateway's 502/504 may hide a create the application accepted: looked for, not retried.
        (
            ade_async.ServerError("x", status_code=502, body=None, method="POST", path="/"),
            CreateVerdict.UNKNOWN,
        ),
        (
            ade_async.ServerError("x", status_code=504, body=None, method="POST", path="/"),
            CreateVerdict.UNKNOWN,
        ),
        (
            ade_async.APIStatusError("x", status_code=408, body=None, method="POST", path="/"),
            CreateVerdict.NOT_ACCEPTED,
        ),
        (ade_async.ConnectError("x", method="POST", path="/"), CreateVerdict.NOT_ACCEPTED),
        (ade_async.ConnectTimeoutError("x", method="POST", path="/"), CreateVerdict.NOT_ACCEPTED),
        (ade_async.ReadTimeoutError("x", method="POST", path="/"), CreateVerdict.UNKNOWN),
        (ade_async.ConnectionLostError("x", method="POST", path="/"), CreateVerdict.UNKNOWN),
        (
            ade_async.MalformedResponseError("x", method="POST", path="/", status_code=202),
            CreateVerdict.UNKNOWN,
        ),
        (
            ade_async.UnprocessableEntityError("x", status_code=422, body=None, method="POST", path="/"),
            CreateVerdict.FINAL,
        ),
        (
            ade_async.PaymentRequiredError("x", status_code=402, body=None, method="POST", path="/"),
            CreateVerdict.FINAL,
        ),
    ],
)
def test_create_verdicts(error: ade_async.ADEError, verdict: CreateVerdict) -> None:
    assert create_verdict(error) is verdict


def test_retry_policy_validation() -> None:
    assert RetryPolicy.none().attempts == 1
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2.0)


_: AsyncIterator[None] | None = None  # keep the import used for type checkers of fixtures above
