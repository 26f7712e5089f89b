"""Where the placed pods are, counted by topology domain: kept current by the cache as
pods and nodes come and go, so that a scheduling cycle reads counts instead of walking
every node and pod (Kubernetes' InterPodAffinity and PodTopologySpread walk them all, in
parallel, every cycle).

A domain is a value of a topology key, a node label (``kubernetes.io/hostname``,
``topology.kubernetes.io/zone``...). The index answers three questions:

* ``carried(kind)``: the affinity terms that placed pods carry (their required
  affinity, required anti-affinity, preferred affinity, preferred anti-affinity), each
  distinct term with the domains of the pods carrying it, as ``(key, value)`` pairs. A
  Deployment's replicas carry one term between them, so an incoming pod is matched
  against that term once rather than against every replica.
* ``matching(terms)``: the domains of the placed pods that *all* the terms select (an
  incoming pod's own affinity terms), each such pod counted once under every term's key.
* ``spread(namespace, constraint, keys)``: for a topology spread constraint, per domain
  of its key, the matching pods of the namespace that are not terminating, and the
  nodes, counting only nodes that have every label of ``keys``.

The first two kinds are what InterPodAffinity's PreFilter and PreScore count, the third
what PodTopologySpread's count when every node is eligible. ``carried`` is always kept.
The others are counted by walking every node the first time they are asked, then kept
current. A kept answer that is asked for less often than it would cost to walk again
(the pods placed since it was last asked outnumber the placed pods) is dropped, and at
most ``KEPT`` are kept.

Only nodes with a Node object count, and the pods on them (a deleted node's pods are not
offered for scheduling, as Kubernetes' snapshot leaves them out), each under its node's
current labels. The cache tells the index of every pod placed or unplaced (``count``)
and of every node listed or delisted, which is also how a relabelled node is told
(``count_node``, then its pods); a namespace whose labels change drops the kept answers,
as a namespaceSelector may now select differently.

The counters handed out are the index's own: a caller copies before changing them.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from api.selectors import LabelSelector
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.terms import AffinityTerm, SpreadConstraint

Pair = tuple[str, str]  # (topology key, value)
Terms = tuple[AffinityTerm, ...]
Labels = Mapping[str, str]
KEPT: Final = 64
_K = TypeVar("_K", str, Pair)


class Kind(enum.Enum):
    """Which of a placed pod's affinity terms."""

    REQUIRED_AFFINITY = enum.auto()
    REQUIRED_ANTI_AFFINITY = enum.auto()
    PREFERRED_AFFINITY = enum.auto()
    PREFERRED_ANTI_AFFINITY = enum.auto()


def _carried(pod: PodInfo) -> tuple[tuple[Kind, Terms], ...]:
    return (
        (Kind.REQUIRED_AFFINITY, pod.required_affinity),
        (Kind.REQUIRED_ANTI_AFFINITY, pod.required_anti_affinity),
        (Kind.PREFERRED_AFFINITY, pod.preferred_affinity),
        (Kind.PREFERRED_ANTI_AFFINITY, pod.preferred_anti_affinity),
    )


def bump(counts: Counter[Pair], key: str, labels: Labels, delta: int) -> None:
    """Count ``delta`` pods in the domain of ``key`` that ``labels`` name, if any."""
    value = labels.get(key)
    if value is not None:
        _add(counts, (key, value), delta)


def _add(counts: Counter[_K], item: _K, delta: int) -> None:
    """Add ``delta``; a count that reaches zero (or would fall below) is dropped."""
    n = counts[item] + delta
    if n > 0:
        counts[item] = n
    else:
        counts.pop(item, None)


def spread_identity(namespace: str, c: SpreadConstraint) -> tuple[str, str, LabelSelector | None]:
    """What decides which pods a spread constraint counts (not its maxSkew, nor
    whenUnsatisfiable...): pods that ``spread_counts`` for equal identities are the same."""
    return (namespace, c.owner_uid, None if c.owner_uid else c.selector)


def spread_counts(namespace: str, c: SpreadConstraint, pod: PodInfo) -> bool:
    """Whether ``pod`` counts for a spread constraint of a pod in ``namespace``: a pod of
    that namespace, not terminating, that the constraint selects."""
    return pod.namespace == namespace and not pod.deleting and c.matches(pod.labels, pod.owner_uid)


# --- the questions that are counted on demand ----------------------------------------


