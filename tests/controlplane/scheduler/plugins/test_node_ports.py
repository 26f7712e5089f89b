"""NodePorts as a table: host ports already taken on the node."""

from __future__ import annotations

import pytest

from controlplane.scheduler.plugins import node_ports as np_
from tests.controlplane.scheduler.builders import cluster, fits, info, node, pod


@pytest.mark.parametrize(
    ("taken", "wanted", "expected"),
    [
        ([], [8080], ["a", "b"]),
        ([8080], [8080], ["b"]),
        ([8080], [8081], ["a", "b"]),
        ([80, 443], [443], ["b"]),
    ],
)
def test_filter(taken: list[int], wanted: list[int], expected: list[str]) -> None:
    cache = cluster([node("a"), node("b")], {"a": [pod("web", host_ports=taken)] if taken else []})
    assert fits(np_.NodePorts(), info(pod("new", host_ports=wanted)), cache) == expected


def test_other_host_ips_and_protocols_do_not_conflict() -> None:
    udp = pod("dns", extra_spec={"containers": [{"name": "c", "image": "x", "ports": [
        {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]}]})  # fmt: skip
    tcp = pod("tcp", host_ports=[53])
    cache = cluster([node("a")], {"a": [udp]})
    assert fits(np_.NodePorts(), info(tcp), cache) == ["a"]
    result = np_.NodePorts().filter(None, info(udp), cache.node("a"))  # type: ignore[arg-type]
    assert result is not None
    assert result.reasons == ("node(s) didn't have free ports for the requested pod ports",)
