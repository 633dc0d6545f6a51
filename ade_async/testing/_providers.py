"""The simulated providers, by name: what :class:`~ade_async.testing.Simulator` and the command
line can serve.

Adding a provider is adding its folder (``testing/<provider>/``: contract, wire models, state over
the engine, routes) and one entry here.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web

from ._engine import Exchange
from ._stats import SimulatorStats
from .landingai._app import build_app as build_landingai
from .landingai._contract import ENDPOINTS as LANDINGAI_ENDPOINTS

__all__ = ["DEFAULT_PROVIDER", "PROVIDERS", "Provider", "ServedState", "provider"]


class ServedState(Protocol):
    """What :class:`~ade_async.testing.Simulator` needs of a provider's state."""

    exchanges: list[Exchange]
    credits_exhausted: bool

    def stats(self, now: float) -> SimulatorStats: ...

    def max_creates_in_window(self, period: float) -> int: ...

    def job_completed_at(self, job_id: str) -> float | None: ...

    def inject(self, endpoint: str, fault: str, count: int = 1) -> None: ...

    def expire_result_urls(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """One simulated provider.

    Attributes:
        name: what ``Simulator(provider=...)`` and ``--provider`` take.
        title: how the command line's banner names the API.
        description: one line for ``--help``.
        endpoints: its endpoint names (for faults and stats).
        build: a fresh application and its state, for a configuration (and ``clock=``).
    """

    name: str
    title: str
    description: str
    endpoints: tuple[str, ...]
    build: Callable[..., tuple[web.Application, ServedState]]


PROVIDERS: Final[Mapping[str, Provider]] = types.MappingProxyType(
    {
        "landingai": Provider(
            name="landingai",
            title="ADE",
            description="LandingAI ADE Extract Jobs v1",
            endpoints=LANDINGAI_ENDPOINTS,
            build=build_landingai,
        ),
    }
)
DEFAULT_PROVIDER: Final = "landingai"


def provider(name: str) -> Provider:
    """The provider called ``name``.

    Raises:
        ValueError: no such provider; the message lists the known ones.
    """
    found = PROVIDERS.get(name)
    if found is None:
        raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(sorted(PROVIDERS))}")
    return found
