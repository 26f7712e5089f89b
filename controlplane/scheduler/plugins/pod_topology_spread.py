"""PodTopologySpread: ``topologySpreadConstraints``, as Kubernetes' plugin of that name.

For each constraint the pods of the pod's namespace that match its ``labelSelector``
(and are not terminating) are counted per domain (the values of ``topologyKey``) over
the nodes that have every key of the pod's constraints and, with the default policies,
match the pod's node selector/affinity (``nodeAffinityPolicy: Honor``) while taints are
ignored (``nodeTaintsPolicy: Ignore``).

* ``DoNotSchedule`` (Filter): placing the pod in the node's domain may not make
  ``count + self - min`` exceed ``maxSkew``, where ``min`` is the lowest count of any
  domain (0 while there are fewer domains than ``minDomains``). A node without the
  topology key fails ("missing required label").
* ``ScheduleAnyway`` (Score): fewer matching pods in the node's domain scores higher,
  each constraint weighted by log(domains + 2).

A pod with no constraints at all that belongs to a controller (a ReplicaSet, a Job...)
is spread softly by default, as Kubernetes' system default constraints do: by hostname
(maxSkew 3) and by zone (maxSkew 5), counting the pods of the same controller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from api.selectors import LabelSelector
from controlplane.scheduler import terms
from controlplane.scheduler.domain_index import spread_counts, spread_identity
from controlplane.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    ClusterEvent,
    ClusterView,
    CycleState,
    Handle,
    Status,
    unresolvable,
    unschedulable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.plugins.node_affinity import pod_matches_node_affinity
from controlplane.scheduler.podinfo import PodInfo

NAME: Final = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH: Final = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH: Final = (
    ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"
)
ERR_REASON_MALFORMED: Final = "Pod's topology spread constraints cannot be used: {}"
ZONE: Final = "topology.kubernetes.io/zone"
_SKEW: Final = unschedulable(NAME, ERR_REASON_CONSTRAINTS_NOT_MATCH)
_MISSING: Final = unresolvable(NAME, ERR_REASON_NODE_LABEL_NOT_MATCH)
_SCORE_KEY: Final = NAME + "/score"


def default_constraints(owner_uid: str) -> tuple[terms.SpreadConstraint, ...]:
    anyone = LabelSelector()
    return (
        terms.SpreadConstraint(3, terms.HOSTNAME, False, anyone, owner_uid=owner_uid),
        terms.SpreadConstraint(5, ZONE, False, anyone, owner_uid=owner_uid),
    )


def _count(node: NodeInfo, c: terms.SpreadConstraint, namespace: str) -> int:
    n = 0
    for other in node.pods.values():
        if spread_counts(namespace, c, other):
            n += 1
    return n


def _eligible(pod: PodInfo, node: NodeInfo, c: terms.SpreadConstraint) -> bool:
    if c.honor_node_affinity and not pod_matches_node_affinity(pod, node):
        return False
    if c.honor_node_taints:
        for taint in node.taints:
            if taint.effect in (terms.NO_SCHEDULE, terms.NO_EXECUTE) and not terms.tolerated(
                taint, pod.tolerations
            ):
                return False
    return True


def _always_eligible(pod: PodInfo, c: terms.SpreadConstraint) -> bool:
    """Whether ``_eligible`` says yes for every node (the default policies, a pod without
    a node selector or required node affinity): the loop then need not ask."""
    selects = bool(pod.node_selector) or pod.required_node_affinity is not None
    return not (c.honor_node_affinity and selects) and not c.honor_node_taints


@dataclass(slots=True)
class _FilterState:
    constraints: tuple[terms.SpreadConstraint, ...]
    counts: list[dict[str, int]]
    keys: frozenset[str]
    own: list[int]  # 1 where the pod itself matches the constraint: it counts once placed
    _mins: list[int | None] = field(default_factory=list)

    def minimum(self, i: int) -> int:
        if not self._mins:
            self._mins = [None] * len(self.constraints)
        cached = self._mins[i]
        if cached is None:
            values = self.counts[i]
            if len(values) < self.constraints[i].min_domains:
                cached = 0
            else:
                cached = min(values.values(), default=0)
            self._mins[i] = cached
        return cached

    def bump(self, i: int, value: str, delta: int) -> None:
        self.counts[i][value] = self.counts[i].get(value, 0) + delta
        self._mins = []

    def clone(self) -> _FilterState:
        return _FilterState(self.constraints, [dict(c) for c in self.counts], self.keys, self.own)


@dataclass(slots=True)
class _ScoreState:
    constraints: tuple[terms.SpreadConstraint, ...]
    counts: list[Mapping[str, int]]  # the cache's own, for some: not to be changed
    weights: list[float]
    ignored: set[str]
    ids: list[int]  # PodTopologySpread._count_id of each constraint


class PodTopologySpread:
    name = NAME

    def __init__(self, cluster: ClusterView, *, system_defaults: bool = True) -> None:
        self._cluster = cluster
        self.system_defaults = system_defaults
        # Matching pods per node, per (namespace, what a constraint matches), as of the
        # node's generation: spreading a Deployment's pods asks the same counts of
        # every node for every pod, and between two pods only the node that took the
        # last one has changed (kube-scheduler recounts every node each cycle).
        # What a count depends on (namespace, owner or selector) is numbered once per
        # cycle, so the per-node lookups hash a small int, not a selector.
        self._counted: dict[str, tuple[int, dict[int, int]]] = {}
        self._count_ids: dict[tuple[str, str, LabelSelector | None], int] = {}

    def _count_id(self, c: terms.SpreadConstraint, namespace: str) -> int:
        key = spread_identity(namespace, c)
        found = self._count_ids.get(key)
        if found is None:
            if len(self._count_ids) > 4096:  # selectors of pods long gone
                self._count_ids.clear()
                self._counted.clear()
            found = self._count_ids[key] = len(self._count_ids)
        return found

    def _count(self, node: NodeInfo, c: terms.SpreadConstraint, namespace: str, cid: int) -> int:
        memo = self._counted.get(node.name)
        if memo is None or memo[0] != node.generation:
            memo = self._counted[node.name] = (node.generation, {})
        count = memo[1].get(cid)
        if count is None:
            count = memo[1][cid] = _count(node, c, namespace)
        return count

    def _forget_gone_nodes(self, nodes: Sequence[NodeInfo]) -> None:
        if len(self._counted) > 2 * len(nodes) + 64:
            names = {n.name for n in nodes}
            self._counted = {k: v for k, v in self._counted.items() if k in names}

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({
            ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL, ClusterEvent.NODE_TAINT,
            ClusterEvent.ASSIGNED_POD_ADD, ClusterEvent.ASSIGNED_POD_UPDATE,
            ClusterEvent.ASSIGNED_POD_DELETE,
        })  # fmt: skip

    # --- filtering -----------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        problem = pod.errors.get("topologySpreadConstraints")
        if problem:
            return unresolvable(NAME, ERR_REASON_MALFORMED.format(problem))
        constraints = tuple(c for c in pod.spread_constraints if c.hard)
        if not constraints:
            return SKIP
        keys = frozenset(c.topology_key for c in constraints)
        own = [1 if c.matches(pod.labels, pod.owner_uid) else 0 for c in constraints]
        self._forget_gone_nodes(nodes)
        namespace = pod.namespace
        counts: list[dict[str, int]] = []
        # The constraints whose eligible nodes depend on the pod, with their domains'
        # counts and count ids: those are counted here, node by node.
        plan = []
        for c in constraints:
            if _always_eligible(pod, c):  # counted by the cache (domain_index.py)
                domains = self._cluster.spread_domains(namespace, c, keys)
                counted = dict.fromkeys(domains.nodes, 0)
                counted.update(domains.pods)
            else:
                counted = {}
                plan.append((counted, c, self._count_id(c, namespace)))
            counts.append(counted)
        for node in nodes if plan else ():  # every node of the cluster, for every pod
            labels = node.labels
            if not keys <= labels.keys():
                continue
            for domain, c, cid in plan:
                if _eligible(pod, node, c):
                    value = labels[c.topology_key]
                    domain[value] = domain.get(value, 0) + self._count(node, c, namespace, cid)
        state.data[NAME] = _FilterState(constraints, counts, keys, own)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, removed, node, -1)

    def _update(
        self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int
    ) -> None:
        st = state.data.get(NAME)
        if not isinstance(st, _FilterState) or other.namespace != pod.namespace:
            return
        if not all(k in node.labels for k in st.keys):
            return
        for i, c in enumerate(st.constraints):
            if c.matches(other.labels, other.owner_uid) and _eligible(pod, node, c):
                st.bump(i, node.labels[c.topology_key], delta)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st = state.data.get(NAME)
        if not isinstance(st, _FilterState):
            return None
        labels = node.labels
        for i, c in enumerate(st.constraints):
            value = labels.get(c.topology_key)
            if value is None:
                return _MISSING
            if st.counts[i].get(value, 0) + st.own[i] - st.minimum(i) > c.max_skew:
                return _SKEW
        return None

    # --- scoring -------------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        if pod.errors.get("topologySpreadConstraints"):
            return SKIP
        constraints = tuple(c for c in pod.spread_constraints if not c.hard)
        defaulted = False
        if not pod.spread_constraints and self.system_defaults and pod.owner_uid:
            constraints, defaulted = default_constraints(pod.owner_uid), True
        if not constraints:
            return SKIP
        keys = [c.topology_key for c in constraints]
        all_keys = frozenset(keys)
        ignored: set[str] = set()
        domains: list[set[str]] = [set() for _ in constraints]
        for node in nodes:
            labels = node.labels
            if not defaulted and not all_keys <= labels.keys():
                ignored.add(node.name)
                continue
            for i, key in enumerate(keys):
                if key in labels:
                    domains[i].add(labels[key])
        weights = [
            math.log((len(nodes) if key == terms.HOSTNAME else len(domains[i])) + 2)
            for i, key in enumerate(keys)
        ]
        namespace = pod.namespace
        counts: list[Mapping[str, int]] = []
        ids = [self._count_id(c, namespace) for c in constraints]
        # (its domains' counts, constraint, its domains, count id) for the constraints
        # counted per domain here, node by node: by hostname a node's own count is its
        # score, and where every node is eligible the cache counts (domain_index.py).
        plan = []
        for i, c in enumerate(constraints):
            if c.topology_key != terms.HOSTNAME and _always_eligible(pod, c):
                keys_of = frozenset({c.topology_key}) if defaulted else all_keys
                counts.append(self._cluster.spread_domains(namespace, c, keys_of).pods)
            else:
                counted: dict[str, int] = {}
                counts.append(counted)
                if c.topology_key != terms.HOSTNAME:
                    plan.append((counted, c, domains[i], ids[i]))
        if plan:
            for node in self._cluster.node_list():
                labels = node.labels
                if not defaulted and not all_keys <= labels.keys():
                    continue
                for domain, c, known, cid in plan:
                    value = labels.get(c.topology_key)
                    if value is None or value not in known:
                        continue
                    if _eligible(pod, node, c):
                        domain[value] = domain.get(value, 0) + self._count(node, c, namespace, cid)
        state.data[_SCORE_KEY] = _ScoreState(constraints, counts, weights, ignored, ids)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        st: _ScoreState = state.data[_SCORE_KEY]
        if node.name in st.ignored:
            return -1  # lacks a topology key: normalized to 0, the worst
        total = 0.0
        for i, c in enumerate(st.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == terms.HOSTNAME:
                count = self._count(node, c, pod.namespace, st.ids[i])
            else:
                count = st.counts[i].get(value, 0)
            total += count * st.weights[i] + (c.max_skew - 1)
        return round(total)

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        valid = [s for s in scores if s >= 0]
        low, high = min(valid, default=0), max(valid, default=0)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif high == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (high + low - s) // high


def new(args: Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    defaulting = args.get("defaultingType", "System")
    if defaulting not in ("System", "List"):
        raise ValueError(f"defaultingType {defaulting!r}: use System or List")
    return PodTopologySpread(handle.cluster, system_defaults=defaulting == "System")
