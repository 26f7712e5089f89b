"""Kubeconfigs, read back by the real consumers: the official Kubernetes client and
kubectl, talking TLS to an aiohttp server wired the way the apiserver will be (server
context from the PKI; user from the client certificate, else from the bearer token)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from controlplane.apiserver.auth.identity import UserInfo, user_from_peercert
from controlplane.apiserver.auth.kubeconfig import (
    admin_kubeconfig,
    token_kubeconfig,
    write_kubeconfig,
)
from controlplane.apiserver.auth.pki import (
    Pki,
    ensure_cluster_pki,
    issue_client_certificate,
    server_ssl_context,
)
from controlplane.apiserver.auth.tokens import (
    TokenRecord,
    authenticate,
    new_record,
    parse_authorization,
)
from tests.support.real import require_binary

SERVER = "https://127.0.0.1:6443"


def _admin(pki: Pki) -> str:
    cert, key = issue_client_certificate(
        pki, common_name="admin", organizations=["system:masters"], days=1
    )
    return admin_kubeconfig(
        SERVER, pki.ca_pem, user="admin", client_cert_pem=cert, client_key_pem=key
    )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_cluster_pki(tmp_path / "data", hostnames=["pi-1"], ips=[])


def test_admin_kubeconfig_is_a_standard_kubeconfig(pki: Pki) -> None:
    config = yaml.safe_load(_admin(pki))

    assert config["apiVersion"] == "v1"
    assert config["kind"] == "Config"
    assert config["current-context"] == "bramble"
    assert config["contexts"] == [
        {"name": "bramble", "context": {"cluster": "bramble", "user": "admin"}}
    ]
    (cluster,) = config["clusters"]
    assert cluster["name"] == "bramble"
    assert cluster["cluster"]["server"] == SERVER
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == pki.ca_pem
    (user,) = config["users"]
    assert user["name"] == "admin"
    assert b"BEGIN CERTIFICATE" in base64.b64decode(user["user"]["client-certificate-data"])
    assert b"BEGIN PRIVATE KEY" in base64.b64decode(user["user"]["client-key-data"])


def test_token_kubeconfig(pki: Pki) -> None:
    config = yaml.safe_load(
        token_kubeconfig(SERVER, pki.ca_pem, user="vera", token="abcdef.0123456789abcdef")
    )
    assert config["users"] == [{"name": "vera", "user": {"token": "abcdef.0123456789abcdef"}}]
    assert config["current-context"] == "bramble"


def test_plain_http_server_is_refused(pki: Pki) -> None:
    with pytest.raises(ValueError, match="HTTPS only"):
        token_kubeconfig("http://pi-1:6443", pki.ca_pem, user="u", token="t")


def test_write_kubeconfig_is_private_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".kube" / "config"
    write_kubeconfig(path, "first")
    path.chmod(0o644)
    write_kubeconfig(path, "second")

    assert path.read_text() == "second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config"]


# --- the real clients ---------------------------------------------------------------


@dataclass
class Apiserver:
    url: str
    seen: list[UserInfo | None] = field(default_factory=list)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)


@pytest.fixture
async def apiserver(pki: Pki) -> AsyncIterator[Apiserver]:
    ctx = await asyncio.to_thread(server_ssl_context, pki)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state = Apiserver(url=f"https://127.0.0.1:{sock.getsockname()[1]}")

    async def version(request: web.Request) -> web.Response:
        assert request.transport is not None
        user = user_from_peercert(request.transport.get_extra_info("peercert"))
        parsed = parse_authorization(request.headers.get("Authorization"))
        if user is None and parsed is not None:
            record = state.tokens.get(parsed.id)
            user = authenticate(parsed, record, now=datetime.now(UTC))
        state.seen.append(user)
        body: dict[str, Any] = {  # every field: the Python client requires them all
            "major": "1",
            "minor": "34",
            "gitVersion": "v1.34.0+bramble",
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "",
            "compiler": "cpython",
            "platform": "linux/arm64",
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)  # the Python client's spelling
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ctx).start()
    yield state
    await runner.cleanup()


def _write(path: Path, text: str) -> Path:
    write_kubeconfig(path, text)
    return path


def _kubernetes_client_version(kubeconfig: Path) -> str:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        return str(client.VersionApi(api).get_code().git_version)
    finally:
        api.close()


def _configs(pki: Pki, tmp_path: Path, url: str, token: str) -> tuple[Path, Path]:
    admin = _write(tmp_path / "admin.yaml", _admin(pki).replace(SERVER, url))
    viewer = _write(
        tmp_path / "viewer.yaml", token_kubeconfig(url, pki.ca_pem, user="vera", token=token)
    )
    return admin, viewer


async def test_kubernetes_client_authenticates_with_both_kinds(
    apiserver: Apiserver, pki: Pki, tmp_path: Path
) -> None:
    record, token = new_record(user="vera", role="viewer")
    apiserver.tokens[record.id] = record
    admin, viewer = await asyncio.to_thread(_configs, pki, tmp_path, apiserver.url, token)

    assert await asyncio.to_thread(_kubernetes_client_version, admin) == "v1.34.0+bramble"
    assert await asyncio.to_thread(_kubernetes_client_version, viewer) == "v1.34.0+bramble"

    assert apiserver.seen == [
        UserInfo("admin", ("system:masters", "system:authenticated")),
        UserInfo("vera", ("bramble:viewers", "system:authenticated")),
    ]


async def test_kubectl_reads_the_kubeconfig(apiserver: Apiserver, pki: Pki, tmp_path: Path) -> None:
    kubectl = require_binary("kubectl", package="kubectl")
    record, token = new_record(user="vera", role="viewer")
    apiserver.tokens[record.id] = record
    admin, viewer = await asyncio.to_thread(_configs, pki, tmp_path, apiserver.url, token)

    for kubeconfig, user in ((admin, "admin"), (viewer, "vera")):
        apiserver.seen.clear()
        proc = await asyncio.create_subprocess_exec(
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "version",
            "-o",
            "json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["serverVersion"]["gitVersion"] == "v1.34.0+bramble"
        assert apiserver.seen
        assert {u.name if u else None for u in apiserver.seen} == {user}
