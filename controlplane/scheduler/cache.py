"""The scheduler's cache: every node and the pods on it, including *assumed* pods (k8s
``internal/cache``).

The informers feed it (nodes, bound pods, namespaces); the scheduler adds its own
decisions the moment it makes them (``assume``), before the binding is written, so the
next pod already sees the room taken. The informer's copy of a bound pod later
*confirms* the assumption (``add_pod``); a failed binding *forgets* it.

    state of a pod key      how it got there                  leaves by
    assumed                 assume(pod, node)                 add_pod (confirmed) / forget
    bound                   add_pod from the informer         remove_pod

A pod bound to a node the cache does not know yet is kept on a placeholder NodeInfo
that is not offered for scheduling until the Node arrives; a deleted node whose pods are
still around stays as such a placeholder until they are gone.

There is no snapshot copy as in Kubernetes: a scheduling cycle is synchronous, so
nothing changes the cache while it runs, and plugins read it directly
(``framework.ClusterView``). Terminated pods (Succeeded, Failed) hold no resources and
are not kept. Where the pods are, counted per topology domain for pod affinity and
topology spread, is kept current here too (domain_index.py): the cache tells it of every
pod and node that comes, goes or changes labels.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.scheduler.domain_index import DomainIndex, Kind, Pair, SpreadDomains, Terms
from controlplane.scheduler.framework import ClusterEvent
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.terms import AffinityTerm, SpreadConstraint

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class Cache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._list: list[NodeInfo] | None = []
        self._pods: dict[str, tuple[PodInfo, str]] = {}  # key -> (pod, node name)
        self._assumed: set[str] = set()
        self._image_nodes: dict[str, int] = {}
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._domains = DomainIndex(self.node_list, self.namespace_labels)

    # --- ClusterView -------------------------------------------------------------------

    def node_list(self) -> Sequence[NodeInfo]:
        """The nodes pods may be placed on (with a Node object), in a stable order."""
        if self._list is None:
            self._list = [n for n in self._nodes.values() if n.node is not None]
        return self._list

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return self._namespaces.get(namespace, {})

    def nodes_with_image(self, image: str) -> int:
        return self._image_nodes.get(image, 0)

    def carried_terms(self, kind: Kind) -> Mapping[AffinityTerm, Counter[Pair]]:
        return self._domains.carried(kind)

    def domains_matching(self, terms: Terms) -> Counter[Pair]:
        return self._domains.matching(terms)

    def spread_domains(
        self, namespace: str, c: SpreadConstraint, keys: frozenset[str]
    ) -> SpreadDomains:
        return self._domains.spread(namespace, c, keys)

    # --- nodes -------------------------------------------------------------------------

    def add_node(self, node: Obj) -> frozenset[ClusterEvent]:
        """Add or update a Node; returns what changed, as cluster events."""
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        old = (
            (info.labels, info.allocatable, info.taints, info.conditions, info.unschedulable,
             info.images)
            if info.node is not None else None
        )  # fmt: skip
        if info.node is not None:
            self._count_images(info, -1)
        was_listed = info.node is not None
        info.set_node(node)
        self._count_images(info, +1)
        if not was_listed:
            self._list = None
            self._count_node(info, info.labels, 1)
            return frozenset({ClusterEvent.NODE_ADD})
        assert old is not None
        labels, allocatable, taints, conditions, unschedulable, images = old
        events = set()
        if labels != info.labels:
            events.add(ClusterEvent.NODE_LABEL)
            self._count_node(info, labels, -1)
            self._count_node(info, info.labels, 1)
        if allocatable != info.allocatable:
            events.add(ClusterEvent.NODE_ALLOCATABLE)
        if taints != info.taints:
            events.add(ClusterEvent.NODE_TAINT)
        if conditions != info.conditions:
            events.add(ClusterEvent.NODE_CONDITION)
        if unschedulable != info.unschedulable:
            events.add(ClusterEvent.NODE_SCHEDULABLE)
        if images != info.images:
            events.add(ClusterEvent.NODE_IMAGES)
        return frozenset(events)

    def remove_node(self, name: str) -> None:
        info = self._nodes.get(name)
        if info is None:
            return
        if info.node is not None:
            self._count_images(info, -1)
            self._count_node(info, info.labels, -1)
        info.node = None
        self._list = None
        if not info.pods:
            del self._nodes[name]

    def _count_node(self, info: NodeInfo, labels: Mapping[str, str], delta: int) -> None:
        """The node listed (delta 1) or delisted (-1) with ``labels``, as the domain
        index counts it."""
        self._domains.count_node(labels, delta)
        for pod in info.pods.values():
            self._domains.count(pod, labels, delta)

    def _count_images(self, info: NodeInfo, delta: int) -> None:
        for image in info.images:
            count = self._image_nodes.get(image, 0) + delta
            if count > 0:
                self._image_nodes[image] = count
            else:
                self._image_nodes.pop(image, None)

    # --- namespaces --------------------------------------------------------------------

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> bool:
        """Record a namespace's labels (None: deleted); True if they changed."""
        old = self._namespaces.get(name)
        if labels is None:
            self._namespaces.pop(name, None)
        else:
            self._namespaces[name] = labels
        if old == labels:
            return False
        self._domains.namespaces_changed()
        return True

    # --- pods --------------------------------------------------------------------------

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def pod_node(self, key: str) -> str:
        entry = self._pods.get(key)
        return entry[1] if entry is not None else ""

    def pod(self, key: str) -> PodInfo | None:
        entry = self._pods.get(key)
        return entry[0] if entry is not None else None

    def pod_count(self) -> int:
        return len(self._pods)

    def assume(self, pod: PodInfo, node: str) -> None:
        """The scheduler chose ``node`` for ``pod``: count it there now."""
        if pod.key in self._pods:
            raise ValueError(f"pod {pod.key} is already in the cache")
        self._place(pod, node)
        self._assumed.add(pod.key)

    def forget(self, key: str) -> None:
        """An assumption that did not hold (the binding failed)."""
        if key in self._assumed:
            self._assumed.discard(key)
            self._unplace(key)

    def add_pod(self, pod: PodInfo) -> None:
        """A bound pod, seen by the informer; confirms an assumption."""
        if pod.key in self._pods:
            self._unplace(pod.key)
        self._assumed.discard(pod.key)
        self._place(pod, pod.node_name)

    def update_pod(self, pod: PodInfo) -> None:
        self.add_pod(pod)

    def remove_pod(self, key: str) -> None:
        self._assumed.discard(key)
        self._unplace(key)

    def _place(self, pod: PodInfo, node: str) -> None:
        info = self._nodes.get(node)
        if info is None:
            info = self._nodes[node] = NodeInfo(node)
        info.add_pod(pod)
        self._pods[pod.key] = (pod, node)
        if info.node is not None:
            self._domains.count(pod, info.labels, 1)

    def _unplace(self, key: str) -> None:
        entry = self._pods.pop(key, None)
        if entry is None:
            return
        _, node = entry
        info = self._nodes.get(node)
        if info is None:
            return
        pod = info.remove_pod(key)
        if pod is not None and info.node is not None:
            self._domains.count(pod, info.labels, -1)
        if info.node is None and not info.pods:
            del self._nodes[node]
