"""The configuration file and the registry: defaults, a profile that changes plugins and
weights, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.scheduler import config
from controlplane.scheduler.config import ConfigError, Profile, SchedulerConfig
from controlplane.scheduler.framework import Framework
from controlplane.scheduler.plugins.node_resources_fit import NodeResourcesFit
from controlplane.scheduler.queue import Nominator
from controlplane.scheduler.registry import DEFAULT_PLUGINS, build
from tests.controlplane.scheduler.builders import cluster, handle, node


def framework(profile: Profile) -> Framework:
    return build(profile, handle(cluster([node("a")]), Nominator()))


def test_defaults() -> None:
    cfg = config.parse({})
    assert cfg == SchedulerConfig()
    assert cfg.leader_election.name == "bramble-scheduler"
    assert cfg.leader_election.namespace == "kube-system"
    fw = framework(cfg.profiles[0])
    assert fw.scheduler_name == "default-scheduler"
    assert [p.name for p in fw.filter_plugins] == [
        "NodeUnschedulable", "NodeName", "TaintToleration", "HardwareHealth", "NodeArchitecture",
        "NodeAffinity", "NodePorts", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity",
    ]  # fmt: skip
    assert {p.name: w for p, w in fw.score_plugins} == {
        "TaintToleration": 3, "HardwareHealth": 2, "NodeAffinity": 2, "NodeResourcesFit": 1,
        "PodTopologySpread": 2, "InterPodAffinity": 2, "NodeResourcesBalancedAllocation": 1,
        "ImageLocality": 1,
    }  # fmt: skip
    assert [p.name for p in fw.pre_enqueue_plugins] == ["SchedulingGates", "NodeArchitecture"]
    assert [p.name for p in fw.post_filter_plugins] == ["DefaultPreemption"]
    assert len(DEFAULT_PLUGINS) == 14


def test_a_profile_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podInitialBackoffSeconds: 2
podMaxBackoffSeconds: 20
leaderElection:
  leaseDuration: 30s
  renewDeadline: 20s
  retryPeriod: 500ms
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      enabled: [{name: NodeResourcesFit, weight: 5}]
      disabled: [{name: ImageLocality}, {name: HardwareHealth}]
    score:
      disabled: [{name: NodeResourcesBalancedAllocation}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
- schedulerName: packer
  percentageOfNodesToScore: 100
"""
    )
    cfg = config.load(path)
    assert (cfg.percentage_of_nodes_to_score, cfg.pod_initial_backoff, cfg.pod_max_backoff) == (
        30,
        2,
        20,
    )
    assert (cfg.leader_election.lease_duration, cfg.leader_election.retry_period) == (30.0, 0.5)
    fw = framework(cfg.profiles[0])
    weights = {p.name: w for p, w in fw.score_plugins}
    assert weights["NodeResourcesFit"] == 5
    assert "ImageLocality" not in weights
    assert "NodeResourcesBalancedAllocation" not in weights
    assert "HardwareHealth" not in [p.name for p in fw.filter_plugins]
    fit = next(p for p, _ in fw.score_plugins if p.name == "NodeResourcesFit")
    assert isinstance(fit, NodeResourcesFit)
    assert fit.strategy == "MostAllocated"
    assert cfg.profile("packer") is not None
    assert config.effective_percentage(cfg, cfg.profiles[0]) == 30
    assert config.effective_percentage(cfg, cfg.profiles[1]) == 100


def test_disable_everything_and_enable_one() -> None:
    multi = {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesFit"}]}
    profile = config.parse({"profiles": [{"plugins": {"multiPoint": multi}}]}).profiles[0]
    fw = framework(profile)
    assert [p.name for p in fw.filter_plugins] == ["NodeResourcesFit"]
    assert [(p.name, w) for p, w in fw.score_plugins] == [("NodeResourcesFit", 1)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"percentageOfNodeToScore": 5}, "percentageOfNodeToScore: unknown field"),
        ({"percentageOfNodesToScore": 101},
         "percentageOfNodesToScore: must be an integer from 0 to 100"),
        ({"kind": "Pod"}, "kind: must be KubeSchedulerConfiguration"),
        ({"podInitialBackoffSeconds": 20}, "podMaxBackoffSeconds: must not be less than"),
        ({"leaderElection": {"leaseDuration": "5s"}},
         "needs retryPeriod < renewDeadline < leaseDuration"),
        ({"leaderElection": {"leaseDuration": "forever"}},
         "leaderElection.leaseDuration: a positive duration"),
        ({"profiles": [{}, {}]}, "every profile needs its own schedulerName"),
        ({"profiles": [{"plugins": {"fliter": {}}}]}, "profiles[0].plugins.fliter: unknown field"),
        ({"profiles": [{"plugins": {"score": {"enabled": [{"name": "X", "weight": 0}]}}}]},
         "profiles[0].plugins.score.enabled[0].weight: must be an integer from 1 to 100"),
    ],
)  # fmt: skip
def test_errors_name_the_field(doc: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.parse(doc)


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"plugins": {"filter": {"enabled": [{"name": "NodeFit"}]}}},
         "plugins.filter.enabled: unknown plugin 'NodeFit'; known plugins: DefaultPreemption"),
        ({"plugins": {"filter": {"enabled": [{"name": "ImageLocality"}]}}},
         "plugin ImageLocality does not implement the filter extension point"),
        ({"pluginConfig": [{"name": "NodeResourcesFit",
                            "args": {"scoringStrategy": {"type": "X"}}}]},
         "pluginConfig NodeResourcesFit: scoringStrategy.type 'X'"),
        ({"pluginConfig": [{"name": "Nope", "args": {}}]}, "pluginConfig: unknown plugin 'Nope'"),
    ],
)  # fmt: skip
def test_registry_errors(profile: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        framework(config.parse({"profiles": [profile]}).profiles[0])


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the scheduler configuration"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        config.load(bad)
