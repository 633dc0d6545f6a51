"""``RateLimit``: the options of the admission gate that paces job creation.

ADE counts extract-job creates per organisation, per hour, "distributed per minute", and publishes
no numbers and no rate-limit headers (ade-api-notes §5). So the gate can do two things, together
or apart:

* obey a **known quota** exactly: any number of sliding windows ``(count, seconds)`` that must all
  hold. A token bucket sized "L per hour" admits up to 2L in a rolling hour; a sliding log never
  admits more than L (ratelimit-research §1), so windows here are sliding logs;
* **adapt** to an unknown one: start slowly, speed up while creates are accepted, back off
  multiplicatively on every 429 (AIMD), never above a ceiling. This is the default when no window
  is given.

Either way a 429 pauses the whole gate, and ``max_in_flight`` caps the jobs submitted and not yet
finished, which also bounds memory in a huge batch.

The quota belongs to the whole organisation, so when several processes or hosts share one API key,
each in-memory gate would hand out the full quota. ``RateLimit(backend=RedisBackend(...))`` moves the
gate's state into Redis (:mod:`ade_async._shared_admission`): the same windows, in-flight cap, 429
pause and adaptive rate, shared by every process that names the same quota.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["RateLimit", "RedisBackend"]

# A quota name goes inside a Redis Cluster hash tag, ``{name}``: braces would end the tag early.
_QUOTA_NAME = re.compile(r"[A-Za-z0-9._:@/+=-]{1,100}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisBackend:
    """Share the admission gate through Redis: one quota for every process and host that uses it.

    Use it when more than one process creates jobs on one API key (several ``ade-async`` runs,
    FastAPI workers, hosts): in-memory gates each hand out the whole quota, so N processes would
    send N times too much. Every process names the same quota and passes the same
    :class:`RateLimit` windows (the organisation's quota, not a share of it); each decision is
    one atomic script run on the Redis server, with the server's clock.

    Args:
        url: a redis-py URL, e.g. ``redis://host:6379/0`` or ``rediss://user:pass@host/0``.
            The password is never logged or shown in a repr.
        quota_name: the name the processes share; default: a hash of the API key (never the key
            itself). Letters, digits and ``._:@/+=-``, at most 100 characters.
        key_prefix: the start of every Redis key. Keys are ``PREFIX:{QUOTA}:log|leases|state``;
            the ``{QUOTA}`` hash tag keeps them in one slot, as Redis Cluster requires.
        lease_ttl: seconds an in-flight lease lives without renewal. A process renews its leases
            while it runs; one that dies frees its share of ``max_in_flight`` after this long.
        heartbeat: seconds between a process's check-ins (lease renewal and noticing that Redis
            lost its data). After a loss, admission holds for three heartbeats while every live
            process puts its recent admissions back.
        connect_timeout: seconds to connect to Redis and to wait for each answer.
        reconnect_max: the longest pause between reconnection attempts while Redis is
            unreachable. Admission waits meanwhile; it never admits without the shared state.
        cap_recheck: while ``max_in_flight`` is full, how often (seconds) to look again: another
            process's release cannot wake this one.
    """

    url: str = "redis://localhost:6379/0"
    quota_name: str | None = None
    key_prefix: str = "ade_async"
    lease_ttl: float = 60.0
    heartbeat: float = 1.0
    connect_timeout: float = 2.0
    reconnect_max: float = 5.0
    cap_recheck: float = 0.25
    _shown_url: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if self.quota_name is not None and not _QUOTA_NAME.fullmatch(self.quota_name):
            raise ValueError(
                f"quota_name {self.quota_name!r} must be 1-100 letters, digits or ._:@/+=- "
                "(no braces: the name is a Redis Cluster hash tag)"
            )
        if not _QUOTA_NAME.fullmatch(self.key_prefix):
            raise ValueError(f"key_prefix {self.key_prefix!r} must be 1-100 letters, digits or ._:@/+=-")
        for name in ("lease_ttl", "heartbeat", "connect_timeout", "reconnect_max", "cap_recheck"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.heartbeat * 3 > self.lease_ttl:
            raise ValueError("lease_ttl must be at least three heartbeats, or live leases would expire")
        object.__setattr__(self, "_shown_url", redact_redis_url(self.url))

    @property
    def shown_url(self) -> str:
        """The URL with any password replaced by ``***``: safe for logs and reprs."""
        return self._shown_url

    def quota_for(self, key_fingerprint: str, *, scope: str | None = None) -> str:
        """The quota name: the one given, else ``key-`` and the API key's fingerprint (16 hex
        digits of its SHA-256; see ``ApiKey.fingerprint``); then ``.`` and ``scope`` when given
        (the engine passes ``<provider>.<budget>``: each provider's budgets are quotas of their
        own, so an upload window never shares a log with creates, nor one vendor with another)."""
        name = self.quota_name if self.quota_name is not None else "key-" + key_fingerprint
        return name if scope is None else f"{name}.{scope}"

    def __repr__(self) -> str:
        name = "" if self.quota_name is None else f", quota_name={self.quota_name!r}"
        return f"RedisBackend(url={self._shown_url!r}{name})"


def redact_redis_url(url: str) -> str:
    """``redis://user:secret@host/0`` becomes ``redis://user:***@host/0``."""
    return re.sub(r"(?<=://)([^/@]*?):([^/@]*)@", r"\1:***@", url)


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """How fast jobs may be created.

    Args:
        windows: quotas as ``(count, seconds)`` pairs; at most ``count`` creates in any rolling
            ``seconds``, for every pair. Empty means no known quota.
        max_in_flight: at most this many jobs submitted and not yet finished; ``None`` for no cap.
        adaptive: discover the allowance from 429s. ``None`` (the default) turns it on exactly
            when no window is given.
        initial_rate: adaptive: creates per second to begin with.
        max_rate: adaptive: the ceiling, in creates per second.
        min_rate: adaptive: the floor, in creates per second.
        increase_interval: adaptive: seconds of 429-free sending, at the current limit, before each
            increase (doubling until the first 429, then ``+ increase_step`` per second of rate).
        increase_step: adaptive: additive increase, in creates per second.
        decrease_factor: adaptive: the rate is multiplied by this on a 429.
        safety_margin: seconds added to every window. The server counts arrivals while the gate
            counts sends; a few milliseconds of network jitter would otherwise turn an exact
            client-side window into an occasional 429.
        penalty_base: first pause, in seconds, after a 429 that carries no ``Retry-After``.
        penalty_cap: longest such pause; pauses grow as ``base * 2**k`` with full jitter, ``k``
            counting consecutive 429s.
        max_retry_after: the longest ``Retry-After`` obeyed for creates (the quota is hourly, so
            up to an hour is plausible); longer values are capped.
        backend: where the gate's state lives: ``None`` (the default) in this process's memory;
            a :class:`RedisBackend` to share one quota between processes and hosts.

    Example::

        RateLimit.per_hour(2000)                            # 34/min and 2000/h, both exact
        RateLimit(windows=((50, 1.0), (600, 20.0)), max_in_flight=200)
        RateLimit()                                         # adaptive
        RateLimit.per_hour(2000, backend=RedisBackend(url="redis://redis:6379/0"))  # shared
    """

    windows: tuple[tuple[int, float], ...] = ()
    max_in_flight: int | None = None
    adaptive: bool | None = None
    initial_rate: float = 10.0
    max_rate: float = 50.0
    min_rate: float = 1.0 / 60.0
    increase_interval: float = 1.0
    increase_step: float = 2.5
    decrease_factor: float = 0.7
    safety_margin: float = 0.05
    penalty_base: float = 5.0
    penalty_cap: float = 120.0
    max_retry_after: float = 3600.0
    backend: RedisBackend | None = None

    def __post_init__(self) -> None:
        windows = tuple((int(count), float(period)) for count, period in self.windows)
        for (count, period), given in zip(windows, self.windows, strict=True):
            if count < 1 or count != given[0]:
                raise ValueError(f"a window's count must be a positive integer, got {given[0]!r}")
            if not (period > 0 and math.isfinite(period)):
                raise ValueError(f"a window's period must be a positive number of seconds, got {given[1]!r}")
        object.__setattr__(self, "windows", windows)  # e.g. (50, 1) becomes (50, 1.0)
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1 or None, got {self.max_in_flight}")
        for name in ("initial_rate", "max_rate", "min_rate", "increase_interval", "increase_step"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not self.min_rate <= self.initial_rate <= self.max_rate:
            raise ValueError("expected min_rate <= initial_rate <= max_rate")
        if not 0 < self.decrease_factor < 1:
            raise ValueError(f"decrease_factor must be between 0 and 1, got {self.decrease_factor}")
        if self.safety_margin < 0:
            raise ValueError("safety_margin must not be negative")
        if not 0 < self.penalty_base <= self.penalty_cap:
            raise ValueError("expected 0 < penalty_base <= penalty_cap")
        if self.max_retry_after <= 0:
            raise ValueError("max_retry_after must be positive")

    @property
    def is_adaptive(self) -> bool:
        """Whether the gate discovers the allowance from 429s."""
        return not self.windows if self.adaptive is None else self.adaptive

    @classmethod
    def per_hour(
        cls,
        limit: int,
        *,
        per_minute: int | None = None,
        max_in_flight: int | None = None,
        backend: RedisBackend | None = None,
    ) -> RateLimit:
        """``limit`` per hour, spread per minute as ADE does: ``ceil(limit / 60)`` per minute too.

        Args:
            limit: creates per rolling hour.
            per_minute: the per-minute share; defaults to ``ceil(limit / 60)``.
            max_in_flight: see the class.
            backend: see the class.
        """
        minute = math.ceil(limit / 60) if per_minute is None else per_minute
        return cls(windows=((minute, 60.0), (limit, 3600.0)), max_in_flight=max_in_flight, backend=backend)

    @classmethod
    def per_minute(
        cls, limit: int, *, max_in_flight: int | None = None, backend: RedisBackend | None = None
    ) -> RateLimit:
        """``limit`` creates per rolling minute."""
        return cls(windows=((limit, 60.0),), max_in_flight=max_in_flight, backend=backend)

    @classmethod
    def per_second(
        cls, limit: int, *, max_in_flight: int | None = None, backend: RedisBackend | None = None
    ) -> RateLimit:
        """``limit`` creates per rolling second."""
        return cls(windows=((limit, 1.0),), max_in_flight=max_in_flight, backend=backend)
