"""Parsers for the human forms of rates and durations used on command lines.

Dependency-free on purpose, so any command-line entry point of the project can reuse them:

>>> parse_duration("1m")
60.0
>>> parse_rate("50/1s")
(50, 1.0)
>>> parse_rate("1000/h")
(1000, 3600.0)
>>> parse_latency("0.05-0.2")
(0.05, 0.2)
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Final, TypeVar

_T = TypeVar("_T")

__all__ = ["argument_type", "parse_duration", "parse_latency", "parse_rate"]

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)?\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit ``ms``, ``s``, ``m``, ``h`` or ``d``.

    A bare number is seconds; a bare unit means one of it (``"h"`` is 3600.0).

    Raises:
        ValueError: ``text`` is not a duration, or is not finite.
    """
    match = _DURATION.match(text)
    if match is None or (match.group(1) is None and match.group(2) is None):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 500ms, 1s, 20s, 1m, 1h)")
    number = float(match.group(1)) if match.group(1) is not None else 1.0
    unit = (match.group(2) or "s").lower()
    seconds = number * _UNITS[unit]
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite duration: {text!r}")
    return seconds


def parse_rate(text: str) -> tuple[int, float]:
    """A ``COUNT/PERIOD`` quota window, e.g. ``"50/1s"`` -> ``(50, 1.0)``, ``"3000/1h"``.

    Raises:
        ValueError: not of the form ``COUNT/PERIOD`` with ``COUNT >= 1`` and ``PERIOD > 0``.
    """
    count_text, sep, period_text = text.partition("/")
    if not sep:
        raise ValueError(f"not a rate: {text!r} (expected COUNT/PERIOD, e.g. 50/1s or 3000/1h)")
    try:
        count = int(count_text.strip())
    except ValueError:
        raise ValueError(f"not a rate: {text!r} (COUNT must be an integer)") from None
    period = parse_duration(period_text)
    if count < 1 or period <= 0:
        raise ValueError(f"not a rate: {text!r} (COUNT must be >= 1 and PERIOD > 0)")
    return count, period


def parse_latency(text: str) -> tuple[float, float]:
    """A latency range ``LO-HI`` in seconds (``"0.05-0.2"``), or one value for both ends.

    Raises:
        ValueError: not a range of non-negative seconds with ``LO <= HI``.
    """
    lo_text, sep, hi_text = text.partition("-")
    lo = parse_duration(lo_text)
    hi = parse_duration(hi_text) if sep else lo
    if lo > hi:
        raise ValueError(f"not a latency range: {text!r} (LO must be <= HI)")
    return lo, hi


def argument_type(parse: Callable[[str], _T], what: str) -> Callable[[str], _T]:
    """An argparse ``type=`` from a parser that raises ``ValueError``, with a clear message."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: {exc}") from None

    return convert
