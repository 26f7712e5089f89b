"""The Job's pure decisions as tables: counting finished pods exactly once (even after
they are deleted), completion, failure by backoffLimit and deadline, parallelism, the
failure back-off, and when the TTL controller may delete a finished Job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.controllers.job.plan import Backoff, JobPlan, plan_job
from controlplane.controllers.job.tracking import COUNTED, tally
from controlplane.controllers.ttlafterfinished import expires_at

Obj = dict[str, Any]
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
START = "2026-01-01T11:59:50Z"  # ten seconds ago


def pod(uid: str, phase: str = "Running", *, marked: bool = False, ready: bool = False,
        restarts: int = 0) -> Obj:  # fmt: skip
    meta: Obj = {"name": f"p-{uid}", "uid": uid, "creationTimestamp": "2026-01-01T11:59:55Z"}
    if marked:
        meta["annotations"] = {COUNTED: ""}
    return {
        "metadata": meta,
        "spec": {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [{"name": "app", "restartCount": restarts}],
        },
    }


def status(succeeded: int = 0, failed: int = 0, *, s: tuple[str, ...] = (),
           f: tuple[str, ...] = ()) -> Obj:  # fmt: skip
    uncounted = {k: list(v) for k, v in (("succeeded", s), ("failed", f)) if v}
    return {"succeeded": succeeded, "failed": failed, "uncountedTerminatedPods": uncounted}


@pytest.mark.parametrize(
    ("before", "pods", "totals", "after", "mark"),
    [
        # first seen finished: recorded as uncounted, to be marked
        (status(), [pod("a", "Succeeded")], (1, 0), status(s=("a",)), ["p-a"]),
        # marked and seen so: moves into the counter
        (status(s=("a",)), [pod("a", "Succeeded", marked=True)], (1, 0), status(1), []),
        # recorded but the mark is not visible yet: stays, is marked again, not recounted
        (status(s=("a",)), [pod("a", "Succeeded")], (1, 0), status(s=("a",)), ["p-a"]),
        # recorded and then deleted: counted all the same
        (status(f=("a",)), [], (0, 1), status(0, 1), []),
        # counted and deleted: the counter keeps it
        (status(2, 1), [pod("c", "Failed")], (2, 2), status(2, 1, f=("c",)), ["p-c"]),
        # counted, still there: not counted again
        (status(1), [pod("a", "Succeeded", marked=True)], (1, 0), status(1), []),
        (status(), [pod("a")], (0, 0), status(), []),
    ],
)
def test_tally(before: Obj, pods: list[Obj], totals: tuple[int, int], after: Obj,
               mark: list[str]) -> None:  # fmt: skip
    result = tally(before, pods)
    assert (result.succeeded, result.failed) == totals
    assert result.status == after
    assert list(result.mark) == mark


def job(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "j", "namespace": "ns", "uid": "u"},
        "spec": {"parallelism": 1, "backoffLimit": 6,
                 "template": {"spec": {"restartPolicy": "Never"}}, **spec},
        "status": {"startTime": START, **status()},
    }  # fmt: skip


def plan(the_job: Obj, pods: list[Obj], backoff: Backoff | None = None) -> JobPlan:
    return plan_job(the_job, pods, now=NOW, backoff=backoff or Backoff(), backoff_base=10,
                    backoff_max=360)  # fmt: skip


def reasons(p: JobPlan) -> list[str]:
    return [c.get("reason", "") for c in p.status.get("conditions") or [] if c["status"] == "True"]


def test_a_new_job_starts_its_clock_and_its_pods() -> None:
    fresh = job(completions=5, parallelism=2)
    del fresh["status"]["startTime"]
    p = plan(fresh, [])
    assert (p.create, p.status["startTime"]) == (2, "2026-01-01T12:00:00Z")


@pytest.mark.parametrize(
    ("spec", "pods", "create", "delete"),
    [
        ({"completions": 5, "parallelism": 2}, [pod("a")], 1, 0),
        ({"completions": 5, "parallelism": 2}, [pod("a"), pod("b")], 0, 0),
        ({"completions": 5, "parallelism": 1}, [pod("a"), pod("b")], 0, 1),
        # only as many as completions still need
        (
            {"completions": 2, "parallelism": 3},
            [pod("a", "Succeeded", marked=True), pod("b")],
            0,
            0,
        ),
        # a work queue starts no pod once one succeeded
        ({"parallelism": 3}, [pod("a", "Succeeded"), pod("b")], 0, 0),
        ({"parallelism": 3}, [pod("b")], 2, 0),
        ({"completions": 2, "parallelism": 2, "suspend": True}, [pod("a")], 0, 1),
    ],
)
def test_parallelism(spec: Obj, pods: list[Obj], create: int, delete: int) -> None:
    the_job = job(**spec)
    if any(p["metadata"].get("annotations") for p in pods):
        the_job["status"]["uncountedTerminatedPods"] = {"succeeded": ["a"]}
    p = plan(the_job, pods)
    assert (p.create, len(p.delete)) == (create, delete)


def test_completion_waits_for_counts_then_completes() -> None:
    the_job = job(completions=1)
    first = plan(the_job, [pod("a", "Succeeded")])
    assert reasons(first) == []  # recorded as uncounted first
    the_job["status"] = first.status
    second = plan(the_job, [pod("a", "Succeeded", marked=True)])
    assert reasons(second) == ["CompletionsReached"]
    assert second.status["succeeded"] == 1
    assert second.status["completionTime"] == "2026-01-01T12:00:00Z"
    assert [e.reason for e in second.events] == ["Completed"]


def test_work_queue_completes_when_none_runs() -> None:
    the_job = job(parallelism=2)
    the_job["status"]["succeeded"] = 1
    assert reasons(plan(the_job, [pod("b")])) == []
    assert reasons(plan(the_job, [])) == ["CompletionsReached"]


@pytest.mark.parametrize(
    ("spec", "failed", "pods", "reason"),
    [
        ({"backoffLimit": 1}, 1, [pod("a")], None),
        ({"backoffLimit": 1}, 2, [pod("a")], "BackoffLimitExceeded"),
        ({"backoffLimit": 0}, 1, [], "BackoffLimitExceeded"),
        # OnFailure: the kubelet restarts containers; their restarts count
        (
            {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure"}}},
            0,
            [pod("a", restarts=2)],
            "BackoffLimitExceeded",
        ),
        (
            {"backoffLimit": 3, "template": {"spec": {"restartPolicy": "OnFailure"}}},
            0,
            [pod("a", restarts=2)],
            None,
        ),
        ({"activeDeadlineSeconds": 10}, 0, [pod("a")], "DeadlineExceeded"),
        ({"activeDeadlineSeconds": 11}, 0, [pod("a")], None),
    ],
)
def test_failure(spec: Obj, failed: int, pods: list[Obj], reason: str | None) -> None:
    the_job = job(completions=1, **spec)
    the_job["status"]["failed"] = failed
    p = plan(the_job, pods)
    if reason is None:
        assert reasons(p) == []
        return
    assert reasons(p) == [reason]
    # the running pods are deleted, and counted as failed in the same write
    assert list(p.delete) == [x["metadata"]["name"] for x in pods]
    assert p.status["failed"] == failed + len(pods)
    assert p.status["active"] == 0


def test_the_deadline_is_looked_at_again_in_time() -> None:
    p = plan(job(completions=1, activeDeadlineSeconds=15), [pod("a")])
    assert p.requeue_after == pytest.approx(5)


@pytest.mark.parametrize(
    ("backoff", "create", "wait"),
    [
        (Backoff(), 1, None),
        (Backoff(1, NOW - timedelta(seconds=4)), 0, 6),  # 10 s after one failure
        (Backoff(3, NOW - timedelta(seconds=4)), 0, 36),  # 40 s after three
        (Backoff(1, NOW - timedelta(seconds=11)), 1, None),
        (Backoff(9, NOW), 0, 360),  # capped
    ],
)
def test_backoff_before_replacing_a_failed_pod(backoff: Backoff, create: int,
                                               wait: float | None) -> None:  # fmt: skip
    p = plan(job(completions=1), [], backoff)
    assert p.create == create
    assert p.requeue_after == (None if wait is None else pytest.approx(wait))


def test_a_new_failure_feeds_the_backoff() -> None:
    p = plan(job(completions=1), [pod("a", "Failed")], Backoff(1, NOW - timedelta(seconds=60)))
    assert p.backoff == Backoff(2, NOW)
    assert p.counted_new
    assert p.create == 0  # 20 s from now


def test_a_finished_job_only_cleans_up_and_settles() -> None:
    the_job = job(completions=1)
    the_job["status"]["conditions"] = [{"type": "Failed", "status": "True"}]
    the_job["status"]["uncountedTerminatedPods"] = {"failed": ["a"]}
    p = plan(the_job, [pod("a", "Failed", marked=True), pod("b"), pod("c", "Failed")])
    assert list(p.delete) == ["p-b"]
    assert p.status["failed"] == 1  # "a" settled; "c" finished after the Job: not counted
    assert p.create == 0


@pytest.mark.parametrize(
    ("ttl", "conditions", "completion", "expected"),
    [
        (None, [("Complete", "True", "2026-01-01T12:00:00Z")], None, None),
        (5, [], None, None),
        (5, [("Complete", "False", "2026-01-01T12:00:00Z")], None, None),
        (5, [("Failed", "True", "2026-01-01T12:00:00Z")], None, NOW + timedelta(seconds=5)),
        (0, [("Complete", "True", "2026-01-01T11:00:00Z")], "2026-01-01T12:00:00Z", NOW),
    ],
)
def test_ttl_expiry(ttl: int | None, conditions: list[tuple[str, str, str]],
                    completion: str | None, expected: datetime | None) -> None:  # fmt: skip
    found = [{"type": t, "status": s, "lastTransitionTime": at} for t, s, at in conditions]
    the_job: Obj = {
        "spec": {"ttlSecondsAfterFinished": ttl},
        "status": {"conditions": found, "completionTime": completion},
    }
    assert expires_at(the_job) == expected
