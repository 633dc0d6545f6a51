"""Headless Chromium for tests: open a local page, run JavaScript in it, take screenshots.

Debian's ``chromium`` (the README's test command installs it), driven over the DevTools protocol
on a loopback websocket with aiohttp: no Python driver, nothing downloaded. The browser listens
on a port it picks itself (``--remote-debugging-port=0``) and writes it to ``DevToolsActivePort``
in its profile folder; every flag that would make it reach the network is off.

Example::

    async with Chromium(tmp_path / "profile") as browser:
        page = await browser.open(path)
        title = await page.evaluate("document.title")
        png = await page.screenshot()
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from conftest import CEILING, wait_until

__all__ = ["Chromium", "Page", "chromium_or_skip"]

_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_or_skip() -> str:
    """The browser's executable. Missing: skipped locally, a failure on CI (as redis-server is)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    message = "chromium is not installed (the README's test command installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Page:
    """One tab, over its own DevTools websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events in between are skipped)."""
        number = next(self._ids)
        await self._socket.send_json({"id": number, "method": method, "params": params})
        with anyio.fail_after(CEILING):
            async for message in self._socket:
                answer = message.json()
                if answer.get("id") != number:
                    continue  # an event
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
        raise RuntimeError(f"{method}: the browser closed the connection")

    async def navigate(self, url: str) -> None:
        """Load ``url`` and return once the document and everything in it has loaded."""
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        await wait_until_async(lambda: self.evaluate("document.readyState"), "complete")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, clip: dict[str, float] | None = None, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport, of ``clip`` (page coordinates), or of the whole page."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page or clip is not None}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        elif full_page:
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        result = await self.call("Page.captureScreenshot", **params)
        return base64.b64decode(result["data"])


async def wait_until_async(read: Any, expected: object) -> None:
    """Return once ``await read()`` gives ``expected`` (a browser's state: nothing to await)."""
    with anyio.fail_after(CEILING):
        while await read() != expected:
            await anyio.sleep(0.02)


class Chromium:
    """A headless Chromium process for one test, with its own throwaway profile folder."""

    def __init__(self, profile: Path, *, width: int = 1200, height: int = 900) -> None:
        self._profile = profile
        self._size = f"--window-size={width},{height}"
        self._port = 0
        self._session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Chromium]:
        executable = chromium_or_skip()
        self._profile.mkdir(parents=True, exist_ok=True)
        command = [executable, *_FLAGS, self._size, f"--user-data-dir={self._profile}", "about:blank"]
        process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            active = self._profile / "DevToolsActivePort"
            await wait_until(lambda: active.exists() and active.read_text().count("\n") >= 1)
            self._port = int(active.read_text().split()[0])
            async with aiohttp.ClientSession() as session:
                self._session = session
                yield self
        finally:
            with anyio.CancelScope(shield=True):
                process.terminate()
                with anyio.move_on_after(CEILING):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[Page]:
        """A new tab showing ``url`` (loaded when this yields)."""
        assert self._session is not None
        base = f"http://127.0.0.1:{self._port}"
        async with self._session.put(f"{base}/json/new?about:blank") as answer:
            target = await answer.json()
        try:
            async with self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                page = Page(socket)
                await page.navigate(url)
                yield page
        finally:
            async with self._session.get(f"{base}/json/close/{target['id']}"):
                pass
