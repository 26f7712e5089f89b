"""``bramble server`` with its own node agent, as ``scripts/up`` runs it: the control
plane and this machine as a node in one command, pods as real Podman containers.

The README's tour, for real: the node registers Ready with Podman as its runtime, a Pod
applied with kubectl runs, ``logs``, ``exec`` and ``top`` reach it through the
apiserver, and ``delete`` removes its containers. The embedded agent talks to a private
Podman service (``--agent-podman-url``) so the test touches no other container.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import BrambleServer, Kubectl, manifest, unique
from tests.support.podman import PodmanService, remove_labelled
from tests.support.processes import wait_until
from tests.support.real import require_binary

pytestmark = pytest.mark.real("podman")

IMAGE = "localhost/busybox:latest"  # scripts/setup builds it; no registry needed


@pytest.fixture
def one_node(tmp_path: Path) -> Iterator[tuple[BrambleServer, str]]:
    require_binary("podman", package="podman")
    require_binary("kubectl", package="kubectl")
    podman = PodmanService(tmp_path / "podman")
    podman.start()
    name = unique("here")
    server = None
    try:
        server = BrambleServer.start(
            tmp_path / "data", "--node-name", name, "--agent-endpoint-port", "0",
            "--agent-podman-url", podman.url, agent=True,
        )  # fmt: skip
        yield server, name
    finally:
        if server is not None:
            assert server.stop() == 0, "the server (and its agent) should stop cleanly"
        podman.stop()
        with contextlib.suppress(Exception):
            remove_labelled(f"io.bramble.node={name}")


def podman_containers(url: str, pod_uid: str) -> list[dict[str, Any]]:
    """The pod's containers as Podman itself lists them (the truth under the agent)."""
    out = subprocess.run(
        ["podman", "--url", url, "ps", "-a", "--format", "json",
         "--filter", f"label=io.bramble.pod.uid={pod_uid}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return list(json.loads(out) if out.strip() else [])


def test_one_command_gives_a_node_that_runs_logs_execs_and_deletes_pods(
    one_node: tuple[BrambleServer, str], tmp_path: Path
) -> None:
    server, node = one_node
    kubectl = Kubectl("kubectl", server.kubeconfig, tmp_path / "kc")
    wait_until(lambda: kubectl("get", "node", node).returncode == 0, timeout=60,
               what=f"node {node} registered", every=0.5)  # fmt: skip
    kubectl.ok("wait", f"node/{node}", "--for=condition=Ready", "--timeout=60s", timeout=90)
    wide = kubectl.ok("get", "nodes", "-o", "wide", "--no-headers").split()
    assert wide[:2] == [node, "Ready"], wide
    assert any(w.startswith("podman://") for w in wide), wide

    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
            "name": "web", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", "echo started; trap 'exit 0' TERM; "
                        "while true; do sleep 1 & wait; done"],
        }]},
    }  # fmt: skip
    assert "pod/web created" in kubectl.ok("apply", "-f", "-", input=manifest(pod))
    kubectl.ok("wait", "pod/web", "--for=condition=Ready", "--timeout=60s", timeout=90)
    placed = kubectl.json("get", "pod", "web")
    assert placed["spec"]["nodeName"] == node
    assert placed["status"]["podIP"]
    podman = f"unix://{tmp_path / 'podman' / 'podman.sock'}"
    uid = placed["metadata"]["uid"]
    running = [c for c in podman_containers(podman, uid) if c["State"] == "running"]
    names = [c["Labels"].get("io.bramble.container.name") for c in running]
    assert "web" in names, running  # with the pod's infra container, which has no name

    assert kubectl.ok("logs", "web").strip() == "started"
    assert kubectl.ok("exec", "web", "--", "cat", "/proc/1/cmdline").startswith("sh")

    def top() -> str | None:
        result = kubectl("top", "pod", "web", "--no-headers")
        return result.stdout if result.returncode == 0 and "web" in result.stdout else None

    wait_until(top, timeout=60, what="kubectl top pod web", every=1.0)

    kubectl.ok("delete", "pod", "web", "--timeout=60s", timeout=90)
    assert podman_containers(podman, uid) == []
