"""The simulator for ``bench_peers.py``, in its own process, with random faults and 429 storms.

``python -m ade_async.testing`` has no options for random faults, and the simulator has no
out-of-process way to inject them, so this script builds the :class:`SimulatorConfig` itself, from
the public ``ade_async.testing`` API, and serves it, with 429 storms (see :class:`Storms`) in front.

Usage (the harness starts it)::

    python benchmarks/_sim_server.py --port P --api-key KEY --spec '{"latency": [1, 20], ...}'

``--spec`` keys: ``latency`` [lo, hi]; ``quota`` [[count, period], ...]; ``retry_after`` (``null``
or a ``SimulatorConfig.retry_after`` form); ``result_url_threshold``; ``seed``; ``faults`` (the
keyword arguments of :class:`Faults`); ``storms`` ``{"every_s": S, "duration_s": D, "endpoints":
["create", "get"]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ade_async.testing import Faults, Simulator, SimulatorConfig

JOBS_PATH = "/v1/ade/extract/jobs"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def config_from_spec(spec: dict[str, Any], api_key: str) -> SimulatorConfig:
    lo, hi = spec["latency"]
    return SimulatorConfig(
        api_keys=(api_key,),
        latency=(float(lo), float(hi)),
        quota=tuple((int(count), float(period)) for count, period in spec.get("quota", ())),
        retry_after=spec.get("retry_after"),
        result_url_threshold=int(spec.get("result_url_threshold", 1_000_000)),
        faults=Faults(**spec.get("faults", {})),
        seed=int(spec.get("seed", 0)),
    )


class Storms:
    """429 storms: for ``duration_s`` seconds out of every ``every_s``, every request to the
    ``endpoints`` is answered 429, as when another client of the same organisation spends the quota.

    Each such request gets one ``Simulator.inject(endpoint, "429")`` just before the simulator's
    handler runs (nothing awaits in between), so the simulator answers and counts it as its own 429.
    A storm is bounded in time, not in requests: a client that sends few requests meets few 429s.
    """

    def __init__(self, simulator: Simulator, every_s: float, duration_s: float, endpoints: list[str]) -> None:
        self._simulator = simulator
        self._every = every_s
        self._duration = duration_s
        self._endpoints = endpoints
        self._started = time.monotonic()

    def _endpoint(self, request: web.Request) -> str | None:
        if not request.path.startswith(JOBS_PATH):
            return None
        if request.method == "POST" and request.path == JOBS_PATH:
            return "create"
        if request.method == "GET" and request.path.startswith(JOBS_PATH + "/"):
            return "get"
        if request.method == "GET" and request.path == JOBS_PATH:
            return "list"
        return None

    def raging(self) -> bool:
        phase = (time.monotonic() - self._started) % self._every
        return phase >= self._every - self._duration

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        endpoint = self._endpoint(request)
        if endpoint in self._endpoints and self.raging():
            self._simulator.inject(endpoint, "429")
        return await handler(request)


async def serve(spec: dict[str, Any], port: int, api_key: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(config_from_spec(spec, api_key), port=port)
    storm = spec.get("storms")
    if storm:
        storms = Storms(
            simulator, float(storm["every_s"]), float(storm["duration_s"]), list(storm["endpoints"])
        )
        # The application is not frozen until it starts, so a middleware can still go in front.
        simulator.app.middlewares.append(storms.middleware)
    async with simulator:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--spec", required=True, help="the scenario's simulator settings, as JSON")
    args = parser.parse_args()
    asyncio.run(serve(json.loads(args.spec), args.port, args.api_key))


if __name__ == "__main__":
    main()
