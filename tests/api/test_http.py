"""The lean HTTP/1.1 client (api/http.py) and the API client on top of it (api/client.py),
against real servers on loopback: aiohttp's, and raw asyncio servers that write exact
bytes, to reach the parser's corners and every error path."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api import errors, http
from api.client import ApiClient, Credentials
from api.resources import resource

pytestmark = pytest.mark.timeout(10)  # a parser that waits for bytes never coming hangs

PODS = resource("", "Pod")
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- servers ----------------------------------------------------------------------------


@asynccontextmanager
async def web_server(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """An aiohttp server on 127.0.0.1; yields its port."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    try:
        address = runner.addresses[0]
        yield int(address[1])
    finally:
        await runner.cleanup()


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    method, target, version = lines[0].split(" ")
    assert version == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, target, headers, body)


Handler = Callable[["Raw", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Raw:
    """A raw asyncio server: ``handle(raw, reader, writer)`` runs per connection."""

    handle: Handler
    port: int = 0
    connections: int = 0  # accepted so far
    requests: list[Request] = field(default_factory=list)  # read with raw.read()
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)  # some EOF seen
    requested: asyncio.Event = field(default_factory=asyncio.Event)  # a request was read

    async def read(self, reader: asyncio.StreamReader) -> Request:
        request = await read_request(reader)
        self.requests.append(request)
        self.requested.set()
        return request

    async def until_client_closes(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass
        self.client_closed.set()

    async def serve_forever(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
    ) -> None:
        """Answer every request on the connection with ``answer`` until the client
        closes it."""
        while True:
            try:
                await self.read(reader)
            except asyncio.IncompleteReadError:
                self.client_closed.set()
                return
            writer.write(answer)
            await writer.drain()


@asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[Raw]:
    raw = Raw(handle)
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handle(raw, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the test is over; end quietly (3.11's streams
            pass  # log a handler task that ends cancelled)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    raw.port = server.sockets[0].getsockname()[1]
    try:
        yield raw
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def answering(answer: bytes) -> Handler:
    """A handler that answers each request of a connection with the same bytes."""

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.serve_forever(reader, writer, answer)

    return handle


def answering_once(answer: bytes) -> Handler:
    """Reads one request, writes ``answer``, then waits for the client to close."""

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(answer)
        await writer.drain()
        await raw.until_client_closes(reader)

    return handle


@asynccontextmanager
async def pool_for(port: int, **kwargs: object) -> AsyncIterator[http.Pool]:
    pool = http.Pool("127.0.0.1", port, context=None, **kwargs)  # type: ignore[arg-type]
    try:
        yield pool
    finally:
        await pool.close()


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def read_stream(pool: http.Pool, target: str, into: list[bytes]) -> int:
    """Streams a GET, appending its lines to ``into`` as they come; returns the status."""
    async with pool.stream("GET", target, "") as (status, conn):
        async for line in conn.lines():
            into.append(line)
    return status


def peer_port(request: web.Request) -> int:
    assert request.transport is not None
    return int(request.transport.get_extra_info("peername")[1])


# --- against aiohttp's server -----------------------------------------------------------


async def test_get_and_post_with_content_length_bodies_on_one_connection() -> None:
    seen: list[tuple[str, str, bytes, str | None, int]] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            (
                request.method,
                request.path_qs,
                body,
                request.headers.get("X-Test"),
                peer_port(request),
            )
        )
        return web.Response(body=b"you sent " + body, headers={"X-Answer": "1"})

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    async with web_server(app) as port, pool_for(port) as pool:
        got = await pool.request("GET", "/echo?a=1", "X-Test: get\r\n")
        assert got == http.Response(200, b"you sent ")
        got = await pool.request("POST", "/echo", "X-Test: post\r\n", b'{"x": 1}')
        assert got == http.Response(200, b'you sent {"x": 1}')
        got = await pool.request("POST", "/echo", "")  # no body: Content-Length 0
        assert got == http.Response(200, b"you sent ")
        got = await pool.request("PUT", "/echo", "", b"")
        assert got == http.Response(200, b"you sent ")
    assert [s[:4] for s in seen] == [
        ("GET", "/echo?a=1", b"", "get"),
        ("POST", "/echo", b'{"x": 1}', "post"),
        ("POST", "/echo", b"", None),
        ("PUT", "/echo", b"", None),
    ]
    assert len({s[4] for s in seen}) == 1  # keep-alive: one client port for all four


async def test_large_bodies_both_ways() -> None:
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=big)

    async def upload(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(text=f"{len(body)} {hashlib.sha256(body).hexdigest()}")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_get("/big", download)
    app.router.add_post("/big", upload)
    async with web_server(app) as port, pool_for(port) as pool:
        got = await pool.request("GET", "/big", "")
        assert got.status == 200
        assert len(got.body) == len(big)
        assert got.body == big
        up = await pool.request("POST", "/big", "", big[::-1])
        assert up.body.decode() == f"{len(big)} {hashlib.sha256(big[::-1]).hexdigest()}"


async def test_status_codes_with_and_without_bodies() -> None:
    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such thing")

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, body=b"busy")

    ports: list[int] = []

    async def head_me(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        return web.Response(body=b"x" * 1000)

    app = web.Application()
    app.router.add_get("/204", no_content)
    app.router.add_delete("/204", no_content)
    app.router.add_get("/404", missing)
    app.router.add_get("/503", busy)
    app.router.add_get("/head", head_me)  # also answers HEAD: Content-Length 1000, no body
    async with web_server(app) as port, pool_for(port) as pool:
        assert await pool.request("GET", "/204", "") == http.Response(204, b"")
        assert await pool.request("DELETE", "/204", "") == http.Response(204, b"")
        assert await pool.request("GET", "/404", "") == http.Response(404, b"no such thing")
        assert await pool.request("GET", "/503", "") == http.Response(503, b"busy")
        assert await pool.request("HEAD", "/head", "") == http.Response(200, b"")
        # the HEAD answer's Content-Length announced no body: the connection goes on
        assert await pool.request("GET", "/head", "") == http.Response(200, b"x" * 1000)
    assert len(ports) == 2
    assert ports[0] == ports[1]


async def test_keep_alive_reuses_one_connection_for_sequential_requests() -> None:
    ports: list[int] = []

    async def hello(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        return web.Response(text=f"n={len(ports)}")

    app = web.Application()
    app.router.add_get("/", hello)
    async with web_server(app) as port, pool_for(port) as pool:
        for i in range(1, 21):
            assert (await pool.request("GET", "/", "")).body == f"n={i}".encode()
    assert len(ports) == 20
    assert len(set(ports)) == 1


async def test_concurrent_requests_open_connections_that_are_then_reused() -> None:
    ports: list[int] = []
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        ports.append(peer_port(request))
        if len(ports) == 3:
            arrived.set()
        await release.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    async with web_server(app) as port, pool_for(port) as pool:
        tasks = [asyncio.create_task(pool.request("GET", "/", "")) for _ in range(3)]
        await arrived.wait()
        release.set()
        assert [r.body for r in await asyncio.gather(*tasks)] == [b"ok"] * 3
        for _ in range(6):
            await pool.request("GET", "/", "")
    assert len(set(ports[:3])) == 3  # three at once: three connections
    assert set(ports[3:]) <= set(ports[:3])  # then the idle ones serve again


async def test_stream_yields_lines_as_they_come() -> None:
    first_line_read = asyncio.Event()

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # HTTP/1.1 and no length: chunked
        await response.write(b'{"n": 1}\n{"n"')
        await first_line_read.wait()  # the rest of line 2 surely comes in a later read
        await response.write(b": 2}\n")
        await response.write(b"\n")  # an empty line
        await response.write(b"a")
        await response.write(b"b")
        await response.write(b"c\nlast without newline")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/watch", watch)
    async with web_server(app) as port, pool_for(port) as pool:
        lines = []
        async with pool.stream("GET", "/watch", "") as (status, conn):
            assert status == 200
            async for line in conn.lines():
                lines.append(line)
                first_line_read.set()
        assert lines == [b'{"n": 1}', b'{"n": 2}', b"", b"abc", b"last without newline"]
        # the body was read to its end: the connection serves the next request
        again = []
        async with pool.stream("GET", "/watch", "") as (status, conn):
            again = [line async for line in conn.lines()]
        assert again == lines


async def test_a_stream_of_many_megabytes_arrives_whole_and_in_order() -> None:
    # More than STREAM_HIGH_WATER buffered while the reader is slow: reading pauses and
    # resumes without losing or reordering a line.
    count = 60_000
    line_text = "x" * 60

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        batch = []
        for i in range(count):
            batch.append(f"{i:06d} {line_text}\n")
            if len(batch) == 1000:
                await response.write("".join(batch).encode())
                batch = []
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/watch", watch)
    async with web_server(app) as port, pool_for(port) as pool:
        n = 0
        async with pool.stream("GET", "/watch", "") as (status, conn):
            assert status == 200
            async for line in conn.lines():
                assert line == f"{n:06d} {line_text}".encode()
                n += 1
                if n == 10:
                    await asyncio.sleep(0.05)  # slow reader: megabytes pile up
        assert n == count


async def test_pool_close_closes_idle_connections() -> None:
    async with raw_server(answering(OK)) as raw:
        pool = http.Pool("127.0.0.1", raw.port, context=None)
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert not raw.client_closed.is_set()  # idle, kept open
        await pool.close()
        await asyncio.wait_for(raw.client_closed.wait(), 2)
        with pytest.raises(http.CannotConnect, match="closed"):
            await pool.request("GET", "/", "")


async def test_pool_close_fails_a_request_in_flight() -> None:
    async def never_answers(raw: Raw, reader: asyncio.StreamReader, w: object) -> None:
        await raw.read(reader)
        await raw.until_client_closes(reader)

    async with raw_server(never_answers) as raw:
        pool = http.Pool("127.0.0.1", raw.port, context=None)
        task = asyncio.create_task(pool.request("GET", "/", ""))
        await asyncio.wait_for(raw.requested.wait(), 2)
        await pool.close()
        with pytest.raises(ConnectionError):
            await task
        await asyncio.wait_for(raw.client_closed.wait(), 2)


# --- TLS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cert:
    cert_pem: bytes
    cert_file: Path
    key_file: Path


def _self_signed(directory: Path, name: str) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Cert(cert_pem, cert_file, key_file)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cert, Cert]:
    """The server's self-signed certificate, and another nobody serves."""
    directory = tmp_path_factory.mktemp("tls")
    return _self_signed(directory, "server"), _self_signed(directory, "stranger")


def server_context(cert: Cert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert.cert_file, cert.key_file)
    return ctx


def trusting(cert: Cert) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=cert.cert_pem.decode())


@contextmanager
def quiet_handshake_errors() -> Iterator[None]:
    """The server's loop logs the handshake a distrustful client breaks off."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, _context: None)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)


async def test_tls_request_with_a_trusting_context(certs: tuple[Cert, Cert]) -> None:
    server, _ = certs

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"secure": request.secure})

    app = web.Application()
    app.router.add_get("/", hello)
    async with web_server(app, ssl_context=server_context(server)) as port:
        pool = http.Pool("127.0.0.1", port, context=trusting(server))
        try:
            for _ in range(2):
                assert await pool.request("GET", "/", "") == http.Response(200, b'{"secure": true}')
        finally:
            await pool.close()
        # and through the API client, with an https URL
        api = ApiClient(Credentials(server=f"https://127.0.0.1:{port}"), context=trusting(server))
        try:
            assert await api.request("GET", "/") == {"secure": True}
        finally:
            await api.close()


async def test_tls_with_a_context_that_does_not_trust_the_server(
    certs: tuple[Cert, Cert],
) -> None:
    server, stranger = certs

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="should not be seen")

    app = web.Application()
    app.router.add_get("/", hello)
    with quiet_handshake_errors():
        async with web_server(app, ssl_context=server_context(server)) as port:
            pool = http.Pool("127.0.0.1", port, context=trusting(stranger))
            try:
                with pytest.raises(http.CannotConnect, match="TLS") as caught:
                    await pool.request("GET", "/", "")
                assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
            finally:
                await pool.close()


async def test_tls_client_against_a_plain_http_server(certs: tuple[Cert, Cert]) -> None:
    server, _ = certs
    # aiohttp answers the ClientHello with a plain "400 Bad Request"
    async with web_server(web.Application()) as port:
        pool = http.Pool("127.0.0.1", port, context=trusting(server), connect_timeout=2)
        try:
            with pytest.raises(http.CannotConnect, match="TLS"):
                await pool.request("GET", "/", "")
        finally:
            await pool.close()


async def test_pool_close_waits_for_a_tls_connection_it_let_go(certs: tuple[Cert, Cert]) -> None:
    """A watch given up mid-stream lets its connection go; a TLS close waits for the
    peer's answer, and the pool's close waits for it too: no transport outlives the
    pool (one left would be collected later, in another test, as an unclosed one)."""
    server, _ = certs
    streaming = asyncio.Event()

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"n": 1}\n')
        await asyncio.sleep(3600)
        return response

    app = web.Application()
    app.router.add_get("/watch", watch)
    async with web_server(app, ssl_context=server_context(server)) as port:
        pool = http.Pool("127.0.0.1", port, context=trusting(server))
        used: list[http._Connection] = []

        async def read() -> None:
            async with pool.stream("GET", "/watch", "") as (_, conn):
                used.append(conn)
                async for _line in conn.lines():
                    streaming.set()

        task = asyncio.create_task(read())
        await asyncio.wait_for(streaming.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.close()
        assert used[0].lost.done()


async def test_tls_handshake_that_never_finishes_times_out(certs: tuple[Cert, Cert]) -> None:
    server, _ = certs

    async def silent(raw: Raw, reader: asyncio.StreamReader, w: object) -> None:
        await raw.until_client_closes(reader)  # accepts TCP, never speaks TLS

    async with raw_server(silent) as raw:
        pool = http.Pool("127.0.0.1", raw.port, context=trusting(server), connect_timeout=0.1)
        try:
            with pytest.raises(http.CannotConnect, match=r"no connection within 0\.1 s"):
                await pool.request("GET", "/", "")
        finally:
            await pool.close()


# --- the parser, against exact bytes ----------------------------------------------------

CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Trailer: X-Checksum\r\n"
    b"\r\n"
    b"5;name=value\r\nhello\r\n"
    b'6 ; q="a;b"\r\n world\r\n'
    b"1A\r\n" + b"z" * 26 + b"\r\n"
    b"0;last\r\n"
    b"X-Checksum: abc\r\n"
    b"X-Other: d\r\n"
    b"\r\n"
)
CHUNKED_BODY = b"hello world" + b"z" * 26


async def test_chunked_body_with_extensions_and_trailers() -> None:
    async with raw_server(answering(CHUNKED)) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, CHUNKED_BODY)
        # the trailers were consumed to their end: the connection carries the next one
        assert await pool.request("GET", "/", "") == http.Response(200, CHUNKED_BODY)
        assert raw.connections == 1


async def test_chunked_body_without_trailers_as_a_stream() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nab\nc\r\n3;x=1\r\nd\ne\r\n0\r\n\r\n"
    )
    async with raw_server(answering(answer)) as raw, pool_for(raw.port) as pool:
        for _ in range(2):
            async with pool.stream("GET", "/", "") as (status, conn):
                assert status == 200
                assert [line async for line in conn.lines()] == [b"ab", b"cd", b"e"]
        assert raw.connections == 1


async def test_response_delivered_one_byte_at_a_time() -> None:
    async def trickle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await raw.read(reader)
            except asyncio.IncompleteReadError:
                return
            for i in range(len(CHUNKED)):
                writer.write(CHUNKED[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)

    async with raw_server(trickle) as raw, pool_for(raw.port) as pool:
        for _ in range(2):
            assert await pool.request("GET", "/", "") == http.Response(200, CHUNKED_BODY)
        assert raw.connections == 1


@pytest.mark.parametrize(
    "answer",
    [
        CHUNKED,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nreal",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ],
    ids=["chunked", "interim", "empty", "204"],
)
def test_the_reader_parses_a_response_split_anywhere(answer: bytes) -> None:
    # _Reader directly: every split point of the bytes into two reads
    def parse(pieces: list[bytes]) -> tuple[int, bytes]:
        body: list[bytes] = []
        heads: list[int] = []
        reader = http._Reader(body.append, heads.append, head_only=False)
        buf = bytearray()
        for piece in pieces:
            buf += piece
            reader.feed(buf)
        assert reader.state == http._DONE
        assert not buf
        assert len(heads) == 1
        return heads[0], b"".join(body)

    whole = parse([answer])
    assert whole[0] in (200, 201, 204)
    for cut in range(1, len(answer)):
        assert parse([answer[:cut], answer[cut:]]) == whole, cut
    assert parse([answer[i : i + 1] for i in range(len(answer))]) == whole


async def test_interim_100_continue_is_skipped() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nreal"
    )
    async with raw_server(answering(answer)) as raw, pool_for(raw.port) as pool:
        assert await pool.request("POST", "/", "", b"{}") == http.Response(201, b"real")
        assert await pool.request("POST", "/", "", b"{}") == http.Response(201, b"real")
        assert raw.connections == 1
        async with pool.stream("GET", "/", "") as (status, conn):
            assert status == 201
            assert [line async for line in conn.lines()] == [b"real"]


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.1 200 OK\r\nconnection:  Close \r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
    ],
    ids=["1.1", "1.1-keep-alive", "1.1-close", "1.1-Close", "1.0", "1.0-keep-alive"],
)
async def test_which_answers_leave_the_connection_reusable(answer: bytes, reused: bool) -> None:
    # The server itself keeps every connection open: only the client decides.
    async with raw_server(answering(answer)) as raw, pool_for(raw.port) as pool:
        for _ in range(3):
            assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert raw.connections == (1 if reused else 3)
        assert len(raw.requests) == 3
        if not reused:
            await asyncio.wait_for(raw.client_closed.wait(), 2)  # the client closed them


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
async def test_a_body_without_length_is_read_until_close(version: bytes) -> None:
    async def until_close(
        raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await raw.read(reader)
        writer.write(version + b" 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"second part")
        await writer.drain()
        writer.close()

    async with raw_server(until_close) as raw, pool_for(raw.port) as pool:
        got = await pool.request("GET", "/", "")
        assert got == http.Response(200, b"first part, second part")
        got = await pool.request("GET", "/", "")  # a new connection: the old one ended
        assert got == http.Response(200, b"first part, second part")
        assert raw.connections == 2
        async with pool.stream("GET", "/", "") as (status, conn):
            assert status == 200
            assert [line async for line in conn.lines()] == [b"first part, second part"]


async def test_bytes_past_the_end_of_an_answer_make_the_connection_unusable() -> None:
    # a 204 that wrongly carries a body: those bytes cannot belong to the next answer
    answer = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"
    async with raw_server(answering(answer)) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(204, b"")
        assert await pool.request("GET", "/", "") == http.Response(204, b"")
        assert raw.connections == 2


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"garbage\r\n\r\n", "status line"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "status line"),
        (b"HTTP/2 200\r\n\r\n", "status line"),
        (b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, "too long"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024), "too long"),
    ],
    ids=[
        "garbage",
        "ssh",
        "http2",
        "status",
        "header",
        "length",
        "chunk-size",
        "negative-chunk",
        "chunk-crlf",
        "chunk-size-line",
        "head-64k",
    ],
)
async def test_bad_bytes_raise_bad_response(answer: bytes, message: str) -> None:
    # The server keeps the connection open after its bytes: the client must see the
    # error in them, not wait for more.
    async with raw_server(answering_once(answer)) as raw, pool_for(raw.port) as pool:
        with pytest.raises(http.BadResponse, match=message):
            await pool.request("GET", "/", "")
        await asyncio.wait_for(raw.client_closed.wait(), 2)  # and dropped the connection
        assert len(raw.requests) == 1  # never retried


async def test_bad_bytes_in_a_stream_raise_bad_response() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\nnope\r\n"
    async with raw_server(answering_once(answer)) as raw, pool_for(raw.port) as pool:
        lines: list[bytes] = []
        with pytest.raises(http.BadResponse, match="chunk size"):
            await read_stream(pool, "/", lines)
        assert lines == [b"a"]


async def test_unsolicited_bytes_on_an_idle_connection_retire_it() -> None:
    async def chatty(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.01)
        if raw.connections == 1:
            writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await raw.serve_forever(reader, writer, OK)

    async with raw_server(chatty) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        await asyncio.wait_for(raw.client_closed.wait(), 2)  # the client dropped it
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert raw.connections == 2


# --- broken connections -----------------------------------------------------------------


async def test_server_closes_before_any_byte_of_the_answer() -> None:
    async def hang_up(raw: Raw, reader: asyncio.StreamReader, w: object) -> None:
        await raw.read(reader)

    async with raw_server(hang_up) as raw, pool_for(raw.port) as pool:
        for method in ("GET", "POST"):
            with pytest.raises(http.Disconnected) as caught:
                await pool.request(method, "/", "")
            assert caught.value.sent_nothing_back is True
        # a fresh connection failing is not a stale one: no retry
        assert [r.method for r in raw.requests] == ["GET", "POST"]
        assert raw.connections == 2


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"H",
    ],
    ids=["length", "chunked", "head", "one-byte"],
)
async def test_server_closes_mid_answer(partial: bytes) -> None:
    async def half(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(partial)
        await writer.drain()

    async with raw_server(half) as raw, pool_for(raw.port) as pool:
        with pytest.raises(http.Disconnected) as caught:
            await pool.request("GET", "/", "")
        assert caught.value.sent_nothing_back is False
        assert len(raw.requests) == 1


async def test_server_closes_mid_stream() -> None:
    async def half(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\none\n\r\n2\r\ntw")
        await writer.drain()

    async with raw_server(half) as raw, pool_for(raw.port) as pool:
        lines: list[bytes] = []
        with pytest.raises(http.Disconnected) as caught:
            await read_stream(pool, "/", lines)
        assert caught.value.sent_nothing_back is False
        assert lines == [b"one"]


def stale_after_first_answer(*, read_the_next: bool) -> Handler:
    """The first connection answers one request, then is closed by the server: right
    after the answer (``read_the_next=False``), or as the next request arrives on it
    (the race a keep-alive client always has). Later connections answer everything."""

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if raw.connections > 1:
            await raw.serve_forever(
                reader, writer, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"
            )
            return
        await raw.read(reader)
        writer.write(OK)  # no Connection: close
        await writer.drain()
        if read_the_next:
            await raw.read(reader)  # read it whole: the close is a FIN, not a reset

    return handle


@pytest.mark.parametrize("read_the_next", [False, True], ids=["closed-idle", "closed-as-taken"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_idempotent_request_on_a_stale_connection_is_retried(
    method: str, read_the_next: bool
) -> None:
    handler = stale_after_first_answer(read_the_next=read_the_next)
    async with raw_server(handler) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert await pool.request(method, "/again", "") == http.Response(200, b"fresh")
        assert raw.connections == 2
        again = [r for r in raw.requests if r.target == "/again"]
        assert len(again) == (2 if read_the_next else 1)
        assert await pool.request(method, "/more", "") == http.Response(200, b"fresh")
        assert raw.connections == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_post_on_a_stale_connection_is_not_retried(method: str) -> None:
    handler = stale_after_first_answer(read_the_next=True)
    async with raw_server(handler) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        with pytest.raises(http.Disconnected) as caught:
            await pool.request(method, "/create", "", b'{"a": 1}')
        assert caught.value.sent_nothing_back is True
        assert [r.method for r in raw.requests] == ["GET", method]  # seen once
        assert raw.connections == 1
        # the pool recovers: the next request gets a new connection
        assert await pool.request(method, "/create", "", b"{}") == http.Response(200, b"fresh")
        assert raw.connections == 2


async def test_a_stale_connection_that_started_answering_is_not_retried() -> None:
    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(OK)
        await writer.drain()
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")  # then close

    async with raw_server(handle) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        with pytest.raises(http.Disconnected) as caught:
            await pool.request("GET", "/", "")
        assert caught.value.sent_nothing_back is False
        assert len(raw.requests) == 2
        assert raw.connections == 1


async def test_a_stream_on_a_stale_connection_is_retried() -> None:
    handler = stale_after_first_answer(read_the_next=True)
    async with raw_server(handler) as raw, pool_for(raw.port) as pool:
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        async with pool.stream("GET", "/watch", "") as (status, conn):
            assert status == 200
            assert [line async for line in conn.lines()] == [b"fresh"]
        assert raw.connections == 2


async def test_an_idle_connection_past_its_time_is_not_reused() -> None:
    now = [1000.0]
    async with raw_server(answering(OK)) as raw, pool_for(raw.port, clock=lambda: now[0]) as pool:
        await pool.request("GET", "/", "")
        now[0] += http.IDLE_SECONDS - 1
        await pool.request("GET", "/", "")
        assert raw.connections == 1
        now[0] += http.IDLE_SECONDS + 1
        await pool.request("GET", "/", "")
        assert raw.connections == 2
        await asyncio.wait_for(raw.client_closed.wait(), 2)  # the old one was closed


async def test_connection_refused() -> None:
    async with pool_for(free_port()) as pool:
        with pytest.raises(http.CannotConnect):
            await pool.request("GET", "/", "")
        with pytest.raises(http.CannotConnect):
            async with pool.stream("GET", "/", ""):
                pass


async def test_connect_timeout() -> None:
    # A listening socket nobody accepts on, its backlog full: the next SYN goes unanswered.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                with suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            await asyncio.sleep(0.02)
            loop = asyncio.get_running_loop()
            async with pool_for(port, connect_timeout=0.1) as pool:
                start = loop.time()
                with pytest.raises(http.CannotConnect, match=r"no connection within 0\.1 s"):
                    await pool.request("GET", "/", "")
                assert loop.time() - start < 1
        finally:
            for filler in fillers:
                filler.close()


async def test_the_limit_bounds_requests_in_flight() -> None:
    release = asyncio.Event()
    two_in = asyncio.Event()
    in_flight = [0, 0]  # now, most

    async def held(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await raw.read(reader)
            except asyncio.IncompleteReadError:
                return
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            if in_flight[0] == 2:
                two_in.set()
            await release.wait()
            in_flight[0] -= 1
            writer.write(OK)
            await writer.drain()

    async with raw_server(held) as raw, pool_for(raw.port, limit=2) as pool:
        tasks = [asyncio.create_task(pool.request("GET", f"/{i}", "")) for i in range(6)]
        await asyncio.wait_for(two_in.wait(), 2)
        await asyncio.sleep(0.05)  # room for a third to (wrongly) get through
        assert in_flight == [2, 2]
        assert raw.connections == 2
        assert not any(task.done() for task in tasks)
        release.set()
        results = await asyncio.gather(*tasks)
        assert all(r == http.Response(200, b"ok") for r in results)
        assert in_flight[1] == 2
        assert raw.connections == 2
        assert sorted(r.target for r in raw.requests) == [f"/{i}" for i in range(6)]


async def test_cancelling_a_request_mid_answer_discards_its_connection() -> None:
    sent_part = asyncio.Event()

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if raw.connections == 1:
            await raw.read(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            sent_part.set()
            await raw.until_client_closes(reader)
            # had the client reused this connection, the rest would read as the next
            # answer's beginning
            return
        await raw.serve_forever(reader, writer, OK)

    async with raw_server(handle) as raw, pool_for(raw.port) as pool:
        task = asyncio.create_task(pool.request("GET", "/", ""))
        await sent_part.wait()
        await asyncio.sleep(0.01)  # let the three bytes arrive
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(raw.client_closed.wait(), 2)
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert raw.connections == 2


async def test_leaving_a_stream_early_closes_its_connection() -> None:
    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if raw.connections == 1:
            await raw.read(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\na\n\r\n")
            await writer.drain()
            await raw.until_client_closes(reader)
            return
        await raw.serve_forever(reader, writer, OK)

    async with raw_server(handle) as raw, pool_for(raw.port) as pool:
        async with pool.stream("GET", "/watch", "") as (_, conn):
            lines = cast("AsyncGenerator[bytes, None]", conn.lines())
            assert await anext(lines) == b"a"
            await lines.aclose()
        await asyncio.wait_for(raw.client_closed.wait(), 2)
        assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert raw.connections == 2


async def test_a_pool_close_breaks_a_stream_being_read() -> None:
    async def endless(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\na\n\r\n")
        await writer.drain()
        await raw.until_client_closes(reader)

    async with raw_server(endless) as raw:
        pool = http.Pool("127.0.0.1", raw.port, context=None)
        async with pool.stream("GET", "/watch", "") as (_, conn):
            lines = cast("AsyncGenerator[bytes, None]", conn.lines())
            assert await anext(lines) == b"a"
            await pool.close()
            with pytest.raises(http.Disconnected):
                await anext(lines)
        await asyncio.wait_for(raw.client_closed.wait(), 2)


async def test_streams_are_outside_the_limit() -> None:
    release = asyncio.Event()

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await raw.read(reader)
        if request.target == "/watch":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\na\n\r\n")
            await release.wait()
            writer.write(b"0\r\n\r\n")
            await raw.until_client_closes(reader)
            return
        writer.write(OK)
        await raw.serve_forever(reader, writer, OK)

    async with raw_server(handle) as raw, pool_for(raw.port, limit=1) as pool:
        async with pool.stream("GET", "/watch", "") as (_, conn):
            lines = cast("AsyncGenerator[bytes, None]", conn.lines())
            assert await anext(lines) == b"a"
            # the watch holds its connection; a request still gets one of its own
            assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
            assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
            release.set()
            assert [line async for line in lines] == []
        assert raw.connections == 2


# --- leftovers of streams, lenient headers (bugs these tests found, fixed) ------


async def test_leaving_a_finished_stream_early_leaks_no_lines_into_the_next() -> None:
    """A stream whose whole body arrived but whose lines were not all read goes back to the
    pool; the next stream on that connection yields only its own lines."""
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\na\nb\nc\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nx\n\r\n0\r\n\r\n",
    ]

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await raw.read(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answers[min(len(raw.requests), 2) - 1])  # one write: one read
            await writer.drain()

    async with raw_server(handle) as raw, pool_for(raw.port) as pool:
        async with pool.stream("GET", "/first", "") as (_, conn):
            lines = cast("AsyncGenerator[bytes, None]", conn.lines())
            assert await anext(lines) == b"a"
            await lines.aclose()
        async with pool.stream("GET", "/second", "") as (_, conn):
            assert [line async for line in conn.lines()] == [b"x"]
        assert len(raw.requests) == 2


async def test_a_stream_released_while_paused_does_not_hang_the_next_request() -> None:
    """A stream whose last read paused reading (its unread lines over STREAM_HIGH_WATER)
    goes back to the pool; the next request on that connection is read, not left hanging."""
    per_line = 99  # the lines' bytes, as the pool counts them (without the newline)
    first = (b"y" * per_line + b"\n") * ((http.STREAM_HIGH_WATER - 1000) // (per_line + 1))
    rest = (b"z" * per_line + b"\n") * 200  # completes the body and crosses the mark
    written = asyncio.Event()

    async def handle(raw: Raw, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await raw.read(reader)
        body = b"first\n" + first
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (len(body), body))  # under the mark: no pause
        await writer.drain()
        await asyncio.sleep(0.05)  # read on its own, so the rest comes in one read
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        await writer.drain()
        written.set()
        await raw.serve_forever(reader, writer, OK)

    async with raw_server(handle) as raw, pool_for(raw.port) as pool:
        async with pool.stream("GET", "/watch", "") as (_, conn):
            lines = cast("AsyncGenerator[bytes, None]", conn.lines())
            assert await anext(lines) == b"first"
            await written.wait()
            async with asyncio.timeout(2):
                while not conn._done.done():  # type: ignore[union-attr]
                    await asyncio.sleep(0.005)
            await lines.aclose()
        answer = await asyncio.wait_for(pool.request("GET", "/", ""), 0.3)
        assert answer == http.Response(200, b"ok")


async def test_a_negative_content_length_is_a_bad_response() -> None:
    """Content-Length is digits only: a negative one is a BadResponse, not an empty body."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello"
    async with raw_server(answering_once(answer)) as raw, pool_for(raw.port) as pool:
        with pytest.raises(http.BadResponse):
            await pool.request("GET", "/", "")


async def test_close_among_other_connection_tokens_is_honoured() -> None:
    """ "Connection" is a list of tokens (RFC 9110 7.6.1): "close, TE" closes."""
    answer = b"HTTP/1.1 200 OK\r\nConnection: close, TE\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(answering(answer)) as raw, pool_for(raw.port) as pool:
        for _ in range(3):
            assert await pool.request("GET", "/", "") == http.Response(200, b"ok")
        assert raw.connections == 3


def test_a_head_over_the_limit_is_refused_even_in_one_read() -> None:
    """A head over MAX_HEAD is refused however TCP cut the bytes, even all in one read."""
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\nContent-Length: 0\r\n\r\n"
    reader = http._Reader(lambda _: None, lambda _: None, head_only=False)
    with pytest.raises(http.BadResponse):
        reader.feed(bytearray(big))


# --- through the API client -------------------------------------------------------------


@asynccontextmanager
async def api_client(port: int, *, timeout: float = 30, **creds: str) -> AsyncIterator[ApiClient]:
    client = ApiClient(
        Credentials(server=f"http://127.0.0.1:{port}", **creds),  # type: ignore[arg-type]
        context=False,
        timeout=timeout,
    )
    try:
        yield client
    finally:
        await client.close()


def status_body(code: int, reason: str, message: str, **details: object) -> bytes:
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return orjson.dumps(body)


async def test_api_client_round_trip_and_headers() -> None:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def pods(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        if request.method == "DELETE":
            return web.Response(status=200, body=b"")
        return web.json_response({"kind": "Pod", "metadata": {"name": "web"}})

    app = web.Application()
    app.router.add_route("*", "/prefix/api/v1/namespaces/default/pods", pods)
    app.router.add_route("*", "/prefix/api/v1/namespaces/default/pods/{name}", pods)
    async with web_server(app) as port:
        client = ApiClient(
            Credentials(server=f"http://127.0.0.1:{port}/prefix", token="s3cret"),
            context=False,
        )
        try:
            created = await client.create(PODS, "default", {"metadata": {"name": "web"}})
            assert created == {"kind": "Pod", "metadata": {"name": "web"}}
            got = await client.get(PODS, "default", "we b")
            assert got["kind"] == "Pod"
            await client.patch(PODS, "default", "web", {"spec": {}})
            assert await client.delete(PODS, "default", "web", grace_period=0) is None
        finally:
            await client.close()
    post, get, patch, delete = seen
    assert delete.method == "DELETE"
    assert post.method == "POST"
    assert orjson.loads(bodies[0]) == {"metadata": {"name": "web"}}
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Authorization"] == "Bearer s3cret"
    assert post.headers["Accept"] == "application/json"
    assert get.match_info["name"] == "we b"
    assert get.raw_path == "/prefix/api/v1/namespaces/default/pods/we%20b"
    assert "Content-Type" not in get.headers
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert orjson.loads(bodies[3]) == {"gracePeriodSeconds": 0}


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            404,
            status_body(404, "NotFound", 'pods "web" not found', name="web", kind="pods"),
            errors.NotFound,
            'pods "web" not found',
        ),
        (409, status_body(409, "AlreadyExists", "it exists"), errors.AlreadyExists, "it exists"),
        (410, status_body(410, "Gone", "too old"), errors.Expired, "too old"),
        (500, b"plain text trouble", errors.InternalError, "plain text trouble"),
        (503, b"", errors.ServiceUnavailable, "HTTP 503"),
    ],
    ids=["404", "409", "410-by-code", "500-text", "503-empty"],
)
async def test_api_client_maps_error_answers(
    status: int, body: bytes, error: type[errors.ApiError], message: str
) -> None:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/pods/web", fail)
    async with web_server(app) as port, api_client(port) as client:
        with pytest.raises(error) as caught:
            await client.get(PODS, "default", "web")
        assert type(caught.value) is error
        assert caught.value.message == message
        if status == 404:
            assert caught.value.name == "web"


