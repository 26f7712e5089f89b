"""The rollout arithmetic and Recreate's wait for old pods as tables (several rows are
Kubernetes' own cases from pkg/controller/deployment: TestNewRSNewReplicas,
reconcileOldReplicaSets, TestScale)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.controllers.deployment.rolling import (
    RSView,
    Spec,
    _round_half_away,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    proportional_scale,
    resolve_fenceposts,
    rolling_scale_down,
    scaled_value,
)
from controlplane.controllers.deployment.rollout import old_pods_running

T1, T2, T3 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (3, 10, True, 3),
        ("25%", 10, True, 3),  # 2.5 rounds up for surge
        ("25%", 10, False, 2),  # and down for unavailable
        ("25%", 1, True, 1),
        ("25%", 1, False, 0),
        ("100%", 7, False, 7),
        ("0%", 7, True, 0),
    ],
)
def test_scaled_value(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("bad", ["abc", "25", "x%", True, 2.5, None, ["1"]])
def test_scaled_value_rejects_garbage(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"IntOrString|percentage"):
        scaled_value(bad, 10, round_up=True)


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),
        ("25%", "25%", 1, (1, 0)),
        (0, 0, 5, (0, 1)),  # both zero: one may be unavailable so the rollout moves
        ("10%", "10%", 5, (1, 0)),
        ("0%", "10%", 5, (0, 1)),  # 0.5 rounds down to 0, then the fencepost rule
        (1, "50%", 3, (1, 1)),
    ],
)
def test_resolve_fenceposts(
    surge: int | str, unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(
    ("spec", "surge", "unavailable"),
    [
        (Spec(replicas=10), 3, 2),
        (Spec(replicas=3, max_surge=0, max_unavailable=5), 0, 3),  # capped at replicas
        (Spec(replicas=0, max_surge=1, max_unavailable=1), 1, 0),
        (Spec(replicas=4, rolling=False), 0, 0),  # Recreate
    ],
)
def test_max_surge_and_unavailable(spec: Spec, surge: int, unavailable: int) -> None:
    assert (max_surge(spec), max_unavailable(spec)) == (surge, unavailable)


@pytest.mark.parametrize(
    ("spec", "old", "new", "expected"),
    [
        # Kubernetes' "can not scale up - to newRSReplicas": already at the surge limit.
        (Spec(replicas=1, max_surge=1), [5], 5, 5),
        # Kubernetes' "scale up - to depReplicas": the surge would allow more than needed.
        (Spec(replicas=6, max_surge=10), [3], 2, 6),
        (Spec(replicas=3, rolling=False), [1], 1, 3),  # Recreate: everything at once
        (Spec(replicas=3), [3], 0, 1),  # 25% of 3 rounds up to one surge pod
        (Spec(replicas=10), [10], 0, 3),
        (Spec(replicas=10), [8], 3, 5),  # old ones shrank by two: two more new
        (Spec(replicas=4, max_surge=0, max_unavailable=1), [4], 0, 0),  # no surge at all
    ],
)
def test_new_rs_new_replicas(spec: Spec, old: list[int], new: int, expected: int) -> None:
    new_view = RSView("new", new)
    views = [RSView(f"old-{i}", n) for i, n in enumerate(old)] + [new_view]
    assert new_rs_new_replicas(spec, views, new_view) == expected


@pytest.mark.parametrize(
    ("spec", "old", "new", "expected"),
    [
        # Kubernetes' reconcileOldReplicaSets row: maxSurge 0 and maxUnavailable 0
        # resolve to one unavailable, so one old pod may go.
        (
            Spec(10, max_surge=0, max_unavailable=0),
            [RSView("a", 10, 10, T1)],
            RSView("n", 0),
            {"a": 9},
        ),
        # 13 pods, 8 must stay available, the 3 new ones are not available yet.
        (Spec(10), [RSView("a", 10, 10, T1)], RSView("n", 3, 0, T3), {"a": 8}),
        # Unavailable old pods go first (b: 3 of 4 not available), then the oldest.
        (
            Spec(10, max_surge=2, max_unavailable=2),
            [RSView("a", 6, 6, T1), RSView("b", 4, 1, T2)],
            RSView("n", 2, 2, T3),
            {"b": 1, "a": 5},
        ),
        # maxUnavailable 0 and the surge pod not ready: nothing may go.
        (Spec(3, max_surge=1, max_unavailable=0), [RSView("a", 3, 3, T1)], RSView("n", 1, 0), {}),
        (
            Spec(3, max_surge=1, max_unavailable=0),
            [RSView("a", 3, 3, T1)],
            RSView("n", 1, 1),
            {"a": 2},
        ),
        (Spec(3), [RSView("a", 0, 0, T1)], RSView("n", 3, 3), {}),  # nothing old left
        # Oldest first among several available old ReplicaSets.
        (
            Spec(4, max_surge=0, max_unavailable=2),
            [RSView("b", 2, 2, T2), RSView("a", 2, 2, T1)],
            RSView("n", 0),
            {"a": 0},
        ),
    ],
)
def test_rolling_scale_down(
    spec: Spec, old: list[RSView], new: RSView, expected: dict[str, int]
) -> None:
    assert rolling_scale_down(spec, old, new) == expected


def mk(name: str, replicas: int, created: str, *, most: int | None = None) -> RSView:
    return RSView(name, replicas, replicas, created, desired=None, max_replicas=most)


@pytest.mark.parametrize(
    ("spec", "new", "old", "status_replicas", "expected"),
    [
        # One active ReplicaSet takes the whole count.
        (Spec(5), RSView("n", 3, created=T2), [RSView("o", 0, created=T1)], 3, {"n": 5}),
        (Spec(5), RSView("n", 5, created=T2), [], 5, {}),  # already there
        # None active: the new one, or else the newest old one.
        (Spec(2), RSView("n", 0, created=T2), [RSView("o", 0, created=T1)], 0, {"n": 2}),
        (Spec(2), None, [RSView("o1", 0, created=T1), RSView("o2", 0, created=T2)], 0, {"o2": 2}),
        # A saturated new ReplicaSet: the old ones go to zero.
        (
            Spec(3),
            RSView("n", 3, 3, T2, desired=3),
            [RSView("o", 1, 1, T1)],
            4,
            {"o": 0},
        ),
        # Kubernetes' "proportional scaling: 5 -> 10" (surge 0, unavailable 1).
        (
            Spec(10, max_surge=0, max_unavailable=1),
            mk("v2", 2, T2, most=5),
            [mk("v1", 3, T1, most=5)],
            5,
            {"v1": 6, "v2": 4},
        ),
        # Kubernetes' "proportional scaling: 5 -> 3".
        (
            Spec(3, max_surge=0, max_unavailable=1),
            mk("v2", 2, T2, most=5),
            [mk("v1", 3, T1, most=5)],
            5,
            {"v1": 2, "v2": 1},
        ),
        # Kubernetes' "leftover distribution: 3 -> 4": the rounding leftover goes to the
        # biggest, and among equals to the newest when scaling up.
        (
            Spec(4, max_surge=0, max_unavailable=1),
            mk("v3", 1, T3, most=3),
            [mk("v1", 1, T1, most=3), mk("v2", 1, T2, most=3)],
            3,
            {"v3": 2, "v2": 1, "v1": 1},
        ),
        # ... and to the oldest when scaling down.
        (
            Spec(2, max_surge=0, max_unavailable=1),
            mk("v3", 1, T3, most=3),
            [mk("v1", 1, T1, most=3), mk("v2", 1, T2, most=3)],
            3,
            {"v3": 1, "v2": 1, "v1": 0},
        ),
        # No max-replicas annotation: the Deployment's status.replicas is the base.
        (
            Spec(10, max_surge=0, max_unavailable=1),
            mk("v2", 2, T2),
            [mk("v1", 3, T1)],
            5,
            {"v1": 6, "v2": 4},
        ),
        # Scaled to zero mid-rollout: everything goes.
        (
            Spec(0, max_surge=1, max_unavailable=1),
            mk("v2", 2, T2, most=6),
            [mk("v1", 3, T1, most=6)],
            5,
            {"v1": 0, "v2": 0},
        ),
        # Recreate is never scaled proportionally.
        (Spec(4, rolling=False), mk("v2", 2, T2), [mk("v1", 3, T1)], 5, {}),
    ],
)
def test_proportional_scale(
    spec: Spec,
    new: RSView | None,
    old: list[RSView],
    status_replicas: int,
    expected: dict[str, int],
) -> None:
    assert proportional_scale(spec, new, old, status_replicas=status_replicas) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 3), (1.5, 2), (1.4, 1), (-2.5, -3), (-1.4, -1), (0.0, 0)]
)
def test_rounding_is_half_away_from_zero(value: float, expected: int) -> None:
    assert _round_half_away(value) == expected


def _rs(uid: str, replicas: int = 0) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "status": {"replicas": replicas}}


def _pod(phase: str, *, deleting: bool = False) -> dict[str, Any]:
    meta = {"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {}
    return {"metadata": meta, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("old", "pods", "running"),
    [
        ([_rs("a")], {}, False),
        ([_rs("a", replicas=1)], {}, True),  # its ReplicaSet still counts one
        ([_rs("a")], {"a": [_pod("Running", deleting=True)]}, True),  # terminating counts
        ([_rs("a")], {"a": [_pod("Pending")]}, True),
        ([_rs("a")], {"a": [_pod("Succeeded"), _pod("Failed")]}, False),  # finished
        ([_rs("a")], {"n": [_pod("Running")]}, False),  # the new ReplicaSet's pods
    ],
)
def test_recreate_waits_while_old_pods_run(
    old: list[dict[str, Any]], pods: dict[str, list[dict[str, Any]]], running: bool
) -> None:
    new = _rs("n")
    assert old_pods_running(new, old, lambda uid: pods.get(uid, [])) is running
