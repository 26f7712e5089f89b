"""The objects of the apiserver benchmark: names, paths and manifests shaped like what
kubelets and a workload controller write (a pod with defaults is about 1.4 KB of JSON).
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

NAMESPACES = ("bench-0", "bench-1", "bench-2")
LEASE_NAMESPACE = "kube-node-lease"
PODS = "/api/v1/pods"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
NODES = "/api/v1/nodes"
STRATEGIC = "application/strategic-merge-patch+json"
BASE, STREAM = "base", "stream"  # the bench-set label: pods made before / during the window


def _h(name: str) -> int:
    """A stable number from a name (str hashes differ between processes)."""
    return zlib.crc32(name.encode())


def node_name(i: int) -> str:
    return f"node-{i:04d}"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def pod_path(namespace: str, name: str) -> str:
    return f"{pods_path(namespace)}/{name}"


def base_pod(k: int) -> tuple[str, str]:
    """(namespace, name) of base pod ``k``."""
    return NAMESPACES[k % len(NAMESPACES)], f"base-{k:05d}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node(i: int) -> Obj:
    name = node_name(i)
    resources = {"cpu": "4", "memory": "8029508Ki", "pods": "110", "ephemeral-storage": "61Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "arm64",
                "node.kubernetes.io/instance-type": "raspberrypi-4b",
            },
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": f"10.{i // 250}.{i % 250}.10"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": now(),
                    "lastTransitionTime": now(),
                },
            ],
            "nodeInfo": {
                "architecture": "arm64",
                "operatingSystem": "linux",
                "kernelVersion": "6.6.31+rpt-rpi-v8",
                "osImage": "Debian GNU/Linux 12",
                "containerRuntimeVersion": "podman://5.8.0",
                "kubeletVersion": "v1.32.4",
            },
        },
    }


def lease(i: int) -> Obj:
    name = node_name(i)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_now()},
    }


def pod(name: str, namespace: str, *, node: str, label_set: str) -> Obj:
    """A pod already bound to ``node``, as a scheduler would leave it."""
    app = f"web-{_h(name) % 20}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": app, "bench-set": label_set, "pod-template-hash": "7d4b9c8f6"},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.lan:5000/{app}:1.4.2",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"memory": "128Mi"},
                    },
                }
            ],
        },
    }


def pod_status(name: str, *, ready: bool) -> Obj:
    """A kubelet-style status patch; ``ready`` alternates so every patch changes the pod."""
    flag = "True" if ready else "False"
    return {
        "status": {
            "phase": "Running",
            "podIP": f"10.42.{_h(name) % 250}.{_h(name) // 250 % 250}",
            "conditions": [
                {
                    "type": "Ready",
                    "status": flag,
                    "lastProbeTime": None,
                    "lastTransitionTime": now(),
                },
                {
                    "type": "ContainersReady",
                    "status": flag,
                    "lastProbeTime": None,
                    "lastTransitionTime": now(),
                },
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": ready,
                    "restartCount": 0,
                    "started": True,
                    "image": "registry.lan:5000/web:1.4.2",
                    "imageID": "",
                    "containerID": f"podman://{_h(name):016x}",
                    "state": {"running": {"startedAt": now()}},
                },
            ],
        }
    }
