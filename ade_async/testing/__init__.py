"""A faithful simulator of LandingAI ADE Extract Jobs v1, for tests and benchmarks.

Use it in-process::

    from ade_async.testing import Simulator, SimulatorConfig

    async with Simulator(SimulatorConfig(latency=(0.01, 0.05), quota=((50, 1.0),))) as sim:
        ...  # point a client at sim.base_url with sim.api_key

or standalone, for your own integration tests::

    python -m ade_async.testing --port 8765 --api-key my-test-key --quota 50/1s

It serves ``POST /v1/ade/extract/jobs``, ``GET /v1/ade/extract/jobs/{job_id}`` and
``GET /v1/ade/extract/jobs`` with the documented shapes, statuses and error bodies; jobs progress
with the clock and are extracted deterministically from the Markdown (the rule is in
``ade_async.testing._extraction``); ``<!-- ade-sim: ... -->`` markers in a document make its job
fail, be cancelled, take a given time or report an unknown status. Quotas, ``Retry-After``
forms, list lag, large results behind ``output_url`` and faults (5xx, dropped connections, lost
responses, slow, truncated or non-JSON answers, 429, 404 for a live job, expired output URLs)
are configurable, and counters show what a client did (duplicate jobs, API keys sent to
``output_url``, creates per window).

:class:`FakeClock` is a manually advanced clock for ade_async's injected-time components.
"""

from .._parsing import parse_duration, parse_latency, parse_rate
from ._config import (
    DEFAULT_MODEL,
    ENDPOINTS,
    FAULT_ENDPOINTS,
    FAULT_KINDS,
    RETRY_AFTER_FORMS,
    Endpoint,
    FaultKind,
    Faults,
    RetryAfterForm,
    SimulatorConfig,
)
from ._engine._clock import FakeClock
from ._engine._records import Exchange, FormField, SimulatorStats
from ._simulator import Simulator
from .landingai._app import build_app
from .landingai._schema import UNSUPPORTED_SCHEMA_KEYWORDS
from .landingai._state import SimulatorState

__all__ = [
    "DEFAULT_MODEL",
    "ENDPOINTS",
    "FAULT_ENDPOINTS",
    "FAULT_KINDS",
    "RETRY_AFTER_FORMS",
    "UNSUPPORTED_SCHEMA_KEYWORDS",
    "Endpoint",
    "Exchange",
    "FakeClock",
    "FaultKind",
    "Faults",
    "FormField",
    "RetryAfterForm",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "SimulatorStats",
    "build_app",
    "parse_duration",
    "parse_latency",
    "parse_rate",
]
