"""The multi-node test cluster itself, for real: three nodes, each a network namespace with
its own Podman and agent, behind a real ``bramble server`` and its scheduler.

What later tests rely on is checked here: every node becomes Ready with its own address
and hostname; a pod runs in its node's Podman and nowhere else, with that node's
addresses; logs and exec through the apiserver reach a node that is not the first; a
killed, frozen or cut-off node stops renewing its Lease and renews it again once restored
(no node-lifecycle controller is assumed); a person can SSH from one node to another and
see that node's containers. The last test drives ``scripts/cluster``'s drills from
another process, then SIGKILLs ``scripts/cluster up`` and checks that its reaper leaves
nothing behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netns
from tests.support.cluster import manifest, unique
from tests.support.multinode import REPO, Cluster, ClusterNode
from tests.support.processes import wait_until

RENEW_TIMEOUT = 30.0  # a restored agent may wait out a timed-out request and back off
QUIET = 3.0  # seconds without a renewal that show a stopped heartbeat (interval: 1 s)

pytestmark = pytest.mark.real("multinode")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = unique("mn")
    cluster.kubectl.ok("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def pod(name: str, *, node: str, command: str) -> dict[str, Any]:
    """A busybox pod that the scheduler must put on ``node`` (by its hostname label)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": "localhost/busybox:latest",
                    "imagePullPolicy": "IfNotPresent",
                    # busybox sh as PID 1 ignores SIGTERM unless it traps it.
                    "command": ["sh", "-c", f"{command}; trap 'exit 0' TERM; "
                                "while true; do sleep 1 & wait; done"],
                }
            ],
        },
    }  # fmt: skip


def running_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        obj: dict[str, Any] = cluster.kubectl.json("get", "pod", "-n", namespace, name)
        return obj if obj.get("status", {}).get("phase") == "Running" else None

    result: dict[str, Any] = wait_until(ready, timeout=60, what=f"pod {name} Running", every=0.3)
    return result


