"""Client configuration: the API key, the host, and timeouts.

Environment variables are read here and nowhere else: the ones each provider declares
(:class:`~ade_async.providers.ProviderInfo`), which are its vendor's official SDK's own, so a
machine set up for that SDK works unchanged (``ade-async providers`` lists them).

Explicit arguments win over the environment. Giving both ``base_url`` and ``environment`` as
arguments is ambiguous and refused, as the SDKs do. Plain ``http://`` is accepted only to a
loopback host (the key travels in every request's header).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from .providers import ProviderInfo

__all__ = ["ApiKey", "Timeouts", "is_loopback_host", "resolve_api_key", "resolve_base_url"]


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


def resolve_api_key(api_key: str | None, info: ProviderInfo, env: Mapping[str, str] | None = None) -> ApiKey:
    """The explicit key, else the provider's key variables in order; a missing key names them."""
    environ = os.environ if env is None else env
    value = api_key
    if value is None:
        value = next((environ[name] for name in info.api_key_env if environ.get(name)), None)
    if not value or not value.strip():
        names = " or ".join(info.api_key_env) or "the key"
        hint = f" ({info.key_help})" if info.key_help else ""
        raise ConfigurationError(
            f"No API key for {info.title}: pass api_key=... or set the {names} environment variable{hint}."
        )
    return ApiKey(value)


def resolve_base_url(
    base_url: str | None,
    environment: str | None,
    info: ProviderInfo,
    env: Mapping[str, str] | None = None,
) -> str:
    """The API base URL, without a trailing slash.

    Order: explicit ``base_url``; explicit ``environment``; the provider's base-URL variable;
    its environment variable; its default environment's host.
    """
    environ = os.environ if env is None else env
    if base_url is not None and environment is not None:
        selected = info.hosts.get(environment, "an unknown host")
        raise ConfigurationError(
            "Ambiguous URL: pass either base_url or environment, not both "
            f"(environment {environment!r} would select {selected})."
        )
    if base_url is not None:
        return _check_url(base_url, "base_url", info)
    if environment is not None:
        return _host_for(environment, "environment", info)
    from_env = environ.get(info.base_url_env) if info.base_url_env else None
    if from_env and info.base_url_env:
        return _check_url(from_env, info.base_url_env, info)
    env_name = environ.get(info.environment_env) if info.environment_env else None
    if env_name and info.environment_env:
        return _host_for(env_name, info.environment_env, info)
    return info.hosts[info.default_environment]


def _host_for(name: str, source: str, info: ProviderInfo) -> str:
    host = info.hosts.get(name.strip().lower())
    if host is None:
        known = ", ".join(sorted(info.hosts))
        raise ConfigurationError(
            f"Unknown {info.title} environment {name!r} from {source}; expected one of: {known}."
        )
    return host


def _check_url(url: str, source: str, info: ProviderInfo) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        example = info.hosts[info.default_environment]
        raise ConfigurationError(f"{source} must be an http(s) URL such as {example}, got {url!r}.")
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
