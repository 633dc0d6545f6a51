"""The counters snapshot a :class:`~ade_async.testing.Simulator` returns, whatever its provider.

Providers fill what applies to them: the presigned-URL counters stay 0 for a provider without
presigned URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SimulatorStats"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SimulatorStats:
    """A frozen snapshot of the simulator's counters, taken by ``Simulator.stats()``.

    Attributes:
        requests: ``(endpoint, HTTP status)`` -> requests answered; status 0 counts connections
            closed without an answer ("drop" and "lost_response" faults).
        creates_accepted: creates answered 202 (or accepted and then lost).
        rate_limited: 429 answers sent, by the quota or by an injected "429".
        jobs_total: jobs created.
        jobs_by_content: sha256 hex of the Markdown -> jobs created with it.
        duplicate_jobs: jobs beyond the first per content (sum of ``count - 1``): what a client
            that resubmits after an ambiguous failure leaves behind.
        jobs_by_status: status -> jobs, as of the snapshot.
        result_url_auth_headers: requests to a presigned result URL that
            carried an ``Authorization`` header; a client must never send its API key there.
        downloads: results served through a presigned URL (200 answers).
        faults: fault kind -> times applied.
        gets: get-job requests received.
        lists: list-jobs requests received.
        max_active_jobs: the most jobs that were active (created, not yet ended) at once.
        rate_limited_by_budget: budget name -> 429s its limits caused (a fault's 429 is in
            ``rate_limited`` only).
    """

    requests: dict[tuple[str, int], int]
    creates_accepted: int
    rate_limited: int
    jobs_total: int
    jobs_by_content: dict[str, int]
    duplicate_jobs: int
    jobs_by_status: dict[str, int]
    result_url_auth_headers: int
    downloads: int
    faults: dict[str, int]
    gets: int
    lists: int
    max_active_jobs: int = 0
    rate_limited_by_budget: dict[str, int] = field(default_factory=dict)

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Requests to ``endpoint`` answered with ``status`` (any status when ``None``)."""
        return sum(
            n for (name, code), n in self.requests.items() if name == endpoint and status in (None, code)
        )
