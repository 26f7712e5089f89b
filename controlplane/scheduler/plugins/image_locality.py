"""ImageLocality: prefer nodes that already hold the pod's images, so nothing is pulled
over a home network onto an SD card (bramble's data-locality score). As Kubernetes: the
sizes of the images present, each scaled by the share of nodes that have it (an image
every node has says little), between 23 MB and 1000 MB per container."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Final

from controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    ClusterEvent,
    ClusterView,
    CycleState,
    Handle,
    Status,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "ImageLocality"
MB: Final = 1024 * 1024
MIN_THRESHOLD: Final = 23 * MB
MAX_CONTAINER_THRESHOLD: Final = 1000 * MB


class ImageLocality:
    name = NAME

    def __init__(self, cluster: ClusterView) -> None:
        self._cluster = cluster

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset()  # scoring only

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        cluster = self._cluster
        spread = {image: cluster.nodes_with_image(image) for image in pod.images}
        if not any(spread.values()):
            return SKIP
        spec = pod.spec
        containers = len(spec.get("containers") or []) + len(spec.get("initContainers") or [])
        state.data[NAME] = (spread, max(1, len(cluster.node_list())), max(1, containers))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        spread: dict[str, int]
        total_nodes: int
        containers: int
        spread, total_nodes, containers = state.data[NAME]
        held = node.images
        total = 0
        for image, count in spread.items():
            size = held.get(image)
            if size:
                total += size * count // total_nodes
        high = MAX_CONTAINER_THRESHOLD * containers
        total = min(max(total, MIN_THRESHOLD), high)
        return MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (high - MIN_THRESHOLD)

    def sign_score(self, state: CycleState, pod: PodInfo) -> Hashable:
        # the images and how many nodes hold each (PreScore's count of the whole cluster)
        spread, total_nodes, containers = state.data[NAME]
        return tuple(spread.items()), total_nodes, containers


def new(args: Mapping[str, Any], handle: Handle) -> ImageLocality:
    return ImageLocality(handle.cluster)
