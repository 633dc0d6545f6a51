"""The admission gate shared through Redis, against a real ``redis-server`` on loopback.

Several OS processes (``ade-async extract --redis``) share one quota and never exceed a window,
as the simulator counts arrivals; a 429 in one gate pauses the others; a killed process's leases
expire; Redis restarted mid-run loses no window and the run completes; Redis unreachable holds
admission (never admits without the shared state) and recovers.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from conftest import CEILING, RedisServer, wait_until

import ade_async
from ade_async import RateLimit, RedisBackend
from ade_async._config import ApiKey
from ade_async._engine.shared_admission import SharedAdmissionGate, redis_keys
from ade_async.testing import Simulator, SimulatorConfig

pytestmark = pytest.mark.anyio

SCHEMA = {"type": "object", "properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}


@asynccontextmanager
async def running(*gates: SharedAdmissionGate) -> AsyncIterator[None]:
    """Run each gate's driver, as a client's task group would; close them at the end."""
    async with anyio.create_task_group() as task_group:
        for gate in gates:
            task_group.start_soon(gate.run)
        try:
            yield
        finally:
            for gate in gates:
                gate.close(ade_async.ClientClosedError("test over"))


def gate(url: str, quota: str = "test", **options: object) -> SharedAdmissionGate:
    backend_options = {k: options.pop(k) for k in ("lease_ttl", "heartbeat") if k in options}
    backend = RedisBackend(url=url, quota_name=quota, **backend_options)  # type: ignore[arg-type]
    return SharedAdmissionGate(RateLimit(backend=backend, **options), key_fingerprint="0" * 16)  # type: ignore[arg-type]


def write_documents(folder: Path, count: int, start: int) -> None:
    folder.mkdir(parents=True)
    for n in range(start, start + count):
        (folder / f"inv-{n}.md").write_text(f"# Invoice {n}\n\nInvoice Number: INV-{n}\nTotal: {n}.25\n")


class Extract:
    """An ``ade-async extract`` process whose stderr is read as it comes, so a test can wait
    for what it reports."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._lines.append(line)

    def stderr(self) -> str:
        return "".join(self._lines)


def extract_process(sim: Simulator, docs: Path, out: Path, schema: Path, *extra: str) -> Extract:
    command = [sys.executable, "-m", "ade_async", "extract", str(docs), "--schema", str(schema)]
    command += ["--out", str(out), "--api-key", sim.api_key, "--base-url", sim.base_url, "--quiet", *extra]
    return Extract(command)


def start_python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


async def finish(extract: Extract) -> tuple[int, str]:
    def wait() -> int:
        code = extract.process.wait(timeout=90)
        extract._reader.join(timeout=CEILING)
        return code

    code = await anyio.to_thread.run_sync(wait)
    return code, extract.stderr()


def results(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.json") if ".ade-async" not in p.parts)


async def run_processes(
    tmp_path: Path, sim: Simulator, redis: RedisServer, *, processes: int, per_process: int, rate: str
) -> list[Extract]:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    started = []
    for i in range(processes):
        docs = tmp_path / f"docs-{i}"
        write_documents(docs, per_process, start=i * 1000)
        # A margin of 0.2 s: on two busy cores, a create can leave well after its admission.
        extra = (
            "--rate",
            rate,
            "--redis",
            redis.url,
            "--quota-name",
            "shared-test",
            "--safety-margin",
            "0.2",
        )
        started.append(extract_process(sim, docs, tmp_path / f"out-{i}", schema, *extra))
    return started


# --- several OS processes, one quota ---------------------------------------------------------------


async def test_processes_sharing_a_quota_never_exceed_a_window(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # The simulator enforces nothing, so it shows what the processes sent: together at most
    # 8 creates in any second. Three in-memory gates would each send 8 per second.
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3))) as sim:
        started = await run_processes(tmp_path, sim, redis_server, processes=3, per_process=12, rate="8/1s")
        outcomes = [await finish(p) for p in started]
        stats = sim.stats()
        busiest_second = sim.max_creates_in_window(1.0)
    assert [code for code, _ in outcomes] == [0, 0, 0], [err for _, err in outcomes]
    assert stats.jobs_total == 36
    assert stats.duplicate_jobs == 0
    assert busiest_second <= 8
    for i in range(3):
        assert len(results(tmp_path / f"out-{i}")) == 12


