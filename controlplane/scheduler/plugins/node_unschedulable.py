"""NodeUnschedulable: a cordoned node (``spec.unschedulable``) takes no new pods, unless
the pod tolerates the ``node.kubernetes.io/unschedulable`` NoSchedule taint."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Final

from controlplane.scheduler import terms
from controlplane.scheduler.framework import ClusterEvent, CycleState, Handle, Status, unresolvable
from controlplane.scheduler.nodeinfo import UNSCHEDULABLE_TAINT, NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE: Final = "node(s) were unschedulable"
_REJECT: Final = unresolvable(NAME, ERR_REASON_UNSCHEDULABLE)
_TAINT: Final = terms.Taint(UNSCHEDULABLE_TAINT, "", terms.NO_SCHEDULE)


class NodeUnschedulable:
    name = NAME

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_SCHEDULABLE})

    def passes_all(self, node: NodeInfo) -> bool:
        return not node.unschedulable

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.unschedulable or terms.tolerated(_TAINT, pod.tolerations):
            return None
        return _REJECT

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.tolerations


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
