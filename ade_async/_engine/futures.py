"""Awaiting a future so that a cancellation always wins.

A waiter's future can be failed (the client closing fails every waiter with
:class:`ClientClosedError`) in the same instant its task is cancelled. anyio delivers a cancel
scope's cancellation only to a task that is waiting, so such a task would wake with the closing
error and carry it out of the cancelled scope: the cancellation converted into an error. Awaiting
through :func:`settled` checks for a pending cancellation before raising the future's error.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import anyio.lowlevel

__all__ = ["settled"]

_T = TypeVar("_T")


async def settled(awaitable: asyncio.Future[_T]) -> _T:
    """Await ``awaitable``; if it fails while this task is being cancelled, raise the cancellation."""
    try:
        return await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException:
        await anyio.lowlevel.checkpoint_if_cancelled()
        raise
