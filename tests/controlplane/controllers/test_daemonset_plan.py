"""The DaemonSet's pure decisions as tables: node eligibility (selector, affinity,
taints, the automatic daemon tolerations), the manage step, the rolling update's
choices (delete-first with maxUnavailable, create-first with maxSurge), and the status
arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.controllers.daemonset.eligibility import (
    NOT_HERE,
    RUN,
    Placement,
    daemon_tolerations,
    placement,
)
from controlplane.controllers.daemonset.plan import (
    Limits,
    NodeState,
    Revision,
    daemon_set_status,
    manage,
    pods_to_replace,
    rolling_limits,
    rolling_update,
)
from controlplane.controllers.daemonset.pods import new_pod, target_node, template_hash
from controlplane.scheduler.plugins import node_affinity, node_unschedulable, taint_toleration
from tests.controlplane.scheduler.builders import cluster, fits, info, node, taint

Obj = dict[str, Any]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
REVISION = Revision(hash="new", generation=None, min_ready_seconds=10, now=NOW)
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
            ]
        }
    }
}
TOLERATE_GPU = {"tolerations": [{"key": "gpu", "operator": "Exists"}]}
HOLD: Placement = Placement(False, True)


@pytest.mark.parametrize(
    ("spec", "the_node", "expected"),
    [
        ({}, node("a"), RUN),
        ({"nodeSelector": {"role": "edge"}}, node("a", labels={"role": "edge"}), RUN),
        ({"nodeSelector": {"role": "edge"}}, node("a", labels={"role": "core"}), NOT_HERE),
        ({"nodeSelector": {"role": "edge"}}, node("a"), NOT_HERE),
        ({"affinity": AFFINITY}, node("a", labels={"disk": "ssd"}), RUN),
        ({"affinity": AFFINITY}, node("a", labels={"disk": "hdd"}), NOT_HERE),
        ({"nodeName": "b"}, node("a"), NOT_HERE),
        ({}, node("a", taints=[taint("gpu")]), HOLD),  # not placed, not evicted
        ({}, node("a", taints=[taint("gpu", "NoExecute")]), NOT_HERE),
        ({}, node("a", taints=[taint("gpu", "PreferNoSchedule")]), RUN),
        (TOLERATE_GPU, node("a", taints=[taint("gpu")]), RUN),
        (TOLERATE_GPU, node("a", taints=[taint("gpu", "NoExecute")]), RUN),
        # the automatic tolerations: a NotReady, unreachable or cordoned node keeps its daemon
        ({}, node("a", taints=[taint("node.kubernetes.io/not-ready", "NoExecute")]), RUN),
        ({}, node("a", taints=[taint("node.kubernetes.io/unreachable", "NoExecute")]), RUN),
        ({}, node("a", taints=[taint("node.kubernetes.io/unschedulable")]), RUN),
        ({}, node("a", taints=[taint("node.kubernetes.io/disk-pressure")]), RUN),
        ({}, node("a", taints=[taint("node.kubernetes.io/network-unavailable")]), HOLD),
        (
            {"hostNetwork": True},
            node("a", taints=[taint("node.kubernetes.io/network-unavailable")]),
            RUN,
        ),
    ],
)
def test_placement(spec: Obj, the_node: Obj, expected: Placement) -> None:
    assert placement(spec, the_node) == expected


def test_automatic_tolerations_keep_the_users_and_have_no_time_limit() -> None:
    mine = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 5}  # fmt: skip
    result = daemon_tolerations({"tolerations": [mine]})
    assert result[0] == mine
    keys = [(t["key"], t["effect"]) for t in result]
    assert len(keys) == len(set(keys)) == 6
    assert all("tolerationSeconds" not in t for t in result[1:])


def ds(**spec: Any) -> Obj:
    return {
        "metadata": {"name": "agent", "namespace": "ns", "uid": "u1", "generation": 3},
        "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": spec}},
    }


def test_new_pod_targets_its_node_through_the_scheduler() -> None:
    pod = new_pod(ds(affinity=AFFINITY, containers=[]), "pi-1", "abc")
    assert target_node(pod) == "pi-1"
    assert "nodeName" not in pod["spec"]
    term = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]
    assert (
        term["matchExpressions"]
        == AFFINITY["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]["matchExpressions"]
    )
    assert term["matchFields"] == [{"key": "metadata.name", "operator": "In", "values": ["pi-1"]}]
    assert pod["metadata"]["labels"] == {
        "app": "a", "controller-revision-hash": "abc", "pod-template-generation": "3"
    }  # fmt: skip
    ref = pod["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "DaemonSet", "u1", True, True
    )  # fmt: skip


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    a = template_hash({"spec": {"containers": [{"image": "x"}]}, "metadata": {}})
    assert a == template_hash({"metadata": {}, "spec": {"containers": [{"image": "x"}]}})
    assert a != template_hash({"spec": {"containers": [{"image": "y"}]}, "metadata": {}})
    assert a != template_hash({"spec": {"containers": [{"image": "x"}]}, "metadata": {}}, 1)
    assert set(a) <= set("bcdfghjklmnpqrstvwxz2456789")


def pod(name: str, *, rev: str = "new", phase: str = "Running", ready: bool = True,
        created: int = 0, ready_for: float = 3600) -> Obj:  # fmt: skip
    since = (NOW - timedelta(seconds=ready_for)).isoformat()
    return {
        "metadata": {
            "name": name,
            "labels": {"controller-revision-hash": rev},
            "creationTimestamp": f"2026-01-01T00:00:{created:02d}Z",
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": str(ready), "lastTransitionTime": since}],
        },
    }


@pytest.mark.parametrize(
    ("nodes", "backoff", "create", "delete", "failed"),
    [
        ([NodeState("a", RUN)], (), ["a"], [], []),
        ([NodeState("a", RUN, (pod("p"),))], (), [], [], []),
        ([NodeState("a", NOT_HERE, (pod("p"),))], (), [], ["p"], []),
        ([NodeState("a", HOLD, (pod("p"),))], (), [], [], []),
        ([NodeState("a", HOLD)], (), [], [], []),
        # two on one node: the oldest running one stays
        (
            [NodeState("a", RUN, (pod("young", created=9), pod("old", created=1)))],
            (),
            [],
            ["young"],
            [],
        ),
        ([NodeState("a", RUN, (pod("p", phase="Failed"),))], (), [], ["p"], ["p"]),
        ([NodeState("a", RUN, (pod("p", phase="Failed"),))], ("a",), [], [], []),
    ],
)
def test_manage(
    nodes: list[NodeState], backoff: tuple[str, ...], create: list[str], delete: list[str],
    failed: list[str],
) -> None:  # fmt: skip
    plan = manage(nodes, backoff=backoff)
    assert list(plan.create_on) == create
    assert list(plan.delete) == delete
    assert [name for name, _ in plan.failed] == failed


@pytest.mark.parametrize(
    ("rolling", "desired", "expected"),
    [
        ({"maxUnavailable": 1, "maxSurge": 0}, 10, Limits(0, 1)),
        ({"maxUnavailable": 3}, 10, Limits(0, 3)),
        ({"maxUnavailable": "25%"}, 10, Limits(0, 3)),  # rounded up
        ({"maxUnavailable": "10%"}, 3, Limits(0, 1)),
        ({"maxUnavailable": 0, "maxSurge": 1}, 10, Limits(1, 0)),
        ({"maxUnavailable": 0, "maxSurge": "25%"}, 10, Limits(3, 0)),  # rounded up
        ({"maxUnavailable": "0%", "maxSurge": "10%"}, 3, Limits(1, 0)),
        # both zero (the API refuses it): one may be unavailable, so the update moves
        ({"maxUnavailable": "0%", "maxSurge": 0}, 5, Limits(0, 1)),
        ({"maxUnavailable": 0}, 5, Limits(0, 1)),
        (None, 5, Limits(0, 1)),
    ],
)
def test_rolling_limits(rolling: Obj | None, desired: int, expected: Limits) -> None:
    assert rolling_limits(rolling, desired) == expected


def nodes_with(*pods: Obj | None) -> list[NodeState]:
    return [NodeState(f"n{i}", RUN, (p,) if p else ()) for i, p in enumerate(pods)]


@pytest.mark.parametrize(
    ("nodes", "limit", "expected"),
    [
        (nodes_with(pod("a", rev="old"), pod("b", rev="old"), pod("c", rev="old")), 1, ["a"]),
        (nodes_with(pod("a", rev="old"), pod("b", rev="old"), pod("c", rev="old")), 2, ["a", "b"]),
        # a new pod not ready yet uses up the budget
        (nodes_with(pod("a", ready=False), pod("b", rev="old"), pod("c", rev="old")), 1, []),
        (nodes_with(pod("a"), pod("b", rev="old"), pod("c", rev="old")), 1, ["b"]),
        # a node still waiting for its pod counts as unavailable
        (nodes_with(None, pod("b", rev="old")), 1, []),
        # an old pod that is unavailable anyway is always replaced
        (nodes_with(pod("a", ready=False), pod("b", rev="old", ready=False)), 1, ["b"]),
        # ready, but not for minReadySeconds (10) yet: not available
        (nodes_with(pod("a", ready_for=5), pod("b", rev="old")), 1, []),
        (nodes_with(pod("a"), pod("b"), pod("c")), 1, []),
    ],
)
def test_pods_to_replace(nodes: list[NodeState], limit: int, expected: list[str]) -> None:
    assert pods_to_replace(nodes, REVISION, max_unavailable=limit) == expected
    plan = rolling_update(nodes, REVISION, Limits(max_surge=0, max_unavailable=limit))
    assert (list(plan.delete), list(plan.create_on)) == (expected, [])


OLD = pod("old", rev="old", created=1)
NEW_STARTING = pod("new", ready=False, created=9)
NEW_AVAILABLE = pod("new", created=9)


@pytest.mark.parametrize(
    ("pods", "surge", "delete"),
    [
        # an old pod and its replacement share the node until the new one is available
        ((OLD, NEW_STARTING), True, []),
        ((OLD, NEW_STARTING), False, ["new"]),  # without surge the youngest goes
        ((OLD, NEW_AVAILABLE), True, ["old"]),
        ((OLD, pod("new", ready_for=5, created=9)), True, []),  # not minReadySeconds yet
        ((pod("old", rev="old", ready=False, created=1), NEW_STARTING), True, ["old"]),
        ((OLD, pod("old2", rev="old", created=5), NEW_STARTING), True, ["old2"]),
        ((OLD, NEW_STARTING, pod("new2", ready=False, created=12)), True, ["new2"]),
        ((pod("a", created=1), pod("b", created=2)), True, ["b"]),
    ],
)
def test_manage_while_surging(pods: tuple[Obj, ...], surge: bool, delete: list[str]) -> None:
    plan = manage([NodeState("a", RUN, pods)], surge=REVISION if surge else None)
    assert (list(plan.create_on), sorted(plan.delete)) == ([], sorted(delete))


def layout(*per_node: tuple[Obj, ...]) -> list[NodeState]:
    """Nodes n0, n1, ... where the daemon should run, holding the pods given."""
    return [NodeState(f"n{i}", RUN, pods) for i, pods in enumerate(per_node)]


OLD_B, OLD_C = (pod("b", rev="old"),), (pod("c", rev="old"),)
SURGING = (OLD, NEW_STARTING)


@pytest.mark.parametrize(
    ("nodes", "max_surge", "create_on", "delete"),
    [
        # create first, delete nothing: the old pods stay until their replacements are up
        (layout((OLD,), OLD_B, OLD_C), 1, ["n0"], []),
        (layout((OLD,), OLD_B, OLD_C), 2, ["n0", "n1"], []),
        (layout((OLD,), OLD_B, OLD_C), 5, ["n0", "n1", "n2"], []),
        # a node waiting for its new pod to be available uses up the surge
        (layout(SURGING, OLD_B, OLD_C), 1, [], []),
        (layout(SURGING, OLD_B, OLD_C), 2, ["n1"], []),
        (layout((OLD, pod("new", ready_for=5, created=9)), OLD_B), 1, [], []),
        # the new pod is available: the old one goes, and the next node may surge
        (layout((OLD, NEW_AVAILABLE), OLD_B, OLD_C), 1, ["n1"], ["old"]),
        # an unavailable old pod is replaced at once, whatever the surge
        (layout(SURGING, (pod("b", rev="old", ready=False),)), 1, ["n1"], []),
        # a node still waiting for its first pod is the manage step's, not a surge
        (layout((), OLD_B), 1, ["n1"], []),
        # two pods of one revision on a node count as a surge until the manage step prunes
        (layout((NEW_STARTING, pod("new2", created=12)), OLD_B), 1, [], []),
        (layout((pod("a"),), (pod("b"),)), 1, [], []),  # done
        # an old pod on a node the daemon should leave but may stay on goes only while
        # the desired nodes keep enough available daemons; an unavailable one goes
        ([NodeState("h", HOLD, (OLD,)), *layout((NEW_AVAILABLE,))], 1, [], ["old"]),
        ([NodeState("h", HOLD, (OLD,)), *layout((NEW_STARTING,))], 1, [], []),
        ([NodeState("h", HOLD, (pod("old", rev="old", ready=False),))], 1, [], ["old"]),
    ],
)
def test_surge_update(
    nodes: list[NodeState], max_surge: int, create_on: list[str], delete: list[str]
) -> None:
    plan = rolling_update(nodes, REVISION, Limits(max_surge=max_surge, max_unavailable=0))
    assert (list(plan.create_on), list(plan.delete)) == (create_on, delete)


def test_status_while_surging_counts_the_old_pod() -> None:
    status = daemon_set_status([NodeState("a", RUN, (OLD, NEW_AVAILABLE))], REVISION)
    assert (status["currentNumberScheduled"], status["numberAvailable"]) == (1, 1)
    assert status["updatedNumberScheduled"] == 0


def test_status_counts() -> None:
    nodes = [
        NodeState("a", RUN, (pod("a"),)),
        NodeState("b", RUN, (pod("b", rev="old", ready=False),)),
        NodeState("c", RUN, (pod("c", ready_for=1),)),
        NodeState("d", RUN),
        NodeState("e", NOT_HERE, (pod("e"),)),
        NodeState("f", RUN, (pod("f", phase="Failed"),)),
    ]
    status = daemon_set_status(nodes, REVISION)
    assert status == {
        "desiredNumberScheduled": 5,
        "currentNumberScheduled": 3,
        "numberMisscheduled": 1,
        "numberReady": 2,
        "numberAvailable": 1,
        "numberUnavailable": 4,
        "updatedNumberScheduled": 2,
    }


def test_the_schedulers_filters_send_a_daemon_pod_to_its_node_only() -> None:
    """The pod ``new_pod`` makes, through bramble's own NodeAffinity, TaintToleration
    and NodeUnschedulable plugins: its node only, even cordoned and not ready."""
    sick = [taint("node.kubernetes.io/not-ready", "NoExecute")]
    nodes = [node("pi-1", taints=sick, unschedulable=True), node("pi-2")]
    made = new_pod(ds(affinity=AFFINITY, containers=[]), "pi-1", "abc")
    made["metadata"].update(name="agent-x", uid="x")
    made["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"] = []  # the node's labels are not the point here
    pod_info = info(made)
    cache = cluster(nodes)
    assert fits(node_affinity.NodeAffinity(), pod_info, cache) == ["pi-1"]
    assert fits(taint_toleration.TaintToleration(), pod_info, cache) == ["pi-1", "pi-2"]
    assert fits(node_unschedulable.NodeUnschedulable(), pod_info, cache) == ["pi-1", "pi-2"]
