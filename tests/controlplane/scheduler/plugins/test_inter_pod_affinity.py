"""InterPodAffinity as tables: required affinity and anti-affinity (the incoming pod's
and the placed pods'), topology keys, namespaces, and the preferred terms' scores."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import SKIP, Code, CycleState
from controlplane.scheduler.plugins import inter_pod_affinity as ipa
from controlplane.scheduler.terms import HOSTNAME
from tests.controlplane.scheduler.builders import cluster, filter_all, fits, info, node, pod, scores

ZONE = "topology.kubernetes.io/zone"


def term(app: str, key: str = HOSTNAME, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key, **extra}


def affinity(
    kind: str = "podAffinity", *terms: dict[str, Any], preferred: bool = False
) -> dict[str, Any]:
    if preferred:
        return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": t.pop("weight", 10), "podAffinityTerm": t} for t in terms]}}  # fmt: skip
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def lab(existing: dict[str, list[dict[str, Any]]] | None = None) -> Cache:
    """n1, n2 in zone a; n3 in zone b; n4 has no zone. web runs on n1, db on n3."""
    nodes = [
        node("n1", labels={ZONE: "a"}), node("n2", labels={ZONE: "a"}),
        node("n3", labels={ZONE: "b"}), node("n4"),
    ]  # fmt: skip
    placed = existing if existing is not None else {
        "n1": [pod("web-1", labels={"app": "web"})],
        "n3": [pod("db-1", labels={"app": "db"})],
    }  # fmt: skip
    return cluster(nodes, placed)


def plugin(cache: Cache) -> ipa.InterPodAffinity:
    return ipa.InterPodAffinity(cache)


@pytest.mark.parametrize(
    ("labels", "aff", "expected"),
    [
        ({}, affinity("podAffinity", term("web")), ["n1"]),
        ({}, affinity("podAffinity", term("web", ZONE)), ["n1", "n2"]),
        ({}, affinity("podAffinity", term("web", ZONE), term("web")), ["n1"]),
        ({}, affinity("podAffinity", term("cache")), []),  # nothing to be near
        # the first of a group with affinity to itself may start anywhere with the key
        ({"app": "cache"}, affinity("podAffinity", term("cache", ZONE)), ["n1", "n2", "n3"]),
        ({}, affinity("podAntiAffinity", term("web")), ["n2", "n3", "n4"]),
        ({}, affinity("podAntiAffinity", term("web", ZONE)), ["n3", "n4"]),
        ({}, affinity("podAntiAffinity", term("web", "no/such-key")), ["n1", "n2", "n3", "n4"]),
        ({}, affinity("podAffinity", term("web", "no/such-key")), []),
        # other namespaces: named, or all of them with an empty namespaceSelector
        ({}, affinity("podAffinity", term("web", namespaces=["other"])), []),
        ({}, affinity("podAffinity", term("web", namespaceSelector={})), ["n1"]),
    ],
)
def test_incoming_pods_terms(
    labels: dict[str, str], aff: dict[str, Any], expected: list[str]
) -> None:
    cache = lab()
    assert fits(plugin(cache), info(pod("new", labels=labels, affinity=aff)), cache) == expected


def test_reasons_and_codes() -> None:
    cache = lab()
    near = filter_all(
        plugin(cache), info(pod(affinity=affinity("podAffinity", term("web")))), cache
    )
    far = filter_all(
        plugin(cache), info(pod(affinity=affinity("podAntiAffinity", term("web")))), cache
    )
    assert isinstance(near, dict)
    assert isinstance(far, dict)
    assert near["n2"] is not None
    assert far["n1"] is not None
    assert (near["n2"].reasons, near["n2"].code) == (
        ("node(s) didn't match pod affinity rules",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    )  # fmt: skip
    assert (far["n1"].reasons, far["n1"].code) == (
        ("node(s) didn't match pod anti-affinity rules",), Code.UNSCHEDULABLE,
    )  # fmt: skip


def test_placed_pods_anti_affinity_keeps_the_incoming_pod_away() -> None:
    loner = pod(
        "db-1", labels={"app": "db"}, affinity=affinity("podAntiAffinity", term("web", ZONE))
    )
    cache = lab({"n3": [loner]})
    web = info(pod("web-2", labels={"app": "web"}))
    assert fits(plugin(cache), web, cache) == ["n1", "n2", "n4"]
    result = filter_all(plugin(cache), web, cache)
    assert isinstance(result, dict)
    assert result["n3"] is not None
    assert result["n3"].reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    # a pod the term does not select is not kept away
    assert fits(plugin(cache), info(pod("other", labels={"app": "x"})), cache) == [
        "n1", "n2", "n3", "n4",
    ]  # fmt: skip


def test_skipped_when_nobody_has_required_terms() -> None:
    cache = lab()
    assert plugin(cache).pre_filter(CycleState(), info(pod()), cache.node_list()) is SKIP


def test_malformed_terms_reject_the_pod() -> None:
    bad = pod(affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]},
         "topologyKey": HOSTNAME}]}})  # fmt: skip
    cache = lab()
    status = plugin(cache).pre_filter(CycleState(), info(bad), cache.node_list())
    assert status is not None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message.startswith("Pod's pod affinity cannot be used: ")
    assert "values" in status.message


def test_add_and_remove_pod_keep_the_counts_right() -> None:
    """What preemption relies on: removing the web pod from n1 frees n1 for anti-affinity."""
    cache = lab()
    p = info(pod("new", affinity=affinity("podAntiAffinity", term("web"))))
    state = CycleState()
    pl = plugin(cache)
    assert pl.pre_filter(state, p, cache.node_list()) is None
    n1 = cache.node("n1")
    assert n1 is not None
    web = n1.pods["default/web-1"]
    assert pl.filter(state, p, n1) is not None
    pl.remove_pod(state, p, web, n1)
    assert pl.filter(state, p, n1) is None
    pl.add_pod(state, p, web, n1)
    assert pl.filter(state, p, n1) is not None


@pytest.mark.parametrize(
    ("aff", "expected"),
    [
        (affinity("podAffinity", term("web", ZONE, weight=50), preferred=True),
         {"n1": 100, "n2": 100, "n3": 0, "n4": 0}),
        (affinity("podAntiAffinity", term("web", ZONE, weight=50), preferred=True),
         {"n1": 0, "n2": 0, "n3": 100, "n4": 100}),
        (affinity("podAffinity", term("web", weight=30), term("db", ZONE, weight=60),
                  preferred=True),
         {"n1": 50, "n2": 0, "n3": 100, "n4": 0}),  # raw 30, 0, 60, 0
    ],
)  # fmt: skip
def test_preferred_terms(aff: dict[str, Any], expected: dict[str, int]) -> None:
    cache = lab()
    assert scores(plugin(cache), info(pod("new", affinity=aff)), cache) == expected


def test_placed_pods_preferences_pull_the_incoming_pod() -> None:
    likes_web = affinity("podAffinity", term("web", ZONE, weight=40), preferred=True)
    friendly = pod("db-1", labels={"app": "db"}, affinity=likes_web)
    cache = lab({"n3": [friendly]})
    assert scores(plugin(cache), info(pod("web-2", labels={"app": "web"})), cache) == {
        "n1": 0, "n2": 0, "n3": 100, "n4": 0,
    }  # fmt: skip


def test_nothing_to_score_skips() -> None:
    cache = lab()
    assert scores(plugin(cache), info(pod()), cache) == {}
