"""The simulator's state: jobs, the quota log, output URLs, faults and counters. Sans-I/O.

Every method that depends on time takes ``now`` (``time.monotonic()`` seconds) and, where a Unix
timestamp is reported, ``wall`` (``time.time()``). Nothing here awaits, so the HTTP layer can
check the quota and accept a create atomically on the event loop.

Jobs need no background work: a job's status is a function of the clock. It is ``pending`` until
``created + processing_fraction * latency``, then ``processing`` (or the status named by a
marker), and terminal from ``created + latency`` on. A ``latency`` marker moves the end only: the
pending phase stays ``processing_fraction`` of the drawn latency, capped at the marker's.

Costs: a get is a dict lookup; the quota log is a deque per window, pruned from the left as it
goes (amortised O(1)); a list page without a status filter is a bisect plus a slice of the
caller's jobs; output URL tokens expire from the front of a deque.
"""

from __future__ import annotations

import bisect
import logging
import random
import uuid
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final, Literal

import msgspec

from ..._wire import ExtractMetadata, ExtractResponse, ExtractWarning
from .._config import ENDPOINTS, FAULT_ENDPOINTS, FAULT_KINDS, Endpoint, FaultKind, SimulatorConfig
from .._engine._markers import parse_markers
from .._engine._records import Exchange, SimulatorStats
from .._engine._schema import PreparedSchema
from ._schema import credit_usage, extract

__all__ = ["Job", "JobResult", "SimulatorState"]

logger: Final = logging.getLogger("ade_async.testing")

Outcome = Literal["completed", "failed", "cancelled"]

_RANDOM_FAILURE: Final = "Extraction failed: simulated processing error"
_SERVER_ERRORS: Final[tuple[FaultKind, ...]] = ("500", "502", "503")


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


@dataclass(slots=True, eq=False)
class Job:
    """One extract job. Its status is derived from the clock by :meth:`status_at`."""

    job_id: str
    api_key: str
    created: float
    received_at: int
    latency: float
    processing_at: float
    done_at: float
    outcome: Outcome
    failure_reason: str | None
    running_status: str
    model: str
    filename: str
    content_sha256: str
    schema: PreparedSchema
    output_save_url: bool
    #: The Markdown, kept until the result is built.
    document: str | None
    result: JobResult | None = None
    #: A completed get's body, when it is the same on every get (``data`` inline).
    cached_body: bytes | None = field(default=None, repr=False)

    def status_at(self, now: float) -> str:
        """The status reported at monotonic time ``now``."""
        if now >= self.done_at:
            return self.outcome
        if now >= self.processing_at:
            return self.running_status
        return "pending"


