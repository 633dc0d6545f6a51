"""Shared fixtures. Tests run on asyncio through anyio's pytest plugin; nothing leaves loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


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
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        """Start (or restart) the server; ``extra`` are more ``redis-server`` options."""
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(self._directory), "--protected-mode", "no", *extra),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server at once (SIGKILL): it keeps nothing."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # up, with or without a password
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
            timeout=10,
        )
        return done.stdout.strip()


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
