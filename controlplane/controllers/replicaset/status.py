"""A ReplicaSet's status from its pods (``calculateStatus``): the counters ``kubectl get
rs`` and the Deployment controller read, the observed generation, and the
ReplicaFailure condition that says why pods could not be created or deleted.

Pure given ``now``; the controller writes the result only when it differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.controllers.replicaset import pods

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failure:
    """Why the last sync could not converge: reason FailedCreate or FailedDelete."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Computed:
    status: Obj
    # When a ready pod next becomes available (minReadySeconds): look again then.
    recheck_at: datetime | None


def _timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compute(
    rs: Mapping[str, Any],
    active: Iterable[Mapping[str, Any]],
    *,
    failure: Failure | None,
    now: datetime,
) -> Computed:
    spec = rs.get("spec") if isinstance(rs.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    assert isinstance(template, dict)
    want = pods.labels(template)
    min_ready = spec.get("minReadySeconds")
    min_ready = min_ready if isinstance(min_ready, int) else 0
    replicas = fully_labeled = ready = available = 0
    recheck: datetime | None = None
    for pod in active:
        replicas += 1
        have = pods.labels(pod)
        if all(have.get(k) == v for k, v in want.items()):
            fully_labeled += 1
        if pods.is_ready(pod):
            ready += 1
            at = pods.available_at(pod, min_ready)
            if at is not None and (min_ready <= 0 or at <= now):
                available += 1
            elif at is not None and (recheck is None or at < recheck):
                recheck = at
    old_status = rs.get("status") if isinstance(rs.get("status"), dict) else {}
    assert isinstance(old_status, dict)
    status: Obj = {
        "replicas": replicas,
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": pods.meta(rs).get("generation", 0),
    }
    conditions = [
        c
        for c in old_status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") != "ReplicaFailure"
    ]
    if failure is not None:
        previous = pods.condition(rs, "ReplicaFailure")
        same = previous is not None and previous.get("reason") == failure.reason
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": (
                    previous.get("lastTransitionTime") if same and previous else _timestamp(now)
                ),
                "reason": failure.reason,
                "message": failure.message,
            }
        )
    if conditions:
        status["conditions"] = conditions
    return Computed(status=status, recheck_at=recheck)


def differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    old = old or {}
    keys = set(old) | set(new)
    return any(old.get(k, 0 if k != "conditions" else None) != new.get(k) for k in keys)
