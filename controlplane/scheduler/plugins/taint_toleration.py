"""TaintToleration: a pod lands only on nodes whose NoSchedule and NoExecute taints it
tolerates (the node's own taints and those its conditions imply, see ``nodeinfo``), and
prefers nodes with fewer untolerated PreferNoSchedule taints."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler import terms
from controlplane.scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
    default_normalize,
    unresolvable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "TaintToleration"
ERR_REASON_UNTOLERATED: Final = "node(s) had untolerated taint {}"  # the taint as {key: value}
_FILTER_EFFECTS: Final = (terms.NO_SCHEDULE, terms.NO_EXECUTE)


def reason(taint: terms.Taint) -> str:
    return ERR_REASON_UNTOLERATED.format(taint)


class TaintToleration:
    name = NAME

    def __init__(self) -> None:
        self._rejections: dict[terms.Taint, Status] = {}

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset(
            {ClusterEvent.NODE_ADD, ClusterEvent.NODE_TAINT, ClusterEvent.NODE_CONDITION}
        )

    def passes_all(self, node: NodeInfo) -> bool:
        return not any(t.effect in _FILTER_EFFECTS for t in node.taints)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for taint in node.taints:
            if taint.effect in _FILTER_EFFECTS and not terms.tolerated(taint, pod.tolerations):
                status = self._rejections.get(taint)
                if status is None:
                    status = self._rejections[taint] = unresolvable(NAME, reason(taint))
                return status
        return None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.tolerations

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        for n in nodes:
            if n.taints and any(t.effect == terms.PREFER_NO_SCHEDULE for t in n.taints):
                break
        else:
            return SKIP
        state.data[NAME] = tuple(
            t for t in pod.tolerations if t.effect in ("", terms.PREFER_NO_SCHEDULE)
        )
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        tolerations = state.data.get(NAME, ())
        return sum(
            1
            for t in node.taints
            if t.effect == terms.PREFER_NO_SCHEDULE and not terms.tolerated(t, tolerations)
        )

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores, reverse=True)


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    return TaintToleration()
