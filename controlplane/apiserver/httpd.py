"""The apiserver's HTTP/1.1 server: requests in, ``Response``s and ``Stream``s out.

Why not aiohttp's server (which bramble used first, and still uses for WebSocket
upgrades): on this 2-core machine it cost 114 µs of CPU per request through an
Application with three middlewares, against 47 µs for this one (the same trivial
handler, bench/httpd.py); at a thousand pods a second the apiserver
serves three or four requests per pod and was the bottleneck. This server does what the
Kubernetes API needs and no more:

* HTTP/1.1 keep-alive (and HTTP/1.0), requests answered in order, one at a time per
  connection (pipelined requests wait in the buffer);
* request bodies by ``Content-Length`` or chunked, read whole before the handler runs,
  at most ``max_body`` bytes (413 at once from the declared length); ``Expect:
  100-continue`` answered;
* answers whole (``Response``, with ``Content-Length``) or streamed (``Stream``: chunked,
  or a known length written in slices), with back-pressure from the transport;
* TLS (client certificates reach the handler through ``Request.peercert``) or a Unix
  socket (``Request.local``);
* a WebSocket upgrade that ``upgrade`` claims (``kubectl exec``) is handed, bytes and
  all, to aiohttp's low-level server, which speaks WebSocket;
* a connection whose client went away cancels its handler (a watch ends at once).

Time limits are kept by one sweep every few seconds (``sweep``), not a timer per
request: a connection idle between requests for ``keep_alive`` seconds is closed, and a
request whose body has not all come within ``body_timeout`` seconds is answered 504 and
its connection closed. Every malformed request gets a Kubernetes ``Status`` and the
connection is closed (its framing can no longer be trusted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from api import errors
from controlplane.apiserver.auth.identity import UserInfo
from controlplane.apiserver.routes import Target

logger = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024  # request line and headers
KEEP_ALIVE = 75.0  # seconds an idle connection is kept (aiohttp's and nginx's figure)
BODY_TIMEOUT = 30.0  # seconds a client may take to send its request body
SWEEP_INTERVAL = 5.0
CLOSE_GRACE = 5.0  # seconds requests in flight (not streams) may finish when closing
JSON_TYPE = "application/json"

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_EMPTY_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class Request:
    """One request, its body read whole. ``user`` and ``target`` are set by the app."""

    __slots__ = (
        "_conn",
        "_query",
        "body",
        "headers",
        "method",
        "path",
        "peer",
        "query_string",
        "target",
        "upgrade",
        "user",
        "version",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: CIMultiDictProxy[str],
        body: bytes,
        peer: Peer,
        conn: Connection | None = None,
        *,
        version: tuple[int, int] = (1, 1),
        upgrade: web.BaseRequest | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.version = version
        self.user: UserInfo | None = None
        self.target: Target | None = None
        self.upgrade = upgrade  # the aiohttp request of a WebSocket upgrade
        self.peer = peer
        self._conn = conn  # None: not ours to stream on
        self._query: MultiDictProxy[str] | None = None

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            if self.query_string:
                pairs = parse_qsl(self.query_string, keep_blank_values=True)
                self._query = MultiDictProxy(MultiDict(pairs))
            else:
                self._query = _NO_QUERY
        return self._query

    @classmethod
    async def from_aiohttp(cls, request: web.BaseRequest) -> Request:
        """An aiohttp request (a WebSocket upgrade) as one of ours."""
        body = await request.read() if request.can_read_body else b""
        return cls(
            request.method,
            request.path,
            request.query_string,
            request.headers,
            body,
            Peer(request.transport),
            version=(request.version.major, request.version.minor),
            upgrade=request,
        )


class Peer:
    """What a connection says about its client."""

    __slots__ = ("local", "peercert", "remote")

    def __init__(self, transport: asyncio.BaseTransport | None) -> None:
        info = transport.get_extra_info if transport is not None else (lambda _: None)
        self.local = isinstance(info("sockname"), str)  # a Unix socket
        self.peercert: dict[str, Any] | None = info("peercert")  # verified TLS client cert
        peername = info("peername")
        self.remote = str(peername[0]) if isinstance(peername, tuple) and peername else ""


class Response:
    """A whole answer."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(self, body: bytes, *, status: int = 200, content_type: str = JSON_TYPE) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers: list[tuple[str, str]] = []  # more headers (Warning, Retry-After)

    def add_header(self, name: str, value: str) -> None:
        if _TOKEN.fullmatch(name.encode()) is None or "\r" in value or "\n" in value:
            raise ValueError(f"not a header: {name!r}: {value!r}")
        self.headers.append((name, value))

    def to_aiohttp(self) -> web.Response:
        response = web.Response(body=self.body, status=self.status)
        response.headers["Content-Type"] = self.content_type
        for name, value in self.headers:
            response.headers.add(name, value)
        return response


