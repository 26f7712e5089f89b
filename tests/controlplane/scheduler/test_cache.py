"""The cache: assumed pods until the informer confirms them, node changes as cluster
events, placeholder nodes, image counts, namespaces."""

from __future__ import annotations

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import ClusterEvent
from tests.controlplane.scheduler.builders import info, node, pod, taint


def bound(p: dict, node_name: str) -> dict:  # type: ignore[type-arg]
    return {**p, "spec": {**p["spec"], "nodeName": node_name}}


def test_assume_confirm_forget() -> None:
    cache = Cache()
    cache.add_node(node("a", cpu="4"))
    cache.add_node(node("b", cpu="4"))
    p = pod("p", cpu="1")
    cache.assume(info(p), "a")
    assert cache.is_assumed("default/p")
    assert cache.node("a").requested.milli_cpu == 1000  # type: ignore[union-attr]
    cache.add_pod(info(bound(p, "a")))  # the informer confirms
    assert not cache.is_assumed("default/p")
    assert cache.node("a").requested.milli_cpu == 1000  # type: ignore[union-attr]
    cache.forget("default/p")  # only assumptions are forgotten
    assert cache.pod_node("default/p") == "a"
    q = pod("q", cpu="2")
    cache.assume(info(q), "b")
    cache.forget("default/q")
    assert cache.node("b").requested.milli_cpu == 0  # type: ignore[union-attr]
    assert "default/q" not in cache


def test_confirmed_elsewhere_moves_the_pod() -> None:
    cache = Cache()
    cache.add_node(node("a"))
    cache.add_node(node("b"))
    p = pod("p", cpu="1")
    cache.assume(info(p), "a")
    cache.add_pod(info(bound(p, "b")))
    assert cache.node("a").requested.milli_cpu == 0  # type: ignore[union-attr]
    assert cache.node("b").requested.milli_cpu == 1000  # type: ignore[union-attr]


def test_node_updates_become_events() -> None:
    cache = Cache()
    assert cache.add_node(node("a")) == {ClusterEvent.NODE_ADD}
    assert cache.add_node(node("a")) == frozenset()
    assert cache.add_node(node("a", labels={"x": "y"})) == {ClusterEvent.NODE_LABEL}
    assert cache.add_node(node("a", labels={"x": "y"}, cpu="8")) == {ClusterEvent.NODE_ALLOCATABLE}
    assert cache.add_node(node("a", labels={"x": "y"}, cpu="8", taints=[taint("t")])) == {
        ClusterEvent.NODE_TAINT
    }
    assert cache.add_node(node("a", labels={"x": "y"}, cpu="8", conditions={"Ready": "False"})) == {
        ClusterEvent.NODE_TAINT, ClusterEvent.NODE_CONDITION,  # the taint went, another came
    }  # fmt: skip
    assert ClusterEvent.NODE_SCHEDULABLE in cache.add_node(node("a", unschedulable=True))


def test_pods_on_unknown_nodes_wait_for_them() -> None:
    cache = Cache()
    cache.add_pod(info(bound(pod("early", cpu="1"), "late")))
    assert cache.node_list() == []
    assert cache.node("late") is None
    cache.add_node(node("late"))
    late = cache.node("late")
    assert late is not None
    assert late.requested.milli_cpu == 1000
    cache.remove_node("late")
    assert cache.node_list() == []
    cache.remove_pod("default/early")
    cache.add_node(node("late"))
    assert cache.node("late").requested.milli_cpu == 0  # type: ignore[union-attr]


def test_image_counts() -> None:
    cache = Cache()
    img = "docker.io/library/app:1"
    cache.add_node(node("a", images=[(img, 10)]))
    cache.add_node(node("b", images=[("app:1", 10)]))  # same image, short name
    assert cache.nodes_with_image(img) == 2
    cache.remove_node("a")
    assert cache.nodes_with_image(img) == 1
    cache.add_node(node("b"))
    assert cache.nodes_with_image(img) == 0


def test_namespaces() -> None:
    cache = Cache()
    assert cache.set_namespace("prod", {"env": "prod"}) is True
    assert cache.set_namespace("prod", {"env": "prod"}) is False
    assert cache.namespace_labels("prod") == {"env": "prod"}
    assert cache.set_namespace("prod", None) is True
    assert cache.namespace_labels("prod") == {}
