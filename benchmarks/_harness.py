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

RESULTS_DIR = Path(__file__).parent / "results"


def quota_schedule_end(creates: int, windows: tuple[tuple[int, float], ...]) -> float:
    """When the last of ``creates`` creates can go at the earliest under exact sliding windows,
    all queued at t = 0: the quota's lower bound, from ade_async's own sans-I/O gate (no margin)."""
    import ade_async
    from ade_async._admission import AdmissionCore

    core = AdmissionCore(ade_async.RateLimit(windows=windows, safety_margin=0.0), now=0.0)
    for waiter in range(creates):
        core.join(waiter)
    now, last = 0.0, 0.0
    while core.waiting:
        grants, wake = core.poll(now)
        if grants:
            last = grants[-1].admitted_at
        if wake is None:
            break
        now = wake
    return last


SIM_KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    """Run ``python -m ade_async.testing`` on a free loopback port; yield its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "ade_async.testing", "--port", str(port), "--api-key", SIM_KEY, *args]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base_url + "/v1/ade/extract/jobs/ready-probe", timeout=1)
            except urllib.error.HTTPError:
                break  # any HTTP answer (401 here) means the server is up
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
    "free_port",
    "quota_schedule_end",
    "median_by_wall",
    "simulator_process",
    "write_results",
]
