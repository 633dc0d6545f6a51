"""Writing outputs: atomically (never a partial file), durably, and off the event loop.

:func:`write_atomic` writes a temporary sibling, syncs it to disk, renames it over the final name
and syncs the folder (the rename is an entry of the folder), all in one worker-thread call. Only
once it has returned may the journal record the input as done: after a power loss, a journal that
says ``completed`` (or ``failed``) comes with the whole result (or error file), never an empty or
missing one. A folder it has to create is synced into its parent the same way.

Temporary names have a shape the command can prove is its own::

    .ade-async.<folder tag>.<run tag>-<n>.<final name, cut to 40 characters>.tmp

The folder tag is made once per output folder and kept in its journal; the run tag is new each
run. A run killed during a write leaves such a file behind. The next run on that folder holds its
lock, so no other run is writing there: every file with the folder's tag and another run's tag is
stale, and :func:`remove_stale_temporaries` removes those, and only those (regular files inside
OUT, found without following symbolic links). A user's own ``.notes.tmp``, another folder's
temporary files and anything outside OUT are never touched.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec

from .._errors import ADEError
from ._discover import JOURNAL_DIR

__all__ = ["TempNames", "error_document", "remove_stale_temporaries", "write_atomic"]

_PREFIX: Final = ".ade-async."
_TAG: Final = re.compile(r"[0-9a-f]{16}")
_NAME: Final = re.compile(
    r"\.ade-async\.(?P<folder>[0-9a-f]{16})\.(?P<run>[0-9a-f]{8})-[0-9]+\..*\.tmp", re.DOTALL
)


class TempNames:
    """The temporary file names of one run on one output folder.

    Args:
        folder_tag: the output folder's tag (16 hex digits), kept in its journal.
        run_tag: this run's (8 hex digits); a fresh one by default.
    """

    def __init__(self, folder_tag: str, run_tag: str | None = None) -> None:
        if not _TAG.fullmatch(folder_tag):
            raise ValueError(f"a folder tag is 16 hex digits, not {folder_tag!r}")
        self.folder_tag = folder_tag
        self.run_tag = run_tag if run_tag is not None else secrets.token_hex(4)
        self._count = itertools.count()  # unique within the run: no random draw per file

    @staticmethod
    def new_folder_tag() -> str:
        """A fresh folder tag: 64 random bits, so no other folder's files carry it by chance."""
        return secrets.token_hex(8)

    def next(self, final_name: str) -> str:
        """A new temporary name for a file to be renamed to ``final_name`` (in the same folder).

        The final name is cut to 40 characters, so the temporary name fits wherever the final one
        does (255 bytes, even in 4-byte characters)."""
        return f"{_PREFIX}{self.folder_tag}.{self.run_tag}-{next(self._count)}.{final_name[:40]}.tmp"

    def is_stale(self, name: str) -> bool:
        """Whether ``name`` is a temporary file of this folder left by another run."""
        match = _NAME.fullmatch(name)
        return match is not None and match["folder"] == self.folder_tag and match["run"] != self.run_tag


_anonymous: TempNames | None = None


def _anonymous_names() -> TempNames:
    """Names for writes outside a run's folder (``jobs wait``): never claimed by a clean-up."""
    global _anonymous
    if _anonymous is None:
        _anonymous = TempNames(TempNames.new_folder_tag())
    return _anonymous


async def write_atomic(
    path: Path, data: bytes, *, names: TempNames | None = None, remove: Path | None = None
) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either absent, the old file, or the
    whole new file, and so that the new file is on disk when this returns.

    In a worker thread: write a temporary sibling and sync it, rename it over ``path`` (atomic on
    POSIX), remove ``remove`` if given (a stale error file next to a new result; its folder is
    ``path``'s), then sync the folder, so the rename and the removal are on disk too.

    Raises:
        OSError: the file could not be written (no temporary file is left behind).
    """
    temporary = path.with_name((names or _anonymous_names()).next(path.name))
    await anyio.to_thread.run_sync(_write_durably, path, temporary, data, remove)


def _write_durably(path: Path, temporary: Path, data: bytes, remove: Path | None) -> None:
    folder = path.parent
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        descriptor = os.open(temporary, flags, 0o666)
    except FileNotFoundError:  # its folder does not exist yet (the first result in it)
        _make_folders(folder)
        descriptor = os.open(temporary, flags, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)  # the content is on disk before a name points at it
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if remove is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(remove)
    _sync_folder(folder)  # the rename (and the removal) are on disk before the journal says done


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each synced into its parent."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile for another result
            os.mkdir(made)
        _sync_folder(made.parent)


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_stale_temporaries(out: Path, names: TempNames) -> int:
    """Remove the temporary files earlier runs left in ``out``; returns how many.

    Only regular files whose name :meth:`TempNames.is_stale` claims, inside ``out`` (its journal
    folder excepted), found by walking with folder descriptors and without following symbolic
    links: a link planted in OUT can lead the walk nowhere else. The caller holds ``out``'s lock.
    Blocking: run it in a worker thread.
    """
    removed = 0
    for folder, subfolders, files, folder_fd in os.fwalk(out, follow_symlinks=False):
        if folder == os.fspath(out):
            subfolders[:] = [name for name in subfolders if name != JOURNAL_DIR]
        for name in files:
            if not names.is_stale(name):
                continue
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=folder_fd)
                    removed += 1
    return removed


def error_document(*, source: Path, stage: str, error: BaseException, job_id: str | None) -> bytes:
    """The ``.error.json`` of a failed input: stage, error type, message and job id."""
    document: dict[str, Any] = {
        "input": str(source),
        "stage": stage,
        "error_type": type(error).__name__,
        "message": str(error),
        "job_id": job_id,
    }
    if isinstance(error, ADEError):
        status = getattr(error, "status_code", None)
        if status is not None:
            document["status_code"] = status
        reason = getattr(error, "failure_reason", None)
        if reason is not None:
            document["failure_reason"] = reason
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
