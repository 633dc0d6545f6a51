"""Quotas per named budget: sliding windows and active-job caps. Sans-I/O, no vendor.

A vendor draws each kind of call on a *budget* it names: LandingAI's creates on ``"create"``,
LlamaCloud's uploads on ``"upload"`` (50 per 5 s per project) and its creates on ``"create"``,
Contextual's creates on a budget capped at 5 active jobs. Each budget has its own
:class:`BudgetLimits`, so a 429 on one never touches another. Within a budget an optional *scope*
(a project, an API key) keeps separate counts; ``""`` is one scope shared by every caller, as an
organisation-wide quota is.

The check and the draw are two calls with nothing awaited in between, so a refused call never
counts and an accepted one always does::

    refusal = engine.budgets.check("upload", now, scope=project)
    if refusal is not None:
        return routes.too_many("upload", refusal.wait)       # the vendor's 429 body
    engine.budgets.take("upload", now, scope=project)

    refusal = engine.budgets.check("create", now)           # may be an active-job cap
    ...
    engine.budgets.take("create", now, job=lifecycle)       # holds a slot until the job ends

A window ``(count, period)`` holds the draws made in ``(now - period, now]``; the wait it announces
is until its oldest blocking draw leaves it. An active-job cap counts jobs drawn on the budget
whose lifecycle has not ended: a slot is freed when the job ends (or is cancelled), never before.
Every draw is kept, for :meth:`Budgets.max_in_window` (did the client ever exceed a window?) and
:meth:`Budgets.max_active` (the most jobs it kept in flight).
"""

from __future__ import annotations

import email.utils
import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from ._lifecycle import ActiveJobs, Lifecycle

__all__ = [
    "RETRY_AFTER_FORMS",
    "BudgetLimits",
    "Budgets",
    "Refusal",
    "RetryAfterForm",
    "retry_after_headers",
]

#: How a 429 says when to come back: no header, ``Retry-After`` in integer seconds,
#: ``retry-after-ms``, or ``Retry-After`` as an HTTP-date.
RetryAfterForm: TypeAlias = Literal["seconds", "ms", "date"] | None
RETRY_AFTER_FORMS: Final[tuple[RetryAfterForm, ...]] = (None, "seconds", "ms", "date")


