"""Real TLS handshakes on loopback with the contexts the PKI builds.

An asyncio server with ``server_ssl_context`` answers each connection with the user its
client certificate names (or "anonymous"), so each test sees what the server saw.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controlplane.apiserver.auth.identity import user_from_peercert
from controlplane.apiserver.auth.pki import (
    Pki,
    client_ssl_context,
    ensure_cluster_pki,
    issue_client_certificate,
    server_ssl_context,
)


@dataclass
class Server:
    port: int
    seen: list[str] = field(default_factory=list)


def _pki(data_dir: Path) -> Pki:
    return ensure_cluster_pki(data_dir, hostnames=["pi-1"], ips=["127.0.0.1"])


def _client_files(
    pki: Pki, directory: Path, common_name: str, groups: list[str]
) -> tuple[Path, Path]:
    cert_pem, key_pem = issue_client_certificate(
        pki, common_name=common_name, organizations=groups, days=1
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    return cert, key


def _trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=pki.ca_pem.decode())


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return _pki(tmp_path / "cluster")


@pytest.fixture
def foreign(tmp_path: Path) -> Pki:
    return _pki(tmp_path / "foreign")


@pytest.fixture
def server_ctx(pki: Pki) -> ssl.SSLContext:
    return server_ssl_context(pki)


@pytest.fixture
async def server(server_ctx: ssl.SSLContext) -> AsyncIterator[Server]:
    state = Server(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        user = user_from_peercert(writer.get_extra_info("peercert"))
        seen = "anonymous" if user is None else f"{user.name}|{','.join(user.groups)}"
        state.seen.append(seen)
        await reader.readline()
        writer.write(seen.encode() + b"\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    state.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield state


async def _ask(server: Server, ctx: ssl.SSLContext, hostname: str = "localhost") -> str:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.port, ssl=ctx, server_hostname=hostname),
        timeout=10,
    )
    try:
        writer.write(b"who am i\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), timeout=10)).decode().strip()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "hostname", ["localhost", "127.0.0.1", "pi-1", "kubernetes.default.svc", "kubernetes"]
)
async def test_client_without_certificate_is_served_and_anonymous(
    server: Server, pki: Pki, hostname: str
) -> None:
    assert await _ask(server, _trusting(pki), hostname) == "anonymous"


async def test_server_sees_the_client_certificates_user_and_groups(
    server: Server, pki: Pki, client_files: tuple[Path, Path]
) -> None:
    cert, key = client_files
    ctx = client_ssl_context(pki, cert, key)
    assert await _ask(server, ctx) == "alice|bramble:viewers,system:authenticated"


async def test_apiserver_client_identity(server: Server, apiserver_ctx: ssl.SSLContext) -> None:
    assert await _ask(server, apiserver_ctx) == "bramble:apiserver|system:authenticated"


async def test_client_certificate_from_another_ca_is_rejected(
    server: Server, foreign_client_ctx: ssl.SSLContext
) -> None:
    # In TLS 1.3 the client finishes its side of the handshake before the server checks
    # the client's certificate, so the refusal arrives as an alert (or a reset) on the
    # first read.
    try:
        answer: str | None = await _ask(server, foreign_client_ctx)
    except (ssl.SSLError, ConnectionError):
        answer = None
    assert not answer, f"the server answered {answer!r}"
    assert server.seen == []


async def test_server_of_another_ca_is_not_trusted(server: Server, foreign: Pki) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await _ask(server, _trusting(foreign))
    assert server.seen == []


async def test_name_not_in_the_serving_certificate_is_refused(server: Server, pki: Pki) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|doesn't match"):
        await _ask(server, _trusting(pki), "evil.example")


def test_contexts_require_tls_1_2(pki: Pki) -> None:
    server_ctx = server_ssl_context(pki)
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_ctx.verify_mode == ssl.CERT_OPTIONAL
    client_ctx = client_ssl_context(pki)
    assert client_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_ctx.verify_mode == ssl.CERT_REQUIRED
    assert client_ctx.check_hostname


@pytest.fixture
def client_files(pki: Pki, tmp_path: Path) -> tuple[Path, Path]:
    return _client_files(pki, tmp_path / "alice", "alice", ["bramble:viewers"])


@pytest.fixture
def apiserver_ctx(pki: Pki) -> ssl.SSLContext:
    return client_ssl_context(pki)


@pytest.fixture
def foreign_client_ctx(pki: Pki, foreign: Pki, tmp_path: Path) -> ssl.SSLContext:
    cert, key = _client_files(foreign, tmp_path / "mallory", "admin", ["system:masters"])
    ctx = _trusting(pki)  # trusts the right server, but shows a certificate of another CA
    ctx.load_cert_chain(cert, key)
    return ctx
