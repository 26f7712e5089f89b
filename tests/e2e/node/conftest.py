"""A real one-node cluster for the node-agent tests: a ``bramble server`` (no embedded
agent), a private Podman service, and ``bramble agent`` joined with a node token and the
CA hash, as a person joins a Pi. Each test uses a namespace of its own; everything it
created in Podman is removed by label afterwards, even when it fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.node.support import AgentProcess, make_agent
from tests.support.cluster import BrambleServer, unique
from tests.support.podman import PodmanService, remove_labelled
from tests.support.real import require_binary


@dataclass
class Node:
    server: BrambleServer
    podman: PodmanService
    agent: AgentProcess
    name: str
    workdir: Path


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    require_binary("podman", package="podman")
    require_binary("kubectl", package="kubectl")
    workdir = tmp_path_factory.mktemp("node")
    podman = PodmanService(workdir / "podman")
    podman.start()
    server = BrambleServer.start(workdir / "server")
    name = unique("node")
    agent = make_agent(server, workdir, name=name, podman_socket=podman.socket)
    stopped = None
    try:
        agent.start()
        yield Node(server, podman, agent, name, workdir)
        stopped = agent.stop()
    finally:
        agent.stop()
        server.stop()
        podman.stop()
        with contextlib.suppress(Exception):
            remove_labelled(f"io.bramble.node={name}")  # this node's pods only
    # After every test of the module: the agent stopped by itself when asked, leaking
    # nothing.
    assert stopped in (0, None), f"the agent exited with {stopped} on SIGTERM:\n{agent.text()}"
    assert not agent.leaks(), agent.leaks()


@pytest.fixture
def namespace(node: Node) -> Iterator[str]:
    name = unique("t")
    node.server.admin().ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    with contextlib.suppress(Exception):
        remove_labelled(f"io.bramble.pod.namespace={name}")
    node.server.admin().request("DELETE", f"/api/v1/namespaces/{name}")
