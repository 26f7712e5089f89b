"""A pod's resources, through the apiserver and the agent, become Podman's limits and the
kernel's: CPU quota and shares from limits and requests, a memory limit with no swap
beyond it, read back from Podman and from the container's own cgroup."""

from __future__ import annotations

import pytest

from tests.e2e.node.conftest import Node
from tests.e2e.node.support import apply, get_json, kubectl, podman_json
from tests.e2e.node.test_pods import pod, running
from tests.support.processes import wait_until

pytestmark = pytest.mark.real("podman")

MiB = 1024 * 1024


def test_requests_and_limits_reach_podman_and_the_kernel(node: Node, namespace: str) -> None:
    resources = {
        "requests": {"cpu": "250m", "memory": "32Mi"},
        "limits": {"cpu": "500m", "memory": "48Mi"},
    }
    sleeper = {"name": "c", "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
               "resources": resources}  # fmt: skip
    apply(node.server, pod(namespace, "limited", node, [sleeper]))
    wait_until(lambda: running(node, namespace, "limited"), timeout=60, what="the pod to run")
    obj = get_json(node.server, "pod", "limited", "-n", namespace)
    assert obj["status"]["qosClass"] == "Burstable"
    container_id = obj["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    [inspected] = podman_json("inspect", container_id)
    host = inspected["HostConfig"]
    # Kubernetes' conversions: quota = limit x period; shares = request x 1024
    assert (host["CpuQuota"], host["CpuPeriod"], host["CpuShares"]) == (50_000, 100_000, 256)
    assert host["Memory"] == 48 * MiB
    assert host["MemorySwap"] == 48 * MiB  # no swap beyond the limit
    # and the kernel enforces it: the container's own cgroup (v2, or v1)
    limit = kubectl(
        node.server, "exec", "-n", namespace, "limited", "--", "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ).stdout.strip()  # fmt: skip
    assert int(limit) == 48 * MiB
