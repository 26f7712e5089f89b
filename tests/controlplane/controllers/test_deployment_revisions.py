"""Revisions, template hashes and the Deployment's conditions as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.controllers.deployment import revisions as rv
from controlplane.controllers.deployment import status as st

Obj = dict[str, Any]
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
TEMPLATE: Obj = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}}


def rs(name: str, *, revision: str | None = None, created: str = "", **rest: Any) -> Obj:
    meta: Obj = {"name": name, "creationTimestamp": created}
    if revision is not None:
        meta["annotations"] = {rv.REVISION: revision}
    return {"metadata": meta, **rest}


def test_hash_is_stable_safe_and_depends_on_template_and_collisions() -> None:
    reordered = {"spec": {"containers": [{"name": "a"}]}, "metadata": {"labels": {"app": "web"}}}
    first = rv.compute_hash(TEMPLATE, None)
    assert first == rv.compute_hash(reordered, None)  # dict order does not matter
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rv.compute_hash(TEMPLATE, 1) != first
    assert rv.compute_hash(TEMPLATE, 1) != rv.compute_hash(TEMPLATE, 2)
    # Null and empty are absent, as for Go's zero values (kubectl's undo sends nulls).
    with_nulls = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}, "x": {}}}
    assert rv.compute_hash({**TEMPLATE, **with_nulls}, None) == first
    assert rv.equal_ignore_hash({**TEMPLATE, **with_nulls}, TEMPLATE)
    other = {**TEMPLATE, "spec": {"containers": [{"name": "b"}]}}
    assert rv.compute_hash(other, None) != first


def test_find_new_ignores_the_hash_label_and_prefers_the_oldest() -> None:
    hashed = {"metadata": {"labels": {"app": "web", rv.HASH_LABEL: "x"}}, "spec": TEMPLATE["spec"]}
    other = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "b"}]}}
    sets = [
        rs("young", created="2026-01-02T00:00:00Z", spec={"template": hashed}),
        rs("other", created="2026-01-01T00:00:00Z", spec={"template": other}),
        rs("old", created="2026-01-01T00:00:01Z", spec={"template": hashed}),
    ]
    found = rv.find_new(TEMPLATE, sets)
    assert found is not None
    assert found["metadata"]["name"] == "old"
    assert rv.find_new({"spec": {}}, sets) is None


@pytest.mark.parametrize(
    ("before", "new_revision", "after", "changed"),
    [
        ({}, 3, {rv.REVISION: "3", "note": "hi"}, True),  # a new ReplicaSet
        ({rv.REVISION: "3", "note": "hi"}, 3, {rv.REVISION: "3", "note": "hi"}, False),
        # An old ReplicaSet becomes new again (a rollback): its old revision is history.
        (
            {rv.REVISION: "1", "note": "hi"},
            4,
            {rv.REVISION: "4", rv.REVISION_HISTORY: "1", "note": "hi"},
            True,
        ),
        (
            {rv.REVISION: "2", rv.REVISION_HISTORY: "1", "note": "hi"},
            5,
            {rv.REVISION: "5", rv.REVISION_HISTORY: "1,2", "note": "hi"},
            True,
        ),
        # The revision never goes down.
        ({rv.REVISION: "6", "note": "hi"}, 5, {rv.REVISION: "6", "note": "hi"}, False),
        # Garbage in the revision: left alone (the copied annotation still counts).
        ({rv.REVISION: "x"}, 5, {rv.REVISION: "x", "note": "hi"}, True),
    ],
)
def test_set_new_rs_annotations(
    before: dict[str, str], new_revision: int, after: dict[str, str], changed: bool
) -> None:
    deployment = {
        "metadata": {
            "annotations": {
                "note": "hi",
                rv.REVISION: "9",  # the Deployment's own: never copied
                rv.LAST_APPLIED: "{}",
            }
        }
    }
    annotations = dict(before)
    assert rv.set_new_rs_annotations(deployment, annotations, new_revision) is changed
    assert annotations == after


def test_revision_history_is_bounded() -> None:
    long = ",".join(str(i) for i in range(1000, 1400))  # 1999 characters
    annotations = {rv.REVISION: "5000", rv.REVISION_HISTORY: long}
    rv.set_new_rs_annotations({}, annotations, 5001)
    history = annotations[rv.REVISION_HISTORY]
    assert len(history) <= rv.HISTORY_CHARS
    assert history.endswith(",5000")
    assert not history.startswith("1000,")


def zero(name: str, revision: str, **status: Any) -> Obj:
    return rs(
        name,
        revision=revision,
        spec={"replicas": 0},
        status={"replicas": 0, "observedGeneration": 1, **status},
    )


@pytest.mark.parametrize(
    ("old", "limit", "deleted"),
    [
        ([zero("a", "1"), zero("b", "2"), zero("c", "3")], 1, ["a", "b"]),
        ([zero("a", "1"), zero("b", "2")], 2, []),
        ([zero("c", "3"), zero("a", "1"), zero("b", "2")], 0, ["a", "b", "c"]),
        # Still running pods, or not yet seen at zero by its controller: kept.
        ([zero("a", "1", replicas=1), zero("b", "2")], 0, ["b"]),
        ([{**zero("a", "1"), "spec": {"replicas": 2}}, zero("b", "2")], 1, []),
        ([{**zero("a", "1"), "metadata": {"name": "a", "generation": 2}}, zero("b", "2")], 1, []),
    ],
)
def test_history_to_delete(old: list[Obj], limit: int, deleted: list[str]) -> None:
    assert [r["metadata"]["name"] for r in rv.history_to_delete(old, limit)] == deleted


# --- status --------------------------------------------------------------------------


def deployment(replicas: int = 3, *, generation: int = 2, status: Obj | None = None) -> Obj:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 60},
        "status": status or {},
    }


def counts(spec: int, **status: int) -> Obj:
    return {"spec": {"replicas": spec}, "status": status}


def test_calculate_status_counts_and_availability() -> None:
    new = counts(2, replicas=2, readyReplicas=2, availableReplicas=1)
    old = counts(2, replicas=3, readyReplicas=3, availableReplicas=3)
    status = st.calculate_status(deployment(), [old, new], new, max_unavailable=0, now=NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 2,
        "replicas": 5,
        "updatedReplicas": 2,
        "readyReplicas": 5,
        "availableReplicas": 4,
        "unavailableReplicas": 0,  # 4 wanted, 4 available (never negative)
    }
    available = st.get_condition(status, st.AVAILABLE)
    assert available is not None
    assert available["reason"] == st.MIN_AVAILABLE
    short = st.calculate_status(deployment(5), [new], new, max_unavailable=1, now=NOW)
    cond = st.get_condition(short, st.AVAILABLE)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", st.MIN_UNAVAILABLE)
    assert short["unavailableReplicas"] == 1


def test_set_condition_keeps_transition_time_when_status_holds() -> None:
    status: Obj = {}
    st.set_condition(status, st.condition("Progressing", "True", "A", "m", NOW))
    later = NOW + timedelta(minutes=1)
    st.set_condition(status, st.condition("Progressing", "True", "A", "m2", later))
    assert status["conditions"][0]["message"] == "m"  # same status and reason: no change
    st.set_condition(status, st.condition("Progressing", "True", "B", "m3", later))
    cond = status["conditions"][0]
    assert (cond["reason"], cond["lastTransitionTime"]) == ("B", st.timestamp(NOW))
    assert cond["lastUpdateTime"] == st.timestamp(later)
    st.set_condition(status, st.condition("Progressing", "False", "C", "m4", later))
    assert status["conditions"][0]["lastTransitionTime"] == st.timestamp(later)


def progress(reason: str, at: datetime, status: str = "True") -> Obj:
    return st.condition(st.PROGRESSING, status, reason, "", at)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        # Everything updated and available: done.
        (
            {
                "replicas": 3,
                "updatedReplicas": 3,
                "availableReplicas": 2,
                "conditions": [progress(st.RS_UPDATED, NOW)],
            },
            {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
            st.NEW_RS_AVAILABLE,
        ),
        # More updated pods than before: progress.
        (
            {"replicas": 3, "updatedReplicas": 1, "conditions": [progress(st.NEW_RS_CREATED, NOW)]},
            {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2},
            st.RS_UPDATED,
        ),
        # No progress, deadline not passed: unchanged.
        (
            {
                "replicas": 4,
                "updatedReplicas": 1,
                "conditions": [progress(st.RS_UPDATED, NOW - timedelta(seconds=30))],
            },
            {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1},
            st.RS_UPDATED,
        ),
        # No progress for longer than progressDeadlineSeconds: timed out.
        (
            {
                "replicas": 4,
                "updatedReplicas": 1,
                "conditions": [progress(st.RS_UPDATED, NOW - timedelta(seconds=61))],
            },
            {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1},
            st.TIMED_OUT,
        ),
    ],
)
def test_rollout_status_progressing(old: Obj, new: Obj, reason: str) -> None:
    d = deployment(status=old)
    new = {**new, "conditions": list(old.get("conditions") or [])}
    st.rollout_status(d, new, "web-abc", now=NOW)
    cond = st.get_condition(new, st.PROGRESSING)
    assert cond is not None
    assert cond["reason"] == reason
    if reason == st.TIMED_OUT:
        assert cond["status"] == "False"
        assert cond["message"] == 'ReplicaSet "web-abc" has timed out progressing.'


def test_requeue_after_waits_for_the_deadline() -> None:
    started = NOW - timedelta(seconds=50)
    d = deployment(status={"conditions": [progress(st.RS_UPDATED, started)]})
    assert st.requeue_after(d, {"replicas": 1}, NOW) == pytest.approx(11.0)
    done = deployment(status={"conditions": [progress(st.TIMED_OUT, started, "False")]})
    assert st.requeue_after(done, {"replicas": 1}, NOW) is None


@pytest.mark.parametrize(
    ("paused", "current", "reason"),
    [
        (True, None, st.PAUSED),
        (True, st.PAUSED, None),
        (False, st.PAUSED, st.RESUMED),
        (False, st.RS_UPDATED, None),
        (True, st.TIMED_OUT, None),  # a timed-out rollout stays timed out
    ],
)
def test_paused_condition(paused: bool, current: str | None, reason: str | None) -> None:
    status = {"conditions": [progress(current, NOW)]} if current else {}
    d = deployment(status=status)
    d["spec"]["paused"] = paused
    cond = st.paused_condition(d, NOW)
    assert (cond["reason"] if cond else None) == reason
    if cond is not None:
        assert cond["status"] == "Unknown"