async def test_api_client_connection_refused_is_service_unavailable() -> None:
    port = free_port()
    async with api_client(port) as client:
        with pytest.raises(errors.ServiceUnavailable, match="cannot reach the apiserver") as e:
            await client.list(PODS, "default")
        assert f"127.0.0.1:{port}" in str(e.value)
        assert isinstance(e.value.__cause__, http.CannotConnect)
        with pytest.raises(errors.ServiceUnavailable, match="broke"):
            async for _ in client.watch(PODS, "default"):
                pass


async def test_api_client_params_are_url_encoded() -> None:
    queries: list[dict[str, str]] = []
    raw_queries: list[str] = []

    async def pods(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        raw_queries.append(request.raw_path.partition("?")[2])
        return web.json_response({"kind": "PodList", "items": []})

    selector = "app in (web, db),tier!=front,env=prod x,!legacy"
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/pods", pods)
    async with web_server(app) as port, api_client(port) as client:
        got = await client.list(
            PODS,
            "default",
            params={"labelSelector": selector, "fieldSelector": "spec.nodeName=pi-1&x=%20"},
        )
    assert got == {"kind": "PodList", "items": []}
    assert queries == [{"labelSelector": selector, "fieldSelector": "spec.nodeName=pi-1&x=%20"}]
    assert raw_queries[0].startswith("labelSelector=app%20in%20%28web%2C%20db%29%2Ctier%21%3D")
    assert " " not in raw_queries[0]


async def test_api_client_watch_yields_events_then_raises_expired() -> None:
    targets: list[str] = []
    middle = asyncio.Event()

    async def pods(request: web.Request) -> web.StreamResponse:
        targets.append(request.path_qs)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for name in ("a", "b"):
            event = {"type": "ADDED", "object": {"metadata": {"name": name}}}
            await response.write(orjson.dumps(event) + b"\n")
        await middle.wait()
        await response.write(b"\n")  # a blank line is skipped
        status = {"kind": "Status", "status": "Failure", "message": "too old", "code": 410}
        if "resourceVersion=5" in request.path_qs:
            status["reason"] = "Expired"
        error = orjson.dumps({"type": "ERROR", "object": status})
        await response.write(error[:20])
        await response.write(error[20:] + b"\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/pods", pods)
    async with web_server(app) as port, api_client(port) as client:
        events: list[dict[str, Any]] = []

        async def watch() -> None:
            params = {"resourceVersion": "5", "labelSelector": "a=b"}
            async for event in client.watch(PODS, "default", params=params):
                events.append(event)
                if len(events) == 2:
                    middle.set()

        with pytest.raises(errors.Expired, match="too old"):
            await watch()
        assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b"]
        assert [e["type"] for e in events] == ["ADDED", "ADDED"]
        # an ERROR event without a reason: its code decides
        with pytest.raises(errors.Expired):
            async for _ in client.watch(PODS, "default"):
                pass
    assert (
        targets[0]
        == "/api/v1/namespaces/default/pods?resourceVersion=5&labelSelector=a%3Db&watch=true"
    )


async def test_api_client_watch_refused_with_an_error_status() -> None:
    async def pods(request: web.Request) -> web.Response:
        body = status_body(410, "Expired", "resourceVersion 1 is too old")
        return web.Response(status=410, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/pods", pods)
    async with web_server(app) as port, api_client(port) as client:
        with pytest.raises(errors.Expired, match="too old"):
            async for _ in client.watch(PODS):
                pass


async def test_api_client_watch_that_ends_cleanly() -> None:
    async def pods(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type": "MODIFIED", "object": {}}\n')
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/api/v1/pods", pods)
    async with web_server(app) as port, api_client(port) as client:
        assert [e async for e in client.watch(PODS)] == [{"type": "MODIFIED", "object": {}}]
        assert [e async for e in client.watch(PODS)] == [{"type": "MODIFIED", "object": {}}]


async def test_api_client_request_timeout_is_service_unavailable() -> None:
    async def never_answers(raw: Raw, reader: asyncio.StreamReader, w: object) -> None:
        await raw.read(reader)
        await raw.until_client_closes(reader)

    async with raw_server(never_answers) as raw, api_client(raw.port, timeout=0.2) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(errors.ServiceUnavailable, match="did not answer") as caught:
            await client.get(PODS, "default", "web")
        assert loop.time() - start < 1
        assert "within 0.2 s" in str(caught.value)
        await asyncio.wait_for(raw.client_closed.wait(), 2)  # the connection was dropped
