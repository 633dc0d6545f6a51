"""LandingAI ADE Extract Jobs v1 as the simulator serves it: names, paths and constants.

A leaf module (it imports nothing of the simulator's), so the shared configuration can read the
endpoint names and the model defaults without importing the routes.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, get_args

from .._engine import FaultKind, StatusNames

__all__ = [
    "DEFAULT_MODEL",
    "ENDPOINTS",
    "FAULT_ENDPOINTS",
    "JOBS_PATH",
    "LIST_STATUSES",
    "OUTPUTS_PATH",
    "RANDOM_FAILURE",
    "STATUSES",
    "SUPPORTED_MODEL",
    "Endpoint",
]

#: The simulator's endpoints, as named in stats, faults and recorded exchanges.
Endpoint: TypeAlias = Literal["create", "get", "list", "download"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = get_args(Endpoint)
#: The faults that make sense on one endpoint only (the others apply to every endpoint).
FAULT_ENDPOINTS: Final[Mapping[FaultKind, Endpoint]] = types.MappingProxyType(
    {
        "lost_response": "create",  # a create carried out whose answer is lost
        "404": "get",  # an existing job the service momentarily does not find (a lagging replica)
        "expired": "download",  # a presigned output_url past its expiry
    }
)

JOBS_PATH: Final = "/v1/ade/extract/jobs"
#: Where the simulator serves what an ``output_url`` points to (the real one is an object store).
OUTPUTS_PATH: Final = "/_simulator/outputs"

#: The documented statuses (seed 000): ``pending``, ``processing``, then one of the terminal three.
STATUSES: Final = StatusNames(
    queued="pending", running="processing", succeeded="completed", failed="failed", cancelled="cancelled"
)
#: The values the list endpoint's ``status`` filter accepts (the spec's enum), sorted.
LIST_STATUSES: Final = tuple(sorted(STATUSES.all()))
#: The ``failure_reason`` of a job failed by ``SimulatorConfig.failure_rate``.
RANDOM_FAILURE: Final = "Extraction failed: simulated processing error"

#: The only extraction model the documented API still accepts (ade-api-notes §7: the older
#: snapshots "are deprecated and will result in errors").
SUPPORTED_MODEL: Final = "extract-20260314"
#: What ``model`` absent and ``extract-latest`` resolve to by default.
DEFAULT_MODEL: Final = SUPPORTED_MODEL
