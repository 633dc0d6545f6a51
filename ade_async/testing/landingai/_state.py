"""The LandingAI simulator's state: jobs with their results, the create quota, output URLs. Sans-I/O.

:class:`SimulatorState` is the engine (``_engine``) configured with LandingAI's contract, plus
what only LandingAI has. Every method that depends on time takes ``now`` (``time.monotonic()``
seconds) and, where a Unix timestamp is reported, ``wall`` (``time.time()``). Nothing here awaits,
so the HTTP layer can check the quota and accept a create atomically on the event loop.

A job's status is a function of the clock (``_engine._lifecycle``): ``pending`` until
``created + processing_fraction * latency``, then ``processing`` (or the status named by a
marker), and terminal from ``created + latency`` on. A ``latency`` marker moves the end only: the
pending phase stays ``processing_fraction`` of the drawn latency, capped at the marker's.

Costs: a get is a dict lookup; the quota log is a deque per window, pruned from the left as it
goes (amortised O(1)); a list page without a status filter is a bisect plus a slice of the
caller's jobs; output URL tokens expire from the front of a deque.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .._config import SimulatorConfig
from .._engine import BudgetLimits, Engine, JobRecord, PreparedSchema, Timing
from .._stats import SimulatorStats
from ._contract import ENDPOINTS, FAULT_ENDPOINTS, RANDOM_FAILURE, STATUSES
from ._schema import credit_usage, to_extraction
from ._wire import ExtractMetadata, ExtractResponse, ExtractWarning, encode

__all__ = ["CREATE_BUDGET", "Job", "JobResult", "SimulatorState"]

logger: Final = logging.getLogger("ade_async.testing")

#: The budget creates draw on: the documented quota is per organisation, one scope for all keys.
CREATE_BUDGET: Final = "create"


@dataclass(frozen=True, slots=True)
class JobResult:
    """A completed job's result, built once at the first look after completion."""

    response: ExtractResponse
    #: The encoded ``ExtractResponse``: what ``data`` holds, and what ``output_url`` serves.
    body: bytes
    #: Any warning makes the get answer 206 (seed 002, "Warnings").
    has_warnings: bool
    #: Served through ``output_url`` (over the size threshold, or ``output_save_url`` given).
    via_output_url: bool


@dataclass(slots=True, eq=False, kw_only=True)
class Job(JobRecord):
    """One extract job: the engine's record plus LandingAI's model and cached answers."""

    model: str
    output_save_url: bool
    result: JobResult | None = None
    #: A completed get's body, when it is the same on every get (``data`` inline).
    cached_body: bytes | None = field(default=None, repr=False)

    @property
    def api_key(self) -> str:
        """The key that created the job (only it can see the job)."""
        return self.owner

    @property
    def received_at(self) -> int:
        """The Unix time the job was received, in whole seconds (the API's ``received_at``)."""
        return int(self.wall)

    @property
    def failure_reason(self) -> str | None:
        """Why the job fails (reported once it has)."""
        return self.lifecycle.failure_reason


