"""The shared gate's link to Redis: the script, its calls, reconnection and reports.

:class:`RedisLink` is the half of :class:`~ade_async._engine.shared_admission.SharedAdmissionGate`
that talks to Redis: one atomic script per decision (``shared_admission.lua``), the epoch check that
notices a Redis that lost its data (and puts this process's admissions back), reconnection with
backoff, and the bounded queue of reports waiting for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import random
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .ratelimit import RateLimit, RedisBackend

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisLink", "is_backend_error", "monotonic", "redis_keys"]

logger = logging.getLogger("ade_async")

_SCRIPT = importlib.resources.files("ade_async._engine").joinpath("shared_admission.lua").read_text("utf-8")
_US = 1_000_000
#: The most waiters asked for in one decision (keeps each script run short).
_MAX_BATCH = 256
#: The first pause before reconnecting to Redis, in seconds (then doubling).
_RETRY_FIRST = 0.1
#: The most reports kept for Redis while it is unreachable (each is a few dozen bytes).
_MAX_PENDING = 10_000


def redis_keys(prefix: str, quota: str) -> tuple[str, str, str]:
    """The three keys of one quota; ``{quota}`` is a hash tag, so Redis Cluster keeps them together."""
    return (f"{prefix}:{{{quota}}}:log", f"{prefix}:{{{quota}}}:leases", f"{prefix}:{{{quota}}}:state")


class _Reply:
    """The tail every script call answers with: the shared state as Redis sees it now."""

    __slots__ = ("adaptive_rate", "epoch", "hold_left", "leases", "used")

    def __init__(self, tail: Sequence[Any], windows: int) -> None:
        self.epoch = _text(tail[0])
        self.hold_left = int(tail[1]) / _US
        self.leases = int(tail[2])
        self.adaptive_rate = int(tail[3]) / 1000
        self.used = tuple(int(v) for v in tail[4 : 4 + windows])


class _Backoff:
    """Reconnection delays: doubling from 0.1 s up to a cap, each drawn in [d/2, d]."""

    __slots__ = ("_cap", "_failures", "_rng")

    def __init__(self, cap: float, rng: random.Random) -> None:
        self._cap = cap
        self._rng = rng
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, _RETRY_FIRST * 2**self._failures)
        self._failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0


class RedisLink:
    """Talking to Redis for one shared gate (a base of ``SharedAdmissionGate``, which sets every
    attribute below in its constructor)."""

    _options: RateLimit
    _backend: RedisBackend
    _quota: str
    _keys: tuple[str, str, str]
    _redis: Redis | None
    _owns_redis: bool
    _script: AsyncScript | None
    _windows_arg: str
    _adaptive_arg: str
    _pending_us: int
    _state_ttl_ms: int
    _held: OrderedDict[str, None]
    _recent: deque[tuple[str, int]]
    _pending: deque[tuple[str, list[str | int | float]]]
    _wake: asyncio.Event
    _epoch: str | None
    _backoff: _Backoff
    _reply: _Reply | None
    _reply_at: float
    _errors: int
    _error: str | None
    _dropped: int

    async def _call(self, op: str, args: Sequence[str | int | float]) -> list[Any]:
        assert self._script is not None
        known = self._epoch
        argv: list[str | int | float] = [
            op,
            self._windows_arg,
            self._options.max_in_flight or 0,
            round(self._backend.lease_ttl * _US),
            self._state_ttl_ms,
            self._adaptive_arg,
            secrets.token_hex(8),
            # Hold admission after a data loss only if this process saw the state before: a
            # process starting fresh cannot tell a loss from a first start.
            0 if known is None else round(self._backend.heartbeat * 3.5 * _US),
            self._pending_us,
            *args,
        ]
        raw = await self._script(keys=list(self._keys), args=argv)
        head_size = {"admit": 3, "rate_limited": 2}.get(op, 1)
        reply = _Reply(raw[head_size:], len(self._options.windows))
        self._reply, self._reply_at = reply, monotonic()
        if known is None:
            self._epoch = reply.epoch
        elif reply.epoch != known:
            await self._reseed(reply.epoch)
        return list(raw[:head_size])

    async def _reseed(self, epoch: str) -> None:
        """Redis lost the shared state: put back this process's admissions and leases."""
        logger.warning(
            "shared admission: Redis at %s lost the state of quota %r; restoring this process's "
            "%d recent admissions and %d leases",
            self._backend.shown_url,
            self._quota,
            len(self._recent),
            len(self._held),
        )
        args: list[str | int | float] = [len(self._recent)]
        for member, admitted_us in self._recent:
            args += [member, admitted_us]
        args += list(self._held)
        self._epoch = epoch
        await self._call("reseed", args)

    async def _connect(self) -> None:
        if self._redis is None:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            timeout = self._backend.connect_timeout
            # redis-py's own retries are off: the driver retries with its own backoff and stats.
            self._redis = Redis.from_url(
                self._backend.url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        if self._script is None:
            self._script = self._redis.register_script(_SCRIPT)  # re-loaded on NOSCRIPT

    def _on_error(self, exc: Exception) -> float:
        self._errors += 1
        message = f"{type(exc).__name__}: {exc}"
        if self._error is None:
            logger.warning(
                "shared admission: Redis at %s unreachable (%s); creates wait until it is back",
                self._backend.shown_url,
                message,
            )
        self._error = message
        return self._backoff.next_delay()

    def _on_success(self) -> None:
        if self._error is not None:
            logger.warning("shared admission: Redis at %s reachable again", self._backend.shown_url)
            self._error = None
        self._backoff.reset()

    def _report(self, op: str, args: list[str | int | float]) -> None:
        """Queue a report for Redis. Bounded: releases are merged, and past ``_MAX_PENDING`` the
        oldest report is dropped. Every report only makes the shared state less conservative
        (an answer's time, a refund, a freed lease that would expire anyway), so a dropped one
        errs on the safe side."""
        pending = self._pending
        if op == "release" and pending and pending[-1][0] == "release":
            pending[-1][1].extend(args)
        else:
            pending.append((op, args))
            if len(pending) > _MAX_PENDING:
                pending.popleft()
                self._dropped += 1
                if self._dropped == 1 or self._dropped % _MAX_PENDING == 0:
                    logger.warning(
                        "shared admission: Redis at %s has been unreachable for %d reports; dropping "
                        "the oldest (%d so far): the shared state errs on the safe side",
                        self._backend.shown_url,
                        _MAX_PENDING,
                        self._dropped,
                    )
        self._wake.set()

    async def _shutdown(self) -> None:
        """Best effort, bounded: send what is pending, free this process's leases, disconnect."""
        try:
            if self._script is not None and self._error is None:
                held = list(self._held)
                self._held.clear()
                if held:
                    self._pending.append(("release", list(held)))
                while self._pending:
                    op, args = self._pending.popleft()
                    await self._call(op, args)
        except Exception as exc:
            if not is_backend_error(exc):
                raise
            logger.debug("shared admission: could not tidy up in Redis (%s); leases will expire", exc)
        finally:
            if self._owns_redis and self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.aclose()


def is_backend_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover
        return isinstance(exc, OSError)
    return isinstance(exc, RedisError | OSError | asyncio.TimeoutError)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def monotonic() -> float:
    return asyncio.get_running_loop().time()
