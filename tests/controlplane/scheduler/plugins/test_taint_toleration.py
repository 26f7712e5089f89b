"""TaintToleration as tables: filtering by NoSchedule/NoExecute taints (the node's own
and those its conditions imply), scoring by PreferNoSchedule."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.framework import Code
from controlplane.scheduler.plugins import taint_toleration as tt
from tests.controlplane.scheduler.builders import (
    cluster,
    filter_all,
    info,
    node,
    pod,
    scores,
    taint,
)

T = "dedicated"
UNTOLERATED = "node(s) had untolerated taint "


@pytest.mark.parametrize(
    ("taints", "tolerations", "reason"),
    [
        ([], [], None),
        ([taint(T, "NoSchedule", "gpu")], [], "node(s) had untolerated taint {dedicated: gpu}"),
        ([taint(T, "NoExecute")], [], "node(s) had untolerated taint {dedicated: }"),
        ([taint(T, "PreferNoSchedule")], [], None),  # only a preference
        ([taint(T, "NoSchedule", "gpu")], [{"key": T, "operator": "Equal", "value": "gpu"}], None),
        ([taint(T, "NoSchedule", "gpu")], [{"key": T, "value": "gpu"}], None),  # Equal by default
        ([taint(T, "NoSchedule", "gpu")], [{"key": T, "operator": "Equal", "value": "cpu"}],
         "node(s) had untolerated taint {dedicated: gpu}"),
        ([taint(T, "NoSchedule", "gpu")], [{"key": T, "operator": "Exists"}], None),
        ([taint(T, "NoSchedule")], [{"key": T, "operator": "Exists", "effect": "NoExecute"}],
         "node(s) had untolerated taint {dedicated: }"),
        ([taint(T, "NoExecute")], [{"key": T, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 30}], None),
        ([taint(T, "NoSchedule"), taint("b", "NoSchedule")], [{"key": T, "operator": "Exists"}],
         "node(s) had untolerated taint {b: }"),
        ([taint(T, "NoSchedule")], [{"operator": "Exists"}], None),  # tolerates all
    ],
)  # fmt: skip
def test_filter(
    taints: list[dict[str, str]], tolerations: list[dict[str, Any]], reason: str | None
) -> None:
    cache = cluster([node("pi-1", taints=taints)])
    result = filter_all(tt.TaintToleration(), info(pod(tolerations=tolerations)), cache)
    assert isinstance(result, dict)
    status = result["pi-1"]
    if reason is None:
        assert status is None
    else:
        assert status is not None
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (reason,)


@pytest.mark.parametrize(
    ("conditions", "reason"),
    [
        ({"Ready": "True"}, None),
        ({"Ready": "False"}, "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
        ({"Ready": "Unknown"}, "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        ({"MemoryPressure": "True"}, f"{UNTOLERATED}{{node.kubernetes.io/memory-pressure: }}"),
        ({"DiskPressure": "True"}, f"{UNTOLERATED}{{node.kubernetes.io/disk-pressure: }}"),
        ({"PIDPressure": "True"}, f"{UNTOLERATED}{{node.kubernetes.io/pid-pressure: }}"),
        ({"MemoryPressure": "False", "DiskPressure": "Unknown"}, None),
    ],
)  # fmt: skip
def test_conditions_imply_taints(conditions: dict[str, str], reason: str | None) -> None:
    cache = cluster([node("pi-1", conditions=conditions)])
    result = filter_all(tt.TaintToleration(), info(pod()), cache)
    assert isinstance(result, dict)
    status = result["pi-1"]
    assert (status.reasons if status else None) == ((reason,) if reason else None)


def test_a_condition_taint_is_tolerated_like_any_other() -> None:
    cache = cluster([node("pi-1", conditions={"Ready": "False"})])
    tolerant = pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    assert filter_all(tt.TaintToleration(), info(tolerant), cache) == {"pi-1": None}


def test_a_taint_the_controller_already_wrote_counts_once() -> None:
    written = taint("node.kubernetes.io/not-ready", "NoSchedule")
    cache = cluster([node("pi-1", conditions={"Ready": "False"}, taints=[written])])
    assert len(cache.node("pi-1").taints) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        ([], {"clean": 100, "one": 50, "two": 0}),
        ([{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}],
         {"clean": 100, "one": 100, "two": 0}),
        ([{"operator": "Exists"}], {"clean": 100, "one": 100, "two": 100}),
    ],
)  # fmt: skip
def test_score_prefers_fewer_untolerated_prefer_no_schedule_taints(
    tolerations: list[dict[str, Any]], expected: dict[str, int]
) -> None:
    cache = cluster([
        node("clean"),
        node("one", taints=[taint("a", "PreferNoSchedule")]),
        node("two", taints=[taint("a", "PreferNoSchedule"), taint("b", "PreferNoSchedule")]),
    ])  # fmt: skip
    assert scores(tt.TaintToleration(), info(pod(tolerations=tolerations)), cache) == expected


def test_score_skips_when_no_node_has_preferences() -> None:
    cache = cluster([node("a"), node("b", taints=[taint("x", "NoSchedule")])])
    assert scores(tt.TaintToleration(), info(pod()), cache) == {}
