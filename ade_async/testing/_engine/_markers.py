"""Markers: instructions to the simulator hidden in a document's text. Pure functions.

HTML comments, invisible in rendered Markdown and harmless in a PDF's text, steer one job whatever
the vendor:

* ``<!-- ade-sim: fail REASON -->``: the job ends failed, with that reason (``Simulated failure``
  when none is given);
* ``<!-- ade-sim: cancel -->``: the job ends cancelled;
* ``<!-- ade-sim: latency 2.5 -->``: seconds from create to the terminal status; the queued phase
  stays the configured fraction of the drawn latency, capped at this;
* ``<!-- ade-sim: status NAME -->``: the raw status reported while the job runs, instead of the
  vendor's own running status (an undocumented status a client must survive).

The first ``fail``/``cancel`` marker decides the outcome; for the others the first valid one
counts. Marker names are case-insensitive; a marker must fit on one line. The ``ade-sim`` prefix
is the simulator's name for itself (it began as the ADE simulator), not a vendor's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Markers", "parse_markers"]

_MARKER: Final = re.compile(r"<!--\s*ade-sim:\s*(?P<command>[A-Za-z_-]+)(?:\s+(?P<argument>.*?))?\s*-->")


@dataclass(frozen=True, slots=True)
class Markers:
    """The ``<!-- ade-sim: ... -->`` instructions found in a document."""

    outcome: Literal["failed", "cancelled"] | None = None
    failure_reason: str | None = None
    latency: float | None = None
    running_status: str | None = None


def parse_markers(document: str) -> Markers:
    """Read the ``<!-- ade-sim: ... -->`` markers of a document (see the module docstring)."""
    if "ade-sim" not in document:
        return Markers()
    outcome: Literal["failed", "cancelled"] | None = None
    failure_reason: str | None = None
    latency: float | None = None
    running_status: str | None = None
    for match in _MARKER.finditer(document):
        command = match.group("command").lower()
        argument = (match.group("argument") or "").strip()
        if command == "fail" and outcome is None:
            outcome, failure_reason = "failed", argument or "Simulated failure"
        elif command == "cancel" and outcome is None:
            outcome = "cancelled"
        elif command == "latency" and latency is None:
            try:
                value = float(argument)
            except ValueError:
                continue
            if math.isfinite(value) and value >= 0:
                latency = value
        elif command == "status" and running_status is None and argument:
            running_status = argument
    return Markers(
        outcome=outcome, failure_reason=failure_reason, latency=latency, running_status=running_status
    )
