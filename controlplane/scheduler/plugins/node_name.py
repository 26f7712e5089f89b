"""NodeName: a pod that names its node (``spec.nodeName``) fits only there."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
    unresolvable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "NodeName"
ERR_REASON: Final = "node(s) didn't match the requested node name"
_REJECT: Final = unresolvable(NAME, ERR_REASON)


class NodeName:
    name = NAME

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD})

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        return None if pod.node_name else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if not pod.node_name or pod.node_name == node.name else _REJECT

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.node_name


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
