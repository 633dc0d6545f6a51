"""Which files to extract, and where each one's outputs go.

A directory is searched recursively for names matching the glob (``*.md`` by default); symlinked
directories are not followed (no loops, no escaping the tree), and a folder that cannot be listed
becomes an input that fails with that reason rather than a silent gap. A file named on the command
line is taken whatever its name, so a non-``.md`` file there gets a clear per-file error rather than
being silently skipped. For ``DIR/a/b.md`` the result goes to ``OUT/a/b.json`` and an error to
``OUT/a/b.error.json``; a file named directly lands at ``OUT/<name>.json``. Output paths are built
from path components only and checked to stay inside ``OUT``.

:func:`discover` is the walk itself, a plain generator; the command runs it through
:func:`discover_in_thread`, so that listing folders (slow on a network file system, and a
100,000-file tree has many of them) never blocks the event loop the poller and the admission timer
run on. The thread hands inputs over in chunks through a bounded channel, a fixed distance ahead of
the run at most (:data:`DISCOVERY_AHEAD`): a huge tree is walked as the run goes, never listed into
memory up front.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio
import anyio.from_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = [
    "DISCOVERY_AHEAD",
    "JOURNAL_DIR",
    "Input",
    "UsageError",
    "check_arguments",
    "discover",
    "discover_in_thread",
]

#: The folder inside OUT that holds the journal and the lock (never an output of its own).
JOURNAL_DIR = ".ade-async"

#: The longest file name most file systems take, in bytes (ext4, XFS, APFS, NTFS in UTF-16 units).
_NAME_MAX = 255

#: The discovery thread hands inputs over in chunks of 1, 2, 4, ... up to this many (the first
#: inputs start at once; later ones cost one trip to the event loop per chunk, not per file) ...
_CHUNK = 64
#: ... through a channel that holds this many chunks. Small: every input waiting there is a few
#: objects more for the garbage collector's full passes to walk, and the run never waits for it.
_CHANNEL_CHUNKS = 2
#: The most inputs discovered and not yet taken by the run: the chunks in the channel, one the
#: thread waits to put in, one it is filling, and the rest of the one the run is taking from.
DISCOVERY_AHEAD = (_CHANNEL_CHUNKS + 3) * _CHUNK


class UsageError(Exception):
    """The command line cannot be carried out (exit code 2, nothing submitted)."""


@dataclass(frozen=True, slots=True)
class Input:
    """One file to extract.

    Attributes:
        source: the file, as found.
        key: its path relative to its input root, POSIX style; the journal's key.
        output: where its result goes.
        error_output: where its error goes, if it fails (``None`` when its output path is taken
            by another input: the error is then only reported, never written over that input's).
        problem: a reason it cannot be extracted, found while discovering it.
    """

    source: Path
    key: str
    output: Path
    error_output: Path | None
    problem: str | None = None


def discover(
    arguments: Sequence[str],
    out: Path,
    pattern: str = "*.md",
    *,
    kinds: Sequence[str] = (".md",),
    what: str = "Markdown",
) -> Iterator[Input]:
    """The inputs named by ``arguments`` (files and directories), lazily, in a stable order.

    ``kinds`` are the suffixes the provider's vendor takes (``what`` they are called): a file named
    directly with another fails alone, and the suffix is dropped from its outputs' names
    (``a.md`` -> ``a.json``).

    Raises:
        UsageError: an argument names nothing at all.
    """
    out = out.resolve()
    check_arguments(arguments)
    seen: set[str] = set()
    for argument in arguments:
        root = Path(argument)
        if root.is_dir() and not root.is_symlink():
            for path, relative, problem in _walk(root, pattern, out):
                yield _make(path, relative, out, seen, kinds, what, problem=problem)
        else:
            # A file named directly (or a symlink, possibly broken or looping: reading it will say).
            yield _make(root, PurePosixPath(root.name), out, seen, kinds, what, explicit=True)


@contextlib.asynccontextmanager
async def discover_in_thread(
    arguments: Sequence[str],
    out: Path,
    pattern: str = "*.md",
    *,
    kinds: Sequence[str] = (".md",),
    what: str = "Markdown",
) -> AsyncIterator[AsyncIterator[Input]]:
    """:func:`discover`, walked in a worker thread: ``async with`` gives an async iterator of the
    same inputs in the same order.

    The thread stays at most :data:`DISCOVERY_AHEAD` inputs ahead of the reader. Leaving the block
    (having read everything or not) stops the thread and waits for it. An error of the walk
    (:class:`UsageError`) is raised to the reader after the inputs found before it.

    Example::

        async with discover_in_thread(["docs"], out) as inputs:
            async for item in inputs:
                ...
    """
    send, receive = anyio.create_memory_object_stream[list[Input] | Exception](_CHANNEL_CHUNKS)
    stop = threading.Event()
    error: BaseException | None = None

    async def walk() -> None:
        with send:  # closed once the thread is done: the reader's iteration then ends
            limiter = anyio.CapacityLimiter(1)  # its own: no token of the shared pool held for long
            await anyio.to_thread.run_sync(
                _walk_into, arguments, out, pattern, kinds, what, send, stop, limiter=limiter
            )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(walk)
        try:
            with receive:
                yield _Received(receive)
        except GeneratorExit:
            raise
        except BaseException as exc:  # re-raised below, not wrapped in an ExceptionGroup
            error = exc
        finally:
            # The reader is done: a thread waiting for room in the channel is woken (the receive
            # side is closed) and one still walking stops at its next input.
            stop.set()
    if error is not None:
        raise error


class _Received:
    """The reader's side of :func:`discover_in_thread`: inputs one by one from the chunks."""

    def __init__(self, receive: MemoryObjectReceiveStream[list[Input] | Exception]) -> None:
        self._receive = receive
        self._chunk: Iterator[Input] = iter(())

    def __aiter__(self) -> _Received:
        return self

    async def __anext__(self) -> Input:
        while True:
            item = next(self._chunk, None)
            if item is not None:
                return item
            try:
                message = await self._receive.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            if isinstance(message, Exception):
                raise message
            self._chunk = iter(message)


def _walk_into(
    arguments: Sequence[str],
    out: Path,
    pattern: str,
    kinds: Sequence[str],
    what: str,
    send: MemoryObjectSendStream[list[Input] | Exception],
    stop: threading.Event,
) -> None:
    """In the discovery thread: walk, and send the inputs in growing chunks; then any error."""
    chunk: list[Input] = []
    size = 1
    try:
        try:
            for item in discover(arguments, out, pattern, kinds=kinds, what=what):
                if stop.is_set():
                    return
                chunk.append(item)
                if len(chunk) >= size:
                    anyio.from_thread.run(send.send, chunk)  # waits while the channel is full
                    chunk, size = [], min(2 * size, _CHUNK)
        except Exception as exc:  # the reader raises it, after the inputs found before it
            if chunk:
                anyio.from_thread.run(send.send, chunk)
            anyio.from_thread.run(send.send, exc)
            return
        if chunk:
            anyio.from_thread.run(send.send, chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        return  # the reader stopped reading


def check_arguments(arguments: Sequence[str]) -> None:
    """Refuse, before anything starts, arguments that name nothing at all."""
    for argument in arguments:
        if not os.path.lexists(argument):
            raise UsageError(f"no such file or directory: {argument}")


def _walk(root: Path, pattern: str, out: Path) -> Iterator[tuple[Path, PurePosixPath, str | None]]:
    """Matching files under ``root``, and every folder that could not be listed (with why)."""
    unlisted: list[OSError] = []
    for directory, subdirectories, files in os.walk(root, followlinks=False, onerror=unlisted.append):
        # A folder that cannot be listed (no permission) is an input that fails, never a silent gap.
        yield from _unlisted(root, unlisted)
        here = Path(directory)
        # Never descend into our own output folder or journal, and walk in a stable order.
        subdirectories[:] = sorted(
            d for d in subdirectories if d != JOURNAL_DIR and (here / d).resolve() != out
        )
        for name in sorted(files):
            if fnmatch.fnmatchcase(name, pattern):
                path = here / name
                yield path, PurePosixPath(path.relative_to(root).as_posix()), None
    yield from _unlisted(root, unlisted)


def _unlisted(root: Path, errors: list[OSError]) -> Iterator[tuple[Path, PurePosixPath, str | None]]:
    while errors:
        error = errors.pop(0)
        folder = Path(os.fsdecode(error.filename)) if error.filename is not None else root
        relative = PurePosixPath(folder.relative_to(root).as_posix()) if folder != root else PurePosixPath()
        reason = f"cannot list this folder: {error.strerror or error}"
        yield folder, relative if relative.name else PurePosixPath(root.name), reason


def _make(
    path: Path,
    relative: PurePosixPath,
    out: Path,
    seen: set[str],
    kinds: Sequence[str],
    what: str,
    *,
    explicit: bool = False,
    problem: str | None = None,
) -> Input:
    key = relative.as_posix()
    kind = next((k for k in kinds if relative.name.lower().endswith(k.lower())), None)
    stem = relative.name[: -len(kind)] if kind else relative.name
    output = _inside(out, relative.parent, f"{stem}.json")
    error_output = _inside(out, relative.parent, f"{stem}.error.json")
    # A name too long for its error file is reported on stderr and in the journal only.
    error_output_fits = len(os.fsencode(error_output.name)) <= _NAME_MAX
    if explicit and kinds and kind is None:
        problem = f"not a {what} file: the API accepts only {', '.join(kinds)} files"
    if len(os.fsencode(output.name)) > _NAME_MAX:
        # Refused before it is sent: its result could not be written, and the job would be paid.
        problem = f"the file name is too long: its result's name would be over {_NAME_MAX} bytes"
    if key in seen:
        # Two inputs map to one output (same relative path under two folders): the later one is
        # refused under a journal key of its own, and nothing of the first one is touched.
        duplicate = 2
        while f"{key}#{duplicate}" in seen:
            duplicate += 1
        seen.add(f"{key}#{duplicate}")
        return Input(path, f"{key}#{duplicate}", output, None, f"another input already writes to {output}")
    seen.add(key)
    return Input(path, key, output, error_output if error_output_fits else None, problem)


def _inside(out: Path, parent: PurePosixPath, name: str) -> Path:
    """``out/parent/name``, refusing anything that would leave ``out``."""
    parts = [p for p in parent.parts if p not in ("", ".")]
    if any(p in ("..", "/") or os.sep in p for p in parts) or name in ("", ".", "..") or os.sep in name:
        raise UsageError(f"refusing an output path outside {out}: {parent / name}")
    target = out.joinpath(*parts, name)
    if os.path.commonpath([out, os.path.normpath(target)]) != str(out):
        raise UsageError(f"refusing an output path outside {out}: {target}")
    return target
