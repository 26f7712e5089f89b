"""DefaultPreemption: when a pod fits nowhere, find one node where evicting pods of lower
priority would make it fit, and choose the victims (k8s ``defaultpreemption`` and
``framework/preemption``). This module decides; the scheduler carries the decision out
(``Scheduler._preempt``): it nominates the node (``status.nominatedNodeName``), marks
each victim (condition DisruptionTarget, event Preempted) and deletes it *gracefully*,
so its containers get their termination grace period; the preemptor waits in the queue
until the victims are gone, and meanwhile lower-priority pods may not take the room
(nominated pods count in the filters, see ``Framework.run_filters_with_nominated``).

Per candidate node (nodes that failed only for reasons eviction can resolve): remove
every pod of lower priority, check that the pod then fits; add them back, most
important first, keeping each one that still lets the pod fit (a "reprieve"); the rest
are the victims. Among candidates the best is, in order: the lowest priority among its
victims' highest, the lowest sum of victim priorities, the fewest victims, the most
recently started highest-priority victim, then node order (Kubernetes'
``pickOneNodeForPreemption`` without PodDisruptionBudgets, which bramble does not have).

A pod with ``preemptionPolicy: Never`` does not preempt; nor does a pod whose nominated
node still has lower-priority pods terminating (its earlier preemption is under way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from controlplane.scheduler.framework import (
    Code,
    CycleState,
    Framework,
    Handle,
    PostFilterResult,
    Status,
    unresolvable,
    unschedulable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "DefaultPreemption"
NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_VICTIMS: Final = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER: Final = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING: Final = "not eligible due to a terminating pod on the nominated node."
PREEMPTED_REASON: Final = "Preempted"
PREEMPTED_MESSAGE: Final = "Preempted by pod {uid} on node {node}"
DISRUPTION_REASON: Final = "PreemptionByScheduler"
DISRUPTION_MESSAGE: Final = "{scheduler}: preempting to accommodate a higher priority pod"


@dataclass(frozen=True, slots=True)
class Candidate:
    node: str
    victims: tuple[PodInfo, ...]
    order: int  # position in the node list, the last tie-breaker

    def rank(self) -> tuple[int, int, int, str, int]:
        highest = max(v.priority for v in self.victims)
        # Kubernetes adds MaxInt32+1 to each priority so that negative ones still add up.
        total = sum(v.priority + 2**31 for v in self.victims)
        newest = max((v.created for v in self.victims if v.priority == highest), default="")
        return (highest, total, len(self.victims), _inverted(newest), self.order)


def _inverted(timestamp: str) -> str:
    """A key that sorts later timestamps first (RFC 3339 strings sort by time)."""
    return "".join(chr(0x10FFFF - ord(c)) for c in timestamp)


def _fit_message(num_nodes: int, statuses: Mapping[str, Status]) -> str:
    counts: Counter[str] = Counter()
    for status in statuses.values():
        counts.update(status.reasons)
    reasons = ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
    return f"preemption: 0/{num_nodes} nodes are available: {reasons}."


class DefaultPreemption:
    name = NAME

    def __init__(self, handle: Handle) -> None:
        self._handle = handle

    @property
    def framework(self) -> Framework:
        fw = self._handle.extras.get("framework")
        assert isinstance(fw, Framework), "the framework registers itself in the handle"
        return fw

    def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> PostFilterResult:
        cluster = self._handle.cluster
        if pod.preemption_never:
            return PostFilterResult(unschedulable(NAME, "preemption: " + NOT_ELIGIBLE_NEVER))
        nominated = cluster.node(pod.nominated_node) if pod.nominated_node else None
        if nominated is not None and any(
            p.deleting and p.priority < pod.priority for p in nominated.pods.values()
        ):
            return PostFilterResult(unschedulable(NAME, "preemption: " + NOT_ELIGIBLE_TERMINATING))
        nodes = cluster.node_list()
        outcome: dict[str, Status] = {}
        candidates: list[Candidate] = []
        not_helpful = unresolvable(NAME, NOT_HELPFUL)
        for order, node in enumerate(nodes):
            status = statuses.get(node.name)
            if status is None or status.code != Code.UNSCHEDULABLE:
                outcome[node.name] = not_helpful
                continue
            victims, why = self.select_victims(state, pod, node)
            if victims:
                candidates.append(Candidate(node.name, victims, order))
            else:
                outcome[node.name] = why or unresolvable(NAME, NO_VICTIMS)
        if not candidates:
            return PostFilterResult(unschedulable(NAME, _fit_message(len(nodes), outcome)))
        best = min(candidates, key=Candidate.rank)
        return PostFilterResult(None, best.node, best.victims)

    def select_victims(
        self, state: CycleState, pod: PodInfo, node: NodeInfo
    ) -> tuple[tuple[PodInfo, ...], Status | None]:
        """The fewest, least important pods to evict from ``node`` for ``pod`` to fit
        (none, with the reason, if evicting every lower-priority pod is not enough)."""
        fw = self.framework
        lower = [p for p in node.pods.values() if p.priority < pod.priority]
        if not lower:
            return (), unresolvable(NAME, NO_VICTIMS)
        what_if = node.clone()
        trial = state.clone()
        for victim in lower:
            what_if.remove_pod(victim.key)
            fw.run_remove_pod(trial, pod, victim, what_if)
        status = fw.run_filters_with_nominated(trial, pod, what_if)
        if status is not None:
            return (), status
        # Most important first: priority, then the longest running.
        lower.sort(key=lambda p: (-p.priority, p.created))
        victims = []
        for candidate in lower:
            what_if.add_pod(candidate)
            fw.run_add_pod(trial, pod, candidate, what_if)
            if fw.run_filters_with_nominated(trial, pod, what_if) is not None:
                what_if.remove_pod(candidate.key)
                fw.run_remove_pod(trial, pod, candidate, what_if)
                victims.append(candidate)
        return tuple(victims), None


def new(args: Mapping[str, Any], handle: Handle) -> DefaultPreemption:
    return DefaultPreemption(handle)
