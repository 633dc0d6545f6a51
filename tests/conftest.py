"""Shared fixtures. Tests run on asyncio through anyio's pytest plugin; nothing leaves loopback."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

import ade_async
from ade_async.testing import FakeClock, Simulator

#: How long a wait for something outside the test (a process, a server, the client's poller) may
#: take before the test fails. It only turns a hang into a failure: nothing a test asserts
#: depends on it, and a loaded machine is nowhere near it.
CEILING = 30.0


async def wait_until(condition: Callable[[], object], *, ceiling: float = CEILING) -> None:
    """Return once ``condition()`` is true, checking it every 10 ms.

    For a state that only something outside the test brings about (a simulator answering over
    loopback, another process, the client's poller) and that offers nothing to await. How often
    it is checked decides nothing; ``ceiling`` only bounds a hang.
    """
    with anyio.fail_after(ceiling):
        while not condition():
            await anyio.sleep(0.01)


class CreateHold:
    """Holds every create ``sim`` receives, unanswered, until :meth:`release`.

    Install it before the simulator starts. Unlike a "slow" fault, which answers after a fixed
    time a stalled test can outlast, a held create stays on the wire exactly as long as the test
    says, and closing the simulator does not wait out its sleep.
    """

    def __init__(self, sim: Simulator) -> None:
        self.arrived = 0
        self._released = anyio.Event()

        @web.middleware
        async def hold(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.method == "POST":
                self.arrived += 1
                await self._released.wait()
            return await handler(request)

        sim.app.middlewares.append(hold)

    def release(self) -> None:
        self._released.set()


def answered(client: ade_async.Client, sim: Simulator) -> bool:
    """The simulator has answered every request the client has sent (faults included)."""
    sent, seen = client.stats(), sim.stats()
    reads = sent.polls_sent + sent.sweep_requests + sent.reads_sent
    return seen.count("create") >= sent.creates_sent and seen.count("get") + seen.count("list") >= reads


async def drive(
    clock: FakeClock,
    client: ade_async.Client,
    sim: Simulator,
    until: Callable[[], object],
    *,
    step: float = 0.01,
    ceiling: float = CEILING,
) -> None:
    """Advance ``clock``, shared by ``client`` and ``sim``, a step at a time until ``until()`` holds.

    Each step waits until the simulator has answered every request the client sent, so a request
    reaches the simulator at most a step of fake time after the client decided to send it, and
    what happens when follows from the fake schedule alone, not from how fast the machine is.
    ``ceiling`` (real seconds) only bounds a hang.
    """
    with anyio.fail_after(ceiling):
        while not until():
            await clock.advance(step)
            await wait_until(lambda: answered(client, sim), ceiling=ceiling)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_ade_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's real key or host from the environment."""
    for name in ("VISION_AGENT_API_KEY", "LANDINGAI_ADE_ENVIRONMENT", "LANDINGAI_ADE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, without persistence.

    ``stop()`` and ``start()`` again on the same port simulate a restart that loses every key.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = itertools.count()
        self._started_once = False
        self._use_port(_free_port())

    def _use_port(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> None:
        """Start (or restart) the server; ``extra`` are more ``redis-server`` options.

        Returns once *this* server says it accepts connections (its own log, so a stranger on
        the port cannot pass for it). The first start moves to another free port if the one
        picked was taken meanwhile; a restart keeps its port, as the clients' URLs name it.
        """
        for _ in range(5):
            if self._start_once(extra):
                self._started_once = True
                return
            if self._started_once:
                break
            self._use_port(_free_port())
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _start_once(self, extra: tuple[str, ...]) -> bool:
        log = self._directory / f"redis-server-{self.port}-{next(self._starts)}.log"
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self._directory), "--protected-mode", "no", "--logfile", str(log), *extra),
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + CEILING  # bounds a hang only
        while "ready to accept connections" not in _read(log).lower():
            if process.poll() is not None:
                return False  # e.g. the port was taken between picking and binding it
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                return False
            time.sleep(0.01)
        self._process = process
        if not self.ping():
            raise RuntimeError(f"redis-server on port {self.port} is up but does not answer PING")
        return True

    def stop(self) -> None:
        """Kill the server at once (SIGKILL): it keeps nothing."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=CEILING)
            self._process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=CEILING) as sock:
                sock.sendall(b"PING\r\n")
                answer = b""
                while not answer.endswith(b"\r\n"):  # one recv may return part of the line
                    chunk = sock.recv(64)
                    if not chunk:
                        break
                    answer += chunk
                return answer.startswith((b"+PONG", b"-NOAUTH"))  # up, with or without a password
        except OSError:
            return False

    def command(self, *args: str) -> str:
        """Run one ``redis-cli`` command against this server; its output."""
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            check=True,
            text=True,
            errors="replace",  # DUMP answers binary
            timeout=CEILING,
        )
        return done.stdout.strip()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for one test. Missing binary: skipped locally, an error on CI."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (the README's test command installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
