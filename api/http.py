"""A lean HTTP/1.1 client for the one server every component talks to: the apiserver.

Why not aiohttp's client (which the rest of bramble uses): per request it costs 200-230
µs of CPU against 60 µs for this one (measured, docs/benchmarks.md), and every bramble
process spends most of its API time in requests of a few hundred bytes; the scheduler
makes two per pod. This client does only what the apiserver needs: keep-alive
connections in a pool, ``Content-Length`` request bodies, ``Content-Length`` or chunked
response bodies, read whole or as a stream of lines (watches), over TLS or plain TCP.

Errors (all ``ConnectionError``s, so callers catch one thing):

* ``CannotConnect``: the connection could not be made (refused, TLS, timeout).
* ``Disconnected``: the server closed or broke the connection before the whole answer
  came. ``sent_nothing_back`` says no byte of the answer had arrived: a request on a
  reused keep-alive connection that fails that way is retried once on a new connection
  if it is idempotent (the server may have closed the idle connection just as it was
  taken, the race every keep-alive client has); a POST or PATCH is never retried.
* ``BadResponse``: the server's bytes are not HTTP/1.1.

Concurrency: one event loop. A connection carries one request at a time; the pool keeps
idle connections newest first and opens at most ``limit`` for requests at once (watches
hold a connection each, outside that limit: they last).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
IDLE_SECONDS = 30.0  # under the keep-alive timeout of aiohttp's server (75 s)
MAX_HEAD = 64 * 1024  # status line and headers
MAX_LINE = 64 * 1024 * 1024  # one watch event
STREAM_HIGH_WATER = 1024 * 1024  # buffered watch bytes before reading pauses


class CannotConnect(ConnectionError):
    pass


class Disconnected(ConnectionError):
    def __init__(self, message: str, *, sent_nothing_back: bool) -> None:
        super().__init__(message)
        self.sent_nothing_back = sent_nothing_back


class BadResponse(ConnectionError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


# --- reading one response ---------------------------------------------------------------

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE, _DONE = range(8)


class _Reader:
    """Parses one response off the bytes a connection receives: the head, then the body,
    handed to ``sink`` piece by piece. ``feed`` returns what is left over (bytes after
    the end of this response: a server that pipelines nothing sends none)."""

    __slots__ = ("head_only", "keep_alive", "on_head", "remaining", "sink", "state", "status")

    def __init__(
        self, sink: Callable[[bytes], None], on_head: Callable[[int], None], *, head_only: bool
    ) -> None:
        self.state = _HEAD
        self.status = 0
        self.keep_alive = True
        self.remaining = 0
        self.head_only = head_only
        self.sink = sink
        self.on_head = on_head

    def feed(self, buf: bytearray) -> None:
        """Consume what it can of ``buf`` (in place). Raises BadResponse."""
        while buf and self.state != _DONE:
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise BadResponse("the response head is too long")
                    return
                self._head(bytes(buf[:end]))
                del buf[: end + 4]
            elif state in (_LENGTH, _CHUNK_DATA):
                take = min(self.remaining, len(buf))
                self.sink(bytes(buf[:take]))
                del buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _DONE if state == _LENGTH else _CHUNK_END
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise BadResponse("a chunk size line is too long")
                    return
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise BadResponse(f"a bad chunk size {size_text[:20]!r}")
                self.remaining = int(size_text, 16)
                self.state = _CHUNK_DATA if self.remaining else _TRAILER
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise BadResponse("a chunk does not end with CRLF")
                del buf[:2]
                self.state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                del buf[: end + 2]
                if end == 0:  # the empty line that ends the trailers
                    self.state = _DONE
            elif state == _UNTIL_CLOSE:
                self.sink(bytes(buf))
                buf.clear()

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(f"not an HTTP/1.1 status line: {lines[0][:60]!r}")
        self.status = status = int(parts[1])
        self.keep_alive = parts[0] == b"HTTP/1.1"
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponse(f"a bad header line {line[:60]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                if not value.strip().isdigit():  # digits only: no sign, no 0x, no 1_0
                    raise BadResponse(f"a bad Content-Length {value[:20]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                tokens = [token.strip() for token in value.lower().split(b",")]
                if b"close" in tokens:
                    self.keep_alive = False
                elif b"keep-alive" in tokens:
                    self.keep_alive = True
        if 100 <= status < 200:  # an interim answer (we never send Expect): skip it
            return
        self.on_head(status)
        if self.head_only or status in (204, 304):
            self.state = _DONE
        elif chunked:
            self.state = _CHUNK_SIZE
        elif length is not None:
            self.remaining = length
            self.state = _LENGTH if length else _DONE
        else:
            self.state = _UNTIL_CLOSE
            self.keep_alive = False

    def end_of_stream(self) -> bool:
        """The connection ended: True if that completes the response (a body read until
        close)."""
        if self.state == _UNTIL_CLOSE:
            self.state = _DONE
            return True
        return self.state == _DONE


# --- one connection ---------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection, carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost = loop.create_future()
        self.idle_since = 0.0
        self.reused = False
        self._buf = bytearray()
        self._reader: _Reader | None = None
        self._head: asyncio.Future[int] | None = None
        self._done: asyncio.Future[None] | None = None
        self._received = False
        self._keep_alive = True
        self._body: list[bytes] = []
        # a stream's lines, and the wakeup of its reader
        self._lines: deque[bytes] = deque()
        self._partial = bytearray()
        self._buffered = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._paused = False

    # protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._reader is None:
            self._fail(BadResponse("the server sent bytes nobody asked for"))
            return
        self._received = True
        self._buf += data
        try:
            self._reader.feed(self._buf)
        except BadResponse as e:
            self._fail(e)
            return
        if self._reader.state == _DONE:
            self._finish()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        reader = self._reader
        if reader is not None and reader.end_of_stream():
            self._finish()
            return
        if reader is not None:
            detail = f": {exc}" if exc else ""
            self._fail(
                Disconnected(
                    f"the server closed the connection{detail}",
                    sent_nothing_back=not self._received,
                )
            )

    # one exchange

    def send(self, data: bytes, *, head_only: bool, stream: bool) -> None:
        assert self.transport is not None
        assert self._reader is None
        self._head = self._loop.create_future()
        self._done = self._loop.create_future()
        self._received = False
        self._body = []
        # what an earlier stream on this connection left unread is not this answer's
        self._lines.clear()
        self._partial.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        sink = self._stream_sink if stream else self._body.append
        self._reader = _Reader(sink, self._on_head, head_only=head_only)
        self.transport.write(data)

    async def response(self) -> Response:
        assert self._head is not None
        assert self._done is not None
        status = await self._head
        await self._done
        return Response(status, b"".join(self._body))

    async def head(self) -> int:
        assert self._head is not None
        return await self._head

    @property
    def closed(self) -> bool:
        return self.lost.done() or self.transport is None or self.transport.is_closing()

    @property
    def reusable(self) -> bool:
        return self._reader is None and not self.closed and self._keep_alive

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _on_head(self, status: int) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_result(status)

    def _finish(self) -> None:
        reader = self._reader
        assert reader is not None
        self._reader = None
        self._keep_alive = reader.keep_alive
        if self._buf:  # bytes past the end of the answer: the connection is unusable
            self._keep_alive = False
        if self._partial:
            self._lines.append(bytes(self._partial))
            self._buffered += len(self._partial)
            self._partial.clear()
        if not self._keep_alive:
            self.close()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        self._wake()

    def _fail(self, error: ConnectionError) -> None:
        self._reader = None
        self._keep_alive = False
        self.close()
        for future in (self._head, self._done):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # a stream may never await the other one: no warning
        self._wake()

    # streams (watches): the body as lines

    def _stream_sink(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._partial:
                self._partial += data[start:end]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = data[start:end]
            self._lines.append(line)
            self._buffered += len(line)
            start = end + 1
        if start < len(data):
            self._partial += data[start:]
            if len(self._partial) > MAX_LINE:
                raise BadResponse(f"a line of the answer is over {MAX_LINE} bytes")
        self._wake()
        if self._buffered > STREAM_HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def lines(self) -> AsyncIterator[bytes]:
        """The body's lines as they come, until it ends (raises if it breaks)."""
        assert self._done is not None
        while True:
            while self._lines:
                line = self._lines.popleft()
                self._buffered -= len(line)
                if self._paused and self._buffered < STREAM_HIGH_WATER // 2 and self.transport:
                    self._paused = False
                    self.transport.resume_reading()
                yield line
            if self._done.done():
                self._done.result()  # raises if the stream broke
                return
            self._wakeup = self._loop.create_future()
            await self._wakeup
            self._wakeup = None


