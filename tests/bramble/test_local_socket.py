"""The server's own components reach its apiserver through the local socket
(controlplane/apiserver/auth/local.py): a real ``bramble server``, real requests."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from api import errors
from api.client import ApiClient, Credentials, load_kubeconfig, ssl_context
from api.resources import resource
from controlplane.apiserver.auth import identity
from controlplane.apiserver.auth.local import LocalUsers, socket_path
from tests.support.cluster import BrambleServer

CONFIGMAPS = resource("", "ConfigMap")
NAMESPACES = resource("", "Namespace")


def test_a_deep_data_directory_gets_a_short_socket_path(tmp_path: Path) -> None:
    shallow = tmp_path / "d"
    assert socket_path(shallow) == shallow.absolute() / "apiserver.sock"
    deep = tmp_path / ("x" * 120)
    path = socket_path(deep)
    assert len(str(path)) <= 100
    assert path == socket_path(deep)  # the same directory, the same socket
    assert path != socket_path(tmp_path / ("y" * 120))


def test_only_a_known_token_names_a_local_user() -> None:
    scheduler = identity.authenticated("system:kube-scheduler", [identity.GROUP_MASTERS])
    users, tokens = LocalUsers.make({"scheduler": scheduler})
    assert users.user(tokens["scheduler"]) == scheduler
    assert users.user(tokens["scheduler"] + "x") is None
    assert users.user("") is None
    again, _ = LocalUsers.make({"scheduler": scheduler})
    assert again.user(tokens["scheduler"]) is None  # a new start, new tokens


async def test_components_use_the_local_socket_and_nothing_else_can(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = BrambleServer.start(data, "--no-scheduler", "--no-controllers")
    sock = socket_path(data)
    kubeconfig = data / "scheduler" / "kubeconfig"
    try:
        socket_mode, kubeconfig_mode = await asyncio.to_thread(
            lambda: (sock.stat().st_mode, kubeconfig.stat().st_mode)
        )
        assert stat.S_ISSOCK(socket_mode)
        assert socket_mode & 0o777 == 0o600
        assert kubeconfig_mode & 0o777 == 0o600
        creds = await asyncio.to_thread(load_kubeconfig, kubeconfig)
        assert creds.server == f"unix://{sock}"
        assert creds.token is not None

        scheduler = await ApiClient.from_kubeconfig(kubeconfig)
        try:
            body = {"metadata": {"name": "through-the-socket"}, "data": {"a": "b"}}
            await scheduler.create(CONFIGMAPS, "default", body)
            async for event in scheduler.watch(CONFIGMAPS, "default"):  # streams work too
                assert event["object"]["metadata"]["name"] == "through-the-socket"
                break
        finally:
            await scheduler.close()

        # on the socket, no token or another one is refused
        for token in (None, "not-a-component-token"):
            stranger = ApiClient(Credentials(server=f"unix://{sock}", token=token), context=False)
            try:
                with pytest.raises(errors.Unauthorized, match="only the server's own"):
                    await stranger.list(NAMESPACES)
            finally:
                await stranger.close()

        # a component's token is worth nothing over the network
        admin = await asyncio.to_thread(load_kubeconfig, server.kubeconfig)
        remote = Credentials(server=admin.server, ca_pem=admin.ca_pem, token=creds.token)
        over_https = ApiClient(remote, context=await asyncio.to_thread(ssl_context, remote))
        try:
            with pytest.raises(errors.Unauthorized):
                await over_https.list(NAMESPACES)
        finally:
            await over_https.close()
    finally:
        assert server.stop() == 0
    assert not await asyncio.to_thread(sock.exists)  # removed on a clean stop
    log = await asyncio.to_thread((data / "audit.log").read_text)
    audit = [json.loads(line) for line in log.splitlines()]
    writes = [a for a in audit if a["resource"] == "configmaps" and a["verb"] == "create"]
    assert [(a["user"], a["code"]) for a in writes] == [("system:kube-scheduler", 201)]
