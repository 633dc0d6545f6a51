"""Progress of a bulk extraction on stderr: a live display on a terminal, plain lines otherwise.

The live display needs the ``cli`` extra (rich); without it, or when stderr is not a terminal, a
plain line is printed at intervals. ``--quiet`` shows nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Literal, TypeAlias

import anyio

__all__ = ["Mode", "ProgressReporter", "Tally", "choose_mode"]

Mode: TypeAlias = Literal["live", "plain", "quiet"]


@dataclass
class Tally:
    """The run's counters, updated by the run as inputs move along."""

    total: int = 0
    discovering: bool = True
    skipped: int = 0  # completed in an earlier run
    completed: int = 0
    failed: int = 0
    submitting: int = 0
    in_flight: int = 0
    pending: int = 0  # still running server-side when the run stopped (deadline or interrupt)
    possible_duplicates: int = 0
    reconciled: int = 0  # lost create answers whose job was found and adopted
    outcome_unknown: int = 0  # lost create answers whose job was not found (failed, resumable)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.skipped + self.completed + self.failed

    def rate(self) -> float:
        """Inputs finished per second in this run (skips excluded)."""
        elapsed = time.monotonic() - self.started
        return (self.completed + self.failed) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        if self.discovering or rate <= 0:
            return None
        return max(0, self.total - self.done) / rate


def choose_mode(*, quiet: bool, stream: IO[str] = sys.stderr) -> Mode:
    if quiet:
        return "quiet"
    if stream.isatty():
        try:
            import rich  # noqa: F401  (the optional extra)
        except ImportError:
            return "plain"
        return "live"
    return "plain"


class ProgressReporter:
    """Renders a :class:`Tally` until stopped.

    Args:
        tally: the counters.
        mode: ``live``, ``plain`` or ``quiet``.
        waiting: how many creates wait for the quota right now.
        interval: seconds between plain lines.
        stream: where to write (stderr).
    """

    def __init__(
        self,
        tally: Tally,
        *,
        mode: Mode,
        waiting: Callable[[], int],
        interval: float = 10.0,
        stream: IO[str] = sys.stderr,
    ) -> None:
        self._tally = tally
        self._mode = mode
        self._waiting = waiting
        self._interval = interval
        self._stream = stream

    def line(self) -> str:
        t = self._tally
        total = f"{t.total}{'+' if t.discovering else ''}"
        eta = t.eta()
        parts = [
            f"{t.done}/{total} done",
            f"{t.completed} completed",
            f"{t.failed} failed",
            f"{t.skipped} skipped",
            f"{t.in_flight + t.submitting} in flight",
            f"{self._waiting()} waiting on the quota",
            f"{t.rate():.1f}/s",
            f"ETA {_duration(eta)}" if eta is not None else "ETA ?",
        ]
        return " | ".join(parts)

    async def run(self) -> None:
        """Report until cancelled."""
        if self._mode == "quiet":
            await anyio.sleep_forever()
        elif self._mode == "plain":
            while True:
                await anyio.sleep(self._interval)
                print(self.line(), file=self._stream, flush=True)
        else:
            await self._live()

    async def _live(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(file=self._stream)
        columns = (
            TextColumn("[bold]ade-async"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("extract", total=None, detail="")
            try:
                while True:
                    t = self._tally
                    detail = (
                        f"[green]{t.completed} ok[/] [red]{t.failed} failed[/] {t.skipped} skipped "
                        f"{t.in_flight + t.submitting} in flight {self._waiting()} waiting {t.rate():.1f}/s"
                    )
                    progress.update(
                        task, completed=t.done, total=None if t.discovering else t.total, detail=detail
                    )
                    await anyio.sleep(0.25)
            finally:
                t = self._tally
                progress.update(task, completed=t.done, total=t.total)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