# --- the pool ---------------------------------------------------------------------------


class Pool:
    """Keep-alive connections to one server: ``host``:``port`` (TLS if ``context``), or
    the Unix socket ``unix_path`` (``host`` is then only the Host header)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext | None,
        unix_path: str | None = None,
        limit: int = 100,
        connect_timeout: float = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.unix_path = unix_path
        self._context = context
        if unix_path is not None:
            self._host_header = host
        else:
            self._host_header = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self._idle: list[_Connection] = []
        # Every connection not yet lost: idle, busy, or closing (a TLS close waits for
        # the peer's answer), so that close() leaves none behind.
        self._open: set[_Connection] = set()
        self._slots = asyncio.Semaphore(limit)
        self._connect_timeout = connect_timeout
        self._clock = clock
        self._closed = False

    async def request(
        self, method: str, target: str, headers: str, body: bytes | None = None
    ) -> Response:
        """One request (``target`` is the path and query; ``headers`` are CRLF-ended
        lines, without Host and Content-Length) and its whole answer."""
        data = self._encode(method, target, headers, body)
        async with self._slots:
            for attempt in (1, 2):
                conn = await self._acquire(fresh=attempt == 2)
                try:
                    conn.send(data, head_only=method == "HEAD", stream=False)
                    response = await conn.response()
                except Disconnected as e:
                    self._discard(conn)
                    stale = conn.reused and e.sent_nothing_back  # closed while idle
                    if attempt == 1 and stale and method in IDEMPOTENT:
                        continue
                    raise
                except BaseException:
                    self._discard(conn)  # cancelled or timed out mid-answer: unusable
                    raise
                self._release(conn)
                return response
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def stream(
        self, method: str, target: str, headers: str
    ) -> AsyncIterator[tuple[int, _Connection]]:
        """A request whose answer is read as it comes: yields the status and the
        connection (``lines()`` for the body). The connection is closed afterwards
        unless the body was read to its end."""
        data = self._encode(method, target, headers, None)
        conn = await self._acquire(fresh=False)
        try:
            conn.send(data, head_only=False, stream=True)
            try:
                status = await conn.head()
            except Disconnected as e:
                if not (conn.reused and e.sent_nothing_back):
                    raise
                self._discard(conn)
                conn = await self._acquire(fresh=True)
                conn.send(data, head_only=False, stream=True)
                status = await conn.head()
            yield status, conn
        finally:
            if conn.reusable:
                self._release(conn)
            else:
                self._discard(conn)

    def _encode(self, method: str, target: str, headers: str, body: bytes | None) -> bytes:
        head = f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n{headers}"
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                head += "Content-Length: 0\r\n"
            return (head + "\r\n").encode("latin-1")
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body

    async def _acquire(self, *, fresh: bool) -> _Connection:
        if self._closed:
            raise CannotConnect("the client is closed")
        now = self._clock()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.reusable and now - conn.idle_since < IDLE_SECONDS:
                conn.reused = True
                return conn
            conn.close()
        conn = await self._connect()
        self._open.add(conn)
        conn.lost.add_done_callback(lambda _: self._open.discard(conn))
        return conn

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self.unix_path is not None:
                    _, conn = await loop.create_unix_connection(
                        lambda: _Connection(loop), self.unix_path
                    )
                else:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop),
                        self.host,
                        self.port,
                        ssl=self._context,
                        server_hostname=self.host if self._context else None,
                    )
        except TimeoutError:
            raise CannotConnect(f"no connection within {self._connect_timeout:g} s") from None
        except ssl.SSLError as e:
            raise CannotConnect(f"TLS failed: {e.reason or e}") from e
        except OSError as e:
            raise CannotConnect(e.strerror or str(e)) from e
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closed:
            conn.idle_since = self._clock()
            self._idle.append(conn)
        else:
            conn.close()

    def _discard(self, conn: _Connection) -> None:
        conn.close()

    async def close(self) -> None:
        """Close every connection (busy ones too: their requests fail) and wait until
        they are gone; a TLS peer that does not answer the close within 2 s is cut off,
        so no transport outlives the pool (and the event loop it runs on)."""
        self._closed = True
        self._idle.clear()
        conns = list(self._open)
        for conn in conns:
            conn.close()
        if not conns:
            return
        _, stuck = await asyncio.wait([conn.lost for conn in conns], timeout=2)
        if stuck:
            for conn in conns:
                if not conn.lost.done():
                    conn.abort()
            await asyncio.wait(stuck, timeout=1)