class SimulatorState(Engine[Job]):
    """All mutable state of one LandingAI simulator, shared by its request handlers.

    Args:
        config: the simulator's options.
    """

    def __init__(self, config: SimulatorConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        faults = config.faults
        super().__init__(
            api_keys=config.api_keys,
            seed=config.seed,
            timing=Timing(
                latency=config.latency,
                queued_fraction=config.processing_fraction,
                failure_rate=config.failure_rate,
                failure_reason=RANDOM_FAILURE,
            ),
            statuses=STATUSES,
            endpoints=ENDPOINTS,
            single_endpoint_faults=FAULT_ENDPOINTS,
            fault_rates={endpoint: faults.rates(endpoint) for endpoint in ENDPOINTS},
            slow_seconds=faults.slow_seconds,
            budgets={CREATE_BUDGET: BudgetLimits(windows=config.quota)},
            fault_budget=CREATE_BUDGET,
            retry_after=config.retry_after,
            fault_retry_after=config.fault_retry_after,
            record=config.record,
            clock=clock,
        )
        self.config = config
        #: Requests to an ``output_url`` that carried an ``Authorization`` header.
        self.result_url_auth_headers = 0
        #: Results served through an ``output_url``.
        self.downloads = 0

    @property
    def gets(self) -> int:
        """Get-job requests received (not answered by a fault)."""
        return self.handled["get"]

    @property
    def lists(self) -> int:
        """List-jobs requests received (not answered by a fault)."""
        return self.handled["list"]

    # --------------------------------------------------------------------------------- quota

    def quota_wait(self, now: float) -> float | None:
        """Seconds until a create at ``now`` fits every quota window, or ``None`` if it fits now."""
        return self.budgets.wait(CREATE_BUDGET, now)

    # ---------------------------------------------------------------------------------- jobs

    def create_job(
        self,
        *,
        api_key: str,
        document: str,
        content_sha256: str,
        filename: str,
        model: str,
        schema: PreparedSchema,
        output_save_url: bool,
        now: float,
        wall: float,
    ) -> Job:
        """Accept a create at ``now``: draw on the create budget and create the job.

        The caller checks the budget first (:meth:`quota_wait`), without awaiting in between.
        """
        lifecycle = self.plan(document, now)  # draws the latency and the failure, then:
        job = Job(
            job_id=self.new_uuid(),
            owner=api_key,
            wall=wall,
            lifecycle=lifecycle,
            filename=filename,
            content_sha256=content_sha256,
            schema=schema,
            document=document,
            model=model,
            output_save_url=output_save_url,
        )
        self.jobs.add(job)
        self.budgets.take(CREATE_BUDGET, now, job=lifecycle)
        logger.debug("created job %s (%s, latency %.3fs)", job.job_id, lifecycle.outcome, lifecycle.latency)
        return job

    def find_job(self, job_id: str, api_key: str) -> Job | None:
        """The job, or ``None`` if unknown or created with another key (both answer 404)."""
        return self.jobs.find(job_id, api_key)

    def result_of(self, job: Job) -> JobResult:
        """The completed job's result, built at the first call and kept."""
        if job.result is not None:
            return job.result
        config = self.config
        extraction = to_extraction(self.extraction_of(job), job.schema)
        metadata = ExtractMetadata(
            filename=job.filename,
            org_id=config.org_id,
            duration_ms=round(job.lifecycle.latency * 1000),
            credit_usage=credit_usage(job.schema),
            job_id=job.job_id,
            version=job.model,
            schema_violation_error=extraction.schema_violation_error,
            fallback_model_version=None,
            warnings=tuple(ExtractWarning(code=code, msg=msg) for code, msg in extraction.warnings),
        )
        response = ExtractResponse(
            extraction=extraction.extraction,
            extraction_metadata=extraction.extraction_metadata,
            metadata=metadata,
        )
        body = encode(response)
        result = JobResult(
            response=response,
            body=body,
            has_warnings=bool(extraction.warnings),
            via_output_url=job.output_save_url or len(body) > config.result_url_threshold,
        )
        job.result = result
        return result

    def list_jobs(
        self, api_key: str, *, page: int, page_size: int, status: str | None, now: float
    ) -> tuple[list[tuple[Job, str]], bool]:
        """One page of the key's jobs, newest first, as the lagging list index sees them.

        A job is listed once ``list_lag`` seconds have passed since its creation, with its
        status as of ``now - list_lag``. Returns ``(jobs with their listed status, has_more)``.
        """
        as_of = now - self.config.list_lag
        keep = None if status is None else (lambda job: self.status_of(job, as_of) == status)
        jobs, has_more = self.jobs.page_by_offset(
            api_key, as_of=as_of, offset=page * page_size, size=page_size, keep=keep
        )
        return [(job, self.status_of(job, as_of)) for job in jobs], has_more

    # ---------------------------------------------------------------------------- output URLs

    def issue_output_token(self, job: Job, now: float) -> str:
        """A fresh token for the job's result, valid ``result_url_ttl`` seconds from ``now``."""
        return self.links.issue(job, now, self.config.result_url_ttl)

    def redeem_output_token(self, token: str, now: float) -> Job | None:
        """The job behind a valid token, or ``None`` if the token is unknown or expired."""
        return self.links.redeem(token, now)

    def expire_result_urls(self) -> None:
        """Expire every output URL issued so far."""
        self.links.expire_all()

    # ------------------------------------------------------------------------------ counters

    def stats(self, now: float) -> SimulatorStats:
        """A frozen snapshot of the counters; ``jobs_by_status`` is as of ``now``."""
        return SimulatorStats(
            requests=dict(self.requests),
            creates_accepted=self.budgets.taken(CREATE_BUDGET),
            rate_limited=self.rate_limited,
            jobs_total=len(self.jobs),
            jobs_by_content=dict(self.jobs.by_content),
            duplicate_jobs=self.jobs.duplicates,
            jobs_by_status=self.jobs_by_status(now),
            result_url_auth_headers=self.result_url_auth_headers,
            downloads=self.downloads,
            faults=dict(self.faults.applied),
            gets=self.gets,
            lists=self.lists,
            max_active_jobs=self.jobs.most_active,
            rate_limited_by_budget={
                budget: n for budget in self.budgets.names() if (n := self._refused(budget))
            },
        )

    def _refused(self, budget: str) -> int:
        return sum(n for (name, _), n in self.budgets.refused.items() if name == budget)
