"""A probe of the event loop's responsiveness, for benchmarks (not a user option).

Everything the command does shares one event loop with the poller, the admission timer and the
Redis heartbeat, so any blocking call (a SQLite commit, a directory listing, hashing a large file)
delays all of them. The probe measures that delay directly: a task asks to wake every ``interval``
seconds and records how late it actually woke. A late wake-up is a stall: for that long nothing
else could run on the loop either.

It runs only when the environment variable :data:`ENV` is set (``benchmarks/bench_cli.py`` sets
it), and its figures are then added to the ``--json`` summary under ``loop_lag``. It is not
documented for users: it measures the command, it does not change what the command does.
"""

from __future__ import annotations

import array
import os
import time

import anyio

__all__ = ["ENV", "LoopLagProbe", "probe_from_environment"]

#: Set (to anything but ``""`` or ``0``) to run the probe.
ENV = "ADE_ASYNC_LOOP_LAG_PROBE"


class LoopLagProbe:
    """Wakes every ``interval`` seconds and records how late each wake-up came.

    Args:
        interval: seconds between wake-ups; the figures' resolution. 5 ms is fine enough to see a
            stall that matters (a poll or a heartbeat late by tens of milliseconds) and costs a few
            hundred wake-ups per second.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        # Lateness of each wake-up, in seconds: 8 bytes each, about 5.8 MB for an hour of running.
        self._lags = array.array("d")

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            started = time.perf_counter()
            await anyio.sleep(self.interval)
            self._lags.append(max(0.0, time.perf_counter() - started - self.interval))

    def summary(self) -> dict[str, float | int]:
        """The largest and the 99th-percentile lateness in milliseconds, and the number of samples."""
        ordered = sorted(self._lags)
        if not ordered:
            return {"samples": 0, "max_ms": 0.0, "p99_ms": 0.0}
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return {
            "samples": len(ordered),
            "max_ms": round(ordered[-1] * 1000, 2),
            "p99_ms": round(p99 * 1000, 2),
        }


def probe_from_environment() -> LoopLagProbe | None:
    """A probe when :data:`ENV` asks for one, else ``None`` (the normal case)."""
    if os.environ.get(ENV, "") in ("", "0"):
        return None
    return LoopLagProbe()
