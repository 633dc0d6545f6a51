"""Jobs, who owns them, and pages of them. Sans-I/O, no vendor.

:class:`JobRecord` is what every simulated job has: an id, an owner (the API key that created it),
its :class:`~._lifecycle.Lifecycle`, the input's name and sha256, the prepared schema and the
text to extract from. A vendor subclasses it for its own fields (LandingAI: the model and the
cached answer bodies) and keeps its jobs in a :class:`JobStore`, which finds them by id for their
owner only (another key's job is "not found"), counts duplicates by content, tracks the most jobs
active at once, and serves newest-first pages in the three styles vendors use:

* by offset (page numbers with a "more" flag, as LandingAI pages): :meth:`JobStore.page_by_offset`;
* by opaque cursor (Contextual's ``cursor``/``next_cursor``, LlamaCloud's ``page_token``/
  ``next_page_token``): :meth:`JobStore.page_by_cursor`;
* either with a filter (a status, as the vendor spells it) and a read-after-write lag: a page is
  taken ``as_of`` a time, and jobs created after it are not listed yet.

The same paging functions serve any owner-ordered list (:func:`page_by_offset`,
:func:`page_by_cursor`), e.g. a vendor's uploaded files in a :class:`~._files.Catalog`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._extraction import Extracted
from ._lifecycle import ActiveJobs, Lifecycle
from ._schema import PreparedSchema

__all__ = [
    "JobRecord",
    "JobStore",
    "decode_cursor",
    "encode_cursor",
    "page_by_cursor",
    "page_by_offset",
]

T = TypeVar("T")


@dataclass(slots=True, eq=False, kw_only=True)
class JobRecord:
    """One simulated job, as every vendor has it. Subclass it for a vendor's own fields.

    Attributes:
        job_id: the id the vendor issued.
        owner: who may see it (the API key, or a project).
        wall: ``time.time()`` at creation; vendors print it as they like.
        lifecycle: its timeline.
        filename: the input's name.
        content_sha256: hex sha256 of the input's bytes (duplicates are counted by it).
        schema: what to extract.
        document: the text to extract from, dropped once extracted.
        extracted: the extraction, once made (``Engine.extraction_of``).
    """

    job_id: str
    owner: str
    wall: float
    lifecycle: Lifecycle
    filename: str
    content_sha256: str
    schema: PreparedSchema
    document: str | None
    extracted: Extracted | None = None

    @property
    def created(self) -> float:
        """When the job was accepted (monotonic seconds)."""
        return self.lifecycle.created


J = TypeVar("J", bound=JobRecord)


def encode_cursor(position: int) -> str:
    """An opaque cursor for the item at ``position`` of an owner's oldest-first list."""
    return base64.urlsafe_b64encode(f"sim:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position an :func:`encode_cursor` cursor stands for.

    Raises:
        ValueError: not a cursor this simulator issued (the vendor answers its 4xx).
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid cursor {cursor!r}") from None
    prefix, _, number = text.partition(":")
    if prefix != "sim" or not number.isdigit():
        raise ValueError(f"invalid cursor {cursor!r}")
    return int(number)


def page_by_offset(
    items: Sequence[T], visible: int, *, offset: int, size: int, keep: Callable[[T], bool] | None = None
) -> tuple[list[T], bool]:
    """Items ``offset .. offset + size`` counted newest first among ``items[:visible]``.

    ``items`` is oldest first. Returns ``(page, has_more)``. Without ``keep`` the page is a slice
    (no walk over what comes before it).
    """
    if keep is None:
        first = visible - 1 - offset
        last = max(first - size, -1)
        return [items[i] for i in range(first, last, -1)], last >= 0
    skip = offset
    page: list[T] = []
    for i in range(visible - 1, -1, -1):
        if not keep(items[i]):
            continue
        if skip:
            skip -= 1
            continue
        if len(page) == size:
            return page, True
        page.append(items[i])
    return page, False


def page_by_cursor(
    items: Sequence[T],
    visible: int,
    *,
    cursor: str | None,
    size: int,
    keep: Callable[[T], bool] | None = None,
) -> tuple[list[T], str | None]:
    """Up to ``size`` items newest first from ``cursor`` (the newest visible when ``None``).

    Returns ``(page, next_cursor)``; ``next_cursor`` is ``None`` on the last page. A cursor names
    a position, not an offset, so jobs created between two pages never shift or repeat items.

    Raises:
        ValueError: an invalid cursor.
    """
    start = visible - 1 if cursor is None else min(decode_cursor(cursor), visible - 1)
    page: list[T] = []
    for i in range(start, -1, -1):
        if keep is not None and not keep(items[i]):
            continue
        if len(page) == size:
            return page, encode_cursor(i)
        page.append(items[i])
    return page, None


class JobStore(Generic[J]):
    """A vendor's jobs: by id, by owner in creation order, and counted.

    Example (a vendor's create handler, after the budget check)::

        job = MyJob(job_id=engine.new_uuid(), owner=key, lifecycle=engine.plan(text, now), ...)
        engine.jobs.add(job)
    """

    def __init__(self) -> None:
        self._by_id: dict[str, J] = {}
        self._by_owner: dict[str, list[J]] = {}
        self._active = ActiveJobs()
        #: sha256 hex of the input -> jobs created with it.
        self.by_content: Counter[str] = Counter()
        #: Jobs beyond the first per content: what a client that resubmits leaves behind.
        self.duplicates = 0

    def add(self, job: J) -> None:
        """Keep ``job`` (created now: jobs are added in creation order)."""
        self._by_id[job.job_id] = job
        self._by_owner.setdefault(job.owner, []).append(job)
        self._active.add(job.lifecycle, job.created)
        if self.by_content[job.content_sha256]:
            self.duplicates += 1
        self.by_content[job.content_sha256] += 1

    def get(self, job_id: str) -> J | None:
        """The job, whoever owns it."""
        return self._by_id.get(job_id)

    def find(self, job_id: str, owner: str) -> J | None:
        """The job, or ``None`` if unknown or another owner's (both are "not found")."""
        job = self._by_id.get(job_id)
        return job if job is not None and job.owner == owner else None

    def __iter__(self) -> Iterator[J]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def owned(self, owner: str) -> Sequence[J]:
        """The owner's jobs, oldest first (a live view: do not modify)."""
        return self._by_owner.get(owner, [])

    def visible(self, owner: str, as_of: float) -> int:
        """How many of the owner's oldest-first jobs were created at or before ``as_of``."""
        return bisect.bisect_right(self.owned(owner), as_of, key=lambda job: job.created)

    def page_by_offset(
        self, owner: str, *, as_of: float, offset: int, size: int, keep: Callable[[J], bool] | None = None
    ) -> tuple[list[J], bool]:
        """A newest-first page by offset of the jobs listed ``as_of`` (see :func:`page_by_offset`)."""
        jobs = self.owned(owner)
        return page_by_offset(jobs, self.visible(owner, as_of), offset=offset, size=size, keep=keep)

    def page_by_cursor(
        self,
        owner: str,
        *,
        as_of: float,
        cursor: str | None,
        size: int,
        keep: Callable[[J], bool] | None = None,
    ) -> tuple[list[J], str | None]:
        """A newest-first page by cursor of the jobs listed ``as_of`` (see :func:`page_by_cursor`).

        Raises:
            ValueError: an invalid cursor.
        """
        jobs = self.owned(owner)
        return page_by_cursor(jobs, self.visible(owner, as_of), cursor=cursor, size=size, keep=keep)

    def active(self, now: float) -> int:
        """Jobs not ended at ``now``."""
        return self._active.count(now)

    @property
    def most_active(self) -> int:
        """The most jobs active at once so far."""
        return self._active.most

    def refresh(self) -> None:
        """Re-sort the active jobs after a cancel moved an end (``Engine.cancel`` calls this)."""
        self._active.refresh()
