"""Faults per named endpoint: injected ones first, then random draws. Sans-I/O, no vendor.

A vendor names its endpoints (LandingAI: ``create``, ``get``, ``list``, ``download``; LlamaCloud
will have ``upload``, ``create``, ``get``, ``list``, ``cancel``) and says which faults make sense on
one endpoint only. The serving layer (``_serving``) asks :meth:`FaultPlan.next` once per request
and applies the answer the same way for every vendor:

=================  ===================================================================
``500/502/503``    an error answer in the vendor's error body; nothing done
``429``            rate limited, in the vendor's body, announcing a wait; nothing done
``drop``           the connection closed before anything is done
``lost_response``  the work done, then the connection closed (a create the client cannot
                   know about)
``slow``           the answer delayed by ``slow_seconds``, then normal
``malformed``      the work done, the body cut in half (truncated JSON)
``not_json``       the work done, answered with the success status and an HTML page
``404``            a live resource reported missing (a lagging replica); nothing done
``expired``        a valid presigned link refused as expired; nothing done
=================  ===================================================================
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Final, Literal, TypeAlias, get_args

__all__ = ["FAULT_KINDS", "SERVER_ERRORS", "FaultKind", "FaultPlan"]

logger: Final = logging.getLogger("ade_async.testing")

#: What can go wrong with one request (see the module docstring).
FaultKind: TypeAlias = Literal[
    "500", "502", "503", "drop", "lost_response", "slow", "malformed", "not_json", "429", "404", "expired"
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)
#: A random "server error" is one of these, drawn uniformly.
SERVER_ERRORS: Final[tuple[FaultKind, ...]] = ("500", "502", "503")


class FaultPlan:
    """Which fault, if any, hits the next request to each of a vendor's endpoints.

    Args:
        endpoints: the vendor's endpoint names.
        single_endpoint: fault kind -> the one endpoint it applies to (LandingAI:
            ``{"lost_response": "create", "404": "get", "expired": "download"}``).
        rates: endpoint -> ``(kind, probability)`` pairs drawn in order with one uniform draw
            (so they add up to at most 1); ``"500"`` stands for any of :data:`SERVER_ERRORS`.
        rng: the engine's seeded RNG.
    """

    def __init__(
        self,
        *,
        endpoints: Iterable[str],
        single_endpoint: Mapping[FaultKind, str] | None = None,
        rates: Mapping[str, Iterable[tuple[FaultKind, float]]] | None = None,
        rng: random.Random,
    ) -> None:
        self.endpoints: tuple[str, ...] = tuple(endpoints)
        self.single_endpoint: Mapping[FaultKind, str] = dict(single_endpoint or {})
        rates = rates or {}
        unknown = sorted(set(rates) - set(self.endpoints))
        if unknown:
            raise ValueError(
                f"fault rates for unknown endpoints {unknown}; expected {', '.join(self.endpoints)}"
            )
        self._rates = {name: tuple(rates.get(name, ())) for name in self.endpoints}
        self._queues: dict[str, deque[FaultKind]] = {name: deque() for name in self.endpoints}
        self._rng = rng
        #: fault kind -> times applied.
        self.applied: Counter[str] = Counter()

    def inject(self, endpoint: str, fault: str, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests to ``endpoint`` (FIFO).

        Plain strings are accepted (and checked here), so parametrised tests need no casts.

        Raises:
            ValueError: unknown endpoint or fault, a single-endpoint fault for another endpoint,
                or ``count < 1``.
        """
        if endpoint not in self._queues:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(self.endpoints)}")
        kind = next((name for name in FAULT_KINDS if name == fault), None)
        if kind is None:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULT_KINDS)}")
        only = self.single_endpoint.get(kind)
        if only is not None and endpoint != only:
            raise ValueError(f"{kind!r} applies to the {only} endpoint only")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        self._queues[endpoint].extend([kind] * count)

    def next(self, endpoint: str) -> FaultKind | None:
        """The fault to apply to this request: an injected one first, else a random draw.

        Draws from the RNG only when ``endpoint`` has random rates, so configuring none keeps
        the sequence of other random decisions unchanged.
        """
        kind: FaultKind | None = None
        queue = self._queues[endpoint]
        if queue:
            kind = queue.popleft()
        else:
            rates = self._rates[endpoint]
            if rates:
                draw = self._rng.random()
                for candidate, rate in rates:
                    if draw < rate:
                        kind = self._rng.choice(SERVER_ERRORS) if candidate == "500" else candidate
                        break
                    draw -= rate
        if kind is not None:
            self.applied[kind] += 1
            logger.debug("fault %s on %s", kind, endpoint)
        return kind
