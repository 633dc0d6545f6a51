"""Which files to extract, and where each one's outputs go.

A directory is searched recursively for names matching the glob (``*.md`` by default); symlinked
directories are not followed (no loops, no escaping the tree), and a folder that cannot be listed
becomes an input that fails with that reason rather than a silent gap. A file named on the command
line is taken whatever its name, so a non-``.md`` file there gets a clear per-file error rather than
being silently skipped. For ``DIR/a/b.md`` the result goes to ``OUT/a/b.json`` and an error to
``OUT/a/b.error.json``; a file named directly lands at ``OUT/<name>.json``. Output paths are built
from path components only and checked to stay inside ``OUT``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["JOURNAL_DIR", "Input", "UsageError", "check_arguments", "discover"]

#: The folder inside OUT that holds the journal and the lock (never an output of its own).
JOURNAL_DIR = ".ade-async"

#: The longest file name most file systems take, in bytes (ext4, XFS, APFS, NTFS in UTF-16 units).
_NAME_MAX = 255


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
