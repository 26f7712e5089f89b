"""The apiserver's HTTP/1.1 server (controlplane/apiserver/httpd.py) on a real listening
socket: raw bytes in and out to check the exact framing, the project's own client
(api/http.py) where a whole request is enough, and aiohttp's client for WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from api import http
from controlplane.apiserver import httpd
from controlplane.apiserver.auth.pki import (
    Pki,
    ensure_cluster_pki,
    issue_client_certificate,
    server_ssl_context,
)

pytestmark = pytest.mark.timeout(30)  # a server that never answers hangs the reader

WAIT = 5.0  # seconds any single wait may take before the test fails
MAX_BODY = 1024


# --- servers ----------------------------------------------------------------------------


@dataclass
class Served:
    server: httpd.Server
    port: int
    seen: list[httpd.Request] = field(default_factory=list)  # every request handled


async def echo(request: httpd.Request) -> httpd.Response:
    """What the handler saw, as JSON."""
    return httpd.Response(
        orjson.dumps(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "body": request.body.decode("latin-1"),
                "version": list(request.version),
            }
        )
    )


@asynccontextmanager
async def serving(
    handler: httpd.Handler = echo,
    *,
    max_body: int = MAX_BODY,
    ssl_context: ssl.SSLContext | None = None,
    unix_path: Path | None = None,
    grace: float = 1.0,
    **kwargs: Any,
) -> AsyncIterator[Served]:
    """A ``httpd.Server`` around ``handler`` on 127.0.0.1 (and on ``unix_path``); every
    request it hands to ``handler`` is recorded in ``seen``."""
    seen: list[httpd.Request] = []

    async def recording(request: httpd.Request) -> httpd.Answer:
        seen.append(request)
        return await handler(request)

    server = httpd.Server(recording, max_body=max_body, **kwargs)
    loop = asyncio.get_running_loop()
    listeners = [await loop.create_server(server, "127.0.0.1", 0, ssl=ssl_context)]
    if unix_path is not None:
        listeners.append(await loop.create_unix_server(server, str(unix_path)))
    port = int(listeners[0].sockets[0].getsockname()[1])
    try:
        yield Served(server, port, seen)
    finally:
        for listener in listeners:
            listener.close()
        await asyncio.wait_for(server.close(grace=grace), WAIT + grace)
        for listener in listeners:
            await listener.wait_closed()


# --- a raw client -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    reason: str
    headers: CIMultiDict[str]
    body: bytes
    head: bytes  # the status line and headers as sent

    def status_object(self) -> dict[str, Any]:
        assert self.headers["Content-Type"] == "application/json"
        status: dict[str, Any] = orjson.loads(self.body)
        assert status["kind"] == "Status"
        assert status["code"] == self.status
        return status

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """One raw connection: exact bytes out, answers parsed here."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), WAIT)

    async def send_slowly(self, data: bytes, size: int) -> None:
        """``data`` in pieces of ``size`` bytes, each drained before the next."""
        for i in range(0, len(data), size):
            await self.send(data[i : i + size])

    async def answer(self, *, head_only: bool = False) -> Answer:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, code, reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            assert colon, line
            headers.add(name, value.strip())
        status = int(code)
        if head_only or status < 200 or status in (204, 304):
            body = b""
        elif headers.get("Transfer-Encoding") == "chunked":
            body = await asyncio.wait_for(self._chunks(), WAIT)
        elif "Content-Length" in headers:
            length = int(headers["Content-Length"])
            body = await asyncio.wait_for(self.reader.readexactly(length), WAIT)
        else:
            body = await asyncio.wait_for(self.reader.read(), WAIT)  # until the close
        return Answer(status, reason, headers, body, head)

    async def _chunks(self) -> bytes:
        body = b""
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                assert await self.reader.readuntil(b"\r\n") == b"\r\n"  # no trailers
                return body
            body += await self.reader.readexactly(size)
            assert await self.reader.readexactly(2) == b"\r\n"

    async def rest(self) -> bytes:
        """Every byte until the server closes the connection (or resets it)."""
        data = b""
        try:
            while block := await asyncio.wait_for(self.reader.read(65536), WAIT):
                data += block
        except ConnectionResetError:  # closed with what we sent unread
            pass
        return data

    async def assert_closed(self) -> None:
        assert await self.rest() == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[Client]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
    client = Client(reader, writer)
    try:
        yield client
    finally:
        await client.close()


