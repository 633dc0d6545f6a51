"""Reading how long a server asks us to wait (``retry-after-ms`` and ``Retry-After``).

ADE documents neither header (ade-api-notes §5), but the official SDK reads both, and a proxy in
front of the API may send them, so they are honoured whenever present. ``Retry-After`` is either
delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping

__all__ = ["parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait from the response headers, or ``None`` when there is no usable hint.

    Args:
        headers: response headers (a case-insensitive mapping, as aiohttp gives).
        now: the current Unix time, used to turn an HTTP-date into a delay.

    Returns:
        A non-negative number of seconds. Malformed, negative or non-finite values are ignored.
    """
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        delay = _number(millis)
        if delay is not None:
            return delay / 1000.0
    value = _header(headers, "retry-after")
    if value is None:
        return None
    delay = _number(value)
    if delay is not None:
        return delay
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means the zone was missing
        return None
    return max(0.0, when.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts in tests are case-sensitive
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    return value.strip() if value is not None else None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value
