"""NodeResourcesBalancedAllocation: prefer nodes where, with the pod, cpu and memory
are used in equal shares, so that neither runs out while the other lies idle (a Pi with
its memory full and its cores free is a Pi wasted). Score ``(1 - std) * 100`` of the
requested/allocatable fractions, as Kubernetes."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.resources import CPU, MEMORY

NAME: Final = "NodeResourcesBalancedAllocation"


class BalancedAllocation:
    name = NAME

    def __init__(self, resources: Sequence[str] = (CPU, MEMORY)) -> None:
        self.resources = tuple(resources)

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset()  # scoring only: never the reason a pod waits

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        # A pod that requests nothing changes no balance (k8s: skip best-effort pods).
        if not any(pod.requests.get(name) for name in self.resources):
            return SKIP
        return None

    def sign_score(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.requests.key()

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return self.score_nodes(state, pod, [node])[0]

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        if self.resources != (CPU, MEMORY):
            return [self._score(pod, node) for node in nodes]
        cpu, mem = pod.requests.milli_cpu, pod.requests.memory
        result = []
        for node in nodes:  # the default pair in one loop: the hot path
            have, used = node.allocatable, node.requested
            if have.milli_cpu <= 0 or have.memory <= 0:
                result.append(self._score(pod, node))
                continue
            f_cpu = (used.milli_cpu + cpu) / have.milli_cpu
            f_mem = (used.memory + mem) / have.memory
            if f_cpu > 1.0:
                f_cpu = 1.0
            if f_mem > 1.0:
                f_mem = 1.0
            spread = f_cpu - f_mem if f_cpu > f_mem else f_mem - f_cpu
            result.append(int((1 - spread / 2) * MAX_NODE_SCORE))
        return result

    def _score(self, pod: PodInfo, node: NodeInfo) -> int:
        fractions = []
        for name in self.resources:
            capacity = node.allocatable.get(name)
            if capacity <= 0:
                continue
            requested = node.requested.get(name) + pod.requests.get(name)
            fractions.append(min(1.0, requested / capacity))
        if len(fractions) < 2:
            return MAX_NODE_SCORE
        if len(fractions) == 2:
            std = abs(fractions[0] - fractions[1]) / 2
        else:
            mean = sum(fractions) / len(fractions)
            std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
        return int((1 - std) * MAX_NODE_SCORE)


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    resources = args.get("resources")
    if resources is None:
        return BalancedAllocation()
    return BalancedAllocation([str(r["name"]) for r in resources])
