""":class:`Engine`: the vendor-neutral state of one simulated service. Sans-I/O.

Everything here takes ``now`` (``time.monotonic()`` seconds, or a :class:`FakeClock` reading in a
test) and never awaits, so a vendor's handler can check a budget and accept a create atomically on
the event loop. A vendor's state class subclasses :class:`Engine` and adds its own records and
rules on top; its route table (``_serving.Routes``) answers requests from it.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Generic, TypeVar

from ._extraction import Extracted, extract
from ._faults import FaultKind, FaultPlan
from ._files import Catalog, ExpiringLinks, StoredFile
from ._jobs import JobRecord, JobStore
from ._lifecycle import Lifecycle, StatusNames, Timing
from ._markers import parse_markers
from ._quotas import BudgetLimits, Budgets, RetryAfterForm, retry_after_headers
from ._records import Exchange

__all__ = ["Engine"]

logger: Final = logging.getLogger("ade_async.testing")

J = TypeVar("J", bound=JobRecord)


class Engine(Generic[J]):
    """The state every simulated vendor shares: keys, randomness, jobs, uploads, budgets, faults,
    counters and recorded exchanges.

    A vendor module subclasses it, passing what its contract says, and adds its own records::

        class LlamaState(Engine[LlamaJob]):
            def __init__(self, config: SimulatorConfig) -> None:
                super().__init__(
                    api_keys=config.api_keys, seed=config.seed, timing=Timing(...),
                    statuses=StatusNames(queued="PENDING", running="RUNNING", succeeded="COMPLETED",
                                         failed="FAILED", cancelled="CANCELLED"),
                    endpoints=("upload", "create", "get", "list", "cancel"),
                    budgets={"upload": BudgetLimits(windows=((50, 5.0),)), "create": ...},
                    fault_budget="create", ...)

    Then its handlers use :attr:`budgets` (check, then take), :meth:`plan` and :meth:`new_uuid`
    for a new job, :attr:`jobs` and :attr:`files` to find things, :meth:`status_of` to spell a
    status, :meth:`result_when_ready` for a result step, and :meth:`cancel` where the vendor has a
    cancel. The serving layer uses the rest (faults, keys, counters, recording).

    Args:
        api_keys: accepted ``Bearer`` keys.
        seed: seed of the one RNG behind every random decision (latencies, failures, faults, ids).
        timing: how new jobs' timelines are drawn.
        statuses: the vendor's spelling of the phases.
        endpoints: the vendor's endpoint names (faults, stats and recordings use them).
        single_endpoint_faults: fault kind -> the one endpoint it applies to.
        fault_rates: endpoint -> random ``(kind, probability)`` pairs.
        slow_seconds: how long a "slow" fault delays an answer.
        budgets: budget name -> its limits.
        fault_budget: the budget whose current wait a 429 *fault* announces when it is blocked
            (so a client sees one consistent hint), or ``None``.
        retry_after: the form of the wait hint sent with a 429.
        fault_retry_after: the wait a 429 fault announces when no budget is blocked.
        record: keep an :class:`Exchange` per request.
        clock: what :meth:`now` reads: ``time.monotonic`` by default; a :class:`FakeClock`'s
            ``now`` lets a test move a vendor's jobs through their lives without waiting.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str],
        seed: int,
        timing: Timing,
        statuses: StatusNames,
        endpoints: Iterable[str],
        single_endpoint_faults: Mapping[FaultKind, str] | None = None,
        fault_rates: Mapping[str, Iterable[tuple[FaultKind, float]]] | None = None,
        slow_seconds: float = 2.0,
        budgets: Mapping[str, BudgetLimits] | None = None,
        fault_budget: str | None = None,
        retry_after: RetryAfterForm = "seconds",
        fault_retry_after: float = 1.0,
        record: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.rng = random.Random(seed)
        self._keys = frozenset(api_keys)
        self.timing = timing
        self.statuses = statuses
        self.faults = FaultPlan(
            endpoints=endpoints, single_endpoint=single_endpoint_faults, rates=fault_rates, rng=self.rng
        )
        self.slow_seconds = slow_seconds
        self.budgets = Budgets(budgets)
        self.fault_budget = fault_budget
        self.retry_after: RetryAfterForm = retry_after
        self.fault_retry_after = fault_retry_after
        self.recording = record
        #: While True, calls that spend credits answer 402 (the vendor decides which).
        self.credits_exhausted = False
        self.jobs: JobStore[J] = JobStore()
        #: Uploaded inputs, by the id the vendor issued.
        self.files: Catalog[StoredFile] = Catalog()
        #: Presigned-style download links.
        self.links: ExpiringLinks[J] = ExpiringLinks(lambda: f"{self.rng.getrandbits(128):032x}")
        #: ``(endpoint, HTTP status)`` -> requests answered; status 0: closed without an answer.
        self.requests: Counter[tuple[str, int]] = Counter()
        #: endpoint -> requests that reached their handler (not answered by a fault).
        self.handled: Counter[str] = Counter()
        #: 429 answers sent, by a budget or by a fault.
        self.rate_limited = 0
        self.exchanges: list[Exchange] = []

    def now(self) -> float:
        """The current time on the engine's clock (monotonic seconds)."""
        return self._clock()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The vendor's endpoint names."""
        return self.faults.endpoints

    # ---------------------------------------------------------------------------- requests

    def is_valid_key(self, key: str | None) -> bool:
        """Whether ``key`` is one of the accepted API keys."""
        return key is not None and key in self._keys

    def inject(self, endpoint: str, fault: FaultKind | str, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests to ``endpoint`` (see ``FaultPlan.inject``).

        Raises:
            ValueError: unknown endpoint or fault, a single-endpoint fault elsewhere, ``count < 1``.
        """
        self.faults.inject(endpoint, fault, count)

    def next_fault(self, endpoint: str) -> FaultKind | None:
        """The fault to apply to this request to ``endpoint``, if any."""
        return self.faults.next(endpoint)

    def retry_after_headers(self, wait: float, wall: float) -> dict[str, str]:
        """The wait hint of a 429, in the configured form; ``wall`` is ``time.time()`` now."""
        return retry_after_headers(self.retry_after, wait, wall)

    def record(self, exchange: Exchange) -> None:
        """Keep ``exchange`` when recording is on."""
        if self.recording:
            self.exchanges.append(exchange)

    # -------------------------------------------------------------------------------- jobs

    def new_uuid(self) -> str:
        """A fresh UUID4 string from the seeded RNG (job ids, document ids, file ids' tails)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def plan(self, document: str, now: float) -> Lifecycle:
        """A new job's timeline from ``now``: drawn by :attr:`timing`, steered by the document's
        markers (``<!-- ade-sim: ... -->``)."""
        return self.timing.plan(self.rng, parse_markers(document), now)

    def status_of(self, job: JobRecord, now: float) -> str:
        """The job's status at ``now``, as the vendor spells it."""
        return self.statuses.at(job.lifecycle, now)

    def extraction_of(self, job: JobRecord) -> Extracted:
        """The job's extraction, made at the first call and kept (the document is then dropped)."""
        if job.extracted is None:
            job.extracted = extract(job.document or "", job.schema, content_sha256=job.content_sha256)
            job.document = None
        return job.extracted

    def result_when_ready(self, job: JobRecord, now: float) -> Extracted | None:
        """The extraction if the job has succeeded at ``now``, else ``None``.

        For a vendor whose results are a step of their own that may be fetched early (Contextual
        answers a running job's results with its status and no values).
        """
        return self.extraction_of(job) if job.lifecycle.phase_at(now) == "succeeded" else None

    def cancel(self, job: JobRecord, now: float) -> bool:
        """Cancel the job at ``now``; False (nothing changes) when it had already ended.

        Its active slots are freed at once, as they are when a job ends by itself.
        """
        if not job.lifecycle.cancel(now):
            return False
        self.jobs.refresh()
        self.budgets.refresh()
        logger.debug("cancelled job %s", job.job_id)
        return True

    def job_completed_at(self, job_id: str) -> float | None:
        """Monotonic time at which the job reaches (or will reach) its terminal status."""
        job = self.jobs.get(job_id)
        return None if job is None else job.lifecycle.done_at

    def max_creates_in_window(self, period: float) -> int:
        """The most accepted creates (draws on the ``"create"`` budget) in any ``[t, t + period)``."""
        return self.budgets.max_in_window("create", period)

    def jobs_by_status(self, now: float) -> dict[str, int]:
        """Status (as the vendor spells it) -> jobs, at ``now``."""
        return dict(Counter(self.status_of(job, now) for job in self.jobs))