async def refused(client: Client, status: int, reason: str) -> None:
    """The server answered a Status with this code and reason, then closed."""
    answer = await client.answer()
    assert answer.status == status
    assert answer.status_object()["reason"] == reason
    assert answer.headers["Connection"] == "close"
    await client.assert_closed()


@asynccontextmanager
async def pool_for(port: int, context: ssl.SSLContext | None = None) -> AsyncIterator[http.Pool]:
    pool = http.Pool("127.0.0.1", port, context=context)
    try:
        yield pool
    finally:
        await pool.close()


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def hold(started: asyncio.Event, cancelled: asyncio.Event) -> None:
    """Wait forever, recording the start and the cancel."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


# --- requests and answers ---------------------------------------------------------------


async def test_a_get_reaches_the_handler_whole_and_its_answer_is_framed_exactly() -> None:
    async def handler(request: httpd.Request) -> httpd.Response:
        assert request.headers["x-thing"] == "a b"
        assert request.headers.getall("X-MANY") == ["1", "2"]
        return httpd.Response(b'{"hello":"world"}', content_type="application/x-test")

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(
            b"GET /api/v1/name%20with%2Fslash?a=1&b=x+y&a=%26%3D&empty= HTTP/1.1\r\n"
            b"Host: x\r\nX-Thing:   a b  \r\nx-many: 1\r\nX-Many: 2\r\n\r\n"
        )
        answer = await client.answer()
    assert answer.status == 200
    assert answer.reason == "OK"
    assert answer.head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.headers["Content-Type"] == "application/x-test"
    assert answer.headers["Content-Length"] == "17"
    parsedate_to_datetime(answer.headers["Date"])  # a valid HTTP date
    assert "Connection" not in answer.headers
    assert answer.body == b'{"hello":"world"}'
    (request,) = served.seen
    assert request.method == "GET"
    assert request.path == "/api/v1/name with/slash"
    assert request.query_string == "a=1&b=x+y&a=%26%3D&empty="
    assert request.query.getall("a") == ["1", "&="]
    assert request.query["b"] == "x y"
    assert request.query["empty"] == ""
    assert request.body == b""
    assert request.version == (1, 1)
    assert request.upgrade is None


async def test_a_post_with_a_content_length_body() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(
            b"POST /things HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 11\r\n\r\nhello\r\nbody"
        )
        answer = await client.answer()
    assert answer.status == 200
    assert answer.json() == {
        "method": "POST",
        "path": "/things",
        "query": [],
        "body": "hello\r\nbody",
        "version": [1, 1],
    }
    assert answer.headers["Content-Length"] == str(len(answer.body))
    assert served.seen[0].headers["content-type"] == "text/plain"


async def test_the_projects_client_gets_answers_with_bodies_and_statuses() -> None:
    async def handler(request: httpd.Request) -> httpd.Response:
        if request.path == "/missing":
            return httpd.Response(b'{"kind":"Status"}', status=404)
        return httpd.Response(request.body[::-1])

    async with serving(handler) as served, pool_for(served.port) as pool:
        answer = await pool.request("PUT", "/x", "Content-Type: text/plain\r\n", b"abc")
        assert (answer.status, answer.body) == (200, b"cba")
        missing = await pool.request("GET", "/missing", "")
        assert (missing.status, missing.body) == (404, b'{"kind":"Status"}')


async def test_extra_response_headers_are_sent() -> None:
    async def handler(request: httpd.Request) -> httpd.Response:
        response = httpd.Response(b"{}", status=429)
        response.add_header("Retry-After", "3")
        response.add_header("Warning", '299 - "one"')
        response.add_header("Warning", '299 - "two"')
        return response

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        answer = await client.answer()
    assert answer.head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert answer.headers["Retry-After"] == "3"
    assert answer.headers.getall("Warning") == ['299 - "one"', '299 - "two"']
    with pytest.raises(ValueError, match="not a header"):
        httpd.Response(b"").add_header("X", "a\r\nInjected: yes")
    with pytest.raises(ValueError, match="not a header"):
        httpd.Response(b"").add_header("X: y\r\nInjected", "yes")


async def test_head_sends_the_full_length_and_no_body() -> None:
    async def handler(request: httpd.Request) -> httpd.Response:
        return httpd.Response(b"0123456789")

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
        head = await client.answer(head_only=True)
        assert head.headers["Content-Length"] == "10"
        following = await client.answer()  # the next bytes are the next answer's
        assert following.body == b"0123456789"
    assert [r.method for r in served.seen] == ["HEAD", "GET"]


async def test_blank_lines_before_a_request_are_ignored() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"\r\nGET /one HTTP/1.1\r\n\r\n")
        assert (await client.answer()).json()["path"] == "/one"
        # The CRLF some clients add after a body waits alone in the buffer.
        await client.send(b"POST /two HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n")
        assert (await client.answer()).json()["path"] == "/two"
        await client.send(b"GET /three HTTP/1.1\r\n\r\n")
        assert (await client.answer()).json()["path"] == "/three"


async def test_several_blank_lines_arriving_with_the_request_are_ignored() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"\r\n\r\nGET /one HTTP/1.1\r\n\r\n")
        assert (await client.answer()).status == 200


# --- keep-alive and closing ---------------------------------------------------------------


async def test_several_requests_on_one_connection() -> None:
    async with serving() as served, connect(served.port) as client:
        for i in range(5):
            await client.send(b"POST /%d HTTP/1.1\r\nContent-Length: 1\r\n\r\n%d" % (i, i))
            answer = await client.answer()
            assert answer.json()["path"] == f"/{i}"
            assert answer.json()["body"] == str(i)
    ports = {r.peer.remote for r in served.seen}
    assert ports == {"127.0.0.1"}


async def test_pipelined_requests_are_answered_in_order() -> None:
    order: list[str] = []

    async def handler(request: httpd.Request) -> httpd.Response:
        order.append(f"start {request.path}")
        if request.path == "/slow":
            for _ in range(20):  # turns of the loop in which the next one must not start
                await asyncio.sleep(0)
        order.append(f"end {request.path}")
        return await echo(request)

    pipelined = (
        b"GET /slow HTTP/1.1\r\n\r\n"
        b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nbbb"
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n"
        b"GET /d?x=1 HTTP/1.1\r\n\r\n"
    )
    async with serving(handler) as served, connect(served.port) as client:
        await client.send(pipelined)
        answers = [(await client.answer()).json() for _ in range(4)]
    assert [(a["path"], a["body"]) for a in answers] == [
        ("/slow", ""),
        ("/b", "bbb"),
        ("/c", "c"),
        ("/d", ""),
    ]
    assert order == [f"{e} /{p}" for p in ("slow", "b", "c", "d") for e in ("start", "end")]


async def test_connection_close_closes_after_the_answer() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        answer = await client.answer()
        assert answer.status == 200
        assert answer.headers["Connection"] == "close"
        await client.assert_closed()


async def test_http_1_0_closes_after_the_answer() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"GET /old HTTP/1.0\r\n\r\n")
        answer = await client.answer()
        assert answer.json()["version"] == [1, 0]
        assert answer.headers["Connection"] == "close"
        await client.assert_closed()


async def test_http_1_0_with_keep_alive_stays_open() -> None:
    async with serving() as served, connect(served.port) as client:
        for _ in range(2):
            await client.send(b"GET /old HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            answer = await client.answer()
            assert answer.status == 200
            assert "Connection" not in answer.headers
    assert len(served.seen) == 2


# --- request bodies -----------------------------------------------------------------------

CHUNKED = (
    b"POST /chunks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n"
    b"1;name=value;other\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b"0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n"
)


@pytest.mark.parametrize("piece", [len(CHUNKED), 7, 1], ids=["whole", "7-bytes", "1-byte"])
async def test_a_chunked_body_with_extensions_and_trailers(piece: int) -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send_slowly(CHUNKED, piece)
        answer = await client.answer()
        assert answer.json()["body"] == "hello 0123456789"
        await client.send(GET)  # the trailers were all consumed
        assert (await client.answer()).json()["path"] == "/"
    assert len(served.seen) == 2


async def test_a_content_length_body_sent_byte_by_byte() -> None:
    request = b"POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"
    async with serving() as served, connect(served.port) as client:
        await client.send_slowly(request, 1)
        assert (await client.answer()).json()["body"] == "0123456789"


@pytest.mark.parametrize(
    "size_line",
    [
        pytest.param(b"zz", id="not-hex"),
        pytest.param(b"", id="empty"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"+1", id="plus"),
        pytest.param(b"0x1", id="0x"),
        pytest.param(b"1 1", id="space-inside"),
        pytest.param(
            b"1_0",
            id="underscore",
        ),
    ],
)
async def test_a_malformed_chunk_size_is_refused(size_line: bytes) -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size_line
            + b"\r\n0123456789abcdef\r\n0\r\n\r\n"
        )
        await refused(client, 400, "BadRequest")
    assert served.seen == []


async def test_a_chunk_without_its_crlf_is_refused() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n")
        assert (await client.answer()).status == 400
        await client.assert_closed()
    assert served.seen == []


async def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = await client.answer()
        assert interim.head == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"data")
        answer = await client.answer()
        assert answer.json()["body"] == "data"


# --- limits and malformed requests ---------------------------------------------------------


async def test_a_declared_length_over_max_body_is_refused_at_once() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"PUT / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        answer = await client.answer()  # without a byte of the body sent
        assert answer.status == 413
        assert answer.status_object()["reason"] == "RequestEntityTooLarge"
        await client.assert_closed()
    assert served.seen == []


async def test_a_body_of_exactly_max_body_is_accepted() -> None:
    body = b"x" * MAX_BODY
    async with serving() as served, connect(served.port) as client:
        await client.send(b"PUT / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % MAX_BODY + body)
        assert (await client.answer()).json()["body"] == body.decode()


async def test_a_chunked_body_over_max_body_is_refused() -> None:
    half = MAX_BODY // 2 + 1
    async with serving() as served, connect(served.port) as client:
        await client.send(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(2):
            await client.send(b"%x\r\n%s\r\n" % (half, b"y" * half))
        answer = await client.answer()
        assert answer.status == 413
        assert answer.status_object()["reason"] == "RequestEntityTooLarge"
        await client.assert_closed()
    assert served.seen == []


async def test_a_head_over_max_head_is_refused() -> None:
    async with serving() as served, connect(served.port) as client:
        # Exactly one byte too many and no blank line: the server reads it all.
        start = b"GET / HTTP/1.1\r\nX-Big: "
        await client.send(start + b"a" * (httpd.MAX_HEAD + 1 - len(start)))
        answer = await client.answer()
        assert answer.status == 400
        assert "larger than" in answer.status_object()["message"]
        await client.assert_closed()
    assert served.seen == []


async def test_a_whole_head_over_max_head_is_refused() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * httpd.MAX_HEAD + b"\r\n\r\n")
        assert (await client.answer()).status == 400
        await client.assert_closed()
    assert served.seen == []


BAD_REQUESTS = [
    pytest.param(b"GET /\r\n\r\n", id="two-part-request-line"),
    pytest.param(b"GET  / HTTP/1.1\r\n\r\n", id="double-space"),
    pytest.param(b"G(T / HTTP/1.1\r\n\r\n", id="bad-method"),
    pytest.param(b"GET x HTTP/1.1\r\n\r\n", id="target-not-a-path"),
    pytest.param(b"GET / HTTP/2.0\r\n\r\n", id="bad-version"),
    pytest.param(b"GET / http/1.1\r\n\r\n", id="lowercase-version"),
    pytest.param(b"GET /\xff HTTP/1.1\r\n\r\n", id="target-not-ascii"),
    pytest.param(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n", id="header-without-colon"),
    pytest.param(b"GET / HTTP/1.1\r\n: value\r\n\r\n", id="empty-header-name"),
    pytest.param(b"GET / HTTP/1.1\r\nName : value\r\n\r\n", id="space-before-colon"),
    pytest.param(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", id="folded-header"),
    pytest.param(
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\n\r\n",
        id="length-and-chunked",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        id="two-content-lengths",
    ),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n1x", id="length-not-digits"),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
    pytest.param(b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", id="empty-length"),
    pytest.param(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", id="unsupported-coding"),
    pytest.param(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        id="coding-list",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\nxx",
        id="length-superscript-digit",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
        b"0\r\n\r\n",
        id="two-transfer-encodings",
    ),
]


@pytest.mark.parametrize("request_bytes", BAD_REQUESTS)
async def test_a_malformed_request_gets_400_and_the_connection_closes(
    request_bytes: bytes,
) -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(request_bytes)
        await refused(client, 400, "BadRequest")
    assert served.seen == []


# --- failures -------------------------------------------------------------------------------


async def test_an_exception_in_the_handler_is_a_500_and_the_connection_stays_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: httpd.Request) -> httpd.Response:
        if request.path == "/boom":
            raise RuntimeError("boom")
        return await echo(request)

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(b"GET /boom HTTP/1.1\r\n\r\n")
        failed = await client.answer()
        assert failed.status == 500
        assert failed.status_object()["reason"] == "InternalError"
        assert "Connection" not in failed.headers
        await client.send(b"GET /fine HTTP/1.1\r\n\r\n")
        assert (await client.answer()).json()["path"] == "/fine"
    assert "request failed method=GET path=/boom" in caplog.text


async def test_a_client_that_goes_away_cancels_its_handler() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Response:
        await hold(started, cancelled)
        raise AssertionError("unreachable")

    async with serving(handler) as served:
        async with connect(served.port) as client:
            await client.send(GET)
            await wait(started)
        await wait(cancelled)
        assert served.server.connections == set()


# --- streams ----------------------------------------------------------------------------------


async def test_a_chunked_stream() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request, content_type="application/json;stream=watch")
        await stream.prepare()
        for i in range(3):
            await stream.write(b'{"n":%d}\n' % i)
        await stream.write(b"")  # nothing: no empty chunk, which would end the body
        await stream.write_eof()
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        answer = await client.answer()
        assert answer.headers["Transfer-Encoding"] == "chunked"
        assert answer.headers["Content-Type"] == "application/json;stream=watch"
        assert "Content-Length" not in answer.headers
        assert answer.body == b'{"n":0}\n{"n":1}\n{"n":2}\n'
        await client.send(GET)  # still usable after the stream
        assert (await client.answer()).body == answer.body


async def test_a_chunked_stream_exact_bytes() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.write(b"abc")  # prepares
        await stream.write(b"0123456789abcdefg")
        await stream.write_eof()
        await stream.write_eof()  # a second end writes nothing
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        raw = await client.rest()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert body == b"3\r\nabc\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n"


async def test_a_stream_with_a_content_length_writes_raw_bytes() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request, content_length=6, content_type="text/plain")
        await stream.prepare()
        await stream.write(b"abc")
        await stream.write(b"def")
        await stream.write_eof()
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET + GET)
        for _ in range(2):
            answer = await client.answer()
            assert answer.headers["Content-Length"] == "6"
            assert "Transfer-Encoding" not in answer.headers
            assert answer.body == b"abcdef"


async def test_an_http_1_0_client_gets_a_stream_without_chunks_then_the_close() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.prepare()
        await stream.write(b"abc")
        await stream.write(b"def")
        await stream.write_eof()
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = await client.answer()  # no length: read until the close
        assert answer.headers["Connection"] == "close"
        assert "Transfer-Encoding" not in answer.headers
        assert "Content-Length" not in answer.headers
        assert answer.body == b"abcdef"


async def test_a_stream_that_is_not_ended_closes_the_connection() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.write(b"abc")
        return stream  # without write_eof

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET + GET)
        raw = await client.rest()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"3\r\nabc\r\n"  # no last chunk, no second answer
    assert len(served.seen) == 1


async def test_a_head_request_answered_by_a_stream_has_no_body() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.write(b"abc")
        await stream.write_eof()
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(b"HEAD / HTTP/1.1\r\n\r\n" + b"GET / HTTP/1.1\r\n\r\n")
        head = await client.answer(head_only=True)
        assert head.headers["Transfer-Encoding"] == "chunked"
        assert (await client.answer()).body == b"abc"  # right after the HEAD's head


async def test_a_handler_failing_mid_stream_closes_the_connection() -> None:
    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.write(b"abc")
        raise RuntimeError("failed mid-stream")

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        chunk = await asyncio.wait_for(client.reader.readexactly(8), WAIT)
        assert chunk == b"3\r\nabc\r\n"
        after = await asyncio.wait_for(client.reader.read(65536), WAIT)
        assert after == b""  # the end of the connection, not another answer


@dataclass
class Progress:
    written: int = 0
    in_write: bool = False


async def test_a_client_that_does_not_read_holds_stream_writes() -> None:
    piece = b"z" * (256 * 1024)
    total = 32 * 1024 * 1024  # far past what the sockets' buffers hold
    progress = Progress()
    done = asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request, content_length=total, content_type="text/plain")
        await stream.prepare()
        while progress.written < total:
            progress.in_write = True
            await stream.write(piece)
            progress.in_write = False
            progress.written += len(piece)
        await stream.write_eof()
        done.set()
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        # Not reading: the handler must come to wait in write, well short of the end.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(done.wait(), 1.0)
        assert progress.in_write is True
        assert progress.written < total
        answer = await asyncio.wait_for(client.answer(), 30)  # reading releases it
        await wait(done)
        assert len(answer.body) == total
        assert answer.body.count(b"z") == total


# --- time limits ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_idle_connection_is_closed_after_keep_alive() -> None:
    clock = Clock()
    async with (
        serving(clock=clock, keep_alive=10) as served,
        connect(served.port) as idle,
        connect(served.port) as recent,
    ):
        await idle.send(GET)
        await idle.answer()
        clock.now += 6
        await recent.send(GET)
        await recent.answer()
        clock.now += 5  # idle for 11 s, recent for 5 s
        served.server.sweep()
        await idle.assert_closed()
        await recent.send(GET)
        assert (await recent.answer()).status == 200
        assert len(served.server.connections) == 1


async def test_a_slow_body_gets_504_after_body_timeout() -> None:
    clock = Clock()
    async with serving(clock=clock, body_timeout=5) as served, connect(served.port) as client:
        await client.send(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n012"
        )
        assert (await client.answer()).status == 100  # the server waits for the body
        clock.now += 4
        served.server.sweep()
        clock.now += 2
        served.server.sweep()
        await refused(client, 504, "Timeout")
    assert served.seen == []


async def test_a_body_still_coming_within_body_timeout_is_served() -> None:
    clock = Clock()
    async with serving(clock=clock, body_timeout=5) as served, connect(served.port) as client:
        await client.send(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert (await client.answer()).status == 100
        clock.now += 4
        served.server.sweep()
        await client.send(b"data")
        assert (await client.answer()).json()["body"] == "data"


async def test_a_connection_busy_in_its_handler_is_not_swept() -> None:
    clock = Clock()
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Response:
        started.set()
        await release.wait()
        return httpd.Response(b"late")

    async with (
        serving(handler, clock=clock, keep_alive=1, body_timeout=1) as served,
        connect(served.port) as client,
    ):
        await client.send(GET)
        await wait(started)
        clock.now += 1000
        served.server.sweep()
        release.set()
        assert (await client.answer()).body == b"late"


# --- closing the server -----------------------------------------------------------------------


async def test_close_closes_idle_connections() -> None:
    async with serving() as served, connect(served.port) as client:
        await client.send(GET)
        await client.answer()
        await asyncio.wait_for(served.server.close(), WAIT)
        await client.assert_closed()
        assert served.server.connections == set()


async def test_close_lets_a_running_request_finish_and_delivers_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Response:
        started.set()
        await release.wait()
        return httpd.Response(b"finished")

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        await wait(started)
        (conn,) = served.server.connections
        finish_soon = conn.finish_soon

        def spy() -> asyncio.Task[None] | None:
            task = finish_soon()
            release.set()  # the server is closing: now the handler ends
            return task

        monkeypatch.setattr(conn, "finish_soon", spy)
        await asyncio.wait_for(served.server.close(grace=WAIT), WAIT * 2)
        answer = await client.answer()
        assert answer.body == b"finished"
        assert answer.headers["Connection"] == "close"
        await client.assert_closed()


async def test_close_cancels_a_stream_at_once() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Stream:
        stream = httpd.Stream(request)
        await stream.write(b"first")
        await hold(started, cancelled)
        return stream

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        await wait(started)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(served.server.close(grace=60), WAIT)
        assert loop.time() - began < WAIT
        assert cancelled.is_set()
        raw = await client.rest()
        assert raw.endswith(b"5\r\nfirst\r\n")


async def test_close_cancels_a_handler_that_never_ends_after_the_grace() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(request: httpd.Request) -> httpd.Response:
        await hold(started, cancelled)
        raise AssertionError("unreachable")

    async with serving(handler) as served, connect(served.port) as client:
        await client.send(GET)
        await wait(started)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(served.server.close(grace=0.3), WAIT)
        assert loop.time() - began >= 0.25
        assert cancelled.is_set()
        await client.assert_closed()  # no answer


# --- TLS and Unix sockets ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_cluster_pki(tmp_path_factory.mktemp("pki"), hostnames=[], ips=[])


def _client_context(pki: Pki, directory: Path, *, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.ca_pem.decode())
    if with_cert:
        cert, key = issue_client_certificate(
            pki, common_name="alice", organizations=["devs"], days=1
        )
        (directory / "alice.crt").write_bytes(cert)
        (directory / "alice.key").write_bytes(key)
        ctx.load_cert_chain(directory / "alice.crt", directory / "alice.key")
    return ctx


@pytest.mark.parametrize("with_cert", [True, False], ids=["client-cert", "no-client-cert"])
async def test_tls_gives_the_handler_the_client_certificate(
    pki: Pki, tmp_path: Path, with_cert: bool
) -> None:
    server_ctx = await asyncio.to_thread(server_ssl_context, pki)
    client_ctx = await asyncio.to_thread(_client_context, pki, tmp_path, with_cert=with_cert)
    async with serving(ssl_context=server_ctx) as served, pool_for(served.port, client_ctx) as pool:
        for _ in range(2):
            answer = await pool.request("POST", "/tls?q=1", "", b"secret")
            assert answer.status == 200
            assert orjson.loads(answer.body)["body"] == "secret"
    peers = [r.peer for r in served.seen]
    assert peers[0] is peers[1]  # one connection
    peer = peers[0]
    assert peer.local is False
    assert peer.remote == "127.0.0.1"
    if with_cert:
        assert peer.peercert is not None
        assert peer.peercert["subject"] == (
            (("organizationName", "devs"),),
            (("commonName", "alice"),),
        )
    else:
        assert peer.peercert is None


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory short enough for a Unix socket path (108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="httpd-") as name:
        yield Path(name)


async def test_peer_over_a_unix_socket_and_over_tcp(short_dir: Path) -> None:
    path = short_dir / "api.sock"
    async with serving(unix_path=path) as served:
        local = http.Pool("localhost", 0, context=None, unix_path=str(path))
        try:
            answer = await local.request("GET", "/local", "")
        finally:
            await local.close()
        assert answer.status == 200
        async with pool_for(served.port) as pool:
            assert (await pool.request("GET", "/tcp", "")).status == 200
    by_path = {r.path: r.peer for r in served.seen}
    assert by_path["/local"].local is True
    assert by_path["/local"].peercert is None
    assert by_path["/tcp"].local is False
    assert by_path["/tcp"].remote == "127.0.0.1"


# --- WebSocket hand-off -----------------------------------------------------------------------


def claims_ws(method: str, path: str, headers: Any) -> bool:
    return path.startswith("/ws")


async def ws_echo(request: httpd.Request) -> httpd.Answer:
    if request.upgrade is None:
        return await echo(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request.upgrade)
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str(f"{request.path}:{message.data}")
    return httpd.Upgraded(ws)


async def test_a_claimed_websocket_upgrade_is_handed_to_aiohttp() -> None:
    async with (
        serving(ws_echo, claims_upgrade=claims_ws) as served,
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{served.port}/ws/exec?command=ls") as ws,
    ):
        await ws.send_str("hello")
        reply = await asyncio.wait_for(ws.receive(), WAIT)
        assert reply.type is aiohttp.WSMsgType.TEXT
        assert reply.data == "/ws/exec:hello"
        await ws.close()
    (request,) = served.seen
    assert request.upgrade is not None
    assert request.path == "/ws/exec"
    assert request.query["command"] == "ls"
    assert request.peer.remote == "127.0.0.1"


async def test_a_request_before_the_upgrade_on_the_same_connection_is_ours() -> None:
    handshake = (
        b"GET /ws/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with (
        serving(ws_echo, claims_upgrade=claims_ws) as served,
        connect(served.port) as client,
    ):
        await client.send(b"GET /plain HTTP/1.1\r\n\r\n")
        plain = await client.answer()
        assert plain.json()["path"] == "/plain"
        await client.send(handshake)
        switched = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert switched.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in switched
    assert [r.upgrade is None for r in served.seen] == [True, False]


async def test_an_unclaimed_upgrade_is_served_as_a_plain_request() -> None:
    async with (
        serving(ws_echo, claims_upgrade=claims_ws) as served,
        connect(served.port) as client,
    ):
        await client.send(
            b"GET /other HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        answer = await client.answer()
        assert answer.json()["path"] == "/other"
        await client.send(GET)  # still ours, still HTTP
        assert (await client.answer()).status == 200
    assert all(r.upgrade is None for r in served.seen)
