"""Reading Deployments and ReplicaSets: the few fields the controller needs, read
defensively (a hand-made object may lack any of them), and the rollout parameters and
ReplicaSet views the pure arithmetic takes (rolling.py)."""

from __future__ import annotations

from typing import Any

from controlplane.controllers.deployment import revisions as rv
from controlplane.controllers.deployment.rolling import RSView, Spec, max_surge

Obj = dict[str, Any]


def meta(obj: Obj) -> Obj:
    found = obj.get("metadata")
    return found if isinstance(found, dict) else {}


def replicas(rs: Obj) -> int:
    value = (rs.get("spec") or {}).get("replicas")
    return value if isinstance(value, int) else 1


def spec_of(deployment: Obj) -> Spec:
    """The rollout parameters; ValueError for values no arithmetic can use."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    count = spec.get("replicas", 1)
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"spec.replicas {count!r} is not a count")
    result = Spec(
        replicas=count,
        rolling=strategy.get("type", "RollingUpdate") != "Recreate",
        max_surge=rolling.get("maxSurge", "25%"),
        max_unavailable=rolling.get("maxUnavailable", "25%"),
    )
    max_surge(result)  # raises ValueError for a malformed int-or-percent
    return result


def view(rs: Obj) -> RSView:
    return RSView(
        name=str(meta(rs).get("name")),
        replicas=replicas(rs),
        available=int((rs.get("status") or {}).get("availableReplicas") or 0),
        created=rv.created(rs)[0],
        desired=rv.int_annotation(rs, rv.DESIRED_REPLICAS),
        max_replicas=rv.int_annotation(rs, rv.MAX_REPLICAS),
    )
