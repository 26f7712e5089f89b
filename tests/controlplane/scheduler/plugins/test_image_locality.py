"""ImageLocality as a table: nodes holding the pod's images score higher, by size and by
how rare the image is in the cluster."""

from __future__ import annotations

import pytest

from controlplane.scheduler.plugins import image_locality as il
from tests.controlplane.scheduler.builders import cluster, info, node, pod, scores

MB = 1024 * 1024
APP = "docker.io/library/app:1"
BASE = "docker.io/library/base:latest"


@pytest.mark.parametrize(
    ("held", "images", "expected"),
    [
        # one of two nodes holds a 500 MB image: scaled by 1/2 -> 250 MB of 1000
        ({"a": [(APP, 500 * MB)]}, ["app:1"], {"a": 23, "b": 0}),
        # both hold it: 500 MB, but everyone has it
        ({"a": [(APP, 500 * MB)], "b": [(APP, 500 * MB)]}, ["app:1"], {"a": 48, "b": 48}),
        # two containers: the cap is 2000 MB
        ({"a": [(APP, 500 * MB), (BASE, 1000 * MB)]}, ["app:1", "base"], {"a": 36, "b": 0}),
        # a tiny image is below the 23 MB floor
        ({"a": [(APP, 10 * MB)]}, ["app:1"], {"a": 0, "b": 0}),
        # a size the node does not report counts as 100 MB
        ({"a": [(APP, 0)]}, ["app:1"], {"a": 2, "b": 0}),
    ],
)
def test_score(
    held: dict[str, list[tuple[str, int]]], images: list[str], expected: dict[str, int]
) -> None:
    cache = cluster([node("a", images=held.get("a", [])), node("b", images=held.get("b", []))])
    assert scores(il.ImageLocality(cache), info(pod(images=images)), cache) == expected


def test_no_node_holds_any_image_skips() -> None:
    cache = cluster([node("a"), node("b")])
    assert scores(il.ImageLocality(cache), info(pod(images=["app:1"])), cache) == {}