async def test_redis_restarted_mid_run_loses_no_window(tmp_path: Path, redis_server: RedisServer) -> None:
    async with Simulator(SimulatorConfig(latency=(0.05, 0.3))) as sim:
        started = await run_processes(tmp_path, sim, redis_server, processes=3, per_process=15, rate="10/1s")
        await wait_until(lambda: sim.stats().jobs_total >= 15)  # well into the run
        redis_server.stop()  # every key is lost
        # Down until a process has reported it, rather than for a second it might sleep through.
        await wait_until(lambda: any("unreachable" in p.stderr() for p in started))
        redis_server.start()
        outcomes = [await finish(p) for p in started]
        stats = sim.stats()
        busiest_second = sim.max_creates_in_window(1.0)
    assert [code for code, _ in outcomes] == [0, 0, 0], [err for _, err in outcomes]
    assert stats.jobs_total == 45
    assert stats.duplicate_jobs == 0
    assert busiest_second <= 10
    stderr = "".join(err for _, err in outcomes)
    assert "unreachable" in stderr  # the outage was visible ...
    assert "lost the state" in stderr  # ... and the processes put their admissions back


# --- shared feedback -----------------------------------------------------------------------------


async def test_a_429_in_one_process_pauses_every_other(redis_server: RedisServer) -> None:
    first, second = (
        gate(redis_server.url, windows=((100, 1.0),)),
        gate(redis_server.url, windows=((100, 1.0),)),
    )
    async with running(first, second):
        grant = await first.acquire()
        first.on_rate_limited(grant, retry_after=0.5)
        await wait_until(lambda: first.stats().paused_for > 0)  # the report has reached Redis
        state_key = redis_keys("ade_async", "test")[2]
        paused_until_us = int(redis_server.command("HGET", state_key, "paused_until"))
        with anyio.fail_after(CEILING):
            admitted = await second.acquire()
        assert admitted.admitted_at * 1_000_000 >= paused_until_us  # on the Redis server's clock
        assert first.stats().rate_limited == 1
        assert first.stats().admitted == 0
        second.release()


async def test_the_adaptive_rate_is_shared(redis_server: RedisServer) -> None:
    first, second = gate(redis_server.url), gate(redis_server.url)  # no windows: adaptive
    async with running(first, second):
        grant = await first.acquire()
        first.on_rate_limited(grant, retry_after=0.0)
        with anyio.fail_after(CEILING):
            await second.acquire()
        rate = second.stats().adaptive_rate
        assert rate is not None
        assert rate == pytest.approx(10.0 * 0.7)
        second.release()


async def test_leases_of_a_killed_process_expire(tmp_path: Path, redis_server: RedisServer) -> None:
    holder = textwrap.dedent(
        f"""
        import anyio, sys
        from ade_async import RateLimit, RedisBackend
        from ade_async._engine.shared_admission import SharedAdmissionGate

        async def main():
            backend = RedisBackend(url={redis_server.url!r}, quota_name="test", lease_ttl=2.0, heartbeat=0.2)
            gate = SharedAdmissionGate(RateLimit(max_in_flight=2, adaptive=False, backend=backend),
                                       key_fingerprint="0" * 16)
            async with anyio.create_task_group() as tg:
                tg.start_soon(gate.run)
                await gate.acquire()
                await gate.acquire()
                print("held", flush=True)
                await anyio.sleep_forever()

        anyio.run(main)
        """
    )
    process = start_python(holder)
    try:
        assert process.stdout is not None
        line = await anyio.to_thread.run_sync(process.stdout.readline)
        assert line.strip() == "held"
        leases_key = redis_keys("ade_async", "test")[1]
        assert redis_server.command("ZCARD", leases_key) == "2"
        first_expiry = max(lease_expiries(redis_server, leases_key))
        other = gate(redis_server.url, max_in_flight=2, adaptive=False, lease_ttl=2.0, heartbeat=0.2)
        admitted = anyio.Event()

        async def acquire() -> None:
            await other.acquire()
            admitted.set()

        async with running(other), anyio.create_task_group() as tg:
            tg.start_soon(acquire)
            # Past the moment the holder's leases would have expired (on the Redis server's clock):
            # its renewals keep them.
            with anyio.fail_after(CEILING):
                while (now := redis_now_us(redis_server)) <= first_expiry:
                    await anyio.sleep((first_expiry - now) / 1_000_000)  # the TTL is the behaviour under test
            assert not admitted.is_set(), "admitted while another process held the whole cap"
            assert min(lease_expiries(redis_server, leases_key)) > now  # both renewed
            process.send_signal(signal.SIGKILL)
            with anyio.fail_after(CEILING):
                await admitted.wait()  # the dead process's leases expired
            assert other.stats().shared_in_flight == 1
            other.release()
    finally:
        process.kill()
        process.wait()


