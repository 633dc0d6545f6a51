"""Sweep polling: the active lists stand in for one GET per job while many jobs are watched.

The client and the simulator share one fake clock, moved a step at a time once every request the
last step set off has been answered: how many polls and sweeps a run takes then follows from the
poll policy and the jobs' latencies alone, never from how fast the machine is.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from conftest import drive, wait_until

import ade_async
from ade_async import PollPolicy, RateLimit
from ade_async.testing import FakeClock, Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}


def policy(**kwargs: Any) -> PollPolicy:
    base: dict[str, Any] = {
        "first_delay": 0.05,
        "max_delay": 0.3,
        "coalesce": 0.02,
        "sweep_threshold": 10,
        "sweep_interval": 0.1,
        "sweep_min_age": 0.0,
    }
    return PollPolicy(**{**base, **kwargs})


async def run(
    sim: Simulator, clock: FakeClock, poll: PollPolicy, docs: list[str]
) -> tuple[list[ade_async.Outcome[Any]], ade_async.ClientStats]:
    """Push ``docs`` through ``extract_many`` on ``clock`` (the simulator's too), 10 ms at a time."""
    client = ade_async.Client(
        api_key=sim.api_key,
        base_url=sim.base_url,
        poll=poll,
        rate_limit=RateLimit(adaptive=False),
        clock=clock,
        seed=1,  # the same poll jitter on every run
    )
    outcomes: list[ade_async.Outcome[Any]] = []
    async with client:

        async def consume() -> None:
            async for outcome in client.extract_many(docs, schema=SCHEMA):
                outcomes.append(outcome)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            # Every job is created before time starts to move, however long the creates take.
            await wait_until(lambda: client.stats().jobs_submitted == len(docs))
            await drive(clock, client, sim, lambda: len(outcomes) == len(docs))
        return outcomes, client.stats()


def docs(n: int, extra: str = "") -> list[str]:
    return [f"n: {i}\n<!-- ade-sim: latency {0.4 + (i % 5) * 0.15} -->\n{extra}" for i in range(n)]


async def test_sweeps_replace_most_gets_and_lose_nothing() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(), clock=clock.now) as per_job_sim:
        per_job, _ = await run(per_job_sim, clock, policy(sweep=False), docs(40))
        per_job_gets = per_job_sim.stats().gets
    clock = FakeClock()
    async with Simulator(SimulatorConfig(), clock=clock.now) as sweep_sim:
        swept, stats = await run(sweep_sim, clock, policy(), docs(40))
        sim_stats = sweep_sim.stats()
    assert all(o.ok for o in per_job + swept)
    assert sorted(o.result.extraction["n"] for o in swept if isinstance(o, ade_async.Succeeded)) == list(
        range(40)
    )
    assert stats.sweep_requests == sim_stats.lists > 0
    assert sim_stats.gets < per_job_gets  # the point of sweeping
    assert sim_stats.gets <= 40 * 1.5  # about one confirming GET per job
    assert sim_stats.duplicate_jobs == 0


async def test_jobs_with_unknown_statuses_fall_back_to_their_own_polls() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(), clock=clock.now) as sim:
        outcomes, _ = await run(sim, clock, policy(), docs(15, "<!-- ade-sim: status queued_for_gpu -->"))
    assert all(o.ok for o in outcomes)
    assert len(outcomes) == 15


async def test_list_lag_costs_gets_not_correctness() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(list_lag=0.3), clock=clock.now) as sim:
        outcomes, _ = await run(sim, clock, policy(), docs(25))
    assert all(o.ok for o in outcomes)


async def test_too_many_active_jobs_on_the_key_make_sweeps_inconclusive() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(latency=(60.0, 60.0)), clock=clock.now) as sim:
        async with ade_async.Client(
            api_key=sim.api_key, base_url=sim.base_url, rate_limit=RateLimit(adaptive=False)
        ) as other:
            for i in range(120):  # another process's long jobs fill the active list
                await other.create_job(f"n: {i}", schema=SCHEMA)
        outcomes, stats = await run(sim, clock, policy(sweep_max_pages=1), docs(12))
    assert all(o.ok for o in outcomes)
    assert stats.sweep_requests > 0
    assert stats.polls_sent >= 12  # per-job polling carried the load


async def test_failed_sweeps_are_ridden_out() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(), clock=clock.now) as sim:
        sim.inject("list", "503", count=5)
        outcomes, stats = await run(sim, clock, policy(), docs(15))
    assert all(o.ok for o in outcomes)
    assert stats.sweep_requests >= 5


async def test_below_the_threshold_no_sweep_happens() -> None:
    clock = FakeClock()
    async with Simulator(SimulatorConfig(), clock=clock.now) as sim:
        outcomes, stats = await run(sim, clock, policy(sweep_threshold=50), docs(5))
    assert all(o.ok for o in outcomes)
    assert stats.sweep_requests == 0
