"""Which pods a ReplicaSet deletes first when it scales down: Kubernetes'
``ActivePodsWithRanks`` order, with bramble's node health added.

The earlier a pod sorts, the sooner it goes:

1. not yet scheduled before scheduled (nothing runs yet);
2. Pending before Unknown before Running (the least progress is lost);
3. not ready before ready (no capacity is lost);
4. on a node that is not Ready (NotReady, Unknown, tainted unreachable, or gone) before
   on a healthy one: bramble's addition, so that scaling down sheds the pods a dead
   machine holds instead of healthy ones;
5. a lower ``controller.kubernetes.io/pod-deletion-cost`` before a higher one (the
   user's own say: an int32 annotation, 0 when absent);
6. doubled up before alone: more of the set's pods on the same node first (spreads);
7. ready for a shorter time before longer;
8. more container restarts before fewer (a crash-looping pod is worth less);
9. newer before older (older pods have proven themselves; a missing time sorts first).

Pure: the controller gathers the facts, this module only orders them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from controlplane.controllers.replicaset import pods

Obj = dict[str, Any]

_PHASES: Final = {"Pending": 0, "Unknown": 1, "Running": 2}
DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
_UNREACHABLE_TAINTS: Final = frozenset(
    {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}
)


@dataclass(frozen=True, slots=True, order=True)
class DeletionRank:
    """A pod's sort key: the smaller, the sooner it is deleted."""

    assigned: bool
    phase: int
    ready: bool
    healthy_node: bool
    cost: int  # pod-deletion-cost
    colocated: int  # negated count of the set's pods on the same node
    ready_for: float  # negated epoch seconds of the Ready transition; unknown first
    restarts: int  # negated
    created: float  # negated epoch seconds; unknown first


def node_healthy(node: Mapping[str, Any] | None) -> bool:
    """Ready=True and not tainted unreachable/not-ready; a node that is gone is not."""
    if node is None:
        return False
    spec = node.get("spec")
    taints = spec.get("taints") if isinstance(spec, dict) else None
    for taint in taints if isinstance(taints, list) else []:
        if isinstance(taint, dict) and taint.get("key") in _UNREACHABLE_TAINTS:
            return False
    cond = pods.condition(node, "Ready")
    return cond is not None and cond.get("status") == "True"


def deletion_cost(pod: Mapping[str, Any]) -> int:
    """The pod's ``pod-deletion-cost`` annotation; 0 when absent or not an int32 (the API
    refuses such a value on a pod, so only a pod stored before that check can hold one)."""
    annotations = pods.meta(pod).get("annotations")
    value = annotations.get(DELETION_COST) if isinstance(annotations, dict) else None
    if not isinstance(value, str):
        return 0
    try:
        cost = int(value, 10)
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


def rank(pod: Mapping[str, Any], *, healthy: bool, colocated: int) -> DeletionRank:
    node = (pod.get("spec") or {}).get("nodeName") if isinstance(pod.get("spec"), dict) else None
    ready = pods.is_ready(pod)
    since = pods.ready_since(pod) if ready else None
    created = pods.parse_time(pods.meta(pod).get("creationTimestamp"))
    return DeletionRank(
        assigned=bool(node),
        phase=_PHASES.get(pods.phase(pod), 0),
        ready=ready,
        healthy_node=healthy if node else True,
        cost=deletion_cost(pod),
        colocated=-colocated,
        ready_for=-since.timestamp() if since else -math.inf,
        restarts=-pods.restarts(pod),
        created=-created.timestamp() if created else -math.inf,
    )


def deletion_order(
    candidates: Iterable[Mapping[str, Any]],
    *,
    nodes: Mapping[str, Mapping[str, Any]],
    related: Iterable[Mapping[str, Any]] = (),
) -> list[Obj]:
    """``candidates`` sorted most-deletable first. ``nodes`` maps node names to Node
    objects (a missing node is unhealthy); ``related`` are the pods counted for
    colocation (the set's active pods; the candidates by default)."""
    pool = list(candidates)
    on_node = Counter(
        node for p in (list(related) or pool) if (node := (p.get("spec") or {}).get("nodeName"))
    )

    def key(pod: Mapping[str, Any]) -> DeletionRank:
        node = (pod.get("spec") or {}).get("nodeName")
        healthy = node_healthy(nodes.get(node)) if isinstance(node, str) else True
        return rank(pod, healthy=healthy, colocated=on_node[node] if node else 0)

    return [dict(p) for p in sorted(pool, key=key)]
