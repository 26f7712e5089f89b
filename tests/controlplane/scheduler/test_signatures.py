"""Pod signatures: what signed Filter and Score plugins decided about a node is kept on
the node for the next pod with the same signature, until the node or its pods change.
The results must be exactly those of running the plugins again."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from controlplane.scheduler.algorithm import Algorithm
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.config import Profile
from controlplane.scheduler.framework import (
    CycleState,
    Framework,
    NormalizeScorePlugin,
    Status,
    unschedulable,
)
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.queue import Nominator
from controlplane.scheduler.registry import build
from controlplane.scheduler.scheduler import decide
from tests.controlplane.scheduler.builders import cluster, handle, info, node, pod, taint

Obj = dict[str, object]


def default_framework(cache: Cache) -> Framework:
    return build(Profile(), handle(cache, Nominator()))


def mixed_cluster() -> Cache:
    return cluster(
        [
            node("pi-1", cpu="4", memory="4Gi", labels={"disk": "ssd", "zone": "a"}),
            node("pi-2", cpu="4", memory="8Gi", labels={"disk": "sd", "zone": "a"}),
            node("pi-3", cpu="2", memory="2Gi", labels={"zone": "b"}, pods=6),
            node("pc-1", cpu="8", memory="16Gi", arch="amd64", labels={"zone": "b"},
                 images=[("docker.io/library/nginx:latest", 200 * 1024 * 1024)]),
            node("tainted", taints=[taint("gpu")]),
            node("soft", taints=[taint("busy", "PreferNoSchedule")]),
            node("brownout", conditions={"UnderVoltage": ("True", "UnderVoltageNow")}),
            node("hot", conditions={"ThermalThrottling": "True"},
                 labels={"bramble.io/storage": "sdcard"}),
            node("cordoned", unschedulable=True),
        ]
    )  # fmt: skip


TEMPLATES: list[dict[str, object]] = [
    {"cpu": "500m", "memory": "512Mi"},
    {"cpu": "500m", "memory": "512Mi", "tolerations": [{"key": "gpu", "operator": "Exists"}]},
    {"cpu": "500m", "memory": "512Mi", "node_selector": {"disk": "sd"}},
    {"cpu": "500m", "memory": "512Mi", "requests": {"ephemeral-storage": "1Gi"}},
    {"cpu": "1", "memory": "1Gi", "owner": "web"},  # default spreading: not signed
    {"memory": "3Gi"},
    {"cpu": "100m", "tolerations": [{"key": "gpu", "operator": "Exists"}]},
    {"cpu": "100m", "tolerations": [{"operator": "Exists"}]},
    {"cpu": "250m", "node_selector": {"zone": "a"}},
    {"cpu": "250m", "node_selector": {"zone": "b"}},
    {"cpu": "500m", "memory": "512Mi", "extra_spec": {"volumes": [{"name": "t", "emptyDir": {}}]}},
    {"cpu": "250m", "host_ports": [8080]},
    {"cpu": "250m", "host_ports": [9090]},
    {"cpu": "200m", "requests": {"ephemeral-storage": "1Gi"}},
    {"cpu": "300m", "affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}},
    {"cpu": "100m", "labels": {"app": "db"}, "spread": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "db"}}}]},
    {"cpu": "100m", "labels": {"app": "solo"}, "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "solo"}},
             "topologyKey": "kubernetes.io/hostname"}]}}},
]  # fmt: skip


def compare_with_fresh(
    fw: Framework, fresh_fw: Framework, p: PodInfo, cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> int:
    """Every verdict ``fw`` kept for ``p``'s signature equals what the filters say now,
    and its score totals equal a fresh scoring; how many kept verdicts were compared.
    ``fresh_fw`` (the same profile) keeps nothing: its results are computed anew."""
    nodes = cache.node_list()
    state, fresh_state = CycleState(), CycleState()
    if fw.run_pre_filter(state, p, nodes) is not None:
        return 0
    number = fw.filter_signature(state, p, fw.filter_plan(state))
    with monkeypatch.context() as patch:
        patch.setattr(NodeInfo, "keep", lambda self, number, result: None)
        assert fresh_fw.run_pre_filter(fresh_state, p, nodes) is None
        verdicts = {n.name: fresh_fw.run_filters(fresh_state, p, n) for n in nodes}
        compared = 0
        for n in nodes:
            if number is not None and number in n.results:
                assert n.results[number] == verdicts[n.name], (p.name, n.name)
                compared += 1
        feasible = [n for n in nodes if verdicts[n.name] is None]
        if feasible:
            fw.run_pre_score(state, p, feasible)
            fresh_fw.run_pre_score(fresh_state, p, feasible)
            expected = plain_totals(fresh_fw, fresh_state, p, feasible)
            assert fw.run_score(state, p, feasible) == expected, p.name
    return compared


def plain_totals(
    fw: Framework, state: CycleState, p: PodInfo, nodes: Sequence[NodeInfo]
) -> list[int]:
    """Every scoring plugin's Score per node, normalized and weighted, summed: the
    framework's arithmetic done plainly, with nothing kept."""
    totals = [0] * len(nodes)
    for plugin, weight in fw.score_plugins:
        if plugin.name in state.skip_score or not weight:
            continue
        scores = [plugin.score(state, p, n) for n in nodes]
        if isinstance(plugin, NormalizeScorePlugin):
            plugin.normalize(state, p, scores)
        totals = [t + s * weight for t, s in zip(totals, scores, strict=True)]
    return totals


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_what_is_kept_equals_what_the_plugins_say_now(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pods drawn from TEMPLATES are scheduled (and assumed where they land), pods go
    away, nodes are cordoned and uncordoned; before each pod, everything kept for its
    signature is checked against running the plugins again."""
    cache = mixed_cluster()
    fw, fresh_fw = default_framework(cache), default_framework(cache)
    algorithm = Algorithm(rng=random.Random(seed))
    draw = random.Random(seed)
    placed: list[PodInfo] = []
    compared = failed = 0
    for i in range(200):
        p = info(pod(f"p{i}", **draw.choice(TEMPLATES)))  # type: ignore[arg-type]
        compared += compare_with_fresh(fw, fresh_fw, p, cache, monkeypatch)
        decision = decide(algorithm, fw, p, cache.node_list())
        if decision.node:
            cache.assume(p, decision.node)
            placed.append(p)
        else:
            failed += 1
        if i % 17 == 16 and placed:  # a pod goes away
            cache.forget(placed.pop(draw.randrange(len(placed))).key)
        if i % 29 == 28:  # a node is cordoned or uncordoned
            target = draw.choice(cache.node_list())
            assert target.node is not None
            cache.add_node({**target.node, "spec": {"unschedulable": not target.unschedulable}})
    assert compared > 200  # the kept results were there to compare
    assert 0 < failed < 200


def test_a_node_filled_by_the_previous_replica_is_judged_again() -> None:
    cache = cluster([node("pi", cpu="1")])
    fw = default_framework(cache)
    algorithm = Algorithm()
    first = info(pod("web-1", cpu="600m"))
    assert decide(algorithm, fw, first, cache.node_list()).node == "pi"
    assert cache.node_list()[0].results  # the verdict and the score were kept
    cache.assume(first, "pi")
    assert not cache.node_list()[0].results  # and dropped when a pod came
    second = decide(algorithm, fw, info(pod("web-2", cpu="600m")), cache.node_list())
    assert second.node == ""
    assert second.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")


def test_a_node_update_drops_what_was_kept() -> None:
    cache = cluster([node("pi")])
    fw = default_framework(cache)
    assert decide(Algorithm(), fw, info(pod("a", cpu="1")), cache.node_list()).node == "pi"
    cache.add_node(node("pi", taints=[taint("broken")]))
    decision = decide(Algorithm(), fw, info(pod("b", cpu="1")), cache.node_list())
    assert decision.message.startswith(
        "0/1 nodes are available: 1 node(s) had untolerated taint {broken: }."
    )


def test_what_cannot_be_signed_is_computed_each_time_beside_what_is_kept() -> None:
    """Spreading reads other pods' places: no verdict is kept for this pod, and of its
    scores only those of the plugins that sign it (NodeResourcesFit...) are kept."""
    cache = cluster([node("pi-1", labels={"zone": "a"}), node("pi-2", labels={"zone": "b"})])
    fw = default_framework(cache)
    selector = {"matchLabels": {"app": "db"}}
    spread = [  # one constraint filters, the other scores: neither can be signed
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": selector},
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
         "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector},
    ]  # fmt: skip
    p = info(pod(cpu="100m", labels={"app": "db"}, spread=spread))
    assert decide(Algorithm(), fw, p, cache.node_list()).node
    kept = [r for n in cache.node_list() for r in n.results.values()]
    assert kept  # the signed scores
    assert all(isinstance(r, int) for r in kept)  # and no filter verdict (a Status or None)


def test_profiles_keep_their_own_results_on_shared_nodes() -> None:
    cache = cluster([node("empty"), node("busy")], {"busy": [pod("resident", cpu="3")]})
    least = default_framework(cache)
    most = build(
        Profile(plugin_args={"NodeResourcesFit": {"scoringStrategy": {"type": "MostAllocated"}}}),
        handle(cache, Nominator()),
    )
    for _ in range(2):  # the second round reads what the first kept
        assert decide(Algorithm(), least, info(pod(cpu="500m")), cache.node_list()).node == "empty"
        assert decide(Algorithm(), most, info(pod(cpu="500m")), cache.node_list()).node == "busy"


class CountingFilter:
    """A signed Filter that rejects nodes named "no-*" and counts its calls."""

    name = "Counting"

    def __init__(self) -> None:
        self.calls = 0

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        self.calls += 1
        return unschedulable(self.name, "refused") if node.name.startswith("no-") else None

    def sign_filter(self, state: CycleState, pod: PodInfo) -> object:
        return pod.requests.key()


def counting_framework(plugin: CountingFilter, cache: Cache) -> Framework:
    return Framework("default-scheduler", filter=[plugin], handle=handle(cache, Nominator()))


def test_equal_signatures_run_the_filter_once_per_unchanged_node() -> None:
    cache = cluster([node("yes-1"), node("yes-2"), node("no-1")])
    plugin = CountingFilter()
    fw = counting_framework(plugin, cache)
    algorithm = Algorithm(rng=random.Random(0))
    nodes: Sequence[NodeInfo] = cache.node_list()
    for i in range(5):
        algorithm.schedule(fw, CycleState(), info(pod(f"same-{i}", cpu="1")), nodes)
    assert plugin.calls == 3
    algorithm.schedule(fw, CycleState(), info(pod("other", cpu="2")), nodes)
    assert plugin.calls == 6  # another signature: every node again
    cache.assume(info(pod("placed", cpu="1")), "yes-1")
    algorithm.schedule(fw, CycleState(), info(pod("same-5", cpu="1")), nodes)
    assert plugin.calls == 7  # only the node that changed


def signature(fw: Framework, p: PodInfo, cache: Cache) -> int | None:
    state = CycleState()
    assert fw.run_pre_filter(state, p, cache.node_list()) is None
    return fw.filter_signature(state, p, fw.filter_plan(state))


def test_signature_numbers_are_per_framework_and_stable() -> None:
    cache = cluster([node("pi")])
    one, two = default_framework(cache), default_framework(cache)
    a = signature(one, info(pod("p", cpu="1")), cache)
    assert a is not None
    assert signature(one, info(pod("q", cpu="1")), cache) == a  # same facts, same number
    assert signature(two, info(pod("p", cpu="1")), cache) != a  # another profile
    tolerant = info(pod("r", cpu="1", tolerations=[{"operator": "Exists"}]))
    assert signature(one, tolerant, cache) not in (a, None)
    assert signature(one, info(pod("s", cpu="2")), cache) not in (a, None)
