"""NodeUnschedulable as a table: (cordoned, tolerations) -> fits."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.scheduler.framework import Code, CycleState
from controlplane.scheduler.plugins import node_unschedulable as nu
from tests.controlplane.scheduler.builders import cluster, info, node, node_info, pod

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


@pytest.mark.parametrize(
    ("cordoned", "tolerations", "fits"),
    [
        (False, [], True),
        (True, [], False),
        (True, [{"key": UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"}], True),
        (True, [{"key": UNSCHEDULABLE, "operator": "Exists"}], True),  # any effect
        (True, [{"operator": "Exists"}], True),  # tolerates everything
        (True, [{"key": UNSCHEDULABLE, "operator": "Exists", "effect": "NoExecute"}], False),
        (True, [{"key": "other", "operator": "Exists"}], False),
    ],
)
def test_filter(cordoned: bool, tolerations: list[dict[str, Any]], fits: bool) -> None:
    cache = cluster([node("pi-1", unschedulable=cordoned)])
    status = nu.NodeUnschedulable().filter(
        CycleState(), info(pod(tolerations=tolerations)), node_info(cache, "pi-1")
    )
    assert (status is None) is fits
    if not fits:
        assert status is not None
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == ("node(s) were unschedulable",)
