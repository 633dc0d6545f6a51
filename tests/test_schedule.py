"""The poll schedule, sans-I/O: backoff, coalescing, deadlines and 404 confirmation on plain numbers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ade_async import PollPolicy
from ade_async._engine.schedule import PollSchedule

EXACT = PollPolicy(first_delay=1.0, multiplier=1.5, max_delay=10.0, jitter=0.0, coalesce=0.25)


def test_backoff_grows_by_the_multiplier_up_to_the_cap() -> None:
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=None)
    polls, now = [], 0.0
    for _ in range(10):
        wake = schedule.next_wake()
        assert wake is not None
        now = wake
        assert schedule.take_due(now) == ["a"]
        polls.append(round(now, 4))
        schedule.on_running("a", now)
    gaps = [round(b - a, 4) for a, b in zip([0.0, *polls], polls, strict=False)]
    assert gaps == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0, 10.0, 10.0], abs=1e-3)


def test_polls_due_together_are_coalesced() -> None:
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=None)
    schedule.watch("b", 0.2, deadline=None)
    schedule.watch("c", 0.3, deadline=None)
    assert schedule.next_wake() == 1.0
    assert schedule.take_due(1.0) == ["a", "b"]  # b is due at 1.2, within the 0.25 s window
    assert schedule.next_wake() == 1.3
    assert schedule.take_due(1.3) == ["c"]


def test_a_job_is_never_polled_twice_at_once() -> None:
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=None)
    assert schedule.take_due(1.0) == ["a"]
    assert schedule.next_wake() is None  # in flight: nothing due until it is answered
    assert schedule.take_due(100.0) == []
    schedule.on_failure("a", 100.0)
    assert schedule.next_wake() == pytest.approx(101.5)


def test_retry_after_hint_is_honoured_on_failure() -> None:
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=None)
    schedule.take_due(1.0)
    schedule.on_failure("a", 1.0, retry_after=30.0)
    assert schedule.next_wake() == 31.0


def test_deadlines_expire_and_forget() -> None:
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=5.0)
    schedule.watch("b", 0.0, deadline=None)
    for now in (1.0, 2.5, 4.75):
        schedule.take_due(now)
        schedule.on_running("a", now)
        schedule.on_running("b", now)
    assert schedule.next_wake() == 5.0
    assert schedule.take_expired(5.0) == ["a"]
    assert "a" not in schedule
    assert len(schedule) == 1


def test_not_found_is_confirmed_before_giving_up() -> None:
    policy = PollPolicy(first_delay=1.0, jitter=0.0, not_found_confirmations=3)
    schedule = PollSchedule(policy)
    schedule.watch("a", 0.0, deadline=None)
    now = 1.0
    schedule.take_due(now)
    assert not schedule.on_not_found("a", now)
    assert schedule.next_wake() == 2.0  # confirmed quickly, at the first delay
    schedule.take_due(2.0)
    assert not schedule.on_not_found("a", 2.0)
    schedule.take_due(3.0)
    assert schedule.on_not_found("a", 3.0)
    assert "a" not in schedule


def test_a_status_answer_resets_the_404_count() -> None:
    policy = PollPolicy(first_delay=1.0, jitter=0.0, not_found_confirmations=2)
    schedule = PollSchedule(policy)
    schedule.watch("a", 0.0, deadline=None)
    schedule.take_due(1.0)
    assert not schedule.on_not_found("a", 1.0)
    schedule.take_due(2.0)
    schedule.on_running("a", 2.0)  # it showed up after all (read-after-write lag)
    schedule.take_due(10.0)
    assert not schedule.on_not_found("a", 10.0)


def test_jitter_stays_within_bounds() -> None:
    policy = PollPolicy(first_delay=1.0, jitter=0.2)
    schedule = PollSchedule(policy, random.Random(4))
    for i in range(200):
        schedule.watch(str(i), 0.0, deadline=None)
    due = schedule.take_due(10.0)
    assert len(due) == 200
    firsts = []
    fresh = PollSchedule(policy, random.Random(4))
    for i in range(200):
        fresh.watch(str(i), 0.0, deadline=None)
        wake = fresh.next_wake()
        assert wake is not None
    while (wake := fresh.next_wake()) is not None:
        firsts.append(wake)
        fresh.take_due(wake)
        if len(firsts) > 500:
            break
    assert min(firsts) >= 0.8
    assert max(firsts) <= 1.2


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("watch"), st.floats(0.1, 50.0)),
            st.tuples(st.just("advance"), st.floats(0.0, 20.0)),
            st.tuples(st.just("answer"), st.sampled_from(["running", "failure", "404", "terminal"])),
        ),
        max_size=80,
    )
)
def test_every_watched_job_keeps_being_polled_until_it_ends(ops: list[tuple[str, object]]) -> None:
    policy = PollPolicy(first_delay=1.0, max_delay=10.0, jitter=0.2, coalesce=0.25, not_found_confirmations=2)
    schedule = PollSchedule(policy, random.Random(0))
    now, next_id = 0.0, 0
    in_flight: list[str] = []
    deadlines: dict[str, float] = {}
    last_poll: dict[str, float] = {}
    for op, arg in ops:
        if op == "watch":
            job = f"j{next_id}"
            next_id += 1
            assert isinstance(arg, float)
            deadlines[job] = now + arg
            schedule.watch(job, now, deadline=now + arg)
            last_poll[job] = now
        elif op == "advance":
            assert isinstance(arg, float)
            now += arg
        elif op == "answer" and in_flight:
            job = in_flight.pop(0)
            last_poll[job] = now  # the next poll is scheduled from the answer
            if arg == "running":
                schedule.on_running(job, now)
            elif arg == "failure":
                schedule.on_failure(job, now)
            elif arg == "404":
                schedule.on_not_found(job, now)
            else:
                schedule.forget(job)
        for job in schedule.take_expired(now):
            assert deadlines[job] <= now
        for job in schedule.take_due(now):
            assert job not in in_flight, "never two polls of one job at once"
            in_flight.append(job)
            last_poll[job] = now
        wake = schedule.next_wake()
        if wake is not None:
            assert wake > now - 1e-9
        # Nobody watched and idle waits longer than the cap (plus jitter) for its next poll.
        idle = [j for j in last_poll if j in schedule and j not in in_flight]
        if idle:
            assert wake is not None
            assert wake <= min(last_poll[j] for j in idle) + policy.max_delay * 1.2 + 1e-6


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="first_delay"):
        PollPolicy(first_delay=20.0, max_delay=10.0)
    with pytest.raises(ValueError, match="max_concurrent"):
        PollPolicy(max_concurrent=0)
    with pytest.raises(ValueError, match="multiplier"):
        PollPolicy(multiplier=0.5)


def test_restart_brings_a_backed_off_job_back_to_its_first_delay() -> None:
    """Sweeps push a running job's own poll out on every pass; when they stop, the job must not
    wait out a 10 s delay (the end of a batch would crawl)."""
    schedule = PollSchedule(EXACT)
    schedule.watch("a", 0.0, deadline=None)
    for now in range(1, 9):  # eight sweeps saw it running
        schedule.on_running("a", float(now))
    assert schedule.next_wake() == pytest.approx(18.0)  # pushed out to max_delay
    schedule.restart("a", 8.5)
    assert schedule.next_wake() == pytest.approx(9.5)
    assert schedule.take_due(9.5) == ["a"]
    schedule.restart("a", 9.6)  # being polled: left alone
    schedule.on_running("a", 9.7)
    assert schedule.next_wake() == pytest.approx(9.7 + 1.5)  # backoff grows again from the start
