"""Staged inputs and presigned links. Sans-I/O, no vendor.

Two vendors stage inputs before a create: LlamaCloud uploads a file and gets a ``dfl-...`` id,
Contextual uploads a PDF and gets a UUID ``document_id`` (and registers a schema, getting a
``schema_id``). A :class:`Catalog` keeps such things by id, for their owner only, in upload order,
and pages them like jobs; a :class:`StoredFile` keeps an upload's bytes, whose text a later create
hands to the extraction rule::

    upload = StoredFile.of(filename=part.filename, content_type=part.content_type, data=part.data)
    engine.files.add(f"dfl-{engine.new_uuid()}", key, upload, now)
    ...
    upload = engine.files.find(body.file_input, key)        # None: the vendor's 404
    text = upload.text()                                    # None: not text (the vendor decides)

:class:`ExpiringLinks` issues tokens for presigned-style download URLs that stop working after a
time to live (LandingAI's result URLs; LlamaCloud's file download URLs).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._jobs import page_by_cursor

__all__ = ["Catalog", "ExpiringLinks", "StoredFile"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFile:
    """An uploaded file's name, type and bytes."""

    filename: str
    content_type: str | None
    data: bytes
    sha256: str

    @classmethod
    def of(cls, *, filename: str, content_type: str | None, data: bytes) -> StoredFile:
        """A stored file, its sha256 computed."""
        return cls(
            filename=filename, content_type=content_type, data=data, sha256=hashlib.sha256(data).hexdigest()
        )

    def text(self) -> str | None:
        """The bytes as UTF-8 text (a leading BOM dropped), or ``None`` when they are not UTF-8."""
        try:
            return self.data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    item_id: str
    owner: str
    created: float
    item: T


class Catalog(Generic[T]):
    """Things a vendor issued ids for (uploads, registered schemas), per owner, in issue order."""

    def __init__(self) -> None:
        self._by_id: dict[str, _Entry[T]] = {}
        self._by_owner: dict[str, list[_Entry[T]]] = {}

    def add(self, item_id: str, owner: str, item: T, now: float) -> None:
        """Keep ``item`` under ``item_id`` for ``owner``."""
        entry = _Entry(item_id, owner, now, item)
        self._by_id[item_id] = entry
        self._by_owner.setdefault(owner, []).append(entry)

    def find(self, item_id: str, owner: str) -> T | None:
        """The item, or ``None`` if unknown or another owner's."""
        entry = self._by_id.get(item_id)
        return entry.item if entry is not None and entry.owner == owner else None

    def __len__(self) -> int:
        return len(self._by_id)

    def page(
        self, owner: str, *, cursor: str | None, size: int, keep: Callable[[T], bool] | None = None
    ) -> tuple[list[tuple[str, T]], str | None]:
        """Up to ``size`` ``(id, item)`` pairs, newest first, from ``cursor``; and the next cursor.

        Raises:
            ValueError: an invalid cursor.
        """
        entries: Sequence[_Entry[T]] = self._by_owner.get(owner, [])
        chosen, following = page_by_cursor(
            entries,
            len(entries),
            cursor=cursor,
            size=size,
            keep=None if keep is None else (lambda entry: keep(entry.item)),
        )
        return [(entry.item_id, entry.item) for entry in chosen], following


class ExpiringLinks(Generic[T]):
    """Tokens that stand for something until they expire.

    Args:
        new_token: makes a fresh, unguessable token (the engine's seeded RNG, for reproducibility).
    """

    def __init__(self, new_token: Callable[[], str]) -> None:
        self._new_token = new_token
        self._links: dict[str, tuple[T, float]] = {}
        self._expiry: deque[tuple[float, str]] = deque()

    def _prune(self, now: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, token = expiry.popleft()
            self._links.pop(token, None)

    def issue(self, item: T, now: float, ttl: float) -> str:
        """A fresh token for ``item``, valid for ``ttl`` seconds from ``now``.

        Tokens must be issued with one ``ttl`` per instance, so they expire in issue order.
        """
        self._prune(now)
        token = self._new_token()
        expires = now + ttl
        self._links[token] = (item, expires)
        self._expiry.append((expires, token))
        return token

    def redeem(self, token: str, now: float) -> T | None:
        """What a valid token stands for, or ``None`` if the token is unknown or expired."""
        self._prune(now)
        entry = self._links.get(token)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def expire_all(self) -> None:
        """Expire every token issued so far."""
        self._links.clear()
        self._expiry.clear()
