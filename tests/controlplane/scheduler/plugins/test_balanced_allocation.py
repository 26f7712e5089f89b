"""NodeResourcesBalancedAllocation as a table: cpu and memory in equal shares score best."""

from __future__ import annotations

import pytest

from controlplane.scheduler.plugins import balanced_allocation as ba
from tests.controlplane.scheduler.builders import cluster, info, node, pod, scores


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        # node: 4 cpu, 8Gi; the pod brings it to (fraction cpu, fraction memory)
        ("2", "4Gi", 100),  # 0.5, 0.5
        ("4", "0", 50),  # 1.0, 0.0: std 0.5
        ("1", "6Gi", 75),  # 0.25, 0.75
        ("8", "8Gi", 100),  # over-asking counts as full: 1.0, 1.0
    ],
)
def test_score(cpu: str, memory: str, expected: int) -> None:
    cache = cluster([node("pi", cpu="4", memory="8Gi")])
    assert scores(ba.BalancedAllocation(), info(pod(cpu=cpu, memory=memory)), cache) == {
        "pi": expected
    }


def test_a_pod_that_requests_nothing_is_not_scored() -> None:
    assert scores(ba.BalancedAllocation(), info(pod()), cluster([node("pi")])) == {}


def test_pods_already_there_count() -> None:
    cache = cluster([node("a"), node("b")], {"b": [pod("m", memory="4Gi")]})
    got = scores(ba.BalancedAllocation(), info(pod(cpu="2")), cache)
    assert got == {"a": 75, "b": 100}
