"""Deployments on the real multi-node cluster, driven by the real kubectl and checked
where it happens (pods in the nodes' Podman, pages fetched from the pods' addresses inside
the nodes' network namespaces):

* a Deployment made with ``kubectl create deployment`` spreads over the nodes and serves;
* rolling updates (``set image`` to a new image, ``set env``, ``rollout undo``,
  ``rollout restart``) never drop below
  ``replicas - maxUnavailable`` Ready pods nor go above ``replicas + maxSurge`` active
  ones, counted at every watch event, and ``rollout status`` returns; ``rollout undo``
  goes back to the old ReplicaSet; ``kubectl scale`` up and down;
* ``kubectl delete deployment --cascade=background|foreground|orphan`` as Kubernetes;
* a node cut off the network for 5 s loses nothing (same pod uids, containers and
  restart counts).

The tests share this module's cluster (tests/e2e/cluster/conftest.py: nodes renew their
Lease every second, so a 5 s cut-off misses several renewals) and Deployment ``web``;
each other test keeps to a namespace of its own. A killed node is test_node_failure.py's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster.watch import watching
from tests.e2e.cluster.workloads import (
    HTTPD,
    IMAGE,
    IMAGE_V2,
    Obj,
    deployment,
    fetch,
    is_active,
    is_ready,
    pods,
    pods_path,
    ready_pods,
    restart_counts,
    rollout_status,
    tag_image,
)
from tests.support.cluster import manifest, unique
from tests.support.multinode import Cluster
from tests.support.processes import wait_until

pytestmark = pytest.mark.real("multinode")
logger = logging.getLogger(__name__)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = unique("wl")
    cluster.kubectl.ok("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> Iterator[str]:
    """The namespace of Deployment ``web``: made as a person would with ``kubectl create
    deployment`` (then given IfNotPresent, a readiness probe and a short grace period,
    which the command cannot set), applied, rolled out."""
    ns = unique("web")
    kubectl = cluster.kubectl
    kubectl.ok("create", "namespace", ns)
    made = kubectl.ok(
        "create", "deployment", "web", "-n", ns, f"--image={IMAGE}", "--replicas=3",
        "--port=8080", "--dry-run=client", "-o", "json", "--", "sh", "-c", HTTPD,
    )  # fmt: skip
    obj = json.loads(made)
    spec = obj["spec"]["template"]["spec"]
    spec["terminationGracePeriodSeconds"] = 2
    spec["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    spec["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 8080},
        "periodSeconds": 1,
        "failureThreshold": 3,
    }
    kubectl.ok("apply", "-n", ns, "-f", "-", input=json.dumps(obj))
    rollout_status(cluster, ns, "web")
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false")


# --- Deployments ------------------------------------------------------------------------


def test_a_deployment_spreads_over_the_nodes_and_serves(cluster: Cluster, web: str) -> None:
    current = ready_pods(cluster, web, "app=web", 3)
    nodes = {p["spec"]["nodeName"] for p in current}
    assert len(nodes) >= 2, f"3 replicas on {nodes}: the default spreading did not spread"
    for pod in current:
        assert fetch(cluster, pod) == f"{pod['metadata']['name']} v1"
        mine = {"io.bramble.pod.namespace": web, "io.bramble.pod.name": pod["metadata"]["name"]}
        assert cluster.node(pod["spec"]["nodeName"]).containers(**mine), "not in its Podman"
    table = cluster.kubectl.ok("get", "deployment", "web", "-n", web, "--no-headers")
    assert table.split()[1:4] == ["3/3", "3", "3"], table


def test_rolling_updates_keep_enough_pods_ready_undo_restart_and_scale(
    cluster: Cluster, web: str
) -> None:
    kubectl = cluster.kubectl
    replicas = 3
    # Defaults: maxUnavailable 25% of 3 rounds down to 0, maxSurge 25% rounds up to 1.
    spec = kubectl.json("get", "deployment", "web", "-n", web)["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    name = spec["template"]["spec"]["containers"][0]["name"]  # kubectl named it "busybox"
    floor, ceiling = replicas - 0, replicas + 1
    ready_counts: list[int] = []
    active_counts: list[int] = []

    def count(kind: str, obj: Obj, current: dict[str, Obj]) -> None:
        ready_counts.append(sum(1 for p in current.values() if is_ready(p)))
        active_counts.append(sum(1 for p in current.values() if is_active(p)))

    ready_pods(cluster, web, "app=web", replicas)
    before = {p["metadata"]["uid"] for p in pods(cluster, web, "app=web")}
    tag_image(cluster, IMAGE, IMAGE_V2)
    with watching(cluster.server.admin(), pods_path(web), selector="app=web", on_event=count):
        # A new image, as a person ships a release: every pod is replaced and its
        # container runs from the new image in its node's Podman.
        kubectl.ok("set", "image", "deployment/web", "-n", web, f"{name}={IMAGE_V2}")
        rollout_status(cluster, web, "web")
        imaged = ready_pods(cluster, web, "app=web", replicas)
        assert not {p["metadata"]["uid"] for p in imaged} & before, "set image replaces them all"
        for pod in imaged:
            assert pod["spec"]["containers"][0]["image"] == IMAGE_V2
            assert fetch(cluster, pod) == f"{pod['metadata']['name']} v1"
            assert running_images(cluster, web, pod, name) == [IMAGE_V2]

        kubectl.ok("set", "env", "deployment/web", "-n", web, "VERSION=v2")
        rollout_status(cluster, web, "web")
        for pod in ready_pods(cluster, web, "app=web", replicas):
            assert fetch(cluster, pod) == f"{pod['metadata']['name']} v2"
        v2 = {p["metadata"]["uid"] for p in pods(cluster, web, "app=web") if is_active(p)}
        assert not v2 & {p["metadata"]["uid"] for p in imaged}, "set env must replace every pod"

        # Back to the set-image revision: the new image, without the env.
        kubectl.ok("rollout", "undo", "deployment/web", "-n", web)
        rollout_status(cluster, web, "web")
        for pod in ready_pods(cluster, web, "app=web", replicas):
            assert fetch(cluster, pod) == f"{pod['metadata']['name']} v1"
            assert running_images(cluster, web, pod, name) == [IMAGE_V2]
        template = kubectl.json("get", "deployment", "web", "-n", web)["spec"]["template"]
        container = template["spec"]["containers"][0]
        assert "env" not in container, "undo restores the previous template"
        assert container["image"] == IMAGE_V2

        undone = {p["metadata"]["uid"] for p in pods(cluster, web, "app=web") if is_active(p)}
        kubectl.ok("rollout", "restart", "deployment/web", "-n", web)
        rollout_status(cluster, web, "web")
        restarted = ready_pods(cluster, web, "app=web", replicas)
        assert not {p["metadata"]["uid"] for p in restarted} & undone, "restart makes new pods"
        for pod in restarted:
            annotations = pod["metadata"].get("annotations") or {}
            assert "kubectl.kubernetes.io/restartedAt" in annotations
    logger.info(
        "rollouts: Ready pods ranged %d-%d over %d events; active at most %d",
        min(ready_counts), max(ready_counts), len(ready_counts), max(active_counts),
    )  # fmt: skip
    assert min(ready_counts) >= floor, f"Ready pods fell to {min(ready_counts)} (< {floor})"
    assert max(active_counts) <= ceiling, f"{max(active_counts)} active pods (> {ceiling})"

    kubectl.ok("scale", "deployment/web", "-n", web, "--replicas=5")
    rollout_status(cluster, web, "web")
    ready_pods(cluster, web, "app=web", 5)
    kubectl.ok("scale", "deployment/web", "-n", web, "--replicas=2")
    ready_pods(cluster, web, "app=web", 2)
    rs = kubectl.json("get", "replicasets", "-n", web, "-l", "app=web")["items"]
    assert sorted(r["spec"]["replicas"] for r in rs) == [0] * (len(rs) - 1) + [2]
    # The undo went back to revision 2's ReplicaSet (set image; renumbered 4), not a new
    # one; the restart made revision 5.
    history = kubectl.ok("rollout", "history", "deployment/web", "-n", web)
    revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
    assert revisions == ["1", "3", "4", "5"], history
    assert len(rs) == 4, [r["metadata"]["name"] for r in rs]


def running_images(cluster: Cluster, namespace: str, pod: Obj, container: str) -> list[str]:
    """The images of the pod's running ``container`` in its node's Podman."""
    mine = {"io.bramble.pod.namespace": namespace, "io.bramble.pod.name": pod["metadata"]["name"],
            "io.bramble.container.name": container}  # fmt: skip
    found = cluster.node(pod["spec"]["nodeName"]).containers(**mine)
    return [str(c.get("Image")) for c in found if c.get("State") == "running"]


# --- cascading deletion -----------------------------------------------------------------


def owned(cluster: Cluster, namespace: str, app: str) -> tuple[list[Obj], list[Obj]]:
    """The ReplicaSets and pods of Deployment ``app`` (by label), as now."""
    admin = cluster.server.admin()
    query = f"?labelSelector=app%3D{app}"
    rs = admin.ok("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets{query}")["items"]
    pods_ = admin.ok("GET", f"{pods_path(namespace)}{query}")["items"]
    return rs, pods_


def test_deleting_a_deployment_with_each_propagation_policy(
    cluster: Cluster, namespace: str
) -> None:
    kubectl = cluster.kubectl
    admin = cluster.server.admin()
    names = ["bg", "fg", "orphan"]
    kubectl.ok(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifest(*(deployment(n, replicas=2) for n in names)),
    )
    for name in names:
        rollout_status(cluster, namespace, name)

    # background: the Deployment goes at once, then its ReplicaSet and pods.
    kubectl.ok("delete", "deployment", "bg", "-n", namespace, "--cascade=background")
    wait_until(
        lambda: owned(cluster, namespace, "bg") == ([], []),
        timeout=60,
        what="bg's ReplicaSet and pods gone",
        every=0.5,
    )

    # foreground: the Deployment stays (deletionTimestamp, finalizer) until they are gone.
    kubectl.ok(
        "delete", "deployment", "fg", "-n", namespace, "--cascade=foreground", "--wait=false"
    )
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/fg"
    seen_terminating = False

    def deployment_gone() -> bool:
        nonlocal seen_terminating
        reply = admin.request("GET", path)  # the Deployment first, then what it owns
        rs, pods_ = owned(cluster, namespace, "fg")
        if reply.status == 404:
            assert (rs, pods_) == ([], []), "foreground: the Deployment went before its pods"
            return True
        meta = reply.json()["metadata"]
        assert meta.get("deletionTimestamp"), meta
        assert "foregroundDeletion" in meta.get("finalizers", []), meta
        seen_terminating = seen_terminating or bool(rs or pods_)
        return False

    wait_until(deployment_gone, timeout=60, what="fg deleted in the foreground", every=0.2)
    assert seen_terminating, "the Deployment was never seen waiting for its dependents"

    # orphan: the ReplicaSet and its pods stay, no longer owned by anything.
    uid = kubectl.json("get", "deployment", "orphan", "-n", namespace)["metadata"]["uid"]
    kubectl.ok("delete", "deployment", "orphan", "-n", namespace, "--cascade=orphan")
    rs, pods_ = owned(cluster, namespace, "orphan")
    assert len(rs) == 1, rs
    assert len([p for p in pods_ if is_active(p)]) == 2, pods_
    assert not [r for r in rs[0]["metadata"].get("ownerReferences") or [] if r["uid"] == uid]
    assert all(
        p["metadata"]["ownerReferences"][0]["uid"] == rs[0]["metadata"]["uid"] for p in pods_
    )
    ready_pods(cluster, namespace, "app=orphan", 2)  # still running, still served


# --- a network blip -----------------------------------------------------------------------

BLIP = 5.0  # seconds; the node lifecycle controller's grace period is 20 s
PROBE = ("wget", "-q", "-O", "/dev/null", "-T", "1", "--tries=1", "--no-check-certificate")


def test_a_node_cut_off_for_five_seconds_loses_nothing(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    replicas = len(cluster.nodes)
    spread = deployment("steady", replicas=replicas, spread=True)
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=manifest(spread))
    rollout_status(cluster, namespace, "steady")
    before = {
        p["metadata"]["uid"]: p for p in ready_pods(cluster, namespace, "app=steady", replicas)
    }
    victim = cluster.node(next(iter(before.values()))["spec"]["nodeName"])
    mine = {"io.bramble.pod.namespace": namespace}
    containers = sorted(c["Id"] for c in victim.containers(**mine))
    changes: list[tuple[str, str, Any]] = []

    def record(kind: str, obj: Obj, current: dict[str, Obj]) -> None:
        if kind != "MODIFIED" or obj["metadata"].get("deletionTimestamp"):
            changes.append(
                (kind, obj["metadata"]["name"], obj["metadata"].get("deletionTimestamp"))
            )

    with watching(
        cluster.server.admin(), pods_path(namespace), selector="app=steady", on_event=record
    ):
        victim.cut_off()
        cut = time.monotonic()
        try:
            url = f"https://{cluster.switch.host_address}:{cluster.server.port}/healthz"
            node_ok = victim.run(*PROBE, url)
            assert node_ok.returncode != 0, "the node still reaches the server"
            time.sleep(max(0.0, BLIP - (time.monotonic() - cut)))  # the blip itself: time passing
        finally:
            victim.restore()
        logger.info("%s cut off for %.1fs", victim.name, time.monotonic() - cut)

        # The Lease as the blip left it; the agent is back, and steady, after two renewals.
        seen = [cluster.lease(victim.name)["spec"]["renewTime"]]

        def renewed_twice() -> bool:
            now = cluster.lease(victim.name)["spec"]["renewTime"]
            if now != seen[-1]:
                seen.append(now)
            return len(seen) >= 3

        wait_until(renewed_twice, timeout=30, what=f"{victim.name} renewing again", every=0.2)
        after = ready_pods(cluster, namespace, "app=steady", replicas)
    assert changes == [], f"pods were created or deleted around the blip: {changes}"
    assert {p["metadata"]["uid"] for p in after} == set(before)
    for pod in after:
        assert restart_counts(pod) == restart_counts(before[pod["metadata"]["uid"]]), pod["status"]
    assert sorted(c["Id"] for c in victim.containers(**mine)) == containers
    node = kubectl.json("get", "node", victim.name)
    assert not [t for t in node["spec"].get("taints") or [] if "unreachable" in t["key"]], node
