"""The Deployment's status, pure: the counters `kubectl rollout status` waits on, the
Available condition, and the Progressing condition with its deadline (Kubernetes'
calculateStatus, syncRolloutStatus and the condition helpers).

Invariants:

* counters come from the ReplicaSets alone: replicas/updatedReplicas are their
  status.replicas (pods that exist), unavailableReplicas counts from spec.replicas
  (pods wanted) and is never negative;
* a condition's lastTransitionTime changes only when its status does; Progressing's
  lastUpdateTime moves whenever progress is seen, and the deadline runs from it;
* once a rollout completed (NewReplicaSetAvailable) or timed out
  (ProgressDeadlineExceeded), nothing is estimated until a new rollout starts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

Obj = dict[str, Any]

PROGRESSING: Final = "Progressing"
AVAILABLE: Final = "Available"
REPLICA_FAILURE: Final = "ReplicaFailure"

NEW_RS_CREATED: Final = "NewReplicaSetCreated"
FOUND_NEW_RS: Final = "FoundNewReplicaSet"
RS_UPDATED: Final = "ReplicaSetUpdated"
NEW_RS_AVAILABLE: Final = "NewReplicaSetAvailable"
TIMED_OUT: Final = "ProgressDeadlineExceeded"
PAUSED: Final = "DeploymentPaused"
RESUMED: Final = "DeploymentResumed"
RS_CREATE_ERROR: Final = "ReplicaSetCreateError"
MIN_AVAILABLE: Final = "MinimumReplicasAvailable"
MIN_UNAVAILABLE: Final = "MinimumReplicasUnavailable"

_MAX_INT32: Final = 2**31 - 1


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def condition(kind: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    at = timestamp(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def set_condition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: same status and reason is no change; same status keeps
    the lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"]:
        if current.get("reason") == cond["reason"]:
            return
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(deployment: Mapping[str, Any]) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != _MAX_INT32


def _count(rs: Mapping[str, Any] | None, part: str, key: str) -> int:
    if rs is None:
        return 0
    value = (rs.get(part) or {}).get(key)
    return value if isinstance(value, int) else (1 if part == "spec" and key == "replicas" else 0)


def calculate_status(
    deployment: Mapping[str, Any],
    all_rs: Sequence[Obj],
    new_rs: Obj | None,
    *,
    max_unavailable: int,
    now: datetime,
) -> Obj:
    """The counters and the Available condition, other conditions carried over."""
    old = deployment.get("status") or {}
    available = sum(_count(rs, "status", "availableReplicas") for rs in all_rs)
    wanted = sum(_count(rs, "spec", "replicas") for rs in all_rs)
    status: Obj = {
        "observedGeneration": int((deployment.get("metadata") or {}).get("generation") or 0),
        "replicas": sum(_count(rs, "status", "replicas") for rs in all_rs),
        "updatedReplicas": _count(new_rs, "status", "replicas"),
        "readyReplicas": sum(_count(rs, "status", "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(0, wanted - available),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    replicas = int((deployment.get("spec") or {}).get("replicas", 1))
    if available >= replicas - max_unavailable:
        cond = condition(
            AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        message = "Deployment does not have minimum availability."
        cond = condition(AVAILABLE, "False", MIN_UNAVAILABLE, message, now)
    set_condition(status, cond)
    return status


def complete(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    replicas = int((deployment.get("spec") or {}).get("replicas", 1))
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    return (
        status.get("updatedReplicas") == replicas
        and status.get("replicas") == replicas
        and status.get("availableReplicas") == replicas
        and int(status.get("observedGeneration") or 0) >= generation
    )


def progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def stale(s: Mapping[str, Any]) -> int:
        return int(s.get("replicas") or 0) - int(s.get("updatedReplicas") or 0)

    return (
        int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0)
        or stale(new) < stale(old)
        or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
        or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0)
    )


def _deadline(deployment: Mapping[str, Any], cond: Mapping[str, Any]) -> datetime | None:
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    seconds = int((deployment.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    return since + timedelta(seconds=seconds)


def timed_out(deployment: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> bool:
    if not has_progress_deadline(deployment):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline(deployment, cond)
    return deadline is not None and deadline < now


def rollout_status(
    deployment: Mapping[str, Any], status: Obj, new_rs_name: str | None, *, now: datetime
) -> None:
    """Set the Progressing condition on ``status`` (from calculate_status) for a
    Deployment that is rolling out (syncRolloutStatus)."""
    name = (deployment.get("metadata") or {}).get("name")
    if not has_progress_deadline(deployment):
        remove_condition(status, PROGRESSING)
        return
    old = deployment.get("status") or {}
    current = get_condition(old, PROGRESSING)
    if (
        status.get("replicas") == status.get("updatedReplicas")
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    ):
        return  # a resync of a finished rollout: nothing to estimate
    subject = f'ReplicaSet "{new_rs_name}"' if new_rs_name else f'Deployment "{name}"'
    if complete(deployment, status):
        message = f"{subject} has successfully progressed."
        set_condition(status, condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message, now))
    elif progressing(old, status):
        cond = condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
        if current is not None:
            if current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
        set_condition(status, cond)
    elif timed_out(deployment, status, now):
        message = f"{subject} has timed out progressing."
        set_condition(status, condition(PROGRESSING, "False", TIMED_OUT, message, now))


def requeue_after(
    deployment: Mapping[str, Any], status: Mapping[str, Any], now: datetime
) -> float | None:
    """When to look again at a rollout that shows no progress, to catch its deadline
    (requeueStuckDeployment); None when there is nothing to wait for."""
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(deployment) or current is None:
        return None
    if complete(deployment, status) or current.get("reason") == TIMED_OUT:
        return None
    deadline = _deadline(deployment, current)
    if deadline is None:
        return None
    # Timestamps have whole seconds: one more second makes sure the deadline has passed.
    return max(0.0, (deadline - now).total_seconds()) + 1.0


def paused_condition(deployment: Mapping[str, Any], now: datetime) -> Obj | None:
    """The Progressing condition to set when the Deployment was just paused or resumed
    (checkPausedConditions), or None."""
    if not has_progress_deadline(deployment):
        return None
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    if current is not None and current.get("reason") == TIMED_OUT:
        return None
    paused = bool((deployment.get("spec") or {}).get("paused"))
    shown = current is not None and current.get("reason") == PAUSED
    if paused and not shown:
        return condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    if not paused and shown:
        return condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    return None
