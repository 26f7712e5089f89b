"""InterPodAffinity: pod affinity and anti-affinity, required and preferred, over
topology domains (``topologyKey``: a node label such as ``kubernetes.io/hostname`` or
``topology.kubernetes.io/zone``), as Kubernetes' plugin of that name.

PreFilter counts, per (topology key, value), reading the counts the cache keeps
(domain_index.py) rather than walking every placed pod:

* ``existing_anti``: pods already placed whose required anti-affinity matches the
  incoming pod (it may not join their domain);
* ``affinity``: placed pods matching *all* the incoming pod's required affinity terms;
* ``anti``: placed pods matching each of its required anti-affinity terms.

Filter then looks up the node's own label values. A node lacking a required affinity
term's topology key fails it; the first pod of a group whose affinity names itself may
land anywhere (else it could never start). Affinity failures are unresolvable (evicting
pods never creates a match), anti-affinity ones may be resolved by preemption.

Scoring sums, per domain, +weight for preferred affinity and -weight for preferred
anti-affinity in both directions (the incoming pod's terms matching placed pods, and
placed pods' terms matching the incoming pod; a placed pod's *required* affinity counts
``hardPodAffinityWeight``, 1 by default), then scales to 0..100 between the lowest and
highest node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from controlplane.scheduler.domain_index import Kind, Pair, bump
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
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.terms import AffinityTerm

NAME: Final = "InterPodAffinity"
ERR_REASON_EXISTING_ANTI_AFFINITY: Final = (
    "node(s) didn't satisfy existing pods anti-affinity rules"
)
ERR_REASON_AFFINITY: Final = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY: Final = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_MALFORMED: Final = "Pod's pod affinity cannot be used: {}"
_AFFINITY: Final = unresolvable(NAME, ERR_REASON_AFFINITY)
_ANTI: Final = unschedulable(NAME, ERR_REASON_ANTI_AFFINITY)
_EXISTING: Final = unschedulable(NAME, ERR_REASON_EXISTING_ANTI_AFFINITY)
# The terms of placed pods that score an incoming pod.
_SCORED: Final = (Kind.REQUIRED_AFFINITY, Kind.PREFERRED_AFFINITY, Kind.PREFERRED_ANTI_AFFINITY)


@dataclass(slots=True)
class _FilterState:
    existing_anti: Counter[Pair] = field(default_factory=Counter)
    affinity: Counter[Pair] = field(default_factory=Counter)
    anti: Counter[Pair] = field(default_factory=Counter)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    existing_keys: set[str] = field(default_factory=set)  # the topology keys of existing_anti

    def clone(self) -> _FilterState:
        return _FilterState(
            Counter(self.existing_anti), Counter(self.affinity), Counter(self.anti),
            self.namespace_labels, set(self.existing_keys),
        )  # fmt: skip


@dataclass(slots=True)
class _ScoreState:
    scores: Counter[Pair]  # the weights summed per domain
    keys: frozenset[str]  # their topology keys


def _add(scores: Counter[Pair], counts: Mapping[Pair, int], weight: int) -> None:
    for pair, n in counts.items():
        scores[pair] += weight * n


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo, ns_labels: Mapping[str, str]) -> bool:
    return bool(terms) and all(t.matches(pod.namespace, pod.labels, ns_labels) for t in terms)


class InterPodAffinity:
    name = NAME

    def __init__(self, cluster: ClusterView, *, hard_pod_affinity_weight: int = 1,
                 ignore_preferred_terms_of_existing_pods: bool = False) -> None:  # fmt: skip
        if not 0 <= hard_pod_affinity_weight <= 100:
            raise ValueError("hardPodAffinityWeight must be in the range 0-100")
        self._cluster = cluster
        self.hard_weight = hard_pod_affinity_weight
        self.ignore_existing_preferred = ignore_preferred_terms_of_existing_pods

    def events(self) -> frozenset[ClusterEvent]:
        return frozenset({
            ClusterEvent.NODE_ADD, ClusterEvent.NODE_LABEL, ClusterEvent.ASSIGNED_POD_ADD,
            ClusterEvent.ASSIGNED_POD_UPDATE, ClusterEvent.ASSIGNED_POD_DELETE,
            ClusterEvent.NAMESPACE_CHANGE,
        })  # fmt: skip

    # --- filtering -----------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        problem = pod.errors.get("podAffinity")
        if problem:
            return unresolvable(NAME, ERR_REASON_MALFORMED.format(problem))
        cluster = self._cluster
        ns_labels = cluster.namespace_labels(pod.namespace)
        st = _FilterState(namespace_labels=ns_labels)
        for term, counts in self._carried(Kind.REQUIRED_ANTI_AFFINITY, pod, ns_labels):
            st.existing_anti.update(counts)
            st.existing_keys.add(term.topology_key)
        if pod.required_affinity:
            st.affinity.update(cluster.domains_matching(pod.required_affinity))
        for term in pod.required_anti_affinity:
            st.anti.update(cluster.domains_matching((term,)))
        if not (pod.required_affinity or pod.required_anti_affinity or st.existing_anti):
            return SKIP
        state.data[NAME] = st
        return None

    def _carried(
        self, kind: Kind, pod: PodInfo, ns_labels: Mapping[str, str]
    ) -> Iterator[tuple[AffinityTerm, Counter[Pair]]]:
        """The terms of this kind that placed pods carry and that select ``pod``, with
        the domains of those pods."""
        for term, counts in self._cluster.carried_terms(kind).items():
            if term.matches(pod.namespace, pod.labels, ns_labels):
                yield term, counts

    def _count_incoming(
        self,
        st: _FilterState,
        pod: PodInfo,
        existing: PodInfo,
        labels: Mapping[str, str],
        delta: int,
    ) -> None:
        ns = self._cluster.namespace_labels(existing.namespace)
        if _matches_all(pod.required_affinity, existing, ns):
            for term in pod.required_affinity:
                bump(st.affinity, term.topology_key, labels, delta)
        for term in pod.required_anti_affinity:
            if term.matches(existing.namespace, existing.labels, ns):
                bump(st.anti, term.topology_key, labels, delta)

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, added, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo) -> None:
        self._update(state, pod, removed, node, -1)

    def _update(
        self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo, delta: int
    ) -> None:
        st = state.data.get(NAME)
        if not isinstance(st, _FilterState):
            return
        for term in other.required_anti_affinity:
            if term.matches(pod.namespace, pod.labels, st.namespace_labels):
                bump(st.existing_anti, term.topology_key, node.labels, delta)
                st.existing_keys.add(term.topology_key)
        self._count_incoming(st, pod, other, node.labels, delta)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st = state.data.get(NAME)
        if not isinstance(st, _FilterState):
            return None
        labels = node.labels
        if pod.required_affinity and not self._satisfies_affinity(st, pod, labels):
            return _AFFINITY
        for term in pod.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and st.anti.get((term.topology_key, value), 0) > 0:
                return _ANTI
        if st.existing_anti:
            existing = st.existing_anti
            for key in st.existing_keys:
                value = labels.get(key)
                if value is not None and existing.get((key, value), 0) > 0:
                    return _EXISTING
        return None

    def _satisfies_affinity(
        self, st: _FilterState, pod: PodInfo, labels: Mapping[str, str]
    ) -> bool:
        exists = True
        for term in pod.required_affinity:
            value = labels.get(term.topology_key)
            if value is None:
                return False  # every topology key must be on the node
            if st.affinity.get((term.topology_key, value), 0) <= 0:
                exists = False
        if exists:
            return True
        # The first pod of a group with affinity to itself must be able to start.
        return not st.affinity and _matches_all(pod.required_affinity, pod, st.namespace_labels)

    # --- scoring -------------------------------------------------------------------

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        cluster = self._cluster
        if not (pod.preferred_affinity or pod.preferred_anti_affinity) and (
            self.ignore_existing_preferred or not any(map(cluster.carried_terms, _SCORED))
        ):
            return SKIP  # nothing to score: the usual pod, in a cluster without affinity
        ns_labels = cluster.namespace_labels(pod.namespace)
        scores: Counter[Pair] = Counter()
        for term in pod.preferred_affinity:
            _add(scores, cluster.domains_matching((term,)), term.weight)
        for term in pod.preferred_anti_affinity:
            _add(scores, cluster.domains_matching((term,)), -term.weight)
        if self.hard_weight:
            for _, counts in self._carried(Kind.REQUIRED_AFFINITY, pod, ns_labels):
                _add(scores, counts, self.hard_weight)
        for term, counts in self._carried(Kind.PREFERRED_AFFINITY, pod, ns_labels):
            _add(scores, counts, term.weight)
        for term, counts in self._carried(Kind.PREFERRED_ANTI_AFFINITY, pod, ns_labels):
            _add(scores, counts, -term.weight)
        if not scores:
            return SKIP
        state.data[NAME + "/score"] = _ScoreState(scores, frozenset(key for key, _ in scores))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        st = state.data.get(NAME + "/score")
        if not isinstance(st, _ScoreState):
            return 0
        labels, scores = node.labels, st.scores
        total = 0
        for key in st.keys:
            value = labels.get(key)
            if value is not None:
                total += scores.get((key, value), 0)
        return total

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        if not scores:
            return
        low, high = min(scores), max(scores)
        spread = high - low
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * (s - low) / spread) if spread > 0 else 0


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    return InterPodAffinity(
        handle.cluster,
        hard_pod_affinity_weight=int(args.get("hardPodAffinityWeight", 1)),
        ignore_preferred_terms_of_existing_pods=bool(
            args.get("ignorePreferredTermsOfExistingPods", False)
        ),
    )
