"""The rollout arithmetic, pure (Kubernetes' pkg/controller/deployment/util and the
rolling/sync steps that only count): how far the new ReplicaSet may grow, how far old
ones may shrink, and how a change of ``spec.replicas`` in the middle of a rollout is
spread over every active ReplicaSet.

Invariants, as Kubernetes keeps them:

* ``maxSurge`` rounds up and ``maxUnavailable`` rounds down; if both resolve to zero
  (validation forbids two explicit zeros, but 25% of 1 rounds down to 0) unavailable
  becomes 1, so a rollout can always move;
* the sum of all ReplicaSets' ``spec.replicas`` never exceeds replicas + maxSurge, and
  old ReplicaSets shrink only while replicas - maxUnavailable pods stay available;
* ReplicaSets of equal size are scaled up newest first and down oldest first.

A ReplicaSet is seen here as an ``RSView``: its name, size, availability, age and the
deployment size annotations written on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class RSView:
    name: str
    replicas: int  # spec.replicas
    available: int = 0  # status.availableReplicas
    created: str = ""  # creationTimestamp (RFC 3339 in UTC sorts as text)
    desired: int | None = None  # deployment.kubernetes.io/desired-replicas
    max_replicas: int | None = None  # deployment.kubernetes.io/max-replicas


@dataclass(frozen=True, slots=True)
class Spec:
    replicas: int
    rolling: bool = True
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"


def scaled_value(value: int | str, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or "N%" of ``total``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if not value.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: {value!r} is not a percentage")
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f'invalid value "{value}": not a percentage') from None
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(surge: int | str, unavailable: int | str, desired: int) -> tuple[int, int]:
    max_surge = scaled_value(surge, desired, round_up=True)
    max_unavailable = scaled_value(unavailable, desired, round_up=False)
    if max_surge == 0 and max_unavailable == 0:
        # Rounding made both zero: surge might be blocked by quota, so let one go.
        max_unavailable = 1
    return max_surge, max_unavailable


def max_surge(spec: Spec) -> int:
    if not spec.rolling:
        return 0
    return resolve_fenceposts(spec.max_surge, spec.max_unavailable, spec.replicas)[0]


def max_unavailable(spec: Spec) -> int:
    if not spec.rolling or spec.replicas == 0:
        return 0
    unavailable = resolve_fenceposts(spec.max_surge, spec.max_unavailable, spec.replicas)[1]
    return min(unavailable, spec.replicas)


def by_age(views: Sequence[RSView]) -> list[RSView]:
    """Oldest first; names break ties (ReplicaSetsByCreationTimestamp)."""
    return sorted(views, key=lambda v: (v.created, v.name))


def new_rs_new_replicas(spec: Spec, all_rs: Sequence[RSView], new: RSView) -> int:
    """How big the new ReplicaSet may be now (NewRSNewReplicas)."""
    if not spec.rolling:
        return spec.replicas
    surge = scaled_value(spec.max_surge, spec.replicas, round_up=True)
    current = sum(v.replicas for v in all_rs)
    most = spec.replicas + surge
    if current >= most:
        return new.replicas
    return new.replicas + min(most - current, spec.replicas - new.replicas)


def rolling_scale_down(spec: Spec, old: Sequence[RSView], new: RSView) -> dict[str, int]:
    """The new sizes of the old ReplicaSets that shrink in this step (reconcileOldReplica
    Sets): unavailable old pods go first, since they count for nothing and would
    otherwise block the rollout, then available ones while enough stay available."""
    old_count = sum(v.replicas for v in old)
    if old_count == 0:
        return {}
    all_count = old_count + new.replicas
    min_available = spec.replicas - max_unavailable(spec)
    new_unavailable = new.replicas - new.available
    budget = all_count - min_available - new_unavailable
    if budget <= 0:
        return {}
    sizes: dict[str, int] = {}
    current = {v.name: v for v in old}
    cleaned = 0
    for view in by_age(old):
        if cleaned >= budget:
            break
        if view.replicas == 0 or view.replicas == view.available:
            continue
        down = min(budget - cleaned, view.replicas - view.available)
        sizes[view.name] = view.replicas - down
        current[view.name] = replace(view, replicas=view.replicas - down)
        cleaned += down
    available = sum(v.available for v in old) + new.available
    if available > min_available:
        wanted = available - min_available
        done = 0
        for view in by_age(list(current.values())):
            if done >= wanted:
                break
            if view.replicas == 0:
                continue
            down = min(view.replicas, wanted - done)
            sizes[view.name] = view.replicas - down
            done += down
    return sizes


def is_saturated(spec: Spec, new: RSView | None) -> bool:
    return (
        new is not None
        and new.desired == spec.replicas
        and new.replicas == spec.replicas
        and new.available == spec.replicas
    )


def proportional_scale(
    spec: Spec, new: RSView | None, old: Sequence[RSView], *, status_replicas: int
) -> dict[str, int]:
    """The sizes to write when the Deployment was scaled (DeploymentController.scale):
    one active ReplicaSet (or none: the newest) takes the whole count; a saturated new
    ReplicaSet leaves the old ones nothing; otherwise, in a rolling update, what is added
    or removed is shared in proportion to each ReplicaSet's size, the leftover of
    rounding going to the biggest. ``status_replicas`` is the Deployment's
    status.replicas, the fallback for a ReplicaSet without its max-replicas annotation."""
    everything = ([new] if new is not None else []) + list(old)
    if not everything:
        return {}
    active = [v for v in everything if v.replicas > 0]
    target: RSView | None = None
    if len(active) == 1:
        target = active[0]
    elif not active:
        target = new if new is not None else by_age(old)[-1]
    if target is not None:
        return {} if target.replicas == spec.replicas else {target.name: spec.replicas}
    if is_saturated(spec, new):
        return {v.name: 0 for v in old if v.replicas > 0}
    if not spec.rolling:
        return {}
    allowed = spec.replicas + max_surge(spec) if spec.replicas > 0 else 0
    to_add = allowed - sum(v.replicas for v in active)
    # Bigger first; among equals the newer grows first and the older shrinks first.
    ordered = _stable_size_sort(active, newer_first=to_add > 0)
    sizes = {v.name: v.replicas for v in ordered}
    if to_add == 0:
        return sizes
    added = 0
    for view in ordered:
        share = _proportion(view, spec, to_add, added, status_replicas=status_replicas)
        sizes[view.name] += share
        added += share
    biggest = ordered[0].name
    sizes[biggest] = max(0, sizes[biggest] + to_add - added)
    return sizes


def _stable_size_sort(views: Sequence[RSView], *, newer_first: bool) -> list[RSView]:
    aged = by_age(views)
    if newer_first:
        aged.reverse()
    # sorted() is stable: equal sizes keep the age order chosen above.
    return sorted(aged, key=lambda v: v.replicas, reverse=True)


def _proportion(view: RSView, spec: Spec, to_add: int, added: int, *, status_replicas: int) -> int:
    """GetReplicaSetProportion: this ReplicaSet's share, never beyond what is left."""
    if view.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    if spec.replicas == 0:
        fraction = -view.replicas
    else:
        most = spec.replicas + max_surge(spec)
        before = view.max_replicas or status_replicas
        if before <= 0:
            fraction = 0  # nothing to scale from (Kubernetes would divide by zero)
        else:
            fraction = _round_half_away(view.replicas * most / before) - view.replicas
    left = to_add - added
    return min(fraction, left) if to_add > 0 else max(fraction, left)


def _round_half_away(value: float) -> int:
    """integer.RoundToInt32: halves round away from zero (Python's round() goes to even)."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)
