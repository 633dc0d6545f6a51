"""Where could an error tracker find the API key in an exception? :func:`secret_paths` answers.

An error tracker (Sentry, Rollbar, Bugsnag...) serialises much more than the message: the chain of
``__cause__`` and ``__context__``, the exceptions' attributes, and the local variables of every
frame on their tracebacks. So a key can leak from an error whose message and ``repr`` are clean:
an aiohttp exception chained as the cause keeps ``request_info.headers['Authorization']``, and a
frame that built the header dict keeps it as a local.

The walk follows everything such a tracker follows, and a little more: exceptions (``args``,
attributes, cause, context, notes, the members of a group, and each traceback frame's locals),
mappings (keys and values), sequences and sets, and the ``__dict__`` of any other object, each
also seen through its ``repr``. It stops at modules, classes, functions and the event loop, and at
a depth where no tracker goes. An object that keeps the key in ``__slots__`` and masks its
``repr`` (``ade_async``'s ``ApiKey``) is opaque, as it is to any serialiser.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["secret_paths"]

#: Frames of the walk below an exception's own attributes and frame locals; trackers stop sooner
#: (Sentry's databag depth is 5), so a find beyond this is not one a tracker would make.
MAX_DEPTH = 8

_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    asyncio.AbstractEventLoop,
)


def secret_paths(
    error: BaseException, secrets: Iterable[str], *, skip_frames_in: Iterable[str] = ()
) -> list[str]:
    """Every place reachable from ``error`` where one of ``secrets`` appears, as a readable path
    such as ``error.__cause__.request_info.headers['Authorization']``; empty when there is none.

    ``skip_frames_in``: source files (or folders) whose frames are not searched: the caller's own
    code, which holds the key because it passed it (a test, or an application's ``main``).
    """
    skipped = tuple(str(path) for path in skip_frames_in)
    needles = [secret for secret in secrets if secret]
    found: list[str] = []
    seen: dict[int, int] = {}  # id -> the shallowest depth it was walked at

    def text_has(text: str | bytes | bytearray) -> bool:
        if isinstance(text, bytes | bytearray):
            return any(needle.encode() in text for needle in needles)
        return any(needle in text for needle in needles)

    def walk(value: Any, path: str, depth: int) -> None:
        if isinstance(value, str | bytes | bytearray):
            if text_has(value):
                found.append(path)
            return
        if value is None or isinstance(value, int | float | complex | bool) or depth > MAX_DEPTH:
            return
        if seen.get(id(value), MAX_DEPTH + 1) <= depth:
            return  # walked already, at least as deep
        seen[id(value)] = depth
        if isinstance(value, _OPAQUE):
            return
        if not isinstance(value, Mapping | list | tuple | set | frozenset):
            try:
                shown = repr(value)
            except Exception:  # a repr that fails shows nothing
                shown = ""
            if text_has(shown):
                found.append(f"repr({path})")
        if isinstance(value, BaseException):
            walk_exception(value, path, depth)
            return
        if isinstance(value, types.TracebackType):
            walk_traceback(value, path, depth)
            return
        if isinstance(value, types.FrameType):
            walk_locals(value, path, depth)
            return
        if isinstance(value, Mapping):
            try:
                items = list(value.items())
            except Exception:
                return
            for key, item in items:
                walk(key, f"{path}.keys()", depth + 1)
                walk(item, f"{path}[{key!r}]", depth + 1)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)
            return
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            for name, item in list(attributes.items()):
                walk(item, f"{path}.{name}", depth + 1)

    def walk_exception(exc: BaseException, path: str, depth: int) -> None:
        walk(exc.args, f"{path}.args", depth + 1)
        for name, item in list(vars(exc).items()):
            walk(item, f"{path}.{name}", depth + 1)
        if isinstance(exc, BaseExceptionGroup):
            walk(exc.exceptions, f"{path}.exceptions", depth + 1)
        # The chain is followed at the same depth: each link is an error a tracker reports whole.
        walk(exc.__cause__, f"{path}.__cause__", depth)
        walk(exc.__context__, f"{path}.__context__", depth)
        walk(exc.__traceback__, f"{path}.__traceback__", depth)

    def walk_traceback(tb: types.TracebackType, path: str, depth: int) -> None:
        current: types.TracebackType | None = tb
        while current is not None:
            frame = current.tb_frame
            if not (skipped and frame.f_code.co_filename.startswith(skipped)):
                walk_locals(frame, f"{path}<{frame.f_code.co_qualname}>", depth)
            current = current.tb_next

    def walk_locals(frame: types.FrameType, path: str, depth: int) -> None:
        for name, item in list(frame.f_locals.items()):
            walk(item, f"{path}.{name}", depth + 1)

    walk(error, "error", 0)
    return found
