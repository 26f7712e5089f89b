"""Fixtures for the runtime tests: one private Podman service for the session, a
Podman runtime per test, the fake, and cleanup by label.

Every sandbox a test creates carries ``io.bramble.test.run=<session token>`` and
``io.bramble.test.case=<test token>``; after each test (whatever its outcome) the pods
with the test's label are removed with their containers, and at the end of the session
those with the run's label, so no test leaves anything behind in Podman.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.runtime.fake import FakeRuntime
from agent.runtime.podman import PodmanRuntime
from tests.agent.runtime.harness import FakeHarness, Harness, PodmanHarness
from tests.support.podman import PodmanService, remove_labelled
from tests.support.real import require_binary
from tests.support.registry import Registry

RUN_LABEL = "io.bramble.test.run"
CASE_LABEL = "io.bramble.test.case"
RUN_TOKEN = secrets.token_hex(6)


@pytest.fixture(scope="session")
def podman_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    require_binary("podman", package="podman")
    service = PodmanService(tmp_path_factory.mktemp("podman"))
    service.start()
    try:
        yield service
    finally:
        service.stop()
        remove_labelled(f"{RUN_LABEL}={RUN_TOKEN}")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    require_binary("podman", package="podman")
    require_binary("docker-registry", package="docker-registry")
    registry = Registry(tmp_path_factory.mktemp("registry"))
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def test_labels() -> Iterator[dict[str, str]]:
    case = secrets.token_hex(6)
    try:
        yield {RUN_LABEL: RUN_TOKEN, CASE_LABEL: case}
    finally:
        remove_labelled(f"{CASE_LABEL}={case}")


@pytest.fixture
async def podman_runtime(
    podman_service: PodmanService, registry_locations: list[str]
) -> AsyncIterator[PodmanRuntime]:
    runtime = PodmanRuntime(
        podman_service.url, insecure_registries=registry_locations, timeout=20.0
    )
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def registry_locations(request: pytest.FixtureRequest) -> list[str]:
    """The test registry's location when the test uses it (it is marked insecure)."""
    if "registry" in request.fixturenames:
        return [request.getfixturevalue("registry").location]
    return []


@pytest.fixture
def podman(podman_runtime: PodmanRuntime, test_labels: dict[str, str]) -> PodmanHarness:
    return PodmanHarness(podman_runtime, test_labels)


@pytest.fixture(params=["podman", "fake"])
def harness(request: pytest.FixtureRequest, test_labels: dict[str, str]) -> Harness:
    if request.param == "podman":
        runtime = request.getfixturevalue("podman_runtime")
        return PodmanHarness(runtime, test_labels)
    return FakeHarness(FakeRuntime(), test_labels)


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    path = tmp_path / "host"
    path.mkdir()
    return path
