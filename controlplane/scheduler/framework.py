"""The scheduling framework: the extension points a plugin implements, the Status they
return, and ``Framework``, which runs one profile's plugins (kube-scheduler's
``framework/interface.go`` and ``runtime/framework.go``).

Extension points, in the order a pod meets them::

    PreEnqueue   may the pod enter the active queue at all? (scheduling gates)
    PreFilter    once per pod: precompute; Skip = this plugin's Filter has nothing to do;
                 a rejection here rejects every node with one message
    Filter       per node: may the pod run there?  (None = yes)
    PostFilter   when no node passed: make room (preemption)
    PreScore     once per pod, over the feasible nodes; Skip = no Score needed
    Score        per feasible node: 0..100, then NormalizeScore, times the plugin's weight

Status: ``None`` means success everywhere (as a nil ``*Status`` in Go), so the hot path
allocates nothing. A rejection is ``Code.UNSCHEDULABLE`` (another node, or a change in
the cluster, may help; preemption may try) or ``Code.UNSCHEDULABLE_AND_UNRESOLVABLE``
(nothing on this node can help: preemption skips it). Its ``reasons`` are exactly the
phrases Kubernetes uses ("Insufficient memory"), because the FailedScheduling message is
built by counting them.

Each plugin names the cluster events that could turn its "no" into a "yes"
(``events``); the queue moves an unschedulable pod back only on those (QueueingHint).

Pod signatures (Kubernetes' KEP-5598): a Filter or Score plugin whose result on a node
follows from that node alone (its Node object and its pods) and some facts of the pod
says which facts (``sign_filter``, ``sign_score``). When every filter that runs for a pod
signs it, their verdicts are kept on each node (``NodeInfo.results``) until the node
changes; so is the weighted sum of the scores of the plugins that sign it and do not
normalize (the others, such as the default spreading of a Deployment's pods, score
every node each time). The next pod with the same signature (the next replica of a
Deployment) reads them there instead of running the plugins again: exactly the same
verdicts and scores, at the cost of one dict lookup per node. Kubernetes uses the
signature to reuse a whole cycle's ranking (opportunistic batching); here it only saves
recomputation, so nothing about the result changes.

Concurrency: everything here is synchronous and runs on the scheduler's event loop
between awaits, so plugins read the cache without locks and must never block.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from controlplane.scheduler.domain_index import Kind, Pair, SpreadDomains
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.terms import AffinityTerm, SpreadConstraint

if TYPE_CHECKING:
    from controlplane.scheduler.queue import Nominator

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


def unschedulable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons, plugin)


def unresolvable(plugin: str, *reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


def error(plugin: str, message: str) -> Status:
    return Status(Code.ERROR, (message,), plugin)


SKIP = Status(Code.SKIP)


class ClusterEvent(enum.StrEnum):
    """What happened in the cluster, as precise as the informers can tell."""

    NODE_ADD = "NodeAdd"
    NODE_ALLOCATABLE = "NodeAllocatableChange"
    NODE_LABEL = "NodeLabelChange"
    NODE_TAINT = "NodeTaintChange"
    NODE_CONDITION = "NodeConditionChange"
    NODE_SCHEDULABLE = "NodeSpecUnschedulableChange"
    NODE_IMAGES = "NodeImagesChange"
    ASSIGNED_POD_ADD = "AssignedPodAdd"
    ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
    ASSIGNED_POD_DELETE = "AssignedPodDelete"
    NAMESPACE_CHANGE = "NamespaceChange"
    IMAGE_PLATFORMS = "ImagePlatformsKnown"
    UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"  # moves every pod
    FORCE_ACTIVATE = "ForceActivate"  # moves every pod


ALL_EVENTS = frozenset(ClusterEvent)
NODE_EVENTS = frozenset(
    {
        ClusterEvent.NODE_ADD,
        ClusterEvent.NODE_ALLOCATABLE,
        ClusterEvent.NODE_LABEL,
        ClusterEvent.NODE_TAINT,
        ClusterEvent.NODE_CONDITION,
        ClusterEvent.NODE_SCHEDULABLE,
    }
)


class CycleState:
    """Per-pod scratch space of one scheduling cycle, keyed by plugin name. Values that
    PreFilter extensions change (``add_pod``/``remove_pod``) implement ``clone()``."""

    __slots__ = ("data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def clone(self) -> CycleState:
        copy = CycleState()
        copy.data = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in self.data.items()}
        copy.skip_filter = set(self.skip_filter)
        copy.skip_score = set(self.skip_score)
        return copy


class ClusterView(Protocol):
    """What plugins may read of the cluster: the scheduler's cache, frozen for the
    duration of a synchronous scheduling cycle."""

    def node_list(self) -> Sequence[NodeInfo]: ...

    def node(self, name: str) -> NodeInfo | None: ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str]: ...

    def nodes_with_image(self, image: str) -> int: ...

    def carried_terms(self, kind: Kind) -> Mapping[AffinityTerm, Counter[Pair]]:
        """The affinity terms of this kind that placed pods carry, each with the domains
        of those pods (domain_index.py)."""
        ...

    def domains_matching(self, terms: tuple[AffinityTerm, ...]) -> Counter[Pair]:
        """The domains of the placed pods that all ``terms`` select."""
        ...

    def spread_domains(
        self, namespace: str, c: SpreadConstraint, keys: frozenset[str]
    ) -> SpreadDomains:
        """Per domain of ``c``'s key, the pods it counts and the nodes that have every
        label of ``keys``."""
        ...


@dataclass
class Handle:
    """What a plugin gets at construction: the cluster, the nominations, its arguments."""

    cluster: ClusterView
    nominator: Nominator | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the image platform resolver


# --- the plugin protocols --------------------------------------------------------------


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class EventsPlugin(Protocol):
    def events(self) -> frozenset[ClusterEvent]: ...


@runtime_checkable
class PreEnqueuePlugin(Protocol):
    name: str

    def pre_enqueue(self, pod: PodInfo) -> Status | None: ...


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None: ...


@runtime_checkable
class PreFilterExtensions(Protocol):
    """Keep PreFilter's precomputation right while preemption adds or removes pods."""

    name: str

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None: ...

    def remove_pod(
        self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo
    ) -> None: ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


