"""Preemption's choices, through the default profile: which node, which victims (the
fewest, the least important), when it cannot help, and who may not preempt."""

from __future__ import annotations

from typing import Any

from controlplane.scheduler.algorithm import Algorithm
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.config import Profile
from controlplane.scheduler.queue import Nominator
from controlplane.scheduler.registry import build
from controlplane.scheduler.scheduler import Decision, decide
from tests.controlplane.scheduler.builders import cluster, handle, info, node, pod

HIGH = 1000


def run(cache: Cache, incoming: dict[str, Any], nominator: Nominator | None = None) -> Decision:
    fw = build(Profile(), handle(cache, nominator))
    return decide(Algorithm(), fw, info(incoming), cache.node_list())


def victims(decision: Decision) -> list[str]:
    return sorted(v.name for v in decision.victims)


def test_the_node_whose_most_important_victim_matters_least() -> None:
    cache = cluster(
        [node("a", cpu="2"), node("b", cpu="2")],
        {"a": [pod("a-web", cpu="2", priority=10)], "b": [pod("b-batch", cpu="2", priority=1)]},
    )
    decision = run(cache, pod("new", cpu="1", priority=HIGH))
    assert (decision.node, decision.nominated_node, victims(decision)) == ("", "b", ["b-batch"])
    assert decision.message == "0/2 nodes are available: 2 Insufficient cpu."


def test_the_fewest_victims() -> None:
    cache = cluster(
        [node("many", cpu="4"), node("one", cpu="4")],
        {"many": [pod(f"m{i}", cpu="1") for i in range(4)], "one": [pod("big", cpu="4")]},
    )
    decision = run(cache, pod("new", cpu="2", priority=HIGH))
    assert (decision.nominated_node, victims(decision)) == ("one", ["big"])


def test_the_more_important_pods_are_reprieved() -> None:
    cache = cluster(
        [node("a", cpu="4")],
        {"a": [pod("keep", cpu="2", priority=50), pod("cheap", cpu="1", priority=1),
               pod("cheapest", cpu="1", priority=0)]},
    )  # fmt: skip
    decision = run(cache, pod("new", cpu="2", priority=HIGH))
    assert victims(decision) == ["cheap", "cheapest"]
    decision = run(cache, pod("new", cpu="1", priority=HIGH))
    assert victims(decision) == ["cheapest"]


def test_equal_or_higher_priority_pods_are_never_victims() -> None:
    cache = cluster([node("a", cpu="2")], {"a": [pod("peer", cpu="2", priority=HIGH)]})
    decision = run(cache, pod("new", cpu="1", priority=HIGH))
    assert decision.nominated_node == ""
    assert decision.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.."
    )


def test_not_helpful_where_eviction_cannot_make_it_fit() -> None:
    cache = cluster(
        [node("tainted", taints=[{"key": "k", "value": "", "effect": "NoSchedule"}]),
         node("tiny", cpu="1")],
        {"tainted": [pod("t", priority=0)], "tiny": [pod("s", priority=0)]},
    )  # fmt: skip
    decision = run(cache, pod("new", cpu="2", priority=HIGH))
    assert decision.nominated_node == ""
    assert decision.message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {k: }. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.."
    )


def test_evicting_everyone_is_not_enough() -> None:
    cache = cluster(
        [node("a", cpu="4")], {"a": [pod("low", cpu="1"), pod("peer", cpu="3", priority=HIGH)]}
    )
    decision = run(cache, pod("new", cpu="2", priority=HIGH))
    assert decision.nominated_node == ""
    assert decision.message.endswith("preemption: 0/1 nodes are available: 1 Insufficient cpu..")


def test_preemption_policy_never() -> None:
    cache = cluster([node("a", cpu="1")], {"a": [pod("low", cpu="1")]})
    never = pod("new", cpu="1", priority=HIGH, extra_spec={"preemptionPolicy": "Never"})
    decision = run(cache, never)
    assert decision.nominated_node == ""
    assert decision.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
        "preemptionPolicy=Never.."
    )


def test_no_second_preemption_while_victims_terminate() -> None:
    leaving = pod("low", cpu="1")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:30Z"
    cache = cluster(
        [node("a", cpu="1"), node("b", cpu="1")], {"a": [leaving], "b": [pod("other", cpu="1")]}
    )
    waiting = pod("new", cpu="1", priority=HIGH)
    waiting["status"] = {"nominatedNodeName": "a"}
    decision = run(cache, waiting)
    assert decision.nominated_node == ""
    assert decision.message.endswith(
        "preemption: not eligible due to a terminating pod on the nominated node.."
    )


def test_anti_affinity_victims() -> None:
    """Preemption uses PreFilter's add/remove: evicting the pod that repels makes room."""
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}},
         "topologyKey": "kubernetes.io/hostname"}]}}  # fmt: skip
    cache = cluster(
        [node("a")], {"a": [pod("db", labels={"app": "db"}), pod("web", labels={"app": "web"})]}
    )
    decision = run(cache, pod("new", priority=HIGH, affinity=anti))
    assert (decision.nominated_node, victims(decision)) == ("a", ["db"])
