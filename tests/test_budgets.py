"""Admission per budget: a provider's uploads draw on a gate of their own, never on the creates'.

The provider here is LandingAI's translation with an upload step bolted on (a vendor that takes
uploads first), served by a MockTransport: what is checked is the engine's part, that a 429 on an
upload pauses uploads and not creates, that an upload holds no in-flight slot once answered, and
that a budget the provider does not declare is refused.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import ade_async
from ade_async import HttpRequest, RateLimit, Response
from ade_async.providers import Api, Staged
from ade_async.providers.landingai import INFO, LandingAI
from ade_async.testing import MockTransport, json_response

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "string"}}}
UPLOADING = dataclasses.replace(
    INFO,
    name="uploading",
    budgets={"create": "job creates", "upload": "file uploads"},
    default_limits={"upload": RateLimit(windows=((5, 1.0),), adaptive=False)},
)


class Uploading(LandingAI):
    """ADE's translation, plus an upload before each create (the way LlamaCloud works)."""

    info = UPLOADING

    async def stage(self, api: Api, **kwargs: Any) -> Staged:
        await api.send_within("upload", HttpRequest(method="POST", path="/upload"))
        return await super().stage(api, **kwargs)


def handler() -> tuple[MockTransport, list[str]]:
    seen: list[str] = []
    uploads = 0

    def answer(request: HttpRequest) -> Response:
        nonlocal uploads
        seen.append(f"{request.method} {request.path.split('?')[0]}")
        if request.path == "/upload":
            uploads += 1
            if uploads == 1:  # the first upload is refused: the upload gate must pause
                return json_response(429, {"message": "slow down"}, {"retry-after-ms": "10"})
            return json_response(200, {"id": f"file-{uploads}"})
        if request.method == "POST":
            return json_response(202, {"job_id": f"job-{len(seen)}"})
        job_id = request.path.rsplit("/", 1)[1]
        return json_response(
            200,
            {
                "job_id": job_id,
                "status": "completed",
                "received_at": 1,
                "progress": 1.0,
                "data": {"extraction": {"n": "1"}, "extraction_metadata": {}, "metadata": {}},
            },
        )

    return MockTransport(answer), seen


async def test_an_upload_429_pauses_uploads_not_creates() -> None:
    transport, seen = handler()
    poll = ade_async.PollPolicy(first_delay=0.01, max_delay=0.02, coalesce=0.0, sweep=False)
    limit = RateLimit(adaptive=False, max_in_flight=1)
    async with ade_async.Client(
        provider=Uploading(), api_key="k", transport=transport, poll=poll, rate_limit=limit
    ) as client:
        first = await client.extract("# one", schema=SCHEMA)
        second = await client.extract("# two", schema=SCHEMA)
        stats = client.stats()
    assert (first.value, second.value) == ({"n": "1"}, {"n": "1"})
    assert set(stats.budgets) == {"create", "upload"}
    assert stats.budgets["upload"].rate_limited == 1  # the refused upload, waited out
    assert stats.budgets["create"].rate_limited == 0  # creates were never paused by it
    assert stats.budgets["upload"].windows[0].count == 5  # the provider's documented window
    assert stats.budgets["upload"].in_flight == 0  # an answered upload holds nothing
    assert stats.admission.in_flight == 0  # both jobs seen to end: their create slots are free
    assert seen.count("POST /upload") == 3  # refused once, then one per document
    assert stats.admission == stats.budgets["create"]


def test_a_budget_the_provider_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match="no budget download; its other budgets: upload"):
        ade_async.Client(provider=Uploading(), api_key="k", budget_limits={"download": RateLimit()})
    with pytest.raises(ValueError, match="none besides create"):
        ade_async.Client(api_key="k", budget_limits={"upload": RateLimit()})