class SimulatorState:
    """All mutable state of one simulator, shared by its request handlers.

    Args:
        config: the simulator's options.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._keys = frozenset(config.api_keys)
        self.credits_exhausted = False
        # jobs
        self._jobs: dict[str, Job] = {}
        self._jobs_by_key: dict[str, list[Job]] = {}
        # quota: one deque of acceptance times per window, and the whole history for analysis
        self._windows: tuple[tuple[int, float, deque[float]], ...] = tuple(
            (count, period, deque()) for count, period in config.quota
        )
        self._accepted = array("d")
        # output URLs: token -> (job, expiry); the deque holds tokens in expiry order
        self._outputs: dict[str, tuple[Job, float]] = {}
        self._output_expiry: deque[tuple[float, str]] = deque()
        # faults
        self._injected: dict[str, deque[FaultKind]] = {endpoint: deque() for endpoint in ENDPOINTS}
        self._fault_rates = {endpoint: config.faults.rates(endpoint) for endpoint in ENDPOINTS}
        # counters
        self.requests: Counter[tuple[str, int]] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.jobs_by_content: Counter[str] = Counter()
        self.duplicate_jobs = 0
        self.output_url_auth_headers = 0
        self.downloads = 0
        self.gets = 0
        self.lists = 0
        self.exchanges: list[Exchange] = []

    # ---------------------------------------------------------------------------------- auth

    def is_valid_key(self, key: str | None) -> bool:
        """Whether ``key`` is one of the configured API keys."""
        return key is not None and key in self._keys

    # -------------------------------------------------------------------------------- faults

    def inject(self, endpoint: Endpoint | str, fault: FaultKind | str, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests to ``endpoint`` (FIFO).

        Plain strings are accepted (and checked here), so parametrised tests need no casts.

        Raises:
            ValueError: unknown endpoint or fault, a fault of one endpoint (``lost_response``:
                create, ``404``: get, ``expired``: download) for another, or ``count < 1``.
        """
        known_endpoint = next((name for name in ENDPOINTS if name == endpoint), None)
        if known_endpoint is None:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
        kind = next((name for name in FAULT_KINDS if name == fault), None)
        if kind is None:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULT_KINDS)}")
        only = FAULT_ENDPOINTS.get(kind)
        if only is not None and known_endpoint != only:
            raise ValueError(f"{kind!r} applies to the {only} endpoint only")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        self._injected[known_endpoint].extend([kind] * count)

    def next_fault(self, endpoint: Endpoint) -> FaultKind | None:
        """The fault to apply to this request: an injected one first, else a random draw."""
        kind: FaultKind | None = None
        queue = self._injected[endpoint]
        if queue:
            kind = queue.popleft()
        else:
            rates = self._fault_rates[endpoint]
            if rates:
                draw = self._rng.random()
                for candidate, rate in rates:
                    if draw < rate:
                        kind = self._rng.choice(_SERVER_ERRORS) if candidate == "500" else candidate
                        break
                    draw -= rate
        if kind is not None:
            self.faults[kind] += 1
            logger.debug("fault %s on %s", kind, endpoint)
        return kind

    # --------------------------------------------------------------------------------- quota

    def quota_wait(self, now: float) -> float | None:
        """Seconds until a create at ``now`` fits every window, or ``None`` if it fits now.

        A window ``(count, period)`` holds the creates accepted in ``(now - period, now]``; the
        wait is until its oldest blocking entry leaves it.
        """
        wait: float | None = None
        for count, period, log in self._windows:
            cutoff = now - period
            while log and log[0] <= cutoff:
                log.popleft()
            if len(log) >= count:
                blocked = log[len(log) - count] + period - now
                wait = blocked if wait is None else max(wait, blocked)
        return wait

    def max_creates_in_window(self, period: float) -> int:
        """The most accepted creates whose acceptance times fall in any ``[t, t + period)``."""
        times = self._accepted
        best = 0
        start = 0
        for end in range(len(times)):
            while times[end] - times[start] >= period:
                start += 1
            best = max(best, end - start + 1)
        return best

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
        """Accept a create at ``now``: record it in the quota windows and create the job.

        The caller checks :meth:`quota_wait` first, without awaiting in between.
        """
        config = self.config
        markers = parse_markers(document)
        # Always draw both values, so the sequence of random decisions depends on the jobs
        # created, not on which documents carry markers.
        drawn_latency = self._rng.uniform(*config.latency)
        random_failure = self._rng.random() < config.failure_rate
        job_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

        latency = markers.latency if markers.latency is not None else drawn_latency
        # The queueing time is the service's, not the document's: a latency marker sets when the
        # job ends, while the pending phase stays the configured fraction of the drawn latency
        # (and never outlasts the job).
        pending = min(drawn_latency * config.processing_fraction, latency)
        outcome: Outcome = "completed"
        failure_reason: str | None = None
        if markers.outcome is not None:
            outcome, failure_reason = markers.outcome, markers.failure_reason
        elif random_failure:
            outcome, failure_reason = "failed", _RANDOM_FAILURE

        job = Job(
            job_id=job_id,
            api_key=api_key,
            created=now,
            received_at=int(wall),
            latency=latency,
            processing_at=now + pending,
            done_at=now + latency,
            outcome=outcome,
            failure_reason=failure_reason,
            running_status=markers.running_status or "processing",
            model=model,
            filename=filename,
            content_sha256=content_sha256,
            schema=schema,
            output_save_url=output_save_url,
            document=document,
        )
        self._jobs[job_id] = job
        self._jobs_by_key.setdefault(api_key, []).append(job)
        for _, _, log in self._windows:
            log.append(now)
        self._accepted.append(now)
        if self.jobs_by_content[content_sha256]:
            self.duplicate_jobs += 1
        self.jobs_by_content[content_sha256] += 1
        logger.debug("created job %s (%s, latency %.3fs)", job_id, outcome, latency)
        return job

    def find_job(self, job_id: str, api_key: str) -> Job | None:
        """The job, or ``None`` if unknown or created with another key (both answer 404)."""
        job = self._jobs.get(job_id)
        if job is None or job.api_key != api_key:
            return None
        return job

    def jobs(self) -> list[Job]:
        """Every job created so far, oldest first."""
        return list(self._jobs.values())

    def job_completed_at(self, job_id: str) -> float | None:
        """Monotonic time at which the job reaches (or will reach) its terminal status."""
        job = self._jobs.get(job_id)
        return None if job is None else job.done_at

    def result_of(self, job: Job) -> JobResult:
        """The completed job's result, built at the first call and kept."""
        if job.result is not None:
            return job.result
        config = self.config
        extraction = extract(job.document or "", job.schema, content_sha256=job.content_sha256)
        metadata = ExtractMetadata(
            filename=job.filename,
            org_id=config.org_id,
            duration_ms=round(job.latency * 1000),
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
        body = msgspec.json.encode(response)
        result = JobResult(
            response=response,
            body=body,
            has_warnings=bool(extraction.warnings),
            via_output_url=job.output_save_url or len(body) > config.output_url_threshold,
        )
        job.result = result
        job.document = None  # the result is all a completed job still needs
        return result

    def list_jobs(
        self, api_key: str, *, page: int, page_size: int, status: str | None, now: float
    ) -> tuple[list[tuple[Job, str]], bool]:
        """One page of the key's jobs, newest first, as the lagging list index sees them.

        A job is listed once ``list_lag`` seconds have passed since its creation, with its
        status as of ``now - list_lag``. Returns ``(jobs with their listed status, has_more)``.
        """
        as_of = now - self.config.list_lag
        jobs = self._jobs_by_key.get(api_key, [])
        visible = bisect.bisect_right(jobs, as_of, key=lambda job: job.created)
        if status is None:
            first = visible - 1 - page * page_size
            last = max(first - page_size, -1)
            chosen = [jobs[i] for i in range(first, last, -1)]
            return [(job, job.status_at(as_of)) for job in chosen], last >= 0
        skip = page * page_size
        page_jobs: list[tuple[Job, str]] = []
        for i in range(visible - 1, -1, -1):
            listed = jobs[i].status_at(as_of)
            if listed != status:
                continue
            if skip:
                skip -= 1
                continue
            if len(page_jobs) == page_size:
                return page_jobs, True
            page_jobs.append((jobs[i], listed))
        return page_jobs, False

    # ---------------------------------------------------------------------------- output URLs

    def _prune_outputs(self, now: float) -> None:
        expiry = self._output_expiry
        while expiry and expiry[0][0] <= now:
            _, token = expiry.popleft()
            self._outputs.pop(token, None)

    def issue_output_token(self, job: Job, now: float) -> str:
        """A fresh token for the job's result, valid ``output_url_ttl`` seconds from ``now``."""
        self._prune_outputs(now)
        token = f"{self._rng.getrandbits(128):032x}"
        expires = now + self.config.output_url_ttl
        self._outputs[token] = (job, expires)
        self._output_expiry.append((expires, token))
        return token

    def redeem_output_token(self, token: str, now: float) -> Job | None:
        """The job behind a valid token, or ``None`` if the token is unknown or expired."""
        self._prune_outputs(now)
        entry = self._outputs.get(token)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def expire_output_urls(self) -> None:
        """Expire every output URL issued so far."""
        self._outputs.clear()
        self._output_expiry.clear()

    # ------------------------------------------------------------------------------ counters

    def record(self, exchange: Exchange) -> None:
        """Keep ``exchange`` when recording is on."""
        if self.config.record:
            self.exchanges.append(exchange)

    def stats(self, now: float) -> SimulatorStats:
        """A frozen snapshot of the counters; ``jobs_by_status`` is as of ``now``."""
        by_status: Counter[str] = Counter(job.status_at(now) for job in self._jobs.values())
        return SimulatorStats(
            requests=dict(self.requests),
            creates_accepted=len(self._accepted),
            rate_limited=self.rate_limited,
            jobs_total=len(self._jobs),
            jobs_by_content=dict(self.jobs_by_content),
            duplicate_jobs=self.duplicate_jobs,
            jobs_by_status=dict(by_status),
            output_url_auth_headers=self.output_url_auth_headers,
            downloads=self.downloads,
            faults=dict(self.faults),
            gets=self.gets,
            lists=self.lists,
        )
