"""Finding the job of a create whose answer was lost: the search, sans-I/O.

No vendor offers an idempotency key, so a create whose request went out and whose answer was lost
may or may not have made a job. Each provider says what ties a job to the create that made it, its
**match key**: LandingAI ADE's is a random token in the upload's file name (which a completed job's
metadata echoes), a vendor with uploads has the uploaded file's id. A job shows its match key in a
listing, or only once fetched, or (ADE, failed jobs) never.

When a create's outcome is unknown, :class:`ReconcileBook` decides how to look for its job:

* **candidates** are listed jobs created in a window around the create: from ``sent_at`` minus
  the allowed clock skew (``created_at`` is the server's clock) to the moment the outcome became
  unknown plus the skew. Jobs this client already knows (it created, adopted or watches them)
  are not candidates. The window only limits what is fetched; the match key decides.
* a candidate whose listing shows a pending match key is that create's job (**found**, adopted);
* a candidate the list shows **ended** without its key is fetched once: if the fetched job shows
  a pending key it is found; otherwise it is settled and never fetched again (one that shows no
  key at all stays *unidentified*);
* a candidate **still running** without its key cannot tell yet: the search goes on while such
  candidates remain, up to ``max_search_time``.
* lists lag behind writes (the official ADE SDK's own test retries for about 12 s), so absence is
  never proof: with no candidate left running, the search ends after ``search_time`` as
  **not found**, and the caller decides (resubmit only if allowed, reporting a possible duplicate).
  A list that cannot be read proves nothing at all: until one scan succeeds, a search runs on to
  ``max_search_time``, and its report says the list was unreadable.

One book serves every pending search of a client, so one list scan every ``list_interval`` answers
all of them; the async shell is :class:`ade_async._engine.reconciler.Reconciler`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Candidate",
    "Found",
    "NotFound",
    "ReconcileBook",
    "ReconcilePolicy",
    "SearchReport",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconcilePolicy:
    """How a client looks for the job of a create whose answer was lost.

    Args:
        search_time: seconds to keep looking when no candidate job is still running (the list
            lags behind writes, so a job may appear late).
        max_search_time: the hard bound, in seconds, while candidates in the window are still
            pending or processing (they cannot be identified before they complete).
        list_interval: seconds between scans of the job list (one scan serves every search).
        clock_skew: seconds of disagreement allowed between this machine's clock and the
            server's ``created_at``.
        max_pages: the most list pages (of 100 jobs) one scan reads.
        resubmit_unknown: when the search ends without finding the job, send the create again
            (reported as a possible duplicate) instead of failing with
            :class:`CreateOutcomeUnknownError`.

    Example::

        Client(reconcile=ReconcilePolicy(resubmit_unknown=True))
    """

    search_time: float = 30.0
    max_search_time: float = 600.0
    list_interval: float = 3.0
    clock_skew: float = 60.0
    max_pages: int = 20
    resubmit_unknown: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.search_time <= self.max_search_time:
            raise ValueError("expected 0 <= search_time <= max_search_time")
        if self.list_interval <= 0:
            raise ValueError(f"list_interval must be positive, got {self.list_interval}")
        if self.clock_skew < 0:
            raise ValueError(f"clock_skew must not be negative, got {self.clock_skew}")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {self.max_pages}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One job of a list page, as the search sees it.

    Attributes:
        job_id: the job.
        ended: whether it has ended.
        created_at: when the vendor received it (Unix seconds, the server's clock).
        match_key: its match key, when the listing shows it.
    """

    job_id: str
    ended: bool
    created_at: float
    match_key: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchReport:
    """What a search that did not find its job learned.

    Attributes:
        seconds: how long it looked.
        candidates_checked: candidate jobs found to carry another match key.
        still_running: candidate jobs still pending or processing when it stopped: one of them
            may be the create's job.
        unidentified: candidate jobs that ended without showing a match key (ADE's failed and
            cancelled jobs carry no file name): one of them may be the create's job.
        scans: scans of the job list that succeeded during the search.
        scans_failed: scans that failed (the list could not be read).
        scan_error: the last scan's error, when scans failed.
    """

    seconds: float
    candidates_checked: int
    still_running: tuple[str, ...]
    unidentified: tuple[str, ...]
    scans: int = 0
    scans_failed: int = 0
    scan_error: str | None = None

    def describe(self) -> str:
        text = f"a search of {self.seconds:.0f} s checked {self.candidates_checked} candidate jobs"
        if self.scans_failed:
            read = "could never be read" if not self.scans else "could not always be read"
            text += (
                f"; the job list {read} ({self.scans_failed} of {self.scans + self.scans_failed} "
                f"scans failed, last: {self.scan_error})"
            )
        if self.still_running:
            some = ", ".join(self.still_running[:5])
            text += f"; {len(self.still_running)} still running could be it ({some})"
        if self.unidentified:
            some = ", ".join(self.unidentified[:5])
            text += f"; {len(self.unidentified)} ended without showing their match key ({some})"
        return text


