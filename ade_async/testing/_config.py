"""Option objects of the simulator: :class:`SimulatorConfig` and :class:`Faults`.

Both are frozen, keyword-only dataclasses that validate their values on construction, so a
misconfigured simulator fails at once with a ``ValueError`` naming the option, never half-way
through a benchmark. Most options mean the same for every provider (they are the engine's); the
ones marked *LandingAI* configure what only that provider has. Endpoint names are LandingAI's
(``create``, ``get``, ``list``, ``download``), the only provider so far.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._engine import FAULT_KINDS, RETRY_AFTER_FORMS, FaultKind, RetryAfterForm
from .landingai._contract import DEFAULT_MODEL, ENDPOINTS, FAULT_ENDPOINTS, SUPPORTED_MODEL, Endpoint

__all__ = [
    "DEFAULT_MODEL",
    "ENDPOINTS",
    "FAULT_ENDPOINTS",
    "FAULT_KINDS",
    "RETRY_AFTER_FORMS",
    "SUPPORTED_MODEL",
    "Endpoint",
    "FaultKind",
    "Faults",
    "RetryAfterForm",
    "SimulatorConfig",
]


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")


def _frozen_rates(name: str, rates: Mapping[str, float]) -> Mapping[str, float]:
    if not isinstance(rates, Mapping):
        raise ValueError(f"{name} must be a mapping of endpoint name to probability, got {rates!r}")
    for endpoint, rate in rates.items():
        if endpoint not in ENDPOINTS:
            raise ValueError(f"{name}: unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
        _check_rate(f"{name}[{endpoint!r}]", rate)
    # A read-only copy: the caller's dict may change later, a frozen config must not.
    return types.MappingProxyType({endpoint: float(rate) for endpoint, rate in rates.items()})


@dataclass(frozen=True, kw_only=True, slots=True)
class Faults:
    """Random faults, drawn per request with the simulator's seeded RNG.

    One uniform draw per request picks at most one fault, so for each endpoint the rates below
    must add up to at most 1. Deterministic one-shot faults are injected with
    ``Simulator.inject`` instead, and take precedence.

    Args:
        error_rate: endpoint -> probability of a 5xx answer (500, 502 or 503, uniformly).
        drop_rate: endpoint -> probability of closing the connection without an answer, before
            acting (a dropped create created nothing).
        lost_response_rate: probability that a create is carried out (the job exists and counts
            toward the quota) and the connection is then closed without an answer.
        slow_rate: endpoint -> probability of sleeping ``slow_seconds`` before answering normally.
        slow_seconds: how long a "slow" fault sleeps.
        malformed_rate: endpoint -> probability that the request is carried out and its answer
            body is cut in half (invalid JSON under a success status).
    """

    error_rate: Mapping[str, float] = field(default_factory=dict)
    drop_rate: Mapping[str, float] = field(default_factory=dict)
    lost_response_rate: float = 0.0
    slow_rate: Mapping[str, float] = field(default_factory=dict)
    slow_seconds: float = 2.0
    malformed_rate: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate", "slow_rate", "malformed_rate"):
            object.__setattr__(self, name, _frozen_rates(name, getattr(self, name)))
        _check_rate("lost_response_rate", self.lost_response_rate)
        if not _finite_non_negative(self.slow_seconds):
            raise ValueError(f"slow_seconds must be a finite number >= 0, got {self.slow_seconds!r}")
        for endpoint in ENDPOINTS:
            total = sum(rate for _, rate in self.rates(endpoint))
            if total > 1.0 + 1e-9:
                raise ValueError(
                    f"the fault rates for endpoint {endpoint!r} add up to {total:g}; at most one "
                    "fault is drawn per request, so they must add up to at most 1"
                )

    def __hash__(self) -> int:
        # The rate mappings are read-only views, which are not hashable themselves.
        return hash(
            (
                tuple(sorted(self.error_rate.items())),
                tuple(sorted(self.drop_rate.items())),
                self.lost_response_rate,
                tuple(sorted(self.slow_rate.items())),
                self.slow_seconds,
                tuple(sorted(self.malformed_rate.items())),
            )
        )

    def rates(self, endpoint: str) -> tuple[tuple[FaultKind, float], ...]:
        """The non-zero random fault rates of ``endpoint``, in the order they are drawn.

        The 5xx rate is reported under ``"500"``; which of 500, 502 or 503 is sent is a second draw.
        """
        pairs: list[tuple[FaultKind, float]] = [
            ("500", self.error_rate.get(endpoint, 0.0)),
            ("drop", self.drop_rate.get(endpoint, 0.0)),
            ("lost_response", self.lost_response_rate if endpoint == "create" else 0.0),
            ("slow", self.slow_rate.get(endpoint, 0.0)),
            ("malformed", self.malformed_rate.get(endpoint, 0.0)),
        ]
        return tuple((kind, rate) for kind, rate in pairs if rate > 0.0)


def _finite_non_negative(value: object) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value >= 0
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class SimulatorConfig:
    """How a simulated service behaves.

    Args:
        api_keys: accepted ``Bearer`` keys; the first is ``Simulator.api_key``.
        latency: ``(lo, hi)`` seconds from create to terminal state, drawn uniformly per job.
        processing_fraction: a job is queued for this fraction of its latency, then running.
        failure_rate: fraction of jobs that end "failed" (with a failure reason).
        quota: ``(count, period_seconds)`` sliding windows on accepted creates (the provider's
            ``"create"`` budget), shared by all keys (LandingAI's quota is per organisation);
            ``()`` means unlimited.
        retry_after: the wait hint sent with a 429: ``None`` (no header, like the documented API),
            ``"seconds"`` (``Retry-After`` in whole seconds, rounded up), ``"ms"``
            (``retry-after-ms``) or ``"date"`` (``Retry-After`` as an HTTP-date).
        list_lag: read-after-write lag of the list endpoint, in seconds.
        result_url_threshold: *LandingAI*: encoded result size in bytes above which a completed
            job's result is served through a presigned URL instead of inline (the API's is 1 MB).
        result_url_ttl: *LandingAI*: seconds a result URL stays valid after the GET that
            issued it.
        fault_retry_after: seconds a 429 *fault* (injected or random) asks the client to wait,
            in the ``retry_after`` form (a quota 429 announces its real wait).
        org_id: *LandingAI*: the organisation id reported in responses.
        default_model: *LandingAI*: what an absent ``model`` and ``extract-latest`` resolve to.
        faults: random faults; see :class:`Faults`.
        record: keep an ``Exchange`` per request, for contract tests.
        seed: seed of the one RNG behind every random decision (latencies, failures, faults, ids).

    Raises:
        ValueError: a value is out of range; the message names the option.
    """

    api_keys: tuple[str, ...] = ("sim-key",)
    latency: tuple[float, float] = (0.05, 0.2)
    processing_fraction: float = 0.3
    failure_rate: float = 0.0
    quota: tuple[tuple[int, float], ...] = ()
    retry_after: RetryAfterForm = "seconds"
    list_lag: float = 0.0
    result_url_threshold: int = 1_000_000
    result_url_ttl: float = 3600.0
    fault_retry_after: float = 1.0
    org_id: str = "org-simulator"
    default_model: str = DEFAULT_MODEL
    faults: Faults = field(default_factory=Faults)
    record: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        given: object = self.api_keys
        if isinstance(given, str):
            raise ValueError("api_keys must be a tuple of keys, not a single string")
        keys = tuple(self.api_keys)
        if not keys or not all(isinstance(key, str) and key and key.strip() == key for key in keys):
            raise ValueError("api_keys must hold at least one non-empty key without surrounding spaces")
        object.__setattr__(self, "api_keys", keys)

        try:
            lo, hi = self.latency
        except (TypeError, ValueError):
            raise ValueError(f"latency must be a (lo, hi) pair of seconds, got {self.latency!r}") from None
        if not (_finite_non_negative(lo) and _finite_non_negative(hi)) or lo > hi:
            raise ValueError(f"latency must be (lo, hi) with 0 <= lo <= hi, got {self.latency!r}")
        object.__setattr__(self, "latency", (float(lo), float(hi)))

        _check_rate("processing_fraction", self.processing_fraction)
        _check_rate("failure_rate", self.failure_rate)

        windows: list[tuple[int, float]] = []
        for window in self.quota:
            try:
                count, period = window
            except (TypeError, ValueError):
                raise ValueError(
                    f"quota windows must be (count, period_seconds) pairs, got {window!r}"
                ) from None
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"quota count must be an integer >= 1, got {count!r}")
            if not _finite_non_negative(period) or period <= 0:
                raise ValueError(f"quota period must be a finite number of seconds > 0, got {period!r}")
            windows.append((count, float(period)))
        object.__setattr__(self, "quota", tuple(windows))

        if self.retry_after not in RETRY_AFTER_FORMS:
            raise ValueError(
                f"retry_after must be one of None, 'seconds', 'ms', 'date', got {self.retry_after!r}"
            )
        if not _finite_non_negative(self.list_lag):
            raise ValueError(f"list_lag must be a finite number of seconds >= 0, got {self.list_lag!r}")
        threshold = self.result_url_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"result_url_threshold must be an integer >= 0, got {threshold!r}")
        if not _finite_non_negative(self.result_url_ttl) or self.result_url_ttl <= 0:
            raise ValueError(
                f"result_url_ttl must be a finite number of seconds > 0, got {self.result_url_ttl!r}"
            )
        if not _finite_non_negative(self.fault_retry_after) or self.fault_retry_after <= 0:
            raise ValueError(
                f"fault_retry_after must be a finite number of seconds > 0, got {self.fault_retry_after!r}"
            )
        if not isinstance(self.org_id, str) or not self.org_id:
            raise ValueError("org_id must be a non-empty string")
        if not isinstance(self.default_model, str) or not self.default_model:
            raise ValueError("default_model must be a non-empty string")
        if not isinstance(self.faults, Faults):
            raise ValueError(f"faults must be a Faults instance, got {type(self.faults).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
