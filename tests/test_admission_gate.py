"""The admission gate's async shell: futures, one timer, cancellation, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

import ade_async
from ade_async import RateLimit
from ade_async._engine.admission import AdmissionGate, Grant
from ade_async.testing import FakeClock

pytestmark = pytest.mark.anyio


async def start_waiters(
    gate: AdmissionGate, n: int, log: list[tuple[int, float]], clock: FakeClock
) -> list[asyncio.Task[Grant]]:
    async def wait(i: int) -> Grant:
        grant = await gate.acquire()
        log.append((i, clock.now()))
        return grant

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(wait(i)))
        await asyncio.sleep(0)  # join in a known order
    return tasks


async def test_fifo_with_one_timer() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((2, 10.0),), safety_margin=0.0), clock=clock)
    log: list[tuple[int, float]] = []
    tasks = await start_waiters(gate, 5, log, clock)
    await clock.advance(0)
    assert log == [(0, 0.0), (1, 0.0)]
    assert clock.next_deadline() == 10.0  # exactly one timer, for the moment room appears
    await clock.advance(10)
    assert log[2:] == [(2, 10.0), (3, 10.0)]
    await clock.advance(10)
    assert log[4:] == [(4, 20.0)]
    await asyncio.gather(*tasks)
    assert clock.next_deadline() is None


async def test_cancelled_waiter_consumes_nothing_and_wakes_the_next() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((1, 5.0),), safety_margin=0.0), clock=clock)
    log: list[tuple[int, float]] = []
    tasks = await start_waiters(gate, 3, log, clock)
    await clock.advance(0)
    tasks[1].cancel()
    await clock.advance(5)
    assert log == [(0, 0.0), (2, 5.0)]  # 1 left; 2 took its place at once
    assert tasks[1].cancelled()
    stats = gate.stats()
    assert (stats.admitted, stats.waiting) == (2, 0)


async def test_cancelled_just_before_admission_is_skipped() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(max_in_flight=1, adaptive=False), clock=clock)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiter.cancel()  # its future is cancelled now; its task has not run its cleanup yet
    gate.release()  # room appears in the same loop turn
    with pytest.raises(asyncio.CancelledError):
        await waiter
    stats = gate.stats()
    assert (stats.admitted, stats.in_flight, stats.waiting) == (1, 0, 0)


async def test_cancelled_just_after_admission_hands_the_slot_back() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(max_in_flight=1, adaptive=False), clock=clock)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # admits the waiter...
    waiter.cancel()  # ...which is cancelled before it could resume
    with pytest.raises(asyncio.CancelledError):
        await waiter
    stats = gate.stats()
    assert (stats.admitted, stats.in_flight, stats.refunded) == (1, 0, 1)


async def test_429_pauses_every_waiter() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((100, 1.0),)), clock=clock)
    grant = await gate.acquire()
    log: list[tuple[int, float]] = []
    tasks = await start_waiters(gate, 0, log, clock)
    assert gate.on_rate_limited(grant, 3.0) == 3.0
    tasks = await start_waiters(gate, 3, log, clock)
    await clock.advance(2.9)
    assert log == []
    assert gate.stats().paused_for == pytest.approx(0.1)
    await clock.advance(0.1)
    assert [i for i, _ in log] == [0, 1, 2]
    await asyncio.gather(*tasks)
    assert gate.stats().rate_limited == 1
    assert gate.stats().refunded == 1


async def test_in_flight_cap_is_freed_by_release() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(max_in_flight=1, adaptive=False), clock=clock)
    await gate.acquire()
    log: list[tuple[int, float]] = []
    tasks = await start_waiters(gate, 1, log, clock)
    await clock.advance(3600)
    assert log == []
    assert clock.next_deadline() is None  # no timer spins while only a release can help
    gate.release()
    await clock.advance(0)
    assert log == [(0, 3600.0)]
    await asyncio.gather(*tasks)


async def test_repr_shows_state() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((2, 60.0),), max_in_flight=5), clock=clock)
    await gate.acquire()
    text = repr(gate)
    assert "1/2 per 60s" in text
    assert "admitted=1" in text
    assert "in_flight=1" in text


async def test_close_fails_every_waiter_promptly() -> None:
    clock = FakeClock()
    gate = AdmissionGate(RateLimit(windows=((1, 60.0),)), clock=clock)
    await gate.acquire()
    waiters = [asyncio.create_task(gate.acquire()) for _ in range(3)]
    await clock.advance(1)
    gate.close(ade_async.ClientClosedError("closed"))
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ade_async.ClientClosedError) for r in results)
    assert clock.next_deadline() is None
    with pytest.raises(ade_async.ClientClosedError):
        await gate.acquire()
