"""The fault suite: every scenario of the table, through ``extract_many`` and (where the command's
own journal and outputs are at stake) through ``ade-async extract``.

Each run is held to the same rules by ``check_run``: exactly one outcome per input, no result lost
(every result equals the simulator's deterministic extraction), no job submitted twice, every job
the client cannot know about reported, no key sent to an ``output_url``, and every injected fault
met.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ade_async.providers.landingai import LandingAI
from ade_async.testing import ENDPOINTS, Faults

from .harness import RunReport, Scenario, check_run, run_cli, run_extract_many

pytestmark = pytest.mark.anyio

#: Slow faults sleep past the client's 1.5 s read timeout (kept well above a loaded machine's answers),
#: by enough that a client stalled for seconds still times out before the late answer comes.
_SLOW = {"faults": Faults(slow_seconds=4.0)}

SCENARIOS = (
    Scenario(
        name="429 storm, no Retry-After",
        inject=(("create", "429", 12),),
        simulator={"retry_after": None},
        cli=True,
    ),
    Scenario(
        name="429 storm, retry-after-ms",
        inject=(("create", "429", 12),),
        simulator={"retry_after": "ms"},
    ),
    Scenario(
        name="429 storm, Retry-After in seconds",
        inject=(("create", "429", 2),),  # each asks for a whole second: a short storm
        simulator={"retry_after": "seconds"},
    ),
    Scenario(
        name="429 storm from a real quota (4 per 0.25 s), retry-after-ms",
        # The client's adaptive rate starts at 40/s; the quota allows 16/s.
        simulator={"quota": ((4, 0.25),), "retry_after": "ms"},
        documents=20,
    ),
    Scenario(
        name="429 on reads",
        inject=(("get", "429", 4), ("list", "429", 2)),
    ),
    Scenario(
        name="5xx on every endpoint",
        inject=(
            ("create", "500", 1),
            ("create", "502", 1),
            ("create", "503", 1),
            ("get", "500", 2),
            ("get", "503", 2),
            ("list", "502", 2),
            ("download", "503", 2),
        ),
        # A 502 comes from a gateway, which may have passed the create on: it is searched for.
        # The simulator's 502 made no job, so the search finds none and the input is reported.
        unknown_creates=1,
        cli=True,
    ),
    Scenario(
        name="connection refused until the API is up (nothing sent)",
        late_start=True,
    ),
    Scenario(
        name="connection dropped after the request was sent, before acting",
        # Two drops per read: aiohttp itself resends an idempotent GET once.
        inject=(("create", "drop", 2), ("get", "drop", 4), ("list", "drop", 2), ("download", "drop", 2)),
        unknown_creates=2,
        cli=True,
    ),
    Scenario(
        name="create carried out, its answer lost",
        inject=(("create", "lost_response", 2),),
        reconciled=2,  # both jobs exist and are found by their upload token
        cli=True,
    ),
    Scenario(
        name="answers slower than the read timeout",
        inject=(("create", "slow", 1), ("get", "slow", 2), ("list", "slow", 1), ("download", "slow", 1)),
        simulator=_SLOW,
        unknown_creates=1,
    ),
    Scenario(
        name="truncated JSON",
        inject=(("create", "malformed", 1), ("get", "malformed", 2), ("list", "malformed", 2)),
        reconciled=1,  # the garbled 202 did create the job: found and adopted
        cli=True,
    ),
    Scenario(
        name="truncated result download",
        inject=(("download", "malformed", 2),),
    ),
    Scenario(
        name="HTML instead of JSON (a proxy)",
        inject=(
            ("create", "not_json", 1),
            ("get", "not_json", 2),
            ("list", "not_json", 1),
            ("download", "not_json", 1),
        ),
        reconciled=1,  # the job was created behind the proxy's page: found and adopted
    ),
    Scenario(
        name="unknown status strings while running",
        unknown_status_every=1,
    ),
    Scenario(
        name="404 for a live job mid-poll",
        inject=(("get", "404", 2),),  # fewer than the 3 confirmations that declare a job lost
    ),
    Scenario(
        name="expired output_url",
        inject=(("download", "expired", 2),),
    ),
    Scenario(
        name="storage errors on download",
        inject=(("download", "500", 1), ("download", "503", 1)),
    ),
    Scenario(
        name="random faults everywhere (8 % 5xx, 3 % drops, 2 % lost creates, 3 % truncated reads)",
        documents=40,
        simulator={
            "faults": Faults(
                error_rate=dict.fromkeys(ENDPOINTS, 0.08),
                drop_rate=dict.fromkeys(ENDPOINTS, 0.03),
                lost_response_rate=0.02,
                malformed_rate={"get": 0.03, "list": 0.03},
            ),
        },
        client={"provider": LandingAI(url_refreshes=4)},
        unknown_creates=None,
        reconciled=None,
        cli=True,
    ),
)


def _id(scenario: Scenario) -> str:
    return scenario.name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=_id)
async def test_extract_many_under_faults(
    scenario: Scenario, tmp_path: Path, reports: list[RunReport]
) -> None:
    report = await run_extract_many(scenario, tmp_path / "docs")
    reports.append(report)
    check_run(scenario, report)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.cli], ids=_id)
async def test_cli_under_faults(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reports: list[RunReport]
) -> None:
    report = await run_cli(scenario, tmp_path, monkeypatch)
    reports.append(report)
    check_run(scenario, report)


def test_the_table_covers_every_fault_kind_on_every_endpoint_it_applies_to() -> None:
    """Adding a fault kind to the simulator without a scenario here fails this test."""
    from ade_async.testing import FAULT_ENDPOINTS, FAULT_KINDS

    covered = {(endpoint, kind) for scenario in SCENARIOS for endpoint, kind, _ in scenario.inject}
    assert set(FAULT_KINDS) <= {kind for _, kind in covered}
    for kind, endpoint in FAULT_ENDPOINTS.items():
        assert (endpoint, kind) in covered
    assert {endpoint for endpoint, kind in covered if kind in ("500", "502", "503")} == set(ENDPOINTS)
