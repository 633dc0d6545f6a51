"""Admission for every budget a provider's calls draw on, one gate per budget.

A provider declares its budgets (``ProviderInfo.budgets``): every provider has ``create``; a
vendor that takes uploads first has ``upload`` too, with its own documented window (LlamaCloud:
50 uploads per 5 s per project). Each budget is a gate of its own, so a 429 on an upload pauses
uploads and not creates. Creates go through :class:`~ade_async._engine.create.CreateSender`, which
keeps a create's in-flight slot until its job is seen to end; any other budgeted call goes through
:meth:`Budgets.send`: admitted, sent, and its slot freed as soon as it is answered (an upload holds
nothing once answered). A 429 refunds the admission, pauses that budget's gate and sends again
from the head of its queue; any other failure is the provider's to judge (an upload whose answer
was lost is simply uploaded again: an orphan upload costs nothing).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from anyio.abc import TaskGroup

from .._errors import ADEError, ClientClosedError, RateLimitError, TransportError
from .admission import Admission, AdmissionGate, AdmissionStats
from .clock import Clock
from .ratelimit import RateLimit
from .shared_admission import SharedAdmissionGate

if TYPE_CHECKING:
    from ..providers import ProviderInfo
    from .http import Api, HttpRequest, Response

__all__ = ["CREATE", "Budgets", "limits_for"]

#: The budget every provider's creates draw on.
CREATE = "create"


class Budgets:
    """The gates of one client, by budget name.

    Args:
        limits: budget name -> its :class:`RateLimit` (``create`` included).
        provider: the provider's name (shared quotas are keyed by provider and budget).
        clock, rng: the engine's.
        key_fingerprint: names a shared quota after the key without showing it.
        task_group: where a shared gate's driver runs.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        provider: str,
        clock: Clock,
        rng: random.Random,
        key_fingerprint: str,
        task_group: TaskGroup,
    ) -> None:
        self.gates: dict[str, Admission] = {}
        for name, limit in limits.items():
            if limit.backend is None:
                self.gates[name] = AdmissionGate(limit, clock=clock, rng=rng)
            else:
                shared = SharedAdmissionGate(
                    limit, key_fingerprint=key_fingerprint, scope=f"{provider}.{name}", rng=rng
                )
                task_group.start_soon(shared.run, name=f"ade_async shared admission ({name})")
                self.gates[name] = shared
        if CREATE not in self.gates:
            raise ValueError("every provider's creates draw on a 'create' budget")

    def gate(self, budget: str) -> Admission:
        """The gate of ``budget``.

        Raises:
            KeyError: the provider declared no such budget.
        """
        try:
            return self.gates[budget]
        except KeyError:
            known = ", ".join(sorted(self.gates))
            raise KeyError(f"no admission budget {budget!r}; the provider declares: {known}") from None

    def stats(self) -> dict[str, AdmissionStats]:
        return {name: gate.stats() for name, gate in self.gates.items()}

    def close(self, error: BaseException) -> None:
        for gate in self.gates.values():
            gate.close(error)

    async def send(self, api: Api, budget: str, request: HttpRequest) -> Response:
        """Send ``request`` once admitted on ``budget``; a 429 is waited out and the request sent
        again (it was not counted). Any other error is raised, the admission settled.

        Raises:
            APIStatusError, TransportError: as :meth:`Api.send`.
        """
        gate = self.gate(budget)
        front = False
        while True:
            grant = await gate.acquire(front=front)
            settled = False
            try:
                gate.sent(grant)
                try:
                    response = await api.send(request)
                except RateLimitError as error:
                    settled = True
                    gate.on_rate_limited(grant, error.retry_after)  # refunded: not counted
                    front = True
                    continue
                except (TransportError, ClientClosedError) as error:
                    settled = True
                    if isinstance(error, TransportError) and not error.request_sent:
                        gate.refund(grant)
                    else:
                        gate.on_unanswered(grant)  # it may have arrived: counted
                        gate.release()
                    raise
                except ADEError:
                    settled = True
                    gate.on_accepted(grant)  # answered (an error): the server counted it
                    gate.release()
                    raise
                settled = True
                gate.on_accepted(grant)
                gate.release()
                return response
            finally:
                if not settled:  # cancelled, or a bug: on the wire, so counted; nothing to follow
                    gate.on_unanswered(grant)
                    gate.release()


def limits_for(info: ProviderInfo, given: Mapping[str, RateLimit]) -> dict[str, RateLimit]:
    """Each budget but ``create``: the caller's limit, else the provider's default, else adaptive.

    Raises:
        ValueError: ``given`` names a budget the provider does not declare.
    """
    declared = set(info.budgets) - {CREATE}
    unknown = set(given) - declared
    if unknown:
        names = ", ".join(sorted(declared)) or "none besides create"
        raise ValueError(
            f"{info.name} has no budget {', '.join(sorted(unknown))}; its other budgets: {names}"
        )
    defaults = info.default_limits
    return {name: given.get(name) or defaults.get(name, RateLimit()) for name in sorted(declared)}
