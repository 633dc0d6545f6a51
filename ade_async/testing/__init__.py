"""Faithful simulators of extract-jobs APIs, for tests and benchmarks; and a fake clock.

Use one in-process::

    from ade_async.testing import Simulator, SimulatorConfig

    async with Simulator(SimulatorConfig(latency=(0.01, 0.05), quota=((50, 1.0),))) as sim:
        ...  # point a client at sim.base_url with sim.api_key

or standalone, for your own integration tests::

    python -m ade_async.testing --provider landingai --port 8765 --api-key my-test-key --quota 50/1s

The provider today is LandingAI ADE Extract Jobs v1 (``provider="landingai"``, the default): its
create, get and list endpoints with the documented shapes, statuses and error bodies (see
``ade_async.testing.landingai``). Jobs progress with the clock and are extracted
deterministically from the document; ``<!-- ade-sim: ... -->`` markers in a document make its job
fail, be cancelled, take a given time or report an unknown status. Quotas, ``Retry-After`` forms,
list lag, large results behind a presigned URL and faults (5xx, dropped connections, lost
responses, slow, truncated or non-JSON answers, 429, 404 for a live job, expired result URLs) are
configurable, and counters show what a client did (duplicate jobs, API keys sent to a result URL,
creates per window, jobs active at once).

:class:`FakeClock` is a manually advanced clock for ade_async's injected-time components;
:class:`MockTransport` answers a client's requests with a function of yours
(``Client(transport=MockTransport(handler))``), with no server at all.

The rooms
=========

::

    ade_async/testing/
        __init__.py, __main__.py   this public surface; the command line (--provider)
        _simulator.py              Simulator: serves one provider's application on loopback
        _providers.py              the providers by name (adding one: its folder + one entry)
        _config.py, _stats.py      SimulatorConfig and Faults; the SimulatorStats snapshot
        _mock.py                   MockTransport: a client's requests answered by a function
        _engine/                   the vendor-neutral simulator engine (no paths, no field names)
            _clock.py              FakeClock
            _lifecycle.py          a job's timeline: queued, running, succeeded/failed/cancelled;
                                   StatusNames (a vendor's spelling), Timing, ActiveJobs
            _markers.py            <!-- ade-sim: ... --> instructions in a document
            _schema.py             JSON Schema -> field specs (refs resolved, labels)
            _extraction.py         the deterministic extraction rule: text + schema -> values
            _quotas.py             sliding windows and active-job caps per named budget;
                                   Retry-After forms
            _faults.py             injected and random faults per named endpoint
            _jobs.py               job records, ownership, duplicates, offset and cursor paging
            _files.py              uploads kept by id (Catalog, StoredFile), expiring links
            _records.py, _forms.py recorded exchanges; the multipart parser
            _core.py               Engine: all of the above as one service's state
            _serving.py            Routes and build_application: auth, faults, counting,
                                   recording, /_simulator/stats and /_simulator/jobs
        landingai/                 LandingAI ADE Extract Jobs v1 over the engine
            _contract.py           paths, endpoint names, status spellings, models
            _wire.py               its own msgspec models, from the vendor's OpenAPI spec
            _schema.py             the documented schema checks, warnings and credits
            _answers.py, _create.py  error bodies; reading and checking a create form
            _state.py              SimulatorState: the engine plus jobs' results, output URLs
            _app.py                the routes, and build_app

A vendor module never imports the client's providers (``ade_async.providers``): a simulator that
shared the client's models would echo the client's mistakes back to it.
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
from ._engine import Exchange, FakeClock, FormField
from ._mock import MockTransport, json_response
from ._providers import DEFAULT_PROVIDER, PROVIDERS
from ._simulator import Simulator
from ._stats import SimulatorStats
from .landingai._app import build_app
from .landingai._schema import UNSUPPORTED_SCHEMA_KEYWORDS
from .landingai._state import SimulatorState

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PROVIDER",
    "ENDPOINTS",
    "FAULT_ENDPOINTS",
    "FAULT_KINDS",
    "PROVIDERS",
    "RETRY_AFTER_FORMS",
    "UNSUPPORTED_SCHEMA_KEYWORDS",
    "Endpoint",
    "Exchange",
    "FakeClock",
    "FaultKind",
    "Faults",
    "FormField",
    "MockTransport",
    "RetryAfterForm",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "SimulatorStats",
    "build_app",
    "json_response",
    "parse_duration",
    "parse_latency",
    "parse_rate",
]
