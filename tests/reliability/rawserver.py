"""A loopback TCP server that answers HTTP requests badly, on purpose, byte for byte.

aiohttp's own server always speaks valid HTTP; the failures a client must survive (a garbage status
line, a header without a colon, a body shorter than its ``Content-Length``, a broken chunk, a
connection dropped or reset after the request, an answer that never comes, an endless body) needs a
server that writes raw bytes. Each connection reads one whole request (so closing it is a clean
close, not a reset caused by unread data), then answers as :attr:`RawServer.mode` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
from collections.abc import AsyncIterator
from typing import Final

__all__ = ["ANSWERS", "MODES", "OVERSIZED_MODES", "STREAM_LIMIT", "RawServer", "raw_server"]

_JSON: Final = b"Content-Type: application/json\r\n"

#: Modes whose answer is a fixed byte string.
ANSWERS: Final[dict[str, bytes]] = {
    "garbage_status": b"HTTP/1.1 abc nonsense\r\n\r\n",
    "not_http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "bad_header": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nthis line has no colon\r\n\r\n{}",
    "short_body": b"HTTP/1.1 200 OK\r\n" + _JSON + b'Content-Length: 100\r\n\r\n{"job_id": "j',
    "bad_chunk": b"HTTP/1.1 200 OK\r\n" + _JSON + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n",
    "html": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 24\r\n\r\n<html>maintenance</html>"
    ),
    "server_error": (
        b"HTTP/1.1 500 Internal Server Error\r\n" + _JSON + b'Content-Length: 17\r\n\r\n{"error": "boom"}'
    ),
    "redirect_loop": b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n",
}

#: Every mode: the fixed answers, plus ``drop`` (close after the request), ``reset`` (abort the
#: connection with a TCP RST), ``hang`` (never answer, until the server is closed) and ``echo``
#: (a 400 whose body is the request's head, headers included, as debugging proxies answer).
MODES: Final[tuple[str, ...]] = (*ANSWERS, "drop", "reset", "hang", "echo")

#: Modes that answer 200 with a body far too large: ``huge_length`` declares 1 GiB in its
#: ``Content-Length`` and streams it; ``huge_chunked`` streams chunks with no length, and
#: ``huge_until_close`` plain bytes with no length until the connection closes, both without end
#: (up to :data:`STREAM_LIMIT`); ``gzip_bomb`` sends a few kilobytes that decompress to 16 MiB.
OVERSIZED_MODES: Final[tuple[str, ...]] = ("huge_length", "huge_chunked", "huge_until_close", "gzip_bomb")

#: Where an endless body gives up, should a client never stop reading it.
STREAM_LIMIT: Final = 1 << 30
_BLOCK: Final = b"x" * 65536
_BOMB: Final = gzip.compress(b"0" * (16 << 20), 9)


class RawServer:
    """The server's address and what it saw.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        mode: how the next requests are answered (may be changed between requests).
        heads: the head (request line and headers) of every request received, in order.
        sent: body bytes streamed by the oversized modes (before the client stopped reading).
    """

    def __init__(self, mode: str) -> None:
        if mode not in (*MODES, *OVERSIZED_MODES):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.url = ""
        self.heads: list[bytes] = []
        self.sent = 0
        self._release = asyncio.Event()
        self._arrived = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await _read_request(reader)
            if head is None:
                return
            self.heads.append(head)
            self._arrived.set()
            mode = self.mode
            if mode == "hang":
                await self._release.wait()
            elif mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "echo":
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))
            elif mode == "gzip_bomb":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(_BOMB), _BOMB)
                )
            elif mode in OVERSIZED_MODES:
                await self._stream(writer, mode)
            elif mode != "drop":
                writer.write(ANSWERS[mode])
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, mode: str) -> None:
        framing = {
            "huge_length": b"Content-Length: %d\r\n" % STREAM_LIMIT,
            "huge_chunked": b"Transfer-Encoding: chunked\r\n",
            "huge_until_close": b"Connection: close\r\n",
        }[mode]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + framing + b"\r\n")
        while self.sent < STREAM_LIMIT:  # until the client goes away (drain then raises)
            if mode == "huge_chunked":
                writer.write(b"%x\r\n%s\r\n" % (len(_BLOCK), _BLOCK))
            else:
                writer.write(_BLOCK)
            self.sent += len(_BLOCK)
            await writer.drain()

    async def received(self, count: int) -> None:
        """Return once ``count`` requests have arrived."""
        while len(self.heads) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def release(self) -> None:
        """Let every hanging connection go (they close without an answer)."""
        self._release.set()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One whole request (head and body); its head, or ``None`` if the client went away first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    headers = head.lower()
    length = 0
    for line in headers.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    elif b"transfer-encoding: chunked" in headers:
        await reader.readuntil(b"0\r\n\r\n")
    return head


@contextlib.asynccontextmanager
async def raw_server(mode: str) -> AsyncIterator[RawServer]:
    """Serve on a free loopback port for the duration of the block."""
    state = RawServer(mode)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release()
        server.close()
        await server.wait_closed()
