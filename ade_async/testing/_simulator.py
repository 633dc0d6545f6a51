""":class:`Simulator`: the simulator application served on a loopback port."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self, final

from aiohttp import web

from ._config import Endpoint, FaultKind, SimulatorConfig
from ._engine import Exchange
from ._providers import DEFAULT_PROVIDER
from ._providers import provider as find_provider
from ._stats import SimulatorStats

__all__ = ["Simulator"]

logger: Final = logging.getLogger("ade_async.testing")


@final
class Simulator:
    """A faithful, in-process simulator of an extract-jobs API, served over HTTP.

    The provider is LandingAI ADE Extract Jobs v1 (the only one so far). Jobs progress with the
    clock (pending, processing, then completed, failed or cancelled after their latency), results
    are extracted deterministically from the Markdown, and quotas, output URLs, list lag and
    faults behave as configured. It binds to loopback unless told otherwise.

    Args:
        config: the simulator's behaviour; the defaults when ``None``.
        provider: which API to simulate: ``"landingai"`` (the default; see ``PROVIDERS``).
        host: the interface to bind, ``127.0.0.1`` by default.
        port: the port to bind; 0 picks a free one (read it back from :attr:`base_url`).
        clock: the monotonic time jobs, quota windows, list lag and output URL expiry follow;
            ``time.monotonic`` by default. Pass ``FakeClock().now`` and they move only when a
            test advances that clock, so a job runs exactly until the test lets it end (injected
            "slow" faults still sleep in real time).

    Raises:
        ValueError: an unknown provider.

    Example::

        async with (
            Simulator(SimulatorConfig(latency=(0.01, 0.05))) as sim,
            ade_async.Client(api_key=sim.api_key, base_url=sim.base_url) as client,
        ):
            result = await client.extract("# Invoice 7", schema=schema)
            assert sim.stats().jobs_total == 1
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        provider: str = DEFAULT_PROVIDER,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config: Final = config if config is not None else SimulatorConfig()
        chosen = find_provider(provider)
        #: The simulated provider's name.
        self.provider: Final = chosen.name
        self._clock = clock
        self.app, self._state = chosen.build(self.config, clock=clock)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        # No access log: a benchmark pushes thousands of requests through, and the simulator
        # must not print. Debug logs go to the "ade_async.testing" logger.
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        address = runner.addresses[0]
        host, port = str(address[0]), int(address[1])
        self._runner = runner
        self._base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        logger.debug("simulator serving on %s", self._base_url)

    async def close(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            logger.debug("simulator on %s closed", self._base_url)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------- access

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, without a trailing slash.

        Raises:
            RuntimeError: the simulator has not been started.
        """
        if self._base_url is None:
            raise RuntimeError("the simulator is not started: use 'async with' or await start()")
        return self._base_url

    @property
    def port(self) -> int:
        """The port served on (after :meth:`start`)."""
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self.config.api_keys[0]

    @property
    def exchanges(self) -> list[Exchange]:
        """Recorded exchanges, oldest first (empty unless ``SimulatorConfig(record=True)``)."""
        return list(self._state.exchanges)

    def stats(self) -> SimulatorStats:
        """A frozen snapshot of the counters."""
        return self._state.stats(self._clock())

    def max_creates_in_window(self, period: float) -> int:
        """The most accepted creates whose acceptance times fall in any ``[t, t + period)``.

        Compare with a quota ``(count, period)`` to check a client never exceeded it.

        Raises:
            ValueError: ``period`` is not > 0.
        """
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        return self._state.max_creates_in_window(period)

    def job_completed_at(self, job_id: str) -> float | None:
        """When the job reaches (or will reach) its terminal status, on the simulator's clock
        (``time.monotonic()`` by default); ``None`` for an unknown id. For detection-latency
        measurements."""
        return self._state.job_completed_at(job_id)

    # ------------------------------------------------------------------------------ control

    def set_credits_exhausted(self, exhausted: bool) -> None:
        """While True, creates answer 402 (not enough credits)."""
        self._state.credits_exhausted = exhausted

    def inject(self, endpoint: Endpoint | str, fault: FaultKind | str, count: int = 1) -> None:
        """Apply ``fault`` to the next ``count`` requests to ``endpoint``, before random faults.

        Faults queue up first in, first out. Note that aiohttp's client silently retries an
        idempotent request (a GET) once when the server closes the connection, so a single
        ``"drop"`` on ``get``, ``list`` or ``download`` is invisible to it: inject two.

        The kinds: ``"500"``, ``"502"``, ``"503"`` (an error answer, nothing done); ``"429"``
        (rate limited, announcing ``fault_retry_after`` seconds); ``"drop"`` (the connection closed
        before anything is done); ``"lost_response"`` (create only: the job is created, then the
        connection closed); ``"slow"`` (``slow_seconds`` late, then normal); ``"malformed"`` (done,
        the body cut in half: truncated JSON); ``"not_json"`` (done, answered with the success status
        and an HTML page, as an intercepting proxy would); ``"404"`` (get only: the job is reported
        not found although it exists); ``"expired"`` (download only: 403 "Request has expired").

        Raises:
            ValueError: unknown endpoint or fault, a fault of one endpoint (``"lost_response"``,
                ``"404"``, ``"expired"``) on another, or ``count < 1``.
        """
        self._state.inject(endpoint, fault, count)

    def expire_result_urls(self) -> None:
        """Expire every result URL issued so far; a new get issues a fresh one."""
        self._state.expire_result_urls()

    def __repr__(self) -> str:
        where = self._base_url if self._runner is not None else "not started"
        return f"<Simulator {where}>"