def status_response(e: errors.ApiError) -> Response:
    """A Kubernetes ``Status`` answer for an error."""
    response = Response(orjson.dumps(e.status()), status=e.code)
    if e.retry_after is not None:
        response.add_header("Retry-After", str(e.retry_after))
    return response


class Stream:
    """An answer written as it is produced: chunked, or ``content_length`` bytes in
    slices. ``prepare`` sends the head; ``write`` waits while the client reads slower
    than we write; ``write_eof`` ends it. A client that went away makes ``write`` raise
    ``ConnectionResetError``."""

    __slots__ = (
        "_chunked",
        "_conn",
        "_done",
        "_head",
        "_prepared",
        "content_length",
        "content_type",
        "status",
    )

    def __init__(
        self,
        request: Request,
        *,
        status: int = 200,
        content_type: str = JSON_TYPE,
        content_length: int | None = None,
    ) -> None:
        if request._conn is None:
            raise RuntimeError("a Stream needs a connection of this server")
        self.status = status
        self.content_type = content_type
        self.content_length = content_length
        self._conn = request._conn
        # An HTTP/1.0 client cannot read chunks: the end of the connection ends its body.
        self._chunked = content_length is None and request.version >= (1, 1)
        if content_length is None and not self._chunked:
            self._conn.closing = True
        self._head = request.method == "HEAD"
        self._prepared = False
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    async def prepare(self) -> None:
        if self._prepared:
            return
        self._prepared = True
        conn = self._conn
        conn.streaming = True
        if self._chunked:
            framing = "Transfer-Encoding: chunked"
        elif self.content_length is not None:
            framing = f"Content-Length: {self.content_length}"
        else:
            framing = ""
        conn.write(_head(self.status, self.content_type, framing, (), close=conn.closing))
        await conn.drain()

    async def write(self, data: bytes) -> None:
        if not self._prepared:
            await self.prepare()
        if self._done:
            raise RuntimeError("write after write_eof")
        if not data or self._head:
            return
        if self._chunked:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            self._conn.write(data)
        await self._conn.drain()

    async def write_eof(self) -> None:
        if not self._prepared:
            await self.prepare()
        if self._done:
            return
        self._done = True
        if self._chunked and not self._head:
            self._conn.write(b"0\r\n\r\n")
        await self._conn.drain()


class Upgraded:
    """An answer aiohttp wrote (a WebSocket session that has ended)."""

    __slots__ = ("response", "status")

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response
        self.status = 101


Answer = Response | Stream | Upgraded
Handler = Callable[[Request], Awaitable[Answer]]
# Whether a request (method, path, headers) is a WebSocket upgrade this server hands on.
UpgradeClaim = Callable[[str, str, CIMultiDictProxy[str]], bool]