class _Tally:
    """A kept answer: counted from scratch once, then told of every change."""

    asked = 0  # the placement count when last asked for

    def count_pod(self, pod: PodInfo, ns_labels: Labels, labels: Labels, delta: int) -> None:
        raise NotImplementedError

    def count_node(self, labels: Labels, delta: int) -> None:
        pass


class _Matching(_Tally):
    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.counts: Counter[Pair] = Counter()

    def count_pod(self, pod: PodInfo, ns_labels: Labels, labels: Labels, delta: int) -> None:
        if all(t.matches(pod.namespace, pod.labels, ns_labels) for t in self.terms):
            for term in self.terms:
                bump(self.counts, term.topology_key, labels, delta)


@dataclass(slots=True)
class SpreadDomains:
    """Per value of a spread constraint's key: the matching pods, and the nodes (those
    with every key)."""

    pods: Counter[str] = field(default_factory=Counter)
    nodes: Counter[str] = field(default_factory=Counter)


class _Spread(_Tally):
    def __init__(self, namespace: str, c: SpreadConstraint, keys: frozenset[str]) -> None:
        self.namespace = namespace
        self.constraint = c
        self.keys = keys
        self.domains = SpreadDomains()

    def count_pod(self, pod: PodInfo, ns_labels: Labels, labels: Labels, delta: int) -> None:
        if self.keys <= labels.keys() and spread_counts(self.namespace, self.constraint, pod):
            _add(self.domains.pods, labels[self.constraint.topology_key], delta)

    def count_node(self, labels: Labels, delta: int) -> None:
        if self.keys <= labels.keys():
            _add(self.domains.nodes, labels[self.constraint.topology_key], delta)


# --- the index -------------------------------------------------------------------------


class DomainIndex:
    def __init__(
        self,
        nodes: Callable[[], Sequence[NodeInfo]],
        namespace_labels: Callable[[str], Labels],
    ) -> None:
        self._nodes = nodes  # the listed nodes
        self._namespace_labels = namespace_labels
        self._carried: dict[Kind, dict[AffinityTerm, Counter[Pair]]] = {k: {} for k in Kind}
        self._kept: dict[Hashable, _Tally] = {}
        self._counted = 0  # pods counted now
        self._placements = 0  # pods counted in or out, ever

    def carried(self, kind: Kind) -> Mapping[AffinityTerm, Counter[Pair]]:
        return self._carried[kind]

    def matching(self, terms: Terms) -> Counter[Pair]:
        tally = self._tally(("matching", terms), lambda: _Matching(terms))
        assert isinstance(tally, _Matching)
        return tally.counts

    def spread(self, namespace: str, c: SpreadConstraint, keys: frozenset[str]) -> SpreadDomains:
        what = ("spread", spread_identity(namespace, c), keys, c.topology_key)
        tally = self._tally(what, lambda: _Spread(namespace, c, keys))
        assert isinstance(tally, _Spread)
        return tally.domains

    def _tally(self, key: Hashable, new: Callable[[], _Tally]) -> _Tally:
        tally = self._kept.get(key)
        if tally is None:
            tally = new()
            for node in self._nodes():
                labels = node.labels
                tally.count_node(labels, 1)
                for pod in node.pods.values():
                    tally.count_pod(pod, self._namespace_labels(pod.namespace), labels, 1)
            if len(self._kept) >= KEPT:
                del self._kept[min(self._kept, key=lambda k: self._kept[k].asked)]
            self._kept[key] = tally
        tally.asked = self._placements
        return tally

    def count(self, pod: PodInfo, labels: Labels, delta: int) -> None:
        """``pod`` placed (delta 1) or unplaced (-1) on a listed node with ``labels``."""
        self._counted += delta
        self._placements += 1
        if pod.has_affinity:
            for kind, terms in _carried(pod):
                table = self._carried[kind]
                for term in terms:
                    counts = table.get(term)
                    if counts is None:
                        counts = table[term] = Counter()
                    bump(counts, term.topology_key, labels, delta)
                    if not counts:
                        del table[term]
        if self._kept:
            stale = self._placements - max(self._counted, 1)
            ns_labels = self._namespace_labels(pod.namespace)
            for key, tally in list(self._kept.items()):
                if tally.asked < stale:
                    del self._kept[key]
                else:
                    tally.count_pod(pod, ns_labels, labels, delta)

    def count_node(self, labels: Labels, delta: int) -> None:
        """A node listed (delta 1) or delisted (-1) with ``labels``; its pods are told
        one by one (``count``)."""
        for tally in self._kept.values():
            tally.count_node(labels, delta)

    def namespaces_changed(self) -> None:
        self._kept.clear()
