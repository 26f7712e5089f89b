"""NodeAffinity: ``spec.nodeSelector`` (every label equal) and the required node
affinity (terms ORed; In, NotIn, Exists, DoesNotExist, Gt, Lt on labels; In/NotIn on
``metadata.name``) must match the node; the preferred terms score it (the sum of the
matching terms' weights, normalized to 0..100).

Args: ``addedAffinity`` (a NodeAffinity the scheduler enforces on every pod, as
Kubernetes' argument of that name; its failures read "node(s) didn't match
scheduler-enforced node affinity").
"""

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

NAME: Final = "NodeAffinity"
ERR_REASON_POD: Final = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED: Final = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_MALFORMED: Final = "Pod's node affinity cannot be used: {}"
_REJECT: Final = unresolvable(NAME, ERR_REASON_POD)
_REJECT_ENFORCED: Final = unresolvable(NAME, ERR_REASON_ENFORCED)


class NodeAffinity:
    name = NAME

    def __init__(
        self,
        *,
        added_required: terms.NodeSelector | None = None,
        added_preferred: tuple[terms.PreferredTerm, ...] = (),
    ) -> None:
        self.added_required = added_required
        self.added_preferred = added_preferred

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL})

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        problem = pod.errors.get("nodeAffinity")
        if problem:
            return unresolvable(NAME, ERR_REASON_MALFORMED.format(problem))
        if (
            not pod.node_selector
            and pod.required_node_affinity is None
            and self.added_required is None
        ):
            return SKIP
        return None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        labels = node.labels
        if self.added_required is not None and not self.added_required.matches(node.name, labels):
            return _REJECT_ENFORCED
        for key, value in pod.node_selector.items():
            if labels.get(key) != value:
                return _REJECT
        required = pod.required_node_affinity
        if required is not None and not required.matches(node.name, labels):
            return _REJECT
        return None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable:
        return frozenset(pod.node_selector.items()), pod.required_node_affinity

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        if not pod.preferred_node_affinity and not self.added_preferred:
            return SKIP
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        total = 0
        for preferred in (*self.added_preferred, *pod.preferred_node_affinity):
            if preferred.term.matches(node.name, node.labels):
                total += preferred.weight
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        default_normalize(scores)


def new(args: Mapping[str, Any], handle: Handle) -> NodeAffinity:
    added = args.get("addedAffinity")
    if not added:
        return NodeAffinity()
    path = "addedAffinity"
    required_raw = added.get("requiredDuringSchedulingIgnoredDuringExecution")
    required = (
        terms.parse_node_selector(
            required_raw, f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
        )
        if required_raw is not None
        else None
    )
    preferred = terms.parse_preferred_terms(
        added.get("preferredDuringSchedulingIgnoredDuringExecution"),
        f"{path}.preferredDuringSchedulingIgnoredDuringExecution",
    )
    return NodeAffinity(added_required=required, added_preferred=preferred)


def pod_matches_node_affinity(pod: PodInfo, node: NodeInfo) -> bool:
    """The pod's own nodeSelector and required node affinity (for other plugins)."""
    labels = node.labels
    for key, value in pod.node_selector.items():
        if labels.get(key) != value:
            return False
    required = pod.required_node_affinity
    return required is None or required.matches(node.name, labels)
