"""Nodes and pods for the scheduler's tests, shaped as the agent and the apiserver write
them, and a cluster (the scheduler's cache) built from them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import CycleState, Handle, Status
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo, pod_info
from controlplane.scheduler.queue import Nominator

Obj = dict[str, Any]


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: int = 110,
    ephemeral: str | None = "60Gi",
    labels: Mapping[str, str] | None = None,
    arch: str | None = "arm64",
    taints: Iterable[Obj] = (),
    conditions: Mapping[str, str | tuple[str, str]] | None = None,
    unschedulable: bool = False,
    images: Iterable[tuple[str, int]] = (),
    extra: Mapping[str, str] | None = None,
) -> Obj:
    """A Node; ``conditions`` maps a type to a status or (status, reason); Ready=True
    unless given."""
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if arch:
        all_labels["kubernetes.io/arch"] = arch
    all_labels.update(labels or {})
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    if ephemeral:
        resources["ephemeral-storage"] = ephemeral
    conds = {"Ready": "True", **(conditions or {})}
    spec: Obj = {"taints": list(taints)} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": t,
                    "status": v if isinstance(v, str) else v[0],
                    "reason": "" if isinstance(v, str) else v[1],
                }
                for t, v in conds.items()
            ],
            "images": [{"names": [n], "sizeBytes": size} for n, size in images],
        },
    }


def taint(key: str, effect: str = "NoSchedule", value: str = "") -> Obj:
    return {"key": key, "value": value, "effect": effect}


def pod(
    name: str = "p",
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    requests: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    affinity: Obj | None = None,
    tolerations: Sequence[Obj] | None = None,
    spread: Sequence[Obj] | None = None,
    priority: int = 0,
    images: Sequence[str] = ("nginx",),
    host_ports: Sequence[int] = (),
    node_name: str | None = None,
    owner: str | None = None,
    gates: Sequence[str] = (),
    created: str = "2026-01-01T00:00:00Z",
    extra_spec: Mapping[str, Any] | None = None,
) -> Obj:
    res = dict(requests or {})
    if cpu:
        res["cpu"] = cpu
    if memory:
        res["memory"] = memory
    containers = []
    for i, image in enumerate(images):
        ports = [{"containerPort": p, "hostPort": p} for p in host_ports] if i == 0 else []
        resources = {"requests": res} if i == 0 and res else {}
        containers.append({"name": f"c{i}", "image": image, "resources": resources, "ports": ports})
    spec: Obj = {
        "containers": containers,
        "schedulerName": "default-scheduler",
        "priority": priority,
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = list(tolerations)
    if spread:
        spec["topologySpreadConstraints"] = list(spread)
    if node_name:
        spec["nodeName"] = node_name
    if gates:
        spec["schedulingGates"] = [{"name": g} for g in gates]
    spec.update(extra_spec or {})
    meta: Obj = {
        "name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
        "labels": dict(labels or {}), "creationTimestamp": created,
    }  # fmt: skip
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}",
             "controller": True}
        ]  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {}}


def cluster(nodes: Iterable[Obj], placed: Mapping[str, Iterable[Obj]] | None = None) -> Cache:
    """A cache holding ``nodes`` and, per node name, the pods bound there."""
    cache = Cache()
    for n in nodes:
        cache.add_node(n)
    for node_name, pods in (placed or {}).items():
        for p in pods:
            bound = {**p, "spec": {**p["spec"], "nodeName": node_name}}
            cache.add_pod(pod_info(bound))
    return cache


def handle(cache: Cache, nominator: Nominator | None = None) -> Handle:
    return Handle(cache, nominator if nominator is not None else Nominator())


def info(p: Obj) -> PodInfo:
    return pod_info(p)


def node_info(cache: Cache, name: str) -> NodeInfo:
    found = cache.node(name)
    assert found is not None, name
    return found


def filter_all(
    plugin: Any, p: PodInfo, cache: Cache, state: CycleState | None = None
) -> dict[str, Status | None] | Status:
    """Run PreFilter (if the plugin has one) then Filter on every node: node -> status
    (None = fits); a PreFilter rejection is returned as is; a Skip means all fit."""
    state = state or CycleState()
    nodes = cache.node_list()
    if hasattr(plugin, "pre_filter"):
        status: Status | None = plugin.pre_filter(state, p, nodes)
        if status is not None and status.reasons:
            return status
        if status is not None:  # Skip
            return {n.name: None for n in nodes}
    return {n.name: plugin.filter(state, p, n) for n in nodes}


def fits(plugin: Any, p: PodInfo, cache: Cache) -> list[str]:
    """The nodes the plugin lets ``p`` onto, sorted."""
    result = filter_all(plugin, p, cache)
    assert isinstance(result, dict), result
    return sorted(name for name, status in result.items() if status is None)


def scores(plugin: Any, p: PodInfo, cache: Cache) -> dict[str, int]:
    """PreScore, Score and NormalizeScore over every node; {} when PreScore skips."""
    state = CycleState()
    nodes = list(cache.node_list())
    if hasattr(plugin, "pre_score"):
        status = plugin.pre_score(state, p, nodes)
        if status is not None:
            return {}
    raw = [plugin.score(state, p, n) for n in nodes]
    if hasattr(plugin, "score_nodes"):  # the framework's path must agree with Score
        assert plugin.score_nodes(state, p, nodes) == raw
    if hasattr(plugin, "normalize"):
        plugin.normalize(state, p, raw)
    return {n.name: s for n, s in zip(nodes, raw, strict=True)}
