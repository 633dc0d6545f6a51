"""The admission core, sans-I/O: property tests over random arrivals, cancellations and time.

No event loop and no sleeping: time is a number the test moves.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ade_async import RateLimit
from ade_async._engine.admission import AdmissionCore, Grant


def max_in_any_window(times: list[float], period: float) -> int:
    """The most of ``times`` falling in any half-open interval [t, t + period)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - period:  # the same test the gate applies
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class Model:
    """Drives an AdmissionCore and keeps the ground truth to check it against."""

    core: AdmissionCore
    now: float = 0.0
    next_id: int = 0
    joined: list[int] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)
    granted: dict[int, Grant] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    live: list[Grant] = field(default_factory=list)  # admitted, not yet released or refunded
    counted: list[float] = field(default_factory=list)  # admission times the server would count
    wake_at: float | None = None

    def poll(self) -> None:
        grants, wake_at = self.core.poll(self.now)
        for grant in grants:
            self.granted[grant.waiter] = grant
            self.order.append(grant.waiter)
            self.live.append(grant)
            self.counted.append(grant.admitted_at)
        if wake_at is not None:
            assert wake_at > self.now, "a wake-up in the past would spin"
        self.wake_at = wake_at
        cap = self.core.options.max_in_flight
        if cap is not None:
            assert len(self.live) <= cap

    def arrive(self) -> None:
        self.core.join(self.next_id)
        self.joined.append(self.next_id)
        self.next_id += 1

    def cancel(self, pick: int) -> None:
        queued = [w for w in self.joined if w not in self.granted and w not in self.cancelled]
        if queued:
            waiter = queued[pick % len(queued)]
            self.core.leave(waiter)
            self.cancelled.add(waiter)

    def release(self, pick: int) -> None:
        if self.live:
            self.live.pop(pick % len(self.live))
            self.core.release()

    def rate_limited(self, pick: int, retry_after: float | None) -> None:
        if self.live:
            grant = self.live.pop(pick % len(self.live))
            self.counted.remove(grant.admitted_at)  # the server did not count a rejected create
            self.core.on_rate_limited(self.now, retry_after=retry_after, sent_at=grant.admitted_at)
            self.core.refund(grant)

    def drain(self) -> None:
        """Release everything and follow the wake-ups until no one waits: nobody may starve."""
        for _ in range(100_000):
            while self.live:
                self.release(0)
            self.poll()
            if self.core.waiting == 0:
                return
            if self.wake_at is None:
                assert self.live, "waiters left with nothing to wake them"
                continue  # the in-flight cap is full: the next round's releases make room
            self.now = self.wake_at
        raise AssertionError("the queue never drained")


