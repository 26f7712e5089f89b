"""The placement loop: adaptive node sampling, the FailedScheduling message as
Kubernetes words it, where the next search starts, ties, and the nominated node."""

from __future__ import annotations

import random

import pytest

from controlplane.scheduler.algorithm import (
    Algorithm,
    Diagnosis,
    FitError,
    num_feasible_nodes_to_find,
)
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.config import Profile
from controlplane.scheduler.framework import CycleState, Framework, unresolvable, unschedulable
from controlplane.scheduler.queue import Nominator
from controlplane.scheduler.registry import build
from controlplane.scheduler.scheduler import decide
from tests.controlplane.scheduler.builders import cluster, handle, info, node, pod


@pytest.mark.parametrize(
    ("percentage", "nodes", "expected"),
    [
        (None, 0, 0),
        (None, 50, 50),
        (None, 99, 99),  # under 100 nodes every node is checked
        (None, 100, 100),
        (None, 1000, 420),  # 50 - 1000/125 = 42 %
        (None, 5000, 500),  # 50 - 40 = 10 %
        (None, 6000, 300),  # 50 - 48 = 2 %, but at least 5 %
        (None, 10000, 500),
        (30, 1000, 300),
        (1, 1000, 100),  # and at least 100 nodes
        (100, 5000, 5000),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int | None, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


@pytest.mark.parametrize(
    ("statuses", "total", "expected"),
    [
        ({"a": unschedulable("F", "Insufficient memory"),
          "b": unresolvable("A", "node(s) didn't match Pod's node affinity/selector"),
          "c": unresolvable("A", "node(s) didn't match Pod's node affinity/selector")}, 3,
         "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node "
         "affinity/selector."),
        # several reasons on one node count once each; sorted as strings ("10" < "2")
        ({**{f"n{i}": unschedulable("F", "Insufficient cpu") for i in range(10)},
          "x": unschedulable("F", "Insufficient cpu", "Insufficient memory"),
          "y": unschedulable("F", "Insufficient memory")}, 12,
         "0/12 nodes are available: 11 Insufficient cpu, 2 Insufficient memory."),
        ({}, 0, "no nodes available to schedule pods"),
    ],
)  # fmt: skip
def test_fit_error_message(statuses: dict, total: int, expected: str) -> None:  # type: ignore[type-arg]
    assert FitError(info(pod()), total, Diagnosis(statuses=statuses)).message == expected


def test_fit_error_with_pre_filter_and_post_filter_messages() -> None:
    diagnosis = Diagnosis(
        pre_filter=unresolvable("X", "Pod's node affinity cannot be used: bad"),
        post_filter_message=(
            "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        ),
    )
    assert FitError(info(pod()), 2, diagnosis).message == (
        "0/2 nodes are available: Pod's node affinity cannot be used: bad. preemption: 0/2 "
        "nodes are available: 2 Preemption is not helpful for scheduling.."
    )  # the double stop is Kubernetes' own


def default_framework(cache: Cache, percentage: int | None = None) -> Framework:
    return build(Profile(percentage_of_nodes_to_score=percentage), handle(cache, Nominator()))


def test_issue_example_message_through_the_default_profile() -> None:
    cache = cluster(
        [
            node("a", memory="4Gi"),
            node("b", labels={"disk": "hdd"}),
            node("c", labels={"disk": "hdd"}),
        ],
        {"a": [pod("resident", memory="3Gi")]},  # as important as the new pod: not a victim
    )
    fw = default_framework(cache)
    p = info(pod(memory="2Gi", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}}))  # fmt: skip
    decision = decide(Algorithm(), fw, p, cache.node_list())
    assert decision.message == (
        "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node "
        "affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling.."
    )


def test_sampling_stops_at_enough_feasible_nodes_and_rotates() -> None:
    cache = cluster([node(f"n{i:03d}") for i in range(1000)])
    fw = default_framework(cache)
    algorithm = Algorithm(rng=random.Random(1))
    result = algorithm.schedule(fw, CycleState(), info(pod(cpu="100m")), cache.node_list())
    assert (result.evaluated, result.feasible) == (420, 420)
    assert algorithm.next_start == 420
    algorithm.schedule(fw, CycleState(), info(pod("q", cpu="100m")), cache.node_list())
    assert algorithm.next_start == 840
    algorithm.schedule(fw, CycleState(), info(pod("r", cpu="100m")), cache.node_list())
    assert algorithm.next_start == 260  # wrapped around


def test_an_explicit_percentage_replaces_the_adaptive_one() -> None:
    cache = cluster([node(f"n{i:03d}") for i in range(1000)])
    result = Algorithm().schedule(
        default_framework(cache, 100), CycleState(), info(pod(cpu="100m")), cache.node_list()
    )
    assert result.feasible == 1000


def test_the_best_node_wins_and_ties_are_random() -> None:
    cache = cluster([node("small", cpu="2"), node("big-1", cpu="8"), node("big-2", cpu="8")])
    fw = default_framework(cache)
    p = info(pod(cpu="1"))
    chosen = {
        Algorithm(rng=random.Random(seed)).schedule(fw, CycleState(), p, cache.node_list()).node
        for seed in range(20)
    }
    assert chosen == {"big-1", "big-2"}


def test_a_nominated_node_is_tried_first() -> None:
    cache = cluster([node("roomy", cpu="32"), node("nominated", cpu="2")])
    nominated = pod(cpu="1")
    nominated["status"] = {"nominatedNodeName": "nominated"}
    decision = decide(Algorithm(), default_framework(cache), info(nominated), cache.node_list())
    assert decision.node == "nominated"


def test_room_promised_to_a_nominated_pod_is_kept_for_it() -> None:
    cache = cluster([node("pi", cpu="2")])
    nominator = Nominator()
    fw = build(Profile(), handle(cache, nominator))
    nominator.add(info(pod("promised", cpu="2", priority=100)), "pi")
    low = decide(Algorithm(), fw, info(pod("low", cpu="1", priority=0)), cache.node_list())
    assert low.node == ""
    assert low.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    high = decide(Algorithm(), fw, info(pod("high", cpu="1", priority=200)), cache.node_list())
    assert high.node == "pi"
