"""Nodes and describe: a Node registered the way an agent would (kubectl apply, status
included), Events about it and about pods and deployments, describe's field-selected
event lookups, cordon, uncordon and drain (legacy discovery plus evictions)."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e import objects as o
from tests.support.cluster import BrambleServer, HttpsClient, Kubectl, manifest, unique

pytestmark = pytest.mark.real("kubectl")


def section(output: str, title: str) -> str:
    """One section of describe's output: from ``Title:`` to the next unindented line."""
    match = re.search(rf"^{re.escape(title)}:.*?(?=^\S|\Z)", output, re.M | re.S)
    assert match, f"no {title} section in:\n{output}"
    return match.group(0)


@pytest.fixture
def node_name(kubectl: Kubectl, admin: HttpsClient) -> str:
    name = unique("e2e-pi")
    assert kubectl.ok("apply", "-f", "-", input=manifest(o.node(name))) == f"node/{name} created\n"
    return name


def test_describe_node(
    kubectl: Kubectl, admin: HttpsClient, node_name: str, namespace: str
) -> None:
    node = admin.ok("GET", f"/api/v1/nodes/{node_name}")
    pods = f"/api/v1/namespaces/{namespace}/pods"
    running = o.pod("on-it")
    running["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "500m"}}
    o.create(admin, pods, running)
    o.create(admin, pods, o.pod("finished"))
    for name in ("on-it", "finished"):
        o.bind(admin, namespace, name, node_name)
    admin.ok("PATCH", f"{pods}/finished/status", {"status": {"phase": "Succeeded"}},
             headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
    lease = {"metadata": {"name": node_name}, "spec": {"holderIdentity": node_name,
             "leaseDurationSeconds": 40, "renewTime": "2026-01-01T00:00:00.000000Z"}}  # fmt: skip
    o.create(admin, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
    events = "/api/v1/namespaces/default/events"
    o.create(
        admin,
        events,
        o.event(
            unique("mine"),
            namespace="default",
            involved=node,
            reason="NodeReady",
            message=f"Node {node_name} status is now: NodeReady",
            count=3,
        ),
    )
    other = {**node, "metadata": {**node["metadata"], "name": "someone-else", "uid": "x-1"}}
    theirs = o.event(unique("theirs"), namespace="default", involved=other, reason="Rebooted",
                     message="not about this node", kind_of_event="Warning")  # fmt: skip
    o.create(admin, events, theirs)

    out = kubectl.ok("describe", "node", node_name)
    assert re.search(rf"^Name:\s+{node_name}$", out, re.M)
    conditions = section(out, "Conditions")
    assert re.search(r"^\s+Ready\s+True\s.*KubeletReady\s+kubelet is posting ready status$",
                     conditions, re.M), conditions  # fmt: skip
    assert re.search(r"^\s+MemoryPressure\s+False\s.*KubeletHasSufficientMemory", conditions, re.M)
    addresses = section(out, "Addresses")
    assert re.search(r"InternalIP:\s+192\.168\.1\.50$", addresses, re.M), addresses
    assert re.search(rf"Hostname:\s+{node_name}$", addresses, re.M), addresses
    capacity = section(out, "Capacity")
    assert re.search(r"cpu:\s+4$", capacity, re.M)
    assert re.search(r"memory:\s+8Gi$", capacity, re.M)
    assert re.search(r"pods:\s+110$", capacity, re.M)
    assert re.search(r"OS Image:\s+Debian GNU/Linux 12 \(bookworm\)$", out, re.M)
    assert re.search(r"^Unschedulable:\s+false$", out, re.M)
    assert re.search(rf"^Lease:\n\s+HolderIdentity:\s+{node_name}$", out, re.M), out
    # Non-terminated pods only: describe's selector is spec.nodeName=N,status.phase!=...
    assert re.search(r"^Non-terminated Pods:\s+\(1 in total\)$", out, re.M), out
    assert re.search(rf"^\s+{namespace}\s+on-it\s+500m \(12%\)", out, re.M), out
    assert "finished" not in out
    described = section(out, "Events")
    assert re.search(r"Normal\s+NodeReady\s+\S+ \(x3 over \S+\)\s+e2e-test\s+Node "
                     rf"{node_name} status is now: NodeReady", described), described  # fmt: skip
    assert "Rebooted" not in described

    wide = kubectl.ok("get", "node", node_name, "-o", "wide")
    assert re.search(rf"^{node_name}\s+Ready\s+<none>\s+\S+\s+v1\.32\.4\s+192\.168\.1\.50\s+<none>"
                     r"\s+Debian GNU/Linux 12 \(bookworm\)\s+6\.6\.51\s+podman://5\.4\.0$",
                     wide, re.M), wide  # fmt: skip


def test_node_status_through_the_status_subresource(kubectl: Kubectl, node_name: str) -> None:
    patch = {"status": {"conditions": [{"type": "Ready", "status": "False",
             "reason": "KubeletNotReady", "message": "container runtime is down",
             "lastHeartbeatTime": o.STAMP, "lastTransitionTime": o.STAMP}]}}  # fmt: skip
    out = kubectl.ok("patch", "node", node_name, "--subresource=status", "-p", json.dumps(patch))
    assert out == f"node/{node_name} patched\n"
    assert re.search(rf"^{node_name}\s+NotReady\s", kubectl.ok("get", "node", node_name), re.M)
    # Conditions merge by type: Ready changed, MemoryPressure is still there. And the
    # status survives an apply of the original manifest (the main resource ignores it).
    kubectl.ok("apply", "-f", "-", input=manifest(o.node(node_name)))
    conditions = kubectl.json("get", "node", node_name)["status"]["conditions"]
    assert [(c["type"], c["status"]) for c in conditions] == [
        ("Ready", "False"),
        ("MemoryPressure", "False"),
    ]


def test_describe_pod_and_deployment(kubectl: Kubectl, admin: HttpsClient, namespace: str) -> None:
    ns = ("-n", namespace)
    pods, events = f"/api/v1/namespaces/{namespace}/pods", f"/api/v1/namespaces/{namespace}/events"
    mine = o.create(admin, pods, o.pod("described", labels={"app": "d", "tier": "x"}))
    other = o.create(admin, pods, o.pod("neighbour"))
    o.bind(admin, namespace, "described", "e2e-describe-node")
    o.create(
        admin,
        events,
        o.event(
            "e1",
            namespace=namespace,
            involved=mine,
            reason="Scheduled",
            message="Successfully assigned it",
        ),
    )
    o.create(
        admin,
        events,
        o.event(
            "e2",
            namespace=namespace,
            involved=mine,
            reason="BackOff",
            message="Back-off pulling image",
            kind_of_event="Warning",
            count=5,
        ),
    )
    o.create(admin, events, o.event("e3", namespace=namespace, involved=other,
             reason="Pulled", message="not about the described pod"))  # fmt: skip

    out = kubectl.ok(*ns, "describe", "pod", "described")
    assert re.search(r"^Name:\s+described$", out, re.M)
    assert re.search(rf"^Namespace:\s+{namespace}$", out, re.M)
    assert re.search(r"^Node:\s+e2e-describe-node", out, re.M)
    assert re.search(r"^Status:\s+Pending$", out, re.M)
    assert re.search(r"^Labels:\s+app=d\n\s+tier=x$", out, re.M)
    assert re.search(r"^\s+Image:\s+nginx:1\.27$", out, re.M)
    described = section(out, "Events")
    assert re.search(r"Normal\s+Scheduled\s+\S+\s+e2e-test\s+Successfully assigned it", described)
    assert re.search(r"Warning\s+BackOff\s+\S+ \(x5 over \S+\)\s+e2e-test\s+Back-off pulling",
                     described), described  # fmt: skip
    assert "Pulled" not in described

    dep = o.create(admin, f"/apis/apps/v1/namespaces/{namespace}/deployments",
                   o.deployment("shown", replicas=3))  # fmt: skip
    o.create(admin, events, o.event("e4", namespace=namespace, involved=dep,
             reason="ScalingReplicaSet", message="Scaled up replica set shown-1 to 3"))  # fmt: skip
    out = kubectl.ok(*ns, "describe", "deployment", "shown")
    assert re.search(r"^Replicas:\s+3 desired \| 0 updated \| 0 total", out, re.M), out
    assert re.search(r"^Selector:\s+app=shown$", out, re.M)
    assert re.search(r"^\s+web:\n\s+Image:\s+nginx:1\.27\n\s+Port:\s+80/TCP", out, re.M), out
    described = section(out, "Events")
    assert re.search(r"Normal\s+ScalingReplicaSet\s+\S+\s+e2e-test\s+Scaled up replica set",
                     described), described  # fmt: skip
    assert "Scheduled" not in described


def test_cordon_uncordon(kubectl: Kubectl, node_name: str) -> None:
    assert kubectl.ok("cordon", node_name) == f"node/{node_name} cordoned\n"
    assert re.search(rf"^{node_name}\s+Ready,SchedulingDisabled\s",
                     kubectl.ok("get", "node", node_name), re.M)  # fmt: skip
    assert kubectl.json("get", "node", node_name)["spec"]["unschedulable"] is True
    assert kubectl.ok("cordon", node_name) == f"node/{node_name} already cordoned\n"
    selected = kubectl.ok("get", "nodes", "--field-selector", "spec.unschedulable=true", "-o",
                          "name")  # fmt: skip
    assert f"node/{node_name}" in selected.split()
    assert kubectl.ok("uncordon", node_name) == f"node/{node_name} uncordoned\n"
    assert re.search(rf"^{node_name}\s+Ready\s", kubectl.ok("get", "node", node_name), re.M)


def test_drain_evicts_through_the_eviction_subresource(
    kubectl: Kubectl, admin: HttpsClient, namespace: str, node_name: str,
    server_log_clean: BrambleServer,
) -> None:  # fmt: skip
    pods = f"/api/v1/namespaces/{namespace}/pods"
    # terminationGracePeriodSeconds 0: nothing runs them (no agent yet), so the eviction
    # deletes them at once instead of waiting for a node to confirm.
    for name in ("drain-a", "drain-b"):
        o.create(admin, pods, o.pod(name, grace=0))
        o.bind(admin, namespace, name, node_name)
    o.create(admin, pods, o.pod("elsewhere"))
    audit = server_log_clean.data_dir / "audit.log"
    audited = len(audit.read_text().splitlines())

    result = kubectl("drain", node_name, "--ignore-daemonsets", "--force", "--timeout=30s",
                     "-v=6")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"node/{node_name} cordoned" in result.stdout
    assert f"node/{node_name} drained" in result.stdout
    assert "pod/drain-a evicted" in result.stdout
    assert "pod/drain-b evicted" in result.stdout
    # Legacy discovery (drain looks for pods/eviction there), then evictions, not deletes.
    assert re.search(r"GET https://\S+/api/v1 200 OK", result.stderr), result.stderr
    assert re.search(rf"POST https://\S+/api/v1/namespaces/{namespace}/pods/drain-a/eviction "
                     r"201 Created", result.stderr)  # fmt: skip
    assert not re.search(r"DELETE https://\S+/pods/", result.stderr)

    remaining = kubectl.ok("-n", namespace, "get", "pods", "-o", "name").split()
    assert remaining == ["pod/elsewhere"]
    assert kubectl.json("get", "node", node_name)["spec"]["unschedulable"] is True
    records = [json.loads(line) for line in audit.read_text().splitlines()[audited:]]
    evictions = sorted(r["name"] for r in records if r["subresource"] == "eviction")
    assert evictions == ["drain-a", "drain-b"]
    assert all(r["code"] == 201 for r in records if r["subresource"] == "eviction")
