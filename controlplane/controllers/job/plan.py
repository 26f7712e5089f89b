"""A Job's decisions as a pure function of the Job, its pods and the clock (Kubernetes'
``syncJob`` for NonIndexed Jobs), so they are tested as tables.

In order: count finished pods (``tracking``); a finished Job only cleans up; the Job
fails when its failures exceed ``backoffLimit`` (for ``restartPolicy: OnFailure``, when
its running pods' container restarts reach it) or it has been active longer than
``activeDeadlineSeconds``: its running pods are deleted and counted as failed, in the
same status write that fails it (finishing waits until no finished pod is left
uncounted, so the counts are final when the condition appears). It completes when
``completions`` pods succeeded, or, without completions (a work queue), when one
succeeded and none is running. Otherwise it keeps ``min(parallelism, completions -
succeeded)`` pods running (a work queue stops starting pods once one succeeded), waiting
out the failure back-off (``base`` doubling per failure since the last success, capped)
before replacing a failed pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from controlplane.controllers.job.tracking import FINISHED, phase, tally

Obj = dict[str, Any]

DEFAULT_BACKOFF_LIMIT: Final = 6
BACKOFF_LIMIT_MESSAGE: Final = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE: Final = "Job was active longer than specified deadline"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Failures since the last success and when the latest happened (in memory, as
    Kubernetes' backoffRecord)."""

    failures: int = 0
    last_failure: datetime | None = None

    def remaining(self, now: datetime, *, base: float, cap: float) -> float:
        if not self.failures or self.last_failure is None:
            return 0.0
        delay = min(base * 2 ** (self.failures - 1), cap)
        return max((self.last_failure - now).total_seconds() + float(delay), 0.0)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class JobPlan:
    status: Obj
    backoff: Backoff
    create: int = 0
    delete: tuple[str, ...] = ()
    mark: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    counted_new: bool = field(default=False)


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def finished_condition(job: Mapping[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None


def is_active(pod: Mapping[str, Any]) -> bool:
    return phase(pod) not in FINISHED and not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def finish_time(pod: Mapping[str, Any], now: datetime) -> datetime:
    status = pod.get("status") or {}
    times = [
        parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for c in (status.get("containerStatuses") or [])
    ]
    return max((t for t in times if t is not None), default=now)


def deletion_order(pod: Mapping[str, Any]) -> tuple[int, int, int, str]:
    """Kubernetes' ActivePods order: unbound, then pending, then not ready, then the
    newest go first."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    created = str((pod.get("metadata") or {}).get("creationTimestamp") or "")
    newest_first = "".join(chr(0x10FFFF - ord(c)) for c in created)
    return (int(bool(spec.get("nodeName"))), int(status.get("phase") == "Running"),
            int(is_ready(pod)), newest_first)  # fmt: skip


def _restarts(pods: Sequence[Obj]) -> int:
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") not in ("Running", "Pending"):
            continue
        for c in (
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ):
            total += int(c.get("restartCount") or 0)
    return total


def _condition(kind: str, reason: str, message: str, now: datetime) -> Obj:
    return {"type": kind, "status": "True", "lastProbeTime": stamp(now),
            "lastTransitionTime": stamp(now), "reason": reason, "message": message}  # fmt: skip


def _next_backoff(
    backoff: Backoff, succeeded: Sequence[Obj], failed: Sequence[Obj], now: datetime
) -> Backoff:
    if not succeeded and not failed:
        return backoff
    failures = [finish_time(p, now) for p in failed]
    last = max(failures, default=backoff.last_failure)
    if succeeded:
        success = max(finish_time(p, now) for p in succeeded)
        return Backoff(sum(1 for t in failures if t > success), last)
    return Backoff(backoff.failures + len(failures), last)


def plan_job(
    job: Mapping[str, Any],
    pods: Sequence[Obj],
    *,
    now: datetime,
    backoff: Backoff,
    backoff_base: float,
    backoff_max: float,
) -> JobPlan:
    spec = job.get("spec") or {}
    status = dict(job.get("status") or {})
    finished = finished_condition(job)
    counts = tally(status, pods, count_new=finished is None)
    status = counts.status
    backoff = _next_backoff(backoff, counts.newly_succeeded, counts.newly_failed, now)
    active = [p for p in pods if is_active(p)]
    names = tuple(str(p["metadata"]["name"]) for p in active)
    conditions = list(status.get("conditions") or [])
    counted_new = bool(counts.newly_succeeded or counts.newly_failed)

    def result(**decisions: Any) -> JobPlan:
        return JobPlan(status=status, backoff=backoff, mark=counts.mark, counted_new=counted_new,
                       **decisions)  # fmt: skip

    if finished is not None:
        # Pods whose deletion failed when the Job finished: finish the job.
        status.update(active=0, ready=0)
        return result(delete=names)

    suspended = bool(spec.get("suspend"))
    was_suspended = any(
        c.get("type") == "Suspended" and c.get("status") == "True" for c in conditions
    )
    events: list[Event] = []
    if suspended:
        if not was_suspended:
            conditions = [c for c in conditions if c.get("type") != "Suspended"]
            conditions.append(_condition("Suspended", "JobSuspended", "Job suspended", now))
            events.append(Event("Normal", "Suspended", "Job suspended"))
        status.update(active=0, ready=0, conditions=conditions)
        return result(delete=names, events=tuple(events))
    if was_suspended or not status.get("startTime"):
        if was_suspended:  # the deadline counts from the resume, as in Kubernetes
            conditions = [c for c in conditions if c.get("type") != "Suspended"]
            resumed = {
                **_condition("Suspended", "JobResumed", "Job resumed", now),
                "status": "False",
            }
            conditions.append(resumed)
            events.append(Event("Normal", "Resumed", "Job resumed"))
        status["startTime"] = stamp(now)
    start = parse_time(status.get("startTime")) or now

    limit = spec.get("backoffLimit")
    limit = DEFAULT_BACKOFF_LIMIT if limit is None else int(limit)
    restart_policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    exceeded = counts.failed > limit
    if not exceeded and restart_policy == "OnFailure":
        restarts = _restarts(active)
        exceeded = restarts > 0 if limit == 0 else restarts >= limit
    deadline = spec.get("activeDeadlineSeconds")
    left = (
        None
        if deadline is None
        else (start + timedelta(seconds=int(deadline)) - now).total_seconds()
    )
    failure = None
    if exceeded:
        failure = ("BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE)
    elif left is not None and left <= 0:
        failure = ("DeadlineExceeded", DEADLINE_MESSAGE)
    settling = bool(status["uncountedTerminatedPods"])
    if failure is not None and settling:
        # Finish only once every count is final, as Kubernetes adds the condition only
        # with no uncounted pods left: the marks are on their way, the next sync fails it.
        status["conditions"] = conditions
        return result(events=tuple(events))
    if failure is not None:
        conditions.append(_condition("Failed", *failure, now))
        status.update(
            conditions=conditions, active=0, ready=0, failed=status["failed"] + len(active)
        )
        events.append(Event("Warning", *failure))
        return result(delete=names, events=tuple(events))

    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism") or 0) if "parallelism" in spec else 1
    done = (
        counts.succeeded >= completions
        if completions is not None
        else counts.succeeded > 0 and not active
    )
    if done and settling:
        status["conditions"] = conditions
        return result(events=tuple(events))
    if done:
        conditions.append(
            _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now
            )
        )
        status.update(conditions=conditions, active=0, ready=0, completionTime=stamp(now))
        events.append(Event("Normal", "Completed", "Job completed"))
        return result(delete=names, events=tuple(events))

    if completions is None:
        want = len(active) if counts.succeeded > 0 else parallelism
    else:
        want = max(min(parallelism, int(completions) - counts.succeeded), 0)
    delete: tuple[str, ...] = ()
    create = 0
    waits = [] if left is None else [left]
    if len(active) > want:
        victims = sorted(active, key=deletion_order)[: len(active) - want]
        delete = tuple(str(p["metadata"]["name"]) for p in victims)
    elif len(active) < want:
        remaining = backoff.remaining(now, base=backoff_base, cap=backoff_max)
        if remaining > 0:
            waits.append(remaining)
        else:
            create = want - len(active)
    status.update(
        conditions=conditions,
        active=len(active) - len(delete),
        ready=sum(1 for p in active if is_ready(p) and str(p["metadata"]["name"]) not in delete),
    )
    return result(
        create=create, delete=delete, events=tuple(events),
        requeue_after=min(waits) if waits else None,
    )  # fmt: skip