def redis_now_us(redis: RedisServer) -> int:
    seconds, micros = redis.command("TIME").split()
    return int(seconds) * 1_000_000 + int(micros)


def lease_expiries(redis: RedisServer, leases_key: str) -> list[int]:
    """When each lease expires unless renewed, in microseconds of the Redis server's clock."""
    words = redis.command("ZRANGE", leases_key, "0", "-1", "WITHSCORES").split()
    return [int(score) for score in words[1::2]]


# --- failure behaviour ---------------------------------------------------------------------------


async def test_unreachable_redis_holds_admission_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path)  # not started yet
    port = server.port
    url = f"redis://:s3cret-pass@127.0.0.1:{port}/0"
    shared = gate(url, windows=((5, 1.0),))
    caplog.set_level(logging.WARNING, logger="ade_async")
    try:
        async with running(shared):
            async with anyio.create_task_group() as tg:
                tg.start_soon(shared.acquire)
                await wait_until(lambda: shared.stats().backend_errors >= 1 and "unreachable" in caplog.text)
                assert shared.stats().waiting == 1, "admitted without Redis"
                tg.cancel_scope.cancel()
            stats = shared.stats()
            assert not stats.backend_available
            assert stats.backend_errors >= 1
            assert stats.backend_error is not None
            assert "Connection" in stats.backend_error
            assert "unreachable" in caplog.text
            server.start("--requirepass", "s3cret-pass")
            assert server.url.endswith(f":{port}/0"), "the port was taken while the server was down"
            with anyio.fail_after(CEILING):
                granted = await shared.acquire()
            assert shared.stats().backend_available
            assert shared.stats().backend_error is None
            assert "reachable again" in caplog.text
            shared.refund(granted)
    finally:
        server.stop()
    assert "s3cret-pass" not in caplog.text
    assert "s3cret-pass" not in repr(shared)
    assert "***" in repr(shared)


async def test_script_loss_is_recovered(redis_server: RedisServer) -> None:
    shared = gate(redis_server.url, windows=((100, 1.0),))
    async with running(shared):
        shared.refund(await shared.acquire())
        redis_server.command("SCRIPT", "FLUSH")
        with anyio.fail_after(CEILING):
            shared.refund(await shared.acquire())
        assert shared.stats().backend_errors == 0


async def test_keys_share_one_hash_tag_all_expire_and_never_hold_the_key(redis_server: RedisServer) -> None:
    api_key = "sk-very-secret-0123456789"
    limit = RateLimit(
        windows=((50, 1.0), (500, 60.0)), max_in_flight=10, backend=RedisBackend(url=redis_server.url)
    )
    async with (
        Simulator(SimulatorConfig(api_keys=(api_key,), latency=(0.05, 0.1))) as sim,
        ade_async.Client(api_key=api_key, base_url=sim.base_url, rate_limit=limit) as client,
    ):
        result = await client.extract("# Invoice 1\n\nInvoice Number: INV-1\nTotal: 3.50\n", schema=SCHEMA)
        assert result.extraction["invoice_number"] == "INV-1"
        assert client.stats().admission.backend == "redis"
        quota = "key-" + ApiKey(api_key).fingerprint() + ".landingai.create"  # provider, budget
        log_key, leases_key, state_key = redis_keys("ade_async", quota)
        assert redis_server.command("ZCARD", log_key) == "1"
        await wait_until(lambda: redis_server.command("ZCARD", leases_key) == "0")  # the job's lease goes
        keys = set(redis_server.command("KEYS", "*").split())
    assert keys == {log_key, state_key}  # (an empty sorted set, the leases, is no key at all)
    for key in keys:
        assert key.startswith(f"ade_async:{{{quota}}}:")  # one hash tag: one Cluster slot
        assert api_key not in key
        assert int(redis_server.command("PTTL", key)) > 0
        assert api_key not in redis_server.command("DUMP", key)


