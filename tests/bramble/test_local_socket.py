"""The server's own components reach its apiserver through the local socket
(controlplane/apiserver/auth/local.py): a real ``bramble server``, real requests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from api import errors
from api.client import ApiClient, Credentials, load_kubeconfig, ssl_context
from api.resources import resource
from controlplane.apiserver.auth.local import LocalSocketError, socket_path
from tests.support.cluster import BrambleServer

CONFIGMAPS = resource("", "ConfigMap")
NAMESPACES = resource("", "Namespace")


def test_a_deep_data_directory_gets_a_short_socket_path_in_a_private_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    shallow = tmp_path / "d"
    assert socket_path(shallow) == shallow.absolute() / "apiserver.sock"
    deep = tmp_path / ("x" * 120)
    path = socket_path(deep)
    assert len(str(path)) <= 100
    assert path.parent == tmp_path / "tmp" / f"bramble-{os.getuid()}"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path == socket_path(deep)  # the same directory, the same socket
    assert path != socket_path(tmp_path / ("y" * 120))


def open_to_all(path: Path) -> None:
    path.mkdir()
    path.chmod(0o777)


def a_symlink(path: Path) -> None:
    path.symlink_to(path.parent)


def a_file(path: Path) -> None:
    path.write_text("")


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (open_to_all, "may be entered by others (mode 777)"),
        (a_symlink, "is not a directory"),
        (a_file, "is not a directory"),
    ],
)
def test_a_private_directory_someone_could_have_prepared_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], None], complaint: str
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    prepared = tmp_path / f"bramble-{os.getuid()}"
    make(prepared)
    with pytest.raises(LocalSocketError, match=re.escape(complaint)) as refused:
        socket_path(tmp_path / ("x" * 120))
    assert f"remove {prepared}" in str(refused.value)


def test_a_private_directory_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    me = os.getuid() + 1  # the directory below belongs to the real user, not to "me"
    monkeypatch.setattr(os, "getuid", lambda: me)
    (tmp_path / f"bramble-{me}").mkdir(mode=0o700)
    with pytest.raises(LocalSocketError, match="belongs to user"):
        socket_path(tmp_path / ("x" * 120))


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
