"""Turning what a user passes as Markdown into the bytes and file name the API receives.

Following the official SDK (ade-api-notes §8): an ``os.PathLike`` is a file to upload, a ``str`` is
Markdown content (never a path), and ``bytes`` are content too. Files are read with aiofiles so a
large or slow file never blocks the event loop.

A path must name a regular file of at most :data:`MAX_FILE_BYTES`: a FIFO or a device would block
or never end (``/dev/zero``), and a huge file would be read whole into memory before any API could
refuse it. Both get an :class:`InputError` before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TypeAlias

import aiofiles
import aiofiles.os

from ._errors import InputError

__all__ = [
    "CHECK_SLICE",
    "DEFAULT_FILENAME",
    "MAX_FILE_BYTES",
    "MarkdownInput",
    "check_markdown",
    "markdown_problem",
    "read_markdown",
]

#: Any of: a path to a Markdown file, Markdown text, or Markdown bytes.
MarkdownInput: TypeAlias = "str | bytes | os.PathLike[str]"

#: The file name sent with content given as ``str`` or ``bytes`` (the API wants a ``.md`` name).
DEFAULT_FILENAME = "document.md"

#: The largest Markdown file read from a path: 50 MiB, the ``ade-async`` command's ``--max-size``
#: default. The API publishes no limit; content passed as ``bytes`` is not limited here.
MAX_FILE_BYTES = 50 * 1024 * 1024


async def read_markdown(markdown: MarkdownInput, *, filename: str | None = None) -> tuple[bytes, str]:
    """The content and the upload file name for one Markdown input.

    Args:
        markdown: a path (``pathlib.Path`` or any ``os.PathLike``), or the content itself.
        filename: the name to upload under; defaults to the file's own name, or
            ``document.md`` for content.

    Raises:
        InputError: the file cannot be read (missing, a directory, not a regular file, no
            permission, a symbolic link loop, I/O error) or is over :data:`MAX_FILE_BYTES`.
        TypeError: ``markdown`` is of an unsupported type.
    """
    if isinstance(markdown, os.PathLike):
        path = Path(os.fspath(markdown))
        try:
            # Checked before opening: opening a FIFO blocks until a writer comes.
            info = await aiofiles.os.stat(path)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError(path)
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"Not a regular file (a FIFO, socket or device): {path}", path=str(path))
            if info.st_size > MAX_FILE_BYTES:
                raise _too_large(path, info.st_size)
            async with aiofiles.open(path, "rb") as handle:
                content = await handle.read(MAX_FILE_BYTES + 1)
            if len(content) > MAX_FILE_BYTES:  # it grew since the check
                raise _too_large(path, len(content))
        except FileNotFoundError as exc:
            raise InputError(f"Markdown file not found: {path}", path=str(path)) from exc
        except IsADirectoryError as exc:
            raise InputError(
                f"Expected a Markdown file but found a directory: {path}", path=str(path)
            ) from exc
        except PermissionError as exc:
            raise InputError(f"No permission to read Markdown file: {path}", path=str(path)) from exc
        except OSError as exc:
            raise InputError(
                f"Could not read Markdown file {path}: {exc.strerror or exc}", path=str(path)
            ) from exc
        return content, filename or path.name
    if isinstance(markdown, str):
        return markdown.encode("utf-8"), filename or DEFAULT_FILENAME
    if isinstance(markdown, bytes | bytearray | memoryview):
        return bytes(markdown), filename or DEFAULT_FILENAME
    raise TypeError(
        f"markdown must be a path (os.PathLike), str content or bytes content, not {type(markdown).__name__}"
    )


#: The Markdown checks look at content in slices of this many bytes. Each slice is one short call
#: into C that holds the GIL (about a millisecond); between slices other threads run. Checked in a
#: worker thread (the ``ade-async`` command does), 50 MiB in one call would still hold the GIL, and
#: so stall the event loop, for 50-80 ms.
CHECK_SLICE = 1 << 20


def markdown_problem(content: bytes, *, slice_size: int = CHECK_SLICE) -> str | None:
    """Why the API would refuse this Markdown (it answers 422 for both), or ``None``.

    Empty means nothing but ASCII whitespace; the first byte that is not valid UTF-8 is named.
    ``slice_size`` (see :data:`CHECK_SLICE`) changes how the work is cut, never the answer.
    """
    size = len(content)
    if all(content[i : i + slice_size].isspace() for i in range(0, size, slice_size)):
        return "empty file: there is nothing to extract"
    start = 0
    while start < size:
        # Never cut a character in two: the slice takes the (at most 3) continuation bytes
        # 10xxxxxx that follow its end. More of them would be invalid anyway, wherever cut.
        cut = min(start + slice_size, size)
        limit = min(cut + 3, size)
        while cut < limit and content[cut] & 0xC0 == 0x80:
            cut += 1
        piece = content[start:cut]
        if not piece.isascii():  # ASCII is UTF-8: only other slices need decoding
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (byte {start + exc.start}): the API takes UTF-8 Markdown"
        start = cut
    return None


def check_markdown(content: bytes, filename: str) -> None:
    """Raise :class:`InputError` for Markdown the API would refuse: nothing is sent for it."""
    problem = markdown_problem(content)
    if problem is not None:
        raise InputError(f"{filename}: {problem}", path=filename)


def _too_large(path: Path, size: int) -> InputError:
    return InputError(
        f"Markdown file too large: {path} has {size} bytes, over the {MAX_FILE_BYTES} read from a path "
        "(pass the content as bytes to send it anyway)",
        path=str(path),
    )
