"""Fixtures for the end-to-end tests: one real ``bramble server`` per session (tests keep
to their own namespaces and uniquely named cluster-scoped objects, so they never see each
other's objects), the real kubectl with a cache of its own per test, and an admin HTTPS
client. A test that makes the server log a traceback fails, even if its own assertions
passed: a 500 is a bug wherever it shows up."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import BrambleServer, HttpsClient, Kubectl, unique
from tests.support.real import require_binary

_SERVERS: list[BrambleServer] = []


@pytest.fixture(scope="session")
def bramble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    # --no-scheduler and only the garbage collector: these tests play the scheduler and
    # the kubelet themselves (they POST bindings to nodes that may not exist, which pod GC
    # would clean up), as Kubernetes' apiserver tests run without them; the scheduler's
    # and the controllers' own end-to-end tests are in tests/controlplane/. The garbage
    # collector runs because `kubectl delete --cascade=orphan|foreground` waits on it.
    server = BrambleServer.start(
        tmp_path_factory.mktemp("bramble") / "data",
        "--no-scheduler",
        "--controllers",
        "garbagecollector",
    )
    _SERVERS.append(server)
    try:
        yield server
    finally:
        _SERVERS.remove(server)
        code = server.stop()
    # A clean stop after everything the suite did: SIGTERM, not the SIGKILL fallback.
    assert code == 0, f"bramble server exited {code}:\n{server.log.text()[-3000:]}"
    assert "server stopped" in server.log.text()


@pytest.fixture
def server_log_clean(bramble: BrambleServer) -> Iterator[BrambleServer]:
    """Fails the test when the server logged an error or a traceback while it ran."""
    start = len(bramble.log.lines)
    yield bramble
    new = bramble.log.lines[start:]
    bad = [line for line in new if " ERROR " in line or "Traceback" in line]
    assert not bad, "the server logged errors during the test:\n" + "".join(new)


@pytest.fixture
def admin(server_log_clean: BrambleServer) -> HttpsClient:
    return server_log_clean.admin()


@pytest.fixture
def kubectl(server_log_clean: BrambleServer, tmp_path: Path) -> Kubectl:
    binary = require_binary("kubectl", package="kubectl")
    return Kubectl(binary, server_log_clean.kubeconfig, tmp_path / "kubecache")


@pytest.fixture
def namespace(admin: HttpsClient) -> Iterator[str]:
    """A fresh namespace, deleted (without waiting) after the test."""
    name = unique("e2e")
    admin.ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    admin.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _SERVERS:
        tail = "".join(_SERVERS[-1].log.lines[-40:])
        report.sections.append(("bramble server log (last 40 lines)", tail))
    return report
