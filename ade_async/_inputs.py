"""Turning what a user passes as a document into the bytes and file name a vendor receives.

Following the official SDKs (ade-api-notes §8): an ``os.PathLike`` is a file to upload, a ``str``
is text content (never a path), and ``bytes`` are content too. Files are read with aiofiles so a
large or slow file never blocks the event loop. Whether the vendor takes the content (Markdown,
PDF...) is the provider's question (``Provider.check_document``).

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

__all__ = ["MAX_FILE_BYTES", "DocumentInput", "read_document"]

#: Any of: a path to a file, text content, or bytes content.
DocumentInput: TypeAlias = "str | bytes | os.PathLike[str]"

#: The largest file read from a path: 50 MiB, the ``ade-async`` command's ``--max-size`` default
#: (and Contextual AI's documented limit); content passed as ``bytes`` is not limited here.
MAX_FILE_BYTES = 50 * 1024 * 1024


async def read_document(
    document: DocumentInput, *, filename: str | None = None, default_name: str = "document"
) -> tuple[bytes, str]:
    """The content and the upload file name for one document.

    Args:
        document: a path (``pathlib.Path`` or any ``os.PathLike``), or the content itself.
        filename: the name to upload under; defaults to the file's own name, or
            ``default_name`` (the provider's, e.g. ``document.md``) for content.

    Raises:
        InputError: the file cannot be read (missing, a directory, not a regular file, no
            permission, a symbolic link loop, I/O error) or is over :data:`MAX_FILE_BYTES`.
        TypeError: ``document`` is of an unsupported type.
    """
    if isinstance(document, os.PathLike):
        path = Path(os.fspath(document))
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
            raise InputError(f"File not found: {path}", path=str(path)) from exc
        except IsADirectoryError as exc:
            raise InputError(f"Expected a file but found a directory: {path}", path=str(path)) from exc
        except PermissionError as exc:
            raise InputError(f"No permission to read the file: {path}", path=str(path)) from exc
        except OSError as exc:
            raise InputError(
                f"Could not read the file {path}: {exc.strerror or exc}", path=str(path)
            ) from exc
        return content, filename or path.name
    if isinstance(document, str):
        return document.encode("utf-8"), filename or default_name
    if isinstance(document, bytes | bytearray | memoryview):
        return bytes(document), filename or default_name
    raise TypeError(
        "a document must be a path (os.PathLike), str content or bytes content, "
        f"not {type(document).__name__}"
    )


def _too_large(path: Path, size: int) -> InputError:
    return InputError(
        f"File too large: {path} has {size} bytes, over the {MAX_FILE_BYTES} read from a path "
        "(pass the content as bytes to send it anyway)",
        path=str(path),
    )
