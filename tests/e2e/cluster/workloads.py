"""Helpers for the workload tests on the multi-node cluster: what a person would apply
(busybox httpd Deployments, Jobs), how tests look at pods (Ready, active, fetched from
inside their node's network namespace) and wait for them, with deadlines.

The pods run ``localhost/busybox`` with ``imagePullPolicy: IfNotPresent``: every node's
Podman holds that image and no node can reach a registry (tests/support/multinode.py).
"""

from __future__ import annotations

from typing import Any

from tests.support.multinode import Cluster
from tests.support.processes import wait_until

Obj = dict[str, Any]

IMAGE = "localhost/busybox:latest"
# A second name of the same image, which a test tags in every node's Podman
# (``tag_image``): a new image to roll out to without a registry.
IMAGE_V2 = "localhost/busybox:v2"
ROLLOUT_TIMEOUT = "90s"


# --- pods -------------------------------------------------------------------------------


def is_ready(pod: Obj) -> bool:
    """Ready=True and not terminating: what a Service would send traffic to."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_active(pod: Obj) -> bool:
    """Neither terminating nor finished: what a ReplicaSet counts as one of its replicas."""
    phase = pod.get("status", {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def restart_counts(pod: Obj) -> dict[str, int]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return {s["name"]: int(s.get("restartCount", 0)) for s in statuses}


# --- manifests ----------------------------------------------------------------------------

# busybox httpd serves a page naming the pod and $VERSION; as PID 1 it would ignore SIGTERM,
# so the shell traps it and the pod stops at once instead of after its grace period.
HTTPD = (
    'mkdir -p /www && echo "$(hostname) ${VERSION:-v1}" > /www/index.html && '
    "httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait $pid"
)


def web_container() -> Obj:
    return {
        "name": "web",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", HTTPD],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }


def spread_by_hostname(app: str) -> list[Obj]:
    """One pod per node before a second on any, as a user asks for it."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": app}},
        }
    ]


def pod_template(app: str, *, spread: bool = False) -> Obj:
    spec: Obj = {"terminationGracePeriodSeconds": 2, "containers": [web_container()]}
    if spread:
        spec["topologySpreadConstraints"] = spread_by_hostname(app)
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def deployment(name: str, *, replicas: int, spread: bool = False) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, spread=spread),
        },
    }


def job(name: str, command: str, **spec: Any) -> Obj:
    """A Job of one busybox container running ``sh -c command`` (restartPolicy Never)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", command],
                        }
                    ],
                }
            },
        },
    }


# --- looking at pods through kubectl ----------------------------------------------------


def rollout_status(cluster: Cluster, namespace: str, name: str) -> str:
    out = cluster.kubectl.ok(
        "rollout", "status", f"deployment/{name}", "-n", namespace,
        f"--timeout={ROLLOUT_TIMEOUT}", timeout=120,
    )  # fmt: skip
    assert "successfully rolled out" in out, out
    return out


def tag_image(cluster: Cluster, source: str, target: str) -> None:
    """``podman tag`` in every node's storage (the nodes share no image store)."""
    for node in cluster.nodes:
        node.podman("tag", source, target)


def pods(cluster: Cluster, namespace: str, selector: str) -> list[Obj]:
    items: list[Obj] = cluster.kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
    return items


def fetch(cluster: Cluster, pod: Obj) -> str:
    """The pod's page, fetched from its own node's network namespace (pod addresses are
    routed on their node only) with the host's wget."""
    node = cluster.node(pod["spec"]["nodeName"])
    url = f"http://{pod['status']['podIP']}:8080/"
    result = node.run("wget", "-q", "-O", "-", "-T", "5", url, timeout=15)
    assert result.returncode == 0, f"{url} from {node.name}: {result.stderr}"
    return result.stdout.strip()


def ready_pods(cluster: Cluster, namespace: str, selector: str, count: int) -> list[Obj]:
    """Wait until exactly ``count`` pods are active, all of them Ready."""

    def settled() -> list[Obj] | None:
        current = [p for p in pods(cluster, namespace, selector) if is_active(p)]
        ok = len(current) == count and all(is_ready(p) for p in current)
        return current if ok else None

    result: list[Obj] = wait_until(settled, timeout=60, what=f"{count} Ready pods", every=0.5)
    return result
