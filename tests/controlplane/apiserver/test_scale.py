"""The autoscaling/v1 Scale view of a Deployment or ReplicaSet."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.handlers import scale_of


def deployment(selector: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7"},
        "spec": {"replicas": 3, "selector": selector},
        "status": {"replicas": 2},
    }


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, "app=web"),
        ({"matchLabels": {"tier": "a", "app": "web"}}, "app=web,tier=a"),
        # an autoscaler selecting by matchLabels alone would count pods the object does
        # not own
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "track", "operator": "In", "values": ["y", "x"]}],
            },
            "app=web,track in (x,y)",
        ),
        (
            {
                "matchExpressions": [
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "app", "operator": "Exists"},
                    {"key": "zone", "operator": "NotIn", "values": ["attic"]},
                ]
            },
            "app,!canary,zone notin (attic)",
        ),
    ],
)
def test_status_selector_is_the_whole_selector(selector: dict[str, Any], expected: str) -> None:
    scale = scale_of(deployment(selector))
    assert scale["status"] == {"replicas": 2, "selector": expected}
    assert scale["spec"] == {"replicas": 3}
    assert scale["metadata"]["resourceVersion"] == "7"
