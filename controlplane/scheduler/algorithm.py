"""One pod's placement, with no I/O (k8s ``schedulePod``, ``findNodesThatFitPod``,
``prioritizeNodes``, ``selectHost``): PreFilter, Filter over a sample of the nodes,
PreScore, Score, pick the best.

Sampling (``percentageOfNodesToScore``): once enough feasible nodes are found the
search stops; "enough" is every node below 100 nodes, else a percentage that shrinks
as the cluster grows, ``50 - nodes/125`` but at least 5 % and at least 100 nodes (an
explicit percentage replaces the adaptive one). The search starts where the previous
one stopped, so every node gets its turn. A pod that was nominated a node (preemption)
is tried there first.

When no node fits, ``FitError`` carries every node's Status, and ``message`` words them
exactly as Kubernetes' ``FitError.Error`` does: "0/3 nodes are available: 1 Insufficient
memory, 2 node(s) didn't match Pod's node affinity/selector." (reasons counted, sorted
as strings), a PreFilter rejection instead of the counts, then the PostFilter's
(preemption's) own sentence.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.scheduler.framework import (
    Code,
    CycleState,
    Framework,
    Status,
    unresolvable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
_UNKNOWN: Any = object()  # no verdict kept for the signature (None is "fits")


def num_feasible_nodes_to_find(percentage: int | None, num_all_nodes: int) -> int:
    """k8s ``numFeasibleNodesToFind``; ``percentage`` None or 0 is adaptive."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    adaptive = percentage or 0
    if adaptive <= 0:
        adaptive = BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125
        adaptive = max(adaptive, MIN_FEASIBLE_NODES_PERCENTAGE)
    if adaptive >= 100:
        return num_all_nodes
    found = num_all_nodes * adaptive // 100
    return max(found, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass(slots=True)
class Diagnosis:
    statuses: dict[str, Status] = field(default_factory=dict)  # node name -> rejection
    pre_filter: Status | None = None
    post_filter_message: str = ""

    @property
    def rejected_by(self) -> frozenset[str]:
        """The plugins that said no (the queue moves the pod on their events)."""
        if self.pre_filter is not None:
            return frozenset({self.pre_filter.plugin})
        return frozenset(s.plugin for s in self.statuses.values() if s.plugin)

    @property
    def error(self) -> Status | None:
        """A plugin error (not a rejection), if one ended the cycle."""
        for status in (self.pre_filter, *self.statuses.values()):
            if status is not None and status.code == Code.ERROR:
                return status
        return None


class FitError(Exception):
    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis
        super().__init__(self.message)

    @property
    def message(self) -> str:
        d = self.diagnosis
        if self.num_all_nodes == 0 and d.pre_filter is None:
            return NO_NODES_AVAILABLE
        text = f"0/{self.num_all_nodes} nodes are available:"
        if d.pre_filter is not None:
            text += f" {d.pre_filter.message}."
        else:
            counts: Counter[str] = Counter()
            for status in d.statuses.values():
                counts.update(status.reasons)
            if counts:
                text += " " + ", ".join(sorted(f"{n} {r}" for r, n in counts.items())) + "."
        if d.post_filter_message:
            text += f" {d.post_filter_message}."
        return text


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    node: str
    evaluated: int  # nodes the filters ran on
    feasible: int


class Algorithm:
    """The placement loop of one scheduler; keeps where the next search starts."""

    def __init__(self, *, rng: random.Random | None = None) -> None:
        self.next_start = 0
        self._rng = rng or random.Random()

    def schedule(
        self, fw: Framework, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> ScheduleResult:
        """The node for ``pod``, or FitError."""
        diagnosis = Diagnosis()
        if not nodes:
            raise FitError(pod, 0, diagnosis)
        status = fw.run_pre_filter(state, pod, nodes)
        if status is not None:
            diagnosis.pre_filter = status
            raise FitError(pod, len(nodes), diagnosis)
        feasible = self._nominated_first(fw, state, pod)
        if not feasible:
            feasible = self._find_feasible(fw, state, pod, nodes, diagnosis)
        if not feasible:
            raise FitError(pod, len(nodes), diagnosis)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, len(diagnosis.statuses) + 1, 1)
        fw.run_pre_score(state, pod, feasible)
        totals = fw.run_score(state, pod, feasible)
        return ScheduleResult(
            self._select(feasible, totals), len(diagnosis.statuses) + len(feasible), len(feasible)
        )

    def _nominated_first(self, fw: Framework, state: CycleState, pod: PodInfo) -> list[NodeInfo]:
        if not pod.nominated_node or fw.handle is None:
            return []
        node = fw.handle.cluster.node(pod.nominated_node)
        if node is None:
            return []
        status = fw.run_filters_with_nominated(state, pod, node)
        return [node] if status is None else []

    def _find_feasible(
        self,
        fw: Framework,
        state: CycleState,
        pod: PodInfo,
        nodes: Sequence[NodeInfo],
        diagnosis: Diagnosis,
    ) -> list[NodeInfo]:
        total = len(nodes)
        wanted = num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score, total)
        # Filters that a node passes whatever the pod (no taints, not cordoned...) are
        # skipped on such "clean" nodes: the node's verdict is kept in its memo until
        # the Node changes, so most nodes cost one dict lookup instead of several calls.
        plan = fw.filter_plan(state)
        filters, node_only, others, clean_key = (
            plan.filters, plan.node_only, plan.others, plan.clean_key
        )  # fmt: skip
        nominator = fw.handle.nominator if fw.handle is not None else None
        has_nominations = nominator is not None and len(nominator) > 0
        # A verdict kept on the node for this pod's signature is the verdict (nominated
        # pods are not part of a node's state: with nominations, every node is checked).
        number = None if has_nominations else fw.filter_signature(state, pod, plan)
        statuses = diagnosis.statuses
        feasible: list[NodeInfo] = []
        start = self.next_start % total
        checked = 0
        for node in itertools.chain(nodes[start:], nodes[:start]):
            checked += 1
            status = node.results.get(number, _UNKNOWN) if number is not None else _UNKNOWN
            if status is _UNKNOWN:
                clean = node.memo.get(clean_key)
                if clean is None:
                    clean = node.memo[clean_key] = all(f.passes_all(node) for f in node_only)
                chosen = others if clean else filters
                if has_nominations:
                    status = fw.run_filters_with_nominated(state, pod, node, chosen)
                else:
                    status = None
                    for plugin in chosen:
                        status = plugin.filter(state, pod, node)
                        if status is not None:
                            break
                if number is not None:
                    node.keep(number, status)
            if status is None:
                feasible.append(node)
                if len(feasible) >= wanted:
                    break
            else:
                statuses[node.name] = status
                if status.code == Code.ERROR:
                    return []
        self.next_start = (start + checked) % total
        return feasible

    def _select(self, nodes: Sequence[NodeInfo], totals: Sequence[int]) -> str:
        """The highest total; ties broken uniformly at random (as k8s' reservoir
        sampling does, with one draw)."""
        best = max(totals)
        ties = [i for i, total in enumerate(totals) if total == best]
        return nodes[ties[0] if len(ties) == 1 else self._rng.choice(ties)].name


def restrict_status(plugin: str) -> Status:
    """The Status of nodes a PreFilter result excluded."""
    return unresolvable(plugin, f"node(s) didn't satisfy plugin(s) [{plugin}]")


def reasons_of(statuses: Mapping[str, Status]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for status in statuses.values():
        counts.update(status.reasons)
    return counts
