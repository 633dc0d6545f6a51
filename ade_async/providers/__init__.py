"""Providers: each vendor's extract-job API, translated for the one engine.

``Client(provider="landingai")`` (the default) picks one by name; ``Client(provider=LandingAI(...))``
passes one configured. :func:`available` lists what is installed, as ``ade-async providers`` does.

Adding a vendor is adding a folder here (a :class:`Provider` subclass and its wire models) and
one in ``ade_async.testing`` (its simulator routes), then one line in :data:`_REGISTRY`; the
README's "Adding a provider" walks through it.
"""

from __future__ import annotations

import importlib
from typing import Final

from .._engine.http import Api, FormField, HttpRequest, Response, decoded
from .._engine.types import JobPage, JobSnapshot, JobState, ResultWarning, Staged, raise_unless_succeeded
from ._base import Provider, ProviderInfo

# The kit for writing a provider: the interface, and the engine's types it translates into.
__all__ = [
    "DEFAULT_PROVIDER",
    "Api",
    "FormField",
    "HttpRequest",
    "JobPage",
    "JobSnapshot",
    "JobState",
    "Provider",
    "ProviderInfo",
    "Response",
    "ResultWarning",
    "Staged",
    "available",
    "decoded",
    "get_provider",
    "raise_unless_succeeded",
]

#: The provider of ``Client()`` with none named.
DEFAULT_PROVIDER: Final = "landingai"

#: name -> "module:class" of every provider this package ships (imported on first use).
_REGISTRY: Final = {
    "landingai": "ade_async.providers.landingai:LandingAI",
}


def get_provider(provider: str | Provider | None = None) -> Provider:
    """A provider instance: ``provider`` itself, or a new one of the named kind (default
    ``landingai``).

    Raises:
        ValueError: no provider has that name (the message lists those that do).
    """
    if isinstance(provider, Provider):
        return provider
    name = DEFAULT_PROVIDER if provider is None else provider.strip().lower()
    target = _REGISTRY.get(name)
    if target is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown provider {provider!r}; available: {known}")
    module, _, attribute = target.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module), attribute)
    return cls()


def available() -> list[ProviderInfo]:
    """What each installed provider declares, by name."""
    return [get_provider(name).info for name in sorted(_REGISTRY)]
