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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateLimit"]


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

    Example::

        RateLimit.per_hour(2000)                            # 34/min and 2000/h, both exact
        RateLimit(windows=((50, 1.0), (600, 20.0)), max_in_flight=200)
        RateLimit()                                         # adaptive
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
        cls, limit: int, *, per_minute: int | None = None, max_in_flight: int | None = None
    ) -> RateLimit:
        """``limit`` per hour, spread per minute as ADE does: ``ceil(limit / 60)`` per minute too.

        Args:
            limit: creates per rolling hour.
            per_minute: the per-minute share; defaults to ``ceil(limit / 60)``.
            max_in_flight: see the class.
        """
        minute = math.ceil(limit / 60) if per_minute is None else per_minute
        return cls(windows=((minute, 60.0), (limit, 3600.0)), max_in_flight=max_in_flight)

    @classmethod
    def per_minute(cls, limit: int, *, max_in_flight: int | None = None) -> RateLimit:
        """``limit`` creates per rolling minute."""
        return cls(windows=((limit, 60.0),), max_in_flight=max_in_flight)

    @classmethod
    def per_second(cls, limit: int, *, max_in_flight: int | None = None) -> RateLimit:
        """``limit`` creates per rolling second."""
        return cls(windows=((limit, 1.0),), max_in_flight=max_in_flight)
