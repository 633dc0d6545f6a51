"""A big journal made quickly, as a long ``ade-async extract`` run would leave it (for the report's
size test and ``benchmarks/bench_report.py``).

The run: ``inputs`` files under a quota of 200 creates per second and 20,000 per 10 minutes,
jobs of 1 to 20 s, 1 % failed (in three reasons), 0.5 % still running at the end, 0.2 % with an
unknown outcome, 0.1 % possible duplicates, a 429 every 1,000 creates, a counter sample every
second. Written through :class:`JournalStore` in one transaction.
"""

from __future__ import annotations

import random
from pathlib import Path

from ade_async.cli._journal import JournalStore, Moments, State

__all__ = ["build_journal"]

_REASONS = (
    ("job", "JobFailedError: job {job} failed: the document could not be parsed"),
    ("job", "JobFailedError: job {job} failed: schema too large for the model"),
    ("read", "InputError: {name}: empty file"),
)


def build_journal(out: Path, inputs: int, *, seed: int = 7) -> None:
    """Write ``out/.ade-async/journal.sqlite`` for a finished run over ``inputs`` files."""
    rng = random.Random(seed)
    folder = out / ".ade-async"
    folder.mkdir(parents=True, exist_ok=True)
    store = JournalStore(folder / "journal.sqlite")
    try:
        with store.transaction():
            store.claim_provider("landingai")
            run_id = store.begin_run(
                provider="landingai",
                settings={
                    "provider": "landingai",
                    "windows": [[200, 1.0], [20000, 600.0]],
                    "adaptive": False,
                    "max_in_flight": 1000,
                },
            )
            start = store.rows("SELECT started_at FROM runs WHERE id = ?", (run_id,))[0][0]
            spacing = 600.0 / 20000  # the tighter window over a long run: 33.3 creates per second
            completed = failed = pending = unknown = 0
            for i in range(inputs):
                key = f"batch-{i // 1000:03d}/invoice-{i:06d}.md"
                job = f"job-{i:08x}"
                admitted = start + i * spacing * 0.5
                sent = start + i * spacing + rng.uniform(0.0, 0.01)
                answered = sent + rng.uniform(0.05, 0.3)
                ended = answered + rng.uniform(1.0, 20.0)
                draw = rng.random()
                if draw < 0.01:
                    stage, template = _REASONS[i % len(_REASONS)]
                    store.write_record(
                        key,
                        State.FAILED,
                        source=f"/data/{key}",
                        job_id=job if stage == "job" else None,
                        stage=stage,
                        error=template.format(job=job, name=f"/data/{key}"),
                        moments=Moments(
                            admission_at=admitted, sent_at=sent, answered_at=answered, ended_at=ended
                        )
                        if stage == "job"
                        else None,
                        error_file=key.removesuffix(".md") + ".error.json",
                    )
                    failed += 1
                elif draw < 0.015:
                    store.write_record(
                        key,
                        State.SUBMITTED,
                        job_id=job,
                        moments=Moments(admission_at=admitted, sent_at=sent, answered_at=answered),
                    )
                    pending += 1
                elif draw < 0.017:
                    store.write_record(
                        key, State.UNKNOWN, moments=Moments(admission_at=admitted, sent_at=sent)
                    )
                    unknown += 1
                else:
                    store.write_record(
                        key,
                        State.COMPLETED,
                        job_id=job,
                        moments=Moments(
                            admission_at=admitted,
                            sent_at=sent,
                            answered_at=answered,
                            ended_at=ended,
                            detected_within=rng.uniform(0.0, 2.0),
                            written_at=ended + 0.01,
                        ),
                    )
                    completed += 1
                if draw > 0.999:
                    store.mark_possible_duplicate(key)
                if i % 1000 == 999:
                    store.write_mark("rate_limited", at=sent, key=key, paused_for=1.0)
            end = start + inputs * spacing + 21.0
            for second in range(int(end - start) + 1):
                done = min(inputs, int(second / spacing))
                store.write_sample(
                    start + second,
                    {
                        "creates_sent": done + done // 1000,
                        "creates_rate_limited": done // 1000,
                        "polls_sent": int(done * 1.2),
                        "sweep_requests": second // 2,
                        "results_fetched": max(0, done - 500),
                        "in_flight": 500,
                    },
                )
            store.end_run(
                run_id,
                exit_code=1,
                summary={
                    "exit_code": 1,
                    "inputs": inputs,
                    "completed": completed,
                    "skipped": 0,
                    "failed": failed + unknown,
                    "pending": pending,
                    "possible_duplicates": 0,
                    "reconciled": 0,
                    "outcome_unknown": unknown,
                    "elapsed_s": end - start,
                },
            )
            store.rows("UPDATE runs SET ended_at = ? WHERE id = ?", (end, run_id))
    finally:
        store.close()
