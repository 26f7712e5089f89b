"""PodTopologySpread as tables: maxSkew per domain (zone, hostname), minDomains, the
node inclusion policies, what counts as a matching pod, and the ScheduleAnyway score."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.cache import Cache
from controlplane.scheduler.framework import SKIP, Code, CycleState
from controlplane.scheduler.plugins import pod_topology_spread as pts
from controlplane.scheduler.terms import HOSTNAME
from tests.controlplane.scheduler.builders import (
    cluster,
    filter_all,
    fits,
    handle,
    info,
    node,
    pod,
    scores,
)

ZONE = "topology.kubernetes.io/zone"
WEB = {"app": "web"}


def spread(key: str = ZONE, skew: int = 1, *, hard: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "maxSkew": skew, "topologyKey": key,
        "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
        "labelSelector": {"matchLabels": WEB}, **extra,
    }  # fmt: skip


def lab(web: dict[str, int], **more: list[dict[str, Any]]) -> Cache:
    """n1, n2 in zone a; n3 in zone b; n4 without a zone; ``web`` web pods per node."""
    nodes = [
        node("n1", labels={ZONE: "a"}), node("n2", labels={ZONE: "a"}),
        node("n3", labels={ZONE: "b"}), node("n4"),
    ]  # fmt: skip
    placed: dict[str, list[dict[str, Any]]] = {
        n: [pod(f"web-{n}-{i}", labels=WEB) for i in range(k)] for n, k in web.items()
    }
    for n, pods in more.items():
        placed.setdefault(n, []).extend(pods)
    return cluster(nodes, placed)


def plugin(cache: Cache) -> pts.PodTopologySpread:
    return pts.PodTopologySpread(cache)


@pytest.mark.parametrize(
    ("web", "constraint", "labels", "expected"),
    [
        ({}, spread(), WEB, ["n1", "n2", "n3"]),  # n4 lacks the zone label
        ({"n1": 1}, spread(), WEB, ["n3"]),  # zone a would be 2 against 0
        ({"n1": 1}, spread(skew=2), WEB, ["n1", "n2", "n3"]),
        ({"n1": 1, "n3": 1}, spread(), WEB, ["n1", "n2", "n3"]),
        ({"n1": 1, "n3": 1}, spread(minDomains=3), WEB, []),  # two domains: the minimum is 0
        ({"n1": 1}, spread(HOSTNAME), WEB, ["n2", "n3", "n4"]),
        ({"n1": 2}, spread(), {"app": "other"}, ["n3"]),  # not counting itself: 2 - 0 > 1
        ({"n1": 1}, spread(), {"app": "other"}, ["n1", "n2", "n3"]),
    ],
)
def test_filter(
    web: dict[str, int], constraint: dict[str, Any], labels: dict[str, str], expected: list[str]
) -> None:
    cache = lab(web)
    assert (
        fits(plugin(cache), info(pod("new", labels=labels, spread=[constraint])), cache) == expected
    )


def test_reasons() -> None:
    cache = lab({"n1": 1})
    result = filter_all(plugin(cache), info(pod("new", labels=WEB, spread=[spread()])), cache)
    assert isinstance(result, dict)
    assert result["n1"] is not None
    assert result["n4"] is not None
    assert (result["n1"].reasons, result["n1"].code) == (
        ("node(s) didn't match pod topology spread constraints",), Code.UNSCHEDULABLE,
    )  # fmt: skip
    assert (result["n4"].reasons, result["n4"].code) == (
        ("node(s) didn't match pod topology spread constraints (missing required label)",),
        Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
    )


def test_only_the_pods_namespace_and_running_pods_count() -> None:
    elsewhere = pod("web-x", namespace="other", labels=WEB)
    leaving = pod("web-y", labels=WEB)
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cache = lab({}, n1=[elsewhere, leaving])
    assert fits(plugin(cache), info(pod("new", labels=WEB, spread=[spread()])), cache) == [
        "n1", "n2", "n3",
    ]  # fmt: skip


def test_node_affinity_policy_honor_and_ignore() -> None:
    """With Honor (the default) the nodes the pod cannot go to are not domains."""
    cache = lab({"n3": 1})
    only_a = {ZONE: "a"}
    honor = info(pod("new", spread=[spread()], node_selector=only_a, labels=WEB))
    ignored = [spread(nodeAffinityPolicy="Ignore")]
    ignore = info(pod("new", spread=ignored, node_selector=only_a, labels=WEB))
    # Honor: zone b is not a domain, zone a has 0 pods: skew 1 is fine.
    assert fits(plugin(cache), honor, cache) == ["n1", "n2", "n3"]
    # Ignore: zone b (1 pod) counts, zone a also 0 -> 1 - 0 fine; zone b: 2 - 0 > 1.
    assert fits(plugin(cache), ignore, cache) == ["n1", "n2"]


def test_skips_pods_without_hard_constraints() -> None:
    cache = lab({})
    assert (
        plugin(cache).pre_filter(CycleState(), info(pod(spread=[spread(hard=False)])), []) is SKIP
    )


def test_malformed_constraints_reject_the_pod() -> None:
    bad = pod(spread=[{"maxSkew": 0, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}])
    status = plugin(lab({})).pre_filter(CycleState(), info(bad), [])
    assert status is not None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message == (
        "Pod's topology spread constraints cannot be used: spec.topologySpreadConstraints[0]"
        ".maxSkew: Invalid value: 0: must be greater than zero"
    )


def test_add_and_remove_pod() -> None:
    cache = lab({"n1": 1})
    p = info(pod("new", labels=WEB, spread=[spread()]))
    state = CycleState()
    pl = plugin(cache)
    assert pl.pre_filter(state, p, cache.node_list()) is None
    n1 = cache.node("n1")
    assert n1 is not None
    assert pl.filter(state, p, n1) is not None
    pl.remove_pod(state, p, next(iter(n1.pods.values())), n1)
    assert pl.filter(state, p, n1) is None


def test_score_schedule_anyway_by_hostname() -> None:
    cache = lab({"n1": 2, "n2": 1})
    got = scores(
        plugin(cache), info(pod("new", labels=WEB, spread=[spread(HOSTNAME, hard=False)])), cache
    )
    # raw: count * log(4 nodes + 2) + (maxSkew - 1) = 3.58 -> 4, 1.79 -> 2, 0, 0
    assert got == {"n1": 0, "n2": 50, "n3": 100, "n4": 100}


def test_score_ignores_nodes_without_the_key() -> None:
    cache = lab({"n1": 1})
    got = scores(plugin(cache), info(pod("new", labels=WEB, spread=[spread(hard=False)])), cache)
    assert got["n4"] == 0
    assert got["n3"] == 100 > got["n1"]
    assert got["n1"] == got["n2"]  # one zone, one count


def test_pods_of_one_controller_spread_by_default() -> None:
    cache = lab({}, n1=[pod("rs-a", owner="rs1"), pod("rs-b", owner="rs1")])
    got = scores(plugin(cache), info(pod("rs-c", owner="rs1")), cache)
    assert got["n1"] < got["n2"] < got["n3"]
    # no controller, no constraints: nothing to score
    assert scores(plugin(cache), info(pod("lone")), cache) == {}
    # switched off with defaultingType: List
    listed = pts.new({"defaultingType": "List"}, handle(cache))
    assert scores(listed, info(pod("rs-c", owner="rs1")), cache) == {}


def test_counts_follow_the_cluster_from_one_pod_to_the_next() -> None:
    # The plugin remembers each node's counts until the node changes: one plugin, as the
    # scheduler keeps it, must see every pod placed, relabelled or removed in between.
    cache = lab({})
    spreading = plugin(cache)
    new = info(pod("new", labels=WEB, spread=[spread()]))
    assert fits(spreading, new, cache) == ["n1", "n2", "n3"]
    cache.assume(info(pod("web-1", labels=WEB)), "n1")
    assert fits(spreading, new, cache) == ["n3"]
    cache.assume(info(pod("web-2", labels=WEB)), "n3")
    assert fits(spreading, new, cache) == ["n1", "n2", "n3"]
    cache.update_pod(info(pod("web-2", labels={"app": "other"}, node_name="n3")))
    assert fits(spreading, new, cache) == ["n3"]
    cache.remove_pod(info(pod("web-1", labels=WEB, node_name="n1")).key)
    assert fits(spreading, new, cache) == ["n1", "n2", "n3"]
