"""NodeResourcesFit: the pod's requests (cpu, memory, ephemeral-storage, extended
resources) and one more pod must fit in what the node has allocatable minus what the
pods already there (bound or assumed) request; and, scoring, prefer the least
allocated nodes (``LeastAllocated``, the default) or the most (``MostAllocated``,
bin packing, e.g. to let idle Pis sleep).

A resource asked for beyond the node's whole allocatable cannot be had there by
evicting anyone, so such a rejection is unresolvable (preemption skips the node), as in
Kubernetes.

Args (``pluginConfig``)::

    scoringStrategy:
      type: LeastAllocated | MostAllocated
      resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
    unresolvable,
    unschedulable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY, Resources

NAME: Final = "NodeResourcesFit"
_CPU_MEMORY: Final = {"cpu": 1, "memory": 1}
ERR_REASON_TOO_MANY_PODS: Final = "Too many pods"
ERR_REASON_INSUFFICIENT: Final = "Insufficient {}"  # the resource's name
ERR_REASON_BAD_REQUESTS: Final = "Pod's resource requests cannot be read: {}"
ERR_REASON_BAD_NODE: Final = "node(s) had unreadable allocatable resources"
LEAST_ALLOCATED: Final = "LeastAllocated"
MOST_ALLOCATED: Final = "MostAllocated"


class NodeResourcesFit:
    name = NAME

    def __init__(
        self, *, strategy: str = LEAST_ALLOCATED, weights: Mapping[str, int] | None = None
    ) -> None:
        if strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ValueError(
                f"scoringStrategy.type {strategy!r}: use LeastAllocated or MostAllocated"
            )
        self.strategy = strategy
        self.weights = dict(weights or {CPU: 1, MEMORY: 1})
        if any(w <= 0 for w in self.weights.values()):
            raise ValueError("scoringStrategy.resources: every weight must be at least 1")
        self._statuses: dict[tuple[tuple[str, ...], bool], Status] = {}
        self._bad_node = unresolvable(NAME, ERR_REASON_BAD_NODE)

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {ClusterEvent.NODE_ADD, ClusterEvent.NODE_ALLOCATABLE, ClusterEvent.ASSIGNED_POD_DELETE}
        )

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        problem = pod.errors.get("resources")
        if problem:
            return unresolvable(NAME, ERR_REASON_BAD_REQUESTS.format(problem))
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        want = pod.requests
        have = node.allocatable
        used = node.requested
        # The common case first, in one expression: it runs for every node of every pod.
        if (
            len(node.pods) < have.pods
            and (not want.milli_cpu or want.milli_cpu <= have.milli_cpu - used.milli_cpu)
            and (not want.memory or want.memory <= have.memory - used.memory)
            and (not want.ephemeral or want.ephemeral <= have.ephemeral - used.ephemeral)
            and not want.scalar
            and not node.error
        ):
            return None
        return self._why(want, have, used, node)

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.requests.key(), pod.errors.get("resources")

    def sign_score(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.non_zero_cpu, pod.non_zero_memory, pod.requests.key()

    def _why(
        self, want: Resources, have: Resources, used: Resources, node: NodeInfo
    ) -> Status | None:
        if node.error:
            return self._bad_node
        reasons: list[str] | None = None
        beyond = True  # every shortfall exceeds the node's whole allocatable
        if len(node.pods) + 1 > have.pods:
            reasons = [ERR_REASON_TOO_MANY_PODS]
            beyond = False
        if want.milli_cpu and want.milli_cpu > have.milli_cpu - used.milli_cpu:
            reasons = (reasons or []) + ["Insufficient cpu"]
            beyond = beyond and want.milli_cpu > have.milli_cpu
        if want.memory and want.memory > have.memory - used.memory:
            reasons = (reasons or []) + ["Insufficient memory"]
            beyond = beyond and want.memory > have.memory
        if want.ephemeral and want.ephemeral > have.ephemeral - used.ephemeral:
            reasons = (reasons or []) + [ERR_REASON_INSUFFICIENT.format(EPHEMERAL_STORAGE)]
            beyond = beyond and want.ephemeral > have.ephemeral
        for name, amount in want.scalar.items():
            total = have.scalar.get(name, 0)
            if amount and amount > total - used.scalar.get(name, 0):
                reasons = (reasons or []) + [ERR_REASON_INSUFFICIENT.format(name)]
                beyond = beyond and amount > total
        if reasons is None:
            return None
        key = (tuple(reasons), beyond)
        status = self._statuses.get(key)
        if status is None:
            make = unresolvable if beyond else unschedulable
            status = self._statuses[key] = make(NAME, *reasons)
        return status

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        if self.weights == _CPU_MEMORY:
            return self._cpu_memory(pod, nodes)
        return [self._score(pod, node) for node in nodes]

    def _cpu_memory(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """The default weights (cpu 1, memory 1) as one loop: the hot path of scoring."""
        cpu, mem = pod.non_zero_cpu, pod.non_zero_memory
        least = self.strategy == LEAST_ALLOCATED
        result = []
        for node in nodes:
            have = node.allocatable
            total = parts = 0
            capacity = have.milli_cpu
            if capacity:
                requested = node.non_zero_cpu + cpu
                if least:
                    total += 0 if requested > capacity else (capacity - requested) * 100 // capacity
                else:
                    total += 100 if requested > capacity else requested * 100 // capacity
                parts += 1
            capacity = have.memory
            if capacity:
                requested = node.non_zero_memory + mem
                if least:
                    total += 0 if requested > capacity else (capacity - requested) * 100 // capacity
                else:
                    total += 100 if requested > capacity else requested * 100 // capacity
                parts += 1
            result.append(total // parts if parts else 0)
        return result

    def _score(self, pod: PodInfo, node: NodeInfo) -> int:
        total = weight_sum = 0
        for name, weight in self.weights.items():
            if name == CPU:
                capacity, requested = (
                    node.allocatable.milli_cpu,
                    node.non_zero_cpu + pod.non_zero_cpu,
                )
            elif name == MEMORY:
                capacity = node.allocatable.memory
                requested = node.non_zero_memory + pod.non_zero_memory
            else:
                capacity = node.allocatable.get(name)
                requested = node.requested.get(name) + pod.requests.get(name)
            if capacity == 0:
                continue
            if self.strategy == LEAST_ALLOCATED:
                part = (
                    0
                    if requested > capacity
                    else (capacity - requested) * MAX_NODE_SCORE // capacity
                )
            else:
                part = (
                    MAX_NODE_SCORE
                    if requested > capacity
                    else requested * MAX_NODE_SCORE // capacity
                )
            total += part * weight
            weight_sum += weight
        return total // weight_sum if weight_sum else 0


def new(args: Mapping[str, Any], handle: Handle) -> NodeResourcesFit:
    strategy = args.get("scoringStrategy") or {}
    resources = strategy.get("resources")
    weights = None
    if resources is not None:
        weights = {str(r["name"]): int(r.get("weight", 1)) for r in resources}
    return NodeResourcesFit(strategy=strategy.get("type") or LEAST_ALLOCATED, weights=weights)
