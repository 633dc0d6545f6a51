"""Turning what a user passes as Markdown into the bytes and file name the API receives.

Following the official SDK (ade-api-notes §8): an ``os.PathLike`` is a file to upload, a ``str`` is
Markdown content (never a path), and ``bytes`` are content too. Files are read with aiofiles so a
large or slow file never blocks the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

import aiofiles

from ._errors import InputError

__all__ = ["DEFAULT_FILENAME", "MarkdownInput", "read_markdown"]

#: Any of: a path to a Markdown file, Markdown text, or Markdown bytes.
MarkdownInput: TypeAlias = "str | bytes | os.PathLike[str]"

#: The file name sent with content given as ``str`` or ``bytes`` (the API wants a ``.md`` name).
DEFAULT_FILENAME = "document.md"


async def read_markdown(markdown: MarkdownInput, *, filename: str | None = None) -> tuple[bytes, str]:
    """The content and the upload file name for one Markdown input.

    Args:
        markdown: a path (``pathlib.Path`` or any ``os.PathLike``), or the content itself.
        filename: the name to upload under; defaults to the file's own name, or
            ``document.md`` for content.

    Raises:
        InputError: the file cannot be read (missing, a directory, no permission, I/O error).
        TypeError: ``markdown`` is of an unsupported type.
    """
    if isinstance(markdown, os.PathLike):
        path = Path(os.fspath(markdown))
        try:
            async with aiofiles.open(path, "rb") as handle:
                content = await handle.read()
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