async def test_cancelled_waiters_consume_nothing(redis_server: RedisServer) -> None:
    shared = gate(redis_server.url, windows=((1, 30.0),))
    async with running(shared):
        first = await shared.acquire()
        async with anyio.create_task_group() as tg:
            tg.start_soon(shared.acquire)  # the window is full for 30 s: cancelled while waiting
            await wait_until(lambda: shared.stats().waiting == 1)
            tg.cancel_scope.cancel()
        assert shared.stats().waiting == 0
        assert shared.stats().admitted == 1
        shared.refund(first)
        with anyio.fail_after(CEILING):
            again = await shared.acquire()  # the refund freed the window at once
        assert shared.stats().windows[0].used == 1
        shared.refund(again)


# --- options -------------------------------------------------------------------------------------


def test_backend_options_are_checked_and_never_show_a_password() -> None:
    with pytest.raises(ValueError, match="hash tag"):
        RedisBackend(quota_name="team{a}")
    with pytest.raises(ValueError, match="lease_ttl"):
        RedisBackend(lease_ttl=1.0, heartbeat=1.0)
    backend = RedisBackend(url="rediss://admin:hunter2@redis.internal:6380/1", quota_name="team-a")
    limit = RateLimit.per_hour(2000, backend=backend)
    for text in (repr(backend), repr(limit), backend.shown_url):
        assert "hunter2" not in text
    assert backend.shown_url == "rediss://admin:***@redis.internal:6380/1"
    assert backend.quota_for("abcd") == "team-a"
    assert RedisBackend().quota_for("abcd") == "key-abcd"


def test_quota_name_without_redis_is_a_usage_error(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    command = [sys.executable, "-m", "ade_async", "extract", str(tmp_path), "--schema", str(schema)]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), "--quota-name", "x", "--api-key", "k"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--quota-name needs --redis" in done.stderr


async def test_reports_wait_bounded_while_redis_is_unreachable(tmp_path: Path) -> None:
    from ade_async._engine import shared_redis as _shared_admission

    server = RedisServer(tmp_path)  # never started: every call fails
    shared = gate(server.url, windows=((5, 1.0),))
    grants = [
        ade_async._engine.admission.Grant(waiter=i, admitted_at=0.0, member=f"m{i}") for i in range(30_000)
    ]
    shared._in_flight = len(grants)  # as if these had been admitted before Redis went away
    for grant in grants:
        shared.on_accepted(grant)
        shared.release()
    stats = shared.stats()
    # Releases merge into one report; the answers are capped, the oldest dropped (safe side).
    assert stats.pending_reports <= _shared_admission._MAX_PENDING + 1
    assert stats.reports_dropped == 30_000 - _shared_admission._MAX_PENDING


class _BrokenScript:
    """A Redis client whose script call fails with a bug, not with a Redis error."""

    def register_script(self, _source: str) -> object:
        async def call(**_kwargs: object) -> list[object]:
            raise KeyError("a bug in the shared gate")

        return call

    async def aclose(self) -> None:
        return None


async def test_a_bug_in_the_shared_gate_holds_admission_and_never_ends_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ade_async")
    backend = RedisBackend(url="redis://127.0.0.1:1/0", quota_name="bug")
    shared = SharedAdmissionGate(
        RateLimit(backend=backend, windows=((5, 1.0),)),
        key_fingerprint="0" * 16,
        redis_client=_BrokenScript(),  # type: ignore[arg-type]
    )
    async with running(shared):
        async with anyio.create_task_group() as tg:
            tg.start_soon(shared.acquire)
            await wait_until(lambda: shared.stats().backend_errors >= 1)  # the bug has struck
            assert shared.stats().waiting == 1  # never admitted without the shared state
            tg.cancel_scope.cancel()
        stats = shared.stats()
        assert not stats.backend_available
        assert stats.backend_error is not None
        assert "a bug in the shared gate" in stats.backend_error
    assert "unexpected error" in caplog.text
