"""What a node must survive without losing a workload: its agent killed, the control plane
away (even across an agent restart), Podman restarting, and pods deleted while the agent
was down. Everything real: processes, signals, Podman, the apiserver."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.node.conftest import Node
from tests.e2e.node.support import (
    apply,
    containers_of,
    get_json,
    kubectl_background,
    make_agent,
    wait_until,
)
from tests.e2e.node.test_pods import POLITE, container, pod, running
from tests.support.cluster import BrambleServer, unique
from tests.support.net import free_port
from tests.support.podman import PodmanService, ping, remove_labelled

DEFAULT_PODMAN_SOCKET = Path("/run/podman/podman.sock")  # the agent's default --podman-url


def ids_and_starts(namespace: str) -> dict[str, str]:
    """Each running app container's id and start time, as Podman reports them (the pod's
    infra container aside)."""
    return {
        c["Id"]: str(c.get("StartedAt"))
        for c in containers_of(namespace)
        if c.get("State") == "running" and not c.get("IsInfra")
    }


def test_a_killed_agent_comes_back_without_restarting_anything(node: Node, namespace: str) -> None:
    apply(
        node.server,
        pod(
            namespace,
            "steady",
            node,
            [
                {"name": "a", "command": ["sh", "-c", POLITE]},
                {"name": "b", "command": ["sh", "-c", POLITE]},
            ],
        ),
    )
    wait_until(lambda: running(node, namespace, "steady"), timeout=60, what="the pod to run")
    before = ids_and_starts(namespace)
    assert len(before) == 2
    node.agent.kill()  # SIGKILL, pods running
    assert ids_and_starts(namespace) == before  # the workload did not notice
    node.agent.start()
    wait_until(
        lambda: "node updated" in node.agent.text(), timeout=30, what="the agent to come back"
    )
    # Let the new agent sync everything it found, then compare: nothing was restarted.
    wait_until(lambda: running(node, namespace, "steady"), timeout=30, what="status")
    assert ids_and_starts(namespace) == before
    assert all(container(node, namespace, "steady", n)["restartCount"] == 0 for n in ("a", "b"))


def test_orphans_of_pods_deleted_while_the_agent_was_down_are_removed(
    node: Node, namespace: str
) -> None:
    apply(
        node.server,
        pod(namespace, "doomed", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]),
    )
    wait_until(lambda: running(node, namespace, "doomed"), timeout=60, what="the pod to run")
    assert containers_of(namespace)
    node.agent.kill()
    admin = node.server.admin()
    admin.ok("DELETE", f"/api/v1/namespaces/{namespace}/pods/doomed", {"gracePeriodSeconds": 0})
    assert containers_of(namespace)  # nobody stopped it yet
    node.agent.start()
    wait_until(lambda: not containers_of(namespace), timeout=30, what="the orphan to be removed")


def test_a_stopped_agent_ends_its_podman_service_and_streams_and_leaves_the_pods(
    node: Node, namespace: str
) -> None:
    """SIGTERM with a log follow open: the agent ends at once, and so does the Podman
    service it started for itself (no --podman-url, none at the default socket); the
    workload runs on, for the next agent to adopt."""
    if ping(DEFAULT_PODMAN_SOCKET):
        pytest.skip(f"a Podman service answers at {DEFAULT_PODMAN_SOCKET}: the agent would use it")
    name = unique("own")
    agent = make_agent(node.server, node.workdir, name=name, podman_socket=None)
    try:
        agent.start()
        found = re.search(r"started a Podman service socket=\S+ pid=(\d+)", agent.text())
        assert found, agent.text()
        service = int(found.group(1))
        mine = Node(node.server, node.podman, agent, name, node.workdir)
        command = f"echo started; {POLITE}"
        apply(
            node.server,
            pod(namespace, "stays", mine, [{"name": "c", "command": ["sh", "-c", command]}]),
        )
        wait_until(lambda: running(mine, namespace, "stays"), timeout=60, what="the pod to run")
        before = ids_and_starts(namespace)
        with kubectl_background(node.server, "logs", "-n", namespace, "stays", "-f") as follow:
            follow.wait_for_line("^started$")  # the follow is open, through the agent
            began = time.monotonic()
            code = agent.stop()
            took = time.monotonic() - began
        assert code == 0, agent.text()
        assert took < 10, took  # an open follow does not hold the agent
        assert not _alive(service)
        assert ids_and_starts(namespace) == before
        assert not agent.leaks(), agent.leaks()
    finally:
        agent.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_podman_restarting_is_survived_and_reported(node: Node, namespace: str) -> None:
    apply(
        node.server,
        pod(namespace, "survivor", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]),
    )
    wait_until(lambda: running(node, namespace, "survivor"), timeout=60, what="the pod to run")
    before = ids_and_starts(namespace)
    node.podman.kill()

    def ready() -> dict[str, Any]:
        conditions = get_json(node.server, "node", node.name)["status"]["conditions"]
        return next(c for c in conditions if c["type"] == "Ready")

    down = wait_until(
        lambda: (r := ready())["status"] == "False" and r, timeout=30, what="NotReady"
    )
    assert "container runtime is down" in down["message"]
    assert ids_and_starts(namespace) == before  # conmon keeps the containers alive
    node.podman.start()
    wait_until(lambda: ready()["status"] == "True", timeout=30, what="Ready again")
    assert ids_and_starts(namespace) == before


@pytest.fixture
def fixed_port_cluster(tmp_path: Path) -> Iterator[tuple[BrambleServer, PodmanService, Any, str]]:
    """A server on a fixed port (so it can be restarted at the same address) and a node."""
    podman = PodmanService(tmp_path / "podman")
    podman.start()
    port = free_port()
    data = tmp_path / "server"
    server = BrambleServer.start(data, "--listen", f"127.0.0.1:{port}")
    name = unique("away")
    agent = make_agent(server, tmp_path, name=name, podman_socket=podman.socket)
    holder: dict[str, BrambleServer] = {"server": server}
    try:
        agent.start()
        yield server, podman, agent, name
    finally:
        agent.stop()
        with contextlib.suppress(Exception):
            holder["server"].stop()
        podman.stop()
        with contextlib.suppress(Exception):
            remove_labelled(f"io.bramble.pod.namespace=away-{name}")


def test_pods_keep_running_and_restarting_while_the_control_plane_is_away(
    fixed_port_cluster: tuple[BrambleServer, PodmanService, Any, str], tmp_path: Path
) -> None:
    server, _, agent, name = fixed_port_cluster
    namespace = f"away-{name}"
    server.admin().ok("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    node = Node(server, _, agent, name, tmp_path)
    apply(server, pod(namespace, "keeper", node, [{"name": "c", "command": ["sh", "-c", POLITE]}]))
    wait_until(lambda: running(node, namespace, "keeper"), timeout=60, what="the pod to run")
    before = ids_and_starts(namespace)
    data_dir, listen = server.data_dir, server.url.removeprefix("https://")
    server.stop()  # the control plane goes away

    assert ids_and_starts(namespace) == before, agent.text()
    # The restart policy still applies: kill the container's process; the agent restarts it.
    (cid,) = before
    subprocess.run(["podman", "kill", cid], check=True, capture_output=True)
    wait_until(
        lambda: ids_and_starts(namespace) and ids_and_starts(namespace) != before,
        timeout=60,
        what="the agent to restart the container without the control plane",
    )
    restarted = ids_and_starts(namespace)
    # An agent restart while the control plane is still away: from its checkpoint it
    # keeps everything as it is.
    agent.kill()
    agent.start(wait=False)
    wait_until(
        lambda: "loaded 1 pods from the checkpoint" in agent.text(),
        timeout=30,
        what="the checkpoint",
    )
    assert ids_and_starts(namespace) == restarted
    # The control plane returns at the same address: the node reports in again.
    back = BrambleServer.start(data_dir, "--listen", listen)
    try:
        wait_until(
            lambda: "node updated" in agent.text(), timeout=60, what="the agent to re-register"
        )
        node.server = back
        status = wait_until(
            lambda: (
                (c := container(node, namespace, "keeper", "c"))
                and c.get("restartCount") == 1
                and c
            ),
            timeout=60,
            what="the restart to be reported",
        )
        assert "running" in status["state"]
        assert ids_and_starts(namespace) == restarted
    finally:
        back.stop()
