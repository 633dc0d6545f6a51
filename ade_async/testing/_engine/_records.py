"""What the simulator lets a test observe: a stats snapshot and recorded exchanges."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Exchange", "FormField", "SimulatorStats"]


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
        output_url_auth_headers: requests to an ``output_url`` that carried an ``Authorization``
            header; a client must never send its API key there.
        downloads: results served through an ``output_url`` (200 answers).
        faults: fault kind -> times applied.
        gets: get-job requests received.
        lists: list-jobs requests received.
    """

    requests: dict[tuple[str, int], int]
    creates_accepted: int
    rate_limited: int
    jobs_total: int
    jobs_by_content: dict[str, int]
    duplicate_jobs: int
    jobs_by_status: dict[str, int]
    output_url_auth_headers: int
    downloads: int
    faults: dict[str, int]
    gets: int
    lists: int

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Requests to ``endpoint`` answered with ``status`` (any status when ``None``)."""
        return sum(
            n for (name, code), n in self.requests.items() if name == endpoint and status in (None, code)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FormField:
    """One field of a recorded create request.

    Attributes:
        name: the form field name.
        is_file: True for a multipart part with a ``filename`` parameter.
        filename: that filename, else ``None``.
        content_type: the part's ``Content-Type``, if any.
        value: the decoded text of a non-file field; ``None`` for files.
        size: the field's size in bytes.
    """

    name: str
    is_file: bool
    filename: str | None
    content_type: str | None
    value: str | None
    size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Exchange:
    """One request and the answer the simulator gave (``SimulatorConfig(record=True)``).

    ``status`` is 0, with an empty body and no headers, when the connection was closed without
    an answer.
    """

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    form: tuple[FormField, ...]
    status: int
    response_body: bytes
    response_headers: dict[str, str]