class Server:
    """The protocol factory for ``loop.create_server`` and ``create_unix_server``, and
    the connections it made."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        claims_upgrade: UpgradeClaim | None = None,
        keep_alive: float = KEEP_ALIVE,
        body_timeout: float = BODY_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.keep_alive = keep_alive
        self.body_timeout = body_timeout
        self.clock = clock
        self.connections: set[Connection] = set()
        self._claims_upgrade = claims_upgrade
        self._upgrades: web.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __call__(self) -> Connection:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        return Connection(self)

    def claims_upgrade(self, method: str, path: str, headers: CIMultiDictProxy[str]) -> bool:
        return self._claims_upgrade is not None and self._claims_upgrade(method, path, headers)

    def upgrade_protocol(self) -> asyncio.Protocol:
        """A protocol of aiohttp's server for a connection we hand on."""
        if self._upgrades is None:
            self._upgrades = web.Server(
                self._serve_upgrade, handler_cancellation=True, access_log=None
            )
        protocol: asyncio.Protocol = self._upgrades()
        return protocol

    async def _serve_upgrade(self, request: web.BaseRequest) -> web.StreamResponse:
        answer = await self.handler(await Request.from_aiohttp(request))
        if isinstance(answer, Upgraded):
            return answer.response
        if isinstance(answer, Response):
            return answer.to_aiohttp()
        logger.error("a streamed answer to an upgrade request path=%s", request.path)
        return web.Response(status=500)

    def sweep(self) -> None:
        """Close connections idle too long; answer bodies too slow to come."""
        now = self.clock()
        for conn in list(self.connections):
            conn.check_time(now)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep()

    async def close(self, *, grace: float = CLOSE_GRACE) -> None:
        """End every connection: streams at once, other requests in flight after they
        finish (at most ``grace`` seconds in all), idle ones now. Stop listening first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        busy = []
        for conn in list(self.connections):
            task = conn.finish_soon()
            if task is not None:
                busy.append(task)
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for conn in list(self.connections):
            conn.abort()
        if self._upgrades is not None:  # WebSocket sessions: what is left of the grace
            await self._upgrades.shutdown(max(0.0, deadline - loop.time()))


# Where a connection is between requests.
_HEAD, _BODY, _BUSY, _GONE = range(4)


class Connection(asyncio.Protocol):
    """One client connection: parses requests, runs the handler on each in turn."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._state = _HEAD
        self._since = server.clock()  # when the current state began
        self._scanned = 0  # head bytes already searched for the blank line
        self._head: _Head | None = None  # parsed, while its body is still coming
        self._task: asyncio.Task[None] | None = None
        self._paused_writing = False
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False
        self.closing = False  # close after the current answer
        self.streaming = False  # the current answer is a Stream
        self.peer = Peer(None)

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.peer = Peer(transport)
        self._server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._state in (_HEAD, _BODY):
            self._next()
        elif len(self._buf) > self._server.max_body + MAX_HEAD and not self._reading_paused:
            assert self._transport is not None  # pipelined requests pile up: wait
            self._transport.pause_reading()
            self._reading_paused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _GONE
        self._server.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()  # a watch whose client went away ends at once
        self._wake(ConnectionResetError("the client closed the connection"))

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake(None)

    # --- writing ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._state == _GONE or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        self._transport.write(data)

    async def drain(self) -> None:
        if self._state == _GONE:
            raise ConnectionResetError("the client closed the connection")
        if not self._paused_writing:
            return
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await self._drained

    def _wake(self, exc: Exception | None) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: nobody may be waiting any more

    # --- reading requests ---------------------------------------------------------

    def _next(self) -> None:
        """Parse the next request from the buffer, if it is all there, and serve it."""
        buf = self._buf
        if self._state == _HEAD and buf.startswith(b"\r\n"):
            start = 0  # blank lines before a request are allowed (RFC 9112 2.2)
            while buf.startswith(b"\r\n", start):
                start += 2
            del buf[:start]
            self._scanned = 0
        head = self._head
        if head is None:
            head = self._read_head()
            if head is None:
                return
        method, path, query, version, headers, start = head
        try:
            body_end, body = self._body(headers, start)
        except errors.ApiError as e:
            self._refuse(e)
            return
        if body is None:  # more to come
            if self._head is None:
                self._head = head
                self._state = _BODY
                self._since = self._server.clock()
                if version >= (1, 1) and headers.get("Expect", "").lower() == "100-continue":
                    self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        del buf[:body_end]
        self._head = None
        self._scanned = 0
        self.closing = _wants_close(version, headers)
        self._state = _BUSY
        self._since = self._server.clock()
        request = Request(method, path, query, headers, body, self.peer, self, version=version)
        self._task = asyncio.get_running_loop().create_task(self._serve(request))

    def _read_head(self) -> _Head | None:
        """The next request's head, if all of it is here (None also when the request
        was refused or handed on)."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buf)
            if len(buf) > MAX_HEAD:
                self._refuse(errors.BadRequest(f"the request head is larger than {MAX_HEAD} bytes"))
            return None
        if end > MAX_HEAD:
            self._refuse(errors.BadRequest(f"the request head is larger than {MAX_HEAD} bytes"))
            return None
        try:
            method, target, version, headers = _parse_head(bytes(buf[:end]))
        except _Malformed as e:
            self._refuse(errors.BadRequest(f"malformed HTTP request: {e}"))
            return None
        path, _, query = target.partition("?")
        if "%" in path:
            path = unquote(path)
        if self._server.claims_upgrade(method, path, headers):
            self._hand_on()
            return None
        return method, path, query, version, headers, end + 4

    def _body(self, headers: CIMultiDictProxy[str], start: int) -> tuple[int, bytes | None]:
        """(where the request ends, its body) or (0, None) if not all of it is here."""
        max_body = self._server.max_body
        codings = headers.getall("Transfer-Encoding", ())
        if codings:
            coding = ", ".join(codings)
            if coding.strip().lower() != "chunked":
                raise errors.BadRequest(f'transfer coding "{coding}" is not supported')
            return _chunked(self._buf, start, max_body)
        length_text = headers.get("Content-Length")
        if length_text is None:
            return start, b""
        if not (length_text.isascii() and length_text.isdigit()):
            raise errors.BadRequest(f'malformed Content-Length "{length_text}"')
        length = int(length_text)
        if length > max_body:
            raise _too_large(max_body)
        if len(self._buf) - start < length:
            return 0, None
        return start + length, bytes(self._buf[start : start + length])

    async def _serve(self, request: Request) -> None:
        try:
            answer = await self._server.handler(request)
        except asyncio.CancelledError:
            return  # the client went away, or the server is closing
        except Exception:
            logger.exception("request failed method=%s path=%s", request.method, request.path)
            answer = status_response(errors.InternalError("the server failed to answer"))
        if self._state == _GONE:
            return
        try:
            if self.streaming and not (isinstance(answer, Stream) and answer.done):
                self.closing = True  # a stream cut short: its framing is broken
            elif isinstance(answer, Response):
                self._respond(answer, head_only=request.method == "HEAD")
            elif isinstance(answer, Stream) and not answer.done:
                self.closing = True  # never started: nothing can follow it
            elif isinstance(answer, Upgraded):
                logger.error("an upgrade answer to a plain request path=%s", request.path)
                self.closing = True
        except ConnectionResetError:
            return
        self._task = None
        self.streaming = False
        if self.closing:
            self.abort(graceful=True)
            return
        self._state = _HEAD
        self._since = self._server.clock()
        if self._reading_paused and self._transport is not None:
            self._transport.resume_reading()
            self._reading_paused = False
        if self._buf:
            self._next()

    def _respond(self, response: Response, *, head_only: bool = False) -> None:
        body = response.body
        head = _head(
            response.status,
            response.content_type,
            f"Content-Length: {len(body)}",
            response.headers,
            close=self.closing,
        )
        self.write(head if head_only or not body else head + body)

    def _refuse(self, e: errors.ApiError) -> None:
        """Answer a request we cannot serve, and close: its framing is not trusted."""
        self.closing = True
        with contextlib.suppress(ConnectionResetError):
            self._respond(status_response(e))
        self.abort(graceful=True)

    def _hand_on(self) -> None:
        """Give the connection, with what it sent, to aiohttp's server."""
        transport = self._transport
        assert transport is not None
        self._state = _GONE
        self._server.connections.discard(self)
        protocol = self._server.upgrade_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self._buf = bytes(self._buf), bytearray()
        protocol.data_received(data)

    # --- time and closing ---------------------------------------------------------

    def check_time(self, now: float) -> None:
        if self._state == _HEAD and now - self._since > self._server.keep_alive:
            self.abort()
        elif self._state == _BODY and now - self._since > self._server.body_timeout:
            limit = self._server.body_timeout
            self._refuse(errors.Timeout(f"the request body did not arrive within {limit:g}s"))

    def finish_soon(self) -> asyncio.Task[None] | None:
        """For a server closing: the request in flight to wait for, if any (a stream
        is cancelled now); the connection closes after it."""
        self.closing = True
        task = self._task
        if task is None or task.done():
            self.abort()
            return None
        if self.streaming:
            task.cancel()
        return task

    def abort(self, *, graceful: bool = False) -> None:
        """Close the connection (``graceful``: after what is written has gone)."""
        self._state = _GONE
        self._server.connections.discard(self)
        if self._transport is not None and not self._transport.is_closing():
            if graceful:
                self._transport.close()
            else:
                self._transport.abort()


