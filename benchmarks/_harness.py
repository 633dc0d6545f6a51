"""Shared pieces of the benchmarks: the simulator in its own process, timing, and reporting.

The simulator runs in a separate OS process so its CPU time is not charged to the client under
test, as it would be against the real API.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def quota_schedule(creates: int, windows: tuple[tuple[int, float], ...]) -> list[float]:
    """The earliest moment each of ``creates`` creates can go under exact sliding windows, all
    queued at t = 0, in order: the quota's lower bound, from ade_async's own sans-I/O gate (no
    margin). Without windows every create can go at t = 0."""
    if not windows:
        return [0.0] * creates
    import ade_async
    from ade_async._engine.admission import AdmissionCore

    core = AdmissionCore(ade_async.RateLimit(windows=windows, safety_margin=0.0), now=0.0)
    for waiter in range(creates):
        core.join(waiter)
    now = 0.0
    admitted: list[float] = []
    while core.waiting:
        grants, wake = core.poll(now)
        admitted.extend(grant.admitted_at for grant in grants)
        if wake is None:
            break
        now = wake
    return admitted


def quota_schedule_end(creates: int, windows: tuple[tuple[int, float], ...]) -> float:
    """When the last of ``creates`` creates can go at the earliest (see :func:`quota_schedule`)."""
    schedule = quota_schedule(creates, windows)
    return schedule[-1] if schedule else 0.0


SIM_KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator_process(*args: str, script: Path | None = None) -> Iterator[str]:
    """Run ``python -m ade_async.testing`` (or ``script``, which takes the same ``--port`` and
    ``--api-key`` options) on a free loopback port; yield its base URL."""
    port = free_port()
    program = [str(script)] if script is not None else ["-m", "ade_async.testing"]
    command = [sys.executable, *program, "--port", str(port), "--api-key", SIM_KEY, *args]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                # The stats endpoint, not an API one: the probe must not show in the request counters.
                urllib.request.urlopen(base_url + "/_simulator/stats", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # any HTTP answer means the server is up
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"the simulator did not start: {err}") from None
                time.sleep(0.05)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def fetch_json(url: str) -> Any:
    """GET ``url`` (the simulator's out-of-process endpoints) and decode its JSON."""
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def peak_rss_kb(pid: int | None = None) -> int | None:
    """Peak resident set (VmHWM) of ``pid``, or of this process. Unlike ``ru_maxrss`` it is not
    inherited across fork and exec, so a child's figure is its own. ``None`` once it has exited."""
    where = "self" if pid is None else str(pid)
    try:
        for line in Path(f"/proc/{where}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Measurement:
    """One timed run: wall seconds and this process's CPU seconds, over ``operations`` operations."""

    wall: float
    cpu: float
    operations: int

    @property
    def per_second(self) -> float:
        return self.operations / self.wall

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu / self.operations * 1e6


def median_by_wall(runs: Sequence[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda m: m.wall)
    return ordered[len(ordered) // 2]


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_results(name: str, payload: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n", encoding="utf-8")
    return path


__all__ = [
    "SIM_KEY",
    "Measurement",
    "fetch_json",
    "free_port",
    "median_by_wall",
    "peak_rss_kb",
    "percentile",
    "quota_schedule",
    "quota_schedule_end",
    "simulator_process",
    "write_results",
]