@dataclass(frozen=True, slots=True)
class Found:
    """The create's job was found: adopt it."""

    job_id: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """The search ended without finding the job (which does not prove there is none)."""

    report: SearchReport


@dataclass(slots=True, eq=False)
class _Search:
    match_keys: frozenset[str]
    earliest: float  # wall seconds: the window of created_at
    latest: float
    started: float  # the book's clock
    running: set[str] = field(default_factory=set)
    unidentified: set[str] = field(default_factory=set)
    checked: int = 0
    scans: int = 0
    scans_failed: int = 0
    scan_error: str | None = None


class ReconcileBook:
    """Every pending search of one client, and the jobs it already knows. No I/O, no clock.

    ``now`` is the caller's monotonic clock; ``wall`` values are Unix seconds, comparable with
    the vendor's ``created_at``.
    """

    def __init__(self, policy: ReconcilePolicy) -> None:
        self.policy = policy
        self._searches: dict[int, _Search] = {}
        self._next_key = 0
        # Known and settled job ids, forgotten once older than any window can reach back.
        self._known: set[str] = set()
        self._known_order: deque[tuple[float, str]] = deque()
        self._settled: set[str] = set()
        # Match keys of the settled jobs: a search that starts after its job was identified for
        # another search must still find it (settled jobs are never fetched again).
        self._settled_keys: dict[str, str] = {}
        self._fetching: dict[str, float] = {}  # candidate id -> its created_at
        self._last_scan: float | None = None

    # --- registering ---------------------------------------------------------------------------

    def start(self, match_keys: Iterable[str], *, sent_at: float, unknown_at: float, now: float) -> int:
        """Start looking for the job of a create sent at ``sent_at`` (wall) whose outcome became
        unknown at ``unknown_at`` (wall; the crash or resume time when the process died). Returns
        the search's key."""
        skew = self.policy.clock_skew
        key = self._next_key
        self._next_key += 1
        # created_at may be whole seconds: one more second of slack on each side.
        self._searches[key] = _Search(
            frozenset(match_keys), earliest=sent_at - skew - 1.0, latest=unknown_at + skew + 1.0, started=now
        )
        return key

    def recall(self, match_keys: Iterable[str]) -> Found | None:
        """The job showing one of ``match_keys`` if a scan already identified it for another search."""
        for match_key in match_keys:
            job_id = self._settled_keys.get(match_key)
            if job_id is not None:
                return Found(job_id)
        return None

    def cancel(self, key: int) -> None:
        """Stop a search (its caller went away)."""
        self._searches.pop(key, None)

    def note_known(self, job_id: str, *, wall: float) -> None:
        """A job this client created, adopted or watches: never a candidate."""
        if job_id not in self._known:
            self._known.add(job_id)
            self._known_order.append((wall, job_id))

    @property
    def searching(self) -> int:
        """Searches in progress."""
        return len(self._searches)

    # --- scanning ------------------------------------------------------------------------------

    def scan_due(self, now: float) -> bool:
        """Whether a list scan should run now."""
        return bool(self._searches) and (
            self._last_scan is None or now >= self._last_scan + self.policy.list_interval
        )

    def oldest_wanted(self) -> float | None:
        """The earliest ``created_at`` any search wants: a newest-first scan may stop at a page
        older than this."""
        return min((s.earliest for s in self._searches.values()), default=None)

    def on_scan_failed(self, error: str, *, now: float) -> None:
        """A scan could not read the list: the next one comes after ``list_interval``."""
        self._last_scan = now
        for search in self._searches.values():
            search.scans_failed += 1
            search.scan_error = error

    def on_listing(
        self, jobs: Iterable[Candidate], *, now: float
    ) -> tuple[list[str], list[tuple[int, Found]]]:
        """Take one scan's jobs; return the ids to fetch (ended candidates that showed no key and
        are not settled yet), and the searches whose job the listing itself showed."""
        self._last_scan = now
        to_fetch: list[str] = []
        found: list[tuple[int, Found]] = []
        searches = list(self._searches.values())
        for search in searches:
            search.scans += 1
        for job in jobs:
            if job.job_id in self._known or job.job_id in self._settled:
                continue
            if job.match_key is not None:
                found += self._identify(job.job_id, job.match_key, ended=job.ended, created_at=job.created_at)
                continue
            for search in searches:
                if not search.earliest <= job.created_at <= search.latest:
                    continue
                if job.ended:
                    search.running.discard(job.job_id)
                    if job.job_id not in self._fetching:
                        self._fetching[job.job_id] = job.created_at
                        to_fetch.append(job.job_id)
                else:
                    search.running.add(job.job_id)
        return to_fetch, found

    def on_job(self, job_id: str, *, ended: bool, match_key: str | None) -> list[tuple[int, Found]]:
        """Take a fetched candidate; return the searches it ends (at most one, unless two
        searches share a key)."""
        created_at = self._fetching.pop(job_id, None)
        if match_key is None and not ended:
            return []  # the list ran ahead of the get: look again on a later scan
        return self._identify(job_id, match_key, ended=ended, created_at=created_at)

    def _identify(
        self, job_id: str, match_key: str | None, *, ended: bool, created_at: float | None
    ) -> list[tuple[int, Found]]:
        """A candidate showed its match key (or, ended, showed none): end the searches it
        answers, or settle it for the others."""
        found = [
            key for key, s in self._searches.items() if match_key is not None and match_key in s.match_keys
        ]
        for key in found:
            del self._searches[key]
        if found:
            self._known.add(job_id)
            return [(key, Found(job_id)) for key in found]
        if not ended:
            return []  # another create's job, still running: nothing to settle yet
        self._settled.add(job_id)
        if match_key is not None:
            self._settled_keys[match_key] = job_id
        for search in self._searches.values():
            search.running.discard(job_id)
            if created_at is None or not search.earliest <= created_at <= search.latest:
                continue
            if match_key is None:
                search.unidentified.add(job_id)
            else:
                search.checked += 1
        return []

    def on_fetch_failed(self, job_id: str) -> None:
        """A candidate could not be fetched: a later scan offers it again."""
        self._fetching.pop(job_id, None)

    def on_vanished(self, job_id: str) -> None:
        """A candidate answered 404 (another key's, or gone): settle it."""
        self._fetching.pop(job_id, None)
        self._settled.add(job_id)
        for search in self._searches.values():
            search.running.discard(job_id)

    def expire(self, *, now: float, wall: float) -> list[tuple[int, NotFound]]:
        """End the searches whose time is up; forget known jobs no window can reach."""
        ended: list[tuple[int, NotFound]] = []
        for key, search in list(self._searches.items()):
            elapsed = now - search.started
            # Absence means something only once the list was read: a search whose every scan
            # failed goes on to the hard bound.
            if elapsed >= self.policy.max_search_time or (
                elapsed >= self.policy.search_time and not search.running and search.scans > 0
            ):
                del self._searches[key]
                report = SearchReport(
                    seconds=elapsed,
                    candidates_checked=search.checked,
                    still_running=tuple(sorted(search.running)),
                    unidentified=tuple(sorted(search.unidentified)),
                    scans=search.scans,
                    scans_failed=search.scans_failed,
                    scan_error=search.scan_error,
                )
                ended.append((key, NotFound(report)))
        horizon = wall - 2 * (self.policy.max_search_time + self.policy.clock_skew) - 3600.0
        while self._known_order and self._known_order[0][0] < horizon:
            self._known.discard(self._known_order.popleft()[1])
        if not self._searches:
            # Only meaningful while some search runs: the next search fetches afresh.
            self._settled.clear()
            self._settled_keys.clear()
        return ended

    def next_wake(self, now: float) -> float | None:
        """When the shell should act next (a scan or a search's end), or ``None`` when idle."""
        if not self._searches:
            return None
        scan = now if self._last_scan is None else self._last_scan + self.policy.list_interval
        ends = min(
            s.started + (self.policy.max_search_time if s.running or not s.scans else self.policy.search_time)
            for s in self._searches.values()
        )
        return min(scan, ends)
