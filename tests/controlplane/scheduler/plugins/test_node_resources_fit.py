"""NodeResourcesFit as tables: what fits beside the pods already there (bound and
assumed), the reasons, when the rejection is unresolvable, and the scoring strategies."""

from __future__ import annotations

import pytest

from controlplane.scheduler.framework import Code, CycleState
from controlplane.scheduler.plugins import node_resources_fit as fit
from controlplane.scheduler.podinfo import pod_info
from tests.controlplane.scheduler.builders import cluster, filter_all, info, node, pod, scores


@pytest.mark.parametrize(
    ("requests", "placed", "reasons", "code"),
    [
        ({"cpu": "1"}, [], None, None),
        ({"cpu": "4"}, [], None, None),  # exactly all of it
        ({"cpu": "4001m"}, [], ("Insufficient cpu",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
        ({"cpu": "2"}, [{"cpu": "3"}], ("Insufficient cpu",), Code.UNSCHEDULABLE),
        ({"memory": "8Gi"}, [], None, None),
        ({"memory": "9Gi"}, [], ("Insufficient memory",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
        ({"memory": "5Gi"}, [{"memory": "4Gi"}], ("Insufficient memory",), Code.UNSCHEDULABLE),
        ({"ephemeral-storage": "70Gi"}, [], ("Insufficient ephemeral-storage",),
         Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
        ({"cpu": "3", "memory": "5Gi"}, [{"cpu": "2", "memory": "4Gi"}],
         ("Insufficient cpu", "Insufficient memory"), Code.UNSCHEDULABLE),
        # one shortfall evictions can fix makes the rejection resolvable
        ({"cpu": "3", "memory": "9Gi"}, [{"cpu": "2"}],
         ("Insufficient cpu", "Insufficient memory"), Code.UNSCHEDULABLE),
        ({"nvidia.com/gpu": "1"}, [], ("Insufficient nvidia.com/gpu",),
         Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
        ({"cpu": "1e18"}, [], ("Insufficient cpu",), Code.UNSCHEDULABLE_AND_UNRESOLVABLE),  # absurd
        ({}, [{"cpu": "4", "memory": "8Gi"}], None, None),  # requests nothing: always fits
    ],
)  # fmt: skip
def test_filter(
    requests: dict[str, str], placed: list[dict[str, str]], reasons: tuple[str, ...] | None,
    code: Code | None,
) -> None:  # fmt: skip
    cache = cluster(
        [node("pi-1", cpu="4", memory="8Gi", ephemeral="60Gi")],
        {"pi-1": [pod(f"old-{i}", requests=r) for i, r in enumerate(placed)]},
    )
    result = filter_all(fit.NodeResourcesFit(), info(pod(requests=requests)), cache)
    assert isinstance(result, dict)
    status = result["pi-1"]
    if reasons is None:
        assert status is None
    else:
        assert status is not None
        assert (status.reasons, status.code) == (reasons, code)


def test_too_many_pods() -> None:
    cache = cluster([node("pi-1", pods=2)], {"pi-1": [pod("a"), pod("b")]})
    result = filter_all(fit.NodeResourcesFit(), info(pod()), cache)
    assert isinstance(result, dict)
    status = result["pi-1"]
    assert status is not None
    assert (status.reasons, status.code) == (("Too many pods",), Code.UNSCHEDULABLE)


def test_assumed_pods_count_until_forgotten() -> None:
    cache = cluster([node("pi-1", cpu="2")])
    plugin = fit.NodeResourcesFit()
    first = info(pod("first", cpu="1500m"))
    cache.assume(first, "pi-1")
    assert filter_all(plugin, info(pod("second", cpu="1")), cache)["pi-1"] is not None  # type: ignore[index]
    cache.forget(first.key)
    assert filter_all(plugin, info(pod("second", cpu="1")), cache)["pi-1"] is None  # type: ignore[index]


@pytest.mark.parametrize(
    ("containers", "inits", "overhead", "cpu", "memory"),
    [
        ([{"cpu": "1"}, {"cpu": "500m"}], [], None, 1500, 0),
        ([{"cpu": "1"}], [{"cpu": "2"}], None, 2000, 0),  # an init container runs alone
        ([{"cpu": "1"}], [{"cpu": "500m"}], None, 1000, 0),
        ([{"memory": "1Gi"}], [], {"memory": "100Mi"}, 0, (1024 + 100) * 2**20),
        ([{}], [], None, 0, 0),
    ],
)
def test_pod_requests(
    containers: list[dict[str, str]], inits: list[dict[str, str]], overhead: dict[str, str] | None,
    cpu: int, memory: int,
) -> None:  # fmt: skip
    def spec_of(prefix: str, requests: list[dict[str, str]]) -> list[dict[str, object]]:
        return [
            {"name": f"{prefix}{i}", "image": "x", "resources": {"requests": r}}
            for i, r in enumerate(requests)
        ]

    spec: dict[str, object] = {
        "containers": spec_of("c", containers),
        "initContainers": spec_of("i", inits),
    }
    if overhead:
        spec["overhead"] = overhead
    p = pod_info({"metadata": {"name": "p", "namespace": "d"}, "spec": spec})
    assert (p.requests.milli_cpu, p.requests.memory) == (cpu, memory)


def test_a_sidecar_runs_beside_the_containers() -> None:
    spec = {
        "initContainers": [{"name": "proxy", "image": "x", "restartPolicy": "Always",
                            "resources": {"requests": {"cpu": "250m"}}}],
        "containers": [{"name": "app", "image": "x", "resources": {"requests": {"cpu": "1"}}}],
    }  # fmt: skip
    p = pod_info({"metadata": {"name": "p", "namespace": "d"}, "spec": spec})
    assert p.requests.milli_cpu == 1250


def test_limits_alone_count_as_requests() -> None:
    spec = {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "2"}}}]}
    assert pod_info({"metadata": {"name": "p"}, "spec": spec}).requests.milli_cpu == 2000


def test_unreadable_requests_reject_the_pod_with_the_reason() -> None:
    bad = pod(requests={"cpu": "a lot"})
    status = fit.NodeResourcesFit().pre_filter(CycleState(), info(bad), [])
    assert status is not None
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.message.startswith("Pod's resource requests cannot be read: ")
    assert "spec.containers[0][cpu]: 'a lot'" in status.message


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # with the pod: empty uses 100m of 4 cpu and 200Mi of 8Gi (2.5 %, 2.4 %),
        # half 2100m and 4296Mi (52.5 %, 52.4 %); integer percentages, averaged
        (fit.LEAST_ALLOCATED, {"empty": 97, "half": 47}),
        (fit.MOST_ALLOCATED, {"empty": 2, "half": 52}),
    ],
)
def test_score_strategies(strategy: str, expected: dict[str, int]) -> None:
    cache = cluster(
        [node("empty", cpu="4", memory="8Gi"), node("half", cpu="4", memory="8Gi")],
        {"half": [pod("big", cpu="2", memory="4Gi")]},
    )
    plugin = fit.NodeResourcesFit(strategy=strategy)
    got = scores(plugin, info(pod(cpu="100m", memory="200Mi")), cache)
    assert got == expected


def test_request_less_pods_count_as_small_ones_when_scoring() -> None:
    cache = cluster([node("a"), node("b")], {"b": [pod(f"x{i}") for i in range(10)]})
    got = scores(fit.NodeResourcesFit(), info(pod()), cache)
    assert got["a"] > got["b"]


def test_bad_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="LeastAllocated or MostAllocated"):
        fit.NodeResourcesFit(strategy="Random")
