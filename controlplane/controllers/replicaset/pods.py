"""Facts about pods that a workload controller reads (Kubernetes' controller_utils and
podutil): which pods count, which are ready and since when, who controls them, and the pod
a template stands for. Pure functions over wire objects; nothing here mutates its input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

Obj = dict[str, Any]


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def phase(pod: Mapping[str, Any]) -> str:
    status = pod.get("status")
    value = status.get("phase") if isinstance(status, dict) else None
    return value if isinstance(value, str) else "Pending"


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts towards replicas: not finished and not being deleted (FilterActivePods)."""
    return phase(pod) not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for cond in conditions if isinstance(conditions, list) else []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod became ready (its Ready condition's lastTransitionTime), if it is."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def available_at(pod: Mapping[str, Any], min_ready_seconds: int) -> datetime | None:
    """When a ready pod counts as available (``IsPodAvailable``); None when it is not
    ready, or ready without a transition time while minReadySeconds is set."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return datetime.min
    since = ready_since(pod)
    return None if since is None else since + timedelta(seconds=min_ready_seconds)


def restarts(pod: Mapping[str, Any]) -> int:
    status = pod.get("status")
    statuses = status.get("containerStatuses") if isinstance(status, dict) else None
    counts = [
        s.get("restartCount", 0)
        for s in (statuses if isinstance(statuses, list) else [])
        if isinstance(s, dict) and isinstance(s.get("restartCount", 0), int)
    ]
    return max(counts, default=0)


def pod_from_template(template: Mapping[str, Any], *, owner_ref: Obj, prefix: str) -> Obj:
    """The pod a template stands for (``GetPodFromTemplate``): its labels, annotations,
    finalizers and spec, a generated name and the controller's reference."""
    template_meta = template.get("metadata")
    tmeta = template_meta if isinstance(template_meta, dict) else {}
    metadata: Obj = {"generateName": prefix, "ownerReferences": [owner_ref]}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            metadata[key] = copy.deepcopy(tmeta[key])
    spec = template.get("spec")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(spec) if isinstance(spec, dict) else {},
    }
