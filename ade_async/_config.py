"""Client configuration: the API key, the host, and timeouts.

Environment variables are read here and nowhere else. They are the ones the official
``landingai-ade`` SDK reads, so a machine set up for the SDK works unchanged:

``VISION_AGENT_API_KEY``
    the API key (keys are per region: an EU key works only against the EU host);
``LANDINGAI_ADE_ENVIRONMENT``
    ``production`` (the US host, the default) or ``eu``;
``LANDINGAI_ADE_BASE_URL``
    a full base URL, for proxies and the simulator. Plain ``http://`` is accepted only to a
    loopback host (the key travels in every request's header).

Explicit arguments win over the environment. Giving both ``base_url`` and ``environment`` as
arguments is ambiguous and refused, as the SDK does.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ._errors import ConfigurationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "ENVIRONMENTS",
    "ENVIRONMENT_ENV",
    "ApiKey",
    "Timeouts",
    "resolve_api_key",
    "resolve_base_url",
]

API_KEY_ENV: Final = "VISION_AGENT_API_KEY"
ENVIRONMENT_ENV: Final = "LANDINGAI_ADE_ENVIRONMENT"
BASE_URL_ENV: Final = "LANDINGAI_ADE_BASE_URL"

#: v1 hosts by environment name (source: the SDK's ``ENVIRONMENTS`` table, ade-api-notes §6).
ENVIRONMENTS: Final[Mapping[str, str]] = {
    "production": "https://api.va.landing.ai",
    "eu": "https://api.va.eu-west-1.landing.ai",
}


class ApiKey:
    """An API key that cannot leak by accident: its ``repr`` and ``str`` are masked.

    The real value is only read by the transport, to build the ``Authorization`` header.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.strip():
            raise ConfigurationError("The API key is empty.")
        self._value = value.strip()

    def reveal(self) -> str:
        """The key itself. Only the transport calls this, to send it to the API host."""
        return self._value

    def fingerprint(self) -> str:
        """16 hex digits of the key's SHA-256: names things after the key without showing it."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "ApiKey('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:  # never pickle the secret into another process by accident
        raise TypeError("ApiKey cannot be pickled")


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Network timeouts, in seconds (``None`` disables one).

    Attributes:
        connect: opening a connection, including waiting for a free one in the pool. A request
            that times out here was provably never sent.
        read: waiting for data once the request is sent. The SDK uses 480 s because the vendor's
            sync endpoints may take 475 s; job calls answer quickly, so the default is shorter.
        total: a cap on a whole request, ``None`` for no cap.
    """

    connect: float | None = 10.0
    read: float | None = 60.0
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"Timeouts.{name} must be positive or None, got {value!r}")


def resolve_api_key(api_key: str | None, env: Mapping[str, str] | None = None) -> ApiKey:
    """The explicit key, else ``VISION_AGENT_API_KEY``; a missing key names the variable."""
    environ = os.environ if env is None else env
    value = api_key if api_key is not None else environ.get(API_KEY_ENV)
    if not value or not value.strip():
        raise ConfigurationError(
            f"No API key: pass api_key=... or set the {API_KEY_ENV} environment variable "
            "(get a key at https://va.landing.ai/settings/api-key)."
        )
    return ApiKey(value)


def resolve_base_url(
    base_url: str | None,
    environment: str | None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The API base URL, without a trailing slash.

    Order: explicit ``base_url``; explicit ``environment``; ``LANDINGAI_ADE_BASE_URL``;
    ``LANDINGAI_ADE_ENVIRONMENT``; the US production host.
    """
    environ = os.environ if env is None else env
    if base_url is not None and environment is not None:
        raise ConfigurationError(
            "Ambiguous URL: pass either base_url or environment, not both "
            f"(environment {environment!r} would select {ENVIRONMENTS.get(environment, 'an unknown host')})."
        )
    if base_url is not None:
        return _check_url(base_url, "base_url")
    if environment is not None:
        return _host_for(environment, "environment")
    from_env = environ.get(BASE_URL_ENV)
    if from_env:
        return _check_url(from_env, BASE_URL_ENV)
    env_name = environ.get(ENVIRONMENT_ENV)
    if env_name:
        return _host_for(env_name, ENVIRONMENT_ENV)
    return ENVIRONMENTS["production"]


def _host_for(name: str, source: str) -> str:
    host = ENVIRONMENTS.get(name.strip().lower())
    if host is None:
        known = ", ".join(sorted(ENVIRONMENTS))
        raise ConfigurationError(f"Unknown ADE environment {name!r} from {source}; expected one of: {known}.")
    return host


def _check_url(url: str, source: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{source} must be an http(s) URL such as https://api.va.landing.ai, got {url!r}."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{source} must not carry a query or fragment, got {url!r}.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        # Every API request carries the key in its Authorization header: over plain HTTP anyone on
        # the path could read it. Only this machine (the simulator, a local proxy) is spared TLS.
        raise ConfigurationError(
            f"{source} {url.strip()!r} is plain http:// to {parts.hostname!r}, which is not this machine: "
            "the API key would cross the network unencrypted. Use https://, or http:// only to a "
            "loopback host (localhost, 127.0.0.1, [::1]), e.g. the simulator or a local TLS proxy."
        )
    return url.strip().rstrip("/")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host name, without IPv6 brackets) is this machine:
    ``localhost``, ``127.0.0.0/8`` or ``::1``.

    Names are not resolved: ``localhost`` is taken at its word (RFC 6761), and any other name,
    however it resolves, is not loopback.
    """
    name = host.lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1
    return address.is_loopback
