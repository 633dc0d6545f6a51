"""Serve a simulator standalone: ``python -m ade_async.testing --provider landingai --port 8765``.

Prints one line with the base URL and the accepted API keys (simulator keys, not secrets), then
serves until Ctrl-C or SIGTERM. ``--provider`` picks the API (``landingai``, the default and so far
the only one); the other options mean the same for every provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from .._parsing import argument_type, parse_latency, parse_rate
from ._config import Faults, RetryAfterForm, SimulatorConfig
from ._providers import DEFAULT_PROVIDER, PROVIDERS, Provider
from ._simulator import Simulator

__all__ = ["main"]

_RETRY_AFTER_CHOICES: dict[str, RetryAfterForm] = {
    "none": None,
    "seconds": "seconds",
    "ms": "ms",
    "date": "date",
}


def _parser() -> argparse.ArgumentParser:
    apis = "; ".join(f"{name}: {PROVIDERS[name].description}" for name in sorted(PROVIDERS))
    parser = argparse.ArgumentParser(
        prog="python -m ade_async.testing",
        description=f"A local simulator of an extract-jobs API, for integration tests ({apis}).",
    )
    parser.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        default=DEFAULT_PROVIDER,
        help=f"the API to simulate (default: {DEFAULT_PROVIDER})",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port to bind; 0 picks a free one (default: 8765)"
    )
    parser.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="an accepted Bearer key; repeat for several (default: sim-key)",
    )
    parser.add_argument(
        "--latency",
        type=argument_type(parse_latency, "latency"),
        default=(0.05, 0.2),
        metavar="LO-HI",
        help="seconds from create to terminal status, drawn per job (default: 0.05-0.2)",
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, metavar="F", help="fraction of jobs that fail"
    )
    parser.add_argument(
        "--quota",
        type=argument_type(parse_rate, "quota"),
        action="append",
        default=[],
        metavar="COUNT/PERIOD",
        help="a sliding window on accepted creates, e.g. 50/1s or 3000/1h; repeatable (default: none)",
    )
    parser.add_argument(
        "--retry-after",
        choices=sorted(_RETRY_AFTER_CHOICES),
        default="seconds",
        help="how a 429 says when to retry (default: seconds; the documented API sends none)",
    )
    parser.add_argument(
        "--list-lag", type=float, default=0.0, metavar="S", help="list read-after-write lag, seconds"
    )
    parser.add_argument(
        "--result-url-threshold",
        type=int,
        default=1_000_000,
        metavar="BYTES",
        help="landingai: result size above which results go through a presigned URL (default: 1000000)",
    )
    faults = parser.add_argument_group(
        "random faults", "probabilities per request, drawn with the seeded RNG; together at most 1"
    )
    faults.add_argument(
        "--error-rate", type=float, default=0.0, metavar="P", help="a 500, 502 or 503, on every endpoint"
    )
    faults.add_argument(
        "--drop-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="the connection closed without an answer, nothing done, on every endpoint",
    )
    faults.add_argument(
        "--lost-response-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="a create carried out whose answer is lost (the client cannot know the job exists)",
    )
    faults.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="the request carried out and its JSON answer cut in half, on every endpoint",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulator's random decisions")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages to stderr")
    return parser


async def _serve(config: SimulatorConfig, provider: Provider, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl-C still interrupts
            loop.add_signal_handler(signum, stop.set)
    async with Simulator(config, provider=provider.name, host=host, port=port) as simulator:
        keys = ", ".join(config.api_keys)
        print(f"{provider.title} simulator serving on {simulator.base_url} (API keys: {keys})", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    provider = PROVIDERS[args.provider]
    endpoints = provider.endpoints
    try:
        config = SimulatorConfig(
            api_keys=tuple(args.api_keys or ("sim-key",)),
            latency=args.latency,
            failure_rate=args.failure_rate,
            quota=tuple(args.quota),
            retry_after=_RETRY_AFTER_CHOICES[args.retry_after],
            list_lag=args.list_lag,
            result_url_threshold=args.result_url_threshold,
            faults=Faults(
                error_rate=dict.fromkeys(endpoints, args.error_rate),
                drop_rate=dict.fromkeys(endpoints, args.drop_rate),
                lost_response_rate=args.lost_response_rate,
                malformed_rate=dict.fromkeys(endpoints, args.malformed_rate),
            ),
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(config, provider, args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
