"""NodePorts: two pods cannot take the same host port (protocol and port, on the same
host IP or on 0.0.0.0) of one node."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    SKIP,
    ClusterEvent,
    CycleState,
    Handle,
    Status,
    unschedulable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "NodePorts"
ERR_REASON: Final = "node(s) didn't have free ports for the requested pod ports"
_REJECT: Final = unschedulable(NAME, ERR_REASON)
_ANY: Final = "0.0.0.0"


class NodePorts:
    name = NAME

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.ASSIGNED_POD_DELETE})

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        return None if pod.host_ports else SKIP

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for protocol, ip, port in pod.host_ports:
            taken = node.used_ports.get((protocol, port))
            if taken and (ip == _ANY or _ANY in taken or ip in taken):
                return _REJECT
        return None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return pod.host_ports


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    return NodePorts()
