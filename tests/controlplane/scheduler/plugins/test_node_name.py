"""NodeName as a table: (pod's nodeName, node) -> fits."""

from __future__ import annotations

import pytest

from controlplane.scheduler.framework import SKIP, Code, CycleState
from controlplane.scheduler.plugins import node_name
from tests.controlplane.scheduler.builders import cluster, info, node, node_info, pod


@pytest.mark.parametrize(
    ("wanted", "node_", "fits"),
    [
        (None, "pi-1", True),
        ("pi-1", "pi-1", True),
        ("pi-2", "pi-1", False),
        ("PI-1", "pi-1", False),  # names are compared exactly
    ],
)
def test_filter(wanted: str | None, node_: str, fits: bool) -> None:
    plugin = node_name.NodeName()
    cache = cluster([node(node_)])
    status = plugin.filter(CycleState(), info(pod(node_name=wanted)), node_info(cache, node_))
    assert (status is None) is fits
    if not fits:
        assert status is not None
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (node_name.ERR_REASON,)
        assert node_name.ERR_REASON == "node(s) didn't match the requested node name"


def test_pre_filter_skips_pods_without_a_node_name() -> None:
    plugin = node_name.NodeName()
    assert plugin.pre_filter(CycleState(), info(pod()), []) is SKIP
    assert plugin.pre_filter(CycleState(), info(pod(node_name="pi-1")), []) is None
