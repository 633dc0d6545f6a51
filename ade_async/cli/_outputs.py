"""Writing outputs: atomically (never a partial file), without blocking the event loop."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

import aiofiles
import aiofiles.os
import msgspec

from .._errors import ADEError

__all__ = ["error_document", "remove_quietly", "write_atomic"]


async def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either absent, the old file, or the
    whole new file: write a temporary sibling, then rename it over (atomic on POSIX)."""
    await aiofiles.os.makedirs(path.parent, exist_ok=True)
    # The name is cut short so the temporary name fits wherever the final one does (255 bytes,
    # even in 4-byte characters).
    temporary = path.with_name(f".{path.name[:40]}.{secrets.token_hex(6)}.tmp")
    try:
        async with aiofiles.open(temporary, "wb") as handle:
            await handle.write(data)
            await handle.flush()
        await aiofiles.os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


async def remove_quietly(path: Path) -> None:
    """Remove a stale file (an old error next to a new result); a missing file is fine."""
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


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
