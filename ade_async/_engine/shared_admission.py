"""The admission gate shared through Redis: one quota for many processes and hosts.

The decisions live in one Lua script (``shared_admission.lua``) that Redis runs atomically, with
the Redis server's clock: the sliding windows (one sorted set of admissions, counted exactly), the
in-flight cap (a sorted set of leases that expire unless renewed), the 429 pause and the adaptive
rate. Each call answers how many of this process's waiters are admitted now and, if not all, how
long until the next fits, so the process sleeps once instead of polling.

This module is the thin async shell: a FIFO queue of this process's waiters (futures), and one
driver task, owned by the client's task group, that

* sends every pending report (accepted, 429, refund, release) before asking for admissions, so a
  429 pauses the next decision already;
* asks for as many admissions as there are live waiters, in one round trip;
* checks in every ``heartbeat`` seconds: renews its leases, and notices when Redis lost its data
  (the state's epoch changed), then puts its own recent admissions back (``reseed``) while the
  script holds admission for every process;
* when Redis is unreachable, records the error (stats, one warning per outage), retries with
  backoff, and admits nobody meanwhile. It never falls back to admitting without the shared state.

Reports made while Redis is down wait in order (at most 10,000; releases merged, the oldest
dropped past that, which errs on the safe side) and are sent on reconnection. Leases whose release
could not be sent are simply not renewed: they expire after ``lease_ttl``. An unexpected error (a
bug rather than an outage) is logged with its traceback and handled like an outage: it never ends
the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import secrets
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

import anyio

from .admission import AdmissionStats, Grant, WindowUsage
from .futures import settled
from .ratelimit import RateLimit
from .shared_redis import (
    _MAX_BATCH,
    _US,
    RedisLink,
    _Backoff,
    _Reply,
    is_backend_error,
    monotonic,
    redis_keys,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["SharedAdmissionGate", "redis_keys"]

logger = logging.getLogger("ade_async")


class SharedAdmissionGate(RedisLink):
    """An :class:`~ade_async._admission.Admission` whose state lives in Redis.

    Args:
        options: the rate limit; ``options.backend`` must be a :class:`RedisBackend`.
        key_fingerprint: the API key's fingerprint (``ApiKey.fingerprint``), for the default
            quota name.
        rng: jitter source.
        redis_client: an existing ``redis.asyncio.Redis`` client to use (not closed by the gate);
            default: one made from ``backend.url`` and closed with the gate.

    :meth:`run` must run (in the client's task group) for anything to be admitted.
    """

    def __init__(
        self,
        options: RateLimit,
        *,
        key_fingerprint: str,
        scope: str | None = None,
        rng: random.Random | None = None,
        redis_client: Redis | None = None,
    ) -> None:
        backend = options.backend
        if backend is None:
            raise ValueError("SharedAdmissionGate needs RateLimit(backend=RedisBackend(...))")
        self._options = options
        self._backend = backend
        self._rng = rng or random.Random()
        self._quota = backend.quota_for(key_fingerprint, scope=scope)
        self._keys = redis_keys(backend.key_prefix, self._quota)
        if redis_client is None:
            try:
                import redis.asyncio  # noqa: F401  (checked now, so the error comes at once)
            except ImportError as exc:
                raise ImportError(
                    "RateLimit(backend=RedisBackend(...)) needs the redis package: "
                    "pip install 'ade-async[redis]'"
                ) from exc
        self._redis = redis_client
        self._owns_redis = redis_client is None
        self._script: AsyncScript | None = None
        # The configuration every call carries (the script is stateless between calls).
        margin = options.safety_margin
        self._windows_arg = ";".join(
            f"{count},{round((period + margin) * _US)}" for count, period in options.windows
        )
        self._longest = max((period + margin for _, period in options.windows), default=0.0)
        if options.is_adaptive:
            o = options
            self._adaptive_arg = (
                ",".join(
                    repr(v)
                    for v in (
                        o.initial_rate,
                        o.max_rate,
                        o.min_rate,
                        o.increase_interval * _US,
                        o.increase_step,
                    )
                )
                + f",{o.decrease_factor!r}"
            )
        else:
            self._adaptive_arg = ""
        # An unanswered create is scored this far ahead, pushed on at every heartbeat.
        self._pending_us = round(3 * backend.heartbeat * _US)
        self._state_ttl_ms = math.ceil(max(2 * self._longest, 2 * backend.lease_ttl, 600.0) * 1000)
        # This process's waiters, in order, and its own admissions.
        self._queue: deque[tuple[int, asyncio.Future[Grant]]] = deque()
        self._ids = itertools.count()
        self._calls = itertools.count()
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._held: OrderedDict[str, None] = OrderedDict()  # leases, when max_in_flight is set
        self._recent: deque[tuple[str, int]] = deque()  # (member, admitted_us) for a reseed
        # member -> (admitted_us on the Redis clock, local monotonic time then), until answered
        self._granted_at: dict[str, tuple[int, float]] = {}
        # Creates admitted and not yet answered: heartbeats keep them counting as now.
        self._unanswered: set[str] = set()
        self._pending: deque[tuple[str, list[str | int | float]]] = deque()  # reports to send
        self._wake = asyncio.Event()
        self._closed: BaseException | None = None
        self._epoch: str | None = None
        self._next_heartbeat = 0.0
        self._next_renewal = 0.0
        self._backoff = _Backoff(backend.reconnect_max, self._rng)
        # What stats() shows.
        self._admitted = 0
        self._refunded = 0
        self._rate_limited = 0
        self._in_flight = 0
        self._reply: _Reply | None = None
        self._reply_at = 0.0
        self._errors = 0
        self._error: str | None = None
        self._dropped = 0

    @property
    def options(self) -> RateLimit:
        return self._options

    @property
    def quota_name(self) -> str:
        """The quota this gate shares (the keys' hash tag)."""
        return self._quota

    # --- what the client calls ---------------------------------------------------------------------

    async def acquire(self, *, front: bool = False) -> Grant:
        """Wait for the right to send one create; FIFO among this process's waiters."""
        if self._closed is not None:
            raise self._closed
        waiter = next(self._ids)
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        if front:
            self._queue.appendleft((waiter, future))
        else:
            self._queue.append((waiter, future))
        self._wake.set()
        try:
            return await settled(future)
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.refund(future.result())  # admitted in the instant it was cancelled
            with contextlib.suppress(ValueError):
                self._queue.remove((waiter, future))
            raise

    def release(self) -> None:
        if self._in_flight <= 0:
            raise RuntimeError("release() without a matching admission")
        self._in_flight -= 1
        if self._held:
            member, _ = self._held.popitem(last=False)
            self._report("release", [member])

    def refund(self, grant: Grant) -> None:
        self._forget(grant)
        self._admitted -= 1
        self._refunded += 1
        if grant.member is not None:
            self._report("refund", [grant.member])

    def sent(self, grant: Grant) -> None:
        """Nothing to do: a shared admission counts as now from the start until answered."""

    def on_accepted(self, grant: Grant) -> None:
        """Report a 202: the create counts from its answer, on the Redis clock."""
        member = grant.member
        score = self._settle(grant)
        self._report("accepted", [] if member is None or score is None else [member, score])

    def on_unanswered(self, grant: Grant) -> None:
        """The create's answer was lost: it counts from now; its in-flight slot (and lease) stays
        taken until :meth:`release` (a job may exist)."""
        member = grant.member
        score = self._settle(grant)
        if member is not None and score is not None:
            self._report("settle", [member, score])

    def _settle(self, grant: Grant) -> int | None:
        """Stop counting ``grant`` as now; the Redis-clock time it counts from (``None``: unknown)."""
        member = grant.member
        if member is None:
            return None
        self._unanswered.discard(member)
        granted = self._granted_at.pop(member, None)
        if granted is None:
            return None
        admitted_us, granted_local = granted
        score = admitted_us + round((monotonic() - granted_local) * _US)
        for i in range(len(self._recent) - 1, -1, -1):
            if self._recent[i][0] == member:
                self._recent[i] = (member, score)
                break
        return score

    def on_rate_limited(self, grant: Grant, retry_after: float | None) -> float:
        """Report a 429: refunds the create and pauses every process sharing the quota.

        Returns the pause when the server named it (``Retry-After``); otherwise 0.0, because the
        jittered pause is decided in Redis from the 429s of every process (see ``stats()``).
        """
        o = self._options
        self._forget(grant)
        self._admitted -= 1
        self._rate_limited += 1
        self._refunded += 1
        hint = -1 if retry_after is None else round(max(retry_after, 0.0) * _US)
        self._report(
            "rate_limited",
            [
                grant.member or "",
                hint,
                repr(self._rng.random()),
                round(o.penalty_base * _US),
                round(o.penalty_cap * _US),
                round(o.max_retry_after * _US),
                round(grant.admitted_at * _US),
            ],
        )
        return 0.0 if retry_after is None else min(max(retry_after, 0.0), o.max_retry_after)

    def close(self, error: BaseException) -> None:
        self._closed = error
        queue, self._queue = self._queue, deque()
        for _, future in queue:
            if not future.done():
                future.set_exception(error)
        self._wake.set()

    def stats(self) -> AdmissionStats:
        reply = self._reply
        elapsed = monotonic() - self._reply_at
        return AdmissionStats(
            admitted=self._admitted,
            waiting=sum(1 for _, f in self._queue if not f.done()),
            in_flight=self._in_flight,
            rate_limited=self._rate_limited,
            refunded=self._refunded,
            paused_for=0.0 if reply is None else max(0.0, reply.hold_left - elapsed),
            windows=tuple(
                WindowUsage(count, period, 0 if reply is None else reply.used[i])
                for i, (count, period) in enumerate(self._options.windows)
            ),
            adaptive_rate=(reply.adaptive_rate if reply is not None else self._options.initial_rate)
            if self._options.is_adaptive
            else None,
            backend="redis",
            shared_in_flight=None if reply is None else reply.leases,
            backend_available=self._error is None,
            backend_errors=self._errors,
            backend_error=self._error,
            pending_reports=len(self._pending),
            reports_dropped=self._dropped,
        )

    def __repr__(self) -> str:
        s = self.stats()
        state = "available" if s.backend_available else f"unreachable ({s.backend_error})"
        return (
            f"<SharedAdmissionGate quota={self._quota!r} at {self._backend.shown_url} ({state}); "
            f"admitted={s.admitted} waiting={s.waiting} in_flight={s.in_flight} 429s={s.rate_limited}>"
        )

    # --- the driver --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive the gate until it is closed (or cancelled). Owned by the client's task group."""
        try:
            while self._closed is None:
                self._wake.clear()
                try:
                    timeout = await self._step()
                except Exception as exc:  # redis-py's errors, OSError: all mean "not now"
                    if not is_backend_error(exc) and self._error is None:
                        # A bug, not an outage: say so with its traceback, and keep the client
                        # alive (admission waits, as during an outage, and the stats show why).
                        logger.exception("shared admission: unexpected error talking to Redis")
                    timeout = self._on_error(exc)
                else:
                    self._on_success()
                with anyio.move_on_after(timeout):
                    await self._wake.wait()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._backend.connect_timeout):
                await self._shutdown()

    async def _step(self) -> float:
        """One round: reports, check-in, admissions. Returns how long to sleep (unless woken)."""
        await self._connect()
        while self._pending:
            op, args = self._pending[0]
            await self._call(op, args)
            self._pending.popleft()
        now = monotonic()
        if now >= self._next_heartbeat:
            leases: list[str] = []
            if now >= self._next_renewal:
                leases = list(self._held)
                self._next_renewal = now + self._backend.lease_ttl / 4
            await self._call("heartbeat", [len(leases), *leases, *self._unanswered])
            self._next_heartbeat = now + self._backend.heartbeat
        sleep = max(0.0, self._next_heartbeat - monotonic())
        live = [(w, f) for w, f in self._queue if not f.done()]
        if len(live) != len(self._queue):
            self._queue = deque(live)
        if not live:
            return sleep
        wanted = min(len(live), _MAX_BATCH)
        prefix = f"{self._token}:{next(self._calls)}"
        head = await self._call("admit", [wanted, prefix, round(self._backend.cap_recheck * _US)])
        admitted, wait_us, now_us = int(head[0]), int(head[1]), int(head[2])
        for i in range(1, admitted + 1):
            self._grant(f"{prefix}:{i}", now_us)
        if admitted == wanted and len(self._queue) > 0:
            return 0.0  # more may fit now: ask again at once
        # Sleep exactly until the next admission fits, plus a few milliseconds of jitter so that
        # processes waiting for the same moment do not all ask in the same instant.
        wait = max(wait_us / _US, 0.001) + self._rng.uniform(0.0, 0.003)
        return min(wait, sleep) if self._queue else sleep

    def _grant(self, member: str, now_us: int) -> None:
        local = monotonic()
        # Creates whose answer never came (lost, cancelled on the wire) are never reported:
        # forget them once no window could care.
        while self._granted_at:
            oldest = next(iter(self._granted_at))
            if local - self._granted_at[oldest][1] <= self._longest + 600:
                break
            del self._granted_at[oldest]
        self._granted_at[member] = (now_us, local)
        self._unanswered.add(member)
        self._admitted += 1
        self._in_flight += 1
        if self._options.max_in_flight is not None:
            self._held[member] = None
        if self._longest > 0:
            self._recent.append((member, now_us))
            horizon = now_us - self._longest * _US
            while self._recent and self._recent[0][1] <= horizon:
                self._recent.popleft()
        grant = Grant(waiter=-1, admitted_at=now_us / _US, member=member)
        while self._queue:
            waiter, future = self._queue.popleft()
            if not future.done():
                future.set_result(Grant(waiter=waiter, admitted_at=grant.admitted_at, member=member))
                return
        # Every waiter left during the round trip: nobody will send this create.
        self.refund(grant)

    def _forget(self, grant: Grant) -> None:
        """Drop the in-flight count and lease of a create that will not be followed."""
        if self._in_flight <= 0:
            raise RuntimeError("refund() without a matching admission")
        self._in_flight -= 1
        if grant.member is not None and grant.member in self._held:
            del self._held[grant.member]
        elif self._held:  # this lease was released for another job: free that job's instead
            member, _ = self._held.popitem(last=False)
            self._report("release", [member])
        if grant.member is not None:
            self._granted_at.pop(grant.member, None)
            self._unanswered.discard(grant.member)
        # It never counted: a reseed must not put it back. Refunds come soon after admission,
        # so look from the newest end.
        for i in range(len(self._recent) - 1, -1, -1):
            if self._recent[i][0] == grant.member:
                del self._recent[i]
                break
