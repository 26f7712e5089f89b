"""``NodeInfo``: a node and the pods on it, as the scheduler counts them (k8s
``framework.NodeInfo``).

Parsed once per Node update: labels, allocatable as integers, the *effective* taints,
the conditions, the images. Pods are added and removed by the cache as the informers
and the scheduler's own assumptions say; ``requested`` and the other aggregates are kept
up to date on every change, so a filter reads them in O(1).

Effective taints: ``spec.taints`` plus the NoSchedule taints Kubernetes' node lifecycle
controller derives from the conditions (TaintNodesByCondition: Ready False ->
``node.kubernetes.io/not-ready``, Ready Unknown -> ``.../unreachable``, MemoryPressure,
DiskPressure and PIDPressure True -> ``.../memory-pressure`` etc.). bramble's controller
writes the same taints; deriving them here too means the scheduler is right whether or
not that controller has caught up (or runs at all), and a taint in both places counts once.

``generation`` increases with every change, so a caller can tell a node has moved on.
``results`` holds what signed plugins decided about this node for a pod signature
(framework.py), and is emptied by every change, as ``memo`` is by a Node update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from controlplane.scheduler import images as img
from controlplane.scheduler import terms
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.resources import ResourceError, Resources, from_list

Obj = dict[str, Any]

NOT_READY: Final = "node.kubernetes.io/not-ready"
UNREACHABLE: Final = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT: Final = "node.kubernetes.io/unschedulable"
_CONDITION_TAINTS: Final = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
# An image whose size the node does not report (bramble's agent reports 0) is counted as
# this big: a typical small service image, so that holding it still counts for locality.
UNKNOWN_IMAGE_SIZE: Final = 100 * 1024 * 1024
# Signatures whose results a node keeps: a few Deployments rolling out at once. Beyond,
# it starts again; so 5000 nodes hold at most 80,000 small entries.
MAX_RESULTS: Final = 16


@dataclass(frozen=True, slots=True)
class Condition:
    status: str
    reason: str


_generation = 0


def _next_generation() -> int:
    global _generation
    _generation += 1
    return _generation


@dataclass(slots=True, eq=False)
class NodeInfo:
    name: str
    node: Obj | None = None  # None while only pods bound to it are known
    labels: Mapping[str, str] = field(default_factory=dict)
    allocatable: Resources = field(default_factory=Resources)
    taints: tuple[terms.Taint, ...] = ()
    unschedulable: bool = False
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    images: Mapping[str, int] = field(default_factory=dict)  # normalized name -> bytes
    platform: img.Platform | None = None
    error: str = ""  # an unreadable allocatable: the node fits nothing
    # What plugins derive from the Node object alone (not from its pods), kept until the
    # Node changes: set_node clears it.
    memo: dict[str, Any] = field(default_factory=dict)
    # A pod signature's number -> the filters' verdict or the score total for it (see
    # framework.py), kept until the node or its pods change.
    results: dict[int, Any] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    requested: Resources = field(default_factory=Resources)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    used_ports: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # -> host IPs
    generation: int = field(default_factory=_next_generation)

    def set_node(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.memo = {}
        self.results = {}
        self.labels = meta.get("labels") or {}
        try:
            self.allocatable = from_list(
                status.get("allocatable") or status.get("capacity"), where="status.allocatable"
            )
            self.error = ""
        except ResourceError as e:
            self.allocatable, self.error = Resources(), str(e)
        self.unschedulable = bool(spec.get("unschedulable"))
        self.conditions = {
            str(c.get("type")): Condition(str(c.get("status") or ""), str(c.get("reason") or ""))
            for c in status.get("conditions") or []
            if isinstance(c, dict)
        }
        self.taints = _effective_taints(terms.parse_taints(spec.get("taints")), self.conditions)
        sizes: dict[str, int] = {}
        for image in status.get("images") or []:
            if not isinstance(image, dict):
                continue
            size = image.get("sizeBytes")
            size = size if isinstance(size, int) and size > 0 else UNKNOWN_IMAGE_SIZE
            for name in image.get("names") or []:
                if isinstance(name, str) and "@" not in name:
                    sizes[img.normalize(name)] = size
        self.images = sizes
        self.platform = img.node_platform(self.labels)
        self.generation = _next_generation()

    # --- pods ----------------------------------------------------------------------

    def keep(self, number: int, result: Any) -> None:
        """Remember a signed result (``results``)."""
        if len(self.results) >= MAX_RESULTS:
            self.results = {}
        self.results[number] = result

    def add_pod(self, pod: PodInfo) -> None:
        self.results = {}
        self.pods[pod.key] = pod
        self.requested.add(pod.requests)
        self.non_zero_cpu += pod.non_zero_cpu
        self.non_zero_memory += pod.non_zero_memory
        for protocol, ip, port in pod.host_ports:
            self.used_ports.setdefault((protocol, port), set()).add(ip)
        self.generation = _next_generation()

    def remove_pod(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.results = {}
        self.requested.subtract(pod.requests)
        self.non_zero_cpu -= pod.non_zero_cpu
        self.non_zero_memory -= pod.non_zero_memory
        for protocol, ip, port in pod.host_ports:
            ips = self.used_ports.get((protocol, port))
            if ips is not None:
                ips.discard(ip)
                if not ips:
                    del self.used_ports[(protocol, port)]
        self.generation = _next_generation()
        return pod

    def clone(self) -> NodeInfo:
        """A copy whose pods can be changed without touching this one (preemption's
        what-if); the parsed node facts are shared, they never change in place."""
        return NodeInfo(
            name=self.name, node=self.node, labels=self.labels, allocatable=self.allocatable,
            taints=self.taints, unschedulable=self.unschedulable, conditions=self.conditions,
            images=self.images, platform=self.platform, error=self.error, memo=self.memo,
            pods=dict(self.pods), requested=self.requested.copy(),
            non_zero_cpu=self.non_zero_cpu, non_zero_memory=self.non_zero_memory,
            used_ports={k: set(v) for k, v in self.used_ports.items()},
            generation=self.generation,
        )  # fmt: skip

    def condition(self, kind: str) -> Condition | None:
        return self.conditions.get(kind)


def _effective_taints(
    own: tuple[terms.Taint, ...], conditions: Mapping[str, Condition]
) -> tuple[terms.Taint, ...]:
    extra: list[terms.Taint] = []
    present = {(t.key, t.effect) for t in own}
    for kind, condition in conditions.items():
        key = _CONDITION_TAINTS.get((kind, condition.status))
        if key is not None and (key, terms.NO_SCHEDULE) not in present:
            extra.append(terms.Taint(key, "", terms.NO_SCHEDULE))
    return (*own, *extra) if extra else own


def node_infos(nodes: Iterable[Obj]) -> list[NodeInfo]:
    """NodeInfos for Node objects (for tests and the algorithm benchmark)."""
    result = []
    for node in nodes:
        info = NodeInfo(str((node.get("metadata") or {}).get("name") or ""))
        info.set_node(node)
        result.append(info)
    return result