# method, path, query string, version, headers, where the body starts
_Head = tuple[str, str, str, tuple[int, int], CIMultiDictProxy[str], int]


class _Malformed(ValueError):
    pass


_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _parse_head(head: bytes) -> tuple[str, str, tuple[int, int], CIMultiDictProxy[str]]:
    """(method, target, version, headers) of a request head (without its blank line)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise _Malformed("the request line is not METHOD TARGET VERSION")
    method_b, target_b, version_b = parts
    if _TOKEN.fullmatch(method_b) is None:
        raise _Malformed("bad method")
    if version_b == b"HTTP/1.1":
        version = (1, 1)
    elif version_b == b"HTTP/1.0":
        version = (1, 0)
    else:
        raise _Malformed(f"unsupported version {version_b[:20]!r}")
    if not target_b.startswith(b"/"):
        raise _Malformed("the target must be a path")
    pairs = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise _Malformed("folded header lines are not allowed")
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise _Malformed(f"bad header line {line[:40]!r}")
        pairs.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    try:
        target = target_b.decode("ascii")
    except UnicodeDecodeError:
        raise _Malformed("the target is not ASCII") from None
    headers = CIMultiDictProxy(CIMultiDict(pairs)) if pairs else _EMPTY_HEADERS
    if len(headers.getall("Content-Length", ())) > 1 or (
        "Content-Length" in headers and "Transfer-Encoding" in headers
    ):
        raise _Malformed("ambiguous body length")
    return method_b.decode("ascii"), target, version, headers


def _chunked(buf: bytearray, start: int, max_body: int) -> tuple[int, bytes | None]:
    """A chunked body from ``start``: (its end, the body), or (0, None) if incomplete."""
    pieces: list[bytes] = []
    size_total = 0
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            if len(buf) - pos > 1024:
                raise errors.BadRequest("malformed chunked body: a chunk-size line is too long")
            return 0, None
        size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip(b" \t")
        if _HEX.fullmatch(size_text) is None:
            raise errors.BadRequest("malformed chunked body: bad chunk size")
        size = int(size_text, 16)
        size_total += size
        if size_total > max_body:
            raise _too_large(max_body)
        data_start = line_end + 2
        if size == 0:
            # Trailers (ignored), then the blank line.
            trailers_start = data_start
            trailer_end = buf.find(b"\r\n", data_start)
            while trailer_end >= 0 and trailer_end != data_start:
                data_start = trailer_end + 2
                trailer_end = buf.find(b"\r\n", data_start)
            if trailer_end < 0 and len(buf) - trailers_start > MAX_HEAD:
                raise errors.BadRequest(f"the chunked body's trailers exceed {MAX_HEAD} bytes")
            if trailer_end < 0:
                return 0, None
            return trailer_end + 2, b"".join(pieces)
        if len(buf) < data_start + size + 2:
            return 0, None
        if buf[data_start + size : data_start + size + 2] != b"\r\n":
            raise errors.BadRequest("malformed chunked body: a chunk does not end with CRLF")
        pieces.append(bytes(buf[data_start : data_start + size]))
        pos = data_start + size + 2


def _too_large(max_body: int) -> errors.RequestEntityTooLarge:
    return errors.RequestEntityTooLarge(
        f"the request body is larger than the limit of {max_body} bytes"
    )


def _wants_close(version: tuple[int, int], headers: CIMultiDictProxy[str]) -> bool:
    connection = headers.get("Connection")
    if connection is None:
        return version < (1, 1)
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version < (1, 1):
        return "keep-alive" not in tokens
    return "close" in tokens


_date_second = -1
_date_line = b""


def _date() -> bytes:
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
    return _date_line


def _head(
    status: int,
    content_type: str,
    framing: str,
    extra: list[tuple[str, str]] | tuple[()],
    *,
    close: bool,
) -> bytes:
    reason = _REASONS.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"]
    if framing:
        lines.append(f"{framing}\r\n")
    for name, value in extra:
        lines.append(f"{name}: {value}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode() + _date() + b"\r\n"
