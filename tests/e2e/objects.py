"""Manifests the end-to-end tests create, and small helpers that create them over HTTPS."""

from __future__ import annotations

from typing import Any

from tests.support.cluster import HttpsClient

Obj = dict[str, Any]

STAMP = "2026-01-01T00:00:00Z"


def pod(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    image: str = "nginx:1.27",
    grace: int | None = None,
    secret: str | None = None,
) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": image}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if secret is not None:
        spec["volumes"] = [{"name": "creds", "secret": {"secretName": secret}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    }


def deployment(
    name: str, *, replicas: int = 2, containers: list[Obj] | None = None, image: str = "nginx:1.27"
) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": containers
                    or [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]
                },
            },
        },
    }


def node(name: str, *, address: str = "192.168.1.50", cpu: str = "4", memory: str = "8Gi") -> Obj:
    """A Node as an agent would register it: conditions, addresses, capacity, nodeInfo."""
    condition = {"lastHeartbeatTime": STAMP, "lastTransitionTime": STAMP}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/arch": "arm64"},
        },
        "status": {
            "conditions": [
                {
                    **condition,
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                },
                {
                    **condition,
                    "type": "MemoryPressure",
                    "status": "False",
                    "reason": "KubeletHasSufficientMemory",
                    "message": "kubelet has sufficient memory",
                },
            ],
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "nodeInfo": {
                "machineID": "m",
                "systemUUID": "s",
                "bootID": "b",
                "kernelVersion": "6.6.51",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "podman://5.4.0",
                "kubeletVersion": "v1.32.4",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "arm64",
            },
        },
    }


def event(
    name: str,
    *,
    namespace: str,
    involved: Obj,
    reason: str,
    message: str,
    kind_of_event: str = "Normal",
    count: int = 1,
) -> Obj:
    """A core/v1 Event about ``involved`` (an object as the server returned it)."""
    meta = involved["metadata"]
    ref = {
        "apiVersion": involved["apiVersion"],
        "kind": involved["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "type": kind_of_event,
        "source": {"component": "e2e-test"},
        "firstTimestamp": STAMP,
        "lastTimestamp": STAMP,
        "count": count,
    }


def create(admin: HttpsClient, path: str, obj: Obj) -> Obj:
    """POST ``obj`` to the collection ``path``; the created object."""
    created: Obj = admin.ok("POST", path, obj)
    return created


def bind(admin: HttpsClient, namespace: str, pod_name: str, node_name: str) -> None:
    """What the scheduler does: POST pods/<name>/binding."""
    admin.ok(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods/{pod_name}/binding",
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod_name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        },
    )
