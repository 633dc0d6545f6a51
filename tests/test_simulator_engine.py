"""The simulator engine on its own: no vendor, no routes, no server, no event loop.

Everything in the engine takes ``now``, so these tests move time by passing numbers: an hour of
windows costs nothing and nothing sleeps. They prove what the next vendors need of the engine:
budgets that refuse independently (LlamaCloud's upload and create windows, per project), an
active-job cap freed only when a job ends or is cancelled (Contextual's five active jobs), a
results step that may be asked early, cancel, uploads kept by id, and cursor paging.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ade_async.testing._engine import (
    BudgetLimits,
    Budgets,
    Catalog,
    Engine,
    ExpiringLinks,
    FaultPlan,
    JobRecord,
    JobStore,
    Lifecycle,
    Markers,
    SchemaProblem,
    StatusNames,
    StoredFile,
    Timing,
    compile_schema,
    decode_cursor,
    page_by_offset,
)

SPELLING = StatusNames(
    queued="PENDING", running="RUNNING", succeeded="COMPLETED", failed="FAILED", cancelled="CANCELLED"
)
SCHEMA = compile_schema(
    {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}
)


def lifecycle(created: float, latency: float, *, queued: float = 0.0) -> Lifecycle:
    return Lifecycle(
        created=created,
        latency=latency,
        running_at=created + queued,
        done_at=created + latency,
        outcome="succeeded",
    )


def engine(**kwargs: Any) -> Engine[JobRecord]:
    options: dict[str, Any] = {
        "api_keys": ("k1", "k2"),
        "seed": 1,
        "timing": Timing(latency=(10.0, 10.0), queued_fraction=0.5),
        "statuses": SPELLING,
        "endpoints": ("upload", "create", "get", "results", "list", "cancel"),
    }
    options.update(kwargs)
    return Engine(**options)


def new_job(state: Engine[JobRecord], owner: str, text: str, now: float) -> JobRecord:
    job = JobRecord(
        job_id=state.new_uuid(),
        owner=owner,
        wall=1e9 + now,
        lifecycle=state.plan(text, now),
        filename="doc.md",
        content_sha256=str(hash(text)),
        schema=SCHEMA,
        document=text,
    )
    state.jobs.add(job)
    return job


def kept_text(job: JobRecord) -> str | None:
    """The text a job still keeps (read through a call, so a type checker does not narrow it)."""
    return job.document


# ---------------------------------------------------------------------------------------------
# budgets: windows


def test_budgets_refuse_independently() -> None:
    """A full upload window refuses uploads only; creates draw on their own window."""
    budgets = Budgets(
        {"upload": BudgetLimits(windows=((50, 5.0),)), "create": BudgetLimits(windows=((3, 1.0),))}
    )
    for i in range(50):
        assert budgets.check("upload", i * 0.01) is None
        budgets.take("upload", i * 0.01)
    refusal = budgets.check("upload", 0.5)
    assert refusal is not None
    assert (refusal.budget, refusal.reason, refusal.limit) == ("upload", "window", 50)
    assert refusal.wait == pytest.approx(4.5)  # until the upload at 0.0 leaves the 5 s window

    # The create budget is untouched by the refused upload, and fills on its own.
    for _ in range(3):
        assert budgets.check("create", 0.5) is None
        budgets.take("create", 0.5)
    create_refusal = budgets.check("create", 0.6)
    assert create_refusal is not None
    assert create_refusal.budget == "create"
    assert create_refusal.wait == pytest.approx(0.9)
    # ... and filling it did not move the upload window: uploads fit again at 5.0 exactly.
    assert budgets.check("upload", 4.99) is not None
    assert budgets.check("upload", 5.0) is None

    assert budgets.taken("upload") == 50
    assert budgets.taken("create") == 3
    assert budgets.refused == {("upload", "window"): 2, ("create", "window"): 1}
    assert budgets.max_in_window("upload", 5.0) == 50
    assert budgets.max_in_window("create", 1.0) == 3


def test_budget_scopes_are_separate() -> None:
    """LlamaCloud's upload limit is per project: one project's full window refuses no other."""
    budgets = Budgets({"upload": BudgetLimits(windows=((2, 5.0),))})
    for at in (0.0, 1.0):
        budgets.take("upload", at, scope="project-a")
    assert budgets.check("upload", 2.0, scope="project-a") is not None
    assert budgets.check("upload", 2.0, scope="project-b") is None
    budgets.take("upload", 2.0, scope="project-b")
    assert budgets.taken("upload") == 3
    assert budgets.taken("upload", scope="project-a") == 2
    assert budgets.max_in_window("upload", 5.0) == 2  # per scope: never 3 in one project


def test_unconfigured_budgets_count_without_limits() -> None:
    budgets = Budgets()
    for at in (0.0, 0.5, 0.99, 1.0, 1.5):
        assert budgets.check("create", at) is None
        budgets.take("create", at)
    assert budgets.wait("create", 1.5) is None
    assert budgets.max_in_window("create", 1.0) == 3  # [0, 1) and [0.5, 1.5) hold three
    assert budgets.max_in_window("create", 2.0) == 5
    assert budgets.names() == ("create",)


@pytest.mark.parametrize(
    "limits",
    [
        {"windows": ((0, 1.0),)},
        {"windows": ((1, 0.0),)},
        {"windows": ((1, float("inf")),)},
        {"max_active": 0},
        {"max_active": True},
    ],
)
def test_budget_limits_validate(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        BudgetLimits(**limits)


# ---------------------------------------------------------------------------------------------
# budgets: active-job cap


def test_active_cap_refuses_until_a_job_ends() -> None:
    """Contextual: '429 ... concurrency limit of 5 active jobs'; a slot frees when a job ends."""
    budgets = Budgets({"create": BudgetLimits(max_active=5)})
    jobs = [lifecycle(float(i), 10.0 + i) for i in range(5)]  # end at 10, 12, 14, 16, 18
    for job in jobs:
        assert budgets.check("create", job.created) is None
        budgets.take("create", job.created, job=job)
    assert budgets.active("create", 5.0) == 5

    refusal = budgets.check("create", 6.0)
    assert refusal is not None
    assert (refusal.reason, refusal.limit) == ("active", 5)
    assert refusal.wait == pytest.approx(4.0)  # the first job ends at 10.0
    assert budgets.check("create", 9.99) is not None
    assert budgets.check("create", 10.0) is None  # ended: its slot is free, nothing else moved it
    assert budgets.active("create", 10.0) == 4
    assert budgets.refused == {("create", "active"): 2}
    assert budgets.max_active("create") == 5


def test_instant_jobs_never_hold_a_slot() -> None:
    budgets = Budgets({"create": BudgetLimits(max_active=1)})
    for at in (0.0, 0.0, 1.0):
        assert budgets.check("create", at) is None
        budgets.take("create", at, job=lifecycle(at, 0.0))
    assert budgets.max_active("create") == 0


def test_cancel_frees_a_slot_at_once() -> None:
    state = engine(budgets={"create": BudgetLimits(max_active=2)})
    first = new_job(state, "k1", "Name: a\n", 0.0)
    state.budgets.take("create", 0.0, job=first.lifecycle)
    second = new_job(state, "k1", "Name: b\n", 1.0)
    state.budgets.take("create", 1.0, job=second.lifecycle)
    assert state.budgets.check("create", 2.0) is not None  # both run until 10.0 and 11.0

    assert state.cancel(second, 2.0)
    assert state.status_of(second, 2.0) == "CANCELLED"
    assert state.budgets.check("create", 2.0) is None  # the cancelled job's slot is free
    assert state.budgets.active("create", 2.0) == 1
    assert state.job_completed_at(second.job_id) == 2.0
    assert not state.cancel(second, 3.0)  # terminal: a cancel changes nothing
    assert not state.cancel(first, 10.0)
    assert state.status_of(first, 10.0) == "COMPLETED"
    assert state.jobs.most_active == 2


# ---------------------------------------------------------------------------------------------
# lifecycles


def test_lifecycle_phases_spelling_and_progress() -> None:
    life = lifecycle(100.0, 10.0, queued=2.0)
    assert [life.phase_at(t) for t in (100.0, 101.9, 102.0, 109.9, 110.0)] == [
        "queued",
        "queued",
        "running",
        "running",
        "succeeded",
    ]
    assert [SPELLING.at(life, t) for t in (100.0, 105.0, 110.0)] == ["PENDING", "RUNNING", "COMPLETED"]
    assert [life.progress_at(t) for t in (99.0, 100.0, 105.0, 110.0)] == [0.0, 0.0, 0.5, 1.0]
    life.status_override = "THROTTLED"  # a status marker: the raw status while running
    assert SPELLING.at(life, 105.0) == "THROTTLED"
    assert SPELLING.at(life, 101.0) == "PENDING"
    assert SPELLING.all() == ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")


def test_timing_draws_and_markers() -> None:
    timing = Timing(latency=(1.0, 3.0), queued_fraction=0.5, failure_rate=0.5, failure_reason="boom")
    plans = [timing.plan(random.Random(3), Markers(), 0.0) for _ in range(2)]
    assert plans[0].latency == plans[1].latency  # the same seed, the same draw
    assert 1.0 <= plans[0].latency <= 3.0
    assert plans[0].running_at == pytest.approx(plans[0].latency * 0.5)

    steered = timing.plan(
        random.Random(3), Markers(outcome="failed", failure_reason="bad scan", latency=0.1), 50.0
    )
    assert (steered.outcome, steered.failure_reason, steered.done_at) == ("failed", "bad scan", 50.1)
    assert steered.running_at <= steered.done_at  # the queued phase never outlasts the job

    outcomes = {timing.plan(random.Random(seed), Markers(), 0.0).outcome for seed in range(40)}
    assert outcomes == {"succeeded", "failed"}


def test_engine_plans_from_markers_and_spells_statuses() -> None:
    state = engine()
    job = new_job(state, "k1", "Name: Ada\n<!-- ade-sim: fail unreadable -->\n", 0.0)
    assert [state.status_of(job, t) for t in (0.0, 5.0, 10.0)] == ["PENDING", "RUNNING", "FAILED"]
    assert job.lifecycle.failure_reason == "unreadable"
    assert state.jobs_by_status(10.0) == {"FAILED": 1}


# ---------------------------------------------------------------------------------------------
# results


def test_results_may_be_asked_early() -> None:
    state = engine()
    job = new_job(state, "k1", "Name: Ada\nN: 7\n", 0.0)
    assert state.result_when_ready(job, 9.9) is None  # running: the vendor answers its status
    assert kept_text(job) is not None
    found = state.result_when_ready(job, 10.0)
    assert found is not None
    assert found.values == {"name": "Ada", "n": 7}
    assert kept_text(job) is None  # extracted once, the text is let go
    assert state.extraction_of(job) is found

    failed = new_job(state, "k1", "<!-- ade-sim: fail x -->", 0.0)
    assert state.result_when_ready(failed, 99.0) is None


# ---------------------------------------------------------------------------------------------
# jobs, paging, uploads, links


def test_jobs_belong_to_their_owner_and_duplicates_count() -> None:
    state = engine()
    mine = new_job(state, "k1", "Name: a\n", 0.0)
    new_job(state, "k2", "Name: a\n", 0.5)
    assert state.jobs.find(mine.job_id, "k1") is mine
    assert state.jobs.find(mine.job_id, "k2") is None
    assert state.jobs.duplicates == 1
    assert len(state.jobs) == 2


def test_cursor_pages_are_stable_while_jobs_arrive() -> None:
    store: JobStore[JobRecord] = JobStore()
    state = engine()

    def add(at: float) -> JobRecord:
        job = JobRecord(
            job_id=f"j{at:g}",
            owner="k1",
            wall=at,
            lifecycle=state.plan("", at),
            filename="x.md",
            content_sha256=f"{at}",
            schema=SCHEMA,
            document="",
        )
        store.add(job)
        return job

    for at in range(5):
        add(float(at))
    page, cursor = store.page_by_cursor("k1", as_of=10.0, cursor=None, size=2)
    assert [job.job_id for job in page] == ["j4", "j3"]
    assert cursor is not None
    add(5.0)  # a new job arrives between two pages: newest first, it is not on later pages
    page, cursor = store.page_by_cursor("k1", as_of=10.0, cursor=cursor, size=2)
    assert [job.job_id for job in page] == ["j2", "j1"]
    page, cursor = store.page_by_cursor("k1", as_of=10.0, cursor=cursor, size=2)
    assert ([job.job_id for job in page], cursor) == (["j0"], None)

    odd, cursor = store.page_by_cursor(
        "k1", as_of=10.0, cursor=None, size=2, keep=lambda j: j.created % 2 == 1
    )
    assert [job.job_id for job in odd] == ["j5", "j3"]
    assert cursor is not None
    rest, last = store.page_by_cursor(
        "k1", as_of=10.0, cursor=cursor, size=2, keep=lambda j: j.created % 2 == 1
    )
    assert ([job.job_id for job in rest], last) == (["j1"], None)

    lagging, _ = store.page_by_cursor("k1", as_of=2.5, cursor=None, size=10)
    assert [job.job_id for job in lagging] == ["j2", "j1", "j0"]  # not yet indexed after 2.5
    with pytest.raises(ValueError, match="cursor"):
        store.page_by_cursor("k1", as_of=10.0, cursor="not-a-cursor", size=2)
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor("")


def test_offset_pages() -> None:
    items = list(range(7))  # oldest first
    assert page_by_offset(items, 7, offset=0, size=3) == ([6, 5, 4], True)
    assert page_by_offset(items, 7, offset=6, size=3) == ([0], False)
    assert page_by_offset(items, 7, offset=9, size=3) == ([], False)
    assert page_by_offset(items, 5, offset=0, size=5) == ([4, 3, 2, 1, 0], False)
    assert page_by_offset(items, 7, offset=1, size=2, keep=lambda n: n % 2 == 0) == ([4, 2], True)
    assert page_by_offset(items, 7, offset=2, size=2, keep=lambda n: n % 2 == 0) == ([2, 0], False)


def test_uploads_are_kept_by_id_for_their_owner() -> None:
    state = engine()
    upload = StoredFile.of(filename="a.md", content_type="text/markdown", data=b"\xef\xbb\xbfName: Ada\n")
    file_id = f"dfl-{state.new_uuid()}"
    state.files.add(file_id, "k1", upload, 0.0)
    document_id = state.new_uuid()
    state.files.add(
        document_id, "k1", StoredFile.of(filename="b.pdf", content_type=None, data=b"\xff%PDF"), 1.0
    )

    found = state.files.find(file_id, "k1")
    assert found is upload
    assert found.text() == "Name: Ada\n"  # the BOM dropped; this text feeds the extraction
    assert state.files.find(file_id, "k2") is None
    stored = state.files.find(document_id, "k1")
    assert stored is not None
    assert stored.text() is None

    page, cursor = state.files.page("k1", cursor=None, size=1)
    assert ([item_id for item_id, _ in page], cursor is not None) == ([document_id], True)
    page, cursor = state.files.page("k1", cursor=cursor, size=1)
    assert ([item_id for item_id, _ in page], cursor) == ([file_id], None)

    schemas: Catalog[str] = Catalog()  # a vendor's registered schemas, e.g. Contextual's
    schemas.add("s-1", "k1", json.dumps({"type": "object"}), 0.0)
    assert schemas.find("s-1", "k1") == '{"type": "object"}'
    assert len(schemas) == 1


def test_expiring_links() -> None:
    tokens = iter(["t1", "t2"])
    links: ExpiringLinks[str] = ExpiringLinks(lambda: next(tokens))
    assert links.issue("result-1", 0.0, 60.0) == "t1"
    assert links.issue("result-2", 30.0, 60.0) == "t2"
    assert links.redeem("t1", 59.9) == "result-1"
    assert links.redeem("t1", 60.0) is None
    assert links.redeem("t2", 60.0) == "result-2"
    links.expire_all()
    assert links.redeem("t2", 61.0) is None
    assert links.redeem("nope", 0.0) is None


# ---------------------------------------------------------------------------------------------
# faults and schemas


def test_fault_plan_per_named_endpoint() -> None:
    plan = FaultPlan(
        endpoints=("upload", "create", "get"),
        single_endpoint={"lost_response": "create"},
        rates={"upload": (("500", 1.0),)},
        rng=random.Random(0),
    )
    plan.inject("create", "lost_response")
    plan.inject("upload", "drop", count=2)
    assert [plan.next("upload") for _ in range(3)][:2] == ["drop", "drop"]
    assert plan.next("upload") in ("500", "502", "503")  # then the random rate
    assert plan.next("create") == "lost_response"
    assert plan.next("create") is None
    assert plan.applied["drop"] == 2
    with pytest.raises(ValueError, match="create endpoint only"):
        plan.inject("get", "lost_response")
    with pytest.raises(ValueError, match="endpoint"):
        plan.inject("download", "500")
    with pytest.raises(ValueError, match="unknown endpoints"):
        FaultPlan(endpoints=("get",), rates={"upload": ()}, rng=random.Random(0))


def test_compile_schema() -> None:
    schema = compile_schema(
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "number"}}}
    )
    assert [(spec.name, spec.kind) for spec in schema.fields] == [("a", "number")]
    with pytest.raises(SchemaProblem) as cycle:
        compile_schema({"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}})
    assert cycle.value.reason == "ref_cycle"
    with pytest.raises(SchemaProblem) as invalid:
        compile_schema({"type": "object", "properties": {"a": 3}})
    assert invalid.value.reason == "invalid"