def retry_after_headers(form: RetryAfterForm, wait: float, wall: float) -> dict[str, str]:
    """The headers announcing ``wait`` seconds in ``form``; ``wall`` is ``time.time()`` now.

    Whole seconds and HTTP-dates are rounded up, so a client that honours them is never early.
    """
    if form == "seconds":
        return {"Retry-After": str(max(1, math.ceil(wait)))}
    if form == "ms":
        return {"retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
    if form == "date":
        return {"Retry-After": email.utils.formatdate(math.ceil(wall + wait), usegmt=True)}
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetLimits:
    """The limits of one budget; the defaults limit nothing (draws are still counted).

    Args:
        windows: ``(count, period_seconds)`` sliding windows, all enforced.
        max_active: the most jobs drawn on this budget that may be active at once, or ``None``.

    Raises:
        ValueError: a count or cap below 1, or a period that is not a finite number > 0.
    """

    windows: tuple[tuple[int, float], ...] = ()
    max_active: int | None = None

    def __post_init__(self) -> None:
        for count, period in self.windows:
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"a window's count must be an integer >= 1, got {count!r}")
            if not (isinstance(period, int | float) and math.isfinite(period) and period > 0):
                raise ValueError(f"a window's period must be a finite number of seconds > 0, got {period!r}")
        cap = self.max_active
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"max_active must be an integer >= 1 or None, got {cap!r}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a draw on a budget is refused now.

    Attributes:
        budget: the budget's name.
        reason: ``"window"`` (a sliding window is full) or ``"active"`` (the active-job cap).
        limit: the full window's count, or the cap.
        wait: seconds until a draw could fit: until the blocking draw leaves its window, or until
            the earliest active job ends. A vendor that sends no hint ignores it.
    """

    budget: str
    reason: Literal["window", "active"]
    limit: int
    wait: float


@dataclass(slots=True)
class _Scope:
    windows: tuple[tuple[int, float, deque[float]], ...]
    active: ActiveJobs = field(default_factory=ActiveJobs)
    history: array[float] = field(default_factory=lambda: array("d"))


class Budgets:
    """Every budget of one simulated service: limits, draws and refusals.

    Budgets not named in ``limits`` are unlimited but counted, so a vendor can draw on any name
    and read its history.

    Args:
        limits: budget name -> its limits.
    """

    def __init__(self, limits: Mapping[str, BudgetLimits] | None = None) -> None:
        self._limits: dict[str, BudgetLimits] = dict(limits or {})
        self._scopes: dict[tuple[str, str], _Scope] = {}
        #: ``(budget, reason)`` -> draws refused.
        self.refused: Counter[tuple[str, str]] = Counter()

    def limits(self, budget: str) -> BudgetLimits:
        """The limits of ``budget`` (unlimited when it was not configured)."""
        return self._limits.get(budget, _UNLIMITED)

    def _scope(self, budget: str, scope: str) -> _Scope:
        state = self._scopes.get((budget, scope))
        if state is None:
            windows = tuple((count, period, deque[float]()) for count, period in self.limits(budget).windows)
            state = self._scopes[(budget, scope)] = _Scope(windows)
        return state

    def wait(self, budget: str, now: float, *, scope: str = "") -> float | None:
        """Seconds until a draw at ``now`` fits every window of ``budget``, or ``None`` if it fits now.

        Only the windows: see :meth:`check` for the active-job cap as well.
        """
        wait: float | None = None
        for count, period, log in self._scope(budget, scope).windows:
            cutoff = now - period
            while log and log[0] <= cutoff:
                log.popleft()
            if len(log) >= count:
                blocked = log[len(log) - count] + period - now
                wait = blocked if wait is None else max(wait, blocked)
        return wait

    def check(self, budget: str, now: float, *, scope: str = "") -> Refusal | None:
        """Why a draw on ``budget`` at ``now`` would be refused, or ``None`` when it fits.

        Counts a refusal in :attr:`refused`; records nothing else (the caller answers 429).
        """
        refusal: Refusal | None = None
        state = self._scope(budget, scope)
        wait = self.wait(budget, now, scope=scope)
        if wait is not None:
            full = next(count for count, period, log in state.windows if len(log) >= count)
            refusal = Refusal(budget, "window", full, wait)
        else:
            cap = self.limits(budget).max_active
            if cap is not None and state.active.count(now) >= cap:
                ends = state.active.next_end(now)
                refusal = Refusal(budget, "active", cap, 0.0 if ends is None else ends - now)
        if refusal is not None:
            self.refused[(budget, refusal.reason)] += 1
        return refusal

    def take(self, budget: str, now: float, *, scope: str = "", job: Lifecycle | None = None) -> None:
        """Record a draw on ``budget`` at ``now``; a ``job`` holds an active slot until it ends.

        Call :meth:`check` first, with nothing awaited in between.
        """
        state = self._scope(budget, scope)
        for _, _, log in state.windows:
            log.append(now)
        state.history.append(now)
        if job is not None:
            state.active.add(job, now)

    def refresh(self) -> None:
        """Re-sort the active jobs after a cancel moved an end (``Engine.cancel`` calls this)."""
        for state in self._scopes.values():
            state.active.refresh()

    # ----------------------------------------------------------------------------- counters

    def _matching(self, budget: str, scope: str | None) -> Iterable[_Scope]:
        return [s for (name, sc), s in self._scopes.items() if name == budget and scope in (None, sc)]

    def taken(self, budget: str, *, scope: str | None = None) -> int:
        """Draws recorded on ``budget`` (in ``scope``, or in all scopes when ``None``)."""
        return sum(len(state.history) for state in self._matching(budget, scope))

    def active(self, budget: str, now: float, *, scope: str = "") -> int:
        """Jobs drawn on ``budget`` in ``scope`` that are active at ``now``."""
        return self._scope(budget, scope).active.count(now)

    def max_active(self, budget: str, *, scope: str | None = None) -> int:
        """The most jobs drawn on ``budget`` that were active at once (per scope; the largest)."""
        return max((state.active.most for state in self._matching(budget, scope)), default=0)

    def max_in_window(self, budget: str, period: float, *, scope: str | None = None) -> int:
        """The most draws on ``budget`` whose times fall in any ``[t, t + period)`` (per scope).

        Compare with a window ``(count, period)`` to check a client never exceeded it.
        """
        best = 0
        for state in self._matching(budget, scope):
            times = state.history
            start = 0
            for end in range(len(times)):
                while times[end] - times[start] >= period:
                    start += 1
                best = max(best, end - start + 1)
        return best

    def names(self) -> tuple[str, ...]:
        """Every budget configured or drawn on, sorted."""
        return tuple(sorted({name for name, _ in self._scopes} | set(self._limits)))


_UNLIMITED: Final = BudgetLimits()