@runtime_checkable
class NodeOnlyFilter(Protocol):
    """A Filter that some nodes pass whatever the pod (a node without taints passes
    TaintToleration): the loop skips it there. ``passes_all`` may only read the Node
    object (not its pods): its answer is kept until the Node changes."""

    name: str

    def passes_all(self, node: NodeInfo) -> bool: ...


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    status: Status | None  # None: the pod may fit once the nomination is carried out
    nominated_node: str = ""
    victims: tuple[PodInfo, ...] = ()


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    def post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> PostFilterResult: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    name: str

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


@runtime_checkable
class BatchScorePlugin(Protocol):
    """A faster form of Score: every feasible node in one call (same results as
    ``score`` per node; Python pays for each call, the hot loop should not)."""

    def score_nodes(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> list[int]: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None: ...


Signer = Callable[[CycleState, PodInfo], Hashable | None]


@runtime_checkable
class SignedFilter(Protocol):
    """A Filter whose verdict on a node is decided by the node (its Node object and its
    pods) and by what ``sign_filter`` returns for the pod (called after PreFilter), and
    by nothing else: two pods with equal signatures get the same verdict on a node that
    has not changed. None: this pod's verdict depends on more (other nodes' pods...)."""

    name: str

    def sign_filter(self, state: CycleState, pod: PodInfo) -> Hashable | None: ...


@runtime_checkable
class SignedScore(Protocol):
    """``SignedFilter`` for a Score plugin: its score of a node is decided by the node and
    by what ``sign_score`` returns for the pod (called after PreScore)."""

    name: str

    def sign_score(self, state: CycleState, pod: PodInfo) -> Hashable | None: ...


# A Score plugin as the framework runs it: (plugin, weight, batch scorer or None,
# normalizer or None), resolved once.
_Scorer = tuple[
    "ScorePlugin",
    int,
    Callable[[CycleState, PodInfo, Sequence[NodeInfo]], list[int]] | None,
    Callable[[CycleState, PodInfo, list[int]], None] | None,
]


@dataclass(frozen=True, slots=True)
class FilterPlan:
    filters: list[FilterPlugin]  # in order
    node_only: Sequence[NodeOnlyFilter]  # the subset some nodes pass whatever the pod
    others: list[FilterPlugin]  # the rest, in order: all a "clean" node needs
    clean_key: str  # NodeInfo.memo key of "passes every node-only filter"
    signers: tuple[Signer, ...] | None  # of every filter; None if one cannot sign


# Signatures become small integers, the keys of NodeInfo.results: a node's lookup then
# hashes an int, not a nested tuple. Numbers are never reused, so results kept under a
# number the table has forgotten are merely never read again.
_signature_numbers = itertools.count(1)
MAX_SIGNATURES = 4096  # remembered per framework; beyond, the table starts again


def default_normalize(scores: list[int], *, reverse: bool = False) -> None:
    """Scale to 0..100 by the highest score (k8s ``helper.DefaultNormalizeScore``)."""
    highest = max(scores, default=0)
    if highest == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // highest
        scores[i] = MAX_NODE_SCORE - s if reverse else s


# --- the runtime -----------------------------------------------------------------------


class Framework:
    """One profile: its plugins at each extension point, in order, and score weights."""

    def __init__(
        self,
        scheduler_name: str,
        *,
        pre_enqueue: Sequence[PreEnqueuePlugin] = (),
        pre_filter: Sequence[PreFilterPlugin] = (),
        filter: Sequence[FilterPlugin] = (),
        post_filter: Sequence[PostFilterPlugin] = (),
        pre_score: Sequence[PreScorePlugin] = (),
        score: Sequence[tuple[ScorePlugin, int]] = (),
        percentage_of_nodes_to_score: int | None = None,
        handle: Handle | None = None,
    ) -> None:
        self.scheduler_name = scheduler_name
        self.pre_enqueue_plugins = list(pre_enqueue)
        self.pre_filter_plugins = list(pre_filter)
        self.filter_plugins = list(filter)
        self.post_filter_plugins = list(post_filter)
        self.pre_score_plugins = list(pre_score)
        self.score_plugins = list(score)
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.handle = handle
        self._scorers: list[_Scorer] = [
            (
                plugin,
                weight,
                plugin.score_nodes if isinstance(plugin, BatchScorePlugin) else None,
                plugin.normalize if isinstance(plugin, NormalizeScorePlugin) else None,
            )
            for plugin, weight in self.score_plugins
            if weight
        ]
        self._score_signers: dict[str, Signer] = {
            plugin.name: plugin.sign_score
            for plugin, _ in self.score_plugins
            if isinstance(plugin, SignedScore)
        }
        self._signatures: dict[Hashable, int] = {}
        self._plans: dict[frozenset[str], FilterPlan] = {}
        self._extensions = [
            p for p in self.pre_filter_plugins if isinstance(p, PreFilterExtensions)
        ]
        self._events: dict[str, frozenset[ClusterEvent]] = {}
        for plugin in self.plugins():
            self._events[plugin.name] = (
                plugin.events() if isinstance(plugin, EventsPlugin) else ALL_EVENTS
            )

    def plugins(self) -> list[Any]:
        seen: dict[str, Any] = {}
        for group in (
            self.pre_enqueue_plugins, self.pre_filter_plugins, self.filter_plugins,
            self.post_filter_plugins, self.pre_score_plugins,
            [p for p, _ in self.score_plugins],
        ):  # fmt: skip
            for plugin in group:
                seen.setdefault(plugin.name, plugin)
        return list(seen.values())

    def interested(self, rejected_by: frozenset[str], event: ClusterEvent) -> bool:
        """Could ``event`` help a pod these plugins rejected? (no plugin known: yes)"""
        if not rejected_by or event in (
            ClusterEvent.UNSCHEDULABLE_TIMEOUT,
            ClusterEvent.FORCE_ACTIVATE,
        ):
            return True
        return any(event in self._events.get(name, ALL_EVENTS) for name in rejected_by)

    def run_pre_enqueue(self, pod: PodInfo) -> Status | None:
        for plugin in self.pre_enqueue_plugins:
            status = plugin.pre_enqueue(pod)
            if status is not None and status.code != Code.SUCCESS:
                return status.with_plugin(plugin.name)
        return None

    def run_pre_filter(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        for plugin in self.pre_filter_plugins:
            status = plugin.pre_filter(state, pod, nodes)
            if status is None or status.code == Code.SUCCESS:
                continue
            if status.code == Code.SKIP:
                state.skip_filter.add(plugin.name)
                continue
            return status.with_plugin(plugin.name)
        return None

    def active_filters(self, state: CycleState) -> list[FilterPlugin]:
        return self.filter_plan(state).filters

    def filter_plan(self, state: CycleState) -> FilterPlan:
        """The filters that run for this pod, split for the hot loop; one plan per set
        of skipped plugins, made once (isinstance on a Protocol is slow)."""
        key = frozenset(state.skip_filter)
        plan = self._plans.get(key)
        if plan is None:
            filters = [p for p in self.filter_plugins if p.name not in key]
            node_only = [p for p in filters if isinstance(p, NodeOnlyFilter)]
            signers = tuple(p.sign_filter for p in filters if isinstance(p, SignedFilter))
            plan = self._plans[key] = FilterPlan(
                filters,
                node_only,
                [p for p in filters if not isinstance(p, NodeOnlyFilter)],
                "clean:" + ",".join(p.name for p in node_only),
                signers if len(signers) == len(filters) else None,
            )
        return plan

    def filter_signature(self, state: CycleState, pod: PodInfo, plan: FilterPlan) -> int | None:
        """The number under which ``plan``'s verdicts for ``pod`` are kept on each node
        (NodeInfo.results), or None when a filter cannot sign the pod."""
        if plan.signers is None:
            return None
        parts: list[Hashable] = ["filter", *(p.name for p in plan.filters)]
        for sign in plan.signers:
            part = sign(state, pod)
            if part is None:
                return None
            parts.append(part)
        return self._number(tuple(parts))

    def _number(self, signature: Hashable) -> int:
        number = self._signatures.get(signature)
        if number is None:
            if len(self._signatures) >= MAX_SIGNATURES:
                self._signatures.clear()
            number = self._signatures[signature] = next(_signature_numbers)
        return number

    def run_filters(
        self,
        state: CycleState,
        pod: PodInfo,
        node: NodeInfo,
        filters: Sequence[FilterPlugin] | None = None,
    ) -> Status | None:
        for plugin in self.active_filters(state) if filters is None else filters:
            status = plugin.filter(state, pod, node)
            if status is not None:
                return status
        return None

    def run_filters_with_nominated(
        self,
        state: CycleState,
        pod: PodInfo,
        node: NodeInfo,
        filters: Sequence[FilterPlugin] | None = None,
    ) -> Status | None:
        """As Kubernetes: pods nominated to ``node`` with at least this pod's priority
        count as if they ran there (they were promised the room), then the filters must
        also pass without them (pod affinity may depend on them not being there)."""
        nominator = self.handle.nominator if self.handle is not None else None
        nominated = nominator.nominated_for(node.name, pod) if nominator is not None else ()
        if nominated:
            with_them = node.clone()
            state_with = state.clone()
            for other in nominated:
                with_them.add_pod(other)
                self.run_add_pod(state_with, pod, other, with_them)
            status = self.run_filters(state_with, pod, with_them, filters)
            if status is not None:
                return status
        return self.run_filters(state, pod, node, filters)

    def run_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo) -> None:
        for plugin in self._extensions:
            if plugin.name not in state.skip_filter:
                plugin.add_pod(state, pod, added, node)

    def run_remove_pod(
        self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo
    ) -> None:
        for plugin in self._extensions:
            if plugin.name not in state.skip_filter:
                plugin.remove_pod(state, pod, removed, node)

    def run_post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> PostFilterResult | None:
        result: PostFilterResult | None = None
        for plugin in self.post_filter_plugins:
            result = plugin.post_filter(state, pod, statuses)
            if result.status is None:
                return result
        return result

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        for plugin in self.pre_score_plugins:
            status = plugin.pre_score(state, pod, nodes)
            if status is not None and status.code == Code.SKIP:
                state.skip_score.add(plugin.name)

    def run_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        """The weighted total of every Score plugin, per node (same order as ``nodes``).

        The plugins that sign the pod and do not normalize (normalizing depends on every
        node's score) are "kept": their weighted sum for a node is kept on it until it
        changes, so only the nodes without one are scored by them. The others (default
        spreading of a Deployment's pods, say) score every node each time."""
        active = [s for s in self._scorers if s[0].name not in state.skip_score]
        kept: list[_Scorer] = []
        fresh: list[_Scorer] = []
        parts: list[Hashable] = ["score"]
        for scorer in active:
            plugin, _, _, normalize = scorer
            sign = self._score_signers.get(plugin.name)
            part = sign(state, pod) if sign is not None and normalize is None else None
            if part is None:
                fresh.append(scorer)
            else:
                kept.append(scorer)
                parts += (plugin.name, part)
        if not kept:
            return self._totals(state, pod, nodes, fresh)
        number = self._number(tuple(parts))
        totals: list[int] = []
        missing: list[int] = []
        for i, node in enumerate(nodes):
            total = node.results.get(number)
            if total is None:
                missing.append(i)
                total = 0
            totals.append(total)
        if missing:
            scored = self._totals(state, pod, [nodes[i] for i in missing], kept)
            for i, total in zip(missing, scored, strict=True):
                totals[i] = total
                nodes[i].keep(number, total)
        if fresh:
            others = self._totals(state, pod, nodes, fresh)
            totals = [t + o for t, o in zip(totals, others, strict=True)]
        return totals

    def _totals(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scorers: list[_Scorer]
    ) -> list[int]:
        totals = [0] * len(nodes)
        for plugin, weight, batch, normalize in scorers:
            if batch is not None:
                scores = batch(state, pod, nodes)
            else:
                score = plugin.score
                scores = [score(state, pod, node) for node in nodes]
            if normalize is not None:
                normalize(state, pod, scores)
            if weight == 1:
                totals = [t + s for t, s in zip(totals, scores, strict=True)]
            else:
                totals = [t + s * weight for t, s in zip(totals, scores, strict=True)]
        return totals
