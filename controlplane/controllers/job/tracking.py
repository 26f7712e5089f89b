"""Counting a Job's finished pods exactly once, without the ``job-tracking`` finalizer.

Kubernetes' two-step bookkeeping, with an annotation on the pod where Kubernetes removes
a finalizer: a pod seen finished for the first time has its uid written into
``status.uncountedTerminatedPods`` (a status write guarded by resourceVersion); only
then is the pod annotated ``batch.bramble.dev/counted``; once the cache shows the
annotation (or the pod is gone), the uid moves from the uncounted list into the
``succeeded``/``failed`` counters. So the counters plus the uncounted lists are the
count at every moment, a count survives the pod being deleted once its uid is recorded,
and a stale pod cache can never count a pod twice (a pod leaves the uncounted list only
when the cache already shows it marked).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

Obj = dict[str, Any]

COUNTED: Final = "batch.bramble.dev/counted"
FINISHED: Final = ("Succeeded", "Failed")


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def counted(pod: Mapping[str, Any]) -> bool:
    return COUNTED in ((pod.get("metadata") or {}).get("annotations") or {})


@dataclass(frozen=True, slots=True)
class Tally:
    succeeded: int  # counters + uncounted: the numbers the Job decides on
    failed: int
    status: Obj  # the status with the counters and uncounted lists brought forward
    newly_succeeded: tuple[Obj, ...]
    newly_failed: tuple[Obj, ...]
    mark: tuple[str, ...]  # pods to annotate once ``status`` is written


def tally(status: Mapping[str, Any], pods: Iterable[Obj], *, count_new: bool = True) -> Tally:
    """``count_new=False`` for a finished Job: its remaining pods were already counted
    when it finished (as failed, when it deleted them)."""
    pods = sorted(pods, key=lambda p: str(p["metadata"].get("name")))
    uncounted = status.get("uncountedTerminatedPods") or {}
    lists = {
        "Succeeded": [str(u) for u in uncounted.get("succeeded") or []],
        "Failed": [str(u) for u in uncounted.get("failed") or []],
    }
    known = set(lists["Succeeded"]) | set(lists["Failed"])
    newly: dict[str, list[Obj]] = {"Succeeded": [], "Failed": []}
    by_uid = {str(p["metadata"].get("uid")): p for p in pods}
    for pod in pods:
        uid = str(pod["metadata"].get("uid"))
        if count_new and phase(pod) in FINISHED and not counted(pod) and uid not in known:
            newly[phase(pod)].append(pod)
            lists[phase(pod)].append(uid)
    result = dict(status)
    remaining: dict[str, list[str]] = {}
    for which, field in (("Succeeded", "succeeded"), ("Failed", "failed")):
        settled = [u for u in lists[which] if u not in by_uid or counted(by_uid[u])]
        result[field] = int(status.get(field) or 0) + len(settled)
        remaining[field] = [u for u in lists[which] if u not in settled]
    result["uncountedTerminatedPods"] = {k: v for k, v in remaining.items() if v}
    mark = tuple(
        str(by_uid[u]["metadata"]["name"])
        for u in (*remaining["succeeded"], *remaining["failed"])
        if u in by_uid
    )
    return Tally(
        succeeded=result["succeeded"] + len(remaining["succeeded"]),
        failed=result["failed"] + len(remaining["failed"]),
        status=result,
        newly_succeeded=tuple(newly["Succeeded"]),
        newly_failed=tuple(newly["Failed"]),
        mark=mark,
    )
