"""What a client has done so far: mutable counters inside, a frozen snapshot outside."""

from __future__ import annotations

from dataclasses import dataclass

from ._admission import AdmissionStats

__all__ = ["ClientStats", "Counters"]


class Counters:
    """The client's running totals. Only the client's own layers increment them."""

    __slots__ = (
        "create_retries",
        "creates_accepted",
        "creates_rate_limited",
        "creates_sent",
        "creates_unknown",
        "read_retries",
        "reads_sent",
    )

    def __init__(self) -> None:
        self.creates_sent = 0
        self.creates_accepted = 0
        self.creates_rate_limited = 0
        self.creates_unknown = 0
        self.create_retries = 0
        self.reads_sent = 0
        self.read_retries = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientStats:
    """A snapshot of a client's activity, from ``client.stats()``.

    Attributes:
        creates_sent: create requests sent (each retry counts).
        creates_accepted: creates answered 202.
        creates_rate_limited: creates answered 429 (each was sent again after the pause).
        creates_unknown: creates whose outcome is unknown (:class:`CreateOutcomeUnknownError`).
        create_retries: creates sent again after an error that proved nothing was created.
        reads_sent: get and list requests sent.
        read_retries: reads sent again after a retryable failure.
        admission: the admission gate's state.
    """

    creates_sent: int
    creates_accepted: int
    creates_rate_limited: int
    creates_unknown: int
    create_retries: int
    reads_sent: int
    read_retries: int
    admission: AdmissionStats

    @classmethod
    def snapshot(cls, counters: Counters, admission: AdmissionStats) -> ClientStats:
        return cls(
            creates_sent=counters.creates_sent,
            creates_accepted=counters.creates_accepted,
            creates_rate_limited=counters.creates_rate_limited,
            creates_unknown=counters.creates_unknown,
            create_retries=counters.create_retries,
            reads_sent=counters.reads_sent,
            read_retries=counters.read_retries,
            admission=admission,
        )