def test_every_node_is_ready_with_its_own_address_and_hostname(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl.json("get", "nodes")["items"]}
    assert sorted(nodes) == ["node1", "node2", "node3"]
    for node in cluster.nodes:
        status = nodes[node.name]["status"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", status["conditions"]
        addresses = {a["type"]: a["address"] for a in status["addresses"]}
        # InternalIP: the node's namespace address; Hostname: its own UTS namespace's name.
        assert addresses == {"InternalIP": node.address, "Hostname": node.name}
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    table = cluster.kubectl.ok("get", "nodes", "--no-headers")
    assert [line.split()[1] for line in table.splitlines()] == ["Ready"] * 3


def test_a_pod_runs_in_its_nodes_podman_only(cluster: Cluster, namespace: str) -> None:
    node2 = cluster.node("node2")
    cluster.kubectl.ok(
        "apply", "-n", namespace, "-f", "-", input=manifest(pod("p", node="node2", command=":"))
    )
    obj = running_pod(cluster, namespace, "p")
    assert obj["spec"]["nodeName"] == "node2"  # bound by the scheduler
    mine = {"io.bramble.pod.namespace": namespace, "io.bramble.pod.name": "p"}
    containers = node2.containers(**mine)
    assert any(c["Labels"].get("io.bramble.container.name") == "main" for c in containers)
    for other in cluster.nodes:
        if other is not node2:
            assert other.containers(**mine) == [], f"{other.name} runs a pod of node2"
    assert obj["status"]["hostIP"] == node2.address
    pod_ip = ipaddress.IPv4Address(obj["status"]["podIP"])
    assert pod_ip in node2.pod_subnet
    infra = node2.podman(
        "pod", "inspect", containers[0]["Pod"], "--format", "{{.InfraContainerID}}"
    )
    inspected = json.loads(node2.podman("inspect", infra.strip()))[0]
    networks = inspected["NetworkSettings"]["Networks"]
    assert str(pod_ip) in [n["IPAddress"] for n in networks.values()]


def test_logs_and_exec_through_the_apiserver_reach_a_later_node(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl.ok(
        "apply", "-n", namespace, "-f", "-",
        input=manifest(pod("talker", node="node3", command="echo hello from $(hostname)")),
    )  # fmt: skip
    running_pod(cluster, namespace, "talker")
    wait_until(
        lambda: "hello from talker" in cluster.kubectl("logs", "-n", namespace, "talker").stdout,
        timeout=20,
        what="the pod's log line through the apiserver",
    )
    out = cluster.kubectl.ok("exec", "-n", namespace, "talker", "--", "sh", "-c", "ip -4 addr")
    assert str(cluster.node("node3").pod_subnet.network_address)[:-1] in out
    failed = cluster.kubectl("exec", "-n", namespace, "talker", "--", "sh", "-c", "exit 7")
    assert failed.returncode == 7, failed.stderr


# --- failures: the Lease is the agent's heartbeat ------------------------------------------


def renew_time(cluster: Cluster, node: ClusterNode) -> str:
    return str(cluster.lease(node.name)["spec"]["renewTime"])


def assert_renewing(cluster: Cluster, node: ClusterNode) -> None:
    first = renew_time(cluster, node)
    wait_until(
        lambda: renew_time(cluster, node) != first,
        timeout=RENEW_TIMEOUT,
        what=f"{node.name} renewing its Lease",
        every=0.2,
    )


def assert_stopped_renewing(cluster: Cluster, node: ClusterNode) -> None:
    """renewTime stays the same for QUIET seconds (a renewal in flight when the failure
    began may still land: the quiet period starts at the last change seen)."""
    seen = [renew_time(cluster, node)]
    changed = time.monotonic()

    def quiet() -> bool:
        nonlocal changed
        now = renew_time(cluster, node)
        if now != seen[-1]:
            seen.append(now)
            changed = time.monotonic()
        return time.monotonic() - changed >= QUIET

    wait_until(quiet, timeout=QUIET + 10, what=f"{node.name}'s Lease to stop", every=0.2)
    assert len(seen) <= 2, f"{node.name} kept renewing: {seen}"


FAILURES: dict[str, tuple[Callable[[ClusterNode], None], Callable[[ClusterNode], None]]] = {
    "killed": (ClusterNode.kill, ClusterNode.start_agent),
    "frozen": (ClusterNode.freeze, ClusterNode.thaw),
    "cut off": (ClusterNode.cut_off, ClusterNode.restore),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_node_stops_renewing_its_lease_until_restored(
    cluster: Cluster, failure: str
) -> None:
    fail, restore = FAILURES[failure]
    node, others = cluster.node("node2"), [cluster.node("node1"), cluster.node("node3")]
    assert_renewing(cluster, node)
    fail(node)
    try:
        assert_stopped_renewing(cluster, node)
        for other in others:  # only that node is affected
            assert_renewing(cluster, other)
    finally:
        restore(node)
    assert_renewing(cluster, node)


def test_ssh_from_one_node_to_another_sees_that_nodes_host_and_containers(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl.ok(
        "apply", "-n", namespace, "-f", "-", input=manifest(pod("seen", node="node3", command=":"))
    )
    running_pod(cluster, namespace, "seen")
    key = cluster.ssh_keys() / "client"
    result = cluster.node("node1").run(
        "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
        f"root@{cluster.node('node3').address}",
        f"hostname; podman ps --filter label=io.bramble.pod.namespace={namespace}"
        " --format '{{.Labels}}'",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "node3"
    assert any("io.bramble.pod.name:seen" in line for line in lines[1:]), result.stdout


# --- the script, and cleanup when its owner dies ---------------------------------------------


def drill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / "cluster"), *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def process_state(pid: int) -> str:
    """The one-letter state of /proc/PID/status ("T" when stopped)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError(f"no State line for {pid}")


def port_state(prefix: str) -> str:
    """node1's switch port, as ``ip`` shows it ("UP", "DOWN", "LOWERLAYERDOWN"...)."""
    out = subprocess.run(
        ["ip", "-j", "-n", f"{prefix}-sw", "link", "show", "n1"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return str(json.loads(out)[0]["operstate"])


def test_scripts_cluster_drills_then_a_killed_up_leaves_nothing_behind(tmp_path: Path) -> None:
    nowhere = drill("freeze", "node1", "--dir", str(tmp_path / "none"))
    assert nowhere.returncode == 1
    assert "no cluster is up" in nowhere.stdout
    assert "scripts/cluster up" in nowhere.stdout
    up = subprocess.Popen(
        [str(REPO / "scripts" / "cluster"), "up", "--nodes", "1", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert up.stdout is not None
        first = up.stdout.readline()  # printed once the node registered
        assert first.startswith("export KUBECONFIG="), first + up.stdout.read()
        [prefix] = [p.name for p in tmp_path.iterdir() if p.name.startswith("bmn")]
        kubeconfig = first.split("=", 1)[1].strip()
        nodes = subprocess.run(
            ["kubectl", "get", "nodes", "--no-headers"],
            env={**os.environ, "KUBECONFIG": kubeconfig, "KUBECACHEDIR": str(tmp_path / "kc")},
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        assert nodes.split()[:2] == ["node1", "Ready"], nodes
        assert netns.list_netns(prefix), "the cluster's namespaces should exist"

        frozen = drill("freeze", "node1", "--dir", str(tmp_path))
        assert frozen.returncode == 0, frozen.stdout + frozen.stderr
        assert frozen.stdout.startswith("ok: node1: agent frozen")
        agent = int(frozen.stdout.split("agent pid ")[1])
        assert process_state(agent) == "T"
        assert drill("thaw", "node1", "--dir", str(tmp_path)).returncode == 0
        assert process_state(agent) != "T"
        assert drill("cut", "node1", "--dir", str(tmp_path)).returncode == 0
        assert port_state(prefix) == "DOWN"
        assert drill("restore", "node1", "--dir", str(tmp_path)).returncode == 0
        assert port_state(prefix) != "DOWN"
        unknown = drill("kill", "node7", "--dir", str(tmp_path))
        assert unknown.returncode == 1
        assert "no node 'node7'" in unknown.stdout
        assert "its nodes: node1" in unknown.stdout
        killed = drill("kill", "node1", "--dir", str(tmp_path))
        assert killed.returncode == 0, killed.stdout + killed.stderr
        assert not Path(f"/proc/{agent}").exists()
        started = drill("start-agent", "node1", "--dir", str(tmp_path))
        assert started.returncode == 0, started.stdout + started.stderr
        assert int(started.stdout.split("agent pid ")[1]) != agent
        up.send_signal(signal.SIGKILL)  # no chance to clean up: the reaper must
        up.wait()

        def gone() -> bool:
            return not netns.list_netns(prefix) and not (tmp_path / prefix).exists()

        wait_until(gone, timeout=90, what="the reaper removing the cluster", every=0.3)
        assert not (netns.STATE_DIR / f"{prefix}.json").exists()
        assert not Path(f"/sys/class/net/{prefix}h").exists()
        assert netns.pids_mentioning(str(tmp_path / prefix)) == []
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        if up.stdout is not None:
            up.stdout.close()
    down = subprocess.run(
        [str(REPO / "scripts" / "cluster"), "down"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith("removed: "), down.stdout