windows_st = st.lists(
    st.tuples(st.integers(1, 8), st.sampled_from([0.5, 1.0, 2.0, 5.0, 20.0])), min_size=1, max_size=3
)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("arrive"), st.integers(1, 6)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("advance"), st.floats(0.0, 5.0)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("429"), st.integers(0, 50)),
        st.tuples(st.just("429-after"), st.floats(0.0, 3.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    windows=windows_st,
    margin=st.sampled_from([0.0, 0.05]),
    cap=st.one_of(st.none(), st.integers(1, 6)),
    adaptive=st.booleans(),
    ops=ops_st,
)
def test_no_window_exceeded_fifo_and_no_starvation(
    windows: list[tuple[int, float]],
    margin: float,
    cap: int | None,
    adaptive: bool,
    ops: list[tuple[str, float]],
) -> None:
    options = RateLimit(windows=tuple(windows), max_in_flight=cap, safety_margin=margin, adaptive=adaptive)
    model = Model(AdmissionCore(options, now=0.0, rng=random.Random(1)))
    for op, arg in ops:
        if op == "arrive":
            for _ in range(int(arg)):
                model.arrive()
        elif op == "cancel":
            model.cancel(int(arg))
        elif op == "advance":
            model.now += arg
        elif op == "release":
            model.release(int(arg))
        elif op == "429":
            model.rate_limited(int(arg), None)
        elif op == "429-after":
            model.rate_limited(0, arg)
        model.poll()
    model.drain()

    # Exact: no rolling window ever holds more than its count of the admissions the server counted.
    for count, period in options.windows:
        assert max_in_any_window(model.counted, period + margin) <= count
    # No starvation: every waiter that did not give up was admitted...
    assert set(model.granted) == set(model.joined) - model.cancelled
    # ...first in, first out; and one that gave up consumed nothing.
    assert model.order == [w for w in model.joined if w not in model.cancelled]


def test_burst_then_exact_wait() -> None:
    core = AdmissionCore(RateLimit(windows=((3, 10.0),), safety_margin=0.0), now=0.0)
    for waiter in range(5):
        core.join(waiter)
    grants, wake = core.poll(0.0)
    assert [g.waiter for g in grants] == [0, 1, 2]  # the full burst at once: a sliding log allows it
    assert wake == 10.0  # exactly when the first admission ages out
    assert core.poll(9.999)[0] == []
    grants, wake = core.poll(10.0)
    assert [g.waiter for g in grants] == [3, 4]
    assert wake is None


def test_two_windows_both_hold() -> None:
    core = AdmissionCore(RateLimit(windows=((2, 1.0), (3, 10.0)), safety_margin=0.0), now=0.0)
    for waiter in range(4):
        core.join(waiter)
    assert [g.admitted_at for g in core.poll(0.0)[0]] == [0.0, 0.0]
    grants, wake = core.poll(1.0)
    assert [g.admitted_at for g in grants] == [1.0]
    assert wake == 10.0  # the per-second window has room; the 10 s window does not


def test_safety_margin_widens_each_window() -> None:
    core = AdmissionCore(RateLimit(windows=((1, 1.0),), safety_margin=0.05), now=0.0)
    core.join(0)
    core.join(1)
    assert len(core.poll(0.0)[0]) == 1
    assert core.poll(1.0)[0] == []
    assert core.poll(1.05)[0][0].waiter == 1


def test_in_flight_cap_waits_for_a_release() -> None:
    core = AdmissionCore(RateLimit(max_in_flight=2, adaptive=False), now=0.0)
    for waiter in range(3):
        core.join(waiter)
    grants, wake = core.poll(0.0)
    assert len(grants) == 2
    assert wake is None  # only a release can make room: no timer
    assert core.delay(100.0) == math.inf
    core.release()
    assert [g.waiter for g in core.poll(0.0)[0]] == [2]


def test_429_pauses_everyone_and_refunds() -> None:
    core = AdmissionCore(RateLimit(windows=((10, 1.0),), safety_margin=0.0), now=0.0)
    core.join(0)
    (grant,), _ = core.poll(0.0)
    for waiter in (1, 2):
        core.join(waiter)
    pause = core.on_rate_limited(0.1, retry_after=2.0, sent_at=grant.admitted_at)
    core.refund(grant)
    assert pause == 2.0
    assert core.poll(0.5) == ([], 2.1)
    core.join(99, front=True)  # the rejected create is retried first
    grants, _ = core.poll(2.1)
    assert [g.waiter for g in grants] == [99, 1, 2]
    stats = core.stats(2.1)
    assert (stats.admitted, stats.refunded, stats.rate_limited) == (3, 1, 1)


def test_retry_after_is_capped_for_creates() -> None:
    core = AdmissionCore(RateLimit(windows=((1, 1.0),), max_retry_after=3600.0), now=0.0)
    assert core.on_rate_limited(0.0, retry_after=86_400.0, sent_at=0.0) == 3600.0


def test_penalty_without_retry_after_grows_with_full_jitter() -> None:
    options = RateLimit(windows=((1, 1.0),), penalty_base=5.0, penalty_cap=120.0)
    core = AdmissionCore(options, now=0.0, rng=random.Random(7))
    pauses = [core.on_rate_limited(0.0, retry_after=None, sent_at=0.0) for _ in range(8)]
    ceilings = [min(120.0, 5.0 * 2**k) for k in range(8)]
    assert all(0.0 <= p <= c for p, c in zip(pauses, ceilings, strict=True))
    core.on_accepted(500.0)  # a success resets the streak (after every pause above has ended)
    assert core.on_rate_limited(500.0, retry_after=None, sent_at=500.0) <= 5.0


class TestAdaptive:
    def options(self) -> RateLimit:
        return RateLimit(
            initial_rate=4.0, max_rate=64.0, increase_interval=1.0, increase_step=1.0, decrease_factor=0.5
        )

    def test_is_the_default_without_windows(self) -> None:
        assert RateLimit().is_adaptive
        assert not RateLimit.per_second(5).is_adaptive

    def test_paces_at_the_current_rate(self) -> None:
        core = AdmissionCore(self.options(), now=0.0)
        for waiter in range(3):
            core.join(waiter)
        grants, wake = core.poll(0.0)
        assert len(grants) == 1
        assert wake == pytest.approx(0.25)

    def test_slow_start_then_multiplicative_decrease_then_additive_increase(self) -> None:
        core = AdmissionCore(self.options(), now=0.0)
        now, rates = 0.0, []
        for step in range(40):
            core.join(step)
            core.poll(now)
            core.join(1000 + step)  # keep the rate the binding constraint
            core.poll(now)
            core.on_accepted(now)
            rates.append(core.stats(now).adaptive_rate)
            now += 0.3
        assert rates[-1] == 64.0  # doubled up to the ceiling, never above it
        core.on_rate_limited(now, retry_after=0.0, sent_at=now)
        assert core.stats(now).adaptive_rate == 32.0
        core.on_rate_limited(now, retry_after=0.0, sent_at=now - 1)  # sent before the decrease
        assert core.stats(now).adaptive_rate == 32.0  # one decrease per burst
        for waiter in range(2000, 2010):
            core.join(waiter)
        core.poll(now)
        core.poll(now + 1.5)
        core.on_accepted(now + 1.5)
        assert core.stats(now).adaptive_rate == 33.0  # additive after the first 429

    def test_no_increase_while_not_limited(self) -> None:
        core = AdmissionCore(self.options(), now=0.0)
        core.join(0)
        core.poll(0.0)
        core.on_accepted(5.0)  # idle: the rate never held anyone back
        assert core.stats(5.0).adaptive_rate == 4.0


def test_rate_limit_helpers_and_validation() -> None:
    assert RateLimit.per_hour(2000).windows == ((34, 60.0), (2000, 3600.0))
    assert RateLimit.per_hour(100, per_minute=5).windows == ((5, 60.0), (100, 3600.0))
    assert RateLimit(windows=((50, 1),)).windows == ((50, 1.0),)
    with pytest.raises(ValueError, match="count"):
        RateLimit(windows=((0, 1.0),))
    with pytest.raises(ValueError, match="period"):
        RateLimit(windows=((1, -1.0),))
    with pytest.raises(ValueError, match="max_in_flight"):
        RateLimit(max_in_flight=0)


@settings(max_examples=60, deadline=None)
@given(
    creates=st.integers(min_value=5, max_value=40),
    count=st.integers(min_value=1, max_value=6),
    period=st.sampled_from([0.5, 1.0, 3.0]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_late_arrivals_never_fill_a_server_window(creates: int, count: int, period: float, seed: int) -> None:
    """Creates may reach the server long after admission (much longer than the safety margin):
    counted as now while on the wire, then from their answer, they never overfill a window of
    *arrivals*. Lost answers count from when the loss was seen; 429s never count."""
    rng = random.Random(seed)
    core = AdmissionCore(RateLimit(windows=((count, period),), safety_margin=0.0), now=0.0)
    for waiter in range(creates):
        core.join(waiter)
    now = 0.0
    pending: list[tuple[float, str, Grant]] = []  # (answer time, outcome, grant)
    arrivals: list[float] = []
    answered = 0
    while answered < creates:
        grants, wake_at = core.poll(now)
        for grant in grants:
            core.sent(grant)
            arrival = now + rng.uniform(0.0, 3 * period)  # up to three windows late
            answer = arrival + rng.uniform(0.0, period)
            outcome = rng.choices(["accepted", "lost", "429"], weights=[8, 1, 1])[0]
            if outcome != "429":
                arrivals.append(arrival)  # what the server counts
            pending.append((answer, outcome, grant))
        pending.sort(key=lambda item: item[0])
        candidates = [t for t in (wake_at, pending[0][0] if pending else None) if t is not None]
        assert candidates, "nothing to wait for while creates remain"
        now = max(now, min(candidates))
        while pending and pending[0][0] <= now:
            _, outcome, grant = pending.pop(0)
            answered += 1
            if outcome == "accepted":
                core.on_accepted(now, grant)
                core.release()
            elif outcome == "lost":
                core.settle(grant, now)
                core.release()
            else:
                core.refund(grant)
                core.join(grant.waiter + 10_000 * answered, front=True)  # sent again, first
                answered -= 1
    assert max_in_any_window(arrivals, period) <= count


def test_a_create_on_the_wire_counts_until_its_answer() -> None:
    core = AdmissionCore(RateLimit(windows=((1, 1.0),), safety_margin=0.0), now=0.0)
    core.join(1)
    core.join(2)
    (first,), _ = core.poll(0.0)
    core.sent(first)
    grants, wake_at = core.poll(5.0)  # long after the window: still on the wire, still counted
    assert (grants, wake_at) == ([], None)
    assert core.stats(5.0).windows[0].used == 1
    core.on_accepted(5.0, first)  # the answer came at 5.0: counted from there
    core.release()
    grants, wake_at = core.poll(5.5)
    assert (grants, wake_at) == ([], 6.0)
    (second,), _ = core.poll(6.0)
    assert second.waiter == 2


def test_a_burst_of_429s_counts_once() -> None:
    """Creates sent together, before their first 429 paused the gate, draw their 429s together:
    one overshoot, one step of backoff, not a pause escalated to its cap."""
    options = RateLimit(windows=((100, 1.0),), penalty_base=5.0, penalty_cap=120.0)
    core = AdmissionCore(options, now=0.0, rng=random.Random(3))
    for waiter in range(20):
        core.join(waiter)
    burst, _ = core.poll(0.0)
    first = core.on_rate_limited(0.2, retry_after=None, sent_at=burst[0].admitted_at)
    assert 0.0 <= first <= 5.0  # the first step's ceiling
    for grant in burst[1:]:
        remaining = core.on_rate_limited(0.3, retry_after=None, sent_at=grant.admitted_at)
        assert remaining <= 5.0  # redrawn within the first step, never escalated
    later = core.on_rate_limited(10.0, retry_after=None, sent_at=9.0)  # sent after the pause
    assert later <= 10.0  # the second step: 5 * 2
