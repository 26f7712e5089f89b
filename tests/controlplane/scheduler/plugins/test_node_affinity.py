"""NodeAffinity as tables: nodeSelector, required terms with every operator, matchFields,
preferred terms' scores, the scheduler-enforced affinity and malformed terms."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.framework import SKIP, Code, CycleState
from controlplane.scheduler.plugins import node_affinity as na
from tests.controlplane.scheduler.builders import cluster, filter_all, fits, info, node, pod, scores

NODES = [
    node("pi4", labels={"bramble.io/board-model": "Raspberry-Pi-4", "disk": "ssd", "gen": "4"}),
    node("pi3", arch="arm", labels={"bramble.io/board-model": "Raspberry-Pi-3", "gen": "3"}),
    node("pc", arch="amd64", labels={"disk": "hdd"}),
]


ARM = {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm", "arm64"]}


def required(*exprs: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        term["matchFields"] = fields
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [term]}}}  # fmt: skip


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return (
        {"key": key, "operator": op, "values": list(values)}
        if values
        else {"key": key, "operator": op}
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, ["pc", "pi3", "pi4"]),
        ({"node_selector": {"kubernetes.io/arch": "arm64"}}, ["pi4"]),
        ({"node_selector": {"kubernetes.io/arch": "arm64", "disk": "hdd"}}, []),
        ({"node_selector": {"nope": ""}}, []),
        ({"affinity": required(expr("disk", "In", "ssd", "nvme"))}, ["pi4"]),
        ({"affinity": required(expr("disk", "NotIn", "ssd"))}, ["pc", "pi3"]),  # absent counts
        ({"affinity": required(expr("disk", "Exists"))}, ["pc", "pi4"]),
        ({"affinity": required(expr("disk", "DoesNotExist"))}, ["pi3"]),
        ({"affinity": required(expr("gen", "Gt", "3"))}, ["pi4"]),
        ({"affinity": required(expr("gen", "Lt", "4"))}, ["pi3"]),
        ({"affinity": required(expr("gen", "Gt", "3"), expr("disk", "Exists"))}, ["pi4"]),
        ({"affinity": required(fields=[{"key": "metadata.name", "operator": "In",
                                        "values": ["pc"]}])}, ["pc"]),
        ({"affinity": required(fields=[{"key": "metadata.name", "operator": "NotIn",
                                        "values": ["pc"]}])}, ["pi3", "pi4"]),
        # terms are ORed
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [expr("disk", "In", "hdd")]},
                                  {"matchExpressions": [expr("gen", "In", "3")]}]}}}},
         ["pc", "pi3"]),
        # an empty term matches nothing
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{}]}}}}, []),
        # nodeSelector and affinity must both match
        ({"node_selector": {"disk": "hdd"}, "affinity": required(expr("disk", "In", "ssd"))}, []),
    ],
)  # fmt: skip
def test_filter(spec: dict[str, Any], expected: list[str]) -> None:
    assert fits(na.NodeAffinity(), info(pod(**spec)), cluster(NODES)) == expected


def test_rejection_reason() -> None:
    result = filter_all(na.NodeAffinity(), info(pod(node_selector={"x": "y"})), cluster(NODES))
    assert isinstance(result, dict)
    status = result["pc"]
    assert status is not None
    assert status.reasons == ("node(s) didn't match Pod's node affinity/selector",)
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_pre_filter_skips_pods_without_node_constraints() -> None:
    assert na.NodeAffinity().pre_filter(CycleState(), info(pod()), []) is SKIP


def test_a_malformed_term_rejects_the_pod_with_what_is_wrong() -> None:
    bad = pod(affinity=required({"key": "gen", "operator": "Gt", "values": ["three"]}))
    status = na.NodeAffinity().pre_filter(CycleState(), info(bad), [])
    assert status is not None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message == (
        "Pod's node affinity cannot be used: spec.affinity.nodeAffinity."
        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
        "matchExpressions[0].values: must be a single integer for Gt"
    )


def test_preferred_terms_score_by_weight() -> None:
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
        {"weight": 20, "preference": {"matchExpressions": [ARM]}},
    ]}}  # fmt: skip
    assert scores(na.NodeAffinity(), info(pod(affinity=affinity)), cluster(NODES)) == {
        "pi4": 100, "pi3": 20, "pc": 0,
    }  # fmt: skip


def test_no_preferred_terms_skips_scoring() -> None:
    assert scores(na.NodeAffinity(), info(pod()), cluster(NODES)) == {}


def test_scheduler_enforced_affinity() -> None:
    plugin = na.new(
        {"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [ARM]}]}}},
        None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert fits(plugin, info(pod()), cluster(NODES)) == ["pi3", "pi4"]
    result = filter_all(plugin, info(pod()), cluster(NODES))
    assert isinstance(result, dict)
    assert result["pc"] is not None
    assert result["pc"].reasons == ("node(s) didn't match scheduler-enforced node affinity",)
